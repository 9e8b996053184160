// The router against the mock: fallback chains, bounded retries with backoff (and never a
// retry once a token went out), agent presets, prices, estimated usage, missing keys.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { session, startMock, startSluice, textOf } from './lib/harness.mjs';
import { KEY, mockProviders } from './lib/providers.mjs';

const requestsWith = (log, marker) => log.filter((r) => JSON.stringify(r.body ?? '').includes(marker));
let seq = 0;
const uniq = (what) => `${what}-${process.pid}-${++seq}`;

describe('routing', () => {
  let mock;
  let s;
  let c;
  before(async () => {
    mock = await startMock();
    const providers = mockProviders(mock.url);
    providers.retrying = { kind: 'openai', base_url: `${mock.url}/v1`, api_key: KEY, max_retries: 2, retry_base: '20ms' };
    providers.nokey = { kind: 'openai', base_url: `${mock.url}/v1`, api_key_env: 'SLUICE_E2E_NO_SUCH_KEY' };
    providers.keyless = { kind: 'openai', base_url: `${mock.url}/v1`, api_key_env: null };
    s = await startSluice({
      config: {
        providers,
        models: {
          broken: { provider: 'mockopenai', upstream_model: 'synth:status=503', fallback: ['also-broken', 'backup'] },
          'also-broken': { provider: 'mockanthropic', upstream_model: 'synth:status=529' },
          backup: { provider: 'mockgemini', upstream_model: 'synth:tokens=3', price: { input_per_1m: 1000, output_per_1m: 2000 } },
          'flaky': { provider: 'retrying', upstream_model: 'synth:status=503' },
          'recovers': { provider: 'retrying', upstream_model: `synth:status=503,fail_first=2,tokens=3,tag=${process.pid}` },
          'rate-limited': { provider: 'retrying', upstream_model: 'synth:status=429,retry_after=1' },
          'dies-midway': { provider: 'retrying', upstream_model: 'synth:tokens=5,error_after=2', fallback: ['backup'] },
          'bad-request': { provider: 'retrying', upstream_model: 'synth:status=400', fallback: ['backup'] },
          priced: { provider: 'mockopenai', upstream_model: 'synth:tokens=5,prompt_tokens=10', price: { input_per_1m: 3, output_per_1m: 7 } },
          'no-usage': { provider: 'mockanthropic', upstream_model: 'synth:tokens=4,usage=0' },
          'needs-key': { provider: 'nokey', upstream_model: 'synth:tokens=2' },
          'no-key-needed': { provider: 'keyless', upstream_model: 'synth:tokens=2' },
          'capped': { provider: 'mockollama', upstream_model: 'synth:tokens=2', max_tokens: 77 },
          'fails-early': { provider: 'mockanthropic', upstream_model: 'synth:tokens=5,error_after=0', fallback: ['quiet'] },
          quiet: { provider: 'mockollama', upstream_model: 'synth:tokens=3,usage=0' },
        },
        agents: {
          helper: { model: 'capped', system: 'You are a test agent.', temperature: 0.4, max_tokens: 33 },
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

  test('a failing model falls back along its chain, with a progress event per step', async () => {
    const marker = uniq('fallback');
    c.send({ type: 'chat', id: 'f1', model: 'broken', message: marker });
    const ev = await c.collect('f1');
    const steps = ev.filter((e) => e.type === 'progress').map((e) => `${e.step}:${e.detail ?? ''}`);
    assert.deepEqual(steps.filter((x) => x.startsWith('fallback')), ['fallback:also-broken', 'fallback:backup']);
    const done = ev.at(-1);
    assert.equal(done.type, 'done', JSON.stringify(done));
    assert.equal(done.model, 'backup');
    assert.equal(done.provider, 'mockgemini');
    assert.equal(textOf(ev), 'tok1 tok2 tok3 ');
    // usage from the provider that answered, priced at its model's prices
    assert.deepEqual(done.usage, { input_tokens: 10, output_tokens: 3 });
    assert.ok(Math.abs(done.cost_usd - (10 * 1000 + 3 * 2000) / 1e6) < 1e-12, String(done.cost_usd));
    const log = requestsWith(await mock.log(), marker);
    assert.deepEqual(log.map((r) => r.status), [503, 529, 200]);
  });

  test('retryable failures are retried with backoff, then reported', async () => {
    const marker = uniq('retry');
    c.send({ type: 'chat', id: 'r1', model: 'flaky', message: marker });
    const ev = await c.collect('r1');
    const retries = ev.filter((e) => e.type === 'progress' && e.step === 'retrying');
    assert.equal(retries.length, 2);
    const end = ev.at(-1);
    assert.equal(end.type, 'error');
    assert.equal(end.code, 'UPSTREAM_ERROR');
    assert.equal(end.retryable, true);
    const log = requestsWith(await mock.log(), marker);
    assert.equal(log.length, 3, 'one attempt and two retries');
    // jittered exponential backoff from 20 ms: at least 10 ms, then 20 ms
    assert.ok(log[1].started_ms - log[0].started_ms >= 10);
    assert.ok(log[2].started_ms - log[1].started_ms >= 20);
  });

  test('a retry that succeeds streams the answer, after a progress event per retry', async () => {
    const marker = uniq('recover');
    c.send({ type: 'chat', id: 'r3', model: 'recovers', message: marker });
    const ev = await c.collect('r3');
    assert.equal(ev.filter((e) => e.type === 'progress' && e.step === 'retrying').length, 2);
    const done = ev.at(-1);
    assert.equal(done.type, 'done', JSON.stringify(done));
    assert.equal(done.model, 'recovers');
    assert.equal(textOf(ev), 'tok1 tok2 tok3 ');
    assert.deepEqual(done.usage, { input_tokens: 10, output_tokens: 3 });
    const log = requestsWith(await mock.log(), marker);
    assert.deepEqual(log.map((r) => r.status), [503, 503, 200]);
  });

  test('a 429 is retried no sooner than its Retry-After', async () => {
    const marker = uniq('ratelimit');
    c.send({ type: 'chat', id: 'r2', model: 'rate-limited', message: marker });
    const ev = await c.collect('r2', 20000);
    const end = ev.at(-1);
    assert.equal(end.code, 'UPSTREAM_RATE_LIMITED');
    assert.equal(end.retry_after_ms, 1000);
    const log = requestsWith(await mock.log(), marker);
    assert.equal(log.length, 3);
    assert.ok(log[1].started_ms - log[0].started_ms >= 990, `${log[1].started_ms - log[0].started_ms} ms`);
  });

  test('never a retry or a fallback once a token went out', async () => {
    const marker = uniq('midway');
    c.send({ type: 'chat', id: 'm1', model: 'dies-midway', message: marker });
    const ev = await c.collect('m1');
    assert.equal(textOf(ev), 'tok1 tok2 ');
    const end = ev.at(-1);
    assert.equal(end.type, 'error');
    assert.equal(end.code, 'UPSTREAM_ERROR');
    assert.ok(!ev.some((e) => e.type === 'progress' && ['retrying', 'fallback'].includes(e.step)));
    assert.equal(requestsWith(await mock.log(), marker).length, 1);
  });

  test('a non-retryable failure is not retried but does fall back', async () => {
    const marker = uniq('badreq');
    c.send({ type: 'chat', id: 'b1', model: 'bad-request', message: marker });
    const ev = await c.collect('b1');
    assert.ok(!ev.some((e) => e.type === 'progress' && e.step === 'retrying'));
    assert.ok(ev.some((e) => e.type === 'progress' && e.step === 'fallback'));
    assert.equal(ev.at(-1).type, 'done');
    assert.deepEqual(requestsWith(await mock.log(), marker).map((r) => r.status), [400, 200]);
  });

  test('prices give cost_usd from the provider usage', async () => {
    c.send({ type: 'chat', id: 'p1', model: 'priced', message: uniq('price') });
    const done = (await c.collect('p1')).at(-1);
    assert.deepEqual(done.usage, { input_tokens: 10, output_tokens: 5 });
    assert.ok(Math.abs(done.cost_usd - (10 * 3 + 5 * 7) / 1e6) < 1e-15);
  });

  test('without usage from the provider, usage is estimated and says so', async () => {
    c.send({ type: 'chat', id: 'u1', model: 'no-usage', message: uniq('usage') });
    const ev = await c.collect('u1');
    const done = ev.at(-1);
    assert.equal(done.type, 'done');
    assert.equal(done.usage.estimated, true);
    assert.equal(done.usage.output_tokens, 4);
    assert.ok(done.usage.input_tokens > 0);
  });

  test('usage is the answering attempt\'s, not a failed one\'s', async () => {
    const marker = uniq('early');
    c.send({ type: 'chat', id: 'e1', model: 'fails-early', message: marker });
    const ev = await c.collect('e1');
    const done = ev.at(-1);
    assert.equal(done.type, 'done', JSON.stringify(done));
    assert.equal(done.model, 'quiet');
    assert.equal(done.usage.output_tokens, 3);
    assert.equal(done.usage.estimated, true);
    assert.deepEqual(requestsWith(await mock.log(), marker).map((r) => r.end), ['error_event', 'done']);
  });

  test('a provider without its key answers UPSTREAM_AUTH without a request', async () => {
    const marker = uniq('nokey');
    c.send({ type: 'chat', id: 'k1', model: 'needs-key', message: marker });
    const end = (await c.collect('k1')).at(-1);
    assert.equal(end.code, 'UPSTREAM_AUTH');
    assert.equal(end.retryable, false);
    assert.equal(requestsWith(await mock.log(), marker).length, 0);
  });

  test('api_key_env: null means a server without keys: no Authorization header', async () => {
    const marker = uniq('keyless');
    c.send({ type: 'chat', id: 'k2', model: 'no-key-needed', message: marker });
    assert.equal((await c.collect('k2')).at(-1).type, 'done');
    const [r] = requestsWith(await mock.log(), marker);
    assert.equal(r.headers.authorization, undefined);
  });

  test('agent presets set model, system prompt, temperature and max_tokens', async () => {
    const marker = uniq('agent');
    c.send({ type: 'chat', id: 'a1', agent: 'helper', message: marker });
    const done = (await c.collect('a1')).at(-1);
    assert.equal(done.type, 'done');
    assert.equal(done.model, 'capped');
    const [r] = requestsWith(await mock.log(), marker);
    assert.equal(r.path, '/api/chat');
    assert.deepEqual(r.body.messages[0], { role: 'system', content: 'You are a test agent.' });
    assert.equal(r.body.options.temperature, 0.4);
    assert.equal(r.body.options.num_predict, 33, "the agent's max_tokens wins over the model's");

    const m2 = uniq('model-max');
    c.send({ type: 'chat', id: 'a2', model: 'capped', message: m2, system: 'Mine.' });
    await c.collect('a2');
    const [r2] = requestsWith(await mock.log(), m2);
    assert.equal(r2.body.options.num_predict, 77, "the model's max_tokens when the client gives none");
    assert.deepEqual(r2.body.messages[0], { role: 'system', content: 'Mine.' });

    const m3 = uniq('client-max');
    c.send({ type: 'chat', id: 'a3', agent: 'helper', message: m3, max_tokens: 5, system: 'Also this.' });
    await c.collect('a3');
    const [r3] = requestsWith(await mock.log(), m3);
    assert.equal(r3.body.options.num_predict, 5);
    assert.equal(r3.body.messages[0].content, 'You are a test agent.\n\nAlso this.');
  });

  test('every request carries the key only in its auth header', async () => {
    const log = await mock.log();
    for (const r of log.filter((x) => x.path.endsWith('/chat/completions') && x.headers.authorization)) {
      assert.equal(r.headers.authorization, `Bearer ${KEY}`);
    }
    assert.ok(!s.stderr().includes(KEY), 'the key never reaches a log line');
  });
});
