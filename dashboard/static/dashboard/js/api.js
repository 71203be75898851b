// The page's one way to the server's JSON API.
//
// - URLs come from the page's config (`urls`, written by dashboard/selectors.py
//   from the server's routes), by name: `api.get("hostEvents", {params: {hostname}})`.
// - One error shape: every failure rejects with an `ApiError` holding the
//   server's `{"error": code, "detail": text}` and the HTTP status (0: the server
//   could not be reached).
// - One guard against stale answers: a request made with a `RequestGuard` whose
//   `renew()` was called since (another host selected, another time chosen) is
//   answered with an `ApiError` whose `stale` is true, never with its body, so
//   an older answer can never overwrite a newer one. The request itself is let
//   finish (an aborted fetch is a failed request in the browser's log).

const UNREACHABLE = "unreachable";
const STALE = "stale";

export class ApiError extends Error {
  constructor({ status, code, detail }) {
    super(typeof detail === "string" ? detail : code || `HTTP ${status}`);
    this.status = status; // the HTTP status; 0 when no answer came
    this.code = code; // the server's "error" (null if it gave none), or "unreachable", "stale", "not_json"
    this.detail = detail; // the server's "detail" (a sentence), if any
  }

  /** No answer came (the network, the server down). */
  get unreachable() {
    return this.code === UNREACHABLE;
  }

  /** A newer request of the same purpose was made: this answer is not shown. */
  get stale() {
    return this.code === STALE;
  }
}

/** Answers of one purpose (the selected host's commands, the time shown): `renew()` makes every earlier request's answer stale. */
export class RequestGuard {
  constructor() {
    this.token = 0;
  }

  renew() {
    this.token += 1;
  }
}

export class Api {
  constructor({ urls, csrfToken }) {
    this.urls = urls;
    this.csrfToken = csrfToken;
  }

  /** The path of route `name` with its `{argument}`s filled in, and a query string from `query` (undefined values left out). */
  url(name, params = {}, query = {}) {
    const template = this.urls[name];
    if (!template) throw new Error(`the page's config names no URL "${name}"`);
    const path = template.replace(/\{(\w+)\}/g, (_, key) => encodeURIComponent(params[key]));
    const search = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null)).toString();
    return search ? `${path}?${search}` : path;
  }

  get(name, options = {}) {
    return this.request("GET", name, options);
  }

  /** POST a JSON body (with the page's CSRF token). */
  post(name, options = {}) {
    return this.request("POST", name, options);
  }

  /** The answer's JSON body; rejects with an ApiError (refused, unreachable, or stale under `guard`). */
  async request(method, name, { params, query, body, headers = {}, guard = null }) {
    const token = guard && guard.token;
    const stale = () => guard && guard.token !== token;
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.headers["X-CSRFToken"] = this.csrfToken;
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(this.url(name, params, query), init);
    } catch {
      if (stale()) throw new ApiError({ status: 0, code: STALE });
      throw new ApiError({ status: 0, code: UNREACHABLE, detail: "The server could not be reached." });
    }
    let answer;
    try {
      answer = await response.json();
    } catch {
      answer = undefined;
    }
    if (stale()) throw new ApiError({ status: response.status, code: STALE });
    if (!response.ok) {
      const refusal = answer && typeof answer === "object" ? answer : {};
      throw new ApiError({ status: response.status, code: refusal.error || null, detail: refusal.detail });
    }
    if (answer === undefined) throw new ApiError({ status: response.status, code: "not_json", detail: "The server's answer was not JSON." });
    return answer;
  }
}
