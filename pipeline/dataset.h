/* dataset.h: what a labelled data set is before any decoding: its items (a file, or a row of a CSV / a record
 * of an IDX file held in memory), their class, an optional pre-assigned split, and the class names. */
#ifndef CNK_DATASET_H
#define CNK_DATASET_H

#include <stddef.h>

#include "core/context.h"

/* The kind of data files, guessed from extensions (or forced by the caller). */
typedef enum cnk_input_kind {
    CNK_INPUT_AUTO = 0, /* unknown / guess */
    CNK_INPUT_AUDIO,    /* wav au snd aiff aif aifc flac ogg oga opus mp3 */
    CNK_INPUT_IMAGE,    /* jpg jpeg png bmp gif tga pnm ppm pgm */
    CNK_INPUT_NPY,      /* .npy arrays (e.g. precomputed spectrograms) */
    CNK_INPUT_CSV,      /* one CSV file: rows of numbers with a label column */
    CNK_INPUT_IDX       /* MNIST-style IDX image + label files, gzip or not */
} cnk_input_kind;

/* Which side of the split an item is on. */
typedef enum cnk_part { CNK_PART_NONE = 0, CNK_PART_TRAIN = 1, CNK_PART_VAL = 2, CNK_PART_TEST = 3 } cnk_part;

typedef struct cnk_item {
    char *path;   /* the file; NULL for CSV rows and IDX records */
    char *name;   /* what --group-by / --test-match see: the file's base name, the CSV row's identifier
                   * (its first skipped column, e.g. `filename`) or "row<N>" / "train<N>" / "test<N>" */
    size_t row;   /* index into the dataset's in-memory values (CSV, IDX); 0 for files */
    int label;    /* index into classes; -1 = not one of the classes (see cnk_dataset_match_classes) */
    int part;     /* a cnk_part: NONE until split, unless the data came pre-split */
} cnk_item;

typedef struct cnk_dataset {
    cnk_input_kind kind;
    cnk_item *items;
    size_t n_items;
    size_t cap_items;
    char **classes;      /* sorted bytewise (strcmp) */
    size_t n_classes;
    int presplit;        /* items came with parts (pre-split folders, IDX train/t10k) */
    /* In-memory data (CSV and IDX only). Item i's values are values[row*item_size ..] (CSV, floats) or
     * bytes[row*item_size ..] (IDX, uint8 pixels kept as bytes so 60,000 images take 47 MB, not 188). */
    size_t item_size;    /* values per item */
    int item_ndim;       /* 1 for a feature vector (item_shape[0] = item_size), 3 for C x H x W images */
    size_t item_shape[3];
    float *values;
    unsigned char *bytes;
    char **feature_names;     /* CSV: the kept numeric columns' names (item_size of them, when ndim == 1) */
    char skipped_columns[512]; /* CSV: comma-separated names of the text columns ignored ("" if none) */
} cnk_dataset;

typedef struct cnk_dataset_options {
    cnk_input_kind kind;       /* AUTO: guess from the path and extensions */
    /* CSV */
    const char *label_column;  /* default "label" */
    int label_optional;        /* 1: a CSV without the label column loads with every label -1 and no classes
                                * (rows to predict) */
    const char *skip_columns;  /* comma-separated column names to ignore (e.g. "filename"), or NULL */
    int skip_text_columns;     /* 1 (default): also ignore columns where most values are not numbers (an
                                * identifier like `filename`); a non-number in any other column is an error
                                * naming its line */
    int image_width;           /* > 0: rows are images of width x height pixels (1 or 3 channels; 3-channel
                                * rows are taken as interleaved RGB, HWC, and stored as CHW) */
    int image_height;
    /* Pre-split folders (CLI --train/--val/--test); train_dir and test_dir given together. */
    const char *train_dir;
    const char *val_dir;
    const char *test_dir;
} cnk_dataset_options;

void cnk_dataset_options_init(cnk_dataset_options *opts);

/* Kind of a file from its extension (AUTO if not a data file); IDX: names containing "-idx" like
 * "train-images-idx3-ubyte.gz". */
cnk_input_kind cnk_input_kind_of_path(const char *path);
/* "auto", "audio", "image", "npy", "csv", "idx". */
const char *cnk_input_kind_name(cnk_input_kind kind);

/* One call for the CLI: opens `path` (ignored when opts->train_dir is set) as
 * - a CSV file (kind CSV, or a .csv path);
 * - a folder of IDX files (kind IDX, or a folder holding *-images-idx3-ubyte[.gz]): see cnk_dataset_load_idx_dir;
 *   or one IDX image file: see cnk_dataset_load_idx_file;
 * - pre-split folders (opts->train_dir/test_dir, or a folder with `train` and `test` (or `val`) subfolders
 *   holding class folders: the AFHQ layout; with only train+val, val is the test side);
 * - a class-per-subfolder folder.
 * out must be released with cnk_dataset_release even on failure. */
int cnk_dataset_open(cnk_ctx *ctx, const char *path, const cnk_dataset_options *opts, cnk_dataset *out);

/* Class-per-subfolder folder: class names = subfolder names (sorted bytewise), files found recursively
 * inside each. The kind is the most common data kind among the files (or opts->kind); other files are
 * skipped with a warning, as are data files directly in dir (a README there is ignored silently) and class
 * folders without a file of the kind. Nothing is decoded. */
int cnk_dataset_load_folder(cnk_ctx *ctx, const char *dir, const cnk_dataset_options *opts, cnk_dataset *out);
/* Pre-split folders: items get parts TRAIN / VAL / TEST (val_dir may be NULL). Classes are the union of the
 * train folder's class names; class folders of val/test that train lacks are skipped with a warning. */
int cnk_dataset_load_presplit(cnk_ctx *ctx, const char *train_dir, const char *val_dir, const char *test_dir,
                              const cnk_dataset_options *opts, cnk_dataset *out);
/* A CSV with a label column and numeric columns: rows become float vectors (or images, see options). */
int cnk_dataset_load_csv(cnk_ctx *ctx, const char *path, const cnk_dataset_options *opts, cnk_dataset *out);
/* IDX image + label files (uint8 images, N x H x W), read through zlib (gzip or plain), streamed in chunks.
 * Items get the given part (a cnk_part; the dataset counts as pre-split unless it is CNK_PART_NONE). Appends to out, which may already hold the other split (zero it
 * first otherwise); it may hold only IDX items of the same image size. Class names are "0".."9" (zero-padded when
 * there are more than 10 labels, so bytewise order is numeric order). */
int cnk_dataset_load_idx(cnk_ctx *ctx, const char *images_path, const char *labels_path, int part,
                         cnk_dataset *out);
/* A folder holding <prefix>train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz] and the test pair
 * (t10k-* as MNIST/Fashion-MNIST, or *test-* as EMNIST): a pre-split dataset (TRAIN / TEST). */
int cnk_dataset_load_idx_dir(cnk_ctx *ctx, const char *dir, cnk_dataset *out);

/* One IDX image file named by the user (e.g. emnist-balanced-train-images-idx3-ubyte.gz, when a folder
 * holds several sets): its labels file is found by name (-images-idx3 -> -labels-idx1); a "train-images"
 * file whose test pair (t10k-/test-images and labels) is beside it gives a pre-split dataset, anything
 * else one unsplit part (CNK_PART_NONE). */
int cnk_dataset_load_idx_file(cnk_ctx *ctx, const char *images_path, cnk_dataset *out);

void cnk_dataset_release(cnk_dataset *ds);

/* Index of a class name, or -1. */
int cnk_dataset_class_index(const cnk_dataset *ds, const char *name);
/* Re-labels items against another class list (a model's, for eval): items whose class is not in names
 * get label -1 and one warning per such class. ds->classes becomes a copy of names. */
int cnk_dataset_match_classes(cnk_ctx *ctx, cnk_dataset *ds, const char *const *names, size_t n_names);
/* Item i's in-memory values as floats (CSV values as is; IDX bytes as 0..255). CSV/IDX datasets only. */
int cnk_dataset_item_values(cnk_ctx *ctx, const cnk_dataset *ds, size_t i, float *out);
/* Number of items per class (counts has n_classes entries), restricted to one part (or any when part is
 * CNK_PART_NONE). */
void cnk_dataset_class_counts(const cnk_dataset *ds, int part, size_t *counts);

#endif
