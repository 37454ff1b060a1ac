/* Tests for pipeline/split: exact per-class proportions, seeds, groups that never straddle, FSDD's test
 * convention and a held-out speaker on the real data, pre-split data, and the split file's round trip.
 * test-libs: core pipeline */
#include "testutil.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/rng.h"
#include "pipeline/dataset.h"
#include "pipeline/split.h"

static void open_fsdd(cnk_ctx *ctx, cnk_dataset *ds)
{
    char path[4096];
    assert_int_equal(cnk_dataset_open(ctx, tu_shared(path, sizeof path, "datasets/fsdd"), NULL, ds), CNK_OK);
    assert_int_equal(ds->n_items, 2500);
}

/* counts[part][class] */
static void count_parts(const cnk_dataset *ds, size_t counts[4][64])
{
    memset(counts, 0, 4 * 64 * sizeof counts[0][0]);
    for (size_t i = 0; i < ds->n_items; i++)
        if (ds->items[i].label >= 0) counts[ds->items[i].part][ds->items[i].label]++;
}

static void assert_near(double got, double want, double tolerance, const char *what)
{
    if (got < want - tolerance || got > want + tolerance)
        fail_msg("%s: %g, expected %g +- %g", what, got, want, tolerance);
}

static void test_default_split_is_stratified_and_seeded(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_dataset ds;
    open_fsdd(&ctx, &ds);
    assert_int_equal(cnk_split_assign(&ctx, &ds, NULL), CNK_OK);
    size_t counts[4][64];
    count_parts(&ds, counts);
    for (int c = 0; c < 10; c++) { /* 250 per class: 150 / 25 / 75 */
        assert_near((double)counts[CNK_PART_TRAIN][c], 150, 1, "train");
        assert_near((double)counts[CNK_PART_VAL][c], 25, 1, "val");
        assert_near((double)counts[CNK_PART_TEST][c], 75, 1, "test");
        assert_int_equal(counts[CNK_PART_NONE][c], 0);
    }
    int *first = malloc(ds.n_items * sizeof *first);
    for (size_t i = 0; i < ds.n_items; i++) first[i] = ds.items[i].part;

    /* Same seed: identical; another seed: a different split with the same proportions. */
    assert_int_equal(cnk_split_assign(&ctx, &ds, NULL), CNK_OK);
    for (size_t i = 0; i < ds.n_items; i++) assert_int_equal(ds.items[i].part, first[i]);
    ctx.seed = 7;
    assert_int_equal(cnk_split_assign(&ctx, &ds, NULL), CNK_OK);
    size_t moved = 0;
    for (size_t i = 0; i < ds.n_items; i++) moved += ds.items[i].part != first[i];
    assert_true(moved > 500); /* two independent 60/10/30 splits agree on ~46% of items */
    count_parts(&ds, counts);
    for (int c = 0; c < 10; c++) assert_near((double)counts[CNK_PART_TEST][c], 75, 1, "test, seed 7");

    /* Other fractions, still exact per class: 250 * 0.2 = 50, 250 * 0.05 = 12.5. */
    cnk_split_options opts;
    cnk_split_options_init(&opts);
    opts.test_fraction = 0.2;
    opts.val_fraction = 0.05;
    assert_int_equal(cnk_split_assign(&ctx, &ds, &opts), CNK_OK);
    count_parts(&ds, counts);
    for (int c = 0; c < 10; c++) {
        assert_near((double)counts[CNK_PART_TEST][c], 50, 1, "test 0.2");
        assert_near((double)counts[CNK_PART_VAL][c], 12.5, 1, "val 0.05");
    }
    free(first);
    cnk_dataset_release(&ds);
}

/* Speaker of an FSDD file name "<digit>_<speaker>_<n>.wav". */
static void speaker_of(const char *name, char *out, size_t cap)
{
    const char *start = strchr(name, '_') + 1;
    const char *end = strchr(start, '_');
    snprintf(out, cap, "%.*s", (int)(end - start), start);
}

static void test_fsdd_held_out_speaker(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_dataset ds;
    open_fsdd(&ctx, &ds);
    cnk_split_options opts;
    cnk_split_options_init(&opts);
    opts.group_by = "^[0-9]+_([a-z]+)_";
    for (uint64_t seed = 1; seed <= 3; seed++) {
        ctx.seed = seed;
        assert_int_equal(cnk_split_assign(&ctx, &ds, &opts), CNK_OK);
        /* 5 speakers of 500 files: 3 train, 1 val, 1 test is the closest whole-group fit to 60/10/30. */
        const char *speakers[5] = {"george", "jackson", "lucas", "nicolas", "theo"};
        int part_of[5] = {0};
        for (size_t i = 0; i < ds.n_items; i++) {
            char speaker[32];
            speaker_of(ds.items[i].name, speaker, sizeof speaker);
            int s = 0;
            while (s < 5 && strcmp(speakers[s], speaker) != 0) s++;
            assert_true(s < 5);
            if (!part_of[s]) part_of[s] = ds.items[i].part;
            assert_int_equal(ds.items[i].part, part_of[s]); /* no speaker straddles */
        }
        int per_part[4] = {0};
        for (int s = 0; s < 5; s++) per_part[part_of[s]]++;
        assert_int_equal(per_part[CNK_PART_TRAIN], 3);
        assert_int_equal(per_part[CNK_PART_VAL], 1);
        assert_int_equal(per_part[CNK_PART_TEST], 1);
        size_t counts[4][64];
        count_parts(&ds, counts);
        for (int c = 0; c < 10; c++) assert_int_equal(counts[CNK_PART_TEST][c], 50); /* a speaker says each digit 50x */
    }
    /* Different seeds hold out different speakers (over a few seeds at least two differ). */
    int held_out[6];
    for (uint64_t seed = 0; seed < 6; seed++) {
        ctx.seed = seed + 10;
        assert_int_equal(cnk_split_assign(&ctx, &ds, &opts), CNK_OK);
        held_out[seed] = -1;
        for (size_t i = 0; i < ds.n_items && held_out[seed] < 0; i++)
            if (ds.items[i].part == CNK_PART_TEST) held_out[seed] = (int)(i % 250) / 50;
    }
    int differ = 0;
    for (int s = 1; s < 6; s++) differ |= held_out[s] != held_out[0];
    assert_true(differ);
    cnk_dataset_release(&ds);
}

static void test_fsdd_test_match_convention(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_dataset ds;
    open_fsdd(&ctx, &ds);
    cnk_split_options opts;
    cnk_split_options_init(&opts);
    opts.test_match = "_[0-4]\\.wav$";
    assert_int_equal(cnk_split_assign(&ctx, &ds, &opts), CNK_OK);
    regex_t re;
    assert_int_equal(regcomp(&re, "_[0-4]\\.wav$", REG_EXTENDED | REG_NOSUB), 0);
    for (size_t i = 0; i < ds.n_items; i++) {
        int is_test = regexec(&re, ds.items[i].name, 0, NULL, 0) == 0;
        assert_int_equal(ds.items[i].part == CNK_PART_TEST, is_test);
    }
    regfree(&re);
    size_t counts[4][64];
    count_parts(&ds, counts);
    for (int c = 0; c < 10; c++) {
        assert_int_equal(counts[CNK_PART_TEST][c], 25); /* 5 speakers x recordings 0-4 */
        assert_near((double)counts[CNK_PART_VAL][c], 22.5, 1, "val = 10% of the rest");
        assert_int_equal(counts[CNK_PART_TRAIN][c] + counts[CNK_PART_VAL][c], 225);
    }
    opts.test_match = "_[0-4]\\.flac$";
    assert_int_equal(cnk_split_assign(&ctx, &ds, &opts), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_error(&ctx), "matches no file name"));
    opts.test_match = "_[0-4\\.wav$";
    assert_int_equal(cnk_split_assign(&ctx, &ds, &opts), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_error(&ctx), "--test-match '_[0-4\\.wav$': "));
    cnk_dataset_release(&ds);
}

/* An in-memory dataset of n items over 3 classes, named "g<group>_<i>.wav" with group sizes 1..7. */
static void make_grouped(cnk_dataset *ds, size_t n, uint64_t seed)
{
    memset(ds, 0, sizeof *ds);
    ds->kind = CNK_INPUT_AUDIO;
    ds->n_classes = 3;
    ds->classes = calloc(3, sizeof *ds->classes);
    for (int c = 0; c < 3; c++) {
        ds->classes[c] = malloc(2);
        ds->classes[c][0] = (char)('a' + c), ds->classes[c][1] = 0;
    }
    ds->items = calloc(n, sizeof *ds->items);
    ds->n_items = ds->cap_items = n;
    cnk_rng rng;
    cnk_rng_seed(&rng, seed, 0);
    size_t group = 0, left_in_group = 0;
    for (size_t i = 0; i < n; i++) {
        if (!left_in_group) left_in_group = 1 + cnk_rng_below(&rng, 7), group++;
        left_in_group--;
        char name[64];
        snprintf(name, sizeof name, "g%zu_%zu.wav", group, i);
        ds->items[i].name = strdup(name);
        snprintf(name, sizeof name, "/data/x/g%zu_%zu.wav", group, i);
        ds->items[i].path = strdup(name);
        ds->items[i].label = (int)cnk_rng_below(&rng, 3); /* a group mixes classes, like a speaker */
    }
}

static void test_groups_never_straddle(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_dataset ds;
    make_grouped(&ds, 3000, 5);
    cnk_split_options opts;
    cnk_split_options_init(&opts);
    opts.group_by = "^g([0-9]+)_";
    assert_int_equal(cnk_split_assign(&ctx, &ds, &opts), CNK_OK);
    for (size_t i = 1; i < ds.n_items; i++) {
        int same_group = strncmp(ds.items[i].name, ds.items[i - 1].name, strcspn(ds.items[i].name, "_") + 1) == 0;
        if (same_group) assert_int_equal(ds.items[i].part, ds.items[i - 1].part);
    }
    size_t counts[4][64], totals[3] = {0};
    count_parts(&ds, counts);
    for (int c = 0; c < 3; c++) totals[c] = counts[1][c] + counts[2][c] + counts[3][c];
    for (int c = 0; c < 3; c++) { /* ~1000 per class; whole groups of <= 7 keep it within a few items */
        assert_near((double)counts[CNK_PART_TRAIN][c], 0.6 * (double)totals[c], 8, "grouped train");
        assert_near((double)counts[CNK_PART_VAL][c], 0.1 * (double)totals[c], 8, "grouped val");
        assert_near((double)counts[CNK_PART_TEST][c], 0.3 * (double)totals[c], 8, "grouped test");
    }
    /* Without the regex the same data splits within one item per class. */
    assert_int_equal(cnk_split_assign(&ctx, &ds, NULL), CNK_OK);
    count_parts(&ds, counts);
    for (int c = 0; c < 3; c++) assert_near((double)counts[CNK_PART_TEST][c], 0.3 * (double)totals[c], 1, "test");

    /* A regex with no capture group groups by the whole match; items it misses are their own group. */
    opts.group_by = "g1[0-9]_";
    assert_int_equal(cnk_split_assign(&ctx, &ds, &opts), CNK_OK);
    opts.group_by = "([unclosed";
    assert_int_equal(cnk_split_assign(&ctx, &ds, &opts), CNK_ERR_ARG);
    assert_non_null(strstr(cnk_error(&ctx), "--group-by '([unclosed': "));
    cnk_split_options_init(&opts);
    opts.test_fraction = 0.95;
    opts.val_fraction = 0.1;
    assert_int_equal(cnk_split_assign(&ctx, &ds, &opts), CNK_ERR_ARG);
    cnk_dataset_release(&ds);
}

static void test_presplit_and_unknown_labels(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_dataset ds;
    make_grouped(&ds, 400, 9);
    ds.presplit = 1;
    for (size_t i = 0; i < ds.n_items; i++) ds.items[i].part = i < 300 ? CNK_PART_TRAIN : CNK_PART_TEST;
    ds.items[0].label = -1; /* e.g. a class the model does not know */
    assert_int_equal(cnk_split_assign(&ctx, &ds, NULL), CNK_OK);
    size_t n_val = 0, n_train = 0;
    for (size_t i = 0; i < ds.n_items; i++) {
        if (i >= 300) assert_int_equal(ds.items[i].part, CNK_PART_TEST); /* kept */
        n_val += ds.items[i].part == CNK_PART_VAL;
        n_train += ds.items[i].part == CNK_PART_TRAIN;
    }
    assert_near((double)n_val, 29.9, 3, "val carved from 299 labelled train items");
    assert_int_equal(n_train + n_val, 300); /* item 0 keeps its part from the folder */
    /* With a val part already, nothing moves. */
    int before[400];
    for (size_t i = 0; i < ds.n_items; i++) before[i] = ds.items[i].part;
    assert_int_equal(cnk_split_assign(&ctx, &ds, NULL), CNK_OK);
    for (size_t i = 0; i < ds.n_items; i++) assert_int_equal(ds.items[i].part, before[i]);

    ds.presplit = 0;
    assert_int_equal(cnk_split_assign(&ctx, &ds, NULL), CNK_OK);
    assert_int_equal(ds.items[0].part, CNK_PART_NONE); /* unlabelled items take no part */
    for (size_t i = 0; i < ds.n_items; i++) ds.items[i].label = -1;
    assert_int_equal(cnk_split_assign(&ctx, &ds, NULL), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "no item to train on"));
    cnk_dataset_release(&ds);
}

static void test_split_file_round_trip(void **state)
{
    (void)state;
    char dir[4096], path[4200], model[4200];
    tu_tmpdir(dir, sizeof dir, "split_file");
    snprintf(model, sizeof model, "%s/m.cnk", dir);
    cnk_ctx ctx;
    tu_ctx(&ctx);
    assert_int_equal(cnk_split_file_path(&ctx, model, path, sizeof path), CNK_OK);
    assert_non_null(strstr(path, "/m.cnk.split.csv"));
    cnk_dataset ds;
    make_grouped(&ds, 200, 3);
    free(ds.items[7].path);
    ds.items[7].path = strdup("/data/with,comma \"quoted\".wav"); /* survives CSV quoting */
    assert_int_equal(cnk_split_assign(&ctx, &ds, NULL), CNK_OK);
    assert_int_equal(cnk_split_write(&ctx, path, &ds), CNK_OK);
    int parts[200];
    for (size_t i = 0; i < 200; i++) parts[i] = ds.items[i].part, ds.items[i].part = CNK_PART_NONE;
    assert_int_equal(cnk_split_read(&ctx, path, &ds), CNK_OK);
    for (size_t i = 0; i < 200; i++) assert_int_equal(ds.items[i].part, parts[i]);

    unsigned char *text;
    size_t size;
    assert_int_equal(cnk_read_file(&ctx, path, 0, &text, &size), CNK_OK);
    assert_memory_equal(text, "path,split\n/data/x/g1_0.wav,", 28);
    assert_non_null(strstr((char *)text, "\n\"/data/with,comma \"\"quoted\"\".wav\","));
    free(text);

    /* An item the file does not know is an error; a file row for a vanished item is not. */
    free(ds.items[3].path);
    ds.items[3].path = strdup("/data/new.wav");
    assert_int_equal(cnk_split_read(&ctx, path, &ds), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "no split for /data/new.wav"));
    ds.items[3].label = -1; /* unlabelled: needs no split */
    assert_int_equal(cnk_split_read(&ctx, path, &ds), CNK_OK);

    const char *bad = "path,split\n/data/x/g1_0.wav,holdout\n";
    assert_int_equal(cnk_write_file_atomic(&ctx, path, bad, strlen(bad)), CNK_OK);
    assert_int_equal(cnk_split_read(&ctx, path, &ds), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), ".split.csv:2: unknown split 'holdout'"));
    cnk_dataset_release(&ds);

    /* CSV rows are named by row index. */
    char csv_path[4096];
    tu_shared(csv_path, sizeof csv_path, "datasets/gtzan-mini/features_30_sec.csv");
    assert_int_equal(cnk_dataset_open(&ctx, csv_path, NULL, &ds), CNK_OK);
    assert_int_equal(cnk_split_assign(&ctx, &ds, NULL), CNK_OK);
    assert_int_equal(cnk_split_write(&ctx, path, &ds), CNK_OK);
    int csv_parts[1000];
    for (size_t i = 0; i < 1000; i++) csv_parts[i] = ds.items[i].part, ds.items[i].part = CNK_PART_NONE;
    assert_int_equal(cnk_split_read(&ctx, path, &ds), CNK_OK);
    for (size_t i = 0; i < 1000; i++) assert_int_equal(ds.items[i].part, csv_parts[i]);
    size_t counts[4][64];
    count_parts(&ds, counts);
    for (int c = 0; c < 10; c++) assert_int_equal(counts[CNK_PART_TEST][c], 30);
    assert_int_equal(cnk_read_file(&ctx, path, 0, &text, &size), CNK_OK);
    assert_memory_equal(text, "path,split\nrow:0,", 17);
    free(text);
    cnk_dataset_release(&ds);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_split_is_stratified_and_seeded),
        cmocka_unit_test(test_fsdd_held_out_speaker),
        cmocka_unit_test(test_fsdd_test_match_convention),
        cmocka_unit_test(test_groups_never_straddle),
        cmocka_unit_test(test_presplit_and_unknown_labels),
        cmocka_unit_test(test_split_file_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
