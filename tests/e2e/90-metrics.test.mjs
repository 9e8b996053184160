// /metrics against a known workload: every name of DESIGN.md is there with its type, and
// the counters equal what the clients did and saw (connections, streams by outcome,
// tokens, auth failures, rate limits, upstream errors), the histograms are well formed
// and count what they should. Two workers, so the scrape sums per-worker shards.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import parsePrometheus from 'parse-prometheus-text-format';
import { Client, ROOT, jwt, session, startSluice } from './lib/harness.mjs';

// The metrics contract of DESIGN.md ("Metrics"), with the types dashboards expect.
const CONTRACT = {
  sluice_build_info: 'GAUGE',
  sluice_connections: 'GAUGE',
  sluice_connections_total: 'COUNTER',
  sluice_streams_active: 'GAUGE',
  sluice_streams_total: 'COUNTER',
  sluice_tokens_total: 'COUNTER',
  sluice_bytes_sent_total: 'COUNTER',
  sluice_ttft_seconds: 'HISTOGRAM',
  sluice_inter_token_seconds: 'HISTOGRAM',
  sluice_upstream_errors_total: 'COUNTER',
  sluice_auth_failures_total: 'COUNTER',
  sluice_rate_limited_total: 'COUNTER',
  sluice_backpressure_pauses_total: 'COUNTER',
  sluice_resumes_total: 'COUNTER',
  sluice_journal_bytes: 'GAUGE',
  sluice_sessions_detached: 'GAUGE',
  sluice_overhead_seconds: 'HISTOGRAM',
};

const CONFIG = {
  workers: 2,
  providers: {
    demo: { kind: 'demo', tokens_per_second: 1000 },
    slow: { kind: 'demo', tokens_per_second: 5 },
    // Nothing listens on port 1: every call fails before its first token.
    broken: { kind: 'openai', base_url: 'http://127.0.0.1:1/v1', api_key: 'sk-metrics-test-key', max_retries: 0 },
  },
  models: {
    demo: { provider: 'demo', price: { input_per_1m: 1, output_per_1m: 2 } },
    slow: { provider: 'slow' },
    broken: { provider: 'broken' },
  },
  agents: { analyst: { model: 'demo', system: 'Be brief.' } },
  limits: { messages_per_minute: 20, max_streams_per_connection: 4 },
  // A disconnect stops its streams at once (no resume window), so the workload is exact.
  resume: { window: 0 },
};

// One scrape over a fresh TCP connection (so that the connection count is exact).
function scrape(server) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${server.url}/metrics`, { agent: false, headers: { Connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }));
    });
    req.on('error', reject);
  });
}

// name -> family; value(name, labels) -> number (the sample whose labels include `labels`).
function parse(text) {
  const families = new Map(parsePrometheus(text).map((f) => [f.name, f]));
  const samples = (name, labels = {}) => {
    const f = families.get(name);
    assert.ok(f, `no metric ${name}`);
    return f.metrics.filter((m) => Object.entries(labels).every(([k, v]) => (m.labels || {})[k] === v));
  };
  const value = (name, labels = {}) => {
    const ms = samples(name, labels);
    assert.equal(ms.length, 1, `${name}${JSON.stringify(labels)}: ${ms.length} samples`);
    return Number(ms[0].value);
  };
  const hist = (name) => {
    const [m] = samples(name);
    const finite = Object.entries(m.buckets).filter(([le]) => le !== '+Inf')
      .map(([le, n]) => [Number(le), Number(n)]).sort((x, y) => x[0] - y[0]);
    const bounds = finite.map(([le]) => le);
    const cum = finite.map(([, n]) => n);
    return { bounds, cum, inf: Number(m.buckets['+Inf']), count: Number(m.count), sum: Number(m.sum) };
  };
  return { families, samples, value, hist };
}

function checkHistogram(h, name) {
  for (let i = 1; i < h.cum.length; i++)
    assert.ok(h.cum[i] >= h.cum[i - 1], `${name}: bucket le=${h.bounds[i]} below le=${h.bounds[i - 1]}`);
  assert.ok(h.cum.every((c) => Number.isFinite(c)), `${name}: unreadable bucket`);
  assert.ok(h.inf >= h.cum.at(-1), `${name}: +Inf below the last bucket`);
  assert.equal(h.inf, h.count, `${name}: +Inf bucket and _count differ`);
}

describe('/metrics', () => {
  let s;
  const seen = { payloadBytes: 0 };
  const clients = [];
  let first;

  before(async () => {
    s = await startSluice({ config: CONFIG });
  });
  after(async () => {
    for (const c of clients) c.close();
    await s.stop();
  });

  const open = async (sub) => {
    const [c, ready] = await session(s, { sub });
    clients.push(c);
    return [c, ready];
  };

  test('a first scrape: Prometheus text, every name of DESIGN.md with its type, all zero', async () => {
    const r = await scrape(s);
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain; version=0\.0\.4/);
    const m = parse(r.body);
    for (const [name, type] of Object.entries(CONTRACT)) {
      assert.ok(m.families.has(name), `missing ${name}`);
      assert.equal(m.families.get(name).type, type, `type of ${name}`);
    }
    const version = fs.readFileSync(path.join(ROOT, 'VERSION'), 'utf8').trim();
    assert.equal(m.value('sluice_build_info', { version }), 1);
    assert.equal(m.value('sluice_connections_total'), 1, 'this scrape is the first connection');
    assert.equal(m.value('sluice_streams_active'), 0);
    for (const h of ['sluice_ttft_seconds', 'sluice_inter_token_seconds', 'sluice_overhead_seconds']) {
      const x = m.hist(h);
      assert.equal(x.count, 0, h);
      checkHistogram(x, h);
    }
    // Buckets that fit LLM timings: TTFT 10 ms .. 60 s, inter-token 100 us .. 10 s.
    const ttft = m.hist('sluice_ttft_seconds').bounds;
    assert.equal(ttft[0], 0.01);
    assert.equal(ttft.at(-1), 60);
    const itl = m.hist('sluice_inter_token_seconds').bounds;
    assert.equal(itl[0], 0.0001);
    assert.equal(itl.at(-1), 10);
    first = r.body;
  });

  test('after a known workload the counters equal what the clients saw', async () => {
    assert.ok(first, 'the first scrape ran');
    const count = (c) => c.ws.on('message', (d) => { seen.payloadBytes += d.length; });
    const tally = { deltas: 0, input: 0, ttftStreams: 0, itl: 0, rateLimited: 0 };
    const account = (events) => {
      const deltas = events.filter((e) => e.type === 'delta').length;
      const end = events.at(-1);
      tally.deltas += deltas;
      tally.input += end.usage.input_tokens;
      if (deltas > 0) {
        tally.ttftStreams++;
        tally.itl += deltas - 1;
      }
      assert.equal(end.usage.output_tokens, deltas, `${end.type}: output tokens = deltas seen`);
      return end;
    };

    // Connection 1: two answers from the model and one from an agent on it.
    const [c1] = await open('one');
    count(c1);
    c1.send({ type: 'chat', id: 'd1', model: 'demo', message: 'What is a gateway?' });
    c1.send({ type: 'chat', id: 'd2', model: 'demo', message: 'And a stream?' });
    c1.send({ type: 'chat', id: 'd3', agent: 'analyst', message: 'Sum it up' });
    for (const id of ['d1', 'd2', 'd3']) assert.equal(account(await c1.collect(id)).type, 'done');

    // Connection 2: a cancel after two tokens, and one before any.
    const [c2] = await open('two');
    count(c2);
    c2.send({ type: 'chat', id: 'x1', model: 'slow', message: 'Take your time' });
    const early = [];
    for (let i = 0; i < 2; i++) early.push(await c2.next((m) => m.id === 'x1' && m.type === 'delta'));
    c2.send({ type: 'cancel', id: 'x1' });
    const x1 = [...early, ...(await c2.collect('x1'))];
    assert.equal(account(x1).type, 'cancelled');
    c2.send({ type: 'chat', id: 'x2', model: 'slow', message: 'Never mind' });
    c2.send({ type: 'cancel', id: 'x2' });
    assert.equal(account(await c2.collect('x2')).type, 'cancelled');

    // Connection 3: an unknown model (refused, not a stream) and a provider that fails.
    const [c3] = await open('three');
    count(c3);
    c3.send({ type: 'chat', id: 'u1', model: 'no-such-model', message: 'hi' });
    assert.equal((await c3.next((m) => m.id === 'u1')).code, 'UNKNOWN_MODEL');
    c3.send({ type: 'chat', id: 'e1', model: 'broken', message: 'hi' });
    const e1 = account(await c3.collect('e1'));
    assert.equal(e1.type, 'error');

    // Connection 4: more messages than the rate limit lets through.
    const [c4] = await open('four');
    count(c4);
    for (let i = 0; i < 24; i++) c4.send({ type: 'cancel', id: `nothing-${i}` });
    for (let i = 0; i < 24; i++) {
      const m = await c4.next('error');
      if (m.code === 'RATE_LIMITED') tally.rateLimited++;
      else assert.equal(m.code, 'NOT_FOUND');
    }
    assert.ok(tally.rateLimited >= 4, `rate limited ${tally.rateLimited} of 24`);

    // Connection 5: leaves in the middle of an answer.
    const mark = s.mark();
    const [c5] = await open('five');
    count(c5);
    c5.send({ type: 'chat', id: 'gone', model: 'slow', message: 'Long story' });
    await c5.next((m) => m.id === 'gone' && m.type === 'delta');
    c5.close();
    const gone = await s.waitLog(/stream\.end[^\n]*stream=gone[^\n]*/, mark);
    const num = (k) => Number(gone[0].match(new RegExp(`\\b${k}=(\\d+)`))[1]);
    assert.match(gone[0], /outcome=disconnected/);
    assert.ok(num('tokens_out') >= 1);
    tally.deltas += num('tokens_out');
    tally.input += num('tokens_in');
    tally.ttftStreams++;
    tally.itl += num('tokens_out') - 1;

    // Connection 6: a refused token.
    const bad = await Client.open(`${s.wsUrl}/ws?token=${jwt({ sub: 'x' }, { secret: 'wrong-secret-0123456789abcdef0123456789' })}`);
    assert.equal((await bad.waitClose()).code, 4001);
    await s.waitLog(/session\.closed[^\n]*code=4001/, mark);
    await s.waitLog(/session\.closed[^\n]*user=five/, mark);

    const r = await scrape(s);
    const m = parse(r.body);
    const v = (name, labels) => m.value(name, labels);

    // Connections: 6 WebSocket clients and 2 scrapes, each its own TCP connection.
    assert.equal(v('sluice_connections_total'), 8);
    assert.equal(v('sluice_connections', { protocol: 'native' }), 4, 'c1..c4 are still open');
    assert.equal(v('sluice_auth_failures_total'), 1);
    // Labelled by limit, every limit present: only the message rate refused here.
    assert.equal(v('sluice_rate_limited_total', { limit: 'messages' }), tally.rateLimited);
    const limits = m.samples('sluice_rate_limited_total').map((x) => x.labels.limit).sort();
    assert.deepEqual(limits, ['budget_day', 'budget_month', 'connections_ip', 'connections_user', 'messages', 'streams', 'tokens']);
    assert.equal(m.samples('sluice_rate_limited_total').reduce((a, x) => a + Number(x.value), 0), tally.rateLimited);

    // Streams by outcome (UNKNOWN_MODEL never became one).
    const st = (model, provider, outcome) => v('sluice_streams_total', { model, provider, outcome });
    assert.equal(st('demo', 'demo', 'done'), 3);
    assert.equal(st('slow', 'slow', 'cancelled'), 2);
    assert.equal(st('slow', 'slow', 'disconnected'), 1);
    assert.equal(st('broken', 'broken', 'error'), 1);
    const all = m.samples('sluice_streams_total').reduce((a, x) => a + Number(x.value), 0);
    assert.equal(all, 7);
    assert.equal(v('sluice_streams_active'), 0);
    assert.equal(m.samples('sluice_upstream_errors_total', { provider: 'broken', code: e1.code }).length, 1);
    assert.equal(v('sluice_upstream_errors_total', { provider: 'broken', code: e1.code }), 1);

    // Tokens: output = every delta the clients saw (plus the disconnected stream's).
    const tok = (direction) => m.samples('sluice_tokens_total', { direction }).reduce((a, x) => a + Number(x.value), 0);
    assert.equal(tok('output'), tally.deltas);
    assert.equal(tok('input'), tally.input);
    assert.ok(tally.deltas > 50);

    // Histograms: TTFT once per stream that produced a token, inter-token per later token,
    // overhead once per stream.
    const ttft = m.hist('sluice_ttft_seconds');
    checkHistogram(ttft, 'ttft');
    assert.equal(ttft.count, tally.ttftStreams);
    assert.equal(ttft.count, 5);
    assert.ok(ttft.sum > 0);
    const itl = m.hist('sluice_inter_token_seconds');
    checkHistogram(itl, 'inter-token');
    assert.equal(itl.count, tally.itl);
    const over = m.hist('sluice_overhead_seconds');
    checkHistogram(over, 'overhead');
    assert.equal(over.count, 7);
    // The slow model paces tokens 200 ms apart: those land above 0.1 s.
    const i100 = itl.bounds.indexOf(0.1);
    assert.ok(itl.count - itl.cum[i100] >= 1, 'the slow model\'s gaps are in the upper buckets');

    // Bytes: at least every payload byte the clients received.
    assert.ok(v('sluice_bytes_sent_total') >= seen.payloadBytes + first.length,
      `${v('sluice_bytes_sent_total')} < ${seen.payloadBytes}`);
    assert.equal(v('sluice_http_requests_total'), 8);
  });
});
