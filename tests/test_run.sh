#!/bin/sh
# test_run.sh — `mote run` and `mote info` from the command line:
# stories260K with "Once upon a time", greedy, prints llama.cpp's story text
# (the golden generated_text) on stdout and nothing else; usage errors exit 2.
M=${MOTE_BIN:-./mote}
S=${MOTE_SHARED:-../shared}
n=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
skip() { n=$((n+1)); echo "ok $n - $1 # SKIP $2"; }
T=/tmp/mote_run.$$

$M run >$T 2>&1; rc=$?
[ $rc = 2 ] && [ "$(wc -l <$T)" = 1 ]; ok $? "run without -m: exit 2, one line (got $rc)"
$M run -m /nonexistent.gguf -p hi >$T 2>&1; rc=$?
[ $rc = 2 ] && grep -q nonexistent $T; ok $? "run on a missing file: exit 2 naming it (got $rc)"
$M run -m x.gguf -p hi --kv-type q8 >$T 2>&1; rc=$?
[ $rc = 2 ]; ok $? "run --kv-type q8 refused (got $rc)"
$M info >$T 2>&1; rc=$?
[ $rc = 2 ]; ok $? "info without a file: exit 2 (got $rc)"

MODEL=$S/models/llama/stories260K.gguf
GOLD=$S/golden/llama/stories260K.json
if [ ! -f "$MODEL" ] || [ ! -f "$GOLD" ]; then
    skip "run stories260K" "../shared is absent (set MOTE_SHARED)"
    rm -f $T
    exit 0
fi
# the first generated_text of the golden file is the "Once upon a time" prompt's
want=$(sed -n 's/.*"generated_text": "\([^"]*\)".*/\1/p' "$GOLD" | head -n 1)
[ -n "$want" ]; ok $? "golden text found"
$M run -m "$MODEL" -p "Once upon a time" -n 32 --temp 0 -t 1 >$T.out 2>$T.err; rc=$?
[ $rc = 0 ]; ok $? "run exits 0 (got $rc)"
printf '%s\n' "$want" >$T.want
cmp -s $T.out $T.want; ok $? "stdout is exactly llama.cpp's continuation: $(cat $T.out)"
grep -q 'tok/s' $T.err; ok $? "timings on stderr"
for kv in f16 f32; do
    $M run -m "$MODEL" -p "Once upon a time" -n 32 --temp 0 -t 2 --kv-type $kv >$T.out 2>/dev/null
    cmp -s $T.out $T.want; ok $? "same text with 2 threads, --kv-type $kv"
done
$M run -m "$MODEL" -p "Once upon a time" -n 32 --temp 0 --kernels ref >$T.out 2>/dev/null
cmp -s $T.out $T.want; ok $? "same text with --kernels ref"
$M run -m "$MODEL" -p "Once upon a time" -n 24 --temp 0.8 --seed 7 >$T.a 2>/dev/null
$M run -m "$MODEL" -p "Once upon a time" -n 24 --temp 0.8 --seed 7 >$T.b 2>/dev/null
cmp -s $T.a $T.b && [ -s $T.a ]; ok $? "--temp 0.8 --seed 7 reproducible"
$M info "$MODEL" >$T.out 2>&1; rc=$?
[ $rc = 0 ] && grep -q 'architecture: llama' $T.out && grep -q 'n_layer 5' $T.out &&
    grep -q 'F32 x48' $T.out && grep -q 'blk.4.ffn_down.weight' $T.out
ok $? "info describes stories260K (arch, hyper-parameters, types, tensors)"
$M info "$S/models/synthetic/tiny-bert-32d2l-F32.gguf" >$T.out 2>&1; rc=$?
[ $rc = 0 ] && grep -q 'supported: no' $T.out; ok $? "info on bert: file described, marked unsupported"
$M run -m "$S/models/synthetic/tiny-bert-32d2l-F32.gguf" -p hi >$T.out 2>&1; rc=$?
[ $rc = 1 ] && grep -q "not supported" $T.out && [ "$(wc -l <$T.out)" = 1 ]
ok $? "run on bert: one clear line, exit 1 (got $rc)"
rm -f $T $T.out $T.err $T.want $T.a $T.b
