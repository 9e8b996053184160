// Seed 003 (the `ai` dialect, Socket.IO namespace /ai, no token): the seed's own client code
// as printed, its `AIStreamingClient` class, its "Automated Testing" snippet and its event
// snippets (cancel, heartbeat, reconnection, errors, backpressure), unchanged but for the
// URL, stream ids and the assertions, against sluice streaming from Ollama's `codellama` on
// the mock upstream, from the mock's other providers and from the demo model: cancel,
// heartbeats, errors, several streams at once and the per-connection cap, backpressure
// (announced, nothing dropped), the stream time cap, and `ai:reconnect` after a lost
// connection (the class's own reconnect), which continues the stream on the new connection.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { io } from 'socket.io-client';
import { metric, startMock, startSluice } from '../lib/harness.mjs';
import { mockProviders } from '../lib/providers.mjs';
import { assertFields, assertIso, recordEvents, recordingConsole, synthText, uniq } from '../lib/seeds.mjs';

// Every instance of the seed's class and every socket it made, so that a failed test cannot
// leave one reconnecting.
const instances = new Set();
const classSockets = new Set();

// The seed's client class [003 L178-247], given a console to log to.
function AIStreamingClientOf(console) {
  const Seed = class AIStreamingClient {
    constructor(url = 'ws://localhost:3000/ai') {
      this.url = url;
      this.socket = null;
      this.isConnected = false;
      this.activeStreams = new Map();
      this.reconnectAttempts = 0;
      this.maxReconnectAttempts = 5;
    }

    connect() {
      this.socket = io(this.url);
      
      this.socket.on('connect', () => {
        this.isConnected = true;
        this.reconnectAttempts = 0;
        console.log('Connected to AI WebSocket');
      });

      this.socket.on('ai:connected', (data) => {
        console.log('AI WebSocket ready:', data);
      });

      this.socket.on('ai:token', (data) => {
        this.handleToken(data);
      });

      this.socket.on('ai:done', (data) => {
        this.handleStreamComplete(data);
      });

      this.socket.on('disconnect', () => {
        this.isConnected = false;
        this.scheduleReconnect();
      });
    }

    streamAI(prompt, options = {}) {
      const streamId = `client_${Date.now()}`;
      
      this.socket.emit('ai:stream', {
        prompt,
        streamId,
        ...options
      });
      
      return streamId;
    }

    handleToken(data) {
      // Process incoming token
      console.log('Token:', data.data);
    }

    handleStreamComplete(data) {
      console.log('Stream completed:', data.totalTokens, 'tokens');
    }

    scheduleReconnect() {
      if (this.reconnectAttempts < this.maxReconnectAttempts) {
        this.reconnectAttempts++;
        const delay = 1000 * Math.pow(2, this.reconnectAttempts - 1);
        
        setTimeout(() => {
          this.connect();
        }, delay);
      }
    }
  };
  // (test) instances are tracked; the class itself is the seed's.
  return class extends Seed {
    constructor(...args) {
      super(...args);
      instances.add(this);
    }

    connect() {
      super.connect();
      classSockets.add(this.socket);
    }
  };
}

// The seed's event snippets [003 L77-171] on a socket, logging as the seed does.
function seedHandlers(socket, console) {
  socket.on('ai:stream:start', (data) => {
    console.log('Stream started:', data.streamId);
  });
  socket.on('ai:stream:complete', (data) => {
    console.log('Stream completed:', data.agent);
    console.log('Intent:', data.intent);
    console.log('Confidence:', data.confidence);
  });
  socket.on('ai:stream:cancelled', (data) => {
    console.log('Stream cancelled:', data.streamId);
  });
  socket.on('ai:heartbeat:ack', (data) => {
    console.log('Heartbeat acknowledged');
    console.log('Active streams:', data.activeStreams);
    console.log('Queue size:', data.queueSize);
  });
  socket.on('ai:reconnect:success', (data) => {
    console.log('Reconnection successful');
    console.log('Previous client:', data.previousClientId);
    console.log('New client:', data.newClientId);
  });
  socket.on('ai:error', (data) => {
    console.error('Error:', data.error);
    console.error('Details:', data.details);
  });
  socket.on('ai:stream:error', (data) => {
    console.error('Stream error:', data.error);
    console.error('Stream ID:', data.streamId);
  });
  socket.on('ai:backpressure', (data) => {
    console.warn('Backpressure detected:', data.message);
    console.warn('Queue size:', data.queueSize);
  });
}

// The fields the seed's code reads, with their types.
const SHAPE = {
  'ai:connected': { clientId: 'string', maxConcurrentStreams: 'number', backpressureThreshold: 'number' },
  'ai:stream:start': { streamId: 'string' },
  'ai:token': { streamId: 'string', data: 'string', agent: 'string', tokenCount: 'number', metadata: 'object' },
  'ai:stream:complete': { streamId: 'string', agent: 'string', intent: 'null', confidence: 'null' },
  'ai:done': { streamId: 'string', totalTokens: 'number', duration: 'number' },
  'ai:stream:cancelled': { streamId: 'string' },
  'ai:heartbeat:ack': { activeStreams: 'number', queueSize: 'number' },
  'ai:reconnect:success': { previousClientId: 'string', newClientId: 'string' },
  'ai:error': { error: 'string', details: 'object' },
  'ai:stream:error': { error: 'string', streamId: 'string' },
  'ai:backpressure': { message: 'string', queueSize: 'number' },
};

function checkShape(rec) {
  assertFields(rec.data, SHAPE[rec.event], rec.event);
  if (rec.event !== 'ai:connected' && rec.data.timestamp !== undefined) assertIso(rec.data.timestamp);
}

// One stream's events: start, tokens with a running count, complete, done. Returns its text.
function checkStream(seen, streamId, { model, provider } = {}) {
  const mine = seen.filter((r) => r.data?.streamId === streamId);
  mine.forEach(checkShape);
  assert.deepEqual(
    [mine[0].event, mine.at(-2).event, mine.at(-1).event],
    ['ai:stream:start', 'ai:stream:complete', 'ai:done'],
    mine.map((r) => r.event).join(),
  );
  const tokens = mine.slice(1, -2);
  assert.ok(tokens.every((r) => r.event === 'ai:token'));
  tokens.forEach((r, i) => assert.equal(r.data.tokenCount, i + 1, 'tokenCount runs'));
  for (const r of tokens) {
    assertFields(r.data.metadata, { model: 'string', provider: 'string' }, 'ai:token.metadata');
    if (model) assert.equal(r.data.metadata.model, model);
    if (provider) assert.equal(r.data.metadata.provider, provider);
  }
  const done = mine.at(-1).data;
  assert.ok(done.duration >= 0 && done.duration < 20000);
  return { text: tokens.map((r) => r.data.data).join(''), tokens: tokens.length, done, complete: mine.at(-2).data };
}

const FLOOD = 100000; // tokens of the backpressure test's answer

describe('seed 003: the ai dialect', () => {
  let mock;
  let s;
  let url;
  const sockets = [];
  const track = (so) => { sockets.push(so); return so; };

  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: { ...mockProviders(mock.url), demo: { kind: 'demo', tokens_per_second: 400 } },
        default_model: 'demo',
        models: {
          codellama: { provider: 'mockollama', upstream_model: 'synth:tokens=9' },
          // Paced (50 ms a token): still running when a fourth stream is asked for.
          'gpt-mock': { provider: 'mockopenai', upstream_model: 'synth:tokens=7,rate=20' },
          'claude-mock': { provider: 'mockanthropic', upstream_model: 'synth:tokens=5,rate=20' },
          'gemini-mock': { provider: 'mockgemini', upstream_model: 'synth:tokens=6,rate=20' },
          slow: { provider: 'mockollama', upstream_model: 'synth:tokens=1000,rate=20' },
          paced: { provider: 'mockopenai', upstream_model: 'synth:tokens=80,rate=40' },
          // 250 ms between tokens: a connection dropped right after one has none in flight.
          gappy: { provider: 'mockopenai', upstream_model: 'synth:tokens=12,rate=4' },
          // More than the kernel's socket buffers take (about 4 MB were seen absorbed when the
          // upstream's reads come in large batches), so that sluice's own queue fills.
          flood: { provider: 'mockopenai', upstream_model: `synth:tokens=${FLOOD},rate=0` },
          'breaks-midway': { provider: 'mockgemini', upstream_model: 'synth:tokens=10,error_after=2' },
        },
        socketio: { namespaces: { '/ai': { dialects: ['ai'], auth: 'none' } } },
        limits: { messages_per_minute: 100000, max_streams_per_connection: 3, send_high_water: '16KiB' },
        resume: { window: '30s' }, // seed 003: RECONNECT_TIMEOUT=30000
      },
    });
    url = `${s.wsUrl}/ai`;
  });
  after(async () => {
    for (const client of instances) client.maxReconnectAttempts = 0;
    for (const so of [...sockets, ...classSockets]) { so.io.reconnection(false); so.disconnect(); }
    await s?.stop();
    await mock?.stop();
  });

  test('the seed\'s AIStreamingClient: ai:connected, then codellama (the mock\'s Ollama) token by token', async () => {
    const c = recordingConsole();
    const AIStreamingClient = AIStreamingClientOf(c);
    const client = new AIStreamingClient(url);
    client.connect();
    track(client.socket);
    const ev = recordEvents(client.socket);
    seedHandlers(client.socket, c);
    const ready = await ev.until((r) => r.event === 'ai:connected');
    checkShape(ready);
    assert.equal(ready.data.maxConcurrentStreams, 3);
    assert.equal(ready.data.backpressureThreshold, 16384);
    assert.equal(client.isConnected, true);
    const streamId = client.streamAI('Explain this code', { model: 'codellama', temperature: 0.7, maxTokens: 2048, useOrchestrator: true, agentContext: { activeFile: 'App.js', projectType: 'React' } });
    assert.match(streamId, /^client_\d+$/);
    const done = await ev.until((r) => r.event === 'ai:done' || r.event === 'ai:stream:error');
    assert.equal(done.event, 'ai:done', JSON.stringify(done));
    assert.equal(done.data.streamId, streamId);
    const { text, tokens, complete } = checkStream(ev.seen, streamId, { model: 'codellama', provider: 'mockollama' });
    assert.equal(text, synthText(9));
    assert.equal(tokens, 9);
    assert.equal(done.data.totalTokens, 9);
    assert.equal(complete.agent, 'codellama');
    assert.deepEqual(c.text(), [
      'Connected to AI WebSocket',
      `AI WebSocket ready: ${JSON.stringify(ready.data)}`,
      `Stream started: ${streamId}`,
      ...synthText(9).split(/(?<= )/).map((t) => `Token: ${t}`),
      'Stream completed: codellama',
      'Intent: null',
      'Confidence: null',
      'Stream completed: 9 tokens',
    ]);
    // The request fields sluice does not act on were accepted; the others reached Ollama.
    const req = (await mock.log()).filter((r) => r.scenario === 'synth:tokens=9').at(-1);
    assert.deepEqual(req.body.messages, [{ role: 'user', content: 'Explain this code' }]);
    assert.equal(req.body.options.temperature, 0.7);
    assert.equal(req.body.options.num_predict, 2048);
    client.socket.io.reconnection(false);
    client.maxReconnectAttempts = 0;
    client.socket.disconnect();
  });

  test('the seed\'s automated test snippet: no model given, the demo model answers', async () => {
    const console = recordingConsole();
    // Test basic connection [003 L415-435]
    const client = track(io(url));
    client.on('ai:connected', () => {
      console.log('✅ Connection successful');
    });

    // Test streaming
    client.emit('ai:stream', {
      prompt: 'Write a hello world function',
      useOrchestrator: false
    });

    client.on('ai:token', (data) => {
      console.log('✅ Token received:', data.data);
    });

    client.on('ai:done', (data) => {
      console.log('✅ Stream completed:', data.totalTokens, 'tokens');
    });
    const ev = recordEvents(client);
    const done = await ev.until((r) => r.event === 'ai:done' || r.event === 'ai:stream:error');
    assert.equal(done.event, 'ai:done', JSON.stringify(done));
    assertFields(done.data, SHAPE['ai:done'], 'ai:done');
    const { text, tokens } = checkStream(ev.seen, done.data.streamId, { model: 'demo', provider: 'demo' });
    assert.ok(text.length > 40);
    assert.equal(done.data.totalTokens, tokens);
    const lines = console.text();
    assert.equal(lines[0], '✅ Connection successful');
    assert.equal(lines.filter((l) => l.startsWith('✅ Token received: ')).length, tokens);
    assert.equal(lines.at(-1), `✅ Stream completed: ${tokens} tokens`);
    client.disconnect();
  });

  test('cancel: ai:stream:cancelled, no token after it, the provider stopped', async () => {
    const c = recordingConsole();
    const socket = track(io(url));
    seedHandlers(socket, c);
    const ev = recordEvents(socket);
    const marker = uniq('cancel');
    socket.emit('ai:stream', { prompt: marker, model: 'slow', streamId: 'stream_123' });
    await ev.until((r) => r.event === 'ai:token');
    await mock.wait(marker, 'streaming', 3000);
    socket.emit('ai:cancel', { streamId: 'stream_123' });
    const cancelled = await ev.until((r) => r.event === 'ai:stream:cancelled');
    checkShape(cancelled);
    assert.equal(cancelled.data.streamId, 'stream_123');
    const r = await mock.wait(marker, 'aborted', 3000);
    assert.equal(r.end, 'client_closed');
    // A heartbeat's round trip later, nothing more of the stream came.
    socket.emit('ai:heartbeat', {});
    await ev.until((x) => x.event === 'ai:heartbeat:ack');
    const at = ev.seen.indexOf(cancelled);
    assert.deepEqual(ev.seen.slice(at + 1).filter((x) => x.data?.streamId === 'stream_123'), []);
    assert.ok(c.text().includes('Stream cancelled: stream_123'));
    // Cancelling it again: it is not running.
    socket.emit('ai:cancel', { streamId: 'stream_123' });
    const nf = await ev.until((x) => x.event === 'ai:stream:error');
    checkShape(nf);
    assert.equal(nf.data.code, 'NOT_FOUND');
    socket.disconnect();
  });

  test('heartbeat: activeStreams and queueSize while streams run and after', async () => {
    const c = recordingConsole();
    const socket = track(io(url));
    seedHandlers(socket, c);
    const ev = recordEvents(socket);
    socket.emit('ai:stream', { prompt: 'a', model: 'slow', streamId: 'h1' });
    socket.emit('ai:stream', { prompt: 'b', model: 'slow', streamId: 'h2' });
    await ev.until((r) => r.event === 'ai:token' && r.data.streamId === 'h2');
    socket.emit('ai:heartbeat', {});
    const ack = await ev.until((r) => r.event === 'ai:heartbeat:ack');
    checkShape(ack);
    assert.equal(ack.data.activeStreams, 2);
    assert.ok(ack.data.queueSize >= 0);
    socket.emit('ai:cancel', { streamId: 'h1' });
    socket.emit('ai:cancel', { streamId: 'h2' });
    await ev.until((r) => r.event === 'ai:stream:cancelled' && r.data.streamId === 'h2');
    const from = ev.seen.length;
    socket.emit('ai:heartbeat'); // no argument at all
    const ack2 = await ev.until((r) => r.event === 'ai:heartbeat:ack', 10000, from);
    assert.equal(ack2.data.activeStreams, 0);
    const beat = c.text().indexOf('Heartbeat acknowledged');
    assert.deepEqual(c.text().slice(beat, beat + 3), ['Heartbeat acknowledged', 'Active streams: 2', `Queue size: ${ack.data.queueSize}`]);
    socket.disconnect();
  });

  test('several streams at once on each provider, told apart by streamId; the fourth is over the cap', async () => {
    const c = recordingConsole();
    const AIStreamingClient = AIStreamingClientOf(c);
    const client = new AIStreamingClient(url);
    client.connect();
    track(client.socket);
    client.socket.io.reconnection(false);
    client.maxReconnectAttempts = 0;
    const ev = recordEvents(client.socket);
    await ev.until((r) => r.event === 'ai:connected');
    const runs = { 'gpt-mock': 7, 'claude-mock': 5, 'gemini-mock': 6 };
    // Distinct ids: the class's own (client_<Date.now()>) repeat within a millisecond, and
    // streamAI() returns its own even when options carry another.
    const ids = Object.keys(runs).map((model) => {
      client.streamAI(`hi ${model}`, { model, streamId: `client_${model}` });
      return `client_${model}`;
    });
    await Promise.all(ids.map((id) => ev.until((r) => r.event === 'ai:token' && r.data.streamId === id)));
    client.streamAI('one too many', { model: 'codellama', streamId: 'client_fourth' });
    const over = await ev.until((r) => r.event === 'ai:stream:error' && r.data.streamId === 'client_fourth');
    checkShape(over);
    assert.equal(over.data.code, 'TOO_MANY_STREAMS');
    await Promise.all(ids.map((id) => ev.until((r) => r.event === 'ai:done' && r.data.streamId === id)));
    for (const [model, n] of Object.entries(runs)) {
      const { text, done } = checkStream(ev.seen, `client_${model}`, { model });
      assert.equal(text, synthText(n), model);
      assert.equal(done.totalTokens, n);
    }
    // Paced side by side: more switches between streams than one after another would make.
    const order = ev.seen.filter((r) => r.event === 'ai:token').map((r) => r.data.streamId);
    assert.ok(order.filter((id, i) => i > 0 && id !== order[i - 1]).length > 2);
    // The class's handlers logged every stream's tokens and each completion.
    assert.equal(c.text().filter((l) => l.startsWith('Token: ')).length, 18);
    assert.deepEqual(c.text().filter((l) => l.startsWith('Stream completed')).sort(), ['Stream completed: 5 tokens', 'Stream completed: 6 tokens', 'Stream completed: 7 tokens']);
    client.socket.disconnect();
  });

  test('errors: ai:error for what names no stream, ai:stream:error for what does', async () => {
    const c = recordingConsole();
    const socket = track(io(url));
    seedHandlers(socket, c);
    const ev = recordEvents(socket);
    socket.emit('ai:stream', { model: 'codellama' });
    const e1 = await ev.until((r) => r.event === 'ai:error');
    checkShape(e1);
    assert.equal(e1.data.code, 'BAD_REQUEST');
    assert.match(e1.data.error, /prompt/);
    assertFields(e1.data.details, { code: 'string', message: 'string' }, 'ai:error.details');

    socket.emit('ai:stream', { prompt: 'x', model: 'starcoder', streamId: 'e2' });
    const e2 = await ev.until((r) => r.event === 'ai:stream:error' && r.data.streamId === 'e2');
    assert.equal(e2.data.code, 'UNKNOWN_MODEL');

    socket.emit('ai:stream', { prompt: 'x', maxTokens: 0, streamId: 'e3' });
    const e3 = await ev.until((r) => r.event === 'ai:stream:error' && r.data.streamId === 'e3');
    assert.match(e3.data.error, /maxTokens/);

    socket.emit('ai:stream', { prompt: 'x', model: 'breaks-midway', streamId: 'e4' });
    const e4 = await ev.until((r) => r.event === 'ai:stream:error' && r.data.streamId === 'e4');
    checkShape(e4);
    assert.deepEqual([e4.data.code, e4.data.retryable], ['UPSTREAM_ERROR', true]);
    assert.deepEqual(ev.of('streamId', 'e4', 'ai:token').map((r) => r.data.data), ['tok1 ', 'tok2 ']);
    assert.equal(ev.of('streamId', 'e4', 'ai:done').length, 0);

    socket.emit('ai:reconnect', { previousClientId: 'never-was-a-client' });
    const e5 = await ev.until((r) => r.event === 'ai:error' && r.data.code === 'NOT_FOUND');
    checkShape(e5);

    socket.emit('ai:stream', 'just a string');
    const e6 = await ev.until((r) => r.event === 'ai:error' && r !== e1 && r !== e5);
    assert.equal(e6.data.code, 'BAD_REQUEST');
    assert.equal(c.text().filter((l) => l.startsWith('Stream error: ')).length, 3);
    assert.equal(c.text().filter((l) => l.startsWith('Error: ')).length, 3);
    socket.disconnect();
  });

  test('backpressure: a client that stops reading gets ai:backpressure, then every token in order', async () => {
    const c = recordingConsole();
    const socket = track(io(url, { transports: ['websocket'] }));
    seedHandlers(socket, c);
    const ev = recordEvents(socket);
    await ev.until((r) => r.event === 'ai:connected');
    const pauses0 = await metric(s, 'sluice_backpressure_pauses_total');
    const tcp = socket.io.engine.transport.ws._socket;
    tcp.pause(); // stop reading: the kernel's buffers fill, then sluice's queue
    socket.emit('ai:stream', { prompt: 'flood', model: 'flood', streamId: 'bp' });
    const t0 = Date.now();
    while ((await metric(s, 'sluice_backpressure_pauses_total')) === pauses0) {
      assert.ok(Date.now() - t0 < 10000, 'no backpressure pause within 10 s');
      await new Promise((r) => setImmediate(r));
    }
    tcp.resume();
    const done = await ev.until((r) => r.event === 'ai:done' || r.event === 'ai:stream:error', 60000);
    assert.equal(done.event, 'ai:done', JSON.stringify(done.data));
    const bp = ev.seen.find((r) => r.event === 'ai:backpressure');
    assert.ok(bp, 'ai:backpressure was sent');
    checkShape(bp);
    assert.ok(bp.data.queueSize >= 16384, `queueSize ${bp.data.queueSize} is over the threshold`);
    // Nothing skipped: the text is whole (merged into fewer events while the client lagged).
    const text = ev.of('streamId', 'bp', 'ai:token').map((r) => r.data.data).join('');
    assert.equal(text, synthText(FLOOD));
    assert.equal(done.data.totalTokens, FLOOD);
    assert.ok(c.text().some((l) => l.startsWith('Backpressure detected: ')));
    socket.disconnect();
  });

  test('ai:reconnect: the class reconnects after a lost connection and the stream continues there', async () => {
    const c = recordingConsole();
    const AIStreamingClient = AIStreamingClientOf(c);
    // The class as the seed's page would use it, with the seed's reconnection snippet
    // [003 L140-151] on each new connection, naming the previous connection's clientId.
    let previous = null;
    let current = null;
    const all = [];
    class Client extends AIStreamingClient {
      connect() {
        super.connect();
        const socket = this.socket;
        track(socket);
        socket.io.reconnection(false); // the class reconnects by itself, with a new socket
        all.push(recordEvents(socket));
        seedHandlers(socket, c);
        socket.on('ai:connected', (data) => { current = data.clientId; });
        socket.on('connect', () => {
          // Reconnect with previous session
          if (previous) socket.emit('ai:reconnect', { 
            previousClientId: previous 
          });
        });
        socket.on('disconnect', () => { previous = current; });
      }
    }
    const client = new Client(url);
    client.connect();
    const first = all[0];
    const ready = await first.until((r) => r.event === 'ai:connected');
    const marker = uniq('reconnect');
    const streamId = client.streamAI(marker, { model: 'gappy' });
    await first.until((r) => r.event === 'ai:token' && r.data.tokenCount >= 3);
    client.socket.io.engine.close(); // the network goes; the class reconnects after 1 s
    const ok = await c.waitFor(/^Reconnection successful$/, 10000);
    assert.ok(ok);
    const second = all[1];
    const success = await second.until((r) => r.event === 'ai:reconnect:success');
    checkShape(success);
    const ready2 = await second.until((r) => r.event === 'ai:connected');
    assert.equal(success.data.previousClientId, ready.data.clientId);
    assert.equal(success.data.newClientId, ready2.data.clientId);
    assert.notEqual(ready2.data.clientId, ready.data.clientId);
    const done = await second.until((r) => r.event === 'ai:done' && r.data.streamId === streamId, 15000);
    assert.equal(done.data.totalTokens, 12);
    assert.ok(second.of('streamId', streamId, 'ai:token').length > 0, 'the rest came on the new connection');
    assert.ok(second.seen.indexOf(success) < second.seen.indexOf(second.of('streamId', streamId, 'ai:token')[0]), 'ai:reconnect:success comes before the replay');
    // Every token exactly once across the two connections, in order.
    const tokens = [...first.of('streamId', streamId, 'ai:token'), ...second.of('streamId', streamId, 'ai:token')];
    assert.equal(tokens.map((r) => r.data.data).join(''), synthText(12));
    assert.equal(c.text().filter((l) => l.startsWith('Token: ')).map((l) => l.slice(7)).join(''), synthText(12));
    assert.deepEqual(c.text().filter((l) => l.startsWith('Previous client: ') || l.startsWith('New client: ')), [
      `Previous client: ${ready.data.clientId}`,
      `New client: ${ready2.data.clientId}`,
    ]);
    assert.equal((await mock.wait(marker, 'ended')).end, 'done', 'the provider was never interrupted');
    client.maxReconnectAttempts = 0;
    client.socket.disconnect();
  });

  test('the clientId of ai:connected after a recovered reconnect is the one ai:reconnect takes', async () => {
    // A page that keeps the latest clientId, as the seed's snippet needs for ai:reconnect.
    let clientId = null;
    const a = track(io(url, { transports: ['websocket'], reconnectionDelay: 100, reconnectionDelayMax: 200 }));
    a.on('ai:connected', (data) => { clientId = data.clientId; });
    const ea = recordEvents(a);
    const first = await ea.until((r) => r.event === 'ai:connected');
    a.emit('ai:stream', { prompt: uniq('kept'), model: 'gappy', streamId: 'kept' });
    await ea.until((r) => r.event === 'ai:token' && r.data.tokenCount >= 2);
    a.io.engine.close(); // socket.io-client reconnects and recovers
    const again = await ea.until((r) => r.event === 'ai:connected' && r !== first, 5000);
    assert.equal(a.recovered, true);
    assert.equal(again.data.clientId, first.data.clientId, 'the recovered connection is the same client');
    await ea.until((r) => r.event === 'ai:token' && r.data.tokenCount >= 4);
    a.io.reconnection(false);
    a.io.engine.close(); // lost for good: the page makes a new socket
    const b = track(io(url, { transports: ['websocket'], reconnection: false }));
    const eb = recordEvents(b);
    await eb.until((r) => r.event === 'ai:connected');
    b.emit('ai:reconnect', { previousClientId: clientId });
    const ok = await eb.until((r) => r.event === 'ai:reconnect:success' || r.event === 'ai:error');
    assert.equal(ok.event, 'ai:reconnect:success', JSON.stringify(ok.data));
    await eb.until((r) => r.event === 'ai:done' && r.data.streamId === 'kept', 10000);
    const text = [...ea.of('streamId', 'kept', 'ai:token'), ...eb.of('streamId', 'kept', 'ai:token')].map((r) => r.data.data).join('');
    assert.equal(text, synthText(12));
    b.disconnect();
  });

  test('the class exactly as printed (socket.io-client reconnecting too): every token once', async () => {
    const c = recordingConsole();
    const AIStreamingClient = AIStreamingClientOf(c);
    const client = new AIStreamingClient(url);
    client.connect();
    const first = client.socket;
    track(first);
    const ev = recordEvents(first);
    await ev.until((r) => r.event === 'ai:connected');
    const marker = uniq('verbatim');
    client.streamAI(marker, { model: 'paced' });
    await ev.until((r) => r.event === 'ai:token' && r.data.tokenCount >= 5);
    first.io.engine.close(); // the network goes
    // socket.io-client reconnects with connection state recovery; the class adds sockets of
    // its own (no previous clientId: they only say ai:connected).
    await c.waitFor(/^Stream completed: 80 tokens$/, 15000);
    assert.equal(first.recovered, true);
    assert.equal(c.text().filter((l) => l.startsWith('Token: ')).map((l) => l.slice(7)).join(''), synthText(80));
    assert.equal(c.text().filter((l) => l.startsWith('Stream completed')).length, 1);
    client.maxReconnectAttempts = 0;
    for (const so of sockets) so.io.reconnection(false);
    first.disconnect();
    client.socket.disconnect();
  });
});

describe('seed 003: the stream time cap (limits.stream_timeout)', () => {
  let mock;
  let s;
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        providers: mockProviders(mock.url),
        models: { slow: { provider: 'mockollama', upstream_model: 'synth:tokens=1000,rate=20' } },
        socketio: { namespaces: { '/ai': { dialects: ['ai'], auth: 'none' } } },
        limits: { stream_timeout: '1500ms' },
      },
    });
  });
  after(async () => {
    await s?.stop();
    await mock?.stop();
  });

  test('a stream over the cap ends with ai:stream:error, the provider stopped', async () => {
    const socket = io(`${s.wsUrl}/ai`, { reconnection: false });
    const ev = recordEvents(socket);
    const marker = uniq('timeout');
    const t0 = Date.now();
    socket.emit('ai:stream', { prompt: marker, model: 'slow', streamId: 'long' });
    const err = await ev.until((r) => r.event === 'ai:stream:error' || r.event === 'ai:done', 10000);
    assert.equal(err.event, 'ai:stream:error');
    checkShape(err);
    assert.equal(err.data.code, 'UPSTREAM_TIMEOUT');
    assert.match(err.data.error, /stream_timeout/);
    const took = Date.now() - t0;
    assert.ok(took >= 1400 && took < 5000, `${took} ms`);
    assert.ok(ev.of('streamId', 'long', 'ai:token').length > 5);
    assert.equal((await mock.wait(marker, 'aborted', 3000)).end, 'client_closed');
    socket.disconnect();
  });
});

describe('seed 003: ai:reconnect onto another worker', () => {
  let mock;
  let s;
  before(async () => {
    mock = await startMock();
    s = await startSluice({
      config: {
        workers: 2,
        log: { level: 'info' },
        providers: mockProviders(mock.url),
        models: { gappy: { provider: 'mockopenai', upstream_model: 'synth:tokens=12,rate=8' } },
        socketio: { namespaces: { '/ai': { dialects: ['ai'], auth: 'none' } } },
        resume: { window: '30s' },
        limits: { messages_per_minute: 100000 },
      },
    });
  });
  after(async () => {
    await s?.stop();
    await mock?.stop();
  });

  // The worker a connection landed on, from its session.ready log line.
  const workerOf = async (clientId) =>
    Number((await s.waitLog(new RegExp(`session\\.ready worker=(\\d+) [^\\n]*session=${clientId}`)))[1]);

  test('the stream moves across workers and goes on, every token once', async () => {
    const url = `${s.wsUrl}/ai`;
    let crossed = 0;
    // Connections spread over the workers (SO_REUSEPORT): try until one reconnect crosses.
    for (let attempt = 0; attempt < 12 && crossed === 0; attempt++) {
      const a = io(url, { forceNew: true, reconnection: false, transports: ['websocket'] });
      const ea = recordEvents(a);
      const ra = await ea.until((r) => r.event === 'ai:connected');
      a.emit('ai:stream', { prompt: uniq('cross'), model: 'gappy', streamId: 'x1' });
      await ea.until((r) => r.event === 'ai:token' && r.data.tokenCount >= 3);
      a.io.engine.close();
      const b = io(url, { forceNew: true, reconnection: false, transports: ['websocket'] });
      const eb = recordEvents(b);
      const rb = await eb.until((r) => r.event === 'ai:connected');
      b.emit('ai:reconnect', { previousClientId: ra.data.clientId });
      const ok = await eb.until((r) => r.event === 'ai:reconnect:success' || r.event === 'ai:error');
      assert.equal(ok.event, 'ai:reconnect:success', JSON.stringify(ok.data));
      const done = await eb.until((r) => r.event === 'ai:done' || r.event === 'ai:stream:error', 10000);
      assert.equal(done.event, 'ai:done');
      const text = [...ea.of('streamId', 'x1', 'ai:token'), ...eb.of('streamId', 'x1', 'ai:token')].map((r) => r.data.data).join('');
      assert.equal(text, synthText(12));
      if ((await workerOf(ra.data.clientId)) !== (await workerOf(rb.data.clientId))) crossed++;
      b.disconnect();
    }
    assert.equal(crossed, 1, 'a reconnect landed on the other worker');
  });
});
