/* Tests for pipeline/audio_params: the defaults chosen from real clips' headers (FSDD's 8 kHz spoken digits
 * get the speech recipe: 1 s segments, liftering, trimming, centring, pitch/tempo augmentation; a GTZAN
 * music clip keeps the 22050 Hz music defaults with none of it), and explicit rates or segments.
 * test-libs: core features pipeline */
#include "testutil.h"

#include <string.h>

#include "pipeline/audio_params.h"

static void choose_for(const char *rel, int sample_rate, double seconds, cnk_preprocess *p)
{
    char path[4096];
    tu_shared(path, sizeof path, rel);
    cnk_item item = {.path = path, .name = path, .label = 0};
    cnk_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.kind = CNK_INPUT_AUDIO;
    ds.items = &item;
    ds.n_items = 1;
    cnk_preprocess_defaults(p, CNK_PREP_MEL);
    cnk_audio_params_choose(&ds, sample_rate, seconds, p);
}

static void test_speech_defaults(void **state)
{
    (void)state;
    cnk_preprocess p;
    choose_for("datasets/fsdd/0/0_george_0.wav", 0, 0, &p);
    assert_int_equal(p.sample_rate, 8000);
    assert_true(p.n_fft == 512 && p.hop_length == 128 && p.n_mels == 64);
    assert_int_equal(p.segment_frames, 32); /* a 0.3 s clip: the shortest segment, 0.5 s (31.25 hops) */
    assert_true(cnk_audio_params_is_speech(&p));
    assert_float_equal(p.top_db, 40, 0);
    assert_int_equal(p.lifter, 20);
    assert_float_equal(p.trim_db, 40, 0);
    assert_int_equal(p.center, 1);
    cnk_augment_params aug;
    cnk_augment_defaults_spectrogram(&aug, p.n_mels, p.segment_frames, 0);
    cnk_audio_params_augment(&p, &aug);
    assert_float_equal(aug.freq_warp, 0.15, 1e-6);
    assert_float_equal(aug.time_stretch, 0.30, 1e-6);
    assert_int_equal(aug.max_time_shift, 4); /* the rest as for any spectrogram: T / 8 */
}

static void test_music_defaults(void **state)
{
    (void)state;
    cnk_preprocess p;
    choose_for("datasets/gtzan-mini/wav/blues/blues.00000.wav", 0, 0, &p);
    assert_int_equal(p.sample_rate, 22050);
    assert_true(p.n_fft == 2048 && p.hop_length == 512 && p.n_mels == 128);
    assert_int_equal(p.segment_frames, 130); /* 3 s */
    assert_false(cnk_audio_params_is_speech(&p));
    assert_true(p.top_db == 80 && p.lifter == 0 && p.trim_db == 0 && p.center == 0);
    assert_int_equal(p.clip_norm, CNK_CLIP_NORM_NONE);
    cnk_augment_params aug;
    cnk_augment_defaults_spectrogram(&aug, p.n_mels, p.segment_frames, 0);
    cnk_audio_params_augment(&p, &aug);
    assert_true(aug.freq_warp == 0 && aug.time_stretch == 0);
    /* 8 kHz music-length segments (3 s asked for) are not treated as speech either */
    choose_for("datasets/fsdd/0/0_george_0.wav", 0, 3.0, &p);
    assert_int_equal(p.sample_rate, 8000);
    assert_false(cnk_audio_params_is_speech(&p));
    assert_int_equal(p.lifter, 0);
    /* nor are FSDD clips resampled to a music rate */
    choose_for("datasets/fsdd/0/0_george_0.wav", 22050, 0, &p);
    assert_false(cnk_audio_params_is_speech(&p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_speech_defaults),
        cmocka_unit_test(test_music_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
