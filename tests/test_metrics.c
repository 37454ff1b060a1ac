/* Tests for pipeline/metrics (and the predictions CSV reader and report table feeding on it): every case
 * in tests/fixtures/metrics (made by tests/ref/gen_metrics.py with scikit-learn) must give scikit-learn's
 * numbers, and report.txt's table must equal classification_report(digits=2) byte for byte.
 * test-libs: core features nn pipeline */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "pipeline/metrics.h"
#include "pipeline/report.h"
#include "pipeline/report_csv.h"

static const char *const cases[] = {"random_3", "never_predicted", "only_predicted", "one_class", "binary",
                                    "classes_50", "unicode", "quoted", "ties", "rounding"};

/* Tolerance for values scikit-learn computes in float64 along a slightly different path. */
#define TOL 1e-12

static void check_close(double got, double want, const char *what, const char *name, int i)
{
    int both_nan = isnan(got) && isnan(want);
    if (!both_nan && !(fabs(got - want) <= TOL * (1 + fabs(want))))
        fail_msg("%s: %s[%d] = %.17g, scikit-learn says %.17g", name, what, i, got, want);
}

static double parse_value(const char *text) { return strncmp(text, "nan", 3) == 0 ? NAN : strtod(text, NULL); }

/* Checks one "key [i [j]] value" line of the .expected file against m. */
static void check_line(const cnk_metrics *m, const char *name, char *line, size_t *n_checked)
{
    char key[64];
    int i = 0, j = 0, used = 0;
    if (sscanf(line, "%63s%n", key, &used) != 1 || strcmp(key, "sklearn") == 0) return;
    const char *rest = line + used;
    static const char *const per_class[] = {"precision", "recall", "f1", "roc_auc"};
    const double *series[] = {m->precision, m->recall, m->f1, m->roc_auc};
    for (int s = 0; s < 4; s++)
        if (strcmp(key, per_class[s]) == 0 && sscanf(rest, "%d%n", &i, &used) == 1) {
            assert_in_range(i, 0, (int)m->n_classes - 1);
            check_close(series[s][i], parse_value(rest + used + 1), key, name, i);
            (*n_checked)++;
            return;
        }
    if (strcmp(key, "class") == 0 && sscanf(rest, "%d%n", &i, &used) == 1) {
        assert_string_equal(m->class_names[i], rest + used + 1);
    } else if (strcmp(key, "n_classes") == 0) {
        assert_int_equal(m->n_classes, strtoul(rest, NULL, 10));
    } else if (strcmp(key, "n_samples") == 0) {
        assert_int_equal(m->n_samples, strtoul(rest, NULL, 10));
    } else if (strcmp(key, "support") == 0 && sscanf(rest, "%d %d", &i, &j) == 2) {
        assert_int_equal(m->support[i], j);
    } else if (strcmp(key, "confusion") == 0 && sscanf(rest, "%d %d%n", &i, &j, &used) == 2) {
        assert_int_equal(m->confusion[i * m->n_classes + j], strtoul(rest + used, NULL, 10));
    } else if (strcmp(key, "confusion_norm") == 0 && sscanf(rest, "%d %d%n", &i, &j, &used) == 2) {
        check_close(m->confusion_norm[i * m->n_classes + j], parse_value(rest + used + 1), key, name, i);
    } else if (strcmp(key, "top_k") == 0 && sscanf(rest, "%d%n", &i, &used) == 1) {
        assert_in_range(i, 1, (int)m->max_top_k);
        check_close(m->top_k[i - 1], parse_value(rest + used + 1), key, name, i);
    } else {
        const struct {
            const char *key;
            double value;
        } scalars[] = {{"accuracy", m->accuracy},
                       {"macro_precision", m->macro_avg.precision},
                       {"macro_recall", m->macro_avg.recall},
                       {"macro_f1", m->macro_avg.f1},
                       {"weighted_precision", m->weighted_avg.precision},
                       {"weighted_recall", m->weighted_avg.recall},
                       {"weighted_f1", m->weighted_avg.f1},
                       {"log_loss", m->log_loss}};
        for (size_t s = 0; s < sizeof scalars / sizeof scalars[0]; s++)
            if (strcmp(key, scalars[s].key) == 0) {
                check_close(scalars[s].value, parse_value(rest + 1), key, name, 0);
                (*n_checked)++;
                return;
            }
        fail_msg("%s: unknown expected line '%s'", name, line);
    }
    (*n_checked)++;
}

static void check_case(const char *name)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096], rel[256];
    snprintf(rel, sizeof rel, "metrics/%s.csv", name);
    cnk_predictions preds;
    if (cnk_predictions_read(&ctx, tu_fixture(path, sizeof path, rel), &preds) != CNK_OK)
        fail_msg("%s: %s", name, cnk_error(&ctx));
    cnk_report_model model;
    cnk_predictions_model(&preds, name, &model);
    cnk_metrics_input in;
    cnk_report_model_metrics_input(&model, &in);
    cnk_metrics m;
    if (cnk_metrics_compute(&ctx, &in, &m) != CNK_OK) fail_msg("%s: %s", name, cnk_error(&ctx));

    snprintf(rel, sizeof rel, "metrics/%s.expected", name);
    FILE *fp = fopen(tu_fixture(path, sizeof path, rel), "r");
    assert_non_null(fp);
    char line[4096];
    size_t n_checked = 0, n_lines = 0;
    while (fgets(line, sizeof line, fp)) {
        line[strcspn(line, "\n")] = '\0';
        check_line(&m, name, line, &n_checked);
        n_lines++;
    }
    fclose(fp);
    assert_int_equal(n_checked, n_lines - 1); /* every line but the version one was a check */
    int has_log_loss = preds.proba && preds.n_classes >= 2;
    assert_int_equal(isnan(m.log_loss), !has_log_loss);

    /* The text table, byte for byte. */
    snprintf(rel, sizeof rel, "metrics/%s.report.txt", name);
    unsigned char *want = NULL;
    size_t want_size = 0;
    assert_int_equal(cnk_read_file(&ctx, tu_fixture(path, sizeof path, rel), 0, &want, &want_size), CNK_OK);
    char *got = NULL;
    assert_int_equal(cnk_report_format_classification(&ctx, &m, 2, &got), CNK_OK);
    if (strcmp(got, (const char *)want) != 0) fail_msg("%s: table differs:\n%s\nscikit-learn:\n%s", name, got, want);
    /* report.txt starts with exactly that table. */
    char *full = NULL;
    assert_int_equal(cnk_report_format_text(&ctx, &model, &full), CNK_OK);
    assert_memory_equal(full, want, want_size);
    assert_non_null(strstr(full, "confusion matrix"));
    free(full);
    free(got);
    free(want);
    cnk_metrics_release(&m);
    cnk_predictions_release(&preds);
}

static void test_matches_sklearn(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(cases[i]);
}

/* numpy's pairwise order matters only in the last bits; check it on a sum where plain order differs. */
static void test_pairwise_sum_order(void **state)
{
    (void)state;
    double v[200];
    for (int i = 0; i < 200; i++) v[i] = 1.0 / (i + 1) + (i % 3 ? 1e-17 : 1e16 * (i == 0));
    double plain = 0;
    for (int i = 0; i < 200; i++) plain += v[i];
    double pw = cnk_metrics_pairwise_sum(v, 200);
    assert_true(fabs(pw - plain) < 1e-6 * fabs(plain));
    assert_true(cnk_metrics_pairwise_sum(v, 0) == 0.0);
    assert_true(cnk_metrics_pairwise_sum(v + 1, 3) == v[1] + v[2] + v[3]);
    /* 9 values: 8 accumulators then one left over. */
    double w[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_true(cnk_metrics_pairwise_sum(w, 9) == 45.0);
}

static void test_small_known_answer(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    /* Index space in non-sorted order with an unused class: the report keeps only used ones, sorted. */
    const char *names[] = {"dog", "unused", "cat"};
    int y_true[] = {0, 0, 2, 2, 2};
    int y_pred[] = {0, 2, 2, 2, 0};
    double proba[] = {0.8, 0.0, 0.2, 0.4, 0.1, 0.5, 0.1, 0.0, 0.9, 0.4, 0.2, 0.4, 0.6, 0.0, 0.4};
    cnk_metrics_input in = {5, 3, names, y_true, y_pred, proba};
    cnk_metrics m;
    assert_int_equal(cnk_metrics_compute(&ctx, &in, &m), CNK_OK);
    assert_int_equal(m.n_classes, 2);
    assert_string_equal(m.class_names[0], "cat");
    assert_string_equal(m.class_names[1], "dog");
    assert_int_equal(m.class_index[0], 2);
    assert_int_equal(m.confusion[0], 2); /* cat -> cat */
    assert_int_equal(m.confusion[1], 1); /* cat -> dog */
    assert_int_equal(m.confusion[2], 1); /* dog -> cat */
    assert_int_equal(m.confusion[3], 1);
    assert_float_equal(m.accuracy, 0.6, 1e-15);
    assert_float_equal(m.precision[0], 2.0 / 3.0, 1e-15);
    assert_float_equal(m.recall[1], 0.5, 1e-15);
    assert_float_equal(m.confusion_norm[0], 2.0 / 3.0, 1e-15);
    /* Top-1 over all three columns: hits are samples 0 and 2; sample 3 ties cat 0.4 with dog 0.4 and
     * the later name (dog) ranks first, as scikit-learn's stable argsort does. Top-2 catches the rest. */
    assert_int_equal(m.max_top_k, 3);
    assert_float_equal(m.top_k[0], 2.0 / 5.0, 1e-15);
    assert_float_equal(m.top_k[1], 1.0, 1e-15);
    /* Log loss: -mean(log p_true) with rows already summing to 1. */
    double want = -(log(0.8) + log(0.4) + log(0.9) + log(0.4) + log(0.4)) / 5;
    assert_float_equal(m.log_loss, want, 1e-12);
    cnk_metrics_release(&m);
}

static void test_bad_inputs_fail_cleanly(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    const char *names[] = {"a", "b"};
    const char *dup[] = {"a", "a"};
    int y_true[] = {0, 1}, y_bad[] = {0, 2};
    double proba_bad[] = {0.5, 0.5, NAN, 1.0};
    cnk_metrics m;
    cnk_metrics_input in = {0, 2, names, y_true, y_true, NULL};
    assert_int_equal(cnk_metrics_compute(&ctx, &in, &m), CNK_ERR_INPUT);
    in = (cnk_metrics_input){2, 2, names, y_true, y_bad, NULL};
    assert_int_equal(cnk_metrics_compute(&ctx, &in, &m), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_error(&ctx), "out of range"));
    in = (cnk_metrics_input){2, 2, dup, y_true, y_true, NULL};
    assert_int_equal(cnk_metrics_compute(&ctx, &in, &m), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "twice"));
    in = (cnk_metrics_input){2, 2, names, y_true, y_true, proba_bad};
    assert_int_equal(cnk_metrics_compute(&ctx, &in, &m), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "probability"));
}

static void test_roc_auc_ties(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    double scores[] = {0.1, 0.4, 0.35, 0.8, 0.4};
    unsigned char pos[] = {0, 0, 1, 1, 1};
    double auc;
    assert_int_equal(cnk_metrics_roc_auc(&ctx, scores, pos, 5, &auc), CNK_OK);
    /* pairs (pos, neg): 0.35>0.1, 0.35<0.4, 0.8>both, 0.4>0.1, 0.4=0.4 -> (1+0+2+1+0.5)/6 */
    assert_float_equal(auc, 4.5 / 6.0, 1e-15);
    unsigned char none[] = {0, 0, 0, 0, 0};
    assert_int_equal(cnk_metrics_roc_auc(&ctx, scores, none, 5, &auc), CNK_OK);
    assert_true(isnan(auc));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_sklearn),        cmocka_unit_test(test_pairwise_sum_order),
        cmocka_unit_test(test_small_known_answer),     cmocka_unit_test(test_bad_inputs_fail_cleanly),
        cmocka_unit_test(test_roc_auc_ties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
