// Residual trajectory: the selected positions' residual vectors through the layers, projected to
// 2-D by PCA, with markers at the scrubber's layer.

import { plotLabel } from "../core/format.js";
import { draw, layout, restyle } from "../core/plot.js";
import { retrace } from "../core/python.js";
import { View } from "../core/view.js";

const COLORS = ["#4338ca", "#d6322e", "#1b9e77", "#e6a817", "#7b3294", "#2b8cbe", "#636363"];
const MAX_POSITIONS = 8;

class TrajectoryView extends View {
  id = "trajectory";
  label = "Residual trajectory";
  group = "lens";
  term = "pca-trajectory";
  description = "The path each selected token's hidden state takes from the first layer to the " +
    "last, flattened onto the two directions in which it varies most (PCA).";
  markup = `
    <div class="view-bar">
      <span class="muted">Shift-click tokens to add them (up to ${MAX_POSITIONS}). The vectors are
        taken after the <span data-term="final-norm">final norm</span>; the big markers follow the scrubber.</span>
    </div>
    <div class="placeholder" hidden></div>
    <div id="trajectory" class="plot"></div>`;

  needs = "trace";

  python(trace, ctx) {
    const positions = (ctx.selected.length ? ctx.selected : [trace.nPrompt - 1])
      .slice(0, MAX_POSITIONS);
    return `${retrace(trace)}\n` +
      "from layerscope.engine.analyses.pca import pca_trajectories\n" +
      `path = pca_trajectories(model.lens_model, trace.capture.resid, positions=[${positions}])`;
  }

  mount(root) {
    super.mount(root);
    this.plot = this.$("#trajectory");
    this.frame = null;
    this.pending = 0;
  }

  onTrace(trace, ctx) { this.onSelect(ctx.selected, ctx); }

  onSelect(positions, ctx) {
    const trace = ctx.trace;
    if (!trace.complete) return this.note("The trajectory appears once the trace has finished.");
    this.load(ctx, { type: "pca", trace_id: trace.traceId,
      positions: positions.slice(0, MAX_POSITIONS) },
    "Projecting residual vectors…", (f) => this.#draw(f, trace.ids, ctx));
  }

  /** Move the current-layer markers (one restyle per animation frame at most). */
  onLayer(layer) {
    this.layer = layer;
    if (!this.frame || this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      if (!this.visible) return;
      const c = this.#markers(this.layer);
      restyle(this.plot, { x: [c.x], y: [c.y], text: [c.text] }, [this.frame.positions.length]);
    });
  }

  #draw(f, ids, ctx) {
    this.frame = f;
    this.layer = ctx.layer;
    const data = f.positions.map((pos, j) => {
      const name = `${pos}:${plotLabel(ctx.text(ids[pos]), 12)}`;
      const color = COLORS[j % COLORS.length];
      return {
        type: "scatter", mode: "lines+markers", name,
        x: f.coords.map((c) => c[j][0]), y: f.coords.map((c) => c[j][1]),
        line: { color, width: 1.5 }, marker: { size: 5, color, opacity: 0.55 },
        hovertemplate: `${name} · layer %{pointNumber}<extra></extra>`,
      };
    });
    data.push(this.#markers(ctx.layer));
    const [a, b] = f.explained.map((v) => (v * 100).toFixed(0));
    draw(this.plot, data, layout({
      height: 420, plot_bgcolor: "#f7f8fa", legend: { orientation: "h", y: 1.08 },
      xaxis: { title: { text: `PC1 (${a}% of variance)` }, zeroline: false },
      yaxis: { title: { text: `PC2 (${b}%)` }, zeroline: false },
    }));
  }

  #markers(layer) {
    const f = this.frame;
    const l = Math.min(layer, f.coords.length - 1);
    return {
      type: "scatter", mode: "markers+text", name: `layer ${l}`, showlegend: false,
      x: f.coords[l].map((c) => c[0]), y: f.coords[l].map((c) => c[1]),
      text: f.positions.map(() => `h${l}`), textposition: "top center",
      marker: { size: 13, color: f.positions.map((_, j) => COLORS[j % COLORS.length]),
        line: { color: "#141a2a", width: 2 } },
      hoverinfo: "skip",
    };
  }
}

export default new TrajectoryView();
