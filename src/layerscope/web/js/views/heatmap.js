// Heatmap: layers × positions coloured by one lens statistic, each cell's top token written in it.
// The statistics to colour by are the per-position ones the trace carries (from hello).

import { RAMP_SCALE, pct, plotLabel } from "../core/format.js";
import {
  columnShapes, drawGrid, onCellClick, positionLabels, relayout, rowBox,
} from "../core/plot.js";
import { View } from "../core/view.js";

const DEFAULT_METRIC = "final_prob";
// Words for the statistics a person picks from; one the server adds later shows by its name.
const LABELS = {
  final_prob: "probability of the final token", final_rank: "rank of the final token",
  next_prob: "probability of the actual next token", next_rank: "rank of the actual next token",
  entropy: "entropy (nats)", kl_final: "KL to the final layer (nats)",
};
const statLabel = (stat) => LABELS[stat.name] ?? stat.name.replace(/_/g, " ");
const RANK_TICKS = { tickvals: [0, 1, 2, 3], ticktext: ["1", "10", "100", "1000+"] };

/** How to colour a statistic, from what its name says it is (probability, rank or other). */
function scale(stat) {
  if (stat.name.endsWith("_prob")) return { z: (v) => v, zmin: 0, zmax: 1, reverse: false };
  if (stat.name.endsWith("_rank")) {
    return { z: (v) => (v >= 1 ? Math.log10(v) : NaN), zmin: 0, zmax: 3, reverse: true,
      ticks: RANK_TICKS };
  }
  return { z: (v) => v, reverse: true }; // nats: low = sure
}

function fmt(stat, v) {
  if (Number.isNaN(v)) return "unknown";
  if (stat.name.endsWith("_prob")) return pct(v);
  return stat.dtype.startsWith("int") ? String(v) : v.toFixed(Math.min(3, stat.decimals ?? 3));
}

class HeatmapView extends View {
  id = "heatmap";
  label = "Heatmap";
  group = "lens";
  term = "heatmap";
  description = "Every layer's guess at every token: rows are layers (input at the bottom), " +
    "columns are tokens, colour is how sure that layer already is of the final answer.";
  markup = `
    <div class="view-bar">
      <label data-term="heatmap">Colour cells by <select id="metric"></select></label>
      <span class="muted" data-term="top-prediction">Cells show each layer's top prediction; click one to jump there.</span>
    </div>
    <div class="placeholder" hidden></div>
    <div class="plot-wrap">
      <div id="heatmap" class="plot"></div>
      <div id="heatmap-row" class="hm-row" hidden></div>
    </div>`;

  mount(root, ctx) {
    super.mount(root);
    this.plot = this.$("#heatmap");
    this.row = this.$("#heatmap-row");
    this.metric = this.$("#metric");
    this.metric.addEventListener("change", () => this.onTrace(ctx.trace, ctx));
    this.trace = null;
    this.drawn = false;
  }

  onTrace(trace, ctx) {
    const waiting = !trace.complete;
    this.note(waiting ? "The heatmap appears once every layer has arrived." : "");
    this.$(".plot-wrap").hidden = waiting;
    if (waiting) return;
    this.trace = trace;
    this.#fillMetrics(trace.statistics);
    this.#draw(trace, ctx);
    this.onLayer(ctx.layer);
  }

  onLayer(layer) {
    this.layer = layer;
    const box = this.drawn && this.trace && rowBox(this.plot, layer);
    this.row.hidden = !box;
    if (!box) return;
    const st = this.row.style;
    st.left = `${box.left - 2}px`;
    st.width = `${box.width + 4}px`;
    st.top = `${box.top - 2}px`;
    st.height = `${box.height + 4}px`;
  }

  onSelect(positions) {
    if (this.drawn) relayout(this.plot, { shapes: columnShapes(positions) });
  }

  #fillMetrics(statistics) {
    const stats = statistics.filter((s) => s.shape === "position");
    if (this.metric.options.length === stats.length) return;
    this.metric.replaceChildren(...stats.map((s) => new Option(statLabel(s), s.name)));
    const named = stats.some((s) => s.name === DEFAULT_METRIC);
    this.metric.value = named ? DEFAULT_METRIC : stats[0].name;
  }

  #draw(trace, ctx) {
    const stat = trace.statistics.find((s) => s.name === this.metric.value);
    const sc = scale(stat);
    const text = ctx.text, T = trace.T;
    const wide = this.plot.clientWidth / T >= 34;
    const z = [], cells = [], hover = [];
    for (let l = 0; l < trace.nLayers; l++) {
      const zr = [], cr = [], hr = [];
      for (let t = 0; t < T; t++) {
        const v = trace.at(stat.name, l, t);
        zr.push(sc.z(v));
        cr.push(wide ? plotLabel(text(trace.top(l, t)), 6) : "");
        const tops = [];
        for (let i = 0; i < Math.min(5, trace.k); i++) {
          tops.push(`${plotLabel(text(trace.top(l, t, i)), 18)}  ${pct(trace.topP(l, t, i))}`);
        }
        hr.push(`<b>layer ${l}</b> · position ${t} ${plotLabel(text(trace.ids[t]))}<br>` +
          `${statLabel(stat)}: ${fmt(stat, v)}<br>—<br>${tops.join("<br>")}`);
      }
      z.push(zr); cells.push(cr); hover.push(hr);
    }
    drawGrid(this.plot, {
      z, hover, text: wide ? cells : null, x: positionLabels(trace.ids.slice(0, T), text),
      rowTitle: "layer", colorscale: RAMP_SCALE, reverse: sc.reverse, zmin: sc.zmin, zmax: sc.zmax,
      colorbar: { title: statLabel(stat), ...sc.ticks }, rowHeight: 17,
      layout: { shapes: columnShapes(ctx.selected), margin: { b: 80 } },
    });
    if (!this.drawn) {
      this.plot.on("plotly_afterplot", () => this.onLayer(this.layer));
      onCellClick(this.plot, (layer, pos) => {
        ctx.setLayer(layer);
        ctx.select([pos]);
      });
      this.drawn = true;
    }
  }
}

export default new HeatmapView();
