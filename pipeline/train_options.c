/* train_options.c: the numeric and word-valued training options by name, with the ranges `cnnkit train --help`
 * documents; the command line (apps/cmd_train.c) and the C API (api/train.c) both set them here, so a range
 * or a new option is written once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/parse.h"
#include "pipeline/train.h"

/* "WxH", each side in 1..4096; w and h are only written when the whole text is right. */
static int parse_size(const char *text, int *w, int *h)
{
    int width, height;
    char extra;
    if (sscanf(text, "%dx%d%c", &width, &height, &extra) != 2 || width < 1 || height < 1 || width > 4096 ||
        height > 4096)
        return -1;
    *w = width, *h = height;
    return 0;
}

typedef enum { INT_OPT, DOUBLE_OPT } number_kind;

/* A numeric option: where it goes and its range. */
typedef struct number_option {
    const char *name;
    number_kind kind;
    double min, max;
    size_t offset; /* of the int or double in cnk_train_options */
} number_option;

#define AT(field) offsetof(cnk_train_options, field)
static const number_option numbers[] = {
    {"epochs", INT_OPT, 1, 100000, AT(epochs)},
    {"batch-size", INT_OPT, 1, 4096, AT(batch_size)},
    {"sr", INT_OPT, 1000, 384000, AT(sample_rate)},
    {"lr", DOUBLE_OPT, 1e-9, 10, AT(lr)},
    {"weight-decay", DOUBLE_OPT, 0, 10, AT(weight_decay)},
    {"test-fraction", DOUBLE_OPT, 0, 0.95, AT(test_fraction)},
    {"val-fraction", DOUBLE_OPT, 0, 0.95, AT(val_fraction)},
    {"segment", DOUBLE_OPT, 0.05, 600, AT(segment_seconds)},
    {"label-smoothing", DOUBLE_OPT, 0, 0.999, AT(label_smoothing)},
    {"ema", DOUBLE_OPT, 0, 0.99999, AT(ema_decay)},
    {"mixup", DOUBLE_OPT, 0, 1, AT(mixup)},
    {"erase", DOUBLE_OPT, 0, 1, AT(erase)},
    {"top-db", DOUBLE_OPT, 1, 80, AT(audio.top_db)},
    {"trim-db", DOUBLE_OPT, 0, 200, AT(audio.trim_db)},
    {"lifter", INT_OPT, 0, 1024, AT(audio.lifter)},
};

/* An option with a fixed set of words, stored as the word's index. */
typedef struct word_option {
    const char *name;
    const char *const *words;
    size_t offset; /* of the int in cnk_train_options */
} word_option;

static const char *const off_on[] = {"off", "on", NULL};
static const char *const none_flip[] = {"none", "flip", NULL};
static const char *const clip_norms[] = {"none", "cmn", "cmvn", NULL}; /* cnk_clip_norm order */
static const word_option words[] = {
    {"center", off_on, AT(audio.center)},
    {"tta", none_flip, AT(tta_flip)},
    {"clip-norm", clip_norms, AT(audio.clip_norm)},
};
#undef AT

static int set_number(cnk_train_options *o, const number_option *n, const char *value)
{
    if (!value) return -1;
    char *field = (char *)o + n->offset;
    if (n->kind == INT_OPT) {
        long v;
        if (cnk_parse_long(value, (long)n->min, (long)n->max, &v)) return -1;
        *(int *)field = (int)v;
    } else {
        double v;
        if (cnk_parse_double(value, n->min, n->max, &v)) return -1;
        *(double *)field = v;
    }
    return 0;
}

static int set_word(cnk_train_options *o, const word_option *w, const char *value)
{
    if (!value) return -1;
    for (int i = 0; w->words[i]; i++)
        if (strcmp(value, w->words[i]) == 0) {
            *(int *)((char *)o + w->offset) = i;
            return 0;
        }
    return -1;
}

int cnk_train_option_set(cnk_train_options *o, const char *name, const char *value)
{
    if (!name) return 1;
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        if (strcmp(name, numbers[i].name) == 0) return set_number(o, &numbers[i], value);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcmp(name, words[i].name) == 0) return set_word(o, &words[i], value);
    if (strcmp(name, "patience") == 0) { /* 0 means off, which the options spell as < 0 */
        long v;
        if (!value || cnk_parse_long(value, 0, 100000, &v)) return -1;
        o->patience = v ? (int)v : -1;
        return 0;
    }
    if (strcmp(name, "eval-crop") == 0) { /* a fraction in (0, 1]: 0 would crop the image away */
        double v;
        if (!value || cnk_parse_double(value, 0, 1, &v) || !(v > 0)) return -1;
        o->eval_crop = v;
        return 0;
    }
    if (strcmp(name, "train-size") == 0) { /* N (N x N), WxH, or 0 for the input size */
        if (value && strcmp(value, "0") == 0) {
            o->train_width = o->train_height = 0;
            return 0;
        }
        long side;
        if (value && strchr(value, 'x') == NULL)
            return cnk_parse_long(value, 1, 4096, &side) ? -1 : (o->train_width = o->train_height = (int)side, 0);
        return value ? parse_size(value, &o->train_width, &o->train_height) : -1;
    }
    if (strcmp(name, "image-size") == 0) return value ? parse_size(value, &o->image_width, &o->image_height) : -1;
    return 1;
}
