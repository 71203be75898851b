// N official Socket.IO clients (socket.io-client) in one Node process, for
// bench/live_shapes.py: each subscribes to deltas (unless --full; --fields for
// the fields form, only the keys that changed) and notes when a probe host's
// cpuLoad marker first reaches it, in a twin-delta or a twin-state. Reads
// commands on stdin, one a line: "report" prints
// {"connected": n, "seen": {marker: [epoch ms, ...]}, "reached": {...}} and
// forgets them; "watch MARKER COUNT" makes each client note when it holds
// COUNT hosts whose cpuLoad is MARKER (a mass change: "reached": {marker:
// [epoch ms, ...]}, one per client); "quit" disconnects every client and exits.
"use strict";
const { io } = require("socket.io-client");
const readline = require("node:readline");

const [url, countText, probe, mode] = process.argv.slice(2);
const count = Number(countText);
const seen = new Map();
const watched = new Map(); // marker -> hosts a client must hold with it
const reached = new Map(); // marker -> [epoch ms at each client that holds them all]
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

// One client's progress on the watched markers: the hosts it holds with each, until it holds them all.
function watcher() {
  const holding = new Map(); // marker -> Set of hostnames
  const done = new Set();
  return (doc, at, whole) => {
    if (!watched.size || !doc || !Array.isArray(doc.hosts)) return;
    for (const [marker, target] of watched) {
      if (done.has(marker)) continue;
      if (whole || !holding.has(marker)) holding.set(marker, new Set());
      const names = holding.get(marker);
      for (const host of doc.hosts) {
        if (host.metrics && String(host.metrics.cpuLoad) === marker) names.add(host.hostname);
      }
      if (names.size >= target) {
        done.add(marker);
        holding.delete(marker);
        if (!reached.has(marker)) reached.set(marker, []);
        reached.get(marker).push(at);
      }
    }
  };
}

const sockets = [];
for (let i = 0; i < count; i += 1) {
  const socket = io(`${url}/digital-twin`, { transports: ["websocket"], reconnection: false, forceNew: true });
  const watch = watcher();
  let version = null;
  socket.on("connect", () => {
    connected += 1;
    if (mode === "--fields") socket.emit("subscribe", { mode: "delta", fields: true });
    else if (mode !== "--full") socket.emit("subscribe", { mode: "delta" });
  });
  socket.on("disconnect", (reason) => {
    connected -= 1;
    if (process.env.LIVE_SHAPES_DEBUG) process.stderr.write(`disconnect: ${reason}\n`);
  });
  socket.on("connect_error", (error) => {
    if (process.env.LIVE_SHAPES_DEBUG) process.stderr.write(`connect_error: ${error.message}\n`);
  });
  socket.on("twin-state", (doc) => {
    states += 1;
    version = Number.isInteger(doc.version) ? doc.version : null;
    const at = now();
    scan(doc, at);
    watch(doc, at, true);
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
    if (process.env.LIVE_SHAPES_DEBUG && i === 0) {
      process.stderr.write(`delta ${delta.version} hosts ${delta.hosts.length} at ${Math.round(at)}\n`);
    }
    scan(delta, at);
    watch(delta, at, false);
  });
  sockets.push(socket);
}

let cpuAt = process.cpuUsage();
let wallAt = now();

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const command = line.trim();
  if (command === "report") {
    const out = {
      connected,
      states,
      resyncs,
      deltas,
      ignored,
      seen: Object.fromEntries(seen),
      reached: Object.fromEntries(reached),
      // This process's CPU (user + system) and wall time since the last report, in ms: 200 clients share one thread.
      cpuMs: (() => {
        const used = process.cpuUsage(cpuAt);
        cpuAt = process.cpuUsage();
        return (used.user + used.system) / 1000;
      })(),
      wallMs: (() => {
        const at = now();
        const since = at - wallAt;
        wallAt = at;
        return since;
      })(),
    };
    seen.clear();
    reached.clear();
    process.stdout.write(JSON.stringify(out) + "\n");
  } else if (command.startsWith("watch ")) {
    const [, marker, target] = command.split(" ");
    watched.set(marker, Number(target));
    process.stdout.write(JSON.stringify({ watching: marker }) + "\n");
  } else if (command === "quit") {
    for (const socket of sockets) socket.disconnect();
    process.exit(0);
  }
});
