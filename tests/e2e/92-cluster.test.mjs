// Cluster mode (docs/cluster.md): two sluice nodes (A with two workers) sharing a real
// redis-server, started here on a free port. A client moves between nodes: its stream is
// resumed from Redis with the same text (and taken back by its owner; over the HTTP API too),
// a cancel reaches the node that runs the provider (from the resuming node or another tab),
// per-user stream and token limits hold across nodes, Socket.IO recovery, seed 003's
// ai:reconnect and ws-chat memory work on the other node, Redis killed, restarted or hung
// costs the owner's clients nothing, and a node killed outright leaves clients the journal's
// end or NOT_FOUND, never a hang.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { io } from 'socket.io-client';
import { Client, jwt, metric, session, startMock, startSluice, textOf } from './lib/harness.mjs';

const REDIS = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => fs.existsSync(p))
  ?? (spawnSync('sh', ['-c', 'command -v redis-server']).stdout?.toString().trim() || null);
const skip = REDIS ? false : 'redis-server is not installed (scripts/install-deps.sh --test installs it)';

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// A redis-server without persistence on `port`; resolves once it accepts commands.
async function startRedis(port) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-redis-'));
  const proc = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d.toString(); });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  const deadline = Date.now() + 10000;
  for (;;) {
    if (/Ready to accept connections/.test(out)) break;
    if (proc.exitCode !== null) throw new Error(`redis-server exited: ${out}`);
    if (Date.now() > deadline) throw new Error(`redis-server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    proc,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// A tiny RESP client for looking at what is in Redis.
async function redisCmd(port, ...args) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('redis: no answer')); }, 3000);
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.endsWith('\r\n')) {
        clearTimeout(timer);
        sock.end();
        resolve(buf);
      }
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`);
  });
}

async function until(what, fn, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const tokens = (n) => Array.from({ length: n }, (_, i) => `tok${i + 1} `).join('');

function nodeConfig(mock, redisPort, extra = {}) {
  return {
    providers: { mock: { kind: 'openai', base_url: `${mock.url}/v1`, api_key: 'x' } },
    models: {
      slow: { provider: 'mock', upstream_model: 'synth:tokens=200,rate=100' },
      long: { provider: 'mock', upstream_model: 'synth:tokens=100000,rate=50' },
      quick: { provider: 'mock', upstream_model: 'synth:tokens=30' },
      // 30 output tokens at $50 a million: $0.0015 a stream.
      priced: { provider: 'mock', upstream_model: 'synth:tokens=30', price: { input_per_1m: 0, output_per_1m: 50 } },
    },
    default_model: 'slow',
    resume: { window: '60s' },
    budgets: { state_file: null }, // spend lives in Redis and in memory: no file in the tree
    limits: { max_streams_per_user: 1, tiers: { metered: { tokens_per_minute: 100 }, spender: { budget_usd_per_day: 0.0025 }, chatty: { messages_per_minute: 3 } } },
    redis: { url: `redis://127.0.0.1:${redisPort}`, timeout: '1s' },
    ...extra,
  };
}

describe('cluster mode: two nodes, one Redis', { skip }, () => {
  let mock;
  let redis;
  let a;
  let b;
  before(async () => {
    mock = await startMock();
    redis = await startRedis(await freePort());
    // Node A runs two workers: the in-process paths (relay, directory) and the cluster's meet.
    a = await startSluice({ config: nodeConfig(mock, redis.port, { workers: 2, redis: { url: `redis://127.0.0.1:${redis.port}`, node: 'node-a', timeout: '1s' } }) });
    b = await startSluice({ config: nodeConfig(mock, redis.port, { redis: { url: `redis://127.0.0.1:${redis.port}`, node: 'node-b', timeout: '1s' } }) });
    await until('both nodes connected to Redis', async () =>
      (await metric(a, 'sluice_redis_up')) === 1 && (await metric(b, 'sluice_redis_up')) === 1);
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.stop();
    await mock?.stop();
  });

  test('a stream started on node A is resumed on node B with identical text', async () => {
    const [c1] = await session(a, { sub: 'mover' });
    c1.send({ type: 'chat', id: 'r1', model: 'slow', message: 'cluster-resume' });
    const start = await c1.next((m) => m.id === 'r1' && m.type === 'start');
    const seen = [start];
    for (let i = 0; i < 5; i++) seen.push(await c1.next((m) => m.id === 'r1'));
    const lastSeq = seen.at(-1).seq;
    c1.ws.terminate();
    await c1.closed;

    const [c2] = await session(b, { sub: 'mover' });
    c2.send({ type: 'resume', id: 'r1', after: lastSeq, epoch: start.epoch });
    const rest = await c2.collect('r1', 20000);
    assert.notEqual(rest[0].code, 'NOT_FOUND', JSON.stringify(rest[0]));
    assert.ok(rest[0].seq > lastSeq, 'the replay starts after the last event seen');
    assert.equal(rest.at(-1).type, 'done');
    for (let i = 1; i < rest.length; i++) assert.ok(rest[i].seq > rest[i - 1].seq);
    assert.equal(textOf([...seen, ...rest]), tokens(200));
    assert.ok((await metric(a, 'sluice_redis_commands_total')) > 0);
    c2.close();
  });

  test('an HTTP API stream cut on node A is resumed on node B with Last-Event-ID: exactly the rest', async () => {
    const auth = { authorization: `Bearer ${jwt({ sub: 'sse-mover' })}` };
    // The SSE events of a text: [{ id, content, done }] (complete blocks only), and the rest.
    const events = (text) => {
      const blocks = text.split('\n\n');
      const rest = blocks.pop();
      const out = [];
      for (const b of blocks) {
        const id = /^id: (.*)$/m.exec(b)?.[1] ?? null;
        const data = /^data: (.*)$/m.exec(b)?.[1];
        if (data === undefined) continue;
        if (data === '[DONE]') { out.push({ id, done: true }); continue; }
        out.push({ id, content: JSON.parse(data).choices?.[0]?.delta?.content ?? '' });
      }
      return { out, rest };
    };
    const ac = new AbortController();
    const r = await fetch(`${a.url}/v1/chat/completions`, {
      method: 'POST', signal: ac.signal,
      headers: { ...auth, 'content-type': 'application/json', 'x-sluice-resumable': 'true' },
      body: JSON.stringify({ model: 'slow', stream: true, messages: [{ role: 'user', content: 'cluster-sse' }] }),
    });
    assert.equal(r.status, 200);
    const sid = r.headers.get('x-sluice-stream-id');
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    const seen = [];
    while (seen.filter((e) => e.content).length < 5) {
      const { value, done } = await reader.read();
      assert.ok(!done, 'the stream went on past five chunks');
      const got = events(buf + dec.decode(value, { stream: true }));
      seen.push(...got.out);
      buf = got.rest;
    }
    ac.abort(); // the connection is cut: node A pauses the stream for the window
    const last = seen.at(-1).id;
    assert.match(last, new RegExp(`^${sid}:\\d+$`));

    const r2 = await fetch(`${b.url}/v1/chat/completions/${sid}/events`, { headers: { ...auth, 'last-event-id': last } });
    assert.equal(r2.status, 200, await r2.clone().text());
    assert.equal(r2.headers.get('x-sluice-stream-id'), sid);
    const after = events(await r2.text()).out;
    assert.equal(after.at(-1).done, true, 'ends with [DONE]');
    const seq = (e) => Number(e.id.split(':')[1]);
    const ids = after.filter((e) => e.id !== null);
    assert.ok(ids.length > 0 && seq(ids[0]) > seq(seen.at(-1)), `starts after the last event seen: ${JSON.stringify(after.slice(0, 3))}`);
    for (let i = 1; i < ids.length; i++) assert.ok(seq(ids[i]) > seq(ids[i - 1]));
    const text = [...seen, ...after].map((e) => e.content ?? '').join('');
    assert.equal(text, tokens(200));
    // Another user cannot read it from B, nor is an unknown stream a hang.
    const other = await fetch(`${b.url}/v1/chat/completions/${sid}/events`, { headers: { authorization: `Bearer ${jwt({ sub: 'sse-other' })}` } });
    assert.equal(other.status, 404);
    const unknown = await fetch(`${b.url}/v1/chat/completions/no-such-stream/events`, { headers: auth });
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).error.code, 'not_found');
  });

  test('a stream read on B is taken back by a resume on its owner A', async () => {
    const [c1] = await session(a, { sub: 'pingpong' });
    c1.send({ type: 'chat', id: 'p1', model: 'slow', message: 'cluster-pingpong' });
    const seen1 = [await c1.next((m) => m.id === 'p1' && m.type === 'start')];
    for (let i = 0; i < 3; i++) seen1.push(await c1.next((m) => m.id === 'p1' && m.type === 'delta'));
    c1.ws.terminate();
    await c1.closed;
    const [c2] = await session(b, { sub: 'pingpong' });
    c2.send({ type: 'resume', id: 'p1', after: seen1.at(-1).seq, epoch: seen1[0].epoch });
    const seen2 = [];
    for (let i = 0; i < 3; i++) seen2.push(await c2.next((m) => m.id === 'p1' && m.type === 'delta', 10000));
    const markB = b.mark();
    const [c3] = await session(a, { sub: 'pingpong' });
    c3.send({ type: 'resume', id: 'p1', after: seen2.at(-1).seq, epoch: seen1[0].epoch });
    const rest = await c3.collect('p1', 20000);
    assert.equal(rest.at(-1).type, 'done');
    assert.equal(textOf([...seen1, ...seen2, ...rest]), tokens(200));
    // B let go of it when A took it back: no NOT_FOUND there, and no `done` either.
    assert.ok(!c2.all.some((m) => m.id === 'p1' && ['done', 'error'].includes(m.type)), JSON.stringify(c2.all.slice(-2)));
    assert.doesNotMatch(b.stderr().slice(markB), /level=(warn|error)/);
    c2.close();
    c3.close();
  });

  test("seed 003's ai:reconnect on node B takes over the streams of a client that left node A", async () => {
    const connect = (s) => new Promise((resolve, reject) => {
      const sock = io(`${s.url}/ai`, { auth: { token: jwt({ sub: 'aiuser' }) }, transports: ['websocket'], forceNew: true, reconnection: false });
      const timer = setTimeout(() => reject(new Error('no ai:connected')), 8000);
      sock.once('ai:connected', (m) => { clearTimeout(timer); resolve([sock, m]); });
      sock.once('connect_error', (e) => { clearTimeout(timer); reject(e); });
    });
    const until1 = (sock, event, pred = () => true, ms = 15000) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${event}`)), ms);
      const f = (m) => { if (pred(m)) { clearTimeout(timer); sock.off(event, f); resolve(m); } };
      sock.on(event, f);
    });
    const [s1, hello] = await connect(a);
    const text1 = [];
    s1.on('ai:token', (m) => text1.push(m.data));
    s1.emit('ai:stream', { prompt: 'cluster-ai-reconnect', streamId: 'ai1', model: 'slow' });
    await until1(s1, 'ai:token', () => text1.length >= 5);
    s1.disconnect();
    const [s2] = await connect(b);
    const text2 = [];
    s2.on('ai:token', (m) => text2.push(m.data));
    const done = until1(s2, 'ai:stream:complete', (m) => m.streamId === 'ai1', 20000);
    s2.emit('ai:reconnect', { previousClientId: hello.clientId });
    const ok = await until1(s2, 'ai:reconnect:success');
    assert.equal(ok.previousClientId, hello.clientId);
    await done;
    const full = tokens(200);
    assert.ok(text2.length > 0, 'the rest of the stream came on B');
    assert.ok(full.startsWith(text1.join('')));
    assert.ok(full.endsWith(text2.join('')), 'B continues where A left off, never from the start');
    assert.ok(!text2.join('').startsWith('tok1 '), 'not restarted');
    s2.disconnect();
  });

  test('Socket.IO connection state recovery on node B of a session cut on node A', async () => {
    const token = jwt({ sub: 'siorec' });
    const s1 = io(`${a.url}/sluice`, { auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false });
    await new Promise((resolve) => s1.once('ready', resolve));
    const events = [];
    const track = (sock) => {
      for (const name of ['start', 'progress', 'delta', 'done', 'error', 'cancelled'])
        sock.on(name, (m) => { if (m.id === 'sr1') events.push(m); });
    };
    track(s1);
    s1.emit('chat', { id: 'sr1', model: 'slow', message: 'cluster-sio-recovery' });
    await until('10 deltas on A', async () => events.filter((e) => e.type === 'delta').length >= 10);
    const pid = s1._pid;
    const offset = s1._lastOffset;
    assert.ok(pid && offset, 'the server offered recovery');
    s1.io.engine.transport.ws.terminate?.() ?? s1.io.engine.close();
    await until('A saw the cut', async () => /session\.detached[^\n]*user=siorec/.test(a.stderr()));
    // The same client state, reconnecting to node B (a load balancer's choice).
    const s2 = io(`${b.url}/sluice`, { auth: { token }, transports: ['websocket'], forceNew: true, reconnection: false, autoConnect: false });
    s2._pid = pid;
    s2._lastOffset = offset;
    track(s2);
    const ended = new Promise((resolve) => { for (const n of ['done', 'error', 'cancelled']) s2.on(n, (m) => { if (m.id === 'sr1') resolve(); }); });
    const connected = new Promise((resolve) => s2.once('connect', resolve));
    s2.connect();
    await connected;
    assert.equal(s2.recovered, true, 'the client reports a recovered session');
    await ended;
    let last = 0;
    for (const e of events) {
      assert.ok(e.seq > last, `seq ${e.seq} after ${last}`);
      last = e.seq;
    }
    assert.equal(events.at(-1).type, 'done');
    assert.equal(textOf(events), tokens(200));
    s1.close();
    s2.close();
  });

  test('Socket.IO recovery naming a session no node has: a fresh session, not a hang', async () => {
    const s2 = io(`${b.url}/sluice`, { auth: { token: jwt({ sub: 'siorec2' }) }, transports: ['websocket'], forceNew: true, reconnection: false, autoConnect: false });
    s2._pid = '0nosuchsessionxxxxxx';
    s2._lastOffset = '1.5';
    const ready = new Promise((resolve) => s2.once('ready', resolve));
    s2.connect();
    await ready;
    assert.equal(s2.recovered, false);
    s2.close();
  });

  test("ws-chat's conversation memory follows the client to node B", async () => {
    const chat = async (s) => {
      const c = await Client.open(`${s.wsUrl}/ws/chat`);
      c.send({ type: 'auth', token: jwt({ sub: 'memo' }) });
      await c.next('auth_success');
      return c;
    };
    const c1 = await chat(a);
    c1.send({ type: 'message', message: 'cluster-memory-first-question', session_id: 'conv-x' });
    const done1 = await c1.next('complete', 10000);
    assert.ok(done1);
    c1.close();
    const c2 = await chat(b);
    c2.send({ type: 'message', message: 'cluster-memory-second-question', session_id: 'conv-x' });
    await c2.next('complete', 10000);
    c2.close();
    // The provider call made on B carried the first exchange, question and answer.
    const r = await mock.wait('cluster-memory-second-question', 'complete', 5000);
    const body = JSON.stringify(r);
    assert.match(body, /cluster-memory-first-question/, 'the history came from node A');
    assert.match(body, /tok1 tok2/, "the first answer is in the history");
  });

  test('ai:reconnect naming no session anywhere: NOT_FOUND, not a hang', async () => {
    const sock = io(`${b.url}/ai`, { auth: { token: jwt({ sub: 'aiuser2' }) }, transports: ['websocket'], forceNew: true, reconnection: false });
    await new Promise((resolve) => sock.once('ai:connected', resolve));
    const err = new Promise((resolve) => sock.once('ai:error', resolve));
    sock.emit('ai:reconnect', { previousClientId: '0nosuchsessionxxxxxx' });
    const e = await err;
    assert.match(JSON.stringify(e), /NOT_FOUND/);
    sock.disconnect();
  });

  test('a resume on B of a stream that ended on A replays it from Redis', async () => {
    const [c1] = await session(a, { sub: 'late' });
    c1.send({ type: 'chat', id: 'q1', model: 'quick', message: 'cluster-ended' });
    const all = await c1.collect('q1');
    assert.equal(all.at(-1).type, 'done');
    c1.close();
    // The journal reaches Redis within redis.flush_interval: wait for it to be there.
    await until('the journal in Redis', async () =>
      (await redisCmd(redis.port, 'EXISTS', `sluice:j:4:late:q1:${all[0].epoch}`)).startsWith(':1'));
    const [c2] = await session(b, { sub: 'late' });
    c2.send({ type: 'resume', id: 'q1', after: 0 });
    const again = await c2.collect('q1');
    // Replayed deltas come merged: the same text, the same end.
    assert.equal(textOf(again), textOf(all));
    assert.equal(textOf(all), tokens(30));
    assert.deepEqual([again.at(-1).type, again.at(-1).seq], ['done', all.at(-1).seq]);
    // Another user cannot read it.
    const [c3] = await session(b, { sub: 'other' });
    c3.send({ type: 'resume', id: 'q1', after: 0 });
    const err = await c3.next((m) => m.id === 'q1');
    assert.equal(err.code, 'NOT_FOUND');
    c2.close();
    c3.close();
  });

  test('a cancel sent on node B stops the provider call running on node A', async () => {
    const marker = 'cluster-cancel-resumed';
    const [c1] = await session(a, { sub: 'canceller' });
    c1.send({ type: 'chat', id: 'k1', model: 'long', message: marker });
    const start = await c1.next((m) => m.id === 'k1' && m.type === 'start');
    await c1.next((m) => m.id === 'k1' && m.type === 'delta');
    c1.ws.terminate();
    await c1.closed;
    const [c2] = await session(b, { sub: 'canceller' });
    c2.send({ type: 'resume', id: 'k1', after: start.seq, epoch: start.epoch });
    await c2.next((m) => m.id === 'k1' && m.type === 'delta', 10000);
    c2.send({ type: 'cancel', id: 'k1' });
    const r = await mock.wait(marker, 'aborted', 5000);
    assert.equal(r.state, 'aborted');
    const end = await c2.next((m) => m.id === 'k1' && ['cancelled', 'error', 'done'].includes(m.type), 10000);
    assert.equal(end.type, 'cancelled');
    c2.close();
  });

  test('a cancel from another tab on node B reaches the stream on node A', async () => {
    const marker = 'cluster-cancel-tab';
    const [c1] = await session(a, { sub: 'tabs' });
    c1.send({ type: 'chat', id: 't1', model: 'long', message: marker });
    await c1.next((m) => m.id === 't1' && m.type === 'delta');
    const [c2] = await session(b, { sub: 'tabs' });
    c2.send({ type: 'cancel', id: 't1' });
    await mock.wait(marker, 'aborted', 5000);
    const end = await c1.next((m) => m.id === 't1' && ['cancelled', 'error', 'done'].includes(m.type), 10000);
    assert.equal(end.type, 'cancelled');
    c1.close();
    c2.close();
  });

  test('in cluster mode a cancel from another tab on the same node reaches the stream too', async () => {
    const marker = 'cluster-cancel-same-node';
    const [c1] = await session(a, { sub: 'tabs2' });
    c1.send({ type: 'chat', id: 'u1', model: 'long', message: marker });
    await c1.next((m) => m.id === 'u1' && m.type === 'delta');
    const [c2] = await session(a, { sub: 'tabs2' });
    c2.send({ type: 'cancel', id: 'u1' });
    await mock.wait(marker, 'aborted', 5000);
    const end = await c1.next((m) => m.id === 'u1' && ['cancelled', 'error', 'done'].includes(m.type), 10000);
    assert.equal(end.type, 'cancelled');
    c1.close();
    c2.close();
  });

  test('limits.max_streams_per_user holds across nodes', async () => {
    const marker = 'cluster-limit-first';
    const [c1] = await session(a, { sub: 'limited' });
    c1.send({ type: 'chat', id: 'l1', model: 'long', message: marker });
    await c1.next((m) => m.id === 'l1' && m.type === 'delta');
    const refusedBefore = await metric(b, 'sluice_rate_limited_total{limit="streams"}');
    const [c2] = await session(b, { sub: 'limited' });
    c2.send({ type: 'chat', id: 'l2', model: 'quick', message: 'cluster-limit-second' });
    const refused = await c2.next((m) => m.id === 'l2' && ['error', 'start', 'done'].includes(m.type), 10000);
    assert.equal(refused.type, 'error', JSON.stringify(refused));
    assert.equal(refused.code, 'RATE_LIMITED');
    assert.match(refused.message, /across the cluster/);
    assert.equal(await metric(b, 'sluice_rate_limited_total{limit="streams"}'), refusedBefore + 1);
    // Once the first stream ends, the user may start one on the other node.
    c1.send({ type: 'cancel', id: 'l1' });
    await c1.next((m) => m.id === 'l1' && m.type === 'cancelled');
    c2.send({ type: 'chat', id: 'l3', model: 'quick', message: 'cluster-limit-third' });
    const again = await c2.collect('l3');
    assert.equal(again.at(-1).type, 'done');
    assert.equal(textOf(again), tokens(30));
    c1.close();
    c2.close();
  });

  test('limits tokens_per_minute holds across nodes', async () => {
    // The mock reports 10 input and 30 output tokens a stream: 40 counted per stream.
    const open = async (s) => {
      const c = await Client.open(`${s.wsUrl}/ws?token=${jwt({ sub: 'meter', sluice_tier: 'metered' })}`);
      await c.next('ready');
      return c;
    };
    const counted = async () => {
      const r = await redisCmd(redis.port, 'HVALS', 'sluice:t:5:meter');
      return (r.match(/\r\n(\d+)\r\n/g) || []).map((x) => Number(x.trim())).reduce((a, b) => a + b, 0);
    };
    const [ca, cb] = [await open(a), await open(b)];
    let n = 0;
    for (const c of [ca, cb, ca]) {
      n++;
      c.send({ type: 'chat', id: `m${n}`, model: 'quick', message: `cluster-tokens-${n}` });
      const all = await c.collect(`m${n}`);
      assert.equal(all.at(-1).type, 'done', JSON.stringify(all.at(-1)));
      await until(`${40 * n} tokens counted in Redis`, async () => (await counted()) >= 40 * n);
    }
    // 120 tokens in the last minute, 40 of them on B: B's own count would let this one pass.
    cb.send({ type: 'chat', id: 'm4', model: 'quick', message: 'cluster-tokens-4' });
    const refused = await cb.next((m) => m.id === 'm4' && ['error', 'start'].includes(m.type));
    assert.equal(refused.code, 'RATE_LIMITED', JSON.stringify(refused));
    assert.match(refused.message, /tokens.*across the cluster/);
    ca.close();
    cb.close();
  });

  test('messages_per_minute counts chats across nodes', async () => {
    const open = async (s) => {
      const c = await Client.open(`${s.wsUrl}/ws?token=${jwt({ sub: 'chatty', sluice_tier: 'chatty' })}`);
      await c.next('ready');
      return c;
    };
    const [ca, cb] = [await open(a), await open(b)];
    let n = 0;
    for (const c of [ca, ca, cb]) {
      n++;
      c.send({ type: 'chat', id: `q${n}`, model: 'quick', message: `cluster-chats-${n}` });
      const all = await c.collect(`q${n}`);
      assert.equal(all.at(-1).type, 'done', JSON.stringify(all.at(-1)));
    }
    // Three chats this minute, one of them on B: B's own bucket (3 a minute) has room.
    cb.send({ type: 'chat', id: 'q4', model: 'quick', message: 'cluster-chats-4' });
    const refused = await cb.next((m) => m.id === 'q4' && ['error', 'start'].includes(m.type));
    assert.equal(refused.code, 'RATE_LIMITED', JSON.stringify(refused));
    assert.match(refused.message, /requests.*across the cluster/);
    ca.close();
    cb.close();
  });

  test("a tier's daily budget holds across nodes", async () => {
    const open = async (s) => {
      const c = await Client.open(`${s.wsUrl}/ws?token=${jwt({ sub: 'spender', sluice_tier: 'spender' })}`);
      await c.next('ready');
      return c;
    };
    const spent = async () => {
      const day = Math.floor(Date.now() / 86400000);
      const r = await redisCmd(redis.port, 'GET', `sluice:b:7:spender:d${day}`);
      const m = r.match(/\r\n([0-9.e-]+)\r\n/);
      return m ? Number(m[1]) : 0;
    };
    const [ca, cb] = [await open(a), await open(b)];
    let n = 0;
    for (const c of [ca, cb]) {
      n++;
      c.send({ type: 'chat', id: `b${n}`, model: 'priced', message: `cluster-budget-${n}` });
      const all = await c.collect(`b${n}`);
      assert.equal(all.at(-1).type, 'done', JSON.stringify(all.at(-1)));
      await until(`$${0.0015 * n} spent in Redis`, async () => (await spent()) >= 0.0015 * n - 1e-9);
    }
    // $0.003 spent across the cluster, $0.0015 of it on A: A alone would let this one start.
    ca.send({ type: 'chat', id: 'b3', model: 'priced', message: 'cluster-budget-3' });
    const refused = await ca.next((m) => m.id === 'b3' && ['error', 'start'].includes(m.type));
    assert.equal(refused.code, 'BUDGET_EXCEEDED', JSON.stringify(refused));
    assert.match(refused.message, /across the cluster/);
    ca.close();
    cb.close();
  });

  test('Redis killed and restarted mid-stream: the owner keeps serving, the cluster comes back', async () => {
    const [c1] = await session(a, { sub: 'survivor' });
    c1.send({ type: 'chat', id: 's1', model: 'slow', message: 'cluster-redis-dies' });
    const first = [await c1.next((m) => m.id === 's1' && m.type === 'start')];
    first.push(await c1.next((m) => m.id === 's1' && m.type === 'delta'));
    const markA = a.mark();
    await redis.stop('SIGKILL');
    await a.waitLog(/event=redis\.down/, markA);
    await until('sluice_redis_up 0', async () => (await metric(a, 'sluice_redis_up')) === 0);
    // The local client is not affected: every token, in order, to the end.
    const rest = await c1.collect('s1', 20000);
    assert.equal(rest.at(-1).type, 'done');
    assert.equal(textOf([...first, ...rest]), tokens(200));
    // Without Redis a stream of another node cannot be found: NOT_FOUND at once, no hang.
    const [c2] = await session(b, { sub: 'survivor' });
    c2.send({ type: 'resume', id: 's1', after: 0 });
    const nf = await c2.next((m) => m.id === 's1', 5000);
    assert.equal(nf.code, 'NOT_FOUND');
    c2.close();
    // Redis is back (empty): the nodes reconnect by themselves and the cluster works again.
    redis = await startRedis(redis.port);
    await a.waitLog(/event=redis\.up/, markA, 15000);
    await until('both nodes reconnected', async () =>
      (await metric(a, 'sluice_redis_up')) === 1 && (await metric(b, 'sluice_redis_up')) === 1, 15000);
    c1.send({ type: 'chat', id: 's2', model: 'quick', message: 'cluster-redis-back' });
    const s2 = await c1.collect('s2');
    c1.close();
    await until('the new journal in Redis', async () =>
      (await redisCmd(redis.port, 'EXISTS', `sluice:j:8:survivor:s2:${s2[0].epoch}`)).startsWith(':1'));
    const [c3] = await session(b, { sub: 'survivor' });
    c3.send({ type: 'resume', id: 's2', after: 0 });
    const again = await c3.collect('s2');
    assert.equal(textOf(again), tokens(30));
    c3.close();
  });

  test('Redis hung (SIGSTOP): the nodes notice within redis.timeout, keep serving, and reconnect', async () => {
    const markA = a.mark();
    redis.proc.kill('SIGSTOP');
    try {
      const [c1] = await session(a, { sub: 'hung' });
      c1.send({ type: 'chat', id: 'h1', model: 'quick', message: 'cluster-redis-hung' });
      await a.waitLog(/event=redis\.down[^\n]*no answer within/, markA, 10000);
      const all = await c1.collect('h1', 15000);
      assert.equal(all.at(-1).type, 'done');
      assert.equal(textOf(all), tokens(30));
      c1.close();
    } finally {
      redis.proc.kill('SIGCONT');
    }
    await a.waitLog(/event=redis\.up/, markA, 15000);
    await until('both nodes reconnected', async () =>
      (await metric(a, 'sluice_redis_up')) === 1 && (await metric(b, 'sluice_redis_up')) === 1, 15000);
  });

  test('a node killed with SIGKILL: a reader elsewhere gets the journal, then NOT_FOUND, never a hang', async () => {
    const c = await startSluice({ config: nodeConfig(mock, redis.port, { redis: { url: `redis://127.0.0.1:${redis.port}`, node: 'node-c', timeout: '1s' } }) });
    try {
      await until('node C connected', async () => (await metric(c, 'sluice_redis_up')) === 1);
      // One stream read on B while C dies (B is following its tail), one resumed after.
      const [k1] = await session(c, { sub: 'orphan' });
      const [k2] = await session(c, { sub: 'orphan2' });
      k1.send({ type: 'chat', id: 'o1', model: 'long', message: 'cluster-kill-following' });
      k2.send({ type: 'chat', id: 'o2', model: 'long', message: 'cluster-kill-after' });
      const o1 = await k1.next((m) => m.id === 'o1' && m.type === 'start');
      await k1.next((m) => m.id === 'o1' && m.type === 'delta');
      await k2.next((m) => m.id === 'o2' && m.type === 'delta');
      k1.ws.terminate();
      k2.ws.terminate();
      await k1.closed;
      await k2.closed;
      const [r1] = await session(b, { sub: 'orphan' });
      r1.send({ type: 'resume', id: 'o1', after: o1.seq, epoch: o1.epoch });
      await r1.next((m) => m.id === 'o1' && m.type === 'delta', 10000);
      // And one over the HTTP API: started on C, cut, followed on B with Last-Event-ID.
      const auth = { authorization: `Bearer ${jwt({ sub: 'orphan3' })}` };
      const ac = new AbortController();
      const h1 = await fetch(`${c.url}/v1/chat/completions`, {
        method: 'POST', signal: ac.signal,
        headers: { ...auth, 'content-type': 'application/json', 'x-sluice-resumable': 'true' },
        body: JSON.stringify({ model: 'long', stream: true, messages: [{ role: 'user', content: 'cluster-kill-sse' }] }),
      });
      const sid = h1.headers.get('x-sluice-stream-id');
      const first = await h1.body.getReader().read();
      const lastId = [...new TextDecoder().decode(first.value).matchAll(/^id: (.*)$/gm)].at(-1)[1];
      ac.abort();
      const h2 = await fetch(`${b.url}/v1/chat/completions/${sid}/events`, { headers: { ...auth, 'last-event-id': lastId } });
      assert.equal(h2.status, 200);
      const h2reader = h2.body.getReader();
      let h2text = new TextDecoder().decode((await h2reader.read()).value);
      await c.stop({ signal: 'SIGKILL', expectCode: null });
      for (;;) {
        const { value, done } = await h2reader.read();
        if (done) break;
        h2text += new TextDecoder().decode(value);
      }
      // The body ends with an error event naming what happened, never a hang.
      const lastData = [...h2text.matchAll(/^data: (.*)$/gm)].at(-1)[1];
      assert.equal(JSON.parse(lastData).error?.code, 'not_found', lastData);
      const seen = [];
      for (;;) {
        const m = await r1.next((x) => x.id === 'o1', 15000);
        seen.push(m);
        if (['done', 'error', 'cancelled'].includes(m.type)) break;
      }
      assert.equal(seen.at(-1).code, 'NOT_FOUND', JSON.stringify(seen.at(-1)));
      r1.close();
      // Resumed after the node died: what it wrote, then NOT_FOUND.
      const [r2] = await session(b, { sub: 'orphan2' });
      r2.send({ type: 'resume', id: 'o2', after: 0 });
      const got = [];
      for (;;) {
        const m = await r2.next((x) => x.id === 'o2', 15000);
        got.push(m);
        if (['done', 'error', 'cancelled'].includes(m.type)) break;
      }
      assert.equal(got.at(-1).code, 'NOT_FOUND', JSON.stringify(got.at(-1)));
      assert.ok(tokens(100000).startsWith(textOf(got)), 'the replay is a prefix of the answer');
      assert.ok(textOf(got).length > 0, 'what the node wrote before it died is replayed');
      r2.close();
    } finally {
      await c.stop({ signal: 'SIGKILL', expectCode: null });
    }
  });
});
