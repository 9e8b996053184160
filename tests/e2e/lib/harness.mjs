// Test harness: spawns the real sluice binary (and the mock upstream) on free ports
// and gives tests real clients with awaitable message queues. No sleeps: every wait is
// on an event, bounded by a timeout that fails the test instead of hanging it.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../../..');
export const FIXTURES = process.env.SL_FIXTURES || path.resolve(ROOT, '../shared/upstream-fixtures');
export const SECRET = 'e2e-secret-0123456789abcdef0123456789abcdef';

function pickBinary(envName, names) {
  if (process.env[envName]) return process.env[envName];
  for (const n of names) {
    const p = path.join(ROOT, n);
    if (fs.existsSync(p)) return p;
  }
  throw new Error(`no binary: set ${envName} or build one of ${names.join(', ')}`);
}

export const SLUICE_BIN = () => pickBinary('SLUICE_BIN', ['build/asan/sluice', 'build/sluice']);
export const MOCK_BIN = () => pickBinary('SLUICE_MOCK', ['build/asan/sluice-mock', 'build/sluice-mock']);

const SANITIZER = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer/;

// Resolves with the first stdout line matching re (or rejects on exit/timeout).
function waitForLine(proc, re, what, ms = 15000) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${what}: no "${re}" within ${ms} ms`)), ms);
    const onData = (d) => {
      buf += d.toString();
      const m = buf.match(re);
      if (m) {
        clearTimeout(timer);
        proc.stdout.off('data', onData);
        resolve(m);
      }
    };
    proc.stdout.on('data', onData);
    proc.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code ?? sig}) before starting`));
    });
  });
}

function tmpdir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-e2e-'));
}

// Starts sluice with a configuration object (written as JSON, which is valid YAML).
// wrap: a command that runs sluice (e.g. ['prlimit', '--nofile=128:128']); it must exec it,
// so that proc.pid is sluice's. Returns { url, wsUrl, port, proc, stderr(), stop() }.
export async function startSluice({ config = {}, env = {}, args = [], wrap = [] } = {}) {
  const dir = tmpdir();
  const cfg = {
    listen: '127.0.0.1:0',
    workers: 1,
    auth: { jwt: { secret: SECRET } },
    ...config,
  };
  const cfgPath = path.join(dir, 'sluice.yaml');
  fs.writeFileSync(cfgPath, JSON.stringify(cfg, null, 2));
  const argv = [SLUICE_BIN(), '-c', cfgPath, ...args];
  const proc = spawn(wrap.length ? wrap[0] : argv[0], [...wrap.slice(1), ...(wrap.length ? argv : argv.slice(1))], {
    cwd: ROOT,
    env: {
      ...process.env,
      ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const logWaiters = [];
  proc.stderr.on('data', (d) => {
    stderr += d.toString();
    for (const w of [...logWaiters]) {
      const m = stderr.slice(w.from).match(w.re);
      if (m) {
        logWaiters.splice(logWaiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(m);
      }
    }
  });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  let stdout = '';
  proc.stdout.on('data', (d) => { stdout += d.toString(); });
  const m = await waitForLine(proc, /listening on (http:\/\/[^ ]+:(\d+))[^\n]*\n(?:[^\n]*\n)*?test page: [^\n]*\n/, 'sluice');
  const url = m[1].replace('localhost', '127.0.0.1');
  const port = Number(m[2]);
  let stopped = null;
  const server = {
    url,
    port,
    wsUrl: url.replace(/^http/, 'ws'),
    proc,
    dir,
    exited,
    stderr: () => stderr,
    stdout: () => stdout,
    // Marks the current end of the log; waitLog(re, mark) only looks at what follows.
    mark: () => stderr.length,
    // Resolves when a log line (after `from`) matches re.
    waitLog(re, from = 0, timeoutMs = 8000) {
      const m = stderr.slice(from).match(re);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const w = { re, from, resolve };
        w.timer = setTimeout(() => {
          logWaiters.splice(logWaiters.indexOf(w), 1);
          reject(new Error(`no log line matching ${re} within ${timeoutMs} ms`));
        }, timeoutMs);
        logWaiters.push(w);
      });
    },
    // Sends SIGTERM and checks a clean exit: status 0 and nothing from the sanitizers.
    async stop({ signal = 'SIGTERM', expectCode = 0, timeoutMs = 40000 } = {}) {
      if (!stopped) {
        if (signal && proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
        stopped = (async () => {
          const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
          const r = await exited;
          clearTimeout(t);
          fs.rmSync(dir, { recursive: true, force: true });
          if (SANITIZER.test(stderr)) throw new Error(`sanitizer report:\n${stderr}`);
          if (expectCode !== null && r.code !== expectCode)
            throw new Error(`sluice exited with ${r.code ?? r.signal}\n${stderr.slice(-4000)}`);
          return r;
        })();
      }
      return stopped;
    },
  };
  return server;
}

// Starts the mock upstream; returns { url, port, stop(), log(), wait(match, state) }.
export async function startMock({ args = [] } = {}) {
  const proc = spawn(MOCK_BIN(), ['--listen', '127.0.0.1:0', '--fixtures', FIXTURES, ...args], {
    cwd: ROOT,
    env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d.toString(); });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const m = await waitForLine(proc, /listening (\S+):(\d+)/, 'sluice-mock');
  const url = `http://${m[1]}:${m[2]}`;
  return {
    url,
    port: Number(m[2]),
    stderr: () => stderr,
    async log() {
      return (await fetch(`${url}/_mock/log`)).json();
    },
    async reset() {
      await fetch(`${url}/_mock/reset`, { method: 'POST' });
    },
    // Waits until a request whose body contains `match` reaches `state`.
    async wait(match, state, timeoutMs = 10000) {
      const q = new URLSearchParams({ match, state, timeout_ms: String(timeoutMs) });
      const r = await fetch(`${url}/_mock/wait?${q}`);
      if (r.status !== 200) throw new Error(`mock: no request matching ${match} reached ${state}`);
      return r.json();
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const r = await exited;
      if (SANITIZER.test(stderr)) throw new Error(`mock sanitizer report:\n${stderr}`);
      return r;
    },
  };
}

// An HS256 JWT signed with `secret`; claims are added to { sub }.
export function jwt(claims = {}, { secret = SECRET, header = { alg: 'HS256', typ: 'JWT' } } = {}) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = { sub: 'tester', exp: Math.floor(Date.now() / 1000) + 600, ...claims };
  const h = b64(header);
  const p = b64(body);
  const sig = crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${sig}`;
}

// A WebSocket client whose messages can be awaited in order.
export class Client {
  constructor(url, { headers = {}, protocols, origin, perMessageDeflate = false } = {}) {
    this.queue = [];
    this.waiters = [];
    this.all = [];
    this.ws = new WebSocket(url, protocols, { headers, origin, perMessageDeflate });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('unexpected-response', (req, res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => {
          const e = new Error(`HTTP ${res.statusCode}`);
          e.status = res.statusCode;
          e.headers = res.headers;
          e.body = body;
          reject(e);
        });
      });
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    this.ws.on('message', (data, isBinary) => {
      const text = data.toString();
      let msg;
      try {
        msg = isBinary ? { binary: data } : JSON.parse(text);
      } catch {
        msg = { raw: text };
      }
      this.all.push(msg);
      const w = this.waiters.findIndex((x) => x.pred(msg));
      if (w >= 0) {
        const [x] = this.waiters.splice(w, 1);
        clearTimeout(x.timer);
        x.resolve(msg);
      } else {
        this.queue.push(msg);
      }
    });
  }

  static async open(url, opts) {
    const c = new Client(url, opts);
    await c.opened;
    return c;
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' ? obj : JSON.stringify(obj));
  }

  // The next message satisfying pred (a function, or a `type` string), in arrival order.
  next(pred = () => true, timeoutMs = 8000) {
    const p = typeof pred === 'string' ? (m) => m.type === pred : pred;
    const i = this.queue.findIndex(p);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { pred: p, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.all.slice(-5))}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  // Every message of stream `id` up to and including its terminal event.
  async collect(id, timeoutMs = 15000) {
    const out = [];
    for (;;) {
      const m = await this.next((x) => x.id === id, timeoutMs);
      out.push(m);
      if (['done', 'error', 'cancelled'].includes(m.type) && m.seq !== undefined) return out;
    }
  }

  async waitClose(timeoutMs = 8000) {
    let timer;
    const t = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not closed within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([this.closed, t]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(code = 1000) {
    this.ws.close(code);
  }
}

// Opens an authenticated native session and returns [client, ready].
export async function session(server, { sub = 'tester', query = '' } = {}) {
  const c = await Client.open(`${server.wsUrl}/ws?token=${jwt({ sub })}${query}`);
  const ready = await c.next('ready');
  return [c, ready];
}

// /metrics of a server as text (5 s deadline).
export async function metricsText(server) {
  return (await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
}

// The value of one series in /metrics text, named as printed ('name' or 'name{label="v"}'),
// or undefined when it is not there.
export function metricIn(text, series) {
  const literal = series.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = text.match(new RegExp(`^${literal} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : undefined;
}

// The value of one series of a server's /metrics now (see metricIn).
export async function metric(server, series) {
  return metricIn(await metricsText(server), series);
}

// Concatenated text of a stream's deltas.
export function textOf(events) {
  return events.filter((e) => e.type === 'delta' && e.text !== undefined).map((e) => e.text).join('');
}

// Resident memory of a process in bytes (VmRSS), from /proc.
export function rssOf(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return Number(m[1]) * 1024;
}

// CPU time a process used so far, in seconds (user + system), from /proc.
export function cpuOf(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

// A raw TCP exchange: sends bytes, resolves with everything received until the peer closes.
export async function rawExchange(port, chunks, { timeoutMs = 5000, endAfterSend = false } = {}) {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const got = [];
    const timer = setTimeout(() => { sock.destroy(); resolve(Buffer.concat(got)); }, timeoutMs);
    sock.on('data', (d) => got.push(d));
    sock.on('error', (e) => { clearTimeout(timer); if (got.length) resolve(Buffer.concat(got)); else reject(e); });
    sock.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(got)); });
    sock.on('connect', () => {
      for (const c of chunks) sock.write(c);
      if (endAfterSend) sock.end();
    });
  });
}
