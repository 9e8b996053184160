// The two ways the test page talks to sluice, behind one small interface:
//
//   const ch = new WsJsonChannel(url, handlers)            a WebSocket of JSON messages typed by
//                                                          `type` (native /ws, ws-chat)
//   const ch = new SioChannel(url, namespace, auth, handlers)  one Socket.IO namespace
//
//   handlers: onEvent(name, data)    a message: its type or event name, and its payload
//             onClose(code, reason)  once, when the channel is over (reason: an object)
//             onLog(entry)           every packet both ways, for the event log
//   ch.send(name, data)   ch.close(code, reason)
//
// SioChannel is a minimal Socket.IO v5 client over Engine.IO v4, WebSocket transport only:
// the open packet, ping -> pong, CONNECT with an auth payload, EVENT both ways. It needs no
// build step and no CDN (socket.io-client is not served by sluice). Not supported, because
// sluice's dialects never use them: acknowledgements, binary attachments, long-polling.

// Engine.IO v4 packet types (one packet per WebSocket frame).
const EIO = { OPEN: '0', CLOSE: '1', PING: '2', PONG: '3', MESSAGE: '4', UPGRADE: '5', NOOP: '6' };
// Socket.IO v5 packet types.
const SIO = { CONNECT: 0, DISCONNECT: 1, EVENT: 2, ACK: 3, CONNECT_ERROR: 4, BINARY_EVENT: 5, BINARY_ACK: 6 };

// A Socket.IO packet (the text after Engine.IO's `4`): type, namespace, ack id, JSON data.
export function decodeSio(s) {
  const type = s.charCodeAt(0) - 48;
  if (!(type >= 0 && type <= 6)) throw new Error(`bad packet type "${s[0]}"`);
  let i = 1;
  if (type === SIO.BINARY_EVENT || type === SIO.BINARY_ACK) throw new Error('binary attachments are not supported');
  let nsp = '/';
  if (s[i] === '/') {
    const j = s.indexOf(',', i);
    nsp = j < 0 ? s.slice(i) : s.slice(i, j);
    i = j < 0 ? s.length : j + 1;
  }
  let ack = null;
  const m = /^\d+/.exec(s.slice(i));
  if (m) {
    ack = Number(m[0]);
    i += m[0].length;
  }
  const data = i < s.length ? JSON.parse(s.slice(i)) : undefined;
  return { type, nsp, ack, data };
}

export function encodeSio(type, nsp, data) {
  const prefix = nsp && nsp !== '/' ? `${nsp},` : '';
  return `${type}${prefix}${data === undefined ? '' : JSON.stringify(data)}`;
}

// Shared by both channels: one WebSocket, the handlers called at most until onClose.
class Channel {
  constructor(url, handlers) {
    this.h = handlers;
    this.over = false;
    this.lastRx = Date.now();
    this.ws = new WebSocket(url); // may throw (bad URL): the caller turns that into a close
    this.ws.onclose = (ev) => this.end(ev.code, parseReason(ev.reason));
    this.ws.onerror = () => {}; // a close event follows with what there is to say
    this.ws.onmessage = (ev) => {
      this.lastRx = Date.now();
      if (typeof ev.data !== 'string') {
        this.log('in', '(binary frame)', null, { note: 'ignored: the page reads text only' });
        return;
      }
      this.receive(ev.data);
    };
  }

  log(dir, name, data, extra = {}) {
    if (!this.over) this.h.onLog({ dir, name, data, ...extra });
  }

  raw(text) {
    if (this.ws.readyState !== 1) return false;
    this.ws.send(text);
    return true;
  }

  // Ends the channel once: the socket is closed if still open, onClose reports it.
  end(code, reason = {}) {
    if (this.over) return;
    this.stopTimers();
    this.h.onClose(code, reason);
    this.over = true;
    const ws = this.ws;
    ws.onclose = ws.onmessage = ws.onerror = null;
    if (ws.readyState <= 1) ws.close(code >= 4000 && code <= 4999 ? code : 1000, 'bye');
  }

  close(code = 1000, reason = 'bye') {
    if (this.over) return;
    this.over = true;
    this.stopTimers();
    const ws = this.ws;
    ws.onclose = ws.onmessage = ws.onerror = null;
    if (ws.readyState <= 1) ws.close(code, reason);
  }

  stopTimers() {}
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

export class WsJsonChannel extends Channel {
  constructor(url, handlers) {
    super(url, handlers);
    this.hbTimer = null;
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      this.log('in', '(not JSON)', text);
      return;
    }
    const name = msg && typeof msg.type === 'string' ? msg.type : '(no type)';
    this.log('in', name, msg, { heartbeat: name === 'pong' });
    this.h.onEvent(name, msg);
  }

  // data: an object (sent as JSON), or a string sent as it is (the raw sender).
  send(name, data) {
    const text = typeof data === 'string' ? data : JSON.stringify(data);
    if (!this.raw(text)) return false;
    this.log('out', typeof data === 'string' ? '(raw text)' : name, data, { heartbeat: name === 'ping' });
    return true;
  }

  // A ping every interval; a connection silent for two intervals is dead even if the
  // browser has not noticed yet (no FIN arrives from a vanished network).
  startHeartbeat(ms) {
    const every = ms > 0 ? ms : 25000;
    this.lastRx = Date.now();
    if (this.hbTimer) clearInterval(this.hbTimer);
    this.hbTimer = setInterval(() => {
      if (Date.now() - this.lastRx > 2 * every) {
        this.end(4008, { reason: 'no answer from the server' });
        return;
      }
      this.send('ping', { type: 'ping' });
    }, every);
  }

  stopTimers() {
    if (this.hbTimer) clearInterval(this.hbTimer);
    this.hbTimer = null;
  }
}

export class SioChannel extends Channel {
  constructor(url, nsp, auth, handlers) {
    super(url, handlers);
    this.nsp = nsp || '/';
    this.auth = auth; // the CONNECT payload, or undefined
    this.watchdog = null;
    this.deadAfterMs = 0;
    this.joined = false;
  }

  receive(text) {
    const kind = text[0];
    const rest = text.slice(1);
    switch (kind) {
      case EIO.OPEN: {
        let open;
        try {
          open = JSON.parse(rest);
        } catch {
          this.end(1002, { reason: 'bad Engine.IO open packet' });
          return;
        }
        this.log('in', 'engine.io open', open);
        // The server pings every pingInterval and waits pingTimeout for the pong; a
        // server that said nothing for both is gone.
        this.deadAfterMs = (open.pingInterval || 25000) + (open.pingTimeout || 20000);
        this.arm();
        this.packet(SIO.CONNECT, this.auth, 'CONNECT');
        return;
      }
      case EIO.PING:
        this.arm();
        this.log('in', 'engine.io ping', null, { heartbeat: true });
        if (this.raw(EIO.PONG)) this.log('out', 'engine.io pong', null, { heartbeat: true });
        return;
      case EIO.CLOSE:
        this.log('in', 'engine.io close', null);
        this.end(1001, { reason: 'the server closed the Engine.IO session' });
        return;
      case EIO.NOOP:
        return;
      case EIO.MESSAGE:
        break;
      default:
        this.log('in', `engine.io packet "${kind}"`, rest, { note: 'ignored' });
        return;
    }
    let p;
    try {
      p = decodeSio(rest);
    } catch (e) {
      this.log('in', '(bad Socket.IO packet)', rest, { note: String(e.message || e) });
      return;
    }
    if (p.nsp !== this.nsp) return; // another namespace's (there is none on this socket)
    switch (p.type) {
      case SIO.CONNECT:
        this.joined = true;
        this.log('in', 'CONNECT', p.data);
        this.h.onEvent('connect', p.data || {});
        break;
      case SIO.CONNECT_ERROR:
        this.log('in', 'CONNECT_ERROR', p.data);
        this.h.onEvent('connect_error', p.data || {});
        break;
      case SIO.DISCONNECT:
        this.log('in', 'DISCONNECT', p.data);
        this.end(4000, { reason: 'the server disconnected the namespace', disconnect: true });
        break;
      case SIO.EVENT: {
        const args = Array.isArray(p.data) ? p.data : [];
        const name = typeof args[0] === 'string' ? args[0] : '(no name)';
        // With connection state recovery the last argument is an offset: data is the first.
        this.log('in', name, args.length > 2 ? args.slice(1) : args[1]);
        this.h.onEvent(name, args[1]);
        break;
      }
      default:
        this.log('in', `Socket.IO packet ${p.type}`, p.data, { note: 'ignored' });
    }
  }

  packet(type, data, what) {
    if (!this.raw(EIO.MESSAGE + encodeSio(type, this.nsp, data))) return false;
    this.log('out', what, type === SIO.CONNECT && data && data.token ? { ...data, token: '…' } : data);
    return true;
  }

  send(name, data) {
    return this.packet(SIO.EVENT, [name, data], name);
  }

  arm() {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.end(4008, { reason: 'no ping from the server' }), this.deadAfterMs);
  }

  stopTimers() {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
  }

  close(code = 1000, reason = 'bye') {
    // A DISCONNECT first, as socket.io-client does: the server learns it was on purpose.
    if (!this.over && this.joined && this.ws.readyState === 1) this.packet(SIO.DISCONNECT, undefined, 'DISCONNECT');
    super.close(code, reason);
  }
}
