// WebSocket layer: handshake, framing rules and close codes, origin policy, echo.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Client, rawExchange, session, startSluice } from './lib/harness.mjs';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

function upgrade(path, version = '13') {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: ${version}\r\n\r\n`;
}

// A masked client frame.
function frame(opcode, payload, { fin = true, rsv = 0 } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const mask = crypto.randomBytes(4);
  let head;
  if (data.length < 126) {
    head = Buffer.from([(fin ? 0x80 : 0) | rsv | opcode, 0x80 | data.length]);
  } else if (data.length < 65536) {
    head = Buffer.from([(fin ? 0x80 : 0) | rsv | opcode, 0x80 | 126, data.length >> 8, data.length & 255]);
  } else {
    head = Buffer.alloc(10);
    head[0] = (fin ? 0x80 : 0) | rsv | opcode;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(data.length), 2);
  }
  const masked = Buffer.from(data.map((b, i) => b ^ mask[i & 3]));
  return Buffer.concat([head, mask, masked]);
}

// Connects, upgrades, and returns a raw socket plus a parser of server frames.
async function rawWs(port, path) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  sock.write(upgrade(path));
  let buf = Buffer.alloc(0);
  let handshakeDone = false;
  const frames = [];
  const waiters = [];
  let ended = false;
  const pump = () => {
    if (!handshakeDone) {
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      handshakeDone = true;
      buf = buf.subarray(i + 4);
    }
    for (;;) {
      if (buf.length < 2) break;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) { if (buf.length < 4) break; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) break; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      if (buf.length < off + len) break;
      frames.push({ opcode: buf[0] & 15, payload: buf.subarray(off, off + len) });
      buf = buf.subarray(off + len);
    }
    for (const w of [...waiters]) w();
  };
  sock.on('data', (d) => { buf = Buffer.concat([buf, d]); pump(); });
  sock.on('close', () => { ended = true; for (const w of [...waiters]) w(); });
  const nextFrame = (pred = () => true, ms = 5000) => new Promise((resolve, reject) => {
    const check = () => {
      const i = frames.findIndex(pred);
      if (i >= 0) {
        waiters.splice(waiters.indexOf(check), 1);
        clearTimeout(t);
        resolve(frames.splice(i, 1)[0]);
      } else if (ended) {
        waiters.splice(waiters.indexOf(check), 1);
        clearTimeout(t);
        reject(new Error('connection ended'));
      }
    };
    const t = setTimeout(() => { waiters.splice(waiters.indexOf(check), 1); reject(new Error('no frame')); }, ms);
    waiters.push(check);
    check();
  });
  const closeFrame = async () => {
    const f = await nextFrame((x) => x.opcode === 8);
    return { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString() };
  };
  return { sock, nextFrame, closeFrame };
}

describe('websocket', () => {
  let s;
  before(async () => {
    s = await startSluice({
      config: {
        limits: { max_message_bytes: 4096 },
        auth: { jwt: { secret: 'e2e-secret-0123456789abcdef0123456789abcdef' }, allowed_origins: ['https://app.example.com'] },
        debug: { echo: true },
      },
    });
  });
  after(async () => { await s.stop(); });

  test('version other than 13 is 426 with Sec-WebSocket-Version', async () => {
    const got = (await rawExchange(s.port, [upgrade('/ws', '8')])).toString();
    assert.match(got, /^HTTP\/1\.1 426/);
    assert.match(got, /Sec-WebSocket-Version: 13/i);
  });

  test('a plain GET on /ws is 426 Upgrade Required', async () => {
    const r = await fetch(`${s.url}/ws`);
    assert.equal(r.status, 426);
    assert.equal(r.headers.get('upgrade'), 'websocket');
  });

  test('a malformed key is 400', async () => {
    const req = 'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n';
    assert.match((await rawExchange(s.port, [req])).toString(), /^HTTP\/1\.1 400/);
  });

  test('the accept key follows RFC 6455', async () => {
    const got = (await rawExchange(s.port, [upgrade('/ws')], { timeoutMs: 300 })).toString();
    assert.match(got, /^HTTP\/1\.1 101/);
    assert.match(got, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/);
  });

  test('origins: listed and same-origin pass, others get 403', async () => {
    const ok = await Client.open(`${s.wsUrl}/ws`, { origin: 'https://app.example.com' });
    ok.close();
    const same = await Client.open(`${s.wsUrl}/ws`, { origin: s.url });
    same.close();
    await assert.rejects(Client.open(`${s.wsUrl}/ws`, { origin: 'https://evil.example.com' }), (e) => e.status === 403);
  });

  test('binary messages are refused with 1003 and a reason', async () => {
    const [c] = await session(s);
    c.ws.send(Buffer.from([1, 2, 3]));
    const err = await c.next('error');
    assert.equal(err.code, 'BAD_REQUEST');
    const { code, reason } = await c.waitClose();
    assert.equal(code, 1003);
    assert.match(reason, /binary/);
  });

  test('invalid UTF-8 in a text message closes with 1007', async () => {
    const w = await rawWs(s.port, '/ws');
    w.sock.write(frame(1, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])));
    const { code, reason } = await w.closeFrame();
    assert.equal(code, 1007);
    assert.match(reason, /UTF-8/);
    w.sock.destroy();
  });

  test('a UTF-8 character split across fragments is fine', async () => {
    const w = await rawWs(s.port, '/ws/echo');
    const text = Buffer.from('h\u00e9llo \u{1F600}');
    w.sock.write(frame(1, text.subarray(0, 2), { fin: false }));
    w.sock.write(frame(0, text.subarray(2, 9), { fin: false }));
    w.sock.write(frame(0, text.subarray(9)));
    const f = await w.nextFrame((x) => x.opcode === 1);
    assert.equal(f.payload.toString(), text.toString());
    w.sock.destroy();
  });

  test('a ping between fragments is answered and the message still arrives', async () => {
    const w = await rawWs(s.port, '/ws/echo');
    w.sock.write(Buffer.concat([frame(1, 'frag', { fin: false }), frame(9, 'p!'), frame(0, 'ment')]));
    const pong = await w.nextFrame((x) => x.opcode === 10);
    assert.equal(pong.payload.toString(), 'p!');
    const f = await w.nextFrame((x) => x.opcode === 1);
    assert.equal(f.payload.toString(), 'fragment');
    w.sock.destroy();
  });

  test('a message in more than 1024 fragments closes with 1008', async () => {
    // Zero-length continuations: six bytes each, and without a cap the message (and the
    // connection) would stay open for as long as the client keeps sending them.
    const w = await rawWs(s.port, '/ws');
    const empty = frame(0, '', { fin: false });
    w.sock.write(Buffer.concat([frame(1, '{', { fin: false }), ...Array(2000).fill(empty)]));
    const { code, reason } = await w.closeFrame();
    assert.equal(code, 1008);
    assert.match(reason, /too many frames/);
    w.sock.destroy();
  });

  test('a message over the limit gets TOO_LARGE and close 1009', async () => {
    const [c] = await session(s);
    c.send(JSON.stringify({ type: 'chat', message: 'x'.repeat(5000) }));
    const err = await c.next('error');
    assert.equal(err.code, 'TOO_LARGE');
    const { code, reason } = await c.waitClose();
    assert.equal(code, 1009);
    assert.match(reason, /too big/);
  });

  test('before authentication the limit is tighter', async () => {
    const c = await Client.open(`${s.wsUrl}/ws`);
    c.send(JSON.stringify({ type: 'auth', token: 'x'.repeat(20000) }));
    const { code } = await c.waitClose();
    assert.equal(code, 1009);
  });

  test('protocol errors close with 1002 and a reason', async () => {
    const cases = [
      [frame(1, 'x', { rsv: 0x40 }), /reserved bits/],
      [frame(3, 'x'), /reserved opcode/],
      [frame(0, 'x'), /continuation/],
      [frame(9, 'x', { fin: false }), /fragmented control/],
      [frame(9, 'x'.repeat(126)), /125/],
      [Buffer.from([0x81, 0x01, 0x41]), /masked/],
    ];
    for (const [bytes, re] of cases) {
      const w = await rawWs(s.port, '/ws/echo');
      w.sock.write(bytes);
      const { code, reason } = await w.closeFrame();
      assert.equal(code, 1002, String(re));
      assert.match(reason, re);
      w.sock.destroy();
    }
  });

  test('the close handshake echoes the client code', async () => {
    const w = await rawWs(s.port, '/ws/echo');
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(4000);
    w.sock.write(frame(8, Buffer.concat([payload, Buffer.from('bye')])));
    const { code } = await w.closeFrame();
    assert.equal(code, 4000);
    await new Promise((r) => w.sock.once('close', r));
  });

  test('a close frame with an invalid code is a protocol error', async () => {
    const w = await rawWs(s.port, '/ws/echo');
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(1005);
    w.sock.write(frame(8, payload));
    const { code } = await w.closeFrame();
    assert.equal(code, 1002);
    w.sock.destroy();
  });

  test('echo returns text as text and binary as binary', async () => {
    const c = await Client.open(`${s.wsUrl}/ws/echo`);
    c.ws.send('hello');
    assert.deepEqual(await c.next(), { raw: 'hello' });
    c.ws.send(Buffer.from([0, 1, 2, 250]));
    const b = await c.next();
    assert.deepEqual([...b.binary], [0, 1, 2, 250]);
    c.close();
  });

  test('a client ping gets a pong', async () => {
    const [c] = await session(s);
    const pong = new Promise((r) => c.ws.once('pong', (d) => r(d.toString())));
    c.ws.ping('are-you-there');
    assert.equal(await pong, 'are-you-there');
    c.close();
  });
});

describe('echo endpoint', () => {
  test('is off unless debug.echo is set', async () => {
    const s = await startSluice();
    try {
      await assert.rejects(Client.open(`${s.wsUrl}/ws/echo`), (e) => e.status === 404);
    } finally {
      await s.stop();
    }
  });
});

