// The OpenAI-compatible HTTP API end to end (docs/http-api.md): the official `openai` npm
// SDK and Debian's curl against sluice, whose providers are the mock upstream. Streaming
// and non-streaming answers, tool calls, usage, errors as the SDK's exception classes with
// their status and retry headers (and the SDK's retries following x-should-retry), a client
// abort that reaches the upstream, a resumable stream cut and resumed with Last-Event-ID,
// and the identity's limits shared by HTTP requests and WebSocket messages.
//
// 56-openai-http-render checks the rendered bytes without the server; 54-openai-sdk
// compares the SDK against the mock straight. This file is the wiring: every answer here
// went through authentication, admission, a provider and a journal.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { Client, SECRET, jwt, session, startMock, startSluice } from './lib/harness.mjs';
import { mockProviders } from './lib/providers.mjs';

let seq = 0;
const uniq = (what) => `${what}-${process.pid}-${Date.now()}-${++seq}`;
const synthText = (n) => Array.from({ length: n }, (_, i) => `tok${i + 1} `).join('');
const API_KEY = 'sk-http-api-e2e-5d1c9b';
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

// Every SSE event of a body: { id, data } (comments and blank lines dropped).
function parseSSE(text) {
  const out = [];
  for (const block of text.split('\n\n')) {
    const ev = { id: null, data: null, comment: false };
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) ev.comment = true;
      else if (line.startsWith('id: ')) ev.id = line.slice(4);
      else if (line.startsWith('data: ')) ev.data = ev.data === null ? line.slice(6) : `${ev.data}\n${line.slice(6)}`;
    }
    if (ev.data !== null) out.push(ev);
  }
  return out;
}

// The content text of a chunk stream's events.
const textOfSSE = (events) => events
  .filter((e) => e.data !== '[DONE]')
  .map((e) => JSON.parse(e.data).choices?.[0]?.delta?.content ?? '')
  .join('');

// curl with a deadline: resolves { code, stdout, stderr } when it exits (killed past the
// deadline). onData sees stdout as it arrives and may return true to kill curl there.
function curl(args, { timeoutMs = 15000, onData } = {}) {
  const proc = spawn('curl', ['-sS', '--max-time', String(Math.ceil(timeoutMs / 1000)), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let killed = false;
  const timer = setTimeout(() => { killed = true; proc.kill('SIGKILL'); }, timeoutMs + 2000);
  proc.stdout.on('data', (d) => {
    stdout += d.toString();
    if (!killed && onData && onData(stdout)) {
      killed = true;
      proc.kill('SIGKILL');
    }
  });
  proc.stderr.on('data', (d) => { stderr += d.toString(); });
  return new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// curl -D - writes the head before the body: { status, headers, body }.
function splitHead(out) {
  const i = out.indexOf('\r\n\r\n');
  const head = out.slice(0, i).split('\r\n');
  const headers = {};
  for (const l of head.slice(1)) {
    const c = l.indexOf(':');
    headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
  }
  return { status: Number(head[0].split(' ')[1]), headers, body: out.slice(i + 4) };
}

// How many requests the mock logged whose body contains marker.
async function upstreamRequests(mock, marker) {
  return (await mock.log()).filter((r) => JSON.stringify(r.body).includes(marker));
}

describe('the HTTP API through the openai SDK and curl', () => {
  let mock;
  let s;
  let token;
  const sdk = (opts = {}) => new OpenAI({
    baseURL: `${s.url}/v1`, apiKey: token, maxRetries: 0, timeout: 20000, ...opts,
  });
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        auth: { jwt: { secret: SECRET }, api_keys: [{ name: 'e2e-key', sha256: sha256(API_KEY) }] },
        providers: mockProviders(mock.url),
        models: {
          text: { provider: 'mockopenai', upstream_model: 'synth:tokens=50,usage=1,prompt_tokens=17' },
          paced: { provider: 'mockopenai', upstream_model: 'synth:tokens=40,rate=40' },
          slow: { provider: 'mockopenai', upstream_model: 'synth:tokens=2000,rate=50' },
          tools: { provider: 'mockopenai', upstream_model: 'fixture:openai/chat_stream_tool_calls' },
          midfail: { provider: 'mockopenai', upstream_model: 'synth:tokens=10,error_after=3' },
          boom: { provider: 'mockopenai', upstream_model: 'synth:status=500' },
          busy: { provider: 'mockopenai', upstream_model: 'synth:status=429,retry_after=2' },
          gone: { provider: 'mockollama', upstream_model: 'fixture:ollama/chat_error_404' },
          stall: { provider: 'mockopenai', upstream_model: 'synth:tokens=5,stall_after=1' },
        },
        agents: { analyst: { model: 'text', system: 'Be brief.' } },
        resume: { window: '30s' },
        limits: { messages_per_minute: 100000 },
      },
    });
    token = jwt({ sub: 'sdk-user' });
  });
  after(async () => {
    await s?.stop();
    await mock?.stop();
  });

  test('streaming: role first, the text, the finish, the usage chunk, and the stream id header', async () => {
    // An API key authenticates as well as a JWT.
    const client = sdk({ apiKey: API_KEY });
    const { data: stream, response } = await client.chat.completions.create({
      model: 'text', stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'hi' }],
    }).withResponse();
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^text\/event-stream/);
    const sid = response.headers.get('x-sluice-stream-id');
    assert.match(sid, /^[a-z0-9]+$/);
    const chunks = [];
    for await (const ch of stream) chunks.push(ch);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    for (const ch of chunks) {
      assert.equal(ch.id, `chatcmpl-${sid}`);
      assert.equal(ch.object, 'chat.completion.chunk');
      assert.equal(ch.model, 'text');
    }
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), synthText(50));
    assert.deepEqual(chunks.filter((c) => c.choices[0]?.finish_reason).map((c) => c.choices[0].finish_reason), ['stop']);
    assert.deepEqual(chunks.at(-1).choices, []);
    assert.deepEqual(chunks.at(-1).usage, { prompt_tokens: 17, completion_tokens: 50, total_tokens: 67 });
    // Without include_usage there is no usage chunk and no usage field.
    const plain = await sdk().chat.completions.create({
      model: 'text', stream: true, messages: [{ role: 'user', content: 'hi' }],
    });
    const p = [];
    for await (const ch of plain) p.push(ch);
    assert.ok(p.every((c) => c.choices.length === 1 && c.usage === undefined), JSON.stringify(p.at(-1)));
    assert.equal(p.at(-1).choices[0].finish_reason, 'stop');
  });

  test('non-streaming: one chat.completion with the text and usage; an agent works as a model', async () => {
    const r = await sdk().chat.completions.create({ model: 'text', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.object, 'chat.completion');
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, synthText(50));
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.deepEqual(r.usage, { prompt_tokens: 17, completion_tokens: 50, total_tokens: 67 });
    const marker = uniq('agent');
    const a = await sdk().chat.completions.create({ model: 'analyst', messages: [{ role: 'user', content: marker }] });
    assert.equal(a.model, 'analyst');
    assert.equal(a.choices[0].message.content, synthText(50));
    const [up] = await upstreamRequests(mock, marker);
    assert.equal(up.body.messages[0].role, 'system', 'the agent\'s system prompt went upstream');
  });

  test('tool calls: streamed fragments assemble into the calls, and stream: false returns them', async () => {
    const want = [
      ['call_ebZEtbtLO0a77V48RsTaJygS', 'get_weather', '{"city":"Paris","unit":"celsius"}'],
      ['call_lCS3tgrmFriHzkRVDPZpp2gx', 'get_time', '{"timezone":"Europe/Paris"}'],
    ];
    const tools = [
      { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } },
      { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: {} } } },
    ];
    const runner = sdk().chat.completions.stream({
      model: 'tools', tools, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'weather and time in Paris?' }],
    });
    const done = await runner.finalChatCompletion();
    assert.equal(done.choices[0].finish_reason, 'tool_calls');
    const calls = done.choices[0].message.tool_calls;
    assert.deepEqual(calls.map((c) => [c.id, c.function.name, c.function.arguments]), want);
    assert.ok(calls.every((c) => c.type === 'function'));
    assert.ok(done.usage.prompt_tokens > 0 && done.usage.completion_tokens > 0);

    const r = await sdk().chat.completions.create({ model: 'tools', tools, messages: [{ role: 'user', content: 'again' }] });
    assert.equal(r.choices[0].message.content, null);
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.deepEqual(r.choices[0].message.tool_calls.map((c) => [c.id, c.function.name, c.function.arguments]), want);
  });

  test('GET /v1/models lists the models and agents', async () => {
    const ids = [];
    for await (const m of sdk().models.list()) ids.push([m.id, m.object, m.owned_by]);
    for (const name of ['analyst', 'boom', 'busy', 'gone', 'midfail', 'paced', 'slow', 'text', 'tools'])
      assert.ok(ids.some((x) => x[0] === name), `${name} in ${JSON.stringify(ids)}`);
    assert.deepEqual(ids.find((x) => x[0] === 'text'), ['text', 'model', 'mockopenai']);
    // `created` is the server's start, the same in every answer.
    const again = [];
    for await (const m of sdk().models.list()) again.push(m.created);
    assert.ok(again.every((c) => c === again[0] && c <= Date.now() / 1000));
  });

  test('a wrong method is a 405 with Allow and an OpenAI-shaped body, an APIError in the SDK', async () => {
    const cases = [
      ['GET', '/v1/chat/completions', 'POST'],
      ['POST', '/v1/models', 'GET, HEAD'],
      ['DELETE', '/v1/chat/completions/abc/events', 'GET'],
    ];
    for (const [method, path, allow] of cases) {
      const r = await fetch(`${s.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 405, `${method} ${path}`);
      assert.equal(r.headers.get('allow'), allow);
      assert.equal(r.headers.get('content-type'), 'application/json');
      const body = await r.json();
      assert.equal(body.error.type, 'invalid_request_error');
      assert.match(body.error.message, new RegExp(`${method} ${path.replace(/\//g, '\\/')}`));
    }
    await assert.rejects(sdk().get('/chat/completions'), (err) => {
      assert.ok(err instanceof OpenAI.APIError, `${err.constructor.name}: ${err.message}`);
      assert.equal(err.status, 405);
      assert.equal(err.type, 'invalid_request_error');
      return true;
    });
  });

  test('a 400 for a bad body keeps the connection: the next request on it is answered', async () => {
    const { hostname, port } = new URL(s.url);
    const sock = net.connect(Number(port), hostname);
    let got = '';
    sock.on('data', (d) => { got += d.toString(); });
    const closed = new Promise((resolve) => sock.on('close', resolve));
    const bad = JSON.stringify({ model: 'text', n: 2, messages: [{ role: 'user', content: 'hi' }] });
    sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(bad)}\r\n\r\n${bad}`);
    sock.write(`GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
    await closed;
    const heads = got.match(/HTTP\/1\.1 \d{3}/g);
    assert.deepEqual(heads, ['HTTP/1.1 400', 'HTTP/1.1 200'], got.slice(0, 600));
    assert.ok(!/^Connection: close/im.test(got.slice(0, got.indexOf('HTTP/1.1 200'))), 'the 400 did not close');
  });

  // Each refusal as the SDK raises it; maxRetries 0, so each is one request.
  const errorCases = [
    ['400: n > 1', {}, { model: 'text', n: 2 }, OpenAI.BadRequestError, 400, 'bad_request', 'n', 'false'],
    ['400: no messages', {}, { model: 'text', messages: undefined }, OpenAI.BadRequestError, 400, 'bad_request', 'messages', 'false'],
    ['401: a bad key', { apiKey: 'sk-wrong' }, { model: 'text' }, OpenAI.AuthenticationError, 401, 'invalid_api_key', null, 'false'],
    ['404: an unknown model', {}, { model: 'no-such-model' }, OpenAI.NotFoundError, 404, 'model_not_found', 'model', 'false'],
    ['429: the provider rate limits', {}, { model: 'busy' }, OpenAI.RateLimitError, 429, 'upstream_rate_limited', null, null],
    ['502: the provider fails', {}, { model: 'boom' }, OpenAI.InternalServerError, 502, 'upstream_error', null, null],
    ['502: the provider says the model is gone (not retryable)', {}, { model: 'gone' }, OpenAI.InternalServerError, 502, 'upstream_error', null, 'false'],
  ];
  for (const [name, clientOpts, body, cls, status, code, param, shouldRetry] of errorCases) {
    for (const stream of [true, false]) {
      test(`${name} is a ${cls.name} (stream: ${stream})`, async () => {
        const req = { messages: [{ role: 'user', content: 'hi' }], stream, ...body };
        if (req.messages === undefined) delete req.messages;
        await assert.rejects(sdk(clientOpts).chat.completions.create(req), (err) => {
          assert.ok(err instanceof cls, `${err.constructor.name}: ${err.message}`);
          assert.equal(err.status, status);
          assert.equal(err.code, code);
          assert.equal(err.param, param);
          assert.equal(err.headers.get('content-type'), 'application/json');
          assert.equal(err.headers.get('x-should-retry'), shouldRetry);
          if (status === 429) {
            assert.equal(err.headers.get('retry-after'), '2', 'the provider\'s Retry-After');
            assert.equal(err.headers.get('retry-after-ms'), '2000');
          }
          return true;
        });
      });
    }
  }

  test('the SDK retries what sluice calls retryable and not what it does not', async () => {
    // A provider 500 (retryable): maxRetries 1 makes two upstream requests.
    const m1 = uniq('retry');
    await assert.rejects(
      sdk({ maxRetries: 1 }).chat.completions.create({ model: 'boom', messages: [{ role: 'user', content: m1 }] }),
      OpenAI.InternalServerError,
    );
    assert.equal((await upstreamRequests(mock, m1)).length, 2);
    // A provider 404 (x-should-retry: false): one request despite maxRetries 2.
    const m2 = uniq('noretry');
    await assert.rejects(
      sdk({ maxRetries: 2 }).chat.completions.create({ model: 'gone', messages: [{ role: 'user', content: m2 }] }),
      OpenAI.InternalServerError,
    );
    assert.equal((await upstreamRequests(mock, m2)).length, 1);
  });

  test('401 without a token, and an error after the head comes as an APIError from the iterator', async () => {
    const r = await fetch(`${s.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'text', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.status, 401);
    assert.equal((await r.json()).error.code, 'missing_api_key');

    const stream = await sdk().chat.completions.create({
      model: 'midfail', stream: true, messages: [{ role: 'user', content: 'hi' }],
    });
    let text = '';
    await assert.rejects(async () => {
      for await (const ch of stream) text += ch.choices[0]?.delta?.content ?? '';
    }, (err) => {
      assert.ok(err instanceof OpenAI.APIError, String(err));
      assert.equal(err.code, 'upstream_error');
      assert.equal(err.type, 'server_error');
      return true;
    });
    assert.equal(text, synthText(3));
  });

  test('aborting a stream in the SDK cancels the upstream request', async () => {
    const marker = uniq('abort');
    const stream = await sdk().chat.completions.create({
      model: 'slow', stream: true, messages: [{ role: 'user', content: marker }],
    });
    let text = '';
    for await (const ch of stream) {
      text += ch.choices[0]?.delta?.content ?? '';
      if (text.length > 0) {
        stream.controller.abort();
        break;
      }
    }
    const r = await mock.wait(marker, 'aborted', 5000);
    assert.equal(r.end, 'client_closed');
    assert.ok(r.tokens_sent < 2000, `${r.tokens_sent} tokens`);
    // The same for a non-streaming request abandoned before its answer.
    const m2 = uniq('abort-json');
    const ac = new AbortController();
    const pending = sdk().chat.completions.create(
      { model: 'slow', messages: [{ role: 'user', content: m2 }] }, { signal: ac.signal },
    );
    await mock.wait(m2, 'streaming', 5000);
    ac.abort();
    await assert.rejects(pending, OpenAI.APIUserAbortError);
    assert.equal((await mock.wait(m2, 'aborted', 5000)).end, 'client_closed');
  });

  test('curl -N gets the chunks as they are made, with ids, and [DONE] last', async () => {
    const marker = uniq('curl');
    let sawWhileStreaming = null;
    let checking = null;
    const out = await curl([
      '-N', '-D', '-', `${s.url}/v1/chat/completions`,
      '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/json',
      '-d', JSON.stringify({ model: 'paced', stream: true, messages: [{ role: 'user', content: marker }] }),
    ], {
      onData: (sofar) => {
        // The first token in hand: the upstream must still be sending (40 tokens at 40/s).
        if (checking === null && sofar.includes('"content":"tok1 "')) {
          checking = fetch(`${mock.url}/_mock/wait?match=${marker}&state=complete&timeout_ms=0`)
            .then((r) => { sawWhileStreaming = r.status === 408; });
        }
        return false;
      },
    });
    assert.equal(out.code, 0, out.stderr);
    await checking;
    assert.equal(sawWhileStreaming, true, 'curl had a token before the upstream finished');
    const { status, headers, body } = splitHead(out.stdout);
    assert.equal(status, 200);
    assert.equal(headers['cache-control'], 'no-cache');
    const sid = headers['x-sluice-stream-id'];
    const events = parseSSE(body);
    assert.equal(events.at(-1).data, '[DONE]');
    assert.equal(textOfSSE(events), synthText(40));
    const seqs = events.filter((e) => e.id).map((e) => {
      const [id, n] = e.id.split(':');
      assert.equal(id, sid);
      return Number(n);
    });
    assert.ok(seqs.length >= 41);
    assert.ok(seqs.every((n, i) => i === 0 || n > seqs[i - 1]), 'ids increase');
  });

  test('a resumable stream survives a killed curl: Last-Event-ID gets exactly the rest', async () => {
    const marker = uniq('resume');
    const first = await curl([
      '-N', '-D', '-', `${s.url}/v1/chat/completions`,
      '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/json',
      '-H', 'x-sluice-resumable: true',
      '-d', JSON.stringify({ model: 'paced', stream: true, messages: [{ role: 'user', content: marker }] }),
    ], { onData: (sofar) => sofar.includes('"content":"tok5 "') });
    assert.equal(first.signal, 'SIGKILL', 'curl was cut, not finished');
    const { headers, body } = splitHead(first.stdout);
    assert.equal(headers['x-sluice-resumable'], 'true');
    const sid = headers['x-sluice-stream-id'];
    // Only complete events count: the cut may have split the last one.
    const complete = body.slice(0, body.lastIndexOf('\n\n') + 2);
    const before = parseSSE(complete);
    const lastId = before.filter((e) => e.id).at(-1).id;
    // The upstream keeps streaming into the journal meanwhile.
    assert.equal((await mock.wait(marker, 'streaming', 0)).state, 'streaming');

    const second = await curl([
      '-N', '-D', '-', `${s.url}/v1/chat/completions/${sid}/events`,
      '-H', `Authorization: Bearer ${token}`, '-H', `Last-Event-ID: ${lastId}`,
    ]);
    assert.equal(second.code, 0, second.stderr);
    const rest = splitHead(second.stdout);
    assert.equal(rest.status, 200);
    assert.equal(rest.headers['x-sluice-stream-id'], sid);
    const after = parseSSE(rest.body);
    assert.equal(after.at(-1).data, '[DONE]');
    assert.equal(textOfSSE(before) + textOfSSE(after), synthText(40));
    const ups = await upstreamRequests(mock, marker);
    assert.equal(ups.length, 1, 'one upstream request for the whole answer');
    assert.equal(ups[0].end, 'done');

    // Another identity, a malformed id, and a finished stream get nothing.
    const other = await curl(['-D', '-', `${s.url}/v1/chat/completions/${sid}/events`,
      '-H', `Authorization: Bearer ${jwt({ sub: 'someone-else' })}`, '-H', `Last-Event-ID: ${lastId}`]);
    assert.equal(splitHead(other.stdout).status, 404);
    const bad = await curl(['-D', '-', `${s.url}/v1/chat/completions/${sid}/events`,
      '-H', `Authorization: Bearer ${token}`, '-H', 'Last-Event-ID: nonsense']);
    assert.equal(splitHead(bad.stdout).status, 400);
  });

  test('a stream that finished while its client was away is still resumed within the window', async () => {
    const marker = uniq('away');
    const first = await curl([
      '-N', '-D', '-', `${s.url}/v1/chat/completions`,
      '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/json',
      '-H', 'x-sluice-resumable: 1',
      '-d', JSON.stringify({ model: 'paced', stream: true, messages: [{ role: 'user', content: marker }] }),
    ], { onData: (sofar) => sofar.includes('"content":"tok2 "') });
    assert.equal(first.signal, 'SIGKILL');
    const { headers, body } = splitHead(first.stdout);
    const sid = headers['x-sluice-stream-id'];
    const before = parseSSE(body.slice(0, body.lastIndexOf('\n\n') + 2));
    const mark = s.mark();
    assert.equal((await mock.wait(marker, 'complete', 5000)).end, 'done');
    await s.waitLog(new RegExp(`event=stream\\.end .*stream=${sid} .*outcome=done`), mark);
    // The query parameter works as the header does (for clients that cannot set one).
    const lastId = before.filter((e) => e.id).at(-1).id;
    const second = await curl(['-N', '-D', '-',
      `${s.url}/v1/chat/completions/${sid}/events?last_event_id=${encodeURIComponent(lastId)}`,
      '-H', `Authorization: Bearer ${token}`]);
    const rest = splitHead(second.stdout);
    assert.equal(rest.status, 200);
    const after = parseSSE(rest.body);
    assert.equal(after.at(-1).data, '[DONE]');
    assert.equal(textOfSSE(before) + textOfSSE(after), synthText(40));
    // Read to its end, the stream is gone.
    const again = await curl(['-D', '-', `${s.url}/v1/chat/completions/${sid}/events`,
      '-H', `Authorization: Bearer ${token}`, '-H', `Last-Event-ID: ${lastId}`]);
    assert.equal(splitHead(again.stdout).status, 404);
  });

  test('a provider silent for 15 s gets the client an SSE comment heartbeat', async () => {
    const marker = uniq('heartbeat');
    const t0 = Date.now();
    const out = await curl([
      '-N', `${s.url}/v1/chat/completions`,
      '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/json',
      '-d', JSON.stringify({ model: 'stall', stream: true, messages: [{ role: 'user', content: marker }] }),
    ], { timeoutMs: 25000, onData: (sofar) => sofar.includes(': keep-alive\n\n') });
    assert.equal(out.signal, 'SIGKILL', `no heartbeat: ${out.stdout}`);
    assert.ok(Date.now() - t0 >= 14000, 'not before 15 s of silence');
    const events = parseSSE(out.stdout);
    assert.equal(textOfSSE(events), 'tok1 ');
    // The provider was still holding the request; curl's leaving cancelled it.
    assert.equal((await mock.wait(marker, 'aborted', 5000)).end, 'client_closed');
  });

  test('a stream that did not ask to be resumable is cancelled upstream when curl goes', async () => {
    const marker = uniq('noresume');
    const first = await curl([
      '-N', '-D', '-', `${s.url}/v1/chat/completions`,
      '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/json',
      '-d', JSON.stringify({ model: 'slow', stream: true, messages: [{ role: 'user', content: marker }] }),
    ], { onData: (sofar) => sofar.includes('"content":"tok1 "') });
    assert.equal(first.signal, 'SIGKILL');
    const sid = splitHead(first.stdout).headers['x-sluice-stream-id'];
    assert.equal((await mock.wait(marker, 'aborted', 5000)).end, 'client_closed');
    const again = await curl(['-D', '-', `${s.url}/v1/chat/completions/${sid}/events`,
      '-H', `Authorization: Bearer ${token}`, '-H', `Last-Event-ID: ${sid}:1`]);
    assert.equal(splitHead(again.stdout).status, 404);
  });
});

describe('resume on another worker', () => {
  let mock;
  let s;
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        workers: 2,
        providers: mockProviders(mock.url),
        models: { paced: { provider: 'mockopenai', upstream_model: 'synth:tokens=40,rate=100' } },
        limits: { messages_per_minute: 100000 },
        log: { level: 'debug' },
      },
    });
  });
  after(async () => {
    await s?.stop();
    await mock?.stop();
  });

  test('a resume that lands on the other worker is handed to the stream\'s and gets exactly the rest', async () => {
    const token = jwt({ sub: 'roamer' });
    let handedOff = 0;
    // SO_REUSEPORT spreads connections over the workers: until one resume crossed over.
    for (let i = 0; i < 30 && handedOff === 0; i++) {
      const marker = uniq('roam');
      const first = await curl([
        '-N', '-D', '-', `${s.url}/v1/chat/completions`,
        '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/json',
        '-H', 'x-sluice-resumable: true',
        '-d', JSON.stringify({ model: 'paced', stream: true, messages: [{ role: 'user', content: marker }] }),
      ], { onData: (sofar) => sofar.includes('"content":"tok3 "') });
      assert.equal(first.signal, 'SIGKILL');
      const { headers, body } = splitHead(first.stdout);
      const before = parseSSE(body.slice(0, body.lastIndexOf('\n\n') + 2));
      const sid = headers['x-sluice-stream-id'];
      const mark = s.mark();
      const second = await curl(['-N', '-D', '-', `${s.url}/v1/chat/completions/${sid}/events`,
        '-H', `Authorization: Bearer ${token}`, '-H', `Last-Event-ID: ${before.filter((e) => e.id).at(-1).id}`]);
      const rest = splitHead(second.stdout);
      assert.equal(rest.status, 200, second.stdout);
      assert.equal(textOfSSE(before) + textOfSSE(parseSSE(rest.body)), synthText(40));
      // The access line of the resume comes from the stream's worker, after any hand-off.
      await s.waitLog(new RegExp(`event=http\\.access .*path=/v1/chat/completions/${sid}/events status=200`), mark);
      if (/event=handoff /.test(s.stderr().slice(mark))) handedOff++;
    }
    assert.equal(handedOff, 1, 'no resume landed on the other worker in 30 tries');
  });
});

describe('limits hold across HTTP and WebSocket', () => {
  let s;
  before(async () => {
    s = await startSluice({
      config: {
        providers: { demo: { kind: 'demo', tokens_per_second: 400 }, slow: { kind: 'demo', tokens_per_second: 4 } },
        models: { demo: { provider: 'demo' }, slow: { provider: 'slow' } },
        limits: {
          messages_per_minute: 1000,
          max_streams_per_user: 1,
          tiers: { free: { messages_per_minute: 3 } },
        },
      },
    });
  });
  after(async () => {
    await s?.stop();
  });
  const sdkFor = (claims) => new OpenAI({ baseURL: `${s.url}/v1`, apiKey: jwt(claims), maxRetries: 0, timeout: 20000 });

  test('one bucket of messages per identity: WebSocket messages and HTTP requests draw from it', async () => {
    const claims = { sub: 'rita', sluice_tier: 'free' };
    // Two cancels on the WebSocket use two of the three.
    const ws = await Client.open(`${s.wsUrl}/ws?token=${jwt(claims)}`);
    await ws.next('ready');
    for (let i = 0; i < 2; i++) ws.send({ type: 'cancel', id: `x${i}` });
    for (let i = 0; i < 2; i++) assert.equal((await ws.next('error')).code, 'NOT_FOUND');
    const ok = await sdkFor(claims).chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(ok.choices[0].finish_reason, 'stop');
    await assert.rejects(
      sdkFor(claims).chat.completions.create({ model: 'demo', messages: [{ role: 'user', content: 'hi' }] }),
      (err) => {
        assert.ok(err instanceof OpenAI.RateLimitError, String(err));
        assert.equal(err.status, 429);
        assert.equal(err.code, 'rate_limit_exceeded');
        assert.ok(Number(err.headers.get('retry-after')) >= 1);
        assert.ok(Number(err.headers.get('retry-after-ms')) > 0);
        return true;
      },
    );
    // Spent over HTTP, refused on the WebSocket too.
    ws.send({ type: 'cancel', id: 'x9' });
    assert.equal((await ws.next('error')).code, 'RATE_LIMITED');
    // Another identity of the same tier has its own bucket.
    const other = await sdkFor({ sub: 'rosa', sluice_tier: 'free' }).chat.completions.create({
      model: 'demo', messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(other.choices[0].finish_reason, 'stop');
    ws.close();
  });

  test('streams per user count HTTP and WebSocket streams together', async () => {
    const [c] = await session(s, { sub: 'sam' });
    c.send({ type: 'chat', id: 'w1', model: 'slow', message: 'hold' });
    await c.next((m) => m.id === 'w1' && m.type === 'delta');
    const client = sdkFor({ sub: 'sam' });
    await assert.rejects(
      client.chat.completions.create({ model: 'demo', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      (err) => {
        assert.ok(err instanceof OpenAI.RateLimitError, String(err));
        // The identity's stream limit is a rate limit, as on the WebSocket.
        assert.equal(err.code, 'rate_limit_exceeded');
        assert.match(err.message, /too many streams/);
        assert.ok(Number(err.headers.get('retry-after')) >= 1);
        return true;
      },
    );
    const mark = s.mark();
    c.send({ type: 'cancel', id: 'w1' });
    assert.equal((await c.next((m) => m.id === 'w1' && m.type === 'cancelled')).type, 'cancelled');
    await s.waitLog(/event=stream\.end .*user=sam .*outcome=cancelled/, mark);

    // Now an HTTP stream holds the one slot: the WebSocket is refused.
    const { data: stream, response } = await client.chat.completions.create({
      model: 'slow', stream: true, messages: [{ role: 'user', content: 'hold' }],
    }).withResponse();
    const sid = response.headers.get('x-sluice-stream-id');
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    c.send({ type: 'chat', id: 'w2', model: 'demo', message: 'hi' });
    const refused = await c.next((m) => m.id === 'w2');
    assert.equal(refused.type, 'error');
    assert.equal(refused.code, 'RATE_LIMITED');
    assert.match(refused.message, /too many streams/);
    // The HTTP client leaves: its stream ends and frees the slot.
    const mark2 = s.mark();
    stream.controller.abort();
    await s.waitLog(new RegExp(`event=stream\\.end .*stream=${sid} .*outcome=disconnected`), mark2);
    c.send({ type: 'chat', id: 'w3', model: 'demo', message: 'hi' });
    const ev = await c.collect('w3');
    assert.equal(ev.at(-1).type, 'done');
    c.close();
  });
});
