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

const AXIS = { stroke: "#9aa7b4", grid: { stroke: "#26303b", width: 1 }, ticks: { stroke: "#26303b", width: 1 }, font: "11px system-ui, sans-serif" };

function chart(container, title, series, { yRange, format }) {
  const width = Math.max(200, container.clientWidth || 300);
  const options = {
    title,
    width,
    height: 110,
    cursor: { drag: { x: false, y: false } },
    legend: { show: true, live: true },
    // At least a minute wide: one or two points would otherwise stretch over years.
    scales: { x: { time: true, range: (u, min, max) => (min === null ? [Date.now() / 1000 - 60, Date.now() / 1000] : [Math.min(min, max - 60), max]) }, y: yRange ? { range: yRange } : { auto: true } },
    axes: [
      { ...AXIS, size: 28 },
      { ...AXIS, size: 52, values: (u, ticks) => ticks.map(format) },
    ],
    series: [{}, ...series.map((s) => ({ ...s, width: 1.5, points: { size: 4 }, value: (u, v) => (v === null ? "–" : format(v)) }))],
  };
  return new uPlot(options, [[], ...series.map(() => [])], container);
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
    this.load = chart(holders[1], "Load average", [{ label: "Load", stroke: "#E69F00" }], { format: (v) => v.toFixed(1) });
    this.net = chart(holders[2], "Network (tx + rx)", [{ label: "Rate", stroke: "#009E73" }], { format: (v) => bitRate(v) });
    new ResizeObserver(() => this.resize()).observe(container);
  }

  resize() {
    const width = Math.max(200, this.container.clientWidth);
    for (const c of [this.usage, this.load, this.net]) c.setSize({ width, height: 110 });
  }

  show(series, note) {
    this.usage.setData([series.times, series.cpu, series.memory]);
    this.load.setData([series.times, series.load]);
    this.net.setData([series.times, series.network]);
    if (this.note) this.note.textContent = note;
  }
}
