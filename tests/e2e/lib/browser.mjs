// Debian's chromium driven by playwright-core, for the browser suites (80, 81): a headless
// browser in a fresh profile, and the test page's state as those suites read it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

// A headless chromium in a new profile directory; closeBrowser() removes both.
export async function openBrowser({ viewport } = {}) {
  assert.ok(fs.existsSync(CHROMIUM), `no chromium at ${CHROMIUM} (apt-get install chromium)`);
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-chromium-'));
  const context = await chromium.launchPersistentContext(userDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run'],
    ...(viewport ? { viewport } : {}),
  });
  return { context, userDir };
}

export async function closeBrowser(browser) {
  await browser?.context?.close();
  if (browser?.userDir) fs.rmSync(browser.userDir, { recursive: true, force: true });
}

// Waits until the test page's connection state is `want`.
export const stateIs = (page, want, timeout = 15000) =>
  page.waitForFunction((w) => document.getElementById('conn-state').dataset.state === w, want, { timeout });

// The newest answer of the test page: its status, its text without the cursor, its meta.
export const lastAnswer = (page) => page.evaluate(() => {
  const all = document.querySelectorAll('#transcript li.assistant');
  const li = all[all.length - 1];
  if (!li) return null;
  return {
    id: li.dataset.id,
    status: li.dataset.status,
    text: li.querySelector('.text').textContent,
    cursor: !!li.querySelector('.cursor'),
    busy: li.getAttribute('aria-busy'),
    meta: Object.fromEntries([...li.querySelectorAll('.meta div')].map((d) =>
      [d.querySelector('dt').textContent, d.querySelector('dd').textContent])),
    statusText: li.querySelector('.status').textContent,
  };
});

// Waits until the newest answer's status is `want`.
export const lastStatusIs = (page, want, timeout = 30000) =>
  page.waitForFunction((w) => {
    const all = document.querySelectorAll('#transcript li.assistant');
    return all.length > 0 && all[all.length - 1].dataset.status === w;
  }, want, { timeout });
