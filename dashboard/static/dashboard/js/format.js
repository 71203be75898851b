// Numbers and times as an operator reads them.

const numberFormat = new Intl.NumberFormat("en-US");

export function count(n) {
  return numberFormat.format(n);
}

export function percent(value, digits = 1) {
  return value === null || value === undefined ? "–" : `${value.toFixed(digits)} %`;
}

export function number(value, digits = 2) {
  return value === null || value === undefined ? "–" : value.toFixed(digits);
}

export function bytes(value) {
  if (value === null || value === undefined) return "–";
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let v = value;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i += 1;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function bitRate(bitsPerSecond) {
  if (bitsPerSecond === null || bitsPerSecond === undefined) return "–";
  const units = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"];
  let v = bitsPerSecond;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i += 1;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** A duration in seconds as "3 d 4 h", "5 h 12 min", "42 s". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** "12 s ago" for a moment `ms` milliseconds in the past. */
export function ago(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "never";
  if (ms < 1500) return "just now";
  return `${duration(ms / 1000)} ago`;
}

/** A wall-clock time in UTC, as the server writes its times: "10:05:13 UTC". */
export function clock(date) {
  return `${date.toISOString().slice(11, 19)} UTC`;
}

/** "2026-12-07 23:24 UTC" (with `seconds`, "2026-12-07 23:24:05 UTC"). */
export function dateTime(date, { seconds = false } = {}) {
  return `${date.toISOString().slice(0, seconds ? 19 : 16).replace("T", " ")} UTC`;
}
