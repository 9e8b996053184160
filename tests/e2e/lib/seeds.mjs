// Helpers for the seed frontends' tests (tests/e2e/seeds/): the seeds' client code runs
// nearly verbatim inside the tests, so these give it what a browser or a terminal would
// (a console whose lines are kept, a DOM element to append to) and give the tests bounded
// waits on what that code saw.
import assert from 'node:assert/strict';

let seq = 0;
// A string no other test sends: put in a prompt, it finds the request in the mock's log.
export const uniq = (what) => `${what}-${process.pid}-${Date.now()}-${++seq}`;

// The text of the mock's synthetic stream of n tokens (ts=0).
export const synthText = (n) => Array.from({ length: n }, (_, i) => `tok${i + 1} `).join('');

// "2026-12-02T12:00:00.000Z": ISO 8601 in UTC with milliseconds (DIALECTS.md).
export const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// Asserts a timestamp is ISO 8601 UTC with milliseconds and within a minute of now.
export function assertIso(ts, what = 'timestamp') {
  assert.equal(typeof ts, 'string', `${what} is a string`);
  assert.match(ts, ISO, `${what} is ISO 8601 with milliseconds`);
  assert.ok(Math.abs(Date.parse(ts) - Date.now()) < 60000, `${what} ${ts} is about now`);
}

// Asserts obj has each field of spec with the JavaScript type named ('string', 'number',
// 'boolean', 'object', 'array', 'null', or several joined by '|'). Numbers must be finite.
export function assertFields(obj, spec, what = 'event') {
  assert.equal(typeof obj, 'object', `${what} is an object`);
  assert.notEqual(obj, null, `${what} is not null`);
  for (const [k, types] of Object.entries(spec)) {
    assert.ok(Object.hasOwn(obj, k), `${what} has "${k}": ${JSON.stringify(obj)}`);
    const v = obj[k];
    const t = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
    assert.ok(types.split('|').includes(t), `${what}.${k} is ${types}, got ${t} (${JSON.stringify(v)})`);
    if (t === 'number') assert.ok(Number.isFinite(v), `${what}.${k} is finite`);
  }
}

// A console for the seeds' code: what it logs is kept (as the line console.log would print),
// and tests wait for a line.
export function recordingConsole() {
  const lines = [];
  const waiters = [];
  const put = (level) => (...args) => {
    const line = args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
    lines.push({ level, line });
    for (const w of [...waiters]) {
      if (w.re.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(line);
      }
    }
  };
  return {
    lines,
    log: put('log'),
    warn: put('warn'),
    error: put('error'),
    text: () => lines.map((l) => l.line),
    // Resolves with the first line (already logged, or to come) matching re.
    waitFor(re, ms = 10000) {
      const hit = lines.find((l) => re.test(l.line));
      if (hit) return Promise.resolve(hit.line);
      return new Promise((resolve, reject) => {
        const w = { re, resolve };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no console line matching ${re} within ${ms} ms; got ${JSON.stringify(lines.slice(-5))}`));
        }, ms);
        waiters.push(w);
      });
    },
  };
}

// Records every event a socket.io-client socket receives, in order: [{ event, data }].
// until(pred) resolves with the first record (already seen, or to come) satisfying pred.
export function recordEvents(socket) {
  const seen = [];
  const waiters = [];
  socket.onAny((event, data) => {
    const rec = { event, data };
    seen.push(rec);
    for (const w of [...waiters]) {
      if (w.pred(rec)) {
        waiters.splice(waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(rec);
      }
    }
  });
  return {
    seen,
    until(pred, ms = 10000, from = 0) {
      const hit = seen.slice(from).find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        w.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no matching event within ${ms} ms; last: ${JSON.stringify(seen.slice(-4))}`));
        }, ms);
        waiters.push(w);
      });
    },
    // Events with this name whose data[key] === id.
    of(key, id, event) {
      return seen.filter((r) => r.data?.[key] === id && (!event || r.event === event));
    },
  };
}

// Resolves with the event's arguments, or rejects after ms.
export function once(emitter, event, ms = 10000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no "${event}" within ${ms} ms`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(t);
      resolve(args);
    });
  });
}

// GET a path of the server: { status, headers, body, json? }.
export async function get(server, path) {
  const r = await fetch(`${server.url}${path}`);
  const body = await r.text();
  let json;
  try { json = JSON.parse(body); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, body, json };
}

// The messages of the mock's logged request whose body contains marker.
export async function upstreamRequest(mock, marker, state = 'ended', ms = 5000) {
  return mock.wait(marker, state, ms);
}
