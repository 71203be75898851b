// The dashboard at /: wires the live twin (Socket.IO deltas) to the floor, the
// summary bar, the table, the side panel, the charts and the command panel.

import { DeltaHistory, HostCharts, seriesFetch } from "./charts.js";
import { CPU_GRADIENT, LINK_GRADIENT, NO_DATA, STATUS_COLORS, STATUS_LABELS, STATUS_ORDER } from "./colors.js";
import { CommandPanel } from "./commands.js";
import { twinConnect } from "./connection.js";
import { FrameBatch, StatusEvents } from "./events.js";
import { Floor, LINK_MODES } from "./floor.js";
import { ago, clock, count, dateTime, percent } from "./format.js";
import { HostPanel } from "./panel.js";
import { TwinStore } from "./store.js";
import { HostTable } from "./table.js";

const config = JSON.parse(document.getElementById("dashboard-config").textContent);
const $ = (selector) => document.querySelector(selector);

const live = new TwinStore();
let view = live; // what is shown: the live twin, or the twin at a past time
let selected = null; // hostname
let connectionState = "connecting";
// The server's routes say whether it keeps history (the page is told, not left to probe).
const historyAvailable = !!config.features.history;
const deltaHistory = new DeltaHistory();
// Measurements the tests and bench/dashboard.py read (main-thread times, in ms).
const stats = { statesApplied: 0, deltasApplied: 0, resyncs: 0, stateApplyMs: [], deltaApplyMs: [], lastUpdate: null, firstStateAt: null };

const now = () => view.serverNow();
const floor = new Floor($("#floor"), {
  onSelect: (i) => hostSelect(view.hosts[i].hostname),
  onHover: hoverShow,
});
const table = new HostTable($("#table-view"), { onSelect: (hostname) => hostSelect(hostname), now });
const panel = new HostPanel($("#panel"), { onClose: () => hostSelect(null), now });
const charts = new HostCharts($("#history"));
const commands = new CommandPanel($("#commands"), {
  canCommand: config.user.canCommand,
  permissions: config.user.permissions,
  csrfToken: config.csrfToken,
});
const statusEvents = new StatusEvents($("#status-events"));
const hostStatus = new FrameBatch(hostStatusShow);

window.twinDashboard = {
  live,
  stats,
  floor,
  table,
  charts,
  commands,
  statusEvents,
  hostStatus,
  config,
  view: () => view,
  select: (h) => hostSelect(h, { fly: true }),
};

// --- the live twin -------------------------------------------------------------------------

function onState(doc) {
  const t0 = performance.now();
  live.load(doc);
  stats.statesApplied += 1;
  stats.lastUpdate = Date.now();
  if (view === live) showAll();
  stats.stateApplyMs.push(performance.now() - t0);
  if (stats.firstStateAt === null) {
    stats.firstStateAt = performance.now();
    firstStateArrived();
  }
}

function onDelta(delta) {
  if (live.version === null) return null; // not yet holding a versioned state
  const t0 = performance.now();
  const result = live.applyDelta(delta);
  if (!result.applied) {
    // One resync per gap: until the state arrives (with its version), later
    // deltas are ignored rather than each asking again. A resync signal
    // ("resync": true, baseVersion null) is such a gap.
    live.version = null;
    stats.resyncs += 1;
    return "resync";
  }
  for (const host of delta.hosts) deltaHistory.record(host);
  const t1 = performance.now();
  let t2 = t1;
  let t3 = t1;
  if (view === live) {
    if (result.structural || !floor.updateHosts(result.hosts, result.previous)) showAll();
    else {
      floor.updateLinks(result.links);
      t2 = performance.now();
      summaryShow();
      table.markDirty();
      t3 = performance.now();
      if (selected && delta.hosts.some((h) => h.hostname === selected)) selectedRefresh({ appendPoint: true });
    }
  }
  const t4 = performance.now();
  // Where the time went: store and history, scene, summary and table, side panel.
  stats.deltaParts = { store: t1 - t0, scene: t2 - t1, summary: t3 - t2, panel: t4 - t3 };
  stats.deltasApplied += 1;
  stats.lastUpdate = Date.now();
  stats.deltaApplyMs.push(performance.now() - t0);
  stats.lastDeltaHosts = delta.hosts.length;
  stats.lastDelta = delta; // for bench/dashboard.py's floor
  if (stats.deltaApplyMs.length > 500) stats.deltaApplyMs.splice(0, 250);
  return null;
}

/** Everything from the current view (a new state, hosts added or removed, a time chosen). */
function showAll() {
  floor.setData(view);
  table.setSource(view);
  summaryShow();
  if (selected && !view.index.has(selected)) selected = null;
  const i = selected ? view.index.get(selected) : null;
  floor.select(i ?? null);
  table.select(selected);
  selectedRefresh({ appendPoint: false });
}

function firstStateArrived() {
  $("#loading").hidden = true;
  const wanted = new URLSearchParams(location.hash.slice(1)).get("host");
  if (wanted && live.index.has(wanted)) hostSelect(wanted, { fly: true });
  if (live.links.length > 200) {
    // Hundreds of uplinks hide the racks: start with the busy ones only.
    linkSelect.value = "busy";
    floor.setLinkMode("busy");
    legendShow();
  }
  if (config.features.commands) commands.probe();
}

// --- selection -----------------------------------------------------------------------------

function linksOf(hostname) {
  return view.links.filter((l) => l.source === hostname || l.target === hostname).sort((a, b) => b.utilization - a.utilization);
}

let chartSeries = null; // the API's series for the selected host, extended by deltas

function hostSelect(hostname, { fly = false } = {}) {
  selected = hostname && view.index.has(hostname) ? hostname : null;
  const i = selected ? view.index.get(selected) : null;
  floor.select(i);
  if (fly && i !== null) floor.flyTo(i);
  table.select(selected);
  history.replaceState(null, "", selected ? `#host=${encodeURIComponent(selected)}` : location.pathname);
  chartSeries = null;
  selectedRefresh({ appendPoint: false });
  if (selected) {
    chartsLoad(selected);
    commands.show(selected);
    statusEvents.show(selected, { available: historyAvailable, to: shownTime() });
  } else {
    commands.hide();
    statusEvents.hide();
  }
  document.body.classList.toggle("has-selection", !!selected);
}

function selectedRefresh({ appendPoint }) {
  const host = selected ? view.host(selected) : null;
  panel.show(host, host ? linksOf(host.hostname) : []);
  if (!host) return;
  if (chartSeries && appendPoint) {
    const seen = Date.parse(host.lastSeen) / 1000;
    if (seen > chartSeries.times[chartSeries.times.length - 1]) {
      chartSeries.times.push(seen);
      chartSeries.cpu.push(host.metrics.cpuLoad);
      chartSeries.memory.push(host.metrics.memoryUsedPercent);
      chartSeries.load.push(host.metrics.loadAverage);
      chartSeries.network.push(null);
    }
    charts.show(chartSeries, "Last hour, from the history API; live points added as they arrive.");
  } else if (!chartSeries) {
    const series = deltaHistory.series(host.hostname);
    charts.show(series, series.times.length ? `${series.times.length} sample${series.times.length === 1 ? "" : "s"} seen since this page opened.` : "No new sample since this page opened: points appear as the host reports.");
  }
}

async function chartsLoad(hostname) {
  if (!historyAvailable) return;
  // The hour up to the time shown: now, or the time the slider chose.
  const to = view === live ? undefined : new Date(Date.parse(view.generatedAt));
  const series = await seriesFetch(hostname, { to }).catch(() => null);
  if (series && hostname === selected) {
    chartSeries = series;
    charts.show(series, `${view === live ? "Last hour" : "The hour before the time chosen"}, from the history API${view === live ? "; live points added as they arrive" : ""}.`);
  }
}

/** The time the page shows: null when live, else the time the slider chose. */
function shownTime() {
  return view === live ? null : new Date(Date.parse(view.generatedAt));
}

// --- host-status events --------------------------------------------------------------------

/** The `host-status` events of one animation frame: the panel's list and the summary bar's line. */
function hostStatusShow(events) {
  stats.hostStatusReceived = hostStatus.received;
  stats.hostStatusFlushes = hostStatus.flushes;
  // A burst (thousands of hosts at once) comes as one summary without hostnames
  // (docs/api.md): the selected host's changes are read again from the history API.
  const bursts = events.filter((event) => event.burst);
  const changes = events.filter((event) => !event.burst);
  stats.hostStatusBursts = (stats.hostStatusBursts || 0) + bursts.length;
  if (selected && bursts.length && view === live) statusEvents.show(selected, { available: historyAvailable });
  else if (selected && changes.length) statusEvents.add(changes);
  const last = events[events.length - 1];
  const feed = $("#status-feed");
  const dot = document.createElement("span");
  dot.className = "dot";
  if (last.burst) {
    const [busiest] = Object.entries(last.counts || {}).sort((a, b) => b[1] - a[1]);
    dot.style.background = STATUS_COLORS[busiest?.[0]] || STATUS_COLORS.unknown;
    feed.replaceChildren(dot, ` ${count(last.count)} hosts changed status at ${clock(new Date(Date.parse(last.at)))}`);
    delete feed.dataset.hostname;
    return;
  }
  dot.style.background = STATUS_COLORS[last.to] || STATUS_COLORS.unknown;
  const more = events.length > 1 ? `${count(events.length)} status changes · latest ` : "";
  feed.replaceChildren(dot, ` ${more}${last.hostname} ${last.from || "new"} → ${last.to} at ${clock(new Date(Date.parse(last.at)))}`);
  feed.dataset.hostname = last.hostname;
}

// --- hover ---------------------------------------------------------------------------------

const tooltip = $("#tooltip");
function hoverShow(i, event) {
  if (i === null || !event) {
    tooltip.hidden = true;
    return;
  }
  const h = view.hosts[i];
  tooltip.replaceChildren();
  const name = document.createElement("strong");
  name.textContent = h.hostname;
  const line = document.createElement("span");
  line.textContent = `${STATUS_LABELS[h.status] || h.status}${h.rack ? ` · ${h.rack}` : ""} · CPU ${percent(h.metrics?.cpuLoad)}`;
  tooltip.append(name, line);
  const rect = $("#floor").getBoundingClientRect();
  tooltip.style.left = `${event.clientX - rect.left + 14}px`;
  tooltip.style.top = `${event.clientY - rect.top + 14}px`;
  tooltip.hidden = false;
}

// --- summary bar, legend, connection -----------------------------------------------------

function summaryShow() {
  const counts = view.statusCounts();
  const total = view.hosts.length;
  $("#summary-total").textContent = `${count(total)} hosts`;
  for (const status of STATUS_ORDER) {
    const chip = document.querySelector(`[data-status-chip=${status}]`);
    chip.querySelector("[data-count]").textContent = count(counts[status]);
    chip.title = `${count(counts[status])} ${status} (${total ? ((100 * counts[status]) / total).toFixed(1) : 0} %): show them in the table`;
  }
  const busiest = view.busiestLinks(3).filter((l) => l.utilization > 0);
  const list = $("#busiest");
  list.replaceChildren(
    ...(busiest.length
      ? busiest.map((l) => {
          const b = document.createElement("button");
          b.type = "button";
          b.className = "link-chip";
          b.textContent = `${l.target === config.coreHostname ? l.source : l.target} ${percent(l.utilization * 100, 0)}`;
          b.title = `${l.source} ↔ ${l.target}: ${l.throughputGbps.toFixed(2)} Gbit/s`;
          b.addEventListener("click", () => hostSelect(l.target === config.coreHostname ? l.source : l.target, { fly: true }));
          return b;
        })
      : [Object.assign(document.createElement("span"), { className: "muted", textContent: "all idle" })]),
  );
}

for (const status of STATUS_ORDER) {
  const chip = document.querySelector(`[data-status-chip=${status}]`);
  chip.querySelector(".dot").style.background = STATUS_COLORS[status];
  chip.addEventListener("click", () => {
    viewSet("table");
    table.setFilter({ status });
  });
}

function legendShow() {
  const mode = floor.colorMode;
  const legend = $("#legend");
  const rows = [];
  if (mode === "status") {
    for (const status of STATUS_ORDER) rows.push(`<li><span class="swatch" style="background:${STATUS_COLORS[status]}"></span>${STATUS_LABELS[status]}</li>`);
  } else {
    rows.push(`<li class="scale"><span>CPU 0 %</span><span class="ramp" style="background:${CPU_GRADIENT}"></span><span>100 %</span></li>`);
    rows.push(`<li><span class="swatch" style="background:${NO_DATA}"></span>no CPU value</li>`);
  }
  rows.push('<li><span class="swatch shape-box"></span>agent host <span class="swatch shape-diamond"></span>virtual node</li>');
  if (floor.linkMode !== "none") rows.push(`<li class="scale"><span>link 0 %</span><span class="ramp" style="background:${LINK_GRADIENT}"></span><span>100 %</span></li><li class="muted">thicker link = busier</li>`);
  legend.querySelector("ul").innerHTML = rows.join("");
}

const CONNECTION_TEXT = {
  connecting: "Connecting…",
  syncing: "Syncing…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

let everLive = false;
function connectionShow(state) {
  if (state === "live" && connectionState !== "live") {
    // Back after a loss: events are delivered at most once, so read again what they would have said.
    if (everLive && selected) {
      commands.reload();
      if (view === live) statusEvents.show(selected, { available: historyAvailable });
    }
    everLive = true;
  }
  if (state) connectionState = state;
  const pill = $("#connection");
  pill.dataset.state = view === live ? connectionState : "history";
  const last = stats.lastUpdate ? `updated ${clock(new Date(stats.lastUpdate))} (${ago(Date.now() - stats.lastUpdate)})` : "no update yet";
  pill.querySelector("[data-state-text]").textContent = view === live ? CONNECTION_TEXT[connectionState] : "History";
  pill.querySelector("[data-state-time]").textContent = view === live ? last : `the twin at ${dateTime(new Date(Date.parse(view.generatedAt)))}`;
}
setInterval(() => connectionShow(), 1000);

// --- controls -----------------------------------------------------------------------------

function viewSet(which) {
  const tableShown = which === "table";
  document.body.dataset.view = which;
  for (const b of document.querySelectorAll("[data-view-button]")) b.setAttribute("aria-pressed", String(b.dataset.viewButton === which));
  $("#floor-view").hidden = tableShown;
  $("#table-view").hidden = !tableShown;
  floor.setVisible(!tableShown);
  table.setVisible(tableShown);
}
for (const b of document.querySelectorAll("[data-view-button]")) b.addEventListener("click", () => viewSet(b.dataset.viewButton));

for (const input of document.querySelectorAll("input[name=color-mode]")) {
  input.addEventListener("change", () => {
    floor.setColorMode(input.value);
    legendShow();
  });
}

const linkSelect = $("#link-mode");
linkSelect.replaceChildren(...Object.entries(LINK_MODES).map(([k, v]) => new Option(v, k)));
linkSelect.addEventListener("change", () => {
  floor.setLinkMode(linkSelect.value);
  legendShow();
});

// Search: suggestions as a listbox under a combobox input; Enter flies to the host.
const search = $("#search");
const suggestions = $("#search-suggestions");
let matches = [];
let active = -1;

function searchMatches(text) {
  const q = text.trim().toLowerCase();
  if (!q) return [];
  const starts = [];
  const contains = [];
  for (const h of view.hosts) {
    const name = h.hostname;
    const display = (h.displayName || "").toLowerCase();
    if (name.startsWith(q) || display.startsWith(q)) starts.push(h);
    else if (name.includes(q) || display.includes(q)) contains.push(h);
    if (starts.length >= 8) break;
  }
  const byName = (a, b) => a.hostname.localeCompare(b.hostname);
  return [...starts.sort(byName), ...contains.sort(byName)].slice(0, 8);
}

function suggestionsShow() {
  suggestions.replaceChildren(
    ...matches.map((h, k) => {
      const li = document.createElement("li");
      li.id = `suggestion-${k}`;
      li.role = "option";
      li.setAttribute("aria-selected", String(k === active));
      const dot = document.createElement("span");
      dot.className = "dot";
      dot.style.background = STATUS_COLORS[h.status] || STATUS_COLORS.unknown;
      li.append(dot, `${h.hostname}${h.rack ? ` · ${h.rack}` : ""}`);
      li.addEventListener("mousedown", (e) => {
        e.preventDefault();
        searchChoose(h.hostname);
      });
      return li;
    }),
  );
  suggestions.hidden = !matches.length;
  search.setAttribute("aria-expanded", String(!!matches.length));
  search.setAttribute("aria-activedescendant", active >= 0 ? `suggestion-${active}` : "");
}

function searchChoose(hostname) {
  matches = [];
  active = -1;
  suggestionsShow();
  search.value = hostname;
  viewSet("floor");
  hostSelect(hostname, { fly: true });
}

search.addEventListener("input", () => {
  matches = searchMatches(search.value);
  active = matches.length ? 0 : -1;
  suggestionsShow();
  $("#search-message").textContent = search.value.trim() && !matches.length ? "No host matches." : "";
});
search.addEventListener("keydown", (e) => {
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    e.preventDefault();
    if (matches.length) active = (active + (e.key === "ArrowDown" ? 1 : -1) + matches.length) % matches.length;
    suggestionsShow();
  } else if (e.key === "Enter") {
    e.preventDefault();
    const exact = view.host(search.value.trim().toLowerCase());
    const chosen = active >= 0 ? matches[active] : exact;
    if (chosen) searchChoose(chosen.hostname);
  } else if (e.key === "Escape") {
    matches = [];
    suggestionsShow();
  }
});
search.addEventListener("blur", () => setTimeout(() => {
  matches = [];
  suggestionsShow();
}, 100));
document.addEventListener("keydown", (e) => {
  if (e.key === "/" && document.activeElement.tagName !== "INPUT" && document.activeElement.tagName !== "TEXTAREA") {
    e.preventDefault();
    search.focus();
  }
});

// The time slider (only when the server keeps history): the twin at a chosen time, and back to live.
const slider = $("#timeline-range");
const sliderLabel = $("#timeline-label");
let sliderTimer = null;
function sliderTime() {
  return new Date(live.serverNow() + Number(slider.value) * 60000);
}
slider.addEventListener("input", () => {
  sliderLabel.textContent = Number(slider.value) === 0 ? "live" : dateTime(sliderTime());
  clearTimeout(sliderTimer);
  sliderTimer = setTimeout(() => (Number(slider.value) === 0 ? liveReturn() : pastShow(sliderTime())), 350);
});
$("#timeline-live").addEventListener("click", liveReturn);

const sliderMessage = $("#timeline-message");
async function pastShow(at) {
  sliderMessage.textContent = "";
  let doc;
  try {
    const response = await fetch(`/api/twin/state?at=${encodeURIComponent(at.toISOString())}`, { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) {
      sliderMessage.textContent = body.detail || `The server refused (${response.status}).`;
      return;
    }
    doc = body;
  } catch {
    sliderMessage.textContent = "The server could not be reached.";
    return;
  }
  if (Number(slider.value) === 0) return; // back to live while the request was out
  const past = new TwinStore();
  past.load(doc);
  past.serverNow = () => Date.parse(doc.generatedAt);
  view = past;
  document.body.classList.add("in-history");
  showAll();
  connectionShow();
  if (selected) {
    chartsLoad(selected);
    statusEvents.show(selected, { available: historyAvailable, to: shownTime() });
  }
}

function liveReturn() {
  slider.value = 0;
  sliderLabel.textContent = "live";
  sliderMessage.textContent = "";
  if (view === live) return;
  view = live;
  document.body.classList.remove("in-history");
  showAll();
  connectionShow();
  if (selected) {
    chartSeries = null;
    chartsLoad(selected);
    statusEvents.show(selected, { available: historyAvailable });
  }
}

// --- start ------------------------------------------------------------------------------------

legendShow();
viewSet("floor");
$("#timeline").hidden = !historyAvailable;
connectionShow("connecting");
window.twinDashboard.socket = twinConnect({
  namespace: config.namespace,
  onState,
  onDelta,
  onCommandUpdate: (event) => commands.update(event),
  onHostStatus: (event) => hostStatus.push(event),
  onConnectionState: connectionShow,
  onRefused: () => {
    if (!config.publicRead) location.assign(config.urls.login);
    else connectionShow("offline");
  },
});
