// tests/e2e/openai_sdk.mjs — drive a running mote with the official `openai`
// npm package. Env: MOTE_BASE (http://127.0.0.1:PORT), MOTE_KEY, NPM_PREFIX
// (where openai is installed), TAP_START (number of the first check - 1).
// Prints TAP lines; exits 1 when a check failed.
import { createRequire } from 'node:module';

const require = createRequire(process.env.NPM_PREFIX + '/');
const mod = require('openai');
const OpenAI = mod.OpenAI || mod.default || mod;
const base = process.env.MOTE_BASE + '/v1';
const key = process.env.MOTE_KEY;
let n = Number(process.env.TAP_START || 0), failed = 0;

function ok(cond, name) {
    n++;
    if (!cond) failed++;
    console.log(`${cond ? '' : 'not '}ok ${n} - ${name}`);
}
async function check(name, fn) {
    try {
        ok(await fn(), name);
    } catch (e) {
        console.log(`# ${name}: ${e && e.constructor && e.constructor.name}: ${e && e.message}`);
        ok(false, name);
    }
}
async function expectError(name, cls, fn, more = () => true) {
    try {
        await fn();
        console.log(`# ${name}: no error`);
        ok(false, name);
    } catch (e) {
        const good = e instanceof cls && more(e);
        if (!good) console.log(`# ${name}: got ${e && e.constructor && e.constructor.name} ${e && e.status}: ${e && e.message}`);
        ok(good, name);
    }
}

const client = new OpenAI({ baseURL: base, apiKey: key, maxRetries: 0, timeout: 20000 });
const model = 'mote-demo';
const messages = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Say hi' }];

await check('models.list() includes mote-demo', async () => {
    const page = await client.models.list();
    return page.data.some(m => m.id === model && m.object === 'model');
});
await check('models.retrieve(mote-demo) with context_length', async () => {
    const m = await client.models.retrieve(model);
    return m.id === model && m.context_length === 2048 && /smoke-test/.test(m.owned_by);
});

let full = '';
await check('chat.completions.create (non-streaming)', async () => {
    const r = await client.chat.completions.create({ model, messages, max_tokens: 6 });
    full = r.choices[0].message.content;
    return r.object === 'chat.completion' && r.choices[0].message.role === 'assistant' &&
        typeof full === 'string' && full.length > 0 && r.choices[0].finish_reason === 'length' &&
        r.usage.completion_tokens === 6 && r.usage.total_tokens === r.usage.prompt_tokens + 6;
});
await check('chat.completions.create stream: role first, deltas, finish, usage chunk', async () => {
    const stream = await client.chat.completions.create({
        model, messages, max_tokens: 6, stream: true, stream_options: { include_usage: true } });
    let text = '', first = null, finish = null, usage = null, count = 0;
    for await (const c of stream) {
        count++;
        if (!first) first = c;
        if (c.choices.length && c.choices[0].delta.content) text += c.choices[0].delta.content;
        if (c.choices.length && c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
        if (c.usage) usage = c.usage;
    }
    if (text !== full) console.log(`# streamed '${text}' vs '${full}'`);
    return first.choices[0].delta.role === 'assistant' && finish === 'length' && usage &&
        usage.completion_tokens === 6 && text === full && count >= 3;
});
await check('chat stream helper (client.chat.completions.stream) finalChatCompletion', async () => {
    const s = client.chat.completions.stream({ model, messages, max_tokens: 6 });
    const final = await s.finalChatCompletion();
    return final.choices[0].message.content === full;
});
await check('completions.create (non-streaming, 2 prompts)', async () => {
    const r = await client.completions.create({ model, prompt: ['Once upon a time', 'Hello'], max_tokens: 4 });
    return r.object === 'text_completion' && r.choices.length === 2 && r.choices[1].index === 1 &&
        r.usage.completion_tokens === 8;
});
await check('completions.create stream', async () => {
    const stream = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 5, stream: true });
    let text = '', finish = null;
    for await (const c of stream) {
        text += c.choices[0].text;
        if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
    }
    const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 5 });
    return finish === 'length' && text === r.choices[0].text;
});
await check('an aborted stream leaves the server serving', async () => {
    const stream = await client.chat.completions.create({ model, messages, max_tokens: 1000, stream: true });
    let k = 0;
    for await (const c of stream) { void c; if (++k === 3) break; }   // break aborts the request
    const r = await client.chat.completions.create({ model, messages, max_tokens: 2 });
    return r.usage.completion_tokens === 2;
});

await expectError('models.retrieve(unknown): NotFoundError', OpenAI.NotFoundError,
    () => client.models.retrieve('nope'), e => e.status === 404 && e.code === 'model_not_found');
await expectError('chat with an unknown model: NotFoundError', OpenAI.NotFoundError,
    () => client.chat.completions.create({ model: 'nope', messages }));
await expectError('wrong API key: AuthenticationError', OpenAI.AuthenticationError,
    () => new OpenAI({ baseURL: base, apiKey: 'wrong', maxRetries: 0 }).models.list(), e => e.status === 401);
await expectError('temperature 5: BadRequestError naming the param', OpenAI.BadRequestError,
    () => client.chat.completions.create({ model, messages, temperature: 5 }), e => e.param === 'temperature');
await expectError('prompt over the context: BadRequestError context_length_exceeded', OpenAI.BadRequestError,
    () => client.completions.create({ model, prompt: Array(3000).fill(72) }), e => e.code === 'context_length_exceeded');
await expectError('embeddings: BadRequestError', OpenAI.BadRequestError,
    () => client.embeddings.create({ model, input: 'x' }));

process.exit(failed ? 1 : 0);
