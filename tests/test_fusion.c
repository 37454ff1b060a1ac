/* Tests for pipeline/fusion: the fused probabilities of the three modes on known logits, the loss gradients
 * (branch logits, fused logits and the learned weight) against central differences, the fusion network's
 * backward reaching exactly the layers each mode trains, and whole runs of the three modes on generated audio
 * (model file with its fusion settings, report with the fused model and each branch side by side), and an
 * interrupted run resumed from its checkpoint ending exactly as the uninterrupted one.
 * test-libs: core features nn pipeline */
#include "testutil.h"
#include "tu_sets.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/rng.h"
#include "nn/builtin.h"
#include "nn/model.h"
#include "nn/modelfile.h"
#include "pipeline/dataset.h"
#include "pipeline/demo_data.h"
#include "pipeline/fusion.h"
#include "pipeline/split.h"

enum { B = 3, C = 4 };

static char tmp[4096], data[4200];

static int setup(void **state)
{
    (void)state;
    return tu_write_audio_set("fusion", tmp, sizeof tmp, data, sizeof data);
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(tmp);
    return 0;
}

static void softmax(const float *z, int n, double *p)
{
    double max = z[0], sum = 0;
    for (int i = 1; i < n; i++) max = fmax(max, z[i]);
    for (int i = 0; i < n; i++) sum += exp(z[i] - max);
    for (int i = 0; i < n; i++) p[i] = exp(z[i] - max) / sum;
}

static void test_probs_known_values(void **state)
{
    (void)state;
    const float fused[C] = {0, 0, 0, 0}, mel[C] = {1, 2, 3, 4}, wav[C] = {4, 0, 0, 0};
    const float *logits[3] = {fused, mel, wav};
    float p[C], bm[C], bw[C];
    float *branches[2] = {bm, bw};
    double pm[C], pw[C];
    softmax(mel, C, pm);
    softmax(wav, C, pw);
    cnk_fusion_probs(CNK_FUSION_MEAN, 5.0f, logits, 1, C, p, branches);
    for (int c = 0; c < C; c++) {
        assert_float_equal(p[c], (pm[c] + pw[c]) / 2, 1e-6);
        assert_float_equal(bm[c], pm[c], 1e-6);
        assert_float_equal(bw[c], pw[c], 1e-6);
    }
    /* weight w = log(3): a = 0.75 on the mel branch */
    cnk_fusion_probs(CNK_FUSION_WEIGHTED, logf(3.0f), logits, 1, C, p, NULL);
    for (int c = 0; c < C; c++) assert_float_equal(p[c], 0.75 * pm[c] + 0.25 * pw[c], 1e-6);
    cnk_fusion_probs(CNK_FUSION_CONCAT, 0, logits, 1, C, p, NULL);
    for (int c = 0; c < C; c++) assert_float_equal(p[c], 0.25, 1e-6);
    cnk_fusion_mode m;
    assert_int_equal(cnk_fusion_mode_parse("weighted", &m), 0);
    assert_int_equal(m, CNK_FUSION_WEIGHTED);
    assert_int_equal(cnk_fusion_mode_parse("max", &m), -1);
    assert_string_equal(cnk_fusion_mode_name(CNK_FUSION_CONCAT), "concat");
}

/* Loss gradients against central differences in every logit and in the weight. */
static void check_gradients(cnk_fusion_mode mode)
{
    cnk_rng rng;
    cnk_rng_seed(&rng, 7, (uint64_t)mode);
    float z[3][B * C], d[3][B * C];
    for (int o = 0; o < 3; o++)
        for (int i = 0; i < B * C; i++) z[o][i] = (float)(2 * cnk_rng_normal(&rng));
    const int labels[B] = {0, 3, 1};
    const float *logits[3] = {z[0], z[1], z[2]};
    float *dl[3] = {d[0], d[1], d[2]};
    float weight = 0.4f, dweight = -1;
    double loss = cnk_fusion_loss(mode, weight, logits, labels, B, C, dl, &dweight, NULL);
    assert_true(isfinite(loss) && loss > 0);
    const float h = 1e-2f;
    for (int o = 0; o < 3; o++)
        for (int i = 0; i < B * C; i++) {
            float keep = z[o][i];
            float scratch[3][B * C], *ds[3] = {scratch[0], scratch[1], scratch[2]};
            z[o][i] = keep + h;
            double up = cnk_fusion_loss(mode, weight, logits, labels, B, C, ds, NULL, NULL);
            z[o][i] = keep - h;
            double down = cnk_fusion_loss(mode, weight, logits, labels, B, C, ds, NULL, NULL);
            z[o][i] = keep;
            double numeric = (up - down) / (2 * h);
            assert_float_equal(d[o][i], numeric, 2e-4 + 1e-3 * fabs(numeric));
            if (o == 0 && mode != CNK_FUSION_CONCAT) assert_float_equal(d[o][i], 0, 0);
        }
    float scratch[3][B * C], *ds[3] = {scratch[0], scratch[1], scratch[2]};
    double up = cnk_fusion_loss(mode, weight + h, logits, labels, B, C, ds, NULL, NULL);
    double down = cnk_fusion_loss(mode, weight - h, logits, labels, B, C, ds, NULL, NULL);
    assert_float_equal(dweight, (up - down) / (2 * h), 2e-4);
    if (mode == CNK_FUSION_WEIGHTED) assert_true(fabs(dweight) > 1e-4);
    else assert_float_equal(dweight, 0, 0);
}

static void test_loss_gradients(void **state)
{
    (void)state;
    check_gradients(CNK_FUSION_MEAN);
    check_gradients(CNK_FUSION_WEIGHTED);
    check_gradients(CNK_FUSION_CONCAT);
}

static double grad_norm(cnk_model *m, const char *layer)
{
    const cnk_arch *a = cnk_model_arch(m);
    const cnk_layer *l = &a->layers[cnk_arch_find(a, layer)];
    const float *g = cnk_model_grads(m) + l->param_offset;
    double s = 0;
    for (size_t i = 0; i < l->n_params; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

/* The fusion network forward and backward on tiny inputs: each mode's gradient reaches what it trains. */
static void test_network_backward(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_builtin_opts bo;
    cnk_builtin_opts_init(&bo);
    bo.input = (cnk_shape){1, 16, 16};
    bo.input2 = (cnk_shape){1, 16, 16}; /* 4 pooling blocks per branch */
    bo.n_classes = C;
    cnk_arch arch;
    assert_int_equal(cnk_builtin_arch(&ctx, "fusion", &bo, &arch), CNK_OK);
    cnk_model *m;
    assert_int_equal(cnk_model_create(&ctx, &arch, B, &m), CNK_OK);
    cnk_model_init_params(m, 3);
    float mel[B * 16 * 16], wav[B * 16 * 16];
    cnk_rng rng;
    cnk_rng_seed(&rng, 1, 2);
    for (size_t i = 0; i < sizeof mel / sizeof *mel; i++) mel[i] = (float)cnk_rng_normal(&rng);
    for (size_t i = 0; i < sizeof wav / sizeof *wav; i++) wav[i] = (float)cnk_rng_normal(&rng);
    const int labels[B] = {1, 2, 3};
    for (int mode = 0; mode < 3; mode++) {
        const float *inputs[2] = {mel, wav};
        assert_int_equal(cnk_model_forward(&ctx, m, inputs, B, CNK_MODE_TRAIN), CNK_OK);
        const float *out[3];
        for (int o = 0; o < 3; o++) {
            int units;
            out[o] = cnk_model_output(m, o, &units);
            assert_int_equal(units, C);
        }
        float d[3][B * C], *dl[3] = {d[0], d[1], d[2]}, dw;
        cnk_fusion_loss((cnk_fusion_mode)mode, 0, out, labels, B, C, dl, &dw, NULL);
        cnk_model_zero_grad(m);
        const float *douts[3] = {mode == CNK_FUSION_CONCAT ? d[0] : NULL, d[1], d[2]};
        assert_int_equal(cnk_model_backward(&ctx, m, douts), CNK_OK);
        assert_true(grad_norm(m, "mel_logits") > 0);
        assert_true(grad_norm(m, "wavelet_logits") > 0);
        assert_true(grad_norm(m, "mel_conv1") > 0);
        assert_true(grad_norm(m, "wavelet_conv1") > 0);
        if (mode == CNK_FUSION_CONCAT) assert_true(grad_norm(m, "logits") > 0);
        else assert_float_equal(grad_norm(m, "logits"), 0, 0);
    }
    cnk_model_free(m);
    cnk_arch_release(&arch);
}

/* The accuracy column of a model's row in report.txt's comparison table. */
static double comparison_accuracy(const char *report_dir, const char *model)
{
    char path[4400], line[512];
    snprintf(path, sizeof path, "%s/report.txt", report_dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    double acc = -1;
    int in_table = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model comparison", 16) == 0) in_table = 1;
        const char *p = line;
        while (*p == ' ') p++;
        if (in_table && strncmp(p, model, strlen(model)) == 0) acc = strtod(p + strlen(model), NULL);
    }
    fclose(f);
    return acc;
}

static void run_mode(cnk_fusion_mode mode)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char model[4300], report[4300];
    snprintf(model, sizeof model, "%s/%s.cnk", tmp, cnk_fusion_mode_name(mode));
    snprintf(report, sizeof report, "%s/report-%s", tmp, cnk_fusion_mode_name(mode));
    cnk_train_options t;
    cnk_train_options_init(&t);
    t.data = data;
    t.model_path = model;
    t.report_dir = report;
    t.cache_dir = "";
    t.epochs = tu_sanitized() ? 2 : 4;
    t.patience = -1;
    t.val_fraction = 0.2;
    cnk_fusion_result r;
    assert_int_equal(cnk_fusion_run(&ctx, &t, mode, &r), CNK_OK);
    assert_int_equal(r.train.epochs_run, t.epochs);
    assert_true(r.train.n_test >= (size_t)cnk_demo_n_classes());
    for (int k = 0; k < 3; k++) {
        double acc = k == 0 ? r.train.test_accuracy : k == 1 ? r.mel_test_accuracy : r.wavelet_test_accuracy;
        assert_true(acc >= 0 && acc <= 1);
    }
    /* The report: the fused model first, each branch beside it, with the run's own numbers. */
    char fused[64];
    snprintf(fused, sizeof fused, "fusion (%s)", cnk_fusion_mode_name(mode));
    assert_float_equal(comparison_accuracy(report, fused), r.train.test_accuracy, 1e-4);
    assert_float_equal(comparison_accuracy(report, "mel branch"), r.mel_test_accuracy, 1e-4);
    assert_float_equal(comparison_accuracy(report, "wavelet branch"), r.wavelet_test_accuracy, 1e-4);
    /* The model file: two inputs, three outputs, and its fusion settings. */
    cnk_modelfile mf;
    cnk_arch arch;
    assert_int_equal(cnk_modelfile_read(&ctx, model, &mf), CNK_OK);
    assert_int_equal(cnk_modelfile_arch(&ctx, &mf, &arch), CNK_OK);
    assert_int_equal(arch.n_input_layers, 2);
    assert_int_equal(arch.n_outputs, 3);
    int is_fusion;
    cnk_fusion_mode read_mode;
    float weight;
    assert_int_equal(cnk_fusion_from_text(&ctx, mf.preprocess, model, &is_fusion, &read_mode, &weight), CNK_OK);
    assert_int_equal(is_fusion, 1);
    assert_int_equal(read_mode, mode);
    assert_float_equal(weight, r.weight, 1e-6);
    if (mode == CNK_FUSION_WEIGHTED) assert_true(weight != 0); /* learned */
    else assert_float_equal(weight, 0, 0);
    assert_non_null(strstr(mf.preprocess, "input=mel+wavelet"));
    assert_non_null(strstr(mf.preprocess, "n_norm=2"));
    /* The saved model alone classifies the test files as the run did. */
    cnk_dataset ds;
    cnk_dataset_options dopts;
    cnk_dataset_options_init(&dopts);
    assert_int_equal(cnk_dataset_open(&ctx, data, &dopts, &ds), CNK_OK);
    char split[4400];
    assert_int_equal(cnk_split_file_path(&ctx, model, split, sizeof split), CNK_OK);
    assert_int_equal(cnk_split_read(&ctx, split, &ds), CNK_OK);
    const char *paths[64];
    int labels[64], ok[64];
    double proba[64 * 8];
    size_t n = 0, correct = 0, C = (size_t)mf.n_classes;
    assert_true(C <= 8);
    for (size_t i = 0; i < ds.n_items && n < 64; i++)
        if (ds.items[i].part == CNK_PART_TEST) labels[n] = ds.items[i].label, paths[n++] = ds.items[i].path;
    assert_int_equal(n, r.train.n_test);
    assert_int_equal(cnk_fusion_predict_files(&ctx, &mf, model, paths, n, "", proba, ok), CNK_OK);
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(ok[k], 1);
        size_t best = 0;
        for (size_t c = 1; c < C; c++)
            if (proba[k * C + c] > proba[k * C + best]) best = c;
        correct += (int)best == labels[k];
    }
    assert_float_equal((double)correct / (double)n, r.train.test_accuracy, 1e-12);
    cnk_dataset_release(&ds);
    cnk_arch_release(&arch);
    cnk_modelfile_release(&mf);
}

static void test_runs(void **state)
{
    (void)state;
    run_mode(CNK_FUSION_MEAN);
    run_mode(CNK_FUSION_WEIGHTED);
    run_mode(CNK_FUSION_CONCAT);
}

static int train_fusion(cnk_ctx *ctx, cnk_fusion_mode mode, const char *model, int epochs, int stop_after,
                        const char *resume, cnk_fusion_result *r)
{
    cnk_train_options t;
    cnk_train_options_init(&t);
    t.data = data;
    t.model_path = model;
    t.cache_dir = "";
    t.epochs = epochs;
    t.patience = -1;
    t.val_fraction = 0.2;
    t.max_epochs_this_run = stop_after;
    t.resume = resume;
    return cnk_fusion_run(ctx, &t, mode, r);
}

/* An interrupted run continued with --resume ends with the same model file as the uninterrupted run (weighted
 * mode: the fusion weight's optimiser is part of the state too); a checkpoint of another mode is refused. */
static void test_resume_matches_straight_run(void **state)
{
    (void)state;
    int epochs = tu_sanitized() ? 2 : 3;
    char straight[4300], resumed[4300], ckpt[4400];
    snprintf(straight, sizeof straight, "%s/straight.cnk", tmp);
    snprintf(resumed, sizeof resumed, "%s/resumed.cnk", tmp);
    cnk_train_checkpoint_path(resumed, ckpt, sizeof ckpt);
    cnk_fusion_result a, b, c;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    const cnk_fusion_mode mode = CNK_FUSION_WEIGHTED;
    assert_int_equal(train_fusion(&ctx, mode, straight, epochs, 0, NULL, &a), CNK_OK);
    assert_int_equal(train_fusion(&ctx, mode, resumed, epochs, 1, NULL, &b), CNK_OK);
    assert_int_equal(b.train.interrupted, 1);
    assert_int_equal(b.train.epochs_run, 1);
    char optim[4500];
    snprintf(optim, sizeof optim, "%s.optim-1.npy", ckpt);
    assert_true(cnk_is_file(ckpt) && cnk_is_file(optim));
    assert_int_equal(train_fusion(&ctx, mode, resumed, epochs, 0, ckpt, &c), CNK_OK);
    assert_int_equal(c.train.interrupted, 0);
    assert_int_equal(c.train.epochs_run, epochs);
    assert_int_equal(c.train.best_epoch, a.train.best_epoch);
    assert_true(c.train.test_accuracy == a.train.test_accuracy);
    assert_true(c.weight == a.weight && a.weight != 0);
    assert_true(tu_files_equal(straight, resumed));
    /* the last epoch's weights, optimiser states and history too, whichever epoch was kept */
    char straight_ckpt[4400], optim_a[4500], optim_b[4500];
    cnk_train_checkpoint_path(straight, straight_ckpt, sizeof straight_ckpt);
    assert_true(tu_files_equal(straight_ckpt, ckpt));
    snprintf(optim_a, sizeof optim_a, "%s.optim-%d.npy", straight_ckpt, epochs);
    snprintf(optim_b, sizeof optim_b, "%s.optim-%d.npy", ckpt, epochs);
    assert_true(tu_files_equal(optim_a, optim_b));
    assert_false(cnk_is_file(optim)); /* earlier epochs' optimiser files are removed */
    /* the same checkpoint under another mode */
    assert_int_equal(train_fusion(&ctx, CNK_FUSION_MEAN, resumed, epochs, 0, ckpt, &c), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "weighted"));
}

static void test_bad_settings(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    int is_fusion;
    cnk_fusion_mode mode;
    float weight;
    assert_int_equal(cnk_fusion_from_text(&ctx, "input=mel\n", "m", &is_fusion, &mode, &weight), CNK_OK);
    assert_int_equal(is_fusion, 0);
    assert_int_equal(cnk_fusion_from_text(&ctx, "fusion=max\n", "m.cnk", &is_fusion, &mode, &weight), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "m.cnk"));
    assert_int_equal(cnk_fusion_from_text(&ctx, "fusion=weighted\nfusion_weight=abc\n", "m", &is_fusion, &mode, &weight),
                     CNK_ERR_INPUT);
    cnk_train_options t;
    cnk_train_options_init(&t);
    t.data = data;
    cnk_fusion_result r;
    assert_int_equal(cnk_fusion_run(&ctx, &t, CNK_FUSION_MEAN, &r), CNK_ERR_ARG); /* no -o */
    char model[4300];
    snprintf(model, sizeof model, "%s/x.cnk", tmp);
    t.model_path = model;
    t.arch = "cnn";
    assert_int_equal(cnk_fusion_run(&ctx, &t, CNK_FUSION_MEAN, &r), CNK_ERR_ARG);
    t.arch = NULL;
    t.ema_decay = 0.99; /* options the fusion loop does not have are refused, not ignored */
    assert_int_equal(cnk_fusion_run(&ctx, &t, CNK_FUSION_MEAN, &r), CNK_ERR_UNSUPPORTED);
    assert_non_null(strstr(cnk_error(&ctx), "--ema"));
    t.ema_decay = -1;
    t.mixup = 0.2;
    assert_int_equal(cnk_fusion_run(&ctx, &t, CNK_FUSION_MEAN, &r), CNK_ERR_UNSUPPORTED);
    t.mixup = -1;
    t.erase = 0.5;
    assert_int_equal(cnk_fusion_run(&ctx, &t, CNK_FUSION_MEAN, &r), CNK_ERR_UNSUPPORTED);
    assert_non_null(strstr(cnk_error(&ctx), "--erase"));
    t.erase = -1;
    t.train_width = t.train_height = 128;
    assert_int_equal(cnk_fusion_run(&ctx, &t, CNK_FUSION_MEAN, &r), CNK_ERR_UNSUPPORTED);
    assert_non_null(strstr(cnk_error(&ctx), "--train-size"));
    t.train_width = t.train_height = -1;
    t.optimizer = "sgd";
    assert_int_equal(cnk_fusion_run(&ctx, &t, CNK_FUSION_MEAN, &r), CNK_ERR_UNSUPPORTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probs_known_values),
        cmocka_unit_test(test_loss_gradients),
        cmocka_unit_test(test_network_backward),
        cmocka_unit_test(test_runs),
        cmocka_unit_test(test_resume_matches_straight_run),
        cmocka_unit_test(test_bad_settings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
