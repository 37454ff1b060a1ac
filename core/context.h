/* context.h: the handle every cnnkit library call takes (thread count, RNG seed, the last error, and
 * callbacks for progress and skipped inputs). The library never prints or exits: it returns a status. */
#ifndef CNK_CONTEXT_H
#define CNK_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

/* Status codes returned by every fallible library function. */
enum cnk_status {
    CNK_OK = 0,
    CNK_ERR_ARG = 1,         /* the caller passed an invalid parameter (a usage error at the CLI) */
    CNK_ERR_INPUT = 2,       /* an input file or buffer is malformed, truncated or unsupported */
    CNK_ERR_IO = 3,          /* a file could not be opened, read, written or renamed */
    CNK_ERR_NOMEM = 4,       /* an allocation failed or a size limit was exceeded */
    CNK_ERR_UNSUPPORTED = 5, /* a well-formed input uses a feature cnnkit does not implement */
    CNK_ERR_INTERNAL = 6     /* a library invariant failed (a bug): the message says where */
};

/* Progress of a long stage: done of total units finished; extra is a short status text or NULL. */
typedef void (*cnk_progress_fn)(void *user, const char *stage, size_t done, size_t total, const char *extra);
/* A non-fatal problem: an input was skipped. message is one line naming the file and the cause. */
typedef void (*cnk_warn_fn)(void *user, const char *message);

typedef struct cnk_ctx {
    int threads;              /* worker threads for OpenBLAS and our own loops, >= 1 */
    uint64_t seed;            /* base seed of every random stream derived from this context */
    int status;               /* the last failure's status, CNK_OK if none */
    char message[1024];       /* the last failure's one-line message */
    cnk_progress_fn progress; /* optional */
    cnk_warn_fn warn;         /* optional */
    void *user;               /* passed to the callbacks */
    size_t n_warnings;        /* how many inputs were skipped since init */
} cnk_ctx;

/* Sets threads to the number of online cores, seed to 42, no callbacks. */
void cnk_ctx_init(cnk_ctx *ctx);

/* Records a failure (printf-style one-line message) and returns status, so callers can write
 * `return cnk_fail(ctx, CNK_ERR_INPUT, "%s: truncated header", path);`. */
int cnk_fail(cnk_ctx *ctx, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Reports a skipped input through ctx->warn (printf-style) and counts it. Never fails. */
void cnk_warn(cnk_ctx *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Reports progress through ctx->progress if set. */
void cnk_progress(cnk_ctx *ctx, const char *stage, size_t done, size_t total, const char *extra);

/* The last failure's message ("" if none). */
const char *cnk_error(const cnk_ctx *ctx);
void cnk_clear_error(cnk_ctx *ctx);

/* Number of online cores (>= 1). */
int cnk_cpu_count(void);

#endif
