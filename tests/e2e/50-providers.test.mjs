// Every shared fixture, served by the mock upstream whole, at its cut points, byte by byte
// and in random splits, streamed through sluice to a real `ws` client: the client must see
// the fixture's expected text, tool calls, finish reason, usage or error.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { session, startMock, startSluice } from './lib/harness.mjs';
import {
  canonicalFinish, expectedErrors, loadFixtures, mockProviders, providerFor, summarize,
} from './lib/providers.mjs';

const fixtures = loadFixtures();
const modes = ['whole', 'cuts', 'bytes', 'random:7', 'random:4242'];
const modelName = (f, mode) => `fx:${f.id}@${mode}`;

describe('every fixture through sluice', () => {
  let mock;
  let s;
  let c;
  before(async () => {
    mock = await startMock();
    const models = {};
    for (const f of fixtures) {
      for (const mode of modes) {
        models[modelName(f, mode)] = {
          provider: providerFor[f.provider],
          upstream_model: `fixture:${f.id}@${mode}`,
        };
      }
    }
    s = await startSluice({
      config: {
        providers: mockProviders(mock.url),
        models,
        limits: { messages_per_minute: 100000, max_streams_per_connection: 64 },
      },
    });
    [c] = await session(s);
  });
  after(async () => {
    c?.close();
    await s?.stop();
    const log = await mock.log();
    await mock.stop();
    // The mock checked every request against its fixture's request shape.
    const bad = log.filter((r) => r.error);
    assert.deepEqual(bad.map((r) => `${r.scenario}: ${r.error}`), []);
  });

  test('the fixture set is the expected one', () => {
    assert.equal(fixtures.length, 27);
    for (const id of Object.keys(expectedErrors)) assert.ok(fixtures.some((f) => f.id === id), id);
  });

  let n = 0;
  for (const f of fixtures) {
    for (const mode of modes) {
      test(`${f.id} @${mode}`, async () => {
        const id = `s${++n}`;
        const marker = `probe-${id}-${Date.now()}`;
        c.send({ type: 'chat', id, model: modelName(f, mode), message: marker });
        const events = await c.collect(id, 20000);
        events.forEach((e, i) => assert.equal(e.seq, i + 1));
        assert.equal(events[0].type, 'start');
        assert.equal(events[0].provider, providerFor[f.provider]);
        const { text, tools, end } = summarize(events);
        const ex = f.meta.expected;
        const wantErr = expectedErrors[f.id];
        if (wantErr) {
          assert.equal(end.type, 'error', JSON.stringify(end));
          assert.equal(end.code, wantErr.code);
          assert.equal(end.retryable, wantErr.retryable);
          if (wantErr.retry_after_ms !== undefined) assert.equal(end.retry_after_ms, wantErr.retry_after_ms);
          assert.equal(text, ex.text_before_error ?? ex.text ?? '');
          assert.ok(end.message.startsWith(`${providerFor[f.provider]}: `), end.message);
          if (ex.error?.message) assert.ok(end.message.includes(ex.error.message), end.message);
          assert.ok(!end.message.includes('test-key'), 'no key in messages');
          return;
        }
        assert.equal(end.type, 'done', JSON.stringify(end));
        assert.equal(text, ex.text);
        assert.equal(end.provider_finish_reason, ex.finish_reason);
        assert.equal(end.finish_reason, canonicalFinish[ex.finish_reason]);
        if (ex.input_tokens !== undefined) {
          assert.deepEqual(end.usage, { input_tokens: ex.input_tokens, output_tokens: ex.output_tokens });
        } else {
          assert.equal(end.usage.estimated, true, 'no usage from the provider: estimated');
        }
        for (const tc of ex.tool_calls ?? []) {
          const got = tools.get(tc.index);
          assert.ok(got, `tool call ${tc.index}`);
          assert.equal(got.id, tc.id);
          assert.equal(got.name, tc.name);
          assert.equal(got.arguments, tc.arguments);
        }
        assert.equal(tools.size, (ex.tool_calls ?? []).length);
      });
    }
  }
});
