// Cluster mode (docs/cluster.md): two sluice nodes sharing a real redis-server, started here
// on a free port. A client moves between nodes: its stream is resumed from Redis with the
// same text, a cancel reaches the node that runs the provider, a per-user stream limit holds
// across nodes, Redis restarting mid-stream costs the owner's client nothing, and a node
// killed outright leaves clients the journal's end or NOT_FOUND, never a hang.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { session, startMock, startSluice, textOf } from './lib/harness.mjs';

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

async function metric(s, name) {
  const body = await (await fetch(`${s.url}/metrics`)).text();
  const m = body.match(new RegExp(`^${name} (\\d+)`, 'm'));
  return m ? Number(m[1]) : -1;
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
    },
    default_model: 'slow',
    resume: { window: '60s' },
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
    a = await startSluice({ config: nodeConfig(mock, redis.port, { redis: { url: `redis://127.0.0.1:${redis.port}`, node: 'node-a', timeout: '1s' } }) });
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

  test('a resume on B of a stream that ended on A replays it from Redis', async () => {
    const [c1] = await session(a, { sub: 'late' });
    c1.send({ type: 'chat', id: 'q1', model: 'quick', message: 'cluster-ended' });
    const all = await c1.collect('q1');
    assert.equal(all.at(-1).type, 'done');
    c1.close();
    console.log(JSON.stringify(all[0]));
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
    try { await mock.wait(marker, 'aborted', 5000); } catch (e) { console.log(a.stderr().slice(-3000)); console.log(b.stderr().slice(-3000)); console.log(JSON.stringify(c2.all)); throw e; }
    const end = await c1.next((m) => m.id === 't1' && ['cancelled', 'error', 'done'].includes(m.type), 10000);
    assert.equal(end.type, 'cancelled');
    c1.close();
    c2.close();
  });
});
