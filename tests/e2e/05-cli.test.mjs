// The command line: --check-config, token minting, the start banner.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Client, SECRET, SLUICE_BIN, startSluice } from './lib/harness.mjs';

const run = promisify(execFile);

async function sluice(args, env = {}, opts = {}) {
  try {
    const r = await run(SLUICE_BIN(), args, { env: { ...process.env, ...env }, ...opts });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function writeConfig(text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-cli-'));
  const p = path.join(dir, 'bad.yaml');
  fs.writeFileSync(p, text);
  return p;
}

describe('cli', () => {
  test('--version', async () => {
    const r = await sluice(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^sluice \d+\.\d+\.\d+/);
  });

  test('--check-config names the bad key and its line', async () => {
    const p = writeConfig('listen: 127.0.0.1:8080\nlimits:\n  max_streams_per_connection: many\n');
    const r = await sluice(['--check-config', '-c', p]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.yaml:3: limits\.max_streams_per_connection/);
  });

  test('--check-config flags an unknown key with a suggestion', async () => {
    const p = writeConfig('heartbeat:\n  intervall: 10s\n');
    const r = await sluice(['--check-config', '-c', p]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /:2: unknown key heartbeat\.intervall/);
  });

  test('--check-config accepts a good file and describes it', async () => {
    const p = writeConfig('listen: 127.0.0.1:9999\nauth:\n  jwt:\n    secret: "0123456789abcdef0123456789abcdef"\n');
    const r = await sluice(['--check-config', '-c', p]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configuration OK/);
    assert.doesNotMatch(r.stdout, /0123456789abcdef0123456789abcdef/);
  });

  test('--check-config accepts the seed frontends\' example without any API key', async () => {
    const p = path.resolve(import.meta.dirname, '../../examples/seeds.yaml');
    const env = { OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', GEMINI_API_KEY: '', DEEPSEEK_API_KEY: '', XAI_API_KEY: '' };
    const r = await sluice(['--check-config', '-c', p], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configuration OK/);
    assert.match(r.stdout, /\/stream \(stream; auth none\)/);
    assert.match(r.stdout, /\/ai \(ai; auth none\)/);
    assert.match(r.stdout, /deepseek +openai +https:\/\/api\.deepseek\.com\/v1 .*default model deepseek-chat/);
    for (const role of ['analyst', 'relational', 'ethics', 'synthesiser', 'verification'])
      assert.match(r.stdout, new RegExp(`^  ${role} +->`, 'm'));
  });

  test('token mints a JWT the server accepts', async () => {
    const r = await sluice(['token', '--sub', 'alice', '--ttl', '10m'], { SLUICE_JWT_SECRET: SECRET });
    assert.equal(r.code, 0, r.stderr);
    const tok = r.stdout.trim();
    assert.equal(tok.split('.').length, 3);
    const s = await startSluice();
    try {
      const c = await Client.open(`${s.wsUrl}/ws?token=${tok}`);
      assert.equal((await c.next('ready')).user, 'alice');
      c.close();
    } finally {
      await s.stop();
    }
  });

  test('a second process on the same address is refused unless a handover is asked for', async () => {
    const first = await startSluice();
    try {
      const p = writeConfig(`listen: 127.0.0.1:${first.port}\nworkers: 1\n`);
      // SO_REUSEPORT would let it start and take half the connections without a word.
      const r = await sluice(['-c', p], {}, { timeout: 10000 });
      assert.equal(r.code, 1, `exit ${r.code}: ${r.stderr}`);
      assert.match(r.stderr, /address in use by another process/);
      assert.match(r.stderr, /--reuse-port/);
      // Told that it is a handover, it starts alongside.
      const second = await startSluice({ config: { listen: `127.0.0.1:${first.port}` }, args: ['--reuse-port'] });
      assert.equal(second.port, first.port);
      await second.stop();
      const third = await startSluice({ config: { listen: `127.0.0.1:${first.port}`, listen_reuse: true } });
      await third.stop();
    } finally {
      await first.stop();
    }
  });

  test('token refuses to sign without a configured secret', async () => {
    const r = await sluice(['token', '--sub', 'alice'], { SLUICE_JWT_SECRET: '' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /secret/);
  });

  test('without a secret the banner prints a working dev token', async () => {
    const s = await startSluice({ config: { auth: {} }, env: { SLUICE_JWT_SECRET: '' } });
    try {
      const m = s.stdout().match(/test page: (http:\/\/\S+)\/\?token=(\S+)/);
      assert.ok(m, s.stdout());
      const c = await Client.open(`${s.wsUrl}/ws?token=${m[2]}`);
      assert.equal((await c.next('ready')).user, 'dev');
      c.close();
    } finally {
      await s.stop();
    }
  });
});
