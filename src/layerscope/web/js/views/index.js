// The explorer's views, in tab order. Adding a view: write views/<name>.js (see core/view.js for
// what it exports) and add its line here; main.js knows no view by name.

export const VIEWS = (await Promise.all([
  import("./heatmap.js"),
  import("./heads.js"),
  import("./attention.js"),
  import("./headroles.js"),
  import("./bertviz.js"),
  import("./trajectory.js"),
  import("./patching.js"),
  import("./componentpatching.js"),
  import("./attribution.js"),
  import("./compare.js"),
  import("./earlyexit.js"),
  import("./ablation.js"),
  import("./steering.js"),
  import("./beams.js"),
  import("./dataflow.js"),
  import("./components.js"),
  import("./tours.js"),
  import("./glossary.js"),
  import("./docs.js"),
  import("./chat.js"),
])).map((m) => m.default);
