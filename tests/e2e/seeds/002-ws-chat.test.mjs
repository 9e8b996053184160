// Seed 002 (the `ws-chat` dialect, a plain WebSocket at /ws/chat): the seed's own two
// clients as printed, its Python `websockets` client (run by Debian's python3) and its
// JavaScript `ChatWebSocket` class (on npm's `ws`, which has the browser's onopen/onmessage
// API), unchanged but for the URL, the token and the assertions, against sluice answering
// from the mock upstream and from the demo model: the conversation memory the seed's clients
// rely on (they send only their newest message), one message at a time per connection,
// several connections at once, the seed's three error codes, auth failures, and the seed's
// troubleshooting endpoints (/health, /ws/test).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import WS from 'ws';
import { jwt, startMock, startSluice } from '../lib/harness.mjs';
import { mockProviders } from '../lib/providers.mjs';
import { assertFields, get, recordingConsole, synthText, uniq } from '../lib/seeds.mjs';

// The seed's Python client [002 L276-334]: uri and token from the command line, the message
// and session_id too (the seed's by default); every message it received is printed last.
const PYTHON = `
import asyncio
import json
import sys
import websockets

received = []  # (test) every message, for the assertions

async def chat_stream():
    uri = sys.argv[1]
    token = sys.argv[2]
    
    async with websockets.connect(uri) as websocket:
        # Authenticate
        await websocket.send(json.dumps({
            "type": "auth",
            "token": token
        }))
        
        # Wait for auth response
        auth_response = await websocket.recv()
        auth_data = json.loads(auth_response)
        received.append(auth_data)
        
        if auth_data["type"] != "auth_success":
            print("Authentication failed")
            return
        
        print("Authenticated!")
        
        # Send message
        await websocket.send(json.dumps({
            "type": "message",
            "message": sys.argv[3] if len(sys.argv) > 3 else "What is the engine power?",
            "session_id": sys.argv[4] if len(sys.argv) > 4 else "python-session-1"
        }))
        
        # Receive responses
        accumulated = ""
        
        async for message in websocket:
            data = json.loads(message)
            received.append(data)
            
            if data["type"] == "progress":
                print(f"[{data['step']}] {data['message']}")
            
            elif data["type"] == "token":
                print(data["token"], end="", flush=True)
                accumulated += data["token"]
                assert data["partial_response"] == accumulated  # (test)
            
            elif data["type"] == "complete":
                print("\\n\\nComplete!")
                print(f"Response: {data['response']}")
                print(f"Agent: {data['metadata']['agent']}")
                assert data["response"] == accumulated  # (test)
                break
            
            elif data["type"] == "error":
                print(f"Error: {data['error']}")
                break

# Run
asyncio.run(chat_stream())
print("RECEIVED " + json.dumps(received))  # (test)
`;

// Runs the Python client; resolves { lines (what it printed), received (what it got) }.
function python(uri, token, ...args) {
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/python3', ['-c', PYTHON, uri, token, ...args], { timeout: 20000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`python client: ${err.message}\n${stderr}\n${stdout}`));
      const lines = stdout.split('\n');
      const last = lines.findIndex((l) => l.startsWith('RECEIVED '));
      assert.ok(last >= 0, stdout);
      resolve({ lines: lines.slice(0, last), received: JSON.parse(lines[last].slice(9)), stdout });
    });
  });
}

// The seed's JavaScript client [002 L154-237], with `ws` for the browser's WebSocket.
const WebSocket = WS;
function ChatWebSocketOf(console) {
  return class ChatWebSocket {
    constructor(url, token) {
      this.url = url;
      this.token = token;
      this.ws = null;
      this.onMessage = null;
      this.onProgress = null;
      this.onComplete = null;
      this.onError = null;
    }
    
    connect() {
      this.ws = new WebSocket(this.url);
      
      this.ws.onopen = () => {
        console.log('Connected');
        
        // Authenticate
        if (this.token) {
          this.ws.send(JSON.stringify({
            type: 'auth',
            token: this.token
          }));
        }
      };
      
      this.ws.onmessage = (event) => {
        const data = JSON.parse(event.data);
        
        switch (data.type) {
          case 'auth_success':
            console.log('Authenticated:', data.user);
            break;
          
          case 'auth_error':
            if (this.onError) this.onError(data.message);
            break;
          
          case 'progress':
            if (this.onProgress) this.onProgress(data.step, data.message);
            break;
          
          case 'token':
            if (this.onMessage) this.onMessage(data.token, data.partial_response);
            break;
          
          case 'complete':
            if (this.onComplete) this.onComplete(data.response, data.metadata);
            break;
          
          case 'error':
            if (this.onError) this.onError(data.error, data.code);
            break;
        }
      };
      
      this.ws.onerror = (error) => {
        if (this.onError) this.onError('WebSocket error', 'CONNECTION_ERROR');
      };
      
      this.ws.onclose = () => {
        console.log('Disconnected');
      };
    }
    
    sendMessage(message, sessionId = null) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        throw new Error('WebSocket not connected');
      }
      
      this.ws.send(JSON.stringify({
        type: 'message',
        message: message,
        session_id: sessionId
      }));
    }
    
    disconnect() {
      if (this.ws) {
        this.ws.close();
      }
    }
  };
}

// The seed's usage [002 L239-269] on a page with a #response element; the console keeps what
// the handlers log, and every callback is recorded in order for the assertions.
function seedPage(url, token) {
  const console = recordingConsole();
  const document = { el: { response: { textContent: '' } }, getElementById(id) { return this.el[id]; } };
  const calls = [];
  const ChatWebSocket = ChatWebSocketOf(console);
  // Usage
  const chat = new ChatWebSocket(
    url,
    token
  );
  
  chat.onProgress = (step, message) => {
    calls.push({ on: 'progress', step, message });
    console.log(`[${step}] ${message}`);
  };
  
  chat.onMessage = (token, partial) => {
    calls.push({ on: 'message', token, partial });
    // Append token to UI
    document.getElementById('response').textContent += token;
  };
  
  chat.onComplete = (response, metadata) => {
    calls.push({ on: 'complete', response, metadata });
    console.log('Complete:', response);
    console.log('Agent:', metadata.agent);
    console.log('Confidence:', metadata.confidence);
  };
  
  chat.onError = (error, code) => {
    calls.push({ on: 'error', error, code });
    console.error(`Error [${code}]: ${error}`);
  };
  
  chat.connect();
  // The seed sends its message a second after connect(); tests wait for auth_success instead.
  const raw = [];
  chat.ws.on('message', (d) => raw.push(JSON.parse(d.toString())));
  const closed = new Promise((resolve) => chat.ws.once('close', (code) => resolve(code)));
  return {
    chat, console, calls, raw, closed,
    response: () => document.getElementById('response').textContent,
    // Resolves with the nth (1-based) call `on`, waiting for it (bounded).
    async nth(on, n = 1, ms = 10000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hits = calls.filter((c) => c.on === on);
        if (hits.length >= n) return hits[n - 1];
        if (Date.now() > deadline) throw new Error(`no ${on} #${n} within ${ms} ms; calls: ${JSON.stringify(calls.slice(-4))}`);
        await new Promise((r) => setImmediate(r));
      }
    },
  };
}

// What every message of the protocol must carry [002 L75-148], by type.
const SHAPES = {
  auth_success: { type: 'string', message: 'string', user: 'object' },
  auth_error: { type: 'string', message: 'string' },
  progress: { type: 'string', step: 'string', message: 'string' },
  token: { type: 'string', token: 'string', partial_response: 'string' },
  complete: { type: 'string', response: 'string', session_id: 'string', metadata: 'object' },
  error: { type: 'string', error: 'string', code: 'string' },
};

// Checks one answer's messages (progress*, token*, complete) and returns the complete.
function checkAnswer(msgs, { text } = {}) {
  for (const m of msgs) assertFields(m, SHAPES[m.type], m.type);
  const types = msgs.map((m) => m.type);
  const firstToken = types.indexOf('token');
  assert.ok(firstToken > 0, `tokens follow progress: ${types}`);
  const steps = msgs.slice(0, firstToken).map((m) => m.step);
  assert.equal(steps[0], 'starting');
  assert.equal(steps.at(-1), 'generating');
  assert.ok(steps.every((st) => ['starting', 'agent_routing', 'generating'].includes(st)), steps.join());
  assert.ok(!steps.includes('rag_retrieval'), 'sluice has no knowledge base');
  const tokens = msgs.slice(firstToken, -1);
  assert.ok(tokens.every((m) => m.type === 'token'), types.join());
  let acc = '';
  for (const t of tokens) {
    acc += t.token;
    assert.equal(t.partial_response, acc, 'partial_response is the text so far');
  }
  const done = msgs.at(-1);
  assert.equal(done.type, 'complete');
  assert.equal(done.response, acc);
  if (text !== undefined) assert.equal(done.response, text);
  assertFields(done.metadata, { agent: 'string', confidence: 'null', context: 'object' }, 'complete.metadata');
  assert.deepEqual(done.metadata.context.sources, []);
  const ids = new Set(msgs.map((m) => m.stream_id));
  assert.equal(ids.size, 1, 'one stream_id on every message of the answer');
  assert.ok(msgs.every((m) => m.session_id === done.session_id), 'one session_id throughout');
  return done;
}

// The messages of the nth answer (1-based) in a list of received messages.
function answer(msgs, n = 1) {
  const ends = msgs.map((m, i) => (m.type === 'complete' || (m.type === 'error' && m.stream_id) ? i : -1)).filter((i) => i >= 0);
  const from = n === 1 ? msgs.findIndex((m) => m.type === 'progress') : ends[n - 2] + 1;
  return msgs.slice(from, ends[n - 1] + 1);
}

describe('seed 002: the ws-chat dialect', () => {
  let mock;
  let s; // default model on the mock's OpenAI
  let demo; // default model: demo
  let broken; // default model fails mid-answer
  let recorded; // default model: Anthropic's recorded bytes (UTF-8 text), a byte per write
  const claims = { sub: 'seed002', email: 'driver@example.com', name: 'Ada Driver' };
  const token = jwt(claims);

  before(async () => {
    mock = await startMock();
    const base = {
      providers: { ...mockProviders(mock.url), demo: { kind: 'demo', tokens_per_second: 400 } },
      models: {
        'gpt-mock': { provider: 'mockopenai', upstream_model: 'synth:tokens=6,rate=60' },
        breaks: { provider: 'mockollama', upstream_model: 'synth:tokens=10,error_after=3' },
        recorded: { provider: 'mockanthropic', upstream_model: 'fixture:anthropic/messages_stream_basic@bytes' },
      },
      limits: { messages_per_minute: 100000 },
      resume: { window: 0 },
    };
    [s, demo, broken, recorded] = await Promise.all([
      startSluice({ config: { ...base, default_model: 'gpt-mock' } }),
      startSluice({ config: { ...base, default_model: 'demo' } }),
      startSluice({ config: { ...base, default_model: 'breaks' } }),
      startSluice({ config: { ...base, default_model: 'recorded' } }),
    ]);
  });
  after(async () => {
    await Promise.all([s?.stop(), demo?.stop(), broken?.stop(), recorded?.stop()]);
    await mock?.stop();
  });

  test('the Python client: auth message, progress, tokens, complete (mock upstream)', async () => {
    const marker = uniq('python');
    const { lines, received } = await python(`${s.wsUrl}/ws/chat`, token, marker);
    const [auth, ...rest] = received;
    assertFields(auth, SHAPES.auth_success, 'auth_success');
    assert.equal(auth.message, 'Authentication successful');
    assert.deepEqual(auth.user, { id: 'seed002', email: 'driver@example.com', name: 'Ada Driver' });
    const done = checkAnswer(rest, { text: synthText(6) });
    assert.equal(done.session_id, 'python-session-1', 'the client\'s own session_id');
    assert.equal(done.metadata.agent, 'gpt-mock');
    const progress = rest.filter((m) => m.type === 'progress').map((m) => `[${m.step}] ${m.message}`);
    assert.deepEqual(lines, [
      'Authenticated!',
      ...progress,
      `${synthText(6)}`,
      '',
      'Complete!',
      `Response: ${synthText(6)}`,
      'Agent: gpt-mock',
    ]);
    assert.ok(progress.includes('[starting] Processing started'));
    assert.ok(progress.includes('[generating] Generating response'));
    const req = await mock.wait(marker, 'ended');
    assert.deepEqual(req.body.messages, [{ role: 'user', content: marker }]);
  });

  test('the Python client twice on one session_id: the second turn carries the first (memory)', async () => {
    const session = uniq('py-session');
    const first = uniq('first');
    const second = uniq('second');
    await python(`${s.wsUrl}/ws/chat`, token, first, session);
    const { received } = await python(`${s.wsUrl}/ws/chat`, token, second, session);
    assert.equal(checkAnswer(received.slice(1)).session_id, session);
    const req = await mock.wait(second, 'ended');
    assert.deepEqual(req.body.messages, [
      { role: 'user', content: first },
      { role: 'assistant', content: synthText(6) },
      { role: 'user', content: second },
    ]);
    // Another user naming the same session_id gets a conversation of its own.
    const third = uniq('third');
    await python(`${s.wsUrl}/ws/chat`, jwt({ sub: 'someone-else' }), third, session);
    assert.deepEqual((await mock.wait(third, 'ended')).body.messages, [{ role: 'user', content: third }]);
  });

  test('the Python client with the demo model', async () => {
    const { lines, received } = await python(`${demo.wsUrl}/ws/chat`, token);
    const done = checkAnswer(received.slice(1));
    assert.ok(done.response.length > 40, done.response);
    assert.equal(done.metadata.agent, 'demo');
    assert.equal(lines.at(-2), `Response: ${done.response}`);
    assert.equal(lines.at(-1), 'Agent: demo');
  });

  test('the Python client with Anthropic\'s recorded stream: UTF-8 intact token by token', async () => {
    const { lines, received } = await python(`${recorded.wsUrl}/ws/chat`, token);
    const text = 'Hello! Here is a short answer in two sentences. Streaming also carries UTF-8: café ☕.';
    const done = checkAnswer(received.slice(1), { text });
    assert.equal(done.metadata.agent, 'recorded');
    assert.ok(received.filter((m) => m.type === 'token').length >= 5);
    assert.equal(lines.at(-2), `Response: ${text}`);
  });

  test('the Python client with a bad token: "Authentication failed", closed with 4001', async () => {
    const { lines, received } = await python(`${s.wsUrl}/ws/chat`, 'not-a-jwt');
    assert.deepEqual(lines, ['Authentication failed']);
    assertFields(received[0], SHAPES.auth_error, 'auth_error');
    assert.deepEqual([received[0].type, received[0].message], ['auth_error', 'Invalid token']);
  });

  test('the JavaScript client: auth message, progress, tokens appended to #response, complete', async () => {
    const p = seedPage(`${s.wsUrl}/ws/chat`, token);
    await p.console.waitFor(/^Authenticated:/);
    assert.deepEqual(p.console.text().slice(0, 2), ['Connected', `Authenticated: ${JSON.stringify({ id: 'seed002', email: 'driver@example.com', name: 'Ada Driver' })}`]);
    const marker = uniq('js');
    p.chat.sendMessage(marker);
    const { response, metadata } = await p.nth('complete');
    assert.equal(response, synthText(6));
    assert.equal(p.response(), synthText(6), 'every token appended, in order');
    assert.deepEqual(p.calls.filter((c) => c.on === 'message').map((c) => c.token), synthText(6).split(/(?<= )/));
    assert.equal(metadata.agent, 'gpt-mock');
    assert.equal(metadata.confidence, null);
    assert.deepEqual(p.console.text().slice(-3), [`Complete: ${synthText(6)}`, 'Agent: gpt-mock', 'Confidence: null']);
    const progress = p.calls.filter((c) => c.on === 'progress');
    assert.equal(progress[0].step, 'starting');
    assert.equal(progress.at(-1).step, 'generating');
    for (const c of progress) assert.equal(typeof c.message, 'string');
    checkAnswer(answer(p.raw));
    assert.equal(p.calls.filter((c) => c.on === 'error').length, 0);
    p.chat.disconnect();
    assert.equal(await p.closed, 1005);
    await p.console.waitFor(/^Disconnected$/);
  });

  test('?token= authenticates at connect (auth_success first), session_id null starts a conversation', async () => {
    const p = seedPage(`${s.wsUrl}/ws/chat?token=${token}`, null);
    await p.console.waitFor(/^Authenticated:/);
    const first = uniq('q1');
    p.chat.sendMessage(first);
    await p.nth('complete');
    const c1 = answer(p.raw, 1).at(-1);
    assert.match(c1.session_id, /^[A-Za-z0-9_-]{8,}$/, 'a session_id made by sluice');
    // Null again: another new conversation; the one made up before: continued.
    const second = uniq('q2');
    p.chat.sendMessage(second);
    await p.nth('complete', 2);
    const c2 = answer(p.raw, 2).at(-1);
    assert.notEqual(c2.session_id, c1.session_id);
    const third = uniq('q3');
    p.chat.sendMessage(third, c1.session_id);
    await p.nth('complete', 3);
    assert.equal(answer(p.raw, 3).at(-1).session_id, c1.session_id);
    assert.deepEqual((await mock.wait(second, 'ended')).body.messages, [{ role: 'user', content: second }]);
    assert.deepEqual((await mock.wait(third, 'ended')).body.messages, [
      { role: 'user', content: first },
      { role: 'assistant', content: synthText(6) },
      { role: 'user', content: third },
    ]);
    assert.equal(p.raw.filter((m) => m.type === 'auth_success').length, 1);
    p.chat.disconnect();
  });

  test('one message streams at a time per connection: later ones wait, answered in order', async () => {
    const p = seedPage(`${s.wsUrl}/ws/chat`, token);
    await p.console.waitFor(/^Authenticated:/);
    const session = uniq('order');
    const qs = [uniq('o1'), uniq('o2'), uniq('o3')];
    for (const q of qs) p.chat.sendMessage(q, session);
    await p.nth('complete', 3);
    const streams = [];
    for (const m of p.raw.filter((x) => x.stream_id)) if (streams.at(-1) !== m.stream_id) streams.push(m.stream_id);
    assert.equal(streams.length, 3, `no interleaving: ${streams}`);
    for (let n = 1; n <= 3; n++) checkAnswer(answer(p.raw, n), { text: synthText(6) });
    // In order, each seeing the turns before it.
    await mock.wait(qs[2], 'ended');
    // The upstream requests, by the message each asked (the last one of its body).
    const log = await mock.log();
    const bodies = qs.map((q) => log.find((r) => r.body?.messages?.at(-1)?.content === q));
    assert.ok(bodies[0].id < bodies[1].id && bodies[1].id < bodies[2].id, 'sent upstream in order');
    assert.deepEqual(bodies.map((b) => b.body.messages.length), [1, 3, 5]);
    assert.deepEqual(bodies[2].body.messages.filter((m) => m.role === 'user').map((m) => m.content), qs);
    p.chat.disconnect();
  });

  test('a client that leaves while messages wait their turn: they go with it (sluice exits clean)', async () => {
    // A server of its own: stopping it is the check (exit 0, no LeakSanitizer report).
    const own = await startSluice({
      config: {
        providers: mockProviders(mock.url),
        models: { slow: { provider: 'mockopenai', upstream_model: 'synth:tokens=1000,rate=20' } },
        default_model: 'slow',
        resume: { window: '300ms' },
        limits: { messages_per_minute: 100000 },
      },
    });
    try {
      const p = seedPage(`${own.wsUrl}/ws/chat`, token);
      await p.console.waitFor(/^Authenticated:/);
      const marker = uniq('leaving');
      p.chat.sendMessage(marker);
      for (let i = 0; i < 4; i++) p.chat.sendMessage(`waiting ${i}`);
      await p.nth('message');
      p.chat.disconnect();
      await p.closed;
      // The window ends: the running answer is stopped upstream, the session freed.
      assert.equal((await mock.wait(marker, 'aborted', 5000)).end, 'client_closed');
      assert.equal(p.calls.filter((c) => c.on === 'complete').length, 0);
    } finally {
      await own.stop();
    }
    assert.equal(own.stderr().match(/ERROR: LeakSanitizer/), null);
    assert.ok(!(await mock.log()).some((r) => JSON.stringify(r.body).includes('waiting 0')), 'a waiting message never ran');
  });

  test('several connections at once, each with its own answer', async () => {
    const pages = [0, 1, 2, 3].map((i) => seedPage(`${s.wsUrl}/ws/chat`, jwt({ sub: `driver-${i}` })));
    await Promise.all(pages.map((p) => p.console.waitFor(/^Authenticated:/)));
    const marks = pages.map((p, i) => { const m = uniq(`conc${i}`); p.chat.sendMessage(m); return m; });
    await Promise.all(pages.map((p) => p.nth('complete')));
    for (const p of pages) {
      checkAnswer(answer(p.raw), { text: synthText(6) });
      assert.equal(p.response(), synthText(6));
    }
    for (const m of marks) assert.equal((await mock.wait(m, 'ended')).end, 'done');
    // The requests overlapped upstream.
    const log = (await mock.log()).filter((r) => marks.some((m) => JSON.stringify(r.body).includes(m)));
    const overlap = log.some((a) => log.some((b) => a !== b && a.started_ms < b.ended_ms && b.started_ms < a.ended_ms));
    assert.ok(overlap, 'streams ran concurrently');
    for (const p of pages) p.chat.disconnect();
  });

  test('the seed\'s error codes: AUTH_REQUIRED, EMPTY_MESSAGE; auth_error then close 4001', async () => {
    const anon = seedPage(`${s.wsUrl}/ws/chat`, null);
    await anon.console.waitFor(/^Connected$/);
    anon.chat.sendMessage('What is the engine power?');
    const e1 = await anon.nth('error');
    assert.equal(e1.code, 'AUTH_REQUIRED');
    assert.equal(typeof e1.error, 'string');
    assertFields(anon.raw.at(-1), SHAPES.error, 'error');
    anon.chat.disconnect();

    const p = seedPage(`${s.wsUrl}/ws/chat`, token);
    await p.console.waitFor(/^Authenticated:/);
    for (const [n, empty] of [[1, ''], [2, '   \n\t']]) {
      p.chat.sendMessage(empty);
      const e = await p.nth('error', n);
      assert.equal(e.code, 'EMPTY_MESSAGE', JSON.stringify(e));
    }
    p.chat.ws.send(JSON.stringify({ type: 'message', session_id: null }));
    assert.equal((await p.nth('error', 3)).code, 'EMPTY_MESSAGE');
    p.chat.ws.send('{"type":"message","message":"x","session_id":42}');
    const e4 = await p.nth('error', 4);
    assert.equal(e4.code, 'PROCESSING_ERROR');
    assert.equal(p.raw.at(-1).detail, 'BAD_REQUEST');
    p.chat.sendMessage('still works');
    await p.nth('complete');
    assert.deepEqual(p.console.text().filter((l) => l.startsWith('Error')), [
      `Error [EMPTY_MESSAGE]: ${p.calls.filter((c) => c.on === 'error')[0].error}`,
      `Error [EMPTY_MESSAGE]: ${p.calls.filter((c) => c.on === 'error')[1].error}`,
      `Error [EMPTY_MESSAGE]: ${p.calls.filter((c) => c.on === 'error')[2].error}`,
      `Error [PROCESSING_ERROR]: ${e4.error}`,
    ]);
    p.chat.disconnect();

    const bad = seedPage(`${s.wsUrl}/ws/chat`, jwt({ sub: 'x' }, { secret: 'another-secret-0123456789abcdef0123' }));
    assert.equal(await bad.closed, 4001);
    assert.deepEqual(bad.calls[0], { on: 'error', error: 'Invalid token', code: undefined });
    assertFields(bad.raw[0], SHAPES.auth_error, 'auth_error');
    assert.equal(bad.raw[0].message, 'Invalid token');

    const badQuery = seedPage(`${s.wsUrl}/ws/chat?token=not-a-jwt`, null);
    assert.equal(await badQuery.closed, 4001);
    assert.deepEqual(badQuery.calls, [{ on: 'error', error: 'Invalid token', code: undefined }]);
  });

  test('a provider failing mid-answer: PROCESSING_ERROR with sluice\'s code in detail; not remembered', async () => {
    const p = seedPage(`${broken.wsUrl}/ws/chat`, token);
    await p.console.waitFor(/^Authenticated:/);
    const session = uniq('broken');
    p.chat.sendMessage('first', session);
    const e = await p.nth('error');
    assert.equal(e.code, 'PROCESSING_ERROR');
    const raw = p.raw.at(-1);
    assertFields(raw, { ...SHAPES.error, detail: 'string', retryable: 'boolean', stream_id: 'string' }, 'error');
    assert.deepEqual([raw.detail, raw.retryable, raw.session_id], ['UPSTREAM_ERROR', true, session]);
    assert.equal(p.response(), synthText(3), 'the tokens before the failure');
    // The failed exchange is not part of the conversation.
    const marker = uniq('after-failure');
    p.chat.sendMessage(marker, session);
    await p.nth('error', 2);
    assert.deepEqual((await mock.wait(marker, 'ended')).body.messages, [{ role: 'user', content: marker }]);
    p.chat.disconnect();
  });

  test('the seed\'s troubleshooting endpoints: GET /health (JSON), GET /ws/test (the test page)', async () => {
    const h = await get(s, '/health');
    assert.equal(h.status, 200);
    assert.match(h.headers.get('content-type'), /^application\/json/);
    assertFields(h.json, { status: 'string' }, '/health');
    assert.equal(h.json.status, 'healthy');
    const page = await get(s, '/ws/test');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type'), /^text\/html/);
    assert.match(page.body, /<html/i);
  });
});
