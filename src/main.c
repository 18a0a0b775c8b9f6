/* main.c — the mote command line: wires the modules together.
 *
 * The only file that calls exit(). Subcommands:
 *     mote [serve] [options]      OpenAI-compatible server (default)
 *     mote run -m MODEL -p TEXT   generate from the command line
 *     mote info MODEL.gguf        describe a model file
 * Exit codes: 0 success, 1 runtime failure, 2 usage error (unknown option,
 * missing argument, unreadable file), each with one line on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "json.h"
#include "tokenizer.h"
#include "version.h"

static const char usage_text[] =
    "usage: mote [serve] [options]        serve models over the OpenAI HTTP API\n"
    "       mote run -m MODEL.gguf -p PROMPT [-n N] [--temp T] [--seed S] [-t THREADS]\n"
    "       mote info MODEL.gguf\n"
    "       mote tokenize -m MODEL.gguf [--add-special] [--parse-special] [--pieces] TEXT|-\n"
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
    /* worst case per id: {"id":2147483647,"piece":"..."} with each byte escaped as \u00XX */
    size_t outcap = 16 + (size_t)k * (32 + (pieces ? 6 * TOK_PIECE_MAX : 0));
    char *out = malloc(outcap);
    char piece[TOK_PIECE_MAX];
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

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "tokenize"))
        return cmd_tokenize(argc - 1, argv + 1);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(a, "-v") || !strcmp(a, "--version"))
            return cmd_version();
        fprintf(stderr, "mote: unknown option '%s' (try 'mote --help')\n", a);
        return 2;
    }
    return 0;
}
