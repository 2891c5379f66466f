// The view contract, and what every view shares. A view module (js/views/*.js) default-exports an
// object with:
//   id, label         tab id and name
//   description       one plain line for a student: what this view shows
//   term              the glossary id of what it shows: its tab's and description's tooltip
//                     (`data-term`, core/tooltips.js; the coverage test requires one)
//   group (optional)  its navigation group (core/nav.js); "learn" views open without a trace
//   markup            HTML for its tab panel (injected by main.js under the description)
//   mount(root, ctx)  once, after the markup is in the page
//   onTrace(trace, ctx)       the trace on screen changed or finished streaming (trace.complete)
//   onLayer(layer, ctx)       the scrubber moved
//   onSelect(positions, ctx)  the selected positions changed
//   show() / hide()           the tab opened or closed
//   needs (optional)  what the view asks the server for: "model" (a new run on the server's
//                     model) or "trace" (the server's activations of the trace on screen). Where
//                     that is not there (a page with no server, a trace opened from a file) the
//                     view is not drawn; the ViewHost shows a note with `python(trace, ctx)`: the
//                     Python that computes the same thing.
// Only the open view hears events; when a view opens it gets onTrace with the trace on screen, so
// it must draw everything from (trace, ctx.layer, ctx.selected). `ctx` is the page's context:
// client, store, trace, layer, selected, text(id), setLayer(l), select(positions), query(msg),
// run(request) (streams a trace onto the scrubber; a promise of the finished trace),
// show(trace) (a finished trace of the store back on screen), back() (the plain
// run), error(err) — see app.js.

export class View {
  mount(root) {
    this.root = root;
    this.visible = false;
    this.seq = 0;
  }

  $(selector) { return this.root.querySelector(selector); }

  show() { this.visible = true; }

  hide() {
    this.visible = false;
    this.seq++;
  }

  needs = null;

  onTrace() {}
  onLayer() {}
  onSelect() {}

  /** A check for an awaited answer: true until the next ticket is taken or the view closes. */
  ticket() {
    const n = ++this.seq;
    return () => n === this.seq && this.visible;
  }

  /**
   * Ask `msg` through ctx.query with `busy` shown meanwhile, then `draw(frame)` if the answer is
   * still wanted (no later load, view still open). Errors go to ctx.error.
   */
  async load(ctx, msg, busy, draw) {
    const fresh = this.ticket();
    this.note(busy);
    try {
      const f = await ctx.query(msg);
      if (!fresh()) return;
      this.note("");
      draw(f);
    } catch (err) {
      if (fresh()) this.note("");
      ctx.error(err);
    }
  }

  /** On submit of the view's form, await `work()` with the submit button disabled and reading
   * `busy`; errors go to ctx.error. */
  onSubmit(busy, ctx, work) {
    const form = this.$("form"), button = form.querySelector("[type=submit]");
    const idle = button.textContent;
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      button.disabled = true;
      button.textContent = busy;
      try {
        await work();
      } catch (err) {
        ctx.error(err);
      }
      button.disabled = false;
      button.textContent = idle;
    });
  }

  /** Show `text` in the view's `.placeholder` (hide it with ""). */
  note(text) {
    const el = this.$(".placeholder");
    el.textContent = text;
    el.hidden = !text;
  }
}
