// Data flow: one token's path through the model, sub-layer by sub-layer, with the real numbers at
// every stage (the stream's norm, each addition's norm, its cosine with the stream, its direct push
// on the answer's logit, and the lens read after it). Clicking a stage opens it in Components.

import { escapeHTML, pct, plotText, tokenLabel } from "../core/format.js";
import { draw, layout } from "../core/plot.js";
import { retrace } from "../core/python.js";
import { View } from "../core/view.js";
import components from "./components.js";

const ATTN = "#2b8cbe", MLP = "#e6a817", UP = "#2b59c3", DOWN = "#c43c39";
const num = (v, d = 2) => (v == null ? "–" : v.toFixed(d));
const signed = (v, d = 2) => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(d)}`;

class DataFlowView extends View {
  id = "dataflow";
  label = "Data flow";
  group = "inside";
  term = "data-flow";
  description = "The selected token's trip through the model: what each attention and MLP " +
    "sub-layer adds to its hidden state, and what the model would answer after each one.";
  markup = `
    <div class="view-bar">
      <span class="muted"><span data-term="embedding">Embedding</span> → every block's
        <span data-term="attention">attention</span>, then its <span data-term="mlp">MLP</span> →
        <span data-term="final-norm">final norm</span> → <span data-term="unembedding">unembedding</span>.
        <span data-term="residual-stream">‖Δ‖</span>: size of what a sub-layer adds;
        <span data-term="cosine-similarity">cos</span>: how it lines up with the stream;
        <span data-term="direct-logit-attribution">push</span>: its direct effect on the answer's
        <span data-term="logit">logit</span>. Click a stage to open that component.</span>
    </div>
    <div class="placeholder" hidden></div>
    <div id="flow-plot" class="plot"></div>
    <div id="flow-path" class="flow"></div>`;

  needs = "trace";

  python(trace, ctx) {
    const pos = ctx.selected[0] ?? trace.nPrompt - 1;
    return `${retrace(trace)}\n` +
      "from layerscope.engine.analyses.dataflow import pipeline\n" +
      `flow = pipeline(model.lens_model, trace.capture, position=${pos})  # one stage per sub-layer`;
  }

  mount(root, ctx) {
    super.mount(root);
    this.frame = null;
    const open = (e) => {
      const row = e.target.closest(".flow-stage[data-block]");
      if (!row) return;
      components.focus(row.dataset.kind, +row.dataset.block);
      ctx.openView(components.id);
    };
    this.$("#flow-path").addEventListener("click", open);
    this.$("#flow-path").addEventListener("keydown", (e) => { if (e.key === "Enter") open(e); });
  }

  onTrace(trace, ctx) { this.onSelect(ctx.selected, ctx); }

  onSelect(positions, ctx) {
    const trace = ctx.trace;
    if (!trace.complete) return this.note("The data flow appears once the trace has finished.");
    const pos = positions[0] ?? trace.nPrompt - 1;
    this.load(ctx, { type: "pipeline", trace_id: trace.traceId, position: pos },
      "Following the token through every sub-layer…", (f) => {
        this.frame = f;
        this.#draw(f, ctx);
        this.onLayer(ctx.layer);
      });
  }

  onLayer(layer) {
    // lens layer l is the stream after stage 2l (embed for l = 0, else block l-1's MLP)
    for (const row of this.root.querySelectorAll(".flow-stage")) {
      row.classList.toggle("at", +row.dataset.stop === 2 * layer);
    }
  }

  #draw(f, ctx) {
    const text = ctx.text, L = (f.stages.length - 2) / 2;
    const target = tokenLabel(text(f.target_id), 16);
    const where = `${f.position} (${tokenLabel(text(ctx.trace.ids[f.position]))})`;
    // the figure: the answer's probability through the lens after every stop, each sub-layer's push
    const kinds = f.dla.map((_, i) => (i % 2 ? "mlp" : "attn"));
    draw(this.$("#flow-plot"), [
      { type: "scatter", mode: "lines+markers", x: f.stops, y: f.lens_target_prob, name:
        `p(${target}) read by the lens`, line: { color: "#4338ca" }, marker: { size: 4 },
        hovertemplate: "%{x}: %{y:.1%}<extra></extra>" },
      { type: "bar", x: f.stops.slice(1), y: f.dla, name: "sub-layer push (logits)", yaxis: "y2",
        marker: { color: kinds.map((k) => (k === "attn" ? ATTN : MLP)) },
        hovertemplate: "%{x}: %{y:+.3f} logits<extra></extra>" },
    ], layout({
      height: 330, margin: { t: 34, b: 64, r: 50 },
      title: { text: `<b>${plotText(target)}</b> at position ${plotText(where)}: lens ` +
        "probability and each sub-layer's push", font: { size: 13 }, x: 0, xanchor: "left" },
      xaxis: { type: "category", tickangle: -50, tickfont: { size: 9 }, anchor: "y2",
        nticks: Math.min(f.stops.length, 32) },
      yaxis: { title: { text: "probability" }, range: [0, 1], domain: [0.52, 1] },
      yaxis2: { title: { text: "push" }, domain: [0, 0.44], zeroline: true },
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 11 } },
      showlegend: false, bargap: 0.15,
    }));
    // the path
    const absMax = Math.max(1e-9, ...f.dla.map(Math.abs), Math.abs(f.embed_dla));
    const push = (v) => {
      const w = Math.round((Math.abs(v) / absMax) * 46);
      return `<span class="push"><i style="width:${w}px;background:${v >= 0 ? UP : DOWN}"></i>` +
        `${signed(v)}</span>`;
    };
    const lens = (s) => {
      const id = f.lens_top_ids[s][0];
      return `<span class="lens"><code>${escapeHTML(tokenLabel(text(id), 14))}</code> ` +
        `${pct(f.lens_top_probs[s][0])}</span><span class="tp">${pct(f.lens_target_prob[s])}</span>`;
    };
    const rows = [`<div class="flow-stage head"><span>stage</span><span>‖Δ‖</span>` +
      `<span>cos</span><span>push</span><span>‖h‖</span><span>lens reads</span>` +
      `<span>p(${escapeHTML(target)})</span></div>`];
    rows.push(`<div class="flow-stage embed" data-stop="0"><span class="nm">embed</span>` +
      `<span class="muted">token</span><span></span>${push(f.embed_dla)}` +
      `<span>${num(f.resid_norm[0], 1)}</span>${lens(0)}</div>`);
    for (let i = 0; i < 2 * L; i++) {
      const kind = i % 2 ? "mlp" : "attn", block = i >> 1;
      rows.push(`<div class="flow-stage ${kind}" data-kind="${kind}" data-block="${block}" ` +
        `data-stop="${i + 1}" role="button" tabindex="0" title="Open block ${block}'s ` +
        `${kind === "attn" ? "attention" : "MLP"} in Components"><span class="nm">` +
        `${escapeHTML(f.stages[i + 1])}</span><span>${num(f.add_norm[i], 1)}</span>` +
        `<span>${num(f.add_cos[i])}</span>${push(f.dla[i])}` +
        `<span>${num(f.resid_norm[i + 1], 1)}</span>${lens(i + 1)}</div>`);
    }
    const last = 2 * L;
    const final = f.lens_top_ids[last].map((id, i) =>
      `<code>${escapeHTML(tokenLabel(text(id), 12))}</code> ${pct(f.lens_top_probs[last][i])}`);
    rows.push(`<div class="flow-stage final"><span class="nm">final norm</span>` +
      `<span class="wide">→ unembedding: ${final.join(" · ")} &nbsp; <span class="muted">logit ` +
      `of ${escapeHTML(target)} = ${num(f.target_logit)} (embed ${signed(f.embed_dla)} + ` +
      `sub-layers ${signed(f.dla.reduce((a, b) => a + b, 0))} + bias ` +
      `${signed(f.bias_dla)})</span></span></div>`);
    this.$("#flow-path").innerHTML = rows.join("");
  }
}

export default new DataFlowView();
