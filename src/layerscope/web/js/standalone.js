// The page with no server: an HTML file written by trace.save_html / the Download button, or a
// notebook output (trace.show()). It boots the same explorer from the trace document embedded in
// the page (<script type="application/json" id="layerscope-trace">), with an offline stand-in for
// the client. `make web` bundles this file, Alpine and the views into vendor/standalone.js with
// esbuild; Plotly (window.Plotly) comes inline before it.

import Alpine from "alpinejs";
import { explorer } from "./app.js";
import { EMBED_ID, checkDocument } from "./core/document.js";
import { OfflineClient } from "./core/offline.js";

const doc = checkDocument(JSON.parse(document.getElementById(EMBED_ID).textContent));
Alpine.data("app", () => explorer({ Alpine, client: new OfflineClient(doc), doc }));
Alpine.start();
fitFrame();

/** In a notebook the page sits in an iframe: grow the frame to the page's height. */
function fitFrame() {
  let frame = null;
  try { frame = window.frameElement; } catch { /* another origin: leave the frame as it is */ }
  if (!frame) return;
  const fit = () => {
    const h = Math.ceil(document.documentElement.scrollHeight);
    if (Math.abs(frame.clientHeight - h) > 4) frame.style.height = `${h}px`;
  };
  new ResizeObserver(fit).observe(document.body);
  fit();
}
