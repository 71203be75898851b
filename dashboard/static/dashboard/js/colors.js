// Palettes readable by colour-blind people: Okabe-Ito for the four statuses,
// viridis for CPU load and magma for link utilization (both perceptually
// uniform sequential maps that keep their order in greyscale and for the
// common colour-vision deficiencies).

export const STATUS_ORDER = ["online", "stale", "offline", "unknown"];

export const STATUS_COLORS = {
  online: "#009E73", // bluish green
  stale: "#E69F00", // orange
  offline: "#D55E00", // vermillion
  unknown: "#8C8C8C", // grey: never reported
};

export const STATUS_LABELS = {
  online: "Online",
  stale: "Stale",
  offline: "Offline",
  unknown: "Unknown",
};

// The selection and search highlight: Okabe-Ito yellow, used for nothing else.
export const HIGHLIGHT = "#F0E442";
export const NO_DATA = "#5b6470";

const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];
const MAGMA = ["#2c115f", "#51127c", "#721f81", "#932b80", "#b73779", "#d8456c", "#f1605d", "#fc8961", "#feb078", "#fcfdbf"];

function hexToRgb(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [((v >> 16) & 255) / 255, ((v >> 8) & 255) / 255, (v & 255) / 255];
}

function table(stops) {
  return stops.map(hexToRgb);
}

const viridisTable = table(VIRIDIS);
const magmaTable = table(MAGMA);
const statusTable = Object.fromEntries(Object.entries(STATUS_COLORS).map(([k, v]) => [k, hexToRgb(v)]));
const noDataRgb = hexToRgb(NO_DATA);

function sample(stops, t, out) {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const a = stops[i];
  const b = stops[i + 1];
  out[0] = a[0] + (b[0] - a[0]) * f;
  out[1] = a[1] + (b[1] - a[1]) * f;
  out[2] = a[2] + (b[2] - a[2]) * f;
  return out;
}

/** The colour of a status, as linear-free sRGB components in [0, 1] written into `out`. */
export function statusRgb(status, out) {
  const c = statusTable[status] || statusTable.unknown;
  out[0] = c[0];
  out[1] = c[1];
  out[2] = c[2];
  return out;
}

/** CPU load (percent) on viridis; no value gives the "no data" grey. */
export function cpuRgb(cpuLoad, out) {
  if (cpuLoad === null || cpuLoad === undefined || !Number.isFinite(cpuLoad)) {
    out[0] = noDataRgb[0];
    out[1] = noDataRgb[1];
    out[2] = noDataRgb[2];
    return out;
  }
  return sample(viridisTable, cpuLoad / 100, out);
}

/** Link utilization (0..1) on magma. */
export function utilizationRgb(utilization, out) {
  return sample(magmaTable, utilization || 0, out);
}

/** CSS gradients for the legend, from the same stops the scene uses. */
export const CPU_GRADIENT = `linear-gradient(to right, ${VIRIDIS.join(", ")})`;
export const LINK_GRADIENT = `linear-gradient(to right, ${MAGMA.join(", ")})`;
