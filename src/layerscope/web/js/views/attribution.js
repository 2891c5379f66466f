// Token attribution: how much each input token of the trace on screen pushed the model toward one
// next token (integrated gradients or gradient × input over the token embeddings), as a coloured
// strip, with the completeness check stated; under a run's interventions, clean vs intervened.

import { escapeHTML, pct, tokenHTML, tokenLabel } from "../core/format.js";
import { describeRun } from "../core/interventions.js";
import { View } from "../core/view.js";

const TOLERANCE = 0.05; // completeness: warn when |delta| is more than 5 % of f(input) − f(baseline)
const UP = [43, 89, 195], DOWN = [196, 60, 57], PAPER = [247, 248, 250];
const METHOD_NAMES = { integrated_gradients: "integrated gradients",
  gradient_x_input: "gradient × input" };
const signed = (v, d = 3) => `${v >= 0 ? "+" : "−"}${Math.abs(v).toFixed(d)}`;

/** Background colour of a score: blue pushes toward the target, red away, by |score| / scale. */
function scoreColor(v, scale) {
  const a = scale > 0 ? Math.min(1, Math.abs(v) / scale) : 0;
  const c = v >= 0 ? UP : DOWN;
  return [`rgb(${PAPER.map((p, i) => Math.round(p + (c[i] - p) * a)).join(",")})`, a > 0.55];
}

class AttributionView extends View {
  id = "attribution";
  label = "Attribution";
  group = "experiments";
  term = "integrated-gradients";
  description = "Which input words pushed the model toward this answer (integrated gradients): " +
    "blue tokens pushed toward it, red ones away.";
  markup = `
    <form class="attr-form">
      <label data-term="target-token">Answer to explain
        <select id="attr-pick"></select></label>
      <label data-term="token">or type one token <input type="text" id="attr-target" placeholder="e.g. ·Paris"
        size="10" title="Text of exactly one token; · or a space before a word that follows a
space"></label>
      <label data-term="gradient-x-input">Method <select id="attr-method">
        <option value="integrated_gradients">Integrated gradients</option>
        <option value="gradient_x_input">Gradient × input</option></select></label>
      <label data-term="integrated-gradients">Steps <input type="number" id="attr-steps"
        class="num" min="1" max="512" value="64"></label>
      <label class="attr-under" data-term="ablation" hidden><input type="checkbox"
        id="attr-under" checked> <span>under this run's interventions</span></label>
      <button type="submit" class="primary" id="attr-run" data-term="attribution">Attribute</button>
    </form>
    <p class="muted small" id="attr-about">Explains the last prompt token's next-token prediction
      of the trace on screen: log p(answer) split over the input tokens.</p>
    <div class="placeholder" hidden></div>
    <div id="attr-out" class="attr-out" hidden>
      <p id="attr-summary"></p>
      <div id="attr-strips"></div>
      <div id="attr-check" class="attr-check"></div>
      <p class="muted small" id="attr-baseline"></p>
    </div>`;

  needs = "model";

  python(trace) {
    const ids = trace ? `[${trace.ids.slice(0, trace.nPrompt).join(", ")}]` : "[...]";
    const method = this.$("#attr-method").value;
    const steps = this.$("#attr-steps").value;
    const ivs = trace?.interventions.length
      ? "from layerscope.engine.interventions import intervention_list\n" +
        `ivs = intervention_list.validate_json(${JSON.stringify(JSON.stringify(
          trace.interventions))})\n` : "";
    return `import layerscope\nmodel = layerscope.load()\n${ivs}` +
      `a = model.attribute(${ids},  # the prompt's token ids\n` +
      `                    method=${JSON.stringify(method)}, steps=${steps}` +
      `${ivs ? ", interventions=ivs" : ""})\n` +
      "a.scores, a.target, a.baseline  # one score per token\n" +
      "a.delta, a.rel_delta  # completeness: sum(scores) - (f(input) - f(baseline))";
  }

  mount(root, ctx) {
    super.mount(root);
    this.ctx = ctx;
    this.$("#attr-method").addEventListener("change", () => {
      this.$("#attr-steps").disabled = this.$("#attr-method").value !== "integrated_gradients";
    });
    this.onSubmit("Attributing…", ctx, () => this.#run(ctx));
  }

  onTrace(trace, ctx) {
    if (!trace.complete) return this.note("Attribution works on the trace once it has finished.");
    this.note("");
    if (this.traceId === trace.traceId) return;
    this.traceId = trace.traceId;
    // the candidates: the final layer's top predictions after the last prompt token
    // (the first choice, the server's default, is the top prediction of the run without
    // interventions, so a clean and an intervened run explain the same answer)
    const t = trace.nPrompt - 1;
    const ivs = trace.interventions.length > 0;
    const label = (i) => `${tokenLabel(ctx.text(trace.top(trace.last, t, i)), 20)} ` +
      `(${pct(trace.topP(trace.last, t, i))})`;
    const opts = [new Option(ivs ? "the clean run's answer" : `${label(0)}: top answer`, "")];
    for (let i = ivs ? 0 : 1; i < trace.k; i++) {
      opts.push(new Option(label(i), String(trace.top(trace.last, t, i))));
    }
    this.$("#attr-pick").replaceChildren(...opts);
    this.$(".attr-under").hidden = !ivs;
    this.$("#attr-under").checked = ivs;
    this.$("#attr-out").hidden = true;
  }

  async #run(ctx) {
    const trace = ctx.trace;
    if (!trace?.complete) return;
    const typed = this.$("#attr-target").value;
    const steps = Math.max(1, Math.min(512, this.$("#attr-steps").valueAsNumber | 0 || 64));
    this.$("#attr-steps").value = String(steps);
    const under = trace.interventions.length > 0 && this.$("#attr-under").checked;
    const msg = { type: "attribute", ids: trace.ids.slice(0, trace.nPrompt),
      method: this.$("#attr-method").value, steps,
      ...(typed ? { target: typed.replace(/·/g, " ") } : {}),
      ...(!typed && this.$("#attr-pick").value ? { target_id: +this.$("#attr-pick").value } : {}),
      interventions: under ? trace.interventions : [] };
    const fresh = this.ticket();
    const f = await ctx.client.ask(msg);
    if (fresh()) this.#draw(f, ctx, trace);
  }

  #draw(f, ctx, trace) {
    const text = ctx.text;
    const ig = f.method === "integrated_gradients";
    const target = `<code>${tokenHTML(text(f.target_id))}</code>`;
    const runs = [["clean run", f.clean]];
    if (f.intervened) runs.push(["with interventions", f.intervened]);
    const scale = Math.max(1e-9, ...runs.flatMap(([, r]) => r.scores.map(Math.abs)));
    const probs = runs.map(([name, r]) => `${pct(r.p_target)} ${name === "clean run"
      ? "in the clean run" : name}`).join(", ");
    this.$("#attr-summary").innerHTML = `Explaining ${target} after the last prompt token ` +
      `(p = ${probs}) by <b>${METHOD_NAMES[f.method]}</b>` +
      (ig ? ` with <b>${f.steps} steps</b>.` : " (one gradient).");
    let html = runs.map(([name, r]) => this.#strip(name, r.scores, f.ids, text, scale)).join("");
    if (f.intervened) {
      const diff = f.intervened.scores.map((v, i) => v - f.clean.scores[i]);
      const dscale = Math.max(1e-9, ...diff.map(Math.abs));
      html += this.#strip("change (with − without)", diff, f.ids, text, dscale, "attr-diff");
      html += `<p class="muted small">Interventions: ${escapeHTML(describeRun(f.interventions,
        trace.ids, text))}</p>`;
    }
    html += '<div class="attr-legend"><span><i style="background:rgb(43,89,195)"></i>pushed ' +
      'toward the answer</span><span><i style="background:rgb(196,60,57)"></i>pushed away' +
      "</span><span class=\"muted\">hover a token for its score (log-probability units)</span>" +
      "</div>";
    this.$("#attr-strips").innerHTML = html;
    this.$("#attr-check").innerHTML = runs.map(([name, r]) => this.#check(name, r, ig)).join("");
    this.$("#attr-baseline").innerHTML = ig ? '<span data-term="baseline">Baseline</span>: ' +
      `${escapeHTML(f.baseline)}. Scores are in units of ` +
      '<span data-term="log-probability">log p(answer)</span>; they should add up to ' +
      "log p(answer | prompt) − log p(answer | baseline)." : "Gradient × input has no " +
      "baseline and no completeness property: its scores need not add up to anything."
    this.$("#attr-out").hidden = false;
  }

  /** One row of token chips coloured by `scores` (shared `scale`), with hover values. */
  #strip(name, scores, ids, text, scale, cls = "") {
    const total = scores.reduce((a, b) => a + b, 0);
    const chips = ids.map((id, t) => {
      const [bg, dark] = scoreColor(scores[t], scale);
      const title = `position ${t} · ${tokenLabel(text(id), 24)}: ${signed(scores[t], 4)}`;
      return `<span class="attr-tok${dark ? " dark" : ""}" data-pos="${t}" ` +
        `data-score="${scores[t]}" style="background:${bg}" title="${escapeHTML(title)}">` +
        `<span class="t">${tokenHTML(text(id))}</span><span class="s">${signed(scores[t], 2)}` +
        "</span></span>";
    }).join("");
    return `<div class="attr-row ${cls}"><div class="attr-name">${escapeHTML(name)}<br>` +
      `<span class="muted small">sum ${signed(total, 3)}</span></div>` +
      `<div class="attr-strip">${chips}</div></div>`;
  }

  /** The completeness check of one run, with a visible warning past the tolerance. */
  #check(name, r, ig) {
    if (!ig || r.delta === null) return "";
    const sum = r.scores.reduce((a, b) => a + b, 0);
    const gap = r.f_input - r.f_baseline;
    const rel = r.rel_delta;
    const bad = rel === null || rel > TOLERANCE;
    const relText = rel === null ? "undefined (f(input) = f(baseline))"
      : `${(rel * 100).toFixed(rel < 0.01 ? 2 : 1)} %`;
    return `<div class="attr-check-row ${bad ? "warn" : "ok"}" data-term="completeness">` +
      `<b>${bad ? "⚠ Completeness check failed" : "✓ Completeness check"}</b> ` +
      `(${escapeHTML(name)}): sum of scores ${signed(sum, 4)} vs f(input) − f(baseline) = ` +
      `${signed(r.f_input, 3)} − (${signed(r.f_baseline, 3)}) = ${signed(gap, 4)}; ` +
      `delta ${signed(r.delta, 4)}, relative error ${relText}` +
      (bad ? ` — more than ${TOLERANCE * 100} %: the scores are not reliable; raise the steps.`
        : ".") + "</div>";
  }
}

export default new AttributionView();
