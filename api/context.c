/* context.c: cnnkit/context.h over the internal core/context.h (the public cnk_ctx is the same struct,
 * opaque to users). */
#include "core/context.h"

#include <stdlib.h>

#include "cnnkit/context.h"

cnk_ctx *cnk_context_create(void)
{
    cnk_ctx *ctx = malloc(sizeof *ctx);
    if (ctx) cnk_ctx_init(ctx);
    return ctx;
}

void cnk_context_free(cnk_ctx *ctx) { free(ctx); }

int cnk_context_set_threads(cnk_ctx *ctx, int threads)
{
    if (threads < 0 || threads > 1024)
        return cnk_fail(ctx, CNK_ERR_ARG, "threads: %d is outside 0..1024 (0 = all cores)", threads);
    ctx->threads = threads == 0 ? cnk_cpu_count() : threads;
    return CNK_OK;
}

int cnk_context_threads(const cnk_ctx *ctx) { return ctx->threads; }

void cnk_context_set_seed(cnk_ctx *ctx, uint64_t seed) { ctx->seed = seed; }

uint64_t cnk_context_seed(const cnk_ctx *ctx) { return ctx->seed; }

void cnk_context_set_callbacks(cnk_ctx *ctx, cnk_progress_fn progress, cnk_warn_fn warn, void *user)
{
    ctx->progress = progress;
    ctx->warn = warn;
    ctx->user = user;
}

int cnk_context_status(const cnk_ctx *ctx) { return ctx->status; }

const char *cnk_context_error(const cnk_ctx *ctx) { return cnk_error(ctx); }

void cnk_context_clear_error(cnk_ctx *ctx) { cnk_clear_error(ctx); }

size_t cnk_context_warnings(const cnk_ctx *ctx) { return ctx->n_warnings; }

const char *cnk_status_name(int status)
{
    switch (status) {
    case CNK_OK: return "ok";
    case CNK_ERR_ARG: return "invalid argument";
    case CNK_ERR_INPUT: return "bad input";
    case CNK_ERR_IO: return "I/O error";
    case CNK_ERR_NOMEM: return "out of memory";
    case CNK_ERR_UNSUPPORTED: return "unsupported";
    case CNK_ERR_INTERNAL: return "internal error";
    default: return "unknown status";
    }
}

void cnk_free(void *ptr) { free(ptr); }
