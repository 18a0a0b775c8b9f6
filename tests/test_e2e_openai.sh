#!/bin/sh
# test_e2e_openai.sh — the official `openai` npm package (openai@6) against
# `mote --demo`: models, chat and completions (streaming or not), typed
# errors. The package is installed into build/npm on first use; without
# node or without access to the npm registry the test is skipped loudly.
. tests/e2e/lib.sh
PREFIX=${MOTE_NPM_PREFIX:-build/npm}
if ! command -v node >/dev/null 2>&1; then
    skip "openai SDK end-to-end" "node is not installed"
    exit 0
fi
if [ ! -f "$PREFIX/node_modules/openai/package.json" ]; then
    echo "# installing openai@6 into $PREFIX"
    if ! timeout 120 npm install --prefix "$PREFIX" openai@6 --no-audit --no-fund >"$E2E_TMP/npm.log" 2>&1; then
        sed 's/^/#   /' "$E2E_TMP/npm.log" | tail -n 5
        skip "openai SDK end-to-end" "npm could not install openai@6 (no registry access?)"
        exit 0
    fi
fi
echo "# openai $(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$PREFIX/node_modules/openai/package.json" | head -n 1)"
KEY=sdk-test-key
if ! e2e_start --demo --api-key "$KEY"; then
    ok 1 "server starts"
    exit 1
fi
ok 0 "server starts on port $E2E_PORT"
MOTE_BASE=$E2E_BASE MOTE_KEY=$KEY NPM_PREFIX=$(cd "$PREFIX" && pwd) TAP_START=$n \
    timeout 60 node tests/e2e/openai_sdk.mjs
rc=$?
n=$(($n + 14))
[ $rc = 0 ]; ok $? "openai SDK script exits 0 ($rc)"
grep -q 'cancelled' "$E2E_LOG"; ok $? "the aborted stream was cancelled on the server (access log)"
e2e_stop
[ "$E2E_RC" = 0 ]; ok $? "SIGTERM: exits 0 ($E2E_RC)"
