// The sluice test page: pick a protocol (native, native over Socket.IO, or one of the seed
// dialects), connect with a token, pick a model or agent the server offers, chat, watch the
// answer stream in, cancel it, see what each answer cost, and read every message both ways
// in the event log. Everything the server says is rendered as text (textContent), never as
// HTML. protocols.js says how each protocol spells things; this file only renders.
import { Connection, closeText, fetchCatalogue } from './connection.js';
import { DEFAULT_GROUPS, PROTOCOLS } from './protocols.js';

const $ = (id) => document.getElementById(id);
const ui = {
  state: $('conn-state'),
  protocol: $('protocol'),
  protocolHelp: $('protocol-help'),
  endpoint: $('endpoint'),
  path: $('path'),
  namespace: $('namespace'),
  namespaceField: $('namespace-field'),
  targetHelp: $('target-help'),
  log: $('log'),
  logBox: document.querySelector('.log-box'),
  logHeartbeats: $('log-heartbeats'),
  logClear: $('log-clear'),
  rawForm: $('raw-form'),
  rawEvent: $('raw-event'),
  rawEventField: $('raw-event-field'),
  rawData: $('raw-data'),
  rawSend: $('raw-send'),
  connectForm: $('connect-form'),
  token: $('token'),
  connect: $('connect'),
  disconnect: $('disconnect'),
  target: $('target'),
  error: $('error'),
  transcript: $('transcript'),
  empty: $('empty'),
  composer: $('composer'),
  prompt: $('prompt'),
  promptHelp: $('prompt-help'),
  send: $('send'),
  cancel: $('cancel'),
  clear: $('clear'),
  announce: $('announce'),
};

// Error codes of the native protocol in plain words.
const ERROR_TEXT = {
  AUTH_REQUIRED: 'authentication required',
  AUTH_FAILED: 'authentication failed',
  BAD_REQUEST: 'bad request',
  EMPTY_MESSAGE: 'the message is empty',
  UNKNOWN_MODEL: 'unknown model or agent',
  TOO_LARGE: 'the message is too large',
  RATE_LIMITED: 'too many messages',
  TOO_MANY_STREAMS: 'too many answers at once',
  DUPLICATE_ID: 'duplicate request id',
  NOT_FOUND: 'not found',
  UPSTREAM_ERROR: 'the provider failed',
  UPSTREAM_TIMEOUT: 'the provider timed out',
  UPSTREAM_RATE_LIMITED: 'the provider is rate limiting',
  UPSTREAM_AUTH: 'the provider refused sluice\'s key',
  BUDGET_EXCEEDED: 'budget exceeded',
  OVERLOADED: 'the server is overloaded',
  SHUTTING_DOWN: 'the server is shutting down',
  INTERNAL: 'internal server error',
  CANCELLED: 'cancelled',
  PROCESSING_ERROR: 'the request failed',
};

const STEP_TEXT = {
  routing: 'routing…',
  connecting: 'connecting to the provider…',
  generating: 'generating…',
  retrying: 'retrying…',
  fallback: 'falling back to another model…',
};

const app = {
  protocolId: 'native',
  proto: null, // PROTOCOLS[protocolId]
  ready: null, // the ready message (native), or what the protocol's ready event carried
  catalogue: null, // a native `ready`: the models and agents offered
  history: [], // [{user: turn, assistant: turn}] in order
  turns: new Map(), // stream id -> assistant turn
  active: null, // the assistant turn in flight, if any
  binding: null, // a turn whose stream id the server has not named yet (proto.serverIds)
  conversation: null, // ws-chat: the session_id of the conversation sluice remembers
  nextId: 1,
};

// A dialect's code beside sluice's own (ws-chat: PROCESSING_ERROR with the code in detail).
function plainError(code, message, detail) {
  const key = detail && !ERROR_TEXT[code] ? detail : detail && code === 'PROCESSING_ERROR' ? detail : code;
  const words = ERROR_TEXT[key] || 'error';
  const codes = detail && detail !== code ? `${code}, ${detail}` : code;
  return message && message !== words ? `${words} (${codes}): ${message}` : `${words} (${codes})`;
}

function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = !text;
}

function announce(text) {
  // A fresh node each time so that the same words are announced twice if they recur.
  ui.announce.replaceChildren(document.createTextNode(text));
}

function secondsText(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms >= 10000 ? 0 : 1)} s` : `${Math.round(ms)} ms`;
}

// --- the event log ---------------------------------------------------------------------

const LOG_MAX = 1000; // entries kept; the oldest go first
const LOG_TEXT_MAX = 2000; // characters of one entry's payload shown
const log = { pending: [], frame: 0, timer: 0, count: 0 };

function payloadText(data) {
  if (data === undefined || data === null) return '';
  const t = typeof data === 'string' ? data : JSON.stringify(data);
  return t.length > LOG_TEXT_MAX ? `${t.slice(0, LOG_TEXT_MAX)}… (${t.length} characters)` : t;
}

const DIR_TEXT = { in: '←', out: '→', info: '·' };
const DIR_LABEL = { in: 'received', out: 'sent', info: 'note' };

function logEntry(entry) {
  if (entry.heartbeat && !ui.logHeartbeats.checked) return;
  log.pending.push({ ...entry, at: new Date() });
  if (log.pending.length > LOG_MAX) log.pending.splice(0, log.pending.length - LOG_MAX);
  // One DOM update per frame however fast the events come (a timer when the tab is hidden).
  if (log.frame) return;
  const run = () => {
    if (!log.frame) return;
    cancelAnimationFrame(log.frame);
    clearTimeout(log.timer);
    log.frame = 0;
    flushLog();
  };
  log.frame = requestAnimationFrame(run);
  log.timer = setTimeout(run, 250);
}

function flushLog() {
  const box = ui.logBox;
  const stick = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const frag = document.createDocumentFragment();
  for (const e of log.pending) {
    const li = el('li', `ev ${e.dir}`);
    li.dataset.dir = e.dir;
    li.dataset.name = e.name;
    const time = el('time', 'at', e.at.toISOString().slice(11, 23));
    time.dateTime = e.at.toISOString();
    const dir = el('span', 'dir', DIR_TEXT[e.dir] || '·');
    dir.setAttribute('aria-hidden', 'true');
    li.append(time, ' ', dir, el('span', 'sr-only', `${DIR_LABEL[e.dir] || ''} `), el('code', 'name', e.name));
    const text = payloadText(e.data);
    if (text) li.append(' ', el('code', 'data', text));
    if (e.note) li.append(' ', el('span', 'note', `(${e.note})`));
    frag.append(li);
  }
  log.count += log.pending.length;
  log.pending = [];
  ui.log.append(frag);
  while (log.count > LOG_MAX) {
    ui.log.firstElementChild.remove();
    log.count--;
  }
  if (stick) box.scrollTop = box.scrollHeight;
}

// --- connection ------------------------------------------------------------------------

const conn = new Connection({
  loc: location,
  onState: renderState,
  onMessage,
  onLog: logEntry,
});

function setState(state, text) {
  ui.state.dataset.state = state;
  ui.state.textContent = text;
}

function who(info) {
  const r = info.ready || {};
  if (typeof r.user === 'string') return r.user; // native ready, ai:connected
  if (r.user && typeof r.user === 'object') return r.user.name || r.user.id || 'anonymous'; // ws-chat
  return null;
}

function renderState(state, info) {
  const connected = state === 'ready';
  ui.disconnect.disabled = state === 'idle' || state === 'failed';
  ui.connect.textContent = state === 'waiting' ? 'Reconnect now' : 'Connect';
  ui.target.disabled = !connected || ui.target.options.length === 0;
  updateComposer();
  switch (state) {
    case 'connecting':
      setState('connecting', info.attempt ? `Reconnecting (attempt ${info.attempt})…` : 'Connecting…');
      break;
    case 'ready': {
      showError('');
      app.ready = info.ready;
      const name = who(info);
      setState('connected', `Connected (${app.protocolId})${name ? ` as ${name}` : ''}`);
      loadTargets(info.ready);
      resumeInterrupted();
      break;
    }
    case 'waiting': {
      interruptAll('connection lost');
      const why = `${closeText(info.code)} (${info.code})`;
      const detail = info.reason && info.reason.reason ? `: ${info.reason.reason}` : '';
      setState('reconnecting', `Reconnecting in ${secondsText(info.delayMs)}: ${why}`);
      if (info.code !== 1006 && info.code !== 1001 && info.code !== 1012) showError(`Connection closed: ${why}${detail}`);
      break;
    }
    case 'failed': {
      interruptAll('connection closed');
      if (info.refused) {
        // A Socket.IO CONNECT_ERROR: the namespace refused us (no retry either way).
        setState(info.newToken ? 'auth-failed' : 'closed', `Not connected: ${info.refused}`);
        showError(info.newToken
          ? `The namespace ${conn.endpoint.namespace} refused the connection: ${info.refused}. Paste a valid token and press Connect.`
          : `The namespace ${conn.endpoint.namespace} refused the connection: ${info.refused}. Is it in socketio.namespaces?`);
        if (info.newToken) ui.token.focus();
        break;
      }
      const why = `${closeText(info.code)} (${info.code})`;
      const detail = info.reason && info.reason.reason ? `: ${info.reason.reason}` : '';
      setState(info.newToken ? 'auth-failed' : 'closed', info.newToken ? 'Not connected: the token was refused' : `Not connected: ${why}`);
      showError(info.newToken
        ? `Connection closed: ${why}${detail}. The same token would be refused again: paste a new one and press Connect.`
        : `Connection closed: ${why}${detail}.`);
      if (info.newToken) ui.token.focus();
      break;
    }
    case 'idle':
      interruptAll('disconnected');
      setState('disconnected', 'Disconnected');
      break;
  }
}

// The target select: from the protocol's own ready (native), else from a native ready
// fetched on the side (the dialects list nothing), else only the server's default.
async function loadTargets(ready) {
  const p = app.proto;
  if (p.catalogue === 'ready') {
    app.catalogue = ready;
  } else if (p.catalogue === 'probe' && !app.catalogue) {
    const token = conn.token;
    const cat = await fetchCatalogue(location, token);
    if (app.proto !== p || conn.state !== 'ready') return; // switched meanwhile
    app.catalogue = cat;
    logEntry({ dir: 'info', name: 'models', data: cat ? 'listed from the ready of a short native connection to /ws' : 'not listed (no token, or /ws refused it): the server\'s default model only' });
  }
  fillTargets();
}

function fillTargets() {
  const p = app.proto;
  const previous = ui.target.value;
  const cat = p.catalogue === 'none' ? null : app.catalogue;
  let groups = cat ? p.targets(cat).filter((g) => g.options.length) : p.catalogue === 'none' ? p.targets(null) : [];
  if (!groups.length) groups = DEFAULT_GROUPS;
  const frag = document.createDocumentFragment();
  for (const g of groups) {
    const og = document.createElement('optgroup');
    og.label = g.label;
    for (const o of g.options) og.append(new Option(o.text, o.value));
    frag.append(og);
  }
  ui.target.replaceChildren(frag);
  const values = [...ui.target.options].map((o) => o.value);
  if (values.includes(previous)) ui.target.value = previous;
  else if (cat && values.includes(`model:${cat.default_model}`)) ui.target.value = `model:${cat.default_model}`;
  ui.target.disabled = values.length === 0 || conn.state !== 'ready';
  ui.targetHelp.textContent = p.catalogue === 'none'
    ? 'This protocol always answers with the server\'s default_model.'
    : cat ? 'The list comes from the server.' : 'The list comes from the server once connected (with a token).';
}

function onMessage(name, data) {
  const p = app.proto;
  const ev = p.read(name, data);
  if (!ev) return;
  let turn = ev.id !== null && ev.id !== undefined ? app.turns.get(ev.id) : undefined;
  // A protocol whose stream ids the server makes: the first event naming an unknown stream
  // (or an error naming none) belongs to the request waiting for its id.
  if (!turn && p.serverIds && app.binding && (ev.id !== null || ev.kind === 'error')) {
    turn = app.binding;
    app.binding = null;
    if (ev.id !== null && ev.id !== undefined) {
      app.turns.delete(turn.id);
      turn.id = ev.id;
      turn.li.dataset.id = ev.id;
      app.turns.set(ev.id, turn);
      if (turn.cancelWanted) cancelActive();
    }
  }
  if (!turn) {
    if (ev.kind === 'error') {
      // A connection-level error, or one about a request that never became an answer here.
      showError(plainError(ev.code, ev.message, ev.detail) + retryText(ev));
      announce(`Error: ${plainError(ev.code, ev.message, ev.detail)}`);
    } else if (ev.kind === 'notice') {
      logEntry({ dir: 'info', name: 'notice', data: ev.text });
    }
    return;
  }
  // After a resume the server replays from `after`; never render an event twice.
  if (typeof ev.seq === 'number') {
    if (ev.seq <= turn.seq) return;
    turn.seq = ev.seq;
  }
  switch (ev.kind) {
    case 'start':
      if (ev.epoch) turn.epoch = ev.epoch;
      if (ev.model) turn.model = ev.model;
      if (ev.provider) turn.provider = ev.provider;
      setTurnHead(turn);
      if (turn.state === 'sending') setTurnStatus(turn, 'streaming', STEP_TEXT.routing);
      break;
    case 'progress':
      setTurnStatus(turn, 'streaming', ev.text || STEP_TEXT[ev.step] || `${ev.step}…`, ev.detail);
      break;
    case 'notice':
      setTurnStatus(turn, turn.state, ev.text);
      break;
    case 'delta':
      if (!turn.firstAt) turn.firstAt = performance.now();
      if (typeof ev.text === 'string') {
        turn.pending += ev.text;
        turn.text += ev.text;
      } else if (ev.tool) {
        addToolDelta(turn, ev.tool);
      }
      if (ev.running) turn.running = ev.running;
      turn.deltas++;
      if (turn.state === 'sending') setTurnStatus(turn, 'streaming', STEP_TEXT.generating);
      scheduleFlush(turn);
      break;
    case 'done':
      if (ev.conversation) app.conversation = ev.conversation;
      finish(turn, 'done', ev);
      break;
    case 'cancelled':
      finish(turn, 'cancelled', ev);
      break;
    case 'error':
      finish(turn, 'error', ev);
      break;
  }
}

function retryText(ev) {
  return ev.retryAfterMs > 0 ? ` Try again in ${secondsText(ev.retryAfterMs)}.` : '';
}

// --- the transcript --------------------------------------------------------------------

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function addUserTurn(text) {
  ui.empty.hidden = true;
  const li = el('li', 'msg user');
  li.append(el('p', 'who', 'You'), el('div', 'text', text));
  ui.transcript.append(li);
  return { role: 'user', text, li };
}

function addAssistantTurn(id, target) {
  const li = el('li', 'msg assistant');
  li.dataset.id = id;
  li.dataset.status = 'sending';
  li.setAttribute('aria-busy', 'true');
  const head = el('p', 'who', 'Assistant');
  const body = el('div', 'text');
  const node = document.createTextNode('');
  const cursor = el('span', 'cursor');
  cursor.setAttribute('aria-hidden', 'true');
  body.append(node, cursor);
  const status = el('p', 'status', 'sending…');
  const meta = el('dl', 'meta');
  meta.hidden = true;
  li.append(head, body, status, meta);
  ui.transcript.append(li);
  const turn = {
    role: 'assistant', id, target, li, head, body, node, cursor, status, meta,
    text: '', pending: '', deltas: 0, seq: 0, state: 'sending', frame: 0, tools: [],
  };
  app.turns.set(id, turn);
  return turn;
}

function setTurnHead(turn) {
  const via = turn.target.kind === 'agent' ? ` via agent ${turn.target.name}` : turn.target.kind === 'provider' ? ` via provider ${turn.target.name}` : '';
  turn.head.textContent = `Assistant · ${turn.model || turn.target.name}${turn.provider ? ` (${turn.provider})` : ''}${via}`;
}

function setTurnStatus(turn, state, text, detail) {
  turn.state = state;
  turn.li.dataset.status = state;
  turn.status.textContent = detail ? `${text} ${detail}` : text;
}

function nearBottom() {
  const t = document.scrollingElement;
  return t.scrollHeight - t.scrollTop - t.clientHeight < 80;
}

// Deltas are coalesced into one DOM update per animation frame: a fast stream costs
// one render per frame, not one per token. A hidden tab gets no frames, so a timer
// stands in after 250 ms.
function scheduleFlush(turn) {
  if (turn.frame) return;
  const run = () => {
    if (!turn.frame) return;
    cancelAnimationFrame(turn.frame);
    clearTimeout(turn.fallback);
    turn.frame = 0;
    flush(turn);
  };
  turn.frame = requestAnimationFrame(run);
  turn.fallback = setTimeout(run, 250);
}

function flush(turn) {
  if (turn.frame) {
    cancelAnimationFrame(turn.frame);
    clearTimeout(turn.fallback);
    turn.frame = 0;
  }
  const stick = nearBottom();
  if (turn.pending) {
    turn.node.appendData(turn.pending);
    turn.pending = '';
  }
  if (turn.tools.length) renderTools(turn);
  if (turn.running && turn.state === 'streaming' && turn.running.tokens !== undefined)
    turn.status.textContent = `generating… ${turn.running.tokens} tokens, ${costText(turn.running.cost)} so far`;
  if (stick) turn.li.scrollIntoView({ block: 'end' });
}

function addToolDelta(turn, tc) {
  const i = Number.isInteger(tc.index) ? tc.index : 0;
  const t = turn.tools[i] || (turn.tools[i] = { name: '', args: '' });
  if (tc.name) t.name += tc.name;
  if (tc.arguments) t.args += tc.arguments;
}

function renderTools(turn) {
  let pre = turn.li.querySelector('.tools');
  if (!pre) {
    pre = el('pre', 'tools');
    turn.body.after(pre);
  }
  pre.textContent = turn.tools.filter(Boolean).map((t) => `tool call: ${t.name}(${t.args})`).join('\n');
}

function metaItem(dl, term, value) {
  const d = el('div');
  d.append(el('dt', '', term), el('dd', '', value));
  dl.append(d);
}

function usageText(u) {
  if (!u) return '';
  const est = u.estimated ? ' (estimated)' : '';
  return `${u.input ?? 0} in / ${u.output ?? 0} out${est}`;
}

function costText(usd) {
  if (typeof usd !== 'number') return '—';
  if (usd === 0) return '$0';
  if (usd < 0.000001) return '< $0.000001';
  return `$${usd.toFixed(6)}`;
}

function finish(turn, state, msg) {
  flush(turn);
  turn.cursor.remove();
  turn.li.removeAttribute('aria-busy');
  if (app.active === turn) app.active = null;
  if (app.binding === turn) app.binding = null;
  if (msg.model) turn.model = msg.model;
  if (msg.provider) turn.provider = msg.provider;
  setTurnHead(turn);
  const m = turn.meta;
  m.replaceChildren();
  metaItem(m, 'Model', turn.model || turn.target.name);
  metaItem(m, 'Provider', turn.provider || '—');
  if (state === 'done') {
    // The server's time to first token where the protocol says it, else the page's own.
    if (typeof msg.ttftMs === 'number') metaItem(m, 'Time to first token', `${msg.ttftMs} ms`);
    else if (turn.firstAt) metaItem(m, 'First token after', `${Math.round(turn.firstAt - turn.sentAt)} ms (measured here)`);
    if (msg.usage) metaItem(m, 'Tokens', usageText(msg.usage));
    if (typeof msg.cost === 'number') metaItem(m, 'Cost', costText(msg.cost));
    if (typeof msg.latencyMs === 'number') metaItem(m, 'Latency', `${msg.latencyMs} ms`);
    if (msg.conversation) metaItem(m, 'Conversation', msg.conversation);
    const why = msg.finishReason && msg.finishReason !== 'stop' ? ` (finish reason: ${msg.finishReason})` : '';
    setTurnStatus(turn, 'done', `Done${why}.`);
    announce(`Answer${turn.model ? ` from ${turn.model}` : ''}: ${turn.text.slice(0, 2000)}`);
  } else if (state === 'cancelled') {
    if (msg.usage) metaItem(m, 'Tokens', usageText(msg.usage));
    setTurnStatus(turn, 'cancelled', `Cancelled after ${turn.deltas} token${turn.deltas === 1 ? '' : 's'}.`);
    announce('Answer cancelled.');
  } else {
    if (msg.usage) metaItem(m, 'Tokens', usageText(msg.usage));
    const text = `Error: ${plainError(msg.code, msg.message, msg.detail)}.${retryText(msg)}`;
    setTurnStatus(turn, 'error', text);
    announce(text);
  }
  m.hidden = false;
  const refocus = document.activeElement === ui.cancel;
  updateComposer();
  if (refocus) ui.prompt.focus();
}

// The connection went away with answers in flight: they wait for a resume.
function interruptAll(why) {
  for (const turn of app.turns.values()) {
    if (turn.state === 'sending' || turn.state === 'streaming') {
      flush(turn);
      setTurnStatus(turn, 'interrupted', `Interrupted: ${why}.`);
      turn.cursor.remove();
      turn.li.removeAttribute('aria-busy');
      if (app.active === turn) app.active = null;
      if (app.binding === turn) app.binding = null;
    }
  }
  updateComposer();
}

// After a reconnect, ask for the rest of every interrupted answer (the native protocol;
// the dialects' own recovery is not the page's business). A server that no longer has it
// says NOT_FOUND, which ends the turn as an error the user can read.
function resumeInterrupted() {
  if (!app.proto.resume) return;
  for (const turn of app.turns.values()) {
    if (turn.state !== 'interrupted' || !turn.epoch) continue;
    const r = app.proto.resumeMsg(turn);
    if (conn.send(r.name, r.data)) {
      setTurnStatus(turn, 'streaming', 'resuming…');
      turn.li.setAttribute('aria-busy', 'true');
      turn.body.append(turn.cursor);
      app.active = turn;
    }
  }
  updateComposer();
}


// --- sending ---------------------------------------------------------------------------

function selectedTarget() {
  const v = ui.target.value || '';
  const i = v.indexOf(':');
  if (i < 0) return null;
  const t = { kind: v.slice(0, i), name: v.slice(i + 1) };
  if (t.kind === 'default') t.name = 'default model';
  return t;
}

// The conversation so far: finished exchanges whose answer has text (a failed exchange is
// left out, so roles keep alternating).
function pastTurns() {
  const out = [];
  for (const ex of app.history) {
    const a = ex.assistant;
    if (!a.text || a.state === 'sending' || a.state === 'streaming') continue;
    out.push({ role: 'user', content: ex.user.text }, { role: 'assistant', content: a.text });
  }
  return out;
}

function sendMessage() {
  const p = app.proto;
  const text = ui.prompt.value.trim();
  if (!text) {
    showError('Type a message first.');
    ui.prompt.focus();
    return;
  }
  if (conn.state !== 'ready') {
    showError(conn.state === 'connecting' ? 'Still connecting: wait a moment.' : 'Not connected: choose a protocol and press Connect.');
    return;
  }
  if (app.active) {
    showError(p.cancel ? 'Wait for the answer to finish, or cancel it (Escape).' : 'Wait for the answer to finish.');
    return;
  }
  const target = selectedTarget();
  if (!target) {
    showError('Choose a model or an agent first.');
    ui.target.focus();
    return;
  }
  const id = `c${app.nextId++}-${Date.now().toString(36)}`;
  const history = p.history === 'messages' || p.history === 'history' ? pastTurns() : [];
  const req = p.request({
    id,
    text,
    history,
    messages: [...history, { role: 'user', content: text }],
    target,
    catalogue: app.catalogue,
    conversation: app.conversation,
  });
  const limit = app.ready && app.ready.limits && app.ready.limits.max_message_bytes;
  const size = new TextEncoder().encode(JSON.stringify(req.data)).length;
  if (limit && size > limit) {
    showError(`The conversation is too large to send (${size} bytes, the server takes ${limit}). Start a new conversation.`);
    return;
  }
  showError('');
  const user = addUserTurn(text);
  const assistant = addAssistantTurn(id, target);
  assistant.sentAt = performance.now();
  app.history.push({ user, assistant });
  app.active = assistant;
  if (p.serverIds) app.binding = assistant;
  conn.send(req.name, req.data);
  ui.prompt.value = '';
  updateComposer();
  assistant.li.scrollIntoView({ block: 'end' });
}

function cancelActive() {
  const turn = app.active;
  const p = app.proto;
  if (!turn || !p.cancel) return;
  if (app.binding === turn) {
    // The server has not named the stream yet: cancel as soon as it does.
    turn.cancelWanted = true;
    setTurnStatus(turn, turn.state, 'cancelling…');
    return;
  }
  const c = p.cancel(turn.id);
  if (conn.send(c.name, c.data)) setTurnStatus(turn, 'streaming', 'cancelling…');
}

function updateComposer() {
  const busy = !!app.active;
  const p = app.proto;
  ui.send.disabled = conn.state !== 'ready' || busy;
  ui.cancel.disabled = !busy || conn.state !== 'ready' || !p || !p.cancel;
  ui.rawSend.disabled = conn.state !== 'ready';
}

// --- the raw sender --------------------------------------------------------------------

function sendRaw() {
  const p = app.proto;
  const text = ui.rawData.value;
  if (conn.state !== 'ready') {
    showError('Not connected: connect first, then send.');
    return;
  }
  let data = text;
  if (p.transport === 'sio') {
    const name = ui.rawEvent.value.trim();
    if (!name) {
      showError('A Socket.IO message needs an event name.');
      ui.rawEvent.focus();
      return;
    }
    if (text.trim()) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        showError(`The message is not valid JSON (${e.message}); a Socket.IO event's argument must be.`);
        ui.rawData.focus();
        return;
      }
    } else {
      data = undefined;
    }
    showError('');
    conn.send(name, data);
    return;
  }
  // A plain WebSocket takes the text as it is, valid JSON or not: the server's answer to
  // a malformed message is worth seeing too.
  showError('');
  conn.send('(raw)', text);
}

// --- protocols -------------------------------------------------------------------------

function protocolFromUrl(params) {
  const asked = params.get('protocol');
  if (asked && PROTOCOLS[asked]) return asked;
  // Seed 002's documented test page address opens the page on its protocol.
  if (location.pathname.replace(/\/+$/, '') === '/ws/test') return 'ws-chat';
  return 'native';
}

function fillProtocols() {
  const frag = document.createDocumentFragment();
  for (const [id, p] of Object.entries(PROTOCOLS)) frag.append(new Option(p.label, id));
  ui.protocol.replaceChildren(frag);
}

// The protocol changes: a new conversation (the old one was in another protocol), the
// endpoint's defaults, the raw sender's example; reconnects if the page was connected.
function useProtocol(id, { reconnect = true } = {}) {
  const was = conn.state;
  const p = PROTOCOLS[id];
  app.protocolId = id;
  app.proto = p;
  ui.protocol.value = id;
  ui.protocolHelp.textContent = p.help;
  ui.path.value = p.path;
  ui.namespace.value = p.namespace || '';
  ui.namespaceField.hidden = p.transport !== 'sio';
  ui.rawEventField.hidden = p.transport !== 'sio';
  ui.rawEvent.value = p.example.name;
  ui.rawData.value = JSON.stringify(p.example.data);
  ui.promptHelp.textContent = p.cancel
    ? 'Enter sends, Shift+Enter starts a new line, Escape cancels the answer.'
    : 'Enter sends, Shift+Enter starts a new line. This protocol has no cancel: an answer runs to its end.';
  if (was !== 'idle') conn.disconnect();
  newConversation();
  app.ready = null;
  fillTargets();
  const params = new URLSearchParams(location.search);
  params.set('protocol', id);
  history.replaceState(null, '', `${location.pathname}?${params}`);
  logEntry({ dir: 'info', name: 'protocol', data: `${id}: ${p.label}` });
  if (reconnect && (was === 'connecting' || was === 'ready' || was === 'waiting')) connectNow();
}

function connectNow() {
  const token = ui.token.value.trim();
  const p = app.proto;
  // Without a token only a Socket.IO namespace with `auth: none` can take us.
  if (!token && p.transport !== 'sio') {
    showError('Paste a token first (sluice prints a test page URL with one when it starts).');
    ui.token.focus();
    return;
  }
  conn.use(p, { path: ui.path.value.trim() || p.path, namespace: ui.namespace.value.trim() || p.namespace });
  if (app.catalogue && app.catalogueToken !== token) app.catalogue = null;
  app.catalogueToken = token;
  conn.connect(token);
}

function newConversation() {
  if (app.active) cancelActive();
  app.history = [];
  app.turns.clear();
  app.active = null;
  app.binding = null;
  app.conversation = null;
  ui.transcript.replaceChildren();
  ui.empty.hidden = false;
  showError('');
  updateComposer();
}

// --- wiring ----------------------------------------------------------------------------

ui.connectForm.addEventListener('submit', (e) => {
  e.preventDefault();
  connectNow();
});

ui.protocol.addEventListener('change', () => useProtocol(ui.protocol.value));

ui.disconnect.addEventListener('click', () => conn.disconnect());

ui.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  sendMessage();
});

ui.prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    sendMessage();
  }
});

document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && app.active && app.proto.cancel) {
    e.preventDefault();
    cancelActive();
  }
});

ui.cancel.addEventListener('click', cancelActive);

ui.clear.addEventListener('click', () => {
  newConversation();
  ui.prompt.focus();
});

ui.rawForm.addEventListener('submit', (e) => {
  e.preventDefault();
  sendRaw();
});

ui.logClear.addEventListener('click', () => {
  log.pending = [];
  log.count = 0;
  ui.log.replaceChildren();
});

// Back online: do not wait for the backoff.
window.addEventListener('online', () => {
  if (conn.state === 'waiting') conn.connect();
});

const params = new URLSearchParams(location.search);
const initial = params.get('token');
fillProtocols();
useProtocol(protocolFromUrl(params), { reconnect: false });
updateComposer();
if (initial) {
  ui.token.value = initial;
  connectNow();
  ui.prompt.focus();
} else {
  setState('disconnected', 'Disconnected: paste a token to connect');
  ui.token.focus();
}

// For tests and the curious: the page's state, read-only.
window.sluicePage = { conn, app };
