// The hard edges of the network layer: clients that send and never read (pipelined HTTP,
// ping floods before authentication, the echo endpoint) are held to one cap on their queued
// output and reset once it makes no progress, while other clients are served; a process out
// of file descriptors sheds load instead of spinning.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { describe, test } from 'node:test';
import { cpuOf, rssOf, startSluice } from './lib/harness.mjs';

const MB = 1024 * 1024;

function connect(port) {
  const sock = net.connect(port, '127.0.0.1');
  return new Promise((resolve, reject) => {
    sock.once('connect', () => resolve(sock));
    sock.once('error', reject);
  });
}

// A masked client frame.
function frame(opcode, payload) {
  const mask = crypto.randomBytes(4);
  const len = payload.length;
  let head;
  if (len < 126) head = Buffer.from([0x80 | opcode, 0x80 | len]);
  else if (len < 65536) head = Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 255]);
  else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, mask, Buffer.from(payload.map((b, i) => b ^ mask[i & 3]))]);
}

// A socket upgraded to WebSocket on path, whose 101 has been read; it reads nothing more.
async function upgraded(port, path) {
  const sock = await connect(port);
  sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  await new Promise((resolve, reject) => {
    let got = '';
    const onData = (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        sock.off('data', onData);
        if (!got.startsWith('HTTP/1.1 101')) reject(new Error(got));
        else resolve();
      }
    };
    sock.on('data', onData);
  });
  sock.pause();
  return sock;
}

// Writes chunk again and again, never reading, up to `total` bytes, then a chunk every 100 ms,
// until the connection fails: a paused socket sees the server's reset only when it writes.
// Resolves with { sent, error }; `sent` counts the bytes the kernel took.
function flood(sock, chunk, total) {
  return new Promise((resolve) => {
    let sent = 0;
    let done = false;
    let trickle = null;
    const finish = (error) => {
      if (done) return;
      done = true;
      clearInterval(trickle);
      resolve({ sent, error });
    };
    sock.on('error', (e) => finish(e.code));
    sock.on('close', () => finish('closed'));
    const written = (e) => { if (!e) sent += chunk.length; };
    const pump = () => {
      while (!done && sent < total) {
        if (!sock.write(chunk, written)) {
          sock.once('drain', pump);
          return;
        }
      }
      if (!done && !trickle) trickle = setInterval(() => sock.write(chunk, written), 100);
    };
    pump();
  });
}

// Samples the process's resident memory until stop() and returns the peak growth.
function watchRss(pid) {
  const base = rssOf(pid);
  let peak = base;
  const t = setInterval(() => { try { peak = Math.max(peak, rssOf(pid)); } catch { /* gone */ } }, 50);
  return { stop: () => { clearInterval(t); return peak - base; } };
}

async function healthz(port) {
  const t0 = Date.now();
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(r.status, 200);
  await r.text();
  return Date.now() - t0;
}

describe('clients that do not read', () => {
  const config = {
    debug: { echo: true },
    limits: { send_timeout: '1s', max_queued_bytes: '256KiB' },
  };

  // Each case: what the client sends, again and again, never reading the answers. Without
  // the cap every byte sent would be answered into the server's memory.
  const cases = [
    {
      name: 'pipelined requests for a 17 KB file',
      total: 1 * MB, // ~25000 requests: 450 MB of answers if all were queued
      fitsInKernel: true, // 1 MB of requests may all go into socket buffers
      open: (port) => connect(port).then((s) => { s.pause(); return s; }),
      chunk: Buffer.from('GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(1000)),
    },
    {
      name: 'a ping flood before authentication',
      total: 256 * MB, // each ping's pong is as large as the ping
      open: (port) => upgraded(port, '/ws'),
      chunk: Buffer.concat(Array.from({ length: 500 }, () => frame(9, Buffer.alloc(125, 7)))),
    },
    {
      name: 'the echo endpoint',
      total: 256 * MB,
      open: (port) => upgraded(port, '/ws/echo'),
      chunk: frame(2, Buffer.alloc(60000, 1)),
    },
  ];

  for (const c of cases) {
    test(`${c.name}: output capped, other clients served, reset after send_timeout`, async () => {
      const s = await startSluice({ config });
      try {
        await healthz(s.port);
        const mark = s.mark();
        const rss = watchRss(s.proc.pid);
        const sock = await c.open(s.port);
        const flooding = flood(sock, c.chunk, c.total);
        // Meanwhile another client is answered at once.
        assert.ok(await healthz(s.port) < 2000);
        const r = await flooding;
        const grew = rss.stop();
        if (!c.fitsInKernel)
          assert.ok(r.sent < c.total, `the server read all ${r.sent} bytes: it never stopped reading`);
        assert.ok(['ECONNRESET', 'EPIPE'].includes(r.error), `ended by ${r.error}, not a reset`);
        assert.ok(grew < 100 * MB, `sluice grew by ${Math.round(grew / MB)} MB`);
        await s.waitLog(/event=conn\.send_timeout .*queued=\d+/, mark);
        assert.ok(await healthz(s.port) < 2000);
        sock.destroy();
      } finally {
        await s.stop();
      }
    });
  }
});

describe('out of file descriptors', () => {
  test('accepting pauses and sheds with a fast 503 instead of spinning; clients already in are served', async () => {
    // 128 descriptors for 2 workers: max_connections is fitted to what is left (with a
    // warning), and the connections refused past it hold descriptors while they close.
    const s = await startSluice({
      config: { workers: 2, limits: { header_timeout: '20s' } },
      wrap: ['prlimit', '--nofile=128:128'],
    });
    const held = [];
    try {
      await s.waitLog(/event=config\.max_connections configured=100000 serving=\d+ nofile=128/);
      // A keep-alive client that came before the flood.
      const early = await connect(s.port);
      const ask = () => new Promise((resolve, reject) => {
        let got = '';
        const onData = (d) => {
          got += d.toString();
          if (/\r\n\r\n[^]*"ok"/.test(got)) { early.off('data', onData); resolve(got); }
        };
        early.on('data', onData);
        early.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', (e) => e && reject(e));
      });
      assert.match(await ask(), /^HTTP\/1\.1 200/);

      const mark = s.mark();
      const answers = [];
      await Promise.all(Array.from({ length: 300 }, () => new Promise((resolve) => {
        const sock = net.connect(s.port, '127.0.0.1');
        let got = '';
        sock.on('data', (d) => { got += d.toString(); });
        sock.on('error', () => {});
        sock.on('close', () => answers.push(got));
        sock.once('connect', resolve);
        sock.once('error', resolve);
        held.push(sock);
      })));
      await s.waitLog(/event=accept\.overload .*shed=\d+/, mark);
      // No spinning: two workers at 100 % would burn two CPU seconds per second.
      const cpu0 = cpuOf(s.proc.pid);
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, 1000)); // a measurement window, not a wait for an event
      const busy = (cpuOf(s.proc.pid) - cpu0) / ((Date.now() - t0) / 1000);
      assert.ok(busy < 0.5, `sluice used ${busy.toFixed(2)} CPU while out of descriptors`);
      // The client already in is served meanwhile.
      assert.match(await ask(), /^HTTP\/1\.1 200/);
      // Those shed were told why.
      assert.ok(answers.some((a) => /^HTTP\/1\.1 503[^]*overloaded/.test(a)), `answers: ${answers.slice(0, 3)}`);

      for (const h of held) h.destroy();
      held.length = 0;
      // Descriptors come back: new clients are accepted again.
      let ok = false;
      for (let i = 0; i < 50 && !ok; i++) {
        ok = await healthz(s.port).then(() => true, () => false);
        if (!ok) await new Promise((r) => setTimeout(r, 200));
      }
      assert.ok(ok, 'accepting again once descriptors were freed');
      early.destroy();
    } finally {
      for (const h of held) h.destroy();
      const t0 = Date.now();
      await s.stop();
      assert.ok(Date.now() - t0 < 10000, 'SIGTERM is heard');
    }
  });
});
