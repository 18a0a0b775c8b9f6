#!/bin/sh
# tests/bench/bench.sh — `make bench`: mote's prefill/decode speed on
# random-weight models with real shapes, memory read bandwidth, and the same
# figures for llama.cpp when its peer is installed (../shared/peer/README.md),
# measured in the same run; prints our/their ratios. doc/performance.md holds
# the figures of one run and what bounds them.
#
# Models (generated once, cached in $BENCH_DIR, default build/bench):
#   tinyllama: TinyLlama-1.1B shape (2048 dims, 22 layers, 32/4 heads, ffn 5632,
#              vocab 32000), smollm: SmolLM-135M shape (576, 30, 9/3, 1536, 49152);
#   random F16 weights from `mote gen-model`, quantized with `mote quantize`.
# Knobs (environment): BENCH_SHAPES="tinyllama smollm"  BENCH_TYPES="Q4_0 Q8_0 Q4_K_M"
#   BENCH_THREADS=1,2  BENCH_PP=128  BENCH_TG=128  BENCH_REPS=3  BENCH_PEER=auto|0
#   BENCH_MEMBW_MIB=1024  MOTE=./mote  BENCH_DIR=build/bench
# Output: progress on stderr; on stdout a markdown table, also saved as
# $BENCH_DIR/results.md with the raw lines in $BENCH_DIR/raw.txt.
set -eu

MOTE=${MOTE:-./mote}
DIR=${BENCH_DIR:-build/bench}
SHAPES=${BENCH_SHAPES:-tinyllama smollm}
TYPES=${BENCH_TYPES:-Q4_0 Q8_0 Q4_K_M}
THREADS=${BENCH_THREADS:-1,2}
PP=${BENCH_PP:-128}
TG=${BENCH_TG:-128}
REPS=${BENCH_REPS:-3}
PEER=${BENCH_PEER:-auto}
MEMBW_MIB=${BENCH_MEMBW_MIB:-1024}
PEER_JS=${PEER_JS:-../shared/peer/peer_node.mjs}
PEER_NODE_DIR=${PEER_NODE_DIR:-$HOME/.cache/mote-peer}

[ -x "$MOTE" ] || { echo "bench.sh: $MOTE not built (run make)" >&2; exit 2; }
mkdir -p "$DIR"
RAW=$DIR/raw.txt
: >"$RAW"
log() { echo "bench: $*" >&2; }

have_peer=0
if [ "$PEER" != 0 ] && command -v node >/dev/null 2>&1 && [ -f "$PEER_JS" ] &&
   [ -d "$PEER_NODE_DIR/node_modules/node-llama-cpp" ]; then
    have_peer=1
else
    log "llama.cpp peer not available (node, $PEER_JS, $PEER_NODE_DIR): mote figures only"
fi

# ---- the machine -------------------------------------------------------------
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
ncpu=$(getconf _NPROCESSORS_ONLN)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_vnni|avx512vnni|avx512_bf16)$' | tr '\n' ' ')
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo "+local changes" || true)
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $cpu, $ncpu CPUs, $mem, $(uname -sr); flags: $flags"
    echo "commit: $rev $dirty; $($MOTE --version | tr '\n' ' ')"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "settings: pp $PP, tg $TG, reps $REPS, threads $THREADS"
} | tee -a "$RAW" >&2

# ---- memory read bandwidth ----------------------------------------------------
membw_probe() { $MOTE bench --membw -t "$THREADS" --size "$MEMBW_MIB" -r 5 --json; }
membw_probe | tee -a "$RAW" >"$DIR/membw.json"
membw_of() {   # threads -> GB/s of the start probe
    sed -n "s/.*\"membw_gbps\":\([0-9.]*\),\"threads\":$1,.*/\1/p" "$DIR/membw.json" | sort -g | tail -1
}
for t in $(echo "$THREADS" | tr ',' ' '); do log "membw $t thread(s): $(membw_of "$t") GB/s"; done

# ---- models -------------------------------------------------------------------
model_file() {   # shape type -> path, generating/quantizing when missing
    base=$DIR/$1-F16.gguf
    if [ ! -f "$base" ]; then
        log "generating $base"
        $MOTE gen-model --shape "$1" --type f16 -o "$base" >&2
    fi
    q=$DIR/$1-$2.gguf
    if [ ! -f "$q" ] || [ "$base" -nt "$q" ]; then
        log "quantizing $q"
        $MOTE quantize -q "$base" "$q" "$2" >&2
    fi
    echo "$q"
}

# ---- measurements -------------------------------------------------------------
# rows of $DIR/rows.txt: shape type threads mote_pp mote_tg mote_gbps peer_pp peer_tg peer_pp_best peer_tg_best size_mib paired_membw paired_ratio
ROWS=$DIR/rows.txt
: >"$ROWS"
for shape in $SHAPES; do
    for type in $TYPES; do
        f=$(model_file "$shape" "$type")
        size=$(awk -v b="$(wc -c <"$f")" 'BEGIN { printf "%.0f", b / 1048576 }')
        log "mote bench $f (load $(cut -d' ' -f1 /proc/loadavg))"
        # --membw-pairs: the probe again right before each repetition's
        # decode steps (the machine's bandwidth drifts by 10-20% over
        # minutes here), each repetition's decode GB/s set against its own
        $MOTE bench -m "$f" -p "$PP" -n "$TG" -r "$REPS" -t "$THREADS" --membw-pairs --size "$MEMBW_MIB" --json \
            >"$DIR/mote.json"
        cat "$DIR/mote.json" >>"$RAW"
        : >"$DIR/peer.txt"
        if [ $have_peer = 1 ]; then
            log "llama.cpp bench $f (load $(cut -d' ' -f1 /proc/loadavg))"
            PEER_NODE_DIR=$PEER_NODE_DIR node "$PEER_JS" bench "$f" --threads "$THREADS" --pp "$PP" --tg "$TG" \
                --reps "$REPS" >"$DIR/peer.txt" 2>&1 || log "llama.cpp peer failed on $f: $(tail -1 "$DIR/peer.txt")"
            cat "$DIR/peer.txt" >>"$RAW"
        fi
        for t in $(echo "$THREADS" | tr ',' ' '); do
            m=$(sed -n "s/.*\"threads\":$t,.*\"pp_tps\":\([0-9.e+-]*\),\"tg_tps\":\([0-9.e+-]*\),\"decode_gbps\":\([0-9.e+-]*\).*/\1 \2 \3/p" \
                "$DIR/mote.json")
            pr=$(sed -n "s/.*\"threads\":$t,.*\"membw_gbps\":\([0-9.e+-]*\),\"decode_of_membw\":\([0-9.e+-]*\)}.*/\1 \2/p" \
                "$DIR/mote.json")
            # peer table row: | t | pp_best / pp_mean | tg_best / tg_mean |
            p=$(awk -F'|' -v t="$t" '$2 + 0 == t && $3 ~ /\// {
                    split($3, a, "/"); split($4, b, "/");
                    printf "%s %s %s %s", a[2] + 0, b[2] + 0, a[1] + 0, b[1] + 0 }' "$DIR/peer.txt")
            [ -n "$p" ] || p="- - - -"
            echo "$shape $type $t ${m:-- - -} $p $size ${pr:-- -}" >>"$ROWS"
        done
    done
done

# ---- the table ------------------------------------------------------------------
{
    echo
    echo "| model | type | MiB | thr | pp$PP mote | pp$PP llama.cpp | ratio | tg$TG mote | tg$TG llama.cpp | ratio | decode GB/s | of membw | paired membw | decode / paired |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    while read -r shape type t mpp mtg mgb ppp ptg pppb ptgb size pbw pr; do
        bw=$(membw_of "$t")
        awk -v s="$shape" -v ty="$type" -v t="$t" -v mpp="$mpp" -v mtg="$mtg" -v mgb="$mgb" -v ppp="$ppp" \
            -v ptg="$ptg" -v pppb="$pppb" -v ptgb="$ptgb" -v bw="$bw" -v size="$size" -v pbw="$pbw" -v pr="$pr" 'BEGIN {
            r1 = (ppp + 0 > 0) ? sprintf("%.2f", mpp / ppp) : "-";
            r2 = (ptg + 0 > 0) ? sprintf("%.2f", mtg / ptg) : "-";
            pb = (bw + 0 > 0) ? sprintf("%.0f%%", 100 * mgb / bw) : "-";
            pa = (pr + 0 > 0) ? sprintf("%.0f%%", 100 * pr) : "-";
            lp = (ppp + 0 > 0) ? sprintf("%.2f", ppp) : "-";
            lt = (ptg + 0 > 0) ? sprintf("%.2f", ptg) : "-";
            printf "| %s | %s | %s | %s | %.2f | %s | %s | %.2f | %s | %s | %.2f | %s | %s | %s |\n",
                   s, ty, size, t, mpp, lp, r1, mtg, lt, r2, mgb, pb, (pbw + 0 > 0) ? pbw : "-", pa }'
    done <"$ROWS"
    echo
    printf "membw (mote bench --membw, %s MiB, best of 5):" "$MEMBW_MIB"
    for t in $(echo "$THREADS" | tr ',' ' '); do printf " %s thread(s) %s GB/s;" "$t" "$(membw_of "$t")"; done
    echo
    echo "paired membw: median of the probes (same size, best of 5) run right before each repetition's decode steps;"
    echo "decode / paired: median over the repetitions of their decode GB/s over their own probe."
    echo "mote: median of $REPS; llama.cpp (node-llama-cpp peer): mean of $REPS (pp over $((PP - 1)) tokens)."
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$DIR/results.md"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW"
