/* error.c: status strings and the per-thread error message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core-impl.h"

#define DNG__ERRLEN 1024

static _Thread_local char last_error[DNG__ERRLEN];

DNG_API const char *dng_status_string(dng_status status)
{
    switch (status) {
#define DNG__STATUS_CASE(name, num, text)                                    \
    case DNG_##name:                                                         \
        return text;
        DNG_STATUS_MAP(DNG__STATUS_CASE)
#undef DNG__STATUS_CASE
    default:
        return "unknown status";
    }
}

DNG_API const char *dng_last_error(void)
{
    return last_error;
}

DNG_API void dng_clear_error(void)
{
    last_error[0] = '\0';
}

dng_status dng__error(dng_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

dng_status dng__error_prefix(dng_status status, const char *fmt, ...)
{
    char prefix[DNG__ERRLEN];
    size_t k, old;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix - 2, fmt, ap);
    va_end(ap);
    strcat(prefix, ": ");
    /* Shift the old message right to make room for "prefix: ". */
    k = strlen(prefix);
    old = strlen(last_error);
    if (k >= DNG__ERRLEN - 1)
        k = DNG__ERRLEN - 1;
    if (old > DNG__ERRLEN - 1 - k)
        old = DNG__ERRLEN - 1 - k;
    memmove(last_error + k, last_error, old);
    memcpy(last_error, prefix, k);
    last_error[k + old] = '\0';
    return status;
}
