#include "pipeline/dataset.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/fsutil.h"
#include "pipeline/csv.h"
#include "pipeline/idx.h"

static const char *const audio_exts[] = {"wav", "au", "snd", "aiff", "aif", "aifc", "flac", "ogg", "oga", "opus",
                                         "mp3", NULL};
static const char *const image_exts[] = {"jpg", "jpeg", "png", "bmp", "gif", "tga", "pnm", "ppm", "pgm", NULL};

void cnk_dataset_options_init(cnk_dataset_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->kind = CNK_INPUT_AUTO;
    opts->label_column = "label";
    opts->skip_text_columns = 1;
}

static int has_any_ext(const char *path, const char *const *exts)
{
    for (size_t i = 0; exts[i]; i++)
        if (cnk_path_has_ext(path, exts[i])) return 1;
    return 0;
}

cnk_input_kind cnk_input_kind_of_path(const char *path)
{
    if (has_any_ext(path, audio_exts)) return CNK_INPUT_AUDIO;
    if (has_any_ext(path, image_exts)) return CNK_INPUT_IMAGE;
    if (cnk_path_has_ext(path, "npy")) return CNK_INPUT_NPY;
    if (cnk_path_has_ext(path, "csv")) return CNK_INPUT_CSV;
    if (strstr(cnk_path_base(path), "-idx")) return CNK_INPUT_IDX;
    return CNK_INPUT_AUTO;
}

const char *cnk_input_kind_name(cnk_input_kind kind)
{
    static const char *const names[] = {"auto", "audio", "image", "npy", "csv", "idx"};
    return (unsigned)kind < sizeof names / sizeof *names ? names[kind] : "unknown";
}

/* ---- items and classes ---- */

static int add_item(cnk_ctx *ctx, cnk_dataset *ds, const char *path, const char *name, size_t row, int label,
                    int part)
{
    if (ds->n_items == ds->cap_items) {
        size_t cap = ds->cap_items ? ds->cap_items * 2 : 256;
        cnk_item *grown = realloc(ds->items, cap * sizeof *grown);
        if (!grown) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory listing the dataset");
        ds->items = grown;
        ds->cap_items = cap;
    }
    cnk_item item = {.path = path ? strdup(path) : NULL, .name = strdup(name), .row = row, .label = label,
                     .part = part};
    if ((path && !item.path) || !item.name) {
        free(item.path);
        free(item.name);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory listing the dataset");
    }
    ds->items[ds->n_items++] = item;
    return CNK_OK;
}

static void free_strings(char **strings, size_t n)
{
    if (!strings) return;
    for (size_t i = 0; i < n; i++) free(strings[i]);
    free(strings);
}

void cnk_dataset_release(cnk_dataset *ds)
{
    for (size_t i = 0; i < ds->n_items; i++) {
        free(ds->items[i].path);
        free(ds->items[i].name);
    }
    free(ds->items);
    free_strings(ds->classes, ds->n_classes);
    free_strings(ds->feature_names, ds->feature_names ? ds->item_size : 0);
    free(ds->values);
    free(ds->bytes);
    memset(ds, 0, sizeof *ds);
}

static int copy_strings(cnk_ctx *ctx, const char *const *src, size_t n, char ***out)
{
    char **copy = calloc(n ? n : 1, sizeof *copy);
    if (!copy) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory copying names");
    for (size_t i = 0; i < n; i++) {
        copy[i] = strdup(src[i]);
        if (!copy[i]) {
            free_strings(copy, i);
            return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory copying names");
        }
    }
    *out = copy;
    return CNK_OK;
}

int cnk_dataset_class_index(const cnk_dataset *ds, const char *name)
{
    for (size_t k = 0; k < ds->n_classes; k++)
        if (strcmp(ds->classes[k], name) == 0) return (int)k;
    return -1;
}

void cnk_dataset_class_counts(const cnk_dataset *ds, int part, size_t *counts)
{
    memset(counts, 0, ds->n_classes * sizeof *counts);
    for (size_t i = 0; i < ds->n_items; i++) {
        const cnk_item *it = &ds->items[i];
        if (it->label >= 0 && (part == CNK_PART_NONE || it->part == part)) counts[it->label]++;
    }
}

int cnk_dataset_match_classes(cnk_ctx *ctx, cnk_dataset *ds, const char *const *names, size_t n_names)
{
    int *map = malloc((ds->n_classes ? ds->n_classes : 1) * sizeof *map);
    size_t *counts = calloc(ds->n_classes ? ds->n_classes : 1, sizeof *counts);
    char **copy = NULL;
    int rc = (!map || !counts) ? cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory matching classes")
                               : copy_strings(ctx, names, n_names, &copy);
    if (rc) {
        free(map);
        free(counts);
        return rc;
    }
    cnk_dataset_class_counts(ds, CNK_PART_NONE, counts);
    for (size_t k = 0; k < ds->n_classes; k++) {
        map[k] = -1;
        for (size_t j = 0; j < n_names; j++)
            if (strcmp(ds->classes[k], names[j]) == 0) map[k] = (int)j;
        if (map[k] < 0 && counts[k])
            cnk_warn(ctx, "class '%s' (%zu items) is not one of the model's classes, skipped", ds->classes[k],
                     counts[k]);
    }
    for (size_t i = 0; i < ds->n_items; i++)
        if (ds->items[i].label >= 0) ds->items[i].label = map[ds->items[i].label];
    free_strings(ds->classes, ds->n_classes);
    ds->classes = copy;
    ds->n_classes = n_names;
    free(map);
    free(counts);
    return CNK_OK;
}

int cnk_dataset_item_values(cnk_ctx *ctx, const cnk_dataset *ds, size_t i, float *out)
{
    if (i >= ds->n_items) return cnk_fail(ctx, CNK_ERR_ARG, "item %zu out of range (%zu items)", i, ds->n_items);
    size_t offset = ds->items[i].row * ds->item_size;
    if (ds->values) {
        memcpy(out, ds->values + offset, ds->item_size * sizeof *out);
    } else if (ds->bytes) {
        for (size_t v = 0; v < ds->item_size; v++) out[v] = (float)ds->bytes[offset + v];
    } else {
        return cnk_fail(ctx, CNK_ERR_ARG, "%s: item has no in-memory values (a file dataset)", ds->items[i].name);
    }
    return CNK_OK;
}

/* ---- class-per-subfolder folders ---- */

/* Files of one class folder, with the kind each one has. */
typedef struct class_files {
    cnk_pathlist files;
    cnk_input_kind *kinds;
} class_files;

static int list_class(cnk_ctx *ctx, const char *dir, const char *class_name, class_files *out, size_t *kind_counts)
{
    size_t len = strlen(dir) + strlen(class_name) + 2;
    char *class_dir = malloc(len);
    if (!class_dir) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory listing %s", dir);
    snprintf(class_dir, len, "%s/%s", dir, class_name);
    int rc = cnk_list_files(ctx, class_dir, 1, &out->files);
    free(class_dir);
    if (rc) return rc;
    out->kinds = malloc((out->files.count ? out->files.count : 1) * sizeof *out->kinds);
    if (!out->kinds) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory listing %s", dir);
    for (size_t i = 0; i < out->files.count; i++) {
        out->kinds[i] = cnk_input_kind_of_path(out->files.paths[i]);
        kind_counts[out->kinds[i]]++;
    }
    return CNK_OK;
}

static void warn_loose_files(cnk_ctx *ctx, const char *dir)
{
    cnk_ctx scratch = *ctx; /* a listing failure here is not worth failing for: the class folders matter */
    cnk_pathlist loose;
    if (cnk_list_files(&scratch, dir, 0, &loose) != CNK_OK) return;
    /* Audio, images or arrays beside the class folders were probably meant to be inputs; a README,
     * SOURCE.txt or metadata.csv there documents the data set and is no skipped input. */
    for (size_t i = 0; i < loose.count; i++) {
        cnk_input_kind kind = cnk_input_kind_of_path(loose.paths[i]);
        if (kind == CNK_INPUT_AUDIO || kind == CNK_INPUT_IMAGE || kind == CNK_INPUT_NPY)
            cnk_warn(ctx, "%s: not inside a class folder, skipped", loose.paths[i]);
    }
    cnk_pathlist_release(&loose);
}

/* The kind a folder holds: forced, or the most common data kind among the file-based ones. */
static cnk_input_kind majority_kind(cnk_input_kind forced, const size_t *kind_counts)
{
    if (forced == CNK_INPUT_AUDIO || forced == CNK_INPUT_IMAGE || forced == CNK_INPUT_NPY) return forced;
    cnk_input_kind best = CNK_INPUT_AUTO;
    size_t best_count = 0;
    const cnk_input_kind file_kinds[] = {CNK_INPUT_AUDIO, CNK_INPUT_IMAGE, CNK_INPUT_NPY};
    for (size_t k = 0; k < 3; k++)
        if (kind_counts[file_kinds[k]] > best_count) {
            best = file_kinds[k];
            best_count = kind_counts[file_kinds[k]];
        }
    return best;
}

/* Adds the files of the chosen kind; the class keeps an index only if it has at least one file. */
static int add_class_items(cnk_ctx *ctx, cnk_dataset *ds, const char *dir, const char *class_name,
                           const class_files *cf, cnk_input_kind kind, int part)
{
    size_t before = ds->n_items;
    int label = (int)ds->n_classes;
    for (size_t i = 0; i < cf->files.count; i++) {
        const char *path = cf->files.paths[i];
        if (cf->kinds[i] != kind) {
            cnk_warn(ctx, "%s: not %s file, skipped", path,
                     kind == CNK_INPUT_AUDIO ? "an audio" : kind == CNK_INPUT_IMAGE ? "an image" : "a .npy");
            continue;
        }
        int rc = add_item(ctx, ds, path, cnk_path_base(path), 0, label, part);
        if (rc) return rc;
    }
    if (ds->n_items == before) {
        cnk_warn(ctx, "%s/%s: no %s files, class skipped", dir, class_name, cnk_input_kind_name(kind));
        return CNK_OK;
    }
    char *name = strdup(class_name);
    char **grown = name ? realloc(ds->classes, (ds->n_classes + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(name);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory listing classes");
    }
    ds->classes = grown;
    ds->classes[ds->n_classes++] = name;
    return CNK_OK;
}

static int load_folder_part(cnk_ctx *ctx, const char *dir, const cnk_dataset_options *opts, int part,
                            cnk_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (!cnk_is_dir(dir)) return cnk_fail(ctx, CNK_ERR_IO, "%s: not a folder", dir);
    cnk_pathlist subdirs;
    int rc = cnk_list_subdirs(ctx, dir, &subdirs);
    if (rc) return rc;
    if (subdirs.count == 0) {
        cnk_pathlist_release(&subdirs);
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: no class subfolders (expected %s/<class>/<files>)", dir, dir);
    }
    class_files *per_class = calloc(subdirs.count, sizeof *per_class);
    size_t kind_counts[CNK_INPUT_IDX + 1] = {0};
    if (!per_class) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory listing %s", dir);
    for (size_t k = 0; !rc && k < subdirs.count; k++)
        rc = list_class(ctx, dir, subdirs.paths[k], &per_class[k], kind_counts);
    cnk_input_kind kind = rc ? CNK_INPUT_AUTO : majority_kind(opts ? opts->kind : CNK_INPUT_AUTO, kind_counts);
    if (!rc && kind == CNK_INPUT_AUTO)
        rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: no audio, image or .npy files in its class folders", dir);
    if (!rc) warn_loose_files(ctx, dir);
    for (size_t k = 0; !rc && k < subdirs.count; k++)
        rc = add_class_items(ctx, out, dir, subdirs.paths[k], &per_class[k], kind, part);
    for (size_t k = 0; per_class && k < subdirs.count; k++) {
        cnk_pathlist_release(&per_class[k].files);
        free(per_class[k].kinds);
    }
    free(per_class);
    cnk_pathlist_release(&subdirs);
    out->kind = kind;
    if (!rc && out->n_items == 0)
        rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: no %s files in its class folders", dir, cnk_input_kind_name(kind));
    return rc;
}

int cnk_dataset_load_folder(cnk_ctx *ctx, const char *dir, const cnk_dataset_options *opts, cnk_dataset *out)
{
    return load_folder_part(ctx, dir, opts, CNK_PART_NONE, out);
}

/* ---- pre-split folders ---- */

/* Moves src's items into dst, matching classes by name. */
static int merge_part(cnk_ctx *ctx, cnk_dataset *dst, const cnk_dataset *src, const char *dir)
{
    size_t *counts = calloc(src->n_classes ? src->n_classes : 1, sizeof *counts);
    if (!counts) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory merging %s", dir);
    cnk_dataset_class_counts(src, CNK_PART_NONE, counts);
    for (size_t k = 0; k < src->n_classes; k++)
        if (cnk_dataset_class_index(dst, src->classes[k]) < 0)
            cnk_warn(ctx, "%s/%s: class not in the training folder, %zu files skipped", dir, src->classes[k],
                     counts[k]);
    free(counts);
    for (size_t i = 0; i < src->n_items; i++) {
        const cnk_item *it = &src->items[i];
        int label = cnk_dataset_class_index(dst, src->classes[it->label]);
        if (label < 0) continue;
        int rc = add_item(ctx, dst, it->path, it->name, 0, label, it->part);
        if (rc) return rc;
    }
    return CNK_OK;
}

int cnk_dataset_load_presplit(cnk_ctx *ctx, const char *train_dir, const char *val_dir, const char *test_dir,
                              const cnk_dataset_options *opts, cnk_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (!train_dir || !test_dir) return cnk_fail(ctx, CNK_ERR_ARG, "pre-split data needs a train and a test folder");
    int rc = load_folder_part(ctx, train_dir, opts, CNK_PART_TRAIN, out);
    if (rc) return rc;
    out->presplit = 1;
    cnk_dataset_options same_kind;
    if (opts) same_kind = *opts;
    else cnk_dataset_options_init(&same_kind);
    same_kind.kind = out->kind; /* val and test must hold what the model is trained on */
    const char *dirs[2] = {val_dir, test_dir};
    const int parts[2] = {CNK_PART_VAL, CNK_PART_TEST};
    for (int d = 0; d < 2 && !rc; d++) {
        if (!dirs[d]) continue;
        cnk_dataset part;
        rc = load_folder_part(ctx, dirs[d], &same_kind, parts[d], &part);
        if (!rc) rc = merge_part(ctx, out, &part, dirs[d]);
        cnk_dataset_release(&part);
    }
    return rc;
}

/* ---- CSV tables ---- */

enum { COLUMN_FEATURE, COLUMN_LABEL, COLUMN_SKIP };

/* 1 if name is one of the comma-separated names in list. */
static int list_contains(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0) return 1;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

static int check_skip_list(cnk_ctx *ctx, const cnk_csv *csv, const char *list)
{
    char name[256];
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name ? n : sizeof name - 1), p);
        size_t col;
        if (n && !cnk_csv_find_column(csv, name, &col))
            return cnk_fail(ctx, CNK_ERR_ARG, "%s:%zu: no column '%s' to skip", csv->name, csv->header_line, name);
        p = comma ? comma + 1 : NULL;
    }
    return CNK_OK;
}

/* A column is an identifier (text) when most of its values are not numbers; a column of numbers with a few
 * bad cells is a feature column whose bad cells are errors. */
static int is_text_column(const cnk_csv *csv, size_t col)
{
    double v;
    if (!cnk_csv_number_problem(cnk_csv_cell(csv, 0, col), &v)) return 0;
    size_t non_numbers = 0;
    for (size_t r = 0; r < csv->n_rows; r++)
        if (cnk_csv_number_problem(cnk_csv_cell(csv, r, col), &v)) non_numbers++;
    return non_numbers * 2 > csv->n_rows;
}

static void note_skipped(cnk_dataset *ds, const char *name)
{
    size_t used = strlen(ds->skipped_columns);
    snprintf(ds->skipped_columns + used, sizeof ds->skipped_columns - used, "%s%s", used ? "," : "", name);
}

static int assign_roles(cnk_ctx *ctx, const cnk_csv *csv, const cnk_dataset_options *opts, size_t label_col,
                        int *roles, size_t *n_features, cnk_dataset *ds)
{
    int rc = check_skip_list(ctx, csv, opts->skip_columns);
    if (rc) return rc;
    *n_features = 0;
    for (size_t c = 0; c < csv->n_cols; c++) {
        if (c == label_col) roles[c] = COLUMN_LABEL;
        else if (list_contains(opts->skip_columns, csv->header[c])) roles[c] = COLUMN_SKIP;
        else if (opts->skip_text_columns && is_text_column(csv, c)) roles[c] = COLUMN_SKIP;
        else roles[c] = COLUMN_FEATURE;
        if (roles[c] == COLUMN_SKIP) note_skipped(ds, csv->header[c]);
        if (roles[c] == COLUMN_FEATURE) (*n_features)++;
    }
    if (*n_features == 0)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s:%zu: no numeric feature columns", csv->name, csv->header_line);
    return CNK_OK;
}

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Class names = the distinct label cells, sorted bytewise. */
static int collect_classes(cnk_ctx *ctx, const cnk_csv *csv, size_t label_col, cnk_dataset *ds)
{
    const char **labels = malloc(csv->n_rows * sizeof *labels);
    if (!labels) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory reading labels", csv->name);
    for (size_t r = 0; r < csv->n_rows; r++) {
        labels[r] = cnk_csv_cell(csv, r, label_col);
        if (!labels[r][0]) {
            free(labels);
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s:%zu: empty label", csv->name, cnk_csv_line(csv, r));
        }
    }
    qsort(labels, csv->n_rows, sizeof *labels, compare_strings);
    size_t n_unique = 0;
    for (size_t r = 0; r < csv->n_rows; r++)
        if (r == 0 || strcmp(labels[r], labels[n_unique - 1]) != 0) labels[n_unique++] = labels[r];
    int rc = copy_strings(ctx, labels, n_unique, &ds->classes);
    if (!rc) ds->n_classes = n_unique;
    free(labels);
    return rc;
}

static int set_image_shape(cnk_ctx *ctx, const cnk_csv *csv, const cnk_dataset_options *opts, size_t n_features,
                           cnk_dataset *ds)
{
    ds->item_size = n_features;
    if (opts->image_width <= 0 || opts->image_height <= 0) {
        ds->item_ndim = 1;
        ds->item_shape[0] = n_features;
        return CNK_OK;
    }
    size_t pixels = (size_t)opts->image_width * (size_t)opts->image_height;
    if (n_features != pixels && n_features != 3 * pixels)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: %zu numeric columns, not %dx%d (or 3x%dx%d) pixels", csv->name,
                        n_features, opts->image_width, opts->image_height, opts->image_width, opts->image_height);
    ds->item_ndim = 3;
    ds->item_shape[0] = n_features / pixels;
    ds->item_shape[1] = (size_t)opts->image_height;
    ds->item_shape[2] = (size_t)opts->image_width;
    return CNK_OK;
}

/* Interleaved RGB (HWC, as a flattened picture) to the planar CHW every image path uses. */
static void hwc_to_chw(float *row, float *scratch, size_t pixels)
{
    for (size_t p = 0; p < pixels; p++)
        for (size_t c = 0; c < 3; c++) scratch[c * pixels + p] = row[p * 3 + c];
    memcpy(row, scratch, 3 * pixels * sizeof *row);
}

static int fill_values(cnk_ctx *ctx, const cnk_csv *csv, const int *roles, cnk_dataset *ds)
{
    if (csv->n_rows > SIZE_MAX / sizeof(float) / ds->item_size)
        return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: table too large", csv->name);
    ds->values = malloc(csv->n_rows * ds->item_size * sizeof *ds->values);
    float *scratch = ds->item_shape[0] == 3 && ds->item_ndim == 3 ? malloc(ds->item_size * sizeof *scratch) : NULL;
    if (!ds->values || (ds->item_shape[0] == 3 && ds->item_ndim == 3 && !scratch)) {
        free(scratch);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory for %zu x %zu values", csv->name, csv->n_rows,
                        ds->item_size);
    }
    int rc = CNK_OK;
    for (size_t r = 0; r < csv->n_rows && !rc; r++) {
        float *row = ds->values + r * ds->item_size;
        size_t f = 0;
        for (size_t c = 0; c < csv->n_cols && !rc; c++)
            if (roles[c] == COLUMN_FEATURE) rc = cnk_csv_get_float(ctx, csv, r, c, &row[f++]);
        if (!rc && scratch) hwc_to_chw(row, scratch, ds->item_size / 3);
    }
    free(scratch);
    return rc;
}

static int add_csv_items(cnk_ctx *ctx, const cnk_csv *csv, const int *roles, size_t label_col, cnk_dataset *ds)
{
    size_t id_col = csv->n_cols;
    for (size_t c = 0; c < csv->n_cols && id_col == csv->n_cols; c++)
        if (roles[c] == COLUMN_SKIP) id_col = c;
    char row_name[64];
    for (size_t r = 0; r < csv->n_rows; r++) {
        snprintf(row_name, sizeof row_name, "row%zu", r);
        const char *name = id_col < csv->n_cols ? cnk_csv_cell(csv, r, id_col) : row_name;
        int label = label_col < csv->n_cols ? cnk_dataset_class_index(ds, cnk_csv_cell(csv, r, label_col)) : -1;
        int rc = add_item(ctx, ds, NULL, name, r, label, CNK_PART_NONE);
        if (rc) return rc;
    }
    return CNK_OK;
}

static int keep_feature_names(cnk_ctx *ctx, const cnk_csv *csv, const int *roles, cnk_dataset *ds)
{
    if (ds->item_ndim != 1) return CNK_OK;
    const char **names = malloc(ds->item_size * sizeof *names);
    if (!names) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", csv->name);
    size_t f = 0;
    for (size_t c = 0; c < csv->n_cols; c++)
        if (roles[c] == COLUMN_FEATURE) names[f++] = csv->header[c];
    int rc = copy_strings(ctx, names, f, &ds->feature_names);
    free(names);
    return rc;
}

int cnk_dataset_load_csv(cnk_ctx *ctx, const char *path, const cnk_dataset_options *opts, cnk_dataset *out)
{
    memset(out, 0, sizeof *out);
    cnk_dataset_options defaults;
    if (!opts) {
        cnk_dataset_options_init(&defaults);
        opts = &defaults;
    }
    cnk_csv csv;
    int rc = cnk_csv_read(ctx, path, &csv);
    if (rc) return rc;
    size_t label_col = 0, n_features = 0;
    int *roles = malloc(csv.n_cols * sizeof *roles);
    if (!roles) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", path);
    const char *label_name = opts->label_column ? opts->label_column : "label";
    if (!rc && opts->label_optional && !cnk_csv_find_column(&csv, label_name, &label_col))
        label_col = csv.n_cols; /* no labels: every row is to be predicted */
    else if (!rc)
        rc = cnk_csv_require_column(ctx, &csv, label_name, &label_col);
    if (!rc && csv.n_rows == 0) rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: a header but no data rows", path);
    if (!rc) rc = assign_roles(ctx, &csv, opts, label_col, roles, &n_features, out);
    if (!rc) rc = set_image_shape(ctx, &csv, opts, n_features, out);
    if (!rc) rc = fill_values(ctx, &csv, roles, out);
    if (!rc && label_col < csv.n_cols) rc = collect_classes(ctx, &csv, label_col, out);
    if (!rc) rc = add_csv_items(ctx, &csv, roles, label_col, out);
    if (!rc) rc = keep_feature_names(ctx, &csv, roles, out);
    out->kind = CNK_INPUT_CSV;
    free(roles);
    cnk_csv_release(&csv);
    return rc;
}

/* ---- IDX files ---- */

/* Class names "0".."N-1", zero-padded so bytewise order is numeric order. */
static int set_numeric_classes(cnk_ctx *ctx, cnk_dataset *ds, size_t n_classes)
{
    char widest[32];
    snprintf(widest, sizeof widest, "%zu", n_classes - 1);
    size_t width = strlen(widest);
    char **names = calloc(n_classes, sizeof *names);
    if (!names) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory naming classes");
    for (size_t k = 0; k < n_classes; k++) {
        char digits[32], text[64];
        snprintf(digits, sizeof digits, "%zu", k);
        size_t pad = width - strlen(digits);
        memset(text, '0', pad);
        strcpy(text + pad, digits);
        names[k] = strdup(text);
        if (!names[k]) {
            free_strings(names, k);
            return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory naming classes");
        }
    }
    free_strings(ds->classes, ds->n_classes);
    ds->classes = names;
    ds->n_classes = n_classes;
    return CNK_OK;
}

static int check_idx_pair(cnk_ctx *ctx, const cnk_idx_reader *images, const cnk_idx_reader *labels,
                          const cnk_dataset *ds)
{
    if (images->type != CNK_IDX_U8 || images->ndim < 2 || images->ndim > 3)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: expected uint8 images (N x H x W or N x D)", images->path);
    if (labels->type != CNK_IDX_U8 || labels->ndim != 1)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: expected a uint8 label vector", labels->path);
    if (labels->n_records != images->n_records)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: %zu labels for %zu images in %s", labels->path, labels->n_records,
                        images->n_records, images->path);
    if (ds->n_items && (ds->kind != CNK_INPUT_IDX || ds->item_size != images->record_values))
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: images of %zu values, the dataset's have %zu", images->path,
                        images->record_values, ds->item_size);
    return CNK_OK;
}

/* Streams the images into ds->bytes in chunks, so only the compact byte store is ever resident. */
static int read_idx_images(cnk_ctx *ctx, cnk_idx_reader *images, cnk_dataset *ds, size_t first_row)
{
    size_t n = images->n_records, size = images->record_values;
    if (first_row + n > SIZE_MAX / size) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: too many images", images->path);
    unsigned char *grown = realloc(ds->bytes, (first_row + n) * size);
    if (!grown) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory for %zu images", images->path, n);
    ds->bytes = grown;
    const size_t chunk = 4096;
    for (size_t done = 0; done < n;) {
        size_t count = n - done < chunk ? n - done : chunk;
        int rc = cnk_idx_read_bytes(ctx, images, count, ds->bytes + (first_row + done) * size);
        if (rc) return rc;
        done += count;
        cnk_progress(ctx, "reading IDX", done, n, NULL);
    }
    return CNK_OK;
}

static int add_idx_items(cnk_ctx *ctx, cnk_dataset *ds, const unsigned char *labels, size_t n, size_t first_row,
                         int part)
{
    const char *prefix = part == CNK_PART_TEST ? "test" : part == CNK_PART_VAL ? "val" : "train";
    for (size_t i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%zu", prefix, i);
        int rc = add_item(ctx, ds, NULL, name, first_row + i, labels[i], part);
        if (rc) return rc;
    }
    return CNK_OK;
}

int cnk_dataset_load_idx(cnk_ctx *ctx, const char *images_path, const char *labels_path, int part,
                         cnk_dataset *out)
{
    cnk_idx_reader images, labels;
    int rc = cnk_idx_open(ctx, images_path, &images);
    if (rc) return rc;
    rc = cnk_idx_open(ctx, labels_path, &labels);
    if (rc) {
        cnk_idx_close(&images);
        return rc;
    }
    unsigned char *label_bytes = NULL;
    size_t first_row = out->n_items ? out->items[out->n_items - 1].row + 1 : 0;
    rc = check_idx_pair(ctx, &images, &labels, out);
    if (!rc) {
        label_bytes = malloc(labels.n_records);
        if (!label_bytes) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", labels_path);
    }
    if (!rc) rc = cnk_idx_read_bytes(ctx, &labels, labels.n_records, label_bytes);
    if (!rc) rc = read_idx_images(ctx, &images, out, first_row);
    size_t n_classes = out->n_classes;
    for (size_t i = 0; !rc && i < labels.n_records; i++)
        if ((size_t)label_bytes[i] + 1 > n_classes) n_classes = (size_t)label_bytes[i] + 1;
    if (!rc && n_classes != out->n_classes) rc = set_numeric_classes(ctx, out, n_classes);
    if (!rc) rc = add_idx_items(ctx, out, label_bytes, labels.n_records, first_row, part);
    if (!rc) {
        out->kind = CNK_INPUT_IDX;
        if (part != CNK_PART_NONE) out->presplit = 1;
        out->item_size = images.record_values;
        out->item_ndim = images.ndim == 3 ? 3 : 1;
        out->item_shape[0] = images.ndim == 3 ? 1 : images.dims[1];
        out->item_shape[1] = images.ndim == 3 ? images.dims[1] : 0;
        out->item_shape[2] = images.ndim == 3 ? images.dims[2] : 0;
    }
    free(label_bytes);
    cnk_idx_close(&images);
    cnk_idx_close(&labels);
    return rc;
}

/* The one file of dir whose name contains one of the patterns (a plain and a .gz copy of one file count as
 * one, the plain one preferred). */
static int find_idx_file(cnk_ctx *ctx, const char *dir, const cnk_pathlist *files, const char *const *patterns,
                         const char *what, const char **found)
{
    *found = NULL;
    for (size_t i = 0; i < files->count; i++) {
        const char *base = cnk_path_base(files->paths[i]);
        int match = 0;
        for (size_t p = 0; patterns[p]; p++) match |= strstr(base, patterns[p]) != NULL;
        if (!match) continue;
        if (*found) {
            size_t len = strlen(*found);
            int gz_twin = strncmp(*found, files->paths[i], len) == 0 && strcmp(files->paths[i] + len, ".gz") == 0;
            if (gz_twin) continue;
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s: several %s files (%s, %s); keep one set per folder", dir,
                            what, cnk_path_base(*found), base);
        }
        *found = files->paths[i];
    }
    if (!*found) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: no %s file (*%s[.gz])", dir, what, patterns[0]);
    return CNK_OK;
}

int cnk_dataset_load_idx_dir(cnk_ctx *ctx, const char *dir, cnk_dataset *out)
{
    memset(out, 0, sizeof *out);
    static const char *const train_images[] = {"train-images-idx", NULL};
    static const char *const train_labels[] = {"train-labels-idx", NULL};
    static const char *const test_images[] = {"t10k-images-idx", "test-images-idx", NULL};
    static const char *const test_labels[] = {"t10k-labels-idx", "test-labels-idx", NULL};
    cnk_pathlist files;
    int rc = cnk_list_files(ctx, dir, 0, &files);
    if (rc) return rc;
    const char *paths[4];
    rc = find_idx_file(ctx, dir, &files, train_images, "training-image", &paths[0]);
    if (!rc) rc = find_idx_file(ctx, dir, &files, train_labels, "training-label", &paths[1]);
    if (!rc) rc = find_idx_file(ctx, dir, &files, test_images, "test-image", &paths[2]);
    if (!rc) rc = find_idx_file(ctx, dir, &files, test_labels, "test-label", &paths[3]);
    if (!rc) rc = cnk_dataset_load_idx(ctx, paths[0], paths[1], CNK_PART_TRAIN, out);
    if (!rc) rc = cnk_dataset_load_idx(ctx, paths[2], paths[3], CNK_PART_TEST, out);
    cnk_pathlist_release(&files);
    return rc;
}

/* path with the first `from` replaced by `to`, if that file exists (also trying with/without ".gz"). */
static int sibling(const char *path, const char *from, const char *to, char *buf, size_t cap)
{
    const char *base = cnk_path_base(path);
    const char *at = strstr(base, from);
    if (!at) return 0;
    int n = snprintf(buf, cap, "%.*s%s%s", (int)(at - path), path, to, at + strlen(from));
    if (n < 0 || (size_t)n + 4 >= cap) return 0;
    if (cnk_is_file(buf)) return 1;
    size_t len = strlen(buf);
    if (len > 3 && strcmp(buf + len - 3, ".gz") == 0) buf[len - 3] = '\0';
    else strcat(buf, ".gz");
    return cnk_is_file(buf);
}

int cnk_dataset_load_idx_file(cnk_ctx *ctx, const char *images_path, cnk_dataset *out)
{
    memset(out, 0, sizeof *out);
    char labels[4200], test_images[4200], test_labels[4200];
    if (!sibling(images_path, "-images-idx3", "-labels-idx1", labels, sizeof labels) &&
        !sibling(images_path, "-images-idx", "-labels-idx", labels, sizeof labels))
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: no labels file beside it (*-labels-idx1-ubyte[.gz])", images_path);
    int has_test = strstr(cnk_path_base(images_path), "train-images") &&
                   (sibling(images_path, "train-images", "t10k-images", test_images, sizeof test_images) ||
                    sibling(images_path, "train-images", "test-images", test_images, sizeof test_images));
    if (has_test)
        has_test = sibling(test_images, "-images-idx3", "-labels-idx1", test_labels, sizeof test_labels);
    int rc = cnk_dataset_load_idx(ctx, images_path, labels, has_test ? CNK_PART_TRAIN : CNK_PART_NONE, out);
    if (!rc && has_test) rc = cnk_dataset_load_idx(ctx, test_images, test_labels, CNK_PART_TEST, out);
    return rc;
}

/* ---- one entry point ---- */

static int dir_has_idx_files(const char *dir)
{
    cnk_ctx quiet;
    cnk_ctx_init(&quiet);
    cnk_pathlist files;
    if (cnk_list_files(&quiet, dir, 0, &files) != CNK_OK) return 0;
    int found = 0;
    for (size_t i = 0; i < files.count && !found; i++)
        found = strstr(cnk_path_base(files.paths[i]), "-images-idx") != NULL;
    cnk_pathlist_release(&files);
    return found;
}

/* A subfolder that itself holds class folders (dir/train/cat), i.e. a split, not a class. */
static int is_split_folder(const char *dir, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    if (!cnk_is_dir(buf)) return 0;
    cnk_ctx quiet;
    cnk_ctx_init(&quiet);
    cnk_pathlist subdirs;
    if (cnk_list_subdirs(&quiet, buf, &subdirs) != CNK_OK) return 0;
    int has = subdirs.count > 0;
    cnk_pathlist_release(&subdirs);
    return has;
}

int cnk_dataset_open(cnk_ctx *ctx, const char *path, const cnk_dataset_options *opts, cnk_dataset *out)
{
    memset(out, 0, sizeof *out);
    cnk_dataset_options defaults;
    if (!opts) {
        cnk_dataset_options_init(&defaults);
        opts = &defaults;
    }
    if (opts->train_dir || opts->test_dir) {
        if (!opts->train_dir || !opts->test_dir)
            return cnk_fail(ctx, CNK_ERR_ARG, "pre-split data needs both --train DIR and --test DIR");
        return cnk_dataset_load_presplit(ctx, opts->train_dir, opts->val_dir, opts->test_dir, opts, out);
    }
    if (!path) return cnk_fail(ctx, CNK_ERR_ARG, "no dataset given");
    if (opts->kind == CNK_INPUT_CSV || (cnk_is_file(path) && cnk_path_has_ext(path, "csv")))
        return cnk_dataset_load_csv(ctx, path, opts, out);
    if (!cnk_is_dir(path)) {
        if (!cnk_is_file(path)) return cnk_fail(ctx, CNK_ERR_IO, "%s: no such file or folder", path);
        if (opts->kind == CNK_INPUT_IDX || cnk_input_kind_of_path(path) == CNK_INPUT_IDX)
            return cnk_dataset_load_idx_file(ctx, path, out);
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: not a folder of class folders, nor a .csv file", path);
    }
    if (opts->kind == CNK_INPUT_IDX || (opts->kind == CNK_INPUT_AUTO && dir_has_idx_files(path)))
        return cnk_dataset_load_idx_dir(ctx, path, out);
    char train[4200], val[4200], test[4200];
    int has_train = is_split_folder(path, "train", train, sizeof train);
    int has_val = is_split_folder(path, "val", val, sizeof val);
    int has_test = is_split_folder(path, "test", test, sizeof test);
    if (has_train && has_test) return cnk_dataset_load_presplit(ctx, train, has_val ? val : NULL, test, opts, out);
    if (has_train && has_val) return cnk_dataset_load_presplit(ctx, train, NULL, val, opts, out); /* AFHQ */
    return cnk_dataset_load_folder(ctx, path, opts, out);
}
