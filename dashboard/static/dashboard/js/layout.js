// Where each host is drawn and how big: from the positions the twin gives
// (x and z on the floor, y up), with sizes taken from the fleet's own spacing
// so a floor in metres and a grid in units both look like servers in racks.

import { isVirtual } from "./store.js";

function median(values) {
  if (!values.length) return NaN;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.floor(sorted.length / 2)];
}

function key(x, y, z) {
  return `${Math.round(x * 1000)},${Math.round(y * 1000)},${Math.round(z * 1000)}`;
}

/**
 * The layout of a fleet.
 *
 * 1. Read each host's position (missing: the origin).
 * 2. Spacing: the usual vertical gap between hosts sharing a column (x, z),
 *    and the usual distance from a column to its nearest neighbour column.
 * 3. Host size: 80 % of the vertical gap high, as wide as the columns allow
 *    (at most five times its height): a flat server in a rack, a cube on a grid.
 * 4. Hosts sharing one position (never placed) are spread on a small grid
 *    around it, so none hides another.
 * 5. Rack boxes: the bounds of their hosts, padded.
 */
export function layoutCompute(hosts) {
  const n = hosts.length;
  const positions = new Float32Array(n * 3);
  const columns = new Map();
  for (let i = 0; i < n; i++) {
    const p = hosts[i].position || { x: 0, y: 0, z: 0 };
    positions[i * 3] = p.x;
    positions[i * 3 + 1] = p.y;
    positions[i * 3 + 2] = p.z;
    if (isVirtual(hosts[i])) continue;
    const k = `${Math.round(p.x * 1000)},${Math.round(p.z * 1000)}`;
    let col = columns.get(k);
    if (!col) columns.set(k, (col = { x: p.x, z: p.z, ys: [] }));
    col.ys.push(p.y);
  }

  const verticalGaps = [];
  for (const col of columns.values()) {
    if (col.ys.length < 2) continue;
    col.ys.sort((a, b) => a - b);
    let best = Infinity;
    for (let j = 1; j < col.ys.length; j++) {
      const d = col.ys[j] - col.ys[j - 1];
      if (d > 1e-6 && d < best) best = d;
    }
    if (best < Infinity) verticalGaps.push(best);
  }
  const cols = [...columns.values()];
  const horizontal = [];
  const step = Math.max(1, Math.floor(cols.length / 400));
  for (let a = 0; a < cols.length; a += step) {
    let best = Infinity;
    for (let b = 0; b < cols.length; b++) {
      if (a === b) continue;
      const dx = cols[a].x - cols[b].x;
      const dz = cols[a].z - cols[b].z;
      const d = dx * dx + dz * dz;
      if (d > 1e-12 && d < best) best = d;
    }
    if (best < Infinity) horizontal.push(Math.sqrt(best));
  }
  const vGap = median(verticalGaps);
  const hGap = median(horizontal);
  let height;
  let width;
  if (Number.isFinite(vGap)) {
    height = 0.8 * vGap;
    width = Number.isFinite(hGap) ? Math.min(5 * height, 0.8 * hGap) : 4 * height;
  } else if (Number.isFinite(hGap)) {
    width = 0.8 * hGap;
    height = 0.5 * width;
  } else {
    width = 1;
    height = 0.5;
  }

  // Hosts on one spot: spread all but the first on a grid beside it.
  const seen = new Map();
  for (let i = 0; i < n; i++) {
    const k = key(positions[i * 3], positions[i * 3 + 1], positions[i * 3 + 2]);
    const group = seen.get(k);
    if (group) group.push(i);
    else seen.set(k, [i]);
  }
  for (const group of seen.values()) {
    if (group.length < 2) continue;
    const side = Math.ceil(Math.sqrt(group.length));
    const pitch = width * 1.4;
    for (let j = 1; j < group.length; j++) {
      const i = group[j];
      positions[i * 3] += (j % side) * pitch;
      positions[i * 3 + 2] += Math.floor(j / side) * pitch + pitch;
    }
  }

  const racks = new Map();
  const min = [Infinity, Infinity, Infinity];
  const max = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < 3; a++) {
      min[a] = Math.min(min[a], positions[i * 3 + a]);
      max[a] = Math.max(max[a], positions[i * 3 + a]);
    }
    const name = hosts[i].rack;
    if (!name) continue;
    let rack = racks.get(name);
    if (!rack) racks.set(name, (rack = { name, min: [Infinity, Infinity, Infinity], max: [-Infinity, -Infinity, -Infinity], count: 0 }));
    rack.count += 1;
    for (let a = 0; a < 3; a++) {
      rack.min[a] = Math.min(rack.min[a], positions[i * 3 + a]);
      rack.max[a] = Math.max(rack.max[a], positions[i * 3 + a]);
    }
  }
  const pad = [width * 0.6, height * 0.9, width * 0.6];
  for (const rack of racks.values()) {
    for (let a = 0; a < 3; a++) {
      rack.min[a] -= pad[a];
      rack.max[a] += pad[a];
    }
  }
  if (!n) {
    min.fill(-1);
    max.fill(1);
  }
  return { positions, width, height, racks: [...racks.values()], bounds: { min, max } };
}
