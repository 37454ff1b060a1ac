/* Tests for features/audio: GTZAN .au and .wav decode to identical samples, libsoxr resampling keeps a
 * sine's frequency and amplitude, multichannel files become the mean, and bad files give one-line errors.
 * test-libs: core features */
#include "testutil.h"

#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "features/audio.h"

static const char *const genres[] = {"blues", "classical", "country", "disco",  "hiphop",
                                     "jazz",  "metal",     "pop",     "reggae", "rock"};

static void test_gtzan_au_and_wav_decode_identically(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    for (int g = 0; g < 10; g++) {
        char rel[256], au_path[4096], wav_path[4096];
        snprintf(rel, sizeof rel, "datasets/gtzan-mini/au/%s/%s.00000.au", genres[g], genres[g]);
        tu_shared(au_path, sizeof au_path, rel);
        snprintf(rel, sizeof rel, "datasets/gtzan-mini/wav/%s/%s.00000.wav", genres[g], genres[g]);
        tu_shared(wav_path, sizeof wav_path, rel);
        cnk_audio au, wav;
        assert_int_equal(cnk_audio_load(&ctx, au_path, 0, &au), CNK_OK);
        assert_int_equal(cnk_audio_load(&ctx, wav_path, 0, &wav), CNK_OK);
        assert_int_equal(au.sample_rate, 22050);
        assert_int_equal(wav.sample_rate, 22050);
        assert_int_equal(au.n_samples, wav.n_samples);
        assert_true(au.n_samples > 29 * 22050);
        assert_memory_equal(au.samples, wav.samples, au.n_samples * sizeof(float));
        /* 16-bit PCM decodes to k / 32768, never all zero for music. */
        double energy = 0;
        for (size_t i = 0; i < au.n_samples; i++) {
            float k = au.samples[i] * 32768.0f;
            assert_true(k == floorf(k));
            energy += au.samples[i] * au.samples[i];
        }
        assert_true(energy > 0);
        cnk_audio_release(&au);
        cnk_audio_release(&wav);
    }
}

/* Amplitude and frequency of a sine from its projection on the expected frequency (middle part only). */
static double sine_amplitude(const float *x, size_t n, double freq, int sr)
{
    double c = 0, s = 0;
    size_t from = n / 10, to = n - n / 10;
    for (size_t i = from; i < to; i++) {
        double ph = 2 * M_PI * freq * (double)i / sr;
        c += x[i] * cos(ph);
        s += x[i] * sin(ph);
    }
    return 2 * sqrt(c * c + s * s) / (double)(to - from);
}

static void test_resample_keeps_frequency_and_amplitude(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    size_t n = 22050 * 2;
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.5 * sin(2 * M_PI * 440.0 * i / 22050.0));
    float *y;
    size_t m;
    assert_int_equal(cnk_audio_resample(&ctx, x, n, 22050, 16000, &y, &m), CNK_OK);
    assert_int_equal(m, 32000);
    assert_float_equal(sine_amplitude(y, m, 440.0, 16000), 0.5, 2e-3);
    /* Off-frequency projection is tiny: the tone did not move. */
    assert_true(sine_amplitude(y, m, 452.0, 16000) < 0.01);
    /* Sample-by-sample: the resampled signal is the same sine (allowing libsoxr's group delay of 0). */
    double worst = 0;
    for (size_t i = m / 10; i < m - m / 10; i++)
        worst = fmax(worst, fabs(y[i] - 0.5 * sin(2 * M_PI * 440.0 * i / 16000.0)));
    assert_true(worst < 5e-3);
    free(y);
    /* A tone above the new Nyquist is removed. */
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(0.5 * sin(2 * M_PI * 9000.0 * i / 22050.0));
    assert_int_equal(cnk_audio_resample(&ctx, x, n, 22050, 16000, &y, &m), CNK_OK);
    double rms = 0;
    for (size_t i = m / 10; i < m - m / 10; i++)
        rms += y[i] * y[i];
    assert_true(sqrt(rms / (m * 0.8)) < 1e-3);
    free(y);
    assert_int_equal(cnk_audio_resample(&ctx, x, n, 0, 16000, &y, &m), CNK_ERR_ARG);
    free(x);
}

static void test_load_resamples_fsdd_to_22050(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    cnk_audio a, b;
    tu_shared(path, sizeof path, "datasets/fsdd/0/0_george_0.wav");
    assert_int_equal(cnk_audio_load(&ctx, path, 0, &a), CNK_OK);
    assert_int_equal(a.sample_rate, 8000);
    assert_int_equal(cnk_audio_load(&ctx, path, 22050, &b), CNK_OK);
    assert_int_equal(b.sample_rate, 22050);
    assert_int_equal(b.n_samples, (size_t)floor(a.n_samples * 22050.0 / 8000.0 + 0.5));
    cnk_audio_release(&a);
    cnk_audio_release(&b);
}

/* Writes a stereo float WAV with libsndfile: left = 1, right = 0.5 * sin. */
static void write_stereo(const char *path, int frames)
{
    SF_INFO info = {.samplerate = 44100, .channels = 2, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    assert_non_null(sf);
    float *buf = malloc((size_t)frames * 2 * sizeof *buf);
    assert_non_null(buf);
    for (int i = 0; i < frames; i++) {
        buf[2 * i] = 0.25f;
        buf[2 * i + 1] = 0.5f * (float)sin(i * 0.01);
    }
    assert_int_equal(sf_writef_float(sf, buf, frames), frames);
    sf_close(sf);
    free(buf);
}

static void test_stereo_becomes_mean(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "audio-stereo");
    snprintf(path, sizeof path, "%s/stereo.wav", dir);
    write_stereo(path, 1000);
    cnk_audio a;
    assert_int_equal(cnk_audio_load(&ctx, path, 0, &a), CNK_OK);
    assert_int_equal(a.n_samples, 1000);
    assert_int_equal(a.sample_rate, 44100);
    for (int i = 0; i < 1000; i++)
        assert_float_equal(a.samples[i], (0.25f + 0.5f * (float)sin(i * 0.01)) / 2, 1e-6);
    cnk_audio_release(&a);
    tu_rmtree(dir);
}

/* Loading must fail with `status`, a one-line message naming the file. */
static void expect_failure(const char *path, int status)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_audio a;
    int rc = cnk_audio_load(&ctx, path, 22050, &a);
    print_message("%s -> %s\n", cnk_path_base(path), cnk_error(&ctx));
    assert_int_equal(rc, status);
    assert_null(a.samples);
    assert_non_null(strstr(cnk_error(&ctx), path));
    assert_null(strchr(cnk_error(&ctx), '\n'));
}

static void test_bad_inputs_fail_with_one_line(void **state)
{
    (void)state;
    char dir[4096], path[4200], src[4096];
    tu_tmpdir(dir, sizeof dir, "audio-bad");
    snprintf(path, sizeof path, "%s/text.wav", dir);
    FILE *f = fopen(path, "w");
    fputs("this is not audio\n", f);
    fclose(f);
    expect_failure(path, CNK_ERR_INPUT);
    snprintf(path, sizeof path, "%s/empty.wav", dir);
    fclose(fopen(path, "w"));
    expect_failure(path, CNK_ERR_INPUT);
    /* A real WAV cut in the middle of its data: the header promises more frames than exist. */
    tu_shared(src, sizeof src, "datasets/gtzan-mini/wav/rock/rock.00000.wav");
    snprintf(path, sizeof path, "%s/truncated.wav", dir);
    assert_int_equal(tu_system("head -c 100000 '%s' > '%s'", src, path), 0);
    expect_failure(path, CNK_ERR_INPUT);
    /* Header only: zero frames. */
    snprintf(path, sizeof path, "%s/header_only.wav", dir);
    assert_int_equal(tu_system("head -c 44 '%s' > '%s'", src, path), 0);
    expect_failure(path, CNK_ERR_INPUT);
    snprintf(path, sizeof path, "%s/folder.wav", dir);
    assert_int_equal(tu_system("mkdir -p '%s'", path), 0);
    expect_failure(path, CNK_ERR_INPUT);
    snprintf(path, sizeof path, "%s/missing.wav", dir);
    expect_failure(path, CNK_ERR_IO);
    tu_rmtree(dir);
}

static void test_nan_samples_are_refused(void **state)
{
    (void)state;
    char dir[4096], path[4200];
    tu_tmpdir(dir, sizeof dir, "audio-nan");
    snprintf(path, sizeof path, "%s/nan.wav", dir);
    SF_INFO info = {.samplerate = 8000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    assert_non_null(sf);
    float buf[100] = {0};
    buf[50] = NAN;
    sf_writef_float(sf, buf, 100);
    sf_close(sf);
    expect_failure(path, CNK_ERR_INPUT);
    tu_rmtree(dir);
}

static void test_audio_extensions(void **state)
{
    (void)state;
    assert_true(cnk_audio_is_audio_path("a/b.WAV"));
    assert_true(cnk_audio_is_audio_path("x.au"));
    assert_true(cnk_audio_is_audio_path("x.flac"));
    assert_true(cnk_audio_is_audio_path("x.mp3"));
    assert_false(cnk_audio_is_audio_path("x.txt"));
    assert_false(cnk_audio_is_audio_path("wav"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gtzan_au_and_wav_decode_identically),
        cmocka_unit_test(test_resample_keeps_frequency_and_amplitude),
        cmocka_unit_test(test_load_resamples_fsdd_to_22050),
        cmocka_unit_test(test_stereo_becomes_mean),
        cmocka_unit_test(test_bad_inputs_fail_with_one_line),
        cmocka_unit_test(test_nan_samples_are_refused),
        cmocka_unit_test(test_audio_extensions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
