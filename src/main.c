/* main.c — the mote command line: wires the modules together.
 *
 * The only file that calls exit(). Subcommands:
 *     mote [serve] [options]      OpenAI-compatible server (default)
 *     mote run -m MODEL -p TEXT   generate from the command line
 *     mote info MODEL.gguf        describe a model file
 *     mote quantize IN OUT TYPE   rewrite a model in another weight type
 *     mote bench -m MODEL         prefill/decode speed; --membw: read bandwidth
 *     mote gen-model --shape S    random-weight model with a real shape
 * Exit codes: 0 success, 1 runtime failure, 2 usage error (unknown option,
 * missing argument, unreadable file), each with one line on stderr.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "bench.h"
#include "config.h"
#include "forward.h"
#include "gguf.h"
#include "json.h"
#include "http.h"
#include "kernels/kernels.h"
#include "log.h"
#include "loop.h"
#include "model.h"
#include "quantize.h"
#include "sampler.h"
#include "sched.h"
#include "thread.h"
#include "tls.h"
#include "tokenizer.h"
#include "version.h"

static const char usage_text[] =
    "usage: mote [serve] [options]        serve models over the OpenAI HTTP API\n"
    "       mote run -m MODEL.gguf -p PROMPT [-n N] [--temp T] [--seed S] [-t THREADS]\n"
    "       mote info MODEL.gguf\n"
    "       mote tokenize -m MODEL.gguf [--add-special] [--parse-special] [--pieces] TEXT|-\n"
    "       mote quantize [--pure] IN.gguf OUT.gguf TYPE\n"
    "       mote bench -m MODEL.gguf [-p 128] [-n 128] [-t T[,T...]] [-r 3] [--json] | --membw\n"
    "       mote gen-model --shape tinyllama|smollm|tiny -o OUT.gguf [--type f16]\n"
    "       mote --help | -v, --version\n"
    "\n"
    "general options:\n"
    "  --help            this text\n"
    "  -v, --version     version and build features (TLS, threads, kernels)\n";

static int cmd_version(void)
{
    char feat[256];
    version_features(feat, sizeof feat);
    printf("mote %s (%s)\n%s\n", MOTE_VERSION, version_revision(), feat);
    return 0;
}

/* mote tokenize: the ids of TEXT (or of stdin with "-") as one JSON array
 * on one line; --pieces prints [{"id":N,"piece":"..."},...] instead (pieces
 * as llama_token_to_piece with special=1; bytes that are not valid UTF-8 on
 * their own print as U+FFFD). No BOS/EOS unless --add-special; special-token
 * text is matched only with --parse-special. Errors: exit 2, one line. */
static const char tokenize_usage[] =
    "usage: mote tokenize -m MODEL.gguf [--add-special] [--parse-special] [--pieces] TEXT|-\n"
    "  prints the token ids of TEXT (\"-\": standard input) as one JSON array on one line\n"
    "  --add-special     add BOS/EOS as the model's tokenizer says (default: none)\n"
    "  --parse-special   match special-token text such as <|im_end|> (default: plain text)\n"
    "  --pieces          print [{\"id\":N,\"piece\":\"...\"},...] instead of [N,...]\n";

static int cmd_tokenize(int argc, char **argv)
{
    const char *path = NULL, *arg = NULL;
    int add = 0, parse = 0, pieces = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (++i >= argc) {
                fprintf(stderr, "mote tokenize: %s needs a model file\n", a);
                return 2;
            }
            path = argv[i];
        } else if (!strcmp(a, "--add-special")) {
            add = 1;
        } else if (!strcmp(a, "--parse-special")) {
            parse = 1;
        } else if (!strcmp(a, "--pieces")) {
            pieces = 1;
        } else if (!strcmp(a, "--help")) {
            fputs(tokenize_usage, stdout);
            return 0;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mote tokenize: unknown option '%s' (try 'mote tokenize --help')\n", a);
            return 2;
        } else if (arg) {
            fprintf(stderr, "mote tokenize: one TEXT argument expected (quote it), got also '%s'\n", a);
            return 2;
        } else {
            arg = a;
        }
    }
    if (!path || !arg) {
        fprintf(stderr, "mote tokenize: %s (try 'mote tokenize --help')\n", !path ? "-m MODEL.gguf is required" : "TEXT (or - for stdin) is required");
        return 2;
    }
    char *text = NULL;
    size_t len = 0;
    if (!strcmp(arg, "-")) {
        size_t cap = 0;
        for (;;) {
            if (len == cap) {
                char *t = cap < ((size_t)1 << 30) ? realloc(text, cap = cap ? 2 * cap : 65536) : NULL;
                if (!t) {
                    fprintf(stderr, "mote tokenize: standard input too large (over %zu bytes)\n", len);
                    free(text);
                    return 2;
                }
                text = t;
            }
            size_t k = fread(text + len, 1, cap - len, stdin);
            len += k;
            if (k == 0) break;
        }
    }
    gguf_file g;
    if (gguf_open(&g, path) < 0) {
        if (strstr(g.err, path)) fprintf(stderr, "mote tokenize: %s\n", g.err);
        else fprintf(stderr, "mote tokenize: %s: %s\n", path, g.err);
        free(text);
        return 2;
    }
    tok_vocab v;
    char err[256];
    int rc = tok_vocab_load(&v, &g, err, sizeof err);
    gguf_close(&g);
    if (rc < 0) {
        fprintf(stderr, "mote tokenize: %s: %s\n", path, err);
        free(text);
        return 2;
    }
    const char *src = text ? text : arg;
    size_t n = text ? len : strlen(arg);
    int32_t cap = 64, k;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    while (ids && (k = tok_encode(&v, src, n, add, parse, ids, cap)) < 0 && k != TOK_ENCODE_ERROR) {
        cap = -k;
        int32_t *t = realloc(ids, (size_t)cap * sizeof *ids);
        if (!t) break;
        ids = t;
    }
    if (!ids || k < 0) {
        fprintf(stderr, "mote tokenize: out of memory tokenizing %zu bytes\n", n);
        free(ids);
        free(text);
        tok_vocab_free(&v);
        return 2;
    }
    /* worst case per id: {"id":-2147483648,"piece":"..."} with each piece byte
     * escaped as \u00XX (6 bytes; invalid UTF-8 becomes a 3-byte U+FFFD) */
    char piece[TOK_PIECE_MAX];
    size_t outcap = 16;
    for (int32_t i = 0; i < k; i++)
        outcap += 32 + (pieces ? 6 * (size_t)tok_token_to_piece(&v, ids[i], piece, sizeof piece, 0, 1) : 0);
    char *out = malloc(outcap);
    json_writer w;
    json_writer_init(&w, out, out ? outcap : 0);
    json_write_arr_begin(&w);
    for (int32_t i = 0; i < k; i++) {
        if (!pieces) {
            json_write_int(&w, ids[i]);
            continue;
        }
        int32_t pl = tok_token_to_piece(&v, ids[i], piece, sizeof piece, 0, 1);
        json_write_obj_begin(&w);
        json_write_key(&w, "id");
        json_write_int(&w, ids[i]);
        json_write_key(&w, "piece");
        json_write_strn(&w, piece, pl > 0 ? (size_t)pl : 0);
        json_write_obj_end(&w);
    }
    json_write_arr_end(&w);
    rc = json_writer_finish(&w) < 0 ? 2 : 0;
    if (rc) fprintf(stderr, "mote tokenize: out of memory printing %d ids\n", (int)k);
    else printf("%.*s\n", (int)w.len, w.buf);
    free(out);
    free(ids);
    free(text);
    tok_vocab_free(&v);
    return rc;
}

/* ---- mote run: generate from the command line ----
 * stdout carries only the generated text, streamed token by token (a UTF-8
 * character split across tokens is held back until complete); load
 * information and timings go to stderr. */
static const char run_usage[] =
    "usage: mote run -m MODEL.gguf -p PROMPT [options]\n"
    "  -n N               tokens to generate (default 128)\n"
    "  --temp T           temperature; 0 = greedy (default 0.8)\n"
    "  --top-k K          (default 40; 0 = off)   --top-p P (default 0.95)   --min-p P (default 0.05)\n"
    "  --repeat-penalty R (default 1 = off)\n"
    "  --seed S           RNG seed (default 0)\n"
    "  -t THREADS         threads (default: one per CPU)\n"
    "  -c CTX             context length (default: prompt + N, at most the model's)\n"
    "  --kv-type f16|f32  KV cache element type (default f16)\n"
    "  --kernels NAME     force a kernel table: ref, avx2, avx512, neon (default: best)\n"
    "  --no-pack          no packed copy of the weights (less memory, slower decode)\n"
    "  --ignore-eos       do not stop at end-of-generation tokens\n";

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Parse a number argument; 0 or -1 (message printed). */
static int arg_num(int argc, char **argv, int *i, double lo, double hi, double *out)
{
    const char *opt = argv[*i];
    if (++*i >= argc) {
        fprintf(stderr, "mote run: %s needs a value\n", opt);
        return -1;
    }
    char *end;
    double v = strtod(argv[*i], &end);
    if (end == argv[*i] || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "mote run: %s: '%s' is not a number in [%g, %g]\n", opt, argv[*i], lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    const char *path = NULL, *prompt = NULL, *kernels = NULL;
    double n_predict = 128, threads = 0, ctx = 0, seed = 0;
    int kv_type = KERN_F16, ignore_eos = 0, no_pack = 0;
    sampler_params sp;
    sampler_params_default(&sp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double v;
        if ((!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-p") || !strcmp(a, "--prompt") ||
             !strcmp(a, "--kernels") || !strcmp(a, "--kv-type")) && i + 1 >= argc) {
            fprintf(stderr, "mote run: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) path = argv[++i];
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = argv[++i];
        else if (!strcmp(a, "--kernels")) kernels = argv[++i];
        else if (!strcmp(a, "--no-pack")) no_pack = 1;
        else if (!strcmp(a, "--kv-type")) {
            const char *t = argv[++i];
            if (!strcmp(t, "f16")) kv_type = KERN_F16;
            else if (!strcmp(t, "f32")) kv_type = KERN_F32;
            else {
                fprintf(stderr, "mote run: --kv-type must be f16 or f32, not '%s'\n", t);
                return 2;
            }
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (arg_num(argc, argv, &i, 0, 1 << 30, &n_predict)) return 2;
        } else if (!strcmp(a, "--temp")) {
            if (arg_num(argc, argv, &i, 0, 1e6, &v)) return 2;
            sp.temp = (float)v;
        } else if (!strcmp(a, "--top-k")) {
            if (arg_num(argc, argv, &i, 0, 1 << 30, &v)) return 2;
            sp.top_k = (int)v;
        } else if (!strcmp(a, "--top-p")) {
            if (arg_num(argc, argv, &i, 0, 1, &v)) return 2;
            sp.top_p = (float)v;
        } else if (!strcmp(a, "--min-p")) {
            if (arg_num(argc, argv, &i, 0, 1, &v)) return 2;
            sp.min_p = (float)v;
        } else if (!strcmp(a, "--repeat-penalty")) {
            if (arg_num(argc, argv, &i, 0, 1e6, &v)) return 2;
            sp.repeat_penalty = (float)v;
        } else if (!strcmp(a, "--seed") || !strcmp(a, "-s")) {
            if (arg_num(argc, argv, &i, 0, 18446744073709551615.0, &seed)) return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (arg_num(argc, argv, &i, 0, THREAD_MAX, &threads)) return 2;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            if (arg_num(argc, argv, &i, 0, 1 << 24, &ctx)) return 2;
        } else if (!strcmp(a, "--ignore-eos")) {
            ignore_eos = 1;
        } else if (!strcmp(a, "--help")) {
            fputs(run_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "mote run: unknown option '%s' (try 'mote run --help')\n", a);
            return 2;
        }
    }
    if (!path || !prompt) {
        fprintf(stderr, "mote run: %s (try 'mote run --help')\n",
                !path ? "-m MODEL.gguf is required" : "-p PROMPT is required");
        return 2;
    }
    sp.seed = (uint64_t)seed;
    const kern_table *kt = kern_select(kernels);
    if (!kt) {
        fprintf(stderr, "mote run: kernel table '%s' is not available on this CPU/build (compiled: %s)\n",
                kernels, kern_compiled_names());
        return 2;
    }

    double t0 = now_sec();
    model m;
    int rc = model_open(&m, path);
    if (rc < 0) {
        fprintf(stderr, "mote run: %s\n", m.err);
        return rc == MODEL_ERR_UNSUPPORTED || rc == MODEL_ERR_NOMEM ? 1 : 2;
    }
    if (!no_pack && model_pack(&m, kt) < 0) fprintf(stderr, "mote run: %s; using the mapped weights\n", m.err);
    tok_vocab voc;
    char err[256];
    if (tok_vocab_load(&voc, m.g, err, sizeof err) < 0) {
        fprintf(stderr, "mote run: %s: %s\n", path, err);
        model_free(&m);
        return 1;
    }
    int32_t cap = 256, n_prompt = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    while (ids && (n_prompt = tok_encode(&voc, prompt, strlen(prompt), 1, 1, ids, cap)) < 0 &&
           n_prompt != TOK_ENCODE_ERROR) {
        cap = -n_prompt;
        int32_t *t = realloc(ids, (size_t)cap * sizeof *ids);
        if (!t) break;
        ids = t;
    }
    rc = 1;
    fwd_ctx fc;
    fwd_kv kv;
    thread_pool tp;
    sampler smp;
    memset(&fc, 0, sizeof fc);
    memset(&kv, 0, sizeof kv);
    memset(&smp, 0, sizeof smp);
    thread_pool_init(&tp, (int)threads);
    float *logits = malloc((size_t)m.hp.n_vocab * sizeof *logits);
    if (!ids || n_prompt < 0 || !logits) {
        fprintf(stderr, "mote run: out of memory\n");
        goto out;
    }
    if (n_prompt == 0) {
        fprintf(stderr, "mote run: the prompt is empty after tokenization\n");
        goto out;
    }
    int n_ctx = (int)ctx;
    if (n_ctx == 0) {
        int64_t want = (int64_t)n_prompt + (int64_t)n_predict;
        n_ctx = want > m.hp.n_ctx_train ? m.hp.n_ctx_train : (int)want;
    }
    if (n_prompt >= n_ctx) {
        fprintf(stderr, "mote run: the prompt has %d tokens, the context only %d\n", n_prompt, n_ctx);
        goto out;
    }
    if (fwd_init(&fc, &m, kt, &tp, 0) < 0) {
        fprintf(stderr, "mote run: %s\n", fc.err);
        goto out;
    }
    if (fwd_kv_init(&kv, &m, n_ctx, kv_type) < 0 || sampler_init(&smp, m.hp.n_vocab, &sp) < 0) {
        fprintf(stderr, "mote run: out of memory for a %d-token context\n", n_ctx);
        goto out;
    }
    fprintf(stderr, "mote run: %s: %s, %d layers, %d vocab; %d prompt tokens; ctx %d, KV %s (%.1f MiB); "
            "kernels %s, %d threads; loaded in %.2f s\n",
            path, model_arch_name(m.arch), m.hp.n_layer, m.hp.n_vocab, n_prompt, n_ctx,
            kv_type == KERN_F16 ? "f16" : "f32", fwd_kv_bytes(&kv) / 1048576.0, kt->name,
            tp.n_threads, now_sec() - t0);

    double t1 = now_sec();
    if (fwd_eval(&fc, &kv, ids, n_prompt, logits, 0) < 0) {
        fprintf(stderr, "mote run: %s\n", fc.err);
        goto out;
    }
    for (int i = 0; i < n_prompt; i++) sampler_accept(&smp, ids[i]);
    double t2 = now_sec();
    tok_stream ts;
    tok_stream_init(&ts);
    char obuf[TOK_PIECE_MAX * 3 + 16];
    int n_gen = 0;
    const char *stop = "limit";
    while (n_gen < (int)n_predict) {
        int32_t id = sampler_sample(&smp, logits);
        if (!ignore_eos && tok_is_eog(&voc, id)) {
            stop = "eos";
            break;
        }
        sampler_accept(&smp, id);
        n_gen++;
        int32_t k = tok_stream_push(&ts, &voc, id, 0, obuf, sizeof obuf);
        if (k > 0) {
            fwrite(obuf, 1, (size_t)k, stdout);
            fflush(stdout);
        }
        if (n_gen == (int)n_predict) break;
        if (kv.n_past >= n_ctx) {
            stop = "context full";
            break;
        }
        if (fwd_eval(&fc, &kv, &id, 1, logits, 0) < 0) {
            fprintf(stderr, "\nmote run: %s\n", fc.err);
            goto out;
        }
    }
    int32_t k = tok_stream_flush(&ts, obuf, sizeof obuf);
    if (k > 0) fwrite(obuf, 1, (size_t)k, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    double t3 = now_sec();
    fprintf(stderr, "mote run: prompt %d tokens in %.3f s (%.1f tok/s), generated %d tokens in %.3f s "
            "(%.1f tok/s), stop: %s\n",
            n_prompt, t2 - t1, n_prompt / (t2 - t1 > 0 ? t2 - t1 : 1e-9), n_gen, t3 - t2,
            n_gen / (t3 - t2 > 0 ? t3 - t2 : 1e-9), stop);
    rc = 0;
out:
    sampler_free(&smp);
    fwd_kv_free(&kv);
    fwd_free(&fc);
    thread_pool_free(&tp);
    free(logits);
    free(ids);
    tok_vocab_free(&voc);
    model_free(&m);
    return rc;
}

/* ---- mote info: describe a model file ---- */

static void print_bytes(uint64_t b)
{
    if (b >= (1ull << 30)) printf("%.2f GiB", b / 1073741824.0);
    else if (b >= (1ull << 20)) printf("%.2f MiB", b / 1048576.0);
    else if (b >= 1024) printf("%.2f KiB", b / 1024.0);
    else printf("%llu B", (unsigned long long)b);
}

static int cmd_info(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        if (argc == 2 && !strcmp(argv[1], "--help")) {
            puts("usage: mote info MODEL.gguf\n  architecture, hyper-parameters, tokenizer, tensors");
            return 0;
        }
        fprintf(stderr, "usage: mote info MODEL.gguf\n");
        return 2;
    }
    const char *path = argv[1];
    gguf_file g;
    if (gguf_open(&g, path) < 0) {
        if (strstr(g.err, path)) fprintf(stderr, "mote info: %s\n", g.err);
        else fprintf(stderr, "mote info: %s: %s\n", path, g.err);
        return 2;
    }
    gguf_str s;
    printf("file: %s (", path);
    print_bytes(g.size);
    printf("), GGUF v%u, %llu metadata keys, %llu tensors, alignment %llu\n", g.version,
           (unsigned long long)g.n_kv, (unsigned long long)g.n_tensors,
           (unsigned long long)g.alignment);
    if (gguf_get_str(&g, "general.name", &s) == 0) printf("name: %.*s\n", (int)s.len, s.ptr);
    if (gguf_get_str(&g, "general.architecture", &s) == 0)
        printf("architecture: %.*s\n", (int)s.len, s.ptr);
    else
        printf("architecture: (missing)\n");

    model m;
    memset(&m, 0, sizeof m);
    if (model_init(&m, &g) == 0) {
        const model_hparams *hp = &m.hp;
        printf("hyper-parameters: n_vocab %d, n_embd %d, n_layer %d, n_head %d, n_head_kv %d, "
               "head_dim %d/%d, n_ff %d\n",
               hp->n_vocab, hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->head_dim_k,
               hp->head_dim_v, hp->n_ff);
        printf("  rope: %s, n_rot %d, base %g, freq_scale %g%s; rms_eps %g; ctx_train %d; "
               "output %s\n",
               hp->rope_type == MODEL_ROPE_NEOX ? "neox" : "norm", hp->n_rot, hp->rope_base,
               hp->rope_freq_scale, m.rope_freqs ? ", rope_freqs" : "", hp->rms_eps,
               hp->n_ctx_train, m.tied_output ? "tied to token_embd" : "separate");
        model_free(&m);
    } else {
        printf("supported: no: %s\n", m.err);
    }

    tok_vocab v;
    char err[256];
    if (tok_vocab_load(&v, &g, err, sizeof err) == 0) {
        printf("tokenizer: %s%s%s, %d tokens, bos %d, eos %d, eot %d, add_bos %d, add_eos %d, "
               "%d end-of-generation ids\n",
               v.model, v.pre[0] ? " / " : "", v.pre, v.n_vocab, v.bos, v.eos, v.eot, v.add_bos,
               v.add_eos, v.n_eog);
        tok_vocab_free(&v);
    } else {
        printf("tokenizer: not usable: %s\n", err);
    }

    uint64_t count[KERN_TYPE_COUNT] = { 0 }, bytes[KERN_TYPE_COUNT] = { 0 }, total = 0;
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const gguf_tensor *t = &g.tensors[i];
        if (t->type >= 0 && t->type < KERN_TYPE_COUNT) {
            count[t->type]++;
            bytes[t->type] += t->nbytes;
        }
        total += t->nbytes;
    }
    printf("tensors: %llu, ", (unsigned long long)g.n_tensors);
    print_bytes(total);
    printf(" total:");
    for (int t = 0; t < KERN_TYPE_COUNT; t++) {
        if (!count[t]) continue;
        const kern_traits *tr = kern_type_traits(t);
        printf(" %s x%llu (", tr ? tr->name : "?", (unsigned long long)count[t]);
        print_bytes(bytes[t]);
        printf(")");
    }
    printf("\n");
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const gguf_tensor *t = &g.tensors[i];
        const kern_traits *tr = kern_type_traits(t->type);
        printf("  %-40.*s %-7s [", (int)t->name.len, t->name.ptr, tr ? tr->name : "?");
        for (int d = 0; d < t->n_dims; d++)
            printf("%s%lld", d ? ", " : "", (long long)t->ne[d]);
        printf("] %llu bytes\n", (unsigned long long)t->nbytes);
    }
    gguf_close(&g);
    return 0;
}

/* ---- mote quantize / bench / gen-model: the measuring tools ----
 * quantize rewrites a model in another type (quantize.h has the rules);
 * bench measures prefill/decode speed and memory bandwidth (bench.h);
 * gen-model writes random-weight models with real shapes to measure on. */

/* An integer option value in [lo, hi]: 0, or -1 after a message. */
static int opt_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || end == s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "mote %s: %s: '%s' is not an integer in [%ld, %ld]\n", cmd, opt, s ? s : "", lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static const char quantize_usage[] =
    "usage: mote quantize [--pure] [-t THREADS] [-q] IN.gguf OUT.gguf TYPE\n"
    "  rewrites IN with its weights in TYPE, choosing per tensor as llama-quantize does\n"
    "  TYPE       %s\n"
    "  --pure     every weight in TYPE (no _M/_S/_L mix rules; row-length fallbacks still apply)\n"
    "  -t N       threads (default: one per CPU)\n"
    "  -q         no per-tensor lines\n";

static int cmd_quantize(int argc, char **argv)
{
    const char *pos[3];
    int n_pos = 0;
    quant_params qp = { .ftype = -1, .pure = 0, .n_threads = 0, .log = stderr };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long v;
        if (!strcmp(a, "--pure")) qp.pure = 1;
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) qp.log = NULL;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (opt_int("quantize", a, i + 1 < argc ? argv[++i] : NULL, 0, THREAD_MAX, &v) < 0) return 2;
            qp.n_threads = (int)v;
        } else if (!strcmp(a, "--help")) {
            printf(quantize_usage, quant_ftype_names());
            return 0;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "mote quantize: unknown option '%s' (try 'mote quantize --help')\n", a);
            return 2;
        } else if (n_pos == 3) {
            fprintf(stderr, "mote quantize: too many arguments ('%s')\n", a);
            return 2;
        } else {
            pos[n_pos++] = a;
        }
    }
    if (n_pos != 3) {
        fprintf(stderr, "mote quantize: IN.gguf OUT.gguf TYPE are required (try 'mote quantize --help')\n");
        return 2;
    }
    qp.ftype = quant_ftype_parse(pos[2]);
    if (qp.ftype < 0) {
        fprintf(stderr, "mote quantize: unknown type '%s'; one of: %s\n", pos[2], quant_ftype_names());
        return 2;
    }
    char err[512];
    double t0 = now_sec();
    int rc = quant_file(pos[0], pos[1], &qp, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "mote quantize: %s\n", err);
        return rc == QUANT_ERR_IO || rc == QUANT_ERR_ARG || rc == QUANT_ERR_FORMAT ? 2 : 1;
    }
    if (qp.log) fprintf(stderr, "mote quantize: wrote %s in %.1f s\n", pos[1], now_sec() - t0);
    return 0;
}

static const char bench_usage[] =
    "usage: mote bench -m MODEL.gguf [-p 128] [-n 128] [-t T[,T...]] [-r 3] [--json] [--kernels NAME] [--no-pack]\n"
    "                  [--membw-pairs [--size MIB]]\n"
    "       mote bench --membw [-t T[,T...]] [--size MIB] [-r 5] [--json]\n"
    "  pp: one batch of P prompt tokens into an empty context; tg: N decode steps after it;\n"
    "  each the median over R repetitions; decode GB/s = weight bytes read per token x tg t/s\n"
    "  -t         thread counts, comma-separated (default: one per CPU)\n"
    "  --json     one JSON object per thread count per line\n"
    "  --no-pack  measure the mapped weights, not the kernel table's packed copy\n"
    "  --membw-pairs  also probe the read bandwidth (as --membw) right before each repetition's\n"
    "             decode steps: median probe and median of decode GB/s / its own probe\n"
    "  --membw    read bandwidth: sum a buffer of MIB MiB (default 1024), best of R passes\n";

static double round2(double v) { return round(v * 100.0) / 100.0; }

static int cmd_bench(int argc, char **argv)
{
    const char *path = NULL, *kernels = NULL, *tlist = NULL;
    long pp = 128, tg = 128, reps = -1, size_mib = 1024;
    int json = 0, membw = 0, no_pack = 0, pairs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--no-pack")) no_pack = 1;
        else if (!strcmp(a, "--membw")) membw = 1;
        else if (!strcmp(a, "--membw-pairs")) pairs = 1;
        else if (!strcmp(a, "--help")) {
            fputs(bench_usage, stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--kernels") || !strcmp(a, "-t") ||
                   !strcmp(a, "--threads")) {
            if (!val) {
                fprintf(stderr, "mote bench: %s needs a value\n", a);
                return 2;
            }
            i++;
            if (a[1] == 'm' || a[2] == 'm') path = val;
            else if (a[2] == 'k') kernels = val;
            else tlist = val;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            if (opt_int("bench", a, val, 0, 1 << 16, &pp) < 0) return 2;
            i++;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            if (opt_int("bench", a, val, 0, 1 << 16, &tg) < 0) return 2;
            i++;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            if (opt_int("bench", a, val, 1, 1000, &reps) < 0) return 2;
            i++;
        } else if (!strcmp(a, "--size")) {
            if (opt_int("bench", a, val, 1, 1 << 20, &size_mib) < 0) return 2;
            i++;
        } else {
            fprintf(stderr, "mote bench: unknown option '%s' (try 'mote bench --help')\n", a);
            return 2;
        }
    }
    /* thread counts: "1,2,4" */
    int threads[16], n_t = 0;
    if (!tlist) threads[n_t++] = 0;
    for (const char *s = tlist; s && *s;) {
        char item[16];
        size_t len = strcspn(s, ",");
        long v;
        if (len == 0 || len >= sizeof item || n_t == 16) {
            fprintf(stderr, "mote bench: -t: bad thread list '%s'\n", tlist);
            return 2;
        }
        memcpy(item, s, len);
        item[len] = 0;
        if (opt_int("bench", "-t", item, 1, THREAD_MAX, &v) < 0) return 2;
        threads[n_t++] = (int)v;
        s += len + (s[len] == ',');
    }

    if (membw) {
        if (path) {
            fprintf(stderr, "mote bench: --membw takes no model\n");
            return 2;
        }
        for (int k = 0; k < n_t; k++) {
            int used = 0;
            double gbps = bench_membw(threads[k], (size_t)size_mib << 20, reps > 0 ? (int)reps : 5, &used);
            if (gbps < 0) {
                fprintf(stderr, "mote bench: --membw: cannot allocate %ld MiB\n", size_mib);
                return 1;
            }
            if (json) printf("{\"membw_gbps\":%.2f,\"threads\":%d,\"bytes\":%llu}\n", gbps, used,
                             (unsigned long long)size_mib << 20);
            else printf("membw: %d thread%s, %ld MiB buffer: %.2f GB/s read\n", used, used == 1 ? "" : "s",
                        size_mib, gbps);
            fflush(stdout);
        }
        return 0;
    }
    if (!path) {
        fprintf(stderr, "mote bench: -m MODEL.gguf (or --membw) is required (try 'mote bench --help')\n");
        return 2;
    }
    if (pp + tg < 1) {
        fprintf(stderr, "mote bench: -p and -n are both 0: nothing to measure\n");
        return 2;
    }
    const kern_table *kt = kern_select(kernels);
    if (!kt) {
        fprintf(stderr, "mote bench: kernel table '%s' is not available on this CPU/build (compiled: %s)\n", kernels,
                kern_compiled_names());
        return 2;
    }
    model m;
    int rc = model_open(&m, path);
    if (rc < 0) {
        fprintf(stderr, "mote bench: %s\n", m.err);
        return rc == MODEL_ERR_UNSUPPORTED || rc == MODEL_ERR_NOMEM ? 1 : 2;
    }
    if (!no_pack && model_pack(&m, kt) < 0) fprintf(stderr, "mote bench: %s; measuring the mapped weights\n", m.err);
    uint32_t ft = 0;
    int has_ft = gguf_get_u32(m.g, "general.file_type", &ft) == 0;
    const char *ftn = has_ft ? quant_ftype_name((int)ft) : NULL;
    if (!json)
        fprintf(stdout, "model: %s (%s, %.2f MiB of weights, %.2f MiB read per decoded token), kernels %s\n", path,
                ftn ? ftn : "?", model_weight_bytes(&m) / 1048576.0, bench_decode_bytes(&m) / 1048576.0, kt->name);
    rc = 0;
    for (int k = 0; k < n_t; k++) {
        bench_result r;
        char err[256];
        if (bench_model(&m, kt, threads[k], (int)pp, (int)tg, reps > 0 ? (int)reps : 3,
                        pairs ? (size_t)size_mib << 20 : 0, &r, err, sizeof err) < 0) {
            fprintf(stderr, "mote bench: %s: %s\n", path, err);
            rc = 1;
            break;
        }
        if (json) {
            char buf[1024];
            json_writer w;
            json_writer_init(&w, buf, sizeof buf);
            json_write_obj_begin(&w);
            json_write_key(&w, "model");
            json_write_str(&w, path);
            json_write_key(&w, "threads");
            json_write_int(&w, r.threads);
            json_write_key(&w, "pp");
            json_write_int(&w, r.pp);
            json_write_key(&w, "tg");
            json_write_int(&w, r.tg);
            json_write_key(&w, "pp_tps");
            json_write_double(&w, round2(r.pp_tps));
            json_write_key(&w, "tg_tps");
            json_write_double(&w, round2(r.tg_tps));
            json_write_key(&w, "decode_gbps");
            json_write_double(&w, round2(r.decode_gbps));
            if (pairs && r.tg > 0) {
                json_write_key(&w, "membw_gbps");
                json_write_double(&w, round2(r.membw_gbps));
                json_write_key(&w, "decode_of_membw");
                json_write_double(&w, round(r.decode_of_membw * 1000.0) / 1000.0);
            }
            json_write_obj_end(&w);
            if (json_writer_finish(&w) < 0) {
                fprintf(stderr, "mote bench: model path too long for the JSON line\n");
                rc = 1;
                break;
            }
            printf("%.*s\n", (int)w.len, w.buf);
        } else {
            printf("threads %d: pp%d %8.2f t/s (best %.2f) | tg%d %7.2f t/s (best %.2f) | decode %.2f GB/s\n",
                   r.threads, r.pp, r.pp_tps, r.pp_tps_best, r.tg, r.tg_tps, r.tg_tps_best, r.decode_gbps);
            if (r.tg > 0)
                printf("  decode step: matmul %.2f ms (%.2f GB/s), attention %.2f ms, other %.2f ms\n",
                       r.tg_ms_matmul, r.tg_ms_matmul > 0 ? (double)r.decode_bytes / (r.tg_ms_matmul * 1e6) : 0.0,
                       r.tg_ms_attn, r.tg_ms_other);
            if (pairs && r.tg > 0)
                printf("  paired membw probes: median %.2f GB/s; decode / its probe: median %.1f%%\n", r.membw_gbps,
                       100.0 * r.decode_of_membw);
        }
        fflush(stdout);
    }
    model_free(&m);
    return rc;
}

static const char gen_model_usage[] =
    "usage: mote gen-model --shape NAME -o OUT.gguf [--type f16] [--seed S] [-t THREADS]\n"
    "  writes a random-weight llama model with a real shape, for benchmarks and tests\n"
    "  --shape    %s (tinyllama: TinyLlama-1.1B, smollm: SmolLM-135M)\n"
    "  --type     2-D weight type: f32, f16, bf16 or a quantized type such as q8_0 (default f16)\n";

static int cmd_gen_model(int argc, char **argv)
{
    const char *shape = NULL, *out = NULL, *tname = "f16";
    long seed = 1, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) {
            printf(gen_model_usage, bench_shape_names());
            return 0;
        }
        if (!strcmp(a, "--shape") || !strcmp(a, "-o") || !strcmp(a, "--type")) {
            if (!val) {
                fprintf(stderr, "mote gen-model: %s needs a value\n", a);
                return 2;
            }
            i++;
            if (a[1] == 'o') out = val;
            else if (a[2] == 's') shape = val;
            else tname = val;
        } else if (!strcmp(a, "--seed")) {
            if (opt_int("gen-model", a, val, 0, 2147483647L, &seed) < 0) return 2;
            i++;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (opt_int("gen-model", a, val, 0, THREAD_MAX, &threads) < 0) return 2;
            i++;
        } else {
            fprintf(stderr, "mote gen-model: unknown option '%s' (try 'mote gen-model --help')\n", a);
            return 2;
        }
    }
    const bench_shape *s = bench_shape_find(shape);
    if (!s || !out) {
        fprintf(stderr, "mote gen-model: %s (shapes: %s)\n",
                !shape ? "--shape is required" : !s ? "unknown --shape" : "-o OUT.gguf is required",
                bench_shape_names());
        return 2;
    }
    int type = -1;
    for (int t = 0; t < KERN_TYPE_COUNT; t++) {
        const kern_traits *tr = kern_type_traits(t);
        if (tr && !strcasecmp(tr->name, tname)) type = t;
    }
    if (type < 0) {
        fprintf(stderr, "mote gen-model: unknown --type '%s' (f32, f16, bf16, q8_0, q4_0, q4_k, ...)\n", tname);
        return 2;
    }
    char err[512];
    double t0 = now_sec();
    if (bench_gen_model(out, s, type, (uint64_t)seed, (int)threads, err, sizeof err) < 0) {
        fprintf(stderr, "mote gen-model: %s\n", err);
        return 1;
    }
    fprintf(stderr, "mote gen-model: wrote %s (%s, %s weights) in %.1f s\n", out, s->name,
            kern_type_traits(type)->name, now_sec() - t0);
    return 0;
}

/* ---- mote serve ---------------------------------------------------------------
 * The server: config -> one sched_model per model (each worker loads its
 * model in the background: /health says 503 until all are ready) -> the
 * API over the poll loop. SIGTERM/SIGINT stop gracefully (in-flight
 * responses get --shutdown-timeout seconds), a second signal exits at once.
 * The API answers later through loop handles packed into 64 bits. */

static loop g_loop;
static volatile sig_atomic_t g_signals;
static atomic_int g_load_failed;

static void serve_on_signal(int sig)
{
    (void)sig;
    if (g_signals++) _exit(1);
    loop_stop(&g_loop);
}

static uint64_t handle_pack(loop_handle h) { return (uint64_t)h.slot << 32 | h.gen; }
static loop_handle handle_unpack(void *ctx, uint64_t v)
{
    loop_handle h = { ctx, (uint32_t)(v >> 32), (uint32_t)v };
    return h;
}

static int tr_send(void *ctx, uint64_t h, int status, const char *ctype, const char *extra, const char *body,
                   size_t len)
{
    int rc = loop_send(handle_unpack(ctx, h), status, ctype, extra, body, len);
    if (rc == LOOP_TOO_BIG) {
        static const char msg[] = "{\"error\":{\"message\":\"The response is larger than the server's write "
                                  "buffer.\",\"type\":\"server_error\",\"param\":null,\"code\":\"response_too_large\"}}";
        rc = loop_send(handle_unpack(ctx, h), 500, "application/json", NULL, msg, sizeof msg - 1);
    }
    return rc;
}
static int tr_sse_start(void *ctx, uint64_t h, const char *extra) { return loop_sse_start(handle_unpack(ctx, h), extra); }
static int tr_sse_raw(void *ctx, uint64_t h, const char *ev, size_t len) { return loop_sse_raw(handle_unpack(ctx, h), ev, len); }
static int tr_sse_comment(void *ctx, uint64_t h, const char *text) { return loop_sse_comment(handle_unpack(ctx, h), text); }
static int tr_sse_end(void *ctx, uint64_t h) { return loop_sse_end(handle_unpack(ctx, h)); }
static int tr_abort(void *ctx, uint64_t h) { return loop_abort(handle_unpack(ctx, h)); }
static int tr_note(void *ctx, uint64_t h, const char *text) { return loop_note(handle_unpack(ctx, h), text); }

static void serve_on_cancel(void *arg) { api_cancel(arg); }

static void serve_on_request(void *ctx, const http_request *req, const char *body, size_t len, loop_reply *r)
{
    api *a = ctx;
    const http_header *auth = http_header_find(req, "authorization");
    api_request q = {
        .method = req->method, .method_len = req->method_len,
        .path = req->path, .path_len = req->path_len,
        .query = req->query, .query_len = req->query_len,
        .auth = auth ? auth->value : NULL, .auth_len = auth ? auth->value_len : 0,
        .body = body, .body_len = len,
    };
    api_response resp;
    int rc = api_handle(a, &q, &resp);
    for (int i = 0; i < resp.n_headers; i++) loop_reply_header(r, resp.hname[i], resp.hvalue[i]);
    if (resp.note[0]) loop_reply_note(r, resp.note);
    if (rc == API_DEFER) {
        loop_handle h = loop_reply_defer(r, serve_on_cancel, resp.call);
        api_start(a, resp.call, handle_pack(h));
        return;
    }
    if (resp.close) loop_reply_close(r);
    if (loop_reply_send(r, resp.status, resp.content_type, resp.body, resp.len) == LOOP_TOO_BIG) {
        static const char msg[] = "{\"error\":{\"message\":\"The response is larger than the server's write "
                                  "buffer.\",\"type\":\"server_error\",\"param\":null,\"code\":\"response_too_large\"}}";
        loop_reply_send(r, 500, "application/json", msg, sizeof msg - 1);
    }
}

static void serve_on_loaded(void *arg, sched_model *sm)
{
    (void)arg;
    if (sched_model_state(sm) != SCHED_READY) {
        log_error("model %s: %s", sm->cfg.id, sm->err);
        atomic_store(&g_load_failed, 1);
        loop_stop(&g_loop);
        return;
    }
    const model_hparams *hp = &sm->m.hp;
    log_info("model %s ready: %s, %d layers, %d dims, vocab %d, context %d x %d slots, %d threads%s", sm->cfg.id,
             model_arch_name(sm->m.arch), hp->n_layer, hp->n_embd, (int)sm->vocab.n_vocab, sm->cfg.context_length,
             sm->cfg.processor_count, sm->tp.n_threads,
             sm->demo ? " -- SMOKE-TEST MODEL: random weights, its output is noise" : "");
    if (hp->n_ctx_train > 0 && sm->cfg.context_length > hp->n_ctx_train)
        log_warn("model %s: context %d exceeds the %d it was trained for", sm->cfg.id, sm->cfg.context_length,
                 hp->n_ctx_train);
}

static int cmd_serve(int argc, char **argv)
{
    static config cfg;                               /* large: off the stack */
    static sched_model models[CONFIG_MODELS_MAX];
    static api a;
    static tls_ctx tls;                              /* HTTPS: chain, key, session cache */
    char err[CONFIG_ERR_MAX];
    config_init(&cfg);
    if (config_parse_args(&cfg, argc, argv, err, sizeof err) < 0) {
        fprintf(stderr, "mote: %s\n", err);
        return 2;
    }
    if (cfg.want_help) {
        fputs(usage_text, stdout);
        printf("\nserve options:\n%s", config_usage());
        return 0;
    }
    if (cfg.want_version) return cmd_version();
    /* HTTPS: load and check the certificate and key before anything else
     * (a TLS=0 build refuses the options here with a clear message). */
    if (cfg.tls_cert_file[0]) {
        char terr[TLS_ERR_MAX + 2 * CONFIG_PATH_MAX];
        if (tls_ctx_init(&tls, cfg.tls_cert_file, cfg.tls_key_file, (size_t)cfg.tls_session_cache, terr,
                         sizeof terr) < 0) {
            fprintf(stderr, "mote: %s\n", terr);
            tls_ctx_free(&tls);
            return tls_available() ? 1 : 2;
        }
    }
    log_set_format(cfg.log_format == CONFIG_LOG_JSON ? LOG_FMT_JSON : LOG_FMT_TEXT);

    /* the models: the demo first when asked, then -m / -jsdesc ones */
    int n = 0;
    if (cfg.demo) {
        if (cfg.n_models >= CONFIG_MODELS_MAX || config_model_find(&cfg, SCHED_DEMO_ID) >= 0) {
            fprintf(stderr, "mote: --demo: no room for the model id '%s'\n", SCHED_DEMO_ID);
            return 2;
        }
        config_model dm;
        config_model_init(&dm);
        if (cfg.n_models == 0 && !cfg.desc_file[0]) {
            /* The command-line model settings (-c, -np, -b, --temp, ...) apply to
             * -m models only: parse again with a stand-in "-m mote-demo.gguf" so
             * they reach the demo too, then take that entry out of the list. */
            static char *argv2[256 + 3];
            if (argc <= 256) {
                memcpy(argv2, argv, (size_t)argc * sizeof *argv);
                argv2[argc] = "-m";
                argv2[argc + 1] = SCHED_DEMO_ID ".gguf";
                config_init(&cfg);
                if (config_parse_args(&cfg, argc + 2, argv2, err, sizeof err) < 0) {
                    fprintf(stderr, "mote: %s\n", err);
                    return 2;
                }
                dm = cfg.models[0];
                cfg.n_models = 0;
            }
        }
        snprintf(dm.id, sizeof dm.id, "%s", SCHED_DEMO_ID);
        dm.path[0] = 0;
        dm.thread_count = 1;                        /* a tiny model: threads cost more than they give */
        dm.batch_thread_count = 1;
        if (dm.batch_length <= 0 || dm.batch_length > dm.context_length)
            dm.batch_length = dm.context_length < CONFIG_DEFAULT_BATCH ? dm.context_length : CONFIG_DEFAULT_BATCH;
        dm.desc_index = -1;
        if (sched_model_init(&models[n++], &dm, true, cfg.queue_length, cfg.sse_ping_ms) < 0) {
            fprintf(stderr, "mote: demo model: %s\n", models[n - 1].err);
            return 1;
        }
        log_info("model %s: built-in smoke-test model (random weights, byte-level vocabulary)", SCHED_DEMO_ID);
    }
    for (int i = 0; i < cfg.n_models; i++) {
        const config_model *cm = &cfg.models[i];
        if (access(cm->path, R_OK) != 0) {
            fprintf(stderr, "mote: model %s: cannot read %s: %s\n", cm->id, cm->path, strerror(errno));
            return 2;
        }
        if (cm->gpu_layers_set) log_warn("model %s: gpu_layers ignored (no GPU backend)", cm->id);
        if (sched_model_init(&models[n++], cm, false, cfg.queue_length, cfg.sse_ping_ms) < 0) {
            fprintf(stderr, "mote: model %s: %s\n", cm->id, models[n - 1].err);
            return 1;
        }
        log_info("model %s: loading %s", cm->id, cm->path);
    }

    loop_config lc;
    loop_config_default(&lc);
    lc.max_conns = (size_t)cfg.max_connections;
    lc.max_head_bytes = (size_t)cfg.max_header_bytes;
    lc.max_headers = (size_t)cfg.max_headers;
    lc.max_body_bytes = (size_t)cfg.max_body_bytes;
    lc.idle_timeout_ms = cfg.idle_timeout_ms;
    lc.header_timeout_ms = cfg.header_timeout_ms;
    lc.stop_timeout_ms = cfg.shutdown_timeout_ms;
    lc.cors_origin = cfg.cors_origin[0] ? cfg.cors_origin : NULL;
    lc.tls = cfg.tls_cert_file[0] ? &tls : NULL;
    if (lc.tls)
        log_info("HTTPS: %s; %zu bytes of TLS buffers per connection (%zu connections)", tls_ctx_describe(&tls),
                 (size_t)TLS_CONN_BYTES, lc.max_conns);
    static const api_transport tr = {
        .ctx = &g_loop, .send = tr_send, .sse_start = tr_sse_start, .sse_raw = tr_sse_raw,
        .sse_comment = tr_sse_comment, .sse_end = tr_sse_end, .abort = tr_abort, .note = tr_note,
    };
    if (api_init(&a, &cfg, models, n, &tr, lc.write_cap) < 0) {
        fprintf(stderr, "mote: %s\n", a.err);
        return 1;
    }
    loop_handler h = { .on_request = serve_on_request, .ctx = &a };
    if (loop_init(&g_loop, &lc, &h) < 0) {
        fprintf(stderr, "mote: %s\n", g_loop.err);
        return 1;
    }
    if (loop_listen(&g_loop, cfg.host, cfg.port) < 0) {
        fprintf(stderr, "mote: cannot serve: %s\n", g_loop.err);
        loop_free(&g_loop);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = serve_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    for (int i = 0; i < n; i++) {
        models[i].on_loaded = serve_on_loaded;
        if (sched_model_start(&models[i]) < 0) {
            fprintf(stderr, "mote: model %s: %s\n", models[i].cfg.id, models[i].err);
            return 1;
        }
    }
    int port = loop_port(&g_loop, 0);
    log_info("mote %s listening on %s://%s%s%s:%d (%d model%s)%s", MOTE_VERSION, lc.tls ? "https" : "http",
             strchr(cfg.host, ':') ? "[" : "",
             cfg.host, strchr(cfg.host, ':') ? "]" : "", port, n, n == 1 ? "" : "s",
             cfg.n_api_keys ? ", API key required" : "");
    int rc = loop_run(&g_loop);
    if (rc < 0) log_error("%s", g_loop.err);
    log_info("stopping: %s", atomic_load(&g_load_failed) ? "a model failed to load" : "signal");
    for (int i = 0; i < n; i++) sched_model_stop(&models[i]);
    loop_free(&g_loop);
    api_free(&a);
    for (int i = 0; i < n; i++) sched_model_free(&models[i]);
    tls_ctx_free(&tls);
    if (atomic_load(&g_load_failed)) return 1;
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "tokenize"))
        return cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(argv[1], "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info"))
        return cmd_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "quantize"))
        return cmd_quantize(argc - 1, argv + 1);
    if (!strcmp(argv[1], "bench"))
        return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(argv[1], "gen-model"))
        return cmd_gen_model(argc - 1, argv + 1);
    return cmd_serve(argc, argv);   /* "serve" is the default subcommand */
}
