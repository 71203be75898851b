// Status changes: the selected host's from the history API
// (GET /api/hosts/{hostname}/events), extended live by `host-status` events.
//
// `host-status` comes to every reader for every host, and a rack losing power
// sends thousands at once: the page only queues each one (no DOM work per
// event) and handles the queue once per animation frame.

import { RequestGuard } from "./api.js";
import { STATUS_COLORS, STATUS_LABELS } from "./colors.js";
import { clock, dateTime } from "./format.js";

const SHOWN = 20; // changes listed in the panel, newest first
const HIDDEN_FLUSH_MS = 1000; // how often a hidden page takes its queued events
const CAUSES = { data: "a sample arrived", silence: "no sample", inventory: "inventory" };

/**
 * Calls `flush(events)` once per animation frame with the events queued since the last one.
 *
 * A hidden tab draws no frames: there a timer takes the queue instead, so a
 * dashboard left in the background does not hold every event until it is seen.
 */
export class FrameBatch {
  constructor(flush) {
    this.flush = flush;
    this.queue = [];
    this.frame = null; // a pending requestAnimationFrame id
    this.timer = null; // or a pending setTimeout id, while the page is hidden
    this.received = 0;
    this.flushes = 0;
    this.lastFlushMs = null;
    this.lastFlushEvents = 0;
    document.addEventListener("visibilitychange", () => {
      if (document.hidden && this.frame !== null) {
        cancelAnimationFrame(this.frame);
        this.frame = null;
        this.schedule();
      }
    });
  }

  push(event) {
    this.queue.push(event);
    this.received += 1;
    if (this.frame === null && this.timer === null) this.schedule();
  }

  schedule() {
    if (document.hidden) this.timer = setTimeout(() => this.run(), HIDDEN_FLUSH_MS);
    else this.frame = requestAnimationFrame(() => this.run());
  }

  run() {
    this.frame = null;
    this.timer = null;
    const events = this.queue;
    this.queue = [];
    if (!events.length) return;
    this.flushes += 1;
    const t0 = performance.now();
    this.flush(events);
    // Main-thread time of the last flush (ms), for the tests and the bench to read.
    this.lastFlushMs = performance.now() - t0;
    this.lastFlushEvents = events.length;
  }
}

function statusName(status) {
  return status ? STATUS_LABELS[status] || status : "new";
}

/** The panel's list of the selected host's status changes. */
export class StatusEvents {
  constructor(root, { api }) {
    this.root = root;
    this.api = api;
    this.guard = new RequestGuard(); // renewed by every show() and hide(): one host, one time at a time
    this.listEl = root.querySelector("[data-status-events]");
    this.noteEl = root.querySelector("[data-status-events-note]");
    this.hostname = null;
    this.events = []; // oldest first, as the API answers
    this.to = null;
    this.available = false;
  }

  /**
   * Load the host's recent changes; `available` is whether the server keeps them,
   * `to` the time shown (the time slider's; none: now, and live changes are added).
   */
  async show(hostname, { available, to = null }) {
    this.guard.renew();
    this.to = to;
    this.available = available;
    this.hostname = hostname;
    this.events = [];
    this.root.hidden = !available;
    if (!available) return;
    this.note("Loading…");
    this.render();
    let body;
    try {
      const query = { limit: String(SHOWN) };
      // Up to the time shown, and including it (the API's `to` is exclusive).
      if (to) query.to = new Date(to.getTime() + 1).toISOString();
      body = await this.api.get("hostEvents", { params: { hostname }, query, guard: this.guard });
    } catch (error) {
      if (error.stale) return;
      // A host the page knows but the server no longer has (404): nothing to list.
      if (error.unreachable) this.note("Could not load the changes.");
      else this.note(error.status === 404 ? "No recorded changes." : `Could not load the changes (${error.status}).`);
      return;
    }
    // Live events may have arrived while the request was out: keep them, without doubles.
    const live = this.events;
    this.events = body.events.slice();
    this.merge(live);
    this.note("");
    this.render();
  }

  hide() {
    this.guard.renew();
    this.hostname = null;
    this.root.hidden = true;
  }

  /** Live `host-status` events (any host's; only the selected host's are kept). */
  add(events) {
    if (this.to) return; // showing the past: later changes do not belong there
    if (this.merge(events.filter((event) => event.hostname === this.hostname))) this.render();
  }

  /** Take changes not held yet (by time and status), oldest first, the newest SHOWN kept; whether any was new. */
  merge(events) {
    let changed = false;
    for (const event of events) {
      if (this.events.some((e) => e.at === event.at && e.to === event.to)) continue;
      this.events.push({ at: event.at, from: event.from, to: event.to, cause: event.cause });
      changed = true;
    }
    if (!changed) return false;
    this.events.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    if (this.events.length > SHOWN) this.events.splice(0, this.events.length - SHOWN);
    return true;
  }

  note(text) {
    this.noteEl.textContent = text;
  }

  render() {
    if (!this.events.length) {
      const empty = document.createElement("li");
      empty.className = "muted";
      empty.textContent = "No recorded changes.";
      this.listEl.replaceChildren(empty);
      return;
    }
    this.listEl.replaceChildren(
      ...this.events
        .slice()
        .reverse()
        .map((e) => {
          const li = document.createElement("li");
          li.dataset.to = e.to;
          li.dataset.cause = e.cause;
          const dot = document.createElement("span");
          dot.className = "dot";
          dot.style.background = STATUS_COLORS[e.to] || STATUS_COLORS.unknown;
          const what = document.createElement("span");
          what.textContent = `${statusName(e.from)} → ${statusName(e.to)}`;
          const when = document.createElement("span");
          when.className = "muted small";
          const at = new Date(Date.parse(e.at));
          when.textContent = ` ${Date.now() - at.getTime() < 86400000 ? clock(at) : dateTime(at)} · ${CAUSES[e.cause] || e.cause}`;
          li.append(dot, what, when);
          return li;
        }),
    );
  }
}
