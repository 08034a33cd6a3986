// The command and query APIs (docs/api.md), called with the signed-in person's token.
// A refusal is an application/problem+json answer: its detail is what the tutor is shown.

export class Refused extends Error {
  constructor(status, title, detail) {
    super(detail || title || `refused (${status})`);
    this.status = status;
    this.title = title || `Refused (${status})`;
    this.detail = detail || "";
  }
}

async function problemOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const title = body && typeof body.title === "string" ? body.title : response.statusText;
  const detail = body && typeof body.detail === "string" ? body.detail : "";
  return new Refused(response.status, title, detail);
}

export class Api {
  constructor(config, token) {
    this.command = config.commandUrl;
    this.query = config.queryUrl;
    this.token = token;
  }

  headers(extra = {}) {
    return { Authorization: `Bearer ${this.token}`, ...extra };
  }

  /** A command: POST with a fresh Idempotency-Key, so a retried click records it once. */
  async post(path, body = undefined) {
    let response;
    try {
      response = await fetch(`${this.command}${path}`, {
        method: "POST",
        headers: this.headers({
          "Content-Type": "application/json",
          "Idempotency-Key": crypto.randomUUID(),
        }),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new Refused(0, "Not sent", "the command API cannot be reached; try again");
    }
    if (!response.ok) {
      throw await problemOf(response);
    }
    return response.json();
  }

  async get(path) {
    let response;
    try {
      response = await fetch(`${this.query}${path}`, { headers: this.headers() });
    } catch {
      throw new Refused(0, "Not read", "the query API cannot be reached");
    }
    if (!response.ok) {
      throw await problemOf(response);
    }
    return response.json();
  }
}
