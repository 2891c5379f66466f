// Steering: build a direction from contrasting prompts (`steering_vector`), add it to the residual
// stream while the model writes, and compare: steered and unsteered text side by side, a sweep of
// strengths with the concept's probability (`steer_sweep`), and the steered run on the scrubber (an
// ordinary `trace` with a Steer intervention).

import { escapeHTML, pct } from "../core/format.js";
import { View } from "../core/view.js";

const STRENGTHS = [-8, -4, -2, 0, 2, 4, 8];
const lines = (s) => s.split("\n").map((x) => x.trim()).filter(Boolean);

class SteeringView extends View {
  id = "steering";
  label = "Steering";
  group = "experiments";
  term = "steering-vector";
  description = "Push the model along a direction (activation steering): the difference between " +
    "two prompts' hidden states, added while the model writes.";
  markup = `
    <form class="steer-form">
      <label class="steer-pn" data-term="steering-vector"><span>Towards (one prompt a line)</span>
        <textarea id="steer-pos" rows="2">Love</textarea></label>
      <label class="steer-pn" data-term="steering-vector"><span>Away from (one prompt a line)</span>
        <textarea id="steer-neg" rows="2">Hate</textarea></label>
      <p class="muted small steer-policy" id="steer-policy"></p>
      <div class="steer-row">
        <label class="steer-prompt" data-term="intervention">Prompt to steer <input id="steer-prompt" type="text"
          value="I hate you because"></label>
      </div>
      <div class="steer-row">
        <label data-term="residual-stream">Layer <input id="steer-layer" type="number"
          class="num" min="0" placeholder="auto"></label>
        <span class="muted small" id="steer-depth">auto: chosen by the engine</span>
        <label data-term="steering-strength">Strength <input id="steer-strength" type="number"
          class="num" step="0.5" min="-64" max="64" value="4"></label>
        <label data-term="greedy-decoding">New tokens <input id="steer-n" type="number" class="num" min="1" max="64"
          value="20"></label>
        <label data-term="target-token">Concept <input id="steer-concept" type="text"
          value=" love" title="One token whose probability the sweep reports (with its leading space)"></label>
      </div>
      <div class="steer-row">
        <button type="submit" class="primary" id="steer-run" data-term="steering-vector">Steer</button>
        <button type="button" id="steer-sweep" data-term="steering-strength">Sweep strengths −8 … +8</button>
        <button type="button" id="steer-open" data-term="layer-scrubber"
          title="Run the steered prompt as a trace: watch the push through every layer">
          Open the steered run in the scrubber</button>
      </div>
    </form>
    <div class="placeholder" hidden></div>
    <div id="steer-out" class="steer-out"></div>
    <table id="steer-table" class="steer-table"></table>`;

  needs = "model";
  vec = null; // the last steering_vector frame, and the request that made it

  python() {
    const list = (s) => { const l = lines(s); return l.length === 1 ? JSON.stringify(l[0])
      : `[${l.map((x) => JSON.stringify(x)).join(", ")}]`; };
    const layer = this.$("#steer-layer").value;
    return "import layerscope\nmodel = layerscope.load()\n" +
      `vec = model.steering_vector(${list(this.$("#steer-pos").value)}, ` +
      `${list(this.$("#steer-neg").value)}${layer ? `, layer=${layer}` : ""})\n` +
      `prompt = ${JSON.stringify(this.$("#steer-prompt").value)}\n` +
      `steered = model.trace(prompt, generate=20, interventions=[vec.to_steer(${this.#strength()})])\n` +
      `sweep = model.steer_sweep(prompt, vec, strengths=(${STRENGTHS.join(", ")}), ` +
      `concept=${JSON.stringify(this.$("#steer-concept").value || null)})`;
  }

  mount(root, ctx) {
    super.mount(root);
    this.ctx = ctx;
    const policy = () => {
      const n = Math.max(lines(this.$("#steer-pos").value).length,
        lines(this.$("#steer-neg").value).length);
      this.$("#steer-policy").innerHTML = n <= 1
        ? '<b data-term="actadd">One pair: ActAdd.</b> The difference of the two prompts\' ' +
          "hidden states, token by token, is added from the start of your prompt."
        : `<b data-term="caa">${n} lines: CAA.</b> The mean difference of the pairs' last-token ` +
          "hidden states is added at every position the model writes.";
    };
    this.$("#steer-pos").addEventListener("input", policy);
    this.$("#steer-neg").addEventListener("input", policy);
    policy();
    this.onSubmit("Steering…", ctx, async () => {
      const v = await this.#vector(ctx);
      const f = await ctx.client.ask(this.#sweepMsg(v, [0, this.#strength()]));
      this.#drawSide(f, ctx);
    });
    const busy = async (btn, label, work) => {
      const idle = btn.textContent;
      btn.disabled = true;
      btn.textContent = label;
      try { await work(); } catch (err) { ctx.error(err); }
      btn.disabled = false;
      btn.textContent = idle;
    };
    this.$("#steer-sweep").addEventListener("click", (e) => busy(e.currentTarget, "Sweeping…",
      async () => {
        const v = await this.#vector(ctx);
        this.#drawSweep(await ctx.client.ask(this.#sweepMsg(v, STRENGTHS)), ctx);
      }));
    this.$("#steer-open").addEventListener("click", (e) => busy(e.currentTarget, "Running…",
      async () => {
        const v = await this.#vector(ctx);
        await ctx.run({ type: "trace", prompt: this.$("#steer-prompt").value,
          generate: this.#tokens(), lens_top_k: 5, interventions: [this.#steer(v)] });
      }));
  }

  onTrace(trace, ctx) {
    this.ctx = ctx;
    this.$("#steer-layer").max = (ctx.client.hello?.model.n_lens_layers ?? trace.nLayers) - 1;
  }

  #strength() {
    const s = this.$("#steer-strength").valueAsNumber;
    return Number.isFinite(s) ? Math.max(-64, Math.min(64, s)) : 4;
  }

  #tokens() { return Math.max(1, Math.min(64, this.$("#steer-n").valueAsNumber | 0 || 20)); }

  /** The steering vector for the form's prompts and layer (asked again only when they change). */
  async #vector(ctx) {
    const layerText = this.$("#steer-layer").value;
    const msg = { type: "steering_vector", positive: lines(this.$("#steer-pos").value),
      negative: lines(this.$("#steer-neg").value),
      layer: layerText === "" ? null : Math.max(0, layerText | 0) };
    const key = JSON.stringify(msg);
    if (this.vec?.key === key) return this.vec.frame;
    const f = await ctx.client.ask(msg);
    this.vec = { key, frame: f };
    const n = ctx.client.hello?.model.n_blocks ?? f.n_blocks;
    this.$("#steer-depth").textContent = `layer ${f.layer} of ${n}: ` +
      `${Math.round((100 * f.layer) / n)}% of the way in (${f.method === "caa" ? "CAA" : "ActAdd"}` +
      `, ‖v‖ = ${f.norm.toFixed(1)})`;
    return f;
  }

  /** The Steer intervention of vector frame `v` at the form's strength. */
  #steer(v) {
    return { kind: "steer", layer: v.layer, vector: v.vector, strength: this.#strength(),
      where: v.where, positions: null };
  }

  #sweepMsg(v, strengths) {
    const concept = this.$("#steer-concept").value;
    return { type: "steer_sweep", prompt: this.$("#steer-prompt").value, vector_id: v.vector_id,
      strengths, generate: this.#tokens(), concept: concept === "" ? null : concept };
  }

  #drawSide(f, ctx) {
    const [plain, steered] = f.rows;
    const col = (title, row, id) => `<div class="steer-col"><h4>${title}</h4>` +
      `<p class="steer-text" id="${id}"><span class="p">${escapeHTML(this.$("#steer-prompt").value)}` +
      `</span>${escapeHTML(row.text)}</p>${f.concept_id === null ? "" :
        `<span class="muted small">p(<code>${escapeHTML(ctx.text(f.concept_id) ?? "")}</code>) ` +
        `while writing: ${pct(row.concept_prob)} on average</span>`}</div>`;
    this.$("#steer-out").innerHTML = col("Unsteered", plain, "steer-plain") +
      col(`Steered, strength ${steered.strength}`, steered, "steer-steered");
  }

  #drawSweep(f, ctx) {
    const concept = f.concept_id === null ? "" : escapeHTML(ctx.text(f.concept_id) ?? "");
    const max = Math.max(1e-9, ...f.rows.map((r) => r.concept_prob ?? 0));
    this.$("#steer-table").innerHTML = '<thead><tr><th data-term="steering-strength">strength' +
      "</th><th>what the model writes</th>" +
      (concept ? `<th title="The concept's probability at each generated step, averaged">mean ` +
        `p(<code>${concept}</code>)</th>` : "") + "</tr></thead><tbody>" +
      f.rows.map((r) => `<tr${r.strength === 0 ? ' class="zero"' : ""}><td class="num">` +
        `${r.strength > 0 ? "+" : ""}${r.strength}</td><td class="txt">` +
        `${escapeHTML(r.text.trim().replace(/\n+/g, " ↵ "))}</td>` +
        (concept ? `<td class="num">${pct(r.concept_prob)}<span class="bar" style="width:` +
          `${Math.round((48 * (r.concept_prob ?? 0)) / max)}px"></span></td>` : "") + "</tr>")
        .join("") + "</tbody>";
  }
}

export default new SteeringView();
