// The 3D floor: racks, hosts and links in one three.js scene.
//
// Built for 10,000 hosts: every agent host is one instance of one
// InstancedMesh (virtual nodes of a second, drawn as diamonds), every link
// shown one instance of a third (packed: links not shown cost nothing). A
// delta rewrites only the colours (and, rarely, the matrices) of the instances
// it names; nothing is re-created unless hosts or links come or go. Frames are
// drawn on demand (a change, a camera move), not in a loop, so an idle
// dashboard costs nothing.
//
// On a large floor (more than LOD_MIN_HOSTS) the hosts far from the camera are
// drawn as their columns (columns.js: one box a rack's stack, a band of colour
// a host) and only the near ones as boxes: the host mesh is then kept for
// picking and as the colours' record, and not drawn.

import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { cpuRgb, HIGHLIGHT, statusRgb, utilizationRgb } from "./colors.js";
import { Columns, NEAR_HOSTS } from "./columns.js";
import { layoutCompute } from "./layout.js";
import { isVirtual } from "./store.js";

const rgb = [0, 0, 0];
const matrix = new THREE.Matrix4();
const quaternion = new THREE.Quaternion();
const scale = new THREE.Vector3();
const from = new THREE.Vector3();
const to = new THREE.Vector3();
const UP = new THREE.Vector3(0, 1, 0);
const HIDDEN = new THREE.Matrix4().makeScale(0, 0, 0);

// Colours are given in sRGB; three.js blends in linear space.
function linear(c) {
  return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
}

function writeColor(array, slot, c) {
  array[slot * 3] = linear(c[0]);
  array[slot * 3 + 1] = linear(c[1]);
  array[slot * 3 + 2] = linear(c[2]);
}

/**
 * A link's shape: two crossed quads along y from 0 to 1 (4 triangles, seen
 * from both sides): a thin beam looks the same as a box of 12, for a third of
 * the triangles a software renderer pays for.
 */
function linkGeometry() {
  const h = 0.5;
  const geometry = new THREE.BufferGeometry();
  geometry.setAttribute(
    "position",
    new THREE.Float32BufferAttribute([-h, 0, 0, h, 0, 0, h, 1, 0, -h, 1, 0, 0, 0, -h, 0, 0, h, 0, 1, h, 0, 1, -h], 3),
  );
  geometry.setIndex([0, 1, 2, 0, 2, 3, 4, 5, 6, 4, 6, 7]);
  return geometry;
}

/**
 * Whether WebGL is drawn by the CPU (SwiftShader, as headless Chromium draws it
 * on a machine without a GPU; llvmpipe): there multisampling costs a large
 * part of every frame, so edges are left unsmoothed; a GPU smooths them for free.
 */
function softwareRendered() {
  try {
    const gl = document.createElement("canvas").getContext("webgl2");
    if (!gl) return false;
    // RENDERER alone says "WebKit WebGL"; the unmasked name says "SwiftShader".
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    const name = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    gl.getExtension("WEBGL_lose_context")?.loseContext();
    return /swiftshader|llvmpipe|softpipe|software/i.test(name);
  } catch {
    return false;
  }
}

/** Drawn in the same place by the same mesh: only its colour can have changed. */
function samePlace(a, b) {
  const p = a.position || {};
  const q = b.position || {};
  return p.x === q.x && p.y === q.y && p.z === q.z && isVirtual(a) === isVirtual(b);
}

/** The usual distance from a rack to its nearest neighbour on the floor (x, z); Infinity for one rack. */
function rackPitch(racks) {
  const centres = racks.map((r) => [(r.min[0] + r.max[0]) / 2, (r.min[2] + r.max[2]) / 2]);
  const nearest = [];
  for (let a = 0; a < centres.length; a++) {
    let best = Infinity;
    for (let b = 0; b < centres.length; b++) {
      if (a === b) continue;
      const d = Math.hypot(centres[a][0] - centres[b][0], centres[a][1] - centres[b][1]);
      if (d > 1e-6 && d < best) best = d;
    }
    if (best < Infinity) nearest.push(best);
  }
  if (!nearest.length) return Infinity;
  nearest.sort((x, y) => x - y);
  return nearest[Math.floor(nearest.length / 2)];
}

export const TOP_LINKS = 50;
export const LINK_MODES = { all: "All links", top: `Busiest ${TOP_LINKS} links`, busy: "Busy links (≥ 50 %)", none: "No links" };
const BUSY = 0.5;
// The busiest links' cut-off is found again at most this often while deltas arrive: a
// re-sort and re-placement of 10,000 links per delta would cost every frame its time.
const TOP_REFRESH_MS = 5000;
// Above this many links shown on a large floor, a column's links to one end are drawn as one
// beam (as wide as its busiest): 10,000 translucent beams into one switch are most of a frame.
const MERGE_LINKS_ABOVE = 1000;
// Below this many hosts every host is drawn as itself: a software renderer draws them within a frame.
export const LOD_MIN_HOSTS = 2000;
const FRAME_MARGIN_PX = 16; // around the floor when it is framed, and clear of the overlays
const LABEL_TEXT_PX = 15; // a rack label's wanted text height on screen, within what the rack pitch allows

export class Floor {
  /**
   * `overlays()` gives the elements drawn over the canvas (legend, time slider):
   * framing keeps the floor clear of them.
   */
  constructor(container, { onSelect, onHover, overlays } = {}) {
    this.container = container;
    this.onSelect = onSelect || (() => {});
    this.onHover = onHover || (() => {});
    this.overlays = overlays || (() => []);
    this.colorMode = "status";
    this.linkMode = "all";
    this.topCutoff = 0; // the utilization of the TOP_LINKS-th busiest link (mode "top")
    this.topFoundAt = 0;
    this.labels = [];
    this.source = null;
    this.selected = null;
    this.visible = true;
    const software = softwareRendered();
    this.stats = { renders: 0, lastRenderMs: null, firstFrameAt: null, software };

    this.renderer = new THREE.WebGLRenderer({ antialias: !software, powerPreference: "high-performance" });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.setClearColor(0x0d1117, 1);
    const canvas = this.renderer.domElement;
    canvas.tabIndex = 0;
    canvas.setAttribute("aria-label", "3D floor of racks and hosts: drag to orbit, wheel to zoom, right-drag or arrow keys to pan, click a host to select it");
    canvas.setAttribute("role", "img");
    container.appendChild(canvas);

    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(50, 1, 0.01, 1000);
    const hemisphere = new THREE.HemisphereLight(0xe8f0ff, 0x30363d, 2.2);
    this.scene.add(hemisphere);
    const sun = new THREE.DirectionalLight(0xffffff, 1.2);
    sun.position.set(0.6, 1, 0.35);
    this.scene.add(sun);
    // The same light, for the far columns that bake it into their faces (columns.js).
    this.lights = [hemisphere.color.toArray(), hemisphere.groundColor.toArray(), hemisphere.intensity, sun.intensity, sun.position.clone().normalize().toArray()];

    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.screenSpacePanning = false;
    this.controls.maxPolarAngle = Math.PI * 0.495;
    this.controls.listenToKeyEvents(canvas);
    this.controls.addEventListener("change", () => this.requestRender());

    this.hostMaterial = new THREE.MeshLambertMaterial({ color: 0xffffff });
    this.linkMaterial = new THREE.MeshBasicMaterial({ color: 0xffffff, transparent: true, opacity: 0.45, depthWrite: false, side: THREE.DoubleSide });
    this.groups = new THREE.Group();
    this.scene.add(this.groups);

    this.raycaster = new THREE.Raycaster();
    this.pointer = new THREE.Vector2();
    this.frameRequested = false;
    this.flight = null;
    this.frame = this.frame.bind(this);
    this.bindPointer(canvas);
    new ResizeObserver(() => this.resize()).observe(container);
    this.resize();
  }

  // --- data ---------------------------------------------------------------------------

  /** Build everything from a source ({hosts, links, index}); on load and when hosts come or go. */
  setData(source, { keepCamera = true } = {}) {
    const firstData = !this.source || !this.source.hosts.length;
    this.source = source;
    const hosts = source.hosts;
    this.layout = layoutCompute(hosts);
    const { width, height } = this.layout;

    this.disposeGroup();
    const agents = [];
    const virtuals = [];
    for (let i = 0; i < hosts.length; i++) (isVirtual(hosts[i]) ? virtuals : agents).push(i);
    this.meshOf = new Uint8Array(hosts.length);
    this.slotOf = new Int32Array(hosts.length);
    this.agentMesh = this.instanced(new THREE.BoxGeometry(width, height, width * 1.15), this.hostMaterial, agents, 0);
    this.virtualMesh = this.instanced(new THREE.OctahedronGeometry(Math.max(width, height * 3) * 0.9), this.hostMaterial, virtuals, 1);
    this.meshes = [this.agentMesh, this.virtualMesh];
    this.hostOfSlot = [Int32Array.from(agents), Int32Array.from(virtuals)];
    for (let i = 0; i < hosts.length; i++) this.placeHost(i);
    this.columnsBuild(agents);
    this.recolorAll();
    for (const mesh of this.meshes) mesh.computeBoundingSphere();

    this.buildLinks();
    this.buildRacks();
    this.buildGrid();
    this.selectionMarker = this.makeSelectionMarker();
    this.groups.add(this.selectionMarker);
    // Indexes may have moved: the caller selects again by hostname.
    this.selected = null;
    if (firstData || !keepCamera) this.frameAll();
    this.requestRender();
  }

  instanced(geometry, material, indexes, which) {
    const mesh = new THREE.InstancedMesh(geometry, material, Math.max(1, indexes.length));
    mesh.count = indexes.length;
    mesh.instanceColor = new THREE.InstancedBufferAttribute(new Float32Array(Math.max(1, indexes.length) * 3), 3);
    indexes.forEach((hostIndex, slot) => {
      this.meshOf[hostIndex] = which;
      this.slotOf[hostIndex] = slot;
    });
    this.groups.add(mesh);
    return mesh;
  }

  /** On a large floor: the far hosts as columns, and the mesh that draws the near ones as boxes. */
  columnsBuild(agents) {
    this.columns = agents.length > LOD_MIN_HOSTS ? Columns.build(agents, this.layout, this.lights) : null;
    this.agentMesh.visible = !this.columns;
    this.nearMesh = null;
    if (!this.columns) return;
    const { width, height } = this.layout;
    this.groups.add(this.columns.mesh);
    const capacity = Math.min(NEAR_HOSTS, agents.length);
    this.nearMesh = new THREE.InstancedMesh(new THREE.BoxGeometry(width, height, width * 1.15), this.hostMaterial, capacity);
    this.nearMesh.instanceColor = new THREE.InstancedBufferAttribute(new Float32Array(capacity * 3), 3);
    this.nearMesh.count = 0;
    this.nearMesh.frustumCulled = false; // its instances change with the camera; the bounds would go stale
    this.nearMesh.raycast = () => {}; // the host mesh (not drawn, but placed) is what a click picks
    this.nearSlot = new Int32Array(this.source.hosts.length).fill(-1);
    this.groups.add(this.nearMesh);
  }

  /** Before each frame: the columns near the camera drawn as their hosts, when that set changed. */
  nearUpdate() {
    const columns = this.columns;
    if (!columns || !columns.nearFind(this.camera, this.renderer.domElement.clientHeight || 1)) return;
    const near = this.nearMesh;
    const colors = this.agentMesh.instanceColor.array;
    const out = near.instanceColor.array;
    this.nearSlot.fill(-1);
    let slot = 0;
    for (let k = 0; k < columns.nearCount; k++) {
      for (const i of columns.columns[columns.nearList[k]].hosts) {
        this.agentMesh.getMatrixAt(this.slotOf[i], matrix);
        near.setMatrixAt(slot, matrix);
        const from = this.slotOf[i] * 3;
        out[slot * 3] = colors[from];
        out[slot * 3 + 1] = colors[from + 1];
        out[slot * 3 + 2] = colors[from + 2];
        this.nearSlot[i] = slot++;
      }
    }
    near.count = slot;
    near.instanceMatrix.needsUpdate = true;
    near.instanceColor.needsUpdate = true;
  }

  /** A host's colour written where it is drawn: its instance, and on a large floor its column's band and near box. */
  hostColorWrite(i) {
    const c = this.hostRgb(this.source.hosts[i]);
    writeColor(this.meshes[this.meshOf[i]].instanceColor.array, this.slotOf[i], c);
    if (!this.columns || this.meshOf[i] !== 0) return;
    this.columns.write(i, c);
    const slot = this.nearSlot[i];
    if (slot >= 0) {
      writeColor(this.nearMesh.instanceColor.array, slot, c);
      this.nearMesh.instanceColor.needsUpdate = true;
    }
  }

  placeHost(i) {
    const p = this.layout.positions;
    matrix.makeTranslation(p[i * 3], p[i * 3 + 1], p[i * 3 + 2]);
    this.meshes[this.meshOf[i]].setMatrixAt(this.slotOf[i], matrix);
  }

  hostRgb(host) {
    if (this.colorMode === "cpu") return cpuRgb(host.metrics ? host.metrics.cpuLoad : null, rgb);
    return statusRgb(host.status, rgb);
  }

  recolorAll() {
    const hosts = this.source.hosts;
    for (let i = 0; i < hosts.length; i++) this.hostColorWrite(i);
    for (const mesh of this.meshes) {
      mesh.instanceColor.needsUpdate = true;
      mesh.instanceMatrix.needsUpdate = true;
    }
  }

  /**
   * A delta changed these hosts (same set of hosts): rewrite their colours in place.
   * Returns false when a host moved (or became, or stopped being, a virtual node),
   * so the caller rebuilds the layout instead.
   */
  updateHosts(indexes, previous) {
    const hosts = this.source.hosts;
    for (let k = 0; k < indexes.length; k++) {
      if (previous && previous[k] && !samePlace(previous[k], hosts[indexes[k]])) return false;
    }
    for (const i of indexes) this.hostColorWrite(i);
    if (indexes.length) {
      this.agentMesh.instanceColor.needsUpdate = true;
      this.virtualMesh.instanceColor.needsUpdate = true;
      this.requestRender();
    }
    return true;
  }

  setColorMode(mode) {
    this.colorMode = mode;
    if (this.source) {
      this.recolorAll();
      this.requestRender();
    }
  }

  // --- links --------------------------------------------------------------------------

  /** The utilization from which a link is among the TOP_LINKS busiest (ties included); idle links never are. */
  topCutoffFind() {
    const links = this.source.links;
    this.topFoundAt = performance.now();
    if (links.length <= TOP_LINKS) return (this.topCutoff = Number.MIN_VALUE);
    const values = new Float64Array(links.length); // not Float32: a rounded cut-off can leave the 50th link out
    for (let i = 0; i < links.length; i++) values[i] = links[i].utilization || 0;
    values.sort();
    return (this.topCutoff = Math.max(Number.MIN_VALUE, values[links.length - TOP_LINKS]));
  }

  linkShown(link) {
    const u = link.utilization || 0;
    if (this.linkMode === "all") return true;
    if (this.linkMode === "busy") return u >= BUSY;
    if (this.linkMode === "top") return u >= this.topCutoff;
    return false;
  }

  buildLinks() {
    const links = this.source.links;
    this.topCutoffFind();
    const capacity = Math.max(1, links.length);
    this.linkMesh = new THREE.InstancedMesh(linkGeometry(), this.linkMaterial, capacity);
    this.linkMesh.instanceColor = new THREE.InstancedBufferAttribute(new Float32Array(capacity * 3), 3);
    this.linkMesh.renderOrder = 1;
    this.linkMesh.frustumCulled = false; // the shown links change; their bounds would go stale
    this.linkSlot = new Int32Array(links.length).fill(-1);
    this.linksPack();
    // Links are not picked; their bounds would only slow the host ray test.
    this.linkMesh.raycast = () => {};
    this.groups.add(this.linkMesh);
  }

  endpoint(hostname, out) {
    const i = this.source.index.get(hostname);
    if (i === undefined) return null;
    const p = this.layout.positions;
    return out.set(p[i * 3], p[i * 3 + 1], p[i * 3 + 2]);
  }

  /** Every shown link placed from instance 0 on: the mesh draws those alone (10,000 hidden links would still be 10,000 draws). */
  linksPack() {
    const links = this.source.links;
    let shown = 0;
    for (let i = 0; i < links.length; i++) if (this.linkShown(links[i])) shown++;
    this.linksMerged = !!this.columns && shown > MERGE_LINKS_ABOVE;
    if (this.linksMerged) return this.linksPackMerged();
    let slot = 0;
    for (let i = 0; i < links.length; i++) {
      this.linkSlot[i] = this.placeLink(i, slot) ? slot++ : -1;
    }
    this.linkMesh.count = slot;
    this.linkMesh.instanceMatrix.needsUpdate = true;
    this.linkMesh.instanceColor.needsUpdate = true;
  }

  /**
   * The shown links merged per column: those from one column's hosts to one
   * other end are one beam from the column's middle, as wide and as coloured
   * as the busiest of them. Links of hosts outside a column stay their own.
   */
  linksPackMerged() {
    const links = this.source.links;
    const index = this.source.index;
    const columns = this.columns;
    const n = this.source.hosts.length;
    const beams = new Map(); // column * n + other end -> slot
    const ends = []; // per slot: [column or -1, first end, other end, utilization]
    const p = this.layout.positions;
    for (let i = 0; i < links.length; i++) {
      const link = links[i];
      this.linkSlot[i] = -1;
      if (!this.linkShown(link)) continue;
      const s = index.get(link.source);
      const t = index.get(link.target);
      if (s === undefined || t === undefined) continue;
      let column = columns.columnOf[s];
      let other = t;
      if (column < 0) {
        column = columns.columnOf[t];
        other = s;
      }
      const key = column < 0 ? -1 - i : column * n + other;
      let slot = beams.get(key);
      if (slot === undefined) {
        slot = ends.length;
        beams.set(key, slot);
        ends.push([column, column < 0 ? s : -1, other, 0]);
      }
      ends[slot][3] = Math.max(ends[slot][3], link.utilization || 0);
      this.linkSlot[i] = slot;
    }
    let drawn = 0;
    for (const [column, first, other, u] of ends) {
      if (column >= 0) {
        const col = columns.columns[column];
        from.set(col.x, col.y0 + ((col.slots - 1) * columns.gap) / 2, col.z);
      } else from.set(p[first * 3], p[first * 3 + 1], p[first * 3 + 2]);
      to.set(p[other * 3], p[other * 3 + 1], p[other * 3 + 2]);
      if (this.beamPlace(drawn, from, to, u)) drawn++;
    }
    this.linkMesh.count = drawn;
    this.linkMesh.instanceMatrix.needsUpdate = true;
    this.linkMesh.instanceColor.needsUpdate = true;
  }

  /** Link `i` into instance `slot`; false (nothing written) when it is not shown. */
  placeLink(i, slot) {
    const link = this.source.links[i];
    if (!this.linkShown(link)) return false;
    const a = this.endpoint(link.source, from);
    const b = this.endpoint(link.target, to);
    if (!a || !b) return false;
    return this.beamPlace(slot, a, b, link.utilization || 0);
  }

  /** A beam from `a` to `b` (both changed) at `utilization`, into instance `slot`; false when it has no length. */
  beamPlace(slot, a, b, utilization) {
    b.sub(a);
    const length = b.length();
    if (length < 1e-9) return false;
    quaternion.setFromUnitVectors(UP, b.divideScalar(length));
    // Width by utilization: a hair when idle, a third of a host when saturated.
    const width = this.layout.width * (0.015 + 0.3 * Math.min(1, utilization));
    matrix.compose(a, quaternion, scale.set(width, length, width));
    this.linkMesh.setMatrixAt(slot, matrix);
    writeColor(this.linkMesh.instanceColor.array, slot, utilizationRgb(0.12 + 0.88 * Math.min(1, utilization), rgb));
    return true;
  }

  updateLinks(indexes) {
    if (!indexes.length) return;
    let repack = this.linksMerged; // merged beams are found again from all their links
    if (this.linkMode === "top" && performance.now() - this.topFoundAt > TOP_REFRESH_MS) {
      const before = this.topCutoff;
      repack = this.topCutoffFind() !== before;
    }
    for (let k = 0; !repack && k < indexes.length; k++) {
      const i = indexes[k];
      const slot = this.linkSlot[i];
      // A link that starts or stops being shown moves the others' instances: pack them again.
      if (slot >= 0) repack = !this.placeLink(i, slot);
      else repack = this.linkShown(this.source.links[i]);
    }
    if (repack) this.linksPack();
    this.linkMesh.instanceMatrix.needsUpdate = true;
    this.linkMesh.instanceColor.needsUpdate = true;
    this.requestRender();
  }

  setLinkMode(mode) {
    this.linkMode = mode;
    if (!this.source) return;
    this.topCutoffFind();
    this.linksPack();
    this.requestRender();
  }

  // --- racks, floor, labels ----------------------------------------------------------

  buildRacks() {
    const racks = this.layout.racks;
    const corners = [];
    for (const { min, max } of racks) {
      const [x0, y0, z0] = min;
      const [x1, y1, z1] = max;
      const c = [
        [x0, y0, z0], [x1, y0, z0], [x1, y0, z1], [x0, y0, z1],
        [x0, y1, z0], [x1, y1, z0], [x1, y1, z1], [x0, y1, z1],
      ];
      for (const [a, b] of [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]]) {
        corners.push(...c[a], ...c[b]);
      }
    }
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute("position", new THREE.Float32BufferAttribute(corners, 3));
    const frames = new THREE.LineSegments(geometry, new THREE.LineBasicMaterial({ color: 0x56657a, transparent: true, opacity: 0.8 }));
    frames.raycast = () => {};
    this.groups.add(frames);
    // Labels only while they stay legible and cheap.
    this.labels = racks.length <= 400 ? racks.map((rack) => this.label(rack)) : [];
    this.labelPitch = rackPitch(racks);
    this.labelScale = null;
    for (const label of this.labels) this.groups.add(label);
  }

  label(rack) {
    const canvas = document.createElement("canvas");
    const text = rack.name.length > 14 ? `${rack.name.slice(0, 13)}…` : rack.name;
    const font = "600 40px system-ui, sans-serif";
    const ctx = canvas.getContext("2d");
    ctx.font = font;
    // The canvas as wide as the text: the sprite's width is then the text's.
    canvas.width = Math.min(512, Math.ceil(ctx.measureText(text).width) + 16);
    canvas.height = 56;
    ctx.font = font;
    ctx.fillStyle = "rgba(220, 230, 240, 0.98)";
    ctx.strokeStyle = "rgba(13, 17, 23, 0.9)";
    ctx.lineWidth = 6;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.strokeText(text, canvas.width / 2, 29);
    ctx.fillText(text, canvas.width / 2, 29);
    const texture = new THREE.CanvasTexture(canvas);
    texture.colorSpace = THREE.SRGBColorSpace;
    const sprite = new THREE.Sprite(new THREE.SpriteMaterial({ map: texture, transparent: true, depthWrite: false }));
    sprite.userData = { rack, aspect: canvas.width / canvas.height, footprint: Math.max(rack.max[0] - rack.min[0], rack.max[2] - rack.min[2]) * 1.1 };
    sprite.renderOrder = 2;
    sprite.raycast = () => {};
    return sprite;
  }

  /**
   * Size the rack labels for the camera's distance: LABEL_TEXT_PX of text on
   * screen where the racks leave room (a label never wider than the distance
   * to the next rack, so neighbours do not overlap), never smaller than the
   * rack's own footprint.
   */
  labelsScale() {
    if (!this.labels.length) return;
    const distance = this.camera.position.distanceTo(this.controls.target);
    const pixels = this.renderer.domElement.clientHeight || 1;
    const perPixel = (2 * distance * Math.tan(THREE.MathUtils.degToRad(this.camera.fov / 2))) / pixels;
    if (this.labelScale !== null && Math.abs(perPixel - this.labelScale) / this.labelScale < 0.02) return;
    this.labelScale = perPixel;
    // The text is about 70 % of the sprite's height.
    const wanted = (LABEL_TEXT_PX * perPixel) / 0.7;
    for (const sprite of this.labels) {
      const { rack, aspect, footprint } = sprite.userData;
      const widest = Math.max(footprint, 0.95 * this.labelPitch);
      const width = Math.max(Math.min(wanted * aspect, widest), Math.min(footprint, widest));
      const height = width / aspect;
      sprite.scale.set(width, height, 1);
      sprite.position.set((rack.min[0] + rack.max[0]) / 2, rack.max[1] + height * 0.65, (rack.min[2] + rack.max[2]) / 2);
    }
  }

  buildGrid() {
    const { min, max } = this.layout.bounds;
    const span = Math.max(max[0] - min[0], max[2] - min[2], this.layout.width * 10);
    const step = Math.pow(10, Math.floor(Math.log10(span / 4)));
    const size = Math.ceil((span * 1.2) / step) * step;
    const grid = new THREE.GridHelper(size, Math.round(size / step), 0x2d3643, 0x1c232c);
    grid.position.set((min[0] + max[0]) / 2, min[1] - this.layout.height, (min[2] + max[2]) / 2);
    grid.raycast = () => {};
    this.groups.add(grid);
  }

  disposeGroup() {
    for (const child of [...this.groups.children]) {
      this.groups.remove(child);
      child.geometry?.dispose();
      if (child.material && child.material !== this.hostMaterial && child.material !== this.linkMaterial) {
        child.material.map?.dispose();
        child.material.dispose();
      }
      child.dispose?.();
    }
  }

  // --- selection and camera ---------------------------------------------------------

  makeSelectionMarker() {
    const { width, height } = this.layout;
    const group = new THREE.Group();
    const box = new THREE.LineSegments(
      new THREE.EdgesGeometry(new THREE.BoxGeometry(width * 1.5, Math.max(height * 2.2, width * 0.5), width * 1.6)),
      new THREE.LineBasicMaterial({ color: HIGHLIGHT }),
    );
    const top = this.layout.bounds.max[1] - this.layout.bounds.min[1] + width * 3;
    const beaconGeometry = new THREE.BufferGeometry();
    beaconGeometry.setAttribute("position", new THREE.Float32BufferAttribute([0, 0, 0, 0, top, 0], 3));
    const beacon = new THREE.Line(beaconGeometry, new THREE.LineBasicMaterial({ color: HIGHLIGHT }));
    const linksGeometry = new THREE.BufferGeometry();
    const links = new THREE.LineSegments(linksGeometry, new THREE.LineBasicMaterial({ color: HIGHLIGHT, transparent: true, opacity: 0.9 }));
    // Drawn over everything: a host deep in a rack or behind a row stays visible when selected.
    for (const line of [box, beacon]) {
      line.material.depthTest = false;
      line.renderOrder = 10;
    }
    group.add(box, beacon);
    group.userData = { links };
    this.groups.add(links);
    group.visible = false;
    links.visible = false;
    for (const o of [group, box, beacon, links]) o.raycast = () => {};
    return group;
  }

  /** Mark a host as selected (index into the source's hosts), or nothing. */
  select(index) {
    this.selected = index;
    this.markSelection();
    this.requestRender();
  }

  markSelection() {
    const marker = this.selectionMarker;
    if (!marker) return;
    const links = marker.userData.links;
    if (this.selected === null || !this.source || this.selected >= this.source.hosts.length) {
      marker.visible = false;
      links.visible = false;
      return;
    }
    const p = this.layout.positions;
    const i = this.selected;
    marker.position.set(p[i * 3], p[i * 3 + 1], p[i * 3 + 2]);
    marker.visible = true;
    const name = this.source.hosts[i].hostname;
    const points = [];
    for (const link of this.source.links) {
      if (link.source !== name && link.target !== name) continue;
      if (this.endpoint(link.source, from) && this.endpoint(link.target, to)) points.push(from.x, from.y, from.z, to.x, to.y, to.z);
    }
    links.geometry.setAttribute("position", new THREE.Float32BufferAttribute(points, 3));
    links.geometry.computeBoundingSphere();
    links.visible = points.length > 0;
  }

  /** The corners of what framing must show: every rack, host and label, at least a dozen hosts wide. */
  floorCorners() {
    const { min, max } = this.layout.bounds;
    const { width, height } = this.layout;
    const lo = [min[0] - width, min[1] - height, min[2] - width];
    const hi = [max[0] + width, max[1] + height, max[2] + width];
    for (const rack of this.layout.racks) {
      for (let a = 0; a < 3; a++) {
        lo[a] = Math.min(lo[a], rack.min[a]);
        hi[a] = Math.max(hi[a], rack.max[a] + (a === 1 ? (rack.max[0] - rack.min[0]) * 0.8 : 0)); // the label above
      }
    }
    // One host alone is shown among the floor around it, not filling the screen.
    for (const a of [0, 2]) {
      const grow = Math.max(0, width * 12 - (hi[a] - lo[a])) / 2;
      lo[a] -= grow;
      hi[a] += grow;
    }
    const corners = [];
    for (const x of [lo[0], hi[0]]) for (const y of [lo[1], hi[1]]) for (const z of [lo[2], hi[2]]) corners.push(new THREE.Vector3(x, y, z));
    return corners;
  }

  /**
   * The rectangles of the canvas (CSS pixels) the floor may be framed in: the
   * whole canvas, and the canvas with each overlay cut off from the side where
   * it takes the least room (the legend at the bottom left: above it or to its right).
   */
  frameRects() {
    const canvas = this.renderer.domElement.getBoundingClientRect();
    let rects = [{ left: FRAME_MARGIN_PX, top: FRAME_MARGIN_PX, right: canvas.width - FRAME_MARGIN_PX, bottom: canvas.height - FRAME_MARGIN_PX }];
    for (const element of this.overlays()) {
      if (!element || element.hidden || !element.offsetParent) continue;
      const r = element.getBoundingClientRect();
      const o = { left: r.left - canvas.left, top: r.top - canvas.top, right: r.right - canvas.left, bottom: r.bottom - canvas.top };
      const next = [];
      for (const rect of rects) {
        if (o.right <= rect.left || o.left >= rect.right || o.bottom <= rect.top || o.top >= rect.bottom) {
          next.push(rect);
          continue;
        }
        next.push(
          { ...rect, top: Math.max(rect.top, o.bottom + FRAME_MARGIN_PX) },
          { ...rect, bottom: Math.min(rect.bottom, o.top - FRAME_MARGIN_PX) },
          { ...rect, left: Math.max(rect.left, o.right + FRAME_MARGIN_PX) },
          { ...rect, right: Math.min(rect.right, o.left - FRAME_MARGIN_PX) },
        );
      }
      rects = next.filter((r) => r.right - r.left > 120 && r.bottom - r.top > 120);
    }
    return { rects, width: canvas.width, height: canvas.height };
  }

  /** Place the camera looking at `target` from `distance` along `direction`. */
  cameraPlace(target, direction, distance) {
    this.controls.target.copy(target);
    this.camera.position.copy(target).addScaledVector(direction, distance);
    this.camera.lookAt(target);
    this.camera.updateMatrixWorld();
  }

  /** The screen box (CSS pixels) of `corners` seen from the camera as placed; null if one is behind it. */
  screenBox(corners, width, height) {
    const box = { left: Infinity, top: Infinity, right: -Infinity, bottom: -Infinity };
    const v = new THREE.Vector3();
    for (const c of corners) {
      v.copy(c).project(this.camera);
      if (v.z >= 1 || v.z <= -1) return null;
      const x = ((v.x + 1) / 2) * width;
      const y = ((1 - v.y) / 2) * height;
      box.left = Math.min(box.left, x);
      box.right = Math.max(box.right, x);
      box.top = Math.min(box.top, y);
      box.bottom = Math.max(box.bottom, y);
    }
    return box;
  }

  /**
   * The camera that shows `corners` inside `rect` from `direction`, as close as it can:
   * the distance found by bisection, then the target moved so the box sits in the
   * rectangle's middle, a few rounds. Returns {target, distance} or null.
   */
  fitIn(corners, rect, direction, width, height, radius) {
    const target = new THREE.Vector3();
    for (const c of corners) target.add(c);
    target.divideScalar(corners.length);
    const right = new THREE.Vector3();
    const up = new THREE.Vector3();
    let distance = radius * 3;
    for (let round = 0; round < 4; round++) {
      let near = radius * 0.2;
      let far = radius * 30;
      for (let k = 0; k < 28; k++) {
        const mid = (near + far) / 2;
        this.cameraPlace(target, direction, mid);
        const box = this.screenBox(corners, width, height);
        if (box && box.right - box.left <= rect.right - rect.left && box.bottom - box.top <= rect.bottom - rect.top) far = mid;
        else near = mid;
      }
      distance = far;
      this.cameraPlace(target, direction, distance);
      const box = this.screenBox(corners, width, height);
      if (!box) return null;
      // Pixels to world units at the target's distance, along the camera's right and up.
      const perPixel = (2 * distance * Math.tan(THREE.MathUtils.degToRad(this.camera.fov / 2))) / height;
      const dx = ((box.left + box.right) / 2 - (rect.left + rect.right) / 2) * perPixel;
      const dy = ((box.top + box.bottom) / 2 - (rect.top + rect.bottom) / 2) * perPixel;
      right.setFromMatrixColumn(this.camera.matrixWorld, 0);
      up.setFromMatrixColumn(this.camera.matrixWorld, 1);
      target.addScaledVector(right, dx).addScaledVector(up, -dy);
    }
    this.cameraPlace(target, direction, distance);
    const box = this.screenBox(corners, width, height);
    const inside = box && box.left >= rect.left - 1 && box.right <= rect.right + 1 && box.top >= rect.top - 1 && box.bottom <= rect.bottom + 1;
    return inside ? { target: target.clone(), distance } : { target: target.clone(), distance: distance * 1.08 };
  }

  /** Point the camera at the whole floor: every rack on screen and clear of the legend and the time slider. */
  frameAll() {
    const corners = this.floorCorners();
    const box = new THREE.Box3().setFromPoints(corners);
    const radius = Math.max(box.getSize(new THREE.Vector3()).length() / 2, 1e-3);
    this.camera.near = radius / 2000;
    this.camera.far = radius * 60;
    this.camera.updateProjectionMatrix();
    const direction = new THREE.Vector3(0.45, 0.75, 1).normalize();
    const { rects, width, height } = this.frameRects();
    let best = null;
    if (width && height) {
      for (const rect of rects) {
        const fit = this.fitIn(corners, rect, direction, width, height, radius);
        if (fit && (!best || fit.distance < best.distance)) best = fit;
      }
    }
    if (!best) best = { target: box.getCenter(new THREE.Vector3()), distance: radius * 1.85 };
    this.cameraPlace(best.target, direction, best.distance);
    this.controls.maxDistance = Math.max(radius * 10, best.distance * 3);
    this.controls.update();
    this.requestRender();
  }

  /** Fly the camera to a host, keeping the angle it looks from. */
  flyTo(index) {
    const p = this.layout.positions;
    const target = new THREE.Vector3(p[index * 3], p[index * 3 + 1], p[index * 3 + 2]);
    const direction = this.camera.position.clone().sub(this.controls.target).normalize();
    // From above enough to look over the row in front.
    if (direction.y < 0.6) direction.setY(0.6 * Math.hypot(direction.x, direction.z) / 0.8).normalize();
    const distance = Math.max(this.layout.width * 14, this.layout.height * 45);
    this.flight = {
      start: performance.now(),
      duration: 700,
      fromPosition: this.camera.position.clone(),
      toPosition: target.clone().add(direction.multiplyScalar(distance)),
      fromTarget: this.controls.target.clone(),
      toTarget: target,
    };
    this.requestRender();
  }

  // --- frames, picking --------------------------------------------------------------

  requestRender() {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(this.frame);
  }

  frame(now) {
    this.frameRequested = false;
    if (this.flight) {
      const f = this.flight;
      const t = Math.min(1, (now - f.start) / f.duration);
      const e = t < 0.5 ? 4 * t * t * t : 1 - Math.pow(-2 * t + 2, 3) / 2;
      this.camera.position.lerpVectors(f.fromPosition, f.toPosition, e);
      this.controls.target.lerpVectors(f.fromTarget, f.toTarget, e);
      this.controls.update();
      if (t < 1) this.requestRender();
      else this.flight = null;
    }
    if (!this.visible) return;
    const t0 = performance.now();
    this.nearUpdate();
    this.labelsScale();
    this.renderer.render(this.scene, this.camera);
    this.stats.lastRenderMs = performance.now() - t0;
    this.stats.renders += 1;
    if (this.stats.firstFrameAt === null && this.source && this.source.hosts.length) {
      // The frame is on screen at the next animation frame.
      requestAnimationFrame(() => {
        if (this.stats.firstFrameAt === null) this.stats.firstFrameAt = performance.now();
      });
    }
  }

  setVisible(visible) {
    this.visible = visible;
    if (visible) {
      this.resize();
      this.requestRender();
    }
  }

  resize() {
    const w = this.container.clientWidth;
    const h = this.container.clientHeight;
    if (!w || !h) return;
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.requestRender();
  }

  bindPointer(canvas) {
    let down = null;
    let hoverPending = false;
    let lastEvent = null;
    canvas.addEventListener("pointerdown", (e) => {
      down = { x: e.clientX, y: e.clientY };
    });
    canvas.addEventListener("pointerup", (e) => {
      if (down && Math.hypot(e.clientX - down.x, e.clientY - down.y) < 5) {
        const i = this.pick(e);
        if (i !== null) this.onSelect(i);
      }
      down = null;
    });
    canvas.addEventListener("pointermove", (e) => {
      lastEvent = e;
      if (hoverPending || e.buttons) return;
      hoverPending = true;
      setTimeout(() => {
        hoverPending = false;
        if (lastEvent) this.onHover(this.pick(lastEvent), lastEvent);
      }, 60);
    });
    canvas.addEventListener("pointerleave", () => {
      lastEvent = null;
      this.onHover(null, null);
    });
  }

  /** The host under the pointer (index into the source's hosts), or null. */
  pick(event) {
    if (!this.source) return null;
    const rect = this.renderer.domElement.getBoundingClientRect();
    this.pointer.set(((event.clientX - rect.left) / rect.width) * 2 - 1, -((event.clientY - rect.top) / rect.height) * 2 + 1);
    this.raycaster.setFromCamera(this.pointer, this.camera);
    const hits = this.raycaster.intersectObjects(this.meshes, false);
    if (!hits.length) return null;
    const which = hits[0].object === this.agentMesh ? 0 : 1;
    return this.hostOfSlot[which][hits[0].instanceId];
  }

  /** Where a host is on screen, in CSS pixels of the canvas (for labels and tests). */
  screenPosition(index) {
    const p = this.layout.positions;
    const v = new THREE.Vector3(p[index * 3], p[index * 3 + 1], p[index * 3 + 2]).project(this.camera);
    const rect = this.renderer.domElement.getBoundingClientRect();
    return { x: ((v.x + 1) / 2) * rect.width, y: ((1 - v.y) / 2) * rect.height, visible: v.z < 1 };
  }

  /** The screen rectangle (client CSS pixels) of a box in the scene, from its corners (for tests). */
  screenRect(min, max) {
    const canvas = this.renderer.domElement.getBoundingClientRect();
    const corners = [];
    for (const x of [min[0], max[0]]) for (const y of [min[1], max[1]]) for (const z of [min[2], max[2]]) corners.push(new THREE.Vector3(x, y, z));
    const box = this.screenBox(corners, canvas.width, canvas.height);
    return box && { left: box.left + canvas.left, right: box.right + canvas.left, top: box.top + canvas.top, bottom: box.bottom + canvas.top };
  }
}
