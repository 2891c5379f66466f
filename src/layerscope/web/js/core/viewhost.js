// Mounts the views into tab panels and forwards the page's events to the open one.

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
    this.panels = new Map();
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
      panel.append(desc);
      panel.insertAdjacentHTML("beforeend", v.markup);
      container.append(panel);
      this.panels.set(v.id, panel);
      v.mount(panel, ctx);
    }
  }

  /** Open view `id` (closing the open one); it draws the trace on screen. */
  select(id) {
    const v = this.views.find((x) => x.id === id);
    if (!v || v === this.open) return;
    if (this.open) {
      this.open.hide();
      this.panels.get(this.open.id).hidden = true;
    }
    this.open = v;
    this.panels.get(id).hidden = false;
    v.show();
    if (this.ctx.trace) v.onTrace(this.ctx.trace, this.ctx);
  }

  trace(trace) { this.open?.onTrace(trace, this.ctx); }
  layer(layer) { this.open?.onLayer(layer, this.ctx); }
  selection(positions) { this.open?.onSelect(positions, this.ctx); }
}
