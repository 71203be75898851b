// N official Socket.IO clients (socket.io-client) in one Node process, for
// bench/live_shapes.py: each subscribes to deltas (unless --full) and notes
// when a probe host's cpuLoad marker first reaches it, in a twin-delta or a
// twin-state. Reads commands on stdin, one a line: "report" prints
// {"connected": n, "seen": {marker: [epoch ms, ...]}} and forgets them;
// "quit" disconnects every client and exits.
"use strict";
const { io } = require("socket.io-client");
const readline = require("node:readline");

const [url, countText, probe, mode] = process.argv.slice(2);
const count = Number(countText);
const seen = new Map();
let connected = 0;
let states = 0;
let resyncs = 0;
let deltas = 0;
let ignored = 0;

function now() {
  return performance.timeOrigin + performance.now();
}

function scan(doc, at) {
  if (!doc || !Array.isArray(doc.hosts)) return;
  for (const host of doc.hosts) {
    if (host.hostname !== probe) continue;
    const marker = String(host.metrics && host.metrics.cpuLoad);
    if (!seen.has(marker)) seen.set(marker, []);
    seen.get(marker).push(at);
  }
}

const sockets = [];
for (let i = 0; i < count; i += 1) {
  const socket = io(`${url}/digital-twin`, { transports: ["websocket"], reconnection: false, forceNew: true });
  let version = null;
  socket.on("connect", () => {
    connected += 1;
    if (mode !== "--full") socket.emit("subscribe", { mode: "delta" });
  });
  socket.on("disconnect", () => {
    connected -= 1;
  });
  socket.on("twin-state", (doc) => {
    states += 1;
    version = Number.isInteger(doc.version) ? doc.version : null;
    scan(doc, now());
  });
  socket.on("twin-delta", (delta) => {
    const at = now();
    deltas += 1;
    if (version === null) {
      ignored += 1;
      return; // waiting for a (re)sync
    }
    if (delta.baseVersion !== version) {
      version = null; // as the dashboard: resync once, ignore deltas until the state arrives
      resyncs += 1;
      socket.emit("resync");
      return;
    }
    version = delta.version;
    scan(delta, at);
  });
  sockets.push(socket);
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const command = line.trim();
  if (command === "report") {
    const out = { connected, states, resyncs, deltas, ignored, seen: Object.fromEntries(seen) };
    seen.clear();
    process.stdout.write(JSON.stringify(out) + "\n");
  } else if (command === "quit") {
    for (const socket of sockets) socket.disconnect();
    process.exit(0);
  }
});
