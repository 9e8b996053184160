// Authentication: query token, Bearer header, auth message, API keys; failures and timeouts.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Client, jwt, SECRET, startSluice } from './lib/harness.mjs';

const API_KEY = 'sk-sluice-test-key-0123456789';
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

describe('auth', () => {
  let s;
  before(async () => {
    s = await startSluice({
      config: {
        auth: {
          jwt: { secret: SECRET, issuer: 'sluice-tests' },
          api_keys: [{ name: 'ci-bot', sha256: sha256(API_KEY) }],
          // These tests refuse many tokens from one address on purpose.
          throttle: { burst: 0 },
        },
        limits: { auth_timeout: '400ms' },
      },
    });
  });
  after(async () => { await s.stop(); });

  const good = (claims = {}) => jwt({ iss: 'sluice-tests', ...claims });

  test('a token in the query authenticates at once', async () => {
    const c = await Client.open(`${s.wsUrl}/ws?token=${good({ sub: 'alice' })}`);
    const r = await c.next('ready');
    assert.equal(r.user, 'alice');
    assert.ok(r.session.length >= 8);
    assert.equal(typeof r.heartbeat_ms, 'number');
    assert.ok(r.limits.max_streams >= 1);
    assert.ok(r.models.some((m) => m.id === 'demo'));
    c.close();
  });

  test('an Authorization: Bearer header authenticates', async () => {
    const c = await Client.open(`${s.wsUrl}/ws`, { headers: { Authorization: `Bearer ${good({ sub: 'bob' })}` } });
    assert.equal((await c.next('ready')).user, 'bob');
    c.close();
  });

  test('a first auth message authenticates', async () => {
    const c = await Client.open(`${s.wsUrl}/ws`);
    c.send({ type: 'auth', token: good({ sub: 'carol' }) });
    assert.equal((await c.next('ready')).user, 'carol');
    c.close();
  });

  test('an API key authenticates as its configured name', async () => {
    const c = await Client.open(`${s.wsUrl}/ws`);
    c.send({ type: 'auth', token: API_KEY });
    assert.equal((await c.next('ready')).user, 'ci-bot');
    c.close();
  });

  test('messages before auth get AUTH_REQUIRED and the session stays open', async () => {
    const c = await Client.open(`${s.wsUrl}/ws`);
    c.send({ type: 'chat', message: 'hi' });
    assert.equal((await c.next('error')).code, 'AUTH_REQUIRED');
    c.send({ type: 'ping' });
    assert.equal((await c.next('error')).code, 'AUTH_REQUIRED');
    c.send({ type: 'auth', token: good() });
    await c.next('ready');
    c.close();
  });

  const refusals = [
    ['wrong secret', () => jwt({ iss: 'sluice-tests' }, { secret: 'another-secret-0123456789abcdef0123' }), /signature/],
    ['expired', () => good({ exp: Math.floor(Date.now() / 1000) - 3600 }), /expired/],
    ['not yet valid', () => good({ nbf: Math.floor(Date.now() / 1000) + 3600 }), /not yet/],
    ['no exp (auth.jwt.require_exp is on by default)', () => good({ exp: undefined }), /no expiry/],
    ['wrong issuer', () => jwt({ iss: 'someone-else' }), /issuer/],
    ['alg none', () => {
      const b = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
      return `${b({ alg: 'none', typ: 'JWT' })}.${b({ sub: 'mallory', iss: 'sluice-tests' })}.`;
    }, /algorithm/],
    ['HS512 not configured', () => {
      const b = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const h = b({ alg: 'HS512', typ: 'JWT' }), p = b({ sub: 'x', iss: 'sluice-tests' });
      return `${h}.${p}.${crypto.createHmac('sha512', SECRET).update(`${h}.${p}`).digest('base64url')}`;
    }, /algorithm/],
    ['unknown API key', () => 'sk-not-a-key', /API key/],
  ];
  for (const [name, make, re] of refusals) {
    test(`refused: ${name} -> AUTH_FAILED, close 4001`, async () => {
      const c = await Client.open(`${s.wsUrl}/ws`);
      c.send({ type: 'auth', token: make() });
      const err = await c.next('error');
      assert.equal(err.code, 'AUTH_FAILED');
      assert.match(err.message, re);
      const { code, reason } = await c.waitClose();
      assert.equal(code, 4001);
      assert.match(reason, /authentication failed/);
    });
  }

  test('a bad token in the query is refused the same way', async () => {
    const c = await Client.open(`${s.wsUrl}/ws?token=garbage.garbage.garbage`);
    assert.equal((await c.next('error')).code, 'AUTH_FAILED');
    assert.equal((await c.waitClose()).code, 4001);
  });

  test('a token over 8 KiB in the query or a header is refused as too long, not ignored', async () => {
    const long = 'a'.repeat(9000);
    for (const open of [
      () => Client.open(`${s.wsUrl}/ws?token=${long}`),
      () => Client.open(`${s.wsUrl}/ws`, { headers: { Authorization: `Bearer ${long}` } }),
    ]) {
      const c = await open();
      const err = await c.next('error');
      assert.equal(err.code, 'AUTH_FAILED');
      assert.match(err.message, /token too long/);
      const { code, reason } = await c.waitClose();
      assert.equal(code, 4001);
      assert.match(reason, /token too long/);
    }
  });

  test('a token with a broken escape in the query is 400 at the handshake', async () => {
    await assert.rejects(Client.open(`${s.wsUrl}/ws?token=abc%zz`), (e) => e.status === 400 && /malformed token/.test(e.body));
  });

  test('no authentication within auth_timeout closes with 4003', async () => {
    const c = await Client.open(`${s.wsUrl}/ws`);
    const { code, reason } = await c.waitClose(5000);
    assert.equal(code, 4003);
    assert.match(reason, /auth/);
  });

  test('the token never shows up in the logs', async () => {
    const tok = good({ sub: 'secretive' });
    const c = await Client.open(`${s.wsUrl}/ws?token=${tok}`);
    await c.next('ready');
    c.close();
    await c.waitClose();
    assert.ok(!s.stderr().includes(tok.split('.')[2]));
    assert.ok(!s.stderr().includes(API_KEY));
  });
});

describe('auth failures are throttled per address', () => {
  let s;
  before(async () => {
    s = await startSluice({
      config: { auth: { jwt: { secret: SECRET }, throttle: { burst: 3, refill: '30s' } } },
    });
  });
  after(async () => { await s.stop(); });

  async function attempt(token) {
    const c = await Client.open(`${s.wsUrl}/ws?token=${encodeURIComponent(token)}`);
    const m = await c.next((x) => x.type === 'error' || x.type === 'ready');
    c.close();
    return m;
  }

  test('past the burst, even a good token is refused without being checked, with a retry hint', async () => {
    for (let i = 0; i < 3; i++) {
      const m = await attempt(`guess-${i}`);
      assert.equal(m.code, 'AUTH_FAILED');
      assert.doesNotMatch(m.message, /too many/);
    }
    const blocked = await attempt(jwt({ sub: 'legit' }));
    assert.equal(blocked.code, 'AUTH_FAILED');
    assert.match(blocked.message, /too many failed attempts/);
    assert.ok(blocked.retry_after_ms > 0);
    // The HTTP API and Socket.IO share the same throttle.
    const r = await fetch(`${s.url}/v1/models`, { headers: { Authorization: `Bearer ${jwt({ sub: 'legit' })}` } });
    assert.equal(r.status, 401);
    assert.match((await r.json()).error.message, /too many failed attempts/);
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
  });
});
