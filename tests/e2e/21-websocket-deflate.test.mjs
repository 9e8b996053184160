// permessage-deflate (RFC 7692) on every WebSocket, with the `ws` package's own implementation
// as the client: negotiation and its parameters, compressed round trips on /ws/echo, the
// native protocol, ws-chat and Socket.IO's WebSocket transport, the off switch, and a
// zip bomb refused with 1009.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { Client, jwt, startSluice, textOf } from './lib/harness.mjs';

const DEMO = {
  providers: { demo: { kind: 'demo', tokens_per_second: 2000 } },
  models: { demo: { provider: 'demo' } },
  limits: { messages_per_minute: 1000 },
};

// Opens a WebSocket offering permessage-deflate (or not: deflate false); resolves once open
// with { ws, ext } (ext: the server's Sec-WebSocket-Extensions, '' when none).
function open(url, deflate = { threshold: 0 }) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: deflate });
    let ext = '';
    ws.once('upgrade', (res) => { ext = res.headers['sec-websocket-extensions'] || ''; });
    ws.once('open', () => resolve({ ws, ext }));
    ws.once('error', reject);
  });
}

function nextMessage(ws, timeoutMs = 8000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no message within ${timeoutMs} ms`)), timeoutMs);
    ws.once('message', (data, isBinary) => { clearTimeout(t); resolve({ data, isBinary }); });
  });
}

function closed(ws, timeoutMs = 8000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not closed within ${timeoutMs} ms`)), timeoutMs);
    ws.once('close', (code, reason) => { clearTimeout(t); resolve({ code, reason: reason.toString() }); });
  });
}

// Bytes the server sent on this connection after the handshake so far.
const wireIn = (ws) => ws._socket.bytesRead;

describe('permessage-deflate on', () => {
  let s;
  before(async () => {
    s = await startSluice({
      config: { ...DEMO, debug: { echo: true }, websocket: { permessage_deflate: true } },
    });
  });
  after(async () => { await s.stop(); });

  test('negotiated when offered, with client_no_context_takeover asked', async () => {
    const { ws, ext } = await open(`${s.wsUrl}/ws/echo`);
    assert.equal(ext, 'permessage-deflate; client_no_context_takeover');
    assert.match(ws.extensions, /permessage-deflate/);
    ws.close();
    await closed(ws);
  });

  test('server_no_context_takeover and server_max_window_bits offers are honoured', async () => {
    const a = await open(`${s.wsUrl}/ws/echo`, { threshold: 0, serverNoContextTakeover: true, serverMaxWindowBits: 9 });
    assert.equal(a.ext, 'permessage-deflate; client_no_context_takeover; server_no_context_takeover; server_max_window_bits=9');
    // Without context each message is compressed alone: the same message costs the same twice.
    const msg = 'The quick brown fox jumps over the lazy dog. '.repeat(4);
    const sizes = [];
    for (let i = 0; i < 2; i++) {
      const before = wireIn(a.ws);
      a.ws.send(msg);
      const { data } = await nextMessage(a.ws);
      assert.equal(data.toString(), msg);
      sizes.push(wireIn(a.ws) - before);
    }
    assert.equal(sizes[0], sizes[1], `no history across messages: ${sizes}`);
    assert.ok(sizes[0] < msg.length, `compressed alone: ${sizes[0]} bytes for ${msg.length}`);
    // A short message alone cannot shrink: it comes back uncompressed (RSV1 clear), readable.
    a.ws.send('hi');
    assert.equal((await nextMessage(a.ws)).data.toString(), 'hi');
    a.ws.close();
    await closed(a.ws);

    // With context takeover (the default) the second copy is a back-reference.
    const b = await open(`${s.wsUrl}/ws/echo`);
    const ctx = [];
    for (let i = 0; i < 2; i++) {
      const before = wireIn(b.ws);
      b.ws.send(msg);
      const { data } = await nextMessage(b.ws);
      assert.equal(data.toString(), msg);
      ctx.push(wireIn(b.ws) - before);
    }
    assert.ok(ctx[1] < ctx[0] / 2, `the second message refers to the first: ${ctx}`);
    b.ws.close();
    await closed(b.ws);
  });

  test('a declined offer (server_max_window_bits=8) leaves the connection uncompressed', async () => {
    const { ws, ext } = await open(`${s.wsUrl}/ws/echo`, { threshold: 0, serverMaxWindowBits: 8 });
    assert.equal(ext, '');
    assert.equal(ws.extensions, '');
    const before = wireIn(ws);
    const msg = 'y'.repeat(4000);
    ws.send(msg);
    assert.equal((await nextMessage(ws)).data.toString(), msg);
    assert.ok(wireIn(ws) - before >= msg.length, 'the echo came back uncompressed');
    ws.close();
    await closed(ws);
    // The same client offering 9 gets it.
    const b = await open(`${s.wsUrl}/ws/echo`, { threshold: 0, serverMaxWindowBits: 9 });
    assert.match(b.ext, /server_max_window_bits=9/);
    b.ws.close();
    await closed(b.ws);
  });

  test('compressed round trips on /ws/echo: text, binary, empty, large, many', async () => {
    const { ws } = await open(`${s.wsUrl}/ws/echo`);
    const big = JSON.stringify(Array.from({ length: 5000 }, (_, i) => ({ i, text: 'token', done: false })));
    let before = wireIn(ws);
    ws.send(big);
    let m = await nextMessage(ws);
    assert.equal(m.isBinary, false);
    assert.equal(m.data.toString(), big);
    const onWire = wireIn(ws) - before;
    assert.ok(onWire < big.length / 5, `${big.length} bytes of JSON arrived in ${onWire}`);

    const bin = Buffer.alloc(70000);
    for (let i = 0; i < bin.length; i++) bin[i] = (i * 7919) & 0xff;
    ws.send(bin);
    m = await nextMessage(ws);
    assert.equal(m.isBinary, true);
    assert.ok(Buffer.compare(m.data, bin) === 0);

    ws.send('');
    m = await nextMessage(ws);
    assert.equal(m.data.length, 0);

    const utf = 'héllo wörld ✓ 😀 '.repeat(50);
    for (let i = 0; i < 200; i++) {
      ws.send(`${i}:${utf}`);
      m = await nextMessage(ws);
      assert.equal(m.data.toString(), `${i}:${utf}`);
    }
    // Fragmented compressed messages (RSV1 on the first frame only).
    ws.send(big.slice(0, 1000), { fin: false });
    ws.send(big.slice(1000, 2000), { fin: true });
    m = await nextMessage(ws);
    assert.equal(m.data.toString(), big.slice(0, 2000));
    ws.close();
    assert.equal((await closed(ws)).code, 1005);
  });

  test('a zip bomb: small on the wire, over limits.max_message_bytes once inflated, is 1009', async () => {
    const { ws } = await open(`${s.wsUrl}/ws/echo`);
    const sentBefore = ws._socket.bytesWritten;
    ws.send('a'.repeat(8 * 1024 * 1024)); // 8 MiB of one letter: about 8 KiB compressed
    const c = await closed(ws);
    assert.equal(c.code, 1009);
    assert.equal(c.reason, 'message too big once decompressed');
    const sent = ws._socket.bytesWritten - sentBefore;
    assert.ok(sent < 1024 * 1024, `the bomb was ${sent} bytes on the wire, under the limit`);
    // The server is fine afterwards.
    const { ws: ws2 } = await open(`${s.wsUrl}/ws/echo`);
    ws2.send('after');
    assert.equal((await nextMessage(ws2)).data.toString(), 'after');
    ws2.close();
    await closed(ws2);
  });

  test('a zip bomb on the native protocol: TOO_LARGE, then 1009 with its reason', async () => {
    const c = await Client.open(`${s.wsUrl}/ws?token=${jwt({ sub: 'deflate-bomb' })}`, { perMessageDeflate: { threshold: 0 } });
    await c.next('ready');
    c.send(JSON.stringify({ type: 'chat', id: 'b1', message: ' '.repeat(4 * 1024 * 1024) }));
    const err = await c.next('error');
    assert.equal(err.code, 'TOO_LARGE');
    const closedWith = await c.waitClose();
    assert.equal(closedWith.code, 1009);
    assert.equal(closedWith.reason, 'message too big once decompressed');
  });

  test('native protocol: a streamed answer arrives whole, in fewer bytes than uncompressed', async () => {
    const token = jwt({ sub: 'deflate-native' });
    const ask = async (perMessageDeflate) => {
      const c = await Client.open(`${s.wsUrl}/ws?token=${token}`, { perMessageDeflate });
      await c.next('ready');
      assert.equal(/permessage-deflate/.test(c.ws.extensions), !!perMessageDeflate);
      const before = c.ws._socket.bytesRead;
      c.send({ type: 'chat', id: 'z1', model: 'demo', message: 'Tell me about rivers and estuaries' });
      const ev = await c.collect('z1');
      const bytes = c.ws._socket.bytesRead - before;
      c.close();
      await c.waitClose();
      return { text: textOf(ev), deltas: ev.filter((e) => e.type === 'delta').length, bytes };
    };
    const plain = await ask(false);
    const packed = await ask({ threshold: 0 });
    assert.ok(plain.deltas >= 10);
    assert.equal(packed.text, plain.text);
    assert.equal(packed.deltas, plain.deltas);
    assert.ok(packed.bytes < plain.bytes * 0.8, `compressed ${packed.bytes} vs plain ${plain.bytes} bytes`);
  });

  test('ws-chat: negotiated, authenticated and answered over compressed frames', async () => {
    const c = await Client.open(`${s.wsUrl}/ws/chat?token=${jwt({ sub: 'deflate-chat' })}`, { perMessageDeflate: { threshold: 0 } });
    assert.match(c.ws.extensions, /permessage-deflate/);
    await c.next('auth_success');
    c.send({ type: 'message', message: 'Say something about compression' });
    const done = await c.next('complete', 15000);
    assert.ok(done.response.length > 0);
    c.close();
    await c.waitClose();
  });

  test('Socket.IO WebSocket transport: Engine.IO packets over compressed frames', async () => {
    const { ws, ext } = await open(`${s.wsUrl}/socket.io/?EIO=4&transport=websocket`);
    assert.match(ext, /^permessage-deflate/);
    const openPacket = (await nextMessage(ws)).data.toString();
    assert.equal(openPacket[0], '0');
    assert.ok(JSON.parse(openPacket.slice(1)).sid);
    ws.send('40{"token":"' + jwt({ sub: 'deflate-sio' }) + '"}');
    const connect = (await nextMessage(ws)).data.toString();
    assert.match(connect, /^40\{"sid":/);
    ws.close();
    await closed(ws);
  });
  test('socket.io-client (which offers permessage-deflate) round-trips events compressed', async () => {
    const socket = io(s.url, { path: '/echo.io/', forceNew: true, reconnection: false, transports: ['websocket'], perMessageDeflate: { threshold: 0 } });
    try {
      await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no connect')), 8000);
        socket.once('connect', () => { clearTimeout(t); resolve(); });
      });
      assert.match(socket.io.engine.transport.ws.extensions, /permessage-deflate/);
      const big = 'compressible '.repeat(2000);
      const back = new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no message-back')), 8000);
        socket.once('message-back', (...args) => { clearTimeout(t); resolve(args); });
      });
      const sock = socket.io.engine.transport.ws._socket;
      const before = sock.bytesRead;
      socket.emit('message', big, { n: 1 });
      assert.deepEqual(await back, [big, { n: 1 }]);
      assert.ok(sock.bytesRead - before < big.length / 10, `${sock.bytesRead - before} bytes for ${big.length}`);
    } finally {
      socket.disconnect();
    }
  });
});

describe('permessage-deflate off (the default)', () => {
  let s;
  before(async () => { s = await startSluice({ config: { ...DEMO, debug: { echo: true } } }); });
  after(async () => { await s.stop(); });

  test('an offer is not answered and messages go uncompressed', async () => {
    for (const path of ['/ws/echo', `/ws?token=${jwt({ sub: 'off' })}`, '/socket.io/?EIO=4&transport=websocket']) {
      const { ws, ext } = await open(`${s.wsUrl}${path}`);
      assert.equal(ext, '', path);
      assert.equal(ws.extensions, '', path);
      ws.close();
      await closed(ws);
    }
    const { ws } = await open(`${s.wsUrl}/ws/echo`);
    const big = 'x'.repeat(100000);
    const before = wireIn(ws);
    ws.send(big);
    assert.equal((await nextMessage(ws)).data.toString(), big);
    assert.ok(wireIn(ws) - before >= big.length, 'the echo came back uncompressed');
    // A frame with RSV1 set is a protocol error when nothing was negotiated: ws would not
    // send one, so a compressed-looking frame is written by hand.
    ws._socket.write(Buffer.from([0xc1, 0x80, 0, 0, 0, 0]));
    const c = await closed(ws);
    assert.equal(c.code, 1002);
  });
});
