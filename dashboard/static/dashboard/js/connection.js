// The live link to the twin: Socket.IO namespace /digital-twin, delta mode in
// the fields form (each changed host as the keys that changed: a mass change is
// one small delta, not a resync; a server without the form sends whole deltas,
// which the store applies as well).
//
// On every (re)connection it subscribes to deltas; the server answers with one
// versioned twin-state, then twin-delta events (it is "live" from that state on). A delta that does not follow
// the version held asks for a resync. The connection's state (connecting,
// live, reconnecting, offline) is reported to the page.

import { io } from "socket.io-client";

// Reconnecting this long without success is shown as offline (retries go on).
const OFFLINE_AFTER_MS = 20000;

export function twinConnect({ namespace, onState, onDelta, onCommandUpdate, onHostStatus, onConnectionState, onRefused }) {
  const socket = io(namespace, {
    transports: ["websocket", "polling"],
    withCredentials: true,
    reconnectionDelay: 1000,
    reconnectionDelayMax: 8000,
  });
  let lostAt = null;
  let offlineTimer = null;

  const report = (state, detail) => onConnectionState(state, detail);

  // Live once the page holds a state the deltas build on: the server first sends every
  // client a plain twin-state on connect, then a versioned one when it has subscribed.
  // (A server that refuses delta mode keeps sending full states: those are live then.)
  let fullStates = false;
  socket.on("connect", () => {
    lostAt = null;
    clearTimeout(offlineTimer);
    fullStates = false;
    report("syncing");
    socket.emit("subscribe", { mode: "delta", fields: true }, (ack) => {
      if (ack && ack.error) {
        fullStates = true;
        report("live");
      }
    });
  });
  socket.on("twin-state", (doc) => {
    onState(doc);
    if (fullStates || Number.isInteger(doc.version)) report("live");
  });
  socket.on("twin-delta", (delta) => {
    if (onDelta(delta) === "resync") {
      report("syncing");
      socket.emit("resync");
    }
  });
  socket.on("command-update", (event) => onCommandUpdate && onCommandUpdate(event));
  socket.on("host-status", (event) => onHostStatus && onHostStatus(event));
  socket.on("disconnect", (reason) => {
    if (reason === "io client disconnect") return report("offline", "closed");
    lostAt = lostAt || Date.now();
    report("reconnecting");
    clearTimeout(offlineTimer);
    offlineTimer = setTimeout(() => socket.connected || report("offline"), OFFLINE_AFTER_MS);
  });
  socket.on("connect_error", (error) => {
    if (String(error && error.message).startsWith("not_authenticated")) {
      onRefused(error);
      return;
    }
    lostAt = lostAt || Date.now();
    if (Date.now() - lostAt >= OFFLINE_AFTER_MS) report("offline");
    else report("reconnecting");
  });
  window.addEventListener("offline", () => report("offline", "the browser is offline"));
  return socket;
}
