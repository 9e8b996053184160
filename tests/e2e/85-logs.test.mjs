// Structured logs, in both formats: every line parses on its own, has ts, level and event;
// an access line per HTTP request (upgrades included); a stream.end line per stream with
// its ids, model, provider, tokens, TTFT, duration and outcome; and no token, prompt or
// key ever reaches the log, although all of them went through the server.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { describe, test } from 'node:test';
import { Client, SECRET, jwt, rawExchange, session, startSluice } from './lib/harness.mjs';

const CANARY = {
  prompt: 'PROMPTCANARY4471 tell me',
  system: 'SYSTEMCANARY8830 be brief',
  apiKey: 'sk-client-APIKEYCANARY1965',
  providerKey: 'sk-provider-PROVIDERCANARY2208',
};

function config(format, level = 'info') {
  return {
    log: { format, level },
    auth: {
      jwt: { secret: SECRET },
      api_keys: [{ name: 'ci', sha256: crypto.createHash('sha256').update(CANARY.apiKey).digest('hex') }],
    },
    providers: {
      demo: { kind: 'demo', tokens_per_second: 200 },
      broken: { kind: 'openai', base_url: 'http://127.0.0.1:1/v1', api_key: CANARY.providerKey, max_retries: 0 },
    },
    models: { demo: { provider: 'demo' }, broken: { provider: 'broken' } },
    agents: { terse: { model: 'demo', system: CANARY.system } },
    limits: { messages_per_minute: 1000 },
  };
}

// logfmt as sluice writes it: key=bare or key="quoted with JSON escapes", one space apart.
function parseLogfmt(line) {
  const out = {};
  const re = /([A-Za-z_][\w.]*)=("(?:[^"\\]|\\.)*"|[^\s"=]*)(?: |$)/y;
  let i = 0;
  while (i < line.length) {
    re.lastIndex = i;
    const m = re.exec(line);
    if (!m) throw new Error(`not logfmt at column ${i}: ${line}`);
    assert.ok(!(m[1] in out), `duplicate key ${m[1]}: ${line}`);
    out[m[1]] = m[2].startsWith('"') ? JSON.parse(m[2]) : m[2];
    i = re.lastIndex;
  }
  return out;
}

function parseLines(text, format) {
  const lines = text.split('\n');
  assert.equal(lines.pop(), '', 'the log ends with a newline');
  return lines.map((line) => {
    const rec = format === 'json' ? JSON.parse(line) : parseLogfmt(line);
    assert.match(String(rec.ts), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, line);
    assert.ok(['debug', 'info', 'warn', 'error'].includes(rec.level), line);
    assert.match(String(rec.event), /^[a-z_]+\.[a-z_]+$/, line);
    return rec;
  });
}

function get(server, path, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}${path}`, { method, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end();
  });
}

// Runs the same workload against a fresh server; returns what the clients saw and the log.
async function workload(format) {
  const s = await startSluice({ config: config(format) });
  const seen = {};
  try {
    seen.statuses = [await get(s, '/'), await get(s, '/no/such/file'), await get(s, '/healthz', 'POST'),
      await get(s, '/metrics')];
    const raw = (await rawExchange(s.port, ['GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'])).toString();
    assert.match(raw, /^HTTP\/1\.1 400/);

    // A JWT in the query string; a chat whose prompt the demo model quotes back.
    seen.jwt = jwt({ sub: 'logger' });
    const [c1, r1] = await session(s, { sub: 'logger' });
    seen.session1 = r1.session;
    c1.send({ type: 'chat', id: 'ok-1', model: 'demo', messages: [{ role: 'user', content: CANARY.prompt }] });
    const ev = await c1.collect('ok-1');
    seen.deltas1 = ev.filter((e) => e.type === 'delta').length;
    seen.text1 = ev.filter((e) => e.type === 'delta').map((e) => e.text).join('');
    seen.done1 = ev.at(-1);
    // An agent with a system prompt, cancelled after its first token.
    c1.send({ type: 'chat', id: 'cx-2', agent: 'terse', message: CANARY.prompt });
    await c1.next((m) => m.id === 'cx-2' && m.type === 'delta');
    c1.send({ type: 'cancel', id: 'cx-2' });
    assert.equal((await c1.collect('cx-2')).at(-1).type, 'cancelled');
    // A provider that fails; an unknown model (no stream at all).
    c1.send({ type: 'chat', id: 'er-3', model: 'broken', message: CANARY.prompt });
    assert.equal((await c1.collect('er-3')).at(-1).type, 'error');
    c1.send({ type: 'chat', id: 'un-4', model: 'nope', message: CANARY.prompt });
    assert.equal((await c1.next((m) => m.id === 'un-4')).code, 'UNKNOWN_MODEL');
    c1.close();

    // An API key in the first message.
    const c2 = await Client.open(`${s.wsUrl}/ws`);
    c2.send({ type: 'auth', token: CANARY.apiKey });
    seen.user2 = (await c2.next('ready')).user;
    c2.close();

    // A refused token.
    seen.badToken = jwt({ sub: 'intruder' }, { secret: 'another-secret-0123456789abcdef0123456789' });
    const c3 = await Client.open(`${s.wsUrl}/ws?token=${seen.badToken}`);
    assert.equal((await c3.waitClose()).code, 4001);
    await s.waitLog(/session\.closed[^\n]*4001/);
    await s.waitLog(/session\.closed[^\n]*ci/);
  } finally {
    await s.stop();
  }
  return { seen, text: s.stderr(), lines: parseLines(s.stderr(), format) };
}

function checkWorkload({ seen, text, lines }) {
  assert.deepEqual(seen.statuses, [200, 404, 405, 200]);
  const num = (v) => Number(v);
  const by = (event, pred = () => true) => lines.filter((l) => l.event === event && pred(l));

  // Access lines: one per request, with the right status; upgrades too; never a query.
  const access = by('http.access');
  for (const [path, method, status] of [['/', 'GET', 200], ['/no/such/file', 'GET', 404],
    ['/healthz', 'POST', 405], ['/metrics', 'GET', 200]]) {
    assert.equal(access.filter((l) => l.path === path && l.method === method && num(l.status) === status).length, 1,
      `access line for ${method} ${path} ${status}`);
  }
  const upgrades = access.filter((l) => num(l.status) === 101);
  assert.equal(upgrades.length, 3, 'three WebSocket upgrades');
  for (const u of upgrades) {
    assert.equal(u.path, '/ws');
    assert.equal(u.upgrade, 'native');
    assert.ok(num(u.conn) > 0 && u.peer && u.worker !== undefined);
  }
  const bad = access.filter((l) => num(l.status) === 400);
  assert.equal(bad.length, 1);
  assert.match(bad[0].error, /header/);
  assert.ok(access.every((l) => !String(l.path ?? '').includes('?')));

  // The session: its ready line carries the connection of its upgrade.
  const [ready] = by('session.ready', (l) => l.session === seen.session1);
  assert.ok(ready, 'session.ready for the first session');
  assert.equal(ready.user, 'logger');
  const up = upgrades.find((u) => u.conn === ready.conn && u.worker === ready.worker);
  assert.ok(up, 'the upgrade line of the same connection');
  assert.equal(by('session.ready', (l) => l.user === seen.user2).length, 1);
  assert.equal(seen.user2, 'ci');

  // stream.end: ids, model, provider, tokens, TTFT, duration, outcome.
  const end = (id) => {
    const e = by('stream.end', (l) => l.stream === id);
    assert.equal(e.length, 1, `one stream.end for ${id}`);
    assert.equal(e[0].session, seen.session1);
    assert.equal(e[0].conn, ready.conn);
    assert.equal(e[0].worker, ready.worker);
    assert.ok(num(e[0].duration_ms) >= 0);
    return e[0];
  };
  const e1 = end('ok-1');
  assert.equal(e1.level, 'info');
  assert.equal(e1.outcome, 'done');
  assert.equal(e1.model, 'demo');
  assert.equal(e1.provider, 'demo');
  assert.equal(num(e1.tokens_out), seen.deltas1);
  assert.equal(num(e1.tokens_in), seen.done1.usage.input_tokens);
  assert.ok(num(e1.ttft_ms) >= 0 && num(e1.ttft_ms) <= num(e1.duration_ms));
  const e2 = end('cx-2');
  assert.equal(e2.outcome, 'cancelled');
  assert.equal(e2.model, 'demo');
  assert.ok(num(e2.tokens_out) >= 1);
  assert.ok(e2.ttft_ms !== undefined);
  const e3 = end('er-3');
  assert.equal(e3.outcome, 'error');
  assert.equal(e3.level, 'warn');
  assert.equal(e3.provider, 'broken');
  assert.equal(e3.ttft_ms, undefined, 'no TTFT without a token');
  assert.equal(by('stream.end', (l) => l.stream === 'un-4').length, 0);

  // The refused token: an auth.failed line on its connection, and a close with 4001.
  const failed = by('auth.failed');
  assert.equal(failed.length, 1);
  assert.ok(failed[0].reason && failed[0].conn);
  assert.equal(by('session.closed', (l) => num(l.code) === 4001 && l.conn === failed[0].conn).length, 1);

  // Secrets and content went through the server, but never into its log.
  assert.match(seen.text1, /PROMPTCANARY4471/, 'the demo model quoted the prompt in its tokens');
  for (const secret of [CANARY.prompt, 'PROMPTCANARY', 'SYSTEMCANARY', 'APIKEYCANARY', 'PROVIDERCANARY',
    seen.jwt, seen.jwt.split('.')[2], seen.badToken.split('.')[2], SECRET, seen.text1.slice(0, 40)]) {
    assert.ok(!text.includes(secret), `the log contains ${secret}`);
  }
}

describe('structured logs', () => {
  test('logfmt: every line parses, with the access and stream lines and no secrets', async () => {
    checkWorkload(await workload('logfmt'));
  });

  test('JSON: every line parses, with the access and stream lines and no secrets', async () => {
    const w = await workload('json');
    checkWorkload(w);
    // Numbers are numbers in JSON.
    const e = w.lines.find((l) => l.event === 'stream.end' && l.stream === 'ok-1');
    assert.equal(typeof e.tokens_out, 'number');
    assert.equal(typeof e.ttft_ms, 'number');
    assert.equal(typeof e.conn, 'number');
  });

  test('log.level warn keeps the warnings and drops the rest', async () => {
    const s = await startSluice({ config: config('logfmt', 'warn') });
    try {
      assert.equal(await get(s, '/'), 200);
      const [c] = await session(s);
      c.send({ type: 'chat', id: 'w1', model: 'broken', message: 'hi' });
      assert.equal((await c.collect('w1')).at(-1).type, 'error');
      await s.waitLog(/event=stream\.end/);
      c.close();
    } finally {
      await s.stop();
    }
    const lines = parseLines(s.stderr(), 'logfmt');
    assert.ok(lines.length >= 1);
    assert.ok(lines.every((l) => l.level === 'warn' || l.level === 'error'), s.stderr());
    assert.equal(lines.filter((l) => l.event === 'stream.end' && l.stream === 'w1').length, 1);
  });
});
