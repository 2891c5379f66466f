// WebSocket client for layerscope's protocol v2. Requests carry a `req` number that every answering
// frame echoes; which frames end a request comes from the hello frame, never from a list here.
// `vocab` deltas fill one token table shared by the page. Events: `state` (open/closed), `error`
// (an error frame no request awaits), `model` (a model switch), `request` (a request was sent).

const PROTOCOL = 2;

export class Client extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.vocab = new Map();
    this.pending = new Map(); // req -> {onFrame, terminal: Set of frame types}
    this.nextReq = 1;
    this.ws = null;
    this.hello = null;
    this.retry = 500;
  }

  connect() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onmessage = (ev) => this.#onFrame(JSON.parse(ev.data));
    ws.onopen = () => { this.retry = 500; };
    ws.onclose = () => {
      this.hello = null;
      for (const req of [...this.pending.keys()]) {
        this.#fail(req, "internal", "connection to the server was lost");
      }
      this.#state("closed");
      setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 8000);
    };
  }

  get open() { return this.ws?.readyState === WebSocket.OPEN && this.hello !== null; }

  /**
   * Send a request; `onFrame(frame)` gets each answering frame, the last being one of the
   * request type's terminal frames (from hello) or an `error`. Returns the `req` number.
   */
  request(msg, onFrame) {
    const req = this.nextReq++;
    const spec = this.hello?.requests[msg.type];
    this.pending.set(req, { onFrame, terminal: new Set(spec?.terminal) });
    const refuse = (code, message) => queueMicrotask(() => this.#fail(req, code, message));
    if (!this.open) refuse("internal", "not connected to the server");
    else if (!spec) refuse("bad_request", `the server has no "${msg.type}" request`);
    else {
      this.ws.send(JSON.stringify({ ...msg, req }));
      this.dispatchEvent(new CustomEvent("request", { detail: msg })); // e.g. core/usage.js
    }
    return req;
  }

  /** A request answered by one frame, as a promise (rejects with the error frame). */
  ask(msg) {
    return new Promise((resolve, reject) => {
      this.request(msg, (f) => (f.type === "error" ? reject(f) : resolve(f)));
    });
  }

  text(id) { return this.vocab.get(id); }

  #onFrame(frame) {
    if (frame.vocab) for (const k in frame.vocab) this.vocab.set(+k, frame.vocab[k]);
    if (frame.type === "hello") return this.#onHello(frame);
    if (frame.type === "model") this.#onModel(frame); // a switch: this page's or another's
    const p = this.pending.get(frame.req);
    if (!p) {
      if (frame.type === "error") this.dispatchEvent(new CustomEvent("error", { detail: frame }));
      return;
    }
    if (frame.type === "error" || p.terminal.has(frame.type)) this.pending.delete(frame.req);
    p.onFrame(frame);
  }

  #onHello(frame) {
    if (frame.protocol !== PROTOCOL) {
      const message = `the server speaks protocol ${frame.protocol}, this page ${PROTOCOL}`;
      this.dispatchEvent(new CustomEvent("error",
        { detail: { type: "error", req: null, code: "internal", message } }));
      return;
    }
    this.hello = frame;
    try { sessionStorage.setItem("layerscope-session", frame.session); } catch { /* private */ }
    this.#state("open");
  }

  /** The server now serves another model: hello's model follows, and listeners hear of it. */
  #onModel(frame) {
    if (this.hello) this.hello = { ...this.hello, model: frame.model };
    this.dispatchEvent(new CustomEvent("model", { detail: frame }));
  }

  #fail(req, code, message) {
    const p = this.pending.get(req);
    this.pending.delete(req);
    p?.onFrame({ type: "error", req, code, message });
  }

  #state(detail) { this.dispatchEvent(new CustomEvent("state", { detail })); }
}

export function socketURL() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  let session = "";
  try { session = sessionStorage.getItem("layerscope-session") || ""; } catch { /* private */ }
  const q = session ? `?session=${encodeURIComponent(session)}` : "";
  return `${proto}//${location.host}/ws${q}`;
}
