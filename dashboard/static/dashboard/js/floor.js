// The 3D floor: racks, hosts and links in one three.js scene.
//
// Built for 10,000 hosts: every agent host is one instance of one
// InstancedMesh (virtual nodes of a second, drawn as diamonds), every link one
// instance of a third. A delta rewrites only the colours (and, rarely, the
// matrices) of the instances it names; nothing is re-created unless hosts or
// links come or go. Frames are drawn on demand (a change, a camera move), not
// in a loop, so an idle dashboard costs nothing.

import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";
import { cpuRgb, HIGHLIGHT, statusRgb, utilizationRgb } from "./colors.js";
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

/** Drawn in the same place by the same mesh: only its colour can have changed. */
function samePlace(a, b) {
  const p = a.position || {};
  const q = b.position || {};
  return p.x === q.x && p.y === q.y && p.z === q.z && isVirtual(a) === isVirtual(b);
}

export const LINK_MODES = { all: "All links", busy: "Busy links (≥ 50 %)", none: "No links" };
const BUSY = 0.5;

export class Floor {
  constructor(container, { onSelect, onHover } = {}) {
    this.container = container;
    this.onSelect = onSelect || (() => {});
    this.onHover = onHover || (() => {});
    this.colorMode = "status";
    this.linkMode = "all";
    this.source = null;
    this.selected = null;
    this.visible = true;
    this.stats = { renders: 0, lastRenderMs: null, firstFrameAt: null };

    this.renderer = new THREE.WebGLRenderer({ antialias: true, powerPreference: "high-performance" });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.setClearColor(0x0d1117, 1);
    const canvas = this.renderer.domElement;
    canvas.tabIndex = 0;
    canvas.setAttribute("aria-label", "3D floor of racks and hosts: drag to orbit, wheel to zoom, right-drag or arrow keys to pan, click a host to select it");
    canvas.setAttribute("role", "img");
    container.appendChild(canvas);

    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(50, 1, 0.01, 1000);
    this.scene.add(new THREE.HemisphereLight(0xe8f0ff, 0x30363d, 2.2));
    const sun = new THREE.DirectionalLight(0xffffff, 1.2);
    sun.position.set(0.6, 1, 0.35);
    this.scene.add(sun);

    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.screenSpacePanning = false;
    this.controls.maxPolarAngle = Math.PI * 0.495;
    this.controls.listenToKeyEvents(canvas);
    this.controls.addEventListener("change", () => this.requestRender());

    this.hostMaterial = new THREE.MeshLambertMaterial({ color: 0xffffff });
    this.linkMaterial = new THREE.MeshBasicMaterial({ color: 0xffffff, transparent: true, opacity: 0.45, depthWrite: false });
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
    for (let i = 0; i < hosts.length; i++) writeColor(this.meshes[this.meshOf[i]].instanceColor.array, this.slotOf[i], this.hostRgb(hosts[i]));
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
    for (const i of indexes) writeColor(this.meshes[this.meshOf[i]].instanceColor.array, this.slotOf[i], this.hostRgb(hosts[i]));
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

  buildLinks() {
    const links = this.source.links;
    this.linkMesh = new THREE.InstancedMesh(new THREE.BoxGeometry(1, 1, 1).translate(0, 0.5, 0), this.linkMaterial, Math.max(1, links.length));
    this.linkMesh.count = links.length;
    this.linkMesh.instanceColor = new THREE.InstancedBufferAttribute(new Float32Array(Math.max(1, links.length) * 3), 3);
    this.linkMesh.renderOrder = 1;
    for (let i = 0; i < links.length; i++) this.placeLink(i);
    this.linkMesh.instanceMatrix.needsUpdate = true;
    this.linkMesh.instanceColor.needsUpdate = true;
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

  placeLink(i) {
    const link = this.source.links[i];
    const shown = this.linkMode === "all" || (this.linkMode === "busy" && link.utilization >= BUSY);
    const a = this.endpoint(link.source, from);
    const b = this.endpoint(link.target, to);
    if (!shown || !a || !b) {
      this.linkMesh.setMatrixAt(i, HIDDEN);
      return;
    }
    b.sub(a);
    const length = b.length();
    if (length < 1e-9) {
      this.linkMesh.setMatrixAt(i, HIDDEN);
      return;
    }
    quaternion.setFromUnitVectors(UP, b.divideScalar(length));
    // Width by utilization: a hair when idle, a third of a host when saturated.
    const width = this.layout.width * (0.015 + 0.3 * Math.min(1, link.utilization || 0));
    matrix.compose(a, quaternion, scale.set(width, length, width));
    this.linkMesh.setMatrixAt(i, matrix);
    writeColor(this.linkMesh.instanceColor.array, i, utilizationRgb(0.12 + 0.88 * Math.min(1, link.utilization || 0), rgb));
  }

  updateLinks(indexes) {
    for (const i of indexes) this.placeLink(i);
    if (indexes.length) {
      this.linkMesh.instanceMatrix.needsUpdate = true;
      this.linkMesh.instanceColor.needsUpdate = true;
      this.requestRender();
    }
  }

  setLinkMode(mode) {
    this.linkMode = mode;
    if (!this.source) return;
    for (let i = 0; i < this.source.links.length; i++) this.placeLink(i);
    this.linkMesh.instanceMatrix.needsUpdate = true;
    this.linkMesh.instanceColor.needsUpdate = true;
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
    if (racks.length <= 400) {
      for (const rack of racks) this.groups.add(this.label(rack));
    }
  }

  label(rack) {
    const canvas = document.createElement("canvas");
    const text = rack.name;
    canvas.width = 256;
    canvas.height = 64;
    const ctx = canvas.getContext("2d");
    ctx.font = "600 34px system-ui, sans-serif";
    ctx.fillStyle = "rgba(200, 214, 229, 0.95)";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(text.length > 14 ? `${text.slice(0, 13)}…` : text, 128, 32);
    const texture = new THREE.CanvasTexture(canvas);
    texture.colorSpace = THREE.SRGBColorSpace;
    const sprite = new THREE.Sprite(new THREE.SpriteMaterial({ map: texture, transparent: true, depthWrite: false }));
    const w = Math.max(rack.max[0] - rack.min[0], rack.max[2] - rack.min[2]) * 1.1;
    sprite.scale.set(w, w / 4, 1);
    sprite.position.set((rack.min[0] + rack.max[0]) / 2, rack.max[1] + w / 6, (rack.min[2] + rack.max[2]) / 2);
    sprite.raycast = () => {};
    return sprite;
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

  /** Point the camera at the whole floor. */
  frameAll() {
    const { min, max } = this.layout.bounds;
    const center = new THREE.Vector3((min[0] + max[0]) / 2, (min[1] + max[1]) / 2, (min[2] + max[2]) / 2);
    const radius = Math.max(new THREE.Vector3(max[0] - min[0], max[1] - min[1], max[2] - min[2]).length() / 2, this.layout.width * 4);
    this.camera.near = radius / 2000;
    this.camera.far = radius * 40;
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(center);
    this.camera.position.copy(center).add(new THREE.Vector3(0.45, 0.75, 1).normalize().multiplyScalar(radius * 1.85));
    this.controls.maxDistance = radius * 10;
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
}
