// Heatmap view: layers x positions coloured by a lens statistic, top token written in each cell.

import { RAMP_SCALE, pct, tokenLabel } from "./format.js";

const METRICS = {
  final_prob: { field: "finalProb", title: "p(final token)", reverse: false, z: (v) => v,
    range: [0, 1], ticks: null },
  final_rank: { field: "finalRank", title: "rank of final token", reverse: true,
    z: (v) => Math.log10(Math.max(1, v)), range: [0, 3],
    ticks: { tickvals: [0, 1, 2, 3], ticktext: ["1", "10", "100", "1000+"] } },
  entropy: { field: "entropy", title: "entropy (nats)", reverse: true, z: (v) => v, range: null,
    ticks: null },
  kl_final: { field: "klFinal", title: "KL to final (nats)", reverse: true, z: (v) => v,
    range: null, ticks: null },
};

export class HeatmapView {
  constructor(el, rowEl, text, onClick) {
    this.el = el;
    this.rowEl = rowEl;
    this.text = text;
    this.onClick = onClick;
    this.trace = null;
    this.drawn = false;
    this.layer = 0;
    this.selected = "";
  }

  render(trace, metric, layer, selected) {
    if (!window.Plotly || !trace?.T) return;
    this.trace = trace;
    const m = METRICS[metric];
    const { T, nLayers: L } = trace;
    const z = [], text = [], hover = [];
    const wide = this.el.clientWidth / T >= 34;
    for (let l = 0; l < L; l++) {
      const zr = [], tr = [], hr = [];
      for (let t = 0; t < T; t++) {
        const v = trace.at(m.field, l, t);
        zr.push(m.z(v));
        const top = trace.top(l, t);
        tr.push(wide ? tokenLabel(this.text(top), 6) : "");
        const lines = [];
        for (let i = 0; i < Math.min(5, trace.k); i++) {
          lines.push(`${tokenLabel(this.text(trace.top(l, t, i)), 18)}  ${pct(trace.topP(l, t, i))}`);
        }
        hr.push(`<b>layer ${l}</b> · position ${t} ${tokenLabel(this.text(trace.ids[t]))}<br>` +
          `${m.title}: ${fmt(v)}<br>—<br>${lines.join("<br>")}`);
      }
      z.push(zr); text.push(tr); hover.push(hr);
    }
    const labels = trace.ids.slice(0, T).map((id, t) => `${t}:${tokenLabel(this.text(id), 8)}`);
    const data = [{
      type: "heatmap", z, text, hovertext: hover, hoverinfo: "text",
      x: labels, y: [...Array(L).keys()],
      texttemplate: wide ? "%{text}" : "", textfont: { size: 10, family: "DejaVu Sans Mono" },
      colorscale: RAMP_SCALE, reversescale: m.reverse, xgap: 1, ygap: 1,
      zmin: m.range?.[0], zmax: m.range?.[1],
      colorbar: { title: { text: m.title, side: "right" }, thickness: 12, len: 0.9, ...m.ticks },
    }];
    const layout = {
      margin: { l: 44, r: 10, t: 8, b: 80 }, height: Math.max(340, L * 17 + 110),
      xaxis: { type: "category", tickangle: -50, tickfont: { family: "DejaVu Sans Mono", size: 10 },
        automargin: true },
      yaxis: { title: { text: "layer" }, dtick: L > 20 ? 5 : 1, zeroline: false },
      shapes: this.#shapes(selected),
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "#f3f4f7",
      font: { family: "system-ui, DejaVu Sans, sans-serif", size: 12, color: "#1b2130" },
    };
    window.Plotly.react(this.el, data, layout, { displayModeBar: false, responsive: true });
    this.selected = [...selected].join(",");
    this.#placeRow(layer);
    if (!this.drawn) {
      this.el.on("plotly_afterplot", () => this.#placeRow(this.layer));
      this.el.on("plotly_click", (ev) => {
        const p = ev.points?.[0];
        if (p) this.onClick(p.pointIndex[0], p.pointIndex[1]);
      });
      this.drawn = true;
    }
  }

  /** Move the current-layer outline (a positioned div: no Plotly redraw while scrubbing). */
  mark(layer, selected) {
    if (!this.drawn) return;
    this.#placeRow(layer);
    const key = [...selected].join(",");
    if (key !== this.selected && this.el.offsetParent !== null) {
      this.selected = key;
      window.Plotly.relayout(this.el, { shapes: this.#shapes(selected) });
    }
  }

  #placeRow(layer) {
    this.layer = layer;
    const fl = this.el._fullLayout;
    if (!fl?.yaxis || !this.trace) { this.rowEl.hidden = true; return; }
    const ya = fl.yaxis, xa = fl.xaxis;
    const top = ya._offset + ya.l2p(layer + 0.5), bottom = ya._offset + ya.l2p(layer - 0.5);
    const st = this.rowEl.style;
    st.left = `${xa._offset - 2}px`;
    st.width = `${xa._length + 4}px`;
    st.top = `${top - 2}px`;
    st.height = `${bottom - top + 4}px`;
    this.rowEl.hidden = false;
  }

  #shapes(selected) {
    return [...selected].map((t) => ({ type: "rect", xref: "x", yref: "paper", x0: t - 0.5,
      x1: t + 0.5, y0: 0, y1: 1, line: { color: "#4338ca", width: 1.5, dash: "dot" } }));
  }
}

function fmt(v) {
  if (Number.isInteger(v)) return String(v);
  return v < 0.01 ? v.toExponential(1) : v.toFixed(3);
}
