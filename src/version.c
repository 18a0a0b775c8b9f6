/* version.c — see version.h. */
#include "version.h"

#include "kernels/kernels.h"

#include <stdio.h>

#ifndef MOTE_GITREV
#define MOTE_GITREV "unknown"
#endif

const char *version_revision(void)
{
    return MOTE_GITREV;
}

void version_features(char *out, size_t cap)
{
    const char *tls = MOTE_TLS ? "bearssl" : "no";
#if defined(MOTE_THREADS_OPENMP)
    const char *threads = "openmp";
#else
    const char *threads = "pthread";
#endif
    const char *kernels = kern_compiled_names();
    snprintf(out, cap, "tls: %s  threads: %s  kernels: %s", tls, threads, kernels);
}
