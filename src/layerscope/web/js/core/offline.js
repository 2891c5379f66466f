// A stand-in for the server's client on a page that has no server (an exported HTML file, a
// notebook output): the same surface as Client, never open, answering every request with an
// "offline" error. Everything the page shows comes from the embedded trace document.

export class OfflineClient extends EventTarget {
  /** @param {object} doc the trace document the page embeds */
  constructor(doc) {
    super();
    this.vocab = new Map(Object.entries(doc.token_text).map(([k, v]) => [+k, v]));
    this.hello = null;
    this.offline = true;
    this.model = doc.model;
  }

  connect() { queueMicrotask(() => this.dispatchEvent(new CustomEvent("state", { detail: "offline" }))); }

  get open() { return false; }

  request(msg, onFrame) {
    queueMicrotask(() => onFrame({ type: "error", req: null, code: "offline",
      message: `"${msg.type}" needs the model; this page has only the saved trace` }));
    return 0;
  }

  ask(msg) {
    return new Promise((resolve, reject) => this.request(msg, reject));
  }

  text(id) { return this.vocab.get(id); }
}
