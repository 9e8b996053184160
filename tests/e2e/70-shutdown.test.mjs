// Graceful shutdown: drain (readyz 503, no new sessions), streams finish, then 1001.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { Client, jwt, session, startSluice, textOf } from './lib/harness.mjs';

// One keep-alive HTTP connection that can send several requests.
async function keepAlive(port) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  let buf = '';
  const waiters = [];
  sock.on('data', (d) => {
    buf += d.toString();
    for (const w of [...waiters]) w();
  });
  return {
    get(path) {
      return new Promise((resolve, reject) => {
        const start = buf.length;
        const timer = setTimeout(() => reject(new Error(`no response to ${path}`)), 8000);
        const check = () => {
          const text = buf.slice(start);
          const end = text.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = text.slice(0, end);
          const len = Number((head.match(/content-length: (\d+)/i) || [0, 0])[1]);
          if (text.length >= end + 4 + len) {
            waiters.splice(waiters.indexOf(check), 1);
            clearTimeout(timer);
            resolve(Number(head.match(/^HTTP\/1\.1 (\d+)/)[1]));
          }
        };
        waiters.push(check);
        sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, (e) => e && reject(e));
      });
    },
    close: () => sock.destroy(),
  };
}

describe('shutdown', () => {
  test('SIGTERM drains: streams finish, readyz is 503, new sessions are refused, then 1001', async () => {
    const s = await startSluice({
      config: {
        providers: { demo: { kind: 'demo', tokens_per_second: 50 } },
        shutdown: { drain_timeout: '20s', retry_after: '2s' },
      },
    });
    const http = await keepAlive(s.port);
    assert.equal(await http.get('/readyz'), 200);
    const [busy] = await session(s, { sub: 'busy' });
    const [idle] = await session(s, { sub: 'idle' });
    busy.send({ type: 'chat', id: 'last', message: 'finish me', max_tokens: 25 });
    await busy.next('delta');

    s.proc.kill('SIGTERM');
    const idleClose = await idle.waitClose();
    assert.equal(idleClose.code, 1001);
    const hint = JSON.parse(idleClose.reason);
    assert.equal(hint.retry_after_ms, 2000);
    assert.equal(hint.resume, true);

    assert.equal(await http.get('/readyz'), 503);
    await assert.rejects(Client.open(`${s.wsUrl}/ws?token=${jwt()}`), (e) => e.status === 503);

    const ev = await busy.collect('last');
    assert.equal(ev.at(-1).type, 'done');
    assert.equal(busy.all.filter((e) => e.id === 'last' && e.type === 'delta').length, 25);
    assert.ok(textOf(ev).length > 0);
    assert.equal((await busy.waitClose()).code, 1001);
    http.close();
    await s.stop({ signal: null });
  });

  test('past the drain timeout clients get 1001 without waiting for their streams', async () => {
    const s = await startSluice({
      config: {
        providers: { demo: { kind: 'demo', tokens_per_second: 10 } },
        shutdown: { drain_timeout: '300ms' },
      },
    });
    const [c] = await session(s);
    c.send({ type: 'chat', id: 'endless', message: 'never finishes in time', max_tokens: 5000 });
    await c.next('delta');
    s.proc.kill('SIGTERM');
    const { code } = await c.waitClose(10000);
    assert.equal(code, 1001);
    assert.ok(!c.all.some((m) => m.type === 'done'));
    await s.stop({ signal: null });
  });

  test('clients that never read do not hold the process past drain_timeout plus the close deadline', async () => {
    const s = await startSluice({
      config: {
        providers: { demo: { kind: 'demo', tokens_per_second: 1000000 } },
        shutdown: { drain_timeout: '1s' },
      },
    });
    // One pipelines requests for a 17 KB file, one floods pings, one runs fast streams; none
    // reads a byte, so the server's writes to them are stuck when it shuts down.
    const stuck = [];
    const http = net.connect(s.port, '127.0.0.1');
    await new Promise((r) => http.once('connect', r));
    http.pause();
    http.on('error', () => {});
    http.write('GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(20000));
    stuck.push(http);
    const [c] = await session(s);
    for (let i = 0; i < 8; i++) c.send({ type: 'chat', id: `f${i}`, message: 'fast', max_tokens: 100000 });
    await c.next('delta');
    c.ws._socket.pause();
    const mark = s.mark();
    const t0 = Date.now();
    s.proc.kill('SIGTERM');
    let timer;
    const r = await Promise.race([
      s.exited,
      new Promise((resolve) => { timer = setTimeout(() => resolve({ code: 'still running after 20 s' }), 20000); }),
    ]);
    clearTimeout(timer);
    const took = Date.now() - t0;
    assert.equal(r.code, 0);
    // drain_timeout (1 s) + the close deadline (5 s) + margin for the sanitizer build
    assert.ok(took < 9000, `exited after ${took} ms`);
    assert.match(s.stderr().slice(mark), /event=conn\.close_timeout/);
    for (const x of stuck) x.destroy();
    c.ws.terminate();
    await s.stop({ signal: null });
  });

  test('a second signal exits at once', async () => {
    const s = await startSluice({
      config: {
        providers: { demo: { kind: 'demo', tokens_per_second: 10 } },
        shutdown: { drain_timeout: '60s' },
      },
    });
    const [c] = await session(s);
    c.send({ type: 'chat', id: 'long', message: 'long one', max_tokens: 5000 });
    await c.next('delta');
    const mark = s.mark();
    s.proc.kill('SIGTERM');
    await s.waitLog(/shutdown\.drain/, mark);
    s.proc.kill('SIGTERM');
    const r = await s.exited;
    assert.equal(r.code, 1);
    await s.stop({ signal: null, expectCode: 1 });
  });
});
