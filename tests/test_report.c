/* Tests for pipeline/report: the files cnk_report_write produces (with history, run parameters and a
 * fusion-style comparison), their contents, the PNG charts' sizes, and that a report directory is either
 * complete or absent (failures leave nothing; an old report is replaced; other folders are refused).
 * test-libs: core features nn pipeline */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/atomic_file.h"
#include "core/fsutil.h"
#include "pipeline/plot.h"
#include "pipeline/report.h"
#include "pipeline/report_csv.h"

/* A small three-class problem: fused model plus its two branches, like a fusion run would report. */
#define N_SAMPLES 60
#define N_CLASSES 3
#define N_EPOCHS 8

typedef struct fixture {
    const char *names[N_CLASSES];
    int y_true[N_SAMPLES];
    int y_pred[3][N_SAMPLES];
    double proba[N_SAMPLES * N_CLASSES];
    char path_text[N_SAMPLES][64];
    const char *paths[N_SAMPLES];
    double train_loss[N_EPOCHS], val_loss[N_EPOCHS], train_acc[N_EPOCHS], val_acc[N_EPOCHS];
    cnk_report_history history;
    cnk_report_model models[3];
    cnk_report_param params[3];
    cnk_report_input input;
} fixture;

static void make_fixture(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->names[0] = "bird";
    f->names[1] = "cat & <dog>"; /* needs HTML escaping */
    f->names[2] = "frog, \"green\""; /* needs CSV quoting */
    for (int i = 0; i < N_SAMPLES; i++) {
        int t = i % N_CLASSES;
        f->y_true[i] = t;
        f->y_pred[0][i] = (i % 7 == 0) ? (t + 1) % N_CLASSES : t;  /* fused: 9 mistakes */
        f->y_pred[1][i] = (i % 4 == 0) ? (t + 2) % N_CLASSES : t;  /* branch A */
        f->y_pred[2][i] = (i % 3 == 0) ? 0 : t;                    /* branch B: biased to "bird" */
        for (int c = 0; c < N_CLASSES; c++) f->proba[i * N_CLASSES + c] = c == f->y_pred[0][i] ? 0.7 : 0.15;
        f->proba[i * N_CLASSES + f->y_pred[0][i]] -= 0.001 * (i % 10); /* distinct confidences */
        snprintf(f->path_text[i], sizeof f->path_text[i], "data/%d/clip <%02d>.wav", t, i);
        f->paths[i] = f->path_text[i];
    }
    for (int e = 0; e < N_EPOCHS; e++) {
        f->train_loss[e] = 1.2 * exp(-e / 3.0);
        f->val_loss[e] = 1.3 * exp(-e / 4.0) + 0.1;
        f->train_acc[e] = 1 - 0.6 * exp(-e / 3.0);
        f->val_acc[e] = e == 2 ? NAN : 1 - 0.7 * exp(-e / 4.0);
    }
    f->history = (cnk_report_history){N_EPOCHS, f->train_loss, f->train_acc, f->val_loss, f->val_acc};
    const char *model_names[3] = {"fusion", "audio branch", "image branch"};
    for (int m = 0; m < 3; m++)
        f->models[m] = (cnk_report_model){model_names[m], N_SAMPLES, N_CLASSES, f->names, f->y_true, f->y_pred[m],
                                          m == 0 ? f->proba : NULL, m == 0 ? f->paths : NULL,
                                          m < 2 ? &f->history : NULL};
    f->params[0] = (cnk_report_param){"epochs", "8"};
    f->params[1] = (cnk_report_param){"arch", "<script>alert(1)</script>"};
    f->params[2] = (cnk_report_param){"seed", "42"};
    f->input = (cnk_report_input){"Fusion run", f->models, 3, f->params, 3, 5};
}

static char *read_text(const char *dir, const char *file)
{
    char path[8400];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("cannot open %s", path);
    char *text = calloc(1, 1 << 22);
    assert_non_null(text);
    size_t got = fread(text, 1, (1 << 22) - 1, fp);
    fclose(fp);
    assert_true(got > 0);
    return text;
}

static size_t count_substr(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* Width and height from a PNG's IHDR chunk; fails the test if the file is not a PNG. */
static void png_size(const char *path, unsigned *width, unsigned *height)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    unsigned char h[24];
    assert_int_equal(fread(h, 1, 24, fp), 24);
    fclose(fp);
    static const unsigned char magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    assert_memory_equal(h, magic, 8);
    assert_memory_equal(h + 12, "IHDR", 4);
    *width = (unsigned)h[16] << 24 | (unsigned)h[17] << 16 | (unsigned)h[18] << 8 | h[19];
    *height = (unsigned)h[20] << 24 | (unsigned)h[21] << 16 | (unsigned)h[22] << 8 | h[23];
}

/* Entries of dir whose name contains pattern (leftover temporaries). */
static int count_entries(const char *dir, const char *pattern)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.' && strstr(e->d_name, pattern)) n++;
    closedir(d);
    return n;
}

static void test_full_report_files(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    fixture *f = malloc(sizeof *f);
    make_fixture(f);
    char base[4096], dir[4200];
    tu_tmpdir(base, sizeof base, "report-full");
    snprintf(dir, sizeof dir, "%s/nested/out", base);
    if (cnk_report_write(&ctx, dir, &f->input) != CNK_OK) fail_msg("%s", cnk_error(&ctx));

    const char *files[] = {"report.txt", "metrics.json", "confusion.csv", "predictions.csv", "confusion.png",
                           "f1.png", "report.html", "history.csv", "curves.png", "comparison.csv"};
    char path[4400];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (!cnk_is_file(path)) fail_msg("missing %s", files[i]);
    }
    snprintf(path, sizeof path, "%s/nested", base);
    assert_int_equal(count_entries(path, ".tmp."), 0);
    assert_int_equal(count_entries(dir, ".tmp."), 0);

    /* report.txt: the fused model's table first (9 mistakes of 60 -> accuracy 0.85), then the comparison. */
    char *txt = read_text(dir, "report.txt");
    assert_non_null(strstr(txt, "    accuracy                           0.85        60\n"));
    assert_non_null(strstr(txt, "model comparison"));
    assert_non_null(strstr(txt, "== image branch =="));
    free(txt);

    /* metrics.json: contract keys, escaped names, comparison of all three models. */
    char *json = read_text(dir, "metrics.json");
    assert_non_null(strstr(json, "\"classes\": [\"bird\", \"cat & <dog>\", \"frog, \\\"green\\\"\"]"));
    assert_non_null(strstr(json, "\"accuracy\": 0.85,"));
    assert_non_null(strstr(json, "\"confusion_matrix\": ["));
    assert_non_null(strstr(json, "\"macro_avg\": {\"precision\": "));
    assert_int_equal(count_substr(json, "\"name\": "), 3);
    assert_non_null(strstr(json, "\"top_k_accuracy\": {\"1\": 0.85, \"2\": "));
    free(json);

    /* confusion.csv: quoted names, counts per row. bird: 20 samples, 3 mistakes (i%7==0 among i%3==0). */
    char *csv = read_text(dir, "confusion.csv");
    assert_non_null(strstr(csv, "label,bird,cat & <dog>,\"frog, \"\"green\"\"\"\nbird,17,3,0\n"));
    free(csv);

    /* history.csv: one row per epoch, a missing value is an empty cell. */
    char *hist = read_text(dir, "history.csv");
    assert_int_equal(count_substr(hist, "\n"), N_EPOCHS + 1);
    assert_non_null(strstr(hist, "epoch,train_loss,train_acc,val_loss,val_acc\n1,1.2,0.4,1.4,0.3\n"));
    assert_non_null(strstr(hist, "\n3,"));
    assert_non_null(strstr(strstr(hist, "\n3,"), ",\n4,")); /* epoch 3 ends with an empty val_acc */
    free(hist);

    /* report.html: self-contained, escaped, capped mistakes list, parameters shown. */
    char *html = read_text(dir, "report.html");
    assert_int_equal(count_substr(html, "src=\"data:image/png;base64,"), 3);
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "https://"));
    assert_null(strstr(html, "<script>"));
    assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_non_null(strstr(html, "cat &amp; &lt;dog&gt;"));
    assert_non_null(strstr(html, "9 of 60 samples are misclassified; showing 5"));
    assert_non_null(strstr(html, "data/0/clip &lt;00&gt;.wav"));
    assert_non_null(strstr(html, "Model comparison"));
    assert_non_null(strstr(html, "audio branch"));
    free(html);

    unsigned w, h;
    snprintf(path, sizeof path, "%s/curves.png", dir);
    png_size(path, &w, &h);
    assert_true(w >= 800 && h >= 300);
    free(f);
    tu_rmtree(base);
}

static void test_predictions_round_trip(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    fixture *f = malloc(sizeof *f);
    make_fixture(f);
    f->input.n_models = 1;
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "report-roundtrip");
    snprintf(path, sizeof path, "%s/r", dir);
    assert_int_equal(cnk_report_write(&ctx, path, &f->input), CNK_OK);
    snprintf(path, sizeof path, "%s/r/predictions.csv", dir);
    cnk_predictions p;
    if (cnk_predictions_read(&ctx, path, &p) != CNK_OK) fail_msg("%s", cnk_error(&ctx));
    assert_int_equal(p.n_samples, N_SAMPLES);
    assert_int_equal(p.n_classes, N_CLASSES);
    assert_non_null(p.proba);
    assert_non_null(p.paths);
    for (int c = 0; c < N_CLASSES; c++) assert_string_equal(p.class_names[c], f->names[c]);
    for (int i = 0; i < N_SAMPLES; i++) {
        assert_int_equal(p.y_true[i], f->y_true[i]);
        assert_int_equal(p.y_pred[i], f->y_pred[0][i]);
        assert_string_equal(p.paths[i], f->paths[i]);
        for (int c = 0; c < N_CLASSES; c++)
            assert_float_equal(p.proba[i * N_CLASSES + c], f->proba[i * N_CLASSES + c], 1e-8);
    }
    cnk_predictions_release(&p);
    /* A single model without history: no history.csv, curves.png or comparison.csv. */
    f->models[0].history = NULL;
    snprintf(path, sizeof path, "%s/r", dir);
    assert_int_equal(cnk_report_write(&ctx, path, &f->input), CNK_OK); /* replaces the earlier report */
    snprintf(path, sizeof path, "%s/r/history.csv", dir);
    assert_false(cnk_is_file(path));
    snprintf(path, sizeof path, "%s/r/curves.png", dir);
    assert_false(cnk_is_file(path));
    snprintf(path, sizeof path, "%s/r/comparison.csv", dir);
    assert_false(cnk_is_file(path));
    assert_int_equal(count_entries(dir, ".tmp."), 0);
    assert_int_equal(count_entries(dir, ".old."), 0);
    free(f);
    tu_rmtree(dir);
}

static void test_failures_leave_nothing(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    fixture *f = malloc(sizeof *f);
    make_fixture(f);
    char base[4096], dir[4200], path[4400];
    tu_tmpdir(base, sizeof base, "report-fail");

    /* A bad second model fails the whole report after the first model's files were started. */
    f->y_pred[2][5] = 7;
    snprintf(dir, sizeof dir, "%s/out", base);
    assert_int_not_equal(cnk_report_write(&ctx, dir, &f->input), CNK_OK);
    assert_non_null(strstr(cnk_error(&ctx), "image branch"));
    assert_false(cnk_is_dir(dir));
    assert_int_equal(count_entries(base, ".tmp."), 0);
    f->y_pred[2][5] = 2;

    /* A folder holding other things is never overwritten. */
    snprintf(dir, sizeof dir, "%s/precious", base);
    assert_int_equal(cnk_mkdirs(&ctx, dir), CNK_OK);
    snprintf(path, sizeof path, "%s/thesis.tex", dir);
    assert_int_equal(cnk_write_file_atomic(&ctx, path, "x", 1), CNK_OK);
    assert_int_equal(cnk_report_write(&ctx, dir, &f->input), CNK_ERR_IO);
    assert_non_null(strstr(cnk_error(&ctx), "not overwriting"));
    assert_true(cnk_is_file(path));
    assert_int_equal(count_entries(base, ".tmp."), 0);

    /* A plain file in the way. */
    assert_int_equal(cnk_report_write(&ctx, path, &f->input), CNK_ERR_IO);
    assert_non_null(strstr(cnk_error(&ctx), "not a directory"));

    /* An empty folder is fine, and a trailing slash names the same folder. */
    snprintf(dir, sizeof dir, "%s/empty", base);
    assert_int_equal(cnk_mkdirs(&ctx, dir), CNK_OK);
    snprintf(dir, sizeof dir, "%s/empty/", base);
    if (cnk_report_write(&ctx, dir, &f->input) != CNK_OK) fail_msg("%s", cnk_error(&ctx));
    snprintf(path, sizeof path, "%s/empty/report.html", base);
    assert_true(cnk_is_file(path));
    assert_int_equal(count_entries(base, ".tmp."), 0);

    cnk_report_input none = {0};
    assert_int_equal(cnk_report_write(&ctx, dir, &none), CNK_ERR_ARG);
    free(f);
    tu_rmtree(base);
}

/* report.txt's table for a hand-checked case: two classes, one mistake each way. */
static void test_format_text_known_answer(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    const char *names[] = {"yes", "no"};
    int y_true[] = {0, 0, 0, 1, 1};
    int y_pred[] = {0, 0, 1, 1, 0};
    cnk_report_model model = {"m", 5, 2, names, y_true, y_pred, NULL, NULL, NULL};
    char *text = NULL;
    assert_int_equal(cnk_report_format_text(&ctx, &model, &text), CNK_OK);
    const char *want = "              precision    recall  f1-score   support\n"
                       "\n"
                       "          no       0.50      0.50      0.50         2\n"
                       "         yes       0.67      0.67      0.67         3\n"
                       "\n"
                       "    accuracy                           0.60         5\n"
                       "   macro avg       0.58      0.58      0.58         5\n"
                       "weighted avg       0.60      0.60      0.60         5\n"
                       "\n"
                       "confusion matrix (rows: true class, columns: predicted class)\n"
                       "true \\ predicted  no  yes\n"
                       "              no   1    1\n"
                       "             yes   1    2\n";
    assert_string_equal(text, want);
    free(text);
}

/* The heatmap grows with the class count so 50 names and counts stay legible. */
static void test_confusion_png_scales(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "report-png");
    unsigned sizes[2][2];
    const size_t ks[2] = {2, 50};
    for (int t = 0; t < 2; t++) {
        size_t k = ks[t];
        char **names = malloc(k * sizeof *names);
        size_t *counts = calloc(k * k, sizeof *counts);
        double *norm = calloc(k * k, sizeof *norm);
        for (size_t c = 0; c < k; c++) {
            names[c] = malloc(32);
            snprintf(names[c], 32, "class #%02zu", c);
            counts[c * k + c] = 100 + c;
            norm[c * k + c] = 1;
        }
        snprintf(path, sizeof path, "%s/cm%zu.png", dir, k);
        if (cnk_plot_confusion(&ctx, path, "t", k, (const char *const *)names, counts, norm) != CNK_OK)
            fail_msg("%s", cnk_error(&ctx));
        png_size(path, &sizes[t][0], &sizes[t][1]);
        for (size_t c = 0; c < k; c++) free(names[c]);
        free(names);
        free(counts);
        free(norm);
    }
    assert_true(sizes[0][0] >= 400 && sizes[0][0] <= 800);
    assert_true(sizes[1][0] >= 1000 && sizes[1][1] >= 1000); /* at least 20 px per cell */
    assert_int_equal(count_entries(dir, ".tmp."), 0);
    /* Writing into a folder that does not exist fails cleanly (no PLplot exit). */
    snprintf(path, sizeof path, "%s/missing/cm.png", dir);
    const char *names[] = {"a", "b"};
    size_t counts[4] = {1, 0, 0, 1};
    double norm[4] = {1, 0, 0, 1};
    assert_int_equal(cnk_plot_confusion(&ctx, path, "t", 2, names, counts, norm), CNK_ERR_IO);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_report_files),       cmocka_unit_test(test_predictions_round_trip),
        cmocka_unit_test(test_failures_leave_nothing),  cmocka_unit_test(test_format_text_known_answer),
        cmocka_unit_test(test_confusion_png_scales),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
