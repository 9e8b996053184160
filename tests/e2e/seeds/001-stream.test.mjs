// Seed 001 (the `stream` dialect, Socket.IO namespace /stream, no token): the seed's own
// client, its "Usage Example (JavaScript)" as printed (the `io(...)` call, the
// stream_request sent on connect, the four handlers with their console lines), unchanged
// but for the URL, the request and the assertions, against sluice streaming from the
// agents of seed 001 (on the mock upstream's providers) and from the demo model: running
// token counts and costs, several streams at once, errors before and during a stream, the
// namespace's model allow-list, per-address limits and budgets of `auth: none`, and the
// seed's "abandoned streams cleaned up on disconnect". (The seed's client does not reconnect.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { io } from 'socket.io-client';
import { startMock, startSluice } from '../lib/harness.mjs';
import { mockProviders } from '../lib/providers.mjs';
import { assertFields, assertIso, once, recordEvents, recordingConsole, synthText, uniq } from '../lib/seeds.mjs';

// The seed's usage example [001 L290-330]. `request` replaces the seed's literal request
// when a test sends another one.
function seedClient(URL, { console, request }) {
  // Connect
  const socket = io(URL, {
    transports: ['websocket'],
  });

  let fullResponse = '';

  // Send request
  socket.on('connect', () => {
    socket.emit('stream_request', request ?? {
      message: 'Explain quantum computing',
      temperature: 0.7,
      agentRole: 'analyst',
    });
  });

  // Handle stream start
  socket.on('stream_start', (data) => {
    console.log(`Streaming from ${data.model}...`);
  });

  // Handle chunks
  socket.on('stream_chunk', (data) => {
    fullResponse += data.chunk;
    console.log(`Tokens: ${data.tokensUsed}, Cost: $${data.estimatedCost.toFixed(4)}`);
    // Update UI with data.chunk
  });

  // Handle completion
  socket.on('stream_complete', (data) => {
    console.log(`Complete! Tokens: ${data.totalTokens}, Cost: $${data.totalCost.toFixed(4)}, Latency: ${data.latencyMs}ms`);
    socket.disconnect();
  });

  // Handle errors
  socket.on('stream_error', (data) => {
    console.error(`Error: ${data.error}`);
    socket.disconnect();
  });

  return { socket, response: () => fullResponse };
}

// The seed's DTOs [001 L106-155], each field with the type the seed gives it.
const START = { sessionId: 'string', model: 'string', agentRole: 'string|null', timestamp: 'string' };
const CHUNK = { sessionId: 'string', chunk: 'string', model: 'string', tokensUsed: 'number', estimatedCost: 'number', timestamp: 'string' };
const COMPLETE = { sessionId: 'string', fullText: 'string', totalTokens: 'number', totalCost: 'number', latencyMs: 'number', timestamp: 'string' };
const ERROR = { sessionId: 'string', error: 'string', code: 'string', timestamp: 'string' };

// Runs the seed's client until it disconnects itself (after stream_complete or stream_error).
async function run(url, request) {
  const c = recordingConsole();
  const client = seedClient(url, { console: c, request });
  const ev = recordEvents(client.socket);
  await once(client.socket, 'disconnect', 20000);
  return { ...client, console: c, ev };
}

// One stream's events checked against the DTOs and the order start, chunk*, complete.
function checkStream(seen, sessionId) {
  const mine = seen.filter((r) => r.data?.sessionId === sessionId);
  assert.equal(mine[0].event, 'stream_start');
  assertFields(mine[0].data, START, 'stream_start');
  assertIso(mine[0].data.timestamp);
  const chunks = mine.slice(1, -1);
  for (const r of chunks) {
    assert.equal(r.event, 'stream_chunk');
    assertFields(r.data, CHUNK, 'stream_chunk');
    assertIso(r.data.timestamp);
  }
  const end = mine.at(-1);
  assert.equal(end.event, 'stream_complete', JSON.stringify(end));
  assertFields(end.data, COMPLETE, 'stream_complete');
  assertIso(end.data.timestamp);
  return { start: mine[0].data, chunks: chunks.map((r) => r.data), complete: end.data };
}

const AGENTS = {
  analyst: { model: 'gpt-4o', temperature: 0.3, system: 'You are the Analyst.' },
  relational: { model: 'gpt-4o', temperature: 0.7, system: 'You are the Relational agent.' },
  ethics: { model: 'gemini-flash', temperature: 0.5, system: 'You are the Ethics agent.' },
  synthesiser: { model: 'claude-sonnet', temperature: 0.7, system: 'You are the Synthesiser.' },
  verification: { model: 'grok', temperature: 0.2, system: 'You are the Verification agent.' },
};

describe('seed 001: the stream dialect', () => {
  let mock;
  let s;
  let url;

  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: { ...mockProviders(mock.url), demo: { kind: 'demo', tokens_per_second: 400 } },
        // Seed 001's prices [001 L227-229], per million tokens.
        models: {
          'gpt-4o': { provider: 'mockopenai', upstream_model: 'synth:tokens=8', price: { input_per_1m: 2, output_per_1m: 10 } },
          'claude-sonnet': { provider: 'mockanthropic', upstream_model: 'synth:tokens=6', price: { input_per_1m: 3, output_per_1m: 15 } },
          'gemini-flash': { provider: 'mockgemini', upstream_model: 'synth:tokens=5' },
          grok: { provider: 'mockopenai', upstream_model: 'synth:tokens=4,first_byte_ms=100', price: { input_per_1m: 2, output_per_1m: 10 } },
          slow: { provider: 'mockopenai', upstream_model: 'synth:tokens=1000,rate=20' },
          'breaks-midway': { provider: 'mockollama', upstream_model: 'synth:tokens=10,error_after=4' },
          'not-listed': { provider: 'mockopenai', upstream_model: 'synth:tokens=3' },
        },
        agents: AGENTS,
        socketio: {
          namespaces: {
            '/stream': {
              dialects: ['stream'],
              auth: 'none',
              models: [...Object.keys(AGENTS), 'demo', 'slow', 'breaks-midway'],
            },
          },
        },
        // The seed's client does not reconnect: a stream it left stops soon.
        resume: { window: '1s' },
        limits: { messages_per_minute: 100000 },
      },
    });
    url = `${s.wsUrl}/stream`;
  });
  after(async () => {
    await s?.stop();
    await mock?.stop();
  });

  test('the seed\'s request (agentRole analyst) streams with running tokens and cost', async () => {
    const { ev, response, console: c } = await run(url);
    const start = ev.seen[0];
    const { chunks, complete } = checkStream(ev.seen, start.data.sessionId);
    assert.deepEqual([start.data.model, start.data.agentRole], ['gpt-4o', 'analyst']);
    assert.equal(response(), synthText(8));
    assert.equal(complete.fullText, synthText(8));
    assert.equal(chunks.length, 8);
    // tokensUsed: input (estimated until the provider reports it) + output so far, +1 a chunk.
    const input = chunks[0].tokensUsed - 1;
    assert.ok(input >= 1);
    chunks.forEach((ch, i) => {
      assert.equal(ch.tokensUsed, input + i + 1);
      assert.equal(ch.model, 'gpt-4o');
      assert.ok(Math.abs(ch.estimatedCost - (input * 2 + (i + 1) * 10) / 1e6) < 1e-9, `estimatedCost of chunk ${i}`);
    });
    // The final figures are the provider's: 10 input tokens, 8 output tokens.
    assert.equal(complete.totalTokens, 18);
    assert.ok(Math.abs(complete.totalCost - (10 * 2 + 8 * 10) / 1e6) < 1e-12);
    assert.ok(complete.latencyMs >= 0 && complete.latencyMs < 10000);
    // The seed's console lines: one per chunk, toFixed(4) on every cost.
    const lines = c.text();
    assert.equal(lines[0], 'Streaming from gpt-4o...');
    assert.deepEqual(lines.slice(1, 9), chunks.map((ch) => `Tokens: ${ch.tokensUsed}, Cost: $${ch.estimatedCost.toFixed(4)}`));
    assert.equal(lines[9], `Complete! Tokens: 18, Cost: $0.0001, Latency: ${complete.latencyMs}ms`);
    assert.equal(lines.length, 10);
    // The upstream got the agent's system prompt, the request's temperature and the message.
    const req = (await mock.log()).filter((r) => r.scenario === 'synth:tokens=8').at(-1);
    assert.equal(req.body.temperature, 0.7);
    assert.deepEqual(req.body.messages, [
      { role: 'system', content: 'You are the Analyst.' },
      { role: 'user', content: 'Explain quantum computing' },
    ]);
  });

  test('systemPrompt, history and the agent\'s temperature reach the provider', async () => {
    const marker = uniq('history');
    const { ev } = await run(url, {
      message: marker,
      systemPrompt: 'Answer in French.',
      agentRole: 'synthesiser',
      enableTools: true,
      history: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }],
    });
    const { start, complete } = checkStream(ev.seen, ev.seen[0].data.sessionId);
    assert.deepEqual([start.model, start.agentRole], ['claude-sonnet', 'synthesiser']);
    assert.equal(complete.fullText, synthText(6));
    const req = await mock.wait(marker, 'ended');
    assert.equal(req.body.system, 'You are the Synthesiser.\n\nAnswer in French.');
    assert.equal(req.body.temperature, 0.7);
    assert.deepEqual(req.body.messages, [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello' },
      { role: 'user', content: marker },
    ]);
  });

  test('each of the five agents, and the demo model', async () => {
    const expect = { analyst: 8, relational: 8, ethics: 5, synthesiser: 6, verification: 4 };
    for (const [role, n] of Object.entries(expect)) {
      const { ev, response } = await run(url, { message: `as ${role}`, agentRole: role });
      const { start, complete } = checkStream(ev.seen, ev.seen[0].data.sessionId);
      assert.equal(start.agentRole, role);
      assert.equal(start.model, AGENTS[role].model);
      assert.equal(response(), synthText(n), role);
      assert.equal(complete.fullText, synthText(n));
      if (role === 'ethics') assert.equal(complete.totalCost, 0, 'an unpriced model costs 0, never absent');
    }
    const { ev, response } = await run(url, { message: 'Explain quantum computing', model: 'demo' });
    const { start, chunks, complete } = checkStream(ev.seen, ev.seen[0].data.sessionId);
    assert.deepEqual([start.model, start.agentRole], ['demo', null]);
    assert.ok(response().length > 40);
    assert.equal(complete.fullText, response());
    chunks.forEach((ch, i) => assert.equal(ch.tokensUsed, chunks[0].tokensUsed + i, 'one more token a chunk'));
    // The final count is the demo model's own (its input count differs from the estimate).
    assert.ok(complete.totalTokens > chunks.length);
    chunks.forEach((ch) => assert.equal(ch.estimatedCost, 0));
  });

  test('several streams at once on one connection, told apart by sessionId', async () => {
    const socket = io(url, { transports: ['websocket'] });
    const ev = recordEvents(socket);
    await once(socket, 'connect');
    const roles = ['analyst', 'ethics', 'synthesiser', 'verification'];
    for (const role of roles) socket.emit('stream_request', { message: `together ${role}`, agentRole: role });
    socket.emit('stream_request', { message: 'together demo', model: 'demo' });
    const ends = [];
    while (ends.length < 5) {
      const r = await ev.until((x) => ['stream_complete', 'stream_error'].includes(x.event) && !ends.includes(x), 20000);
      ends.push(r);
    }
    assert.deepEqual(ends.map((r) => r.event), Array(5).fill('stream_complete'), JSON.stringify(ends));
    const ids = new Set(ends.map((r) => r.data.sessionId));
    assert.equal(ids.size, 5, 'five streams, five sessionIds');
    const byRole = {};
    for (const id of ids) {
      const { start, complete } = checkStream(ev.seen, id);
      byRole[start.agentRole ?? start.model] = complete.fullText;
    }
    assert.deepEqual(Object.keys(byRole).sort(), [...roles, 'demo'].sort());
    assert.equal(byRole.analyst, synthText(8));
    assert.equal(byRole.ethics, synthText(5));
    assert.equal(byRole.synthesiser, synthText(6));
    assert.equal(byRole.verification, synthText(4));
    assert.ok(byRole.demo.length > 40);
    socket.disconnect();
  });

  test('refused before the stream: each stream_error has a fresh sessionId and the provider is not called', async () => {
    const cases = [
      [{ message: 'x', agentRole: 'philosopher' }, 'UNKNOWN_MODEL', /philosopher/],
      [{ temperature: 0.7 }, 'BAD_REQUEST', /message/],
      [{ message: 'x', temperature: 3 }, 'BAD_REQUEST', /temperature/],
      [{ message: 'x', history: 'earlier' }, 'BAD_REQUEST', /history/],
      // Exists, but not on this namespace's allow-list.
      [{ message: uniq('not-listed'), model: 'not-listed' }, 'UNKNOWN_MODEL', /not-listed/],
    ];
    const seen = new Set();
    for (const [request, code, re] of cases) {
      const { ev, console: c } = await run(url, request);
      assert.equal(ev.seen.length, 1, JSON.stringify(ev.seen));
      const [err] = ev.seen;
      assert.equal(err.event, 'stream_error');
      assertFields(err.data, ERROR, 'stream_error');
      assertIso(err.data.timestamp);
      assert.equal(err.data.code, code, JSON.stringify(err.data));
      assert.match(err.data.error, re);
      assert.ok(err.data.sessionId.length >= 8 && !seen.has(err.data.sessionId), 'a fresh sessionId');
      seen.add(err.data.sessionId);
      assert.deepEqual(c.text(), [`Error: ${err.data.error}`]);
    }
    const log = await mock.log();
    assert.ok(!log.some((r) => r.scenario === 'synth:tokens=3'), 'the unlisted model never reached the provider');
  });

  test('a provider failing mid-stream: stream_error with the stream\'s sessionId after its chunks', async () => {
    const { ev, response, console: c } = await run(url, { message: 'x', model: 'breaks-midway' });
    const start = ev.seen[0];
    assert.equal(start.event, 'stream_start');
    const id = start.data.sessionId;
    const chunks = ev.of('sessionId', id, 'stream_chunk');
    assert.equal(chunks.length, 4);
    assert.equal(response(), synthText(4));
    const err = ev.seen.at(-1);
    assert.equal(err.event, 'stream_error');
    assertFields(err.data, ERROR, 'stream_error');
    assert.equal(err.data.sessionId, id);
    assert.equal(err.data.code, 'UPSTREAM_ERROR');
    assert.equal(err.data.retryable, true);
    assert.equal(c.text().at(-1), `Error: ${err.data.error}`);
  });

  test('a client that leaves mid-stream: its stream is stopped upstream (resume.window later)', async () => {
    const marker = uniq('abandon');
    const socket = io(url, { transports: ['websocket'] });
    const ev = recordEvents(socket);
    socket.emit('stream_request', { message: marker, model: 'slow' });
    await ev.until((r) => r.event === 'stream_chunk');
    await mock.wait(marker, 'streaming', 3000);
    const t0 = Date.now();
    socket.disconnect();
    const r = await mock.wait(marker, 'aborted', 6000);
    assert.equal(r.end, 'client_closed');
    assert.ok(Date.now() - t0 < 5000);
    assert.ok(r.tokens_sent < 1000);
  });
});

describe('seed 001: auth none, limits per address', () => {
  let mock;
  let s;
  let url;

  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: mockProviders(mock.url),
        models: {
          slow: { provider: 'mockopenai', upstream_model: 'synth:tokens=1000,rate=20' },
          // A dollar a token: any prompt is over the budget.
          pricey: { provider: 'mockopenai', upstream_model: 'synth:tokens=3', price: { input_per_1m: 1e6, output_per_1m: 1e6 } },
        },
        socketio: { namespaces: { '/stream': { dialects: ['stream'], auth: 'none' } } },
        resume: { window: 0 },
        limits: { messages_per_minute: 100000, max_streams_per_user: 2 },
        budgets: { usd_per_day: 0.01, state_file: null },
      },
    });
    url = `${s.wsUrl}/stream`;
  });
  after(async () => {
    await s?.stop();
    await mock?.stop();
  });

  test('budget exceeded is refused before the provider is called', async () => {
    const marker = uniq('budget');
    const { ev } = await run(url, { message: marker, model: 'pricey' });
    assert.equal(ev.seen.length, 1);
    const err = ev.seen[0];
    assert.equal(err.event, 'stream_error');
    assertFields(err.data, ERROR, 'stream_error');
    assert.equal(err.data.code, 'BUDGET_EXCEEDED');
    assert.ok(!(await mock.log()).some((r) => JSON.stringify(r.body).includes(marker)), 'no upstream request');
  });

  test('every client without a token is anon:<address>: two connections share its stream limit', async () => {
    const a = io(url, { transports: ['websocket'], forceNew: true });
    const b = io(url, { transports: ['websocket'], forceNew: true });
    const ea = recordEvents(a);
    const eb = recordEvents(b);
    a.emit('stream_request', { message: 'one', model: 'slow' });
    await ea.until((r) => r.event === 'stream_chunk');
    b.emit('stream_request', { message: 'two', model: 'slow' });
    await eb.until((r) => r.event === 'stream_chunk');
    b.emit('stream_request', { message: 'three', model: 'slow' });
    const err = await eb.until((r) => r.event === 'stream_error');
    assertFields(err.data, ERROR, 'stream_error');
    assert.equal(err.data.code, 'RATE_LIMITED');
    assert.equal(typeof err.data.retry_after_ms, 'number');
    assert.match(err.data.error, /stream/);
    a.disconnect();
    b.disconnect();
  });
});
