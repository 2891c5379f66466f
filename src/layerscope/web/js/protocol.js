// WebSocket client for layerscope's protocol (see the README's protocol section): requests carry a `req`
// number, every answering frame echoes it; `vocab` deltas fill one shared token table.

const TERMINAL = new Set(["done", "error", "heads", "cell", "pca", "patch", "early_exit"]);

export class Client extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.vocab = new Map();
    this.handlers = new Map();
    this.nextReq = 1;
    this.ws = null;
    this.hello = null;
    this.retry = 500;
  }

  connect() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onmessage = (ev) => this.#onFrame(JSON.parse(ev.data), ev.data.length);
    ws.onopen = () => { this.retry = 500; };
    ws.onclose = () => {
      this.hello = null;
      for (const [req, h] of this.handlers) {
        h({ type: "error", req, code: "internal", message: "connection to the server was lost" });
      }
      this.handlers.clear();
      this.dispatchEvent(new CustomEvent("state", { detail: "closed" }));
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 8000);
    };
  }

  get open() { return this.ws?.readyState === WebSocket.OPEN && this.hello !== null; }

  /** Send a request; `onFrame(frame)` gets each answering frame until a terminal one. */
  request(msg, onFrame) {
    const req = this.nextReq++;
    if (!this.open) {
      queueMicrotask(() => onFrame({ type: "error", req, code: "internal",
        message: "not connected to the server" }));
      return req;
    }
    this.handlers.set(req, onFrame);
    this.ws.send(JSON.stringify({ ...msg, req }));
    return req;
  }

  /** A request answered by one frame, as a promise (rejects with the error frame). */
  ask(msg) {
    return new Promise((resolve, reject) => {
      this.request(msg, (f) => (f.type === "error" ? reject(f) : resolve(f)));
    });
  }

  text(id) { return this.vocab.get(id); }

  #onFrame(frame, size) {
    if (frame.vocab) for (const k in frame.vocab) this.vocab.set(+k, frame.vocab[k]);
    if (frame.type === "hello") {
      this.hello = frame;
      try { sessionStorage.setItem("layerscope-session", frame.session); } catch { /* private */ }
      this.dispatchEvent(new CustomEvent("state", { detail: "open" }));
      return;
    }
    frame._bytes = size;
    const h = this.handlers.get(frame.req);
    if (!h) {
      if (frame.type === "error") this.dispatchEvent(new CustomEvent("error", { detail: frame }));
      return;
    }
    if (TERMINAL.has(frame.type)) this.handlers.delete(frame.req);
    h(frame);
  }
}

export function socketURL() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  let session = "";
  try { session = sessionStorage.getItem("layerscope-session") || ""; } catch { /* private */ }
  const q = session ? `?session=${encodeURIComponent(session)}` : "";
  return `${proto}//${location.host}/ws${q}`;
}
