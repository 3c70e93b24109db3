// Every request the dashboard makes goes through this module, so that auth (a bearer token once
// DESCENT_API_TOKEN is enforced) is added in exactly one place: headers().

const TOKEN_KEY = "descent.token";

// The token is asked for once, on the first 401, and kept for this browser session only.
function headers(extra = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: `Bearer ${token}` } : { ...extra };
}

function askForToken() {
  const token = window.prompt("This Descent server needs an API token (DESCENT_API_TOKEN):");
  if (!token) return false;
  sessionStorage.setItem(TOKEN_KEY, token.trim());
  return true;
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function request(method, path, { params, body } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const send = () => {
    const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
    if (body !== undefined) init.body = JSON.stringify(body);
    return fetch(url, init);
  };
  let response = await send();
  if (response.status === 401 && askForToken()) response = await send();
  if (response.status === 204) return null;
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const api = {
  get: (path, params) => request("GET", path, { params }),
  post: (path, body) => request("POST", path, { body }),
  del: (path) => request("DELETE", path),
  events: (path, options) => new EventStream(path, options),
};

// GET /jobs/{id}/events read with fetch (an EventSource cannot send an Authorization header).
// The server frames the events (FastAPI's SSE); this only splits them back into fields and, if
// the connection drops before `end`, reconnects with Last-Event-ID so nothing is missed.
class EventStream {
  constructor(path, { after = -1, onEvent, onEnd, onError } = {}) {
    this.path = path;
    this.lastId = String(after);
    this.onEvent = onEvent || (() => {});
    this.onEnd = onEnd || (() => {});
    this.onError = onError || (() => {});
    this.retryMs = 1000;
    this.closed = false;
    this.controller = null;
    this.run();
  }

  close() {
    this.closed = true;
    if (this.controller) this.controller.abort();
  }

  async run() {
    while (!this.closed) {
      try {
        this.controller = new AbortController();
        const response = await fetch(this.path, {
          headers: headers({ Accept: "text/event-stream", "Last-Event-ID": this.lastId }),
          signal: this.controller.signal,
        });
        if (!response.ok) {
          const problem = await response.json().catch(() => null);
          throw new ApiError(response.status, problem);
        }
        if (await this.read(response.body)) return;
      } catch (error) {
        if (this.closed) return;
        this.onError(error);
        if (error instanceof ApiError && error.status < 500) return;
      }
      await new Promise((resolve) => setTimeout(resolve, this.retryMs));
    }
  }

  // True once the `end` event has arrived.
  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let fields = {};
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return false;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (fields.data !== undefined || fields.event !== undefined) {
            if (this.dispatch(fields)) return true;
          }
          fields = {};
        } else if (!line.startsWith(":")) {
          const at = line.indexOf(":");
          const name = at < 0 ? line : line.slice(0, at);
          let text = at < 0 ? "" : line.slice(at + 1);
          if (text.startsWith(" ")) text = text.slice(1);
          fields[name] = name === "data" && fields.data !== undefined ? `${fields.data}\n${text}` : text;
        }
      }
    }
  }

  dispatch(fields) {
    if (fields.id !== undefined) this.lastId = fields.id;
    if (fields.retry !== undefined) this.retryMs = Number(fields.retry) || this.retryMs;
    const kind = fields.event || "message";
    const data = fields.data ? JSON.parse(fields.data) : null;
    this.onEvent(kind, data, this.lastId);
    if (kind === "end") {
      this.closed = true;
      this.onEnd(data);
      return true;
    }
    return false;
  }
}
