/* split.h: who trains on what. Stratified, seeded train/val/test splits that keep groups (a speaker, an
 * artist) on one side, a regex for a fixed test set, and the split file that lets a run be reproduced. */
#ifndef CNK_SPLIT_H
#define CNK_SPLIT_H

#include <stddef.h>

#include "core/context.h"
#include "pipeline/dataset.h"

typedef struct cnk_split_options {
    double val_fraction;    /* default 0.1 */
    double test_fraction;   /* default 0.3; ignored when test_match is given or the data came pre-split */
    /* POSIX extended regex searched in each item's name (the file's base name); its first capture group (the
     * whole match if it has none) is the item's group, and a group's items all land in one part. Items the
     * regex does not match are their own group. NULL = every item is its own group. */
    const char *group_by;
    /* POSIX extended regex: items whose name matches form the test part (e.g. FSDD's "_[0-4]\\.wav$");
     * the others are split into train and val. NULL = a stratified test part of test_fraction. */
    const char *test_match;
} cnk_split_options;

void cnk_split_options_init(cnk_split_options *opts);

/* Sets every item's part, drawing randomness from ctx->seed only (same seed, same data -> same split).
 * - Items with label -1 are left at CNK_PART_NONE.
 * - Not pre-split: each class's items go to train/val/test in the given fractions (within one item per
 *   class and part when there are no groups; as close as whole groups allow otherwise).
 * - test_match: matching items are the test part; val_fraction of the others (per class) is val.
 * - Pre-split data (ds->presplit) keeps its parts; when it has no val items, val_fraction of the train items
 *   (per class, groups kept whole) become val.
 * Fails when a regex does not compile, or when the result has no train item. */
int cnk_split_assign(cnk_ctx *ctx, cnk_dataset *ds, const cnk_split_options *opts);

/* "train", "val", "test" ("none" for CNK_PART_NONE); and back (-1 if unknown). */
const char *cnk_part_name(int part);
int cnk_part_from_name(const char *name);

/* The split file beside a model: "<model_path>.split.csv". */
int cnk_split_file_path(cnk_ctx *ctx, const char *model_path, char *buf, size_t cap);
/* Writes a CSV `path,split` with one row per item that has a part (path = the file, or "row:<N>" for CSV
 * rows / IDX records), atomically. */
int cnk_split_write(cnk_ctx *ctx, const char *path, const cnk_dataset *ds);
/* Sets parts from a split file written by cnk_split_write. Every labelled item of ds must be listed (an
 * item missing from the file is an error naming it: the data changed since the split was made); rows
 * naming items ds does not have (e.g. files since deleted) are ignored. */
int cnk_split_read(cnk_ctx *ctx, const char *path, cnk_dataset *ds);

#endif
