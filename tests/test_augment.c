/* Tests for pipeline/augment: seeded determinism, shifts and flips move pixels exactly, masks fill whole
 * rows/columns with the fill value, and the spectrogram shift moves frames.
 * test-libs: core pipeline */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "pipeline/augment.h"

static void ramp(float *x, int n)
{
    for (int i = 0; i < n; i++) x[i] = (float)i;
}

static void test_image_deterministic_and_a_permutation(void **state)
{
    (void)state;
    enum { C = 3, H = 8, W = 10, N = C * H * W };
    float a[N], b[N], scratch[N];
    cnk_augment_params p;
    cnk_augment_defaults_image(&p, W);
    assert_int_equal(p.crop_pad, 2);
    assert_int_equal(p.flip, 1);
    int n_changed = 0, n_flipped = 0;
    for (int seed = 0; seed < 40; seed++) {
        cnk_rng r1, r2;
        cnk_rng_seed(&r1, (uint64_t)seed, 0);
        cnk_rng_seed(&r2, (uint64_t)seed, 0);
        ramp(a, N);
        ramp(b, N);
        cnk_augment_image(&r1, &p, a, C, H, W, scratch);
        cnk_augment_image(&r2, &p, b, C, H, W, scratch);
        assert_memory_equal(a, b, sizeof a); /* same seed, same result */
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    float v = a[(c * H + y) * W + x];
                    int src = (int)v;
                    /* every output pixel comes from the same channel, a row within +-2 and a column within
                     * +-2 of x or of its mirror */
                    assert_int_equal(src / (H * W), c);
                    int sy = (src % (H * W)) / W, sx = src % W;
                    assert_true(abs(sy - y) <= 2);
                    assert_true(abs(sx - x) <= 2 || abs(sx - (W - 1 - x)) <= 2);
                }
        float orig[N];
        ramp(orig, N);
        if (memcmp(a, orig, sizeof a) != 0) n_changed++;
        if (a[0] > a[W - 1]) n_flipped++; /* first row decreasing: mirrored */
    }
    assert_true(n_changed >= 30);
    assert_in_range(n_flipped, 10, 30);
}

static void test_image_pure_flip(void **state)
{
    (void)state;
    float x[6] = {1, 2, 3, 4, 5, 6}, scratch[6];
    cnk_augment_params p = {.flip = 1};
    int flipped = 0;
    for (int seed = 0; seed < 20 && !flipped; seed++) {
        cnk_rng rng;
        cnk_rng_seed(&rng, (uint64_t)seed, 0);
        float y[6];
        memcpy(y, x, sizeof x);
        cnk_augment_image(&rng, &p, y, 1, 2, 3, scratch);
        if (y[0] != 1) {
            float want[6] = {3, 2, 1, 6, 5, 4};
            assert_memory_equal(y, want, sizeof want);
            flipped = 1;
        }
    }
    assert_true(flipped);
}

static void test_spectrogram_masks_and_shift(void **state)
{
    (void)state;
    enum { F = 16, T = 40, N = F * T };
    float x[N], scratch[N];
    cnk_augment_params p;
    cnk_augment_defaults_spectrogram(&p, F, T, -9);
    assert_int_equal(p.max_time_shift, 5);
    assert_int_equal(p.time_mask, 4);
    assert_int_equal(p.freq_mask, 2);
    /* masks only: every changed value is the fill, masked time columns are whole columns */
    p.max_time_shift = 0;
    int any_masked = 0;
    for (int seed = 0; seed < 20; seed++) {
        cnk_rng rng;
        cnk_rng_seed(&rng, (uint64_t)seed, 3);
        ramp(x, N);
        cnk_augment_spectrogram(&rng, &p, x, 1, F, T, scratch);
        for (int i = 0; i < N; i++)
            if (x[i] != (float)i) {
                assert_true(x[i] == -9.0f);
                any_masked = 1;
            }
    }
    assert_true(any_masked);
    /* shift only: rows move by the same amount, shifted-in frames are the fill */
    cnk_augment_params s = {.max_time_shift = 5, .fill = -9};
    int shifted = 0;
    for (int seed = 0; seed < 20; seed++) {
        cnk_rng rng;
        cnk_rng_seed(&rng, (uint64_t)seed, 4);
        ramp(x, N);
        cnk_augment_spectrogram(&rng, &s, x, 1, F, T, scratch);
        int k = -100;
        for (int t = 0; t < T && k == -100; t++)
            if (x[t] != -9.0f) k = t - (int)x[t]; /* the shift */
        assert_true(k >= -5 && k <= 5);
        if (k) shifted = 1;
        for (int f = 0; f < F; f++)
            for (int t = 0; t < T; t++) {
                int src = t - k;
                float want = (src >= 0 && src < T) ? (float)(f * T + src) : -9.0f;
                assert_true(x[f * T + t] == want);
            }
    }
    assert_true(shifted);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_deterministic_and_a_permutation),
        cmocka_unit_test(test_image_pure_flip),
        cmocka_unit_test(test_spectrogram_masks_and_shift),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
