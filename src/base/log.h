/* log.h — library logging through the callback set by tl_log_set. */
#ifndef TL_BASE_LOG_H
#define TL_BASE_LOG_H

#include "torchless.h"

void tl_log(tl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool tl_log_enabled(tl_log_level level);

#define TL_DEBUG(...) tl_log(TL_LOG_DEBUG, __VA_ARGS__)
#define TL_INFO(...)  tl_log(TL_LOG_INFO, __VA_ARGS__)
#define TL_WARN(...)  tl_log(TL_LOG_WARN, __VA_ARGS__)

#endif
