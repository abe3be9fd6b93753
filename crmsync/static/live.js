// Live updates: the /events WebSocket, and polling every 2 s while it is down.

const POLL_MS = 2000;
// Meetings created or edited elsewhere raise no event, so even a live page reads everything now and then.
const RESYNC_MS = 60000;
const BACKOFF_MS = [500, 1000, 2000, 5000, 10000, 30000];
const UNAUTHORIZED = 4401;

export class Live {
  /**
   * handlers: onEvent(message), refresh() -> Promise that never rejects (read everything again),
   * onState("connecting" | "live" | "polling"), onUnauthorized().
   */
  constructor(token, handlers) {
    this.token = token;
    this.handlers = handlers;
    this.socket = null;
    this.failures = 0;
    this.stopped = false;
    this.pollTimer = null;
    this.retryTimer = null;
    this.polling = false;
    this.resyncTimer = null;
  }

  start() {
    this.connect();
    this.resyncTimer = window.setInterval(() => {
      if (!this.polling) this.handlers.refresh();
    }, RESYNC_MS);
  }

  stop() {
    this.stopped = true;
    this.stopPolling();
    window.clearTimeout(this.retryTimer);
    window.clearInterval(this.resyncTimer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000, "signed out");
    }
  }

  connect() {
    if (this.stopped) return;
    this.handlers.onState(this.polling ? "polling" : "connecting");
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${window.location.host}/events?token=${encodeURIComponent(this.token)}`;
    let socket;
    try {
      socket = new WebSocket(url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.addEventListener("message", (event) => this.receive(socket, event));
    socket.addEventListener("close", (event) => this.closed(socket, event));
  }

  receive(socket, event) {
    if (socket !== this.socket) return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (message.type === "hello") {
      this.failures = 0;
      this.stopPolling();
      this.handlers.onState("live");
      // Subscribed first, then read everything: nothing that changed in between is missed.
      this.handlers.refresh();
    } else if (message.type === "reload") {
      // We fell behind; the server closes this socket next. Read everything again.
      this.handlers.refresh();
    } else {
      this.handlers.onEvent(message);
    }
  }

  closed(socket, event) {
    if (socket !== this.socket) return;
    this.socket = null;
    if (this.stopped) return;
    if (event.code === UNAUTHORIZED) {
      this.stop();
      this.handlers.onUnauthorized();
      return;
    }
    this.startPolling();
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    if (this.stopped) return;
    const base = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)];
    this.failures += 1;
    const delay = base * (0.8 + Math.random() * 0.4);
    window.clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => this.connect(), delay);
  }

  startPolling() {
    if (this.polling || this.stopped) return;
    this.polling = true;
    this.handlers.onState("polling");
    const tick = async () => {
      if (!this.polling) return;
      try {
        await this.handlers.refresh();
      } finally {
        if (this.polling) this.pollTimer = window.setTimeout(tick, POLL_MS);
      }
    };
    this.pollTimer = window.setTimeout(tick, POLL_MS);
  }

  stopPolling() {
    this.polling = false;
    window.clearTimeout(this.pollTimer);
  }
}
