// The test page's connection, whatever the protocol: one channel at a time (channels.js),
// the close codes of docs/protocol.md turned into "reconnect", "back off" or "stop",
// reconnects with exponential backoff and full jitter, and the protocol's heartbeat. No DOM
// here: app.js renders.
import { SioChannel, WsJsonChannel, parseReason } from './channels.js';

export { parseReason };

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
  4000: 'disconnected by the server',
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
    case 4000: // a Socket.IO DISCONNECT from the server: it meant it (socket.io-client agrees)
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

function wsBase(loc) {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}`;
}

// The WebSocket URL of a protocol's endpoint, from where the page was loaded (works at /
// and at /ws/test, over http and https). endpoint: {path, namespace}.
export function channelUrl(loc, transport, endpoint, token) {
  let path = endpoint.path || '/';
  if (!path.startsWith('/')) path = `/${path}`;
  if (transport === 'sio') {
    if (!path.endsWith('/')) path += '/';
    return `${wsBase(loc)}${path}?EIO=4&transport=websocket`;
  }
  const q = token ? `?token=${encodeURIComponent(token)}` : '';
  return `${wsBase(loc)}${path}${q}`;
}

// The models and agents the server offers, from the `ready` of a short native connection
// (the dialects have no such message). Resolves with the ready message, or null.
export function fetchCatalogue(loc, token, timeoutMs = 5000) {
  return new Promise((resolve) => {
    if (!token) {
      resolve(null);
      return;
    }
    let ws;
    let done = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (ws && ws.readyState <= 1) ws.close(1000, 'bye');
      resolve(v);
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    try {
      ws = new WebSocket(channelUrl(loc, 'ws', { path: '/ws' }, token));
    } catch {
      finish(null);
      return;
    }
    ws.onmessage = (ev) => {
      try {
        const m = JSON.parse(ev.data);
        if (m.type === 'ready') finish(m);
      } catch {
        // not for us
      }
    };
    ws.onclose = () => finish(null);
  });
}

// States: idle (never connected or closed by the user), connecting, ready, waiting (a
// reconnect is scheduled), failed (no retry: a new token or user action is needed).
export class Connection {
  constructor({ loc, onState, onMessage, onLog = () => {}, setTimer = (f, ms) => setTimeout(f, ms), clearTimer = (t) => clearTimeout(t) }) {
    this.loc = loc;
    this.onState = onState;
    this.onMessage = onMessage;
    this.onLog = onLog;
    this.setTimer = setTimer; // injectable, for tests of the policy without a browser
    this.clearTimer = clearTimer;
    this.protocol = null; // an entry of protocols.js
    this.endpoint = {};
    this.ch = null;
    this.token = '';
    this.state = 'idle';
    this.attempt = 0;
    this.retryTimer = null;
  }

  set(state, info = {}) {
    this.state = state;
    this.onState(state, info);
  }

  // The protocol and endpoint of the next connect.
  use(protocol, endpoint) {
    this.protocol = protocol;
    this.endpoint = { ...endpoint };
  }

  // Connects now (also: "reconnect now" while waiting), with a new token if given.
  connect(token = this.token) {
    this.token = token;
    this.stopTimers();
    this.detach();
    this.set('connecting', { attempt: this.attempt });
    const p = this.protocol;
    const url = channelUrl(this.loc, p.transport, this.endpoint, token);
    let ch;
    const handlers = {
      onEvent: (name, data) => this.ch === ch && this.event(name, data),
      onClose: (code, reason) => this.ch === ch && this.closed(code, reason),
      onLog: (entry) => this.onLog(entry),
    };
    try {
      ch = p.transport === 'sio'
        ? new SioChannel(url, this.endpoint.namespace || '/', token ? { token } : undefined, handlers)
        : new WsJsonChannel(url, handlers);
    } catch (e) {
      this.closed(1006, { reason: String(e.message || e) });
      return;
    }
    this.ch = ch;
    this.onLog({ dir: 'info', name: 'connecting', data: url.replace(/token=[^&]*/, 'token=…') });
  }

  event(name, data) {
    const p = this.protocol;
    if (name === 'connect_error') {
      // A refused CONNECT: the namespace is unknown, or the token was refused. The
      // Engine.IO connection stays open; the page has no use for it.
      const message = data && data.message ? String(data.message) : 'refused';
      this.detach();
      this.set('failed', { code: null, reason: { reason: message }, newToken: /auth/i.test(message), refused: message });
      return;
    }
    if (name === p.readyOn && this.state !== 'ready') {
      this.attempt = 0;
      if (this.ch && this.ch.startHeartbeat) this.ch.startHeartbeat(data && data.heartbeat_ms);
      this.set('ready', { name, ready: data || {} });
    }
    this.onMessage(name, data);
  }

  // The user ends the connection: no reconnect.
  disconnect() {
    this.stopTimers();
    this.detach();
    this.set('idle', { code: 1000, reason: {} });
  }

  send(name, data) {
    if (!this.ch || this.state !== 'ready') return false;
    return this.ch.send(name, data);
  }

  // Drops the channel (closing it): nothing it says afterwards reaches the page.
  detach() {
    const ch = this.ch;
    this.ch = null;
    if (ch) ch.close(1000, 'bye');
  }

  stopTimers() {
    if (this.retryTimer) this.clearTimer(this.retryTimer);
    this.retryTimer = null;
  }

  closed(code, reason) {
    this.stopTimers();
    this.ch = null;
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
