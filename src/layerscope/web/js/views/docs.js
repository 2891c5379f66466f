// Docs: the knowledge base (GET /api/docs, /api/docs/{slug}) — the list of documents and one
// document rendered from its markdown by learn/markdown.js (safe: HTML in a document shows as
// text). Links between documents open them here, at their #anchor; `focus(slug, anchor)` is the
// deep link the glossary and the chat's citations use.

import { doc, docList } from "../learn/api.js";
import { renderMarkdown } from "../learn/markdown.js";
import { View } from "../core/view.js";

class DocsView extends View {
  id = "docs";
  label = "Docs";
  group = "learn";
  term = "knowledge-base";
  description = "Short documents that explain what each view shows and the ideas behind it; " +
    "links between them work, and the chat's citations open them at the passage.";
  markup = `
    <div class="docs-layout">
      <nav class="docs-nav" aria-label="Documents">
        <label class="docs-pick" data-term="knowledge-base">Documents
          <select id="docs-select"></select></label>
        <ol id="docs-list" class="docs-list"></ol>
      </nav>
      <div class="docs-main">
        <div class="placeholder" hidden></div>
        <p class="docs-missing small" id="docs-missing" hidden></p>
        <article id="doc-body" class="doc-body" tabindex="-1"></article>
      </div>
    </div>`;

  needs = "server";

  python() {
    return "from layerscope.learn import kb\nfor d in kb.load_docs():\n    print(d.slug, d.title)";
  }

  mount(root, ctx) {
    super.mount(root);
    this.ctx = ctx;
    this.list = null;
    this.slug = null;
    this.want = null; // {slug, anchor} to open when shown
    this.$("#docs-list").addEventListener("click", (e) => {
      const a = e.target.closest("a[data-doc]");
      if (!a) return;
      e.preventDefault();
      this.open(a.dataset.doc, "");
    });
    this.$("#docs-select").addEventListener("change", (e) => this.open(e.target.value, ""));
  }

  show() {
    super.show();
    if (this.ctx.offline) return;
    const want = this.want ?? { slug: this.slug, anchor: "" };
    this.want = null;
    this.#ensureList().then(() => {
      if (!this.visible) return;
      this.open(want.slug ?? this.list[0]?.slug, want.anchor);
    }, (err) => this.note(`Could not load the documents: ${err.message ?? err}`));
  }

  /** Open document `slug` at heading `anchor` ("" = its top): now if open, else when shown. */
  focus(slug, anchor = "") {
    if (this.visible) this.open(slug, anchor);
    else this.want = { slug, anchor };
  }

  /** The title of document `slug` (once the list has loaded). */
  titleOf(slug) { return this.list?.find((d) => d.slug === slug)?.title; }

  async #ensureList() {
    if (this.list) return;
    this.list = await docList();
    const ol = this.$("#docs-list");
    ol.replaceChildren(...this.list.map((d) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = `#${d.slug}`;
      a.dataset.doc = d.slug;
      a.textContent = d.title;
      li.append(a);
      return li;
    }));
    this.$("#docs-select").replaceChildren(...this.list.map((d) => new Option(d.title, d.slug)));
  }

  /** Show document `slug` and scroll to `anchor`. */
  async open(slug, anchor = "") {
    if (!slug) return;
    const missing = this.$("#docs-missing");
    missing.hidden = true;
    if (slug !== this.slug || !this.$("#doc-body").childElementCount) {
      const fresh = this.ticket();
      let d;
      this.note("Loading…");
      try {
        d = await doc(slug);
      } catch (err) {
        if (!fresh()) return;
        this.note("");
        missing.textContent = `There is no document "${slug}".`;
        missing.hidden = false;
        return;
      }
      if (!fresh()) return;
      this.note("");
      this.slug = slug;
      const { fragment } = renderMarkdown(d.markdown, { onLink: (t) => this.open(t.doc ?? this.slug, t.anchor) });
      const body = this.$("#doc-body");
      body.replaceChildren(fragment);
      // the server's anchors name the sections the chat cites: use them where they line up
      const hs = body.querySelectorAll("h1, h2, h3, h4, h5, h6");
      if (d.headings?.length === hs.length) {
        hs.forEach((h, i) => { if (d.headings[i].anchor) h.id = d.headings[i].anchor; });
      }
      body.dataset.doc = slug;
      for (const a of this.$("#docs-list").querySelectorAll("a")) {
        a.toggleAttribute("aria-current", a.dataset.doc === slug);
        if (a.dataset.doc === slug) a.setAttribute("aria-current", "page");
      }
      this.$("#docs-select").value = slug;
    }
    this.#scrollTo(anchor);
  }

  #scrollTo(anchor) {
    const body = this.$("#doc-body");
    for (const h of body.querySelectorAll(".flash")) h.classList.remove("flash");
    if (!anchor) {
      this.$(".docs-main").scrollTop = 0;
      body.scrollIntoView({ block: "start" });
      return;
    }
    const target = body.querySelector(`#${CSS.escape(anchor)}`);
    if (!target) {
      const missing = this.$("#docs-missing");
      missing.textContent = `This document has no section "#${anchor}"; showing its top.`;
      missing.hidden = false;
      body.scrollIntoView({ block: "start" });
      return;
    }
    target.classList.add("flash");
    target.scrollIntoView({ block: "start" });
  }
}

export default new DocsView();
