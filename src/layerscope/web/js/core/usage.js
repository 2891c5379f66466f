// Usage reports: what a person does on the page — layers scrubbed, views opened, experiments run —
// counted here and sent to the server as a `usage` request at most every few seconds, and when the
// page is hidden or closed. Counts and ids only: never a prompt, a token or any other text. A
// server without the `usage` request (or a page with no server) gets nothing, and a report that
// fails is dropped: usage reporting never gets in the way of the page.

/** Request types that are experiments (a trace with interventions counts as `trace_<kind>`). */
export const EXPERIMENTS = new Set([
  "effect", "steer_sweep", "steering_vector", "component_patch", "patch_sweep", "compare",
  "attribute", "beams", "branch", "early_exit", "induction_probe",
]);
const NAME = /^[a-z][a-z0-9_-]{0,39}$/; // what the server accepts as a view or experiment name
const MAX_NAMES = 64; // names one report may carry
const MAX_LAYERS = 100000; // layer changes one report may carry

/** The experiments a request runs: its type, or `trace_<kind>` per intervention kind. */
export function experimentsOf(msg) {
  if (EXPERIMENTS.has(msg?.type)) return [msg.type];
  if (msg?.type !== "trace" || !Array.isArray(msg.interventions)) return [];
  const kinds = new Set(msg.interventions.map((iv) => `trace_${iv?.kind}`));
  return [...kinds].filter((k) => NAME.test(k));
}

export class UsageReporter {
  /**
   * @param {object} client the page's Client (it emits a `request` event for each request sent)
   * @param {{interval?: number}} o at most one report per `interval` ms (default 5000)
   */
  constructor(client, { interval = 5000 } = {}) {
    this.client = client;
    this.interval = interval;
    this.layers = 0;
    this.views = new Set();
    this.experiments = new Set();
    this.timer = 0;
    this.sent = 0; // reports sent (for tests)
    client.addEventListener("request", (e) => {
      for (const name of experimentsOf(e.detail)) this.#add(this.experiments, name);
    });
    const flush = () => this.flush();
    addEventListener("pagehide", flush);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") flush();
    });
  }

  /** The person moved the layer scrubber to another layer. */
  scrubbed() {
    this.layers = Math.min(MAX_LAYERS, this.layers + 1);
    this.#soon();
  }

  /** The person opened view `id`. */
  viewed(id) { this.#add(this.views, id); }

  /** Send what is new now, if the server takes usage reports and is connected. */
  flush() {
    clearTimeout(this.timer);
    this.timer = 0;
    if (!this.layers && !this.views.size && !this.experiments.size) return;
    const c = this.client;
    if (!c.open || !c.hello?.requests?.usage) return; // kept for later (a server without it: never)
    const msg = { type: "usage", layers_scrubbed: this.layers,
      views: [...this.views].slice(0, MAX_NAMES), experiments: [...this.experiments].slice(0, MAX_NAMES) };
    this.layers = 0;
    this.views.clear();
    this.experiments.clear();
    try {
      c.request(msg, () => {}); // the answer (or an error) changes nothing on the page
      this.sent++;
    } catch { /* never break the page over a report */ }
  }

  #add(set, name) {
    if (typeof name !== "string" || !NAME.test(name) || set.has(name)) return;
    set.add(name);
    this.#soon();
  }

  #soon() {
    if (!this.timer) this.timer = setTimeout(() => this.flush(), this.interval);
  }
}

/** A reporter for a page's client, or null where there is no server (a saved, offline page). */
export function trackUsage(client, options) {
  if (!client || client.offline) return null;
  return new UsageReporter(client, options);
}
