// Heartbeat: the server pings quiet connections and closes silent ones with 4008; their
// streams wait for a resume for resume.window, then stop.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { jwt, session, startSluice } from './lib/harness.mjs';

describe('heartbeat', () => {
  let s;
  before(async () => {
    s = await startSluice({
      config: {
        heartbeat: { interval: '150ms', timeout: '450ms' },
        resume: { window: '300ms' },
        providers: { demo: { kind: 'demo', tokens_per_second: 20 } },
      },
    });
  });
  after(async () => { await s.stop(); });

  test('ready announces the heartbeat interval', async () => {
    const [c, ready] = await session(s);
    assert.equal(ready.heartbeat_ms, 150);
    c.close();
  });

  test('a quiet client that answers pings stays connected', async () => {
    const [c] = await session(s);
    let pings = 0;
    // Five pings span more than the timeout: answering them (ws does) keeps the session.
    await new Promise((resolve) => c.ws.on('ping', () => { if (++pings === 5) resolve(); }));
    c.send({ type: 'ping' });
    assert.equal((await c.next('pong')).type, 'pong');
    c.close();
  });

  test('a client that stops answering is closed with 4008; its stream stops after resume.window', async () => {
    const ws = new WebSocket(`${s.wsUrl}/ws?token=${jwt({ sub: 'mute' })}`, { autoPong: false });
    const msgs = [];
    const ready = new Promise((resolve) => ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      msgs.push(m);
      if (m.type === 'ready') resolve(m);
    }));
    const closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    const r = await ready;
    const mark = s.mark();
    ws.send(JSON.stringify({ type: 'chat', id: 'hb', message: 'keep talking', max_tokens: 1000 }));
    const { code, reason } = await closed;
    assert.equal(code, 4008);
    assert.match(reason, /heartbeat/);
    assert.match(reason, /"resume":true/);
    await s.waitLog(new RegExp(`session.detached .*session=${r.session} .*code=4008`), mark);
    await s.waitLog(new RegExp(`session.expired .*session=${r.session}`), mark);
    await s.waitLog(new RegExp(`session=${r.session} stream=hb .*outcome=disconnected`), mark);
  });
});
