// Components: one block's attention layer (each head's pattern for the selected token, its output
// norm, its direct push on the answer, its role scores) or its MLP (the neurons that fire most for
// the selected token, what each one promotes and suppresses, and its push on the answer).

import { escapeHTML, plotText, tokenLabel } from "../core/format.js";
import { draw, layout, positionLabels } from "../core/plot.js";
import { retrace } from "../core/python.js";
import { View } from "../core/view.js";

const UP = "#2b59c3", DOWN = "#c43c39";
const ROLES = [["previous_token", "prev"], ["duplicate_token", "dup"], ["induction", "ind"],
  ["first_token", "BOS"], ["entropy", "entropy"]];
const signed = (v, d = 3) => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(d)}`;

class ComponentsView extends View {
  id = "components";
  label = "Components";
  group = "inside";
  term = "block";
  description = "Inside one block: where each attention head looks from the selected token and " +
    "what it adds, or which MLP neurons fire and which words they push up or down.";
  markup = `
    <div class="view-bar comp-bar">
      <label data-term="mlp">Part of the block <select id="comp-kind"><option value="attn">Attention</option>
        <option value="mlp">MLP</option></select></label>
      <label data-term="block">Block <select id="comp-block"></select></label>
      <span class="muted">For the selected token. "<span data-term="direct-logit-attribution">push</span>" is the direct effect on the logit of
        the model's final answer there.</span>
    </div>
    <div class="placeholder" hidden></div>
    <div id="comp-attn" class="comp-panel">
      <div id="comp-pattern" class="plot"></div>
      <div id="comp-heads" class="plot"></div>
      <div id="comp-roles" class="comp-table"></div>
    </div>
    <div id="comp-mlp" class="comp-panel" hidden>
      <div id="comp-neuron-plot" class="plot"></div>
      <div id="comp-neurons" class="comp-table"></div>
    </div>`;

  needs = "trace";
  kind = "attn";
  block = 0;

  python(trace, ctx) {
    const pos = ctx.selected[0] ?? trace.nPrompt - 1;
    const call = this.kind === "attn" ? "attention_layer" : "top_neurons";
    return `${retrace(trace)}\n` +
      `from layerscope.engine.analyses.components import ${call}\n` +
      `part = ${call}(model.lens_model, trace.capture, block=${this.block}, position=${pos})`;
  }

  mount(root, ctx) {
    super.mount(root);
    this.ctx = ctx;
    this.$("#comp-kind").addEventListener("change", (e) => this.focus(e.target.value, this.block));
    this.$("#comp-block").addEventListener("change", (e) => this.focus(this.kind, +e.target.value));
  }

  /** Show block `block`'s `kind` ("attn" or "mlp") — now if open, else when it next opens. */
  focus(kind, block) {
    this.kind = kind === "mlp" ? "mlp" : "attn";
    this.block = block;
    this.$("#comp-kind").value = this.kind;
    this.$("#comp-block").value = String(block);
    if (this.visible && this.ctx.trace) this.onSelect(this.ctx.selected, this.ctx);
  }

  onTrace(trace, ctx) { this.onSelect(ctx.selected, ctx); }

  onSelect(positions, ctx) {
    const trace = ctx.trace;
    const n = ctx.client.hello?.model?.n_blocks ?? 0;
    const sel = this.$("#comp-block");
    if (sel.options.length !== n) {
      sel.innerHTML = [...Array(n).keys()].map((b) => `<option value="${b}">${b}</option>`).join("");
    }
    this.block = Math.min(this.block, Math.max(0, n - 1));
    sel.value = String(this.block);
    this.$("#comp-attn").hidden = this.kind !== "attn";
    this.$("#comp-mlp").hidden = this.kind !== "mlp";
    if (!trace.complete) return this.note("The components appear once the trace has finished.");
    const pos = positions[0] ?? trace.nPrompt - 1;
    const msg = { type: this.kind === "attn" ? "attention_layer" : "mlp_neurons",
      trace_id: trace.traceId, block: this.block, position: pos };
    this.load(ctx, msg, `Reading block ${this.block}…`,
      (f) => (f.type === "attention_layer" ? this.#attention(f, ctx) : this.#mlp(f, ctx)));
  }

  #title(f, ctx, what) {
    const tok = tokenLabel(ctx.text(ctx.trace.ids[f.position]));
    return { text: `Block ${f.block} ${what} at position ${f.position} (${plotText(tok)}); ` +
      `answer <b>${plotText(tokenLabel(ctx.text(f.target_id), 16))}</b>`,
    font: { size: 13 }, x: 0, xanchor: "left" };
  }

  #attention(f, ctx) {
    const H = f.pattern.length, T = f.position + 1; // a token attends to itself and earlier ones
    const heads = [...Array(H).keys()].map((h) => `H${h}`);
    const keys = positionLabels(ctx.trace.ids.slice(0, T), ctx.text);
    draw(this.$("#comp-pattern"), [{
      type: "heatmap", z: f.pattern.map((row) => row.slice(0, T)), x: keys, y: heads, zmin: 0,
      zmax: 1, xgap: 1, ygap: 1, colorscale: [[0, "#f7fbff"], [0.5, "#6baed6"], [1, "#08306b"]], colorbar: { thickness: 12, title: { text: "attention", side: "right" } },
      hovertemplate: "%{y} → %{x}: %{z:.1%}<extra></extra>",
    }], layout({
      height: Math.max(220, H * 18 + 120), margin: { t: 34, b: 80, l: 44 },
      title: this.#title(f, ctx, "attention"),
      xaxis: { type: "category", tickangle: T > 10 ? -50 : 0, tickfont: { size: 10 },
        automargin: true },
      yaxis: { type: "category", autorange: "reversed", title: { text: "head" } },
    }));
    draw(this.$("#comp-heads"), [
      { type: "bar", x: heads, y: f.out_norm, name: "output norm", marker: { color: "#8f9cff" },
        hovertemplate: "%{x}: ‖out‖ %{y:.2f}<extra></extra>" },
      { type: "bar", x: heads, y: f.dla, name: "push", yaxis: "y2",
        marker: { color: f.dla.map((v) => (v >= 0 ? UP : DOWN)) },
        hovertemplate: "%{x}: %{y:+.3f} logits<extra></extra>" },
    ], layout({
      height: 300, margin: { t: 10, b: 40 }, showlegend: false,
      xaxis: { type: "category" }, xaxis2: { type: "category", anchor: "y2", matches: "x" },
      yaxis: { title: { text: "‖output‖" }, domain: [0.56, 1] },
      yaxis2: { title: { text: "push" }, domain: [0, 0.44], zeroline: true },
    }));
    const head = `<tr><th>head</th><th>‖out‖</th><th>push</th>` +
      ROLES.map(([, short]) => `<th>${short}</th>`).join("") + "</tr>";
    const rows = heads.map((name, h) => `<tr><td>${name}</td><td>${f.out_norm[h].toFixed(2)}` +
      `</td><td class="${f.dla[h] >= 0 ? "up" : "down"}">${signed(f.dla[h])}</td>` +
      ROLES.map(([k]) => `<td>${f.roles[k]?.[h]?.toFixed(2) ?? "–"}</td>`).join("") + "</tr>");
    this.$("#comp-roles").innerHTML = `<table><thead>${head}</thead><tbody>${rows.join("")}` +
      "</tbody></table><p class=\"muted small\">Role scores on this prompt: share of the head's " +
      "attention on the previous token, an earlier copy of the token, the token after an earlier " +
      "copy (induction), the first token; entropy in nats.</p>";
  }

  #mlp(f, ctx) {
    const label = (id) => escapeHTML(tokenLabel(ctx.text(id), 12));
    const names = f.neurons.map((n) => `n${n}`);
    draw(this.$("#comp-neuron-plot"), [{
      type: "bar", x: names, y: f.dla, marker: { color: f.dla.map((v) => (v >= 0 ? UP : DOWN)) },
      customdata: f.acts, hovertemplate: "%{x}: act %{customdata:.3f}, push %{y:+.3f} logits" +
        "<extra></extra>",
    }], layout({
      height: 260, margin: { t: 34, b: 44 }, title: this.#title(f, ctx, "MLP: top neurons' push"),
      xaxis: { type: "category" }, yaxis: { title: { text: "push (logits)" }, zeroline: true },
    }));
    const rows = f.neurons.map((n, i) => `<tr><td>n${n}</td><td>${f.acts[i].toFixed(3)}</td>` +
      `<td class="${f.dla[i] >= 0 ? "up" : "down"}">${signed(f.dla[i])}</td>` +
      `<td class="toks">${f.promoted[i].map((id) => `<code>${label(id)}</code>`).join(" ")}</td>` +
      `<td class="toks">${f.suppressed[i].map((id) => `<code>${label(id)}</code>`).join(" ")}` +
      "</td></tr>");
    this.$("#comp-neurons").innerHTML = "<table><thead><tr><th>neuron</th><th>activation</th>" +
      "<th>push</th><th>promotes</th><th>suppresses</th></tr></thead>" +
      `<tbody>${rows.join("")}</tbody></table>`;
  }
}

export default new ComponentsView();
