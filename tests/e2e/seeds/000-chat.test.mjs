// Seed 000 (the `chat` dialect, Socket.IO namespace /): the seed's own client code, its
// `io(...)` call and event handlers as printed in the seed ("Client Integration"), run
// unchanged but for the URL, the token, the page's appendToResponse() and the assertions,
// against sluice streaming from the demo model and from the mock upstream's providers:
// abort, errors (with the seed's retry placeholder filled in), several streams at once,
// and the client's own reconnection (connection state recovery resumes the stream).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { io } from 'socket.io-client';
import { jwt, startMock, startSluice } from '../lib/harness.mjs';
import { mockProviders } from '../lib/providers.mjs';
import { assertFields, once, recordEvents, recordingConsole, synthText, uniq } from '../lib/seeds.mjs';

// The seed's client [000 L136-172]. `request` is the seed's chat request unless a test sends
// another; `onRetry` fills in the seed's "Implement retry logic" placeholder.
function seedClient(URL, TOKEN, { console, appendToResponse, request, onRetry = () => {} }) {
  const socket = io(URL, {
    auth: { token: TOKEN },
    reconnection: true,
    reconnectionAttempts: 5,
    reconnectionDelay: 1000,
  });

  socket.on('connect', () => {
    console.log('Connected to OpenClaw Gateway');
  });

  socket.on('chat:chunk', (data) => {
    // Append content to UI
    appendToResponse(data.content);
  });

  socket.on('chat:complete', (data) => {
    console.log('Chat complete', data.usage);
  });

  socket.on('chat:error', (data) => {
    console.error('Chat error', data.error);
    if (data.retryable) {
      // Implement retry logic
      onRetry(socket, data);
    }
  });

  // Send chat request
  socket.emit('chat', request ?? {
    model: 'claude-3',
    messages: [{ role: 'user', content: 'Hello!' }],
  });
  return socket;
}

// What a page built on the seed's client shows, and what it heard.
function page() {
  const c = recordingConsole();
  const p = { console: c, response: '' };
  p.appendToResponse = (content) => { p.response += content; };
  return p;
}

// Checks one stream's events as the seed's ServerEvents [000 L184-200] define them:
// chat:start, chat:chunk*, the last chunk with finishReason, chat:complete; returns its text.
function checkStream(events, requestId, { chunks, finishReason = 'stop' } = {}) {
  const mine = events.filter((r) => r.data?.requestId === requestId);
  assert.equal(mine[0].event, 'chat:start', 'chat:start comes first');
  assertFields(mine[0].data, { requestId: 'string' }, 'chat:start');
  const body = mine.slice(1, -2);
  for (const r of body) {
    assert.equal(r.event, 'chat:chunk');
    assertFields(r.data, { requestId: 'string', content: 'string' }, 'chat:chunk');
    assert.ok(r.data.content.length > 0, 'a chunk carries text');
    assert.equal(r.data.finishReason, undefined, 'only the last chunk has finishReason');
  }
  if (chunks !== undefined) assert.equal(body.length, chunks, 'one chunk per token');
  const last = mine.at(-2);
  assert.equal(last.event, 'chat:chunk');
  assertFields(last.data, { requestId: 'string', content: 'string', finishReason: 'string' }, 'last chat:chunk');
  assert.equal(last.data.content, '');
  assert.equal(last.data.finishReason, finishReason);
  const complete = mine.at(-1);
  assert.equal(complete.event, 'chat:complete', 'chat:complete ends the stream');
  assertFields(complete.data, { requestId: 'string', usage: 'object' }, 'chat:complete');
  assertFields(complete.data.usage, { promptTokens: 'number', completionTokens: 'number' }, 'chat:complete.usage');
  return { text: body.map((r) => r.data.content).join(''), usage: complete.data.usage, complete: complete.data };
}

describe('seed 000: the chat dialect', () => {
  let mock;
  let s;
  const token = jwt({ sub: 'seed000' });
  const sockets = [];
  const track = (so) => { sockets.push(so); return so; };

  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: { ...mockProviders(mock.url), demo: { kind: 'demo', tokens_per_second: 400 } },
        models: {
          // The model seed 000's client asks for, on the mock's Anthropic.
          'claude-3': { provider: 'mockanthropic', upstream_model: 'synth:tokens=12', price: { input_per_1m: 1, output_per_1m: 5 } },
          'gpt-mock': { provider: 'mockopenai', upstream_model: 'synth:tokens=7' },
          'gemini-mock': { provider: 'mockgemini', upstream_model: 'synth:tokens=9' },
          'ollama-mock': { provider: 'mockollama', upstream_model: 'synth:tokens=5' },
          slow: { provider: 'mockanthropic', upstream_model: 'synth:tokens=1000,rate=20' },
          paced: { provider: 'mockopenai', upstream_model: 'synth:tokens=60,rate=40' },
          'rate-limited-once': { provider: 'mockopenai', upstream_model: 'synth:tokens=4,status=429,retry_after=1,fail_first=1' },
          'breaks-midway': { provider: 'mockopenai', upstream_model: 'synth:tokens=10,error_after=3' },
          'auth-broken': { provider: 'mockopenai', upstream_model: 'synth:status=401' },
        },
        socketio: { namespaces: { '/': { dialects: ['chat', 'llm'], auth: 'required' } } },
        limits: { messages_per_minute: 100000 },
      },
    });
  });
  after(async () => {
    for (const so of sockets) so.disconnect();
    await s?.stop();
    await mock?.stop();
  });

  test('the seed\'s client streams claude-3 (the mock\'s Anthropic) over polling upgraded to WebSocket', async () => {
    const p = page();
    const socket = track(seedClient(s.url, token, p));
    const ev = recordEvents(socket);
    await p.console.waitFor(/^Connected to OpenClaw Gateway$/);
    const done = await ev.until((r) => r.event === 'chat:complete' || r.event === 'chat:error');
    assert.equal(done.event, 'chat:complete', JSON.stringify(done));
    const { text, usage, complete } = checkStream(ev.seen, done.data.requestId, { chunks: 12 });
    assert.equal(text, synthText(12));
    assert.equal(p.response, synthText(12), 'appendToResponse got every chunk, in order');
    // The mock's Anthropic reports usage: 10 input tokens, 12 output tokens.
    assert.deepEqual([usage.promptTokens, usage.completionTokens], [10, 12]);
    assert.equal(usage.estimated, undefined, 'the provider\'s figures, not an estimate');
    assert.equal(complete.cost_usd, (10 * 1 + 12 * 5) / 1e6);
    assert.deepEqual(p.console.text(), ['Connected to OpenClaw Gateway', `Chat complete ${JSON.stringify(usage)}`]);
    assert.equal(socket.io.engine.transport.name, 'websocket', 'upgraded from polling');
    // The upstream got the seed's message.
    const log = await mock.log();
    const req = log.filter((r) => r.scenario === 'synth:tokens=12').at(-1);
    assert.deepEqual(req.body.messages, [{ role: 'user', content: 'Hello!' }]);
    socket.disconnect();
  });

  test('the demo model, answered locally', async () => {
    const p = page();
    const socket = track(seedClient(s.url, token, {
      ...p,
      request: { model: 'demo', messages: [{ role: 'user', content: 'Hello!' }] },
    }));
    const ev = recordEvents(socket);
    const done = await ev.until((r) => r.event === 'chat:complete' || r.event === 'chat:error');
    assert.equal(done.event, 'chat:complete', JSON.stringify(done));
    const { text, usage } = checkStream(ev.seen, done.data.requestId);
    const chunks = ev.of('requestId', done.data.requestId, 'chat:chunk').length - 1;
    assert.ok(text.length > 40, `a real answer: ${text}`);
    assert.equal(p.response, text);
    assert.equal(usage.completionTokens, chunks, 'the demo model counts one token per chunk');
    assert.ok(usage.promptTokens >= 1);
    assert.equal(done.data.model, 'demo');
    socket.disconnect();
  });

  test('abort stops the stream and the provider; chat:error says aborted', async () => {
    const p = page();
    const marker = uniq('abort');
    const socket = track(seedClient(s.url, token, {
      ...p,
      request: { model: 'slow', messages: [{ role: 'user', content: marker }] },
    }));
    const ev = recordEvents(socket);
    const start = await ev.until((r) => r.event === 'chat:start');
    const requestId = start.data.requestId;
    await ev.until((r) => r.event === 'chat:chunk' && r.data.requestId === requestId);
    await mock.wait(marker, 'streaming', 3000);
    socket.emit('abort', { requestId });
    const end = await ev.until((r) => ['chat:error', 'chat:complete'].includes(r.event) && r.data.requestId === requestId);
    assert.equal(end.event, 'chat:error');
    assertFields(end.data, { requestId: 'string', error: 'string', retryable: 'boolean', code: 'string' }, 'chat:error');
    assert.deepEqual([end.data.error, end.data.code, end.data.retryable], ['aborted', 'CANCELLED', false]);
    const r = await mock.wait(marker, 'aborted', 3000);
    assert.equal(r.end, 'client_closed');
    assert.ok(r.tokens_sent < 1000);
    // Nothing of that stream after its end: a round trip later there is still none.
    const endAt = ev.seen.indexOf(end);
    socket.emit('abort', { requestId: 'no-such-request' });
    const nf = await ev.until((x) => x.event === 'chat:error' && x.data.requestId === 'no-such-request');
    assert.equal(nf.data.code, 'NOT_FOUND');
    assert.equal(nf.data.retryable, false);
    assert.deepEqual(ev.seen.slice(endAt + 1).filter((x) => x.data?.requestId === requestId), []);
    assert.ok(p.response.startsWith('tok1 '));
    assert.deepEqual(p.console.text().filter((l) => l.startsWith('Chat error')), ['Chat error aborted', `Chat error ${nf.data.error}`]);
    socket.disconnect();
  });

  test('a retryable error: the seed\'s retry placeholder re-sends and the retry streams', async () => {
    const p = page();
    let retries = 0;
    const request = { model: 'rate-limited-once', messages: [{ role: 'user', content: uniq('retry') }] };
    const socket = track(seedClient(s.url, token, {
      ...p,
      request,
      onRetry: (sock) => { retries++; sock.emit('chat', request); },
    }));
    const ev = recordEvents(socket);
    const err = await ev.until((r) => r.event === 'chat:error');
    assertFields(err.data, { requestId: 'string', error: 'string', retryable: 'boolean', code: 'string', retry_after_ms: 'number' }, 'chat:error');
    assert.equal(err.data.retryable, true);
    assert.equal(err.data.code, 'UPSTREAM_RATE_LIMITED');
    assert.equal(err.data.retry_after_ms, 1000);
    const done = await ev.until((r) => r.event === 'chat:complete');
    assert.notEqual(done.data.requestId, err.data.requestId, 'the retry is a new request');
    assert.equal(checkStream(ev.seen, done.data.requestId, { chunks: 4 }).text, synthText(4));
    assert.equal(retries, 1);
    assert.equal(p.response, synthText(4));
    socket.disconnect();
  });

  test('errors: mid-stream failure, a provider refusing, an unknown model, a bad payload', async () => {
    const p = page();
    const socket = track(seedClient(s.url, token, {
      ...p,
      request: { model: 'breaks-midway', requestId: 'mid', messages: [{ role: 'user', content: 'x' }] },
    }));
    const ev = recordEvents(socket);
    const mid = await ev.until((r) => r.event === 'chat:error' && r.data.requestId === 'mid');
    const chunks = ev.of('requestId', 'mid', 'chat:chunk');
    assert.deepEqual(chunks.map((r) => r.data.content), ['tok1 ', 'tok2 ', 'tok3 '], 'the text before the failure');
    assert.equal(ev.of('requestId', 'mid', 'chat:complete').length, 0);
    assert.equal(mid.data.code, 'UPSTREAM_ERROR');
    assert.equal(mid.data.retryable, true);
    assert.equal(typeof mid.data.error, 'string');

    socket.emit('chat', { model: 'auth-broken', requestId: 'key', messages: [{ role: 'user', content: 'x' }] });
    const key = await ev.until((r) => r.event === 'chat:error' && r.data.requestId === 'key');
    assert.deepEqual([key.data.code, key.data.retryable], ['UPSTREAM_AUTH', false]);

    socket.emit('chat', { model: 'gpt-5-nope', messages: [{ role: 'user', content: 'x' }] });
    const unknown = await ev.until((r) => r.event === 'chat:error' && r.data.code === 'UNKNOWN_MODEL');
    assertFields(unknown.data, { requestId: 'string', error: 'string', retryable: 'boolean' }, 'chat:error');
    assert.equal(unknown.data.retryable, false);
    assert.match(unknown.data.error, /gpt-5-nope/);

    // A payload naming no request: the seed's `error` {message} [000 L86].
    socket.emit('chat', 'not an object');
    const bad = await ev.until((r) => r.event === 'error');
    assertFields(bad.data, { message: 'string' }, 'error');
    assert.equal(bad.data.code, 'BAD_REQUEST');
    // messages of the wrong shape, with a requestId: chat:error for that request.
    socket.emit('chat', { model: 'gpt-mock', requestId: 'shape', messages: 'Hello!' });
    const shape = await ev.until((r) => r.event === 'chat:error' && r.data.requestId === 'shape');
    assert.equal(shape.data.code, 'BAD_REQUEST');
    assert.match(shape.data.error, /messages/);
    // The seed's handler logged each chat:error; only the retryable one asked for a retry.
    assert.equal(p.console.text().filter((l) => l.startsWith('Chat error ')).length, 4);
    socket.disconnect();
  });

  test('long-polling only (a proxy that blocks WebSocket): three streams, every chunk in order', async () => {
    const socket = track(io(s.url, { auth: { token }, transports: ['polling'], reconnection: false }));
    const ev = recordEvents(socket);
    const runs = { 'claude-3': 12, 'gpt-mock': 7, paced: 60 };
    for (const model of Object.keys(runs))
      socket.emit('chat', { model, requestId: `poll-${model}`, messages: [{ role: 'user', content: model }] });
    await Promise.all(Object.keys(runs).map((m) => ev.until((r) => r.event === 'chat:complete' && r.data.requestId === `poll-${m}`, 20000)));
    for (const [model, n] of Object.entries(runs)) assert.equal(checkStream(ev.seen, `poll-${model}`).text, synthText(n), model);
    assert.equal(socket.io.engine.transport.name, 'polling');
    socket.disconnect();
  });

  test('a bad token: connect_error "Authentication failed", no stream', async () => {
    const p = page();
    const socket = track(seedClient(s.url, 'not-a-valid-token', p));
    const ev = recordEvents(socket);
    const [err] = await once(socket, 'connect_error');
    assert.equal(err.message, 'Authentication failed');
    assert.equal(socket.connected, false);
    assert.deepEqual(ev.seen, []);
    assert.deepEqual(p.console.text(), []);
    socket.disconnect();
  });

  test('several streams at once on one connection and across connections, each on its own provider', async () => {
    const models = ['claude-3', 'gpt-mock', 'gemini-mock', 'ollama-mock', 'demo'];
    const expect = { 'claude-3': 12, 'gpt-mock': 7, 'gemini-mock': 9, 'ollama-mock': 5 };
    const clients = [0, 1].map((c) => {
      const p = page();
      const socket = track(seedClient(s.url, jwt({ sub: `seed000-${c}` }), {
        ...p,
        request: { model: 'demo', requestId: `c${c}-first`, messages: [{ role: 'user', content: `first of ${c}` }] },
      }));
      return { p, socket, ev: recordEvents(socket) };
    });
    for (const [c, { socket }] of clients.entries())
      for (const m of models) socket.emit('chat', { model: m, requestId: `c${c}-${m}`, messages: [{ role: 'user', content: `${m} ${c}` }] });
    for (const [c, { ev, p }] of clients.entries()) {
      const ids = [`c${c}-first`, ...models.map((m) => `c${c}-${m}`)];
      await Promise.all(ids.map((id) => ev.until((r) => r.data?.requestId === id && ['chat:complete', 'chat:error'].includes(r.event), 20000)));
      let all = '';
      for (const id of ids) {
        const { text } = checkStream(ev.seen, id);
        const m = id.slice(`c${c}-`.length);
        if (expect[m]) assert.equal(text, synthText(expect[m]), id);
        else assert.ok(text.length > 20, id);
        all += text;
      }
      // appendToResponse saw every chunk of every stream: the same text, interleaved.
      assert.equal(p.response.length, all.length);
      // Streams interleave (the two demo streams run side by side): more switches from one
      // stream's chunk to another's than one after another would make.
      const order = ev.seen.filter((r) => r.event === 'chat:chunk').map((r) => r.data.requestId);
      const switches = order.filter((id, i) => i > 0 && id !== order[i - 1]).length;
      assert.ok(switches > ids.length - 1, `${switches} switches`);
    }
    for (const { socket } of clients) socket.disconnect();
  });

  // A stream whose end was written to a connection that then broke is kept until its end is
  // delivered (Engine.IO's delivery positions), so the recovery replays the tail.
  test('the client\'s own reconnection after the stream ended with its tail in flight', async () => {
    const socket = track(io(s.url, { auth: { token }, transports: ['websocket'], reconnectionDelay: 100, reconnectionDelayMax: 200 }));
    const ev = recordEvents(socket);
    const marker = uniq('tail');
    socket.emit('chat', { requestId: 'tail', model: 'paced', messages: [{ role: 'user', content: marker }] });
    await ev.until((r) => r.event === 'chat:chunk' && r.data.content === 'tok3 ');
    const tcp = socket.io.engine.transport.ws._socket;
    tcp.pause(); // the link stalls: the tail waits in buffers
    await mock.wait(marker, 'complete', 10000); // the stream ends meanwhile
    socket.io.engine.close(); // and the link breaks; socket.io-client recovers
    tcp.destroy();
    const done = await ev.until((r) => r.event === 'chat:complete' && r.data.requestId === 'tail', 3000);
    assert.ok(done);
    assert.equal(socket.recovered, true);
    assert.equal(checkStream(ev.seen, 'tail').text, synthText(60));
    socket.disconnect();
  });

  test('the client\'s own reconnection: a dropped connection resumes the stream where it was', async () => {
    const p = page();
    const socket = track(seedClient(s.url, token, {
      ...p,
      request: { model: 'paced', messages: [{ role: 'user', content: uniq('reconnect') }] },
    }));
    const ev = recordEvents(socket);
    const start = await ev.until((r) => r.event === 'chat:start');
    const requestId = start.data.requestId;
    await ev.until((r) => r.event === 'chat:chunk' && r.data.content === 'tok5 ');
    const reasons = [];
    socket.on('disconnect', (reason) => reasons.push(reason));
    socket.io.engine.close(); // the network goes: socket.io-client reconnects by itself
    const done = await ev.until((r) => r.event === 'chat:complete' || r.event === 'chat:error', 20000);
    assert.equal(done.event, 'chat:complete', JSON.stringify(done));
    assert.equal(done.data.requestId, requestId);
    assert.equal(reasons.length, 1);
    assert.equal(socket.recovered, true, 'connection state recovery');
    // What was missed may come merged into fewer chunks (the journal merges what waited).
    const { text } = checkStream(ev.seen, requestId);
    assert.equal(text, synthText(60), 'every chunk once, in order, across the reconnect');
    assert.equal(p.response, synthText(60));
    assert.deepEqual(p.console.text().filter((l) => l.startsWith('Connected')), ['Connected to OpenClaw Gateway', 'Connected to OpenClaw Gateway']);
    socket.disconnect();
  });
});
