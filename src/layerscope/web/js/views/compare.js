// Prompt comparison: two prompts traced side by side. Their lens strips follow the scrubber's
// layer; the cosine similarity of their residual streams per layer (at the last tokens and at a
// pair of tokens picked by clicking) marks where they diverge; one attention head for both.
// The two traces live in this view (the frame carries their lens tops; the server keeps them by
// id for the attention requests), not in the page's store: the trace on screen stays as it was.

import { pct, plotLabel, tokenHTML, tokenLabel } from "../core/format.js";
import { draw, layout, positionLabels, relayout } from "../core/plot.js";
import { View } from "../core/view.js";

const BLUES = [[0, "#f7fbff"], [0.3, "#9ecae1"], [0.7, "#3182bd"], [1, "#08306b"]];
const SIDES = ["a", "b"];

class CompareView extends View {
  id = "compare";
  label = "Compare prompts";
  group = "experiments";
  term = "prompt-comparison";
  description = "Two prompts side by side: what each layer predicts for both, where their hidden " +
    "states stop being alike, and where one attention head looks in each.";
  markup = `
    <form class="patch-form cmp-form">
      <label data-term="token">Prompt A <input id="cmp-a" type="text" value="The capital of France is"></label>
      <label data-term="token">Prompt B <input id="cmp-b" type="text" value="The capital of Italy is"></label>
      <button type="submit" class="primary" id="cmp-run"
        data-term="prompt-comparison">Compare</button>
    </form>
    <div class="placeholder" hidden></div>
    <div id="cmp-out" hidden>
      <p id="cmp-summary"></p>
      <div class="cmp-strips">
        <div class="cmp-row"><span class="cmp-name">A</span><div class="cmp-strip" id="cmp-strip-a"
          data-side="a"></div></div>
        <div class="cmp-row"><span class="cmp-name">B</span><div class="cmp-strip" id="cmp-strip-b"
          data-side="b"></div></div>
      </div>
      <p class="muted small">Each token shows what <span data-term="logit-lens">layer
        <b id="cmp-layer">0</b></span> predicts next (it follows the scrubber; grey = already
        that prompt's final answer, red = not yet). Click a token in each prompt to compare that
        pair below. <b id="cmp-status"></b></p>
      <h4 class="cmp-h"><span data-term="cosine-similarity">Cosine similarity</span> of the two
        <span data-term="residual-stream">residual streams</span>, layer by layer</h4>
      <div id="cmp-cos" class="plot"></div>
      <div class="view-bar">
        <h4 class="cmp-h" data-term="attention-head">Attention of one head in both prompts</h4>
        <label data-term="block">Block <input type="number" min="0" value="0" class="num"
          id="cmp-block"></label>
        <label data-term="attention-head">Head <input type="number" min="0" value="0" class="num"
          id="cmp-head"></label>
      </div>
      <div class="cmp-attn">
        <div id="cmp-attn-a" class="plot"></div>
        <div id="cmp-attn-b" class="plot"></div>
      </div>
    </div>`;

  needs = "model";

  python() {
    const pos = this.frame ? `, positions=(${this.frame.position_a}, ${this.frame.position_b})`
      : "";
    return "import layerscope\nmodel = layerscope.load()\n" +
      `cmp = model.compare(${JSON.stringify(this.$("#cmp-a").value)},\n` +
      `                    ${JSON.stringify(this.$("#cmp-b").value)}${pos})\n` +
      "cmp.cos_last, cmp.cos_pair, cmp.diverge  # per layer; layers where they drift apart";
  }

  mount(root, ctx) {
    super.mount(root);
    this.ctx = ctx;
    this.frame = null;
    this.pick = { a: null, b: null };
    this.onSubmit("Comparing…", ctx, () => this.#compare(ctx, null));
    for (const side of SIDES) {
      this.$(`#cmp-strip-${side}`).addEventListener("click", (e) => {
        const chip = e.target.closest(".cmp-tok");
        if (chip) this.#choose(side, +chip.dataset.pos);
      });
    }
    for (const id of ["#cmp-block", "#cmp-head"]) {
      this.$(id).addEventListener("change", () => this.#loadAttention());
    }
  }

  onTrace(trace, ctx) {
    const info = ctx.client.hello?.model;
    if (info) {
      this.$("#cmp-block").max = info.n_blocks - 1;
      this.$("#cmp-head").max = info.n_heads - 1;
    }
    if (this.frame) this.onLayer(ctx.layer);
  }

  onLayer(layer) {
    const f = this.frame;
    if (!f) return;
    const l = Math.min(layer, f.top_a.length - 1);
    this.$("#cmp-layer").textContent = String(l);
    for (const side of SIDES) this.#paintStrip(side, l);
    const el = this.$("#cmp-cos");
    if (el._fullLayout) relayout(el, { shapes: this.#shapes(l) });
  }

  async #compare(ctx, positions) {
    const msg = { type: "compare", prompt_a: this.$("#cmp-a").value,
      prompt_b: this.$("#cmp-b").value };
    if (positions) Object.assign(msg, { position_a: positions.a, position_b: positions.b });
    const fresh = this.ticket();
    const f = await ctx.client.ask(msg);
    if (!fresh()) return;
    this.prompts = [msg.prompt_a, msg.prompt_b];
    const again = positions && this.frame;
    this.frame = f;
    this.pick = { a: f.position_a, b: f.position_b };
    if (again) { // the same prompts, another pair: only the cosines change
      this.#drawCosines(f);
      this.#summary(f);
    } else {
      this.#draw(f, ctx);
    }
  }

  /** A token of prompt `side` was clicked: compare it with the other prompt's chosen token. */
  #choose(side, pos) {
    if (!this.frame || this.busy) return;
    this.pick[side] = pos;
    for (const s of SIDES) this.#markPick(s);
    [this.$("#cmp-a").value, this.$("#cmp-b").value] = this.prompts; // the prompts on screen
    this.busy = true;
    const status = this.$("#cmp-status");
    status.textContent = "Comparing the chosen tokens…";
    this.#compare(this.ctx, { ...this.pick })
      .catch((err) => this.ctx.error(err))
      .finally(() => { this.busy = false; status.textContent = ""; });
  }

  #draw(f, ctx) {
    this.$("#cmp-out").hidden = false;
    for (const side of SIDES) this.#buildStrip(side, ctx.text);
    this.onLayer(ctx.layer);
    this.#drawCosines(f);
    this.#summary(f);
    this.#loadAttention();
  }

  #summary(f) {
    const text = this.ctx.text;
    const tok = (side, t) => `<code>${tokenHTML(text(f[`ids_${side}`][t]))}</code>`;
    const at = (layers) => (layers.length ? `layer ${layers[0]}` : "no layer");
    const L = f.top_a.length - 1;
    const answer = (side) => {
      const t = f[`ids_${side}`].length - 1;
      return `<code>${tokenHTML(text(f[`top_${side}`][L][t]))}</code> ` +
        `${pct(f[`prob_${side}`][L][t])}`;
    };
    this.$("#cmp-summary").innerHTML = `Final answers: A ${answer("a")}, B ${answer("b")}. ` +
      `The last tokens' residual streams first drop below cosine ${f.threshold} at ` +
      `<b>${at(f.diverge)}</b>; the chosen pair, ${tok("a", f.position_a)} (A, position ` +
      `${f.position_a}) and ${tok("b", f.position_b)} (B, position ${f.position_b}), at ` +
      `<b>${at(f.diverge_pair)}</b>.`;
  }

  #buildStrip(side, text) {
    const f = this.frame;
    const ids = f[`ids_${side}`];
    this.$(`#cmp-strip-${side}`).innerHTML = ids.map((id, t) =>
      `<span class="cmp-tok" data-pos="${t}" title="position ${t}">` +
      `<span class="in">${tokenHTML(text(id))}</span><span class="out none">…</span></span>`)
      .join("");
    this.#markPick(side);
  }

  #paintStrip(side, l) {
    const f = this.frame, text = this.ctx.text;
    const top = f[`top_${side}`], prob = f[`prob_${side}`], L = top.length - 1;
    const chips = this.$(`#cmp-strip-${side}`).children;
    for (let t = 0; t < chips.length; t++) {
      const id = top[l][t], same = id === top[L][t];
      const out = chips[t].children[1];
      out.innerHTML = tokenHTML(text(id));
      out.className = same ? "out same" : "out changed";
      chips[t].title = `position ${t} · layer ${l} predicts ${tokenLabel(text(id), 20)} ` +
        `(${pct(prob[l][t])}); final ${tokenLabel(text(top[L][t]), 20)}`;
    }
  }

  #markPick(side) {
    const chips = this.$(`#cmp-strip-${side}`).children;
    for (let t = 0; t < chips.length; t++) chips[t].classList.toggle("sel", t === this.pick[side]);
  }

  #shapes(l) {
    const f = this.frame;
    const marks = f.diverge.map((x) => ({ type: "rect", xref: "x", yref: "paper", x0: x - 0.5,
      x1: x + 0.5, y0: 0, y1: 1, fillcolor: "rgba(214,50,46,0.10)", line: { width: 0 } }));
    const threshold = { type: "line", xref: "paper", yref: "y", x0: 0, x1: 1, y0: f.threshold,
      y1: f.threshold, line: { color: "#d6322e", width: 1, dash: "dash" } };
    return [...marks, threshold, { type: "line", xref: "x", yref: "paper", x0: l, x1: l, y0: 0,
      y1: 1, line: { color: "#1b2130", width: 1.5, dash: "dot" } }];
  }

  #drawCosines(f) {
    const text = this.ctx.text;
    const layers = f.cos_last.map((_, l) => l);
    const pa = plotLabel(text(f.ids_a[f.position_a]), 12);
    const pb = plotLabel(text(f.ids_b[f.position_b]), 12);
    const line = (y, name, color, dash) => ({ type: "scatter", mode: "lines+markers", x: layers,
      y, name, line: { color, width: 2, dash }, marker: { size: 5 },
      hovertemplate: `${name}<br>layer %{x}: cosine %{y:.3f}<extra></extra>` });
    const data = [
      line(f.cos_last, "last tokens", "#4338ca"),
      line(f.cos_pair, `pair ${f.position_a}:${pa} / ${f.position_b}:${pb}`, "#e6a817", "dot"),
      { type: "scatter", mode: "markers", x: f.diverge, y: f.diverge.map((l) => f.cos_last[l]),
        name: `diverged (< ${f.threshold})`, marker: { color: "#d6322e", size: 9,
          symbol: "x" }, hovertemplate: "layer %{x}: below the threshold<extra></extra>" },
    ];
    // raw residual cosines run high (a large shared component): zoom to the range they use
    const lo = Math.min(f.threshold, ...f.cos_last, ...f.cos_pair);
    draw(this.$("#cmp-cos"), data, layout({
      height: 300, margin: { l: 54, r: 10, t: 34, b: 44 },
      xaxis: { title: { text: "layer" }, range: [-0.5, layers.length - 0.5], zeroline: false },
      yaxis: { title: { text: "cosine" }, range: [Math.max(-1.02, lo - 0.05), 1.01] },
      legend: { orientation: "h", y: 1.0, yanchor: "bottom", x: 0 },
      shapes: this.#shapes(this.ctx.layer),
    }));
  }

  #loadAttention() {
    const f = this.frame;
    if (!f) return;
    const info = this.ctx.client.hello?.model ?? { n_blocks: 1e9, n_heads: 1e9 };
    const clamp = (id, hi) => {
      const el = this.$(id);
      const v = Math.max(0, Math.min(hi, Number.isFinite(el.valueAsNumber) ? el.valueAsNumber | 0
        : 0));
      el.value = String(v);
      return v;
    };
    const block = clamp("#cmp-block", info.n_blocks - 1), head = clamp("#cmp-head", info.n_heads - 1);
    const fresh = this.ticket();
    for (const side of SIDES) {
      this.ctx.query({ type: "attention_pattern", trace_id: f[`trace_${side}`], block, head })
        .then((p) => fresh() && this.#drawAttention(side, p), (err) => fresh() &&
          this.ctx.error(err));
    }
  }

  #drawAttention(side, p) {
    const ids = this.frame[`ids_${side}`];
    const labels = positionLabels(ids.slice(p.start, p.end), this.ctx.text);
    const hover = p.pattern.map((row, q) => row.map((v, k) =>
      `query ${labels[q]}<br>key ${labels[k]}<br>attention ${(v * 100).toFixed(1)}%`));
    const n = labels.length;
    draw(this.$(`#cmp-attn-${side}`), [{
      type: "heatmap", z: p.pattern, x: labels, y: labels, hovertext: hover, hoverinfo: "text",
      colorscale: BLUES, zmin: 0, zmax: 1, showscale: side === "b",
      colorbar: { thickness: 10, title: { text: "attention", side: "right" } },
    }], layout({
      height: Math.min(520, Math.max(300, n * 16 + 150)), margin: { l: 80, t: 30, b: 80, r: 10 },
      title: { text: `${side.toUpperCase()} · block ${p.block} · head ${p.head}`,
        font: { size: 13 }, x: 0, xanchor: "left" },
      xaxis: { type: "category", tickangle: -50, automargin: true, tickfont: { size: 9 } },
      yaxis: { type: "category", autorange: "reversed", automargin: true, tickfont: { size: 9 } },
    }));
  }
}

export default new CompareView();
