#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>

static tl_log_fn g_fn;
static void *g_user;
static tl_log_level g_min = TL_LOG_INFO;

void tl_log_set(tl_log_fn fn, void *user, tl_log_level min_level) {
    g_fn = fn;
    g_user = user;
    g_min = min_level;
}

bool tl_log_enabled(tl_log_level level) { return g_fn && level >= g_min; }

void tl_log(tl_log_level level, const char *fmt, ...) {
    if (!tl_log_enabled(level)) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_fn(level, buf, g_user);
}
