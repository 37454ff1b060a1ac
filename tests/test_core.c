/* Tests for core/: context errors, the RNG, .npy files (against numpy's own), atomic writes, folder listing.
 * test-libs: core */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/fsutil.h"
#include "core/npy.h"
#include "core/parse.h"
#include "core/rng.h"

static void test_fail_keeps_one_line(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    int rc = cnk_fail(&ctx, CNK_ERR_INPUT, "%s: bad\nthing", "a.wav");
    assert_int_equal(rc, CNK_ERR_INPUT);
    assert_int_equal(ctx.status, CNK_ERR_INPUT);
    assert_string_equal(cnk_error(&ctx), "a.wav: bad thing");
    cnk_clear_error(&ctx);
    assert_string_equal(cnk_error(&ctx), "");
}

static void test_rng_is_deterministic_and_uniform(void **state)
{
    (void)state;
    cnk_rng a, b, c;
    cnk_rng_seed(&a, 7, 0);
    cnk_rng_seed(&b, 7, 0);
    cnk_rng_seed(&c, 7, 1);
    int same_stream_differs = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = cnk_rng_u64(&a);
        assert_true(x == cnk_rng_u64(&b));
        if (x != cnk_rng_u64(&c)) same_stream_differs = 1;
    }
    assert_true(same_stream_differs);
    int counts[10] = {0};
    double sum = 0, sum2 = 0;
    for (int i = 0; i < 100000; i++) {
        counts[cnk_rng_below(&a, 10)]++;
        double z = cnk_rng_normal(&a);
        sum += z;
        sum2 += z * z;
    }
    for (int k = 0; k < 10; k++) assert_in_range(counts[k], 9500, 10500);
    assert_true(sum / 100000 > -0.02 && sum / 100000 < 0.02);
    assert_true(sum2 / 100000 > 0.97 && sum2 / 100000 < 1.03);
    int items[50];
    for (int i = 0; i < 50; i++) items[i] = i;
    cnk_rng_shuffle(&a, items, 50);
    int seen[50] = {0};
    for (int i = 0; i < 50; i++) seen[items[i]]++;
    for (int i = 0; i < 50; i++) assert_int_equal(seen[i], 1);
}

static void test_npy_reads_numpy_files(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    cnk_array a;
    assert_int_equal(cnk_npy_read(&ctx, tu_fixture(path, sizeof path, "core/f32_3x4.npy"), &a), CNK_OK);
    assert_int_equal(a.ndim, 2);
    assert_int_equal(a.shape[0], 3);
    assert_int_equal(a.shape[1], 4);
    for (int i = 0; i < 12; i++) assert_float_equal(a.data[i], (i - 5.5f) / 3.0f, 1e-6);
    cnk_array_release(&a);
    assert_int_equal(cnk_npy_read(&ctx, tu_fixture(path, sizeof path, "core/f64_5.npy"), &a), CNK_OK);
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.shape[0], 5);
    assert_float_equal(a.data[4], 1.0f, 1e-7);
    cnk_array_release(&a);
}

static void test_npy_write_matches_numpy_bytes(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096], path[4200], ref[4096];
    tu_tmpdir(dir, sizeof dir, "core-npy");
    snprintf(path, sizeof path, "%s/x.npy", dir);
    float data[12];
    for (int i = 0; i < 12; i++) data[i] = (float)i;
    size_t shape[3] = {2, 3, 2};
    assert_int_equal(cnk_npy_write(&ctx, path, data, 3, shape), CNK_OK);
    /* numpy wrote the same array with np.save: the files must be byte-identical. */
    assert_int_equal(tu_system("cmp -s '%s' '%s'", path, tu_fixture(ref, sizeof ref, "core/f32_2x3x2.npy")), 0);
    tu_rmtree(dir);
}

static void test_npy_rejects_garbage(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_array a;
    const unsigned char junk[] = "\x93NUMPY\x01\x00\x39\x00{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }";
    assert_int_equal(cnk_npy_parse(&ctx, "junk.npy", junk, sizeof junk - 1, &a), CNK_ERR_UNSUPPORTED);
    assert_non_null(strstr(cnk_error(&ctx), "junk.npy"));
    assert_int_equal(cnk_npy_parse(&ctx, "short.npy", junk, 8, &a), CNK_ERR_INPUT);
    const unsigned char huge[] =
        "\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, 'shape': (99999999, 99999), }";
    assert_int_equal(cnk_npy_parse(&ctx, "huge.npy", huge, sizeof huge - 1, &a), CNK_ERR_INPUT);
}

static void test_atomic_write_leaves_no_partial_file(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "core-atomic");
    snprintf(path, sizeof path, "%s/out.bin", dir);
    assert_int_equal(cnk_write_file_atomic(&ctx, path, "old", 3), CNK_OK);
    cnk_afile af;
    assert_int_equal(cnk_afile_open(&ctx, &af, path), CNK_OK);
    fputs("half-written", af.fp);
    cnk_afile_abort(&af);
    unsigned char *data;
    size_t size;
    assert_int_equal(cnk_read_file(&ctx, path, 0, &data, &size), CNK_OK);
    assert_int_equal(size, 3);
    assert_memory_equal(data, "old", 3);
    free(data);
    /* No temporary file remains in the directory. */
    cnk_pathlist files;
    assert_int_equal(cnk_list_files(&ctx, dir, 0, &files), CNK_OK);
    assert_int_equal(files.count, 1);
    cnk_pathlist_release(&files);
    char missing[4300];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x", dir);
    assert_int_equal(cnk_write_file_atomic(&ctx, missing, "x", 1), CNK_ERR_IO);
    assert_non_null(strstr(cnk_error(&ctx), missing));
    tu_rmtree(dir);
}

static void test_listing_is_sorted_and_recursive(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096];
    tu_tmpdir(dir, sizeof dir, "core-list");
    tu_system("mkdir -p '%s/b' '%s/a/deep' '%s/.hidden' && touch '%s/b/2.wav' '%s/a/deep/1.wav' '%s/a/Z.wav' "
              "'%s/.hidden/x' '%s/top.txt'",
              dir, dir, dir, dir, dir, dir, dir, dir);
    cnk_pathlist files;
    assert_int_equal(cnk_list_files(&ctx, dir, 1, &files), CNK_OK);
    assert_int_equal(files.count, 4);
    assert_non_null(strstr(files.paths[0], "/a/Z.wav"));
    assert_non_null(strstr(files.paths[1], "/a/deep/1.wav"));
    assert_non_null(strstr(files.paths[2], "/b/2.wav"));
    assert_non_null(strstr(files.paths[3], "/top.txt"));
    cnk_pathlist_release(&files);
    cnk_pathlist subdirs;
    assert_int_equal(cnk_list_subdirs(&ctx, dir, &subdirs), CNK_OK);
    assert_int_equal(subdirs.count, 2);
    assert_string_equal(subdirs.paths[0], "a");
    assert_string_equal(subdirs.paths[1], "b");
    cnk_pathlist_release(&subdirs);
    assert_int_equal(cnk_list_files(&ctx, "/no/such/dir", 1, &files), CNK_ERR_IO);
    assert_true(cnk_path_has_ext("x/y.WAV", "wav"));
    assert_string_equal(cnk_path_ext("x.y/z"), "");
    assert_string_equal(cnk_path_base("a/b/c.au"), "c.au");
    tu_rmtree(dir);
}

/* Strict parsing: one number, in range, nothing around it; *out untouched on failure. */
static void test_parse_strict(void **state)
{
    (void)state;
    long n = 7;
    double x = 7;
    assert_int_equal(cnk_parse_long("42", 0, 100, &n), 0);
    assert_int_equal(n, 42);
    assert_int_equal(cnk_parse_long("-3", -5, 5, &n), 0);
    assert_int_equal(n, -3);
    static const char *const bad_longs[] = {"", " 5", "5 ", "5x", "0x10", "4.0", "101", "-1", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_longs / sizeof bad_longs[0]; i++) {
        n = 7;
        assert_int_equal(cnk_parse_long(bad_longs[i], 0, 100, &n), -1);
        assert_int_equal(n, 7);
    }
    assert_int_equal(cnk_parse_long(NULL, 0, 100, &n), -1);
    assert_int_equal(cnk_parse_double("1e-3", 0, 1, &x), 0);
    assert_true(x == 1e-3);
    assert_int_equal(cnk_parse_double("0.95", 0, 0.95, &x), 0);
    static const char *const bad_doubles[] = {"", " 0.5", "nan", "inf", "-inf", "1e400", "0.5.", "1,5", "0.96", "-0.1"};
    for (size_t i = 0; i < sizeof bad_doubles / sizeof bad_doubles[0]; i++) {
        x = 7;
        assert_int_equal(cnk_parse_double(bad_doubles[i], 0, 0.95, &x), -1);
        assert_true(x == 7);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_keeps_one_line),
        cmocka_unit_test(test_parse_strict),
        cmocka_unit_test(test_rng_is_deterministic_and_uniform),
        cmocka_unit_test(test_npy_reads_numpy_files),
        cmocka_unit_test(test_npy_write_matches_numpy_bytes),
        cmocka_unit_test(test_npy_rejects_garbage),
        cmocka_unit_test(test_atomic_write_leaves_no_partial_file),
        cmocka_unit_test(test_listing_is_sorted_and_recursive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
