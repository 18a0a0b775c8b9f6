#!/bin/sh
# test_e2e_serve.sh — many users at once on `mote --demo` (4 slots):
#   1. 50 mixed requests (chat and completions, streamed or not, seeded
#      sampling, some cancelled mid-stream) from 8 concurrent keep-alive
#      clients: every finished answer is well-formed (JSON shape, SSE framing,
#      [DONE], usage arithmetic, chat's cached_tokens) and its text equals the same request run
#      alone (same seed, same output batched or not); afterwards /slots shows
#      every slot idle, an empty queue, and that passes carried several users;
#   2. a 1-slot server with a queue of 1: the third concurrent request gets
#      429 with Retry-After; cancelling the running stream frees the slot for
#      the next request;
#   3. SIGTERM exits 0 (under `make asan` this includes LeakSanitizer's
#      verdict: no leak).
. tests/e2e/lib.sh
if ! command -v node >/dev/null 2>&1; then
    skip "serving end-to-end" "node is not installed"
    exit 0
fi
if ! e2e_start --demo -np 4 --queue 8; then
    ok 1 "server starts"
    exit 1
fi
ok 0 "server starts on port $E2E_PORT (4 slots, queue 8)"
cat >"$E2E_TMP/serve.mjs" <<'JS'
import http from 'node:http';
const base = new URL(process.env.MOTE_BASE);
let n = Number(process.env.TAP_START), failed = 0;
const ok = (c, name) => { n++; if (!c) failed++; console.log(`${c ? '' : 'not '}ok ${n} - ${name}`); };

// POST; onChunk may return true to abort the request (client gone)
function post(agent, path, body, onChunk) {
    return new Promise((resolve) => {
        const data = JSON.stringify(body);
        let aborted = false;
        const req = http.request({ host: base.hostname, port: base.port, path, method: 'POST', agent,
            headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } }, res => {
            let buf = '';
            res.setEncoding('utf8');
            res.on('data', d => {
                buf += d;
                if (onChunk && !aborted && onChunk(buf)) { aborted = true; req.destroy(); resolve({ aborted: true }); }
            });
            res.on('end', () => { if (!aborted) resolve({ status: res.statusCode, headers: res.headers, body: buf }); });
            res.on('error', () => { if (!aborted) resolve({ error: true }); });
        });
        req.on('error', e => { if (!aborted) resolve({ error: String(e) }); });
        req.end(data);
    });
}
const get = (path) => new Promise((resolve) => {
    http.get({ host: base.hostname, port: base.port, path }, res => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', d => { buf += d; });
        res.on('end', () => resolve({ status: res.statusCode, body: buf }));
    }).on('error', e => resolve({ error: String(e) }));
});

// Request i: chat or completion, streamed or not, seeded sampling; every
// 7th one (streamed) is cancelled after its first content chunk.
const spec = (i) => {
    const chat = i % 2 === 0, cancel = i % 7 === 3, stream = cancel || i % 3 !== 0;
    const common = { model: 'mote-demo', max_tokens: 8 + (i * 13) % 40, temperature: i % 4 === 0 ? 0 : 0.9,
                     seed: 1000 + i };
    const body = chat
        ? { ...common, messages: [{ role: 'user', content: `User ${i % 5} asks question ${i}` }] }
        : { ...common, prompt: `Completion ${i}: once upon a time` };
    if (stream) { body.stream = true; if (i % 2 === 1) body.stream_options = { include_usage: true }; }
    return { i, chat, stream, cancel, body, path: chat ? '/v1/chat/completions' : '/v1/completions' };
};
const N = 50;
const specs = [...Array(N).keys()].map(spec);

// Parse and check one finished answer; returns its text or null (with a note).
function check(s, r) {
    const bad = (why) => { console.log(`# request ${s.i}: ${why}`); return null; };
    if (r.status !== 200) return bad(`status ${r.status} ${r.body}`);
    if (!s.stream) {
        let o;
        try { o = JSON.parse(r.body); } catch (e) { return bad('invalid JSON'); }
        const c = o.choices && o.choices[0], u = o.usage;
        if (o.object !== (s.chat ? 'chat.completion' : 'text_completion') || !o.id || !c) return bad('shape');
        if (!['stop', 'length'].includes(c.finish_reason)) return bad(`finish ${c.finish_reason}`);
        if (!u || u.total_tokens !== u.prompt_tokens + u.completion_tokens || u.completion_tokens > s.body.max_tokens ||
            (s.chat && typeof (u.prompt_tokens_details || {}).cached_tokens !== 'number'))
            return bad(`usage ${JSON.stringify(u)}`);
        return s.chat ? c.message.content : c.text;
    }
    if (!/^text\/event-stream/.test(r.headers['content-type'] || '')) return bad('content-type');
    const events = r.body.split('\n\n').filter(e => e.length);
    if (events[events.length - 1] !== 'data: [DONE]') return bad('no [DONE] at the end');
    let text = '', finish = null, usage = null, id = null;
    for (const e of events.slice(0, -1)) {
        if (e.startsWith(':')) continue;   // ping comment
        if (!e.startsWith('data: ')) return bad(`bad event ${e.slice(0, 40)}`);
        let o;
        try { o = JSON.parse(e.slice(6)); } catch (x) { return bad('invalid JSON event'); }
        if (id && o.id !== id) return bad('ids differ'); id = o.id;
        if (o.object !== (s.chat ? 'chat.completion.chunk' : 'text_completion')) return bad(`object ${o.object}`);
        if (o.usage) usage = o.usage;
        if (!o.choices.length) continue;
        const c = o.choices[0];
        text += s.chat ? (c.delta.content || '') : c.text;
        if (c.finish_reason) { if (finish) return bad('two finish chunks'); finish = c.finish_reason; }
    }
    if (!['stop', 'length'].includes(finish)) return bad(`finish ${finish}`);
    if (s.body.stream_options && (!usage || usage.total_tokens !== usage.prompt_tokens + usage.completion_tokens))
        return bad('usage chunk');
    return text;
}

// references: each request alone, not streamed, one at a time
const refAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const ref = [];
for (const s of specs) {
    const r = await post(refAgent, s.path, { ...s.body, stream: undefined, stream_options: undefined });
    const o = r.status === 200 ? JSON.parse(r.body) : null;
    ref.push(o ? (s.chat ? o.choices[0].message.content : o.choices[0].text) : null);
}
refAgent.destroy();
ok(ref.every(t => typeof t === 'string') && new Set(ref).size > 40, 'reference answers: 50 requests alone');

// 8 clients, each on its own keep-alive connection, take the requests in turn
let next = 0, good = 0, cancelled = 0, wrong = 0, malformed = 0, refused = 0;
const clients = [...Array(8).keys()].map(async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let k = next++; k < N; k = next++) {
        const s = specs[k];
        const r = await post(agent, s.path, s.body,
            s.cancel ? (buf) => /"(content|text)":"[^"]/.test(buf) : null);
        if (r.aborted) { cancelled++; continue; }
        if (r.status === 429) { refused++; continue; }
        const text = check(s, r);
        if (text === null) { malformed++; continue; }
        if (text === ref[k]) good++;
        else { wrong++; console.log(`# request ${k}: '${text}' != alone '${ref[k]}'`); }
    }
    agent.destroy();
});
const t0 = Date.now();
await Promise.all(clients);
const expectCancel = specs.filter(s => s.cancel).length;
ok(cancelled === expectCancel, `${cancelled} requests cancelled mid-stream by their clients`);
ok(malformed === 0 && refused === 0, `every finished answer well-formed (${malformed} malformed, ${refused} refused)`);
ok(good === N - expectCancel && wrong === 0,
   `${good}/${N - expectCancel} answers equal the same request alone (seeded sampling, batched) in ${Date.now() - t0} ms`);

// the slots are free again, and passes carried several users
let st, idle = false;
for (let k = 0; k < 100 && !idle; k++) {
    st = await get('/slots');
    const m = JSON.parse(st.body).data[0];
    idle = m.slots.length === 4 && m.slots.every(x => x.state === 'idle') && m.queue.length === 0;
    if (!idle) await new Promise(r => setTimeout(r, 50));
}
const m = JSON.parse(st.body).data[0];
ok(idle, `/slots: all 4 slots idle, queue empty afterwards (cancelled ones freed their slot)`);
ok(m.counters.batched_steps > 0 && m.counters.max_sequences_per_step >= 2,
   `forward passes shared by several users (${m.counters.batched_steps} of ${m.counters.steps}, up to ${m.counters.max_sequences_per_step} at once)`);
ok(!/once upon/.test(st.body), '/slots shows no prompt text by default');
process.exit(failed ? 1 : 0);
JS
MOTE_BASE=$E2E_BASE TAP_START=$n timeout 120 node "$E2E_TMP/serve.mjs"
rc=$?
n=$(($n + 7))
[ $rc = 0 ]; ok $? "serving script exits 0 ($rc)"
grep -q 'waits for a slot' "$E2E_LOG" && ! grep -q '" 429 ' "$E2E_LOG"
ok $? "8 clients on 4 slots + queue 8: requests queued (logged with their position), none refused"
e2e_stop
[ "$E2E_RC" = 0 ]; ok $? "SIGTERM: exits 0 ($E2E_RC)"
if grep -q 'LeakSanitizer\|AddressSanitizer\|runtime error' "$E2E_LOG"; then
    sed -n '/Sanitizer\|runtime error/,+12p' "$E2E_LOG" | head -40 | sed 's/^/#   /'
    ok 1 "no sanitizer report"
else
    ok 0 "no sanitizer report"
fi

# ---- 2. one slot, a queue of one: 429 + Retry-After; cancel frees the slot
if ! e2e_start --demo -np 1 --queue 1; then
    ok 1 "1-slot server starts"
    exit 1
fi
ok 0 "1-slot server with a queue of 1 starts"
cat >"$E2E_TMP/busy.mjs" <<'JS'
import http from 'node:http';
const base = new URL(process.env.MOTE_BASE);
let n = Number(process.env.TAP_START), failed = 0;
const ok = (c, name) => { n++; if (!c) failed++; console.log(`${c ? '' : 'not '}ok ${n} - ${name}`); };
const LONG = { model: 'mote-demo', prompt: 'A long story:', max_tokens: 1900, stream: true };
// start a request; resolves at its first body bytes (or its end)
function open(body) {
    return new Promise((resolve) => {
        const data = JSON.stringify(body);
        const req = http.request({ host: base.hostname, port: base.port, path: '/v1/completions', method: 'POST',
            headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } }, res => {
            let buf = '', told = false;
            res.setEncoding('utf8');
            res.on('data', d => { buf += d; if (!told) { told = true; resolve({ req, res, status: res.statusCode, first: buf }); } });
            res.on('end', () => { if (!told) resolve({ req, res, status: res.statusCode, first: buf }); });
        });
        req.on('error', () => {});
        req.end(data);
    });
}
const a = await open(LONG);                       // runs
const b = open({ ...LONG, prompt: 'Queued' });    // waits in the queue (no bytes until it runs)
await new Promise(r => setTimeout(r, 300));
const c = await open({ ...LONG, prompt: 'Refused' });
let err = {};
try { err = JSON.parse(c.first); } catch (e) {}
ok(a.status === 200 && c.status === 429 && /^\d+$/.test(c.res.headers['retry-after'] || '') && err.error &&
   err.error.type, `third request with the slot and queue full: 429, Retry-After ${c.res.headers['retry-after']}`);
a.req.destroy();                                  // the client goes away
const t0 = Date.now();
const rb = await b;
ok(rb.status === 200, `the running stream cancelled: the queued request gets the slot (${Date.now() - t0} ms)`);
rb.req.destroy();
await new Promise(r => setTimeout(r, 200));
const d = await new Promise((resolve) => {
    const data = JSON.stringify({ model: 'mote-demo', prompt: 'After', max_tokens: 4 });
    const req = http.request({ host: base.hostname, port: base.port, path: '/v1/completions', method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } }, res => {
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', x => { buf += x; });
        res.on('end', () => resolve({ status: res.statusCode, body: buf }));
    });
    req.on('error', e => resolve({ error: String(e) }));
    req.end(data);
});
let o = {};
try { o = JSON.parse(d.body); } catch (e) {}
ok(d.status === 200 && o.usage && o.usage.completion_tokens === 4, 'both cancelled: a new request runs at once');
process.exit(failed ? 1 : 0);
JS
MOTE_BASE=$E2E_BASE TAP_START=$n timeout 60 node "$E2E_TMP/busy.mjs"
rc=$?
n=$(($n + 3))
[ $rc = 0 ]; ok $? "busy script exits 0 ($rc)"
e2e_stop
[ "$E2E_RC" = 0 ]; ok $? "SIGTERM: exits 0 ($E2E_RC)"
