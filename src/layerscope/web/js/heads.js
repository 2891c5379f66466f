// Per-head logit lens: layers x heads, each head's direct contribution to one token's logit.

import { tokenLabel } from "./format.js";

const DIVERGING = [[0, "#c43c39"], [0.5, "#f7f7f7"], [1, "#2b59c3"]];

export function renderHeads(el, frame, text, posLabel) {
  const L = frame.contrib.length, H = frame.contrib[0].length;
  const target = tokenLabel(text(frame.target_id), 20);
  const hover = frame.contrib.map((row, l) => row.map((v, h) => {
    const pushes = frame.top_ids[l][h].map((id) => tokenLabel(text(id), 14)).join("  ");
    return `<b>block ${l} · head ${h}</b><br>${v >= 0 ? "+" : ""}${v.toFixed(3)} logits to ` +
      `${target}<br>pushes up: ${pushes}`;
  }));
  let absMax = 0;
  for (const row of frame.contrib) for (const v of row) absMax = Math.max(absMax, Math.abs(v));
  const data = [{
    type: "heatmap", z: frame.contrib, hovertext: hover, hoverinfo: "text",
    x: [...Array(H).keys()].map((h) => `H${h}`), y: [...Array(L).keys()],
    colorscale: DIVERGING, zmin: -absMax, zmax: absMax, xgap: 2, ygap: 1,
    colorbar: { title: { text: "logit", side: "right" }, thickness: 12 },
  }];
  const layout = {
    title: { text: `Heads' direct push toward <b>${target}</b> at position ${posLabel}`,
      font: { size: 13 }, x: 0, xanchor: "left" },
    margin: { l: 50, r: 10, t: 34, b: 40 }, height: Math.max(360, L * 15 + 90),
    xaxis: { title: { text: "head" }, type: "category" },
    yaxis: { title: { text: "block" }, dtick: L > 20 ? 5 : 1 },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#f3f4f7",
    font: { family: "system-ui, DejaVu Sans, sans-serif", size: 12, color: "#1b2130" },
  };
  window.Plotly.react(el, data, layout, { displayModeBar: false, responsive: true });
}
