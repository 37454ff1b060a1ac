/* Tests for pipeline/dataset: class folders (real FSDD and animals3, and a messy made-up one), pre-split and
 * AFHQ layouts, CSV tables (the real GTZAN features, pixel rows, bad cells), class matching.
 * test-libs: core pipeline */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/fsutil.h"
#include "pipeline/dataset.h"

/* Collects warnings so tests can check what was skipped and why. */
typedef struct warnings {
    char lines[32][512];
    int count;
} warnings;

static void collect_warning(void *user, const char *message)
{
    warnings *w = user;
    if (w->count < 32) snprintf(w->lines[w->count], sizeof w->lines[0], "%s", message);
    w->count++;
}

static int has_warning(const warnings *w, const char *text)
{
    for (int i = 0; i < w->count && i < 32; i++)
        if (strstr(w->lines[i], text)) return 1;
    return 0;
}

static void touch(const char *dir, const char *rel, const char *content)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    char parent[4200];
    snprintf(parent, sizeof parent, "%s", path);
    *strrchr(parent, '/') = '\0';
    cnk_ctx ctx;
    tu_ctx(&ctx);
    assert_int_equal(cnk_mkdirs(&ctx, parent), CNK_OK);
    assert_int_equal(cnk_write_file_atomic(&ctx, path, content, strlen(content)), CNK_OK);
}

static void test_kind_of_path(void **state)
{
    (void)state;
    assert_int_equal(cnk_input_kind_of_path("a/b.WAV"), CNK_INPUT_AUDIO);
    assert_int_equal(cnk_input_kind_of_path("jazz.00054.au"), CNK_INPUT_AUDIO);
    assert_int_equal(cnk_input_kind_of_path("x.flac"), CNK_INPUT_AUDIO);
    assert_int_equal(cnk_input_kind_of_path("x.mp3"), CNK_INPUT_AUDIO);
    assert_int_equal(cnk_input_kind_of_path("cat.JPEG"), CNK_INPUT_IMAGE);
    assert_int_equal(cnk_input_kind_of_path("p.pgm"), CNK_INPUT_IMAGE);
    assert_int_equal(cnk_input_kind_of_path("s.npy"), CNK_INPUT_NPY);
    assert_int_equal(cnk_input_kind_of_path("f.csv"), CNK_INPUT_CSV);
    assert_int_equal(cnk_input_kind_of_path("d/train-images-idx3-ubyte.gz"), CNK_INPUT_IDX);
    assert_int_equal(cnk_input_kind_of_path("README.txt"), CNK_INPUT_AUTO);
    assert_int_equal(cnk_input_kind_of_path("noext"), CNK_INPUT_AUTO);
    assert_int_equal(cnk_input_kind_of_path("dir.wav/noext"), CNK_INPUT_AUTO);
    assert_string_equal(cnk_input_kind_name(CNK_INPUT_IMAGE), "image");
}

static void test_real_fsdd_and_animals(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    cnk_dataset ds;
    assert_int_equal(cnk_dataset_open(&ctx, tu_shared(path, sizeof path, "datasets/fsdd"), NULL, &ds), CNK_OK);
    assert_int_equal(ds.kind, CNK_INPUT_AUDIO);
    assert_int_equal(ds.n_classes, 10);
    assert_int_equal(ds.n_items, 2500);
    assert_false(ds.presplit);
    for (int k = 0; k < 10; k++) {
        char name[4] = {(char)('0' + k), 0};
        assert_string_equal(ds.classes[k], name);
    }
    size_t counts[10];
    cnk_dataset_class_counts(&ds, CNK_PART_NONE, counts);
    for (int k = 0; k < 10; k++) assert_int_equal(counts[k], 250);
    assert_string_equal(ds.items[0].name, "0_george_0.wav"); /* files bytewise: _0, _1, _10, ... */
    assert_string_equal(ds.items[2].name, "0_george_10.wav");
    assert_non_null(strstr(ds.items[0].path, "fsdd/0/0_george_0.wav"));
    assert_int_equal(ds.items[2499].label, 9);
    assert_int_equal(ds.items[0].part, CNK_PART_NONE);
    assert_int_equal(ctx.n_warnings, 0);
    cnk_dataset_release(&ds);

    assert_int_equal(cnk_dataset_open(&ctx, tu_shared(path, sizeof path, "datasets/animals3"), NULL, &ds), CNK_OK);
    assert_int_equal(ds.kind, CNK_INPUT_IMAGE);
    assert_int_equal(ds.n_classes, 3);
    assert_string_equal(ds.classes[0], "cats");
    assert_string_equal(ds.classes[1], "dogs");
    assert_string_equal(ds.classes[2], "panda");
    size_t animal_counts[3];
    cnk_dataset_class_counts(&ds, CNK_PART_NONE, animal_counts);
    for (int k = 0; k < 3; k++) assert_int_equal(animal_counts[k], 600);
    cnk_dataset_release(&ds);
}

static void test_messy_folder_skips_with_warnings(void **state)
{
    (void)state;
    char dir[4096];
    tu_tmpdir(dir, sizeof dir, "dataset_messy");
    touch(dir, "rock/a.wav", "x");
    touch(dir, "rock/deeper/b.flac", "x"); /* GTZAN-style nesting is fine */
    touch(dir, "rock/README.txt", "notes");
    touch(dir, "rock/cover.png", "x");
    touch(dir, "rock/.DS_Store", "x"); /* hidden: ignored silently */
    touch(dir, "jazz/c.au", "x");
    touch(dir, "Blues/d.mp3", "x");
    touch(dir, "notes/only.txt", "x");
    touch(dir, "loose.wav", "x");
    touch(dir, "README.md", "about the data"); /* documentation, not a skipped input */
    touch(dir, "metadata.csv", "file,label\n");
    cnk_ctx ctx;
    tu_ctx(&ctx);
    warnings w = {0};
    ctx.warn = collect_warning;
    ctx.user = &w;
    cnk_dataset ds;
    assert_int_equal(cnk_dataset_load_folder(&ctx, dir, NULL, &ds), CNK_OK);
    assert_int_equal(ds.kind, CNK_INPUT_AUDIO);
    assert_int_equal(ds.n_classes, 3); /* "notes" has no audio */
    assert_string_equal(ds.classes[0], "Blues"); /* bytewise: uppercase first */
    assert_string_equal(ds.classes[1], "jazz");
    assert_string_equal(ds.classes[2], "rock");
    assert_int_equal(ds.n_items, 4);
    assert_string_equal(ds.items[2].name, "a.wav");
    assert_int_equal(ds.items[2].label, 2);
    assert_string_equal(ds.items[3].name, "b.flac");
    assert_int_equal(w.count, 5);
    assert_int_equal(ctx.n_warnings, 5);
    assert_true(has_warning(&w, "rock/README.txt: not an audio file, skipped"));
    assert_true(has_warning(&w, "rock/cover.png: not an audio file, skipped"));
    assert_true(has_warning(&w, "notes/only.txt: not an audio file, skipped"));
    assert_true(has_warning(&w, "/notes: no audio files, class skipped"));
    assert_true(has_warning(&w, "loose.wav: not inside a class folder, skipped"));
    cnk_dataset_release(&ds);

    /* Forcing images keeps only the picture. */
    cnk_dataset_options opts;
    cnk_dataset_options_init(&opts);
    opts.kind = CNK_INPUT_IMAGE;
    assert_int_equal(cnk_dataset_load_folder(&ctx, dir, &opts, &ds), CNK_OK);
    assert_int_equal(ds.n_items, 1);
    assert_int_equal(ds.n_classes, 1);
    assert_string_equal(ds.classes[0], "rock");
    cnk_dataset_release(&ds);

    /* No class folders at all, or no such folder. */
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/jazz", dir);
    assert_int_equal(cnk_dataset_open(&ctx, sub, NULL, &ds), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "no class subfolders"));
    cnk_dataset_release(&ds);
    snprintf(sub, sizeof sub, "%s/absent", dir);
    assert_int_equal(cnk_dataset_open(&ctx, sub, NULL, &ds), CNK_ERR_IO);
    assert_non_null(strstr(cnk_error(&ctx), "absent: no such file or folder"));
    cnk_dataset_release(&ds);
    tu_rmtree(dir);
}

static void test_presplit_and_afhq_layouts(void **state)
{
    (void)state;
    char dir[4096];
    tu_tmpdir(dir, sizeof dir, "dataset_presplit");
    const char *files[] = {"train/cat/1.jpg", "train/cat/2.jpg", "train/dog/3.png", "val/cat/4.jpg",
                           "test/dog/5.jpg", "test/cat/6.jpg", "test/fox/7.jpg", "test/fox/8.jpg"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) touch(dir, files[i], "x");
    cnk_ctx ctx;
    tu_ctx(&ctx);
    warnings w = {0};
    ctx.warn = collect_warning;
    ctx.user = &w;
    cnk_dataset ds;
    assert_int_equal(cnk_dataset_open(&ctx, dir, NULL, &ds), CNK_OK); /* found train/ val/ test/ */
    assert_true(ds.presplit);
    assert_int_equal(ds.kind, CNK_INPUT_IMAGE);
    assert_int_equal(ds.n_classes, 2);
    assert_int_equal(ds.n_items, 6);
    const int want_parts[] = {CNK_PART_TRAIN, CNK_PART_TRAIN, CNK_PART_TRAIN, CNK_PART_VAL, CNK_PART_TEST,
                              CNK_PART_TEST};
    const int want_labels[] = {0, 0, 1, 0, 0, 1};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(ds.items[i].part, want_parts[i]);
        assert_int_equal(ds.items[i].label, want_labels[i]);
    }
    assert_true(has_warning(&w, "test/fox: class not in the training folder, 2 files skipped"));
    cnk_dataset_release(&ds);

    /* Explicit folders (CLI --train/--test) without val. */
    cnk_dataset_options opts;
    cnk_dataset_options_init(&opts);
    char train[4200], test[4200];
    snprintf(train, sizeof train, "%s/train", dir);
    snprintf(test, sizeof test, "%s/test", dir);
    opts.train_dir = train;
    opts.test_dir = test;
    assert_int_equal(cnk_dataset_open(&ctx, NULL, &opts, &ds), CNK_OK);
    assert_int_equal(ds.n_items, 5);
    assert_int_equal(ds.items[3].part, CNK_PART_TEST);
    cnk_dataset_release(&ds);
    opts.test_dir = NULL;
    assert_int_equal(cnk_dataset_open(&ctx, NULL, &opts, &ds), CNK_ERR_ARG);
    cnk_dataset_release(&ds);

    /* AFHQ: only train/ and val/: val is the held-out side. */
    tu_rmtree(test);
    assert_int_equal(cnk_dataset_open(&ctx, dir, NULL, &ds), CNK_OK);
    assert_int_equal(ds.n_items, 4);
    assert_int_equal(ds.items[3].part, CNK_PART_TEST);
    cnk_dataset_release(&ds);
    tu_rmtree(dir);
}

static void test_real_gtzan_csv(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    cnk_dataset ds;
    tu_shared(path, sizeof path, "datasets/gtzan-mini/features_30_sec.csv");
    assert_int_equal(cnk_dataset_open(&ctx, path, NULL, &ds), CNK_OK);
    assert_int_equal(ds.kind, CNK_INPUT_CSV);
    assert_int_equal(ds.n_items, 1000);
    assert_int_equal(ds.n_classes, 10);
    assert_string_equal(ds.classes[0], "blues");
    assert_string_equal(ds.classes[9], "rock");
    assert_int_equal(ds.item_size, 58);
    assert_int_equal(ds.item_ndim, 1);
    assert_string_equal(ds.skipped_columns, "filename");
    assert_string_equal(ds.feature_names[0], "length");
    assert_string_equal(ds.feature_names[57], "mfcc20_var");
    assert_string_equal(ds.items[0].name, "blues.00000.au");
    assert_null(ds.items[0].path);
    assert_int_equal(ds.items[999].label, 9);
    float v[58];
    assert_int_equal(cnk_dataset_item_values(&ctx, &ds, 0, v), CNK_OK);
    assert_true(v[0] == 661794.0f);
    assert_true(v[1] == 0.35008811950683594f);
    assert_int_equal(cnk_dataset_item_values(&ctx, &ds, 999, v), CNK_OK);
    assert_true(v[1] == 0.3584013283252716f);
    cnk_dataset_release(&ds);

    /* Without skipping text columns, `filename` is a bad number on the first data line. */
    cnk_dataset_options opts;
    cnk_dataset_options_init(&opts);
    opts.skip_text_columns = 0;
    assert_int_equal(cnk_dataset_open(&ctx, path, &opts, &ds), CNK_ERR_INPUT);
    assert_non_null(strstr(cnk_error(&ctx), "features_30_sec.csv:2: column 'filename': 'blues.00000.au' is not"));
    cnk_dataset_release(&ds);
    opts.skip_columns = "filename,length";
    assert_int_equal(cnk_dataset_open(&ctx, path, &opts, &ds), CNK_OK);
    assert_int_equal(ds.item_size, 57);
    assert_string_equal(ds.skipped_columns, "filename,length");
    cnk_dataset_release(&ds);
}

static int load_csv_text(cnk_ctx *ctx, const char *dir, const char *text, const cnk_dataset_options *opts,
                         cnk_dataset *ds)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/t.csv", dir);
    assert_int_equal(cnk_write_file_atomic(ctx, path, text, strlen(text)), CNK_OK);
    return cnk_dataset_load_csv(ctx, path, opts, ds);
}

static void expect_csv_error(const char *dir, const char *text, const cnk_dataset_options *opts, const char *msg)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_dataset ds;
    assert_int_not_equal(load_csv_text(&ctx, dir, text, opts, &ds), CNK_OK);
    if (!strstr(cnk_error(&ctx), msg)) fail_msg("'%s' lacks '%s'", cnk_error(&ctx), msg);
    cnk_dataset_release(&ds);
}

static void test_csv_pixels_and_errors(void **state)
{
    (void)state;
    char dir[4096];
    tu_tmpdir(dir, sizeof dir, "dataset_csv");
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_dataset_options opts;
    cnk_dataset_options_init(&opts);
    cnk_dataset ds;

    /* Sign-Language-MNIST style: label first, then pixels; numeric labels are class names too. */
    opts.image_width = 3;
    opts.image_height = 2;
    const char *grey = "label,p1,p2,p3,p4,p5,p6\n10,1,2,3,4,5,6\n2,6,5,4,3,2,1\n10,0,0,0,0,0,255\n";
    assert_int_equal(load_csv_text(&ctx, dir, grey, &opts, &ds), CNK_OK);
    assert_int_equal(ds.item_ndim, 3);
    assert_true(ds.item_shape[0] == 1 && ds.item_shape[1] == 2 && ds.item_shape[2] == 3);
    assert_int_equal(ds.n_classes, 2);
    assert_string_equal(ds.classes[0], "10"); /* bytewise */
    assert_string_equal(ds.classes[1], "2");
    assert_int_equal(ds.items[1].label, 1);
    assert_string_equal(ds.items[1].name, "row1");
    assert_null(ds.feature_names);
    float v[18];
    assert_int_equal(cnk_dataset_item_values(&ctx, &ds, 2, v), CNK_OK);
    assert_true(v[5] == 255.0f);
    cnk_dataset_release(&ds);

    /* 3 channels given as interleaved RGB become planar CHW. */
    opts.image_width = 2;
    opts.image_height = 1;
    const char *rgb = "r0,g0,b0,r1,g1,b1,label\n1,2,3,4,5,6,x\n";
    assert_int_equal(load_csv_text(&ctx, dir, rgb, &opts, &ds), CNK_OK);
    assert_true(ds.item_shape[0] == 3 && ds.item_shape[1] == 1 && ds.item_shape[2] == 2);
    assert_int_equal(cnk_dataset_item_values(&ctx, &ds, 0, v), CNK_OK);
    const float planar[6] = {1, 4, 2, 5, 3, 6};
    for (int i = 0; i < 6; i++) assert_true(v[i] == planar[i]);
    cnk_dataset_release(&ds);
    expect_csv_error(dir, "a,b,c,label\n1,2,3,x\n", &opts, "t.csv: 3 numeric columns, not 2x1 (or 3x2x1) pixels");

    cnk_dataset_options_init(&opts);
    expect_csv_error(dir, "f1,f2,label\n1,2,a\n3,x,b\n4,5,c\n", &opts, "t.csv:3: column 'f2': 'x' is not a number");
    expect_csv_error(dir, "f1,f2,label\n1,2,a\n3,,b\n", &opts, "t.csv:3: column 'f2': '' is empty");
    expect_csv_error(dir, "f1,f2,label\n1,2,a\n3,1e400,b\n", &opts, "t.csv:3: column 'f2': '1e400' is out of range");
    expect_csv_error(dir, "f1,f2,label\n1,2,a\n3,4\n", &opts, "t.csv:3: 2 fields, but the header has 3");
    expect_csv_error(dir, "f1,f2,label\n", &opts, "t.csv: a header but no data rows");
    expect_csv_error(dir, "f1,f2,class\n1,2,a\n", &opts, "t.csv:1: no column 'label' in the header");
    expect_csv_error(dir, "f1,f2,label\n1,2,\n", &opts, "t.csv:2: empty label");
    expect_csv_error(dir, "name,label\nx,a\ny,b\n", &opts, "t.csv:1: no numeric feature columns");
    expect_csv_error(dir, "f1,label,f1\n1,a,2\n", &opts, "t.csv:1: duplicate column name 'f1'");
    opts.skip_columns = "nope";
    expect_csv_error(dir, "f1,label\n1,a\n", &opts, "t.csv:1: no column 'nope' to skip");
    opts.skip_columns = NULL;
    opts.label_column = "class";
    assert_int_equal(load_csv_text(&ctx, dir, "id,f1,class\nq,1.5,b\nr,2.5,a\n", &opts, &ds), CNK_OK);
    assert_string_equal(ds.items[1].name, "r");
    assert_int_equal(ds.items[1].label, 0);
    cnk_dataset_release(&ds);
    tu_rmtree(dir);
}

static void test_match_classes(void **state)
{
    (void)state;
    char dir[4096];
    tu_tmpdir(dir, sizeof dir, "dataset_match");
    touch(dir, "a/1.npy", "x");
    touch(dir, "b/2.npy", "x");
    touch(dir, "c/3.npy", "x");
    touch(dir, "c/4.npy", "x");
    cnk_ctx ctx;
    tu_ctx(&ctx);
    warnings w = {0};
    ctx.warn = collect_warning;
    ctx.user = &w;
    cnk_dataset ds;
    assert_int_equal(cnk_dataset_open(&ctx, dir, NULL, &ds), CNK_OK);
    assert_int_equal(ds.kind, CNK_INPUT_NPY);
    const char *model_classes[] = {"b", "c", "d"};
    assert_int_equal(cnk_dataset_match_classes(&ctx, &ds, model_classes, 3), CNK_OK);
    assert_int_equal(ds.n_classes, 3);
    assert_string_equal(ds.classes[2], "d");
    assert_int_equal(ds.items[0].label, -1);
    assert_int_equal(ds.items[1].label, 0);
    assert_int_equal(ds.items[3].label, 1);
    assert_int_equal(w.count, 1);
    assert_true(has_warning(&w, "class 'a' (1 items) is not one of the model's classes, skipped"));
    assert_int_equal(cnk_dataset_class_index(&ds, "c"), 1);
    assert_int_equal(cnk_dataset_class_index(&ds, "a"), -1);
    float v[1];
    assert_int_equal(cnk_dataset_item_values(&ctx, &ds, 0, v), CNK_ERR_ARG); /* files have no values */
    cnk_dataset_release(&ds);
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_of_path),
        cmocka_unit_test(test_real_fsdd_and_animals),
        cmocka_unit_test(test_messy_folder_skips_with_warnings),
        cmocka_unit_test(test_presplit_and_afhq_layouts),
        cmocka_unit_test(test_real_gtzan_csv),
        cmocka_unit_test(test_csv_pixels_and_errors),
        cmocka_unit_test(test_match_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
