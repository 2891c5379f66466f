// Shared display helpers: token text with visible whitespace, colours, numbers.

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
export const escapeHTML = (s) => s.replace(/[&<>"]/g, (c) => ESC[c]);

const htmlCache = new Map();
const WS = { " ": "·", "\n": "↵", "\r": "␍", "\t": "⇥" };

/** HTML for one token's text: spaces as faint dots, newlines and tabs as arrows. */
export function tokenHTML(text) {
  if (text === undefined) return '<span class="ws">…</span>';
  let html = htmlCache.get(text);
  if (html !== undefined) return html;
  if (text === "") html = '<span class="ws">∅</span>';
  else html = escapeHTML(text).replace(/[ \n\r\t]/g, (c) => `<span class="ws">${WS[c]}</span>`);
  htmlCache.set(text, html);
  return html;
}

/** Plain-text form of a token for plots and tooltips (visible whitespace, clipped). */
export function tokenLabel(text, max = 14) {
  if (text === undefined) return "…";
  let s = text.replace(/\n/g, "↵").replace(/\t/g, "⇥").replace(/ /g, "·");
  if (s === "") s = "∅";
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}

// Plotly reads label, hover and title strings as its own small HTML (<b>, <br>, <a href>, ...)
// and decodes &lt; &gt; &amp;: a token's text must go in escaped, or "<b>x</b>" is drawn bold
// and an unknown tag vanishes.
const PLOT_ESC = /[&<>]/g;
/** A string for Plotly's text, tick, hover and legend labels: shown literally. */
export const plotText = (s) => String(s).replace(PLOT_ESC, (c) => ESC[c]);

/** tokenLabel for Plotly labels (clipped first, then escaped: no entity is cut in half). */
export const plotLabel = (text, max = 14) => plotText(tokenLabel(text, max));

export const pct = (p) =>
  p == null || Number.isNaN(p) ? "–" : p >= 0.995 ? "100%" : p >= 0.1 ? `${(p * 100).toFixed(0)}%`
    : p >= 0.001 ? `${(p * 100).toFixed(1)}%` : "<0.1%";

// Confidence ramp shared by the stripes and the heatmap: yellow (unsure) -> deep blue (sure).
const RAMP = ["#f6c945", "#7fbf7b", "#2b8cbe", "#253494"];
export const RAMP_SCALE = RAMP.map((c, i) => [i / (RAMP.length - 1), c]);
const RAMP_RGB = RAMP.map((c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)));

/** Colour for v in [0, 1] along RAMP. */
export function rampColor(v) {
  const x = Math.min(1, Math.max(0, v)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const f = x - i;
  const a = RAMP_RGB[i], b = RAMP_RGB[i + 1];
  return `rgb(${a.map((c, j) => Math.round(c + (b[j] - c) * f)).join(",")})`;
}

/** Confidence of a rank: 1 -> 1, 1000+ -> 0, log scale. */
export const rankConfidence = (rank) => 1 - Math.min(1, Math.log10(Math.max(1, rank)) / 3);

/** A new element with an optional class and text (set as textContent: never parsed as HTML). */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}
