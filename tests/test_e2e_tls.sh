#!/bin/sh
# test_e2e_tls.sh — HTTPS end to end with BearSSL: `mote --demo` serving
# --ssl-public/--ssl-key with certificates made here by `openssl req` (a test
# CA, an EC P-256 leaf and an RSA 2048 leaf; keys in SEC1, PKCS#1 and PKCS#8
# forms). curl --cacert, openssl s_client and the official openai npm SDK
# (NODE_EXTRA_CA_CERTS) complete requests, streaming included, on both
# certificates; hostile clients (plain HTTP, truncated ClientHello, TLS 1.3
# only, random bytes) are refused while a long stream on another connection
# finishes intact; 200 sequential and 20 concurrent HTTPS requests succeed.
# Startup refusals: mismatched key, missing file. Skips loudly without
# openssl or without TLS in the build; node parts skip without node.
. tests/e2e/lib.sh
PREFIX=${MOTE_NPM_PREFIX:-build/npm}
D=$E2E_TMP
HS_MS=2000

if ! "$M" --version 2>&1 | grep -q 'tls: bearssl'; then
    "$M" --demo --ssl-public c.pem --ssl-key k.pem >"$D/notls.out" 2>&1
    rc=$?
    [ $rc = 2 ] && grep -q 'no TLS support' "$D/notls.out"
    ok $? "a build without TLS refuses --ssl-public with a clear message (exit $rc)"
    skip "HTTPS end-to-end" "this mote was built without TLS (TLS=0 or no BearSSL)"
    exit 0
fi
if ! command -v openssl >/dev/null 2>&1; then
    skip "HTTPS end-to-end" "openssl is not installed (needed to make the test certificates)"
    exit 0
fi

# ---- certificates --------------------------------------------------------------------
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' >"$D/leaf.ext"
gen() { # gen NAME KEYOPTS...: key NAME.p8 (PKCS#8), certificate NAME.pem signed by the CA
    name=$1; shift
    openssl req -new -newkey "$@" -nodes -keyout "$D/$name.p8" -out "$D/$name.csr" -subj "/CN=localhost" &&
    openssl x509 -req -in "$D/$name.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial \
        -days 2 -sha256 -extfile "$D/leaf.ext" -out "$D/$name.pem"
}
if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/ca.key" -out "$D/ca.pem" \
        -days 2 -subj "/CN=mote test CA" >"$D/openssl.log" 2>&1 &&
   gen ec ec -pkeyopt ec_paramgen_curve:P-256 >>"$D/openssl.log" 2>&1 &&
   gen rsa rsa:2048 >>"$D/openssl.log" 2>&1 &&
   openssl ec -in "$D/ec.p8" -out "$D/ec.sec1" >>"$D/openssl.log" 2>&1 &&
   openssl rsa -in "$D/rsa.p8" -traditional -out "$D/rsa.pkcs1" >>"$D/openssl.log" 2>&1; then
    ok 0 "openssl made a CA, an EC and an RSA certificate"
else
    sed 's/^/#   /' "$D/openssl.log" | tail -n 5
    ok 1 "openssl made a CA, an EC and an RSA certificate"
    exit 1
fi
grep -q 'BEGIN EC PRIVATE KEY' "$D/ec.sec1" && grep -q 'BEGIN RSA PRIVATE KEY' "$D/rsa.pkcs1" &&
    grep -q 'BEGIN PRIVATE KEY' "$D/ec.p8"
ok $? "key forms: SEC1 (EC PRIVATE KEY), PKCS#1 (RSA PRIVATE KEY), PKCS#8 (PRIVATE KEY)"

# ---- startup refusals -------------------------------------------------------------------
"$M" --demo -p 0 --ssl-public "$D/ec.pem" --ssl-key "$D/rsa.p8" >"$D/bad.out" 2>&1
rc=$?
[ $rc = 1 ] && grep -q 'an RSA key, but the certificate holds an EC key' "$D/bad.out"
ok $? "EC certificate with the RSA key: refused at start ($(head -n 1 "$D/bad.out"))"
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$D/other.p8" 2>/dev/null
"$M" --demo -p 0 --ssl-public "$D/ec.pem" --ssl-key "$D/other.p8" >"$D/bad.out" 2>&1
rc=$?
[ $rc = 1 ] && grep -q "does not match the certificate's public key" "$D/bad.out"
ok $? "another EC key: refused at start ($(head -n 1 "$D/bad.out"))"
"$M" --demo -p 0 --ssl-public "$D/nope.pem" --ssl-key "$D/ec.p8" >"$D/bad.out" 2>&1
rc=$?
[ $rc = 1 ] && grep -q 'nope.pem: cannot open' "$D/bad.out"
ok $? "missing certificate file: refused at start ($(head -n 1 "$D/bad.out"))"

# ---- a server ---------------------------------------------------------------------------
# tls_start CERT KEY [ARGS]: like e2e_start, for https (E2E_BASE=https://127.0.0.1:PORT;
# the certificates name 127.0.0.1 and localhost).
SERVERS=0
tls_start() {
    cert=$1 key=$2; shift 2
    SERVERS=$((SERVERS + 1))
    E2E_LOG=$D/server.$SERVERS.log   # a new file: never read the previous server's port
    "$M" -h 127.0.0.1 -p 0 --ssl-public "$cert" --ssl-key "$key" "$@" >"$E2E_LOG" 2>&1 &
    E2E_PID=$!
    E2E_PORT=
    i=0
    while [ $i -lt 100 ]; do
        E2E_PORT=$(sed -n 's/.*listening on https:\/\/127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$E2E_LOG" | head -n 1)
        [ -n "$E2E_PORT" ] && break
        kill -0 "$E2E_PID" 2>/dev/null || break
        sleep 0.1
        i=$((i+1))
    done
    if [ -z "$E2E_PORT" ]; then
        echo "# server did not start:"; sed 's/^/#   /' "$E2E_LOG"
        tls_kill
        return 1
    fi
    E2E_BASE=https://127.0.0.1:$E2E_PORT
    i=0
    while [ $i -lt 100 ]; do
        [ "$(curl -s --cacert "$D/ca.pem" -o /dev/null -w '%{http_code}' "$E2E_BASE/health")" = 200 ] && return 0
        sleep 0.1
        i=$((i+1))
    done
    echo "# /health never answered 200 over HTTPS"; sed 's/^/#   /' "$E2E_LOG" | tail -n 5
    tls_kill
    return 1
}
tls_kill() { # a server that failed to come up must not outlive the script
    kill -9 "$E2E_PID" 2>/dev/null
    wait "$E2E_PID" 2>/dev/null
    E2E_PID=
}
KEY=tls-test-key
AUTH="Authorization: Bearer $KEY"
CHAT='{"model":"mote-demo","messages":[{"role":"user","content":"Say hi"}],"max_tokens":6'

# curl_checks LABEL: a plain request, a chat completion, a streamed one.
curl_checks() {
    out=$(curl -sS --cacert "$D/ca.pem" -H "$AUTH" -o "$D/h.json" -w '%{http_code} %{http_version} %{ssl_verify_result}' "$E2E_BASE/v1/models")
    [ "$out" = "200 1.1 0" ] && grep -q '"mote-demo"' "$D/h.json"
    ok $? "$1: curl --cacert GET /v1/models verified, HTTP/1.1 ($out)"
    curl -sS --cacert "$D/ca.pem" -H "$AUTH" -H 'Content-Type: application/json' -d "$CHAT}" "$E2E_BASE/v1/chat/completions" >"$D/c.json"
    [ "$(jq_ "$D/c.json" 'o.usage.completion_tokens')" = 6 ]
    ok $? "$1: curl chat completion (6 tokens)"
    curl -sS -N --cacert "$D/ca.pem" -H "$AUTH" -H 'Content-Type: application/json' -d "$CHAT,\"stream\":true}" \
        "$E2E_BASE/v1/chat/completions" >"$D/s.txt"
    k=$(grep -c '^data: {' "$D/s.txt")
    [ "$k" -ge 7 ] && [ "$(grep '^data: ' "$D/s.txt" | tail -n 1)" = "data: [DONE]" ]
    ok $? "$1: curl streamed chat completion ($k chunks, then [DONE])"
}

# sclient_checks LABEL CIPHER_RE: openssl s_client verifies the chain and
# sends a request by hand, streamed.
sclient_checks() {
    body="$CHAT,\"stream\":true}"
    printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
        "$AUTH" "${#body}" "$body" >"$D/req.txt"
    timeout 10 openssl s_client -connect "127.0.0.1:$E2E_PORT" -servername localhost -CAfile "$D/ca.pem" \
        -verify_return_error -alpn http/1.1 -ign_eof <"$D/req.txt" >"$D/sc.txt" 2>&1
    rc=$?
    proto=$(sed -n 's/^ *Protocol *: *//p' "$D/sc.txt" | head -n 1)
    cipher=$(sed -n 's/^ *Cipher *: *//p' "$D/sc.txt" | head -n 1)
    [ $rc = 0 ] && [ "$proto" = TLSv1.2 ] && echo "$cipher" | grep -Eq "$2" &&
        grep -q 'Verify return code: 0 (ok)' "$D/sc.txt" && grep -q 'ALPN protocol: http/1.1' "$D/sc.txt"
    ok $? "$1: openssl s_client: $proto $cipher, chain verified, ALPN http/1.1"
    grep -q '^HTTP/1.1 200 OK' "$D/sc.txt" && grep -q 'data: \[DONE\]' "$D/sc.txt"
    ok $? "$1: openssl s_client streamed chat completion (200, [DONE])"
}

# sdk_checks LABEL: the official openai package over HTTPS (the test CA in
# NODE_EXTRA_CA_CERTS), with tests/e2e/openai_sdk.mjs.
sdk_checks() {
    if [ -z "$SDK" ]; then
        skip "$1: openai SDK over HTTPS" "$SDK_WHY"
        return
    fi
    NODE_EXTRA_CA_CERTS=$D/ca.pem MOTE_BASE=$E2E_BASE MOTE_KEY=$KEY NPM_PREFIX=$SDK TAP_START=$n \
        timeout 60 node tests/e2e/openai_sdk.mjs >"$D/sdk.txt" 2>&1
    rc=$?
    sed "s/^\(\(not \)*ok [0-9]* - \)/\1$1: openai SDK: /" "$D/sdk.txt"
    n=$((n + $(grep -cE '^(not )?ok [0-9]+' "$D/sdk.txt")))
    [ $rc = 0 ]
    ok $? "$1: openai SDK script over HTTPS exits 0 ($rc)"
}

# the openai package: installed into build/npm by test_e2e_openai.sh, or here
SDK= SDK_WHY=
if ! command -v node >/dev/null 2>&1; then
    SDK_WHY="node is not installed"
elif [ -f "$PREFIX/node_modules/openai/package.json" ] ||
     timeout 120 npm install --prefix "$PREFIX" openai@6 --no-audit --no-fund >"$D/npm.log" 2>&1; then
    SDK=$(cd "$PREFIX" && pwd)
else
    SDK_WHY="npm could not install openai@6 (no registry access?)"
fi

cat >"$D/tls_clients.mjs" <<'JS'
// tests/e2e/tls_clients.mjs — node's TLS stack against `mote --demo` serving
// HTTPS: hostile clients (plain HTTP, truncated ClientHello closed or held
// open, random bytes, TLS 1.3 only) while a long stream runs on another
// connection, which must finish intact; then 200 sequential requests on new
// connections (session resumption counted) and 20 concurrent keep-alive
// clients. Env: MOTE_HOST, MOTE_PORT, MOTE_CA (PEM file), MOTE_KEY, TAP_START,
// HANDSHAKE_MS (the server's --header-timeout in ms). Prints TAP lines.
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import crypto from 'node:crypto';

const host = process.env.MOTE_HOST, port = Number(process.env.MOTE_PORT);
const ca = fs.readFileSync(process.env.MOTE_CA);
const handshakeMs = Number(process.env.HANDSHAKE_MS || 2000);
let n = Number(process.env.TAP_START || 0), failed = 0;
const ok = (c, name) => { n++; if (!c) failed++; console.log(`${c ? '' : 'not '}ok ${n} - ${name}`); };
const note = (s) => console.log(`# ${s}`);

function request(agent, method, path, body, onChunk) {
    return new Promise((resolve, reject) => {
        const data = body ? JSON.stringify(body) : null;
        const headers = { Authorization: `Bearer ${process.env.MOTE_KEY}` };
        if (data) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
        const req = https.request({ host, port, servername: 'localhost', path, method, agent, ca, headers,
                                    ALPNProtocols: ['http/1.1'] }, res => {
            let buf = '';
            res.setEncoding('utf8');
            res.on('data', d => { buf += d; if (onChunk) onChunk(d); });
            res.on('end', () => resolve({ status: res.statusCode, body: buf, socket: req.socket,
                                          reused: req.socket.isSessionReused(),
                                          alpn: req.socket.alpnProtocol, proto: req.socket.getProtocol() }));
        });
        req.on('error', reject);
        req.setTimeout(30000, () => req.destroy(new Error('timeout')));
        req.end(data);
    });
}

// A raw TCP client: send `bytes`, optionally half-close, collect what comes
// back until the server closes (or `limitMs`). Resolves {data, ms, closed}.
function raw(bytes, { end = false, limitMs = 10000 } = {}) {
    return new Promise(resolve => {
        const t0 = Date.now();
        const chunks = [];
        const s = net.connect(port, host, () => { s.write(bytes); if (end) s.end(); });
        const timer = setTimeout(() => { s.destroy(); resolve({ data: Buffer.concat(chunks), ms: Date.now() - t0, closed: false }); }, limitMs);
        s.on('data', d => chunks.push(d));
        s.on('error', () => {});
        s.on('close', () => { clearTimeout(timer); resolve({ data: Buffer.concat(chunks), ms: Date.now() - t0, closed: true }); });
    });
}

// The first bytes of a TLS 1.2 ClientHello: a record header announcing 220
// bytes, then a handshake header and part of the random.
function truncatedHello() {
    const head = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xdc, 0x01, 0x00, 0x00, 0xd8, 0x03, 0x03]);
    return Buffer.concat([head, crypto.randomBytes(20)]);
}

function tls13Only() {
    return new Promise(resolve => {
        const s = tls.connect({ host, port, servername: 'localhost', ca, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
        s.on('secureConnect', () => { s.destroy(); resolve({ connected: true, err: '' }); });
        s.on('error', e => resolve({ connected: false, err: String(e.message || e).trim() }));
    });
}

const LONG = { model: 'mote-demo', prompt: 'A long story:', max_tokens: 1200, stream: true };

// ---- hostile clients during a long stream ----------------------------------------
{
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    let first;
    const started = new Promise(r => { first = r; });
    const long = request(agent, 'POST', '/v1/completions', LONG, () => first());
    await started;

    const [plain, cut, held, junk, t13, health] = await Promise.all([
        raw('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n'),
        raw(truncatedHello(), { end: true }),
        raw(truncatedHello(), { limitMs: handshakeMs + 8000 }),
        raw(crypto.randomBytes(4096)),
        tls13Only(),
        request(new https.Agent({ keepAlive: false }), 'GET', '/health'),
    ]);
    const ptext = plain.data.toString('latin1');
    ok(plain.closed && ptext.startsWith('HTTP/1.1 400') && /speaks HTTPS/.test(ptext),
       `plain HTTP on the HTTPS port: 400 in plain text, closed (${JSON.stringify(ptext.split('\r\n')[0])})`);
    ok(cut.closed && cut.data.length === 0, 'truncated ClientHello then EOF: closed, nothing sent');
    ok(held.closed && held.data.length === 0 && held.ms >= handshakeMs - 200 && held.ms < handshakeMs + 5000,
       `truncated ClientHello held open: closed by the handshake timeout after ${held.ms} ms`);
    // BearSSL answers a bad record with nothing or a fatal alert record (type 21)
    ok(junk.closed && (junk.data.length === 0 || junk.data[0] === 21) && !/HTTP/.test(junk.data.toString('latin1')),
       `4 KiB of random bytes: closed (${junk.data.length} bytes back)`);
    ok(!t13.connected && /handshake failure|alert|protocol/i.test(t13.err),
       `TLS 1.3-only client refused: ${t13.err}`);
    ok(health.status === 200, 'a fresh HTTPS /health meanwhile: 200');

    const r = await long;
    const events = r.body.split('\n\n').filter(e => e.startsWith('data: '));
    ok(r.status === 200 && events.length > 100 && events[events.length - 1] === 'data: [DONE]' &&
       r.proto === 'TLSv1.2' && r.alpn === 'http/1.1',
       `the long stream on its own connection finished intact (${events.length} events, ${r.proto}, alpn ${r.alpn})`);
    agent.destroy();
}

// ---- 200 sequential requests, each on a new connection -----------------------------
{
    const agent = new https.Agent({ keepAlive: false, maxCachedSessions: 10 });
    let good = 0, reused = 0, sockets = new Set();
    const t0 = Date.now();
    for (let i = 0; i < 200; i++) {
        try {
            const r = await request(agent, 'POST', '/v1/completions',
                { model: 'mote-demo', prompt: `Request ${i}`, max_tokens: 2 });
            if (r.status === 200 && JSON.parse(r.body).usage.completion_tokens === 2) good++;
            if (r.reused) reused++;
            sockets.add(r.socket);
        } catch (e) {
            note(`request ${i}: ${e.message}`);
        }
    }
    const ms = Date.now() - t0;
    ok(good === 200, `200 sequential HTTPS requests on new connections: ${good} ok in ${ms} ms`);
    ok(reused >= 150, `TLS sessions resumed from the server cache: ${reused} of 200`);
}

// ---- 20 concurrent clients, 3 requests each on one keep-alive connection -------------
{
    const t0 = Date.now();
    const client = async (i) => {
        const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
        const socks = new Set();
        let good = 0;
        try {
            for (let k = 0; k < 3; k++) {
                const stream = k === 1;
                const r = await request(agent, 'POST', '/v1/chat/completions',
                    { model: 'mote-demo', messages: [{ role: 'user', content: `client ${i} request ${k}` }],
                      max_tokens: 8, stream });
                socks.add(r.socket);
                if (r.status === 200 && (!stream || r.body.trimEnd().endsWith('data: [DONE]'))) good++;
                else note(`client ${i} request ${k}: ${r.status} ${r.body.slice(-120)}`);
            }
        } catch (e) {
            note(`client ${i}: ${e.message}`);
        }
        agent.destroy();
        return { good, sockets: socks.size };
    };
    const res = await Promise.all(Array.from({ length: 20 }, (_, i) => client(i)));
    const good = res.reduce((a, r) => a + r.good, 0);
    ok(good === 60, `20 concurrent HTTPS clients x 3 requests (one streamed): ${good}/60 ok in ${Date.now() - t0} ms`);
    ok(res.every(r => r.sockets === 1), 'each concurrent client kept one TLS connection (keep-alive)');
}

process.exit(failed ? 1 : 0);
JS

# ---- EC certificate, SEC1 key: everything ---------------------------------------------
if ! tls_start "$D/ec.pem" "$D/ec.sec1" --demo --api-key "$KEY" --queue 32 --header-timeout $((HS_MS / 1000)); then
    ok 1 "EC server starts"
    exit 1
fi
ok 0 "EC server starts on port $E2E_PORT: $(sed -n 's/.*info  HTTPS: //p' "$E2E_LOG")"
grep -q 'HTTPS: EC P-256 key, 1 certificate' "$E2E_LOG"
ok $? "the log describes the key and the per-connection TLS memory"
curl_checks EC
sclient_checks EC '^ECDHE-ECDSA-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)$'
sdk_checks EC

out=$(curl -sS -w ' %{http_code}' "http://127.0.0.1:$E2E_PORT/health" | tr '\n' ' ')
case "$out" in *"speaks HTTPS"*" 400"*) r=0 ;; *) r=1 ;; esac
ok $r "curl http:// to the HTTPS port: 400 with a plain-text hint ($out)"
timeout 10 openssl s_client -connect "127.0.0.1:$E2E_PORT" -tls1_3 </dev/null >"$D/t13.txt" 2>&1
rc=$?
[ $rc != 0 ] && grep -q 'alert handshake failure' "$D/t13.txt"
ok $? "openssl s_client -tls1_3: refused with a handshake_failure alert (exit $rc)"
timeout 10 openssl s_client -connect "127.0.0.1:$E2E_PORT" -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA256:AES128-SHA' \
    </dev/null >"$D/cbc.txt" 2>&1
rc=$?
[ $rc != 0 ]
ok $? "openssl s_client offering only CBC suites: refused (exit $rc)"

if command -v node >/dev/null 2>&1; then
    MOTE_HOST=127.0.0.1 MOTE_PORT=$E2E_PORT MOTE_CA=$D/ca.pem MOTE_KEY=$KEY HANDSHAKE_MS=$HS_MS TAP_START=$n \
        timeout 80 node "$D/tls_clients.mjs" >"$D/clients.txt" 2>&1
    rc=$?
    cat "$D/clients.txt"
    n=$((n + $(grep -cE '^(not )?ok [0-9]+' "$D/clients.txt")))
    [ $rc = 0 ]
    ok $? "node TLS clients script exits 0 ($rc)"
else
    skip "hostile clients, 200 sequential and 20 concurrent HTTPS requests" "node is not installed"
fi
curl -sS --cacert "$D/ca.pem" -o /dev/null -w '%{http_code}' "$E2E_BASE/health" >"$D/after.txt"
[ "$(cat "$D/after.txt")" = 200 ]
ok $? "the server still answers after the hostile clients"
for what in "plain HTTP request on the HTTPS port" "no common cipher suite" "the client closed the connection" \
            "TLS handshake not complete after $HS_MS ms"; do
    grep -q "$what" "$E2E_LOG"
    ok $? "server log names the refusal: $what"
done
e2e_stop
[ "$E2E_RC" = 0 ]
ok $? "EC server: SIGTERM, exits 0 ($E2E_RC)"

# ---- RSA certificate, PKCS#8 key ---------------------------------------------------------
if ! tls_start "$D/rsa.pem" "$D/rsa.p8" --demo --api-key "$KEY"; then
    ok 1 "RSA server starts"
    exit 1
fi
ok 0 "RSA server starts on port $E2E_PORT: $(sed -n 's/.*info  HTTPS: //p' "$E2E_LOG")"
curl_checks RSA
sclient_checks RSA '^ECDHE-RSA-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)$'
timeout 10 openssl s_client -connect "127.0.0.1:$E2E_PORT" -CAfile "$D/ca.pem" -sess_out "$D/sess.pem" \
    </dev/null >"$D/s1.txt" 2>&1
timeout 10 openssl s_client -connect "127.0.0.1:$E2E_PORT" -CAfile "$D/ca.pem" -sess_in "$D/sess.pem" \
    </dev/null >"$D/s2.txt" 2>&1
grep -q '^New, TLSv1.2' "$D/s1.txt" && grep -q '^Reused, TLSv1.2' "$D/s2.txt"
ok $? "RSA: s_client resumes its session from the server's cache ($(grep -m1 -E '^(New|Reused),' "$D/s2.txt"))"
sdk_checks RSA
e2e_stop
[ "$E2E_RC" = 0 ]
ok $? "RSA server: SIGTERM, exits 0 ($E2E_RC)"

# ---- the other key forms start and serve ----------------------------------------------------
for pair in "rsa.pem rsa.pkcs1 RSA_PKCS#1" "ec.pem ec.p8 EC_PKCS#8"; do
    set -- $pair
    if tls_start "$D/$1" "$D/$2" --demo; then
        e2e_stop
        ok 0 "$3 key: serves HTTPS"
    else
        ok 1 "$3 key: serves HTTPS"
    fi
done
