// The floor's far level of detail: each column of hosts (a rack's stack) drawn
// as one box, with every host's colour a band of a texture on its sides.
//
// Why: in a software-rendered browser (SwiftShader, as headless Chromium draws
// WebGL on a machine without a GPU) a frame costs about its triangle count,
// and 10,000 host boxes are 120,000 triangles: most of a second a frame. A
// column box is 12 triangles whatever it holds, and its texture keeps one band
// per host, so the floor seen from afar shows the same colours. The columns
// near the camera are cut out of the texture (transparent, discarded) and their
// hosts drawn as real boxes instead, at most NEAR_HOSTS of them, so picking a
// host and seeing it up close is unchanged. A colour change writes a few bytes
// of the texture; nothing is rebuilt. The boxes' light is worked out once, per
// face, as the hosts' material would light them (one texture read a pixel,
// no lighting and no discard: what a software renderer draws cheapest).

import * as THREE from "three";

const TEXELS_PER_SLOT = 10; // one host's band: a texel of gap, eight of host, a texel of gap
const MAX_TEXELS = 2048; // a texture row: columns higher than 204 host slots are not drawn this way
export const NEAR_HOSTS = 1500; // the most hosts drawn as real boxes at once
const NEAR_PX = 8; // a host drawn as a box once it is this many pixels high on screen (below, its band looks the same)
const GAP_RGB = [13, 17, 23]; // between hosts: the page's background

/**
 * The light a face with normal `n` gets from the floor's lights (floor.js: the
 * hemisphere and the sun), as three.js's Lambert material works it out: linear
 * RGB that multiplies the face's colour.
 */
export function faceLight(n, lights, out) {
  const [sky, ground, hemi, sun, sunDirection] = lights;
  const up = 0.5 * n[1] + 0.5;
  const dot = Math.max(0, n[0] * sunDirection[0] + n[1] * sunDirection[1] + n[2] * sunDirection[2]);
  for (let c = 0; c < 3; c++) out[c] = ((ground[c] + (sky[c] - ground[c]) * up) * hemi + dot * sun) / Math.PI;
  return out;
}

function srgbByte(c) {
  return Math.max(0, Math.min(255, Math.round(c * 255)));
}

export class Columns {
  /**
   * `hosts` the source's hosts, `agents` the indexes drawn as boxes, `layout`
   * their layout. Returns null from `build` when the hosts do not stack in
   * columns of evenly spaced slots (then every host is drawn as itself).
   */
  static build(agents, layout, lights) {
    const gap = layout.height / 0.8; // the layout's host height is 80 % of the vertical gap
    const p = layout.positions;
    const byKey = new Map();
    for (const i of agents) {
      const key = `${Math.round(p[i * 3] * 1000)},${Math.round(p[i * 3 + 2] * 1000)}`;
      let col = byKey.get(key);
      if (!col) byKey.set(key, (col = { x: p[i * 3], z: p[i * 3 + 2], hosts: [] }));
      col.hosts.push(i);
    }
    const columns = [...byKey.values()];
    let widest = 1;
    for (const col of columns) {
      let lo = Infinity;
      let hi = -Infinity;
      for (const i of col.hosts) {
        lo = Math.min(lo, p[i * 3 + 1]);
        hi = Math.max(hi, p[i * 3 + 1]);
      }
      col.y0 = lo;
      col.slots = Math.round((hi - lo) / gap) + 1;
      widest = Math.max(widest, col.slots);
    }
    if (!Number.isFinite(gap) || widest * TEXELS_PER_SLOT > MAX_TEXELS || columns.length > 8192) return null;
    return new Columns(columns, widest, gap, layout, lights);
  }

  constructor(columns, widest, gap, layout, lights) {
    this.columns = columns;
    this.gap = gap;
    this.layout = layout;
    this.lights = lights;
    const width = widest * TEXELS_PER_SLOT;
    const rows = columns.length;
    this.texelWidth = width;
    this.data = new Uint8Array(width * rows * 4);
    // Every texel the gap's colour, four bytes at a time (in the platform's byte order).
    new Uint32Array(this.data.buffer).fill(new Uint32Array(Uint8Array.from([...GAP_RGB, 255]).buffer)[0]);
    this.texture = new THREE.DataTexture(this.data, width, rows, THREE.RGBAFormat, THREE.UnsignedByteType);
    this.texture.magFilter = THREE.NearestFilter;
    this.texture.minFilter = THREE.NearestFilter;
    this.texture.generateMipmaps = false;
    this.texture.colorSpace = THREE.SRGBColorSpace;
    this.texture.needsUpdate = true;

    // Where each host's band starts in the texture, and its column.
    const n = layout.positions.length / 3;
    this.bandOf = new Int32Array(n).fill(-1);
    this.columnOf = new Int32Array(n).fill(-1);
    this.rgb = new Uint8Array(n * 3); // each host's colour as drawn (sRGB bytes), to write back when its column leaves the near set
    const p = layout.positions;
    columns.forEach((col, row) => {
      for (const i of col.hosts) {
        const slot = Math.round((p[i * 3 + 1] - col.y0) / gap);
        this.bandOf[i] = row * width + slot * TEXELS_PER_SLOT;
        this.columnOf[i] = row;
      }
    });
    this.near = new Uint8Array(rows); // 1: the column is drawn as its hosts
    this.nearList = new Int32Array(rows);
    this.nearCount = 0;
    this.candidates = new Int32Array(rows);
    this.distances = new Float32Array(rows);
    this.byDistance = (a, b) => this.distances[a] - this.distances[b];
    this.mesh = new THREE.Mesh(this.geometry(), new THREE.MeshBasicMaterial({ map: this.texture, vertexColors: true }));
    this.position = this.mesh.geometry.attributes.position;
    this.placed = this.position.array.slice(); // each column's box as placed, to put back when it leaves the near set
    this.mesh.raycast = () => {}; // the hosts' own instanced mesh is what a click picks
  }

  /** One box per column, its sides mapped onto its texture row: u along the height, v the row. */
  geometry() {
    const { width } = this.layout;
    const depth = width * 1.15;
    const box = new THREE.BoxGeometry(1, 1, 1);
    const bp = box.attributes.position.array;
    const bn = box.attributes.normal.array;
    const bi = box.index.array;
    const vertices = bp.length / 3;
    const rows = this.columns.length;
    const position = new Float32Array(rows * vertices * 3);
    const normal = new Float32Array(rows * vertices * 3);
    const uv = new Float32Array(rows * vertices * 2);
    const color = new Float32Array(rows * vertices * 3);
    const n = [0, 0, 0];
    const light = [0, 0, 0];
    const index = new Uint32Array(rows * bi.length);
    this.columns.forEach((col, row) => {
      const bottom = col.y0 - this.gap / 2;
      const height = col.slots * this.gap;
      const v = (row + 0.5) / rows;
      const span = (col.slots * TEXELS_PER_SLOT) / this.texelWidth;
      // Top and bottom faces show the top and bottom hosts' colours (a band's middle, not its gap).
      const topU = ((col.slots - 1) * TEXELS_PER_SLOT + TEXELS_PER_SLOT / 2) / this.texelWidth;
      const bottomU = TEXELS_PER_SLOT / 2 / this.texelWidth;
      for (let k = 0; k < vertices; k++) {
        const o = (row * vertices + k) * 3;
        position[o] = col.x + bp[k * 3] * width;
        position[o + 1] = bottom + (bp[k * 3 + 1] + 0.5) * height;
        position[o + 2] = col.z + bp[k * 3 + 2] * depth;
        normal[o] = n[0] = bn[k * 3];
        normal[o + 1] = n[1] = bn[k * 3 + 1];
        normal[o + 2] = n[2] = bn[k * 3 + 2];
        color.set(faceLight(n, this.lights, light), o);
        const ny = bn[k * 3 + 1];
        uv[(row * vertices + k) * 2] = ny > 0.5 ? topU : ny < -0.5 ? bottomU : (bp[k * 3 + 1] + 0.5) * span;
        uv[(row * vertices + k) * 2 + 1] = v;
      }
      for (let j = 0; j < bi.length; j++) index[row * bi.length + j] = bi[j] + row * vertices;
    });
    box.dispose();
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute("position", new THREE.BufferAttribute(position, 3));
    geometry.setAttribute("normal", new THREE.BufferAttribute(normal, 3));
    geometry.setAttribute("uv", new THREE.BufferAttribute(uv, 2));
    geometry.setAttribute("color", new THREE.BufferAttribute(color, 3));
    geometry.setIndex(new THREE.BufferAttribute(index, 1));
    geometry.computeBoundingSphere();
    return geometry;
  }

  /** A host's colour (sRGB, 0..1) into its band; uploaded with the next frame. */
  write(i, c) {
    const start = this.bandOf[i];
    if (start < 0) return;
    const r = srgbByte(c[0]);
    const g = srgbByte(c[1]);
    const b = srgbByte(c[2]);
    this.rgb[i * 3] = r;
    this.rgb[i * 3 + 1] = g;
    this.rgb[i * 3 + 2] = b;
    this.band(start, r, g, b);
    this.texture.needsUpdate = true;
  }

  band(start, r, g, b) {
    const d = this.data;
    for (let t = 1; t < TEXELS_PER_SLOT - 1; t++) {
      const o = (start + t) * 4;
      d[o] = r;
      d[o + 1] = g;
      d[o + 2] = b;
    }
  }

  /** Show a column as its box, or fold the box to a point for its hosts to be drawn instead. */
  columnShow(row, shown) {
    const a = this.position.array;
    const per = this.placed.length / this.columns.length;
    const start = row * per;
    if (shown) a.set(this.placed.subarray(start, start + per), start);
    else a.fill(0, start, start + per);
    this.position.needsUpdate = true;
  }

  /**
   * The columns whose hosts are big enough on screen to be drawn as boxes
   * (nearest first, within NEAR_HOSTS). Answers true when the set changed:
   * the caller then draws `nearList` as hosts. Allocates nothing.
   */
  nearFind(camera, pixelsHigh) {
    const focal = pixelsHigh / 2 / Math.tan(THREE.MathUtils.degToRad(camera.fov / 2));
    const reach = (this.layout.height * focal) / NEAR_PX;
    const cam = camera.position;
    let found = 0;
    for (let row = 0; row < this.columns.length; row++) {
      const col = this.columns[row];
      const top = col.y0 + (col.slots - 1) * this.gap;
      const dy = cam.y < col.y0 ? col.y0 - cam.y : cam.y > top ? cam.y - top : 0;
      const d = Math.hypot(col.x - cam.x, dy, col.z - cam.z);
      if (d > reach) continue;
      this.distances[row] = d;
      this.candidates[found++] = row;
    }
    if (!found && !this.nearCount) return false; // the usual frame from afar: nothing near, nothing allocated
    let total = 0;
    for (let k = 0; k < found; k++) total += this.columns[this.candidates[k]].hosts.length;
    const chosen = this.candidates.subarray(0, found);
    if (total > NEAR_HOSTS) chosen.sort(this.byDistance); // nearest first, only when not all of them fit
    let hosts = 0;
    let count = 0;
    for (const row of chosen) {
      hosts += this.columns[row].hosts.length;
      if (hosts > NEAR_HOSTS) break;
      count++;
    }
    // Changed? Compare as sets, through the flags.
    let same = count === this.nearCount;
    for (let k = 0; same && k < count; k++) same = this.near[chosen[k]] === 1;
    if (same) return false;
    for (let k = 0; k < this.nearCount; k++) {
      const row = this.nearList[k];
      this.near[row] = 0;
    }
    for (let k = 0; k < count; k++) this.near[chosen[k]] = 1;
    for (let k = 0; k < this.nearCount; k++) if (!this.near[this.nearList[k]]) this.columnShow(this.nearList[k], true);
    for (let k = 0; k < count; k++) {
      const row = chosen[k];
      if (!this.nearHas(row)) this.columnShow(row, false);
    }
    this.nearList.set(chosen.subarray(0, count));
    this.nearCount = count;
    return true;
  }

  nearHas(row) {
    for (let k = 0; k < this.nearCount; k++) if (this.nearList[k] === row) return true;
    return false;
  }

  dispose() {
    this.texture.dispose();
    this.mesh.geometry.dispose();
    this.mesh.material.dispose();
  }
}
