// Early exit: greedy generation that reads each next token from the layer-k lens, next to what
// the whole model writes.

import { escapeHTML, tokenHTML } from "../core/format.js";
import { View } from "../core/view.js";

const MAX_TOKENS = 64;

class EarlyExitView extends View {
  id = "early";
  label = "Early exit";
  group = "experiments";
  term = "early-exit";
  description = "What the model would write if it stopped after its first k blocks (layer k) and " +
    "answered from there, next to what the whole model writes.";
  markup = `
    <form class="early-form">
      <label data-term="early-exit">Stop after layer <input type="number" min="0" value="20" class="num" id="early-layer">
      </label>
      <label data-term="greedy-decoding">Tokens to write <input type="number" min="1" max="${MAX_TOKENS}" value="16" class="num"
        id="early-tokens"></label>
      <button type="submit" class="primary" id="early-run" data-term="early-exit">Generate</button>
      <span class="muted small">Greedy decoding of the trace's prompt; each next token is read from
        layer k through the lens.</span>
    </form>
    <div id="early" class="early-out"></div>`;

  needs = "trace";

  python(trace) {
    const layer = Math.min(20, trace.last);
    return "import layerscope\nmodel = layerscope.load()\n" +
      `prompt_ids = [${trace.ids.slice(0, trace.nPrompt).join(", ")}]\n` +
      `early = model.early_exit(prompt_ids, layer=${layer}, n=16)  # token ids read at layer ${layer}`;
  }

  mount(root, ctx) {
    super.mount(root);
    const clamp = (el, lo, hi) => Math.max(lo, Math.min(hi, el.valueAsNumber | 0));
    this.onSubmit("Generating…", ctx, async () => {
      const ref = ctx.store.reference; // the plain run on screen or behind a variant
      if (!ref) return;
      const f = await ctx.client.ask({ type: "early_exit", prompt: ref.request.prompt,
        chat: ref.request.chat, layer: clamp(this.$("#early-layer"), 0, ref.last),
        generate: clamp(this.$("#early-tokens"), 1, MAX_TOKENS) });
      this.#draw(f, ctx.text);
    });
  }

  onTrace(trace) { this.$("#early-layer").max = trace.last; }

  #draw(f, text) {
    const join = (ids) => ids.map((id) => text(id) ?? "").join("");
    const early = f.early.map((id, i) => {
      const s = tokenHTML(text(id));
      return id === f.full[i] ? s : `<span class="d">${s}</span>`;
    }).join("");
    const same = f.early.filter((id, i) => id === f.full[i]).length;
    const row = (label, html, id = "") => '<div class="early-row">' +
      `<span class="lbl">${label}</span><span class="txt"${id}>${html}</span></div>`;
    this.$("#early").innerHTML =
      row("Prompt (end)", `<span class="p">${escapeHTML(join(f.prompt).slice(-160))}</span>`) +
      row(`First ${f.layer} of ${f.n_lens_layers - 1} blocks`, early,
        ' id="early-text"') +
      row("Whole model", f.full.map((id) => tokenHTML(text(id))).join("")) +
      `<div class="early-row"><span class="lbl"></span><span class="muted small">${same} of ` +
      `${f.full.length} tokens agree (red: differs from the whole model at the same step)` +
      "</span></div>";
  }
}

export default new EarlyExitView();
