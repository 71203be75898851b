// The time slider (shown only when the server keeps history): the twin as it
// was up to 24 hours ago (GET /api/twin/state?at=), and back to live. The live
// stream keeps running meanwhile; only what the page shows changes.

import { RequestGuard } from "./api.js";
import { dateTime } from "./format.js";
import { TwinStore } from "./store.js";

const SETTLE_MS = 350; // the slider rests this long before the twin at its time is asked for

export class TimeSlider {
  /** `onViewChange()` once `state.view` has changed (a past twin shown, or the live one again). */
  constructor(root, { state, api, onViewChange }) {
    this.state = state;
    this.api = api;
    this.onViewChange = onViewChange;
    this.slider = root.querySelector("input[type=range]");
    this.label = root.querySelector("output");
    this.messageEl = root.querySelector("[role=status]");
    // Renewed whenever the slider moves: only the answer for where it rests is shown.
    this.guard = new RequestGuard();
    this.timer = null;
    this.slider.addEventListener("input", () => {
      this.guard.renew();
      this.label.textContent = this.minutes() === 0 ? "live" : dateTime(this.time());
      clearTimeout(this.timer);
      this.timer = setTimeout(() => (this.minutes() === 0 ? this.liveReturn() : this.pastShow(this.time())), SETTLE_MS);
    });
    root.querySelector("button").addEventListener("click", () => this.liveReturn());
  }

  /** Minutes before now the slider points at (0: live, negative: the past). */
  minutes() {
    return Number(this.slider.value);
  }

  time() {
    return new Date(this.state.live.serverNow() + this.minutes() * 60000);
  }

  async pastShow(at) {
    this.messageEl.textContent = "";
    let doc;
    try {
      doc = await this.api.get("twinState", { query: { at: at.toISOString() }, guard: this.guard });
    } catch (error) {
      if (error.stale) return; // the slider moved (or went back to live) while the request was out
      this.messageEl.textContent = error.unreachable ? "The server could not be reached." : error.detail || `The server refused (${error.status}).`;
      return;
    }
    const past = new TwinStore();
    past.load(doc);
    past.serverNow = () => Date.parse(doc.generatedAt);
    this.state.twinShow(past);
    this.onViewChange();
  }

  liveReturn() {
    this.guard.renew();
    this.slider.value = 0;
    this.label.textContent = "live";
    this.messageEl.textContent = "";
    if (this.state.isLive) return;
    this.state.twinShow(this.state.live);
    this.onViewChange();
  }
}
