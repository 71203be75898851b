// The floor's legend: what the colours, shapes and links mean in the modes shown.

import { CPU_GRADIENT, LINK_GRADIENT, NO_DATA, STATUS_COLORS, STATUS_LABELS, STATUS_ORDER } from "./colors.js";

function element(tag, { className, background, text } = {}, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (background) node.style.background = background;
  if (text) node.textContent = text;
  node.append(...children);
  return node;
}

const swatch = (background) => element("span", { className: "swatch", background });
const shape = (name) => element("span", { className: `swatch shape-${name}` });

/** A colour scale: its low end, the ramp, its high end. */
function scale(low, gradient, high) {
  return element("li", { className: "scale" }, element("span", { text: low }), element("span", { className: "ramp", background: gradient }), element("span", { text: high }));
}

/** Fill `list` (the legend's `<ul>`) for `colorMode` ("status" or "cpu") and `linkMode` ("all", "busy", "none"). */
export function legendShow(list, { colorMode, linkMode }) {
  const rows = [];
  if (colorMode === "status") {
    for (const status of STATUS_ORDER) rows.push(element("li", {}, swatch(STATUS_COLORS[status]), STATUS_LABELS[status]));
  } else {
    rows.push(scale("CPU 0 %", CPU_GRADIENT, "100 %"));
    rows.push(element("li", {}, swatch(NO_DATA), "no CPU value"));
  }
  rows.push(element("li", {}, shape("box"), "agent host ", shape("diamond"), "virtual node"));
  if (linkMode !== "none") {
    rows.push(scale("link 0 %", LINK_GRADIENT, "100 %"));
    rows.push(element("li", { className: "muted", text: "thicker link = busier" }));
  }
  list.replaceChildren(...rows);
}
