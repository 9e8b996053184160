// The official `openai` npm SDK reads what sluice's OpenAI-compatible HTTP API renders
// (src/proto/openai_http.c, docs/http-api.md) as it reads OpenAI's own responses: streamed
// chunks, the stream helper's assembled completion, tool calls, usage, an in-stream error,
// the non-streaming chat.completion, /v1/models, and errors as the SDK's exception classes.
//
// The bytes come from build/asan/sluice-oairender (bench/oairender), which renders canned
// event sequences through the protocol layer; a plain Node HTTP server hands them to the
// SDK. This checks the format before, and independently of, the HTTP wiring; the end-to-end
// path through sluice is tested once /v1/chat/completions is routed.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { ROOT } from './lib/harness.mjs';

function renderBin() {
  if (process.env.SLUICE_OAIRENDER) return process.env.SLUICE_OAIRENDER;
  for (const n of ['build/asan/sluice-oairender', 'build/sluice-oairender']) {
    const p = path.join(ROOT, n);
    if (fs.existsSync(p)) return p;
  }
  throw new Error('no renderer: set SLUICE_OAIRENDER or build build/asan/sluice-oairender');
}

function render(...args) {
  return execFileSync(renderBin(), args, { env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1' } });
}

describe('openai SDK reads the rendered HTTP API', () => {
  let srv;
  let client;
  const seen = [];
  before(async () => {
    // The request's model names what to answer: sse-text, json-tools, error:RATE_LIMITED, ...
    srv = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, auth: req.headers.authorization });
        if (req.method === 'GET' && req.url === '/v1/models') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(render('models'));
          return;
        }
        const { model, stream } = JSON.parse(body);
        if (model.startsWith('error:')) {
          const out = render('error', model.slice(6)).toString();
          const nl = out.indexOf('\n');
          const [status, retry] = out.slice(0, nl).split(' ').map(Number);
          const headers = { 'content-type': 'application/json' };
          if (retry >= 0) headers['retry-after'] = String(retry);
          res.writeHead(status, headers);
          res.end(out.slice(nl + 1));
          return;
        }
        const kind = stream ? 'sse' : 'json';
        res.writeHead(200, { 'content-type': stream ? 'text/event-stream' : 'application/json' });
        res.end(render(`${kind}-${model}`));
      });
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    client = new OpenAI({
      baseURL: `http://127.0.0.1:${srv.address().port}/v1`,
      apiKey: 'test-token',
      maxRetries: 0,
    });
  });
  after(() => srv?.close());

  test('streamed text: role first, content deltas, finish, usage chunk, [DONE]', async () => {
    const stream = await client.chat.completions.create({
      model: 'text', stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'hi' }],
    });
    const chunks = [];
    for await (const ch of stream) chunks.push(ch);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    for (const ch of chunks) {
      assert.equal(ch.object, 'chat.completion.chunk');
      assert.equal(ch.id, 'chatcmpl-oair1');
      assert.equal(ch.model, 'gpt-test');
      assert.equal(ch.created, 1767225660);
    }
    const text = chunks.map((ch) => ch.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, 'Hello, wörld "quoted"\n');
    const fin = chunks.filter((ch) => ch.choices[0]?.finish_reason);
    assert.deepEqual(fin.map((ch) => ch.choices[0].finish_reason), ['stop']);
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 });
    assert.equal(seen.at(-1).auth, 'Bearer test-token');
  });

  test('the stream helper assembles the completion and its tool calls', async () => {
    const runner = client.chat.completions.stream({
      model: 'tools', stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'weather?' }],
    });
    const done = await runner.finalChatCompletion();
    const msg = done.choices[0].message;
    assert.equal(done.choices[0].finish_reason, 'tool_calls');
    assert.equal(msg.tool_calls.length, 2);
    assert.deepEqual(msg.tool_calls.map((t) => [t.id, t.type, t.function.name, t.function.arguments]), [
      ['call_1', 'function', 'get_weather', '{"city":"Paris"}'],
      ['call_2', 'function', 'get_time', '{}'],
    ]);
    assert.deepEqual(done.usage, { prompt_tokens: 20, completion_tokens: 12, total_tokens: 32 });
  });

  test('an in-stream error is raised by the iterator, after the text before it', async () => {
    const stream = await client.chat.completions.create({
      model: 'error', stream: true, messages: [{ role: 'user', content: 'hi' }],
    });
    let text = '';
    await assert.rejects(async () => {
      for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? '';
    }, (err) => {
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.match(err.message, /upstream closed the stream/);
      assert.equal(err.code, 'upstream_error');
      assert.equal(err.type, 'server_error');
      return true;
    });
    assert.equal(text, 'partial');
  });

  test('non-streaming: one chat.completion, with text or tool calls', async () => {
    const r = await client.chat.completions.create({ model: 'text', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, 'Hello, wörld "quoted"\n');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.usage.total_tokens, 12);
    const t = await client.chat.completions.create({ model: 'tools', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(t.choices[0].message.content, null);
    assert.deepEqual(t.choices[0].message.tool_calls.map((c) => c.function.arguments), ['{"city":"Paris"}', '{}']);
  });

  test('/v1/models lists models and agents with their owners', async () => {
    const list = [];
    for await (const m of client.models.list()) list.push([m.id, m.object, m.owned_by]);
    assert.deepEqual(list, [
      ['gpt-test', 'model', 'openai'],
      ['claude-test', 'model', 'anthropic'],
      ['analyst', 'model', 'anthropic'],
    ]);
  });

  const errors = [
    ['BAD_REQUEST', 400, OpenAI.BadRequestError, 'invalid_request_error', 'bad_request', 'n'],
    ['AUTH_FAILED', 401, OpenAI.AuthenticationError, 'invalid_request_error', 'invalid_api_key', null],
    ['UNKNOWN_MODEL', 404, OpenAI.NotFoundError, 'invalid_request_error', 'model_not_found', null],
    ['DUPLICATE_ID', 409, OpenAI.ConflictError, 'invalid_request_error', 'duplicate_id', null],
    ['RATE_LIMITED', 429, OpenAI.RateLimitError, 'requests', 'rate_limit_exceeded', null],
    ['BUDGET_EXCEEDED', 429, OpenAI.RateLimitError, 'insufficient_quota', 'insufficient_quota', null],
    ['UPSTREAM_ERROR', 502, OpenAI.InternalServerError, 'server_error', 'upstream_error', null],
    ['OVERLOADED', 503, OpenAI.InternalServerError, 'server_error', 'overloaded', null],
    ['UPSTREAM_TIMEOUT', 504, OpenAI.InternalServerError, 'server_error', 'upstream_timeout', null],
  ];
  for (const [code, status, cls, type, ocode, param] of errors) {
    test(`${code} is a ${status} ${cls.name} with type ${type} and code ${ocode}`, async () => {
      await assert.rejects(
        client.chat.completions.create({ model: `error:${code}`, messages: [{ role: 'user', content: 'hi' }] }),
        (err) => {
          assert.ok(err instanceof cls, `${err.constructor.name}: ${err.message}`);
          assert.equal(err.status, status);
          assert.equal(err.type, type);
          assert.equal(err.code, ocode);
          assert.equal(err.param, param);
          assert.match(err.message, new RegExp(`rendered ${code}`));
          if (status === 429 || status === 503) assert.ok(Number(err.headers.get('retry-after')) >= 1);
          return true;
        },
      );
    });
  }
});
