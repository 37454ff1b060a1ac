/* cnnkit/context.h: the context every cnnkit call takes (thread count, RNG seed, the last error, callbacks
 * for progress and skipped inputs) and the status codes. One context serves one thread at a time. */
#ifndef CNNKIT_CONTEXT_H
#define CNNKIT_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "cnnkit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The same definitions as the library's internal core/context.h (which the library's own sources include
 * instead, hence the guard); the values are part of the API and never change. */
#ifndef CNK_CONTEXT_H
/* Every fallible function returns one of these; on failure the context holds a one-line message naming
 * the file or argument and what is wrong (cnk_context_error). */
enum cnk_status {
    CNK_OK = 0,
    CNK_ERR_ARG = 1,         /* an invalid parameter */
    CNK_ERR_INPUT = 2,       /* an input file or buffer is malformed, truncated or unsupported */
    CNK_ERR_IO = 3,          /* a file could not be opened, read, written or renamed */
    CNK_ERR_NOMEM = 4,       /* an allocation failed or a size limit was exceeded */
    CNK_ERR_UNSUPPORTED = 5, /* a well-formed input uses a feature cnnkit does not implement */
    CNK_ERR_INTERNAL = 6     /* a library invariant failed (a bug): the message says where */
};
/* Progress of a long stage (features, training, classify): done of total units; extra is a short status
 * text or NULL. Called from the thread that made the call. */
typedef void (*cnk_progress_fn)(void *user, const char *stage, size_t done, size_t total, const char *extra);
/* An input was skipped (e.g. an undecodable file in a data set): one line naming the file and the cause. */
typedef void (*cnk_warn_fn)(void *user, const char *message);
#endif

/* Opaque. Every function that takes a cnk_ctx needs one from cnk_context_create (never NULL); a function that
 * fails leaves its status and message in it. */
typedef struct cnk_ctx cnk_ctx;

/* A new context: threads = online cores, seed 42, no callbacks. NULL if out of memory. */
CNK_API cnk_ctx *cnk_context_create(void);
CNK_API void cnk_context_free(cnk_ctx *ctx);

/* Worker threads for training, feature extraction and BLAS: 1..1024, or 0 for all online cores. */
CNK_API int cnk_context_set_threads(cnk_ctx *ctx, int threads);
CNK_API int cnk_context_threads(const cnk_ctx *ctx);
/* The seed every random stream (splits, initialisation, shuffling, augmentation) derives from. */
CNK_API void cnk_context_set_seed(cnk_ctx *ctx, uint64_t seed);
CNK_API uint64_t cnk_context_seed(const cnk_ctx *ctx);
/* Either callback may be NULL; user is passed to both. */
CNK_API void cnk_context_set_callbacks(cnk_ctx *ctx, cnk_progress_fn progress, cnk_warn_fn warn, void *user);

/* The last failure's status and message (CNK_OK and "" if nothing failed since the last clear). */
CNK_API int cnk_context_status(const cnk_ctx *ctx);
CNK_API const char *cnk_context_error(const cnk_ctx *ctx);
CNK_API void cnk_context_clear_error(cnk_ctx *ctx);
/* How many inputs were skipped (reported through the warn callback) since the context was created. */
CNK_API size_t cnk_context_warnings(const cnk_ctx *ctx);

/* "ok", "invalid argument", "bad input", "I/O error", "out of memory", "unsupported", "internal error". */
CNK_API const char *cnk_status_name(int status);

/* Frees memory the library returned to the caller (feature arrays, report text). NULL is ignored. */
CNK_API void cnk_free(void *ptr);

#ifdef __cplusplus
}
#endif

#endif
