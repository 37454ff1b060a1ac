/* The label-smoothed softmax cross-entropy against PyTorch (tests/ref/gen_loss.py: CrossEntropyLoss with
 * label_smoothing and an ignored label, and with probability targets), its finite-difference gradient, and
 * smoothing 0 = the plain loss.
 * test-libs: core nn */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/npy.h"
#include "nn/loss.h"

enum { BATCH = 9, CLASSES = 5 };

static void read_fixture(const char *name, cnk_array *a, size_t expect)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096], rel[256];
    snprintf(rel, sizeof rel, "loss/%s.npy", name);
    if (cnk_npy_read(&ctx, tu_fixture(path, sizeof path, rel), a) != CNK_OK) fail_msg("%s", cnk_error(&ctx));
    size_t n = 1;
    for (int d = 0; d < a->ndim; d++) n *= a->shape[d];
    assert_int_equal(n, expect);
}

static void load_inputs(float *logits, int *labels)
{
    cnk_array z = {0}, y = {0};
    read_fixture("logits", &z, BATCH * CLASSES);
    read_fixture("labels", &y, BATCH);
    memcpy(logits, z.data, sizeof(float) * BATCH * CLASSES);
    for (int n = 0; n < BATCH; n++) labels[n] = (int)y.data[n];
    assert_int_equal(labels[4], -1); /* the fixture's ignored sample */
    cnk_array_release(&z);
    cnk_array_release(&y);
}

static void check_against_torch(double smoothing, const char *tag)
{
    float logits[BATCH * CLASSES], grad[BATCH * CLASSES], probs[BATCH * CLASSES];
    int labels[BATCH];
    load_inputs(logits, labels);
    char name[32];
    cnk_array want_loss = {0}, want_grad = {0};
    snprintf(name, sizeof name, "loss_%s", tag);
    read_fixture(name, &want_loss, 1);
    snprintf(name, sizeof name, "grad_%s", tag);
    read_fixture(name, &want_grad, BATCH * CLASSES);
    double loss = cnk_loss_softmax_ce_smooth(logits, labels, BATCH, CLASSES, smoothing, probs, grad);
    assert_true(fabs(loss - want_loss.data[0]) < 1e-5 * fabs(want_loss.data[0]));
    tu_assert_close(grad, want_grad.data, BATCH * CLASSES, 1e-7, 1e-5, "dlogits vs torch");
    for (int n = 0; n < BATCH; n++) { /* probabilities sum to 1, the ignored sample gets no gradient */
        double sum = 0;
        for (int k = 0; k < CLASSES; k++) sum += probs[n * CLASSES + k];
        assert_true(fabs(sum - 1) < 1e-5);
    }
    for (int k = 0; k < CLASSES; k++) assert_true(grad[4 * CLASSES + k] == 0.0f);
    cnk_array_release(&want_loss);
    cnk_array_release(&want_grad);
}

static void test_matches_torch_smoothing_0_1(void **state)
{
    (void)state;
    check_against_torch(0.1, "01");
}

static void test_matches_torch_smoothing_0_3(void **state)
{
    (void)state;
    check_against_torch(0.3, "03");
}

/* Smoothing 0 is the plain loss, bit for bit (and both match torch). */
static void test_zero_smoothing_is_plain_ce(void **state)
{
    (void)state;
    check_against_torch(0.0, "0");
    float logits[BATCH * CLASSES], g1[BATCH * CLASSES], g2[BATCH * CLASSES];
    int labels[BATCH];
    load_inputs(logits, labels);
    double a = cnk_loss_softmax_ce(logits, labels, BATCH, CLASSES, NULL, g1);
    double b = cnk_loss_softmax_ce_smooth(logits, labels, BATCH, CLASSES, 0.0, NULL, g2);
    assert_true(a == b);
    assert_memory_equal(g1, g2, sizeof g1);
}

/* The analytic gradient against central differences in double-checked float steps. */
static void test_gradient_matches_finite_differences(void **state)
{
    (void)state;
    float logits[BATCH * CLASSES], grad[BATCH * CLASSES];
    int labels[BATCH];
    load_inputs(logits, labels);
    for (int i = 0; i < BATCH * CLASSES; i++) logits[i] *= 0.3f; /* away from saturation, where steps are exact */
    cnk_loss_softmax_ce_smooth(logits, labels, BATCH, CLASSES, 0.2, NULL, grad);
    for (int i = 0; i < BATCH * CLASSES; i++) {
        float keep = logits[i], h = 1e-2f;
        logits[i] = keep + h;
        double up = cnk_loss_softmax_ce_smooth(logits, labels, BATCH, CLASSES, 0.2, NULL, NULL);
        logits[i] = keep - h;
        double down = cnk_loss_softmax_ce_smooth(logits, labels, BATCH, CLASSES, 0.2, NULL, NULL);
        logits[i] = keep;
        double numeric = (up - down) / (2.0 * h);
        if (fabs(numeric - grad[i]) > 1e-4) fail_msg("d/dlogit[%d]: analytic %g numeric %g", i, grad[i], numeric);
    }
}

/* A smoothed loss has its minimum at finite logits: the confident correct answer costs more than a
 * moderately sure one, which is what keeps the network from growing its logits without bound. */
static void test_smoothing_penalises_overconfidence(void **state)
{
    (void)state;
    int label = 0;
    float sure[3] = {30, 0, 0}, moderate[3] = {4, 0, 0};
    assert_true(cnk_loss_softmax_ce(sure, &label, 1, 3, NULL, NULL) <
                cnk_loss_softmax_ce(moderate, &label, 1, 3, NULL, NULL));
    assert_true(cnk_loss_softmax_ce_smooth(sure, &label, 1, 3, 0.1, NULL, NULL) >
                cnk_loss_softmax_ce_smooth(moderate, &label, 1, 3, 0.1, NULL, NULL));
    int none[2] = {-1, -1};
    float two[6] = {1, 2, 3, 4, 5, 6}, g[6];
    assert_true(cnk_loss_softmax_ce_smooth(two, none, 2, 3, 0.1, NULL, g) == 0.0); /* all ignored */
    for (int i = 0; i < 6; i++) assert_true(g[i] == 0.0f);
}

/* Probability targets (mixup) with smoothing 0.1 against torch; one-hot targets give the label loss. */
static void test_soft_targets_match_torch(void **state)
{
    (void)state;
    float logits[BATCH * CLASSES], grad[BATCH * CLASSES], g2[BATCH * CLASSES], onehot[BATCH * CLASSES];
    int labels[BATCH];
    load_inputs(logits, labels);
    cnk_array targets = {0}, want_loss = {0}, want_grad = {0};
    read_fixture("soft_targets", &targets, BATCH * CLASSES);
    read_fixture("loss_soft", &want_loss, 1);
    read_fixture("grad_soft", &want_grad, BATCH * CLASSES);
    double loss = cnk_loss_softmax_ce_soft(logits, targets.data, BATCH, CLASSES, 0.1, NULL, grad);
    assert_true(fabs(loss - want_loss.data[0]) < 1e-5 * fabs(want_loss.data[0]));
    tu_assert_close(grad, want_grad.data, BATCH * CLASSES, 1e-7, 1e-5, "soft-target dlogits vs torch");
    labels[4] = 0; /* no ignored sample here */
    memset(onehot, 0, sizeof onehot);
    for (int n = 0; n < BATCH; n++) onehot[n * CLASSES + labels[n]] = 1;
    double a = cnk_loss_softmax_ce_soft(logits, onehot, BATCH, CLASSES, 0.2, NULL, grad);
    double b = cnk_loss_softmax_ce_smooth(logits, labels, BATCH, CLASSES, 0.2, NULL, g2);
    assert_true(fabs(a - b) < 1e-12 * fabs(b));
    tu_assert_close(grad, g2, BATCH * CLASSES, 1e-9, 1e-6, "one-hot soft targets vs labels");
    cnk_array_release(&targets);
    cnk_array_release(&want_loss);
    cnk_array_release(&want_grad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_torch_smoothing_0_1),
        cmocka_unit_test(test_matches_torch_smoothing_0_3),
        cmocka_unit_test(test_zero_smoothing_is_plain_ce),
        cmocka_unit_test(test_gradient_matches_finite_differences),
        cmocka_unit_test(test_smoothing_penalises_overconfidence),
        cmocka_unit_test(test_soft_targets_match_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
