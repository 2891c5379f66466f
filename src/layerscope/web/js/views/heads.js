// Per-head lens: blocks × heads, each head's direct contribution to the logit of the final
// prediction at the selected position.

import { plotLabel } from "../core/format.js";
import { drawGrid } from "../core/plot.js";
import { retrace } from "../core/python.js";
import { View } from "../core/view.js";

const DIVERGING = [[0, "#c43c39"], [0.5, "#f7f7f7"], [1, "#2b59c3"]];

class HeadsView extends View {
  id = "heads";
  label = "Per-head lens";
  group = "lens";
  term = "per-head-lens";
  description = "How much each attention head, on its own, pushes the model toward its final " +
    "answer at the selected token: blue pushes toward it, red pushes away.";
  markup = `
    <div class="view-bar">
      <span class="muted" data-term="direct-logit-attribution">Each head's output through W<sub>O</sub> and the final norm's scale,
        dotted with the answer's unembedding (in logits). Hover a cell for the tokens that head
        pushes up most.</span>
    </div>
    <div class="placeholder" hidden></div>
    <div id="heads" class="plot"></div>`;

  needs = "trace";

  python(trace, ctx) {
    const pos = ctx.selected[0] ?? trace.nPrompt - 1;
    return `${retrace(trace)}\n` +
      "from layerscope.engine.analyses.heads import head_logit_lens\n" +
      `heads = head_logit_lens(model.lens_model, trace.capture.resid,\n` +
      `                        trace.capture.point("head_out"), position=${pos},\n` +
      `                        target_id=int(trace.lens.top_ids[-1, ${pos}, 0]))`;
  }

  onTrace(trace, ctx) { this.onSelect(ctx.selected, ctx); }

  onSelect(positions, ctx) {
    const trace = ctx.trace;
    if (!trace.complete) return this.note("The heads appear once the trace has finished.");
    const pos = positions[0] ?? trace.nPrompt - 1;
    const where = `${pos} (${plotLabel(ctx.text(trace.ids[pos]))})`;
    const msg = { type: "heads", trace_id: trace.traceId, position: pos };
    // the grid first (k 0: contributions only, quick), then each head's top tokens for the hover
    this.load(ctx, { ...msg, k: 0 }, "Computing head contributions…", (f) => {
      this.#draw(f, ctx.text, where);
      this.load(ctx, msg, "", (g) => this.#draw(g, ctx.text, where));
    });
  }

  #draw(f, text, where) {
    const target = plotLabel(text(f.target_id), 20);
    let absMax = 0;
    for (const row of f.contrib) for (const v of row) absMax = Math.max(absMax, Math.abs(v));
    const hover = f.contrib.map((row, b) => row.map((v, h) => {
      const pushes = f.top_ids[b][h].map((id) => plotLabel(text(id), 14)).join("  ") || "…";
      return `<b>block ${b} · head ${h}</b><br>${v >= 0 ? "+" : ""}${v.toFixed(3)} logits to ` +
        `${target}<br>pushes up: ${pushes}`;
    }));
    drawGrid(this.$("#heads"), {
      z: f.contrib, hover, x: f.contrib[0].map((_, h) => `H${h}`), rowTitle: "block",
      colorscale: DIVERGING, zmin: -absMax, zmax: absMax, colorbar: { title: "logit" },
      rowHeight: 15,
      layout: { title: { text: `Heads' direct push toward <b>${target}</b> at position ${where}`,
        font: { size: 13 }, x: 0, xanchor: "left" }, margin: { t: 34, b: 40 },
        xaxis: { title: { text: "head" }, tickangle: 0 } },
    });
  }
}

export default new HeadsView();
