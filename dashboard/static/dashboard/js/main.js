// The dashboard at /: wires the live twin (Socket.IO deltas) to the floor, the
// summary bar, the table, the side panel, the charts and the command panel.
// What the page holds is one PageState (state.js); the server is asked
// through one Api (api.js), at the URLs the page's config names.

import { Api, RequestGuard } from "./api.js";
import { DeltaHistory, HostCharts, seriesFetch } from "./charts.js";
import { STATUS_COLORS, STATUS_LABELS, STATUS_ORDER } from "./colors.js";
import { CommandPanel } from "./commands.js";
import { twinConnect } from "./connection.js";
import { FrameBatch, StatusEvents } from "./events.js";
import { Floor, LINK_MODES } from "./floor.js";
import { ago, clock, count, dateTime, percent } from "./format.js";
import { hostLink, hostLinked, hostLinkFollow } from "./hostlink.js";
import { legendShow } from "./legend.js";
import { HostPanel } from "./panel.js";
import { Probe } from "./probe.js";
import { HostSearch } from "./search.js";
import { PageState } from "./state.js";
import { HostTable } from "./table.js";
import { TimeSlider } from "./timeline.js";

const config = JSON.parse(document.getElementById("dashboard-config").textContent);
const $ = (selector) => document.querySelector(selector);

const state = new PageState();
const api = new Api({ urls: config.urls, csrfToken: config.csrfToken });
const probe = new Probe(); // the tests' and the bench's measurements (a no-op in anyone else's browser)
// The server's routes say whether it keeps history (the page is told, not left to probe).
const historyAvailable = !!config.features.history;
const deltaHistory = new DeltaHistory();
const chartsGuard = new RequestGuard(); // the selected host's series: renewed when the host or the time shown changes

const now = () => state.now();
const floor = new Floor($("#floor"), {
  onSelect: (i) => hostSelect(state.view.hosts[i].hostname),
  onHover: hoverShow,
  overlays: () => [$("#legend"), $("#timeline")],
});
const table = new HostTable($("#table-view"), { onSelect: (hostname) => hostSelect(hostname), now });
const panel = new HostPanel($("#panel"), { onClose: () => hostSelect(null), now });
const charts = new HostCharts($("#history"));
const commands = new CommandPanel($("#commands"), {
  api,
  canCommand: config.user.canCommand,
  permissions: config.user.permissions,
});
const statusEvents = new StatusEvents($("#status-events"), { api });
const hostStatus = new FrameBatch(probe.hostStatus(hostStatusShow));
const search = new HostSearch($("[role=search]"), {
  state,
  onChoose: (hostname) => {
    viewSet("floor");
    hostSelect(hostname, { fly: true });
  },
});
const timeline = new TimeSlider($("#timeline"), { state, api, onViewChange: twinShown });

window.twinDashboard = {
  state,
  live: state.live,
  stats: probe.stats,
  api,
  floor,
  table,
  charts,
  commands,
  statusEvents,
  hostStatus,
  search,
  timeline,
  config,
  view: () => state.view,
  select: (h) => hostSelect(h, { fly: true }),
};

// --- the live twin -------------------------------------------------------------------------

/** A whole twin-state: the live twin replaced, and shown unless the slider shows the past. */
function stateShow(doc) {
  state.live.load(doc);
  state.lastUpdate = Date.now();
  if (state.isLive) showAll();
}
const stateApply = probe.state(stateShow);

function onState(doc) {
  const first = !state.live.ready;
  stateApply(doc);
  if (first) firstStateArrived();
}

// The work of one delta, in the steps that probe.js times (bench/dashboard.py reports each).
const deltaSteps = {
  /** The store, and each new sample into the charts' history. */
  store(delta) {
    const result = state.live.applyDelta(delta);
    if (result.applied) for (const host of delta.hosts) deltaHistory.record(host);
    return result;
  },
  /** The changed instances rewritten in place; false when the scene must be built again. */
  scene(result) {
    if (result.structural || !floor.updateHosts(result.hosts, result.previous)) return false;
    floor.updateLinks(result.links);
    return true;
  },
  summary() {
    summaryShow();
    table.markDirty();
  },
  panel(delta) {
    if (state.selected && delta.hosts.some((h) => h.hostname === state.selected)) selectedRefresh({ appendPoint: true });
  },
};

/** A `twin-delta`: "applied", "resync" (a gap: the connection asks for the state) or "waiting" (no versioned state held yet). */
function deltaApply(delta) {
  if (state.live.version === null) return "waiting";
  const result = deltaSteps.store(delta);
  if (!result.applied) {
    // One resync per gap: until the state arrives (with its version), later
    // deltas are ignored rather than each asking again. A resync signal
    // ("resync": true, baseVersion null) is such a gap.
    state.live.version = null;
    return "resync";
  }
  state.lastUpdate = Date.now();
  if (!state.isLive) return "applied";
  if (!deltaSteps.scene(result)) showAll();
  else {
    deltaSteps.summary();
    deltaSteps.panel(delta);
  }
  return "applied";
}
const onDelta = probe.delta(deltaApply, deltaSteps);

/** Everything from the twin shown (a new state, hosts added or removed, a time chosen). */
function showAll() {
  const view = state.view;
  floor.setData(view);
  table.setSource(view);
  summaryShow();
  // A host selected but not in the twin shown (the slider went back to before it
  // existed) stays selected: the panel says so, and back at live it is shown again.
  const i = state.selected ? view.index.get(state.selected) : null;
  floor.select(i ?? null);
  table.select(state.selected);
  selectedRefresh({ appendPoint: false });
}

function firstStateArrived() {
  $("#loading").hidden = true;
  const linked = hostLinked();
  if (linked && state.live.index.has(linked)) hostSelect(linked, { fly: true });
  if (state.live.links.length > 200) {
    // Hundreds of uplinks hide the racks: start with the busiest ones (a fixed
    // threshold, such as 50 %, can show none at all on a quiet floor).
    linkSelect.value = "top";
    floor.setLinkMode("top");
    legendUpdate();
  }
  if (config.features.commands) commands.probe();
}

/** The slider chose a time, or went back to live (state.view changed). */
function twinShown() {
  document.body.classList.toggle("in-history", !state.isLive);
  showAll();
  connectionShow();
  if (state.selected) {
    if (state.isLive) state.selectedSeries = null;
    chartsLoad(state.selected);
    statusEvents.show(state.selected, { available: historyAvailable, to: state.shownTime() });
  }
}

// --- selection -----------------------------------------------------------------------------

function linksOf(hostname) {
  return state.view.links.filter((l) => l.source === hostname || l.target === hostname).sort((a, b) => b.utilization - a.utilization);
}

function hostSelect(hostname, { fly = false } = {}) {
  const selected = state.select(hostname);
  const i = selected ? state.view.index.get(selected) : null;
  floor.select(i);
  if (fly && i !== null) floor.flyTo(i);
  table.select(selected);
  hostLink(selected);
  chartsGuard.renew();
  selectedRefresh({ appendPoint: false });
  if (selected) {
    chartsLoad(selected);
    commands.show(selected);
    statusEvents.show(selected, { available: historyAvailable, to: state.shownTime() });
  } else {
    commands.hide();
    statusEvents.hide();
  }
  document.body.classList.toggle("has-selection", !!selected);
}

// A changed `#host=` (a link followed, the address edited) selects that host, as a search does.
hostLinkFollow((hostname) => {
  // Before the first state the page holds no host: firstStateArrived reads the address then.
  if (!state.live.ready || hostname === state.selected) return;
  if (!hostname) hostSelect(null);
  else if (state.view.index.has(hostname)) hostSelect(hostname, { fly: true });
});

function selectedRefresh({ appendPoint }) {
  const host = state.selected ? state.view.host(state.selected) : null;
  panel.show(host, host ? linksOf(host.hostname) : [], { absent: state.selected && !host ? state.selected : null, at: state.shownTime() });
  if (!host) return;
  const series = state.selectedSeries;
  if (series && appendPoint) {
    const seen = Date.parse(host.lastSeen) / 1000;
    if (seen > series.times[series.times.length - 1]) {
      series.times.push(seen);
      series.cpu.push(host.metrics.cpuLoad);
      series.memory.push(host.metrics.memoryUsedPercent);
      series.load.push(host.metrics.loadAverage);
      series.network.push(null);
    }
    charts.show(series, "Last hour, from the history API; live points added as they arrive.");
  } else if (!series) {
    const seen = deltaHistory.series(host.hostname);
    charts.show(seen, seen.times.length ? `${seen.times.length} sample${seen.times.length === 1 ? "" : "s"} seen since this page opened.` : "No new sample since this page opened: points appear as the host reports.");
  }
}

async function chartsLoad(hostname) {
  if (!historyAvailable) return;
  chartsGuard.renew();
  let series;
  try {
    // The hour up to the time shown: now, or the time the slider chose.
    series = await seriesFetch(api, hostname, { to: state.shownTime() ?? undefined, guard: chartsGuard });
  } catch {
    return; // another host or time since (stale), or no answer: the charts keep the page's own points
  }
  state.selectedSeries = series;
  const live = state.isLive;
  charts.show(series, `${live ? "Last hour" : "The hour before the time chosen"}, from the history API${live ? "; live points added as they arrive" : ""}.`);
}

// --- host-status events --------------------------------------------------------------------

/** The `host-status` events of one animation frame: the panel's list and the summary bar's line. */
function hostStatusShow(events) {
  // A burst (thousands of hosts at once) comes as one summary without hostnames
  // (docs/api.md): the selected host's changes are read again from the history API.
  const bursts = events.filter((event) => event.burst);
  const changes = events.filter((event) => !event.burst);
  const selected = state.selected;
  if (selected && bursts.length && state.isLive) statusEvents.show(selected, { available: historyAvailable });
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
  const h = state.view.hosts[i];
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
  const view = state.view;
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

function legendUpdate() {
  legendShow($("#legend ul"), { colorMode: floor.colorMode, linkMode: floor.linkMode });
}

const CONNECTION_TEXT = {
  connecting: "Connecting…",
  syncing: "Syncing…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

function connectionShow(connection) {
  if (connection === "live" && state.connection !== "live") {
    // Back after a loss: events are delivered at most once, so read again what they would have said.
    if (state.everLive && state.selected) {
      commands.reload();
      if (state.isLive) statusEvents.show(state.selected, { available: historyAvailable });
    }
    state.everLive = true;
  }
  if (connection) state.connection = connection;
  const live = state.isLive;
  const pill = $("#connection");
  pill.dataset.state = live ? state.connection : "history";
  const at = state.lastUpdate;
  const last = at ? `updated ${clock(new Date(at))} (${ago(Date.now() - at)})` : "no update yet";
  pill.querySelector("[data-state-text]").textContent = live ? CONNECTION_TEXT[state.connection] : "History";
  pill.querySelector("[data-state-time]").textContent = live ? last : `the twin at ${dateTime(state.shownTime())}`;
}
setInterval(() => connectionShow(), 1000);

// --- controls -----------------------------------------------------------------------------

/** Show the 3D floor or the table ("floor" or "table"). */
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
    legendUpdate();
  });
}

const linkSelect = $("#link-mode");
linkSelect.replaceChildren(...Object.entries(LINK_MODES).map(([k, v]) => new Option(v, k)));
linkSelect.addEventListener("change", () => {
  floor.setLinkMode(linkSelect.value);
  legendUpdate();
});

// --- start ------------------------------------------------------------------------------------

legendUpdate();
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
