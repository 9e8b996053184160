// Sessions over Socket.IO: the /sluice namespace carries the native protocol as events
// (chat, cancel, resume in; start, progress, delta, done, error out) with socket.io-client
// over each transport and Debian's python3-socketio; authentication per namespace (a token
// in the CONNECT payload, ?token=, a Bearer header; a refused one is a connect_error and the
// connection stays usable); connection state recovery after a cut connection (on one or two
// workers) ends with every token exactly once; draining closes the transport so the client
// reconnects by itself.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { io } from 'socket.io-client';
import { jwt, startMock, startSluice, SECRET } from './lib/harness.mjs';
import { mockProviders } from './lib/providers.mjs';

let seq = 0;
const uniq = (what) => `${what}-${process.pid}-${Date.now()}-${++seq}`;
const synthText = (n) => Array.from({ length: n }, (_, i) => `tok${i + 1} `).join('');

function once(emitter, event, ms = 8000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no "${event}" within ${ms} ms`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(t);
      resolve(args);
    });
  });
}

// Every event of stream id on socket until its terminal one (the native objects).
function collect(socket, id, ms = 20000) {
  return new Promise((resolve, reject) => {
    const out = [];
    const t = setTimeout(() => reject(new Error(`stream ${id} did not end within ${ms} ms; got ${out.length} events`)), ms);
    const names = ['start', 'progress', 'delta', 'done', 'error', 'cancelled'];
    const handlers = names.map((name) => {
      const h = (m) => {
        if (m.id !== id) return;
        out.push(m);
        if (['done', 'error', 'cancelled'].includes(name)) {
          clearTimeout(t);
          for (let i = 0; i < names.length; i++) socket.off(names[i], handlers[i]);
          resolve(out);
        }
      };
      socket.on(name, h);
      return h;
    });
  });
}

function text(events) {
  return events.filter((e) => e.type === 'delta').map((e) => e.text).join('');
}

describe('Socket.IO sessions (/sluice)', () => {
  let mock;
  let s;
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: mockProviders(mock.url),
        models: {
          paced: { provider: 'mockopenai', upstream_model: 'synth:tokens=200,rate=400' },
          slow: { provider: 'mockopenai', upstream_model: 'synth:tokens=1000,rate=20' },
          sixty: { provider: 'mockopenai', upstream_model: 'synth:tokens=60,rate=40' },
        },
        socketio: { ping_interval: '1s', ping_timeout: '1s' },
        limits: { messages_per_minute: 100000 },
      },
    });
  });
  after(async () => {
    await s?.stop();
    await mock.stop();
  });

  for (const [name, transports] of [['websocket only', ['websocket']], ['polling only', ['polling']], ['polling then upgrade', ['polling', 'websocket']]]) {
    test(`a chat streams over Socket.IO (${name})`, async () => {
      const socket = io(`${s.url}/sluice`, { auth: { token: jwt({ sub: 'sio' }) }, transports, forceNew: true, reconnection: false });
      const [ready] = await once(socket, 'ready');
      assert.equal(ready.user, 'sio');
      socket.emit('chat', { id: 'c1', model: 'paced', message: uniq('sio') });
      const events = await collect(socket, 'c1');
      assert.equal(events[0].type, 'start');
      assert.equal(events.at(-1).type, 'done');
      assert.equal(text(events), synthText(200));
      socket.close();
    });
  }

  test('the token may come from ?token= or a Bearer header; a bad one is a connect_error', async () => {
    const q = io(`${s.url}/sluice`, { query: { token: jwt({ sub: 'q' }) }, transports: ['websocket'], forceNew: true, reconnection: false });
    assert.equal((await once(q, 'ready'))[0].user, 'q');
    q.close();
    const h = io(`${s.url}/sluice`, { extraHeaders: { Authorization: `Bearer ${jwt({ sub: 'h' })}` }, transports: ['polling'], forceNew: true, reconnection: false });
    assert.equal((await once(h, 'ready'))[0].user, 'h');
    h.close();
    const bad = io(`${s.url}/sluice`, { auth: { token: 'nope' }, transports: ['websocket'], forceNew: true, reconnection: false });
    const [err] = await once(bad, 'connect_error');
    assert.equal(err.message, 'Authentication failed');
    // The Engine.IO connection is still there: a good token on it joins.
    bad.auth = { token: jwt({ sub: 'second-try' }) };
    bad.connect();
    assert.equal((await once(bad, 'ready'))[0].user, 'second-try');
    bad.close();
  });

  test('cancel stops the upstream; bad input gets an error event', async () => {
    const socket = io(`${s.url}/sluice`, { auth: { token: jwt({ sub: 'canc' }) }, transports: ['websocket'], forceNew: true, reconnection: false });
    await once(socket, 'ready');
    const marker = uniq('sio-cancel');
    const done = collect(socket, 'k1');
    socket.emit('chat', { id: 'k1', model: 'slow', message: marker });
    await once(socket, 'delta');
    socket.emit('cancel', { id: 'k1' });
    const events = await done;
    assert.equal(events.at(-1).type, 'cancelled');
    assert.equal((await mock.wait(marker, 'aborted', 3000)).end, 'client_closed');
    socket.emit('chat', { id: 'k2', message: '' });
    const [e] = await once(socket, 'error');
    assert.equal(e.code, 'EMPTY_MESSAGE');
    socket.emit('nonsense', { x: 1 });
    const [e2] = await once(socket, 'error');
    assert.equal(e2.code, 'BAD_REQUEST');
    socket.close();
  });

  test('recovery: a cut connection reconnects and every token arrives once', async () => {
    const socket = io(`${s.url}/sluice`, { auth: { token: jwt({ sub: 'rec' }) }, transports: ['websocket'], forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100 });
    await once(socket, 'ready');
    const events = [];
    const ended = new Promise((resolve) => {
      for (const name of ['start', 'progress', 'delta', 'done', 'error', 'cancelled']) {
        socket.on(name, (m) => {
          if (m.id !== 'r1') return;
          events.push(m);
          if (['done', 'error', 'cancelled'].includes(name)) resolve();
        });
      }
    });
    socket.emit('chat', { id: 'r1', model: 'sixty', message: uniq('recover') });
    await new Promise((resolve) => {
      const h = (m) => { if (events.filter((e) => e.type === 'delta').length >= 10) { socket.off('delta', h); resolve(); } };
      socket.on('delta', h);
    });
    // Cut the transport under the client: socket.io-client reconnects by itself with its pid.
    socket.io.engine.transport.ws.terminate?.() ?? socket.io.engine.close();
    await once(socket, 'connect');
    assert.equal(socket.recovered, true, 'the client reports a recovered session');
    await ended;
    let last = 0;
    for (const e of events) {
      assert.ok(e.seq > last, `seq ${e.seq} after ${last}`);
      last = e.seq;
    }
    assert.equal(events.at(-1).type, 'done');
    assert.equal(text(events), synthText(60));
    socket.close();
  });

  test('python3-socketio streams a chat', async () => {
    const script = `
import json, sys, threading, socketio
done = threading.Event()
got = {'text': ''}
sio = socketio.Client(reconnection=False)
@sio.on('ready', namespace='/sluice')
def on_ready(m, *offset):  # with recovery on, every event ends with its offset
    sio.emit('chat', {'id': 'p1', 'model': 'paced', 'message': 'py'}, namespace='/sluice')
@sio.on('delta', namespace='/sluice')
def on_delta(m, *offset):
    got['text'] += m['text']
@sio.on('done', namespace='/sluice')
def on_done(m, *offset):
    got['done'] = m
    done.set()
sio.connect(sys.argv[1], namespaces=['/sluice'], auth={'token': sys.argv[2]}, transports=['websocket'])
ok = done.wait(20)
sio.disconnect()
print(json.dumps(got))
sys.exit(0 if ok else 1)
`;
    const out = await new Promise((resolve, reject) => {
      execFile('/usr/bin/python3', ['-c', script, s.url, jwt({ sub: 'py' })], { timeout: 30000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`python3-socketio: ${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    const got = JSON.parse(out);
    assert.equal(got.text, synthText(200));
    assert.equal(got.done.finish_reason, 'stop');
  });
});

describe('Socket.IO recovery across workers', () => {
  let mock;
  let s;
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        workers: 2,
        providers: mockProviders(mock.url),
        models: { slow: { provider: 'mockopenai', upstream_model: 'synth:tokens=120,rate=40' } },
        limits: { messages_per_minute: 100000 },
      },
    });
  });
  after(async () => {
    await s?.stop();
    await mock.stop();
  });

  test('recovered on whichever worker the new connection lands, every token once', async () => {
    // Several cuts, so that some recoveries land on the other worker.
    const socket = io(`${s.url}/sluice`, { auth: { token: jwt({ sub: 'rec2' }) }, transports: ['websocket'], forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100 });
    await once(socket, 'ready');
    const events = [];
    const ended = new Promise((resolve) => {
      for (const name of ['start', 'progress', 'delta', 'done', 'error', 'cancelled']) {
        socket.on(name, (m) => {
          if (m.id !== 'x1') return;
          events.push(m);
          if (['done', 'error', 'cancelled'].includes(name)) resolve();
        });
      }
    });
    socket.emit('chat', { id: 'x1', model: 'slow', message: uniq('xrecover') });
    const mark = s.mark();
    for (let cut = 1; cut <= 4; cut++) {
      await new Promise((resolve, reject) => {
        const need = cut * 20;
        const t = setTimeout(() => reject(new Error(`cut ${cut}: ${events.length} events, not ${need} deltas, within 10 s\n${s.stderr().slice(mark)}`)), 10000);
        const h = () => {
          if (events.filter((e) => e.type === 'delta').length >= need) {
            clearTimeout(t);
            socket.off('delta', h);
            resolve();
          }
        };
        socket.on('delta', h);
        h();
      });
      socket.io.engine.transport.ws.terminate?.() ?? socket.io.engine.close();
      await once(socket, 'connect');
      assert.equal(socket.recovered, true);
    }
    await Promise.race([ended, new Promise((resolve, reject) => setTimeout(() => reject(new Error(`no end: ${events.length} events\n${s.stderr().slice(mark)}`)), 10000).unref())]);
    assert.equal(events.at(-1).type, 'done');
    assert.equal(text(events), synthText(120));
    // At least one recovery crossed workers (the relay lists the session and resumes).
    assert.match(s.stderr().slice(mark), /session\.took_over/);
    socket.close();
  });
});

export { SECRET };
