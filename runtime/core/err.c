/* err.c — filling qd_err. The core reports failures through this; it never prints. */
#include "qd.h"
#include <stdarg.h>
#include <stdio.h>

qd_status qd_fail(qd_err *e, qd_status s, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->status = s;
    }
    return s;
}

void qd_err_clear(qd_err *e)
{
    if (e) {
        e->status = QD_OK;
        e->msg[0] = '\0';
    }
}
