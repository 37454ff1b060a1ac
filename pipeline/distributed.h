/* distributed.h: data-parallel training over MPI (`mpirun -np N cnnkit train ...`): rank and size, weights
 * broadcast from rank 0, one allreduce of the flat gradient buffer per step, shards of global batches and file
 * lists, and collectives that fail with a clear message (instead of hanging) when a peer dies or stops.
 *
 * Every function takes a `const cnk_dist *` that may be NULL, meaning one process (rank 0 of 1); a build
 * without MPI (CNK_HAVE_MPI undefined) or a run outside mpirun is that single process, so the training loop
 * calls the same API either way and the single-process behaviour is unchanged.
 *
 * Semantics of a step with N ranks and a global batch of B samples (see bench/README.md, "Scaling"):
 * - rank r trains on samples [from, from + count) of the global batch (cnk_dist_shard: contiguous, sizes
 *   differ by at most one), so the union over ranks is the single-process batch in the same order;
 * - each rank's loss is the mean over its own shard; cnk_dist_allreduce_gradients scales its gradient by
 *   count / B and sums over ranks, giving exactly the gradient of the mean loss over the global batch;
 * - the optimiser step then runs identically on every rank (same weights, same gradient, same state).
 * Documented difference: batch normalisation normalises with each rank's shard statistics (the nn layers
 * have no cross-rank hook), i.e. "ghost batch norm" with B/N samples; running statistics are averaged across
 * ranks at the end of every epoch (cnk_dist_average_floats), so every rank holds the same model. Without
 * batch-norm layers (and without dropout or augmentation, whose random streams are per rank) N ranks give
 * the single-process weights up to float summation order (tests/test_mpi.sh checks 1e-5 relative). */
#ifndef CNK_DISTRIBUTED_H
#define CNK_DISTRIBUTED_H

#include <stddef.h>

#include "core/context.h"
#include "pipeline/dataset.h"
#include "pipeline/preprocess.h"

typedef struct cnk_dist {
    int rank, size;             /* this process and how many (0 and 1 without MPI) */
    int local_rank, local_size; /* the same among the ranks on this machine */
    int initialised;            /* 1 when cnk_dist_init started MPI (cnk_dist_finalize must stop it) */
    double timeout_seconds;     /* a step's collective taking longer fails: a rank died or stopped */
    double comm_seconds;        /* wall time spent in collectives (for scaling measurements) */
    size_t n_reductions;        /* gradient allreduces done */
} cnk_dist;

/* Default for timeout_seconds; the environment variable CNK_MPI_TIMEOUT (seconds) overrides it. */
#define CNK_DIST_DEFAULT_TIMEOUT 60.0

/* 1 when this process was started by mpirun/mpiexec (OpenMPI, or a PMI/PMIx launcher). */
int cnk_dist_launched(void);
/* 1 when the build has MPI. */
int cnk_dist_available(void);

/* Rank 0 of 1, no MPI. */
void cnk_dist_single(cnk_dist *d);
/* Starts MPI when launched by mpirun (errors returned, not fatal), else is cnk_dist_single. Fails if launched
 * with several ranks by a build without MPI (each would train alone and write the same files). */
int cnk_dist_init(cnk_ctx *ctx, cnk_dist *d);
/* Ends MPI if cnk_dist_init started it. */
void cnk_dist_finalize(cnk_dist *d);
/* For the application's error path only: a rank that failed ends every rank (MPI_Abort) with exit_code, so
 * no peer waits for it. Returns (doing nothing) in a single process. */
void cnk_dist_abort(const cnk_dist *d, int exit_code);

/* 1 on rank 0 (and in a single process): only it writes checkpoints, models and reports. */
int cnk_dist_is_root(const cnk_dist *d);
int cnk_dist_rank(const cnk_dist *d);
int cnk_dist_size(const cnk_dist *d);
/* Threads per rank when the user gave none: the cores shared by the ranks on this machine (at least 1), so
 * ranks x threads never exceed the cores. */
int cnk_dist_default_threads(const cnk_dist *d, int cores);

/* This rank's contiguous part of n samples: [*from, *from + *count); the first n % size ranks get one more. */
void cnk_dist_shard(const cnk_dist *d, size_t n, size_t *from, size_t *count);
/* 1 if this rank handles item `index` of a file list (round robin, so slow and fast files spread evenly). */
int cnk_dist_owns(const cnk_dist *d, size_t index);

/* Waits for every rank (no timeout: ranks may legitimately differ by minutes, e.g. feature extraction). */
int cnk_dist_barrier(cnk_ctx *ctx, cnk_dist *d);
/* Rank 0's n floats to every rank (initial weights). */
int cnk_dist_broadcast_floats(cnk_ctx *ctx, cnk_dist *d, float *values, size_t n);
/* The step's gradient: grads (n floats, the mean over this rank's n_local samples) becomes on every rank the
 * mean-loss gradient over the global batch of n_global samples: one allreduce of the whole flat buffer.
 * n_local may be 0 (a rank with no sample in a short last batch: its grads must be zero). */
int cnk_dist_allreduce_gradients(cnk_ctx *ctx, cnk_dist *d, float *grads, size_t n, size_t n_local,
                                 size_t n_global);
/* Sums n doubles over ranks in place (loss sums, correct counts). */
int cnk_dist_sum_doubles(cnk_ctx *ctx, cnk_dist *d, double *values, size_t n);
/* Averages n floats over ranks in place (batch-norm running statistics). */
int cnk_dist_average_floats(cnk_ctx *ctx, cnk_dist *d, float *values, size_t n);
/* The worst (largest) status over ranks, so all ranks take the same branch after a local failure; returns it
 * (with this rank's message kept when it is the one that failed). */
int cnk_dist_agree(cnk_ctx *ctx, cnk_dist *d, int status);

/* Splits feature extraction across ranks: each rank computes (through the on-disk cache) the features of the
 * labelled items it owns, then all wait, so the full cnk_featureset_compute that follows reads every item
 * from the cache. Nothing to do in a single process, without a cache (cache_dir ""), or for in-memory data
 * (CSV, IDX). Skipped files are reported later by the full pass, once. */
int cnk_dist_warm_feature_cache(cnk_ctx *ctx, cnk_dist *d, const cnk_dataset *ds, const cnk_preprocess *p,
                                const char *cache_dir);

/* Which items a warm-up decodes, for a run that reads the parts in different views (photos' training source
 * size: the training part at one size, validation and test at the input size), so that no file is decoded in
 * a view nothing reads it in. */
typedef enum cnk_dist_parts {
    CNK_DIST_ALL_PARTS = 0, /* every labelled item (cnk_dist_warm_feature_cache) */
    CNK_DIST_TRAIN_PART,    /* only the training part's items (CNK_PART_TRAIN) */
    CNK_DIST_OTHER_PARTS    /* every labelled item but the training part's */
} cnk_dist_parts;

/* cnk_dist_warm_feature_cache over the labelled items of `parts` only. Ownership is by item index as there, so
 * a view's items are spread over the ranks the same way whichever parts are selected. */
int cnk_dist_warm_feature_cache_parts(cnk_ctx *ctx, cnk_dist *d, const cnk_dataset *ds, const cnk_preprocess *p,
                                      const char *cache_dir, cnk_dist_parts parts);

#endif
