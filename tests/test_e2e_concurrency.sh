#!/bin/sh
# test_e2e_concurrency.sh — 20 clients, each on its own keep-alive
# connection, send 3 requests each while a long streamed generation runs on
# `mote --demo`; every answer must equal the one the same prompt gets alone
# (greedy decoding is deterministic), each client must use one connection,
# /health must stay fast, and the long generation must finish intact.
. tests/e2e/lib.sh
if ! command -v node >/dev/null 2>&1; then
    skip "concurrency end-to-end" "node is not installed"
    exit 0
fi
if ! e2e_start --demo --queue 32; then
    ok 1 "server starts"
    exit 1
fi
ok 0 "server starts on port $E2E_PORT"
cat >"$E2E_TMP/conc.mjs" <<'JS'
import http from 'node:http';
const base = new URL(process.env.MOTE_BASE);
let n = Number(process.env.TAP_START), failed = 0;
const ok = (c, name) => { n++; if (!c) failed++; console.log(`${c ? '' : 'not '}ok ${n} - ${name}`); };

function post(agent, path, body, onChunk) {
    return new Promise((resolve, reject) => {
        const data = JSON.stringify(body);
        const req = http.request({ host: base.hostname, port: base.port, path, method: 'POST', agent,
            headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } }, res => {
            let buf = '';
            res.setEncoding('utf8');
            res.on('data', d => { buf += d; if (onChunk) onChunk(d); });
            res.on('end', () => resolve({ status: res.statusCode, body: buf, socket: req.socket }));
        });
        req.on('error', reject);
        req.end(data);
    });
}
function get(agent, path) {
    return new Promise((resolve, reject) => {
        const t0 = Date.now();
        http.get({ host: base.hostname, port: base.port, path, agent }, res => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode, ms: Date.now() - t0 }));
        }).on('error', reject);
    });
}
const cmpl = (i) => ({ model: 'mote-demo', prompt: `Client ${i} asks about the number ${i * 7}`, max_tokens: 12 });
const chat = (i) => ({ model: 'mote-demo', messages: [{ role: 'user', content: `Hello from client ${i}` }], max_tokens: 10 });
const LONG = { model: 'mote-demo', prompt: 'A long story:', max_tokens: 1500, stream: true };

// reference answers, one at a time
const refAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const ref = [], refChat = [];
for (let i = 0; i < 20; i++) {
    ref.push(JSON.parse((await post(refAgent, '/v1/completions', cmpl(i))).body).choices[0].text);
    refChat.push(JSON.parse((await post(refAgent, '/v1/chat/completions', chat(i))).body).choices[0].message.content);
}
ok(ref.every(t => t.length > 0) && new Set(ref).size > 1, 'reference answers computed (20 prompts)');

// the long generation, streamed on its own connection
let longDone = 0, longFirst;
const firstChunk = new Promise(r => { longFirst = r; });
const longP = post(new http.Agent({ keepAlive: true }), '/v1/completions', LONG, () => longFirst()).then(r => {
    longDone = Date.now();
    return r;
});
await firstChunk;

// 20 clients x 3 requests on keep-alive connections, plus /health probes
const t0 = Date.now();
const results = await Promise.all([...Array(20).keys()].map(async i => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set();
    let good = 0;
    for (let k = 0; k < 3; k++) {
        const isChat = k === 1;
        const r = await post(agent, isChat ? '/v1/chat/completions' : '/v1/completions', isChat ? chat(i) : cmpl(i));
        sockets.add(r.socket);
        if (r.status !== 200) { console.log(`# client ${i} request ${k}: ${r.status} ${r.body}`); continue; }
        const o = JSON.parse(r.body);
        const text = isChat ? o.choices[0].message.content : o.choices[0].text;
        if (text === (isChat ? refChat[i] : ref[i])) good++;
        else console.log(`# client ${i} request ${k}: '${text}' != '${isChat ? refChat[i] : ref[i]}'`);
    }
    agent.destroy();
    return { good, sockets: sockets.size };
}).concat([(async () => {
    const agent = new http.Agent({ keepAlive: true });
    let worst = 0;
    for (let k = 0; k < 10; k++) worst = Math.max(worst, (await get(agent, '/health')).ms);
    return { health: worst };
})()]));
const clientsDone = Date.now();
const health = results.pop().health;
const good = results.reduce((s, r) => s + r.good, 0);
ok(good === 60, `20 concurrent clients x 3 requests: ${good}/60 answers equal the reference`);
ok(results.every(r => r.sockets === 1), `each client used one keep-alive connection (${results.map(r => r.sockets).join('')})`);
ok(longDone === 0, `the long generation was still running when the clients finished (${clientsDone - t0} ms)`);
ok(health < 1000, `/health answered during the load (worst ${health} ms)`);

// the long generation ends intact
const lr = await longP;
const ev = lr.body.split('\n').filter(l => l.startsWith('data: ')).map(l => l.slice(6));
const chunks = ev.slice(0, -1).map(e => JSON.parse(e));
const text = chunks.map(c => c.choices[0].text).join('');
const fin = chunks[chunks.length - 1].choices[0].finish_reason;
ok(lr.status === 200 && ev[ev.length - 1] === '[DONE]' && fin === 'length', `the long generation finished (${chunks.length} events, ${fin})`);
const alone = JSON.parse((await post(refAgent, '/v1/completions', { ...LONG, stream: false })).body).choices[0].text;
ok(alone === text, `its text equals the same generation alone (${text.length} bytes)`);
refAgent.destroy();
process.exit(failed ? 1 : 0);
JS
MOTE_BASE=$E2E_BASE TAP_START=$n timeout 50 node "$E2E_TMP/conc.mjs"
rc=$?
n=$(($n + 7))
[ $rc = 0 ]; ok $? "concurrency script exits 0 ($rc)"
grep -q ' 429 ' "$E2E_LOG"; [ $? != 0 ]; ok $? "no request was refused with 429"
e2e_stop
[ "$E2E_RC" = 0 ]; ok $? "SIGTERM: exits 0 ($E2E_RC)"
