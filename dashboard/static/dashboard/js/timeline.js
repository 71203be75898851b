// The time slider (shown only when the server keeps history): the twin as it
// was up to 24 hours ago (GET /api/twin/state?at=), and back to live. The live
// stream keeps running meanwhile; only what the page shows changes.
//
// The slider's scale is finer near live: its position is the square root of
// the time back, so the last minutes take a good part of its width (about a
// second a pixel near the end, ten minutes a pixel at the far one). The
// keyboard steps in fixed times: arrows a minute (with Shift ten seconds),
// Page Up/Down an hour, Home a day back, End live.

import { RequestGuard } from "./api.js";
import { clock } from "./format.js";
import { TwinStore } from "./store.js";

const SETTLE_MS = 350; // the slider rests this long before the twin at its time is asked for
export const RANGE_SECONDS = 86400;
const POSITIONS = 1000; // the slider's value runs from -POSITIONS (a day back) to 0 (live)
const KEY_STEPS = { ArrowLeft: 60, ArrowDown: 60, ArrowRight: -60, ArrowUp: -60, PageDown: 3600, PageUp: -3600 };

/** Seconds back for a slider position, and back. */
export function positionSeconds(position) {
  const share = Math.min(1, Math.max(0, -position / POSITIONS));
  return Math.round(RANGE_SECONDS * share * share);
}

export function secondsPosition(seconds) {
  return -Math.round(POSITIONS * Math.sqrt(Math.min(RANGE_SECONDS, Math.max(0, seconds)) / RANGE_SECONDS));
}

export class TimeSlider {
  /** `onViewChange()` once `state.view` has changed (a past twin shown, or the live one again). */
  constructor(root, { state, api, onViewChange }) {
    this.state = state;
    this.api = api;
    this.onViewChange = onViewChange;
    this.slider = root.querySelector("input[type=range]");
    this.slider.min = String(-POSITIONS);
    this.slider.max = "0";
    this.slider.step = "1";
    this.label = root.querySelector("output");
    this.messageEl = root.querySelector("[role=status]");
    this.seconds = 0; // how far back the slider points (0: live); the slider's position only shows it
    // Renewed whenever the slider moves: only the answer for where it rests is shown.
    this.guard = new RequestGuard();
    this.timer = null;
    this.slider.addEventListener("input", () => this.secondsChoose(positionSeconds(Number(this.slider.value)), { fromSlider: true }));
    this.slider.addEventListener("keydown", (event) => {
      let seconds = null;
      if (event.key in KEY_STEPS) seconds = this.seconds + KEY_STEPS[event.key] / (event.shiftKey && event.key.startsWith("Arrow") ? 6 : 1);
      else if (event.key === "Home") seconds = RANGE_SECONDS;
      else if (event.key === "End") seconds = 0;
      if (seconds === null) return;
      event.preventDefault();
      this.secondsChoose(Math.min(RANGE_SECONDS, Math.max(0, seconds)));
    });
    root.querySelector("button").addEventListener("click", () => this.liveReturn());
    this.labelShow();
  }

  /** Point the slider `seconds` back (0: live); the twin of that time is asked for once it rests. */
  secondsChoose(seconds, { fromSlider = false } = {}) {
    this.seconds = seconds;
    if (!fromSlider) this.slider.value = String(secondsPosition(seconds));
    this.guard.renew();
    this.labelShow();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => (this.seconds === 0 ? this.liveReturn() : this.pastShow(this.time())), SETTLE_MS);
  }

  labelShow() {
    const text = this.seconds === 0 ? "live" : `${clock(this.time())}, ${back(this.seconds)}`;
    this.label.textContent = text;
    this.slider.setAttribute("aria-valuetext", text);
  }

  time() {
    return new Date(this.state.live.serverNow() - this.seconds * 1000);
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
    clearTimeout(this.timer);
    this.seconds = 0;
    this.slider.value = "0";
    this.labelShow();
    this.messageEl.textContent = "";
    if (this.state.isLive) return;
    this.state.twinShow(this.state.live);
    this.onViewChange();
  }
}

/** "40 s ago", "12 min ago", "3 h 5 min ago". */
function back(seconds) {
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min${seconds % 60 ? ` ${seconds % 60} s` : ""} ago`;
  const minutes = Math.floor((seconds % 3600) / 60);
  return `${Math.floor(seconds / 3600)} h${minutes ? ` ${minutes} min` : ""} ago`;
}
