/* config.h — every setting and limit of a mote server, in one struct.
 *
 * Foundation module (libc + json only). Filled from the command line and an
 * optional JSON description file (the mbase openai-server format: an array
 * of model objects). Nothing here exits or prints: every function returns 0
 * or -1 with one clear line in err, naming the option or the JSON key path:
 *     "-c: expected a positive integer, got 'abc'"
 *     "config: [1].samplers.top_k: expected a non-negative integer"
 *
 * Precedence for a model's settings: keys of its object in the JSON file,
 * then the command-line model flags (-c, -t, --temp, ...: defaults for every
 * model), then the built-in defaults below.
 *
 * Storage: the struct holds every string in fixed arrays (no pointers into
 * argv or the file), so it can be copied and outlives its sources. It is
 * large (~100 KiB): keep it static or on the heap, not on a thread stack.
 */
#ifndef MOTE_CONFIG_H
#define MOTE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_MODELS_MAX 16
#define CONFIG_API_KEYS_MAX 32
#define CONFIG_PATH_MAX 1024
#define CONFIG_NAME_MAX 128      /* model ids, aliases */
#define CONFIG_KEY_MAX 256       /* one API key */
#define CONFIG_HOST_MAX 64       /* an IPv4/IPv6 literal */
#define CONFIG_ORIGIN_MAX 256
#define CONFIG_FILE_MAX (1u << 20) /* JSON description and key files */
#define CONFIG_ERR_MAX 256       /* suggested size of err buffers */

/* Built-in defaults. */
#define CONFIG_DEFAULT_HOST "127.0.0.1"
#define CONFIG_DEFAULT_PORT 8080
#define CONFIG_DEFAULT_PROCESSORS 4
#define CONFIG_DEFAULT_CONTEXT 2048
#define CONFIG_DEFAULT_BATCH 512
#define CONFIG_DEFAULT_TLS_CACHE 256   /* TLS sessions kept for resumption */

typedef enum config_log_format {
    CONFIG_LOG_TEXT,
    CONFIG_LOG_JSON
} config_log_format;

typedef enum config_kv_type {
    CONFIG_KV_F16,   /* default, as llama.cpp */
    CONFIG_KV_F32
} config_kv_type;

/* Which sampler settings were given (samplers.set). None: greedy. */
enum {
    CONFIG_SAMP_TOP_K = 1u << 0,
    CONFIG_SAMP_TOP_P = 1u << 1,
    CONFIG_SAMP_MIN_P = 1u << 2,
    CONFIG_SAMP_TEMP = 1u << 3,
    CONFIG_SAMP_MIROSTAT = 1u << 4,    /* mirostat v2 (tau and eta, either given) */
    CONFIG_SAMP_REPETITION = 1u << 5   /* penalty_n or penalty_repeat given */
};

/* Per-model sampling defaults; a request's own fields override them. */
typedef struct config_samplers {
    unsigned set;          /* CONFIG_SAMP_*; 0 means greedy */
    int top_k;             /* >= 0, 0 = off; default 40 */
    float top_p;           /* 0..1, default 1 */
    float min_p;           /* 0..1, default 0 */
    float temp;            /* >= 0, default 1 (0 = greedy) */
    float mirostat_tau;    /* >= 0, default 5 */
    float mirostat_eta;    /* >= 0, default 0.1 */
    int penalty_n;         /* >= -1 (-1 = whole context), default 64 */
    float penalty_repeat;  /* >= 0, 1 = off, default 1 */
} config_samplers;

typedef struct config_model {
    char path[CONFIG_PATH_MAX];       /* model_path / -m */
    char alias[CONFIG_NAME_MAX];      /* "" = none */
    char id[CONFIG_NAME_MAX];         /* alias, else the file's base name without .gguf */
    int processor_count;              /* concurrent requests (slots), default 4 */
    int thread_count;                 /* generation threads, default: online cores */
    int batch_thread_count;           /* prompt threads, default: thread_count */
    int context_length;               /* per slot, default 2048 */
    int batch_length;                 /* prompt micro-batch, default min(512, context) */
    int gpu_layers;                   /* accepted for compatibility; no GPU backend */
    bool gpu_layers_set;              /* given: main logs that it is ignored */
    config_kv_type kv_type;
    char kernels[16];                 /* --kernels: ref, avx2, avx512, neon, dotprod; "" = best */
    bool no_pack;                     /* --no-pack: decode from the mapped file, no packed copy */
    config_samplers samplers;
    int desc_index;                   /* index in the description file, -1: from -m */
} config_model;

typedef struct config {
    /* listening */
    char host[CONFIG_HOST_MAX];       /* IPv4 or IPv6 literal ("localhost" = 127.0.0.1) */
    int port;                         /* 0..65535 (0: the kernel picks) */
    char tls_cert_file[CONFIG_PATH_MAX]; /* --ssl-public; "" = plain HTTP */
    char tls_key_file[CONFIG_PATH_MAX];  /* --ssl-key */
    int tls_session_cache;            /* --ssl-session-cache: sessions kept for resumption
                                         (100 bytes each); default 256, 0 = off */
    /* access */
    char api_keys[CONFIG_API_KEYS_MAX][CONFIG_KEY_MAX];
    int n_api_keys;                   /* 0: no authentication */
    char cors_origin[CONFIG_ORIGIN_MAX]; /* "" = no CORS headers; "*" or an origin */
    /* limits (every one gives a specific error when exceeded) */
    int max_connections;              /* open connections; default 64 */
    int max_header_bytes;             /* request line + headers -> 431; default 16 KiB */
    int max_headers;                  /* header count -> 431; default 64 */
    long max_body_bytes;              /* request body -> 413; default 4 MiB */
    long request_arena_bytes;         /* per-request parse memory -> 413; default 16 x body */
    int queue_length;                 /* waiting requests per model beyond its slots -> 429; default 16 */
    int header_timeout_ms;            /* to receive the headers (slowloris); default 10 s */
    int idle_timeout_ms;              /* keep-alive idle / body stall; default 60 s */
    int sse_ping_ms;                  /* ": ping" while a prompt is processed; default 15 s */
    int shutdown_timeout_ms;          /* SIGTERM: wait for in-flight responses; default 10 s */
    /* logging and mode */
    config_log_format log_format;
    bool demo;                        /* --demo: serve the built-in smoke-test model */
    bool slots_show_prompts;          /* --slots-show-prompts: GET /slots shows prompt texts */
    bool want_help;                   /* --help seen: nothing else was validated */
    bool want_version;                /* -v / --version seen */
    char desc_file[CONFIG_PATH_MAX];  /* -jsdesc / --config, "" = none */
    /* models: -m models first, then those of the description file */
    config_model models[CONFIG_MODELS_MAX];
    int n_models;
} config;

/* Built-in defaults, no models. */
void config_init(config *c);

/* Defaults of one model (thread counts left 0 = resolved by config_finish). */
void config_model_init(config_model *m);

/* Parse `mote [serve] OPTIONS` (argv[0] is the program name) into c, which
 * config_init prepared. Loads -jsdesc/--config and --api-key-file, then runs
 * config_finish. Stops early, returning 0, at --help or --version (the flags
 * want_help / want_version tell). 0 or -1 with err. */
int config_parse_args(config *c, int argc, char **argv, char *err, size_t errcap);

/* Append the models of a JSON description (text[0..len)): an array of model
 * objects, each starting from *defaults. Unknown keys and bad values are
 * rejected with their path. 0 or -1 with err. */
int config_load_json(config *c, const char *text, size_t len, const config_model *defaults,
                     char *err, size_t errcap);

/* Read a description file (at most CONFIG_FILE_MAX bytes) and load it. */
int config_load_file(config *c, const char *path, const config_model *defaults,
                     char *err, size_t errcap);

/* Add the keys of a file, one per line (blank lines and lines starting with
 * '#' skipped, surrounding white space trimmed). 0 or -1 with err. */
int config_load_keys(config *c, const char *path, char *err, size_t errcap);

/* Resolve defaults (thread counts from the online cores, batch length, model
 * ids) and check the whole: at least one model or --demo, both TLS files or
 * neither, batch_length <= context_length, no duplicate model id.
 * 0 or -1 with err. */
int config_finish(config *c, char *err, size_t errcap);

/* Index of the model whose id is `id`, or -1. */
int config_model_find(const config *c, const char *id);

/* Number of online CPU cores (at least 1). */
int config_cores(void);

/* Option summary for --help (static text, one option per line). */
const char *config_usage(void);

#endif
