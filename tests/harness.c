#include "harness.h"

#include <string.h>
#include <sys/stat.h>

int tl_test_failures;

const char *tl_test_shared(const char *rel) {
    static char buf[4096];
    const char *root = getenv("TL_SHARED");
    if (!root || !*root) root = "../shared";
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    return buf;
}

void tl_test_require_shared(void) {
    struct stat st;
    if (stat(tl_test_shared("fixtures"), &st) != 0) {
        printf("SKIP: ../shared/fixtures not found (set TL_SHARED to the shared directory)\n");
        exit(77);
    }
}

int tl_test_finish(const char *name, int n_checks_hint) {
    (void)n_checks_hint;
    if (tl_test_failures) {
        printf("%s: %d check(s) failed\n", name, tl_test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}
