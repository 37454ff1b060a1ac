/* Tests for pipeline/demo_data: clips are deterministic, in range, differ between classes in the way the
 * set promises (rhythm and timbre), and the written WAV tree decodes back to the rendered samples.
 * test-libs: core features pipeline */
#include "testutil.h"

#include <math.h>
#include <sndfile.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "pipeline/demo_data.h"

static void test_classes_sorted(void **state)
{
    (void)state;
    assert_int_equal(cnk_demo_n_classes(), 4);
    for (int k = 1; k < cnk_demo_n_classes(); k++)
        assert_true(strcmp(cnk_demo_class_name(k - 1), cnk_demo_class_name(k)) < 0);
    assert_null(cnk_demo_class_name(4));
}

/* Fraction of signal energy above 2 kHz, via the first difference as a crude high-pass: the ratio of the
 * difference's energy to the signal's grows with frequency content. */
static double brightness(const float *x, size_t n)
{
    double e = 0, d = 0;
    for (size_t i = 1; i < n; i++) {
        e += (double)x[i] * x[i];
        d += (double)(x[i] - x[i - 1]) * (x[i] - x[i - 1]);
    }
    return d / (e + 1e-12);
}

static void test_render_deterministic_and_distinct(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_demo_params p;
    cnk_demo_default_params(&p);
    size_t n = cnk_demo_clip_length(&p);
    assert_int_equal(n, 66150);
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    double bright[4] = {0};
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < 5; i++) {
            assert_int_equal(cnk_demo_render(&ctx, &p, k, i, a), CNK_OK);
            assert_int_equal(cnk_demo_render(&ctx, &p, k, i, b), CNK_OK);
            assert_memory_equal(a, b, n * sizeof *a);
            float peak = 0;
            for (size_t j = 0; j < n; j++) peak = fmaxf(peak, fabsf(a[j]));
            assert_true(peak >= 0.29f && peak <= 0.951f);
            bright[k] += brightness(a, n) / 5;
        }
        /* clips of one class differ from each other */
        assert_int_equal(cnk_demo_render(&ctx, &p, k, 6, b), CNK_OK);
        assert_memory_not_equal(a, b, n * sizeof *a);
    }
    /* timbre (measured 0.18, 0.06, 2.8, 0.03): noise bursts are brightest by far, chirps next, the low kicks
     * and the plucked tones darkest */
    assert_true(bright[2] > 5 * bright[0]);
    assert_true(bright[0] > 2 * bright[1] && bright[0] > 2 * bright[3]);
    /* a different seed gives different clips */
    p.seed = 7;
    assert_int_equal(cnk_demo_render(&ctx, &p, 0, 0, b), CNK_OK);
    assert_memory_not_equal(a, b, n * sizeof *a);
    assert_int_equal(cnk_demo_render(&ctx, &p, 4, 0, b), CNK_ERR_ARG);
    free(a);
    free(b);
}

static void test_write_tree(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char tmp[4096], dir[4200], wav[4400];
    tu_tmpdir(tmp, sizeof tmp, "demo");
    snprintf(dir, sizeof dir, "%s/set", tmp);
    cnk_demo_params p;
    cnk_demo_default_params(&p);
    p.clips_per_class = 3;
    p.seconds = 0.5;
    p.sample_rate = 8000;
    assert_int_equal(cnk_demo_write(&ctx, dir, &p), CNK_OK);
    cnk_pathlist files = {0};
    assert_int_equal(cnk_list_files(&ctx, dir, 1, &files), CNK_OK);
    assert_int_equal(files.count, 12);
    snprintf(wav, sizeof wav, "%s/pluck/pluck_002.wav", dir);
    assert_string_equal(files.paths[11], wav);
    cnk_pathlist_release(&files);
    /* the file holds the rendered clip at 16-bit precision */
    SF_INFO info = {0};
    SNDFILE *sf = sf_open(wav, SFM_READ, &info);
    assert_non_null(sf);
    assert_int_equal(info.samplerate, 8000);
    assert_int_equal(info.channels, 1);
    assert_int_equal(info.frames, 4000);
    float got[4000], want[4000];
    assert_int_equal(sf_readf_float(sf, got, 4000), 4000);
    sf_close(sf);
    assert_int_equal(cnk_demo_render(&ctx, &p, 3, 2, want), CNK_OK);
    tu_assert_close(got, want, 4000, 1.0 / 32768 + 1e-6, 0, "wav vs render");
    /* an existing folder is refused, never overwritten */
    assert_int_equal(cnk_demo_write(&ctx, dir, &p), CNK_ERR_IO);
    assert_non_null(strstr(cnk_error(&ctx), "already exists"));
    tu_rmtree(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes_sorted),
        cmocka_unit_test(test_render_deterministic_and_distinct),
        cmocka_unit_test(test_write_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
