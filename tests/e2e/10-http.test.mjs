// HTTP/1.1 server: routes, limits, keep-alive, slowloris, connection cap.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { rawExchange, startSluice } from './lib/harness.mjs';

describe('http', () => {
  let s;
  before(async () => {
    s = await startSluice({
      config: {
        limits: {
          header_timeout: '300ms',
          max_header_bytes: 4096,
          max_body_bytes: 1024,
        },
      },
    });
  });
  after(async () => { await s.stop(); });

  test('healthz and readyz answer JSON', async () => {
    const h = await fetch(`${s.url}/healthz`);
    assert.equal(h.status, 200);
    assert.deepEqual(await h.json(), { status: 'ok' });
    const r = await fetch(`${s.url}/readyz`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { status: 'ready' });
  });

  test('HEAD gets headers without a body', async () => {
    const r = await fetch(`${s.url}/healthz`, { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-length'), '16');
    assert.equal(await r.text(), '');
  });

  test('the test page is served at / and /ws/test', async () => {
    for (const p of ['/', '/ws/test']) {
      const r = await fetch(`${s.url}${p}`);
      assert.equal(r.status, 200, p);
      assert.match(r.headers.get('content-type'), /^text\/html/);
      assert.match(await r.text(), /<html/i);
    }
  });

  test('unknown paths are 404 and wrong methods 405', async () => {
    const r = await fetch(`${s.url}/no/such/thing`);
    assert.equal(r.status, 404);
    assert.equal((await r.json()).error.status, 404);
    const p = await fetch(`${s.url}/healthz`, { method: 'POST', body: 'x' });
    assert.equal(p.status, 405);
    assert.match(p.headers.get('allow'), /GET/);
  });

  test('path traversal never leaves the web root', async () => {
    for (const p of ['/../Makefile', '/%2e%2e/Makefile', '/..%2fMakefile', '/a/../../Makefile']) {
      const got = (await rawExchange(s.port, [`GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`])).toString();
      assert.match(got, /^HTTP\/1\.1 (400|404)/, p);
      assert.doesNotMatch(got, /CFLAGS/, p);
    }
  });

  test('a request line over the limit is 414, headers over the limit 431', async () => {
    const long = `GET /${'a'.repeat(5000)} HTTP/1.1\r\nHost: x\r\n\r\n`;
    assert.match((await rawExchange(s.port, [long])).toString(), /^HTTP\/1\.1 414/);
    const many = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(5000)}\r\n\r\n`;
    assert.match((await rawExchange(s.port, [many])).toString(), /^HTTP\/1\.1 431/);
  });

  test('a body on a route that takes none is refused at once, without waiting for it', async () => {
    // Only the head is sent: the answer may not wait for the megabyte it announces.
    const head = 'GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n';
    const t0 = Date.now();
    const got = (await rawExchange(s.port, [head])).toString();
    assert.match(got, /^HTTP\/1\.1 413/);
    assert.match(got, /takes no request body/);
    assert.match(got, /Connection: close/i);
    assert.ok(Date.now() - t0 < 2000);
    // A method the route does not serve says so, body or not.
    const post = 'POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n';
    const p = (await rawExchange(s.port, [post])).toString();
    assert.match(p, /^HTTP\/1\.1 405/);
    assert.match(p, /Allow: GET, HEAD/i);
    // Chunked too.
    const chunked = 'GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n';
    assert.match((await rawExchange(s.port, [chunked])).toString(), /^HTTP\/1\.1 413/);
  });

  test('HTTP versions other than 1.0 and 1.1 get 505', async () => {
    for (const v of ['9.9', '2.0', '1.2']) {
      const got = (await rawExchange(s.port, [`GET /healthz HTTP/${v}\r\nHost: x\r\n\r\n`])).toString();
      assert.match(got, /^HTTP\/1\.1 505 HTTP Version Not Supported/, v);
    }
    const old = (await rawExchange(s.port, ['GET /healthz HTTP/1.0\r\n\r\n'])).toString();
    assert.match(old, /^HTTP\/1\.1 200/);
  });

  test('garbage is 400 and closes', async () => {
    const got = (await rawExchange(s.port, ['HELLO WORLD\r\n\r\n'])).toString();
    assert.match(got, /^HTTP\/1\.1 400/);
    assert.match(got, /Connection: close/i);
  });

  test('slow headers are cut off with 408 (slowloris)', async () => {
    const got = (await rawExchange(s.port, ['GET /healthz HTTP/1.1\r\nHost: x\r\n'])).toString();
    assert.match(got, /^HTTP\/1\.1 408/);
  });

  test('keep-alive serves pipelined requests in order', async () => {
    const two = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const got = (await rawExchange(s.port, [two])).toString();
    const statuses = [...got.matchAll(/HTTP\/1\.1 (\d+)/g)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '200']);
    assert.ok(got.indexOf('"ok"') < got.indexOf('"ready"'));
  });

  test('a request split into many small writes is parsed', async () => {
    const req = 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const got = (await rawExchange(s.port, req.split(''))).toString();
    assert.match(got, /^HTTP\/1\.1 200/);
  });
});

describe('connection cap', () => {
  test('past max_connections only health probes are answered; the rest get 503', async () => {
    const s = await startSluice({ config: { limits: { max_connections: 2 } } });
    try {
      const net = await import('node:net');
      const held = [];
      for (let i = 0; i < 2; i++) {
        const sock = net.connect(s.port, '127.0.0.1');
        await new Promise((r) => sock.once('connect', r));
        held.push(sock);
      }
      // Liveness and readiness must not fail for being busy...
      for (const p of ['/healthz', '/readyz']) {
        const got = (await rawExchange(s.port, [`GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`])).toString();
        assert.match(got, /^HTTP\/1\.1 200/, p);
        assert.match(got, /Connection: close/i, p);
      }
      // ... everything else is refused, with a hint to come back.
      for (const p of ['/', '/metrics', '/ws']) {
        const got = (await rawExchange(s.port, [`GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`])).toString();
        assert.match(got, /^HTTP\/1\.1 503/, p);
        assert.match(got, /Retry-After/i, p);
        assert.match(got, /too many connections/, p);
      }
      for (const h of held) h.destroy();
    } finally {
      await s.stop();
    }
  });
});
