// Found by bench (e) (docs/performance.md): a stream used to be freed as soon as its terminal
// event was *queued* for the client, not when the client had it. A client whose connection
// drops while the end of its answer is still in sluice's send queue or the socket buffers (a
// slow link, a phone going into a tunnel) could not resume it. Now a finished stream is kept
// until the client's TCP has acknowledged its end (docs/internals/lifetimes.md); once it
// has, the journal is freed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { metric, session, startMock, startSluice } from './lib/harness.mjs';

describe('resume of an answer whose end was queued but not delivered', () => {
  let mock;
  let s;
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: { mock: { kind: 'openai', base_url: `${mock.url}/v1`, api_key: 'x' } },
        // 3,000 tokens, about 150 KB of frames: all of it fits under send_high_water (1 MiB).
        models: { whole: { provider: 'mock', upstream_model: 'synth:tokens=3000' } },
        resume: { window: '60s' },
      },
    });
  });
  after(async () => {
    await s?.stop();
    await mock?.stop();
  });

  test('a reset while the tail is queued, then resume: every token', async () => {
    const [a] = await session(s, { sub: 'slowlink' });
    a.send({ type: 'chat', id: 't1', model: 'whole', message: 'tail-lost' });
    const start = await a.next((m) => m.id === 't1' && m.type === 'start');
    // The client stops reading (the link stalls) right after `start`.
    a.ws._socket.pause();
    await mock.wait('tail-lost', 'complete');
    // sluice has read the whole answer and queued it, `done` included: the stream has ended
    // upstream, while the client has seen seq 1 only. Its journal must still be there.
    const deadline = Date.now() + 8000;
    while ((await metric(s, 'sluice_streams_active')) !== 0) {
      assert.ok(Date.now() < deadline, 'the stream never ended in sluice');
      await new Promise((r) => setImmediate(r));
    }
    assert.ok((await metric(s, 'sluice_journal_bytes')) > 0, 'the undelivered stream was freed');
    a.ws._socket.resetAndDestroy();

    const [b] = await session(s, { sub: 'slowlink' });
    b.send({ type: 'resume', id: 't1', after: start.seq, epoch: start.epoch });
    const first = await b.next((m) => m.id === 't1');
    assert.notEqual(first.code, 'NOT_FOUND', 'the queued tail was lost');
    const rest = await b.collect('t1');
    assert.equal([first, ...rest].at(-1).type, 'done');
    const text = [first, ...rest].filter((m) => m.type === 'delta').map((m) => m.text).join('');
    assert.equal(text, Array.from({ length: 3000 }, (_, i) => `tok${i + 1} `).join(''));
    // Delivered this time: the journal goes.
    const gone = Date.now() + 8000;
    while ((await metric(s, 'sluice_journal_bytes')) !== 0) {
      assert.ok(Date.now() < gone, 'a delivered stream was kept');
      await new Promise((r) => setImmediate(r));
    }
    b.close();
  });
});
