// The table view, for people who would rather read than orbit: sortable by
// every column, filterable by rack, status and name, paged, and usable from
// the keyboard (Tab to a header and Enter to sort; arrows, Home/End and
// PageUp/PageDown move between rows; Enter selects the host).

import { STATUS_COLORS, STATUS_LABELS, STATUS_ORDER } from "./colors.js";
import { ago, number, percent } from "./format.js";

const PAGE = 50;
const STATUS_RANK = Object.fromEntries(STATUS_ORDER.map((s, i) => [s, i]));

const COLUMNS = [
  { key: "hostname", label: "Host", value: (h) => h.hostname, compare: "text" },
  { key: "rack", label: "Rack", value: (h) => h.rack || "", compare: "text" },
  { key: "status", label: "Status", value: (h) => STATUS_RANK[h.status] ?? 9, compare: "number" },
  { key: "cpu", label: "CPU", value: (h) => h.metrics?.cpuLoad ?? -1, compare: "number", numeric: true },
  { key: "memory", label: "Memory", value: (h) => h.metrics?.memoryUsedPercent ?? -1, compare: "number", numeric: true },
  { key: "load", label: "Load", value: (h) => h.metrics?.loadAverage ?? -1, compare: "number", numeric: true },
  { key: "lastSeen", label: "Last seen", value: (h) => (h.lastSeen ? Date.parse(h.lastSeen) : 0), compare: "number" },
  { key: "agent", label: "Agent", value: (h) => h.agentVersion || "", compare: "text" },
];

export class HostTable {
  constructor(root, { onSelect, now }) {
    this.root = root;
    this.onSelect = onSelect;
    this.now = now;
    this.source = null;
    this.sort = { key: "hostname", direction: 1 };
    this.filter = { text: "", rack: "", status: "" };
    this.page = 0;
    this.focusRow = 0;
    this.dirty = true;
    this.visible = false;
    this.timer = null;
    this.selectedHostname = null;

    this.head = root.querySelector("thead tr");
    this.body = root.querySelector("tbody");
    this.info = root.querySelector("[data-table-info]");
    this.rackSelect = root.querySelector("[data-filter-rack]");
    this.statusSelect = root.querySelector("[data-filter-status]");
    this.textInput = root.querySelector("[data-filter-text]");
    this.prev = root.querySelector("[data-page-prev]");
    this.next = root.querySelector("[data-page-next]");

    this.statusSelect.replaceChildren(new Option("Any status", ""), ...STATUS_ORDER.map((s) => new Option(STATUS_LABELS[s], s)));
    this.head.replaceChildren(
      ...COLUMNS.map((c) => {
        const th = document.createElement("th");
        th.scope = "col";
        th.dataset.key = c.key;
        if (c.numeric) th.className = "numeric";
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = c.label;
        button.addEventListener("click", () => this.sortBy(c.key));
        th.append(button);
        return th;
      }),
    );
    this.rackSelect.addEventListener("change", () => this.setFilter({ rack: this.rackSelect.value }));
    this.statusSelect.addEventListener("change", () => this.setFilter({ status: this.statusSelect.value }));
    this.textInput.addEventListener("input", () => this.setFilter({ text: this.textInput.value.trim().toLowerCase() }));
    this.prev.addEventListener("click", () => this.goPage(this.page - 1));
    this.next.addEventListener("click", () => this.goPage(this.page + 1));
    this.body.addEventListener("keydown", (e) => this.key(e));
    this.body.addEventListener("click", (e) => {
      const row = e.target.closest("tr[data-hostname]");
      if (row) this.onSelect(row.dataset.hostname);
    });
  }

  setSource(source) {
    this.source = source;
    const racks = source.racks();
    const current = this.rackSelect.value;
    this.rackSelect.replaceChildren(new Option("Any rack", ""), ...racks.map((r) => new Option(r, r)));
    this.rackSelect.value = racks.includes(current) ? current : "";
    this.markDirty();
  }

  setFilter(change) {
    Object.assign(this.filter, change);
    if (change.status !== undefined) this.statusSelect.value = change.status;
    this.page = 0;
    this.focusRow = 0;
    this.render();
  }

  sortBy(key) {
    this.sort = this.sort.key === key ? { key, direction: -this.sort.direction } : { key, direction: 1 };
    this.page = 0;
    this.render();
  }

  goPage(page) {
    const pages = Math.max(1, Math.ceil(this.rows.length / PAGE));
    this.page = Math.min(pages - 1, Math.max(0, page));
    this.render();
  }

  setVisible(visible) {
    this.visible = visible;
    if (visible) this.render();
  }

  /** Something changed: re-render soon (at most twice a second), if shown. */
  markDirty() {
    this.dirty = true;
    if (!this.visible || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.dirty && this.visible) this.render({ keepFocus: true });
    }, 500);
  }

  select(hostname) {
    this.selectedHostname = hostname;
    for (const tr of this.body.querySelectorAll("tr[aria-selected]")) tr.setAttribute("aria-selected", String(tr.dataset.hostname === hostname));
  }

  render({ keepFocus = false } = {}) {
    if (!this.source) return;
    this.dirty = false;
    const column = COLUMNS.find((c) => c.key === this.sort.key);
    const { text, rack, status } = this.filter;
    const rows = this.source.hosts.filter(
      (h) =>
        (!rack || h.rack === rack) &&
        (!status || h.status === status) &&
        (!text || h.hostname.includes(text) || (h.displayName || "").toLowerCase().includes(text)),
    );
    const dir = this.sort.direction;
    if (column.compare === "text") rows.sort((a, b) => dir * column.value(a).localeCompare(column.value(b)) || a.hostname.localeCompare(b.hostname));
    else rows.sort((a, b) => dir * (column.value(a) - column.value(b)) || a.hostname.localeCompare(b.hostname));
    this.rows = rows;
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    this.page = Math.min(this.page, pages - 1);
    const shown = rows.slice(this.page * PAGE, this.page * PAGE + PAGE);
    const now = this.now();
    const hadFocus = keepFocus && this.body.contains(document.activeElement);

    for (const th of this.head.children) {
      th.setAttribute("aria-sort", th.dataset.key === this.sort.key ? (dir > 0 ? "ascending" : "descending") : "none");
    }
    this.body.replaceChildren(
      ...shown.map((h, i) => {
        const tr = document.createElement("tr");
        tr.dataset.hostname = h.hostname;
        tr.tabIndex = i === this.focusRow ? 0 : -1;
        tr.setAttribute("aria-selected", String(h.hostname === this.selectedHostname));
        const seen = h.lastSeen ? Date.parse(h.lastSeen) : null;
        const cells = [
          h.displayName && h.displayName !== h.hostname ? `${h.hostname} · ${h.displayName}` : h.hostname,
          h.rack || "–",
          null,
          percent(h.metrics?.cpuLoad),
          percent(h.metrics?.memoryUsedPercent),
          number(h.metrics?.loadAverage),
          seen ? ago(now - seen) : "never",
          h.agentVersion || "–",
        ];
        cells.forEach((content, k) => {
          const td = document.createElement(k === 0 ? "th" : "td");
          if (k === 0) td.scope = "row";
          if (COLUMNS[k].numeric) td.className = "numeric";
          if (content === null) {
            const dot = document.createElement("span");
            dot.className = "dot";
            dot.style.background = STATUS_COLORS[h.status] || STATUS_COLORS.unknown;
            td.append(dot, STATUS_LABELS[h.status] || h.status);
            td.dataset.status = h.status;
          } else td.textContent = content;
          tr.append(td);
        });
        return tr;
      }),
    );
    this.info.textContent = rows.length
      ? `${this.page * PAGE + 1}–${this.page * PAGE + shown.length} of ${rows.length.toLocaleString("en-US")} hosts · page ${this.page + 1} of ${pages}`
      : "No host matches.";
    this.prev.disabled = this.page === 0;
    this.next.disabled = this.page >= pages - 1;
    if (hadFocus) this.focus(this.focusRow);
  }

  focus(i) {
    const rows = this.body.children;
    if (!rows.length) return;
    this.focusRow = Math.max(0, Math.min(rows.length - 1, i));
    for (let k = 0; k < rows.length; k++) rows[k].tabIndex = k === this.focusRow ? 0 : -1;
    rows[this.focusRow].focus();
  }

  key(e) {
    const row = e.target.closest("tr");
    if (!row) return;
    const i = [...this.body.children].indexOf(row);
    const moves = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: this.body.children.length - 1 };
    if (e.key in moves) {
      e.preventDefault();
      this.focus(moves[e.key]);
    } else if (e.key === "PageDown" || e.key === "PageUp") {
      e.preventDefault();
      this.goPage(this.page + (e.key === "PageDown" ? 1 : -1));
      this.focus(0);
    } else if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      this.focusRow = i;
      this.onSelect(row.dataset.hostname);
    }
  }
}
