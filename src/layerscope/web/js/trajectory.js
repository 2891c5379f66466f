// Residual trajectory: the selected positions' residual vectors through the layers, PCA to 2-D,
// with a marker that follows the scrubber.

import { tokenLabel } from "./format.js";

const COLORS = ["#4338ca", "#d6322e", "#1b9e77", "#e6a817", "#7b3294", "#2b8cbe", "#636363"];

export class TrajectoryView {
  constructor(el, text) {
    this.el = el;
    this.text = text;
    this.frame = null;
    this.pending = 0;
  }

  render(frame, ids, layer) {
    this.frame = frame;
    const data = frame.positions.map((pos, j) => {
      const xs = frame.coords.map((c) => c[j][0]);
      const ys = frame.coords.map((c) => c[j][1]);
      const label = `${pos}:${tokenLabel(this.text(ids[pos]), 12)}`;
      return {
        type: "scatter", mode: "lines+markers", name: label, x: xs, y: ys,
        line: { color: COLORS[j % COLORS.length], width: 1.5 },
        marker: { size: 5, color: COLORS[j % COLORS.length], opacity: 0.55 },
        hovertemplate: `${label} · layer %{pointNumber}<extra></extra>`,
      };
    });
    data.push(this.#current(layer));
    const [a, b] = frame.explained.map((v) => (v * 100).toFixed(0));
    const layout = {
      margin: { l: 50, r: 10, t: 10, b: 44 }, height: 420,
      xaxis: { title: { text: `PC1 (${a}% of variance)` }, zeroline: false },
      yaxis: { title: { text: `PC2 (${b}%)` }, zeroline: false },
      legend: { orientation: "h", y: 1.08 },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#f7f8fa",
      font: { family: "system-ui, DejaVu Sans, sans-serif", size: 12, color: "#1b2130" },
    };
    window.Plotly.react(this.el, data, layout, { displayModeBar: false, responsive: true });
  }

  /** Move the "current layer" markers (one restyle per animation frame at most). */
  mark(layer) {
    if (!this.frame) return;
    this.layer = layer;
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      if (this.el.offsetParent === null) return;
      const c = this.#current(this.layer);
      window.Plotly.restyle(this.el, { x: [c.x], y: [c.y], text: [c.text] },
        [this.frame.positions.length]);
    });
  }

  #current(layer) {
    const f = this.frame;
    const l = Math.min(layer, f.coords.length - 1);
    return {
      type: "scatter", mode: "markers+text", name: `layer ${l}`, showlegend: false,
      x: f.positions.map((_, j) => f.coords[l][j][0]),
      y: f.positions.map((_, j) => f.coords[l][j][1]),
      text: f.positions.map(() => `h${l}`), textposition: "top center",
      marker: { size: 13, color: f.positions.map((_, j) => COLORS[j % COLORS.length]),
        line: { color: "#141a2a", width: 2 } },
      hoverinfo: "skip",
    };
  }
}
