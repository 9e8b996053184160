// The test page in a real browser: Debian's chromium driven by playwright-core. The page
// connects with the token from its URL, offers what the server offers, streams an answer
// over several renders, cancels one, survives a server restart, and is usable at 360 px.
// Every wait is on a page condition with a timeout; screenshots go to tests/artifacts/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { closeBrowser, lastAnswer, lastStatusIs, openBrowser, stateIs } from './lib/browser.mjs';
import { ROOT, jwt, startSluice } from './lib/harness.mjs';

const ARTIFACTS = path.join(ROOT, 'tests', 'artifacts');

const CONFIG = {
  // A modest pace, so that an answer visibly grows over many frames.
  providers: { demo: { kind: 'demo', tokens_per_second: 20 } },
  models: { demo: { provider: 'demo', price: { input_per_1m: 1, output_per_1m: 2 } } },
  agents: { analyst: { model: 'demo', system: 'You are careful.' } },
  limits: { messages_per_minute: 1000 },
};

describe('the test page in chromium', () => {
  let s;
  let context;
  let page;
  let browser;
  const sent = []; // every WebSocket frame the page sent, parsed
  const pageErrors = [];

  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    s = await startSluice({ config: CONFIG });
    browser = await openBrowser({ viewport: { width: 1000, height: 800 } });
    context = browser.context;
    page = context.pages()[0] || (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => {
        try {
          sent.push(JSON.parse(f.payload));
        } catch {
          sent.push({ raw: f.payload });
        }
      });
    });
  });

  after(async () => {
    await closeBrowser(browser);
    await s?.stop();
  });

  test('connects with the token from the URL and offers the models and agents of ready', async () => {
    await page.goto(`${s.url}/?token=${jwt({ sub: 'browser' })}`);
    await stateIs(page, 'connected');
    assert.match(await page.locator('#conn-state').innerText(), /browser/);
    // Labelled controls: found by their accessible names.
    const target = page.getByRole('combobox', { name: 'Model or agent' });
    assert.equal(await target.isEnabled(), true);
    const options = await target.evaluate((sel) => [...sel.options].map((o) => o.value));
    assert.deepEqual(options, ['model:demo', 'agent:analyst']);
    assert.equal(await target.inputValue(), 'model:demo', 'the default model is chosen');
    for (const [role, name] of [['textbox', 'Message'], ['textbox', 'Token'], ['button', 'Send'],
      ['button', 'Cancel'], ['button', 'Connect'], ['button', 'Disconnect']]) {
      assert.equal(await page.getByRole(role, { name, exact: true }).count(), 1, `${role} "${name}"`);
    }
    assert.equal(await page.evaluate(() => document.activeElement.id), 'prompt', 'focus starts in the message box');
  });

  test('an answer grows over several renders with a cursor, then shows its numbers', async () => {
    // Record every render of the newest answer until it is done.
    await page.evaluate(() => {
      const t = document.getElementById('transcript');
      window.renders = [];
      new MutationObserver(() => {
        const all = t.querySelectorAll('li.assistant');
        const li = all[all.length - 1];
        if (!li || li.dataset.status === 'done') return;
        const len = li.querySelector('.text').textContent.length;
        const last = window.renders[window.renders.length - 1];
        if (len > 0 && (!last || last.len !== len))
          window.renders.push({ len, cursor: !!li.querySelector('.cursor'), busy: li.getAttribute('aria-busy') });
      }).observe(t, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    await page.getByRole('textbox', { name: 'Message' }).fill('Tell me about rivers');
    await page.keyboard.press('Enter');
    await lastStatusIs(page, 'done');
    const renders = await page.evaluate(() => window.renders);
    assert.ok(renders.length >= 3, `only ${renders.length} distinct renders before done`);
    for (let i = 1; i < renders.length; i++) assert.ok(renders[i].len > renders[i - 1].len, 'the answer only grows');
    assert.ok(renders.every((r) => r.cursor && r.busy === 'true'), 'a cursor (and aria-busy) while streaming');

    const a = await lastAnswer(page);
    assert.match(a.text, /rivers/);
    assert.equal(a.cursor, false, 'no cursor once done');
    assert.equal(a.busy, null);
    assert.equal(a.meta.Model, 'demo');
    assert.equal(a.meta.Provider, 'demo');
    assert.match(a.meta['Time to first token'], /^\d+ ms$/);
    assert.match(a.meta.Tokens, /^\d+ in \/ \d+ out$/);
    assert.match(a.meta.Cost, /^\$0\.\d+$/);
    assert.match(a.meta.Latency, /^\d+ ms$/);
    const chat = sent.find((m) => m.type === 'chat');
    assert.equal(chat.model, 'demo');
    assert.deepEqual(chat.messages, [{ role: 'user', content: 'Tell me about rivers' }]);
    assert.match(await page.locator('#announce').innerText(), /Answer from demo:/);
  });

  test('Escape cancels a second answer, which was sent with the history', async () => {
    await page.getByRole('combobox', { name: 'Model or agent' }).selectOption('agent:analyst');
    await page.getByRole('textbox', { name: 'Message' }).fill('And about lakes?');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => {
      const all = document.querySelectorAll('#transcript li.assistant');
      const li = all[all.length - 1];
      return all.length === 2 && li.querySelector('.text').textContent.length > 0;
    }, null, { timeout: 15000 });
    assert.equal(await page.getByRole('button', { name: 'Cancel' }).isEnabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Send', exact: true }).isEnabled(), false);
    await page.keyboard.press('Escape');
    await lastStatusIs(page, 'cancelled', 10000);
    const a = await lastAnswer(page);
    assert.match(a.statusText, /Cancelled after \d+ tokens?/);
    assert.equal(a.cursor, false);

    const chats = sent.filter((m) => m.type === 'chat');
    assert.equal(chats.length, 2);
    assert.equal(chats[1].agent, 'analyst');
    assert.equal(chats[1].model, undefined);
    assert.deepEqual(chats[1].messages.map((m) => m.role), ['user', 'assistant', 'user']);
    assert.match(chats[1].messages[1].content, /rivers/);
    const cancel = sent.find((m) => m.type === 'cancel');
    assert.equal(cancel.id, a.id);
    assert.equal(await page.getByRole('button', { name: 'Send', exact: true }).isEnabled(), true);
  });

  test('reconnects after the server goes away and comes back on the same port', async () => {
    const port = s.port;
    await s.stop(); // SIGTERM: the page gets 1001 "going away", then refused connections
    await stateIs(page, 'reconnecting', 15000);
    assert.match(await page.locator('#conn-state').innerText(), /Reconnecting in/);
    s = await startSluice({ config: { ...CONFIG, listen: `127.0.0.1:${port}` } });
    await stateIs(page, 'connected', 40000);
    // The page works on the new connection.
    await page.getByRole('textbox', { name: 'Message' }).fill('One more, about the sea');
    await page.keyboard.press('Enter');
    await lastStatusIs(page, 'done');
    assert.match((await lastAnswer(page)).text, /sea/);

    const shot = path.join(ARTIFACTS, 'browser-chat.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
    assert.ok(fs.statSync(shot).size > 1000);
  });

  test('fits a 360 px screen', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 360, `the page is ${overflow} px wide at 360`);
    const send = await page.getByRole('button', { name: 'Send', exact: true }).boundingBox();
    assert.ok(send.x >= 0 && send.x + send.width <= 360);
    const shot = path.join(ARTIFACTS, 'browser-narrow.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
    await page.setViewportSize({ width: 1000, height: 800 });
  });

  test('a refused token is reported with its code and not retried', async () => {
    const p = await context.newPage();
    try {
      await p.goto(`${s.url}/?token=${jwt({ sub: 'x' }, { secret: 'not-the-secret-0123456789abcdef01234' })}`);
      await stateIs(p, 'auth-failed');
      const err = await p.getByRole('alert').innerText();
      assert.match(err, /authentication failed \(4001\)/);
      assert.match(err, /new one/);
      const retry = await p.evaluate(() => window.sluicePage.conn.retryTimer);
      assert.equal(retry, null, 'no reconnect is scheduled');
      assert.equal(await p.evaluate(() => document.activeElement.id), 'token', 'focus moves to the token');
      assert.equal(await p.getByRole('button', { name: 'Send', exact: true }).isEnabled(), false);
    } finally {
      await p.close();
    }
  });

  test('the page served at /ws/test loads its assets and connects', async () => {
    const p = await context.newPage();
    const failed = [];
    p.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`); });
    try {
      await p.goto(`${s.url}/ws/test?token=${jwt()}`);
      await stateIs(p, 'connected');
      assert.deepEqual(failed, []);
      assert.equal(await p.evaluate(() => getComputedStyle(document.querySelector('.panel')).borderRadius), '8px');
    } finally {
      await p.close();
    }
  });

  test('no script errors on the page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
