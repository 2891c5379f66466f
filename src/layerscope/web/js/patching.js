// Patching sandbox: how much of the clean answer each (layer, position) patch restores.

import { escapeHTML, pct, tokenLabel } from "./format.js";

const SCALE = [[0, "#f7f7fb"], [0.5, "#9e9ac8"], [1, "#3f007d"]];

export function patchSummary(frame, text) {
  const ans = escapeHTML(tokenLabel(text(frame.answer_id), 24));
  return `Answer <code>${ans}</code>: ${pct(frame.p_clean)} on the clean prompt, ` +
    `${pct(frame.p_corrupted)} on the corrupted one. Colour = share of that gap restored.`;
}

export function renderPatch(el, frame, text, onOpen) {
  const T = frame.corrupted.length, L = frame.restored.length;
  const x = frame.corrupted.map((id, t) => {
    const diff = id !== frame.clean[t] ? "*" : "";
    return `${t}:${tokenLabel(text(id), 10)}${diff}`;
  });
  const hover = frame.restored.map((row, l) => row.map((r, t) =>
    `<b>layer ${l}</b> · position ${t}<br>clean ${tokenLabel(text(frame.clean[t]))} → corrupted ` +
    `${tokenLabel(text(frame.corrupted[t]))}<br>p(answer) = ${pct(frame.prob[l][t])}` +
    `<br>restored ${(r * 100).toFixed(0)}%<br><i>click to open this run</i>`));
  const data = [{
    type: "heatmap", z: frame.restored, x, y: [...Array(L).keys()], hovertext: hover,
    hoverinfo: "text", colorscale: SCALE, zmin: 0, zmax: 1, xgap: 1, ygap: 1,
    colorbar: { title: { text: "restored", side: "right" }, thickness: 12, tickformat: ".0%" },
  }];
  const layout = {
    margin: { l: 44, r: 10, t: 8, b: 70 }, height: Math.max(340, L * 15 + 100),
    xaxis: { type: "category", tickfont: { family: "DejaVu Sans Mono", size: 11 }, tickangle: T > 10 ? -40 : 0 },
    yaxis: { title: { text: "layer" }, dtick: L > 20 ? 5 : 1 },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#f3f4f7",
    font: { family: "system-ui, DejaVu Sans, sans-serif", size: 12, color: "#1b2130" },
  };
  window.Plotly.react(el, data, layout, { displayModeBar: false, responsive: true });
  el.removeAllListeners?.("plotly_click");
  el.on("plotly_click", (ev) => {
    const p = ev.points?.[0];
    if (p) onOpen(p.pointIndex[0], p.pointIndex[1]);
  });
}
