#!/bin/sh
# test_e2e_curl.sh — start `mote --demo` on loopback and drive every endpoint
# with curl: status codes, JSON shapes (checked with node), the SSE sequence,
# auth, CORS preflight, HEAD, keep-alive, limits, graceful SIGTERM.
. tests/e2e/lib.sh
command -v curl >/dev/null 2>&1 || { skip "curl end-to-end" "curl is not installed"; exit 0; }
command -v node >/dev/null 2>&1 || { skip "curl end-to-end" "node (used to check JSON) is not installed"; exit 0; }

KEY=test-key-123
if ! e2e_start --demo --api-key "$KEY" --cors-origin '*' --max-body-bytes 65536 -np 2; then
    ok 1 "server starts and /health answers 200"
    exit 1
fi
ok 0 "server starts on port $E2E_PORT and /health answers 200"
B=$E2E_TMP/body H=$E2E_TMP/head
AUTH="Authorization: Bearer $KEY"

# req METHOD PATH [DATA] [curl args...]: body in $B, head in $H, prints the status
req() {
    m=$1 p=$2
    shift 2
    if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
        d=$1
        shift
        curl -s -X "$m" -D "$H" -o "$B" -w '%{http_code}' -H "$AUTH" -H 'Content-Type: application/json' \
            --data-binary "$d" "$@" "$E2E_BASE$p"
    else
        curl -s -X "$m" -D "$H" -o "$B" -w '%{http_code}' -H "$AUTH" "$@" "$E2E_BASE$p"
    fi
}
has() { grep -qi "$1" "$H"; }
j() { jq_ "$B" "$1"; }

# ---- health, models ----
s=$(curl -s -o "$B" -w '%{http_code}' "$E2E_BASE/health")
[ "$s" = 200 ] && [ "$(j 'o.status')" = ok ]; ok $? "GET /health without a key: 200 {\"status\":\"ok\"}"
s=$(req GET /v1/models)
[ "$s" = 200 ] && [ "$(j 'o.object')" = list ] && [ "$(j 'o.data[0].id')" = mote-demo ] &&
    [ "$(j 'o.data[0].object')" = model ] && [ "$(j 'Number.isInteger(o.data[0].created)')" = true ]
ok $? "GET /v1/models lists mote-demo ($s)"
j 'o.data[0].owned_by' | grep -q 'smoke-test'; ok $? "the demo model is labelled as a smoke-test model"
s=$(req GET /v1/models/mote-demo)
[ "$s" = 200 ] && [ "$(j 'o.id')" = mote-demo ] && [ "$(j 'o.context_length')" = 2048 ]; ok $? "GET /v1/models/mote-demo with context_length ($s)"
s=$(req GET /models)
[ "$s" = 200 ] && [ "$(j 'o.data.length')" = 1 ]; ok $? "the /v1 prefix is optional ($s)"
s=$(req GET /v1/models/nope)
[ "$s" = 404 ] && [ "$(j 'o.error.code')" = model_not_found ] && [ "$(j 'o.error.type')" = invalid_request_error ]
ok $? "GET /v1/models/nope: 404 model_not_found ($s)"

# ---- auth ----
s=$(curl -s -o "$B" -w '%{http_code}' "$E2E_BASE/v1/models")
[ "$s" = 401 ] && [ "$(j 'o.error.code')" = invalid_api_key ]; ok $? "no key: 401 invalid_api_key ($s)"
s=$(curl -s -o "$B" -w '%{http_code}' -H "Authorization: Bearer wrong" "$E2E_BASE/v1/models")
[ "$s" = 401 ]; ok $? "wrong key: 401 ($s)"
s=$(curl -s -o "$B" -w '%{http_code}' -u ":$KEY" "$E2E_BASE/v1/models")
[ "$s" = 200 ]; ok $? "Basic auth with the key as password: 200 ($s)"
s=$(curl -s -o "$B" -w '%{http_code}' -H "Authorization: Bearer wrong" -d '{}' "$E2E_BASE/v1/chat/completions")
[ "$s" = 401 ]; ok $? "wrong key on POST /v1/chat/completions: 401 ($s)"

# ---- chat, non-streaming ----
CHAT='{"model":"mote-demo","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hi"}],"max_tokens":8}'
s=$(req POST /v1/chat/completions "$CHAT")
[ "$s" = 200 ] && has '^content-type: application/json' && [ "$(j 'o.object')" = chat.completion ] &&
    j 'o.id' | grep -q '^chatcmpl-' && [ "$(j 'o.model')" = mote-demo ] &&
    [ "$(j 'o.choices.length')" = 1 ] && [ "$(j 'o.choices[0].index')" = 0 ] &&
    [ "$(j 'o.choices[0].message.role')" = assistant ] && [ "$(j 'typeof o.choices[0].message.content')" = string ]
ok $? "chat completion: 200 with the chat.completion shape ($s)"
[ "$(j 'o.choices[0].finish_reason')" = length ] && [ "$(j 'o.usage.completion_tokens')" = 8 ] &&
    [ "$(j 'o.usage.total_tokens == o.usage.prompt_tokens + o.usage.completion_tokens')" = true ] &&
    [ "$(j 'o.usage.prompt_tokens > 0')" = true ]
ok $? "chat completion: finish_reason length after max_tokens 8, consistent usage"
C1=$(j 'o.choices[0].message.content')
[ -n "$C1" ]; ok $? "chat completion: the demo model says something ('$C1')"
req POST /v1/chat/completions "$CHAT" >/dev/null
[ "$(j 'o.choices[0].message.content')" = "$C1" ] && [ "$(j 'o.usage.prompt_tokens_details.cached_tokens > 0')" = true ]
ok $? "same request again: same answer (greedy, deterministic), prompt served from the cache"
s=$(req POST /v1/chat/completions '{"model":"mote-demo","messages":[{"role":"user","content":[{"type":"text","text":"Say"},{"type":"text","text":" hi"}]}],"max_completion_tokens":3}')
[ "$s" = 200 ] && [ "$(j 'o.usage.completion_tokens')" = 3 ]; ok $? "content as text parts, max_completion_tokens ($s)"

# ---- chat, streaming ----
STREAM='{"model":"mote-demo","messages":[{"role":"user","content":"Say hi"}],"max_tokens":5,"stream":true}'
s=$(req POST /v1/chat/completions "$STREAM")
has '^content-type: text/event-stream' && [ "$s" = 200 ]; ok $? "stream: 200 text/event-stream ($s)"
grep '^data: ' "$B" | sed 's/^data: //' >"$E2E_TMP/events"
node -e '
const ev = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n");
const fail = (m) => { console.log("# " + m); process.exit(1); };
if (ev[ev.length - 1] !== "[DONE]") fail("last event is not [DONE]");
const ch = ev.slice(0, -1).map(JSON.parse);
if (ch[0].choices[0].delta.role !== "assistant") fail("first chunk has no role");
if (ch.slice(1).some(c => c.choices[0] && "role" in c.choices[0].delta)) fail("role repeated");
if (ch.some(c => c.id !== ch[0].id || c.created !== ch[0].created)) fail("id/created differ");
if (ch.some(c => c.object !== "chat.completion.chunk")) fail("object");
const last = ch[ch.length - 1];
if (last.choices[0].finish_reason !== "length") fail("finish chunk: " + JSON.stringify(last));
if (ch.slice(0, -1).some(c => c.choices[0].finish_reason !== null)) fail("early finish_reason");
if (ch.some(c => "usage" in c && c.usage !== null)) fail("usage without include_usage");
const text = ch.slice(1, -1).map(c => c.choices[0].delta.content).join("");
if (ch.length !== 1 + 5 + 1 && text.length === 0) fail("no content deltas");
' "$E2E_TMP/events"
ok $? "stream: role chunk, content deltas, finish chunk, [DONE], no usage"
STREAMU='{"model":"mote-demo","messages":[{"role":"user","content":"Say hi"}],"max_tokens":4,"stream":true,"stream_options":{"include_usage":true}}'
req POST /v1/chat/completions "$STREAMU" >/dev/null
grep '^data: ' "$B" | sed 's/^data: //' >"$E2E_TMP/events"
node -e '
const ev = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n");
if (ev.pop() !== "[DONE]") process.exit(1);
const ch = ev.map(JSON.parse), u = ch.pop();
if (u.choices.length !== 0 || u.usage.completion_tokens !== 4) process.exit(1);
if (ch.some(c => c.usage !== null)) process.exit(1);
' "$E2E_TMP/events"
ok $? "stream with include_usage: usage:null on chunks, then a usage chunk with empty choices"
TXT=$(node -e '
const ev = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").slice(0, -1).map(JSON.parse);
process.stdout.write(ev.filter(c => c.choices.length).map(c => c.choices[0].delta.content || "").join(""));' "$E2E_TMP/events")
req POST /v1/chat/completions '{"model":"mote-demo","messages":[{"role":"user","content":"Say hi"}],"max_tokens":4}' >/dev/null
[ "$(j 'o.choices[0].message.content')" = "$TXT" ]; ok $? "streamed text equals the non-streamed text ('$TXT')"

# ---- completions ----
s=$(req POST /v1/completions '{"model":"mote-demo","prompt":"Once upon a time"}')
[ "$s" = 200 ] && [ "$(j 'o.object')" = text_completion ] && j 'o.id' | grep -q '^cmpl-' &&
    [ "$(j 'o.usage.completion_tokens')" = 16 ] && [ "$(j 'o.choices[0].finish_reason')" = length ]
ok $? "completion: text_completion, max_tokens defaults to 16 ($s)"
T16=$(j 'o.choices[0].text')
s=$(req POST /v1/completions '{"model":"mote-demo","prompt":["Once upon a time","Hello"],"max_tokens":3}')
[ "$s" = 200 ] && [ "$(j 'o.choices.map(c => c.index).join()')" = 0,1 ] && [ "$(j 'o.usage.completion_tokens')" = 6 ]
ok $? "completion: an array of 2 prompts gives choices 0 and 1 ($s)"
s=$(req POST /v1/completions '{"model":"mote-demo","prompt":[1,72,105],"max_tokens":2}')
[ "$s" = 200 ] && [ "$(j 'o.usage.prompt_tokens')" = 3 ]; ok $? "completion: a token-array prompt ($s)"
s=$(req POST /v1/completions '{"model":"mote-demo","prompt":"Once upon a time","max_tokens":4,"echo":true}')
[ "$s" = 200 ] && j 'o.choices[0].text' | grep -q '^Once upon a time'; ok $? "completion: echo prepends the prompt ($s)"
STOP=$(printf '%s' "$T16" | cut -c 5-7)
s=$(req POST /v1/completions "{\"model\":\"mote-demo\",\"prompt\":\"Once upon a time\",\"stop\":[$(printf '%s' "$STOP" | node -e 'process.stdout.write(JSON.stringify(require("fs").readFileSync(0,"utf8")))')]}")
[ "$s" = 200 ] && [ "$(j 'o.choices[0].finish_reason')" = stop ] && [ "$(j 'o.choices[0].text')" = "$(printf '%s' "$T16" | cut -c 1-4)" ]
ok $? "completion: a stop string ends the text before it, finish_reason stop ('$STOP')"
s=$(req POST /v1/completions '{"model":"mote-demo","prompt":"Once upon a time","max_tokens":3,"stream":true}')
last=$(grep '^data: ' "$B" | tail -n 1)
[ "$s" = 200 ] && [ "$last" = "data: [DONE]" ] && [ "$(grep -c '"object":"text_completion"' "$B")" = 4 ]
ok $? "completion stream: 3 text events, a finish event, [DONE] ($s)"

# ---- legacy engines ----
s=$(req GET /v1/engines/list)
[ "$s" = 200 ] && [ "$(j 'o.data[0].object')" = engine ] && [ "$(j 'o.data[0].id')" = mote-demo ]; ok $? "GET /v1/engines/list ($s)"
s=$(req GET '/v1/engines/mote-demo/completions?prompt=Once+upon+a+time&max_tokens=5')
[ "$s" = 200 ] && [ "$(j 'o.usage.completion_tokens')" = 5 ]; ok $? "GET /v1/engines/mote-demo/completions?prompt=... ($s)"
s=$(req POST /v1/engines/mote-demo/completions '{"prompt":"Once upon a time","max_tokens":2}')
[ "$s" = 200 ] && [ "$(j 'o.usage.completion_tokens')" = 2 ]; ok $? "POST /v1/engines/mote-demo/completions ($s)"
s=$(req POST /v1/engines/nope/completions '{"prompt":"x"}')
[ "$s" = 404 ]; ok $? "engine completions with an unknown model: 404 ($s)"

# ---- errors ----
s=$(req POST /v1/chat/completions '{"model":"nope","messages":[{"role":"user","content":"x"}]}')
[ "$s" = 404 ] && [ "$(j 'o.error.code')" = model_not_found ] && [ "$(j 'o.error.param')" = null ]; ok $? "unknown model: 404 model_not_found ($s)"
s=$(req POST /v1/chat/completions '{"model":"mote-demo","messages":[{"role":"user","content":5}]}')
[ "$s" = 400 ] && [ "$(j 'o.error.param')" = 'messages[0].content' ] && [ "$(j 'o.error.type')" = invalid_request_error ]
ok $? "bad content type: 400 naming messages[0].content ($s)"
s=$(req POST /v1/chat/completions '{"model":"mote-demo","messages":[{"role":"user","content":"x"}],"temperature":7}')
[ "$s" = 400 ] && [ "$(j 'o.error.param')" = temperature ]; ok $? "temperature out of range: 400 naming temperature ($s)"
s=$(req POST /v1/chat/completions '{"model":"mote-demo","messages":[}')
[ "$s" = 400 ] && [ -n "$(j 'o.error.message')" ]; ok $? "malformed JSON: 400 with a message ($s)"
s=$(req POST /v1/chat/completions '{"model":"mote-demo"}')
[ "$s" = 400 ] && [ "$(j 'o.error.param')" = messages ]; ok $? "missing messages: 400 naming messages ($s)"
LONG=$(node -e 'process.stdout.write(JSON.stringify({model:"mote-demo",prompt:Array(3000).fill(72)}))')
s=$(req POST /v1/completions "$LONG")
[ "$s" = 400 ] && [ "$(j 'o.error.code')" = context_length_exceeded ]; ok $? "prompt longer than the context: 400 context_length_exceeded ($s)"
s=$(req POST /v1/completions '{"model":"mote-demo","prompt":[1,99999]}')
[ "$s" = 400 ]; ok $? "token id beyond the vocabulary: 400 ($s)"
head -c 100000 /dev/zero | tr '\0' 'a' >"$E2E_TMP/big"
s=$(curl -s -o "$B" -w '%{http_code}' -H "$AUTH" --data-binary @"$E2E_TMP/big" "$E2E_BASE/v1/completions")
[ "$s" = 413 ]; ok $? "body over --max-body-bytes: 413 ($s)"
s=$(req POST /v1/embeddings '{"model":"mote-demo","input":"x"}')
[ "$s" = 400 ] && j 'o.error.message' | grep -q embeddings; ok $? "embeddings: 400 'does not support embeddings' ($s)"
s=$(req POST /v1/nope '{}')
[ "$s" = 404 ]; ok $? "unknown path: 404 ($s)"
s=$(req PUT /v1/models)
[ "$s" = 405 ] && has '^allow: GET'; ok $? "PUT /v1/models: 405 with Allow ($s)"

# ---- HEAD, OPTIONS, CORS, keep-alive ----
s=$(curl -s -I -o "$H" -w '%{http_code}' -H "$AUTH" "$E2E_BASE/v1/models")
[ "$s" = 200 ] && grep -qi '^content-length: [1-9]' "$H"; ok $? "HEAD /v1/models: 200 with Content-Length ($s)"
s=$(curl -s -X OPTIONS -D "$H" -o /dev/null -w '%{http_code}' -H 'Origin: http://example.com' \
    -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: authorization, content-type' \
    "$E2E_BASE/v1/chat/completions")
[ "$s" = 204 ] && has '^access-control-allow-origin: \*' && has '^access-control-allow-headers: authorization'
ok $? "CORS preflight without a key: 204 with the Allow-* headers ($s)"
curl -s -D "$H" -o /dev/null -H "$AUTH" -H 'Origin: http://example.com' "$E2E_BASE/v1/models"
has '^access-control-allow-origin: \*'; ok $? "CORS: responses carry Access-Control-Allow-Origin"
conns=$(curl -s -o /dev/null -o /dev/null -o /dev/null -w '%{num_connects} ' -H "$AUTH" \
    "$E2E_BASE/v1/models" "$E2E_BASE/health" -H 'Content-Type: application/json' \
    -d '{"model":"mote-demo","prompt":"x","max_tokens":1}' "$E2E_BASE/v1/completions")
[ "$conns" = "1 0 0 " ]; ok $? "keep-alive: three requests on one connection (connects: $conns)"

# ---- tokenize ----
s=$(req POST /tokenize '{"content":"Hi"}')
[ "$s" = 200 ] && [ "$(j 'o.tokens.length')" -ge 2 ]; ok $? "POST /tokenize ($s)"
TOKS=$(j 'JSON.stringify(o.tokens)')
s=$(req POST /detokenize "{\"tokens\":$TOKS}")
[ "$s" = 200 ] && [ "$(j 'o.content')" = Hi ]; ok $? "POST /detokenize gives the text back ($s)"

# ---- access log, shutdown ----
grep -q '"POST /v1/chat/completions" 200 .*tokens=' "$E2E_LOG"; ok $? "access log: one line per request with status and tokens"
grep -qi 'smoke-test' "$E2E_LOG"; ok $? "log names the smoke-test model"
# SIGTERM while a long request is in flight: it completes, then exit 0
curl -s -o "$E2E_TMP/inflight" -w '%{http_code}' -H "$AUTH" -H 'Content-Type: application/json' \
    -d '{"model":"mote-demo","prompt":"A long story:","max_tokens":1200}' "$E2E_BASE/v1/completions" >"$E2E_TMP/inflight.code" &
CURL=$!
sleep 0.3
e2e_stop
wait $CURL
[ "$E2E_RC" = 0 ]; ok $? "SIGTERM: exits 0 ($E2E_RC)"
[ "$(cat "$E2E_TMP/inflight.code")" = 200 ] && [ "$(jq_ "$E2E_TMP/inflight" 'o.usage.completion_tokens')" = 1200 ]
ok $? "SIGTERM: the request in flight was finished first ($(cat "$E2E_TMP/inflight.code"))"
