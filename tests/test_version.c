/* test_version.c — build identity and feature line. */
#include "test.h"
#include "version.h"

int main(void)
{
    char buf[256];
    version_features(buf, sizeof buf);
    T_CHECK(strstr(buf, "tls: ") != NULL, "features name TLS: %s", buf);
    T_CHECK(strstr(buf, "threads: ") != NULL, "features name threads backend");
    T_CHECK(strstr(buf, "kernels: ref") != NULL, "features list the reference kernels");
    char small[8];
    version_features(small, sizeof small);
    T_CHECK(strlen(small) == 7, "features truncated to capacity");
    return t_done();
}
