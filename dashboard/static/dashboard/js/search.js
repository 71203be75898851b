// The search box: a combobox whose suggestions are a listbox under it (arrows
// move between them, Enter chooses, Escape closes); `/` anywhere on the page
// focuses it. Hosts are found by hostname or display name, those starting
// with the text first.

import { STATUS_COLORS } from "./colors.js";

const SHOWN = 8; // suggestions at most

export class HostSearch {
  /** `root` holds the input, the listbox and the message; `onChoose(hostname)` when a host is chosen. */
  constructor(root, { state, onChoose }) {
    this.state = state;
    this.onChoose = onChoose;
    this.input = root.querySelector("[role=combobox]");
    this.list = root.querySelector("[role=listbox]");
    this.messageEl = root.querySelector("[role=status]");
    this.matches = [];
    this.active = -1; // the index of the suggestion Enter would choose

    this.input.addEventListener("input", () => {
      this.matches = this.find(this.input.value);
      this.active = this.matches.length ? 0 : -1;
      this.render();
      this.messageEl.textContent = this.input.value.trim() && !this.matches.length ? "No host matches." : "";
    });
    this.input.addEventListener("keydown", (e) => this.key(e));
    this.input.addEventListener("blur", () => setTimeout(() => this.close(), 100));
    document.addEventListener("keydown", (e) => {
      if (e.key === "/" && document.activeElement.tagName !== "INPUT" && document.activeElement.tagName !== "TEXTAREA") {
        e.preventDefault();
        this.input.focus();
      }
    });
  }

  /** The hosts of the view shown matching `text`: names starting with it, then names containing it. */
  find(text) {
    const q = text.trim().toLowerCase();
    if (!q) return [];
    const starts = [];
    const contains = [];
    for (const h of this.state.view.hosts) {
      const name = h.hostname;
      const display = (h.displayName || "").toLowerCase();
      if (name.startsWith(q) || display.startsWith(q)) starts.push(h);
      else if (name.includes(q) || display.includes(q)) contains.push(h);
      if (starts.length >= SHOWN) break;
    }
    const byName = (a, b) => a.hostname.localeCompare(b.hostname);
    return [...starts.sort(byName), ...contains.sort(byName)].slice(0, SHOWN);
  }

  key(e) {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const n = this.matches.length;
      if (n) this.active = (this.active + (e.key === "ArrowDown" ? 1 : -1) + n) % n;
      this.render();
    } else if (e.key === "Enter") {
      e.preventDefault();
      const exact = this.state.view.host(this.input.value.trim().toLowerCase());
      const chosen = this.active >= 0 ? this.matches[this.active] : exact;
      if (chosen) this.choose(chosen.hostname);
    } else if (e.key === "Escape") {
      this.close();
    }
  }

  choose(hostname) {
    this.close();
    this.input.value = hostname;
    this.onChoose(hostname);
  }

  /** No suggestions shown (and none for Enter to choose: it takes the host named exactly). */
  close() {
    this.matches = [];
    this.active = -1;
    this.render();
  }

  render() {
    this.list.replaceChildren(
      ...this.matches.map((h, k) => {
        const li = document.createElement("li");
        li.id = `suggestion-${k}`;
        li.role = "option";
        li.setAttribute("aria-selected", String(k === this.active));
        const dot = document.createElement("span");
        dot.className = "dot";
        dot.style.background = STATUS_COLORS[h.status] || STATUS_COLORS.unknown;
        li.append(dot, `${h.hostname}${h.rack ? ` · ${h.rack}` : ""}`);
        li.addEventListener("mousedown", (e) => {
          e.preventDefault();
          this.choose(h.hostname);
        });
        return li;
      }),
    );
    this.list.hidden = !this.matches.length;
    this.input.setAttribute("aria-expanded", String(!!this.matches.length));
    this.input.setAttribute("aria-activedescendant", this.active >= 0 ? `suggestion-${this.active}` : "");
  }
}
