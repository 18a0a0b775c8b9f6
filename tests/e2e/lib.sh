# tests/e2e/lib.sh — shared by the end-to-end scripts (sourced, POSIX sh).
#
#   . tests/e2e/lib.sh
#   e2e_start --demo --api-key k      start $MOTE_BIN on 127.0.0.1 with a free
#                                     port; sets E2E_PID, E2E_PORT, E2E_BASE,
#                                     E2E_LOG; waits for /health 200
#   ok COND_STATUS "name"             one TAP line (0 = pass)
#   skip "name" "reason"
#   e2e_stop                          SIGTERM, wait; sets E2E_RC
#   jq_ FILE 'js expression on o'     prints the value (node), "" on error
# The server is killed on exit (trap), so a failing script never leaks it.
M=${MOTE_BIN:-./mote}
E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/mote_e2e.XXXXXX")
E2E_PID=
n=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
skip() { n=$((n+1)); echo "ok $n - $1 # SKIP $2"; }
e2e_cleanup() {
    if [ -n "$E2E_PID" ]; then kill -9 "$E2E_PID" 2>/dev/null; fi
    rm -rf "$E2E_TMP"
}
trap e2e_cleanup EXIT
trap 'exit 1' INT TERM HUP

# Start the server with -p 0 and read the port from its log line.
e2e_start() {
    # a fresh file per server, emptied here before the fork: with one name
    # reused and truncated only by the child's redirect, the loop below
    # could read the previous server's "listening on" line first and poll a
    # dead port for 60 s (seen once on a loaded machine)
    E2E_N=$((${E2E_N:-0} + 1))
    E2E_LOG=$E2E_TMP/server$E2E_N.log
    : >"$E2E_LOG"
    "$M" -h 127.0.0.1 -p 0 "$@" >"$E2E_LOG" 2>&1 &
    E2E_PID=$!
    E2E_PORT=
    i=0
    while [ $i -lt 100 ]; do
        E2E_PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$E2E_LOG" | head -n 1)
        [ -n "$E2E_PORT" ] && break
        kill -0 "$E2E_PID" 2>/dev/null || break
        sleep 0.1
        i=$((i+1))
    done
    if [ -z "$E2E_PORT" ]; then
        echo "# server did not start:"; sed 's/^/#   /' "$E2E_LOG"
        return 1
    fi
    E2E_BASE=http://127.0.0.1:$E2E_PORT
    # up to 60 s: a loaded 2-core CI machine can take long to load a model
    i=0
    while [ $i -lt 600 ]; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$E2E_BASE/health")" = 200 ] && return 0
        sleep 0.1
        i=$((i+1))
    done
    echo "# /health never answered 200"
    return 1
}

e2e_stop() {
    kill -TERM "$E2E_PID" 2>/dev/null
    wait "$E2E_PID"
    E2E_RC=$?
    E2E_PID=
}

# Evaluate a JavaScript expression over the JSON document in FILE (bound to o).
jq_() {
    node -e 'let o; try { o = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); } catch (e) { process.exit(0); }
             let v; try { v = eval(process.argv[2]); } catch (e) { process.exit(0); }
             console.log(typeof v === "object" ? JSON.stringify(v) : String(v));' "$1" "$2"
}
