// The native-protocol connection of the test page: one WebSocket at a time, the close
// codes of docs/protocol.md turned into "reconnect", "back off" or "stop", reconnects
// with exponential backoff and full jitter, and a client-side heartbeat that notices a
// connection which died without a close frame. No DOM here: app.js renders.

// Close codes in plain words.
export const CLOSE_TEXT = {
  1000: 'closed normally',
  1001: 'the server is going away (restart or shutdown)',
  1002: 'protocol error',
  1003: 'unsupported data',
  1005: 'closed without a code',
  1006: 'connection lost',
  1007: 'invalid text (not UTF-8)',
  1008: 'refused by policy (is this origin allowed?)',
  1009: 'message too big',
  1011: 'server error',
  1012: 'the server is restarting',
  1013: 'the server is overloaded; try again later',
  1015: 'TLS handshake failed',
  4001: 'authentication failed',
  4003: 'authentication timed out',
  4008: 'heartbeat timeout',
  4029: 'rate limited',
};

export function closeText(code) {
  return CLOSE_TEXT[code] || 'closed';
}

// What to do after a close: retry at all, how long at least, whether the token is the
// problem. retry_after_ms from a JSON close reason raises the minimum.
export function closePolicy(code, reason = {}) {
  const after = Number.isFinite(reason.retry_after_ms) ? reason.retry_after_ms : 0;
  switch (code) {
    case 4001: // the token was refused: the same token would be refused again
      return { retry: false, newToken: true, minDelayMs: 0 };
    case 1008: // origin or policy: retrying changes nothing
    case 1002:
    case 1003:
      return { retry: false, newToken: false, minDelayMs: 0 };
    case 1013: // overloaded
    case 4029: // rate limited
      return { retry: true, newToken: false, minDelayMs: Math.max(after, 5000), slow: true };
    default: // 1000 from the server, 1001, 1006, 1011, 1012, 4003, 4008: reconnect
      return { retry: true, newToken: false, minDelayMs: after };
  }
}

// The delay before reconnect attempt n (0-based): an exponential ceiling with full jitter
// over its upper half, so that clients dropped together do not come back together.
export function backoffDelay(n, { baseMs = 500, capMs = 30000, minMs = 0, random = Math.random } = {}) {
  const ceil = Math.min(capMs, baseMs * 2 ** Math.min(n, 16));
  const d = ceil / 2 + random() * (ceil / 2);
  return Math.round(Math.max(d, minMs));
}

// A close reason is short JSON ({"reason":...,"retry_after_ms":...}) or plain text.
export function parseReason(text) {
  if (!text) return {};
  try {
    const o = JSON.parse(text);
    if (o && typeof o === 'object') return o;
  } catch {
    // plain text
  }
  return { reason: text };
}

// The WebSocket URL of the native endpoint, from where the page was loaded (works at
// / and at /ws/test, over http and https).
export function nativeUrl(loc, token) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  const q = token ? `?token=${encodeURIComponent(token)}` : '';
  return `${scheme}//${loc.host}/ws${q}`;
}

// States: idle (never connected or closed by the user), connecting, ready, waiting (a
// reconnect is scheduled), failed (no retry: a new token or user action is needed).
export class Connection {
  constructor({ url, onState, onMessage, setTimer = (f, ms) => setTimeout(f, ms), clearTimer = (t) => clearTimeout(t) }) {
    this.url = url; // (token) => string
    this.onState = onState;
    this.onMessage = onMessage;
    this.setTimer = setTimer; // injectable, for tests of the policy without a browser
    this.clearTimer = clearTimer;
    this.ws = null;
    this.token = '';
    this.state = 'idle';
    this.attempt = 0;
    this.retryTimer = null;
    this.hbTimer = null;
    this.lastRx = 0;
    this.heartbeatMs = 0;
  }

  set(state, info = {}) {
    this.state = state;
    this.onState(state, info);
  }

  // Connects now (also: "reconnect now" while waiting), with a new token if given.
  connect(token = this.token) {
    this.token = token;
    this.stopTimers();
    this.detach();
    this.set('connecting', { attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url(token));
    } catch (e) {
      this.closed(1006, { reason: String(e.message || e) });
      return;
    }
    this.ws = ws;
    ws.onmessage = (ev) => {
      this.lastRx = Date.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return; // the server sends JSON only; ignore anything else
      }
      if (msg.type === 'ready') {
        this.attempt = 0;
        this.startHeartbeat(msg.heartbeat_ms);
        this.set('ready', { ready: msg });
      }
      this.onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.closed(ev.code, parseReason(ev.reason));
    };
    ws.onerror = () => {}; // a close event follows with the details there are
  }

  // The user ends the connection: no reconnect.
  disconnect() {
    this.stopTimers();
    const ws = this.ws;
    this.detach();
    if (ws && ws.readyState <= 1) ws.close(1000, 'bye');
    this.set('idle', { code: 1000, reason: {} });
  }

  send(obj) {
    if (!this.ws || this.ws.readyState !== 1 || this.state !== 'ready') return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }

  detach() {
    if (!this.ws) return;
    this.ws.onmessage = this.ws.onclose = this.ws.onerror = null;
    this.ws = null;
  }

  stopTimers() {
    if (this.retryTimer) this.clearTimer(this.retryTimer);
    if (this.hbTimer) clearInterval(this.hbTimer);
    this.retryTimer = this.hbTimer = null;
  }

  // A ping every heartbeat interval; a connection silent for two intervals is dead even
  // if the browser has not noticed yet (no FIN arrives from a vanished network).
  startHeartbeat(ms) {
    this.heartbeatMs = ms > 0 ? ms : 25000;
    this.lastRx = Date.now();
    if (this.hbTimer) clearInterval(this.hbTimer);
    this.hbTimer = setInterval(() => {
      if (Date.now() - this.lastRx > 2 * this.heartbeatMs) {
        const ws = this.ws;
        this.detach();
        if (ws) ws.close(4000, 'heartbeat');
        this.closed(4008, { reason: 'no answer from the server' });
        return;
      }
      this.send({ type: 'ping' });
    }, this.heartbeatMs);
  }

  closed(code, reason) {
    this.stopTimers();
    this.detach();
    const p = closePolicy(code, reason);
    if (!p.retry) {
      this.set('failed', { code, reason, newToken: p.newToken });
      return;
    }
    const delayMs = backoffDelay(p.slow ? this.attempt + 3 : this.attempt, { minMs: p.minDelayMs });
    this.attempt++;
    this.set('waiting', { code, reason, delayMs, attempt: this.attempt });
    this.retryTimer = this.setTimer(() => {
      this.retryTimer = null;
      this.connect();
    }, delayMs);
  }
}
