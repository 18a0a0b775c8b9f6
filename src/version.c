/* version.c — see version.h. */
#include "version.h"

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
#if defined(MOTE_KERN_X86)
    const char *kernels = "ref avx2 avx512";
#elif defined(MOTE_KERN_ARM)
    const char *kernels = "ref neon";
#else
    const char *kernels = "ref";
#endif
    snprintf(out, cap, "tls: %s  threads: %s  kernels: %s", tls, threads, kernels);
}
