// A browser reading sluice's OpenAI-compatible SSE (docs/http-api.md) the way a web app
// does: Debian's chromium driven by playwright-core runs a fetch() reader that parses the
// event stream, keeps the last event id as EventSource does, and when its connection is
// cut (an AbortController: the socket closes mid-body) reconnects to the stream's events
// URL with Last-Event-ID, until [DONE]. The text it assembles over the cuts must be exactly
// the upstream's, from one upstream request that never noticed the cuts.
//
// (An EventSource object itself cannot send the Authorization header the API needs, so
// the page does what it does by hand.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { closeBrowser, openBrowser } from './lib/browser.mjs';
import { jwt, startMock, startSluice } from './lib/harness.mjs';
import { mockProviders } from './lib/providers.mjs';

const TOKENS = 60;
const synthText = (n) => Array.from({ length: n }, (_, i) => `tok${i + 1} `).join('');

// Runs in the page. Streams one answer, cutting the connection after each count of
// content chunks in `cuts` and resuming; returns what the page saw.
async function readWithCuts({ token, model, marker, cuts, deadlineMs }) {
  const deadline = Date.now() + deadlineMs;
  const auth = { Authorization: `Bearer ${token}` };
  let text = '';
  let lastEventId = '';
  let streamId = null;
  const log = [];
  const ids = [];

  // Reads one response until [DONE], or until `cutAfter` content chunks (then aborts).
  async function read(res, ac, cutAfter) {
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let chunks = 0;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`deadline passed; text so far ${JSON.stringify(text)}`);
      const { value, done } = await reader.read();
      if (done) return 'eof';
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let data = null;
        let id = null;
        for (const line of block.split('\n')) {
          if (line.startsWith('id:')) id = line.slice(3).trim();
          else if (line.startsWith('data:')) data = line.slice(5).trim();
        }
        if (id !== null) {
          lastEventId = id; // as EventSource keeps it
          ids.push(id);
        }
        if (data === null) continue; // a comment (heartbeat)
        if (data === '[DONE]') return 'done';
        const obj = JSON.parse(data);
        if (obj.error) throw new Error(`error event: ${data}`);
        const piece = obj.choices?.[0]?.delta?.content;
        if (piece) {
          text += piece;
          if (++chunks === cutAfter) {
            ac.abort(); // the cut: the browser drops the connection mid-body
            return 'cut';
          }
        }
      }
    }
  }

  let ac = new AbortController();
  let res = await fetch('/v1/chat/completions', {
    method: 'POST',
    signal: ac.signal,
    headers: { ...auth, 'Content-Type': 'application/json', 'x-sluice-resumable': 'true' },
    body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: marker }] }),
  });
  if (res.status !== 200) throw new Error(`POST: ${res.status} ${await res.text()}`);
  streamId = res.headers.get('x-sluice-stream-id');
  const resumable = res.headers.get('x-sluice-resumable');
  for (let n = 0; ; n++) {
    const how = await read(res, ac, cuts[n]);
    log.push({ how, lastEventId, chars: text.length });
    if (how === 'done') break;
    if (how === 'eof') throw new Error('the response ended without [DONE]');
    ac = new AbortController();
    res = await fetch(`/v1/chat/completions/${encodeURIComponent(streamId)}/events`, {
      signal: ac.signal,
      headers: { ...auth, 'Last-Event-ID': lastEventId },
    });
    if (res.status !== 200) throw new Error(`resume: ${res.status} ${await res.text()}`);
    if (res.headers.get('x-sluice-stream-id') !== streamId) throw new Error('another stream');
  }
  return { text, streamId, resumable, log, ids };
}

describe('a browser reads the SSE API and resumes after cuts', () => {
  let mock;
  let s;
  let context;
  let page;
  let browser;

  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: mockProviders(mock.url),
        // 40 tokens a second: the cuts land while the upstream is still sending.
        models: { paced: { provider: 'mockopenai', upstream_model: `synth:tokens=${TOKENS},rate=40` } },
        resume: { window: '30s' },
        limits: { messages_per_minute: 1000 },
      },
    });
    browser = await openBrowser();
    context = browser.context;
    page = context.pages()[0] || (await context.newPage());
    // A page of sluice's own origin, so that fetch() needs no CORS.
    const r = await page.goto(`${s.url}/healthz`);
    assert.equal(r.status(), 200);
  });

  after(async () => {
    await closeBrowser(browser);
    await s?.stop();
    await mock?.stop();
  });

  test('cut twice, resumed twice with Last-Event-ID: the exact full text from one upstream request', async () => {
    const marker = `browser-sse-${process.pid}-${Date.now()}`;
    const got = await page.evaluate(readWithCuts, {
      token: jwt({ sub: 'browser-sse' }), model: 'paced', marker, cuts: [5, 10], deadlineMs: 30000,
    });
    assert.equal(got.resumable, 'true');
    assert.deepEqual(got.log.map((l) => l.how), ['cut', 'cut', 'done'], JSON.stringify(got.log));
    assert.equal(got.text, synthText(TOKENS));
    // Ids are the stream's and increase across the cuts (nothing replayed twice).
    const seqs = got.ids.map((id) => {
      const [sid, n] = id.split(':');
      assert.equal(sid, got.streamId);
      return Number(n);
    });
    assert.ok(seqs.every((n, i) => i === 0 || n > seqs[i - 1]), seqs.join(','));
    // The upstream saw one request, which ran to its end: the cuts never reached it.
    const ups = (await mock.log()).filter((r) => JSON.stringify(r.body).includes(marker));
    assert.equal(ups.length, 1);
    assert.equal(ups[0].end, 'done');
    assert.equal(ups[0].tokens_sent, TOKENS);
  });
});
