// Disconnect is a pause: a client whose connection drops (cut, heartbeat loss) comes back
// within resume.window, sends `resume`, and gets every event it missed, then the live
// tail; a slow reader pauses its provider instead of growing the gateway's memory.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { Client, jwt, metric, rssOf, session, startMock, startSluice } from './lib/harness.mjs';
import { mockProviders } from './lib/providers.mjs';

let seq = 0;
const uniq = (what) => `${what}-${process.pid}-${Date.now()}-${++seq}`;

// "tok1 tok2 ... tokN ": the mock's synthetic text.
const synthText = (n) => Array.from({ length: n }, (_, i) => `tok${i + 1} `).join('');

// Reads stream `id` on c until `count` deltas arrived; returns the events so far.
async function readDeltas(c, id, count) {
  const got = [];
  let deltas = 0;
  while (deltas < count) {
    const m = await c.next((x) => x.id === id);
    got.push(m);
    if (m.type === 'delta') deltas++;
    assert.ok(!['done', 'error', 'cancelled'].includes(m.type), `ended early: ${JSON.stringify(m)}`);
  }
  return got;
}

// Checks that seqs only grow and returns the text of the deltas.
function textAndOrder(events) {
  let last = 0;
  let text = '';
  for (const e of events) {
    assert.ok(e.seq > last, `seq ${e.seq} after ${last}`);
    last = e.seq;
    if (e.type === 'delta') text += e.text;
  }
  return text;
}

describe('resume', () => {
  let mock;
  let s;
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: mockProviders(mock.url),
        models: {
          paced: { provider: 'mockopenai', upstream_model: 'synth:tokens=300,rate=300' },
          slow: { provider: 'mockopenai', upstream_model: 'synth:tokens=1000,rate=20' },
        },
        heartbeat: { interval: '200ms', timeout: '600ms' },
        resume: { window: '5s' },
        limits: { messages_per_minute: 100000 },
      },
    });
  });
  after(async () => {
    await s?.stop();
    await mock.stop();
  });

  test('a cut connection resumes on a new one: every token once, in order', async () => {
    const [a] = await session(s, { sub: 'cutter' });
    const marker = uniq('cut');
    a.send({ type: 'chat', id: 'r1', model: 'paced', message: marker });
    const first = await readDeltas(a, 'r1', 20);
    const start = first.find((e) => e.type === 'start');
    a.ws.terminate(); // no close frame: the connection just ends
    const lastSeq = first.at(-1).seq;

    const [b] = await session(s, { sub: 'cutter' });
    b.send({ type: 'resume', id: 'r1', after: lastSeq, epoch: start.epoch });
    const rest = await b.collect('r1');
    assert.ok(rest[0].seq > lastSeq);
    assert.equal(rest.at(-1).type, 'done');
    const text = textAndOrder(first) + textAndOrder(rest);
    assert.equal(text, synthText(300));
    assert.equal(rest.at(-1).usage.output_tokens, 300);
    b.close();
  });

  test('resume from further back replays events already delivered', async () => {
    const [a] = await session(s, { sub: 'rewinder' });
    a.send({ type: 'chat', id: 'r2', model: 'paced', message: uniq('rewind') });
    const first = await readDeltas(a, 'r2', 30);
    const start = first.find((e) => e.type === 'start');
    a.ws.terminate();
    // The client only kept the first 10 deltas (say it crashed before storing the rest).
    const kept = first.slice(0, first.findIndex((e) => e.type === 'delta') + 10);
    const [b] = await session(s, { sub: 'rewinder' });
    b.send({ type: 'resume', id: 'r2', after: kept.at(-1).seq, epoch: start.epoch });
    const rest = await b.collect('r2');
    assert.equal(textAndOrder(kept) + textAndOrder(rest), synthText(300));
    b.close();
  });

  test('resume of another epoch, another user or an unknown id is NOT_FOUND', async () => {
    const [a] = await session(s, { sub: 'owner' });
    a.send({ type: 'chat', id: 'r3', model: 'slow', message: uniq('nf') });
    const start = await a.next((m) => m.id === 'r3' && m.type === 'start');
    const [other] = await session(s, { sub: 'intruder' });
    other.send({ type: 'resume', id: 'r3', after: 0, epoch: start.epoch });
    assert.equal((await other.next('error')).code, 'NOT_FOUND');
    const [same] = await session(s, { sub: 'owner' });
    same.send({ type: 'resume', id: 'r3', after: 0, epoch: 'not-the-epoch' });
    const e1 = await same.next('error');
    assert.equal(e1.code, 'NOT_FOUND');
    assert.equal(e1.id, 'r3');
    same.send({ type: 'resume', id: 'nope', after: 0 });
    assert.equal((await same.next('error')).code, 'NOT_FOUND');
    a.send({ type: 'cancel', id: 'r3' });
    await a.next((m) => m.id === 'r3' && m.type === 'cancelled');
    for (const c of [a, other, same]) c.close();
  });

  test('a resume takes the stream over from a connection that is still open', async () => {
    const [a] = await session(s, { sub: 'twotabs' });
    a.send({ type: 'chat', id: 'r4', model: 'paced', message: uniq('steal') });
    const first = await readDeltas(a, 'r4', 5);
    const start = first.find((e) => e.type === 'start');
    const [b] = await session(s, { sub: 'twotabs' });
    b.send({ type: 'resume', id: 'r4', after: 0, epoch: start.epoch });
    const all = await b.collect('r4');
    assert.equal(all[0].type, 'start');
    assert.equal(textAndOrder(all), synthText(300));
    // The first connection gets nothing of r4 after the takeover, and no terminal event.
    assert.ok(!a.all.some((m) => m.id === 'r4' && m.type === 'done'));
    a.close();
    b.close();
  });

  test('heartbeat loss, then resume', async () => {
    const token = jwt({ sub: 'mute' });
    const ws = new WebSocket(`${s.wsUrl}/ws?token=${token}`, { autoPong: false });
    const msgs = [];
    const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    await new Promise((resolve) => ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      msgs.push(m);
      if (m.type === 'ready') resolve();
    }));
    ws.send(JSON.stringify({ type: 'chat', id: 'r5', model: 'slow', message: uniq('hb') }));
    assert.equal(await closed, 4008);
    const mine = msgs.filter((m) => m.id === 'r5');
    const start = mine.find((m) => m.type === 'start');
    const [b] = await session(s, { sub: 'mute' });
    b.send({ type: 'resume', id: 'r5', after: mine.at(-1).seq, epoch: start.epoch });
    const more = await readDeltas(b, 'r5', 3);
    assert.ok(more[0].seq > mine.at(-1).seq);
    b.send({ type: 'cancel', id: 'r5' });
    await b.next((m) => m.id === 'r5' && m.type === 'cancelled');
    b.close();
  });

  test('resume counts in sluice_resumes_total', async () => {
    assert.ok((await metric(s, 'sluice_resumes_total')) >= 4);
  });
});

describe('resume window', () => {
  let mock;
  let s;
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: mockProviders(mock.url),
        models: { slow: { provider: 'mockopenai', upstream_model: 'synth:tokens=1000,rate=20' } },
        resume: { window: '300ms' },
      },
    });
  });
  after(async () => {
    await s?.stop();
    await mock.stop();
  });

  test('past the window: NOT_FOUND, and the upstream request was aborted', async () => {
    const [a, ready] = await session(s, { sub: 'late' });
    const marker = uniq('late');
    const mark = s.mark();
    a.send({ type: 'chat', id: 'w1', model: 'slow', message: marker });
    const start = await a.next((m) => m.id === 'w1' && m.type === 'start');
    await a.next((m) => m.id === 'w1' && m.type === 'delta');
    a.ws.terminate();
    await s.waitLog(new RegExp(`session.expired .*session=${ready.session}`), mark);
    const r = await mock.wait(marker, 'aborted', 3000);
    assert.ok(r.tokens_sent < 1000);
    await s.waitLog(new RegExp(`session=${ready.session} stream=w1 .*outcome=disconnected`), mark);
    const [b] = await session(s, { sub: 'late' });
    b.send({ type: 'resume', id: 'w1', after: 1, epoch: start.epoch });
    assert.equal((await b.next('error')).code, 'NOT_FOUND');
    b.close();
  });
});

describe('backpressure', () => {
  let mock;
  let s;
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: mockProviders(mock.url),
        // As fast as sluice reads: only backpressure slows the mock down.
        models: { fast: { provider: 'mockopenai', upstream_model: 'synth:tokens=300000,rate=0' } },
        limits: { send_high_water: '64KiB' },
      },
    });
  });
  after(async () => {
    await s?.stop();
    await mock.stop();
  });

  test('a client that stops reading for 5 s pauses its provider, then gets every token in order', async () => {
    const c = await Client.open(`${s.wsUrl}/ws?token=${jwt({ sub: 'sleepy' })}`);
    await c.next('ready');
    const marker = uniq('sleepy');
    const rss0 = rssOf(s.proc.pid) / 1024;
    const pauses0 = await metric(s, 'sluice_backpressure_pauses_total');
    c.ws._socket.pause(); // stop reading: the kernel buffers fill, then sluice's queue
    c.send({ type: 'chat', id: 'b1', model: 'fast', message: marker });
    const start = Date.now();
    // Wait (bounded) until sluice says it paused the provider.
    while ((await metric(s, 'sluice_backpressure_pauses_total')) === pauses0) {
      assert.ok(Date.now() - start < 5000, 'no backpressure pause within 5 s');
      await new Promise((r) => setImmediate(r));
    }
    // While the client does not read, the mock stops sending: once the socket buffers
    // between the two are full, its token count stands still for the rest of the nap.
    const sent = async () => (await mock.wait(marker, 'streaming', 2000)).tokens_sent;
    const napEnd = start + 5000;
    let prev = await sent();
    let still;
    for (;;) {
      await new Promise((r) => setTimeout(r, 200));
      const now = await sent();
      if (now === prev) { still = now; break; }
      prev = now;
      assert.ok(Date.now() < napEnd - 500, `the mock never stopped sending (${now} tokens)`);
    }
    await new Promise((r) => setTimeout(r, Math.max(0, napEnd - Date.now()))); // the rest of the 5 s nap
    const afterNap = await sent();
    assert.ok(afterNap < 300000, `the mock sent everything (${afterNap}) to a client that did not read`);
    assert.equal(afterNap, still, 'the mock kept sending while the client did not read');
    assert.ok(rssOf(s.proc.pid) / 1024 - rss0 < 32 * 1024, 'sluice grew by more than 32 MiB');
    c.ws._socket.resume();
    const events = await c.collect('b1', 30000);
    assert.equal(events.at(-1).type, 'done');
    assert.equal(textAndOrder(events), synthText(300000));
    c.close();
  });
});

describe('resume on another worker', () => {
  let mock;
  let s;
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        workers: 2,
        providers: mockProviders(mock.url),
        models: {
          paced: { provider: 'mockopenai', upstream_model: 'synth:tokens=300,rate=300' },
          slow: { provider: 'mockopenai', upstream_model: 'synth:tokens=1000,rate=20' },
        },
        limits: { messages_per_minute: 100000 },
      },
    });
  });
  after(async () => {
    await s?.stop();
    await mock.stop();
  });

  // The worker a session landed on, from its session.ready log line.
  async function workerOf(ready) {
    const m = await s.waitLog(new RegExp(`session.ready worker=(\\d+) conn=\\d+ session=${ready.session}`));
    return Number(m[1]);
  }

  // A new session of `sub` on a worker other than `not` (SO_REUSEPORT spreads connections).
  async function sessionElsewhere(sub, not) {
    for (let i = 0; i < 50; i++) {
      const [c, ready] = await session(s, { sub });
      if ((await workerOf(ready)) !== not) return c;
      c.close();
    }
    throw new Error('every connection landed on the same worker');
  }

  test('a stream started on one worker is resumed from another, every token once', async () => {
    const [a, readyA] = await session(s, { sub: 'roamer' });
    const owner = await workerOf(readyA);
    a.send({ type: 'chat', id: 'x1', model: 'paced', message: uniq('roam') });
    const first = await readDeltas(a, 'x1', 15);
    const start = first.find((e) => e.type === 'start');
    a.ws.terminate();
    const b = await sessionElsewhere('roamer', owner);
    const mark = s.mark();
    b.send({ type: 'resume', id: 'x1', after: first.at(-1).seq, epoch: start.epoch });
    const rest = await b.collect('x1');
    assert.equal(rest.at(-1).type, 'done');
    assert.equal(textAndOrder(first) + textAndOrder(rest), synthText(300));
    await s.waitLog(new RegExp(`stream.resumed .*stream=x1 .*owner=${owner}`), mark);
    b.close();
  });

  test('cancel from another worker stops the upstream', async () => {
    const [a, readyA] = await session(s, { sub: 'roamer2' });
    const owner = await workerOf(readyA);
    const marker = uniq('xcancel');
    a.send({ type: 'chat', id: 'x2', model: 'slow', message: marker });
    const first = await readDeltas(a, 'x2', 2);
    const b = await sessionElsewhere('roamer2', owner);
    b.send({ type: 'resume', id: 'x2', after: first.at(-1).seq });
    await b.next((m) => m.id === 'x2' && m.type === 'delta');
    b.send({ type: 'cancel', id: 'x2' });
    const end = await b.next((m) => m.id === 'x2' && ['cancelled', 'done', 'error'].includes(m.type));
    assert.equal(end.type, 'cancelled');
    const r = await mock.wait(marker, 'aborted', 3000);
    assert.ok(r.tokens_sent < 1000);
    a.close();
    b.close();
  });

  test('a resume of an unknown epoch on another worker is NOT_FOUND', async () => {
    const [a, readyA] = await session(s, { sub: 'roamer3' });
    const owner = await workerOf(readyA);
    a.send({ type: 'chat', id: 'x3', model: 'slow', message: uniq('xnf') });
    await a.next((m) => m.id === 'x3' && m.type === 'delta');
    const b = await sessionElsewhere('roamer3', owner);
    b.send({ type: 'resume', id: 'x3', after: 0, epoch: 'wrong-epoch' });
    assert.equal((await b.next('error')).code, 'NOT_FOUND');
    a.send({ type: 'cancel', id: 'x3' });
    await a.next((m) => m.id === 'x3' && m.type === 'cancelled');
    a.close();
    b.close();
  });
});
