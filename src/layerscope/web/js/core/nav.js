// Grouped navigation: the views' tabs in four named groups (a view's `group`, default "lens"),
// shown as two levels — the group's name, then its tabs. Every tab stays on the page (ids
// `tab-<view id>`), so any view is one click away. Keyboard: each group is a tablist with one tab
// stop (roving tabindex); ←/→ move within a group, ↑/↓ to the group above or below, Home/End to
// the first or last tab; Enter or Space opens the focused view.

/** The groups, in order: id, the name shown, and a plain line for its tooltip. */
export const GROUPS = [
  { id: "lens", label: "Lens", title: "Read every layer's guess at the next token (logit lens)" },
  { id: "inside", label: "Inside the model",
    title: "Attention heads, MLPs and the residual stream, one block at a time" },
  { id: "experiments", label: "Experiments",
    title: "Change a run and see what changes: patching, ablation, steering, decoding" },
  { id: "learn", label: "Learn", title: "Glossary, documents and questions about what you see" },
];

const KNOWN = new Set(GROUPS.map((g) => g.id));

/** The group id of view `v` ("lens" when it names none or an unknown one). */
export const groupOf = (v) => (KNOWN.has(v.group) ? v.group : "lens");

/**
 * The views in their groups, each group's views in their order in `views`; empty groups left out.
 * @returns {{id, label, title, views: {id, label}[]}[]}
 */
export function navGroups(views) {
  return GROUPS.map((g) => ({
    ...g,
    views: views.filter((v) => groupOf(v) === g.id).map(({ id, label }) => ({ id, label })),
  })).filter((g) => g.views.length);
}

/** The tabindex of view `viewId`'s tab in `group` when `current` is open: one stop a group. */
export function tabIndex(group, viewId, current) {
  const here = group.views.some((v) => v.id === current);
  const stop = here ? current : group.views[0]?.id;
  return viewId === stop ? 0 : -1;
}

/** Arrow-key movement between the tabs inside `nav` (listens once, on the container). */
export function bindNavKeys(nav) {
  nav.addEventListener("keydown", (e) => {
    const tab = e.target.closest?.('[role="tab"]');
    if (!tab || e.altKey || e.ctrlKey || e.metaKey) return;
    const lists = [...nav.querySelectorAll('[role="tablist"]')];
    const row = lists.findIndex((l) => l.contains(tab));
    const tabs = (l) => [...l.querySelectorAll('[role="tab"]')];
    const mine = tabs(lists[row]);
    const i = mine.indexOf(tab);
    let next = null;
    switch (e.key) {
      case "ArrowRight": next = mine[(i + 1) % mine.length]; break;
      case "ArrowLeft": next = mine[(i - 1 + mine.length) % mine.length]; break;
      case "Home": next = mine[0]; break;
      case "End": next = mine[mine.length - 1]; break;
      case "ArrowDown":
      case "ArrowUp": {
        const other = lists[(row + (e.key === "ArrowDown" ? 1 : -1) + lists.length) % lists.length];
        const there = tabs(other);
        next = there.find((t) => t.getAttribute("aria-selected") === "true") ??
          there[Math.min(i, there.length - 1)];
        break;
      }
      default: return;
    }
    e.preventDefault();
    next?.focus();
  });
}
