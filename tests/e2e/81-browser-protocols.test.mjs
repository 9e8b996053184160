// The test page in chromium, once per protocol it speaks: native over /ws, native as
// Socket.IO events (/sluice), and the seeds' dialects chat, stream, ws-chat, ai and llm.
// For each: an answer from the demo model streams to its end, a running one is cancelled
// (and sluice's log says the stream ended cancelled), and a bad request sent from the raw
// sender shows the server's error. The WebSocket frames the page sends are checked to be the
// protocol's own (Engine.IO/Socket.IO packets for the Socket.IO ones), and the event log to
// show what came back. Every wait is on a page condition or a log line, with a timeout.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { closeBrowser, lastAnswer, lastStatusIs, openBrowser, stateIs } from './lib/browser.mjs';
import { ROOT, jwt, startSluice } from './lib/harness.mjs';
import { decodeSio, encodeSio } from '../../web/channels.js';

const ARTIFACTS = path.join(ROOT, 'tests', 'artifacts');

const CONFIG = {
  // Slow enough that an answer is still running when the test cancels it.
  providers: { demo: { kind: 'demo', tokens_per_second: 20 } },
  models: { demo: { provider: 'demo', price: { input_per_1m: 1, output_per_1m: 2 } } },
  agents: { analyst: { model: 'demo', system: 'You are careful.' } },
  limits: { messages_per_minute: 1000 },
  socketio: {
    ping_interval: '1s', // the page must answer every ping to stay connected
    ping_timeout: '2s',
    namespaces: {
      '/': { dialects: ['chat', 'llm'] },
      '/stream': { dialects: ['stream'], auth: 'none' }, // as seed 001 needs: no token
      '/ai': { dialects: ['ai'] },
      '/sluice': { dialects: ['native'] },
    },
  },
};

// What each protocol's case does. frame: a test on a frame the page sent for a chat
// request; events: names the event log must show received during an answer; target: the
// option picked; bad: a raw message the server refuses, and the alert expected.
const CASES = [
  {
    protocol: 'native',
    frame: (f) => /^\{"type":"chat"/.test(f),
    events: ['start', 'delta', 'done'],
    target: 'model:demo',
    bad: { data: '{"type":"chat","id":"bad-1","model":"demo"}', alert: /bad request \(BAD_REQUEST\)/ },
    bad2: { data: 'not json at all', alert: /bad request \(BAD_REQUEST\): .*JSON/ },
  },
  {
    protocol: 'sluice',
    frame: (f) => f.startsWith('42/sluice,["chat",'),
    events: ['ready', 'start', 'delta', 'done'],
    target: 'agent:analyst',
    bad: { event: 'chat', data: '{"id":"bad-2"}', alert: /bad request \(BAD_REQUEST\)/ },
  },
  {
    protocol: 'chat',
    frame: (f) => f.startsWith('42["chat",') && JSON.parse(f.slice(2))[1].requestId,
    events: ['CONNECT', 'chat:start', 'chat:chunk', 'chat:complete'],
    target: 'model:demo',
    bad: {
      event: 'chat',
      data: '{"requestId":"bad-3","model":"no-such-model","messages":[{"role":"user","content":"x"}]}',
      alert: /unknown model or agent \(UNKNOWN_MODEL\)/,
    },
  },
  {
    protocol: 'stream',
    noToken: true, // its namespace is auth: none here
    noCancel: true, // seed 001 has no cancel
    frame: (f) => f.startsWith('42/stream,["stream_request",') && JSON.parse(f.slice(10))[1].message,
    events: ['stream_start', 'stream_chunk', 'stream_complete'],
    target: 'default:',
    bad: {
      event: 'stream_request',
      data: '{"message":"x","agentRole":"nobody"}',
      alert: /unknown model or agent \(UNKNOWN_MODEL\)/,
    },
  },
  {
    protocol: 'ws-chat',
    url: '/ws/test', // seed 002's test page address opens the page on ws-chat
    frame: (f) => /^\{"type":"message"/.test(f),
    events: ['auth_success', 'progress', 'token', 'complete'],
    target: 'default:',
    bad: { data: '{"type":"message","message":"   "}', alert: /the message is empty \(EMPTY_MESSAGE\)/ },
  },
  {
    protocol: 'ai',
    frame: (f) => f.startsWith('42/ai,["ai:stream",') && JSON.parse(f.slice(6))[1].streamId,
    events: ['ai:connected', 'ai:stream:start', 'ai:token', 'ai:done'],
    target: 'model:demo',
    bad: { event: 'ai:stream', data: '{"model":"demo"}', alert: /bad request \(BAD_REQUEST\)/ },
  },
  {
    protocol: 'llm',
    frame: (f) => f.startsWith('42["llm:chat:stream",') && JSON.parse(f.slice(2))[1].provider === 'demo',
    events: ['llm:chat:stream:acknowledged', 'llm:stream:start', 'llm:stream:token', 'llm:stream:done'],
    target: 'provider:demo',
    bad: {
      event: 'llm:chat:stream',
      data: '{"sessionId":"bad-4","provider":"nope","messages":[{"role":"user","content":"x"}]}',
      alert: /unknown model or agent \(UNKNOWN_MODEL\)/,
    },
  },
];

// The names of the event log's entries in one direction.
const logNames = (page, dir) => page.evaluate((d) =>
  [...document.querySelectorAll('#log li')].filter((li) => li.dataset.dir === d).map((li) => li.dataset.name), dir);

describe('the test page speaks every protocol (chromium)', () => {
  let s;
  let context;
  let browser;
  const pageErrors = [];

  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    s = await startSluice({ config: CONFIG });
    browser = await openBrowser({ viewport: { width: 1000, height: 900 } });
    context = browser.context;
  });

  after(async () => {
    await closeBrowser(browser);
    await s?.stop();
  });

  for (const c of CASES) {
    test(`${c.protocol}: streams an answer, cancels one, shows a bad request's error`, async () => {
      const page = await context.newPage();
      const sent = []; // text frames the page sent on its protocol's socket (not the catalogue's)
      page.on('pageerror', (e) => pageErrors.push(`${c.protocol}: ${e}`));
      page.on('websocket', (ws) => ws.on('framesent', (f) => { if (typeof f.payload === 'string') sent.push(f.payload); }));
      try {
        const token = c.noToken ? '' : `token=${jwt({ sub: `page-${c.protocol}` })}`;
        const url = c.url ? `${s.url}${c.url}?${token}` : `${s.url}/?protocol=${c.protocol}&${token}`;
        await page.goto(url);
        assert.equal(await page.getByRole('combobox', { name: 'Protocol' }).inputValue(), c.protocol);
        if (c.noToken) await page.getByRole('button', { name: 'Connect', exact: true }).click();
        await stateIs(page, 'connected');
        // The target list is filled (for the dialects: after the side fetch of the models).
        const target = page.getByRole('combobox', { name: 'Model or agent' });
        await page.waitForFunction((v) => [...document.getElementById('target').options].some((o) => o.value === v),
          c.target, { timeout: 10000 });
        await target.selectOption(c.target);

        // 1. An answer streams to its end.
        await page.getByRole('textbox', { name: 'Message' }).fill('Tell me about rivers');
        await page.keyboard.press('Enter');
        await lastStatusIs(page, 'done');
        const a = await lastAnswer(page);
        assert.match(a.text, /rivers/);
        assert.ok(a.text.length > 40, `a whole answer (${a.text.length} characters)`);
        assert.equal(a.cursor, false);
        assert.match(a.meta.Tokens, /^\d+ in \/ \d+ out/);
        assert.equal(a.meta.Model, 'demo');
        assert.ok(sent.some(c.frame), `no ${c.protocol} chat frame among ${JSON.stringify(sent.slice(0, 8))}`);
        if (c.frame.length && /^(sluice|chat|stream|ai|llm)$/.test(c.protocol)) {
          // Pings every second here: a page that did not answer them would have been cut off.
          assert.ok(sent.filter((f) => f === '3').length >= 2, 'the page answers Engine.IO pings');
        }
        const received = await logNames(page, 'in');
        for (const name of c.events) assert.ok(received.includes(name), `the event log shows ${name}: ${received.slice(0, 12)}`);
        assert.ok((await logNames(page, 'out')).length > 0, 'the event log shows what was sent');

        // 2. A running answer is cancelled (Escape), and the server ends its stream so.
        await page.getByRole('textbox', { name: 'Message' }).fill('And about lakes?');
        await page.keyboard.press('Enter');
        await page.waitForFunction(() => {
          const all = document.querySelectorAll('#transcript li.assistant');
          return all.length === 2 && all[1].querySelector('.text').textContent.length > 0;
        }, null, { timeout: 15000 });
        if (c.noCancel) {
          assert.equal(await page.getByRole('button', { name: 'Cancel' }).isEnabled(), false, 'no cancel in this protocol');
          assert.match(await page.locator('#prompt-help').innerText(), /no cancel/);
          await lastStatusIs(page, 'done');
        } else {
          assert.equal(await page.getByRole('button', { name: 'Cancel' }).isEnabled(), true);
          const mark = s.mark();
          await page.keyboard.press('Escape');
          await lastStatusIs(page, 'cancelled', 10000);
          const b = await lastAnswer(page);
          assert.match(b.statusText, /Cancelled after \d+ tokens?/);
          const id = b.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          await s.waitLog(new RegExp(`stream\\.end[^\\n]*stream=${id}[^\\n]*outcome=cancelled`), mark, 10000);
          assert.equal(await page.getByRole('button', { name: 'Send', exact: true }).isEnabled(), true);
        }
        if (c.protocol === 'ws-chat') {
          // The second message continued the conversation sluice remembers.
          const msgs = sent.filter(c.frame).map((f) => JSON.parse(f));
          assert.equal(msgs[0].session_id, null);
          assert.equal(typeof msgs[1].session_id, 'string');
          assert.equal(msgs[1].session_id, a.meta.Conversation);
        }

        // 3. A bad request from the raw sender: the server's error is shown, in words and code.
        if (c.bad.event) await page.getByRole('textbox', { name: 'Event' }).fill(c.bad.event);
        else assert.equal(await page.getByRole('textbox', { name: 'Event' }).isVisible(), false, 'no event name on a plain WebSocket');
        await page.getByRole('textbox', { name: 'Payload' }).fill(c.bad.data);
        await page.getByRole('button', { name: 'Send raw' }).click();
        await page.waitForFunction(() => !document.getElementById('error').hidden, null, { timeout: 10000 });
        assert.match(await page.getByRole('alert').innerText(), c.bad.alert);
        assert.equal(await page.evaluate(() => document.getElementById('conn-state').dataset.state), 'connected',
          'a refused request leaves the connection up');
        if (c.bad2) {
          // A plain WebSocket gets the text as it is: the server's verdict on non-JSON shows too.
          await page.evaluate(() => { document.getElementById('error').hidden = true; });
          await page.getByRole('textbox', { name: 'Payload' }).fill(c.bad2.data);
          await page.getByRole('button', { name: 'Send raw' }).click();
          await page.waitForFunction(() => !document.getElementById('error').hidden, null, { timeout: 10000 });
          assert.match(await page.getByRole('alert').innerText(), c.bad2.alert);
        }

        const shot = path.join(ARTIFACTS, `browser-protocol-${c.protocol}.png`);
        await page.screenshot({ path: shot, fullPage: true });
      } finally {
        await page.close();
      }
    });
  }

  test('a Socket.IO namespace that refuses the token: CONNECT_ERROR is shown, no retry', async () => {
    const page = await context.newPage();
    try {
      const bad = jwt({ sub: 'x' }, { secret: 'not-the-secret-0123456789abcdef01234' });
      await page.goto(`${s.url}/?protocol=ai&token=${bad}`);
      await stateIs(page, 'auth-failed');
      assert.match(await page.getByRole('alert').innerText(), /namespace \/ai refused the connection: Authentication failed/);
      assert.equal(await page.evaluate(() => window.sluicePage.conn.retryTimer), null);
      assert.equal(await page.evaluate(() => document.activeElement.id), 'token');
    } finally {
      await page.close();
    }
  });

  test('switching the protocol reconnects on the new one with a new conversation', async () => {
    const page = await context.newPage();
    try {
      await page.goto(`${s.url}/?token=${jwt({ sub: 'switcher' })}`);
      await stateIs(page, 'connected');
      await page.getByRole('combobox', { name: 'Protocol' }).selectOption('llm');
      await stateIs(page, 'connected');
      assert.match(await page.locator('#conn-state').innerText(), /\(llm\)/);
      assert.match(page.url(), /protocol=llm/);
      assert.equal(await page.locator('#namespace').inputValue(), '/');
      await page.getByRole('combobox', { name: 'Protocol' }).selectOption('ws-chat');
      await stateIs(page, 'connected');
      assert.match(await page.locator('#conn-state').innerText(), /\(ws-chat\) as switcher/);
      assert.equal(await page.locator('#path').inputValue(), '/ws/chat');
      assert.equal(await page.locator('#namespace').isVisible(), false);
    } finally {
      await page.close();
    }
  });

  test('a Socket.IO protocol reconnects after the server goes away and comes back', async () => {
    const page = await context.newPage();
    try {
      await page.goto(`${s.url}/?protocol=ai&token=${jwt({ sub: 'restart' })}`);
      await stateIs(page, 'connected');
      const port = s.port;
      await s.stop(); // SIGTERM: Engine.IO sessions are closed at the transport, then refused
      await stateIs(page, 'reconnecting');
      s = await startSluice({ config: { ...CONFIG, listen: `127.0.0.1:${port}` } });
      await stateIs(page, 'connected', 40000);
      await page.getByRole('textbox', { name: 'Message' }).fill('One more, about the sea');
      await page.keyboard.press('Enter');
      await lastStatusIs(page, 'done');
      assert.match((await lastAnswer(page)).text, /sea/);
    } finally {
      await page.close();
    }
  });

  test('no script errors on the pages', () => {
    assert.deepEqual(pageErrors, []);
  });
});

test('the page\'s Socket.IO packets: encoded and decoded as Socket.IO v5 spells them', () => {
  assert.equal(encodeSio(0, '/', { token: 't' }), '0{"token":"t"}');
  assert.equal(encodeSio(0, '/ai', undefined), '0/ai,');
  assert.equal(encodeSio(2, '/ai', ['ai:stream', { prompt: 'x' }]), '2/ai,["ai:stream",{"prompt":"x"}]');
  assert.deepEqual(decodeSio('0{"sid":"a"}'), { type: 0, nsp: '/', ack: null, data: { sid: 'a' } });
  assert.deepEqual(decodeSio('0/ai,{"sid":"a"}'), { type: 0, nsp: '/ai', ack: null, data: { sid: 'a' } });
  assert.deepEqual(decodeSio('1/ai'), { type: 1, nsp: '/ai', ack: null, data: undefined });
  assert.deepEqual(decodeSio('2/ai,12["x",1]'), { type: 2, nsp: '/ai', ack: 12, data: ['x', 1] });
  assert.deepEqual(decodeSio('4{"message":"Authentication failed"}').data, { message: 'Authentication failed' });
  assert.throws(() => decodeSio('51-["x",{"_placeholder":true,"num":0}]'), /binary/);
  assert.throws(() => decodeSio('9'), /bad packet type/);
  assert.throws(() => decodeSio('2["x"'), SyntaxError);
});
