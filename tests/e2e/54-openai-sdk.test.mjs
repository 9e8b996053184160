// The official `openai` npm SDK, pointed straight at the mock, and sluice (openai adapter
// in front of the same mock) must agree on the text, usage and finish reason of the same
// streams.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { session, startMock, startSluice, textOf } from './lib/harness.mjs';
import { mockProviders } from './lib/providers.mjs';

const scenarios = [
  'synth:tokens=50,usage=1,prompt_tokens=17',
  'synth:tokens=300,chunk=7,usage=1,prompt_tokens=123',
  'fixture:openai/chat_stream_basic@random:3',
  'fixture:openai_compat/utf8_split@cuts',
  'fixture:openai_compat/comments_openrouter@bytes',
];

describe('openai SDK and sluice agree', () => {
  let mock;
  let s;
  let c;
  before(async () => {
    mock = await startMock();
    const models = {};
    scenarios.forEach((sc, i) => { models[`m${i}`] = { provider: 'mockopenai', upstream_model: sc }; });
    s = await startSluice({ config: { providers: mockProviders(mock.url), models } });
    [c] = await session(s);
  });
  after(async () => {
    c?.close();
    await s?.stop();
    await mock.stop();
  });

  scenarios.forEach((scenario, i) => {
    test(scenario, async () => {
      const client = new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: 'x', maxRetries: 0 });
      const stream = await client.chat.completions.create({
        model: scenario,
        messages: [{ role: 'user', content: 'Say hi.' }],
        max_tokens: 32,
        stream: true,
        stream_options: { include_usage: true },
      });
      let sdkText = '';
      let sdkUsage = null;
      let sdkFinish = null;
      for await (const chunk of stream) {
        sdkText += chunk.choices?.[0]?.delta?.content ?? '';
        sdkFinish = chunk.choices?.[0]?.finish_reason ?? sdkFinish;
        if (chunk.usage) sdkUsage = chunk.usage;
      }

      c.send({ type: 'chat', id: `q${i}`, model: `m${i}`, message: 'Say hi.', max_tokens: 32 });
      const ev = await c.collect(`q${i}`);
      const done = ev.at(-1);
      assert.equal(done.type, 'done', JSON.stringify(done));
      assert.equal(textOf(ev), sdkText);
      assert.ok(sdkText.length > 0);
      assert.equal(done.provider_finish_reason, sdkFinish);
      if (sdkUsage) {
        assert.deepEqual(done.usage, { input_tokens: sdkUsage.prompt_tokens, output_tokens: sdkUsage.completion_tokens });
      } else {
        assert.equal(done.usage.estimated, true);
      }
    });
  });
});
