/* err.h — error values carried on handles.
 *
 * Internal functions that can fail take a `tl_err *` and return tl_status;
 * on failure they fill the message with what went wrong and where. The API
 * layer copies it onto the public handle (tl_model_error etc.). */
#ifndef TL_BASE_ERR_H
#define TL_BASE_ERR_H

#include "torchless.h"

#define TL_ERR_MSG_MAX 512

typedef struct tl_err {
    tl_status code;
    char msg[TL_ERR_MSG_MAX];
} tl_err;

/* Sets code and a printf-style message; returns code so callers can write
 * `return tl_err_set(e, TL_ERR_FORMAT, "...")`. e may be NULL. */
tl_status tl_err_set(tl_err *e, tl_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with context ("loading x.gguf: ..."). */
void tl_err_prefix(tl_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void tl_err_clear(tl_err *e);

/* Thread-local "last error" used by handle-less API calls. */
void tl_err_set_last(const tl_err *e);

#endif
