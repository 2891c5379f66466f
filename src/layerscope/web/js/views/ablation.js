// Ablation: turn off any set of heads, attention layers, MLPs or whole blocks (zero or mean) and
// see what the model says now: the answer's probability before and after (an `effect` request),
// the ablated run on the scrubber (an ordinary `trace` with an Ablate intervention, compared with
// the clean run the store keeps as its reference) and, per layer and token, how the probability
// of the clean run's next token changed.

import { escapeHTML, pct, plotLabel, tokenLabel } from "../core/format.js";
import { drawGrid, positionLabels } from "../core/plot.js";
import { View } from "../core/view.js";

const ROLES = { induction: "induction heads", previous_token: "previous-token heads",
  duplicate_token: "duplicate-token heads", first_token: "first-token heads" };
const DIFF = [[0, "#b2182b"], [0.5, "#f7f7f7"], [1, "#2166ac"]];
const KINDS = [["attn", "attn", "attention-output", "the whole attention layer"],
  ["mlps", "MLP", "mlp", "the MLP"], ["layers", "block", "block", "the whole block"]];
const key = (b, h) => `${b}.${h}`;
const signed = (x, digits = 3) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(digits)}`;
const num = (x, digits) => x.toFixed(digits).replace("-", "−");

class AblationView extends View {
  id = "ablation";
  label = "Ablation";
  group = "experiments";
  term = "ablation";
  description = "Turn off heads or layers (ablation) and see how the model's answer changes: " +
    "pick heads, attention layers, MLPs or whole blocks, then run.";
  markup = `
    <form class="abl-form">
      <div class="abl-top">
        <div class="abl-pick" id="abl-pick-text">Click heads to turn them off (<span
          data-term="attention-head">attention heads</span>, block × head), or a block's
          <b>attn</b>, <b>MLP</b> or <b>block</b> row. A block number selects all its heads.
          Suggestion: head <button type="button" class="link" id="abl-suggest"
          data-term="attention-head">23.4</button>.</div>
      </div>
      <div class="abl-grid-wrap"><div id="abl-grid" class="abl-grid" role="grid"
        aria-label="Heads, attention layers, MLPs and blocks to turn off"></div></div>
      <div class="abl-controls">
        <label data-term="head-roles">Select by role
          <select id="abl-role">${Object.entries(ROLES).map(([k, v]) =>
            `<option value="${k}">${v}</option>`).join("")}</select></label>
        <label data-term="head-roles">score ≥ <input id="abl-thr" type="number" class="num" min="0" max="1" step="0.05"
          value="0.4"></label>
        <button type="button" id="abl-role-add" data-term="head-roles">Select them</button>
        <span class="muted small" id="abl-role-note"></span>
      </div>
      <div class="abl-controls">
        <label data-term="zero-ablation">Replace with
          <select id="abl-mode">
            <option value="zero">zero (zero ablation)</option>
            <option value="mean">the mean (mean ablation)</option>
          </select></label>
        <span id="abl-mean" hidden>
          <label data-term="mean-ablation"><input type="radio" name="abl-mean" value="prompt"
            checked> over this prompt's positions</label>
          <label data-term="mean-ablation"><input type="radio" name="abl-mean" value="text"> over a reference text
            <input id="abl-ref" type="text" value="The weather today is mild and calm"></label>
        </span>
      </div>
      <div class="abl-controls">
        <label data-term="target-token">Watch the probability of
          <input id="abl-target" type="text" placeholder="(the clean answer)"
            title="One token, e.g. ' Paris' (with its leading space); empty: the clean run's top prediction"></label>
        <button type="submit" class="primary" id="abl-run" data-term="ablation">Run ablation</button>
        <button type="button" id="abl-reset" data-term="ablation" title="Clear the selection and show the clean run">
          Reset</button>
        <span class="muted small" id="abl-summary"></span>
      </div>
    </form>
    <div class="placeholder" hidden></div>
    <div id="abl-result" hidden>
      <table class="abl-effect" id="abl-effect"></table>
      <div class="abl-scrub view-bar">
        <span class="muted">On the scrubber:</span>
        <button type="button" id="abl-show-clean" aria-pressed="false"
          data-term="clean-corrupted">Clean run</button>
        <button type="button" id="abl-show-ablated" aria-pressed="true"
          data-term="ablation">Ablated run</button>
        <span class="muted small">The ablated run reads the same prompt and generates on its own.
        </span>
      </div>
      <p class="muted small abl-diff-note"><b data-term="logit-lens">Difference</b>, per layer and
        token: the ablated run's probability of the clean run's next token minus the clean run's
        (blue: higher, red: lower). Grey: after the two runs' texts part.</p>
      <div id="abl-diff" class="plot"></div>
    </div>`;

  needs = "model";
  heads = new Set(); // "b.h"
  parts = { attn: new Set(), mlps: new Set(), layers: new Set() };
  last = null; // {clean, ablated (TraceData), effect frame}

  python(trace) {
    const iv = this.#ablate();
    if (!this.#summary()) iv.heads = [[23, 4]]; // nothing chosen yet: the suggested head
    const args = [];
    if (iv.heads.length) args.push(`heads=${JSON.stringify(iv.heads).replace(/\[(\d+),(\d+)\]/g, "($1, $2)")}`);
    for (const k of ["attn", "mlps", "layers"]) if (iv[k].length) args.push(`${k}=[${iv[k].join(", ")}]`);
    args.push(`mode="${iv.mode}"`);
    const prompt = trace?.request?.prompt ?? "The capital of France is";
    return "import layerscope\nfrom layerscope import Ablate\nmodel = layerscope.load()\n" +
      `ablate = Ablate(${args.join(", ")})\n` +
      `effect = model.effect(${JSON.stringify(prompt)}, [ablate])\n` +
      "print(effect.p_clean, effect.p_new)  # the answer's probability before and after\n" +
      `ablated = model.trace(${JSON.stringify(prompt)}, interventions=[ablate])`;
  }

  mount(root, ctx) {
    super.mount(root);
    this.ctx = ctx;
    const grid = this.$("#abl-grid");
    grid.addEventListener("click", (e) => {
      const b = e.target.closest("button");
      if (b) this.#toggle(b.dataset);
    });
    grid.addEventListener("keydown", (e) => this.#gridKey(e));
    this.$("#abl-suggest").addEventListener("click", () => this.#toggle({ b: "23", h: "4" }));
    this.$("#abl-mode").addEventListener("change", () => {
      this.$("#abl-mean").hidden = this.$("#abl-mode").value !== "mean";
    });
    this.$("#abl-role-add").addEventListener("click", () => this.#selectRole(ctx));
    this.$("#abl-reset").addEventListener("click", () => this.#reset(ctx));
    this.$("#abl-show-clean").addEventListener("click", () => this.#show(ctx, "clean"));
    this.$("#abl-show-ablated").addEventListener("click", () => this.#show(ctx, "ablated"));
    this.onSubmit("Running…", ctx, () => this.#run(ctx));
  }

  onTrace(trace, ctx) {
    this.ctx = ctx;
    const m = ctx.client.hello?.model;
    if (m && (m.n_blocks !== this.nBlocks || m.n_heads !== this.nHeads)) {
      this.nBlocks = m.n_blocks;
      this.nHeads = m.n_heads;
      this.#buildGrid();
    }
    const l = this.last;
    if (l && trace.complete && trace !== l.ablated && trace !== l.clean) this.last = null;
    this.#pressed();
  }

  // ------------------------------------------------------------------ selection
  #buildGrid() {
    const { nBlocks: B, nHeads: H } = this;
    const cell = (attrs, label, title, cls, term) => `<button type="button" class="${cls}" ${attrs}` +
      ` data-term="${term}"` +
      ` tabindex="-1" title="${title}" aria-label="${title}">${label}</button>`;
    const rows = [];
    rows.push('<div class="abl-row abl-cols"><span class="abl-lbl">block</span>' +
      [...Array(B).keys()].map((b) => cell(`data-b="${b}" data-all="1"`, b,
        `block ${b}: all its heads`, "abl-col", "block")).join("") + "</div>");
    for (let h = 0; h < H; h++) {
      rows.push(`<div class="abl-row"><span class="abl-lbl">head ${h}</span>` +
        [...Array(B).keys()].map((b) => cell(`data-b="${b}" data-h="${h}"`, "",
          `head ${b}.${h} (block ${b}, head ${h})`, "abl-cell", "attention-head")).join("") +
        "</div>");
    }
    for (const [kind, short, term, words] of KINDS) {
      rows.push(`<div class="abl-row abl-part"><span class="abl-lbl" data-term="${term}">` +
        `${short}</span>` + [...Array(B).keys()].map((b) => cell(`data-b="${b}" data-k="${kind}"`,
          "", `${words} of block ${b}`, "abl-cell", term)).join("") + "</div>");
    }
    const grid = this.$("#abl-grid");
    grid.innerHTML = rows.join("");
    grid.querySelector("button").tabIndex = 0;
  }

  #toggle({ b, h, k, all }) {
    b = +b;
    if (b >= this.nBlocks) return;
    if (all) {
      const keys = [...Array(this.nHeads).keys()].map((x) => key(b, x));
      const on = !keys.every((x) => this.heads.has(x));
      for (const x of keys) on ? this.heads.add(x) : this.heads.delete(x);
    } else if (k) {
      const s = this.parts[k];
      s.has(b) ? s.delete(b) : s.add(b);
    } else {
      const x = key(b, +h);
      this.heads.has(x) ? this.heads.delete(x) : this.heads.add(x);
    }
    this.#pressed();
  }

  /** Paint the grid's pressed cells and the one-line summary of the selection. */
  #pressed() {
    for (const el of this.root.querySelectorAll("#abl-grid .abl-cell")) {
      const { b, h, k } = el.dataset;
      const on = k ? this.parts[k].has(+b) : this.heads.has(key(b, h));
      el.classList.toggle("on", on);
      el.setAttribute("aria-pressed", on);
    }
    this.$("#abl-summary").textContent = this.#summary() || "Nothing selected yet.";
  }

  #summary() {
    const n = (s, one, many) => (s.size ? `${s.size} ${s.size === 1 ? one : many}` : "");
    const parts = [n(this.heads, "head", "heads"), n(this.parts.attn, "attention layer",
      "attention layers"), n(this.parts.mlps, "MLP", "MLPs"), n(this.parts.layers, "block",
      "blocks")].filter(Boolean);
    return parts.length ? `Turning off ${parts.join(", ")}.` : "";
  }

  #gridKey(e) {
    const btns = [...this.$("#abl-grid").querySelectorAll("button")];
    const i = btns.indexOf(e.target);
    if (i < 0) return;
    const B = this.nBlocks, step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: B, ArrowUp: -B }[e.key];
    if (step === undefined) return;
    e.preventDefault();
    const j = Math.max(0, Math.min(btns.length - 1, i + step));
    btns[i].tabIndex = -1;
    btns[j].tabIndex = 0;
    btns[j].focus();
  }

  async #selectRole(ctx) {
    const ref = ctx.store.reference;
    if (!ref?.complete || ref.source) return;
    const role = this.$("#abl-role").value;
    const thr = Math.max(0, Math.min(1, +this.$("#abl-thr").value || 0));
    const note = this.$("#abl-role-note");
    note.textContent = "Scoring the heads…";
    try {
      const f = await ctx.query({ type: "head_stats", trace_id: ref.traceId });
      const picked = [];
      f.stats[role].forEach((row, b) => row.forEach((s, h) => {
        if (s >= thr) picked.push(key(b, h));
      }));
      for (const x of picked) this.heads.add(x);
      note.textContent = `${picked.length} ${ROLES[role]} score ≥ ${thr} on the clean prompt` +
        (picked.length ? `: ${picked.slice(0, 8).join(", ")}${picked.length > 8 ? " …" : ""}` : "") +
        ".";
      this.#pressed();
    } catch (err) {
      note.textContent = "";
      ctx.error(err);
    }
  }

  /** The Ablate intervention of the selection (the component form of the protocol). */
  #ablate() {
    const sorted = (s) => [...s].map(Number).sort((a, b) => a - b);
    const heads = [...this.heads].map((x) => x.split(".").map(Number))
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    return { kind: "ablate", heads, attn: sorted(this.parts.attn), mlps: sorted(this.parts.mlps),
      layers: sorted(this.parts.layers), mode: this.$("#abl-mode")?.value ?? "zero",
      reference_ids: null, positions: null };
  }

  // ------------------------------------------------------------------ running
  async #run(ctx) {
    const clean = ctx.store.reference;
    if (!clean?.complete) return;
    if (!this.#summary()) {
      ctx.error({ code: "bad_request", message: "select at least one head, layer, MLP or block " +
        "to turn off" });
      return;
    }
    const ablate = this.#ablate();
    const meanText = ablate.mode === "mean" &&
      this.root.querySelector("input[name=abl-mean]:checked").value === "text";
    const target = this.$("#abl-target").value;
    const ids = clean.ids.slice(0, clean.nPrompt);
    const eff = await ctx.client.ask({ type: "effect", ids, interventions: [ablate],
      target: target === "" ? null : target,
      reference_text: meanText ? this.$("#abl-ref").value : null });
    const base = clean.request ?? { type: "trace", ids, generate: clean.ids.length - clean.nPrompt };
    const request = { ...base, interventions: eff.interventions };
    const ablated = await ctx.run(request);
    this.last = { clean, ablated, effect: eff };
    this.#drawResult(ctx);
  }

  #drawResult(ctx) {
    const { clean, ablated, effect: f } = this.last;
    this.$("#abl-result").hidden = false;
    const tok = (id) => `<code>${escapeHTML(tokenLabel(ctx.text(id), 20))}</code>`;
    const dp = f.p_new - f.p_clean, dl = f.logp_new - f.logp_clean;
    this.$("#abl-effect").innerHTML =
      "<thead><tr><th></th><th>clean</th><th>ablated</th><th>change</th></tr></thead><tbody>" +
      `<tr><th data-term="top-prediction">top prediction</th><td>${tok(f.top_clean[0])}</td>` +
      `<td id="abl-top-new">${tok(f.top_new[0])}</td><td>${f.top_new[0] === f.top_clean[0]
        ? "same" : "changed"}</td></tr>` +
      `<tr><th data-term="probability">p(${tok(f.target_id)})</th><td>${f.p_clean.toFixed(3)}` +
      `</td><td id="abl-p-new">${f.p_new.toFixed(3)}</td><td class="${dp < 0 ? "down" : "up"}">` +
      `${signed(dp)}</td></tr>` +
      `<tr><th data-term="log-probability">log p</th><td>${num(f.logp_clean, 2)}</td>` +
      `<td>${num(f.logp_new, 2)}</td><td class="${dl < 0 ? "down" : "up"}">${signed(dl, 2)}` +
      "</td></tr></tbody>";
    this.#pressedScrub(ctx);
    this.#drawDiff(ctx, clean, ablated);
  }

  /** Per cell: p(clean run's next token) in the ablated run minus in the clean run. */
  #drawDiff(ctx, clean, ablated) {
    const T = Math.min(clean.T, ablated.T);
    let part = 0; // texts agree on positions 0..part
    while (part + 1 < T && clean.ids[part + 1] === ablated.ids[part + 1]) part++;
    const cols = Math.min(T - 1, part + 1); // position t predicts t + 1
    if (cols < 1) return;
    const z = [], hover = [];
    for (let l = 0; l < clean.nLayers; l++) {
      const zr = [], hr = [];
      for (let t = 0; t < cols; t++) {
        const want = clean.ids[t + 1];
        const pc = clean.at("next_prob", l, t);
        const pa = probOf(ablated, l, t, want);
        const d = pa === null ? null : pa - pc;
        zr.push(d);
        hr.push(`<b>layer ${l}</b> · position ${t} → ${plotLabel(ctx.text(want))}` +
          `<br>clean ${pct(pc)} · ablated ${pa === null ? `below top-${ablated.k}` : pct(pa)}` +
          (d === null ? "" : `<br>change ${signed(d)}`));
      }
      z.push(zr);
      hover.push(hr);
    }
    // symmetric colour range around 0 by the largest change (at least ±0.05)
    const top = Math.max(0.05, ...z.flat().map((d) => Math.abs(d ?? 0)));
    drawGrid(this.$("#abl-diff"), {
      z, hover, x: positionLabels(clean.ids.slice(0, cols), ctx.text, 10), rowTitle: "layer",
      colorscale: DIFF, zmin: -top, zmax: top, colorbar: { title: "Δ p(next)" }, rowHeight: 12,
    });
  }

  #pressedScrub(ctx) {
    const on = ctx.store.current === this.last?.clean ? "clean" : "ablated";
    this.$("#abl-show-clean").setAttribute("aria-pressed", on === "clean");
    this.$("#abl-show-ablated").setAttribute("aria-pressed", on === "ablated");
  }

  #show(ctx, which) {
    if (!this.last) return;
    ctx.show(this.last[which]);
    this.#pressedScrub(ctx);
  }

  #reset(ctx) {
    this.heads.clear();
    for (const s of Object.values(this.parts)) s.clear();
    this.$("#abl-role-note").textContent = "";
    this.$("#abl-result").hidden = true;
    this.last = null;
    this.#pressed();
    if (ctx.store.variant) ctx.back();
  }
}

/** Probability of token `id` at cell (l, t) of `tr`: its next_prob when `id` is the next token,
 * else from the cell's top-k (null when it is not among them). */
function probOf(tr, l, t, id) {
  if (tr.ids[t + 1] === id) return tr.at("next_prob", l, t);
  for (let i = 0; i < tr.k; i++) if (tr.top(l, t, i) === id) return tr.topP(l, t, i);
  return null;
}

export default new AblationView();
