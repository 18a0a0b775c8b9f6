#!/bin/sh
# test_tokenize.sh — `mote tokenize`: ids as one JSON line, flags, stdin, errors (exit 2, one line).
M=${MOTE_BIN:-./mote}
S=${MOTE_SHARED:-../shared}
V=$S/models/vocab
T=/tmp/mote_tok.$$
n=0
ok() { n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }
skip() { n=$((n+1)); echo "ok $n - $1 # SKIP $2"; }

$M tokenize --help >$T 2>&1; ok $? "tokenize --help exits 0"
grep -q -- '--parse-special' $T; ok $? "tokenize --help documents the flags"
$M tokenize x >$T 2>&1; rc=$?
[ $rc = 2 ] && [ "$(wc -l <$T)" = 1 ] && grep -q -- '-m' $T; ok $? "missing -m: exit 2, one line (rc $rc)"
$M tokenize -m /nonexistent.gguf x >$T 2>&1; rc=$?
[ $rc = 2 ] && [ "$(wc -l <$T)" = 1 ] && grep -q nonexistent $T; ok $? "unreadable model: exit 2, one line naming it"
$M tokenize -m x.gguf --frobnicate x >$T 2>&1; rc=$?
[ $rc = 2 ] && grep -q -- '--frobnicate' $T; ok $? "unknown option: exit 2 naming it"

if [ ! -f "$V/ggml-vocab-qwen2.gguf" ]; then
    skip "tokenize against real vocabularies" "../shared is absent (set MOTE_SHARED)"
    rm -f $T; exit 0
fi
out=$($M tokenize -m $V/ggml-vocab-qwen2.gguf "Hello world<|im_end|>")
[ "$out" = "[9707,1879,27,91,318,6213,91,29]" ]; ok $? "qwen2: plain text ids ($out)"
out=$($M tokenize -m $V/ggml-vocab-qwen2.gguf --parse-special "Hello world<|im_end|>")
[ "$out" = "[9707,1879,151645]" ]; ok $? "qwen2: --parse-special ($out)"
out=$(printf 'Hello world' | $M tokenize -m $V/ggml-vocab-llama-spm.gguf --add-special -)
[ "$out" = "[1,15043,3186]" ]; ok $? "llama-spm: stdin and --add-special ($out)"
out=$($M tokenize -m $V/ggml-vocab-llama-bpe.gguf --pieces "Hi there")
[ "$out" = '[{"id":13347,"piece":"Hi"},{"id":1070,"piece":" there"}]' ]; ok $? "llama-bpe: --pieces ($out)"
out=$($M tokenize -m $V/ggml-vocab-llama-bpe.gguf "")
[ "$out" = "[]" ]; ok $? "empty text gives []"
rm -f $T
