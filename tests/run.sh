#!/bin/sh
# tests/run.sh — run every test binary/script given as arguments and print
# one summary line "N passed, N failed, N skipped".
# Each test prints TAP-like lines ("ok N - ...", "not ok N - ...",
# "ok N - ... # SKIP reason"). A test that exits non-zero without printing a
# "not ok" line (a crash, a sanitizer report) counts as one failure.
# $RUNNER, if set, prefixes every binary (e.g. qemu-aarch64-static).
# Each test gets $TEST_TIMEOUT seconds (default 900); a hang is a failure.
to=${TEST_TIMEOUT:-900}
passed=0 failed=0 skipped=0
for t in "$@"; do
    echo "=== $t"
    out=$(mktemp)
    case "$t" in
        *.sh) timeout -k 10 "$to" sh "$t" >"$out" 2>&1 ;;
        *) timeout -k 10 "$to" $RUNNER "$t" >"$out" 2>&1 ;;
    esac
    rc=$?
    cat "$out"
    p=$(grep -E '^ok [0-9]+' "$out" | grep -vc '# SKIP')
    s=$(grep -E '^ok [0-9]+' "$out" | grep -c '# SKIP')
    f=$(grep -cE '^not ok [0-9]+' "$out")
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "not ok - $t timed out after ${to}s"
        f=$((f + 1))
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "not ok - $t exited with status $rc"
        f=1
    fi
    rm -f "$out"
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
