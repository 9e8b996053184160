// Seed 004 (the `llm` dialect, Socket.IO namespace / with a JWT): the seed's own client code
// as printed, its "Manual Testing Steps" (connect, stream, cancel, an invalid provider) and
// its `useLLMStream` React hook (under a minimal stand-in for React's useState/useEffect),
// unchanged but for the URL, the token, the cancel's trigger and the assertions, against
// sluice streaming from providers named as the seed names them (openai, claude, gemini,
// deepseek: the mock upstream's) and from the demo model: the order of events, cancel, errors,
// several streams at once, `chat` and `llm` side by side on one namespace, the per-client
// message rate (seed 004: 60 a minute) and GET /websocket/health. (No reconnection in the seed.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { io } from 'socket.io-client';
import { jwt, startMock, startSluice } from '../lib/harness.mjs';
import { KEY, canonicalFinish, expectedErrors, loadFixtures } from '../lib/providers.mjs';
import { assertFields, assertIso, get, once, recordEvents, recordingConsole, synthText, uniq } from '../lib/seeds.mjs';

// Steps 2-5 of the seed's manual test [004 L173-235], for one stream. `process` is the
// terminal the seed writes tokens to; the cancel of step 4 fires on `cancelWhen` (the seed
// waits 2 s); `provider` and `content` replace the seed's when a test sends others.
function manualTest(URL, TOKEN, { console, process, provider = 'openai', content = 'Explain blockchain in 50 words', model, cancelWhen, invalid = false }) {
  // 2. Connect WebSocket Client
  const socket = io(URL, {
    auth: { token: TOKEN }
  });
  
  socket.on('connect', () => {
    console.log('Connected:', socket.id);
  });

  // 3. Test Streaming
  const sessionId = `session-${Date.now()}-${uniq('s')}`;
  
  socket.on('llm:stream:start', (data) => {
    console.log('Stream started:', data);
  });
  
  socket.on('llm:stream:token', (data) => {
    process.stdout.write(data.token); // Print tokens as they arrive
    if (cancelWhen?.(data)) cancel();
  });
  
  socket.on('llm:stream:done', (data) => {
    console.log('\nStream complete:', data);
  });
  
  if (!invalid) {
    socket.emit('llm:chat:stream', {
      sessionId,
      provider,
      messages: [
        { role: 'user', content }
      ],
      ...(model && { model }), // (test) sluice's addition: a model of that provider
    });
  }

  // 4. Test Cancellation
  let cancelled = false;
  const cancel = () => {
    if (cancelled) return;
    cancelled = true;
    socket.emit('llm:stream:cancel', { sessionId });
  };
  
  socket.on('llm:stream:cancelled', (data) => {
    console.log('Stream cancelled:', data);
  });

  // 5. Test Error Handling
  if (invalid) {
    // Use invalid provider
    socket.emit('llm:chat:stream', {
      sessionId,
      provider: 'invalid-provider',
      messages: [{ role: 'user', content: 'Test' }]
    });
  }
  
  socket.on('llm:stream:error', (data) => {
    console.error('Stream error:', data);
  });

  return { socket, sessionId };
}

// A terminal: what the seed writes with process.stdout.write.
function terminal() {
  const t = { out: '' };
  t.stdout = { write: (s) => { t.out += s; return true; } };
  return t;
}

// The seed's useLLMStream hook [004 L346-394], verbatim, with React's hooks passed in.
function makeUseLLMStream({ useEffect, useState, io, localStorage }) {
  return function useLLMStream() {
    const [socket, setSocket] = useState(null);
    const [isStreaming, setIsStreaming] = useState(false);
    const [currentMessage, setCurrentMessage] = useState('');
    
    useEffect(() => {
      const newSocket = io('http://localhost:3000', {
        auth: { token: localStorage.getItem('token') }
      });
      
      setSocket(newSocket);
      
      return () => {
        newSocket.close();
      };
    }, []);
    
    const streamChat = (provider, messages) => {
      if (!socket) return;
      
      const sessionId = `session-${Date.now()}`;
      setIsStreaming(true);
      setCurrentMessage('');
      
      socket.on('llm:stream:token', (data) => {
        if (data.sessionId === sessionId) {
          setCurrentMessage((prev) => prev + data.token);
        }
      });
      
      socket.on('llm:stream:done', (data) => {
        if (data.sessionId === sessionId) {
          setIsStreaming(false);
        }
      });
      
      socket.emit('llm:chat:stream', {
        sessionId,
        provider,
        messages
      });
    };
    
    return { streamChat, isStreaming, currentMessage };
  };
}

// Just enough of React to run a hook: state slots kept across renders, effects run once at
// the first render and cleaned up at unmount.
function renderHook(make) {
  const slots = [];
  const cleanups = [];
  let cursor = 0;
  let mounted = false;
  const useState = (init) => {
    const k = cursor++;
    if (!(k in slots)) slots[k] = init;
    return [slots[k], (v) => { slots[k] = typeof v === 'function' ? v(slots[k]) : v; }];
  };
  const useEffect = (fn) => {
    if (!mounted) {
      const c = fn();
      if (c) cleanups.push(c);
    }
  };
  const hook = make({ useState, useEffect });
  const render = () => { cursor = 0; const out = hook(); mounted = true; return out; };
  return { render, slots, unmount: () => cleanups.forEach((c) => c()) };
}

// The fields of each event as the seed lists them [004 L125-159, L271-310].
const SHAPE = {
  'llm:chat:stream:acknowledged': { sessionId: 'string', status: 'string', timestamp: 'string' },
  'llm:stream:start': { sessionId: 'string', provider: 'string', timestamp: 'string' },
  'llm:stream:token': { sessionId: 'string', token: 'string', timestamp: 'string' },
  'llm:stream:done': { sessionId: 'string', provider: 'string', fullResponse: 'string', tokenCount: 'number', timestamp: 'string' },
  'llm:stream:cancel:acknowledged': { sessionId: 'string', status: 'string', timestamp: 'string' },
  'llm:stream:cancelled': { sessionId: 'string', timestamp: 'string' },
  'llm:stream:error': { sessionId: 'string|null', error: 'string', timestamp: 'string' },
};

function checkShape(rec) {
  assertFields(rec.data, SHAPE[rec.event], rec.event);
  assertIso(rec.data.timestamp, `${rec.event}.timestamp`);
}

// One stream's events in the seed's order: acknowledged, start, token*, done.
function checkStream(seen, sessionId, provider) {
  const mine = seen.filter((r) => r.data?.sessionId === sessionId);
  mine.forEach(checkShape);
  const names = mine.map((r) => r.event);
  assert.deepEqual(names.slice(0, 2), ['llm:chat:stream:acknowledged', 'llm:stream:start'], names.join());
  assert.equal(names.at(-1), 'llm:stream:done', names.join());
  assert.ok(names.slice(2, -1).every((n) => n === 'llm:stream:token'), names.join());
  assert.equal(mine[0].data.status, 'accepted');
  const done = mine.at(-1).data;
  if (provider) {
    assert.equal(mine[1].data.provider, provider);
    assert.equal(done.provider, provider);
  }
  const text = mine.slice(2, -1).map((r) => r.data.token).join('');
  assert.equal(done.fullResponse, text, 'fullResponse is every token');
  return { text, done, tokens: mine.length - 3 };
}

describe('seed 004: the llm dialect', () => {
  let mock;
  let s;
  const token = jwt({ sub: 'seed004' });
  const sockets = [];
  const track = (so) => { sockets.push(so); return so; };

  before(async () => {
    mock = await startMock();
    const common = { api_key: KEY, max_retries: 0 };
    s = await startSluice({
      config: {
        // Seed 004's provider names, each on the mock in its own protocol.
        providers: {
          openai: { kind: 'openai', base_url: `${mock.url}/v1`, default_model: 'gpt-4o', ...common },
          claude: { kind: 'anthropic', base_url: mock.url, default_model: 'claude-sonnet', ...common },
          gemini: { kind: 'gemini', base_url: mock.url, default_model: 'gemini-flash', ...common },
          deepseek: { kind: 'openai', base_url: `${mock.url}/v1`, default_model: 'deepseek-chat', ...common },
          demo: { kind: 'demo', tokens_per_second: 400, default_model: 'demo' },
        },
        models: {
          // Paced, 10 ms a token: streams started together overlap.
          'gpt-4o': { provider: 'openai', upstream_model: 'synth:tokens=8,rate=100' },
          'claude-sonnet': { provider: 'claude', upstream_model: 'synth:tokens=6,rate=100' },
          'gemini-flash': { provider: 'gemini', upstream_model: 'synth:tokens=5,rate=100' },
          'deepseek-chat': { provider: 'deepseek', upstream_model: 'synth:tokens=7,rate=100' },
          slow: { provider: 'openai', upstream_model: 'synth:tokens=1000,rate=20' },
          paced: { provider: 'openai', upstream_model: 'synth:tokens=40,rate=40' },
          breaks: { provider: 'deepseek', upstream_model: 'synth:tokens=10,error_after=3' },
        },
        socketio: { namespaces: { '/': { dialects: ['chat', 'llm'], auth: 'required' } } },
        limits: { messages_per_minute: 100000 },
        resume: { window: '10s' },
      },
    });
  });
  after(async () => {
    for (const so of sockets) so.disconnect();
    await s?.stop();
    await mock?.stop();
  });

  test('the seed\'s manual test: provider openai, acknowledged, start, tokens, done', async () => {
    const c = recordingConsole();
    const t = terminal();
    const { socket, sessionId } = manualTest(s.url, token, { console: c, process: t });
    track(socket);
    const ev = recordEvents(socket);
    const done = await ev.until((r) => r.event === 'llm:stream:done' || r.event === 'llm:stream:error');
    assert.equal(done.event, 'llm:stream:done', JSON.stringify(done.data));
    const { text, tokens } = checkStream(ev.seen, sessionId, 'openai');
    assert.equal(text, synthText(8));
    assert.equal(tokens, 8);
    assert.equal(done.data.tokenCount, 8);
    assert.equal(done.data.model, 'gpt-4o', 'the provider\'s default_model');
    assert.equal(t.out, synthText(8), 'the terminal shows every token in order');
    assert.deepEqual(c.text().map((l) => l.split(' ').slice(0, 2).join(' ')), ['Connected: ' + socket.id, 'Stream started:', '\nStream complete:'].map((l) => l.split(' ').slice(0, 2).join(' ')));
    const req = (await mock.log()).filter((r) => r.scenario === 'synth:tokens=8,rate=100').at(-1);
    assert.deepEqual(req.body.messages, [{ role: 'user', content: 'Explain blockchain in 50 words' }]);
    socket.disconnect();
  });

  test('every provider of the seed, and the demo model, at once on one connection', async () => {
    const socket = track(io(s.url, { auth: { token } }));
    const ev = recordEvents(socket);
    const expect = { openai: 8, claude: 6, gemini: 5, deepseek: 7, demo: null };
    const ids = {};
    for (const provider of Object.keys(expect)) {
      ids[provider] = `session-${Date.now()}-${provider}`;
      socket.emit('llm:chat:stream', { sessionId: ids[provider], provider, messages: [{ role: 'user', content: `hello ${provider}` }] });
    }
    await Promise.all(Object.values(ids).map((id) => ev.until((r) => r.data?.sessionId === id && ['llm:stream:done', 'llm:stream:error'].includes(r.event), 15000)));
    for (const [provider, n] of Object.entries(expect)) {
      const { text, done, tokens } = checkStream(ev.seen, ids[provider], provider);
      if (n) {
        assert.equal(text, synthText(n), provider);
        assert.equal(done.tokenCount, n);
      } else {
        assert.ok(text.length > 40);
        assert.equal(done.tokenCount, tokens);
      }
    }
    // Side by side (the mock's streams are paced): every stream had begun before any ended.
    const firsts = Object.values(ids).map((id) => ev.seen.findIndex((r) => r.event === 'llm:stream:token' && r.data.sessionId === id));
    const dones = Object.values(ids).map((id) => ev.seen.findIndex((r) => r.event === 'llm:stream:done' && r.data.sessionId === id));
    assert.ok(Math.max(...firsts) < Math.min(...dones), 'the five streams overlapped');
    socket.disconnect();
  });

  test('cancel: acknowledged "cancelled", then cancelled, no token after; the provider stopped', async () => {
    const c = recordingConsole();
    const t = terminal();
    const marker = uniq('cancel');
    // The seed cancels after 2 s; here, at the third token. A slow model of provider openai.
    const { socket, sessionId } = manualTest(s.url, token, {
      console: c, process: t, provider: 'openai', model: 'slow', content: marker, cancelWhen: (d) => d.token === 'tok3 ',
    });
    track(socket);
    const ev = recordEvents(socket);
    const end = await ev.until((r) => r.data?.sessionId === sessionId && ['llm:stream:cancelled', 'llm:stream:done', 'llm:stream:error'].includes(r.event));
    assert.equal(end.event, 'llm:stream:cancelled');
    checkShape(end);
    const mine = ev.seen.filter((r) => r.data?.sessionId === sessionId);
    assert.deepEqual(mine.slice(0, 2).map((r) => r.event), ['llm:chat:stream:acknowledged', 'llm:stream:start']);
    const ack = mine.findIndex((r) => r.event === 'llm:stream:cancel:acknowledged');
    assert.ok(ack > 0, 'acknowledged');
    checkShape(mine[ack]);
    assert.equal(mine[ack].data.status, 'cancelled');
    assert.deepEqual(mine.slice(ack + 1).map((r) => r.event), ['llm:stream:cancelled'], 'no token after the acknowledgement');
    const tokens = mine.filter((r) => r.event === 'llm:stream:token').map((r) => r.data.token).join('');
    assert.ok(tokens.startsWith('tok1 tok2 tok3 '));
    assert.equal(t.out, tokens);
    const r = await mock.wait(marker, 'aborted', 3000);
    assert.equal(r.end, 'client_closed');
    assert.ok(r.tokens_sent < 1000);
    assert.ok(c.text().some((l) => l.startsWith('Stream cancelled: ')));
    assert.equal(c.text().filter((l) => l.startsWith('\nStream complete')).length, 0);
    // Cancelling it again, or a stream that never was: "not_found", and nothing else.
    for (const id of [sessionId, 'session-never']) {
      const from = ev.seen.length;
      socket.emit('llm:stream:cancel', { sessionId: id });
      const nf = await ev.until((x) => x.event === 'llm:stream:cancel:acknowledged' && x.data.sessionId === id, 10000, from);
      assert.equal(nf.data.status, 'not_found');
    }
    socket.emit('llm:stream:cancel', {});
    const bad = await ev.until((x) => x.event === 'llm:stream:error' && x.data.sessionId === null);
    assert.equal(bad.data.code, 'BAD_REQUEST');
    assert.equal(ev.seen.filter((x) => x.event === 'llm:stream:cancelled').length, 1);
    socket.disconnect();
  });

  test('socket.io-client\'s own reconnection (the seed\'s io() leaves it on) recovers a running stream', async () => {
    const c = recordingConsole();
    const t = terminal();
    const { socket, sessionId } = manualTest(s.url, token, { console: c, process: t, model: 'paced', content: uniq('recover') });
    track(socket);
    const ev = recordEvents(socket);
    await ev.until((r) => r.event === 'llm:stream:token' && r.data.token === 'tok5 ');
    socket.io.engine.close(); // the network goes
    const done = await ev.until((r) => r.event === 'llm:stream:done' || r.event === 'llm:stream:error', 20000);
    assert.equal(done.event, 'llm:stream:done');
    assert.equal(socket.recovered, true);
    const { text } = checkStream(ev.seen, sessionId, 'openai');
    assert.equal(text, synthText(40), 'every token once, in order, across the reconnect');
    assert.equal(t.out, synthText(40));
    assert.equal(c.text().filter((l) => l.startsWith('Connected: ')).length, 2);
    socket.disconnect();
  });

  test('the seed\'s error test: an invalid provider is llm:stream:error; so are other bad requests', async () => {
    const c = recordingConsole();
    const t = terminal();
    const { socket, sessionId } = manualTest(s.url, token, { console: c, process: t, invalid: true });
    track(socket);
    const ev = recordEvents(socket);
    const err = await ev.until((r) => r.event === 'llm:stream:error');
    checkShape(err);
    assert.equal(err.data.sessionId, sessionId);
    assert.equal(err.data.code, 'UNKNOWN_MODEL');
    assert.match(err.data.error, /invalid-provider/);
    assert.equal(ev.seen.filter((r) => r.event !== 'llm:stream:error').length, 0, 'not acknowledged');
    assert.equal(c.text().at(-1), `Stream error: ${JSON.stringify(err.data)}`);

    socket.emit('llm:chat:stream', { provider: 'openai', messages: [{ role: 'user', content: 'x' }] });
    const noId = await ev.until((r) => r.event === 'llm:stream:error' && r.data.sessionId === null);
    checkShape(noId);
    assert.equal(noId.data.code, 'BAD_REQUEST');
    assert.match(noId.data.error, /sessionId/);

    socket.emit('llm:chat:stream', { sessionId: 'session-nomsg', provider: 'openai' });
    const noMsg = await ev.until((r) => r.event === 'llm:stream:error' && r.data.sessionId === 'session-nomsg');
    assert.match(noMsg.data.error, /messages/);

    socket.emit('llm:chat:stream', { sessionId: 'session-mid', provider: 'deepseek', model: 'breaks', messages: [{ role: 'user', content: 'x' }] });
    const mid = await ev.until((r) => r.event === 'llm:stream:error' && r.data.sessionId === 'session-mid');
    checkShape(mid);
    assert.deepEqual([mid.data.code, mid.data.retryable, mid.data.provider], ['UPSTREAM_ERROR', true, 'deepseek']);
    assert.deepEqual(ev.of('sessionId', 'session-mid', 'llm:stream:token').map((r) => r.data.token), ['tok1 ', 'tok2 ', 'tok3 ']);
    assert.equal(ev.of('sessionId', 'session-mid', 'llm:stream:done').length, 0);

    // The same sessionId while it runs is refused; the running stream goes on.
    socket.emit('llm:chat:stream', { sessionId: 'session-dup', provider: 'openai', model: 'slow', messages: [{ role: 'user', content: 'x' }] });
    await ev.until((r) => r.event === 'llm:stream:token' && r.data.sessionId === 'session-dup');
    socket.emit('llm:chat:stream', { sessionId: 'session-dup', provider: 'openai', messages: [{ role: 'user', content: 'y' }] });
    const dup = await ev.until((r) => r.event === 'llm:stream:error' && r.data.sessionId === 'session-dup');
    assert.equal(dup.data.code, 'DUPLICATE_ID');
    socket.emit('llm:stream:cancel', { sessionId: 'session-dup' });
    await ev.until((r) => r.event === 'llm:stream:cancelled' && r.data.sessionId === 'session-dup');
    socket.disconnect();
  });

  test('the seed\'s useLLMStream hook: streamChat, isStreaming, currentMessage', async () => {
    const localStorage = { getItem: (k) => (k === 'token' ? token : null) };
    let made;
    // The hook connects to the seed's URL; here, to sluice's.
    const ioHere = (url, opts) => { made = track(io(s.url, opts)); return made; };
    const h = renderHook(({ useState, useEffect }) => makeUseLLMStream({ useState, useEffect, io: ioHere, localStorage }));
    let view = h.render();
    assert.equal(view.isStreaming, false);
    await once(made, 'connect');
    view = h.render(); // with the socket in state
    const ev = recordEvents(made);
    view.streamChat('claude', [{ role: 'user', content: 'Hello!' }]);
    view = h.render();
    assert.equal(view.isStreaming, true);
    await ev.until((r) => r.event === 'llm:stream:done');
    view = h.render();
    assert.equal(view.isStreaming, false);
    assert.equal(view.currentMessage, synthText(6));
    const done = ev.seen.find((r) => r.event === 'llm:stream:done');
    checkStream(ev.seen, done.data.sessionId, 'claude');
    h.unmount();
    assert.equal(made.connected, false);
  });

  test('chat (seed 000) and llm (seed 004) on the same connection, each answered in its own dialect', async () => {
    const socket = track(io(s.url, { auth: { token } }));
    const ev = recordEvents(socket);
    socket.emit('chat', { requestId: 'both-chat', model: 'gemini-flash', messages: [{ role: 'user', content: 'x' }] });
    socket.emit('llm:chat:stream', { sessionId: 'both-llm', provider: 'gemini', messages: [{ role: 'user', content: 'x' }] });
    await ev.until((r) => r.event === 'chat:complete');
    await ev.until((r) => r.event === 'llm:stream:done');
    const chat = ev.seen.filter((r) => r.data?.requestId === 'both-chat').map((r) => r.event);
    const llm = ev.seen.filter((r) => r.data?.sessionId === 'both-llm').map((r) => r.event);
    assert.ok(chat.every((e) => e.startsWith('chat:')), chat.join());
    assert.ok(llm.every((e) => e.startsWith('llm:')), llm.join());
    assert.equal(checkStream(ev.seen, 'both-llm', 'gemini').text, synthText(5));
    assert.equal(ev.of('requestId', 'both-chat', 'chat:chunk').map((r) => r.data.content).join(''), synthText(5));
    socket.disconnect();
  });

  test('authentication is required: no token or a bad one is connect_error', async () => {
    for (const auth of [{}, { token: 'nope' }, { token: jwt({ sub: 'x', exp: 1 }) }]) {
      const socket = track(io(s.url, { auth, reconnection: false }));
      const [err] = await once(socket, 'connect_error');
      assert.equal(err.message, 'Authentication failed');
      socket.disconnect();
    }
  });

  test('GET /websocket/health counts clients and running LLM streams', async () => {
    const socket = track(io(s.url, { auth: { token } }));
    const ev = recordEvents(socket);
    for (const id of ['h1', 'h2'])
      socket.emit('llm:chat:stream', { sessionId: id, provider: 'openai', model: 'slow', messages: [{ role: 'user', content: id }] });
    await ev.until((r) => r.event === 'llm:stream:token' && r.data.sessionId === 'h2');
    const h = await get(s, '/websocket/health');
    assert.equal(h.status, 200);
    assertFields(h.json, { connectedClients: 'number', totalSubscriptions: 'number', activeLLMStreams: 'number' }, '/websocket/health');
    assert.equal(h.json.activeLLMStreams, 2);
    assert.ok(h.json.connectedClients >= 1);
    for (const id of ['h1', 'h2']) socket.emit('llm:stream:cancel', { sessionId: id });
    await ev.until((r) => r.event === 'llm:stream:cancelled' && r.data.sessionId === 'h2');
    await ev.until((r) => r.event === 'llm:stream:cancelled' && r.data.sessionId === 'h1');
    socket.disconnect();
  });
});

describe('seed 004: 60 messages a minute per client', () => {
  let mock;
  let s;
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: { openai: { kind: 'openai', base_url: `${mock.url}/v1`, api_key: KEY, max_retries: 0, default_model: 'gpt-4o' } },
        models: { 'gpt-4o': { provider: 'openai', upstream_model: 'synth:tokens=2' } },
        limits: { messages_per_minute: 60 },
      },
    });
  });
  after(async () => {
    await s?.stop();
    await mock?.stop();
  });

  test('the 61st message within a minute is RATE_LIMITED with a retry hint', async () => {
    const socket = io(s.url, { auth: { token: jwt({ sub: 'chatty' }) }, reconnection: false });
    const ev = recordEvents(socket);
    await once(socket, 'connect');
    for (let i = 1; i <= 61; i++)
      socket.emit('llm:stream:cancel', { sessionId: `m${i}` }); // the cheapest message there is
    const limited = await ev.until((r) => r.event === 'llm:stream:error');
    checkShape(limited);
    assert.equal(limited.data.code, 'RATE_LIMITED');
    assert.equal(typeof limited.data.retry_after_ms, 'number');
    const acks = ev.seen.filter((r) => r.event === 'llm:stream:cancel:acknowledged');
    assert.equal(acks.length, 60);
    assert.equal(limited.data.sessionId, 'm61');
    socket.disconnect();
  });
});

describe('seed 004: each provider\'s recorded bytes (the shared fixtures) through the llm dialect', () => {
  let mock;
  let s;
  // The fixture directories, by the seed's provider names (deepseek is OpenAI-compatible).
  const llmProvider = { openai: 'openai', openai_compat: 'deepseek', anthropic: 'claude', gemini: 'gemini', ollama: 'ollama' };
  // Text streams and failures; tool calls are not shown by the seed's client.
  const fixtures = loadFixtures().filter((f) => !f.meta.expected.tool_calls);
  const modelOf = (f) => `fx-${f.id.replace(/\//g, '-')}`;

  before(async () => {
    mock = await startMock();
    const common = { api_key: KEY, max_retries: 0 };
    const models = {};
    // Streams arrive a byte per write: every token boundary (and UTF-8 split) is exercised.
    for (const f of fixtures)
      models[modelOf(f)] = { provider: llmProvider[f.provider], upstream_model: `fixture:${f.id}${f.kind === 'http_error' ? '' : '@bytes'}` };
    s = await startSluice({
      config: {
        providers: {
          openai: { kind: 'openai', base_url: `${mock.url}/v1`, ...common },
          deepseek: { kind: 'openai', base_url: `${mock.url}/v1`, ...common },
          claude: { kind: 'anthropic', base_url: mock.url, ...common },
          gemini: { kind: 'gemini', base_url: mock.url, ...common },
          ollama: { kind: 'ollama', base_url: mock.url, max_retries: 0 },
        },
        models,
        limits: { messages_per_minute: 100000, max_streams_per_connection: 64 },
      },
    });
  });
  after(async () => {
    await s?.stop();
    const log = await mock.log();
    await mock?.stop();
    assert.deepEqual(log.filter((r) => r.error).map((r) => `${r.scenario}: ${r.error}`), [], 'every request matched its fixture');
  });

  test('every text stream and every failure, at once on one connection', async () => {
    const socket = io(s.url, { auth: { token: jwt({ sub: 'fixtures' }) }, reconnection: false });
    const ev = recordEvents(socket);
    for (const f of fixtures)
      socket.emit('llm:chat:stream', { sessionId: f.id, provider: llmProvider[f.provider], model: modelOf(f), messages: [{ role: 'user', content: f.id }] });
    await Promise.all(fixtures.map((f) => ev.until((r) => r.data?.sessionId === f.id && ['llm:stream:done', 'llm:stream:error'].includes(r.event), 30000)));
    for (const f of fixtures) {
      const ex = f.meta.expected;
      const want = expectedErrors[f.id];
      const mine = ev.seen.filter((r) => r.data?.sessionId === f.id);
      mine.forEach(checkShape);
      const text = mine.filter((r) => r.event === 'llm:stream:token').map((r) => r.data.token).join('');
      const end = mine.at(-1);
      if (want) {
        assert.equal(end.event, 'llm:stream:error', f.id);
        assert.equal(end.data.code, want.code, f.id);
        assert.equal(end.data.retryable, want.retryable, f.id);
        if (want.retry_after_ms !== undefined) assert.equal(end.data.retry_after_ms, want.retry_after_ms, f.id);
        assert.equal(text, ex.text_before_error ?? ex.text ?? '', f.id);
        continue;
      }
      const { text: shown, done } = checkStream(ev.seen, f.id, llmProvider[f.provider]);
      assert.equal(shown, ex.text, f.id);
      assert.equal(done.fullResponse, ex.text, f.id);
      assert.equal(done.finishReason, canonicalFinish[ex.finish_reason], f.id);
      if (ex.output_tokens !== undefined) assert.equal(done.tokenCount, ex.output_tokens, f.id);
    }
    socket.disconnect();
  });
});
