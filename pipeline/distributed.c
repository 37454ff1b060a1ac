/* distributed.c: see distributed.h. With CNK_HAVE_MPI the collectives are MPI's (OpenMPI from Debian); the
 * blocking ones of a training step are issued non-blocking and waited for with a deadline, so a rank whose
 * peer died or stopped gets a status and a message instead of hanging forever. Without MPI every function is
 * the single-process identity. */
#include "pipeline/distributed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline/featureset.h"

#ifdef CNK_HAVE_MPI
#include <mpi.h>
#endif

static const char *const launcher_variables[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", NULL};

int cnk_dist_launched(void)
{
    for (int i = 0; launcher_variables[i]; i++)
        if (getenv(launcher_variables[i])) return 1;
    return 0;
}

int cnk_dist_available(void)
{
#ifdef CNK_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

static int env_int(const char *name, int fallback)
{
    const char *text = getenv(name);
    char *end;
    long v = text ? strtol(text, &end, 10) : 0;
    return text && end != text && *end == '\0' && v > 0 && v < 1000000 ? (int)v : fallback;
}

static double env_timeout(void)
{
    const char *text = getenv("CNK_MPI_TIMEOUT");
    char *end;
    double v = text ? strtod(text, &end) : 0;
    return text && end != text && *end == '\0' && v > 0 ? v : CNK_DIST_DEFAULT_TIMEOUT;
}

void cnk_dist_single(cnk_dist *d)
{
    memset(d, 0, sizeof *d);
    d->size = 1;
    d->local_size = 1;
    d->timeout_seconds = env_timeout();
}

int cnk_dist_is_root(const cnk_dist *d) { return !d || d->rank == 0; }
int cnk_dist_rank(const cnk_dist *d) { return d ? d->rank : 0; }
int cnk_dist_size(const cnk_dist *d) { return d ? d->size : 1; }

int cnk_dist_default_threads(const cnk_dist *d, int cores)
{
    int local = d && d->local_size > 0 ? d->local_size : 1;
    int threads = cores / local;
    return threads >= 1 ? threads : 1;
}

void cnk_dist_shard(const cnk_dist *d, size_t n, size_t *from, size_t *count)
{
    size_t size = (size_t)cnk_dist_size(d), rank = (size_t)cnk_dist_rank(d);
    size_t base = n / size, extra = n % size;
    *count = base + (rank < extra);
    *from = rank * base + (rank < extra ? rank : extra);
}

int cnk_dist_owns(const cnk_dist *d, size_t index)
{
    return index % (size_t)cnk_dist_size(d) == (size_t)cnk_dist_rank(d);
}

static int is_parallel(const cnk_dist *d) { return d && d->size > 1; }

#ifdef CNK_HAVE_MPI

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* MPI's text for an error code, in one line. */
static const char *mpi_error_text(int code, char *buf)
{
    int len = 0;
    if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) snprintf(buf, MPI_MAX_ERROR_STRING, "MPI error %d", code);
    return buf;
}

static int mpi_fail(cnk_ctx *ctx, const cnk_dist *d, int code, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    return cnk_fail(ctx, CNK_ERR_IO, "rank %d of %d: %s failed: %s (another rank probably died)", d->rank, d->size,
                    what, mpi_error_text(code, text));
}

/* Waits for a non-blocking collective, spinning briefly then sleeping 50 us between tests (the other rank
 * may need this core); timeout <= 0 waits forever. The request is left pending on a timeout: the caller's
 * only way on is to end the job (cnk_dist_abort). */
static int wait_request(cnk_ctx *ctx, cnk_dist *d, MPI_Request *request, double timeout, const char *what)
{
    double start = now_seconds();
    for (long spins = 0;; spins++) {
        int done = 0;
        int code = MPI_Test(request, &done, MPI_STATUS_IGNORE);
        if (code != MPI_SUCCESS) return mpi_fail(ctx, d, code, what);
        if (done) break;
        if (spins < 2000) continue;
        double waited = now_seconds() - start;
        if (timeout > 0 && waited > timeout)
            return cnk_fail(ctx, CNK_ERR_IO,
                            "rank %d of %d: no answer from the other ranks for %.0f s during %s: a rank died or "
                            "hangs (CNK_MPI_TIMEOUT sets the limit)",
                            d->rank, d->size, waited, what);
        struct timespec pause = {0, 50000};
        nanosleep(&pause, NULL);
    }
    d->comm_seconds += now_seconds() - start;
    return CNK_OK;
}

int cnk_dist_init(cnk_ctx *ctx, cnk_dist *d)
{
    cnk_dist_single(d);
    if (!cnk_dist_launched()) return CNK_OK;
    int already = 0;
    MPI_Initialized(&already);
    if (!already) {
        int provided = 0;
        /* Only the main thread calls MPI; OpenMP and OpenBLAS threads never do. */
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return cnk_fail(ctx, CNK_ERR_IO, "MPI_Init failed (started by mpirun?)");
        d->initialised = 1;
    }
    /* Errors come back as codes (turned into messages) instead of MPI's default of aborting silently. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    d->local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", d->rank);
    d->local_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", d->size);
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &d->local_rank);
        MPI_Comm_size(node, &d->local_size);
        MPI_Comm_free(&node);
    }
    return CNK_OK;
}

void cnk_dist_finalize(cnk_dist *d)
{
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (d->initialised && !finalized) MPI_Finalize();
    d->initialised = 0;
}

void cnk_dist_abort(const cnk_dist *d, int exit_code)
{
    if (is_parallel(d)) MPI_Abort(MPI_COMM_WORLD, exit_code);
}

int cnk_dist_barrier(cnk_ctx *ctx, cnk_dist *d)
{
    if (!is_parallel(d)) return CNK_OK;
    MPI_Request request;
    int code = MPI_Ibarrier(MPI_COMM_WORLD, &request);
    if (code != MPI_SUCCESS) return mpi_fail(ctx, d, code, "a barrier");
    return wait_request(ctx, d, &request, 0, "a barrier");
}

/* MPI counts are int: large arrays go in chunks. */
#define CHUNK ((size_t)1 << 30)

int cnk_dist_broadcast_floats(cnk_ctx *ctx, cnk_dist *d, float *values, size_t n)
{
    if (!is_parallel(d)) return CNK_OK;
    for (size_t off = 0; off < n; off += CHUNK) {
        int count = (int)(n - off < CHUNK ? n - off : CHUNK);
        MPI_Request request;
        int code = MPI_Ibcast(values + off, count, MPI_FLOAT, 0, MPI_COMM_WORLD, &request);
        if (code != MPI_SUCCESS) return mpi_fail(ctx, d, code, "the weights broadcast");
        int rc = wait_request(ctx, d, &request, d->timeout_seconds, "the weights broadcast");
        if (rc) return rc;
    }
    return CNK_OK;
}

static int allreduce(cnk_ctx *ctx, cnk_dist *d, void *values, size_t n, MPI_Datatype type, MPI_Op op,
                     const char *what)
{
    size_t elem = type == MPI_DOUBLE ? sizeof(double) : type == MPI_INT ? sizeof(int) : sizeof(float);
    for (size_t off = 0; off < n; off += CHUNK) {
        int count = (int)(n - off < CHUNK ? n - off : CHUNK);
        MPI_Request request;
        int code = MPI_Iallreduce(MPI_IN_PLACE, (char *)values + off * elem, count, type, op, MPI_COMM_WORLD,
                                  &request);
        if (code != MPI_SUCCESS) return mpi_fail(ctx, d, code, what);
        int rc = wait_request(ctx, d, &request, d->timeout_seconds, what);
        if (rc) return rc;
    }
    return CNK_OK;
}

#else /* no MPI: one process */

int cnk_dist_init(cnk_ctx *ctx, cnk_dist *d)
{
    cnk_dist_single(d);
    if (cnk_dist_launched() && env_int("OMPI_COMM_WORLD_SIZE", env_int("PMI_SIZE", 1)) > 1)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED,
                        "started by mpirun with several ranks, but this cnnkit was built without MPI "
                        "(install libopenmpi-dev and rebuild with -DCNK_MPI=ON)");
    return CNK_OK;
}

void cnk_dist_finalize(cnk_dist *d) { d->initialised = 0; }
void cnk_dist_abort(const cnk_dist *d, int exit_code) { (void)d, (void)exit_code; }

int cnk_dist_barrier(cnk_ctx *ctx, cnk_dist *d)
{
    (void)ctx, (void)d;
    return CNK_OK;
}

int cnk_dist_broadcast_floats(cnk_ctx *ctx, cnk_dist *d, float *values, size_t n)
{
    (void)ctx, (void)d, (void)values, (void)n;
    return CNK_OK;
}

#endif

int cnk_dist_allreduce_gradients(cnk_ctx *ctx, cnk_dist *d, float *grads, size_t n, size_t n_local,
                                 size_t n_global)
{
    if (!is_parallel(d)) return CNK_OK;
    if (n_global == 0 || n_local > n_global)
        return cnk_fail(ctx, CNK_ERR_INTERNAL, "allreduce: %zu local samples of a global batch of %zu", n_local,
                        n_global);
    /* Each rank's gradient is of its mean loss; weighting by its share of the batch makes the sum the
     * gradient of the global mean. */
    float share = (float)((double)n_local / (double)n_global);
    for (size_t i = 0; i < n; i++) grads[i] *= share;
#ifdef CNK_HAVE_MPI
    int rc = allreduce(ctx, d, grads, n, MPI_FLOAT, MPI_SUM, "the gradient allreduce");
    if (!rc) d->n_reductions++;
    return rc;
#else
    return CNK_OK;
#endif
}

int cnk_dist_sum_doubles(cnk_ctx *ctx, cnk_dist *d, double *values, size_t n)
{
    if (!is_parallel(d)) return CNK_OK;
#ifdef CNK_HAVE_MPI
    return allreduce(ctx, d, values, n, MPI_DOUBLE, MPI_SUM, "a sum over ranks");
#else
    (void)ctx, (void)values, (void)n;
    return CNK_OK;
#endif
}

int cnk_dist_average_floats(cnk_ctx *ctx, cnk_dist *d, float *values, size_t n)
{
    if (!is_parallel(d)) return CNK_OK;
#ifdef CNK_HAVE_MPI
    int rc = allreduce(ctx, d, values, n, MPI_FLOAT, MPI_SUM, "an average over ranks");
    if (rc) return rc;
    float inv = 1.0f / (float)d->size;
    for (size_t i = 0; i < n; i++) values[i] *= inv;
    return CNK_OK;
#else
    (void)ctx, (void)values, (void)n;
    return CNK_OK;
#endif
}

int cnk_dist_agree(cnk_ctx *ctx, cnk_dist *d, int status)
{
    if (!is_parallel(d)) return status;
#ifdef CNK_HAVE_MPI
    int worst = status;
    int rc = allreduce(ctx, d, &worst, 1, MPI_INT, MPI_MAX, "agreeing on a status");
    if (rc) return rc;
    if (worst != CNK_OK && status == CNK_OK)
        return cnk_fail(ctx, worst, "rank %d of %d: stopping because another rank failed (its message says why)",
                        d->rank, d->size);
    return worst;
#else
    (void)ctx;
    return status;
#endif
}

/* 1 if an item of part `part` is among `parts`. */
static int part_selected(int part, cnk_dist_parts parts)
{
    switch (parts) {
    case CNK_DIST_TRAIN_PART: return part == CNK_PART_TRAIN;
    case CNK_DIST_OTHER_PARTS: return part != CNK_PART_TRAIN;
    case CNK_DIST_ALL_PARTS: break;
    }
    return 1;
}

int cnk_dist_warm_feature_cache(cnk_ctx *ctx, cnk_dist *d, const cnk_dataset *ds, const cnk_preprocess *p,
                                const char *cache_dir)
{
    return cnk_dist_warm_feature_cache_parts(ctx, d, ds, p, cache_dir, CNK_DIST_ALL_PARTS);
}

int cnk_dist_warm_feature_cache_parts(cnk_ctx *ctx, cnk_dist *d, const cnk_dataset *ds, const cnk_preprocess *p,
                                      const char *cache_dir, cnk_dist_parts parts)
{
    if (parts != CNK_DIST_ALL_PARTS && parts != CNK_DIST_TRAIN_PART && parts != CNK_DIST_OTHER_PARTS)
        return cnk_fail(ctx, CNK_ERR_INTERNAL, "feature cache warm-up: unknown part selection %d", (int)parts);
    if (!is_parallel(d) || (cache_dir && !cache_dir[0]) || ds->values || ds->bytes) return CNK_OK;
    const char **paths = calloc(ds->n_items ? ds->n_items : 1, sizeof *paths);
    if (!paths) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < ds->n_items; i++)
        if (ds->items[i].label >= 0 && part_selected(ds->items[i].part, parts) && cnk_dist_owns(d, i))
            paths[i] = ds->items[i].path;
    /* Warnings about unreadable files would be repeated by the full pass that follows: keep them quiet here. */
    cnk_ctx quiet = *ctx;
    quiet.warn = NULL;
    cnk_featureset shard;
    int rc = cnk_featureset_compute_paths(&quiet, (const char *const *)paths, ds->n_items, p, cache_dir, &shard);
    free(paths);
    if (rc) {
        ctx->status = quiet.status;
        memcpy(ctx->message, quiet.message, sizeof ctx->message);
    } else {
        cnk_featureset_release(&shard);
    }
    /* The barrier has no deadline (ranks' shards may take minutes longer than others); then all agree. */
    int barrier_rc = cnk_dist_barrier(ctx, d);
    if (barrier_rc) return barrier_rc;
    return cnk_dist_agree(ctx, d, rc);
}
