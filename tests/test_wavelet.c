/* Tests for features/wavelet: a pure tone peaks in the row with the nearest centre frequency, a click is
 * localised in time, white noise has the variance Torrence & Compo's normalisation promises, the fast decimated
 * path matches the time-domain definition and the exact full-length computation on real music, and the frame
 * grid is the mel grid.
 * test-libs: core features */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>

#include "core/rng.h"
#include "features/audio.h"
#include "features/spectrogram.h"
#include "features/wavelet.h"

static float *scalogram(cnk_wavelet_params *p, const float *x, size_t n, size_t *rows, size_t *frames)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_wavelet *w;
    assert_int_equal(cnk_wavelet_create(&ctx, p, &w), CNK_OK);
    *rows = cnk_wavelet_n_rows(w);
    *frames = cnk_wavelet_n_frames(w, n);
    float *out = malloc(*rows * *frames * sizeof *out);
    assert_non_null(out);
    assert_int_equal(cnk_wavelet_compute(&ctx, w, x, n, out), CNK_OK);
    cnk_wavelet_free(w);
    return out;
}

/* The exact computation the fast path approximates, in double precision and without any decimation or cut:
 * per row, the whole spectrum of the zero-padded clip times the Morlet spectrum (T&C normalisation), one
 * inverse FFT of the full padded length, |W|^2 at every sample, and the triangle mean
 * sum_i (1 - |i| / hop) |W(c + i)|^2 / hop around each frame centre c (t*hop, or t*hop + n_fft/2 uncentred). */
static void exact_scalogram(const cnk_wavelet_params *p, const float *x, size_t n, size_t rows, size_t frames,
                            double *out)
{
    double fmax = p->fmax > 0 ? p->fmax : p->sample_rate / 2.0, factor = (p->omega0 + sqrt(2 + p->omega0 * p->omega0)) /
                                                                          (4 * M_PI);
    double widest = factor * p->sample_rate / p->fmin;
    size_t guard = (size_t)(12 * widest) + (size_t)p->n_fft + 4 * (size_t)p->hop_length, big = n + 2 * guard;
    fftw_complex *spectrum = fftw_alloc_complex(big), *series = fftw_alloc_complex(big);
    double *power = malloc(big * sizeof *power);
    assert_true(spectrum && series && power);
    for (size_t i = 0; i < big; i++) {
        series[i][0] = i < n ? x[i] : 0.0;
        series[i][1] = 0.0;
    }
    fftw_plan forward = fftw_plan_dft_1d((int)big, series, spectrum, FFTW_FORWARD, FFTW_ESTIMATE);
    fftw_plan inverse = fftw_plan_dft_1d((int)big, series, series, FFTW_BACKWARD, FFTW_ESTIMATE);
    assert_true(forward && inverse);
    fftw_execute(forward);
    long hop = p->hop_length, shift = p->center ? 0 : p->n_fft / 2;
    for (size_t r = 0; r < rows; r++) {
        double hz = p->fmin * pow(fmax / p->fmin, rows > 1 ? (double)r / (double)(rows - 1) : 0.0);
        double scale = factor * p->sample_rate / hz;
        double norm = pow(M_PI, -0.25) * sqrt(2 * M_PI * scale) / (double)big;
        for (size_t k = 0; k < big; k++) {
            double z = scale * 2 * M_PI * (double)k / (double)big - p->omega0;
            double g = (k >= 1 && k <= big / 2) ? norm * exp(-0.5 * z * z) : 0.0;
            series[k][0] = g * spectrum[k][0];
            series[k][1] = g * spectrum[k][1];
        }
        fftw_execute(inverse);
        for (size_t i = 0; i < big; i++)
            power[i] = series[i][0] * series[i][0] + series[i][1] * series[i][1];
        for (size_t t = 0; t < frames; t++) {
            long c = (long)t * hop + shift;
            double sum = 0;
            for (long i = -(hop - 1); i <= hop - 1; i++) {
                long j = (c + i) % (long)big;
                sum += (1.0 - fabs((double)i) / (double)hop) * power[j < 0 ? j + (long)big : j];
            }
            out[r * frames + t] = sum / (double)hop;
        }
    }
    fftw_destroy_plan(forward);
    fftw_destroy_plan(inverse);
    fftw_free(spectrum);
    fftw_free(series);
    free(power);
}

/* The fast path (per-row band cut, decimated inverse FFTs, triangle means on the decimated grid) against the
 * exact full-length computation on real music, in dB as the features are used: bins above the 80 dB floor. */
static void check_fast_against_exact(const char *rel, double seconds, int center, double tol_db)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    cnk_audio a;
    assert_int_equal(cnk_audio_load(&ctx, tu_shared(path, sizeof path, rel), 22050, &a), CNK_OK);
    size_t n = (size_t)(seconds * 22050);
    assert_true(a.n_samples >= n);
    cnk_wavelet_params p;
    cnk_wavelet_params_default(&p, 22050);
    p.center = center;
    size_t rows, frames;
    float *fast = scalogram(&p, a.samples, n, &rows, &frames);
    double *exact = malloc(rows * frames * sizeof *exact);
    assert_non_null(exact);
    exact_scalogram(&p, a.samples, n, rows, frames, exact);
    double max_db = -INFINITY, worst = 0, worst_rel = 0;
    size_t worst_at = 0, n_above = 0;
    for (size_t i = 0; i < rows * frames; i++)
        max_db = fmax(max_db, 10 * log10(exact[i]));
    for (size_t i = 0; i < rows * frames; i++) {
        double ref_db = 10 * log10(exact[i]);
        if (ref_db <= max_db - 80) continue;
        n_above++;
        double d = fabs(10 * log10(fmax(fast[i], 1e-30)) - ref_db);
        worst_rel = fmax(worst_rel, fabs(fast[i] - exact[i]) / exact[i]);
        if (d > worst) worst = d, worst_at = i;
    }
    print_message("%s %.0f s centre %d: %zu of %zu bins above the 80 dB floor, max |fast - exact| %.2e dB (relative "
                  "%.2e) at row %zu frame %zu\n",
                  rel, seconds, center, n_above, rows * frames, worst, worst_rel, worst_at / frames,
                  worst_at % frames);
    assert_true(n_above > rows * frames / 2);
    if (worst > tol_db) fail_msg("fast wavelet path %.3g dB from the exact computation (> %.3g dB)", worst, tol_db);
    free(exact);
    free(fast);
    cnk_audio_release(&a);
}

static void test_fast_path_matches_exact_computation(void **state)
{
    (void)state;
    /* Measured: 6 s 0.0086 dB (jazz, row 47: the aliasing the decimation allows) and 0.0048 dB (metal); 2 s (the
     * sanitizer run) 0.0095 dB, in the top row, whose band is cut by fs/2: that edge gives its wavelet a 1/t tail,
     * so its quietest frames depend slightly on the padded length, which differs between the two computations.
     * Plain triangle weights on the same grid measured 1.6 dB. */
    double seconds = tu_sanitized() ? 2.0 : 6.0;
    check_fast_against_exact("datasets/gtzan-mini/wav/jazz/jazz.00000.wav", seconds, 1, 0.015);
    check_fast_against_exact("datasets/gtzan-mini/wav/metal/metal.00000.wav", seconds, 0, 0.015);
}

static void test_tone_peaks_in_nearest_row(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    const int sr = 22050;
    size_t n = sr * 2;
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    static const double tones[] = {55.0, 440.0, 1234.5, 5000.0};
    for (int k = 0; k < 4; k++) {
        for (size_t i = 0; i < n; i++)
            x[i] = (float)sin(2 * M_PI * tones[k] * i / sr);
        cnk_wavelet_params p;
        cnk_wavelet_params_default(&p, sr);
        cnk_wavelet *w;
        assert_int_equal(cnk_wavelet_create(&ctx, &p, &w), CNK_OK);
        size_t nearest = 0;
        for (size_t r = 0; r < 64; r++)
            if (fabs(log(cnk_wavelet_centre_hz(w, r) / tones[k])) <
                fabs(log(cnk_wavelet_centre_hz(w, nearest) / tones[k])))
                nearest = r;
        cnk_wavelet_free(w);
        size_t rows, frames;
        float *s = scalogram(&p, x, n, &rows, &frames);
        size_t mid = frames / 2, best = 0;
        for (size_t r = 0; r < rows; r++)
            if (s[r * frames + mid] > s[best * frames + mid]) best = r;
        print_message("tone %.1f Hz: peak row %zu, nearest centre row %zu, peak power %.3f\n", tones[k], best, nearest,
                      s[best * frames + mid]);
        assert_int_equal(best, nearest);
        /* T&C normalisation: a unit sine at the wavelet's own frequency gives |W|^2 = sqrt(pi) * s / 2 (s the scale
         * in samples), times exp(-(s w - w0)^2) for the small frequency mismatch of the nearest row. */
        double scale = (6.0 + sqrt(38.0)) / (4 * M_PI) * sr /
                       (32.0 * pow(11025.0 / 32.0, best / 63.0)) /* row centres are log-spaced */;
        double z = scale * 2 * M_PI * tones[k] / sr - 6.0;
        double expected = sqrt(M_PI) * scale / 2 * exp(-z * z);
        assert_float_equal(s[best * frames + mid] / expected, 1.0, 0.02);
        free(s);
    }
    free(x);
}

static void test_click_is_localised(void **state)
{
    (void)state;
    const int sr = 22050;
    size_t n = sr * 2, at = 33333;
    float *x = calloc(n, sizeof *x);
    assert_non_null(x);
    x[at] = 1.0f;
    cnk_wavelet_params p;
    cnk_wavelet_params_default(&p, sr);
    size_t rows, frames;
    float *s = scalogram(&p, x, n, &rows, &frames);
    size_t click_frame = (at + 256) / 512; /* the frame whose centre t*512 is nearest the click */
    /* Rows above ~500 Hz (wavelets shorter than a hop) put their maximum on the click's frame, and far
     * frames hold almost nothing. */
    for (size_t r = 32; r < rows; r++) {
        const float *row = s + r * frames;
        size_t best = 0;
        for (size_t t = 0; t < frames; t++)
            if (row[t] > row[best]) best = t;
        assert_int_equal(best, click_frame);
        assert_true(row[click_frame - 10] < 1e-4 * row[best]);
        assert_true(row[click_frame + 10] < 1e-4 * row[best]);
    }
    /* Lower rows still peak within their wavelet's width of the click. */
    for (size_t r = 0; r < 32; r++) {
        const float *row = s + r * frames;
        size_t best = 0;
        for (size_t t = 0; t < frames; t++)
            if (row[t] > row[best]) best = t;
        assert_true(best + 3 >= click_frame && best <= click_frame + 3);
    }
    free(s);
    free(x);
}

static void test_white_noise_power_equals_variance(void **state)
{
    (void)state;
    const int sr = 16000;
    size_t n = sr * 4;
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    cnk_rng rng;
    cnk_rng_seed(&rng, 7, 0);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.1 * cnk_rng_normal(&rng));
    cnk_wavelet_params p;
    cnk_wavelet_params_default(&p, sr);
    p.n_scales = 16;
    p.fmin = 100;
    p.fmax = 4000;
    p.hop_length = 160;
    p.n_fft = 400;
    size_t rows, frames;
    float *s = scalogram(&p, x, n, &rows, &frames);
    for (size_t r = 0; r < rows; r++) {
        double mean = 0;
        for (size_t t = frames / 8; t < frames - frames / 8; t++)
            mean += s[r * frames + t];
        mean /= (double)(frames - 2 * (frames / 8));
        /* T&C: E|W|^2 = variance for white noise (0.01), within the estimate's scatter. */
        assert_true(mean > 0.008 && mean < 0.012);
    }
    free(s);
    free(x);
}

/* The decimated frequency-domain transform against the textbook time-domain sum
 * W_n(s) = sum_n' x_n' psi*((n' - n) / s) / sqrt(s), psi(eta) = pi^-1/4 exp(i w0 eta) exp(-eta^2 / 2),
 * then |W|^2 averaged with triangle weights 1 - |n - c| / hop around the frame centre c = t*hop. */
static void test_matches_time_domain_definition(void **state)
{
    (void)state;
    const int sr = 8000, hop = 100;
    size_t n = 3000;
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    cnk_rng rng;
    cnk_rng_seed(&rng, 3, 0);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(sin(2 * M_PI * 700.0 * i / sr) * (i > 1000 && i < 2000) + 0.3 * cnk_rng_normal(&rng));
    cnk_wavelet_params p;
    cnk_wavelet_params_default(&p, sr);
    p.n_scales = 8;
    p.fmin = 100;
    p.fmax = 2000;
    p.hop_length = hop;
    p.n_fft = 400;
    size_t rows, frames;
    float *fast = scalogram(&p, x, n, &rows, &frames);
    double worst = 0;
    for (size_t r = 0; r < rows; r++) {
        double hz = 100.0 * pow(20.0, r / 7.0), scale = (6.0 + sqrt(38.0)) / (4 * M_PI) * sr / hz;
        long reach = (long)ceil(6 * scale);
        double row_max = 0;
        for (size_t t = 0; t < frames; t++)
            row_max = fmax(row_max, fast[r * frames + t]);
        for (size_t t = 0; t < frames; t++) {
            double mean = 0, total = 0, centre = (double)t * hop;
            for (long c = (long)t * hop - 3 * hop / 2; c <= (long)t * hop + 3 * hop / 2; c++) {
                double weight = 1.0 - fabs(c - centre) / hop;
                if (weight <= 0) continue;
                double re = 0, im = 0;
                for (long j = c - reach; j <= c + reach; j++) {
                    if (j < 0 || j >= (long)n) continue;
                    double eta = (j - c) / scale, env = pow(M_PI, -0.25) * exp(-0.5 * eta * eta) / sqrt(scale);
                    re += x[j] * env * cos(6.0 * eta);
                    im -= x[j] * env * sin(6.0 * eta);
                }
                mean += weight * (re * re + im * im);
                total += weight;
            }
            mean /= total;
            double d = fabs(fast[r * frames + t] - mean);
            worst = fmax(worst, d / (mean + 0.2 * row_max));
            /* Decimation (K samples per hop, chosen per row for speed) leaves ~2e-4 (the sum above truncates the
             * Morlet at 6 scales and is not band-limited, the transform's wavelet is); an offset, normalisation or
             * alignment bug is off by far more. Plain triangle weights on the decimated grid gave 2e-2. */
            assert_true(worst < 2e-3);
            if (!(d <= 1e-2 * mean + 1e-3 * row_max))
                fail_msg("row %zu frame %zu: cnnkit %g, time-domain sum %g (row max %g)", r, t, fast[r * frames + t],
                         mean, row_max);
        }
    }
    print_message("wavelet vs time-domain definition: worst |diff| / (value + row max / 5) %.2e\n", worst);
    free(fast);
    free(x);
}

/* A clip's scalogram is the same bytes whether the object is fresh or has just done a longer clip. */
static void test_result_does_not_depend_on_earlier_clips(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    size_t n_short = 20000, n_long = 24000; /* padded lengths within 20% of each other */
    float *x = malloc(n_long * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n_long; i++) x[i] = (float)(sin(i * 0.03) * cos(i * 0.0011));
    cnk_wavelet_params p;
    cnk_wavelet_params_default(&p, 22050);
    p.n_scales = 12;
    cnk_wavelet *fresh, *used;
    assert_int_equal(cnk_wavelet_create(&ctx, &p, &fresh), CNK_OK);
    assert_int_equal(cnk_wavelet_create(&ctx, &p, &used), CNK_OK);
    size_t count = 12 * cnk_wavelet_n_frames(fresh, n_short);
    float *a = malloc(count * sizeof *a), *b = malloc(12 * cnk_wavelet_n_frames(used, n_long) * sizeof *b);
    assert_true(a && b);
    assert_int_equal(cnk_wavelet_compute(&ctx, used, x, n_long, b), CNK_OK);
    assert_int_equal(cnk_wavelet_compute(&ctx, used, x, n_short, b), CNK_OK);
    assert_int_equal(cnk_wavelet_compute(&ctx, fresh, x, n_short, a), CNK_OK);
    assert_memory_equal(a, b, count * sizeof *a);
    free(a);
    free(b);
    free(x);
    cnk_wavelet_free(fresh);
    cnk_wavelet_free(used);
}

static void test_shape_equals_mel_shape(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    static const size_t lengths[] = {1, 511, 512, 2047, 22050, 661794};
    for (int center = 0; center < 2; center++) {
        cnk_spec_params sp;
        cnk_spec_params_default(&sp, 22050);
        sp.center = center;
        cnk_wavelet_params wp;
        cnk_wavelet_params_default(&wp, 22050);
        wp.center = center;
        cnk_spec *spec;
        cnk_wavelet *w;
        assert_int_equal(cnk_spec_create(&ctx, &sp, &spec), CNK_OK);
        assert_int_equal(cnk_wavelet_create(&ctx, &wp, &w), CNK_OK);
        for (int i = 0; i < 6; i++)
            assert_int_equal(cnk_wavelet_n_frames(w, lengths[i]), cnk_spec_n_frames(spec, lengths[i]));
        assert_int_equal(cnk_wavelet_n_rows(w), 64);
        assert_float_equal(cnk_wavelet_centre_hz(w, 0), 32.0, 1e-9);
        assert_float_equal(cnk_wavelet_centre_hz(w, 63), 11025.0, 1e-6);
        cnk_spec_free(spec);
        cnk_wavelet_free(w);
    }
    cnk_wavelet_params wp;
    cnk_wavelet_params_default(&wp, 22050);
    wp.fmin = 0;
    cnk_wavelet *w;
    assert_int_equal(cnk_wavelet_create(&ctx, &wp, &w), CNK_ERR_ARG);
    wp.fmin = 32;
    wp.n_scales = 0;
    assert_int_equal(cnk_wavelet_create(&ctx, &wp, &w), CNK_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tone_peaks_in_nearest_row),
        cmocka_unit_test(test_click_is_localised),
        cmocka_unit_test(test_white_noise_power_equals_variance),
        cmocka_unit_test(test_matches_time_domain_definition),
        cmocka_unit_test(test_result_does_not_depend_on_earlier_clips),
        cmocka_unit_test(test_fast_path_matches_exact_computation),
        cmocka_unit_test(test_shape_equals_mel_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
