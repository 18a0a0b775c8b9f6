/* test_config.c — command line and JSON description parsing: every option,
 * every error path, with the exact one-line messages. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "test.h"

static config C;
static char err[CONFIG_ERR_MAX];
static char tmpdir[] = "/tmp/mote_test_config.XXXXXX";

/* Write a file in the temporary directory; returns its path (static buffer per slot). */
static const char *tmpfile_with(int slot, const char *name, const char *text)
{
    static char paths[4][512];
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", tmpdir, name);
    FILE *f = fopen(paths[slot], "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return paths[slot];
}

/* Run config_parse_args on a space-separated command line; "@D" and "@K"
 * stand for the description and key file paths. Returns the result. */
static const char *desc_path = "", *keys_path = "";
static int run(const char *line)
{
    static char buf[4096];
    char *argv[256];
    int argc = 0;
    snprintf(buf, sizeof buf, "mote %s", line);
    for (char *t = strtok(buf, " "); t && argc < 255; t = strtok(NULL, " ")) {
        if (!strcmp(t, "@D")) t = (char *)desc_path;
        else if (!strcmp(t, "@K")) t = (char *)keys_path;
        else if (!strcmp(t, "@E")) t = (char *)""; /* an empty argument */
        argv[argc++] = t;
    }
    argv[argc] = NULL;
    config_init(&C);
    err[0] = 0;
    return config_parse_args(&C, argc, argv, err, sizeof err);
}

/* ---- Command-line errors ------------------------------------------------------- */

static const struct {
    const char *line;
    const char *msg; /* exact error line */
} bad_cli[] = {
    {"", "no model to serve: give -m MODEL.gguf, -jsdesc FILE or --demo"},
    {"serve", "no model to serve: give -m MODEL.gguf, -jsdesc FILE or --demo"},
    {"--bogus", "unknown option '--bogus' (try 'mote --help')"},
    {"--bogus=3", "unknown option '--bogus' (try 'mote --help')"},
    {"-m a.gguf extra", "unexpected argument 'extra' (models are given with -m)"},
    {"-m", "-m: missing value"},
    {"-m @E", "-m: empty file name"},
    {"-m a.gguf -c", "-c: missing value"},
    {"-m a.gguf -c abc", "-c: expected an integer from 16 to 16777216, got 'abc'"},
    {"-m a.gguf -c 8", "-c: expected an integer from 16 to 16777216, got '8'"},
    {"-m a.gguf --ctx-size 1e3", "--ctx-size: expected an integer from 16 to 16777216, got '1e3'"},
    {"-m a.gguf -t 0", "-t: expected an integer from 1 to 1024, got '0'"},
    {"-m a.gguf --threads 2x", "--threads: expected an integer from 1 to 1024, got '2x'"},
    {"-m a.gguf -tb -1", "-tb: expected an integer from 1 to 1024, got '-1'"},
    {"-m a.gguf -np 0", "-np: expected an integer from 1 to 1024, got '0'"},
    {"-m a.gguf -b 0", "-b: expected an integer from 1 to 16777216, got '0'"},
    {"-m a.gguf -c 256 -b 512", "-m a.gguf: batch_length (512) exceeds context_length (256)"},
    {"-m a.gguf -p 70000", "-p: expected an integer from 0 to 65535, got '70000'"},
    {"-m a.gguf --port=-1", "--port: expected an integer from 0 to 65535, got '-1'"},
    {"-m a.gguf -h example.com", "-h: 'example.com' is not an IPv4 or IPv6 address (no DNS lookup is done)"},
    {"-m a.gguf --hostname 1.2.3", "--hostname: '1.2.3' is not an IPv4 or IPv6 address (no DNS lookup is done)"},
    {"-m a.gguf --temp -1", "--temp: expected a number from 0 to 100, got '-1'"},
    {"-m a.gguf --temp hot", "--temp: expected a number from 0 to 100, got 'hot'"},
    {"-m a.gguf --temp nan", "--temp: expected a number from 0 to 100, got 'nan'"},
    {"-m a.gguf --top-k -5", "--top-k: expected a non-negative integer, got '-5'"},
    {"-m a.gguf --top-p 1.5", "--top-p: expected a number from 0 to 1, got '1.5'"},
    {"-m a.gguf --min-p 2", "--min-p: expected a number from 0 to 1, got '2'"},
    {"-m a.gguf --repeat-penalty -0.5", "--repeat-penalty: expected a non-negative number, got '-0.5'"},
    {"-m a.gguf --repeat-last-n -2", "--repeat-last-n: expected an integer >= -1, got '-2'"},
    {"-m a.gguf --mirostat-tau x", "--mirostat-tau: expected a non-negative number, got 'x'"},
    {"-m a.gguf --mirostat-lr -1", "--mirostat-lr: expected a non-negative number, got '-1'"},
    {"-m a.gguf -ngl many", "-ngl: expected an integer >= -1, got 'many'"},
    {"-m a.gguf --log-format xml", "--log-format: expected 'text' or 'json', got 'xml'"},
    {"-m a.gguf --kv-type q4_0", "--kv-type: expected 'f16' or 'f32', got 'q4_0'"},
    {"-m a.gguf --kernels sse2", "--kernels: expected ref, avx2, avx512, neon or dotprod, got 'sse2'"},
    {"-m a.gguf --cors-origin @E", "--cors-origin: empty origin"},
    {"-m a.gguf --api-key @E", "--api-key: empty API key"},
    {"-m a.gguf --ssl-public cert.pem", "--ssl-public: needs --ssl-key too"},
    {"-m a.gguf --ssl-key key.pem", "--ssl-key: needs --ssl-public too"},
    {"-m a.gguf --demo=1", "--demo: takes no value"},
    {"-m a.gguf --alias @E", "--alias: empty name"},
    {"-m a.gguf -m b.gguf --alias x", "--alias: needs exactly one -m model (got 2)"},
    {"--alias x --demo", "--alias: needs exactly one -m model (got 0)"},
    {"-m dir/a.gguf -m other/a.gguf", "-m other/a.gguf: model id 'a' is already used by -m dir/a.gguf; give one an alias"},
    {"-m models/", "-m models/: cannot derive a model id from the path; give an alias"},
    {"-m a.gguf --max-connections 0", "--max-connections: expected an integer from 1 to 65536, got '0'"},
    {"-m a.gguf --max-header-bytes 10", "--max-header-bytes: expected a size from 256 to 1048576 bytes (suffix k, M or G allowed), got '10'"},
    {"-m a.gguf --max-headers 0", "--max-headers: expected an integer from 1 to 1024, got '0'"},
    {"-m a.gguf --max-body-bytes 2G", "--max-body-bytes: expected a size from 1 to 1073741824 bytes (suffix k, M or G allowed), got '2G'"},
    {"-m a.gguf --max-body-bytes 4Mb", "--max-body-bytes: expected a size from 1 to 1073741824 bytes (suffix k, M or G allowed), got '4Mb'"},
    {"-m a.gguf --max-body-bytes -1", "--max-body-bytes: expected a size from 1 to 1073741824 bytes (suffix k, M or G allowed), got '-1'"},
    {"-m a.gguf --request-memory 1k", "--request-memory: expected a size from 4096 to 17179869184 bytes (suffix k, M or G allowed), got '1k'"},
    {"-m a.gguf --queue -1", "--queue: expected an integer from 0 to 65536, got '-1'"},
    {"-m a.gguf --header-timeout 0", "--header-timeout: expected an integer from 1 to 86400, got '0'"},
    {"-m a.gguf --idle-timeout 99999", "--idle-timeout: expected an integer from 1 to 86400, got '99999'"},
    {"-m a.gguf --sse-ping x", "--sse-ping: expected an integer from 1 to 86400, got 'x'"},
    {"-m a.gguf --shutdown-timeout -1", "--shutdown-timeout: expected an integer from 0 to 86400, got '-1'"},
    {"-m a.gguf -jsdesc /nonexistent/d.json", "config: cannot open '/nonexistent/d.json': No such file or directory"},
    {"-m a.gguf --api-key-file /nonexistent/k", "--api-key-file: cannot open '/nonexistent/k': No such file or directory"},
    {"-jsdesc a.json --config b.json", "--config: only one description file may be given"},
};

static void test_cli_errors(void)
{
    for (size_t k = 0; k < sizeof bad_cli / sizeof bad_cli[0]; k++) {
        int rc = run(bad_cli[k].line);
        int ok = rc == -1 && !strcmp(err, bad_cli[k].msg);
        T_CHECK(ok, "cli error: '%s'", bad_cli[k].line);
        if (!ok) T_NOTE("rc %d, got: %s\n#   want: %s", rc, err, bad_cli[k].msg);
        T_CHECK(!strchr(err, '\n'), "cli error is one line: '%s'", bad_cli[k].line);
    }
    /* Too many models and keys. */
    char line[4096] = "";
    for (int k = 0; k <= CONFIG_MODELS_MAX; k++) {
        char m[32];
        snprintf(m, sizeof m, "-m m%d.gguf ", k);
        strcat(line, m);
    }
    T_CHECK(run(line) == -1 && !strcmp(err, "-m: too many models (at most 16)"), "17 models rejected (%s)", err);
    line[0] = 0;
    for (int k = 0; k <= CONFIG_API_KEYS_MAX; k++) {
        char m[32];
        snprintf(m, sizeof m, "--api-key k%d ", k);
        strcat(line, m);
    }
    T_CHECK(run(line) == -1 && !strcmp(err, "--api-key: too many API keys (at most 32)"), "33 keys rejected (%s)", err);
    static char longkey[CONFIG_KEY_MAX + 16];
    memset(longkey, 'k', CONFIG_KEY_MAX);
    snprintf(line, sizeof line, "-m a.gguf --api-key %s", longkey);
    T_CHECK(run(line) == -1 && !strcmp(err, "--api-key: API key too long (at most 255 bytes)"), "long key (%s)", err);
}

/* ---- Command-line successes ----------------------------------------------------- */

static void test_cli_ok(void)
{
    /* Defaults. */
    int rc = run("-m models/tiny-q8.gguf");
    T_CHECK(rc == 0, "minimal command line (%s)", err);
    T_CHECK(!strcmp(C.host, "127.0.0.1") && C.port == 8080 && C.n_api_keys == 0 && !C.cors_origin[0] &&
                !C.tls_cert_file[0] && C.log_format == CONFIG_LOG_TEXT && !C.demo, "server defaults");
    T_CHECK(C.max_connections == 64 && C.max_header_bytes == 16384 && C.max_headers == 64 &&
                C.max_body_bytes == 4L << 20 && C.request_arena_bytes == 16 * (4L << 20) + 65536 &&
                C.queue_length == 16 && C.header_timeout_ms == 10000 && C.idle_timeout_ms == 60000 &&
                C.sse_ping_ms == 15000 && C.shutdown_timeout_ms == 10000, "limit defaults");
    config_model *m = &C.models[0];
    T_CHECK(C.n_models == 1 && !strcmp(m->path, "models/tiny-q8.gguf") && !strcmp(m->id, "tiny-q8"),
            "model id = base name without .gguf (%s)", m->id);
    T_CHECK(m->processor_count == 4 && m->context_length == 2048 && m->batch_length == 512 &&
                m->thread_count == config_cores() && m->batch_thread_count == m->thread_count &&
                m->kv_type == CONFIG_KV_F16 && !m->gpu_layers_set && m->samplers.set == 0 && m->desc_index == -1,
            "model defaults (threads = %d online cores, greedy)", config_cores());
    T_CHECK(config_model_find(&C, "tiny-q8") == 0 && config_model_find(&C, "x") == -1, "config_model_find");

    /* Every option once (short names). */
    rc = run("serve -m a.gguf -h ::1 -p 0 --api-key k1 --api-key k2 --ssl-public c.pem --ssl-key k.pem "
             "-c 4096 -t 3 -tb 5 -np 8 -b 256 -a alpha --temp 0.7 --top-k 20 --top-p 0.95 --min-p 0.05 "
             "--repeat-penalty 1.1 --repeat-last-n 128 --mirostat-tau 4 --mirostat-eta 0.2 -ngl 99 "
             "--cors-origin * --log-format json --demo --kv-type f32 --kernels ref --no-pack --max-connections 100 "
             "--max-header-bytes 8k --max-headers 32 --max-body-bytes 1M --request-memory 64M --queue 0 "
             "--header-timeout 5 --idle-timeout 30 --sse-ping 3 --shutdown-timeout 0");
    T_CHECK(rc == 0, "every option (%s)", err);
    m = &C.models[0];
    T_CHECK(!strcmp(C.host, "::1") && C.port == 0 && C.n_api_keys == 2 && !strcmp(C.api_keys[1], "k2") &&
                !strcmp(C.tls_cert_file, "c.pem") && !strcmp(C.tls_key_file, "k.pem") &&
                !strcmp(C.cors_origin, "*") && C.log_format == CONFIG_LOG_JSON && C.demo, "server options");
    T_CHECK(m->context_length == 4096 && m->thread_count == 3 && m->batch_thread_count == 5 &&
                m->processor_count == 8 && m->batch_length == 256 && !strcmp(m->id, "alpha") &&
                !strcmp(m->alias, "alpha") && m->gpu_layers_set && m->gpu_layers == 99 && m->kv_type == CONFIG_KV_F32 &&
                !strcmp(m->kernels, "ref") && m->no_pack,
            "model options");
    config_samplers *s = &m->samplers;
    T_CHECK(s->temp == 0.7f && s->top_k == 20 && s->top_p == 0.95f && s->min_p == 0.05f &&
                s->penalty_repeat == 1.1f && s->penalty_n == 128 && s->mirostat_tau == 4.0f &&
                s->mirostat_eta == 0.2f &&
                s->set == (CONFIG_SAMP_TEMP | CONFIG_SAMP_TOP_K | CONFIG_SAMP_TOP_P | CONFIG_SAMP_MIN_P |
                           CONFIG_SAMP_REPETITION | CONFIG_SAMP_MIROSTAT), "sampler options");
    T_CHECK(C.max_connections == 100 && C.max_header_bytes == 8192 && C.max_headers == 32 &&
                C.max_body_bytes == 1 << 20 && C.request_arena_bytes == 64L << 20 && C.queue_length == 0 &&
                C.header_timeout_ms == 5000 && C.idle_timeout_ms == 30000 && C.sse_ping_ms == 3000 &&
                C.shutdown_timeout_ms == 0, "limit options");

    /* Long names, --name=value, aliases. */
    rc = run("--model=b.gguf --hostname=0.0.0.0 --port=9000 --ctx-size=512 --threads=2 --threads-batch=2 "
             "--parallel=1 --batch-size=64 --alias=beta --host [::] --ssl-pub c --ssl-key-file k "
             "--n-gpu-layers 0 --mirostat-ent 3 --mirostat-lr 0.3 --timeout 7");
    T_CHECK(rc == 0, "long options (%s)", err);
    m = &C.models[0];
    T_CHECK(!strcmp(C.host, "::") && C.port == 9000 && m->context_length == 512 && m->batch_length == 64 &&
                !strcmp(m->id, "beta") && !strcmp(C.tls_cert_file, "c") && !strcmp(C.tls_key_file, "k") &&
                m->gpu_layers == 0 && m->samplers.mirostat_tau == 3.0f && C.idle_timeout_ms == 7000,
            "long option values");
    rc = run("-m a.gguf --ssl-cert-file c --ssl-key k -h localhost --gpu-layers 1");
    T_CHECK(rc == 0 && !strcmp(C.host, "127.0.0.1") && !strcmp(C.tls_cert_file, "c"), "localhost, --ssl-cert-file");

    /* Several models, flags apply to all; small context shrinks the default batch. */
    rc = run("-m x/one.gguf -m two.bin -c 128 --temp 0");
    T_CHECK(rc == 0 && C.n_models == 2 && !strcmp(C.models[1].id, "two.bin") &&
                C.models[0].context_length == 128 && C.models[1].context_length == 128 &&
                C.models[0].batch_length == 128 && C.models[1].samplers.temp == 0.0f,
            "two -m models share the flags (%s)", err);

    /* --demo alone; --help and --version stop early. */
    rc = run("--demo");
    T_CHECK(rc == 0 && C.demo && C.n_models == 0, "--demo without a model");
    rc = run("--help --bogus");
    T_CHECK(rc == 0 && C.want_help, "--help stops before later errors");
    rc = run("-v");
    T_CHECK(rc == 0 && C.want_version, "-v");
    rc = run("-m a.gguf --version");
    T_CHECK(rc == 0 && C.want_version, "--version after options");
    T_CHECK(strstr(config_usage(), "-jsdesc") && strstr(config_usage(), "--ctx-size") &&
                strstr(config_usage(), "-h, --hostname"), "usage lists the options");
}

/* ---- JSON description ------------------------------------------------------------- */

static const struct {
    const char *json;
    const char *msg;
} bad_json[] = {
    {"", "config: truncated JSON (input ended early) at line 1, column 1"},
    {"[\n {\"model_path\": \"a.gguf\",}\n]", "config: invalid JSON at line 2, column 26"},
    {"{\"model_path\": \"a.gguf\"}", "config: expected a JSON array of model objects ([{\"model_path\": \"model.gguf\"}]), got object"},
    {"[]", "config: the array of models is empty"},
    {"[1]", "config: [0]: expected an object, got 1"},
    {"[{}]", "config: [0].model_path: missing (the GGUF file to serve)"},
    {"[{\"model_path\": \"\"}]", "config: [0].model_path: missing (the GGUF file to serve)"},
    {"[{\"model_path\": 3}]", "config: [0].model_path: expected a string, got 3"},
    {"[{\"model_path\": \"a\\u0000b\"}]", "config: [0].model_path: contains a NUL character"},
    {"[{\"model_path\": \"a.gguf\"}, {\"model_path\": \"b.gguf\", \"colour\": 1}]",
     "config: [1].colour: unknown key (known: model_path, alias, processor_count, thread_count, batch_thread_count, context_length, batch_length, gpu_layers, kv_type, samplers)"},
    {"[{\"model_path\": \"a.gguf\", \"processor_count\": 0}]", "config: [0].processor_count: expected an integer from 1 to 1024, got 0"},
    {"[{\"model_path\": \"a.gguf\", \"processor_count\": 2.5}]", "config: [0].processor_count: expected an integer from 1 to 1024, got 2.5"},
    {"[{\"model_path\": \"a.gguf\", \"thread_count\": \"8\"}]", "config: [0].thread_count: expected an integer from 1 to 1024, got \"8\""},
    {"[{\"model_path\": \"a.gguf\", \"batch_thread_count\": null}]", "config: [0].batch_thread_count: expected an integer from 1 to 1024, got null"},
    {"[{\"model_path\": \"a.gguf\", \"context_length\": 1e9}]", "config: [0].context_length: expected an integer from 16 to 16777216, got 1e9"},
    {"[{\"model_path\": \"a.gguf\", \"batch_length\": []}]", "config: [0].batch_length: expected an integer from 1 to 16777216, got an array"},
    {"[{\"model_path\": \"a.gguf\", \"context_length\": 256, \"batch_length\": 512}]", "config: [0]: batch_length (512) exceeds context_length (256)"},
    {"[{\"model_path\": \"a.gguf\", \"gpu_layers\": -2}]", "config: [0].gpu_layers: expected an integer >= -1, got -2"},
    {"[{\"model_path\": \"a.gguf\", \"kv_type\": \"q8\"}]", "config: [0].kv_type: expected \"f16\" or \"f32\", got \"q8\""},
    {"[{\"model_path\": \"a.gguf\", \"samplers\": 1}]", "config: [0].samplers: expected an object, got 1"},
    {"[{\"model_path\": \"a.gguf\"}, {\"model_path\": \"b.gguf\", \"samplers\": {\"top_k\": -1}}]",
     "config: [1].samplers.top_k: expected a non-negative integer, got -1"},
    {"[{\"model_path\": \"a.gguf\", \"samplers\": {\"top_p\": 1.5}}]", "config: [0].samplers.top_p: expected a number from 0 to 1, got 1.5"},
    {"[{\"model_path\": \"a.gguf\", \"samplers\": {\"min_p\": \"x\"}}]", "config: [0].samplers.min_p: expected a number from 0 to 1, got \"x\""},
    {"[{\"model_path\": \"a.gguf\", \"samplers\": {\"temp\": -1}}]", "config: [0].samplers.temp: expected a number from 0 to 100, got -1"},
    {"[{\"model_path\": \"a.gguf\", \"samplers\": {\"greedy\": true}}]",
     "config: [0].samplers.greedy: unknown key (known: top_k, top_p, min_p, temp, mirostat_v2, repetition)"},
    {"[{\"model_path\": \"a.gguf\", \"samplers\": {\"mirostat_v2\": 5}}]", "config: [0].samplers.mirostat_v2: expected an object, got 5"},
    {"[{\"model_path\": \"a.gguf\", \"samplers\": {\"mirostat_v2\": {\"tau\": -1}}}]", "config: [0].samplers.mirostat_v2.tau: expected a non-negative number, got -1"},
    {"[{\"model_path\": \"a.gguf\", \"samplers\": {\"mirostat_v2\": {\"eta\": true}}}]", "config: [0].samplers.mirostat_v2.eta: expected a non-negative number, got true"},
    {"[{\"model_path\": \"a.gguf\", \"samplers\": {\"mirostat_v2\": {\"mu\": 1}}}]", "config: [0].samplers.mirostat_v2.mu: unknown key (known: tau, eta)"},
    {"[{\"model_path\": \"a.gguf\", \"samplers\": {\"repetition\": []}}]", "config: [0].samplers.repetition: expected an object, got an array"},
    {"[{\"model_path\": \"a.gguf\", \"samplers\": {\"repetition\": {\"penalty_n\": -3}}}]", "config: [0].samplers.repetition.penalty_n: expected an integer >= -1, got -3"},
    {"[{\"model_path\": \"a.gguf\", \"samplers\": {\"repetition\": {\"penalty_repeat\": -1}}}]", "config: [0].samplers.repetition.penalty_repeat: expected a non-negative number, got -1"},
    {"[{\"model_path\": \"a.gguf\", \"samplers\": {\"repetition\": {\"last\": 1}}}]", "config: [0].samplers.repetition.last: unknown key (known: penalty_n, penalty_repeat)"},
    {"[{\"model_path\": \"a.gguf\", \"alias\": 5}]", "config: [0].alias: expected a string, got 5"},
    {"[{\"model_path\": \"x/a.gguf\"}, {\"model_path\": \"y/a.gguf\"}]", "config: [1]: model id 'a' is already used by config: [0]; give one an alias"},
    {"[{\"model_path\": \"a.gguf\", \"alias\": \"m\"}, {\"model_path\": \"b.gguf\", \"alias\": \"m\"}]", "config: [1]: model id 'm' is already used by config: [0]; give one an alias"},
};

static void test_json_errors(void)
{
    for (size_t k = 0; k < sizeof bad_json / sizeof bad_json[0]; k++) {
        desc_path = tmpfile_with(0, "d.json", bad_json[k].json);
        int rc = run("-jsdesc @D");
        int ok = rc == -1 && !strcmp(err, bad_json[k].msg);
        T_CHECK(ok, "json error #%zu: %.90s", k, bad_json[k].msg);
        if (!ok) T_NOTE("rc %d, got: %s\n#   want: %s", rc, err, bad_json[k].msg);
    }
    /* Too many models in the file. */
    char big[8192] = "[";
    for (int k = 0; k <= CONFIG_MODELS_MAX; k++) {
        char one[64];
        snprintf(one, sizeof one, "%s{\"model_path\": \"m%d.gguf\"}", k ? "," : "", k);
        strcat(big, one);
    }
    strcat(big, "]");
    desc_path = tmpfile_with(0, "d.json", big);
    T_CHECK(run("-jsdesc @D") == -1 && !strcmp(err, "config: [16]: too many models (at most 16)"), "17 models in JSON (%s)", err);
    T_CHECK(run("-m z.gguf -jsdesc @D") == -1 && !strcmp(err, "config: [15]: too many models (at most 16)"),
            "-m + 16 JSON models (%s)", err);
    /* A path longer than the field. */
    static char longp[CONFIG_PATH_MAX + 64];
    char *p = longp + sprintf(longp, "[{\"model_path\": \"");
    memset(p, 'a', CONFIG_PATH_MAX);
    strcpy(p + CONFIG_PATH_MAX, "\"}]");
    desc_path = tmpfile_with(0, "d.json", longp);
    T_CHECK(run("-jsdesc @D") == -1 && !strcmp(err, "config: [0].model_path: too long (at most 1023 bytes)"),
            "long model_path (%s)", err);
}

static void test_json_ok(void)
{
    /* The mbase documentation's examples. */
    desc_path = tmpfile_with(0, "d.json",
        "[\n    {\n        \"model_path\" : \"model.gguf\",\n        \"processor_count\" : 8,\n"
        "        \"context_length\" : 4096,\n        \"thread_count\" : 8,\n        \"batch_thread_count\" : 8,\n"
        "        \"batch_length\" : 512,\n        \"gpu_layers\" : 80,\n        \"samplers\" :\n        {\n"
        "            \"top_k\" : 40,\n            \"top_p\" : 1.0,\n            \"min_p\" : 0.3,\n"
        "            \"temp\" : 0.8,\n            \"repetition\" :\n            {\n"
        "                \"penalty_n\" : 64,\n                \"penalty_repeat\" : 1.2\n            }\n"
        "        }\n    },\n    { \"model_path\" : \"model1.gguf\" },\n"
        "    { \"model_path\" : \"dir/model2.gguf\", \"alias\": \"two\", \"kv_type\": \"f32\","
        "      \"samplers\": {\"mirostat_v2\": {\"tau\": 3, \"eta\": 0.05}} }\n]\n");
    int rc = run("-jsdesc @D");
    T_CHECK(rc == 0 && C.n_models == 3, "mbase example loads (%s)", err);
    if (rc) return;
    config_model *m = &C.models[0];
    T_CHECK(!strcmp(m->id, "model") && m->processor_count == 8 && m->context_length == 4096 &&
                m->thread_count == 8 && m->batch_thread_count == 8 && m->batch_length == 512 &&
                m->gpu_layers_set && m->gpu_layers == 80 && m->desc_index == 0, "model 0 settings");
    T_CHECK(m->samplers.top_k == 40 && m->samplers.top_p == 1.0f && m->samplers.min_p == 0.3f &&
                m->samplers.temp == 0.8f && m->samplers.penalty_n == 64 && m->samplers.penalty_repeat == 1.2f &&
                m->samplers.set == (CONFIG_SAMP_TOP_K | CONFIG_SAMP_TOP_P | CONFIG_SAMP_MIN_P | CONFIG_SAMP_TEMP |
                                    CONFIG_SAMP_REPETITION), "model 0 samplers");
    m = &C.models[1];
    T_CHECK(!strcmp(m->id, "model1") && m->processor_count == 4 && m->context_length == 2048 &&
                m->samplers.set == 0 && m->thread_count == config_cores(), "model 1 defaults (greedy)");
    m = &C.models[2];
    T_CHECK(!strcmp(m->id, "two") && !strcmp(m->path, "dir/model2.gguf") && m->kv_type == CONFIG_KV_F32 &&
                m->samplers.set == CONFIG_SAMP_MIROSTAT && m->samplers.mirostat_tau == 3.0f &&
                m->samplers.mirostat_eta == 0.05f, "model 2 alias, kv_type, mirostat");

    /* Command-line flags are defaults for JSON models; JSON keys win. -m comes first. */
    desc_path = tmpfile_with(0, "d.json", "[{\"model_path\": \"j.gguf\", \"context_length\": 1024, "
                                          "\"samplers\": {\"top_k\": 5}}]");
    rc = run("-c 512 --temp 0.5 -m cli.gguf --config @D");
    T_CHECK(rc == 0 && C.n_models == 2 && !strcmp(C.models[0].id, "cli") && !strcmp(C.models[1].id, "j") &&
                C.models[0].context_length == 512 && C.models[1].context_length == 1024 &&
                C.models[1].samplers.temp == 0.5f && C.models[1].samplers.top_k == 5 &&
                C.models[1].samplers.set == (CONFIG_SAMP_TEMP | CONFIG_SAMP_TOP_K) &&
                C.models[1].desc_index == 0, "precedence: JSON > flags > defaults (%s)", err);
    /* config_load_json directly, with its own defaults. */
    config_init(&C);
    config_model d;
    config_model_init(&d);
    d.processor_count = 2;
    const char *js = "[{\"model_path\":\"q.gguf\"}]";
    rc = config_load_json(&C, js, strlen(js), &d, err, sizeof err);
    T_CHECK(rc == 0 && C.n_models == 1 && C.models[0].processor_count == 2 && config_finish(&C, err, sizeof err) == 0 &&
                !strcmp(C.models[0].id, "q"), "config_load_json + config_finish");
}

/* ---- Key file ------------------------------------------------------------------------------ */

static void test_keys(void)
{
    keys_path = tmpfile_with(1, "keys", "# team keys\nsk-one\n\n  sk-two  \r\nsk-three");
    int rc = run("-m a.gguf --api-key first --api-key-file @K");
    T_CHECK(rc == 0 && C.n_api_keys == 4 && !strcmp(C.api_keys[0], "first") && !strcmp(C.api_keys[1], "sk-one") &&
                !strcmp(C.api_keys[2], "sk-two") && !strcmp(C.api_keys[3], "sk-three"),
            "key file: comments, blanks, CRLF, trimming (%s)", err);
    keys_path = tmpfile_with(1, "keys", "# nothing\n\n");
    rc = run("-m a.gguf --api-key-file @K");
    T_CHECK(rc == -1 && strstr(err, "holds no key"), "empty key file rejected (%s)", err);
    keys_path = tmpfile_with(1, "keys", "good\nbad key\n");
    rc = run("-m a.gguf --api-key-file @K");
    char want[700];
    snprintf(want, sizeof want, "--api-key-file %s:2: API key contains a space or control character", keys_path);
    T_CHECK(rc == -1 && !strcmp(err, want), "key with a space: file and line named (%s)", err);
    /* A file larger than CONFIG_FILE_MAX. */
    static char huge[CONFIG_FILE_MAX + 2];
    memset(huge, 'k', sizeof huge - 1);
    keys_path = tmpfile_with(1, "keys", huge);
    rc = run("-m a.gguf --api-key-file @K");
    T_CHECK(rc == -1 && strstr(err, "is larger than 1048576 bytes"), "oversized key file (%s)", err);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        T_CHECK(0, "mkdtemp");
        return t_done();
    }
    test_cli_errors();
    test_cli_ok();
    test_json_errors();
    test_json_ok();
    test_keys();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) T_NOTE("could not remove %s", tmpdir);
    return t_done();
}
