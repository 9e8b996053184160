// Connections to providers: TLS verification on by default (and a configurable CA file),
// HTTP/2 multiplexing where the server offers it, keep-alive reuse, and the cap on
// connections per host.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { session, startMock, startSluice, textOf } from './lib/harness.mjs';
import { KEY, mockProviders } from './lib/providers.mjs';

// A small HTTPS server speaking HTTP/2 (and 1.1) with a self-signed certificate, answering
// Chat Completions with a short, slightly slow stream so that requests overlap.
async function startTlsUpstream() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-tls-'));
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  const seen = { sessions: 0, requests: [], maxConcurrent: 0, active: 0 };
  const server = http2.createSecureServer({
    key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile), allowHTTP1: true,
  });
  server.on('session', () => { seen.sessions++; });
  server.on('request', (req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', async () => {
      seen.requests.push({ version: req.httpVersion, auth: req.headers.authorization, body });
      seen.active++;
      seen.maxConcurrent = Math.max(seen.maxConcurrent, seen.active);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (o) => res.write(`data: ${JSON.stringify(o)}\n\n`);
      for (const w of ['over ', 'TLS']) {
        chunk({ choices: [{ index: 0, delta: { content: w }, finish_reason: null }] });
        await new Promise((r) => setTimeout(r, 150));
      }
      chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
      chunk({ choices: [], usage: { prompt_tokens: 4, completion_tokens: 2 } });
      res.end('data: [DONE]\n\n');
      seen.active--;
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${server.address().port}`,
    certFile,
    seen,
    async stop() {
      await new Promise((resolve) => server.close(resolve));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('TLS and HTTP/2', () => {
  let up;
  let s;
  let c;
  before(async () => {
    up = await startTlsUpstream();
    const base = { kind: 'openai', base_url: `${up.url}/v1`, api_key: KEY, max_retries: 0 };
    s = await startSluice({
      config: {
        providers: {
          trusted: { ...base, ca_file: up.certFile },
          untrusted: base, // the system CAs do not know this certificate
          unverified: { ...base, tls_verify: false },
        },
        models: {
          trusted: { provider: 'trusted' },
          untrusted: { provider: 'untrusted' },
          unverified: { provider: 'unverified' },
        },
      },
    });
    [c] = await session(s);
  });
  after(async () => {
    c?.close();
    // Idle connections to the upstream are closed by sluice at exit.
    await s?.stop();
    await up?.stop();
  });

  test('with the CA file, concurrent streams share one HTTP/2 connection', async () => {
    const ids = ['h1', 'h2', 'h3'];
    for (const id of ids) c.send({ type: 'chat', id, model: 'trusted', message: id });
    const results = await Promise.all(ids.map((id) => c.collect(id)));
    for (const ev of results) {
      assert.equal(ev.at(-1).type, 'done', JSON.stringify(ev.at(-1)));
      assert.equal(textOf(ev), 'over TLS');
      assert.deepEqual(ev.at(-1).usage, { input_tokens: 4, output_tokens: 2 });
    }
    assert.ok(up.seen.requests.every((r) => r.version === '2.0'), JSON.stringify(up.seen.requests));
    assert.equal(up.seen.sessions, 1, 'one connection, multiplexed');
    assert.ok(up.seen.maxConcurrent >= 2, 'the streams ran at the same time');
    assert.equal(up.seen.requests[0].auth, `Bearer ${KEY}`);
  });

  test('certificates are verified by default', async () => {
    c.send({ type: 'chat', id: 'u1', model: 'untrusted', message: 'hi' });
    const end = (await c.collect('u1')).at(-1);
    assert.equal(end.type, 'error');
    assert.equal(end.code, 'UPSTREAM_ERROR');
    assert.equal(end.retryable, false, 'a bad certificate does not heal by retrying');
    assert.match(end.message, /certificate|SSL/i);
  });

  test('tls_verify: false accepts it', async () => {
    c.send({ type: 'chat', id: 'v1', model: 'unverified', message: 'hi' });
    assert.equal((await c.collect('v1')).at(-1).type, 'done');
  });
});

describe('HTTP/1.1 keep-alive and the cap per host', () => {
  let mock;
  let s;
  let c;
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: mockProviders(mock.url, { max_connections: 2 }),
        models: {
          quick: { provider: 'mockopenai', upstream_model: 'synth:tokens=3' },
          slow: { provider: 'mockopenai', upstream_model: 'synth:tokens=6,rate=20' },
        },
        limits: { messages_per_minute: 100000, max_streams_per_connection: 16 },
      },
    });
    [c] = await session(s);
  });
  after(async () => {
    c?.close();
    await s?.stop();
    await mock.stop();
  });

  const stats = async () => (await fetch(`${mock.url}/_mock/stats`)).json();

  test('sequential requests reuse one connection', async () => {
    c.send({ type: 'chat', id: 'k0', model: 'quick', message: 'warm' });
    await c.collect('k0');
    const before = (await stats()).connections_total;
    for (let i = 1; i <= 6; i++) {
      c.send({ type: 'chat', id: `k${i}`, model: 'quick', message: `n${i}` });
      assert.equal((await c.collect(`k${i}`)).at(-1).type, 'done');
    }
    const opened = (await stats()).connections_total - before;
    assert.ok(opened <= 1, `${opened} new connections for 6 requests (1 may be this test's own)`);
  });

  test('no more than max_connections per host; the rest wait their turn', async () => {
    const ids = ['c1', 'c2', 'c3', 'c4', 'c5'].map((x) => `${x}-${Date.now()}`);
    for (const id of ids) c.send({ type: 'chat', id, model: 'slow', message: id });
    for (const ev of await Promise.all(ids.map((id) => c.collect(id)))) assert.equal(ev.at(-1).type, 'done');
    // The mock's log says when each request started and ended: count the overlap.
    const log = (await mock.log()).filter((r) => ids.some((id) => JSON.stringify(r.body).includes(id)));
    assert.equal(log.length, 5);
    const edges = log.flatMap((r) => [[r.started_ms, 1], [r.ended_ms, -1]])
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let open = 0;
    let peak = 0;
    for (const [, d] of edges) { open += d; peak = Math.max(peak, open); }
    assert.equal(peak, 2, `peak of ${peak} upstream requests at once`);
  });
});
