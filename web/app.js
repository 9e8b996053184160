// The sluice test page: connect with a token, pick a model or agent the server offers,
// chat, watch the answer stream in, cancel it, and see what each answer cost.
// Everything the server says is rendered as text (textContent), never as HTML.
import { Connection, closeText, nativeUrl } from './connection.js';

const $ = (id) => document.getElementById(id);
const ui = {
  state: $('conn-state'),
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
};

const STEP_TEXT = {
  routing: 'routing…',
  connecting: 'connecting to the provider…',
  generating: 'generating…',
  retrying: 'retrying…',
  fallback: 'falling back to another model…',
};

const app = {
  ready: null, // the last `ready` message
  history: [], // [{user: turn, assistant: turn}] in order
  turns: new Map(), // stream id -> assistant turn
  active: null, // the assistant turn in flight, if any
  nextId: 1,
};

function plainError(code, message) {
  const words = ERROR_TEXT[code] || 'error';
  return message && message !== words ? `${words} (${code}): ${message}` : `${words} (${code})`;
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

// --- connection ------------------------------------------------------------------------

const conn = new Connection({
  url: (token) => nativeUrl(location, token),
  onState: renderState,
  onMessage,
});

function setState(state, text) {
  ui.state.dataset.state = state;
  ui.state.textContent = text;
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
      const r = info.ready;
      showError('');
      fillTargets(r);
      setState('connected', `Connected as ${r.user || 'anonymous'}`);
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

function fillTargets(r) {
  const previous = ui.target.value;
  const frag = document.createDocumentFragment();
  const models = Array.isArray(r.models) ? r.models : [];
  const agents = Array.isArray(r.agents) ? r.agents : [];
  if (models.length) {
    const g = document.createElement('optgroup');
    g.label = 'Models';
    for (const m of models) {
      const o = new Option(m.provider ? `${m.id} (${m.provider})` : m.id, `model:${m.id}`);
      g.append(o);
    }
    frag.append(g);
  }
  if (agents.length) {
    const g = document.createElement('optgroup');
    g.label = 'Agents';
    for (const a of agents) g.append(new Option(a.model ? `${a.id} → ${a.model}` : a.id, `agent:${a.id}`));
    frag.append(g);
  }
  ui.target.replaceChildren(frag);
  const values = [...ui.target.options].map((o) => o.value);
  if (values.includes(previous)) ui.target.value = previous;
  else if (values.includes(`model:${r.default_model}`)) ui.target.value = `model:${r.default_model}`;
  ui.target.disabled = values.length === 0;
  app.ready = r;
}

function onMessage(msg) {
  if (msg.type === 'ready' || msg.type === 'pong') return;
  const turn = msg.id !== undefined ? app.turns.get(msg.id) : undefined;
  if (msg.type === 'error' && !turn) {
    // A connection-level error, or one about a request that never became a stream.
    showError(plainError(msg.code, msg.message) + retryText(msg));
    return;
  }
  if (!turn) return;
  // After a resume the server replays from `after`; never render an event twice.
  if (typeof msg.seq === 'number') {
    if (msg.seq <= turn.seq) return;
    turn.seq = msg.seq;
  }
  switch (msg.type) {
    case 'start':
      turn.epoch = msg.epoch;
      turn.model = msg.model;
      turn.provider = msg.provider;
      setTurnHead(turn);
      setTurnStatus(turn, 'streaming', STEP_TEXT.routing);
      break;
    case 'progress':
      setTurnStatus(turn, 'streaming', STEP_TEXT[msg.step] || `${msg.step}…`, msg.detail);
      break;
    case 'delta':
      if (typeof msg.text === 'string') {
        turn.pending += msg.text;
        turn.text += msg.text;
      } else if (msg.tool_call) {
        addToolDelta(turn, msg.tool_call);
      }
      turn.deltas++;
      scheduleFlush(turn);
      break;
    case 'done':
      finish(turn, 'done', msg);
      break;
    case 'cancelled':
      finish(turn, 'cancelled', msg);
      break;
    case 'error':
      finish(turn, 'error', msg);
      break;
  }
}

function retryText(msg) {
  return msg.retry_after_ms > 0 ? ` Try again in ${secondsText(msg.retry_after_ms)}.` : '';
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
  const via = turn.target.kind === 'agent' ? ` via agent ${turn.target.name}` : '';
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
  return `${u.input_tokens ?? 0} in / ${u.output_tokens ?? 0} out${est}`;
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
  if (msg.model) turn.model = msg.model;
  if (msg.provider) turn.provider = msg.provider;
  setTurnHead(turn);
  const m = turn.meta;
  m.replaceChildren();
  metaItem(m, 'Model', turn.model || turn.target.name);
  metaItem(m, 'Provider', turn.provider || '—');
  if (state === 'done') {
    metaItem(m, 'Time to first token', `${msg.ttft_ms} ms`);
    metaItem(m, 'Tokens', usageText(msg.usage));
    metaItem(m, 'Cost', costText(msg.cost_usd));
    metaItem(m, 'Latency', `${msg.latency_ms} ms`);
    const why = msg.finish_reason && msg.finish_reason !== 'stop' ? ` (finish reason: ${msg.finish_reason})` : '';
    setTurnStatus(turn, 'done', `Done${why}.`);
    announce(`Answer${turn.model ? ` from ${turn.model}` : ''}: ${turn.text.slice(0, 2000)}`);
  } else if (state === 'cancelled') {
    metaItem(m, 'Tokens', usageText(msg.usage));
    setTurnStatus(turn, 'cancelled', `Cancelled after ${turn.deltas} token${turn.deltas === 1 ? '' : 's'}.`);
    announce('Answer cancelled.');
  } else {
    if (msg.usage) metaItem(m, 'Tokens', usageText(msg.usage));
    const text = `Error: ${plainError(msg.code, msg.message)}.${retryText(msg)}`;
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
    }
  }
  updateComposer();
}

// After a reconnect, ask for the rest of every interrupted answer. A server that no
// longer has it says NOT_FOUND, which ends the turn as an error the user can read.
function resumeInterrupted() {
  for (const turn of app.turns.values()) {
    if (turn.state !== 'interrupted' || !turn.epoch) continue;
    if (conn.send({ type: 'resume', id: turn.id, after: turn.seq, epoch: turn.epoch })) {
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
  return { kind: v.slice(0, i), name: v.slice(i + 1) };
}

// The conversation so far as chat messages: finished exchanges whose answer has text
// (a failed exchange is left out, so roles keep alternating), then the new message.
function messagesFor(text) {
  const out = [];
  for (const ex of app.history) {
    const a = ex.assistant;
    if (!a.text || a.state === 'sending' || a.state === 'streaming') continue;
    out.push({ role: 'user', content: ex.user.text }, { role: 'assistant', content: a.text });
  }
  out.push({ role: 'user', content: text });
  return out;
}

function sendMessage() {
  const text = ui.prompt.value.trim();
  if (!text) {
    showError('Type a message first.');
    ui.prompt.focus();
    return;
  }
  if (conn.state !== 'ready') {
    showError('Not connected: connect with a token first.');
    return;
  }
  if (app.active) {
    showError('Wait for the answer to finish, or cancel it (Escape).');
    return;
  }
  const target = selectedTarget();
  if (!target) {
    showError('Choose a model or an agent first.');
    ui.target.focus();
    return;
  }
  const id = `c${app.nextId++}-${Date.now().toString(36)}`;
  const req = { type: 'chat', id, messages: messagesFor(text) };
  req[target.kind === 'agent' ? 'agent' : 'model'] = target.name;
  const limit = app.ready && app.ready.limits && app.ready.limits.max_message_bytes;
  const size = new TextEncoder().encode(JSON.stringify(req)).length;
  if (limit && size > limit) {
    showError(`The conversation is too large to send (${size} bytes, the server takes ${limit}). Start a new conversation.`);
    return;
  }
  showError('');
  const user = addUserTurn(text);
  const assistant = addAssistantTurn(id, target);
  app.history.push({ user, assistant });
  app.active = assistant;
  conn.send(req);
  ui.prompt.value = '';
  updateComposer();
  assistant.li.scrollIntoView({ block: 'end' });
}

function cancelActive() {
  const turn = app.active;
  if (!turn) return;
  if (conn.send({ type: 'cancel', id: turn.id })) setTurnStatus(turn, 'streaming', 'cancelling…');
}

function updateComposer() {
  const busy = !!app.active;
  ui.send.disabled = conn.state !== 'ready' || busy;
  ui.cancel.disabled = !busy || conn.state !== 'ready';
}

// --- wiring ----------------------------------------------------------------------------

ui.connectForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const token = ui.token.value.trim();
  if (!token) {
    showError('Paste a token first (sluice prints a test page URL with one when it starts).');
    ui.token.focus();
    return;
  }
  conn.connect(token);
});

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
  if (e.key === 'Escape' && app.active) {
    e.preventDefault();
    cancelActive();
  }
});

ui.cancel.addEventListener('click', cancelActive);

ui.clear.addEventListener('click', () => {
  if (app.active) cancelActive();
  app.history = [];
  app.turns.clear();
  app.active = null;
  ui.transcript.replaceChildren();
  ui.empty.hidden = false;
  showError('');
  updateComposer();
  ui.prompt.focus();
});

// Back online: do not wait for the backoff.
window.addEventListener('online', () => {
  if (conn.state === 'waiting') conn.connect();
});

const params = new URLSearchParams(location.search);
const initial = params.get('token');
updateComposer();
if (initial) {
  ui.token.value = initial;
  conn.connect(initial);
  ui.prompt.focus();
} else {
  setState('disconnected', 'Disconnected: paste a token to connect');
  ui.token.focus();
}

// For tests and the curious: the page's state, read-only.
window.sluicePage = { conn, app };
