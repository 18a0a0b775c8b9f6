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

#include "version.h"

static const char usage_text[] =
    "usage: mote [serve] [options]        serve models over the OpenAI HTTP API\n"
    "       mote run -m MODEL.gguf -p PROMPT [-n N] [--temp T] [--seed S] [-t THREADS]\n"
    "       mote info MODEL.gguf\n"
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

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return 2;
    }
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
