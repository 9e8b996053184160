// The provider's connection pool on a worker: past max_connections a stream waits, and the
// client is told (`progress` step `queued`) and /metrics counts it; past max_queued it is
// refused at once; min_idle connections are opened before any stream and kept (by the builtin
// HTTP/1.1 client, and by curl with http_client: curl).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { metric, metricIn, metricsText, session, startMock, startSluice, textOf } from './lib/harness.mjs';
import { KEY } from './lib/providers.mjs';

// Polls /metrics until fn(value) holds (deadline), returning the last value.
async function until(server, name, provider, fn, timeoutMs = 8000) {
  const end = Date.now() + timeoutMs;
  let v;
  for (;;) {
    v = await metric(server, `${name}{provider="${provider}"}`);
    if (fn(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('upstream connection pool', () => {
  let mock;
  let s;
  let c;
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: {
          narrow: {
            kind: 'openai', base_url: `${mock.url}/v1`, api_key: KEY, max_retries: 0,
            max_connections: 1, max_queued: 1,
          },
          warm: { kind: 'openai', base_url: `${mock.url}/v1`, api_key: KEY, max_retries: 0, min_idle: 2 },
          warmcurl: {
            kind: 'openai', base_url: `${mock.url}/v1`, api_key: KEY, max_retries: 0, min_idle: 2,
            http_client: 'curl',
          },
        },
        models: {
          slow: { provider: 'narrow', upstream_model: 'synth:tokens=12,rate=20' },
          quick: { provider: 'warm', upstream_model: 'synth:tokens=3' },
          quickcurl: { provider: 'warmcurl', upstream_model: 'synth:tokens=3' },
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
  });

  test('a stream past max_connections is told it is queued, counted, then served', async () => {
    assert.equal(await metric(s, 'sluice_upstream_queued_total{provider="narrow"}'), 0);
    c.send({ type: 'chat', id: 'a', model: 'slow', message: 'first' });
    await c.next((m) => m.id === 'a' && m.type === 'delta');
    c.send({ type: 'chat', id: 'b', model: 'slow', message: 'second' });
    const queued = await c.next((m) => m.id === 'b' && m.type === 'progress' && m.step === 'queued');
    assert.ok(queued.seq > 0);
    // While b waits, the gauge shows it; once a ends, b runs and the gauge drops.
    assert.equal(await until(s, 'sluice_upstream_queued', 'narrow', (v) => v === 1), 1);
    const a = await c.collect('a');
    const b = await c.collect('b');
    assert.equal(a.at(-1).type, 'done');
    assert.equal(b.at(-1).type, 'done');
    assert.ok(!a.some((e) => e.type === 'progress' && e.step === 'queued'), 'a did not wait');
    assert.equal(textOf(b).trim().split(/\s+/).length, 12);
    const text = await metricsText(s);
    assert.equal(metricIn(text, 'sluice_upstream_queued_total{provider="narrow"}'), 1);
    assert.equal(metricIn(text, 'sluice_upstream_queued{provider="narrow"}'), 0);
  });

  test('past max_queued a stream is refused at once, retryable', async () => {
    c.send({ type: 'chat', id: 'c1', model: 'slow', message: 'one' });
    await c.next((m) => m.id === 'c1' && m.type === 'delta');
    c.send({ type: 'chat', id: 'c2', model: 'slow', message: 'two' });
    await c.next((m) => m.id === 'c2' && m.type === 'progress' && m.step === 'queued');
    const t0 = Date.now();
    c.send({ type: 'chat', id: 'c3', model: 'slow', message: 'three' });
    const c3 = await c.collect('c3');
    assert.ok(Date.now() - t0 < 2000);
    const end = c3.at(-1);
    assert.equal(end.type, 'error');
    assert.equal(end.code, 'UPSTREAM_ERROR');
    assert.equal(end.retryable, true);
    assert.match(end.message, /max_queued/);
    assert.equal((await c.collect('c1')).at(-1).type, 'done');
    assert.equal((await c.collect('c2')).at(-1).type, 'done');
    assert.equal(await metric(s, 'sluice_upstream_queued_total{provider="narrow"}'), 2);
  });

  test('a queued stream cancelled while it waits never reaches the provider', async () => {
    c.send({ type: 'chat', id: 'q1', model: 'slow', message: 'holds-the-connection' });
    await c.next((m) => m.id === 'q1' && m.type === 'delta');
    c.send({ type: 'chat', id: 'q2', model: 'slow', message: 'never-sent-upstream' });
    await c.next((m) => m.id === 'q2' && m.type === 'progress' && m.step === 'queued');
    c.send({ type: 'cancel', id: 'q2' });
    const q2 = await c.collect('q2');
    assert.equal(q2.at(-1).type, 'cancelled');
    assert.equal(await until(s, 'sluice_upstream_queued', 'narrow', (v) => v === 0), 0);
    assert.equal((await c.collect('q1')).at(-1).type, 'done');
    // q1's end freed the connection: had q2 still waited, it would have been sent now.
    c.send({ type: 'chat', id: 'q3', model: 'slow', message: 'after-the-cancel' });
    assert.equal((await c.collect('q3')).at(-1).type, 'done');
    const log = await mock.log();
    assert.ok(!JSON.stringify(log).includes('never-sent-upstream'), 'the cancelled stream reached the mock');
  });

  test('min_idle connections are open before any stream, and a stream uses one', async () => {
    // The builtin HTTP/1.1 client (http:// base URL) opens them as TCP connections: no request.
    const open = await until(s, 'sluice_upstream_connections', 'warm', (v) => v >= 2);
    assert.equal(open, 2);
    c.send({ type: 'chat', id: 'w', model: 'quick', message: 'hello' });
    const w = await c.collect('w');
    assert.equal(w.at(-1).type, 'done');
    // The stream ran on an idle connection: still two open (topped up, none added).
    assert.equal(await until(s, 'sluice_upstream_connections', 'warm', (v) => v === 2), 2);
  });

  test('with http_client: curl, min_idle connections are warmed by requests and used', async () => {
    // Two warm-up requests (GET of base_url, no credentials) reached the mock.
    const open = await until(s, 'sluice_upstream_connections', 'warmcurl', (v) => v >= 2);
    assert.equal(open, 2);
    const warmups = (await mock.log()).filter((r) => r.method === 'GET' && r.path === '/v1');
    assert.ok(warmups.length >= 2, JSON.stringify(warmups.slice(0, 3)));
    assert.ok(!JSON.stringify(warmups).includes(KEY), 'no credentials in a warm-up');
    c.send({ type: 'chat', id: 'wc', model: 'quickcurl', message: 'hello' });
    const w = await c.collect('wc');
    assert.equal(w.at(-1).type, 'done');
    assert.equal(await until(s, 'sluice_upstream_connections', 'warmcurl', (v) => v === 2), 2);
  });

});
