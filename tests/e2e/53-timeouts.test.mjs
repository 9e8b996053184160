// Connect, first-byte and idle timeouts surface as UPSTREAM_TIMEOUT (retryable); broken
// connections and truncated streams as UPSTREAM_ERROR; a slow but steady stream is fine.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { session, startMock, startSluice, textOf } from './lib/harness.mjs';
import { KEY } from './lib/providers.mjs';

let seq = 0;
const uniq = (what) => `${what}-${process.pid}-${Date.now()}-${++seq}`;
const requestsWith = (log, marker) => log.filter((r) => JSON.stringify(r.body ?? '').includes(marker));

describe('timeouts and broken upstreams', () => {
  let mock;
  let s;
  let c;
  let blackhole;
  const sockets = new Set();
  before(async () => {
    mock = await startMock();
    // Accepts TCP connections and never says a word: a TLS handshake to it never ends.
    blackhole = net.createServer((sock) => { sockets.add(sock); sock.on('error', () => {}); });
    await new Promise((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    const quick = { api_key: KEY, max_retries: 0, first_byte_timeout: '300ms', idle_timeout: '300ms' };
    s = await startSluice({
      config: {
        providers: {
          quick: { kind: 'openai', base_url: `${mock.url}/v1`, ...quick },
          'quick-retry': { kind: 'anthropic', base_url: mock.url, ...quick, max_retries: 1, retry_base: '10ms' },
          'quick-gemini': { kind: 'gemini', base_url: mock.url, ...quick },
          silent: {
            kind: 'openai', base_url: `https://127.0.0.1:${blackhole.address().port}/v1`,
            api_key: KEY, max_retries: 0, connect_timeout: '300ms', first_byte_timeout: '20s',
          },
          refused: { kind: 'openai', base_url: 'http://127.0.0.1:1/v1', api_key: KEY, max_retries: 0 },
        },
        models: {
          'no-first-byte': { provider: 'quick', upstream_model: 'synth:tokens=5,first_byte_ms=5000' },
          'no-first-byte-retried': { provider: 'quick-retry', upstream_model: 'synth:tokens=5,first_byte_ms=5000' },
          stalls: { provider: 'quick-gemini', upstream_model: 'synth:tokens=10,stall_after=2' },
          steady: { provider: 'quick', upstream_model: 'synth:tokens=12,rate=12' },
          'no-connect': { provider: 'silent', upstream_model: 'synth:tokens=3' },
          'no-server': { provider: 'refused', upstream_model: 'synth:tokens=3' },
          truncated: { provider: 'quick', upstream_model: 'synth:tokens=5,truncate_after=2' },
          reset: { provider: 'quick-gemini', upstream_model: 'synth:tokens=5,reset_after=2' },
        },
        limits: { messages_per_minute: 100000 },
      },
    });
    [c] = await session(s);
  });
  after(async () => {
    c?.close();
    await s?.stop();
    await mock.stop();
    for (const sock of sockets) sock.destroy();
    await new Promise((resolve) => blackhole.close(resolve));
  });

  test('first-byte timeout', async () => {
    const marker = uniq('fb');
    const t0 = Date.now();
    c.send({ type: 'chat', id: 't1', model: 'no-first-byte', message: marker });
    const end = (await c.collect('t1')).at(-1);
    const took = Date.now() - t0;
    assert.equal(end.type, 'error');
    assert.equal(end.code, 'UPSTREAM_TIMEOUT');
    assert.equal(end.retryable, true);
    assert.match(end.message, /first_byte_timeout/);
    assert.ok(took >= 290 && took < 3000, `${took} ms`);
    await mock.wait(marker, 'aborted', 3000);
  });

  test('a first-byte timeout is retried before any token', async () => {
    const marker = uniq('fb-retry');
    c.send({ type: 'chat', id: 't2', model: 'no-first-byte-retried', message: marker });
    const ev = await c.collect('t2');
    assert.equal(ev.filter((e) => e.type === 'progress' && e.step === 'retrying').length, 1);
    assert.equal(ev.at(-1).code, 'UPSTREAM_TIMEOUT');
    const log = requestsWith(await mock.log(), marker);
    assert.equal(log.length, 2);
    assert.ok(log.every((r) => r.state === 'aborted'));
  });

  test('idle timeout between chunks', async () => {
    const marker = uniq('idle');
    c.send({ type: 'chat', id: 't3', model: 'stalls', message: marker });
    const ev = await c.collect('t3');
    assert.equal(textOf(ev), 'tok1 tok2 ');
    const end = ev.at(-1);
    assert.equal(end.code, 'UPSTREAM_TIMEOUT');
    assert.equal(end.retryable, true);
    assert.match(end.message, /idle_timeout/);
    await mock.wait(marker, 'aborted', 3000);
  });

  test('a slow but steady stream outlives the idle timeout', async () => {
    c.send({ type: 'chat', id: 't4', model: 'steady', message: uniq('steady') });
    const ev = await c.collect('t4');
    const end = ev.at(-1);
    assert.equal(end.type, 'done', JSON.stringify(end));
    assert.ok(end.latency_ms > 600, `${end.latency_ms} ms: longer than twice the idle timeout`);
    assert.equal(textOf(ev).split(' ').length - 1, 12);
  });

  test('connect timeout (a TLS handshake that never completes)', async () => {
    const t0 = Date.now();
    c.send({ type: 'chat', id: 't5', model: 'no-connect', message: uniq('connect') });
    const end = (await c.collect('t5')).at(-1);
    assert.equal(end.code, 'UPSTREAM_TIMEOUT');
    assert.equal(end.retryable, true);
    assert.match(end.message, /connect timeout/);
    assert.ok(Date.now() - t0 < 5000);
  });

  test('connection refused', async () => {
    c.send({ type: 'chat', id: 't6', model: 'no-server', message: uniq('refused') });
    const end = (await c.collect('t6')).at(-1);
    assert.equal(end.code, 'UPSTREAM_ERROR');
    assert.equal(end.retryable, true);
    assert.ok(!end.message.includes(KEY));
  });

  test('a stream cut without its terminator is an error, never a success', async () => {
    c.send({ type: 'chat', id: 't7', model: 'truncated', message: uniq('trunc') });
    const ev = await c.collect('t7');
    assert.equal(textOf(ev), 'tok1 tok2 ');
    const end = ev.at(-1);
    assert.equal(end.type, 'error');
    assert.equal(end.code, 'UPSTREAM_ERROR');
    assert.match(end.message, /truncated/);
  });

  test('a connection reset mid-stream is an error', async () => {
    c.send({ type: 'chat', id: 't8', model: 'reset', message: uniq('reset') });
    const ev = await c.collect('t8');
    // The reset follows the two tokens by 10 ms; on a loaded machine it can reach the kernel
    // before curl read them, and a reset discards unread data: what arrived is a prefix.
    assert.ok('tok1 tok2 '.startsWith(textOf(ev)), textOf(ev));
    assert.equal(ev.at(-1).code, 'UPSTREAM_ERROR');
  });
});
