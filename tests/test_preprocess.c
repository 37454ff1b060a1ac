/* Tests for pipeline/preprocess: the model-file text round trip (what makes predict apply exactly what
 * training used), strict parsing, segments with silence padding, normalisation fits, and features of real
 * files (audio through features/ gives the same mel as calling features/ directly; a real JPEG).
 * test-libs: core features nn pipeline */
#include "testutil.h"

#include <math.h>
#include <sndfile.h>
#include <stdlib.h>
#include <string.h>

#include "features/audio.h"
#include "features/spectrogram.h"
#include "pipeline/demo_data.h"
#include "pipeline/preprocess.h"

static void test_text_round_trip(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    for (int kind = 0; kind < CNK_PREP_KIND_COUNT; kind++) {
        cnk_preprocess a, b;
        cnk_preprocess_defaults(&a, (cnk_prep_kind)kind);
        a.sample_rate = 8000;
        a.fmin = 12.5f;
        cnk_preprocess_set_segment_seconds(&a, 1.0);
        a.clip_norm = kind % CNK_CLIP_NORM_COUNT;
        a.lifter = kind * 3;
        a.trim_db = kind * 10.5f;
        a.center = kind % 2;
        a.n_norm = kind == CNK_PREP_CSV ? 57 : 1;
        for (int i = 0; i < a.n_norm; i++) {
            a.mean[i] = -42.123456789f + (float)i / 3;
            a.std[i] = 17.0f / (float)(i + 1);
        }
        char *text = NULL;
        assert_int_equal(cnk_preprocess_to_text(&ctx, &a, &text), CNK_OK);
        assert_int_equal(cnk_preprocess_from_text(&ctx, text, "m.cnk", &b), CNK_OK);
        assert_memory_equal(&a, &b, sizeof a); /* every field, floats bit for bit */
        free(text);
    }
}

static void test_text_errors(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_preprocess a, b;
    cnk_preprocess_defaults(&a, CNK_PREP_MEL);
    a.n_norm = 1;
    a.mean[0] = -50;
    a.std[0] = 20;
    char *text = NULL;
    assert_int_equal(cnk_preprocess_to_text(&ctx, &a, &text), CNK_OK);
    /* a missing key */
    char *cut = strdup(text);
    char *line = strstr(cut, "hop_length=");
    memmove(line, strchr(line, '\n') + 1, strlen(strchr(line, '\n') + 1) + 1);
    assert_int_equal(cnk_preprocess_from_text(&ctx, cut, "m.cnk", &b), CNK_ERR_INPUT);
    assert_string_equal(cnk_error(&ctx), "m.cnk: preprocessing lacks 'hop_length'");
    free(cut);
    /* a bad value, a zero std, an unknown kind */
    const char *edits[][2] = {{"n_mels=128", "n_mels=12x"}, {"std=20", "std=0"}, {"input=mel", "input=smell"}};
    for (int e = 0; e < 3; e++) {
        char *bad = malloc(strlen(text) + 16);
        char *at = strstr(text, edits[e][0]);
        assert_non_null(at);
        sprintf(bad, "%.*s%s%s", (int)(at - text), text, edits[e][1], at + strlen(edits[e][0]));
        assert_int_equal(cnk_preprocess_from_text(&ctx, bad, "m.cnk", &b), CNK_ERR_INPUT);
        assert_non_null(strstr(cnk_error(&ctx), "m.cnk"));
        free(bad);
    }
    free(text);
}

static void test_segments_pad_with_silence_and_normalise(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_preprocess p;
    cnk_preprocess_defaults(&p, CNK_PREP_MEL);
    p.n_mels = 2;
    p.segment_frames = 4;
    p.segment_hop = 3;
    p.train_hop = 2;
    p.min_fill = 1;
    p.n_norm = 1;
    p.mean[0] = 1;
    p.std[0] = 2;
    float data[2 * 7] = {0, 1, 2, 3, 4, 5, 6, /* row 1: */ -8, 11, 12, 13, 14, 15, 16};
    cnk_array f = {data, 2, {2, 7}};
    assert_int_equal(cnk_preprocess_n_segments(&p, &f, 0), 2); /* starts 0, 3 */
    assert_int_equal(cnk_preprocess_n_segments(&p, &f, 1), 3); /* starts 0, 2, 4 */
    int c, h, w;
    cnk_preprocess_input_shape(&p, &c, &h, &w);
    assert_true(c == 1 && h == 2 && w == 4);
    float out[8];
    assert_int_equal(cnk_preprocess_segment(&ctx, &p, &f, 1, 0, out), CNK_OK);
    /* frames 3..6 of each row; frame 7 is padding = the clip's minimum (-8); then (x - 1) / 2 */
    float want[8] = {1, 1.5f, 2, 2.5f, 6, 6.5f, 7, 7.5f};
    assert_memory_equal(out, want, sizeof want);
    assert_int_equal(cnk_preprocess_segment(&ctx, &p, &f, 2, 1, out), CNK_OK); /* train hop: frames 4..7 */
    float want_train[8] = {1.5f, 2, 2.5f, -4.5f, 6.5f, 7, 7.5f, -4.5f};
    assert_memory_equal(out, want_train, sizeof want_train);
    /* a feature array of the wrong height is refused */
    cnk_array wrong = {data, 2, {1, 14}};
    assert_int_equal(cnk_preprocess_segment(&ctx, &p, &wrong, 0, 0, out), CNK_ERR_INPUT);
}

static void test_fit(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_preprocess p;
    cnk_preprocess_defaults(&p, CNK_PREP_IMAGE);
    p.channels = 2;
    float a[4] = {1, 3, 10, 10}, b[4] = {5, 7, 20, 20}; /* channel 0: 1,3,5,7; channel 1: 10,10,20,20 */
    cnk_array fa = {a, 3, {2, 1, 2}}, fb = {b, 3, {2, 1, 2}};
    const cnk_array *arrays[3] = {&fa, NULL, &fb};
    assert_int_equal(cnk_preprocess_fit(&ctx, &p, arrays, 3), CNK_OK);
    assert_int_equal(p.n_norm, 2);
    assert_float_equal(p.mean[0], 4, 1e-6);
    assert_float_equal(p.std[0], sqrt(5.0), 1e-6);
    assert_float_equal(p.mean[1], 15, 1e-6);
    assert_float_equal(p.std[1], 5, 1e-6);
    /* CSV rows: per feature, population std (as StandardScaler); a constant column gets std 1 */
    cnk_preprocess q;
    cnk_preprocess_defaults(&q, CNK_PREP_CSV);
    float rows[6] = {1, 7, 2, 7, 3, 7};
    assert_int_equal(cnk_preprocess_fit_rows(&ctx, &q, rows, 3, 2), CNK_OK);
    assert_float_equal(q.mean[0], 2, 1e-6);
    assert_float_equal(q.std[0], sqrt(2.0 / 3.0), 1e-6);
    assert_float_equal(q.std[1], 1, 0);
    float raw[2] = {3, 7}, norm[2];
    cnk_preprocess_normalise(&q, raw, 2, norm);
    assert_float_equal(norm[0], 1 / sqrt(2.0 / 3.0), 1e-5);
    assert_float_equal(norm[1], 0, 0);
}

static void write_demo_wav(const char *path, const cnk_demo_params *dp)
{
    cnk_ctx ctx;
    tu_ctx(&ctx);
    size_t n = cnk_demo_clip_length(dp);
    float *x = malloc(n * sizeof *x);
    assert_int_equal(cnk_demo_render(&ctx, dp, 3, 0, x), CNK_OK);
    SF_INFO info = {.samplerate = dp->sample_rate, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    assert_non_null(sf);
    assert_int_equal(sf_writef_float(sf, x, (sf_count_t)n), (sf_count_t)n);
    sf_close(sf);
    free(x);
}

static void test_mel_features_match_features_module(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char dir[4096], wav[4200];
    tu_tmpdir(dir, sizeof dir, "prep");
    snprintf(wav, sizeof wav, "%s/pluck.wav", dir);
    cnk_demo_params dp;
    cnk_demo_default_params(&dp);
    dp.seconds = 1.5;
    dp.sample_rate = 16000;
    write_demo_wav(wav, &dp);

    cnk_preprocess p;
    cnk_preprocess_defaults(&p, CNK_PREP_MEL);
    p.sample_rate = 8000; /* resampled on load */
    p.n_fft = 512;
    p.hop_length = 128;
    p.n_mels = 64;
    cnk_prep_worker *w;
    assert_int_equal(cnk_prep_worker_create(&ctx, &p, &w), CNK_OK);
    cnk_array f;
    assert_int_equal(cnk_preprocess_file(&ctx, w, wav, &f), CNK_OK);
    cnk_prep_worker_free(w);
    assert_int_equal(f.ndim, 2);
    assert_int_equal(f.shape[0], 64);
    assert_int_equal(f.shape[1], 12000 / 128 + 1); /* centred frames */

    /* the same through features/ directly: decode at 8 kHz, librosa mel, power_to_db(ref 1, top_db 80) */
    cnk_audio audio;
    assert_int_equal(cnk_audio_load(&ctx, wav, 8000, &audio), CNK_OK);
    cnk_spec_params sp;
    cnk_spec_params_default(&sp, 8000);
    sp.n_fft = 512;
    sp.hop_length = 128;
    sp.n_mels = 64;
    cnk_spec *spec;
    assert_int_equal(cnk_spec_create(&ctx, &sp, &spec), CNK_OK);
    size_t frames = cnk_spec_n_frames(spec, audio.n_samples);
    assert_int_equal(frames, f.shape[1]);
    float *want = malloc(64 * frames * sizeof *want);
    assert_int_equal(cnk_spec_compute(spec, audio.samples, audio.n_samples, want), CNK_OK);
    cnk_power_to_db(want, 64 * frames, 1.0f, 1e-10f, 80.0f);
    float peak = want[0], low = want[0];
    for (size_t i = 0; i < 64 * frames; i++) peak = fmaxf(peak, want[i]), low = fminf(low, want[i]);
    assert_true(peak - low <= 80.0f + 1e-3f && peak - low > 40.0f);
    /* db_ref=max (the default): relative to the clip's loudest bin, as librosa's ref=np.max */
    assert_int_equal(p.db_ref_max, 1);
    for (size_t i = 0; i < 64 * frames; i++) want[i] -= peak;
    assert_memory_equal(f.data, want, 64 * frames * sizeof *want);
    /* and a quieter recording of the same clip gives the same features */
    cnk_prep_worker *w2;
    for (size_t i = 0; i < audio.n_samples; i++) audio.samples[i] *= 0.1f; /* -20 dB */
    SF_INFO info = {.samplerate = 8000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    char quiet[4300];
    snprintf(quiet, sizeof quiet, "%s/quiet.wav", dir);
    SNDFILE *sf = sf_open(quiet, SFM_WRITE, &info);
    assert_non_null(sf);
    sf_writef_float(sf, audio.samples, (sf_count_t)audio.n_samples);
    sf_close(sf);
    assert_int_equal(cnk_prep_worker_create(&ctx, &p, &w2), CNK_OK);
    cnk_array g;
    assert_int_equal(cnk_preprocess_file(&ctx, w2, quiet, &g), CNK_OK);
    cnk_prep_worker_free(w2);
    tu_assert_close(g.data, f.data, 64 * frames, 1e-3, 0, "features of a 20 dB quieter clip");
    cnk_array_release(&g);
    free(want);
    cnk_spec_free(spec);
    cnk_audio_release(&audio);
    cnk_array_release(&f);

    /* a file that is not audio fails with its name */
    snprintf(wav, sizeof wav, "%s/bad.wav", dir);
    FILE *fp = fopen(wav, "w");
    fputs("not a wav", fp);
    fclose(fp);
    assert_int_equal(cnk_prep_worker_create(&ctx, &p, &w), CNK_OK);
    assert_int_not_equal(cnk_preprocess_file(&ctx, w, wav, &f), CNK_OK);
    assert_non_null(strstr(cnk_error(&ctx), "bad.wav"));
    assert_null(f.data);
    cnk_prep_worker_free(w);
    tu_rmtree(dir);
}

/* Per-clip normalisation of each band: known answers, and what it is for: a constant gain per band (a
 * microphone's or a vocal tract's colouring, in dB an offset per row) disappears, and with CMVN a
 * per-band contrast change too. */
static void test_clip_norm(void **state)
{
    (void)state;
    float x[2 * 4] = {1, 2, 3, 4, 5, 5, 5, 5};
    cnk_preprocess_clip_norm(CNK_CLIP_NORM_CMN, x, 2, 4);
    const float cmn[8] = {-1.5f, -0.5f, 0.5f, 1.5f, 0, 0, 0, 0};
    tu_assert_close(x, cmn, 8, 1e-6, 0, "CMN of [1 2 3 4; 5 5 5 5]");
    float y[2 * 4] = {1, 2, 3, 4, 5, 5, 5, 5};
    cnk_preprocess_clip_norm(CNK_CLIP_NORM_CMVN, y, 2, 4);
    double sd = sqrt(1.25) + 1e-3; /* population std of 1..4, plus the guard */
    const float cmvn[8] = {(float)(-1.5 / sd), (float)(-0.5 / sd), (float)(0.5 / sd), (float)(1.5 / sd), 0, 0, 0, 0};
    tu_assert_close(y, cmvn, 8, 1e-6, 0, "CMVN of [1 2 3 4; 5 5 5 5]");
    float z[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    cnk_preprocess_clip_norm(CNK_CLIP_NORM_NONE, z, 2, 4);
    assert_true(z[0] == 1 && z[7] == 8);

    enum { ROWS = 16, FRAMES = 40 };
    float base[ROWS * FRAMES], coloured[ROWS * FRAMES];
    for (int r = 0; r < ROWS; r++)
        for (int t = 0; t < FRAMES; t++) {
            base[r * FRAMES + t] = -40.0f + 30.0f * sinf(0.3f * t + r) * cosf(0.11f * r * t);
            coloured[r * FRAMES + t] = (base[r * FRAMES + t] - 7.0f * r) * (1.0f + 0.05f * r);
        }
    float a[ROWS * FRAMES], b[ROWS * FRAMES];
    memcpy(a, base, sizeof a);
    memcpy(b, coloured, sizeof b);
    cnk_preprocess_clip_norm(CNK_CLIP_NORM_CMVN, a, ROWS, FRAMES);
    cnk_preprocess_clip_norm(CNK_CLIP_NORM_CMVN, b, ROWS, FRAMES);
    tu_assert_close(b, a, ROWS * FRAMES, 2e-3, 0, "CMVN of a clip with a gain and contrast per band");
    for (int r = 0; r < ROWS; r++) { /* every band: mean 0, std ~1 */
        double m = 0, v = 0;
        for (int t = 0; t < FRAMES; t++) m += a[r * FRAMES + t] / FRAMES;
        for (int t = 0; t < FRAMES; t++) v += (a[r * FRAMES + t] - m) * (a[r * FRAMES + t] - m) / FRAMES;
        assert_true(fabs(m) < 1e-5 && fabs(sqrt(v) - 1) < 1e-3);
    }
}

/* clip_norm in the model text (absent in older models: none) and in the feature cache key; a real file's
 * features are the dB spectrogram with each band normalised. */
static void test_clip_norm_in_preprocessing(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_preprocess p, q;
    cnk_preprocess_defaults(&p, CNK_PREP_MEL);
    assert_int_equal(p.clip_norm, CNK_CLIP_NORM_NONE);
    char key_none[512], key_cmvn[512];
    cnk_preprocess_feature_key(&p, key_none, sizeof key_none);
    assert_null(strstr(key_none, "clip_norm")); /* caches made before clip_norm stay valid */
    p.clip_norm = CNK_CLIP_NORM_CMVN;
    cnk_preprocess_feature_key(&p, key_cmvn, sizeof key_cmvn);
    assert_non_null(strstr(key_cmvn, " clip_norm=cmvn"));
    char *text = NULL;
    assert_int_equal(cnk_preprocess_to_text(&ctx, &p, &text), CNK_OK);
    char *line = strstr(text, "clip_norm=cmvn\n");
    assert_non_null(line);
    assert_int_equal(cnk_preprocess_from_text(&ctx, text, "m.cnk", &q), CNK_OK);
    assert_int_equal(q.clip_norm, CNK_CLIP_NORM_CMVN);
    memcpy(line, "clip_norm=xmvn", 14);
    assert_int_equal(cnk_preprocess_from_text(&ctx, text, "m.cnk", &q), CNK_ERR_INPUT);
    assert_string_equal(cnk_error(&ctx), "m.cnk: preprocessing 'clip_norm' must be none, cmn or cmvn");
    memmove(line, line + 15, strlen(line + 15) + 1); /* an older model without the line */
    assert_int_equal(cnk_preprocess_from_text(&ctx, text, "m.cnk", &q), CNK_OK);
    assert_int_equal(q.clip_norm, CNK_CLIP_NORM_NONE);
    free(text);

    char path[4096];
    tu_shared(path, sizeof path, "datasets/fsdd/7/7_theo_12.wav");
    p.sample_rate = 8000, p.n_fft = 512, p.hop_length = 128, p.n_mels = 64;
    cnk_array f[2];
    for (int m = 0; m < 2; m++) {
        p.clip_norm = m ? CNK_CLIP_NORM_CMVN : CNK_CLIP_NORM_NONE;
        cnk_prep_worker *w;
        assert_int_equal(cnk_prep_worker_create(&ctx, &p, &w), CNK_OK);
        assert_int_equal(cnk_preprocess_file(&ctx, w, path, &f[m]), CNK_OK);
        cnk_prep_worker_free(w);
    }
    assert_int_equal(f[1].shape[0], 64);
    assert_int_equal(f[1].shape[1], f[0].shape[1]);
    cnk_preprocess_clip_norm(CNK_CLIP_NORM_CMVN, f[0].data, f[0].shape[0], f[0].shape[1]);
    assert_memory_equal(f[0].data, f[1].data, cnk_array_count(&f[0]) * sizeof(float));
    cnk_array_release(&f[0]);
    cnk_array_release(&f[1]);
}

/* Liftering: all coefficients kept is the identity, one keeps each frame's mean, and a cosine across the
 * rows passes when its DCT index is kept and vanishes when not (scipy.fft.dct(..., norm='ortho') basis). */
static void test_lifter(void **state)
{
    (void)state;
    enum { R = 16, T = 3 };
    float m[R * R], x[R * T], y[R * T], scratch[R * T];
    cnk_preprocess_lifter_matrix(R, R, m);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < R; j++) assert_float_equal(m[i * R + j], i == j, 1e-6);
    cnk_preprocess_lifter_matrix(R, 1, m);
    for (int i = 0; i < R * T; i++) x[i] = (float)((i * 7919) % 23) - 11.0f;
    memcpy(y, x, sizeof y);
    cnk_preprocess_lifter_apply(m, y, R, T, scratch);
    for (int t = 0; t < T; t++) {
        double mean = 0;
        for (int r = 0; r < R; r++) mean += x[r * T + t] / (double)R;
        for (int r = 0; r < R; r++) assert_float_equal(y[r * T + t], mean, 1e-5);
    }
    cnk_preprocess_lifter_matrix(R, 5, m);
    for (int k = 0; k < 8; k++) {
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++) x[r * T + t] = (float)((t + 1) * cos(M_PI * k * (2 * r + 1) / (2.0 * R)));
        memcpy(y, x, sizeof y);
        cnk_preprocess_lifter_apply(m, y, R, T, scratch);
        for (int i = 0; i < R * T; i++) assert_float_equal(y[i], k < 5 ? x[i] : 0.0f, 1e-5);
    }
    /* in the model text and the cache key, and a real clip's features are P times the plain ones */
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_preprocess p, q;
    cnk_preprocess_defaults(&p, CNK_PREP_MEL);
    p.sample_rate = 8000, p.n_fft = 512, p.hop_length = 128, p.n_mels = 64;
    char key[512];
    cnk_preprocess_feature_key(&p, key, sizeof key);
    assert_null(strstr(key, "lifter"));
    p.lifter = 20;
    cnk_preprocess_feature_key(&p, key, sizeof key);
    assert_non_null(strstr(key, " lifter=20"));
    char *text = NULL;
    assert_int_equal(cnk_preprocess_to_text(&ctx, &p, &text), CNK_OK);
    assert_int_equal(cnk_preprocess_from_text(&ctx, text, "m.cnk", &q), CNK_OK);
    assert_int_equal(q.lifter, 20);
    char *line = strstr(text, "lifter=20\n");
    memmove(line, line + 10, strlen(line + 10) + 1); /* an older model without the line: off */
    assert_int_equal(cnk_preprocess_from_text(&ctx, text, "m.cnk", &q), CNK_OK);
    assert_int_equal(q.lifter, 0);
    free(text);
    char path[4096];
    tu_shared(path, sizeof path, "datasets/fsdd/3/3_lucas_7.wav");
    cnk_array f[2];
    for (int v = 0; v < 2; v++) {
        p.lifter = v ? 20 : 0;
        cnk_prep_worker *w;
        assert_int_equal(cnk_prep_worker_create(&ctx, &p, &w), CNK_OK);
        assert_int_equal(cnk_preprocess_file(&ctx, w, path, &f[v]), CNK_OK);
        cnk_prep_worker_free(w);
    }
    size_t frames = f[0].shape[1];
    /* top_db 40 instead of 80: every bin at least 40 dB below the peak becomes -40 */
    p.lifter = 0;
    p.top_db = 40;
    cnk_preprocess_feature_key(&p, key, sizeof key);
    assert_non_null(strstr(key, " top_db=40"));
    cnk_prep_worker *w40;
    cnk_array g;
    assert_int_equal(cnk_prep_worker_create(&ctx, &p, &w40), CNK_OK);
    assert_int_equal(cnk_preprocess_file(&ctx, w40, path, &g), CNK_OK);
    cnk_prep_worker_free(w40);
    float lowest = 0;
    for (size_t i = 0; i < 64 * frames; i++) {
        assert_float_equal(g.data[i], fmaxf(f[0].data[i], -40.0f), 1e-4);
        lowest = fminf(lowest, f[0].data[i]);
    }
    assert_true(lowest < -60); /* the clip does reach below the new floor */
    cnk_array_release(&g);
    /* trimming at 40 dB with that floor still finds the silence (it looks before the floor is raised) */
    p.trim_db = 40;
    assert_int_equal(cnk_prep_worker_create(&ctx, &p, &w40), CNK_OK);
    assert_int_equal(cnk_preprocess_file(&ctx, w40, path, &g), CNK_OK);
    cnk_prep_worker_free(w40);
    float *plain = malloc(64 * frames * sizeof *plain);
    memcpy(plain, f[0].data, 64 * frames * sizeof *plain);
    size_t kept = cnk_preprocess_trim(plain, 64, frames, 40);
    assert_true(kept < frames);
    assert_int_equal(g.shape[1], kept);
    for (size_t i = 0; i < 64 * kept; i++) assert_float_equal(g.data[i], fmaxf(plain[i], -40.0f), 1e-4);
    free(plain);
    cnk_array_release(&g);
    p.trim_db = 0;
    float *pm = malloc(64 * 64 * sizeof *pm), *sc = malloc(64 * frames * sizeof *sc);
    cnk_preprocess_lifter_matrix(64, 20, pm);
    cnk_preprocess_lifter_apply(pm, f[0].data, 64, frames, sc);
    tu_assert_close(f[1].data, f[0].data, 64 * frames, 1e-3, 0, "liftered features");
    free(pm);
    free(sc);
    cnk_array_release(&f[0]);
    cnk_array_release(&f[1]);
}

/* Trimming: frames whose loudest band is more than trim_db below the peak go from both ends only; centring:
 * a short clip lands in the segment's middle with its silence level on both sides. */
static void test_trim_and_center(void **state)
{
    (void)state;
    /* 2 rows x 7 frames; frame maxima -70 -50 0 -60 -10 -45 -80 */
    float x[14] = {-70, -50, 0, -60, -10, -45, -80, -75, -55, -3, -61, -20, -80, -80};
    size_t n = cnk_preprocess_trim(x, 2, 7, 40);
    assert_int_equal(n, 3); /* frames 2..4: -60 in the middle stays */
    const float want[6] = {0, -60, -10, -3, -61, -20};
    assert_memory_equal(x, want, sizeof want);
    float y[4] = {-90, -1, -90, -2};
    assert_int_equal(cnk_preprocess_trim(y, 1, 4, 40), 3); /* frame 1 to the last loud frame 3 */
    assert_true(y[0] == -1 && y[1] == -90 && y[2] == -2);

    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_preprocess p;
    cnk_preprocess_defaults(&p, CNK_PREP_MEL);
    p.n_mels = 2;
    p.segment_frames = 8, p.segment_hop = 4, p.train_hop = 2, p.min_fill = 2;
    p.center = 1;
    float data[6] = {1, 2, 3, -5, 5, 6};
    cnk_array f = {.data = data, .ndim = 2, .shape = {2, 3}};
    float out[16];
    assert_int_equal(cnk_preprocess_segment(&ctx, &p, &f, 0, 1, out), CNK_OK);
    const float centred[16] = {-5, -5, 1, 2, 3, -5, -5, -5, -5, -5, -5, 5, 6, -5, -5, -5};
    assert_memory_equal(out, centred, sizeof centred);
    p.center = 0;
    assert_int_equal(cnk_preprocess_segment(&ctx, &p, &f, 0, 1, out), CNK_OK);
    const float start[16] = {1, 2, 3, -5, -5, -5, -5, -5, -5, 5, 6, -5, -5, -5, -5, -5};
    assert_memory_equal(out, start, sizeof start);
}

static void test_image_features(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    char path[4096];
    tu_shared(path, sizeof path, "datasets/animals3/panda/panda_00003.jpg");
    cnk_preprocess p;
    cnk_preprocess_defaults(&p, CNK_PREP_IMAGE);
    assert_true(p.channels == 3 && p.width == 64 && p.height == 64);
    cnk_prep_worker *w;
    assert_int_equal(cnk_prep_worker_create(&ctx, &p, &w), CNK_OK);
    cnk_array f;
    assert_int_equal(cnk_preprocess_file(&ctx, w, path, &f), CNK_OK);
    assert_int_equal(f.ndim, 3);
    assert_true(f.shape[0] == 3 && f.shape[1] == 64 && f.shape[2] == 64);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < cnk_array_count(&f); i++) lo = fminf(lo, f.data[i]), hi = fmaxf(hi, f.data[i]);
    assert_true(lo >= 0 && hi <= 1 && hi - lo > 0.3f);
    cnk_array_release(&f);
    cnk_prep_worker_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_round_trip),
        cmocka_unit_test(test_text_errors),
        cmocka_unit_test(test_segments_pad_with_silence_and_normalise),
        cmocka_unit_test(test_fit),
        cmocka_unit_test(test_mel_features_match_features_module),
        cmocka_unit_test(test_image_features),
        cmocka_unit_test(test_clip_norm),
        cmocka_unit_test(test_clip_norm_in_preprocessing),
        cmocka_unit_test(test_lifter),
        cmocka_unit_test(test_trim_and_center),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
