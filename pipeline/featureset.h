/* featureset.h: the features of every item of a data set, computed once (in parallel over files, one
 * preprocessing worker per thread, through the on-disk feature cache) and kept in memory for training. */
#ifndef CNK_FEATURESET_H
#define CNK_FEATURESET_H

#include <stddef.h>

#include "core/context.h"
#include "core/npy.h"
#include "pipeline/dataset.h"
#include "pipeline/preprocess.h"

typedef struct cnk_featureset {
    size_t n_items;
    cnk_array *features; /* one per item; data == NULL when the item was skipped (reported via cnk_warn) */
    size_t n_skipped;
    size_t n_cached;     /* items whose features came from the cache */
} cnk_featureset;

/* Computes the features of every item with a label >= 0 (and, when only_part != CNK_PART_NONE, in that
 * part). cache_dir NULL = the default cache folder, "" = no cache. Files that cannot be decoded are warned
 * about (in item order) and skipped; the call fails only on an error that is not about one file. */
int cnk_featureset_compute(cnk_ctx *ctx, const cnk_dataset *ds, const cnk_preprocess *p, const char *cache_dir,
                           int only_part, cnk_featureset *out);
/* The same for a list of files (NULL entries are skipped silently). */
int cnk_featureset_compute_paths(cnk_ctx *ctx, const char *const *paths, size_t n, const cnk_preprocess *p,
                                 const char *cache_dir, cnk_featureset *out);
void cnk_featureset_release(cnk_featureset *fs);

#endif
