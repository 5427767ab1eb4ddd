/* glibc_compat.c — the bochscpu-python 0.4.0 wheel (tagged manylinux_2_28)
 * actually references two glibc-2.38 symbols (C23 variants of strtoull and
 * sscanf). On glibc < 2.38 they are missing and the import fails; run_x86.py
 * loads this shim RTLD_GLOBAL before importing bochscpu. The C23 variants
 * only differ in accepting "0b" binary prefixes, which Bochs never parses. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

unsigned long long __isoc23_strtoull(const char *s, char **end, int base);
int __isoc23_sscanf(const char *s, const char *fmt, ...);

unsigned long long __isoc23_strtoull(const char *s, char **end, int base) {
    return strtoull(s, end, base);
}

int __isoc23_sscanf(const char *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsscanf(s, fmt, ap);
    va_end(ap);
    return n;
}
