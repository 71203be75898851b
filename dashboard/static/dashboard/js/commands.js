// The command panel of the selected host: its recent commands with their live
// state, and, for users allowed to issue them, "send command" with the
// server's catalogue (docs: the command lifecycle's wire protocol).
//
// Switched on by feature detection: when GET /api/commands/actions answers
// 404 (a server without commands) or refuses this user, the panel stays hidden.

import { RequestGuard } from "./api.js";
import { dateTime } from "./format.js";

const TERMINAL = new Set(["succeeded", "failed", "timed_out", "cancelled", "undeliverable"]);
// An invocation only moves forward (docs/api.md §8, "States"). A `command-update`
// can reach the page before the answer to the request that caused it (a fast
// agent finishes before the POST's answer is read): an older document must never
// take a command back.
const RANK = { queued: 0, dispatched: 1, running: 2 };
function rank(state) {
  return TERMINAL.has(state) ? 3 : (RANK[state] ?? 0);
}

function list(body, ...keys) {
  if (Array.isArray(body)) return body;
  for (const key of keys) if (Array.isArray(body && body[key])) return body[key];
  return [];
}

/**
 * The actions this user may send, from `GET /api/commands/actions`
 * (`{"actions": [{name, description, argsSchema, permissions, requiresHostEnablement}], "defaults"}`):
 * an action needing a permission the user lacks (`shell` needs `commands.run_shell`) is left out.
 */
export function catalogueNormalize(body, permissions) {
  const held = new Set(permissions || []);
  return ((body && body.actions) || [])
    .filter((a) => typeof a.name === "string" && (a.permissions || []).every((p) => held.has(p)))
    .map((a) => ({
      name: a.name,
      description: a.description || "",
      schema: a.argsSchema || { type: "object", properties: {} },
      needsEnablement: !!a.requiresHostEnablement,
    }));
}

function randomKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export class CommandPanel {
  constructor(root, { api, canCommand, permissions }) {
    this.root = root;
    this.api = api;
    // Renewed when the host shown changes: an answer about the host shown before is dropped.
    this.guard = new RequestGuard();
    this.canCommand = canCommand;
    this.permissions = permissions;
    this.available = false;
    this.catalogue = [];
    this.hostname = null;
    this.commands = new Map(); // id -> {id, action, state, issuedAt, issuedBy, output, exitCode}
    this.listEl = root.querySelector("[data-commands-list]");
    this.form = root.querySelector("[data-command-form]");
    this.argsEl = root.querySelector("[data-command-args]");
    this.actionSelect = root.querySelector("[data-command-action]");
    this.messageEl = root.querySelector("[data-command-message]");
    this.pendingKey = null;
    root.hidden = true;
    this.actionSelect.addEventListener("change", () => this.renderArgs());
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.send();
    });
  }

  /** Ask the server for its catalogue; the panel appears only if it answers. */
  async probe() {
    let body;
    try {
      body = await this.api.get("commandActions");
    } catch (error) {
      if (error.unreachable) return false;
      this.available = false;
      this.root.hidden = true;
      return false;
    }
    this.catalogue = catalogueNormalize(body, this.permissions);
    this.available = true;
    this.actionSelect.replaceChildren(...this.catalogue.map((a) => new Option(a.name, a.name)));
    this.form.hidden = !this.canCommand || !this.catalogue.length;
    this.renderArgs();
    if (this.hostname) this.show(this.hostname);
    return true;
  }

  /** Show the host's recent commands: `GET /api/commands?host=` (newest first, that host's invocation in each). */
  async show(hostname) {
    if (hostname !== this.hostname) {
      this.commands.clear();
      this.guard.renew();
    }
    this.hostname = hostname;
    if (!this.available) return;
    this.root.hidden = false;
    this.message("");
    this.render();
    await this.reload();
  }

  /** Read the list again (after a reconnect: `command-update` events are delivered at most once). */
  async reload() {
    const hostname = this.hostname;
    if (!this.available || !hostname) return;
    let body;
    try {
      body = await this.api.get("commands", { query: { host: hostname, limit: 10 }, guard: this.guard });
    } catch (error) {
      if (error.stale) return;
      this.message(error.unreachable ? "Could not load the recent commands." : `Could not load the recent commands (${error.status}).`, true);
      return;
    }
    for (const doc of list(body, "commands")) this.take(doc);
    this.render();
  }

  hide() {
    this.guard.renew();
    this.hostname = null;
    this.root.hidden = true;
  }

  /** A command document (list, detail or create answer): this host's invocation in it. */
  take(doc) {
    const mine = (doc.invocations || []).find((inv) => inv.host === this.hostname);
    if (!mine) return; // a command of this host always carries its invocation
    this.merge(doc.id, {
      action: doc.action,
      state: mine.state,
      issuedAt: doc.issuedAt,
      issuedBy: doc.issuedBy,
      exitCode: mine.exitCode,
      output: mine.output,
    });
  }

  /** What is known of a command, moved forward only. */
  merge(id, news) {
    const known = this.commands.get(id);
    if (!known) {
      this.commands.set(id, { id, ...news });
      return;
    }
    for (const key of ["action", "issuedAt", "issuedBy"]) if (news[key] !== undefined && news[key] !== null) known[key] = news[key];
    if (rank(news.state) < rank(known.state)) return;
    known.state = news.state;
    if (news.exitCode !== undefined) known.exitCode = news.exitCode;
    if (news.output !== undefined) known.output = news.output;
  }

  /** A live `command-update` event (staff readers only). */
  update(event) {
    if (!this.available || event.host !== this.hostname) return;
    // A command this page has not seen (sent from the admin, another page or the API):
    // the event says little of it; its document (GET /api/commands/{id}) says who sent it.
    if (!this.commands.has(event.id)) this.detailLoad(event.id);
    this.merge(event.id, {
      action: event.action,
      state: event.state,
      issuedAt: event.queuedAt || undefined,
      ...(event.result ? { exitCode: event.result.exitCode, output: event.result.output } : {}),
    });
    const known = this.commands.get(event.id);
    if (!known.issuedAt) known.issuedAt = event.at;
    this.render();
  }

  async detailLoad(id) {
    try {
      this.take(await this.api.get("command", { params: { command_id: id }, guard: this.guard }));
      this.render();
    } catch {
      // Stale (another host shown), or lost: the list is read again after a reconnect; nothing is lost for good.
    }
  }

  render() {
    const items = [...this.commands.values()].sort((a, b) => b.id - a.id).slice(0, 10);
    if (!items.length) {
      const empty = document.createElement("li");
      empty.className = "muted";
      empty.textContent = "No recent commands.";
      this.listEl.replaceChildren(empty);
      return;
    }
    this.listEl.replaceChildren(
      ...items.map((c) => {
        const li = document.createElement("li");
        li.dataset.commandId = c.id;
        const head = document.createElement("div");
        head.className = "command-head";
        const name = document.createElement("strong");
        name.textContent = `#${c.id} ${c.action}`;
        const state = document.createElement("span");
        state.className = `command-state state-${c.state}`;
        state.textContent = c.state.replace("_", " ");
        head.append(name, state);
        const meta = document.createElement("div");
        meta.className = "muted small";
        const at = Date.parse(c.issuedAt);
        meta.textContent = `${Number.isFinite(at) ? dateTime(new Date(at)) : ""}${c.issuedBy ? ` · ${c.issuedBy}` : ""}${
          TERMINAL.has(c.state) && c.exitCode !== undefined && c.exitCode !== null ? ` · exit ${c.exitCode}` : ""
        }`;
        li.append(head, meta);
        if (c.output) {
          const pre = document.createElement("pre");
          pre.textContent = c.output.length > 400 ? `${c.output.slice(0, 400)}…` : c.output;
          li.append(pre);
        }
        return li;
      }),
    );
  }

  renderArgs() {
    const action = this.catalogue.find((a) => a.name === this.actionSelect.value);
    const fields = [];
    const properties = (action && action.schema && action.schema.properties) || {};
    const required = new Set((action && action.schema && action.schema.required) || []);
    for (const [name, spec] of Object.entries(properties)) {
      const label = document.createElement("label");
      label.textContent = name.replace(/_/g, " ");
      let input;
      if (spec.type === "string" && (spec.maxLength || 0) > 200) {
        input = document.createElement("textarea");
        input.rows = 2;
      } else {
        input = document.createElement("input");
        input.type = spec.type === "integer" || spec.type === "number" ? "number" : spec.type === "boolean" ? "checkbox" : "text";
        if (spec.minimum !== undefined) input.min = spec.minimum;
        if (spec.maximum !== undefined) input.max = spec.maximum;
        if (spec.type === "integer") input.step = 1;
      }
      if (spec.maxLength) input.maxLength = spec.maxLength;
      if (spec.default !== undefined) input.value = spec.default;
      input.name = name;
      input.dataset.kind = spec.type || "string";
      input.required = required.has(name) && spec.type !== "boolean";
      label.append(input);
      fields.push(label);
    }
    if (action && action.description) {
      const p = document.createElement("p");
      p.className = "muted small";
      p.textContent = action.description;
      fields.unshift(p);
    }
    this.argsEl.replaceChildren(...fields);
    this.pendingKey = null;
  }

  message(text, isError = false) {
    this.messageEl.textContent = text;
    this.messageEl.classList.toggle("error", isError);
  }

  async send() {
    const action = this.actionSelect.value;
    const args = {};
    for (const input of this.argsEl.querySelectorAll("[name]")) {
      if (input.dataset.kind === "boolean") args[input.name] = input.checked;
      else if (input.value === "") continue;
      else if (input.dataset.kind === "integer") args[input.name] = parseInt(input.value, 10);
      else if (input.dataset.kind === "number") args[input.name] = Number(input.value);
      else args[input.name] = input.value;
    }
    // The same key for a retry of the same submission: the server never creates it twice.
    this.pendingKey = this.pendingKey || randomKey();
    const button = this.form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const body = await this.api.post("commands", {
        headers: { "Idempotency-Key": this.pendingKey },
        body: { action, args, targets: { hosts: [this.hostname] } },
      });
      this.pendingKey = null;
      this.take(body);
      this.render();
      this.message(`Command #${body.id} sent.`);
    } catch (error) {
      if (error.unreachable) this.message("The server could not be reached; send again to retry (it will not run twice).", true);
      else this.message(`${error.code || error.status}: ${error.detail || "refused"}`, true);
    } finally {
      button.disabled = false;
    }
  }
}

