// Counters and main-thread timings of the page's work, for the browser tests
// and bench/dashboard.py, which read them as `window.twinDashboard.stats`
// (stateApplyMs, firstStateAt, deltaApplyMs, deltaParts, lastDelta, ...).
//
// The page's work does not time itself: main.js hands its functions to this
// module once, at start, and calls what comes back. In a page driven by
// automation (`navigator.webdriver`: Playwright, as the tests and the bench
// drive it) they come back wrapped in a measurement; in anyone else's browser
// they come back untouched and `stats` stays empty.

const DELTA_TIMES_KEPT = 500; // then the older half is dropped

export class Probe {
  constructor({ enabled = navigator.webdriver === true } = {}) {
    this.enabled = enabled;
    this.stats = {};
    if (enabled) {
      Object.assign(this.stats, { statesApplied: 0, deltasApplied: 0, resyncs: 0, stateApplyMs: [], deltaApplyMs: [], firstStateAt: null });
    }
  }

  /** `show(doc)`, a whole state shown: its time, and the time the first one was done (ms since navigation). */
  state(show) {
    if (!this.enabled) return show;
    const stats = this.stats;
    return (doc) => {
      const t0 = performance.now();
      const result = show(doc);
      const t1 = performance.now();
      stats.statesApplied += 1;
      stats.stateApplyMs.push(t1 - t0);
      if (stats.firstStateAt === null) stats.firstStateAt = t1;
      return result;
    };
  }

  /**
   * `apply(delta)`, answering "applied", "resync" or "waiting" (no versioned state held yet);
   * `steps`, the object whose functions it calls for each part of the work
   * (store, scene, summary, panel): each is timed into `deltaParts`.
   */
  delta(apply, steps) {
    if (!this.enabled) return apply;
    const stats = this.stats;
    let parts = null;
    for (const [name, step] of Object.entries(steps)) {
      steps[name] = (...args) => {
        const t0 = performance.now();
        try {
          return step(...args);
        } finally {
          if (parts) parts[name] += performance.now() - t0;
        }
      };
    }
    return (delta) => {
      parts = Object.fromEntries(Object.keys(steps).map((name) => [name, 0]));
      const t0 = performance.now();
      const outcome = apply(delta);
      const ms = performance.now() - t0;
      if (outcome === "resync") stats.resyncs += 1;
      if (outcome === "applied") {
        stats.deltaParts = parts; // where the time went: store and history, scene, summary and table, side panel
        stats.deltaApplyMs.push(ms);
        if (stats.deltaApplyMs.length > DELTA_TIMES_KEPT) stats.deltaApplyMs.splice(0, DELTA_TIMES_KEPT / 2);
        stats.lastDeltaHosts = delta.hosts.length;
        stats.lastDelta = delta; // for bench/dashboard.py's floor
        stats.deltasApplied += 1;
      }
      parts = null;
      return outcome;
    };
  }

  /** `show(events)`, one frame's `host-status` events: how many were summaries of a burst (the FrameBatch counts the rest). */
  hostStatus(show) {
    if (!this.enabled) return show;
    const stats = this.stats;
    stats.hostStatusBursts = 0;
    return (events) => {
      stats.hostStatusBursts += events.filter((event) => event.burst).length;
      return show(events);
    };
  }
}
