// The twin as the page holds it: the state, then `twin-delta` events applied in
// place (twin/delta.py:delta_apply is the reference). Hosts keep their index
// for as long as the set of hosts does not change, so the scene, the summary
// and the table update only the entries a delta names. Deltas come whole or in
// the fields form (`"fields": true`: each host its hostname and the keys that
// changed, `metrics` key by key), which is merged into a new document.

/** A virtual node (a switch, or a host an admin marked virtual): the host document says so (`isVirtual`). */
export function isVirtual(host) {
  return host.isVirtual === true;
}

/** A held host or link with a fields-form partial document merged in (a new object: `previous` keeps the old). */
function merged(held, partial) {
  const doc = { ...held, ...partial };
  if (partial.metrics && held.metrics) doc.metrics = { ...held.metrics, ...partial.metrics };
  return doc;
}

/** Removed names, minus those a fields delta also carries whole (a document that lost a key: replaced in place). */
function removedOnly(removed, carried, key, fields) {
  const gone = new Set(removed);
  if (fields) for (const doc of carried) gone.delete(doc[key]);
  return gone;
}

export class TwinStore {
  constructor() {
    this.hosts = [];
    this.index = new Map(); // hostname -> index in hosts
    this.links = [];
    this.linkIndex = new Map(); // id -> index in links
    this.version = null;
    this.twinId = null;
    this.generatedAt = null;
    // Client clock minus server clock, estimated from each document's generatedAt.
    this.clockOffsetMs = 0;
  }

  get ready() {
    return this.generatedAt !== null;
  }

  /** Take a whole twin-state document (a version when it carries one). */
  load(doc) {
    this.hosts = doc.hosts.slice();
    this.links = doc.links.slice();
    this.index = new Map(this.hosts.map((h, i) => [h.hostname, i]));
    this.linkIndex = new Map(this.links.map((l, i) => [l.id, i]));
    this.version = Number.isInteger(doc.version) ? doc.version : null;
    this.twinId = doc.twinId;
    this.noteTime(doc.generatedAt);
  }

  noteTime(generatedAt) {
    this.generatedAt = generatedAt;
    const at = Date.parse(generatedAt);
    if (Number.isFinite(at)) this.clockOffsetMs = Date.now() - at;
  }

  /** The server's "now" as this page estimates it (ms since the epoch). */
  serverNow() {
    return Date.now() - this.clockOffsetMs;
  }

  /**
   * Apply a delta whose baseVersion is the version held.
   *
   * Returns {applied: false, reason} when it cannot be applied (no versioned
   * state yet, or a gap: the caller resyncs), else what changed:
   * {applied: true, hosts: [index...], previous: [old doc...], links: [index...],
   *  structural: bool} where `structural` means hosts or links were added or
   * removed, so indexes moved and every view rebuilds.
   */
  applyDelta(delta) {
    if (this.version === null) return { applied: false, reason: "no-state" };
    if (delta.baseVersion !== this.version || delta.twinId !== this.twinId) return { applied: false, reason: "gap" };
    let structural = false;
    const fields = delta.fields === true;
    const replacedHosts = fields ? new Set(delta.removedHosts) : null;
    const changedHosts = [];
    const previous = [];
    for (const host of delta.hosts) {
      const i = this.index.get(host.hostname);
      if (i === undefined) {
        this.index.set(host.hostname, this.hosts.length);
        this.hosts.push(host);
        structural = true;
      } else {
        previous.push(this.hosts[i]);
        changedHosts.push(i);
        this.hosts[i] = fields && !replacedHosts.has(host.hostname) ? merged(this.hosts[i], host) : host;
      }
    }
    const goneHosts = removedOnly(delta.removedHosts, delta.hosts, "hostname", fields);
    if (goneHosts.size) {
      this.hosts = this.hosts.filter((h) => !goneHosts.has(h.hostname));
      this.index = new Map(this.hosts.map((h, i) => [h.hostname, i]));
      structural = true;
    }
    const replacedLinks = fields ? new Set(delta.removedLinks) : null;
    const changedLinks = [];
    for (const link of delta.links) {
      const i = this.linkIndex.get(link.id);
      if (i === undefined) {
        this.linkIndex.set(link.id, this.links.length);
        this.links.push(link);
        structural = true;
      } else {
        changedLinks.push(i);
        this.links[i] = fields && !replacedLinks.has(link.id) ? merged(this.links[i], link) : link;
      }
    }
    const goneLinks = removedOnly(delta.removedLinks, delta.links, "id", fields);
    if (goneLinks.size) {
      this.links = this.links.filter((l) => !goneLinks.has(l.id));
      this.linkIndex = new Map(this.links.map((l, i) => [l.id, i]));
      structural = true;
    }
    this.version = delta.version;
    this.noteTime(delta.generatedAt);
    return { applied: true, hosts: changedHosts, previous, links: changedLinks, structural };
  }

  host(hostname) {
    const i = this.index.get(hostname);
    return i === undefined ? null : this.hosts[i];
  }

  /** Hosts per status. */
  statusCounts() {
    const counts = { online: 0, stale: 0, offline: 0, unknown: 0 };
    for (const h of this.hosts) counts[h.status in counts ? h.status : "unknown"] += 1;
    return counts;
  }

  /** The `n` links with the highest utilization. */
  busiestLinks(n) {
    const top = [];
    for (const link of this.links) {
      if (top.length < n || link.utilization > top[top.length - 1].utilization) {
        top.push(link);
        top.sort((a, b) => b.utilization - a.utilization);
        if (top.length > n) top.pop();
      }
    }
    return top;
  }

  racks() {
    const names = new Set();
    for (const h of this.hosts) if (h.rack) names.add(h.rack);
    return [...names].sort();
  }
}
