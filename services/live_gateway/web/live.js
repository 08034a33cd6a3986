// The gateway's websocket protocol (docs/live.md): a snapshot, then RFC 7386 merge patches;
// after a drop, reconnect and subscribe again with the version of each copy held.

/** RFC 7386: apply a JSON merge patch to a value, returning the new value. */
export function mergePatch(target, patch) {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) {
    return patch;
  }
  const result =
    target !== null && typeof target === "object" && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete result[key];
    } else {
      result[key] = mergePatch(result[key], value);
    }
  }
  return result;
}

const REFUSED = new Map([
  [4401, "the token was refused (expired, forged or malformed)"],
  [4403, "this token may not act in that centre"],
]);
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000];
const PROTOCOL = "tutorpulse.v1";
const BEARER_PROTOCOL = "tutorpulse.bearer.";

/**
 * One websocket to the gateway, following topics. Callbacks:
 * onView(topic, data, {version, patch}) for each snapshot or delta applied,
 * onRefused(topic, status, detail) for a refused subscription,
 * onState(state, detail) with "connecting", "live", "reconnecting" or "refused".
 */
export class Live {
  constructor(url, token, callbacks) {
    this.url = url;
    this.token = token;
    this.callbacks = callbacks;
    this.topics = new Map(); // topic -> {version, data}
    this.socket = null;
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) {
      this.socket.close(1000, "signed out");
    }
  }

  follow(topic) {
    if (!this.topics.has(topic)) {
      this.topics.set(topic, { version: null, data: null });
    }
    this.send({ type: "subscribe", topic });
  }

  unfollow(topic) {
    if (this.topics.delete(topic)) {
      this.send({ type: "unsubscribe", topic });
    }
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  }

  open() {
    this.callbacks.onState(this.attempt ? "reconnecting" : "connecting");
    // Browsers cannot set headers on a websocket, but they can offer subprotocols: the token
    // goes in one (a JWT's characters are all valid there), out of the URL, which proxies log
    // and the browser keeps in its history. The gateway selects only the fixed protocol.
    let socket;
    try {
      socket = new WebSocket(this.url, [PROTOCOL, BEARER_PROTOCOL + this.token]);
    } catch {
      // A SyntaxError: the token holds a character no subprotocol (and no JWT) can have.
      this.callbacks.onState("refused", "it has characters an access token never has");
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.callbacks.onState("live");
      for (const [topic, copy] of this.topics) {
        const message = { type: "subscribe", topic };
        if (copy.version !== null) {
          message.lastVersion = copy.version;
        }
        this.send(message);
      }
    });
    socket.addEventListener("message", (event) => this.receive(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) {
        return;
      }
      this.socket = null;
      if (this.stopped) {
        return;
      }
      if (REFUSED.has(event.code)) {
        this.callbacks.onState("refused", event.reason || REFUSED.get(event.code));
        return;
      }
      const wait = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
      this.attempt += 1;
      this.callbacks.onState("reconnecting");
      this.timer = setTimeout(() => this.open(), wait);
    });
  }

  receive(message) {
    const copy = this.topics.get(message.topic);
    switch (message.type) {
      case "ping":
        this.send({ type: "pong" });
        return;
      case "snapshot":
        if (copy) {
          copy.version = message.version;
          copy.data = message.data;
          this.callbacks.onView(message.topic, copy.data, { version: message.version });
        }
        return;
      case "delta":
        if (copy && copy.data !== null) {
          copy.version = message.version;
          copy.data = mergePatch(copy.data, message.patch);
          this.callbacks.onView(message.topic, copy.data, {
            version: message.version,
            patch: message.patch,
          });
        }
        return;
      case "subscribed":
        if (copy) {
          copy.version = message.version;
        }
        return;
      case "error":
        if (message.topic) {
          this.topics.delete(message.topic);
        }
        this.callbacks.onRefused(message.topic, message.status, message.detail);
        return;
      default:
        return;
    }
  }
}
