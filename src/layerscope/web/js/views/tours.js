// Tours: the menu of guided experiments (core/tours.js runs them). Each tour lists what it shows,
// how far you got (kept in this browser), and starts, resumes or restarts; a tour whose view this
// page lacks says which one.

import { forget, progress, startTour } from "../core/tours.js";
import { el } from "../core/format.js";
import { View } from "../core/view.js";
import { tours } from "../learn/api.js";

class ToursView extends View {
  id = "tours";
  label = "Tours";
  group = "learn";
  term = "guided-tour";
  description = "Guided experiments, step by step on the real model: each one sets up the run, " +
    "shows you where to click and what to look for, and waits until you get there.";
  markup = `
    <div class="placeholder" hidden></div>
    <ol id="tour-list" class="tour-list"></ol>`;

  needs = "server";

  python() {
    return "# The tours drive the web app: run `layerscope serve` and open the Tours tab.";
  }

  mount(root, ctx) {
    super.mount(root);
    this.ctx = ctx;
    this.tours = null;
    window.addEventListener("layerscope-tours", () => { if (this.tours) this.#draw(); });
  }

  show() {
    super.show();
    if (this.ctx.offline) return;
    if (this.tours) return this.#draw();
    this.note("Loading the tours…");
    tours().then((t) => {
      this.note("");
      this.tours = t;
      this.#draw();
    }, (err) => this.note(`Could not load the tours: ${err.message ?? err}`));
  }

  /** Start tour `id` (from its saved step, or from `step`). */
  start(id, step = null) {
    const tour = this.tours?.find((t) => t.id === id);
    if (!tour) return;
    const ctx = this.ctx;
    startTour(tour, { ctx, view: () => ctx.view, running: () => ctx.running }, step)
      .catch((err) => ctx.error({ code: "internal", message: `tour: ${err.message ?? err}` }));
  }

  #draw() {
    const saved = progress();
    const list = this.$("#tour-list");
    list.replaceChildren(...this.tours.map((t) => {
      const li = el("li", "tour-card");
      li.dataset.tour = t.id;
      li.append(el("h3", null, t.title), el("p", null, t.summary));
      const missing = (t.views ?? []).filter((v) => !document.getElementById(`tab-${v}`));
      const p = saved[t.id];
      const status = el("p", "tour-progress small",
        missing.length ? `Needs the ${missing.join(", ")} view, which this page does not have.`
          : p?.done ? "✓ Done." : p ? `Left at step ${p.step + 1} of ${t.steps.length}.`
            : `${t.steps.length} steps.`);
      const bar = el("div", "tour-actions");
      const go = el("button", "primary", p && !p.done ? "Resume" : p?.done ? "Again" : "Start");
      go.type = "button";
      go.dataset.term = "guided-tour";
      go.dataset.start = t.id;
      go.disabled = missing.length > 0;
      go.addEventListener("click", () => this.start(t.id, p?.done ? 0 : null));
      bar.append(go);
      if (p && !p.done) {
        const again = el("button", "link", "Start over");
        again.type = "button";
        again.dataset.term = "guided-tour";
        again.addEventListener("click", () => { forget(t.id); this.start(t.id, 0); });
        bar.append(again);
      }
      li.append(status, bar);
      return li;
    }));
  }
}

export default new ToursView();
