// Chat: ask a question about what you see. The server's `ask` request answers with the sources
// first (`ask_sources`: passages of the knowledge base, best first), then the answer as it is
// written (`ask_delta`), then `ask_done` with the mode: the loaded model, an endpoint, or an
// extractive answer assembled from the passages. Citations [n] open the docs panel at source n.
// The question goes with what is on screen (model, prompt, view, layer, interventions) and the
// last few turns.

import { el } from "../core/format.js";
import { View } from "../core/view.js";
import { renderInline } from "../learn/markdown.js";
import docsView from "./docs.js";

export const MODES = {
  model: "answered by the loaded model",
  endpoint: "answered by the endpoint",
  extractive: "extractive: assembled from the best passages",
};
const HISTORY_TURNS = 6;

/** Append `text` to `parent` with every [n] that names a source turned into a citation link. */
export function withCitations(parent, text, sources, open) {
  const parts = text.split(/(\[\d+\])/);
  for (const part of parts) {
    const m = /^\[(\d+)\]$/.exec(part);
    const src = m && sources[+m[1] - 1];
    if (!src) { if (part) parent.append(part); continue; }
    const a = el("a", "cite", part);
    a.href = `#${src.doc}${src.anchor ? `#${src.anchor}` : ""}`;
    a.title = `${src.title}${src.heading ? ` › ${src.heading}` : ""}`;
    a.addEventListener("click", (e) => { e.preventDefault(); open(src); });
    parent.append(a);
  }
}

class ChatView extends View {
  id = "chat";
  label = "Ask";
  group = "learn";
  term = "retrieval-augmented-generation";
  description = "Ask a question in your own words: the answer comes from the knowledge base, " +
    "with its sources listed first and cited as [1], [2] — click one to read it.";
  markup = `
    <div id="chat-log" class="chat-log" aria-live="polite"></div>
    <form class="chat-form" id="chat-form">
      <label class="chat-q" data-term="retrieval-augmented-generation">Your question
        <textarea id="chat-question" rows="2" placeholder="e.g. Why does the answer appear only at the last layer?"></textarea></label>
      <div class="chat-actions">
        <label class="switch" data-term="retrieval"><input type="checkbox" id="chat-retrieve-only">
          <span>Sources only (no written answer)</span></label>
        <span class="muted small" id="chat-context"></span>
        <button type="submit" class="primary" id="chat-send" data-term="retrieval-augmented-generation">Ask</button>
      </div>
    </form>`;

  needs = "server";

  python() {
    return "from layerscope.learn import chat\n" +
      "done = chat.collect(chat.answer(\"What is the logit lens?\"))\nprint(done.mode, done.answer)";
  }

  mount(root, ctx) {
    super.mount(root);
    this.ctx = ctx;
    this.turns = []; // {role, text}
    this.busy = false;
    const q = this.$("#chat-question");
    this.$("#chat-form").addEventListener("submit", (e) => { e.preventDefault(); this.ask(); });
    q.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); this.ask(); }
    });
  }

  show() {
    super.show();
    this.$("#chat-context").textContent = this.#contextLine();
  }

  onTrace() { this.$("#chat-context").textContent = this.#contextLine(); }
  onLayer() { this.$("#chat-context").textContent = this.#contextLine(); }

  /** What the question is asked about: the page's state. */
  context() {
    const ctx = this.ctx, tr = ctx.trace;
    return {
      model: ctx.client.hello?.model?.name ?? null,
      prompt: tr?.request?.prompt ?? (tr ? tr.ids.map((id) => ctx.text(id) ?? "").join("") : null),
      view: ctx.workView ?? null,
      layer: tr ? ctx.layer : null,
      interventions: tr?.interventions ?? [],
    };
  }

  #contextLine() {
    const c = this.context();
    const bits = [c.model && `model ${c.model}`, c.prompt && `prompt “${c.prompt.slice(0, 40)}${c.prompt.length > 40 ? "…" : ""}”`,
      c.layer != null && `layer ${c.layer}`, c.view && `view ${c.view}`,
      c.interventions.length && `${c.interventions.length} intervention(s)`].filter(Boolean);
    return bits.length ? `Asked with: ${bits.join(" · ")}` : "";
  }

  /** Send the question in the box. */
  ask() {
    const box = this.$("#chat-question");
    const question = box.value.trim();
    if (!question || this.busy) return;
    this.busy = true;
    const send = this.$("#chat-send");
    send.disabled = true;
    send.textContent = "Asking…";
    box.value = "";
    const log = this.$("#chat-log");
    const mine = el("div", "chat-turn user");
    mine.append(el("p", "chat-text", question));
    const turn = el("div", "chat-turn assistant");
    const mode = el("p", "chat-mode muted small", "Looking for sources…");
    const srcBox = el("ol", "chat-sources");
    const answer = el("p", "chat-text chat-answer");
    turn.append(srcBox, mode, answer);
    log.append(mine, turn);
    turn.scrollIntoView({ block: "nearest" });
    let sources = [], text = "";
    const open = (s) => {
      docsView.focus(s.doc, s.anchor ?? "");
      this.ctx.openView(docsView.id);
    };
    const finish = () => {
      this.busy = false;
      send.disabled = false;
      send.textContent = "Ask";
    };
    const history = this.turns.slice(-HISTORY_TURNS);
    this.ctx.client.request({
      type: "ask", question, context: this.context(), history,
      retrieve_only: this.$("#chat-retrieve-only").checked,
    }, (f) => {
      if (f.type === "ask_sources") {
        sources = f.sources;
        this.#sources(srcBox, sources, open);
        mode.textContent = sources.length ? "Writing the answer…" : "No passage matched.";
      } else if (f.type === "ask_delta") {
        text = f.replace ? f.text : text + f.text;
        answer.textContent = text;
      } else if (f.type === "ask_done") {
        sources = f.sources ?? sources;
        if (!srcBox.childElementCount) this.#sources(srcBox, sources, open);
        text = f.answer ?? text;
        answer.replaceChildren();
        withCitations(answer, text, sources, open);
        mode.textContent = MODES[f.mode] ?? f.mode;
        mode.dataset.mode = f.mode;
        mode.classList.toggle("extractive", f.mode === "extractive");
        if (f.note) mode.title = f.note;
        this.turns.push({ role: "user", text: question }, { role: "assistant", text });
        finish();
      } else if (f.type === "error") {
        mode.textContent = `Could not answer: ${f.message}`;
        mode.classList.add("chat-error");
        finish();
      }
    });
  }

  #sources(box, sources, open) {
    box.replaceChildren(...sources.map((s, i) => {
      const li = el("li", "chat-source");
      const a = el("a", "source-link", `[${i + 1}] ${s.title}${s.heading ? ` › ${s.heading}` : ""}`);
      a.href = `#${s.doc}${s.anchor ? `#${s.anchor}` : ""}`;
      a.addEventListener("click", (e) => { e.preventDefault(); open(s); });
      // the passage's markdown, rendered safely (links inside it open their document)
      const snip = el("span", "source-text");
      renderInline(s.text.length > 220 ? `${s.text.slice(0, 220)}…` : s.text, snip, {
        onLink: (t) => open({ doc: t.doc ?? s.doc, anchor: t.anchor }),
      });
      li.append(a, snip);
      return li;
    }));
  }
}

export default new ChatView();
