// Every protocol the test page speaks, as a table: where it lives, how a chat request, a
// cancel and the server's events look in it (docs/protocol.md; ../shared/DIALECTS.md for the
// seeds' dialects). app.js renders the normalized events read() returns:
//
//   {kind: 'start', id, model?, provider?}
//   {kind: 'progress', id, text}                  a step, shown as the answer's status
//   {kind: 'delta', id, text?, tool?, running?}   running: {tokens, cost} so far
//   {kind: 'done', id, model?, provider?, usage?: {input, output, estimated}, cost?,
//          latencyMs?, ttftMs?, finishReason?, conversation?}
//   {kind: 'cancelled', id, usage?}
//   {kind: 'error', id, code, detail?, message, retryable?, retryAfterMs?}
//   {kind: 'notice', id, text}                    worth showing, changes nothing
//   null: nothing to render (the event log still shows it)
//
// id is the stream's id as the protocol names it; null when the event names none.

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function errorOf(id, d, codeField = 'code') {
  return {
    kind: 'error',
    id,
    code: d[codeField] || 'ERROR',
    detail: d.detail,
    message: d.error || d.message || '',
    retryable: d.retryable,
    retryAfterMs: num(d.retry_after_ms),
  };
}

// The target a request names, from the select's value: model, agent, provider or default.
function modelFields(target, { agentField = 'agent', agents = true } = {}) {
  if (!target || target.kind === 'default') return {};
  if (target.kind === 'agent' && agents) return { [agentField]: target.name };
  return { model: target.name };
}

// Option groups of the target select from a native `ready` (models, agents, default_model).
function modelsGroup(cat) {
  const models = cat && Array.isArray(cat.models) ? cat.models : [];
  return {
    label: 'Models',
    options: models.map((m) => ({ value: `model:${m.id}`, text: m.provider ? `${m.id} (${m.provider})` : m.id })),
  };
}

function agentsGroup(cat) {
  const agents = cat && Array.isArray(cat.agents) ? cat.agents : [];
  return {
    label: 'Agents',
    options: agents.map((a) => ({ value: `agent:${a.id}`, text: a.model ? `${a.id} → ${a.model}` : a.id })),
  };
}

const DEFAULT_GROUP = { label: 'Server', options: [{ value: 'default:', text: 'the server\'s default model' }] };

// --- native, over a WebSocket or as Socket.IO events ------------------------------------

function nativeRead(name, d) {
  if (!d || typeof d !== 'object') return null;
  const id = d.id === undefined ? null : d.id;
  const base = { id, seq: num(d.seq) };
  switch (name) {
    case 'start':
      return { ...base, kind: 'start', model: d.model, provider: d.provider, epoch: d.epoch };
    case 'progress':
      return { ...base, kind: 'progress', step: d.step, detail: d.detail };
    case 'delta':
      return { ...base, kind: 'delta', text: typeof d.text === 'string' ? d.text : undefined, tool: d.tool_call };
    case 'done':
      return {
        ...base,
        kind: 'done',
        model: d.model,
        provider: d.provider,
        usage: d.usage ? { input: d.usage.input_tokens, output: d.usage.output_tokens, estimated: d.usage.estimated } : undefined,
        cost: num(d.cost_usd),
        latencyMs: num(d.latency_ms),
        ttftMs: num(d.ttft_ms),
        finishReason: d.finish_reason,
      };
    case 'cancelled':
      return {
        ...base,
        kind: 'cancelled',
        usage: d.usage ? { input: d.usage.input_tokens, output: d.usage.output_tokens, estimated: d.usage.estimated } : undefined,
      };
    case 'error':
      return { ...base, ...errorOf(id, d), message: d.message || '' };
    default:
      return null;
  }
}

const native = {
  label: 'native: WebSocket /ws',
  transport: 'ws',
  path: '/ws',
  readyOn: 'ready',
  catalogue: 'ready', // its own ready lists the models and agents
  history: 'messages',
  resume: true,
  help: 'sluice\'s own protocol: JSON messages typed by "type" (chat, cancel, resume, ping). Several answers may run at once; each event has the stream id and a seq.',
  example: { name: '', data: { type: 'chat', id: 'raw-1', model: 'demo', messages: [{ role: 'user', content: 'Hello' }] } },
  targets: (cat) => [modelsGroup(cat), agentsGroup(cat)],
  request: ({ id, messages, target }) => ({ name: 'chat', data: { type: 'chat', id, messages, ...modelFields(target) } }),
  cancel: (id) => ({ name: 'cancel', data: { type: 'cancel', id } }),
  resumeMsg: (t) => ({ name: 'resume', data: { type: 'resume', id: t.id, after: t.seq, epoch: t.epoch } }),
  read: nativeRead,
};

const sluice = {
  ...native,
  label: 'native over Socket.IO: namespace /sluice',
  transport: 'sio',
  path: '/socket.io/',
  namespace: '/sluice',
  help: 'The native protocol as Socket.IO events: the event\'s name is the message type (chat, cancel, resume, ping), its argument the message.',
  example: { name: 'chat', data: { id: 'raw-1', model: 'demo', messages: [{ role: 'user', content: 'Hello' }] } },
  request: ({ id, messages, target }) => ({ name: 'chat', data: { id, messages, ...modelFields(target) } }),
  cancel: (id) => ({ name: 'cancel', data: { id } }),
  resumeMsg: (t) => ({ name: 'resume', data: { id: t.id, after: t.seq, epoch: t.epoch } }),
};

// --- the seeds' dialects ------------------------------------------------------------------

const chat = {
  label: 'chat (seed 000): Socket.IO namespace /',
  transport: 'sio',
  path: '/socket.io/',
  namespace: '/',
  readyOn: 'connect',
  catalogue: 'probe',
  history: 'messages',
  help: 'Seed 000: chat {model, messages, requestId} → chat:start, chat:chunk, chat:complete or chat:error; abort {requestId} cancels. Token in the CONNECT payload.',
  example: { name: 'chat', data: { requestId: 'raw-1', model: 'demo', messages: [{ role: 'user', content: 'Hello' }] } },
  targets: (cat) => [modelsGroup(cat), agentsGroup(cat)],
  request: ({ id, messages, target }) => ({ name: 'chat', data: { requestId: id, messages, ...modelFields(target) } }),
  cancel: (id) => ({ name: 'abort', data: { requestId: id } }),
  read(name, d) {
    if (!d || typeof d !== 'object') return null;
    const id = d.requestId === undefined ? null : d.requestId;
    switch (name) {
      case 'chat:start':
        return { kind: 'start', id, model: d.model, provider: d.provider };
      case 'chat:chunk':
        if (d.toolCall) return { kind: 'delta', id, tool: d.toolCall };
        return d.content ? { kind: 'delta', id, text: d.content } : null;
      case 'chat:complete':
        return {
          kind: 'done',
          id,
          model: d.model,
          provider: d.provider,
          usage: d.usage ? { input: d.usage.promptTokens, output: d.usage.completionTokens, estimated: d.usage.estimated } : undefined,
          cost: num(d.cost_usd),
          latencyMs: num(d.latencyMs),
          finishReason: d.finishReason,
        };
      case 'chat:error':
        return d.code === 'CANCELLED' ? { kind: 'cancelled', id } : errorOf(id, d);
      case 'error':
        return errorOf(null, d);
      default:
        return null;
    }
  },
};

const stream = {
  label: 'stream (seed 001): Socket.IO namespace /stream',
  transport: 'sio',
  path: '/socket.io/',
  namespace: '/stream',
  readyOn: 'connect',
  catalogue: 'probe',
  history: 'history',
  serverIds: true, // sessionId is made by sluice: the first event of an answer names it
  help: 'Seed 001: stream_request {message, history, agentRole} → stream_start, stream_chunk (running tokens and cost), stream_complete or stream_error. The seed has no cancel message: an answer runs to its end.',
  example: { name: 'stream_request', data: { message: 'Hello', agentRole: 'analyst' } },
  targets: (cat) => [agentsGroup(cat), modelsGroup(cat)],
  request: ({ text, history, target }) => ({
    name: 'stream_request',
    data: { message: text, history, ...modelFields(target, { agentField: 'agentRole' }) },
  }),
  cancel: null,
  read(name, d) {
    if (!d || typeof d !== 'object') return null;
    const id = d.sessionId === undefined ? null : d.sessionId;
    switch (name) {
      case 'stream_start':
        return { kind: 'start', id, model: d.model, provider: d.provider };
      case 'stream_chunk':
        return {
          kind: 'delta',
          id,
          text: d.chunk || undefined,
          tool: d.toolCall,
          running: { tokens: num(d.tokensUsed), cost: num(d.estimatedCost) },
        };
      case 'stream_complete':
        return {
          kind: 'done',
          id,
          model: d.model,
          usage: { input: num(d.inputTokens), output: num(d.outputTokens) },
          cost: num(d.totalCost),
          latencyMs: num(d.latencyMs),
          finishReason: d.finishReason,
        };
      case 'stream_error':
        return d.code === 'CANCELLED' ? { kind: 'cancelled', id } : errorOf(id, d);
      default:
        return null;
    }
  },
};

const WS_CHAT_STEPS = { starting: 'starting…', agent_routing: 'routing…', generating: 'generating…' };

const wsChat = {
  label: 'ws-chat (seed 002): WebSocket /ws/chat',
  transport: 'ws',
  path: '/ws/chat',
  readyOn: 'auth_success',
  catalogue: 'none', // always default_model
  history: 'server', // sluice remembers the conversation by session_id
  serverIds: true,
  help: 'Seed 002: {"type":"message", message, session_id} → progress, token, complete or error. sluice remembers the conversation (the page sends only the new message and the session_id); the model is the server\'s default_model. Cancel is sluice\'s own {"type":"cancel", stream_id} (the seed has none).',
  example: { name: '', data: { type: 'message', message: 'Hello', session_id: null } },
  targets: () => [{ label: 'Server', options: [{ value: 'default:', text: 'the server\'s default model (ws-chat has no choice)' }] }],
  request: ({ text, conversation }) => ({ name: 'message', data: { type: 'message', message: text, session_id: conversation || null } }),
  cancel: (id) => ({ name: 'cancel', data: { type: 'cancel', stream_id: id } }),
  read(name, d) {
    if (!d || typeof d !== 'object') return null;
    const id = d.stream_id === undefined ? null : d.stream_id;
    switch (name) {
      case 'progress':
        if (d.step === 'starting') return { kind: 'start', id, model: d.model };
        return { kind: 'progress', id, text: d.message || WS_CHAT_STEPS[d.step] || d.step };
      case 'token':
        return { kind: 'delta', id, text: d.token };
      case 'complete': {
        const m = d.metadata || {};
        const u = m.usage || {};
        return {
          kind: 'done',
          id,
          model: m.model || m.agent,
          usage: { input: num(u.input_tokens), output: num(u.output_tokens) },
          cost: num(m.cost_usd),
          latencyMs: num(m.latency_ms),
          finishReason: m.finish_reason,
          conversation: d.session_id,
        };
      }
      case 'error':
        if (d.detail === 'CANCELLED') return { kind: 'cancelled', id };
        return errorOf(id, d);
      case 'auth_error':
        return errorOf(null, { ...d, error: d.error || d.message, code: d.code || 'AUTH_FAILED' });
      default:
        return null;
    }
  },
};

const ai = {
  label: 'ai (seed 003): Socket.IO namespace /ai',
  transport: 'sio',
  path: '/socket.io/',
  namespace: '/ai',
  readyOn: 'ai:connected',
  catalogue: 'probe',
  history: 'none', // ai:stream carries one prompt
  help: 'Seed 003: ai:stream {prompt, model, streamId} → ai:stream:start, ai:token, ai:stream:complete, ai:done; ai:cancel {streamId} → ai:stream:cancelled. Each prompt stands alone (the seed sends no history).',
  example: { name: 'ai:stream', data: { prompt: 'Hello', model: 'demo' } },
  targets: (cat) => [modelsGroup(cat)],
  request: ({ id, text, target }) => ({ name: 'ai:stream', data: { streamId: id, prompt: text, ...modelFields(target, { agents: false }) } }),
  cancel: (id) => ({ name: 'ai:cancel', data: { streamId: id } }),
  read(name, d) {
    if (!d || typeof d !== 'object') return null;
    const id = d.streamId === undefined ? null : d.streamId;
    switch (name) {
      case 'ai:stream:start':
        return { kind: 'start', id, model: d.model, provider: d.provider };
      case 'ai:token':
        return { kind: 'delta', id, text: d.data || undefined, tool: d.toolCall };
      case 'ai:done':
        return {
          kind: 'done',
          id,
          model: d.model,
          usage: d.usage ? { input: d.usage.inputTokens, output: d.usage.outputTokens, estimated: d.usage.estimated } : undefined,
          cost: num(d.cost_usd),
          latencyMs: num(d.duration),
        };
      case 'ai:stream:cancelled':
        return { kind: 'cancelled', id };
      case 'ai:stream:error':
        return errorOf(id, d);
      case 'ai:error':
        return errorOf(null, d);
      case 'ai:backpressure':
        return { kind: 'notice', id: null, text: `backpressure: ${d.message || 'the server paused the provider'}` };
      default:
        return null;
    }
  },
};

// Seed 004 names a provider; the stream runs on its default_model unless a model is given.
function providersGroup(cat) {
  const models = cat && Array.isArray(cat.models) ? cat.models : [];
  const names = [...new Set(models.map((m) => m.provider).filter(Boolean))];
  return {
    label: 'Providers (their default model)',
    options: names.map((p) => ({ value: `provider:${p}`, text: p })),
  };
}

const llm = {
  label: 'llm (seed 004): Socket.IO namespace /',
  transport: 'sio',
  path: '/socket.io/',
  namespace: '/',
  readyOn: 'connect',
  catalogue: 'probe',
  history: 'messages',
  help: 'Seed 004: llm:chat:stream {sessionId, provider, messages} → acknowledged, llm:stream:start, llm:stream:token, llm:stream:done or llm:stream:error; llm:stream:cancel {sessionId}. Token in the CONNECT payload.',
  example: { name: 'llm:chat:stream', data: { sessionId: 'raw-1', provider: 'demo', messages: [{ role: 'user', content: 'Hello' }] } },
  targets: (cat) => [providersGroup(cat), modelsGroup(cat)],
  request({ id, messages, target, catalogue }) {
    const data = { sessionId: id, messages };
    if (target && target.kind === 'provider') data.provider = target.name;
    if (target && target.kind === 'model') {
      data.model = target.name;
      const m = catalogue && Array.isArray(catalogue.models) && catalogue.models.find((x) => x.id === target.name);
      if (m && m.provider) data.provider = m.provider;
    }
    return { name: 'llm:chat:stream', data };
  },
  cancel: (id) => ({ name: 'llm:stream:cancel', data: { sessionId: id } }),
  read(name, d) {
    if (!d || typeof d !== 'object') return null;
    const id = d.sessionId === undefined ? null : d.sessionId;
    switch (name) {
      case 'llm:chat:stream:acknowledged':
        return { kind: 'progress', id, text: 'accepted…' };
      case 'llm:stream:start':
        return { kind: 'start', id, model: d.model, provider: d.provider };
      case 'llm:stream:token':
        return { kind: 'delta', id, text: d.token || undefined, tool: d.toolCall };
      case 'llm:stream:done':
        return {
          kind: 'done',
          id,
          model: d.model,
          provider: d.provider,
          usage: d.usage ? { input: d.usage.inputTokens, output: d.usage.outputTokens, estimated: d.usage.estimated } : undefined,
          cost: num(d.cost_usd),
          latencyMs: num(d.latencyMs),
          finishReason: d.finishReason,
        };
      case 'llm:stream:cancel:acknowledged':
        return d.status === 'not_found' ? { kind: 'notice', id, text: 'the server had no such stream to cancel' } : null;
      case 'llm:stream:cancelled':
        return { kind: 'cancelled', id };
      case 'llm:stream:error':
        return errorOf(id, d);
      default:
        return null;
    }
  },
};

export const PROTOCOLS = { native, sluice, chat, stream, 'ws-chat': wsChat, ai, llm };
export const DEFAULT_GROUPS = [DEFAULT_GROUP];
