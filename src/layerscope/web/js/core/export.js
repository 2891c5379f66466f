// The "Download" button: one self-contained HTML page for a trace, built in the browser the same
// way Python's layerscope.engine.export.html builds it (keep the two in step): index.html with the
// block between the "served" markers replaced by inline CSS, then the trace document, the Plotly
// build and the standalone bundle inline before </body>. Nothing in the page is fetched.

import { EMBED_ID } from "./document.js";

// What the page inlines, as the server serves it (vendor/ is filled by `make web`).
const ASSETS = { page: "/", css: "/static/css/app.css", plotly: "/static/vendor/plotly-cartesian.min.js",
  app: "/static/vendor/standalone.js" };
const SERVED = /<!-- served:begin[\s\S]*?<!-- served:end -->/;

/** Text that may sit inside a <script> element: no "</script" or "<!--" can end or bend it. */
export const scriptSafe = (s) => s.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");

async function fetchText(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`cannot build the download: ${url} is missing (run \`make web\`)`);
  return r.text();
}

/** The HTML page for `doc` (title: a line naming the trace). */
export async function exportHTML(doc, title) {
  const [page, css, plotly, app] = await Promise.all(
    [ASSETS.page, ASSETS.css, ASSETS.plotly, ASSETS.app].map(fetchText));
  const json = JSON.stringify(doc).replace(/</g, "\\u003c");
  const head = `<title>${escapeText(title)}</title>\n<style>\n${css}\n</style>`;
  const tail = `<script type="application/json" id="${EMBED_ID}">${json}</script>\n` +
    `<script>${scriptSafe(plotly)}</script>\n<script type="module">${scriptSafe(app)}</script>\n`;
  if (!SERVED.test(page)) throw new Error("cannot build the download: unexpected index.html");
  return page.replace(/<title>[\s\S]*?<\/title>/, "").replace(SERVED, () => head)
    .replace("</body>", () => `${tail}</body>`);
}

const escapeText = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** Offer `text` to the person as a file download named `name`. */
export function offerDownload(name, text, type = "text/html") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
