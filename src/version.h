/* version.h — build identity and compiled-in features.
 *
 * MOTE_VERSION and MOTE_GITREV come from the Makefile. version_features()
 * writes one line such as
 *     "tls: bearssl  threads: openmp  kernels: ref avx2 avx512"
 * into out (always NUL-terminated, truncated to cap). */
#ifndef MOTE_VERSION_H
#define MOTE_VERSION_H

#include <stddef.h>

#ifndef MOTE_VERSION
#define MOTE_VERSION "0.0.0"
#endif

/* Git revision the binary was built from ("unknown" outside a checkout). */
const char *version_revision(void);

void version_features(char *out, size_t cap);

#endif
