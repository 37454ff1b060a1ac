#include "core/context.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void cnk_ctx_init(cnk_ctx *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->threads = cnk_cpu_count();
    ctx->seed = 42;
}

int cnk_fail(cnk_ctx *ctx, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->message, sizeof ctx->message, fmt, ap);
    va_end(ap);
    /* Messages are one line: a newline from a file name or a nested message would break that. */
    for (char *p = ctx->message; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    ctx->status = status;
    return status;
}

void cnk_warn(cnk_ctx *ctx, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    ctx->n_warnings++;
    if (ctx->warn) ctx->warn(ctx->user, line);
}

void cnk_progress(cnk_ctx *ctx, const char *stage, size_t done, size_t total, const char *extra)
{
    if (ctx->progress) ctx->progress(ctx->user, stage, done, total, extra);
}

const char *cnk_error(const cnk_ctx *ctx) { return ctx->message; }

void cnk_clear_error(cnk_ctx *ctx)
{
    ctx->status = CNK_OK;
    ctx->message[0] = '\0';
}

int cnk_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}
