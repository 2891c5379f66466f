// The header's model picker: which models the server can load (GET /api/models) and switching to
// one (the `switch_model` request). The server serves one model at a time; when it switches —
// asked by this page or by another one — every page gets a `model` frame, forgets the old model's
// traces (the server has dropped them) and keeps going on the new model. Token texts need no
// reload: after a switch the server sends every id's text again as new frames mention it.

/**
 * Alpine state and methods to spread into the explorer component (plain fields only: no getters).
 * @param {object} o {client, forget(frame): drop the page's traces of the previous model}
 */
export function modelPicker({ client, forget }) {
  return {
    models: [], // rows of /api/models: {name, description, available, reason, loaded}
    switching: "", // the model being loaded, while a switch runs
    modelNotice: "",

    /** Listen for switches and read the list once connected (served pages only). */
    initModels() {
      client.addEventListener("state", (e) => { if (e.detail === "open") this.loadModels(); });
      client.addEventListener("model", (e) => this.onModel(e.detail));
    },

    async loadModels() {
      try {
        const r = await fetch("/api/models", { headers: { Accept: "application/json" } });
        if (r.ok) this.models = (await r.json()).models;
      } catch { /* the picker stays as it was; the connection state says what is wrong */ }
    },

    /** The label of one option: unavailable models say why (e.g. how to fetch them). */
    modelOption(m) {
      return m.available ? m.name : `${m.name} — ${m.reason ?? "not available here"}`;
    },

    /** Ask the server to load `name` and serve it from now on. */
    async switchModel(name) {
      const current = this.model?.name;
      if (!name || name === current || this.switching) return;
      this.switching = name;
      this.modelNotice = "";
      try {
        await client.ask({ type: "switch_model", name });
      } catch (err) {
        this.showError(err);
        if (err.code !== "busy") this.errorTitle = "Could not switch models:";
        this.pickerValue(current); // still serving the old model
      } finally {
        this.switching = "";
      }
    },

    /** A `model` frame: the server now serves `f.model` (this page asked, or another did). */
    onModel(f) {
      if (f.model.name === f.previous) return; // switching to the loaded model changes nothing
      this.model = f.model;
      forget(f);
      this.hasTrace = false; // nothing on screen belongs to the new model
      this.sublayer = false;
      this.selected = [];
      this.variantLabel = "";
      this.sourceLabel = "";
      this.error = "";
      const dropped = f.dropped ? ` Traces of ${f.previous} were cleared: run your prompt` +
        " again." : "";
      this.modelNotice = `Now running ${f.model.name} (${f.model.n_blocks} blocks,` +
        ` ${f.model.n_heads} heads), loaded in ${f.load_seconds.toFixed(1)} s.${dropped}`;
      this.pickerValue(f.model.name);
      this.loadModels();
    },

    /** Put the select back on `name` (Alpine keeps no two-way binding on it). */
    pickerValue(name) {
      const sel = document.getElementById("model-picker");
      if (sel && name) sel.value = name;
    },
  };
}
