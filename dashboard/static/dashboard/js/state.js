// What the page holds and shows, in one place: the modules read it here and
// change it here (main.js wires them), instead of each keeping its own copy.

import { TwinStore } from "./store.js";

export class PageState {
  constructor() {
    this.live = new TwinStore(); // the live twin, kept up to date by the delta stream
    this.view = this.live; // what is shown: the live twin, or the twin at a time the slider chose
    this.selected = null; // the selected host's hostname
    this.selectedSeries = null; // its series from the history API, extended by deltas (null: none loaded)
    this.connection = "connecting"; // connecting, syncing, live, reconnecting, offline
    this.everLive = false; // whether the stream was ever live (a later "live" is a return)
    this.lastUpdate = null; // Date.now() when the last state or delta was applied
  }

  /** Whether the live twin is shown (not the twin at a past time). */
  get isLive() {
    return this.view === this.live;
  }

  /** The time the page shows: null when live, else the time the slider chose. */
  shownTime() {
    return this.isLive ? null : new Date(Date.parse(this.view.generatedAt));
  }

  /** The server's "now" for what is shown (ms since the epoch): ages ("last seen 5 s ago") count from it. */
  now() {
    return this.view.serverNow();
  }

  /** Show `twin` (a TwinStore): the live twin, or the twin at a past time. */
  twinShow(twin) {
    this.view = twin;
  }

  /** Select `hostname` if the view holds it (else nothing); the hostname selected, or null. */
  select(hostname) {
    this.selected = hostname && this.view.index.has(hostname) ? hostname : null;
    this.selectedSeries = null;
    return this.selected;
  }
}
