/* Tests for pipeline/transfer and pipeline/mel_image: a real MobileNetV1 0.25/128 (imported from the shared
 * .tflite by the cnnkit binary) as a frozen backbone on a few animals3 photos: only the head changes (every
 * backbone weight bit-identical to the imported file), the second run takes every backbone output from the
 * cache and gives the same model, the saved whole network classifies raw files with the run's test accuracy;
 * fine-tuning the top block changes that block only; a run interrupted in either phase and continued with
 * --resume ends byte-identical to the uninterrupted one, and checkpoints of other kinds, of another backbone or
 * with a damaged optimiser file are refused, and the plain loop refuses a transfer checkpoint (the kinds of
 * pipeline/ckpt_text.h); block and freeze helpers; mel images; bad options.
 * test-libs: core features nn pipeline */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/npy.h"
#include "nn/arch.h"
#include "nn/builtin.h"
#include "nn/cfg.h"
#include "nn/model.h"
#include "nn/modelfile.h"
#include "pipeline/ckpt_text.h"
#include "pipeline/classify.h"
#include "pipeline/dataset.h"
#include "pipeline/demo_data.h"
#include "pipeline/fusion.h"
#include "pipeline/mel_image.h"
#include "pipeline/preprocess.h"
#include "pipeline/split.h"
#include "pipeline/transfer.h"

static char tmp[4096], data[4200], backbone[4200], cache[4200];

/* A few photos per class, linked from the shared animals3 folder. */
static int link_photos(int per_class)
{
    static const char *const classes[3] = {"cats", "dogs", "panda"};
    char src[4200];
    tu_shared(src, sizeof src, "datasets/animals3");
    for (int c = 0; c < 3; c++)
        if (tu_system("mkdir -p '%s/%s' && ls '%s/%s' | sort | head -%d | while read f; do ln -s '%s/%s/'\"$f\" "
                      "'%s/%s/'\"$f\"; done",
                      data, classes[c], src, classes[c], per_class, src, classes[c], data, classes[c]) != 0)
            return -1;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    tu_tmpdir(tmp, sizeof tmp, "transfer");
    snprintf(data, sizeof data, "%s/data", tmp);
    snprintf(backbone, sizeof backbone, "%s/mnv1.cnk", tmp);
    snprintf(cache, sizeof cache, "%s/cache", tmp);
    char tflite[4200];
    tu_shared(tflite, sizeof tflite, "weights/mobilenet_v1_0.25_128/mobilenet_v1_0.25_128_quant.tflite");
    if (tu_system("'%s' import '%s' -o '%s' 2>/dev/null", tu_cnnkit_bin(), tflite, backbone) != 0) return -1;
    return link_photos(tu_sanitized() ? 6 : 10);
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(tmp);
    return 0;
}

static void train_opts(cnk_train_options *t, const char *model)
{
    cnk_train_options_init(t);
    t->data = data;
    t->from = backbone;
    t->model_path = model;
    t->cache_dir = cache;
    t->epochs = 15;
    t->batch_size = 8;
    t->lr = 3e-3;
    t->patience = -1;
}

/* Every tensor of every layer except the head equals the backbone's, bit for bit. */
static void assert_backbone_unchanged(const char *model_path, int until_layer_exclusive)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_modelfile a, b;
    cnk_arch aa, ba;
    assert_int_equal(cnk_modelfile_read(&ctx, backbone, &a), CNK_OK);
    assert_int_equal(cnk_modelfile_read(&ctx, model_path, &b), CNK_OK);
    assert_int_equal(cnk_modelfile_arch(&ctx, &a, &aa), CNK_OK);
    assert_int_equal(cnk_modelfile_arch(&ctx, &b, &ba), CNK_OK);
    int head = cnk_transfer_head_layer(&ba);
    assert_true(head > 0);
    assert_int_equal(ba.layers[head].units, 3);
    assert_int_equal(aa.layers[head].units, 1001);
    int last = until_layer_exclusive < 0 ? head : until_layer_exclusive;
    size_t compared = 0;
    for (int l = 0; l < last; l++) {
        const cnk_layer *la = &aa.layers[l], *lb = &ba.layers[l];
        assert_string_equal(la->name, lb->name);
        assert_int_equal(la->n_params, lb->n_params);
        assert_memory_equal(a.params + la->param_offset, b.params + lb->param_offset, la->n_params * sizeof(float));
        compared += la->n_params;
    }
    assert_true(compared > 140000); /* of the 210,336 backbone parameters of MobileNetV1 0.25 */
    cnk_arch_release(&aa);
    cnk_arch_release(&ba);
    cnk_modelfile_release(&a);
    cnk_modelfile_release(&b);
}

/* The classifier on the model file alone, over the run's test split: its accuracy. */
static double classify_test_split(const char *model_path)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_classifier *c;
    assert_int_equal(cnk_classifier_load(&ctx, model_path, &c), CNK_OK);
    assert_int_equal(cnk_classifier_n_classes(c), 3);
    cnk_dataset ds;
    cnk_dataset_options dopts;
    cnk_dataset_options_init(&dopts);
    assert_int_equal(cnk_dataset_open(&ctx, data, &dopts, &ds), CNK_OK);
    char split[4300];
    assert_int_equal(cnk_split_file_path(&ctx, model_path, split, sizeof split), CNK_OK);
    assert_int_equal(cnk_split_read(&ctx, split, &ds), CNK_OK);
    const char *paths[64];
    int labels[64];
    size_t n = 0;
    for (size_t i = 0; i < ds.n_items && n < 64; i++)
        if (ds.items[i].part == CNK_PART_TEST) labels[n] = ds.items[i].label, paths[n++] = ds.items[i].path;
    assert_true(n >= 3);
    cnk_classified out;
    assert_int_equal(cnk_classifier_run_paths(&ctx, c, paths, n, "", &out), CNK_OK);
    assert_int_equal(out.n, n);
    size_t correct = 0;
    for (size_t k = 0; k < n; k++) correct += out.y_pred[k] == labels[out.items[k]];
    cnk_classified_release(&out);
    cnk_dataset_release(&ds);
    cnk_classifier_free(c);
    return (double)correct / (double)n;
}

static void test_frozen_backbone_cache_and_predict(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char model[4300], model2[4300];
    snprintf(model, sizeof model, "%s/a.cnk", tmp);
    snprintf(model2, sizeof model2, "%s/b.cnk", tmp);
    cnk_train_options t;
    train_opts(&t, model);
    cnk_transfer_options o;
    cnk_transfer_options_init(&o, &t);
    cnk_transfer_result r1, r2;
    assert_int_equal(cnk_transfer_run(&ctx, &o, &r1), CNK_OK);
    size_t n_files = r1.train.n_train + r1.train.n_val + r1.train.n_test;
    assert_int_equal(n_files, tu_sanitized() ? 18 : 30);
    assert_int_equal(r1.n_backbone_computed, n_files);
    assert_int_equal(r1.n_backbone_cached, 0);
    assert_int_equal(r1.feature_dim, 256);
    assert_int_equal(r1.finetune_epochs_run, 0);
    /* Frozen-backbone features of MobileNetV1 separate pandas from cats and dogs at least. */
    assert_true(r1.train.test_accuracy >= 0.5);
    assert_backbone_unchanged(model, -1);

    /* Second run: every backbone output from the cache, the same head. */
    t.model_path = model2;
    assert_int_equal(cnk_transfer_run(&ctx, &o, &r2), CNK_OK);
    assert_int_equal(r2.n_backbone_cached, n_files);
    assert_int_equal(r2.n_backbone_computed, 0);
    assert_true(r2.train.test_accuracy == r1.train.test_accuracy);
    cnk_modelfile a, b;
    assert_int_equal(cnk_modelfile_read(&ctx, model, &a), CNK_OK);
    assert_int_equal(cnk_modelfile_read(&ctx, model2, &b), CNK_OK);
    assert_int_equal(a.n_params, b.n_params);
    assert_memory_equal(a.params, b.params, a.n_params * sizeof(float));
    /* The backbone's preprocessing travels with the model: pixel / 127.5 - 1 as mean 0.5, std 0.5. */
    assert_non_null(strstr(a.preprocess, "input=image"));
    assert_non_null(strstr(a.preprocess, "mean=0.5,0.5,0.5"));
    assert_non_null(strstr(a.preprocess, "arch_name=transfer:"));
    cnk_modelfile_release(&a);
    cnk_modelfile_release(&b);

    /* The whole network predicts raw files exactly as the run evaluated them. */
    double acc = classify_test_split(model);
    assert_true(fabs(acc - r1.train.test_accuracy) < 1e-12);
}

static void test_finetune_top_block(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char model[4300];
    snprintf(model, sizeof model, "%s/ft.cnk", tmp);
    cnk_train_options t;
    train_opts(&t, model);
    t.epochs = 5;
    cnk_transfer_options o;
    cnk_transfer_options_init(&o, &t);
    o.finetune_epochs = 1;
    o.unfreeze = 1;
    o.finetune_lr = 1e-3;
    t.val_fraction = 0; /* no validation: the fine-tuned epoch is kept */
    cnk_transfer_result r;
    assert_int_equal(cnk_transfer_run(&ctx, &o, &r), CNK_OK);
    assert_int_equal(r.finetune_epochs_run, 1);
    /* Below the top block (block13_dw, block13_pw) nothing moved; the top block did. */
    cnk_modelfile mf, bb;
    cnk_arch arch;
    assert_int_equal(cnk_modelfile_read(&ctx, model, &mf), CNK_OK);
    assert_int_equal(cnk_modelfile_read(&ctx, backbone, &bb), CNK_OK);
    assert_int_equal(cnk_modelfile_arch(&ctx, &mf, &arch), CNK_OK);
    int top = cnk_transfer_unfreeze_from(&arch, 1);
    assert_string_equal(arch.layers[top].name, "block13_dw");
    assert_backbone_unchanged(model, top);
    const cnk_layer *pw = &arch.layers[cnk_arch_find(&arch, "block13_pw")];
    assert_memory_not_equal(mf.params + pw->param_offset, bb.params + pw->param_offset, pw->n_params * sizeof(float));
    cnk_arch_release(&arch);
    cnk_modelfile_release(&mf);
    cnk_modelfile_release(&bb);
    double acc = classify_test_split(model);
    assert_true(fabs(acc - r.train.test_accuracy) < 1e-12);
}

/* YAMNet as the backbone on a few spoken digits: clip embeddings (1024-d) train the head; the saved model
 * (YAMNet + head) classifies the files again with the run's test accuracy. */
static void test_yamnet_backbone(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char digits[4300], yamnet[4300], model[4300], tflite[4300], src[4300];
    snprintf(digits, sizeof digits, "%s/digits", tmp);
    snprintf(yamnet, sizeof yamnet, "%s/yamnet.cnk", tmp);
    snprintf(model, sizeof model, "%s/digits.cnk", tmp);
    tu_shared(tflite, sizeof tflite, "weights/yamnet/yamnet.tflite");
    tu_shared(src, sizeof src, "datasets/fsdd");
    int per_class = tu_sanitized() ? 4 : 8;
    assert_int_equal(tu_system("'%s' import '%s' -o '%s' 2>/dev/null", tu_cnnkit_bin(), tflite, yamnet), 0);
    for (int d = 0; d < 2; d++)
        assert_int_equal(tu_system("mkdir -p '%s/%d' && ls '%s/%d' | sort | head -%d | while read f; do ln -s "
                                   "'%s/%d/'\"$f\" '%s/%d/'\"$f\"; done",
                                   digits, d, src, d, per_class, src, d, digits, d),
                         0);
    cnk_train_options t;
    train_opts(&t, model);
    t.data = digits;
    t.from = yamnet;
    t.val_fraction = 0;
    t.test_fraction = 0.5;
    cnk_transfer_options o;
    cnk_transfer_options_init(&o, &t);
    cnk_transfer_result r;
    assert_int_equal(cnk_transfer_run(&ctx, &o, &r), CNK_OK);
    assert_string_equal(r.backbone, "yamnet");
    assert_int_equal(r.feature_dim, 1024);
    assert_int_equal(r.n_backbone_computed, (size_t)(2 * per_class));
    assert_int_equal(r.train.n_train_segments, r.train.n_train); /* one mean embedding per clip */
    cnk_modelfile mf;
    assert_int_equal(cnk_modelfile_read(&ctx, model, &mf), CNK_OK);
    assert_true(cnk_transfer_is_yamnet_model(&mf));
    const char *paths[16];
    int labels[16];
    size_t n = 0;
    for (int d = 0; d < 2; d++) {
        cnk_pathlist files = {0};
        char dir[4400];
        snprintf(dir, sizeof dir, "%s/%d", digits, d);
        assert_int_equal(cnk_list_files(&ctx, dir, 0, &files), CNK_OK);
        for (size_t k = 0; k < files.count && n < 16; k++) labels[n] = d, paths[n++] = strdup(files.paths[k]);
        cnk_pathlist_release(&files);
    }
    assert_int_equal(n, (size_t)(2 * per_class));
    double proba[32];
    int ok[16];
    assert_int_equal(cnk_transfer_predict_files(&ctx, &mf, model, paths, n, proba, ok), CNK_OK);
    size_t correct = 0;
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(ok[k], 1);
        assert_float_equal(proba[2 * k] + proba[2 * k + 1], 1.0, 1e-9);
        correct += (proba[2 * k + 1] > proba[2 * k]) == labels[k];
        free((void *)paths[k]);
    }
    /* "zero" and "one" from YAMNet's speech embeddings: well above chance on all the clips */
    assert_true(correct * 4 >= n * 3);
    assert_true(r.train.test_accuracy >= 0.5);
    cnk_modelfile_release(&mf);

    /* Stopped after 4 epochs and resumed (the embeddings from the cache): the same model, byte for byte. */
    char resumed[4300], ckpt[4400];
    snprintf(resumed, sizeof resumed, "%s/digits-resumed.cnk", tmp);
    cnk_train_checkpoint_path(resumed, ckpt, sizeof ckpt);
    t.model_path = resumed;
    t.max_epochs_this_run = 4;
    cnk_transfer_result r2;
    assert_int_equal(cnk_transfer_run(&ctx, &o, &r2), CNK_OK);
    assert_int_equal(r2.train.interrupted, 1);
    assert_false(cnk_is_file(resumed));
    t.max_epochs_this_run = 0;
    t.resume = ckpt;
    assert_int_equal(cnk_transfer_run(&ctx, &o, &r2), CNK_OK);
    assert_int_equal(r2.n_backbone_cached, (size_t)(2 * per_class));
    assert_true(tu_files_equal(model, resumed));
}

/* A backbone with batch norm (cnnkit's own `cnn`, as a model trained on other data would be): layers kept
 * frozen in the fine-tuning phase run their BN on the stored running statistics and leave them untouched;
 * the unfrozen top block's BN updates its own. */
static void test_frozen_batchnorm(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char bn_backbone[4300], model[4300];
    snprintf(bn_backbone, sizeof bn_backbone, "%s/cnn_bn.cnk", tmp);
    snprintf(model, sizeof model, "%s/cnn_ft.cnk", tmp);
    cnk_builtin_opts bo;
    cnk_builtin_opts_init(&bo);
    bo.input = (cnk_shape){3, 32, 32};
    bo.n_classes = 5;
    cnk_arch arch;
    assert_int_equal(cnk_builtin_arch(&ctx, "cnn", &bo, &arch), CNK_OK);
    cnk_model *m;
    assert_int_equal(cnk_model_create(&ctx, &arch, 1, &m), CNK_OK);
    cnk_model_init_params(m, 5);
    float *buffers = cnk_model_buffers(m);
    for (size_t i = 0; i < arch.n_buffers; i++) buffers[i] = 0.5f + 0.001f * (float)(i % 97); /* "trained" */
    cnk_preprocess p;
    cnk_preprocess_defaults(&p, CNK_PREP_IMAGE);
    p.width = p.height = 32;
    p.n_norm = 3;
    for (int c = 0; c < 3; c++) p.mean[c] = 0.5f, p.std[c] = 0.25f;
    char *prep_text = NULL, *arch_text = NULL, *names[5] = {"a", "b", "c", "d", "e"};
    assert_int_equal(cnk_preprocess_to_text(&ctx, &p, &prep_text), CNK_OK);
    assert_int_equal(cnk_cfg_write(&ctx, &arch, &arch_text), CNK_OK);
    cnk_modelfile out = {.arch_text = arch_text, .class_names = names, .n_classes = 5, .preprocess = prep_text,
                         .params = cnk_model_params(m), .n_params = arch.n_params, .buffers = buffers,
                         .n_buffers = arch.n_buffers};
    assert_int_equal(cnk_modelfile_write(&ctx, bn_backbone, &out), CNK_OK);
    free(prep_text);
    free(arch_text);
    cnk_model_free(m);

    cnk_train_options t;
    train_opts(&t, model);
    t.from = bn_backbone;
    t.epochs = 3;
    t.val_fraction = 0;
    cnk_transfer_options o;
    cnk_transfer_options_init(&o, &t);
    o.finetune_epochs = 1;
    cnk_transfer_result r;
    assert_int_equal(cnk_transfer_run(&ctx, &o, &r), CNK_OK);
    assert_int_equal(r.feature_dim, 128);
    assert_int_equal(r.finetune_epochs_run, 1);
    cnk_modelfile mf, bb;
    assert_int_equal(cnk_modelfile_read(&ctx, model, &mf), CNK_OK);
    assert_int_equal(cnk_modelfile_read(&ctx, bn_backbone, &bb), CNK_OK);
    int top = cnk_transfer_unfreeze_from(&arch, 1);
    assert_string_equal(arch.layers[top].name, "conv4");
    const cnk_layer *bn3 = &arch.layers[cnk_arch_find(&arch, "conv3_bn")];
    const cnk_layer *bn4 = &arch.layers[cnk_arch_find(&arch, "conv4_bn")];
    /* frozen: the running statistics of conv1_bn..conv3_bn are the stored ones, bit for bit */
    assert_memory_equal(mf.buffers, bb.buffers, (bn3->buffer_offset + bn3->n_buffers) * sizeof(float));
    assert_memory_not_equal(mf.buffers + bn4->buffer_offset, bb.buffers + bn4->buffer_offset,
                            bn4->n_buffers * sizeof(float));
    assert_memory_equal(mf.params, bb.params, arch.layers[top].param_offset * sizeof(float));
    cnk_modelfile_release(&mf);
    cnk_modelfile_release(&bb);
    cnk_arch_release(&arch);
}

enum { RESUME_HEAD_EPOCHS = 10, RESUME_FT_EPOCHS = 3 };

/* Phase one of up to RESUME_HEAD_EPOCHS with early stopping, phase two fine-tuning the top block; stop_after > 0
 * interrupts it (--stop-after), resume continues a checkpoint. The high rates make both phases' state matter:
 * on the full test set phase one stops early after 7 epochs and only the first fine-tuning epoch improves, so
 * a resumed phase two must keep the network kept before it. */
static int resumable_run(cnk_ctx *ctx, const char *model, int stop_after, const char *resume, cnk_transfer_result *r)
{
    cnk_train_options t;
    train_opts(&t, model);
    t.epochs = RESUME_HEAD_EPOCHS;
    t.lr = 2e-2;
    t.patience = 2;
    t.max_epochs_this_run = stop_after;
    t.resume = resume;
    cnk_transfer_options o;
    cnk_transfer_options_init(&o, &t);
    o.finetune_epochs = RESUME_FT_EPOCHS;
    o.unfreeze = 1;
    o.finetune_lr = 1e-3;
    return cnk_transfer_run(ctx, &o, r);
}

static void ckpt_paths(const char *model, int epochs_done, char *ckpt, char *optim)
{
    cnk_train_checkpoint_path(model, ckpt, 4400);
    snprintf(optim, 4500, "%s.optim-%d.npy", ckpt, epochs_done);
}

/* The phase a checkpoint says it stopped in. */
static int ckpt_phase(const char *ckpt)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_modelfile mf;
    assert_int_equal(cnk_modelfile_read(&ctx, ckpt, &mf), CNK_OK);
    char phase[16];
    assert_int_equal(cnk_kv_get(&ctx, mf.preprocess, "ckpt_phase", phase, sizeof phase), CNK_OK);
    cnk_modelfile_release(&mf);
    return atoi(phase);
}

/* The last epoch of phase one (1..head_epochs - 1) after which the validation loss had not improved, from the
 * history in a checkpoint: an interruption there must carry the early-stopping count over. 1 if none. */
static int last_bad_epoch(const char *ckpt, int head_epochs)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_modelfile mf;
    assert_int_equal(cnk_modelfile_read(&ctx, ckpt, &mf), CNK_OK);
    char val_losses[4096];
    assert_int_equal(cnk_kv_get(&ctx, mf.preprocess, "ckpt_h2", val_losses, sizeof val_losses), CNK_OK);
    cnk_modelfile_release(&mf);
    double best = INFINITY;
    int chosen = 1;
    const char *p = val_losses;
    for (int e = 1; e < head_epochs; e++) {
        char *end;
        double v = strtod(p, &end);
        assert_true(end != p && *end == ',');
        p = end + 1;
        if (v < best - 1e-4) best = v;
        else chosen = e;
    }
    return chosen;
}

/* Interrupted after stop_after epochs (in phase one or two), then resumed: the model, the last checkpoint and
 * its optimiser file are those of the uninterrupted run, byte for byte. */
static void interrupt_and_resume(const cnk_transfer_result *straight, const char *straight_model, const char *name,
                                 int stop_after, int expect_phase)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char model[4300], ckpt[4400], optim[4500], prev_optim[4500];
    snprintf(model, sizeof model, "%s/%s.cnk", tmp, name);
    cnk_transfer_result b, c;
    assert_int_equal(resumable_run(&ctx, model, stop_after, NULL, &b), CNK_OK);
    assert_int_equal(b.train.interrupted, 1);
    assert_int_equal(b.train.epochs_run, stop_after);
    ckpt_paths(model, stop_after, ckpt, optim);
    ckpt_paths(model, stop_after - 1, ckpt, prev_optim);
    assert_true(cnk_is_file(ckpt) && cnk_is_file(optim));
    assert_false(cnk_is_file(prev_optim)); /* superseded optimiser state is removed */
    assert_int_equal(ckpt_phase(ckpt), expect_phase);
    assert_int_equal(resumable_run(&ctx, model, 0, ckpt, &c), CNK_OK);
    assert_int_equal(c.train.interrupted, 0);
    assert_int_equal(c.train.epochs_run, straight->train.epochs_run);
    assert_int_equal(c.train.best_epoch, straight->train.best_epoch);
    assert_int_equal(c.train.stopped_early, straight->train.stopped_early);
    assert_int_equal(c.finetune_epochs_run, RESUME_FT_EPOCHS);
    assert_true(c.train.test_accuracy == straight->train.test_accuracy);
    assert_true(c.head_test_accuracy == straight->head_test_accuracy);
    assert_true(tu_files_equal(straight_model, model));
    char straight_ckpt[4400], straight_optim[4500];
    int total = straight->train.epochs_run + RESUME_FT_EPOCHS;
    ckpt_paths(straight_model, total, straight_ckpt, straight_optim);
    ckpt_paths(model, total, ckpt, optim);
    assert_true(tu_files_equal(straight_ckpt, ckpt));
    assert_true(tu_files_equal(straight_optim, optim));
}

static void test_resume_either_phase(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char straight[4300], ckpt[4400], optim[4500];
    snprintf(straight, sizeof straight, "%s/straight.cnk", tmp);
    cnk_transfer_result a;
    assert_int_equal(resumable_run(&ctx, straight, 0, NULL, &a), CNK_OK);
    assert_int_equal(a.finetune_epochs_run, RESUME_FT_EPOCHS);
    int head_epochs = a.train.epochs_run, total = head_epochs + RESUME_FT_EPOCHS;
    assert_in_range(head_epochs, 2, RESUME_HEAD_EPOCHS);
    ckpt_paths(straight, total, ckpt, optim);
    assert_int_equal(ckpt_phase(ckpt), 2);
    assert_true(cnk_is_file(optim));
    /* phase one, in its middle (after an epoch without progress); at its end (phase two not begun); phase two,
     * after its first epoch */
    int middle = last_bad_epoch(ckpt, head_epochs);
    if (getenv("CNK_TEST_VERBOSE"))
        printf("resume: %d head epochs (stopped early: %d), interrupted after %d, %d and %d\n", head_epochs,
               a.train.stopped_early, middle, head_epochs, head_epochs + 1);
    interrupt_and_resume(&a, straight, "stop1", middle, 1);
    interrupt_and_resume(&a, straight, "stop2", head_epochs, 1);
    interrupt_and_resume(&a, straight, "stop3", head_epochs + 1, 2);
}

/* A model file like `from` whose first weight differs (another backbone), or else whose input recipe does
 * (the same network, other input settings). */
static void write_other_backbone(const char *from, const char *path, int other_weights)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_modelfile mf;
    assert_int_equal(cnk_modelfile_read(&ctx, from, &mf), CNK_OK);
    if (other_weights) {
        mf.params[0] += 0.5f;
    } else {
        char *mean = strstr(mf.preprocess, "mean=0.5,");
        assert_non_null(mean);
        mean[7] = '4';
    }
    assert_int_equal(cnk_modelfile_write(&ctx, path, &mf), CNK_OK);
    cnk_modelfile_release(&mf);
}

/* A checkpoint of the plain loop (a small CNN on the same photos) and one of a fusion run (on generated
 * audio, into audio/): the first given to a transfer run, the transfer checkpoint given to both. */
static void plain_and_fusion_checkpoints(cnk_ctx *ctx, const char *transfer_ckpt, char *plain_ckpt, char *fusion_ckpt)
{
    char plain[4300], fusion[4300], audio[4300];
    snprintf(plain, sizeof plain, "%s/plain.cnk", tmp);
    snprintf(fusion, sizeof fusion, "%s/fusion.cnk", tmp);
    snprintf(audio, sizeof audio, "%s/audio", tmp);
    cnk_train_options t;
    cnk_train_options_init(&t);
    t.data = data;
    t.model_path = plain;
    t.cache_dir = "";
    t.input = "image";
    t.image_width = t.image_height = 16;
    t.epochs = 2;
    t.max_epochs_this_run = 1;
    cnk_train_result tr;
    assert_int_equal(cnk_train_run(ctx, &t, &tr), CNK_OK);
    cnk_train_checkpoint_path(plain, plain_ckpt, 4400);
    t.resume = transfer_ckpt; /* a transfer checkpoint given to the plain loop */
    assert_int_equal(cnk_train_run(ctx, &t, &tr), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(ctx), transfer_ckpt));
    assert_non_null(strstr(cnk_error(ctx), "transfer-learning checkpoint"));

    cnk_demo_params dp;
    cnk_demo_default_params(&dp);
    dp.clips_per_class = 3;
    dp.seconds = 0.5;
    dp.sample_rate = 8000;
    assert_int_equal(cnk_demo_write(ctx, audio, &dp), CNK_OK);
    char extra_class[4400]; /* three classes, as the photos: the kind is what differs */
    snprintf(extra_class, sizeof extra_class, "%s/%s", audio, cnk_demo_class_name(3));
    tu_rmtree(extra_class);
    cnk_train_options_init(&t);
    t.data = audio;
    t.model_path = fusion;
    t.cache_dir = "";
    t.epochs = 2;
    t.max_epochs_this_run = 1;
    cnk_fusion_result fr;
    assert_int_equal(cnk_fusion_run(ctx, &t, CNK_FUSION_MEAN, &fr), CNK_OK);
    cnk_train_checkpoint_path(fusion, fusion_ckpt, 4400);
    t.resume = transfer_ckpt; /* a transfer checkpoint given to a fusion run */
    assert_int_not_equal(cnk_fusion_run(ctx, &t, CNK_FUSION_MEAN, &fr), CNK_OK);
    assert_non_null(strstr(cnk_error(ctx), transfer_ckpt));
    assert_non_null(strstr(cnk_error(ctx), "transfer-learning checkpoint"));
    t.resume = fusion_ckpt; /* and a fusion checkpoint given to a plain run: refused as such, not as bad data */
    cnk_train_result tr2;
    assert_int_equal(cnk_train_run(ctx, &t, &tr2), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(ctx), "a fusion training checkpoint"));
}

/* Resuming with what is not this run's checkpoint fails before any training, with one line naming it. */
static void expect_refusal(const char *model, const char *resume, const char *from, const char *named,
                           const char *what)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_train_options t;
    train_opts(&t, model);
    t.resume = resume;
    if (from) t.from = from;
    cnk_transfer_options o;
    cnk_transfer_options_init(&o, &t);
    cnk_transfer_result r;
    int rc = cnk_transfer_run(&ctx, &o, &r);
    const char *msg = cnk_error(&ctx);
    if (getenv("CNK_TEST_VERBOSE")) printf("refused (%d): %s\n", rc, msg);
    assert_true(rc == CNK_ERR_INPUT || rc == CNK_ERR_IO);
    assert_non_null(strstr(msg, named));
    assert_non_null(strstr(msg, what));
    assert_null(strchr(msg, '\n'));
    assert_int_equal(r.train.epochs_run, 0);
}

static void test_resume_refusals(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char model[4300], ckpt[4400], optim[4500], plain_ckpt[4400], fusion_ckpt[4400], other[4300];
    snprintf(model, sizeof model, "%s/refused.cnk", tmp);
    snprintf(other, sizeof other, "%s/other-backbone.cnk", tmp);
    cnk_train_options t;
    train_opts(&t, model);
    t.epochs = 2;
    t.max_epochs_this_run = 1;
    cnk_transfer_options o;
    cnk_transfer_options_init(&o, &t);
    cnk_transfer_result r;
    assert_int_equal(cnk_transfer_run(&ctx, &o, &r), CNK_OK);
    ckpt_paths(model, 1, ckpt, optim);
    assert_true(cnk_is_file(ckpt) && cnk_is_file(optim));

    plain_and_fusion_checkpoints(&ctx, ckpt, plain_ckpt, fusion_ckpt);
    expect_refusal(model, plain_ckpt, NULL, plain_ckpt, "a plain training checkpoint");
    expect_refusal(model, fusion_ckpt, NULL, fusion_ckpt, "a fusion training checkpoint");
    write_other_backbone(backbone, other, 1);
    expect_refusal(model, ckpt, other, ckpt, "another backbone");
    write_other_backbone(backbone, other, 0);
    expect_refusal(model, ckpt, other, ckpt, "other input settings");
    /* a damaged optimiser file, then none */
    char keep[4600];
    snprintf(keep, sizeof keep, "%s.keep", optim);
    assert_int_equal(rename(optim, keep), 0);
    assert_int_equal(tu_system("head -c 100 '%s' > '%s'", keep, optim), 0);
    expect_refusal(model, ckpt, NULL, optim, "");
    assert_int_equal(tu_system("head -c 80 '%s' > '%s' && head -c 400 /dev/zero >> '%s'", keep, optim, optim), 0);
    expect_refusal(model, ckpt, NULL, optim, "");
    const float foreign[3] = {0, 7, 1}; /* a well-formed file of another epoch */
    size_t shape[1] = {3};
    assert_int_equal(cnk_npy_write(&ctx, optim, foreign, 1, shape), CNK_OK);
    expect_refusal(model, ckpt, NULL, optim, "does not match the checkpoint");
    remove(optim);
    expect_refusal(model, ckpt, NULL, optim, "");
    /* restored, it resumes, the backbone found by its content under another name */
    assert_int_equal(rename(keep, optim), 0);
    char moved[4300];
    snprintf(moved, sizeof moved, "%s/moved-backbone.cnk", tmp);
    assert_int_equal(tu_system("cp '%s' '%s'", backbone, moved), 0);
    t.from = moved;
    t.resume = ckpt;
    t.max_epochs_this_run = 0;
    assert_int_equal(cnk_transfer_run(&ctx, &o, &r), CNK_OK);
    assert_int_equal(r.train.epochs_run, 2);
}

/* pipeline/ckpt_text.h: the kind of a checkpoint's text, the refusals naming it, and the plain loop's schedule
 * reader refusing a transfer checkpoint while the transfer one reads it. */
static void test_checkpoint_kinds(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    const char *schedule = "ckpt_epoch=2\nckpt_epochs=5\nckpt_batch=8\nckpt_lr=0.01\nckpt_patience=-1\nckpt_wd=0\n";
    char plain[512], transfer[512], kind[32], long_kind[512];
    snprintf(plain, sizeof plain, "input=image\n%s", schedule);
    snprintf(transfer, sizeof transfer, "input=image\nckpt_kind=transfer\n%s", schedule);
    snprintf(long_kind, sizeof long_kind, "ckpt_kind=%080d\n%s", 7, schedule);
    cnk_ckpt_kind(&ctx, plain, kind, sizeof kind);
    assert_string_equal(kind, "plain");
    cnk_ckpt_kind(&ctx, transfer, kind, sizeof kind);
    assert_string_equal(kind, "transfer");
    cnk_ckpt_kind(&ctx, "ckpt_kind=fusion\nckpt_epoch=1\n", kind, sizeof kind);
    assert_string_equal(kind, "fusion");
    cnk_ckpt_kind(&ctx, "input=image\n", kind, sizeof kind);
    assert_string_equal(kind, "");
    cnk_ckpt_kind(&ctx, long_kind, kind, sizeof kind);
    assert_string_equal(kind, "");
    assert_int_equal(cnk_ckpt_check_kind(&ctx, plain, "p.ckpt", "plain"), CNK_OK);
    assert_int_equal(cnk_ckpt_check_kind(&ctx, plain, "p.ckpt", "transfer"), CNK_ERR_INPUT);
    assert_string_equal(cnk_error(&ctx), "p.ckpt: a plain training checkpoint: resume it without --from or --arch fusion");
    assert_int_equal(cnk_ckpt_check_kind(&ctx, "input=image\n", "m.cnk", "transfer"), CNK_ERR_INPUT);
    assert_string_equal(cnk_error(&ctx), "m.cnk: not a training checkpoint");
    cnk_ckpt_schedule sched;
    assert_int_equal(cnk_ckpt_read_schedule(&ctx, plain, "p.ckpt", 0, &sched), CNK_OK);
    assert_int_equal(sched.start_epoch * 10 + sched.epochs, 25);
    assert_int_equal(cnk_ckpt_read_schedule(&ctx, transfer, "t.ckpt", 0, &sched), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "t.ckpt: a transfer-learning checkpoint"));
    memset(&sched, 0, sizeof sched);
    assert_int_equal(cnk_ckpt_read_schedule_of(&ctx, transfer, "t.ckpt", "transfer", 7, &sched), CNK_OK);
    assert_int_equal(sched.start_epoch * 10 + sched.epochs, 27); /* --epochs 7 extends the phase */
    assert_int_equal(sched.batch, 8);
    assert_int_equal(sched.patience, -1);
    assert_int_equal(cnk_ckpt_read_schedule_of(&ctx, plain, "p.ckpt", "transfer", 0, &sched), CNK_ERR_INPUT);
}

static void test_blocks_and_freeze(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_builtin_opts bo;
    cnk_builtin_opts_init(&bo);
    bo.folded_bn = 1;
    bo.input = (cnk_shape){3, 96, 96};
    cnk_arch arch;
    assert_int_equal(cnk_builtin_arch(&ctx, "mobilenet_v2", &bo, &arch), CNK_OK);
    assert_string_equal(arch.layers[cnk_transfer_head_layer(&arch)].name, "logits");
    assert_string_equal(arch.layers[cnk_transfer_unfreeze_from(&arch, 1)].name, "conv_last");
    assert_string_equal(arch.layers[cnk_transfer_unfreeze_from(&arch, 2)].name, "block16_expand");
    assert_string_equal(arch.layers[cnk_transfer_unfreeze_from(&arch, 3)].name, "block15_expand");
    assert_string_equal(arch.layers[cnk_transfer_unfreeze_from(&arch, 0)].name, "dropout");
    /* more blocks than there are: everything above the input */
    assert_int_equal(cnk_transfer_unfreeze_from(&arch, 1000), 1);
    cnk_arch_release(&arch);
    int n;
    assert_int_equal(cnk_transfer_parse_freeze("backbone", &n), 0);
    assert_int_equal(n, -1);
    assert_int_equal(cnk_transfer_parse_freeze(NULL, &n), 0);
    assert_int_equal(n, -1);
    assert_int_equal(cnk_transfer_parse_freeze("none", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(cnk_transfer_parse_freeze("12", &n), 0);
    assert_int_equal(n, 12);
    assert_int_equal(cnk_transfer_parse_freeze("12x", &n), -1);
    assert_int_equal(cnk_transfer_parse_freeze("-1", &n), -1);
}

static void test_mel_image(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_mel_image mi;
    assert_int_equal(cnk_mel_image_from_text(&ctx, "input=mel\n", "m", &mi), CNK_OK);
    assert_int_equal(mi.active, 0);
    assert_int_equal(cnk_mel_image_from_text(&ctx, "input=mel\nmel_image=3x4x6\nx=1\n", "m", &mi), CNK_OK);
    assert_int_equal(mi.active, 1);
    assert_int_equal(mi.channels * 100 + mi.height * 10 + mi.width, 346);
    assert_int_equal(cnk_mel_image_from_text(&ctx, "mel_image=3x4\n", "m.cnk", &mi), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "m.cnk"));
    char text[64];
    mi = (cnk_mel_image){1, 3, 4, 6};
    cnk_mel_image_to_text(&mi, text, sizeof text);
    assert_string_equal(text, "mel_image=3x4x6\n");

    /* 2 rows x 3 frames: row 0 (lowest frequency) 0,1,2 dB; row 1: 10,11,12 dB. Range 0..12 -> [-1, 1]. */
    const float seg[6] = {0, 1, 2, 10, 11, 12};
    float out[3 * 4 * 6];
    cnk_mel_image_apply(&mi, seg, 2, 3, out);
    /* Image row 0 is the highest frequency: its left pixel is the top-left source value 10 -> 10/6 - 1. */
    assert_float_equal(out[0], 10.0f / 6.0f - 1.0f, 1e-6);
    assert_float_equal(out[5], 1.0f, 1e-6);           /* top right: 12 */
    assert_float_equal(out[3 * 6 + 0], -1.0f, 1e-6); /* bottom left: 0 */
    /* Column 1 of 6 maps to source x = 1.5 * 3/6 - 0.5 = 0.25: 10.25 on the top row. */
    assert_float_equal(out[1], 10.25f / 6.0f - 1.0f, 1e-6);
    /* Row 1 of 4 maps to source y = 1.5 * 2/4 - 0.5 = 0.25 from the top: 10 - 0.25 * 10 = 7.5 at column 0. */
    assert_float_equal(out[6], 7.5f / 6.0f - 1.0f, 1e-6);
    for (int c = 1; c < 3; c++) assert_memory_equal(out + c * 24, out, 24 * sizeof(float));
    const float flat[6] = {5, 5, 5, 5, 5, 5};
    cnk_mel_image_apply(&mi, flat, 2, 3, out);
    for (int i = 0; i < 72; i++) assert_float_equal(out[i], -1.0f, 0);
}

static void test_bad_options(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char model[4300], missing[4300];
    snprintf(model, sizeof model, "%s/bad.cnk", tmp);
    snprintf(missing, sizeof missing, "%s/no-such-model.cnk", tmp);
    cnk_train_options t;
    train_opts(&t, model);
    cnk_transfer_options o;
    cnk_transfer_options_init(&o, &t);
    cnk_transfer_result r;
    t.freeze = "most";
    assert_int_equal(cnk_transfer_run(&ctx, &o, &r), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_error(&ctx), "--freeze most"));
    t.freeze = NULL;
    t.from = missing;
    assert_int_not_equal(cnk_transfer_run(&ctx, &o, &r), CNK_OK);
    assert_non_null(strstr(cnk_error(&ctx), "no-such-model.cnk"));
    t.from = NULL;
    assert_int_equal(cnk_transfer_run(&ctx, &o, &r), CNK_ERR_ARG);
    t.from = backbone;
    t.arch = "cnn";
    assert_int_equal(cnk_transfer_run(&ctx, &o, &r), CNK_ERR_ARG);
    t.arch = NULL; /* options the transfer phases do not implement are refused, not ignored */
    t.label_smoothing = 0.1;
    assert_int_equal(cnk_transfer_run(&ctx, &o, &r), CNK_ERR_UNSUPPORTED);
    assert_non_null(strstr(cnk_error(&ctx), "--label-smoothing"));
    t.label_smoothing = -1;
    t.optimizer = "sgd";
    assert_int_equal(cnk_transfer_run(&ctx, &o, &r), CNK_ERR_UNSUPPORTED);
    t.optimizer = "adam";
    t.tta_flip = 1;
    assert_int_equal(cnk_transfer_run(&ctx, &o, &r), CNK_ERR_UNSUPPORTED);
    assert_false(cnk_is_file(model));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frozen_backbone_cache_and_predict),
        cmocka_unit_test(test_finetune_top_block),
        cmocka_unit_test(test_yamnet_backbone),
        cmocka_unit_test(test_frozen_batchnorm),
        cmocka_unit_test(test_resume_either_phase),
        cmocka_unit_test(test_resume_refusals),
        cmocka_unit_test(test_checkpoint_kinds),
        cmocka_unit_test(test_blocks_and_freeze),
        cmocka_unit_test(test_mel_image),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
