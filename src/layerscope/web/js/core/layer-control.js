// The scrubber's layer input: the vertical slider, arrow/Home/End keys and the mouse wheel.

const STEP = { ArrowUp: 1, ArrowRight: 1, ArrowDown: -1, ArrowLeft: -1 };
const WHEEL_PX = 50; // wheel distance per layer

export class LayerControl {
  /**
   * @param {HTMLInputElement} slider the range input
   * @param {HTMLElement} wheelArea  where the wheel scrubs
   * @param {(layer:number)=>void} onChange asked for a new layer (the caller clamps and shows it)
   */
  constructor(slider, wheelArea, onChange) {
    this.slider = slider;
    this.onChange = onChange;
    this.layer = 0;
    this.n = 0;
    this.wheel = 0;
    slider.addEventListener("input", () => onChange(+slider.value));
    document.addEventListener("keydown", (e) => this.#key(e));
    wheelArea.addEventListener("wheel", (e) => this.#wheel(e), { passive: false });
  }

  /**
   * Show `layer` of `n` lens layers. The range's max is set before its value, in the same call:
   * a value set while a stale max is in place is clamped, leaving the thumb at the wrong layer.
   */
  show(layer, n) {
    const s = this.slider;
    if (+s.max !== n - 1) s.max = n - 1;
    if (+s.value !== layer) s.value = layer;
    if (s.disabled) s.disabled = false;
    this.layer = layer;
    this.n = n;
  }

  #key(e) {
    if (!this.n || e.target.closest("input, textarea, select")) return;
    if (e.key in STEP) this.onChange(this.layer + STEP[e.key]);
    else if (e.key === "Home") this.onChange(0);
    else if (e.key === "End") this.onChange(this.n - 1);
    else return;
    e.preventDefault();
  }

  #wheel(e) {
    if (!this.n) return;
    e.preventDefault();
    this.wheel += e.deltaY;
    const steps = Math.trunc(this.wheel / WHEEL_PX);
    if (steps) {
      this.wheel -= steps * WHEEL_PX;
      this.onChange(this.layer - steps);
    }
  }
}
