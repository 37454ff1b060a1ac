/* Tests for pipeline/train_options.c: training options set by name, the ranges `cnnkit train --help` gives,
 * bad values refused without touching the options, names it does not handle left to the caller.
 * test-libs: core features nn pipeline */
#include "testutil.h"

#include <string.h>

#include "pipeline/train.h"

static void test_sets_numbers_words_and_sizes(void **state)
{
    (void)state;
    cnk_train_options o;
    cnk_train_options_init(&o);
    assert_int_equal(cnk_train_option_set(&o, "epochs", "7"), 0);
    assert_int_equal(cnk_train_option_set(&o, "batch-size", "24"), 0);
    assert_int_equal(cnk_train_option_set(&o, "lr", "0.003"), 0);
    assert_int_equal(cnk_train_option_set(&o, "weight-decay", "0"), 0);
    assert_int_equal(cnk_train_option_set(&o, "segment", "1.5"), 0);
    assert_int_equal(cnk_train_option_set(&o, "label-smoothing", "0.1"), 0);
    assert_int_equal(cnk_train_option_set(&o, "ema", "0.99"), 0);
    assert_int_equal(cnk_train_option_set(&o, "mixup", "0.2"), 0);
    assert_int_equal(cnk_train_option_set(&o, "erase", "0.5"), 0);
    assert_int_equal(cnk_train_option_set(&o, "top-db", "40"), 0);
    assert_int_equal(cnk_train_option_set(&o, "lifter", "13"), 0);
    assert_int_equal(cnk_train_option_set(&o, "image-size", "112x80"), 0);
    assert_int_equal(cnk_train_option_set(&o, "tta", "none"), 0);
    assert_int_equal(cnk_train_option_set(&o, "center", "on"), 0);
    assert_int_equal(cnk_train_option_set(&o, "clip-norm", "cmvn"), 0);
    assert_int_equal(o.epochs, 7);
    assert_int_equal(o.batch_size, 24);
    assert_true(o.lr == 0.003);
    assert_true(o.weight_decay == 0);
    assert_true(o.segment_seconds == 1.5);
    assert_true(o.label_smoothing == 0.1);
    assert_true(o.ema_decay == 0.99);
    assert_true(o.mixup == 0.2);
    assert_true(o.erase == 0.5);
    assert_true(o.audio.top_db == 40);
    assert_int_equal(o.audio.lifter, 13);
    assert_int_equal(o.image_width, 112);
    assert_int_equal(o.image_height, 80);
    assert_int_equal(o.tta_flip, 0);
    assert_int_equal(o.audio.center, 1);
    assert_int_equal(o.audio.clip_norm, CNK_CLIP_NORM_CMVN);
}

/* 0 patience means "no early stopping", which the options spell as a negative number (0 = the default). */
static void test_patience_zero_is_off(void **state)
{
    (void)state;
    cnk_train_options o;
    cnk_train_options_init(&o);
    assert_int_equal(cnk_train_option_set(&o, "patience", "0"), 0);
    assert_true(o.patience < 0);
    assert_int_equal(cnk_train_option_set(&o, "patience", "12"), 0);
    assert_int_equal(o.patience, 12);
}

static void test_bad_values_leave_the_options_alone(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"epochs", "0"},          {"epochs", "3.5"},       {"epochs", ""},        {"batch-size", "4097"},
        {"lr", "0"},              {"lr", "nan"},           {"lr", "1e-3x"},       {"weight-decay", "-1"},
        {"test-fraction", "0.96"}, {"label-smoothing", "1"}, {"ema", "1"},         {"mixup", "1.5"},
        {"erase", "1.01"},        {"erase", "-0.1"},
        {"top-db", "0"},          {"top-db", "81"},        {"lifter", "-1"},      {"image-size", "96"},
        {"image-size", "0x96"},   {"image-size", "96x96x3"}, {"tta", "mirror"},   {"center", "yes"},
        {"clip-norm", "CMN"},     {"patience", "-2"},      {"epochs", NULL},
    };
    cnk_train_options o, before;
    cnk_train_options_init(&o);
    memcpy(&before, &o, sizeof o);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = cnk_train_option_set(&o, bad[i][0], bad[i][1]);
        if (rc != -1) fail_msg("--%s %s: returned %d, expected -1", bad[i][0], bad[i][1] ? bad[i][1] : "(none)", rc);
        assert_memory_equal(&o, &before, sizeof o);
    }
}

/* The range ends `cnnkit train --help` documents are accepted. */
static void test_range_ends_are_accepted(void **state)
{
    (void)state;
    static const char *const good[][2] = {
        {"epochs", "1"}, {"epochs", "100000"}, {"batch-size", "4096"}, {"sr", "1000"}, {"sr", "384000"},
        {"test-fraction", "0.95"}, {"val-fraction", "0"}, {"label-smoothing", "0"}, {"ema", "0"},
        {"mixup", "1"}, {"erase", "0"}, {"erase", "1"}, {"top-db", "1"}, {"top-db", "80"}, {"trim-db", "0"}, {"lifter", "0"},
    };
    cnk_train_options o;
    cnk_train_options_init(&o);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (cnk_train_option_set(&o, good[i][0], good[i][1]) != 0) fail_msg("--%s %s refused", good[i][0], good[i][1]);
}

/* Paths, names and flags without a value belong to the caller. */
static void test_other_names_are_left_to_the_caller(void **state)
{
    (void)state;
    cnk_train_options o, before;
    cnk_train_options_init(&o);
    memcpy(&before, &o, sizeof o);
    static const char *const names[] = {"output", "arch", "optimizer", "no-cache", "seed", "Epochs", "epoch", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_int_equal(cnk_train_option_set(&o, names[i], "1"), 1);
    assert_int_equal(cnk_train_option_set(&o, "no-cache", NULL), 1);
    assert_int_equal(cnk_train_option_set(&o, NULL, "1"), 1);
    assert_memory_equal(&o, &before, sizeof o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sets_numbers_words_and_sizes),
        cmocka_unit_test(test_patience_zero_is_off),
        cmocka_unit_test(test_bad_values_leave_the_options_alone),
        cmocka_unit_test(test_range_ends_are_accepted),
        cmocka_unit_test(test_other_names_are_left_to_the_caller),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
