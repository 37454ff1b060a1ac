/* train.c: cnnkit/train.h over pipeline/train.h: options set by their `cnnkit train` names (strings are
 * copied and owned here), then one cnk_train_run. */
#include "core/context.h"
#include "core/parse.h"
#include "pipeline/fusion.h"
#include "pipeline/train.h"
#include "pipeline/transfer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnnkit/train.h"

/* The string options, in the order of string_fields(). */
enum { S_DATA, S_MODEL, S_INPUT, S_ARCH, S_OPTIMIZER, S_GROUP_BY, S_TEST_MATCH, S_TRAIN, S_VAL, S_TEST, S_REPORT,
       S_RESUME, S_CACHE, S_FROM, S_FREEZE, S_FUSION, S_COUNT };

struct cnk_training {
    cnk_train_options opts;
    char *strings[S_COUNT];
    cnk_epoch_fn on_epoch;
    void *user;
    int finetune_epochs;   /* transfer learning's second phase: -1 = default */
    int unfreeze;          /* 0 = default */
    double finetune_lr;    /* 0 = default */
    cnk_train_result result;
    int has_result;
};

static const struct {
    const char *name;
    int slot;
} string_options[] = {{"input", S_INPUT},   {"arch", S_ARCH},       {"optimizer", S_OPTIMIZER},
                      {"group-by", S_GROUP_BY}, {"test-match", S_TEST_MATCH}, {"train", S_TRAIN},
                      {"val", S_VAL},       {"test", S_TEST},       {"report", S_REPORT},
                      {"resume", S_RESUME}, {"cache", S_CACHE},     {"from", S_FROM},
                      {"freeze", S_FREEZE}, {"fusion", S_FUSION}};

/* Points the options at the owned strings (after any change). */
static void bind_strings(cnk_training *t)
{
    cnk_train_options *o = &t->opts;
    o->data = t->strings[S_DATA];
    o->model_path = t->strings[S_MODEL];
    o->input = t->strings[S_INPUT];
    o->arch = t->strings[S_ARCH];
    o->optimizer = t->strings[S_OPTIMIZER];
    o->group_by = t->strings[S_GROUP_BY];
    o->test_match = t->strings[S_TEST_MATCH];
    o->train_dir = t->strings[S_TRAIN];
    o->val_dir = t->strings[S_VAL];
    o->test_dir = t->strings[S_TEST];
    o->report_dir = t->strings[S_REPORT];
    o->resume = t->strings[S_RESUME];
    o->cache_dir = t->strings[S_CACHE];
    o->from = t->strings[S_FROM];
    o->freeze = t->strings[S_FREEZE];
}

static int set_string(cnk_training *t, int slot, const char *value)
{
    char *copy = NULL;
    if (value && !(copy = strdup(value))) return -1;
    free(t->strings[slot]);
    t->strings[slot] = copy;
    bind_strings(t);
    return 0;
}

cnk_training *cnk_training_create(const char *data, const char *model_path)
{
    cnk_training *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    cnk_train_options_init(&t->opts);
    t->finetune_epochs = -1;
    if (set_string(t, S_DATA, data) || set_string(t, S_MODEL, model_path)) {
        cnk_training_free(t);
        return NULL;
    }
    return t;
}

void cnk_training_free(cnk_training *t)
{
    if (!t) return;
    for (int i = 0; i < S_COUNT; i++) free(t->strings[i]);
    free(t);
}

/* Transfer learning's fine-tuning phase, with the CLI's ranges; as set_number. */
static int set_finetune(cnk_training *t, const char *name, const char *v)
{
    long n;
    double x;
    if (!strcmp(name, "finetune-epochs")) return cnk_parse_long(v, 0, 100000, &n) ? -1 : (t->finetune_epochs = (int)n, 0);
    if (!strcmp(name, "unfreeze")) return cnk_parse_long(v, 1, 100000, &n) ? -1 : (t->unfreeze = (int)n, 0);
    if (!strcmp(name, "finetune-lr")) return cnk_parse_double(v, 1e-9, 10, &x) || x <= 0 ? -1 : (t->finetune_lr = x, 0);
    return 1;
}

int cnk_training_set(cnk_ctx *ctx, cnk_training *t, const char *option, const char *value)
{
    if (!t || !option) return cnk_fail(ctx, CNK_ERR_ARG, "training: NULL argument");
    if (!strcmp(option, "no-cache")) return set_string(t, S_CACHE, "") ? cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory") : 0;
    if (!strcmp(option, "seed") || !strcmp(option, "threads"))
        return cnk_fail(ctx, CNK_ERR_ARG, "training option %s: set it on the context (cnk_context_set_%s)", option,
                        option);
    if (!value) return cnk_fail(ctx, CNK_ERR_ARG, "training option %s: no value", option);
    for (size_t i = 0; i < sizeof string_options / sizeof string_options[0]; i++)
        if (!strcmp(option, string_options[i].name))
            return set_string(t, string_options[i].slot, value) ? cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory") : 0;
    int rc = cnk_train_option_set(&t->opts, option, value);
    if (rc > 0) rc = set_finetune(t, option, value);
    if (rc < 0) return cnk_fail(ctx, CNK_ERR_ARG, "training option %s: bad value '%s'", option, value);
    if (rc > 0) return cnk_fail(ctx, CNK_ERR_ARG, "training: unknown option '%s'", option);
    return CNK_OK;
}

void cnk_training_on_epoch(cnk_training *t, cnk_epoch_fn fn, void *user)
{
    t->on_epoch = fn;
    t->user = user;
}

static void forward_epoch(void *user, const cnk_epoch_stats *st)
{
    cnk_training *t = user;
    if (t->on_epoch)
        t->on_epoch(t->user, st->epoch, st->epochs, st->train_loss, st->train_acc, st->val_loss, st->val_acc);
}

/* As `cnnkit train`: --from runs transfer learning (pipeline/transfer.h), mel+wavelet input late fusion
 * (pipeline/fusion.h), anything else pipeline/train.h. */
static int run_transfer(cnk_ctx *ctx, const cnk_training *t, cnk_train_result *result)
{
    cnk_transfer_options to;
    cnk_transfer_options_init(&to, &t->opts);
    to.finetune_epochs = t->finetune_epochs;
    to.unfreeze = t->unfreeze;
    to.finetune_lr = t->finetune_lr;
    cnk_transfer_result tr;
    int rc = cnk_transfer_run(ctx, &to, &tr);
    if (!rc) *result = tr.train;
    return rc;
}

static int run_fusion(cnk_ctx *ctx, const cnk_train_options *o, const char *mode_name, cnk_train_result *result)
{
    cnk_fusion_mode mode = CNK_FUSION_DEFAULT;
    if (mode_name && cnk_fusion_mode_parse(mode_name, &mode))
        return cnk_fail(ctx, CNK_ERR_ARG, "training option fusion: bad value '%s' (mean, weighted or concat)",
                        mode_name);
    cnk_fusion_result fr;
    int rc = cnk_fusion_run(ctx, o, mode, &fr);
    if (!rc) *result = fr.train;
    return rc;
}

int cnk_training_run(cnk_ctx *ctx, cnk_training *t)
{
    if (!t) return cnk_fail(ctx, CNK_ERR_ARG, "training: NULL training");
    t->has_result = 0;
    const cnk_train_options *o = &t->opts;
    if (!o->model_path) return cnk_fail(ctx, CNK_ERR_ARG, "training: no model path");
    if (!o->data && !o->train_dir) return cnk_fail(ctx, CNK_ERR_ARG, "training: no data (a folder, a CSV, or train/test)");
    if (o->data && o->train_dir) return cnk_fail(ctx, CNK_ERR_ARG, "training: give data or train/test folders, not both");
    if ((o->train_dir != NULL) != (o->test_dir != NULL))
        return cnk_fail(ctx, CNK_ERR_ARG, "training: the train and test options go together");
    if ((o->freeze || t->finetune_epochs >= 0 || t->unfreeze || t->finetune_lr > 0) && !o->from)
        return cnk_fail(ctx, CNK_ERR_ARG, "training: the freeze, finetune-epochs, unfreeze and finetune-lr options go "
                                          "with from");
    int is_fusion = (o->input && !strcmp(o->input, "mel+wavelet")) || (o->arch && !strcmp(o->arch, "fusion"));
    const char *fusion = t->strings[S_FUSION];
    if (fusion && !is_fusion)
        return cnk_fail(ctx, CNK_ERR_ARG, "training: the fusion option goes with input mel+wavelet (arch fusion)");
    t->opts.on_epoch = forward_epoch;
    t->opts.user = t;
    int rc = o->from ? run_transfer(ctx, t, &t->result)
             : is_fusion ? run_fusion(ctx, o, fusion, &t->result)
                         : cnk_train_run(ctx, o, &t->result);
    t->has_result = rc == CNK_OK;
    return rc;
}

double cnk_training_test_accuracy(const cnk_training *t) { return t->has_result ? t->result.test_accuracy : NAN; }
int cnk_training_epochs_run(const cnk_training *t) { return t->has_result ? t->result.epochs_run : 0; }
int cnk_training_best_epoch(const cnk_training *t) { return t->has_result ? t->result.best_epoch : 0; }

size_t cnk_training_count(const cnk_training *t, const char *part)
{
    if (!t->has_result || !part) return 0;
    if (!strcmp(part, "train")) return t->result.n_train;
    if (!strcmp(part, "val")) return t->result.n_val;
    if (!strcmp(part, "test")) return t->result.n_test;
    return 0;
}

const char *cnk_training_input_kind(const cnk_training *t) { return t->has_result ? t->result.input : ""; }
const char *cnk_training_arch(const cnk_training *t) { return t->has_result ? t->result.arch : ""; }
