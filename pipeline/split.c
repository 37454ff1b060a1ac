#include "pipeline/split.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/rng.h"
#include "pipeline/csv.h"

#define SPLIT_RNG_STREAM 0x5B117ULL /* keeps the split's draws apart from every other use of the seed */
#define N_PARTS 4                   /* CNK_PART_NONE .. CNK_PART_TEST, indexable by part */

void cnk_split_options_init(cnk_split_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->val_fraction = 0.1;
    opts->test_fraction = 0.3;
}

const char *cnk_part_name(int part)
{
    switch (part) {
    case CNK_PART_TRAIN: return "train";
    case CNK_PART_VAL: return "val";
    case CNK_PART_TEST: return "test";
    default: return "none";
    }
}

int cnk_part_from_name(const char *name)
{
    for (int part = CNK_PART_TRAIN; part <= CNK_PART_TEST; part++)
        if (strcmp(name, cnk_part_name(part)) == 0) return part;
    return -1;
}

static int compile_regex(cnk_ctx *ctx, regex_t *re, const char *pattern, const char *option)
{
    int err = regcomp(re, pattern, REG_EXTENDED);
    if (!err) return CNK_OK;
    char why[256];
    regerror(err, re, why, sizeof why);
    regfree(re);
    return cnk_fail(ctx, CNK_ERR_ARG, "%s '%s': %s", option, pattern, why);
}

/* ---- groups ---- */

typedef struct keyed_item {
    char *key;   /* the group key, NULL when the regex did not match */
    size_t item;
} keyed_item;

static int compare_keyed(const void *a, const void *b)
{
    const keyed_item *x = a, *y = b;
    if (x->key && y->key) {
        int c = strcmp(x->key, y->key);
        if (c) return c;
    } else if (x->key || y->key) {
        return x->key ? -1 : 1; /* unmatched items last, each its own group */
    }
    return x->item < y->item ? -1 : x->item > y->item;
}

/* The regex's first capture group in name (the whole match if it has none), malloc'd; NULL if no match. */
static char *group_key(const regex_t *re, const char *name)
{
    regmatch_t m[2];
    if (regexec(re, name, 2, m, 0) != 0) return NULL;
    regmatch_t use = (re->re_nsub >= 1 && m[1].rm_so >= 0) ? m[1] : m[0];
    size_t len = (size_t)(use.rm_eo - use.rm_so);
    char *key = malloc(len + 1);
    if (key) {
        memcpy(key, name + use.rm_so, len);
        key[len] = '\0';
    }
    return key;
}

/* group_of[i] = a group id for every item, equal ids for equal keys, ids in key order. */
static int assign_groups(cnk_ctx *ctx, const cnk_dataset *ds, const char *group_by, size_t *group_of)
{
    if (!group_by) {
        for (size_t i = 0; i < ds->n_items; i++) group_of[i] = i;
        return CNK_OK;
    }
    regex_t re;
    int rc = compile_regex(ctx, &re, group_by, "--group-by");
    if (rc) return rc;
    keyed_item *keyed = calloc(ds->n_items ? ds->n_items : 1, sizeof *keyed);
    if (!keyed) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory grouping items");
    for (size_t i = 0; !rc && i < ds->n_items; i++) {
        keyed[i].item = i;
        keyed[i].key = group_key(&re, ds->items[i].name);
    }
    if (!rc) {
        qsort(keyed, ds->n_items, sizeof *keyed, compare_keyed);
        size_t id = 0;
        for (size_t i = 0; i < ds->n_items; i++) {
            int same = i > 0 && keyed[i].key && keyed[i - 1].key && strcmp(keyed[i].key, keyed[i - 1].key) == 0;
            if (i > 0 && !same) id++;
            group_of[keyed[i].item] = id;
        }
    }
    for (size_t i = 0; keyed && i < ds->n_items; i++) free(keyed[i].key);
    free(keyed);
    regfree(&re);
    return rc;
}

/* ---- stratified greedy distribution of groups ---- */

typedef struct pool_group {
    size_t first, count; /* range in the pool's items, sorted by (group, label) */
    uint64_t tie_break;  /* random order among groups of equal size */
} pool_group;

typedef struct pool_sort {
    size_t item, group;
    int label;
} pool_sort;

static int compare_pool(const void *a, const void *b)
{
    const pool_sort *x = a, *y = b;
    if (x->group != y->group) return x->group < y->group ? -1 : 1;
    if (x->label != y->label) return x->label < y->label ? -1 : 1;
    return x->item < y->item ? -1 : x->item > y->item;
}

static int compare_groups(const void *a, const void *b)
{
    const pool_group *x = a, *y = b;
    if (x->count != y->count) return x->count > y->count ? -1 : 1; /* big groups first: they are hardest to fit */
    return x->tie_break < y->tie_break ? -1 : x->tie_break > y->tie_break;
}

/* How much the squared distance to the per-class targets grows if the group joins part p. */
static double placement_cost(const pool_sort *items, const pool_group *g, const double *target, const double *current,
                             size_t n_classes, int p)
{
    double cost = 0;
    for (size_t i = g->first; i < g->first + g->count;) {
        int label = items[i].label;
        double n = 0;
        while (i < g->first + g->count && items[i].label == label) n++, i++;
        size_t cell = (size_t)p * n_classes + (size_t)label;
        cost += n * (2.0 * (current[cell] - target[cell]) + n);
    }
    return cost;
}

typedef struct distribution {
    const int *parts;        /* candidate parts */
    const double *fractions; /* their shares of the pool, summing to 1 */
    int n_parts;
} distribution;

/* Places whole groups of the pool one by one where they bring every class closest to its targets. */
static void place_groups(cnk_dataset *ds, pool_sort *items, pool_group *groups, size_t n_groups,
                         const distribution *dist, double *target, double *current)
{
    size_t n_classes = ds->n_classes;
    for (size_t g = 0; g < n_groups; g++) {
        int best = dist->parts[0];
        double best_cost = 0;
        for (int k = 0; k < dist->n_parts; k++) {
            double cost = placement_cost(items, &groups[g], target, current, n_classes, dist->parts[k]);
            if (k == 0 || cost < best_cost) {
                best = dist->parts[k];
                best_cost = cost;
            }
        }
        for (size_t i = groups[g].first; i < groups[g].first + groups[g].count; i++) {
            ds->items[items[i].item].part = best;
            current[(size_t)best * n_classes + (size_t)items[i].label] += 1;
        }
    }
}

static int distribute(cnk_ctx *ctx, cnk_dataset *ds, const unsigned char *in_pool, const size_t *group_of,
                      const distribution *dist)
{
    size_t n_pool = 0, n_classes = ds->n_classes;
    for (size_t i = 0; i < ds->n_items; i++) n_pool += in_pool[i];
    if (n_pool == 0) return CNK_OK;
    pool_sort *items = malloc(n_pool * sizeof *items);
    pool_group *groups = malloc(n_pool * sizeof *groups);
    double *target = calloc(N_PARTS * (n_classes ? n_classes : 1), sizeof *target);
    double *current = calloc(N_PARTS * (n_classes ? n_classes : 1), sizeof *current);
    if (!items || !groups || !target || !current) {
        free(items), free(groups), free(target), free(current);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory splitting %zu items", n_pool);
    }
    size_t n = 0;
    for (size_t i = 0; i < ds->n_items; i++)
        if (in_pool[i]) items[n++] = (pool_sort){.item = i, .group = group_of[i], .label = ds->items[i].label};
    qsort(items, n_pool, sizeof *items, compare_pool);
    cnk_rng rng;
    cnk_rng_seed(&rng, ctx->seed, SPLIT_RNG_STREAM);
    size_t n_groups = 0;
    for (size_t i = 0; i < n_pool; i++) {
        if (i == 0 || items[i].group != items[i - 1].group)
            groups[n_groups++] = (pool_group){.first = i, .count = 0, .tie_break = cnk_rng_u64(&rng)};
        groups[n_groups - 1].count++;
        for (int k = 0; k < dist->n_parts; k++)
            target[(size_t)dist->parts[k] * n_classes + (size_t)items[i].label] += dist->fractions[k];
    }
    qsort(groups, n_groups, sizeof *groups, compare_groups);
    place_groups(ds, items, groups, n_groups, dist, target, current);
    free(items), free(groups), free(target), free(current);
    return CNK_OK;
}

/* ---- the three situations ---- */

static int check_fractions(cnk_ctx *ctx, const cnk_split_options *opts)
{
    double v = opts->val_fraction, t = opts->test_fraction;
    if (!(v >= 0 && v < 1) || !(t >= 0 && t < 1) || !(v + t < 1))
        return cnk_fail(ctx, CNK_ERR_ARG, "split fractions val %g + test %g must be >= 0 and leave room for training",
                        v, t);
    return CNK_OK;
}

/* Splits the pool into train and val (val_fraction of it), or train/val/test when with_test. */
static int split_pool(cnk_ctx *ctx, cnk_dataset *ds, const unsigned char *in_pool, const size_t *group_of,
                      const cnk_split_options *opts, int with_test)
{
    int parts[3];
    double fractions[3];
    int n = 0;
    double v = opts->val_fraction, t = with_test ? opts->test_fraction : 0;
    parts[n] = CNK_PART_TRAIN, fractions[n++] = 1 - v - t;
    if (v > 0) parts[n] = CNK_PART_VAL, fractions[n++] = v;
    if (t > 0) parts[n] = CNK_PART_TEST, fractions[n++] = t;
    distribution dist = {parts, fractions, n};
    return distribute(ctx, ds, in_pool, group_of, &dist);
}

static int mark_test_matches(cnk_ctx *ctx, cnk_dataset *ds, const char *pattern, unsigned char *in_pool)
{
    regex_t re;
    int rc = compile_regex(ctx, &re, pattern, "--test-match");
    if (rc) return rc;
    size_t matched = 0;
    for (size_t i = 0; i < ds->n_items; i++) {
        if (ds->items[i].label < 0) continue;
        if (regexec(&re, ds->items[i].name, 0, NULL, 0) == 0) {
            ds->items[i].part = CNK_PART_TEST;
            matched++;
        } else {
            in_pool[i] = 1;
        }
    }
    regfree(&re);
    if (!matched) return cnk_fail(ctx, CNK_ERR_ARG, "--test-match '%s' matches no file name", pattern);
    return CNK_OK;
}

static int assign_parts(cnk_ctx *ctx, cnk_dataset *ds, const cnk_split_options *opts, unsigned char *in_pool,
                        const size_t *group_of)
{
    if (ds->presplit) {
        size_t n_val = 0;
        for (size_t i = 0; i < ds->n_items; i++) {
            n_val += ds->items[i].label >= 0 && ds->items[i].part == CNK_PART_VAL;
            in_pool[i] = ds->items[i].label >= 0 && ds->items[i].part == CNK_PART_TRAIN;
        }
        if (n_val || opts->val_fraction <= 0) return CNK_OK;
        return split_pool(ctx, ds, in_pool, group_of, opts, 0);
    }
    for (size_t i = 0; i < ds->n_items; i++) ds->items[i].part = CNK_PART_NONE;
    if (opts->test_match) {
        int rc = mark_test_matches(ctx, ds, opts->test_match, in_pool);
        return rc ? rc : split_pool(ctx, ds, in_pool, group_of, opts, 0);
    }
    for (size_t i = 0; i < ds->n_items; i++) in_pool[i] = ds->items[i].label >= 0;
    return split_pool(ctx, ds, in_pool, group_of, opts, 1);
}

int cnk_split_assign(cnk_ctx *ctx, cnk_dataset *ds, const cnk_split_options *opts)
{
    cnk_split_options defaults;
    if (!opts) {
        cnk_split_options_init(&defaults);
        opts = &defaults;
    }
    int rc = check_fractions(ctx, opts);
    if (rc) return rc;
    size_t n = ds->n_items ? ds->n_items : 1;
    size_t *group_of = malloc(n * sizeof *group_of);
    unsigned char *in_pool = calloc(n, 1);
    if (!group_of || !in_pool) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory splitting %zu items", ds->n_items);
    if (!rc) rc = assign_groups(ctx, ds, opts->group_by, group_of);
    if (!rc) rc = assign_parts(ctx, ds, opts, in_pool, group_of);
    free(group_of);
    free(in_pool);
    if (rc) return rc;
    for (size_t i = 0; i < ds->n_items; i++)
        if (ds->items[i].part == CNK_PART_TRAIN) return CNK_OK;
    return cnk_fail(ctx, CNK_ERR_INPUT, "the split left no item to train on (%zu items)", ds->n_items);
}

/* ---- the split file ---- */

int cnk_split_file_path(cnk_ctx *ctx, const char *model_path, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s.split.csv", model_path);
    if (n < 0 || (size_t)n >= cap) return cnk_fail(ctx, CNK_ERR_ARG, "%s: path too long", model_path);
    return CNK_OK;
}

/* The item's name in the split file: its path, or "row:<N>" for in-memory rows. */
static const char *item_key(const cnk_item *item, char *buf, size_t cap)
{
    if (item->path) return item->path;
    snprintf(buf, cap, "row:%zu", item->row);
    return buf;
}

int cnk_split_write(cnk_ctx *ctx, const char *path, const cnk_dataset *ds)
{
    cnk_afile af;
    int rc = cnk_afile_open(ctx, &af, path);
    if (rc) return rc;
    const char *header[2] = {"path", "split"};
    cnk_csv_write_row(af.fp, header, 2);
    char buf[64];
    for (size_t i = 0; i < ds->n_items; i++) {
        if (ds->items[i].part == CNK_PART_NONE) continue;
        const char *row[2] = {item_key(&ds->items[i], buf, sizeof buf), cnk_part_name(ds->items[i].part)};
        cnk_csv_write_row(af.fp, row, 2);
    }
    return cnk_afile_commit(ctx, &af);
}

typedef struct key_index {
    char *key;
    size_t item;
} key_index;

static int compare_key_index(const void *a, const void *b)
{
    return strcmp(((const key_index *)a)->key, ((const key_index *)b)->key);
}

static int build_key_index(cnk_ctx *ctx, const cnk_dataset *ds, key_index **out)
{
    key_index *index = calloc(ds->n_items ? ds->n_items : 1, sizeof *index);
    if (!index) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory reading a split");
    char buf[64];
    for (size_t i = 0; i < ds->n_items; i++) {
        index[i].item = i;
        index[i].key = strdup(item_key(&ds->items[i], buf, sizeof buf));
        if (!index[i].key) {
            for (size_t j = 0; j < i; j++) free(index[j].key);
            free(index);
            return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory reading a split");
        }
    }
    qsort(index, ds->n_items, sizeof *index, compare_key_index);
    *out = index;
    return CNK_OK;
}

static int apply_rows(cnk_ctx *ctx, const cnk_csv *csv, cnk_dataset *ds, const key_index *index,
                      unsigned char *assigned)
{
    size_t path_col, split_col;
    int rc = cnk_csv_require_column(ctx, csv, "path", &path_col);
    if (!rc) rc = cnk_csv_require_column(ctx, csv, "split", &split_col);
    for (size_t r = 0; !rc && r < csv->n_rows; r++) {
        int part = cnk_part_from_name(cnk_csv_cell(csv, r, split_col));
        if (part < 0)
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s:%zu: unknown split '%.40s' (train, val or test)", csv->name,
                            cnk_csv_line(csv, r), cnk_csv_cell(csv, r, split_col));
        key_index probe = {.key = (char *)cnk_csv_cell(csv, r, path_col)};
        const key_index *hit = bsearch(&probe, index, ds->n_items, sizeof *index, compare_key_index);
        if (!hit) continue; /* a file that is gone: nothing to assign */
        ds->items[hit->item].part = part;
        assigned[hit->item] = 1;
    }
    return rc;
}

int cnk_split_read(cnk_ctx *ctx, const char *path, cnk_dataset *ds)
{
    cnk_csv csv;
    int rc = cnk_csv_read(ctx, path, &csv);
    if (rc) return rc;
    key_index *index = NULL;
    unsigned char *assigned = calloc(ds->n_items ? ds->n_items : 1, 1);
    if (!assigned) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory reading %s", path);
    if (!rc) rc = build_key_index(ctx, ds, &index);
    if (!rc) rc = apply_rows(ctx, &csv, ds, index, assigned);
    char buf[64];
    for (size_t i = 0; !rc && i < ds->n_items; i++)
        if (ds->items[i].label >= 0 && !assigned[i])
            rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: no split for %s (the data changed since the split was written)",
                          path, item_key(&ds->items[i], buf, sizeof buf));
    for (size_t i = 0; index && i < ds->n_items; i++) free(index[i].key);
    free(index);
    free(assigned);
    cnk_csv_release(&csv);
    return rc;
}
