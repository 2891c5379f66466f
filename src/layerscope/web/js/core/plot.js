// The one place that talks to Plotly: the common look, and the grids every view draws
// (layer × position, block × head) with click-to-cell.

import { plotLabel } from "./format.js";

// Every figure's mode bar: save it as PNG or SVG (Plotly draws both in the page, offline).
const SAVE_ICON = { width: 24, height: 24, path: "M11 3h2v9h3.5L12 17l-4.5-5H11zM4 19h16v2H4z" };
const saveButton = (format) => ({ name: `Download ${format.toUpperCase()}`, icon: SAVE_ICON,
  click: (gd) => window.Plotly.downloadImage(gd, { format, scale: format === "png" ? 2 : 1,
    filename: `layerscope-${gd.id || "figure"}` }) });
const CONFIG = { responsive: true, displaylogo: false,
  modeBarButtons: [[saveButton("png"), saveButton("svg")]] };
const FONT = { family: "system-ui, DejaVu Sans, sans-serif", size: 12, color: "#1b2130" };
const MONO = { family: "DejaVu Sans Mono", size: 10 };

const BASE = { margin: { l: 50, r: 10, t: 8, b: 44 }, paper_bgcolor: "rgba(0,0,0,0)",
  plot_bgcolor: "#f3f4f7", font: FONT };

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
/** `over` merged into a copy of `base`, recursively for plain objects. */
function merge(base, over) {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isObject(v) && isObject(out[k]) ? merge(out[k], v) : v;
  }
  return out;
}

/** The common layout with `over` merged in. */
export const layout = (over = {}) => merge(BASE, over);

/** Draw (or redraw in place) `data` into `el`. */
export function draw(el, data, lay) { window.Plotly.react(el, data, lay, CONFIG); }

export const restyle = (el, update, traces) => window.Plotly.restyle(el, update, traces);
export const relayout = (el, update) => window.Plotly.relayout(el, update);

/** Axis labels "t:token" for a row of token ids (escaped for Plotly). */
export const positionLabels = (ids, text, max = 8) =>
  ids.map((id, t) => `${t}:${plotLabel(text(id), max)}`);

/**
 * A grid heatmap: rows are layers (or blocks), bottom to top; columns are positions (or heads).
 * @param {object} g {z [rows][cols], x labels, hover [rows][cols], rowTitle, colorscale, zmin,
 *   zmax, colorbar {title, ...}, text (cell labels, optional), reverse, rowHeight, layout (merged
 *   over the grid's own)}
 */
export function drawGrid(el, g) {
  const rows = g.z.length;
  const data = [{
    type: "heatmap", z: g.z, x: g.x, y: [...Array(rows).keys()], hovertext: g.hover,
    hoverinfo: "text", text: g.text, texttemplate: g.text ? "%{text}" : "", textfont: MONO,
    colorscale: g.colorscale, reversescale: !!g.reverse, zmin: g.zmin, zmax: g.zmax,
    xgap: 1, ygap: 1,
    colorbar: { thickness: 12, len: 0.9, ...g.colorbar,
      title: { text: g.colorbar.title, side: "right" } },
  }];
  draw(el, data, layout(merge({
    height: Math.max(340, rows * (g.rowHeight ?? 16) + 100),
    margin: { l: 44, b: 70 },
    xaxis: { type: "category", tickfont: MONO, automargin: true,
      tickangle: g.x.length > 10 ? -50 : 0 },
    yaxis: { title: { text: g.rowTitle }, dtick: rows > 20 ? 5 : 1, zeroline: false },
  }, g.layout ?? {})));
}

/** Call `fn(row, col)` when a grid cell of `el` is clicked (replacing any earlier handler). */
export function onCellClick(el, fn) {
  el.removeAllListeners?.("plotly_click");
  el.on("plotly_click", (ev) => {
    const p = ev.points?.[0];
    if (p) fn(p.pointIndex[0], p.pointIndex[1]);
  });
}

/** Pixel box of grid row `row` inside `el` ({left, top, width, height}), or null before drawing. */
export function rowBox(el, row) {
  const fl = el._fullLayout;
  if (!fl?.yaxis) return null;
  const ya = fl.yaxis, xa = fl.xaxis;
  const top = ya._offset + ya.l2p(row + 0.5), bottom = ya._offset + ya.l2p(row - 0.5);
  return { left: xa._offset, top, width: xa._length, height: bottom - top };
}

/** Dotted column outlines (the selected positions) as layout shapes. */
export const columnShapes = (cols) => [...cols].map((t) => ({ type: "rect", xref: "x",
  yref: "paper", x0: t - 0.5, x1: t + 0.5, y0: 0, y1: 1,
  line: { color: "#4338ca", width: 1.5, dash: "dot" } }));
