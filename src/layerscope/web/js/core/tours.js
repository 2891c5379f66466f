// Guided experiments: tours (data: src/layerscope/learn/content/tours.json, served as GET
// /api/tours) that drive the real page with driver.js. Each step highlights the control to use
// next (`element`, a CSS selector), says what to do and what to look for (`title`, `text`: plain
// text, never HTML), first runs its `prefill` actions (fill the prompt, open a view, …), and
// enables Next only once its `wait_for` condition holds on the page's state (the trace finished,
// the scrubber is at a layer, a tab is open, …). Progress is kept in localStorage, so a tour left
// half-way resumes at the step where it stopped.
//
// A step: {element?, title, text, prefill?: [action], wait_for?: {name, ...args}, hint?}
// Actions ({do: name, ...}): fill {selector, value} (sets a field as if typed), check {selector,
//   value: bool}, choose {selector, value} (a <select>), click {selector}, open_view {view},
//   set_layer {layer}, scroll {selector}.
// Conditions ({name, ...}): see CONDITIONS below.

// driver.js is served from /static/vendor (npm, `make web`); loaded on first use, by a computed
// path so that the standalone bundle (which has no tours) does not try to include it
const DRIVER = "/static/vendor/driver.js";

const STORE_KEY = "layerscope-tours";
const POLL_MS = 250;

const $ = (sel) => (sel ? document.querySelector(sel) : null);
const visible = (el) => !!el && el.getClientRects().length > 0 && !el.closest("[hidden]");

/** Condition name -> (args, page) => bool. `page` is the tour context (see startTour). */
export const CONDITIONS = {
  /** A trace finished and is on screen; with `prompt`, it is that prompt's plain run. */
  trace_done: ({ prompt }, p) => {
    const tr = p.ctx.trace;
    if (!tr?.complete || p.running()) return false;
    return prompt == null || (tr.request?.prompt ?? "").trim() === prompt.trim();
  },
  /** The scrubber shows lens layer `layer`. */
  layer_is: ({ layer }, p) => !!p.ctx.trace?.complete && p.ctx.layer === layer,
  /** View `view`'s tab is open. */
  view_open: ({ view }, p) => p.view() === view,
  /** `selector` matches an element that is on screen. */
  element_visible: ({ selector }) => visible($(selector)),
  /** The text of `selector` contains `text`. */
  text_contains: ({ selector, text }) => ($(selector)?.textContent ?? "").includes(text),
  /** The field `selector` holds `value`. */
  value_is: ({ selector, value }) => String($(selector)?.value ?? "") === String(value),
  /** A run with interventions (patched, ablated, steered) is on screen and finished. */
  variant_done: (_, p) => !!p.ctx.trace?.complete && !!p.ctx.trace.interventions?.length &&
    !p.running(),
  /** Token `position` is selected. */
  selected: ({ position }, p) => p.ctx.selected.includes(position),
  /** The view's `.placeholder` ("Computing…") is gone and `selector` is drawn. */
  drawn: ({ view, selector }) => {
    const busy = $(`#view-${view} .placeholder:not([hidden])`);
    return !busy && visible($(selector));
  },
};

/** Run one prefill action. */
export async function act(a, p) {
  const el = $(a.selector);
  switch (a.do) {
    case "fill":
      el.value = a.value;
      el.dispatchEvent(new Event("input", { bubbles: true }));
      el.dispatchEvent(new Event("change", { bubbles: true }));
      break;
    case "check":
      el.checked = !!a.value;
      el.dispatchEvent(new Event("change", { bubbles: true }));
      break;
    case "choose":
      el.value = a.value;
      el.dispatchEvent(new Event("change", { bubbles: true }));
      break;
    case "click": el.click(); break;
    case "open_view": p.ctx.openView(a.view); break;
    case "set_layer": p.ctx.setLayer(a.layer); break;
    case "scroll": el?.scrollIntoView({ block: "center" }); break;
    default: throw new Error(`unknown tour action ${a.do}`);
  }
  await new Promise((r) => setTimeout(r, 60)); // let Alpine and the views react
}

/** Whether step's condition holds now (no condition: always). */
export function holds(step, p) {
  const w = step.wait_for;
  if (!w) return true;
  const test = CONDITIONS[w.name];
  if (!test) throw new Error(`unknown tour condition ${w.name}`);
  try { return !!test(w, p); } catch { return false; }
}

// ------------------------------------------------------------------ progress (localStorage)
export function progress() {
  try { return JSON.parse(localStorage.getItem(STORE_KEY) || "{}"); } catch { return {}; }
}

function save(id, step, done) {
  const all = progress();
  all[id] = { step, done: done || !!all[id]?.done };
  try { localStorage.setItem(STORE_KEY, JSON.stringify(all)); } catch { /* private mode */ }
  window.dispatchEvent(new CustomEvent("layerscope-tours"));
}

export function forget(id) {
  const all = progress();
  delete all[id];
  try { localStorage.setItem(STORE_KEY, JSON.stringify(all)); } catch { /* private mode */ }
  window.dispatchEvent(new CustomEvent("layerscope-tours"));
}

let active = null; // {drv, tour}

/** The tour running now ({id, step}) or null. */
export function activeTour() {
  return active ? { id: active.tour.id, step: active.drv.getActiveIndex() ?? 0 } : null;
}

/**
 * Start `tour` at step `from` (default: where it was left, or 0).
 * @param {object} tour   one tour from tours.json
 * @param {object} page   {ctx (the page context), view(): open view id, running(): bool}
 */
export async function startTour(tour, page, from = null) {
  const { driver } = await import(DRIVER);
  active?.drv.destroy();
  const saved = progress()[tour.id];
  let start = from ?? (saved && !saved.done ? saved.step : 0);
  start = Math.max(0, Math.min(tour.steps.length - 1, start));
  // resuming needs the tour's trace on screen: without it (a new visit) go back to the step
  // that runs it
  const rerun = tour.steps.slice(0, start)
    .findIndex((s) => s.wait_for?.name === "trace_done" && !holds(s, page));
  if (rerun >= 0) start = rerun;
  // then replay the earlier steps' settings (fill, check, choose, the tabs they opened) but not
  // their clicks, so the page is set up as the step expects without re-running anything
  for (const s of tour.steps.slice(0, start)) {
    for (const a of s.prefill ?? []) if (a.do !== "click" && a.do !== "set_layer") await act(a, page);
    if (s.wait_for?.name === "view_open") await act({ do: "open_view", view: s.wait_for.view }, page);
  }
  let poll = 0;
  const pop = () => drv.getState("popover") ?? {};
  const stop = () => { clearInterval(poll); poll = 0; };
  const steps = tour.steps.map((s) => ({
    element: s.element || undefined,
    popover: { title: s.title, description: " " },
  }));
  const drv = driver({
    steps,
    showProgress: true,
    progressText: "Step {{current}} of {{total}}",
    allowClose: true,
    allowKeyboardControl: false,
    overlayOpacity: 0.45,
    stagePadding: 6,
    smoothScroll: true,
    popoverClass: "tour-popover",
    doneBtnText: "Finish",
    onPopoverRender: (pop, { state }) => {
      const i = state.activeIndex ?? 0;
      const s = tour.steps[i];
      pop.wrapper.dataset.tour = tour.id;
      pop.wrapper.dataset.step = String(i);
      pop.title.textContent = s.title;
      pop.description.textContent = "";
      for (const para of s.text.split(/\n\n+/)) {
        const el = document.createElement("p");
        el.textContent = para;
        pop.description.append(el);
      }
      const status = document.createElement("p");
      status.className = "tour-status";
      status.setAttribute("aria-live", "polite");
      pop.description.append(status);
      const leave = document.createElement("button");
      leave.type = "button";
      leave.className = "tour-leave";
      leave.textContent = "Leave (resume later)";
      leave.addEventListener("click", () => drv.destroy());
      pop.footer.prepend(leave);
      const next = pop.nextButton;
      let reached = false; // once the condition held in this step, Next stays enabled
      const check = () => {
        reached ||= holds(s, page);
        const ok = reached;
        next.disabled = !ok;
        next.classList.toggle("driver-popover-btn-disabled", !ok);
        status.textContent = s.wait_for ? (ok ? "✓ Done — press Next." : s.hint ?? "Waiting…") : "";
        status.classList.toggle("ok", ok);
      };
      stop();
      check();
      poll = setInterval(check, POLL_MS);
      save(tour.id, i, false);
    },
    onNextClick: async () => {
      const i = drv.getActiveIndex() ?? 0;
      if (pop().nextButton?.disabled) return;
      if (i + 1 >= tour.steps.length) {
        save(tour.id, 0, true);
        stop();
        drv.destroy();
        return;
      }
      stop();
      for (const a of tour.steps[i + 1].prefill ?? []) await act(a, page);
      drv.moveNext();
    },
    onPrevClick: () => {
      stop();
      drv.movePrevious();
    },
    onDestroyed: () => {
      stop();
      if (active?.drv === drv) active = null;
      window.dispatchEvent(new CustomEvent("layerscope-tours"));
    },
  });
  active = { drv, tour };
  for (const a of tour.steps[start].prefill ?? []) await act(a, page);
  drv.drive(start);
}
