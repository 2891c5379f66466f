// Mounts the views into tab panels and forwards the page's events to the open one. A view that
// needs what the page does not have (see `needs` in view.js) is not told about the trace; its
// panel shows why, and the Python that computes the same thing.

import { escapeHTML } from "./format.js";

export class ViewHost {
  /**
   * @param {HTMLElement} container where the panels go
   * @param {object[]} views        the view modules (see view.js), in tab order
   * @param {object} ctx            the page context handed to every view
   */
  constructor(container, views, ctx) {
    this.views = views;
    this.ctx = ctx;
    this.open = null;
    this.live = false; // whether the open view is drawing (not replaced by its note)
    this.panels = new Map(); // id -> {panel, body, note}
    for (const v of views) {
      const panel = document.createElement("div");
      panel.className = "view";
      panel.id = `view-${v.id}`;
      panel.setAttribute("role", "tabpanel");
      panel.setAttribute("aria-labelledby", `tab-${v.id}`);
      panel.hidden = true;
      const desc = document.createElement("p");
      desc.className = "view-desc";
      desc.textContent = v.description;
      if (v.term) desc.dataset.term = v.term; // its glossary tooltip (core/tooltips.js)
      const note = document.createElement("div");
      note.className = "needs-note";
      note.hidden = true;
      const body = document.createElement("div");
      body.className = "view-body";
      body.insertAdjacentHTML("beforeend", v.markup);
      panel.append(desc, note, body);
      container.append(panel);
      this.panels.set(v.id, { panel, body, note });
      v.mount(panel, ctx);
    }
  }

  /** Why view `v` cannot draw `trace` here ("" when it can). */
  missing(v, trace) {
    if (!v.needs || !trace) return "";
    if (this.ctx.offline) {
      return "This view needs the model, and this page has only the saved trace (no server).";
    }
    if (v.needs === "trace" && trace.source) {
      return "This trace was opened from a file: the server has none of its activations, so " +
        "this view cannot be computed here.";
    }
    return "";
  }

  /** Open view `id` (closing the open one); it draws the trace on screen. */
  select(id) {
    const v = this.views.find((x) => x.id === id);
    if (!v || v === this.open) return;
    if (this.open) {
      this.open.hide();
      this.panels.get(this.open.id).panel.hidden = true;
    }
    this.open = v;
    this.panels.get(id).panel.hidden = false;
    v.show();
    this.live = false;
    if (this.ctx.trace) this.trace(this.ctx.trace);
  }

  trace(trace) {
    const v = this.open;
    if (!v) return;
    const why = this.missing(v, trace);
    const { body, note } = this.panels.get(v.id);
    body.hidden = !!why;
    note.hidden = !why;
    this.live = !why;
    if (why) {
      note.innerHTML = `<p><b>Needs the model.</b> ${escapeHTML(why)} Run it from Python:</p>` +
        `<pre class="py"><code>${escapeHTML(v.python(trace, this.ctx))}</code></pre>`;
      return;
    }
    v.onTrace(trace, this.ctx);
  }

  layer(layer) { if (this.live) this.open.onLayer(layer, this.ctx); }
  selection(positions) {
    if (!this.open) return;
    if (this.live) this.open.onSelect(positions, this.ctx);
    else if (this.ctx.trace) this.trace(this.ctx.trace); // the note's snippet names the selection
  }
}
