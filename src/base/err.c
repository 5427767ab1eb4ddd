#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_last[TL_ERR_MSG_MAX];

tl_status tl_err_set(tl_err *e, tl_status code, const char *fmt, ...) {
    if (!e) return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

void tl_err_prefix(tl_err *e, const char *fmt, ...) {
    if (!e) return;
    char buf[2 * TL_ERR_MSG_MAX + 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, TL_ERR_MSG_MAX, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n >= TL_ERR_MSG_MAX) n = TL_ERR_MSG_MAX - 1;
    buf[n++] = ':';
    buf[n++] = ' ';
    memcpy(buf + n, e->msg, TL_ERR_MSG_MAX);
    buf[n + TL_ERR_MSG_MAX - 1] = 0;
    memcpy(e->msg, buf, TL_ERR_MSG_MAX - 1);
    e->msg[TL_ERR_MSG_MAX - 1] = 0;
}

void tl_err_clear(tl_err *e) {
    if (!e) return;
    e->code = TL_OK;
    e->msg[0] = 0;
}

void tl_err_set_last(const tl_err *e) {
    if (!e) { g_last[0] = 0; return; }
    snprintf(g_last, sizeof g_last, "%s", e->msg);
}

const char *tl_last_error(void) { return g_last; }

const char *tl_status_str(tl_status s) {
    switch (s) {
    case TL_OK: return "ok";
    case TL_ERR_IO: return "I/O error";
    case TL_ERR_FORMAT: return "format error";
    case TL_ERR_UNSUPPORTED: return "unsupported";
    case TL_ERR_INVALID_ARG: return "invalid argument";
    case TL_ERR_NOMEM: return "out of memory";
    case TL_ERR_MISSING: return "missing";
    case TL_ERR_CONTEXT_FULL: return "context full";
    case TL_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}
