// bertviz's head view and model view of the trace on screen, in an iframe (its require.js, d3 and
// jQuery globals stay out of this page; the server rewrites them to load from /static/vendor/).

import { retrace } from "../core/python.js";
import { View } from "../core/view.js";

const MAX_TOKENS = 128; // what GET /bertviz/… accepts at once: bertviz stalls on longer inputs

/** "0-3,7" -> "0,1,2,3,7" (empty: every one), or null when it cannot be read. */
function parseList(text, n) {
  const s = text.trim().toLowerCase();
  if (!s || s === "all") return "";
  const out = new Set();
  for (const part of s.split(",")) {
    const m = part.trim().match(/^(\d+)(?:\s*-\s*(\d+))?$/);
    if (!m) return null;
    const a = +m[1], b = m[2] === undefined ? a : +m[2];
    for (let i = Math.min(a, b); i <= Math.max(a, b); i++) if (i < n) out.add(i);
  }
  return out.size ? [...out].sort((x, y) => x - y).join(",") : null;
}

class BertvizView extends View {
  id = "bertviz";
  label = "bertviz";
  group = "inside";
  term = "bertviz";
  description = "bertviz's classic pictures of attention: lines from each token to the tokens it " +
    "looks at, for one layer's heads (head view) or for every head at once (model view).";
  markup = `
    <form class="view-bar bv-form">
      <label data-term="bertviz">Picture <select id="bv-view"><option value="head">head view</option>
        <option value="model">model view</option></select></label>
      <label data-term="block">Blocks <input id="bv-layers" value="all" size="8" title="e.g. 0-3,7 or all"></label>
      <label data-term="attention-head">Heads <input id="bv-heads" value="all" size="6" title="e.g. 0,2 or all"></label>
      <label data-term="position">Tokens <input type="number" min="0" value="0" class="num" id="bv-start"> to
        <input type="number" min="1" value="1" class="num" id="bv-end"></label>
      <button type="submit" class="primary" id="bv-show" data-term="bertviz">Show</button>
    </form>
    <p class="muted small" id="bv-note"></p>
    <div class="placeholder" hidden></div>
    <iframe id="bv-frame" class="bv-frame" title="bertviz" hidden></iframe>`;

  needs = "trace";

  python(trace) {
    return `${retrace(trace)}\nfrom bertviz import head_view, model_view\n` +
      "tokens = [model.lens_model.tokenizer.token_text(i) for i in trace.ids]\n" +
      "head_view(trace.attention, tokens)  # in a notebook";
  }

  mount(root, ctx) {
    super.mount(root);
    this.ctx = ctx;
    this.frame = this.$("#bv-frame");
    this.$("form").addEventListener("submit", (e) => { e.preventDefault(); this.#show(); });
    this.$("#bv-view").addEventListener("change", () => {
      // the model view draws every head of every chosen block: start small on long inputs
      const layers = this.$("#bv-layers");
      if (this.$("#bv-view").value === "model" && layers.value.trim() === "all" &&
          this.#span() > 24) layers.value = "0-3";
      this.#show();
    });
    this.frame.addEventListener("load", () => this.#fit());
  }

  #span() { return (+this.$("#bv-end").value) - (+this.$("#bv-start").value); }

  onTrace(trace, ctx) {
    this.ctx = ctx;
    if (!trace.complete) return this.note("bertviz appears once the trace has finished.");
    const T = trace.ids.length;
    const start = this.$("#bv-start"), end = this.$("#bv-end");
    start.max = T - 1;
    end.max = T;
    if (this.traceId !== trace.traceId) {
      this.traceId = trace.traceId;
      start.value = String(Math.max(0, T - MAX_TOKENS));
      end.value = String(T);
    }
    this.#show();
  }

  #show() {
    const trace = this.ctx.trace;
    if (!trace?.complete) return;
    const T = trace.ids.length, info = this.ctx.client.hello?.model;
    const start = Math.max(0, Math.min(T - 1, this.$("#bv-start").valueAsNumber | 0));
    const end = Math.max(start + 1, Math.min(T, this.$("#bv-end").valueAsNumber | 0));
    const layers = parseList(this.$("#bv-layers").value, info?.n_blocks ?? 1e9);
    const heads = parseList(this.$("#bv-heads").value, info?.n_heads ?? 1e9);
    const note = this.$("#bv-note");
    const long = T > MAX_TOKENS ? `This input has ${T} tokens: bertviz gets too slow past ` +
      `${MAX_TOKENS}, so it shows a range of at most ${MAX_TOKENS} tokens at a time. ` : "";
    if (layers === null || heads === null) {
      note.textContent = "Blocks and heads: numbers and ranges such as 0-3,7, or all.";
      return;
    }
    if (end - start > MAX_TOKENS) {
      note.textContent = `${long}Choose at most ${MAX_TOKENS} tokens (asked ${end - start}).`;
      this.frame.hidden = true;
      return;
    }
    this.$("#bv-start").value = String(start);
    this.$("#bv-end").value = String(end);
    note.textContent = `${long}Tokens ${start}–${end - 1} of ${T}` +
      (start > 0 ? ` (attention to tokens before ${start} is left out)` : "") + ". " +
      (this.$("#bv-view").value === "head" ? "Hover a token to see where it looks; double-click " +
        "a head's colour to show it alone." : "Click a thumbnail to enlarge that head.");
    const q = new URLSearchParams({ view: this.$("#bv-view").value, start, end });
    if (layers) q.set("layers", layers);
    if (heads) q.set("heads", heads);
    const src = `/bertviz/${encodeURIComponent(trace.traceId)}?${q}`;
    this.frame.hidden = false;
    if (this.frame.getAttribute("src") !== src) this.frame.setAttribute("src", src);
  }

  /** Grow the iframe to what bertviz drew (it draws after its scripts load). */
  #fit() {
    let n = 0;
    const step = () => {
      const doc = this.frame.contentDocument;
      if (doc?.body) this.frame.style.height = `${Math.max(300, doc.body.scrollHeight + 24)}px`;
      if (++n < 12) setTimeout(step, 250);
    };
    step();
  }
}

export default new BertvizView();
