// Glossary: every term of the glossary (GET /api/glossary, the same entries the tooltips show),
// searchable by name and definition. Each entry: short and long definition, related terms, the
// views that show it (a click opens the tab) and the documents that explain it.

import { docList, glossary } from "../learn/api.js";
import { el } from "../core/format.js";
import { View } from "../core/view.js";
import docsView from "./docs.js";

/** Whether `term` matches every word of `query` (name, id, short or long definition). */
export function matches(term, query) {
  const hay = `${term.term} ${term.id} ${term.short} ${term.long}`.toLowerCase();
  return query.toLowerCase().split(/\s+/).filter(Boolean).every((w) => hay.includes(w));
}

class GlossaryView extends View {
  id = "glossary";
  label = "Glossary";
  group = "learn";
  term = "glossary";
  description = "Every technical word used on this page, in plain language: search it, follow " +
    "related terms, open the view that shows it or the document that explains it.";
  markup = `
    <div class="view-bar learn-bar">
      <label class="learn-search" data-term="glossary">Search the glossary
        <input type="search" id="glossary-search" placeholder="e.g. attention, lens, patching"
               autocomplete="off"></label>
      <span class="muted small" id="glossary-count" aria-live="polite"></span>
    </div>
    <div class="placeholder" hidden></div>
    <div id="glossary-list" class="glossary-list term-quiet"></div>`;

  needs = "server";

  python() {
    return "import json, importlib.resources as r\n" +
      "terms = json.loads(r.files('layerscope.learn').joinpath('content/glossary.json')" +
      ".read_text())['terms']\nprint([t['term'] for t in terms])";
  }

  mount(root, ctx) {
    super.mount(root);
    this.ctx = ctx;
    this.terms = null;
    this.pending = null; // a term to open once the list is drawn
    this.search = this.$("#glossary-search");
    this.search.addEventListener("input", () => this.#filter());
    this.$("#glossary-list").addEventListener("click", (e) => this.#click(e));
  }

  show() {
    super.show();
    if (this.ctx.offline) return;
    if (this.terms) return this.#reveal();
    this.note("Loading the glossary…");
    Promise.all([glossary(), docList().catch(() => [])]).then(([{ terms }, docs]) => {
      this.note("");
      this.titles = new Map(docs.map((d) => [d.slug, d.title]));
      this.terms = [...terms].sort((a, b) => a.term.localeCompare(b.term));
      this.#draw();
      this.#reveal();
    }, (err) => this.note(`Could not load the glossary: ${err.message ?? err}`));
  }

  /** Open entry `id` (now if the panel is drawn, else when it is). */
  focus(id) {
    this.pending = id;
    if (this.visible && this.terms) this.#reveal();
  }

  #draw() {
    const list = this.$("#glossary-list");
    list.replaceChildren(...this.terms.map((t) => this.#entry(t)));
    this.#filter();
  }

  #entry(t) {
    const art = el("article", "term-entry");
    art.id = `term-${t.id}`;
    art.dataset.id = t.id;
    const h = el("h3", null, t.term);
    h.tabIndex = -1;
    art.append(h, el("p", "term-short", t.short));
    for (const para of (t.long ?? "").split(/\n\n+/).filter(Boolean)) {
      art.append(el("p", "term-long", para));
    }
    const links = el("dl", "term-links");
    const row = (name, items) => {
      if (!items.length) return;
      const dd = el("dd");
      items.forEach((x, i) => { if (i) dd.append(" · "); dd.append(x); });
      links.append(el("dt", null, name), dd);
    };
    const known = new Set(this.terms.map((x) => x.id));
    row("Related", (t.related ?? []).filter((r) => known.has(r)).map((r) => {
      const a = el("a", "term-link", this.terms.find((x) => x.id === r).term);
      a.href = `#term-${r}`;
      a.dataset.goto = r;
      return a;
    }));
    row("See it in", (t.views ?? []).map((v) => {
      const tab = document.getElementById(`tab-${v}`);
      if (!tab || v === this.id) return null;
      const b = el("button", "link view-link", `${tab.textContent.trim()} view`);
      b.type = "button";
      b.dataset.view = v;
      b.dataset.term = t.id;
      return b;
    }).filter(Boolean));
    row("Read", (t.docs ?? []).map((d) => {
      const [slug, anchor = ""] = d.split("#");
      const a = el("a", "doc-link", this.titles.get(slug) ?? slug);
      a.href = `#${d}`;
      a.dataset.doc = slug;
      a.dataset.anchor = anchor;
      return a;
    }));
    if (links.children.length) art.append(links);
    return art;
  }

  #filter() {
    if (!this.terms) return;
    const q = this.search.value.trim();
    let n = 0;
    for (const art of this.$("#glossary-list").children) {
      const t = this.terms.find((x) => x.id === art.dataset.id);
      const ok = !q || matches(t, q);
      art.hidden = !ok;
      n += ok;
    }
    this.$("#glossary-count").textContent = q ? `${n} of ${this.terms.length} terms match`
      : `${this.terms.length} terms`;
  }

  #reveal() {
    const id = this.pending;
    if (!id) return;
    this.pending = null;
    const art = this.root.querySelector(`#term-${CSS.escape(id)}`);
    if (!art) return;
    if (art.hidden) {
      this.search.value = "";
      this.#filter();
    }
    for (const a of this.root.querySelectorAll(".term-entry.flash")) a.classList.remove("flash");
    art.classList.add("flash");
    art.scrollIntoView({ block: "start" });
    art.querySelector("h3").focus({ preventScroll: true });
  }

  #click(e) {
    const a = e.target.closest("a, button");
    if (!a) return;
    if (a.dataset.goto) {
      e.preventDefault();
      this.focus(a.dataset.goto);
    } else if (a.dataset.view) {
      this.ctx.openView(a.dataset.view);
      document.querySelector(".views-card")?.scrollIntoView({ block: "start" });
    } else if (a.dataset.doc) {
      e.preventDefault();
      docsView.focus(a.dataset.doc, a.dataset.anchor);
      this.ctx.openView(docsView.id);
    }
  }
}

export default new GlossaryView();
