// Smoke test of the benchmark's load generator (build/sluice-loadgen, docs/performance.md):
// tiny runs through sluice (demo model, and the mock upstream when the openai provider is
// there) and straight to the mock, checking only that they complete without errors and
// report valid JSON with the expected keys and counts; and bench (e)'s mode, every
// connection cut at once mid-stream and resumed, with each stream's text checked token by
// token. No timing assertions: the figures themselves belong to `make bench`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, SECRET, jwt, startMock, startSluice } from './lib/harness.mjs';

function loadgenBin() {
  if (process.env.SLUICE_LOADGEN) return process.env.SLUICE_LOADGEN;
  for (const n of ['build/asan/sluice-loadgen', 'build/sluice-loadgen']) {
    const p = path.join(ROOT, n);
    if (fs.existsSync(p)) return p;
  }
  throw new Error('no load generator: set SLUICE_LOADGEN or build build/asan/sluice-loadgen');
}

// Runs the load generator; resolves with { code, report (parsed JSON), stdout, stderr }.
function loadgen(args, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const p = spawn(loadgenBin(), ['--json', '--no-progress', '--timeout', '50s', ...args], {
      cwd: ROOT,
      env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`loadgen hung: ${err}`)); }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(t);
      if (/ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/.test(err)) {
        reject(new Error(`sanitizer report from the load generator:\n${err}`));
        return;
      }
      let report;
      try {
        report = JSON.parse(out);
      } catch (e) {
        reject(new Error(`loadgen printed no JSON (exit ${code}): ${out}\n${err}`));
        return;
      }
      resolve({ code, report, stdout: out, stderr: err });
    });
  });
}

const HIST_KEYS = ['count', 'mean', 'p10', 'p50', 'p90', 'p99', 'p99.9', 'max'];

function assertShape(r) {
  for (const k of ['label', 'mode', 'target', 'connections', 'streams_per_connection', 'concurrency',
    'ok', 'connect', 'streams', 'tokens', 'latency_ms', 'ttft_ms', 'errors', 'server', 'loadgen']) {
    assert.ok(k in r, `report has ${k}`);
  }
  for (const h of [r.latency_ms, r.ttft_ms, r.connect.ms, r.connect.auth_ms]) {
    assert.deepEqual(Object.keys(h), HIST_KEYS);
    for (const k of HIST_KEYS) assert.equal(typeof h[k], 'number');
  }
  assert.equal(typeof r.tokens.per_s, 'number');
  assert.equal(typeof r.loadgen.cpu_s, 'number');
}

function assertClean(res) {
  assert.equal(res.code, 0, `exit status; errors: ${JSON.stringify(res.report.errors)}`);
  assert.equal(res.report.ok, true);
  assert.equal(res.report.errors.total, 0);
  assert.deepEqual(res.report.errors.by_code, {});
}

describe('benchmark smoke', () => {
  let mock;
  let s;
  const token = jwt({ sub: 'bench' });
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: {
          fastdemo: { kind: 'demo', tokens_per_second: 2000 },
          mock: { kind: 'openai', base_url: `${mock.url}/v1`, api_key: 'x' },
        },
        models: {
          fast: { provider: 'fastdemo' },
          stamped: { provider: 'mock', upstream_model: 'synth:tokens=25,ts=1' },
        },
        limits: { max_streams_per_connection: 4, messages_per_minute: 100000 },
      },
    });
  });
  after(async () => {
    await s?.stop();
    await mock?.stop();
  });

  test('20 connections x 2 streams through sluice (demo model)', async () => {
    const res = await loadgen(['-c', '20', '-s', '2', '-k', '2', '-m', 'fast', '--token', token,
      '--label', 'smoke', `${s.wsUrl}/ws`]);
    assertClean(res);
    const r = res.report;
    assertShape(r);
    assert.equal(r.label, 'smoke');
    assert.equal(r.mode, 'native');
    assert.equal(r.connect.ok, 20);
    assert.equal(r.connect.failed, 0);
    assert.equal(r.connect.auth_ms.count, 20);
    assert.equal(r.streams.ok, 40);
    assert.equal(r.streams.failed, 0);
    assert.equal(r.ttft_ms.count, 40);
    assert.ok(r.tokens.total >= 40);
    assert.equal(r.server, null);
  });

  test('a burst: 20 idle connections start a stream each at once; first tokens and the server CPU per new stream', async () => {
    const res = await loadgen(['-c', '20', '-s', '1', '--idle', '200ms', '-m', 'fast', '--token', token,
      '--server-pid', String(s.proc.pid), `${s.wsUrl}/ws`]);
    assertClean(res);
    const r = res.report;
    assertShape(r);
    assert.equal(r.streams.ok, 20);
    assert.equal(r.ttft_ms.count, 20);
    assert.ok(r.ttft_ms.p10 <= r.ttft_ms.p50);
    assert.equal(typeof r.server.cpu_us_per_new_stream, 'number');
    assert.equal(typeof r.server.firsts_cpu_s, 'number');
    assert.ok(r.server.firsts_wall_s >= 0);
  });

  test('20 connections x 2 streams straight to the mock (SSE baseline), every token stamped', async () => {
    const res = await loadgen(['-c', '20', '-s', '2', '-m', 'synth:tokens=25,ts=1',
      '--expect-tokens', '25', `${mock.url}/v1`]);
    assertClean(res);
    const r = res.report;
    assertShape(r);
    assert.equal(r.mode, 'sse');
    assert.equal(r.streams.ok, 40);
    assert.equal(r.tokens.total, 1000);
    assert.equal(r.tokens.stamped, 1000);
    assert.equal(r.latency_ms.count, 1000);
  });

  test('20 connections x 2 streams through sluice\'s HTTP API (the bench\'s sluice sse rows)', async () => {
    const res = await loadgen(['-c', '20', '-s', '2', '-m', 'stamped', '--token', token,
      '--expect-tokens', '25', '--server-pid', String(s.proc.pid), `${s.url}/v1`]);
    assertClean(res);
    const r = res.report;
    assertShape(r);
    assert.equal(r.mode, 'sse');
    assert.equal(r.streams.ok, 40);
    assert.equal(r.tokens.total, 1000);
    assert.equal(r.latency_ms.count, 1000);
    assert.equal(r.server.pid, s.proc.pid);
  });

  test('SSE mode: -H headers reach the server (the mock takes its scenario from one)', async () => {
    // Without the header the model is unknown to the mock (404); with it, 5 stamped tokens.
    const res = await loadgen(['-c', '3', '-s', '2', '-m', 'not-a-scenario',
      '-H', 'x-mock-scenario: synth:tokens=5,ts=1', '-H', 'x-extra: 1', '--expect-tokens', '5',
      `${mock.url}/v1`]);
    assertClean(res);
    assert.equal(res.report.tokens.total, 30);
    const log = await mock.log();
    const mine = log.filter((r) => r.scenario === 'synth:tokens=5,ts=1' && r.headers['x-extra'] === '1');
    assert.equal(mine.length, 6);
    assert.ok(mine.every((r) => r.headers.authorization === 'Bearer x'));
    const bare = await loadgen(['-c', '1', '-s', '1', '-m', 'not-a-scenario', `${mock.url}/v1`]);
    assert.deepEqual(bare.report.errors.by_code, { HTTP_404: 1 });
  });

  test('SSE mode: an in-stream error event counts under its code', async () => {
    const res = await loadgen(['-c', '2', '-s', '1', '-m', 'synth:tokens=10,error_after=3',
      `${mock.url}/v1`]);
    assert.equal(res.code, 1);
    assert.deepEqual(res.report.errors.by_code, { SERVER_ERROR: 2 });
  });

  test('SSE mode: a server closing idle keep-alive connections after their streams is no error', async () => {
    // Node closes an idle keep-alive connection after keepAliveTimeout (Portkey runs on it):
    // the connections that finish first sit idle while the later ones (--spread) stream
    // (Node checks the timeout about once a second, hence the long spread).
    const srv = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end('data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n');
      });
    });
    srv.keepAliveTimeout = 100;
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const res = await loadgen(['-c', '3', '-s', '1', '--spread', '3s',
        `http://127.0.0.1:${srv.address().port}/v1`]);
      assertClean(res);
      assert.equal(res.report.streams.ok, 3);
    } finally {
      srv.close();
    }
  });

  test('SSE mode: a bad -H is refused', async () => {
    for (const h of ['no-colon', ': empty-name', 'bad name: v']) {
      const p = spawn(loadgenBin(), ['-H', h, `${mock.url}/v1`], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d) => { err += d; });
      const code = await new Promise((r) => p.on('exit', r));
      assert.equal(code, 2, h);
      assert.match(err, /bad value for/);
    }
  });

  test('idle mode holds authenticated connections and samples the server', async () => {
    const res = await loadgen(['-c', '20', '-s', '0', '--idle', '200ms', '--auth', 'message',
      '--token', token, '--server-pid', String(s.proc.pid), `${s.wsUrl}/ws`]);
    assertClean(res);
    const r = res.report;
    assertShape(r);
    assert.equal(r.connect.ok, 20);
    assert.equal(r.streams.ok, 0);
    assert.equal(r.tokens.total, 0);
    assert.equal(r.server.pid, s.proc.pid);
    assert.equal(typeof r.server.rss_bytes_per_connection, 'number');
    assert.equal(typeof r.server.connected.rss_kib, 'number');
  });

  test('through sluice to the mock, every token delivered is stamped', async () => {
    const res = await loadgen(['-c', '10', '-s', '2', '-m', 'stamped', '--expect-tokens', '25',
      '--token', token, '--auth', 'header', `${s.wsUrl}/ws`]);
    assertClean(res);
    assert.equal(res.report.tokens.total, 500);
    assert.equal(res.report.tokens.stamped, 500);
    assert.equal(res.report.latency_ms.count, 500);
  });

  test('errors are reported by code, with exit status 1', async () => {
    const res = await loadgen(['-c', '3', '-s', '1', '-m', 'no-such-model', '--token', token,
      `${s.wsUrl}/ws`]);
    assert.equal(res.code, 1);
    assert.equal(res.report.ok, false);
    assert.deepEqual(res.report.errors.by_code, { UNKNOWN_MODEL: 3 });
    const bad = await loadgen(['-c', '2', '-s', '1', '--token', 'not-a-token', `${s.wsUrl}/ws`]);
    assert.equal(bad.code, 1);
    assert.equal(bad.report.connect.failed, 2);
    assert.equal(bad.report.errors.total, 2);
  });
});

describe('benchmark smoke: cut and resume (bench (e))', () => {
  let mock;
  let s;
  let noResume;
  // 200 tokens at 200/s: a second per stream, the cut at 40 tokens lands mid-stream.
  const SCEN = 'synth:tokens=200,rate=200,ts=2';
  const config = (resume) => ({
    workers: 2,
    providers: { mock: { kind: 'openai', base_url: `${mock.url}/v1`, api_key: 'x' } },
    models: { resumable: { provider: 'mock', upstream_model: SCEN } },
    limits: { messages_per_minute: 100000 },
    log: { level: 'info' },
    resume,
  });
  before(async () => {
    mock = await startMock();
    s = await startSluice({ config: config({ window: '30s' }) });
    noResume = await startSluice({ config: config({ window: '0s' }) });
  });
  after(async () => {
    await s?.stop();
    await noResume?.stop();
    await mock?.stop();
  });

  const cutArgs = (srv) => ['-c', '20', '-s', '1', '-m', 'resumable', '--expect-tokens', '200',
    '--verify-text', '--cut-at', '40', '--jwt-secret', SECRET, '--jwt-sub', 'cutter-',
    '--metrics', `${srv.url}/metrics`, `${srv.wsUrl}/ws`];

  test('20 streams cut at once mid-stream, resumed on new connections: every text exact', async () => {
    const since = (await mock.log()).reduce((m, r) => Math.max(m, r.id), 0);
    const mark = s.mark();
    const res = await loadgen(cutArgs(s));
    assertClean(res);
    const r = res.report;
    assertShape(r);
    assert.equal(r.streams.ok, 20);
    assert.equal(r.tokens.total, 4000);
    // The cut found all 20 streams running (the cut at 40 tokens of 200), and every one
    // was resumed and answered.
    assert.equal(r.cut.connections, 20);
    assert.equal(r.cut.streams, 20);
    assert.equal(r.cut.reconnected, 20);
    assert.equal(r.cut.resumes_sent, 20);
    assert.equal(r.cut.resumes_answered, 20);
    assert.equal(r.cut.resume_ms.count, 20);
    assert.equal(r.cut.reconnect_ms.count, 20);
    assert.equal(r.cut.resumes_refused, 0);
    assert.equal(typeof r.cut.resumed_wall_s, 'number');
    assert.ok(r.cut.at_s > 0);
    // Token by token: nothing lost, nothing twice, seq only grew.
    assert.deepEqual(r.verify, { streams: 20, exact: 20, tokens_lost: 0, tokens_duplicated: 0,
      garbled: 0, extra: 0, seq_regressed: 0 });
    // Each stream's text came from one upstream request: a resume is not a new request.
    const mine = (await mock.log()).filter((e) => e.id > since && e.scenario === SCEN);
    assert.equal(mine.length, 20);
    assert.ok(mine.every((e) => e.end === 'done' && e.tokens_sent === 200));
    // sluice's /metrics at the moment of the cut: 20 streams with their journals.
    const m = r.server_metrics;
    assert.ok(m.samples >= 2);
    assert.equal(m.at_cut.sluice_streams_active, 20);
    assert.ok(m.at_cut.sluice_journal_bytes > 0);
    assert.ok(m.journal_bytes_per_stream_at_cut > 0);
    assert.ok(m.end.sluice_resumes_total >= 20);
    // One user per connection (--jwt-secret), the same one again after the cut; the
    // resumes named the seq each client had seen.
    const log = s.stderr().slice(mark);
    const users = [...log.matchAll(/event=session\.ready .*user=(cutter-\d+)/g)].map((x) => x[1]);
    assert.equal(users.length, 40);
    for (let i = 0; i < 20; i++) assert.equal(users.filter((u) => u === `cutter-${i}`).length, 2);
    const resumed = [...log.matchAll(/event=stream\.resumed .*after=(\d+)/g)];
    assert.equal(resumed.length, 20);
    // Mid-stream: past `start` and the progress events, before the end.
    assert.ok(resumed.every((x) => Number(x[1]) > 3 && Number(x[1]) < 200), 'resumed mid-stream');
  });

  test('the same run against a sluice that keeps nothing (resume.window 0) fails: NOT_FOUND', async () => {
    // What the smoke test above would report if resume were broken.
    const res = await loadgen(cutArgs(noResume));
    assert.equal(res.code, 1);
    const r = res.report;
    assert.equal(r.ok, false);
    assert.equal(r.cut.streams, 20);
    assert.equal(r.cut.resumes_sent, 20);
    assert.equal(r.cut.resumes_refused, 20);
    assert.equal(r.cut.resume_ms.count, 0);
    assert.deepEqual(r.errors.by_code, { NOT_FOUND: 20 });
    assert.equal(r.streams.failed, 20);
    assert.equal(r.verify.exact, 0);
  });

  test('the text check counts what is wrong by kind', async () => {
    // 200 tokens delivered where 205 are expected: the tail is lost.
    const lost = await loadgen(['-c', '2', '-s', '1', '-m', 'resumable', '--expect-tokens', '205',
      '--verify-text', '--jwt-secret', SECRET, `${s.wsUrl}/ws`]);
    assert.equal(lost.code, 1);
    assert.deepEqual(lost.report.errors.by_code, { TEXT_LOST: 2 });
    assert.equal(lost.report.verify.tokens_lost, 10);
    // Stamps alone (ts=1) are no synthetic text.
    const garbled = await loadgen(['-c', '1', '-s', '1', '-m', 'synth:tokens=5,ts=1',
      '--expect-tokens', '5', '--verify-text', `${mock.url}/v1`]);
    assert.deepEqual(garbled.report.errors.by_code, { TEXT_GARBLED: 1 });
    assert.equal(garbled.report.verify.garbled, 5);
  });

  test('a cut that never comes (the streams end first) is an error, not a pass', async () => {
    const res = await loadgen(['-c', '2', '-s', '1', '-m', 'resumable', '--expect-tokens', '200',
      '--verify-text', '--cut-at', '1000', '--jwt-secret', SECRET, `${s.wsUrl}/ws`]);
    assert.equal(res.code, 1);
    assert.deepEqual(res.report.errors.by_code, { CUT_MISSED: 1 });
    assert.equal(res.report.cut.at_s, null);
    assert.equal(res.report.verify.exact, 2);
  });
});

describe('benchmark smoke: Socket.IO and the seed dialects', () => {
  let mock;
  let s;
  const token = jwt({ sub: 'dialects' });
  const STAMPED = 'synth:tokens=25,ts=1';
  const CHECKED = 'synth:tokens=30,ts=2';
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: {
          mock: { kind: 'openai', base_url: `${mock.url}/v1`, api_key: 'x', default_model: 'stamped' },
        },
        models: {
          stamped: { provider: 'mock', upstream_model: STAMPED },
          checked: { provider: 'mock', upstream_model: CHECKED },
        },
        default_model: 'stamped', // ws-chat requests name no model
        limits: { max_streams_per_connection: 4, messages_per_minute: 100000 },
        // Engine.IO pings during every run: a load generator that did not answer them
        // would see its connections closed (4008) half a second later.
        socketio: { ping_interval: '250ms', ping_timeout: '500ms' },
      },
    });
  });
  after(async () => {
    await s?.stop();
    await mock?.stop();
  });

  const lastId = async () => (await mock.log()).reduce((m, r) => Math.max(m, r.id), 0);
  const upstreamSince = async (since, scenario) =>
    (await mock.log()).filter((e) => e.id > since && e.scenario === scenario);
  const target = (d) => (d === 'ws-chat' ? `${s.wsUrl}/ws/chat` : `${s.wsUrl}/socket.io/`);
  const NSP = { sluice: '/sluice', chat: '/', llm: '/', stream: '/stream', ai: '/ai' };

  for (const d of ['sluice', 'chat', 'llm', 'stream', 'ai', 'ws-chat']) {
    test(`--dialect ${d}: 4 connections x 3 streams (2 at once) delivered through sluice`, async () => {
      const since = await lastId();
      const model = d === 'ws-chat' ? [] : ['-m', 'stamped'];
      const res = await loadgen(['-c', '4', '-s', '3', '-k', '2', ...model, '--expect-tokens', '25',
        '--token', token, '--dialect', d, '--label', `dialect-${d}`, target(d)]);
      assertClean(res);
      const r = res.report;
      assertShape(r);
      assert.equal(r.mode, d === 'ws-chat' ? 'ws-chat' : 'socketio');
      assert.equal(r.dialect, d);
      assert.equal(r.namespace, NSP[d] ?? null);
      assert.equal(r.connect.ok, 4);
      assert.equal(r.connect.auth_ms.count, 4);
      assert.equal(r.streams.ok, 12);
      assert.equal(r.ttft_ms.count, 12);
      // Every token counted came from the mock through sluice, stamped there.
      assert.equal(r.tokens.total, 300);
      assert.equal(r.tokens.stamped, 300);
      assert.equal(r.latency_ms.count, 300);
      const up = await upstreamSince(since, STAMPED);
      assert.equal(up.length, 12);
      assert.ok(up.every((e) => e.end === 'done' && e.tokens_sent === 25));
    });
  }

  test('Socket.IO dialects: the text checked token by token, streams named by client and server', async () => {
    // ai names its streams (streamId), stream lets sluice name them (sessionId): both keep
    // two streams at once on a connection apart.
    for (const d of ['ai', 'stream']) {
      const res = await loadgen(['-c', '3', '-s', '2', '-k', '2', '-m', 'checked',
        '--expect-tokens', '30', '--verify-text', '--token', token, '--dialect', d, target(d)]);
      assertClean(res);
      assert.deepEqual(res.report.verify, { streams: 6, exact: 6, tokens_lost: 0,
        tokens_duplicated: 0, garbled: 0, extra: 0, seq_regressed: 0 }, d);
    }
  });

  test('llm: --provider names the provider, whose default model answers', async () => {
    const since = await lastId();
    const res = await loadgen(['-c', '2', '-s', '1', '--provider', 'mock', '--expect-tokens', '25',
      '--token', token, '--dialect', 'llm', target('llm')]);
    assertClean(res);
    assert.equal(res.report.tokens.total, 50);
    assert.equal((await upstreamSince(since, STAMPED)).length, 2);
  });

  test('idle Socket.IO connections: joined, held through the server\'s pings, sampled', async () => {
    const res = await loadgen(['-c', '10', '-s', '0', '--idle', '1500ms', '--token', token,
      '--server-pid', String(s.proc.pid), '--dialect', 'sluice', target('sluice')]);
    assertClean(res);
    assert.equal(res.report.connect.ok, 10);
    assert.equal(typeof res.report.server.rss_bytes_per_connection, 'number');
  });

  test('a wrong namespace is an error, with exit status 1', async () => {
    const res = await loadgen(['-c', '3', '-s', '1', '-m', 'stamped', '--token', token,
      '--dialect', 'chat', '--namespace', '/nope', target('chat')]);
    assert.equal(res.code, 1);
    assert.equal(res.report.ok, false);
    assert.equal(res.report.connect.failed, 3);
    assert.deepEqual(res.report.errors.by_code, { INVALID_NAMESPACE: 3 });
  });

  test('a dialect the namespace or path does not speak is an error, with exit status 1', async () => {
    // Each ends at the first event the dialect cannot account for, not at the run's timeout.
    const cases = [
      ['--dialect', 'stream', '--namespace', '/ai', target('stream')], // ai:connected
      ['--dialect', 'sluice', '--namespace', '/', target('sluice')], // chat:start
      ['--dialect', 'chat', '--namespace', '/sluice', target('chat')], // ready
      ['--dialect', 'ws-chat', `${s.wsUrl}/ws`], // the native protocol's ready
    ];
    for (const c of cases) {
      const t0 = Date.now();
      const res = await loadgen(['-c', '2', '-s', '1', '--token', token, ...c]);
      assert.equal(res.code, 1, c.join(' '));
      assert.equal(res.report.ok, false);
      assert.deepEqual(res.report.errors.by_code, { UNEXPECTED_EVENT: 2 }, c.join(' '));
      assert.match(res.stderr, /unexpected event/);
      assert.ok(Date.now() - t0 < 40000, 'ended before the run timeout');
    }
  });

  test('a refused token in the CONNECT is an error, with exit status 1', async () => {
    const res = await loadgen(['-c', '2', '-s', '1', '--token', 'not-a-token', '--dialect', 'ai',
      target('ai')]);
    assert.equal(res.code, 1);
    assert.deepEqual(res.report.errors.by_code, { AUTHENTICATION_FAILED: 2 });
  });

  test('an unknown dialect name, or an option the dialect cannot carry, is bad usage (status 2)', async () => {
    for (const args of [['--dialect', 'bogus'], ['--dialect', 'ws-chat', '-m', 'stamped'],
      ['--dialect', 'stream', '--max-tokens', '5'], ['--provider', 'mock'],
      ['--dialect', 'chat', '--namespace', 'no-slash']]) {
      const p = spawn(loadgenBin(), [...args, target('chat')], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d) => { err += d; });
      const code = await new Promise((r) => p.on('exit', r));
      assert.equal(code, 2, args.join(' '));
      assert.match(err, /sluice-loadgen: /, args.join(' '));
    }
  });
});
