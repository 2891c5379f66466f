// Glossary tooltips on every control and technical label. Any element may carry
// `data-term="<glossary id>"`; hovering it (or focusing a control it covers) shows one accessible
// tooltip — the term's name, its short definition and a "More in the glossary" button that opens
// the glossary at that entry. Everything is built with textContent: glossary text is never parsed
// as HTML.
//
// THE COVERAGE RULE (what tests/e2e/test_tooltip_coverage.py asserts for every view):
//   Every element matching CONTROLS — `button, input, select, textarea, [role=tab]` — that is
//   not `type=hidden` nor inside EXEMPT (Plotly's toolbar, the tour popover) must have a term,
//   found by `termHolder(el)`:
//     1. el's own `data-term`; else
//     2. the nearest element carrying `data-term` between el and its closest enclosing <label>
//        (inclusive of that label) — a control wrapped in its label; else
//     3. the `data-term` of one of its associated labels (`el.labels`, i.e. <label for=…>).
//   An ancestor that is not inside the control's label (a whole card, a view panel) never counts,
//   so one attribute high up cannot cover a panel's controls. Every view also needs a term on its
//   tab (rule 1: `[role=tab]`) and on its one-line description (`.view-desc[data-term]`, from the
//   view's `term`). The term's id must exist in the glossary (src/layerscope/learn/content/
//   glossary.json). Hover uses the nearest `[data-term]` ancestor (labels, legends, headings may
//   carry one too); keyboard focus uses termHolder, so what a control announces is what the
//   coverage rule checked.

export const CONTROLS = "button, input, select, textarea, [role=tab]";
/** Third-party widgets with their own labelled tooltips: Plotly's figure toolbar (its buttons
 * carry aria-label and a title) and driver.js's tour popover (Next / Previous / close). */
export const EXEMPT = ".modebar, .driver-popover";

/** The element whose `data-term` names control `el` (see the rule above), or null. */
export function termHolder(el) {
  if (el.hasAttribute("data-term")) return el;
  const label = el.closest("label");
  if (label) {
    const near = el.parentElement?.closest("[data-term]");
    if (near && label.contains(near)) return near;
  }
  for (const l of el.labels ?? []) if (l.hasAttribute("data-term")) return l;
  return null;
}

/** Controls in `root` that break the rule: [{el, why}] (why: "no term" or "unknown term x"). */
export function uncovered(root, known) {
  const bad = [];
  for (const el of root.querySelectorAll(CONTROLS)) {
    if (el.type === "hidden" || el.closest(EXEMPT)) continue;
    const h = termHolder(el);
    if (!h) bad.push({ el, why: "no term" });
    else if (known && !known.has(h.dataset.term)) bad.push({ el, why: `unknown term ${h.dataset.term}` });
  }
  return bad;
}

const SHOW_DELAY = 300; // ms of hover before the tip appears (focus shows it at once)
const HIDE_DELAY = 200; // ms to move the pointer from the element into the tip

/**
 * Start the tooltips for the whole page (once).
 * @param {{glossary: () => Promise<{byId: Map}>, openTerm: (id: string) => void}} o
 */
export function initTooltips({ glossary, openTerm }) {
  const tip = document.createElement("div");
  tip.id = "term-tip";
  tip.className = "term-tip";
  tip.setAttribute("role", "tooltip");
  tip.hidden = true;
  const name = document.createElement("strong");
  const short = document.createElement("p");
  const more = document.createElement("button");
  more.type = "button";
  more.className = "link term-more";
  more.textContent = "More in the glossary →";
  tip.append(name, short, more);
  document.body.append(tip);

  let anchor = null; // the element described right now
  let clicked = null; // the element last clicked (no hover tip on it until the pointer leaves)
  let showTimer = 0, hideTimer = 0;
  let terms = null;
  glossary().then((g) => { terms = g.byId; }, () => { /* no glossary: no tips */ });

  const describe = (el, on) => {
    const ids = (el.getAttribute("aria-describedby") ?? "").split(/\s+/).filter((x) => x && x !== tip.id);
    if (on) ids.push(tip.id);
    if (ids.length) el.setAttribute("aria-describedby", ids.join(" "));
    else el.removeAttribute("aria-describedby");
  };

  const hide = () => {
    clearTimeout(showTimer);
    clearTimeout(hideTimer);
    if (anchor) describe(anchor, false);
    anchor = null;
    tip.hidden = true;
  };

  const show = (el, holder) => {
    const term = terms?.get(holder.dataset.term);
    if (!term) return;
    clearTimeout(hideTimer);
    if (anchor && anchor !== el) describe(anchor, false);
    anchor = el;
    name.textContent = term.term;
    short.textContent = term.short;
    more.dataset.term = term.id;
    tip.hidden = false;
    describe(el, true);
    place(tip, holder);
  };

  document.addEventListener("mouseover", (e) => {
    if (tip.contains(e.target)) { clearTimeout(hideTimer); return; }
    const holder = e.target.closest?.("[data-term]");
    if (!holder || holder.closest(".term-quiet") || holder === clicked) return;
    if (document.querySelector(".driver-popover")) return; // a tour is pointing at things already
    if (anchor === holder) { clearTimeout(hideTimer); return; }
    clearTimeout(showTimer);
    showTimer = setTimeout(() => show(holder, holder), SHOW_DELAY);
  });
  document.addEventListener("mouseout", (e) => {
    const to = e.relatedTarget;
    const from = e.target.closest?.("[data-term]");
    if (from && !from.contains(to)) {
      clearTimeout(showTimer);
      if (from === clicked) clicked = null;
    }
    if (!anchor) return;
    const inside = (n) => !!n && (anchor.contains(n) || tip.contains(n));
    if (!inside(e.target) || inside(to)) return;
    if (anchor.contains(document.activeElement)) return; // keyboard focus keeps it open
    clearTimeout(hideTimer);
    hideTimer = setTimeout(hide, HIDE_DELAY);
  });
  document.addEventListener("focusin", (e) => {
    const el = e.target;
    if (tip.contains(el)) return;
    // keyboard focus only: a mouse click focuses a button too, and its tip would then linger
    if (!el.matches?.(":focus-visible")) return;
    const holder = el.matches?.(CONTROLS) ? termHolder(el) : el.closest?.("[data-term]");
    if (!holder || holder.closest(".term-quiet")) return hide();
    clearTimeout(showTimer);
    show(el, holder);
  });
  document.addEventListener("focusout", (e) => {
    if (e.target === anchor && !tip.contains(e.relatedTarget)) hide();
  });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && anchor) hide(); });
  // a click answers the question the tip would: no tip on that element until the pointer leaves
  document.addEventListener("mousedown", (e) => {
    if (tip.contains(e.target)) return;
    clicked = e.target.closest?.("[data-term]") ?? null;
    hide();
  });
  window.addEventListener("scroll", () => { if (anchor) place(tip, anchor); }, { passive: true });
  more.addEventListener("click", () => {
    const id = more.dataset.term;
    hide();
    openTerm(id);
  });
}

/** Put the tip under `el` (above it when there is no room), inside the window. */
function place(tip, el) {
  const r = el.getBoundingClientRect();
  const w = tip.offsetWidth, h = tip.offsetHeight;
  const left = Math.max(8, Math.min(window.innerWidth - w - 8, r.left));
  const below = r.bottom + 6;
  const top = below + h > window.innerHeight - 8 && r.top - h - 6 > 8 ? r.top - h - 6 : below;
  tip.style.left = `${left}px`;
  tip.style.top = `${top}px`;
}
