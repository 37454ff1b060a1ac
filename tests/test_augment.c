/* Tests for pipeline/augment: seeded determinism, shifts and flips move pixels exactly, random-resized crops
 * zoom linearly, colour jitter keeps what it should, random erasing blanks one box, masks fill whole
 * rows/columns with the fill value, and the spectrogram shift moves frames.
 * test-libs: core pipeline */
#include "testutil.h"

#include <math.h>
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
    cnk_augment_params p = {.crop_pad = 2, .flip = 1}; /* shifts and flips only */
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

static void test_image_defaults(void **state)
{
    (void)state;
    cnk_augment_params p;
    cnk_augment_defaults_image(&p);
    assert_int_equal(p.crop_pad, 0);
    assert_int_equal(p.flip, 1);
    assert_float_equal(p.scale_min, 0.5, 1e-6);
    assert_float_equal(p.max_aspect, 4.0 / 3, 1e-6);
    assert_float_equal(p.brightness, 0.1, 1e-6);
    assert_float_equal(p.contrast, 0.1, 1e-6);
    assert_float_equal(p.saturation, 0.1, 1e-6);
    /* the spectrogram fields stay off */
    assert_int_equal(p.max_time_shift + p.n_time_masks + p.n_freq_masks, 0);
}

/* A horizontal ramp (value = column) through a random-resized crop: bilinear sampling of a linear function is
 * exact, so every row is again a ramp whose slope is the zoom (box width / image width, or its negative when
 * mirrored), every row of a channel is the same, and the values stay inside the source range. */
static void test_image_scale_jitter_zooms(void **state)
{
    (void)state;
    enum { C = 2, H = 12, W = 16, N = C * H * W };
    float x[N], scratch[N];
    cnk_augment_params p = {.scale_min = 0.25f, .max_aspect = 1.5f, .flip = 1};
    int n_zoomed = 0, n_flipped = 0;
    for (int seed = 0; seed < 50; seed++) {
        cnk_rng rng;
        cnk_rng_seed(&rng, (uint64_t)seed, 7);
        for (int i = 0; i < N; i++) x[i] = (float)(i % W);
        cnk_augment_image(&rng, &p, x, C, H, W, scratch);
        /* columns 2 and W-3 sample inside the source whatever the box (the outermost half pixel of a box at
         * the border repeats the edge) */
        float slope = (x[W - 3] - x[2]) / (W - 5), at0 = x[2] - 2 * slope;
        /* the box is at least sqrt(0.25 / 1.5) = 0.41 of the width and at most all of it */
        assert_true(fabsf(slope) >= 0.40f && fabsf(slope) <= 1.0f + 1e-5f);
        for (int i = 0; i < N; i++) {
            float line = at0 + slope * (float)(i % W);
            assert_float_equal(x[i], fminf(fmaxf(line, 0), W - 1), 1e-4);
        }
        if (fabsf(slope) < 0.95f) n_zoomed++;
        if (slope < 0) n_flipped++;
    }
    assert_true(n_zoomed >= 40);
    assert_in_range(n_flipped, 12, 38);
}

/* From a source the size of the image, cnk_augment_image_from is cnk_augment_image exactly, with the same use
 * of the random stream (so a run without a larger training source is the run it was). */
static void test_image_from_same_size_is_augment_image(void **state)
{
    (void)state;
    enum { C = 3, H = 12, W = 10, N = C * H * W };
    float a[N], src[N], b[N], scratch[N];
    cnk_augment_params p;
    cnk_augment_defaults_image(&p);
    p.crop_pad = 2;
    for (int seed = 0; seed < 40; seed++) {
        cnk_rng r1, r2;
        cnk_rng_seed(&r1, (uint64_t)seed, 3);
        cnk_rng_seed(&r2, (uint64_t)seed, 3);
        for (int i = 0; i < N; i++) a[i] = src[i] = (float)((i * 7919) % 97) / 10.0f;
        cnk_augment_image(&r1, &p, a, C, H, W, scratch);
        cnk_augment_image_from(&r2, &p, src, H, W, b, C, H, W);
        assert_memory_equal(a, b, sizeof a);
        assert_true(cnk_rng_u64(&r1) == cnk_rng_u64(&r2));
    }
}

/* A linear image v = 2x + 3y + 100c through known boxes: tents (shrinking 2x) and bilinear interpolation
 * (enlarging 2x) both reproduce a linear function exactly away from the edges, so every output pixel is the
 * function at its centre's source position; mirrored, the columns come in reverse. */
static void test_crop_resize_known_boxes(void **state)
{
    (void)state;
    enum { C = 2, SH = 40, SW = 48 };
    static float src[C * SH * SW], dst[C * 16 * 16];
    for (int c = 0; c < C; c++)
        for (int y = 0; y < SH; y++)
            for (int x = 0; x < SW; x++) src[(c * SH + y) * SW + x] = (float)(2 * x + 3 * y + 100 * c);
    struct {
        double bx, by, bw, bh;
        int h, w, flip;
    } cases[] = {{8, 4, 24, 16, 8, 12, 0}, {8, 4, 24, 16, 8, 12, 1}, {10, 12, 8, 8, 16, 16, 0},
                 {6, 6, 30, 20, 10, 15, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int h = cases[k].h, w = cases[k].w;
        double step_x = cases[k].bw / w, step_y = cases[k].bh / h;
        cnk_augment_crop_resize(src, C, SH, SW, cases[k].bx, cases[k].by, cases[k].bw, cases[k].bh, cases[k].flip,
                                dst, h, w);
        for (int c = 0; c < C; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int xs = cases[k].flip ? w - 1 - x : x;
                    double sx = cases[k].bx + (xs + 0.5) * step_x - 0.5, sy = cases[k].by + (y + 0.5) * step_y - 0.5;
                    assert_float_equal(dst[(c * h + y) * w + x], 2 * sx + 3 * sy + 100 * c, 1e-3);
                }
    }
}

/* Shrinking averages what an output pixel covers: columns alternating 0 / 1 shrunk 3 times come out grey
 * (4/9-5/9), where sampling the nearest pixels (bilinear at these positions) would alias them to 0 / 1 stripes. */
static void test_crop_resize_shrinks_without_aliasing(void **state)
{
    (void)state;
    enum { SH = 6, SW = 48, H = 2, W = 16 };
    float src[SH * SW], dst[H * W];
    for (int i = 0; i < SH * SW; i++) src[i] = (float)(i % SW % 2);
    cnk_augment_crop_resize(src, 1, SH, SW, 0, 0, SW, SH, 0, dst, H, W);
    for (int i = 0; i < H * W; i++) assert_true(dst[i] > 4.0f / 9 - 1e-5f && dst[i] < 5.0f / 9 + 1e-5f);
}

/* Without the random-resized crop (scale_min 0), flips or jitter, a training crop from a larger source is the
 * whole source resized; with the defaults, a box of scale s of a source twice the size spans the same share. */
static void test_image_from_larger_source(void **state)
{
    (void)state;
    enum { C = 3, SH = 32, SW = 32, H = 16, W = 16 };
    static float src[C * SH * SW], x[C * H * W], whole[C * H * W];
    for (int i = 0; i < C * SH * SW; i++) src[i] = (float)(i % SW); /* a horizontal ramp */
    cnk_augment_params none = {0};
    cnk_rng rng;
    cnk_rng_seed(&rng, 5, 0);
    cnk_augment_image_from(&rng, &none, src, SH, SW, x, C, H, W);
    cnk_augment_crop_resize(src, C, SH, SW, 0, 0, SW, SH, 0, whole, H, W);
    assert_memory_equal(x, whole, sizeof x);
    /* zooms as test_image_scale_jitter_zooms measures them, in source columns per output column: the box is
     * 0.5-1 of the width (scale 0.25-1 and aspect 1 here), so 1-2 source columns */
    cnk_augment_params p = {.scale_min = 0.25f, .max_aspect = 1.0f};
    for (int seed = 0; seed < 30; seed++) {
        cnk_rng_seed(&rng, (uint64_t)seed, 1);
        cnk_augment_image_from(&rng, &p, src, SH, SW, x, C, H, W);
        float slope = (x[W - 4] - x[3]) / (W - 7);
        assert_true(slope >= 1.0f - 1e-4f && slope <= 2.0f + 1e-4f);
    }
}

static double mean_of(const float *x, int n)
{
    double m = 0;
    for (int i = 0; i < n; i++) m += x[i];
    return m / n;
}

/* Brightness moves every value by one constant; contrast scales deviations from the image mean by one factor
 * and keeps the mean; saturation keeps each pixel's channel mean. */
static void test_image_colour_jitter(void **state)
{
    (void)state;
    enum { C = 3, H = 4, W = 5, P = H * W, N = C * P };
    float orig[N], x[N], scratch[N];
    for (int i = 0; i < N; i++) orig[i] = (float)((i * 37) % 11) - 5.0f;
    double m0 = mean_of(orig, N);
    for (int seed = 0; seed < 20; seed++) {
        cnk_rng rng;
        cnk_rng_seed(&rng, (uint64_t)seed, 9);
        cnk_augment_params b = {.brightness = 0.5f};
        memcpy(x, orig, sizeof x);
        cnk_augment_image(&rng, &b, x, C, H, W, scratch);
        float shift = x[0] - orig[0];
        assert_true(fabsf(shift) <= 0.5f);
        for (int i = 0; i < N; i++) assert_float_equal(x[i] - orig[i], shift, 1e-5);

        cnk_augment_params c = {.contrast = 0.4f};
        memcpy(x, orig, sizeof x);
        cnk_augment_image(&rng, &c, x, C, H, W, scratch);
        assert_float_equal(mean_of(x, N), m0, 1e-4);
        int far = 0; /* the value farthest from the mean gives the factor most precisely */
        for (int i = 1; i < N; i++)
            if (fabs(orig[i] - m0) > fabs(orig[far] - m0)) far = i;
        float factor = (float)((x[far] - m0) / (orig[far] - m0));
        assert_true(factor >= 0.6f - 1e-5f && factor <= 1.4f + 1e-5f);
        for (int i = 0; i < N; i++) assert_float_equal(x[i] - m0, factor * (orig[i] - m0), 1e-4);

        cnk_augment_params s = {.saturation = 0.6f};
        memcpy(x, orig, sizeof x);
        cnk_augment_image(&rng, &s, x, C, H, W, scratch);
        for (int i = 0; i < P; i++) {
            float before = (orig[i] + orig[P + i] + orig[2 * P + i]) / 3, after = (x[i] + x[P + i] + x[2 * P + i]) / 3;
            assert_float_equal(after, before, 1e-4);
        }
    }
}

/* Random erasing: one box, the same in every channel, of 2-25% of the area (within rounding) and aspect
 * 0.3-3.3, set to 0; everything else untouched; about half the photos at probability 0.5; its draws do not
 * depend on whether the box was erased, and cnk_augment_image_from erases the same box. */
static void test_image_erase(void **state)
{
    (void)state;
    enum { C = 3, H = 32, W = 40, P = H * W, N = C * P };
    static float x[N], y[N], scratch[N];
    cnk_augment_params on = {.erase = 1.0f}, half = {.erase = 0.5f};
    double min_area = 1, max_area = 0, min_aspect = 10, max_aspect = 0;
    int n_half = 0;
    for (int seed = 0; seed < 300; seed++) {
        cnk_rng rng, rng_half;
        cnk_rng_seed(&rng, (uint64_t)seed, 3);
        cnk_rng_seed(&rng_half, (uint64_t)seed, 3);
        for (int i = 0; i < N; i++) x[i] = y[i] = 1.0f + (float)(i % 7);
        cnk_augment_image(&rng, &on, x, C, H, W, scratch);
        int y0 = H, y1 = -1, x0 = W, x1 = -1, zeros = 0;
        for (int r = 0; r < H; r++)
            for (int c = 0; c < W; c++)
                if (x[r * W + c] == 0) {
                    zeros++;
                    y0 = r < y0 ? r : y0, y1 = r > y1 ? r : y1, x0 = c < x0 ? c : x0, x1 = c > x1 ? c : x1;
                }
        assert_true(zeros > 0);
        assert_int_equal(zeros, (y1 - y0 + 1) * (x1 - x0 + 1)); /* one solid box */
        for (int ch = 0; ch < C; ch++)
            for (int i = 0; i < P; i++) {
                int inside = x[i] == 0; /* channel 0 marks the box */
                if (inside) assert_true(x[ch * P + i] == 0);
                else assert_true(x[ch * P + i] == 1.0f + (float)((ch * P + i) % 7));
            }
        double area = (double)zeros / P, aspect = (double)(y1 - y0 + 1) / (x1 - x0 + 1);
        min_area = fmin(min_area, area), max_area = fmax(max_area, area);
        min_aspect = fmin(min_aspect, aspect), max_aspect = fmax(max_aspect, aspect);
        cnk_augment_image(&rng_half, &half, y, C, H, W, scratch);
        if (y[y0 * W + x0] == 0) n_half++;
        /* the same number of draws, erased or not */
        assert_true(cnk_rng_u64(&rng) == cnk_rng_u64(&rng_half));
    }
    assert_true(min_area >= 0.015 && min_area < 0.04);
    assert_true(max_area <= 0.27 && max_area > 0.2);
    assert_true(min_aspect >= 0.25 && min_aspect < 0.5);
    assert_true(max_aspect <= 4.0 && max_aspect > 2.0);
    assert_in_range(n_half, 110, 190);

    /* the larger-source path draws and erases the same box */
    cnk_augment_params all = {.flip = 1, .scale_min = 0.5f, .max_aspect = 4.0f / 3, .brightness = 0.1f, .erase = 1.0f};
    for (int seed = 0; seed < 5; seed++) {
        cnk_rng r1, r2;
        cnk_rng_seed(&r1, (uint64_t)seed, 4);
        cnk_rng_seed(&r2, (uint64_t)seed, 4);
        for (int i = 0; i < N; i++) x[i] = (float)((i * 13) % 17);
        memcpy(scratch, x, sizeof x);
        cnk_augment_image(&r1, &all, x, C, H, W, y);
        cnk_augment_image_from(&r2, &all, scratch, H, W, y, C, H, W);
        assert_memory_equal(x, y, sizeof x);
    }
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

/* Speech: the rows are resampled by one factor in [0.8, 1.2] (each row shows row r / factor), the frames by
 * another (frame t shows t / factor, silence past the end); the defaults leave both off. */
static void test_spectrogram_warp_and_stretch(void **state)
{
    (void)state;
    enum { F = 16, T = 40, N = F * T };
    float x[N], scratch[N];
    cnk_augment_params d;
    cnk_augment_defaults_spectrogram(&d, F, T, 0);
    assert_true(d.freq_warp == 0 && d.time_stretch == 0);
    cnk_augment_params w = {.freq_warp = 0.2f, .fill = -9};
    int warped = 0;
    for (int seed = 0; seed < 20; seed++) {
        cnk_rng rng;
        cnk_rng_seed(&rng, (uint64_t)seed, 5);
        for (int i = 0; i < N; i++) x[i] = (float)(i / T); /* row f holds f */
        cnk_augment_spectrogram(&rng, &w, x, 1, F, T, scratch);
        double factor = 4.0 / x[4 * T]; /* row 4 is below the top for any factor >= 0.8 */
        assert_true(factor >= 0.8 - 1e-6 && factor <= 1.2 + 1e-6);
        if (fabs(factor - 1) > 0.01) warped = 1;
        for (int f = 0; f < F; f++) {
            double want = fmin(f / factor, F - 1);
            for (int t = 0; t < T; t++) assert_float_equal(x[f * T + t], want, 1e-4);
        }
    }
    assert_true(warped);
    cnk_augment_params st = {.time_stretch = 0.2f, .fill = -9};
    for (int seed = 0; seed < 20; seed++) {
        cnk_rng rng;
        cnk_rng_seed(&rng, (uint64_t)seed, 6);
        for (int i = 0; i < N; i++) x[i] = (float)(i % T); /* frame t holds t */
        cnk_augment_spectrogram(&rng, &st, x, 1, F, T, scratch);
        double factor = 4.0 / x[4];
        assert_true(factor >= 0.8 - 1e-6 && factor <= 1.2 + 1e-6);
        for (int f = 0; f < F; f++)
            for (int t = 0; t < T; t++) {
                double pos = t / factor;
                if (pos <= T - 1) assert_float_equal(x[f * T + t], pos, 1e-3);
                else if (pos >= T) assert_true(x[f * T + t] == -9.0f);
            }
    }
}

/* Mixup on known values: pairs k and n-1-k blended both ways, the middle of an odd batch untouched, the soft
 * labels the same blends of the one-hot labels (rows summing to 1; a pair of one class stays one-hot). */
static void test_mixup_blends_pairs(void **state)
{
    (void)state;
    enum { N = 5, D = 3, C = 4 };
    float x[N * D], orig[N * D], soft[N * C];
    const int y[N] = {0, 2, 3, 2, 1};
    for (int i = 0; i < N * D; i++) x[i] = orig[i] = (float)(i * i % 7) - 2.5f;
    const float lam = 0.7f;
    cnk_augment_mixup(x, y, N, D, C, lam, soft);
    for (int k = 0; k < N; k++) {
        int j = N - 1 - k;
        for (int d = 0; d < D; d++) {
            float want = k == j ? orig[k * D + d] : lam * orig[k * D + d] + (1 - lam) * orig[j * D + d];
            assert_float_equal(x[k * D + d], want, 1e-6);
        }
        float sum = 0;
        for (int c = 0; c < C; c++) {
            float want = k == j ? (c == y[k]) : lam * (c == y[k]) + (1 - lam) * (c == y[j]);
            assert_float_equal(soft[k * C + c], want, 1e-6);
            sum += soft[k * C + c];
        }
        assert_float_equal(sum, 1, 1e-6);
    }
    assert_float_equal(soft[1 * C + 2], 1, 1e-6); /* samples 1 and 3 are both class 2 */
}

/* Beta(a, a) draws: in [0, 1], mean 1/2, variance 1 / (4 (2a + 1)); a = 1 is uniform. Seeded, so exact. */
static void test_beta_moments(void **state)
{
    (void)state;
    const double as[] = {0.2, 0.5, 1.0};
    for (int t = 0; t < 3; t++) {
        cnk_rng rng;
        cnk_rng_seed(&rng, 3, (uint64_t)t);
        double sum = 0, sq = 0;
        const int n = 40000;
        for (int i = 0; i < n; i++) {
            double v = cnk_augment_beta(&rng, as[t]);
            assert_true(v >= 0 && v <= 1); /* 1 exactly when the other draw is 1e-16 of this one */
            sum += v, sq += v * v;
        }
        double mean = sum / n, var = sq / n - mean * mean, want = 1 / (4 * (2 * as[t] + 1));
        assert_float_equal(mean, 0.5, 0.01);  /* the mean's standard error is at most 0.0025 */
        assert_float_equal(var, want, 0.01); /* variance 0.18 for a = 0.2, 1/12 for a = 1 */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_image_deterministic_and_a_permutation),
        cmocka_unit_test(test_image_pure_flip),
        cmocka_unit_test(test_image_defaults),
        cmocka_unit_test(test_image_scale_jitter_zooms),
        cmocka_unit_test(test_image_colour_jitter),
        cmocka_unit_test(test_image_erase),
        cmocka_unit_test(test_image_from_same_size_is_augment_image),
        cmocka_unit_test(test_crop_resize_known_boxes),
        cmocka_unit_test(test_crop_resize_shrinks_without_aliasing),
        cmocka_unit_test(test_image_from_larger_source),
        cmocka_unit_test(test_spectrogram_masks_and_shift),
        cmocka_unit_test(test_spectrogram_warp_and_stretch),
        cmocka_unit_test(test_mixup_blends_pairs),
        cmocka_unit_test(test_beta_moments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
