#include "pipeline/featureset.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/cache.h"

/* Features of an in-memory item (CSV row, IDX image): the dataset's values, shaped as it says. */
static int values_of_item(cnk_ctx *ctx, const cnk_dataset *ds, size_t i, cnk_array *out)
{
    memset(out, 0, sizeof *out);
    out->data = malloc(ds->item_size * sizeof *out->data);
    if (!out->data) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory for item %zu", i);
    int rc = cnk_dataset_item_values(ctx, ds, i, out->data);
    if (rc) {
        cnk_array_release(out);
        return rc;
    }
    out->ndim = ds->item_ndim;
    for (int d = 0; d < ds->item_ndim && d < 3; d++) out->shape[d] = ds->item_shape[d];
    return CNK_OK;
}

static int wanted(const cnk_dataset *ds, size_t i, int only_part)
{
    return ds->items[i].label >= 0 && (only_part == CNK_PART_NONE || ds->items[i].part == only_part);
}

/* One thread's share: files i = first, first + stride, ...; errors are kept per item and reported later. */
typedef struct shared_run {
    cnk_ctx *ctx;
    const char *const *paths; /* per item; NULL = not wanted */
    size_t n_items;
    const cnk_preprocess *p;
    const cnk_cache *cache; /* NULL = no cache */
    char key_text[512];
    cnk_featureset *out;
    char **errors;
    size_t done, total;
    int fatal;
    char fatal_msg[1024];
} shared_run;

/* Features of file i through the cache: a hit skips decoding; a failed cache write only costs speed. */
static int features_of_file(cnk_ctx *local, shared_run *run, cnk_prep_worker *worker, size_t i, int *cached)
{
    const char *path = run->paths[i];
    cnk_array *dst = &run->out->features[i];
    cnk_cache_key key;
    *cached = 0;
    int use_cache = run->cache && cnk_cache_key_file(local, path, run->key_text, &key) == CNK_OK;
    if (use_cache) {
        int found = 0;
        if (cnk_cache_get(local, run->cache, &key, dst, &found) == CNK_OK && found) {
            *cached = 1;
            return CNK_OK;
        }
    }
    int rc = cnk_preprocess_file(local, worker, path, dst);
    if (!rc && use_cache) {
        cnk_ctx quiet = *local;
        cnk_cache_put(&quiet, run->cache, &key, dst->data, dst->ndim, dst->shape);
    }
    return rc;
}

static void compute_files(shared_run *run)
{
    const cnk_ctx *ctx = run->ctx;
    char **errors = run->errors;
    int *fatal = &run->fatal;
    char *fatal_msg = run->fatal_msg;
    const cnk_preprocess *p = run->p;
    cnk_ctx local = *ctx;
    local.threads = 1;
    local.progress = NULL;
    local.warn = NULL;
    cnk_prep_worker *worker = NULL;
    if (cnk_prep_worker_create(&local, p, &worker) != CNK_OK) {
#pragma omp critical(cnk_featureset_fatal)
        {
            *fatal = local.status;
            snprintf(fatal_msg, 1024, "%s", cnk_error(&local));
        }
    }
    /* Every thread must reach the worksharing loop (even one whose worker failed) or the team deadlocks. */
#pragma omp for schedule(dynamic, 1)
    for (size_t i = 0; i < run->n_items; i++) {
        int stop;
#pragma omp atomic read
        stop = *fatal;
        if (!worker || stop || !run->paths[i]) continue;
        int cached = 0;
        int rc = features_of_file(&local, run, worker, i, &cached);
        if (cached) {
#pragma omp atomic
            run->out->n_cached++;
        }
        if (rc == CNK_ERR_NOMEM) {
#pragma omp critical(cnk_featureset_fatal)
            {
#pragma omp atomic write
                *fatal = rc;
                snprintf(fatal_msg, 1024, "%s", cnk_error(&local));
            }
        } else if (rc) {
            errors[i] = strdup(cnk_error(&local)[0] ? cnk_error(&local) : run->paths[i]);
        }
        size_t now;
#pragma omp atomic capture
        now = ++run->done;
        if (omp_get_thread_num() == 0 && now < run->total) cnk_progress(run->ctx, "features", now, run->total, NULL);
    }
    cnk_prep_worker_free(worker);
}

static int compute_all_files(cnk_ctx *ctx, const char *const *paths, size_t n_items, const cnk_preprocess *p,
                             const char *cache_dir, cnk_featureset *out, char **errors)
{
    shared_run *run = calloc(1, sizeof *run);
    if (!run) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory");
    *run = (shared_run){.ctx = ctx, .paths = paths, .n_items = n_items, .p = p, .out = out, .errors = errors};
    cnk_cache cache;
    if (!cache_dir || cache_dir[0]) {
        cnk_ctx quiet = *ctx;
        if (cnk_cache_init(&quiet, &cache, cache_dir) == CNK_OK) run->cache = &cache; /* no cache: just slower */
    }
    cnk_preprocess_feature_key(p, run->key_text, sizeof run->key_text);
    for (size_t i = 0; i < n_items; i++) run->total += paths[i] != NULL;
    int threads = ctx->threads > 0 ? ctx->threads : 1;
    cnk_progress(ctx, "features", 0, run->total, NULL);
#pragma omp parallel num_threads(threads)
    {
        compute_files(run);
    }
    cnk_progress(ctx, "features", run->total, run->total, NULL);
    int rc = run->fatal ? cnk_fail(ctx, run->fatal, "%s", run->fatal_msg) : CNK_OK;
    free(run);
    return rc;
}

static int start(cnk_ctx *ctx, size_t n_items, cnk_featureset *out, char ***errors)
{
    memset(out, 0, sizeof *out);
    out->n_items = n_items;
    out->features = calloc(n_items ? n_items : 1, sizeof *out->features);
    *errors = calloc(n_items ? n_items : 1, sizeof **errors);
    if (!out->features || !*errors) {
        free(*errors);
        cnk_featureset_release(out);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory for %zu items", n_items);
    }
    return CNK_OK;
}

/* Reports the skipped items in item order (so the messages do not depend on thread timing). */
static int finish(cnk_ctx *ctx, int rc, size_t n_items, cnk_featureset *out, char **errors)
{
    for (size_t i = 0; i < n_items; i++) {
        if (errors[i]) {
            if (!rc) cnk_warn(ctx, "%s", errors[i]);
            out->n_skipped++;
        }
        free(errors[i]);
    }
    free(errors);
    if (rc) cnk_featureset_release(out);
    return rc;
}

int cnk_featureset_compute(cnk_ctx *ctx, const cnk_dataset *ds, const cnk_preprocess *p, const char *cache_dir,
                           int only_part, cnk_featureset *out)
{
    char **errors;
    int rc = start(ctx, ds->n_items, out, &errors);
    if (rc) return rc;
    if (ds->values || ds->bytes) {
        for (size_t i = 0; i < ds->n_items && !rc; i++)
            if (wanted(ds, i, only_part)) rc = values_of_item(ctx, ds, i, &out->features[i]);
    } else {
        const char **paths = calloc(ds->n_items ? ds->n_items : 1, sizeof *paths);
        if (!paths) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory");
        for (size_t i = 0; !rc && i < ds->n_items; i++) paths[i] = wanted(ds, i, only_part) ? ds->items[i].path : NULL;
        if (!rc) rc = compute_all_files(ctx, paths, ds->n_items, p, cache_dir, out, errors);
        free(paths);
    }
    return finish(ctx, rc, ds->n_items, out, errors);
}

int cnk_featureset_compute_paths(cnk_ctx *ctx, const char *const *paths, size_t n, const cnk_preprocess *p,
                                 const char *cache_dir, cnk_featureset *out)
{
    char **errors;
    int rc = start(ctx, n, out, &errors);
    if (rc) return rc;
    rc = compute_all_files(ctx, paths, n, p, cache_dir, out, errors);
    return finish(ctx, rc, n, out, errors);
}

void cnk_featureset_release(cnk_featureset *fs)
{
    if (fs->features)
        for (size_t i = 0; i < fs->n_items; i++) cnk_array_release(&fs->features[i]);
    free(fs->features);
    memset(fs, 0, sizeof *fs);
}
