// The side panel of the selected host: status and how long since it was last
// seen (ticking), facts, metrics, its links, recent history and commands.

import { STATUS_COLORS, STATUS_LABELS } from "./colors.js";
import { ago, bitRate, bytes, dateTime, duration, number, percent } from "./format.js";
import { isVirtual } from "./store.js";

function bar(value) {
  const wrap = document.createElement("span");
  wrap.className = "bar";
  const fill = document.createElement("span");
  fill.style.width = `${Math.max(0, Math.min(100, value ?? 0))}%`;
  wrap.append(fill);
  return wrap;
}

export class HostPanel {
  constructor(root, { onClose, now }) {
    this.root = root;
    this.now = now;
    this.host = null;
    this.empty = root.querySelector("[data-panel-empty]");
    this.content = root.querySelector("[data-panel-host]");
    this.field = (name) => root.querySelector(`[data-f=${name}]`);
    root.querySelector("[data-panel-close]").addEventListener("click", onClose);
    setInterval(() => this.tick(), 1000);
  }

  /**
   * Show `host` with its `links`; with no host, the hint, or, when `absent` names
   * the selected host, that it was not in the twin at the time `at` shown.
   */
  show(host, links, { absent = null, at = null } = {}) {
    this.host = host;
    this.empty.hidden = !!host;
    this.content.hidden = !host;
    const note = this.root.querySelector("[data-panel-absent]");
    this.root.querySelector("[data-panel-hint]").hidden = !!absent;
    note.hidden = !absent;
    note.dataset.hostname = absent || "";
    if (absent) note.textContent = `${absent} was not in the twin at ${at ? dateTime(at, { seconds: true }) : "this time"}: it stays selected, and "Back to live" shows it again.`;
    if (!host) return;
    const m = host.metrics || {};
    this.field("title").textContent = host.displayName || host.hostname;
    this.field("hostname").textContent = host.hostname;
    this.field("kind").textContent = isVirtual(host) ? `virtual node (${host.platform})` : host.platform || "–";
    this.field("ip").textContent = host.ip || "–";
    this.field("rack").textContent = host.rack || "–";
    this.field("agent").textContent = host.agentVersion || "–";
    const p = host.position || {};
    this.field("position").textContent = `x ${number(p.x, 1)} · y ${number(p.y, 1)} · z ${number(p.z, 1)}`;
    const status = this.field("status");
    status.textContent = STATUS_LABELS[host.status] || host.status;
    status.style.setProperty("--status", STATUS_COLORS[host.status] || STATUS_COLORS.unknown);
    status.dataset.status = host.status;
    const cpu = this.field("cpu");
    cpu.replaceChildren(bar(m.cpuLoad), document.createTextNode(percent(m.cpuLoad)));
    const memory = this.field("memory");
    memory.replaceChildren(bar(m.memoryUsedPercent), document.createTextNode(percent(m.memoryUsedPercent)));
    this.field("load").textContent = number(m.loadAverage);
    this.field("uptime").textContent = duration(m.uptimeSeconds);
    this.field("net").textContent =
      m.netBytesTx === undefined && m.netBytesRx === undefined ? "–" : `${bytes(m.netBytesTx)} sent · ${bytes(m.netBytesRx)} received`;
    const linkList = this.field("links");
    linkList.replaceChildren(
      ...(links.length
        ? links.slice(0, 8).map((l) => {
            const li = document.createElement("li");
            const other = l.source === host.hostname ? l.target : l.source;
            li.append(document.createTextNode(`${other} `), bar(l.utilization * 100), document.createTextNode(` ${percent(l.utilization * 100, 0)} · ${bitRate(l.throughputGbps * 1e9)}`));
            return li;
          })
        : [Object.assign(document.createElement("li"), { textContent: "No links.", className: "muted" })]),
    );
    this.tick();
  }

  tick() {
    if (!this.host) return;
    const seen = this.host.lastSeen ? Date.parse(this.host.lastSeen) : null;
    this.field("seen").textContent = seen ? `last seen ${ago(this.now() - seen)}` : "never reported";
  }
}
