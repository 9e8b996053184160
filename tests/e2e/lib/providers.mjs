// Helpers shared by the 5x provider tests: a sluice configuration whose providers point at
// the mock upstream, the canonical outcome expected of every shared fixture, and a way to
// read the result of one stream the way a client would.
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURES } from './harness.mjs';

export const KEY = 'test-key-6f1d0c2b9a';

// One provider of each kind, all on the mock. Retries off unless a test asks for them.
export function mockProviders(mockUrl, extra = {}) {
  const common = { api_key: KEY, max_retries: 0, ...extra };
  return {
    mockopenai: { kind: 'openai', base_url: `${mockUrl}/v1`, ...common },
    mockanthropic: { kind: 'anthropic', base_url: mockUrl, ...common },
    mockgemini: { kind: 'gemini', base_url: mockUrl, ...common },
    mockollama: { kind: 'ollama', base_url: mockUrl, ...common, api_key: undefined },
  };
}

// Which mock provider serves the fixtures of a fixture directory.
export const providerFor = {
  openai: 'mockopenai',
  openai_compat: 'mockopenai',
  anthropic: 'mockanthropic',
  gemini: 'mockgemini',
  ollama: 'mockollama',
};

// The canonical error each failing fixture must give (docs/providers.md has the table;
// tests/unit/wire_harness.h the same list).
export const expectedErrors = {
  'openai/chat_error_429': { code: 'UPSTREAM_RATE_LIMITED', retryable: true, retry_after_ms: 1000 },
  'openai/chat_error_401': { code: 'UPSTREAM_AUTH', retryable: false },
  'openai/chat_stream_midstream_error': { code: 'UPSTREAM_ERROR', retryable: true },
  'anthropic/messages_stream_overloaded_error': { code: 'UPSTREAM_ERROR', retryable: true },
  'anthropic/messages_error_529': { code: 'UPSTREAM_ERROR', retryable: true },
  'anthropic/messages_error_401': { code: 'UPSTREAM_AUTH', retryable: false },
  'gemini/stream_generate_midstream_error': { code: 'UPSTREAM_ERROR', retryable: true },
  'gemini/error_429': { code: 'UPSTREAM_RATE_LIMITED', retryable: true, retry_after_ms: 2500 },
  'gemini/error_400_api_key_invalid': { code: 'UPSTREAM_AUTH', retryable: false },
  'ollama/chat_stream_midstream_error': { code: 'UPSTREAM_ERROR', retryable: true },
  'ollama/chat_error_404': { code: 'UPSTREAM_ERROR', retryable: false },
  'openai_compat/llamacpp_error_field': { code: 'UPSTREAM_ERROR', retryable: false },
  'openai_compat/openrouter_midstream_error': { code: 'UPSTREAM_ERROR', retryable: true },
};

export const canonicalFinish = {
  stop: 'stop', end_turn: 'stop', STOP: 'stop',
  length: 'length', max_tokens: 'length', MAX_TOKENS: 'length',
  tool_calls: 'tool_calls', tool_use: 'tool_calls',
};

export function loadFixtures() {
  const index = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'index.json'), 'utf8'));
  return index.fixtures.map((f) => ({
    ...f,
    meta: JSON.parse(fs.readFileSync(path.join(FIXTURES, f.meta), 'utf8')),
  }));
}

// Text, tool calls (fragments joined per index) and terminal event of one stream's events.
export function summarize(events) {
  let text = '';
  const tools = new Map();
  for (const e of events) {
    if (e.type !== 'delta') continue;
    if (e.text !== undefined) text += e.text;
    if (e.tool_call) {
      const t = tools.get(e.tool_call.index) ?? { index: e.tool_call.index, id: '', name: '', arguments: '' };
      if (e.tool_call.id) t.id += e.tool_call.id;
      if (e.tool_call.name) t.name += e.tool_call.name;
      t.arguments += e.tool_call.arguments ?? '';
      tools.set(t.index, t);
    }
  }
  return { text, tools, end: events.at(-1) };
}
