// The native protocol against the demo model: streams, ids and seq, every bad input.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, session, startSluice, textOf } from './lib/harness.mjs';

function assertSeq(events) {
  events.forEach((e, i) => assert.equal(e.seq, i + 1, `seq of ${JSON.stringify(e)}`));
}

describe('native protocol', () => {
  let s;
  before(async () => {
    s = await startSluice({
      config: {
        providers: { demo: { kind: 'demo', tokens_per_second: 400 } },
        models: { demo: { provider: 'demo', price: { input_per_1m: 1, output_per_1m: 2 } } },
        agents: { analyst: { model: 'demo', system: 'You are careful.', temperature: 0.2 } },
        limits: { max_streams_per_connection: 3, messages_per_minute: 1000 },
      },
    });
  });
  after(async () => { await s.stop(); });

  test('a chat streams start, progress, deltas and done with seq 1, 2, 3...', async () => {
    const [c] = await session(s);
    c.send({ type: 'chat', id: 'c1', model: 'demo', messages: [{ role: 'user', content: 'Tell me about rivers' }] });
    const ev = await c.collect('c1');
    assertSeq(ev);
    assert.equal(ev[0].type, 'start');
    assert.equal(ev[0].model, 'demo');
    assert.equal(ev[0].provider, 'demo');
    assert.ok(ev[0].epoch);
    assert.ok(ev.some((e) => e.type === 'progress' && e.step === 'connecting'));
    const deltas = ev.filter((e) => e.type === 'delta');
    assert.ok(deltas.length >= 10);
    const done = ev.at(-1);
    assert.equal(done.type, 'done');
    assert.equal(done.finish_reason, 'stop');
    assert.equal(done.usage.output_tokens, deltas.length);
    assert.ok(done.usage.input_tokens > 0);
    assert.ok(done.cost_usd > 0);
    assert.equal(typeof done.ttft_ms, 'number');
    assert.ok(done.latency_ms >= done.ttft_ms);
    assert.match(textOf(ev), /rivers/);
    c.close();
  });

  test('the demo answer depends on the prompt, and only on it', async () => {
    const [c] = await session(s);
    const ask = async (id, q) => {
      c.send({ type: 'chat', id, message: q });
      return textOf(await c.collect(id));
    };
    const a1 = await ask('a1', 'What is a gateway?');
    const a2 = await ask('a2', 'What is a gateway?');
    const b = await ask('b', 'Explain backpressure to a child');
    assert.equal(a1, a2);
    assert.notEqual(a1, b);
    c.close();
  });

  test('several streams run at once on one connection, interleaved', async () => {
    const [c] = await session(s);
    for (const id of ['x', 'y', 'z']) c.send({ type: 'chat', id, message: `stream ${id}` });
    const results = await Promise.all(['x', 'y', 'z'].map((id) => c.collect(id)));
    for (const ev of results) {
      assertSeq(ev);
      assert.equal(ev.at(-1).type, 'done');
    }
    // Interleaving: the deltas of the streams are not delivered one stream after another.
    const order = c.all.filter((m) => m.type === 'delta').map((m) => m.id);
    const firstZ = order.indexOf('z');
    const lastX = order.lastIndexOf('x');
    assert.ok(firstZ < lastX, 'streams progressed together');
    c.close();
  });

  test('the server assigns ids when the client gives none', async () => {
    const [c] = await session(s);
    c.send({ type: 'chat', message: 'no id' });
    const start = await c.next('start');
    assert.ok(start.id);
    const ev = await c.collect(start.id);
    assert.equal(ev.at(-1).type, 'done');
    c.close();
  });

  test('max_tokens cuts the answer with finish_reason length', async () => {
    const [c] = await session(s);
    c.send({ type: 'chat', id: 'short', message: 'hello', max_tokens: 5 });
    const ev = await c.collect('short');
    assert.equal(ev.filter((e) => e.type === 'delta').length, 5);
    assert.equal(ev.at(-1).finish_reason, 'length');
    c.close();
  });

  test('agents resolve to their model', async () => {
    const [c, ready] = await session(s);
    assert.ok(ready.agents.some((a) => a.id === 'analyst' && a.model === 'demo'));
    c.send({ type: 'chat', id: 'ag', agent: 'analyst', message: 'analyse this' });
    const ev = await c.collect('ag');
    assert.equal(ev[0].model, 'demo');
    assert.equal(ev.at(-1).type, 'done');
    c.close();
  });

  test('cancel stops a stream: cancelled, then nothing more for it', async () => {
    const [c] = await session(s);
    c.send({ type: 'chat', id: 'long', message: 'a long answer please', max_tokens: 2000 });
    await c.next((m) => m.type === 'delta' && m.id === 'long');
    c.send({ type: 'cancel', id: 'long' });
    const ev = await c.collect('long');
    const last = ev.at(-1);
    assert.equal(last.type, 'cancelled');
    assert.ok(last.usage.output_tokens >= 1);
    // A ping round trip orders everything the server sent before it.
    c.send({ type: 'ping' });
    const pong = await c.next('pong');
    assert.equal(pong.streams, 0);
    assert.ok(!c.queue.some((m) => m.id === 'long'));
    c.close();
  });

  const bad = [
    ['not JSON', 'hello there', 'BAD_REQUEST', /JSON/],
    ['not an object', '[1,2,3]', 'BAD_REQUEST', /object/],
    ['no type', { id: 'q' }, 'BAD_REQUEST', /type/],
    ['unknown type', { type: 'dance' }, 'BAD_REQUEST', /unknown message type/],
    ['type not a string', { type: 7 }, 'BAD_REQUEST', /type/],
    ['no messages', { type: 'chat', id: 'm0' }, 'BAD_REQUEST', /messages/],
    ['messages not an array', { type: 'chat', id: 'm1', messages: 'hi' }, 'BAD_REQUEST', /array/],
    ['message not a string', { type: 'chat', id: 'm2', message: 42 }, 'BAD_REQUEST', /string/],
    ['bad role', { type: 'chat', id: 'm3', messages: [{ role: 'wizard', content: 'x' }] }, 'BAD_REQUEST', /role/],
    ['empty message', { type: 'chat', id: 'm4', message: '' }, 'EMPTY_MESSAGE', /empty/],
    ['blank message', { type: 'chat', id: 'm5', message: '   \n' }, 'EMPTY_MESSAGE', /empty/],
    ['empty messages', { type: 'chat', id: 'm6', messages: [] }, 'EMPTY_MESSAGE', /no user message/],
    ['max_tokens mistyped', { type: 'chat', id: 'm7', message: 'x', max_tokens: 'many' }, 'BAD_REQUEST', /max_tokens/],
    ['temperature out of range', { type: 'chat', id: 'm8', message: 'x', temperature: 9 }, 'BAD_REQUEST', /temperature/],
    ['id not a string', { type: 'chat', id: { a: 1 }, message: 'x' }, 'BAD_REQUEST', /id/],
    ['unknown model', { type: 'chat', id: 'm9', model: 'gpt-17', message: 'x' }, 'UNKNOWN_MODEL', /gpt-17/],
    ['unknown agent', { type: 'chat', id: 'm10', agent: 'ghost', message: 'x' }, 'UNKNOWN_MODEL', /agent/],
    ['cancel without id', { type: 'cancel' }, 'BAD_REQUEST', /id/],
    ['cancel of nothing', { type: 'cancel', id: 'nope' }, 'NOT_FOUND', /no running stream/],
    ['resume of nothing', { type: 'resume', id: 'nope', after: 3 }, 'NOT_FOUND', /resume/],
    ['auth again with a bad token', { type: 'auth', token: 'whatever' }, 'AUTH_FAILED', /session goes on/],
  ];
  for (const [name, msg, code, re] of bad) {
    test(`bad input: ${name} -> ${code}`, async () => {
      const [c] = await session(s);
      c.send(msg);
      const err = await c.next('error');
      assert.equal(err.code, code);
      assert.match(err.message, re);
      assert.equal(typeof err.retryable, 'boolean');
      if (typeof msg === 'object' && ['chat', 'cancel', 'resume'].includes(msg.type) && typeof msg.id === 'string') {
        assert.equal(err.id, msg.id);
      }
      // The session survives every bad input.
      c.send({ type: 'ping' });
      await c.next('pong');
      c.close();
    });
  }

  test('a duplicate id while the first runs is DUPLICATE_ID', async () => {
    const [c] = await session(s);
    c.send({ type: 'chat', id: 'dup', message: 'one', max_tokens: 2000 });
    await c.next((m) => m.type === 'start' && m.id === 'dup');
    c.send({ type: 'chat', id: 'dup', message: 'two' });
    const err = await c.next((m) => m.type === 'error' && m.seq === undefined);
    assert.equal(err.code, 'DUPLICATE_ID');
    assert.equal(err.id, 'dup');
    c.send({ type: 'cancel', id: 'dup' });
    await c.next((m) => m.type === 'cancelled');
    c.close();
  });

  test('more streams than the limit get TOO_MANY_STREAMS', async () => {
    const [c] = await session(s);
    for (const id of ['t1', 't2', 't3']) c.send({ type: 'chat', id, message: 'long', max_tokens: 2000 });
    c.send({ type: 'chat', id: 't4', message: 'one too many' });
    const err = await c.next((m) => m.type === 'error' && m.id === 't4');
    assert.equal(err.code, 'TOO_MANY_STREAMS');
    for (const id of ['t1', 't2', 't3']) c.send({ type: 'cancel', id });
    for (let i = 0; i < 3; i++) await c.next('cancelled');
    c.close();
  });

  test('application ping gets pong with the stream count', async () => {
    const [c] = await session(s);
    c.send({ type: 'ping' });
    assert.deepEqual(await c.next('pong'), { type: 'pong', streams: 0 });
    c.close();
  });

  test('a disconnect mid-stream detaches the session: its stream goes on for a resume', async () => {
    const [c, ready] = await session(s);
    const mark = s.mark();
    c.send({ type: 'chat', id: 'gone', message: 'talk for a while', max_tokens: 2000 });
    await c.next('delta');
    c.ws.terminate();
    await s.waitLog(new RegExp(`session.detached .*session=${ready.session} .*streams=1`), mark);
  });
});

describe('rate limit', () => {
  test('past messages_per_minute: RATE_LIMITED with retry_after_ms', async () => {
    const s = await startSluice({ config: { limits: { messages_per_minute: 3 } } });
    try {
      const [c] = await session(s);
      for (let i = 0; i < 4; i++) c.send({ type: 'cancel', id: `r${i}` });
      const codes = [];
      for (let i = 0; i < 4; i++) codes.push((await c.next('error')).code);
      assert.deepEqual(codes, ['NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND', 'RATE_LIMITED']);
      const limited = c.all.find((m) => m.code === 'RATE_LIMITED');
      assert.ok(limited.retry_after_ms > 0);
      assert.equal(limited.retryable, true);
      c.close();
      // Before authentication the same budget applies, and running out ends the connection.
      const anon = await Client.open(`${s.wsUrl}/ws`);
      for (let i = 0; i < 4; i++) anon.send({ type: 'chat', message: 'hi' });
      for (let i = 0; i < 3; i++) assert.equal((await anon.next('error')).code, 'AUTH_REQUIRED');
      const { code, reason } = await anon.waitClose();
      assert.equal(code, 4029);
      assert.match(reason, /before authentication/);
    } finally {
      await s.stop();
    }
  });
});
