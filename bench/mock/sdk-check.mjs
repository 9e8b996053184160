import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import { Ollama } from 'ollama';

const U = process.argv[2];
let pass = 0, fail = 0;
async function t(name, fn) {
  try { await fn(); pass++; console.log('PASS', name); }
  catch (e) { fail++; console.log('FAIL', name, e?.constructor?.name, e?.message); }
}
function eq(a, b, what) { if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${what}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`); }
const words = (n) => Array.from({ length: n }, (_, i) => `tok${i + 1} `).join('');
const oa = new OpenAI({ baseURL: `${U}/v1`, apiKey: 'k', maxRetries: 0 });
const msgs = [{ role: 'user', content: 'hi' }];

await t('openai synth iterate', async () => {
  const s = await oa.chat.completions.create({ model: 'synth:tokens=7', messages: msgs, stream: true, stream_options: { include_usage: true } });
  let text = '', fin = null, usage = null;
  for await (const c of s) { if (c.choices[0]?.delta?.content) text += c.choices[0].delta.content; if (c.choices[0]?.finish_reason) fin = c.choices[0].finish_reason; if (c.usage) usage = c.usage; }
  eq(text, words(7), 'text'); eq(fin, 'stop', 'finish'); eq(usage.completion_tokens, 7, 'usage');
});
await t('openai synth stream helper finalChatCompletion', async () => {
  const s = oa.chat.completions.stream({ model: 'synth:tokens=4,chunk=1', messages: msgs, stream_options: { include_usage: true } });
  const f = await s.finalChatCompletion();
  eq(f.choices[0].message.content, words(4), 'content'); eq(f.choices[0].finish_reason, 'stop', 'finish'); eq(f.usage.total_tokens, 14, 'usage');
});
await t('openai synth rate+ts', async () => {
  const s = await oa.chat.completions.create({ model: 'synth:tokens=5,rate=100,ts=1', messages: msgs, stream: true });
  const got = [];
  for await (const c of s) { const d = c.choices[0]?.delta?.content; if (d) got.push(d); }
  eq(got.length, 5, 'tokens'); if (!got.every((x) => /^@\d+ $/.test(x))) throw new Error('ts format ' + got[0]);
  const now = process.hrtime.bigint() / 1000n; const lat = Number(now - BigInt(got[4].slice(1, -1)));
  if (lat < 0 || lat > 1e6) throw new Error('ts not CLOCK_MONOTONIC us: ' + lat);
});
await t('openai error_after -> APIError', async () => {
  const s = await oa.chat.completions.create({ model: 'synth:tokens=5,error_after=2', messages: msgs, stream: true });
  let n = 0;
  try { for await (const c of s) { if (c.choices[0]?.delta?.content) n++; } throw new Error('no error'); }
  catch (e) { if (!(e instanceof OpenAI.APIError)) throw e; eq(n, 2, 'tokens before error'); }
});
await t('openai status 429 -> RateLimitError', async () => {
  try { await oa.chat.completions.create({ model: 'synth:status=429,retry_after=1', messages: msgs, stream: true }); throw new Error('no error'); }
  catch (e) { if (!(e instanceof OpenAI.RateLimitError)) throw e; eq(e.headers.get?.('retry-after') ?? e.headers['retry-after'], '1', 'retry-after'); }
});
await t('openai unknown model -> NotFoundError', async () => {
  try { await oa.chat.completions.create({ model: 'gpt-9', messages: msgs, stream: true }); throw new Error('no error'); }
  catch (e) { if (!(e instanceof OpenAI.NotFoundError)) throw e; }
});
await t('openai fixture@random via SDK', async () => {
  const s = await oa.chat.completions.create({ model: 'fixture:openai/chat_stream_basic@random:5', messages: msgs, stream: true, stream_options: { include_usage: true } });
  let text = ''; for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
  eq(text, 'Hello, C developers!\n\nStreams end with data: [DONE].', 'text');
});
await t('openai fixture mismatch (no include_usage) -> 400 with mock_error', async () => {
  try { await oa.chat.completions.create({ model: 'fixture:openai/chat_stream_basic', messages: msgs, stream: true }); throw new Error('no error'); }
  catch (e) { if (!(e instanceof OpenAI.BadRequestError)) throw e; if (!JSON.stringify(e.error ?? e.message).includes('include_usage')) throw new Error('msg ' + e.message); }
});

const an = new Anthropic({ baseURL: U, apiKey: 'k', maxRetries: 0 });
await t('anthropic synth finalMessage', async () => {
  const s = an.messages.stream({ model: 'synth:tokens=6', max_tokens: 100, messages: msgs });
  const m = await s.finalMessage();
  eq(m.content[0].text, words(6), 'text'); eq(m.stop_reason, 'end_turn', 'stop'); eq(m.usage.output_tokens, 6, 'usage');
});
await t('anthropic error_after -> APIError overloaded', async () => {
  const s = an.messages.stream({ model: 'synth:tokens=6,error_after=1', max_tokens: 100, messages: msgs });
  try { await s.finalMessage(); throw new Error('no error'); } catch (e) { if (!(e instanceof Anthropic.APIError)) throw e; }
});
await t('anthropic 529 -> error class', async () => {
  try { await an.messages.create({ model: 'synth:status=529', max_tokens: 5, messages: msgs, stream: true }); throw new Error('no error'); }
  catch (e) { if (!(e instanceof Anthropic.APIError) || e.status !== 529) throw e; }
});
await t('anthropic fixture basic via SDK (checks headers)', async () => {
  const s = an.messages.stream({ model: 'fixture:anthropic/messages_stream_basic@bytes', max_tokens: 100, messages: msgs });
  const m = await s.finalMessage();
  eq(m.content[0].text, 'Hello! Here is a short answer in two sentences. Streaming also carries UTF-8: café ☕.', 'text');
});

const gg = new GoogleGenAI({ apiKey: 'k', httpOptions: { baseUrl: U } });
await t('gemini synth stream', async () => {
  const s = await gg.models.generateContentStream({ model: 'synth:tokens=5', contents: 'hi' });
  let text = '', last = null; for await (const c of s) { text += c.text ?? ''; last = c; }
  eq(text, words(5), 'text'); eq(last.candidates[0].finishReason, 'STOP', 'finish'); eq(last.usageMetadata.candidatesTokenCount, 5, 'usage');
});
await t('gemini error_after -> ApiError', async () => {
  const s = await gg.models.generateContentStream({ model: 'synth:tokens=5,error_after=2', contents: 'hi' });
  try { for await (const c of s) { void c; } throw new Error('no error'); } catch (e) { if (!/overloaded|503/i.test(e.message)) throw e; }
});
await t('gemini 429', async () => {
  try { const s = await gg.models.generateContentStream({ model: 'synth:status=429,retry_after=2', contents: 'hi' }); for await (const c of s) void c; throw new Error('no error'); }
  catch (e) { if (e.status !== 429) throw e; }
});
await t('gemini fixture via SDK', async () => {
  const s = await gg.models.generateContentStream({ model: 'fixture:gemini/stream_generate_basic@cuts', contents: 'hi' });
  let text = ''; for await (const c of s) text += c.text ?? '';
  if (!text.startsWith('SSE frames each event')) throw new Error(text);
});

const ol = new Ollama({ host: U });
await t('ollama synth stream', async () => {
  const s = await ol.chat({ model: 'synth:tokens=4', messages: msgs, stream: true });
  let text = '', last = null; for await (const c of s) { text += c.message.content; last = c; }
  eq(text, words(4), 'text'); eq(last.done, true, 'done'); eq(last.eval_count, 4, 'eval_count');
});
await t('ollama truncate -> error', async () => {
  const s = await ol.chat({ model: 'synth:tokens=4,truncate_after=2', messages: msgs, stream: true });
  try { for await (const c of s) void c; throw new Error('no error'); } catch (e) { if (e.message === 'no error') throw e; }
});
await t('ollama fixture via SDK', async () => {
  const s = await ol.chat({ model: 'fixture:ollama/chat_stream_basic@random:3', messages: msgs, stream: true });
  let text = ''; for await (const c of s) text += c.message.content;
  eq(text, 'Ollama streams NDJSON: one object per line (x < y && y > z).', 'text');
});
console.log(`${pass} passed, ${fail} failed`);
