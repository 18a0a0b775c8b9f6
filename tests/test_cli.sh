#!/bin/sh
# test_cli.sh — command-line contract: help, version, usage errors (exit 2, one line).
M=${MOTE_BIN:-./mote}
n=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }

$M --help >/tmp/mote_cli.$$ 2>&1; ok $? "--help exits 0"
grep -q 'usage: mote' /tmp/mote_cli.$$; ok $? "--help prints usage"
$M --version >/tmp/mote_cli.$$ 2>&1; ok $? "--version exits 0"
grep -q '^mote [0-9]' /tmp/mote_cli.$$ && grep -q 'threads:' /tmp/mote_cli.$$; ok $? "--version names version and features"
$M -v >/dev/null 2>&1; ok $? "-v exits 0"
$M --bogus >/tmp/mote_cli.$$ 2>&1; rc=$?
[ $rc = 2 ]; ok $? "unknown option exits 2 (got $rc)"
grep -q -- "--bogus" /tmp/mote_cli.$$ && [ "$(wc -l </tmp/mote_cli.$$)" = 1 ]; ok $? "unknown option: one line naming it"
rm -f /tmp/mote_cli.$$
