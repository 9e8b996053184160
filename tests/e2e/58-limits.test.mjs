// Limits that hold per identity whatever the connection: messages per minute across a
// reconnect, streams and connections per user across connections and workers, connections
// per address, tiers from the token or the API key, and budgets in USD: refused before the
// provider is called, stopped mid-answer, kept across a restart in the state file.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Client, SLUICE_BIN, jwt, session, startMock, startSluice } from './lib/harness.mjs';
import { mockProviders } from './lib/providers.mjs';

// Runs sluice to its exit with a configuration; for configurations it must refuse.
async function refusedStart(config, args = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-limits-'));
  const p = path.join(dir, 'sluice.yaml');
  fs.writeFileSync(p, JSON.stringify({ listen: '127.0.0.1:0', ...config }));
  try {
    await promisify(execFile)(SLUICE_BIN(), [...args, '-c', p], { timeout: 15000 });
    assert.fail('sluice started');
  } catch (e) {
    assert.equal(e.code, 1, e.stderr);
    return e.stderr;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const PROVIDERS = {
  demo: { kind: 'demo', tokens_per_second: 400 },
  slow: { kind: 'demo', tokens_per_second: 4 },
};
// A dollar an output token: the budget arithmetic is visible in token counts.
const MODELS = {
  demo: { provider: 'demo' },
  slow: { provider: 'slow' },
  paid: { provider: 'demo', price: { input_per_1m: 0, output_per_1m: 1000000 } },
};

async function open(s, claims, query = '') {
  const c = await Client.open(`${s.wsUrl}/ws?token=${jwt(claims)}${query}`);
  return [c, await c.next((m) => m.type === 'ready' || m.type === 'error')];
}

function get(s, p) {
  return new Promise((resolve, reject) => {
    http.get(`${s.url}${p}`, { agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    }).on('error', reject);
  });
}

async function rateLimited(s, limit) {
  let r = await get(s, '/metrics');
  // With limits.max_connections_per_ip, a connection just closed may still count a moment.
  for (let i = 0; i < 50 && r.status === 429; i++) {
    await new Promise((res) => setTimeout(res, 50));
    r = await get(s, '/metrics');
  }
  assert.equal(r.status, 200);
  const m = r.body.match(new RegExp(`^sluice_rate_limited_total\\{limit="${limit}"\\} (\\d+)$`, 'm'));
  assert.ok(m, `no sample for ${limit}`);
  return Number(m[1]);
}

describe('limits per identity', () => {
  test('the message budget follows the user across a reconnect, not the connection', async () => {
    const s = await startSluice({ config: { workers: 2, limits: { messages_per_minute: 3 } } });
    try {
      const [a] = await session(s, { sub: 'mia' });
      for (let i = 0; i < 3; i++) a.send({ type: 'cancel', id: `a${i}` });
      for (let i = 0; i < 3; i++) assert.equal((await a.next('error')).code, 'NOT_FOUND');
      a.close();
      await a.waitClose();
      // A new connection (perhaps on the other worker) finds the bucket empty.
      const [b] = await session(s, { sub: 'mia' });
      b.send({ type: 'cancel', id: 'b0' });
      const e = await b.next('error');
      assert.equal(e.code, 'RATE_LIMITED');
      assert.ok(e.retry_after_ms > 0 && e.retry_after_ms <= 20001, `retry_after_ms ${e.retry_after_ms}`);
      // Another user is untouched.
      const [c] = await session(s, { sub: 'noah' });
      c.send({ type: 'cancel', id: 'c0' });
      assert.equal((await c.next('error')).code, 'NOT_FOUND');
      assert.equal(await rateLimited(s, 'messages'), 1);
    } finally {
      await s.stop();
    }
  });

  test('streams per user count across connections and are released by cancel and disconnect', async () => {
    const s = await startSluice({
      config: {
        workers: 2,
        providers: PROVIDERS,
        models: MODELS,
        resume: { window: 0 },
        shutdown: { drain_timeout: '200ms' }, // b3 is still talking slowly at the end
        limits: { max_streams_per_user: 2, messages_per_minute: 1000 },
      },
    });
    try {
      const [a] = await session(s, { sub: 'ola' });
      const [b] = await session(s, { sub: 'ola' });
      a.send({ type: 'chat', id: 'a1', model: 'slow', message: 'Long story' });
      await a.next((m) => m.id === 'a1' && m.type === 'start');
      b.send({ type: 'chat', id: 'b1', model: 'slow', message: 'Long story' });
      await b.next((m) => m.id === 'b1' && m.type === 'start');
      b.send({ type: 'chat', id: 'b2', model: 'slow', message: 'Long story' });
      const refused = await b.next((m) => m.id === 'b2');
      assert.equal(refused.type, 'error');
      assert.equal(refused.code, 'RATE_LIMITED');
      assert.equal(refused.retryable, true);
      assert.match(refused.message, /at most 2 .*limit streams/);
      assert.equal(refused.retry_after_ms, 1000);
      // Cancel releases one.
      b.send({ type: 'cancel', id: 'b1' });
      await b.next((m) => m.id === 'b1' && m.type === 'cancelled');
      b.send({ type: 'chat', id: 'b3', model: 'slow', message: 'Long story' });
      await b.next((m) => m.id === 'b3' && m.type === 'start');
      // A disconnect releases the other (resume.window 0: the stream is released).
      const mark = s.mark();
      a.ws.terminate();
      await s.waitLog(/stream\.end[^\n]*stream=a1[^\n]*outcome=disconnected/, mark);
      b.send({ type: 'chat', id: 'b4', model: 'demo', message: 'hi' });
      const done = (await b.collect('b4')).at(-1);
      assert.equal(done.type, 'done');
      assert.equal(await rateLimited(s, 'streams'), 1);
    } finally {
      await s.stop();
    }
  });

  test('connections per user: the one too many gets RATE_LIMITED and close 4029', async () => {
    const s = await startSluice({ config: { workers: 2, limits: { max_connections_per_user: 2 } } });
    try {
      const [a] = await session(s, { sub: 'pia' });
      await session(s, { sub: 'pia' });
      const [c, err] = await open(s, { sub: 'pia' });
      assert.equal(err.type, 'error');
      assert.equal(err.code, 'RATE_LIMITED');
      assert.match(err.message, /limit connections_user/);
      const closed = await c.waitClose();
      assert.equal(closed.code, 4029);
      assert.match(closed.reason, /too many connections for this user/);
      await session(s, { sub: 'quinn' });
      a.close();
      await a.waitClose();
      // Counted until the transport closes; the close is seen by the worker shortly after.
      let ok = false;
      for (let i = 0; i < 50 && !ok; i++) {
        const [d, first] = await open(s, { sub: 'pia' });
        ok = first.type === 'ready';
        if (!ok) await new Promise((r) => setTimeout(r, 50));
        d.close();
      }
      assert.ok(ok, 'a place freed by a close is taken again');
      assert.ok(await rateLimited(s, 'connections_user') >= 1);
    } finally {
      await s.stop();
    }
  });

  test('connections per address: HTTP 429 past the limit, whatever the route', async () => {
    const s = await startSluice({ config: { limits: { max_connections_per_ip: 2 } } });
    try {
      const [a] = await session(s, { sub: 'rae' });
      await session(s, { sub: 'sam' });
      await assert.rejects(Client.open(`${s.wsUrl}/ws?token=${jwt({ sub: 'tom' })}`), (e) => {
        assert.equal(e.status, 429);
        assert.equal(e.headers['retry-after'], '1');
        assert.match(e.body, /too many connections from this address/);
        return true;
      });
      const r = await get(s, '/healthz');
      assert.equal(r.status, 429);
      a.close();
      await a.waitClose();
      let status = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        status = (await get(s, '/healthz')).status;
        if (status !== 200) await new Promise((res) => setTimeout(res, 50));
      }
      assert.equal(status, 200);
      assert.ok(await rateLimited(s, 'connections_ip') >= 2);
    } finally {
      await s.stop();
    }
  });
});

describe('tiers', () => {
  test('a JWT sluice_tier and an API key tier choose the limits', async () => {
    const key = 'sk-tier-test-0123456789';
    const s = await startSluice({
      config: {
        limits: {
          messages_per_minute: 100,
          tiers: { free: { messages_per_minute: 2 }, gold: { messages_per_minute: 50 } },
        },
        auth: {
          jwt: { secret: 'e2e-secret-0123456789abcdef0123456789abcdef' },
          api_keys: [{ name: 'robot', sha256: crypto.createHash('sha256').update(key).digest('hex'), tier: 'free' }],
        },
      },
    });
    try {
      const [f, ready] = await open(s, { sub: 'uma', sluice_tier: 'free' });
      assert.equal(ready.limits.messages_per_minute, 2, 'ready tells the tier\'s rate');
      for (let i = 0; i < 3; i++) f.send({ type: 'cancel', id: `f${i}` });
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push((await f.next('error')).code);
      assert.deepEqual(codes, ['NOT_FOUND', 'NOT_FOUND', 'RATE_LIMITED']);
      const [g, gready] = await open(s, { sub: 'vic', sluice_tier: 'gold' });
      assert.equal(gready.limits.messages_per_minute, 50);
      g.close();
      // An unknown tier gets the global limits; a malformed claim is refused.
      const [, uready] = await open(s, { sub: 'wes', sluice_tier: 'platinum' });
      assert.equal(uready.limits.messages_per_minute, 100);
      const bad = await Client.open(`${s.wsUrl}/ws?token=${jwt({ sub: 'xia', sluice_tier: 7 })}`);
      assert.equal((await bad.waitClose()).code, 4001);
      // The API key's tier.
      const k = await Client.open(`${s.wsUrl}/ws?token=${key}`);
      const kready = await k.next('ready');
      assert.equal(kready.user, 'robot');
      assert.equal(kready.limits.messages_per_minute, 2);
    } finally {
      await s.stop();
    }
  });

  test('an API key naming no tier is a configuration error', async () => {
    const stderr = await refusedStart({ auth: { jwt: { secret: 'e2e-secret-0123456789abcdef0123456789abcdef' }, api_keys: [{ name: 'k', sha256: 'a'.repeat(64), tier: 'nope' }] } }, ['--check-config']);
    assert.match(stderr, /auth\.api_keys\[0\]\.tier: no tier named "nope" under limits\.tiers/);
  });
});

describe('budgets', () => {
  test('a stream crossing the budget stops with BUDGET_EXCEEDED and its usage; the next is refused at once; the spend survives a restart', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-budgets-'));
    const stateFile = path.join(dir, 'budgets.json');
    const config = {
      workers: 2,
      providers: PROVIDERS,
      models: MODELS,
      limits: { messages_per_minute: 1000 },
      budgets: { usd_per_day: 5, state_file: stateFile },
    };
    try {
      let s = await startSluice({ config });
      try {
        assert.ok(fs.existsSync(stateFile), 'written at start');
        const [c] = await session(s, { sub: 'yan' });
        c.send({ type: 'chat', id: 'p1', model: 'paid', message: 'Tell me everything about rivers' });
        const ev = await c.collect('p1');
        const deltas = ev.filter((e) => e.type === 'delta');
        const end = ev.at(-1);
        assert.equal(end.type, 'error');
        assert.equal(end.code, 'BUDGET_EXCEEDED');
        assert.equal(end.retryable, false);
        assert.match(end.message, /daily budget of \$5.*limit budget_day/);
        // Stopped at the first token past the budget: five paid for, the sixth crossed.
        assert.equal(deltas.length, 6);
        assert.equal(end.usage.output_tokens, 6);
        assert.ok(end.retry_after_ms > 0 && end.retry_after_ms <= 86400000);
        // Refused before the provider is called: no start event, no stream.
        c.send({ type: 'chat', id: 'p2', model: 'paid', message: 'More' });
        const refused = await c.next((m) => m.id === 'p2');
        assert.equal(refused.type, 'error');
        assert.equal(refused.code, 'BUDGET_EXCEEDED');
        assert.equal(refused.seq, undefined);
        // Another user has a budget of their own.
        const [d] = await session(s, { sub: 'zed' });
        d.send({ type: 'chat', id: 'q1', model: 'demo', message: 'hi' });
        assert.equal((await d.collect('q1')).at(-1).type, 'done');
        assert.equal(await rateLimited(s, 'budget_day'), 2);
      } finally {
        await s.stop();
      }
      const saved = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
      assert.equal(saved.format, 'sluice-budgets');
      const yan = saved.spend.find((r) => r.user === 'yan');
      assert.equal(yan.day_usd, 6);
      assert.equal(yan.month_usd, 6);
      assert.equal(yan.day, new Date().toISOString().slice(0, 10));
      assert.equal(saved.spend.find((r) => r.user === 'zed'), undefined, 'the demo model is free');

      s = await startSluice({ config });
      try {
        const [c] = await session(s, { sub: 'yan' });
        c.send({ type: 'chat', id: 'p3', model: 'paid', message: 'Again' });
        assert.equal((await c.next((m) => m.id === 'p3')).code, 'BUDGET_EXCEEDED');
      } finally {
        await s.stop();
      }

      // A corrupt file is reported and set aside; sluice starts from zero.
      fs.writeFileSync(stateFile, '{"format":"sluice-budgets","version":1,"spend":[{"user":');
      s = await startSluice({ config });
      try {
        await s.waitLog(/level=error event=budgets\.corrupt[^\n]*not a valid budgets file[^\n]*kept as/);
        const [c] = await session(s, { sub: 'yan' });
        c.send({ type: 'chat', id: 'p4', model: 'paid', message: 'Again' });
        assert.equal((await c.next((m) => m.id === 'p4')).type, 'start');
      } finally {
        await s.stop();
      }
      assert.equal(fs.readdirSync(dir).filter((f) => f.startsWith('budgets.json.corrupt-')).length, 1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // The crossing token arrives in the middle of a chunk of several: the provider call is
  // cancelled from inside its own delta callback, for every wire format.
  test('real providers are stopped mid-chunk at the budget', async () => {
    const mock = await startMock();
    const price = { input_per_1m: 0, output_per_1m: 1000000 };
    const models = {};
    for (const f of ['openai', 'anthropic', 'gemini', 'ollama'])
      models[`paid-${f}`] = { provider: `mock${f}`, upstream_model: 'synth:tokens=200,chunk=8', price };
    const s = await startSluice({
      config: {
        providers: mockProviders(mock.url),
        models,
        limits: { messages_per_minute: 1000 },
        budgets: { usd_per_day: 3, state_file: null },
      },
    });
    try {
      for (const f of ['openai', 'anthropic', 'gemini', 'ollama']) {
        const [c] = await session(s, { sub: `budget-${f}` });
        c.send({ type: 'chat', id: 'b', model: `paid-${f}`, message: 'Count' });
        const ev = await c.collect('b');
        const end = ev.at(-1);
        assert.equal(end.type, 'error', f);
        assert.equal(end.code, 'BUDGET_EXCEEDED', f);
        assert.equal(ev.filter((e) => e.type === 'delta').length, 4, f);
        assert.equal(end.usage.output_tokens, 4, f);
        c.close();
      }
    } finally {
      await s.stop();
      await mock.stop();
    }
  });

  test('a state file that cannot be written stops the start with a clear message', async () => {
    const stderr = await refusedStart({ auth: { jwt: { secret: 'e2e-secret-0123456789abcdef0123456789abcdef' } }, budgets: { usd_per_day: 1, state_file: '/nonexistent-dir/budgets.json' } });
    assert.match(stderr, /budgets\.state_file: cannot create \/nonexistent-dir\/budgets\.json\.tmp/);
  });
});
