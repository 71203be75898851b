// Recent history of the selected host as small uPlot charts: from the history
// API when the server has it (GET /api/hosts/{hostname}/metrics), else from
// the deltas this page has seen since it opened.

import uPlot from "uplot";
import { bitRate } from "./format.js";

const CAPACITY = 24; // points kept per host from deltas (about 4 minutes at a 10 s interval)
const FIELDS = 5; // time, cpu, memory, load, network (bit/s)
const EPOCH = Date.now() / 1000; // times are stored as Float32 seconds since the page opened

/**
 * One small ring per host that sent a new sample while the page was open.
 * A Float32Array of CAPACITY x FIELDS (480 bytes) per host: 5 MB at 10,000 hosts.
 */
export class DeltaHistory {
  constructor() {
    this.rings = new Map();
  }

  /** Record a host document if it carries a sample newer than the last one kept. */
  record(host) {
    const seen = Date.parse(host.lastSeen);
    if (!Number.isFinite(seen) || !host.metrics) return;
    const t = seen / 1000 - EPOCH;
    let ring = this.rings.get(host.hostname);
    if (!ring) {
      ring = { data: new Float32Array(CAPACITY * FIELDS), n: 0, head: 0, lastT: -Infinity, lastBytes: null };
      this.rings.set(host.hostname, ring);
    }
    if (t <= ring.lastT) return;
    const m = host.metrics;
    const bytesTotal = m.netBytesTx !== undefined && m.netBytesRx !== undefined ? m.netBytesTx + m.netBytesRx : null;
    let rate = NaN;
    if (bytesTotal !== null && ring.lastBytes !== null && bytesTotal >= ring.lastBytes) {
      rate = ((bytesTotal - ring.lastBytes) * 8) / (t - ring.lastT);
    }
    const o = ring.head * FIELDS;
    ring.data[o] = t;
    ring.data[o + 1] = m.cpuLoad ?? NaN;
    ring.data[o + 2] = m.memoryUsedPercent ?? NaN;
    ring.data[o + 3] = m.loadAverage ?? NaN;
    ring.data[o + 4] = rate;
    ring.head = (ring.head + 1) % CAPACITY;
    ring.n = Math.min(CAPACITY, ring.n + 1);
    ring.lastT = t;
    ring.lastBytes = bytesTotal;
  }

  /** The host's points, oldest first, as uPlot columns (seconds since the epoch). */
  series(hostname) {
    const ring = this.rings.get(hostname);
    const out = { times: [], cpu: [], memory: [], load: [], network: [] };
    if (!ring) return out;
    for (let k = 0; k < ring.n; k++) {
      const o = ((ring.head - ring.n + k + CAPACITY) % CAPACITY) * FIELDS;
      const nan = (v) => (Number.isNaN(v) ? null : v);
      out.times.push(ring.data[o] + EPOCH);
      out.cpu.push(nan(ring.data[o + 1]));
      out.memory.push(nan(ring.data[o + 2]));
      out.load.push(nan(ring.data[o + 3]));
      out.network.push(nan(ring.data[o + 4]));
    }
    return out;
  }
}

/**
 * The hour (`minutes`) up to `to` of a host from the history API, as uPlot columns.
 * Rejects with the API's error (api.js) when the server refuses or the answer is stale under `guard`.
 */
export async function seriesFetch(api, hostname, { minutes = 60, to = new Date(), guard = null } = {}) {
  const from = new Date(to.getTime() - minutes * 60000);
  const query = {
    from: from.toISOString(),
    to: to.toISOString(),
    fields: "cpuLoad,memoryUsedPercent,loadAverage,netBytesTx,netBytesRx",
  };
  const body = await api.get("hostMetrics", { params: { hostname }, query, guard });
  const s = body.series || {};
  const avg = (key) => (s[key] && s[key].avg) || body.times.map(() => null);
  const tx = avg("netBytesTx");
  const rx = avg("netBytesRx");
  return {
    times: body.times.map((t) => Date.parse(t) / 1000),
    cpu: avg("cpuLoad"),
    memory: avg("memoryUsedPercent"),
    load: avg("loadAverage"),
    network: tx.map((v, i) => (v === null || rx[i] === null ? null : (v + rx[i]) * 8)),
    source: "history",
  };
}

/**
 * A y-axis as wide as its longest label (uPlot's fixed size clipped "384.7 Mbit/s"
 * on the left and left only the units readable).
 */
function axisSize(u, values, axisIndex, cycle) {
  const axis = u.axes[axisIndex];
  if (cycle > 1) return axis._size;
  let longest = "";
  for (const v of values || []) if (v && v.length > longest.length) longest = v;
  u.ctx.font = axis.font[0];
  return Math.ceil(axis.ticks.size + axis.gap + u.ctx.measureText(longest).width / (window.devicePixelRatio || 1)) + 4;
}

/** A rate as a short axis label: "380 Mb/s", "1.2 Gb/s" (the legend below the chart has it in full). */
function rateTick(v) {
  return bitRate(v).replace(/^(\d{3,})\.\d /, "$1 ").replace("bit/s", "b/s");
}

/** A time axis label in UTC: "23:24", with seconds when the ticks are closer than a minute. */
function utcTick(t, i, ticks) {
  const text = new Date(t * 1000).toISOString();
  const step = ticks && ticks.length > 1 ? ticks[1] - ticks[0] : 60;
  return step < 60 ? text.slice(11, 19) : text.slice(11, 16);
}

// Pixels between time ticks: "HH:MM" fits in 36, "HH:MM:SS" (ticks under a minute apart, a fresh
// host's first minutes) needs 60, or its labels run into each other.
function timeSpace(u, axisIndex, min, max, plotWidth) {
  return (max - min) / Math.max(1, plotWidth / 36) < 60 ? 60 : 36;
}

const CHART_HEIGHT = 120;
const AXIS = { stroke: "#9aa7b4", grid: { stroke: "#26303b", width: 1 }, ticks: { stroke: "#26303b", width: 1 }, font: "11px system-ui, sans-serif" };

function chart(container, title, series, { yRange, format, tick }) {
  const width = Math.max(200, container.clientWidth || 300);
  const options = {
    title,
    width,
    height: CHART_HEIGHT,
    cursor: { drag: { x: false, y: false } },
    legend: { show: true, live: true },
    // At least a minute wide: one or two points would otherwise stretch over years.
    scales: { x: { time: true, range: (u, min, max) => (min === null ? [Date.now() / 1000 - 60, Date.now() / 1000] : [Math.min(min, max - 60), max]) }, y: yRange ? { range: yRange } : { auto: true } },
    axes: [
      // Times in UTC, as everywhere on the page, short enough for a tick a minute in the panel's width.
      { ...AXIS, size: 28, space: timeSpace, values: (u, ticks) => ticks.map(utcTick) },
      // Ticks at least 16 px apart: three to five labels in the chart's height (the default 30 px gave one or two).
      { ...AXIS, size: axisSize, space: 16, values: (u, ticks) => ticks.map(tick || format) },
    ],
    series: [{ value: (u, v) => (v === null ? "–" : `${new Date(v * 1000).toISOString().slice(11, 19)} UTC`) }, ...series.map((s) => ({ ...s, width: 1.5, points: { size: 4 }, value: (u, v) => (v === null ? "–" : format(v)) }))],
  };
  return new uPlot(options, [[], ...series.map(() => [])], container);
}

/** A y range from zero to a little above the highest value (1 when there is none). */
function fromZero(u, min, max) {
  const top = Number.isFinite(max) && max > 0 ? max : 1;
  return [0, top * 1.1];
}

/** The three charts of the side panel. */
export class HostCharts {
  constructor(container) {
    this.container = container;
    this.note = container.querySelector("[data-history-note]");
    const holders = ["cpu", "load", "net"].map((k) => container.querySelector(`[data-chart=${k}]`));
    this.usage = chart(holders[0], "CPU and memory", [
      { label: "CPU", stroke: "#56B4E9" },
      { label: "Memory", stroke: "#CC79A7" },
    ], { yRange: [0, 100], format: (v) => `${Math.round(v)} %` });
    // From zero: a nearly flat load would otherwise get a range so narrow that it holds one tick.
    this.load = chart(holders[1], "Load average", [{ label: "Load", stroke: "#E69F00" }], { yRange: fromZero, format: (v) => v.toFixed(1) });
    this.net = chart(holders[2], "Network (tx + rx)", [{ label: "Rate", stroke: "#009E73" }], { yRange: fromZero, format: (v) => bitRate(v), tick: rateTick });
    new ResizeObserver(() => this.resize()).observe(container);
  }

  resize() {
    const width = Math.max(200, this.container.clientWidth);
    for (const c of [this.usage, this.load, this.net]) c.setSize({ width, height: CHART_HEIGHT });
  }

  show(series, note) {
    this.usage.setData([series.times, series.cpu, series.memory]);
    this.load.setData([series.times, series.load]);
    this.net.setData([series.times, series.network]);
    if (this.note) this.note.textContent = note;
  }
}
