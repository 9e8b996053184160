// Socket.IO (Engine.IO v4 + Socket.IO v5) with real clients: npm's socket.io-client over
// WebSocket only, long-polling only, and polling upgraded to WebSocket, against the debug
// echo server /echo.io/ (the reference server of the official protocol test suite); two
// workers where long-polling requests land on the wrong worker and are handed to the
// session's owner; reconnection after a server restart; Debian's python3-socketio client;
// the main path /socket.io/ with its configured namespaces; CORS; metrics; and bad input of
// every kind answered as Engine.IO answers it (400, 413, a close), never a crash or a hang.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { startSluice } from './lib/harness.mjs';

const ECHO = {
  debug: { echo: true },
  socketio: { ping_interval: '2s', ping_timeout: '2s', connect_timeout: '1s' },
  auth: { jwt: { secret: 'e2e-secret-0123456789abcdef0123456789abcdef' }, allowed_origins: ['https://app.example'] },
};

function connect(server, opts = {}) {
  return io(server.url, { path: '/echo.io/', forceNew: true, reconnection: false, ...opts });
}

// Resolves with the event's arguments, or rejects after ms.
function once(emitter, event, ms = 8000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no "${event}" within ${ms} ms`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(t);
      resolve(args);
    });
  });
}

// The reference server's three behaviours, over whatever transport the socket uses.
async function roundTrips(socket, tag) {
  const back = once(socket, 'message-back');
  socket.emit('message', tag, 2, { three: [true, null] });
  assert.deepEqual(await back, [tag, 2, { three: [true, null] }]);
  const acked = await socket.timeout(8000).emitWithAck('message-with-ack', tag, { n: 1 });
  assert.deepEqual(acked, tag);
  const bin = once(socket, 'message-back');
  socket.emit('message', Buffer.from([1, 2, 3, 250]), { label: tag, blob: Buffer.from('xyz') });
  const [b, obj] = await bin;
  assert.deepEqual([...b], [1, 2, 3, 250]);
  assert.equal(obj.label, tag);
  assert.equal(Buffer.from(obj.blob).toString(), 'xyz');
}

// A raw HTTP request; resolves { status, headers, body }.
function request(server, method, path, { body, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}${path}`, { method, agent: false, headers }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function handshake(server, path = '/echo.io/') {
  const r = await request(server, 'GET', `${path}?EIO=4&transport=polling`);
  assert.equal(r.status, 200);
  return JSON.parse(r.body.slice(1)).sid;
}

// Resolves when the WebSocket closes: { code }.
function wsClosed(ws, ms = 8000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('WebSocket not closed')), ms);
    ws.once('close', (code) => {
      clearTimeout(t);
      resolve({ code });
    });
  });
}

describe('socket.io-client against /echo.io/', () => {
  let server;
  before(async () => { server = await startSluice({ config: ECHO }); });
  after(async () => { await server.stop(); });

  test('WebSocket only: auth payload, events, acks, binary', async () => {
    const socket = connect(server, { transports: ['websocket'], auth: { token: 'abc' } });
    const [auth] = await once(socket, 'auth');
    assert.deepEqual(auth, { token: 'abc' });
    assert.equal(socket.io.engine.transport.name, 'websocket');
    await roundTrips(socket, 'ws');
    socket.disconnect();
  });

  test('long-polling only', async () => {
    const socket = connect(server, { transports: ['polling'] });
    const [auth] = await once(socket, 'auth');
    assert.deepEqual(auth, {});
    await roundTrips(socket, 'polling');
    assert.equal(socket.io.engine.transport.name, 'polling');
    socket.disconnect();
  });

  test('long-polling upgraded to WebSocket, and a custom namespace', async () => {
    const socket = connect(server);
    let initial;
    const upgraded = new Promise((resolve) => socket.io.on('open', () => {
      initial = socket.io.engine.transport.name;
      socket.io.engine.once('upgrade', (t) => resolve(t.name));
    }));
    await once(socket, 'auth');
    assert.equal(await upgraded, 'websocket');
    assert.equal(initial, 'polling');
    await roundTrips(socket, 'upgraded');
    // A second namespace over the same connection.
    const custom = socket.io.socket('/custom'); /* connects by itself (autoConnect) */
    const [auth] = await once(custom, 'auth');
    assert.deepEqual(auth, {});
    await roundTrips(custom, 'custom');
    custom.disconnect();
    socket.disconnect();
  });

  test('an unknown namespace is a connect_error; the connection stays usable', async () => {
    const socket = connect(server, { transports: ['websocket'] });
    await once(socket, 'auth');
    const other = io(`${server.url}/nope`, { path: '/echo.io/', reconnection: false });
    const [err] = await once(other, 'connect_error');
    assert.equal(err.message, 'Invalid namespace');
    await roundTrips(socket, 'still');
    socket.disconnect();
  });
});

describe('python3-socketio against /echo.io/', () => {
  let server;
  before(async () => { server = await startSluice({ config: ECHO }); });
  after(async () => { await server.stop(); });

  for (const transports of [['websocket'], ['polling']]) {
    test(`echo round trip (${transports[0]})`, async () => {
      const script = `
import json, sys, threading, socketio
done = threading.Event()
got = {}
sio = socketio.Client(reconnection=False)
@sio.on('auth')
def on_auth(data):
    got['auth'] = data
    sio.emit('message', ['py', 1, {'k': True}])
@sio.on('message-back')
def on_back(*args):
    got['back'] = list(args)
    got['ack'] = sio.call('message-with-ack', 'ack-me', timeout=8)
    done.set()
sio.connect(sys.argv[1], socketio_path='echo.io', auth={'token': 'py'}, transports=${JSON.stringify(transports)})
ok = done.wait(10)
sio.disconnect()
print(json.dumps(got))
sys.exit(0 if ok else 1)
`;
      const out = await new Promise((resolve, reject) => {
        execFile('/usr/bin/python3', ['-c', script, server.url], { timeout: 20000 }, (err, stdout, stderr) => {
          if (err) reject(new Error(`python3-socketio: ${err.message}\n${stderr}`));
          else resolve(stdout);
        });
      });
      const got = JSON.parse(out);
      assert.deepEqual(got.auth, { token: 'py' });
      assert.deepEqual(got.back, [['py', 1, { k: true }]]);
      assert.equal(got.ack, 'ack-me');
    });
  }
});

describe('two workers: long-polling requests go to their session\'s worker', () => {
  let server;
  before(async () => {
    server = await startSluice({ config: { ...ECHO, workers: 2, log: { level: 'debug' } } });
  });
  after(async () => { await server.stop(); });

  test('many polling clients, every request served by the owner', async () => {
    const clients = [];
    for (let i = 0; i < 12; i++) clients.push(connect(server, { transports: ['polling'] }));
    const failures = [];
    clients.forEach((c) => c.on('disconnect', (r) => failures.push(r)));
    await Promise.all(clients.map((c) => once(c, 'auth')));
    for (let round = 0; round < 4; round++)
      await Promise.all(clients.map((c, i) => roundTrips(c, `c${i}r${round}`)));
    assert.deepEqual(failures, [], 'no session was lost');
    const log = server.stderr();
    const handoffs = (log.match(/event=handoff /g) || []).length;
    assert.ok(handoffs > 0, 'some requests landed on the other worker and were handed over');
    // A request for a session answered by a worker that does not own it would be a 400.
    const unknown = log.split('\n').filter((l) => /event=http\.access/.test(l) && /path=\/echo\.io\//.test(l) && /status=400/.test(l));
    assert.deepEqual(unknown, []);
    clients.forEach((c) => c.disconnect());
  });

  test('an upgrade whose WebSocket lands on the other worker', async () => {
    const sockets = [];
    for (let i = 0; i < 6; i++) sockets.push(connect(server));
    await Promise.all(sockets.map((s) => once(s.io.engine, 'upgrade')));
    await Promise.all(sockets.map((s, i) => roundTrips(s, `u${i}`)));
    sockets.forEach((s) => s.disconnect());
  });
});

describe('reconnection after a server restart', () => {
  test('socket.io-client reconnects by itself and goes on', async () => {
    let server = await startSluice({ config: ECHO });
    const port = server.port;
    const socket = io(server.url, {
      path: '/echo.io/', forceNew: true, transports: ['websocket'],
      reconnectionDelay: 100, reconnectionDelayMax: 300,
    });
    await once(socket, 'auth');
    await roundTrips(socket, 'before');
    const gone = once(socket, 'disconnect');
    await server.stop();
    const [reason] = await gone;
    // The Engine.IO transport closed (never a Socket.IO DISCONNECT): the client reconnects.
    assert.equal(reason, 'transport close');
    server = await startSluice({ config: { ...ECHO, listen: `127.0.0.1:${port}` } });
    await once(socket, 'auth', 15000);
    assert.ok(socket.connected);
    await roundTrips(socket, 'after');
    socket.disconnect();
    await server.stop();
  });
});

describe('the main path and bad input', () => {
  let server;
  before(async () => { server = await startSluice({ config: { ...ECHO, socketio: { ...ECHO.socketio, max_payload: 10000 } } }); });
  after(async () => { await server.stop(); });

  test('/socket.io/ knows its configured namespaces: a CONNECT without a token is refused, an unknown one is invalid', async () => {
    const root = io(server.url, { forceNew: true, reconnection: false, transports: ['websocket'] });
    const [err] = await once(root, 'connect_error');
    assert.equal(err.message, 'Authentication failed');
    const other = io(`${server.url}/nope`, { forceNew: true, reconnection: false, transports: ['websocket'] });
    const [err2] = await once(other, 'connect_error');
    assert.equal(err2.message, 'Invalid namespace');
    root.close();
    other.close();
    // An Engine.IO connection at /socket.io/ counts as protocol="socketio" while it is open;
    // a refused CONNECT leaves it open (Socket.IO's rule: the client may try another token).
    const ws = new WebSocket(`${server.wsUrl}/socket.io/?EIO=4&transport=websocket`);
    await once(ws, 'message');
    const reply = once(ws, 'message');
    ws.send('40');
    assert.equal(String((await reply)[0]), '44{"message":"Authentication failed"}');
    const m = await request(server, 'GET', '/metrics');
    assert.match(m.body, /sluice_connections\{protocol="socketio"\} 1\n/);
    const closed = wsClosed(ws);
    ws.close();
    await closed;
  });

  test('handshake errors are 400 with Engine.IO\'s codes', async () => {
    for (const [path, code] of [
      ['/echo.io/?transport=polling', 5],
      ['/echo.io/?EIO=3&transport=polling', 5],
      ['/echo.io/?EIO=4&transport=carrier-pigeon', 0],
      ['/echo.io/?EIO=4&transport=polling&sid=AAdoesnotexist012345', 1],
      ['/echo.io/?EIO=4&transport=polling&sid=..', 1],
    ]) {
      const r = await request(server, 'GET', path);
      assert.equal(r.status, 400, path);
      assert.equal(JSON.parse(r.body).code, code, path);
    }
    const r = await request(server, 'PUT', '/echo.io/?EIO=4&transport=polling');
    assert.equal(r.status, 400);
  });

  test('malformed packets and oversized payloads end the session', async () => {
    let sid = await handshake(server);
    const q = (s) => `/echo.io/?EIO=4&transport=polling&sid=${s}`;
    assert.equal((await request(server, 'POST', q(sid), { body: 'not a packet' })).status, 400);
    assert.equal((await request(server, 'GET', q(sid))).status, 400, 'the session is gone');

    sid = await handshake(server);
    assert.equal((await request(server, 'POST', q(sid), { body: `4${'x'.repeat(10000)}` })).status, 413);
    assert.equal((await request(server, 'GET', q(sid))).status, 400);

    // A malformed Socket.IO packet inside valid Engine.IO: the connection is ended.
    sid = await handshake(server);
    assert.equal((await request(server, 'POST', q(sid), { body: '40\x1e42{"not":"an array"}' })).status, 200);
    assert.equal((await request(server, 'GET', q(sid))).status, 400);

    // Over WebSocket: too big (1009), invalid Engine.IO (1002), invalid Socket.IO (closed).
    for (const [msg, code] of [[`4${'y'.repeat(10001)}`, 1009], ['hello', 1002], ['42["connect"]', 1002]]) {
      const ws = new WebSocket(`${server.wsUrl}/echo.io/?EIO=4&transport=websocket`);
      await once(ws, 'message');
      const closed = wsClosed(ws);
      ws.send(msg);
      assert.equal((await closed).code, code, msg.slice(0, 20));
    }
  });

  test('a second pending GET ends the session; the first gets a close packet', async () => {
    const sid = await handshake(server);
    const q = `/echo.io/?EIO=4&transport=polling&sid=${sid}`;
    // The second GET is sent once the first is held: its access line says so.
    const mark = server.mark();
    const first = request(server, 'GET', q);
    await server.waitLog(/event=http\.access[^\n]*method=GET path=\/echo\.io\/ status=200/, mark);
    const second = await request(server, 'GET', q);
    assert.equal(second.status, 400);
    const r1 = await first;
    assert.equal(r1.status, 200);
    assert.equal(r1.body, '1');
    assert.equal((await request(server, 'GET', q)).status, 400);
  });

  test('CORS: allowed origins get credentials, others 403, preflight 204', async () => {
    const ok = await request(server, 'GET', '/echo.io/?EIO=4&transport=polling', { headers: { Origin: 'https://app.example' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example');
    assert.equal(ok.headers['access-control-allow-credentials'], 'true');
    const bad = await request(server, 'GET', '/echo.io/?EIO=4&transport=polling', { headers: { Origin: 'https://evil.example' } });
    assert.equal(bad.status, 403);
    const pre = await request(server, 'OPTIONS', '/echo.io/?EIO=4&transport=polling', {
      headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
    assert.match(pre.headers['access-control-allow-methods'], /POST/);
  });

  test('after all of it the server is healthy', async () => {
    assert.equal((await request(server, 'GET', '/healthz')).status, 200);
    const socket = connect(server, { transports: ['websocket'] });
    await once(socket, 'auth');
    await roundTrips(socket, 'healthy');
    socket.disconnect();
  });
});
