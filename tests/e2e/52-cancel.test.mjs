// Cancellation reaches the provider: after `cancel`, a client disconnect or a heartbeat
// loss, the mock upstream sees its request end (state `aborted`), whether tokens were
// flowing or the request was still waiting for its first byte.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, jwt, session, startMock, startSluice } from './lib/harness.mjs';
import { mockProviders } from './lib/providers.mjs';

let seq = 0;
const uniq = (what) => `${what}-${process.pid}-${Date.now()}-${++seq}`;

describe('cancellation', () => {
  let mock;
  let s;
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: mockProviders(mock.url),
        models: {
          'slow-openai': { provider: 'mockopenai', upstream_model: 'synth:tokens=1000,rate=5' },
          'slow-anthropic': { provider: 'mockanthropic', upstream_model: 'synth:tokens=1000,rate=5' },
          'slow-gemini': { provider: 'mockgemini', upstream_model: 'synth:tokens=1000,rate=5' },
          'slow-ollama': { provider: 'mockollama', upstream_model: 'synth:tokens=1000,rate=5' },
          'late-first-byte': { provider: 'mockopenai', upstream_model: 'synth:tokens=5,first_byte_ms=5000' },
        },
        heartbeat: { interval: '300ms', timeout: '900ms' },
        // A disconnect is a pause for resume.window; 0: streams stop at once.
        resume: { window: 0 },
        limits: { messages_per_minute: 100000 },
      },
    });
  });
  after(async () => {
    await s?.stop();
    await mock.stop();
  });

  for (const model of ['slow-openai', 'slow-anthropic', 'slow-gemini', 'slow-ollama']) {
    test(`cancel after the first delta stops the upstream request (${model})`, async () => {
      const [c] = await session(s);
      const marker = uniq('cancel');
      c.send({ type: 'chat', id: 'c1', model, message: marker });
      await c.next((m) => m.id === 'c1' && m.type === 'delta');
      const streaming = await mock.wait(marker, 'streaming', 2000);
      assert.equal(streaming.state, 'streaming');
      c.send({ type: 'cancel', id: 'c1' });
      const cancelled = await c.next((m) => m.id === 'c1' && ['cancelled', 'done', 'error'].includes(m.type));
      assert.equal(cancelled.type, 'cancelled');
      assert.ok(cancelled.usage.output_tokens >= 1);
      const r = await mock.wait(marker, 'aborted', 3000);
      assert.equal(r.end, 'client_closed');
      assert.ok(r.tokens_sent < 1000);
      c.close();
    });
  }

  test('cancel while the request waits for its first byte', async () => {
    const [c] = await session(s);
    const marker = uniq('early');
    c.send({ type: 'chat', id: 'e1', model: 'late-first-byte', message: marker });
    await mock.wait(marker, 'any', 3000); // the request reached the upstream
    c.send({ type: 'cancel', id: 'e1' });
    const ev = await c.next((m) => m.id === 'e1' && ['cancelled', 'done', 'error'].includes(m.type));
    assert.equal(ev.type, 'cancelled');
    const t0 = Date.now();
    const r = await mock.wait(marker, 'aborted', 3000);
    assert.ok(Date.now() - t0 < 2000, 'long before the first byte was due');
    assert.equal(r.status, 0, 'no response had been sent yet');
    c.close();
  });

  test('a client disconnect stops the upstream request', async () => {
    const [c] = await session(s);
    const marker = uniq('disconnect');
    c.send({ type: 'chat', id: 'd1', model: 'slow-openai', message: marker });
    await c.next((m) => m.id === 'd1' && m.type === 'delta');
    c.ws.terminate(); // no close handshake: the TCP connection just goes
    const r = await mock.wait(marker, 'aborted', 3000);
    assert.equal(r.end, 'client_closed');
  });

  test('a disconnect before the first byte stops the upstream request too', async () => {
    const [c] = await session(s);
    const marker = uniq('disconnect-early');
    c.send({ type: 'chat', id: 'd2', model: 'late-first-byte', message: marker });
    await mock.wait(marker, 'any', 3000);
    c.close();
    await mock.wait(marker, 'aborted', 3000);
  });

  test('a heartbeat loss stops the upstream request', async () => {
    const c = await Client.open(`${s.wsUrl}/ws?token=${jwt()}`);
    await c.next('ready');
    const marker = uniq('heartbeat');
    c.send({ type: 'chat', id: 'h1', model: 'slow-openai', message: marker });
    await c.next((m) => m.id === 'h1' && m.type === 'delta');
    // Stop reading: the server's pings go unanswered, as with a dead network.
    c.ws._socket.pause();
    const mark = s.mark();
    await s.waitLog(/session\.heartbeat_lost/, mark, 5000);
    const r = await mock.wait(marker, 'aborted', 3000);
    assert.equal(r.end, 'client_closed');
    c.ws.terminate();
  });
});
