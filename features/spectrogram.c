#include "features/spectrogram.h"

#include <fftw3.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "features/fftw_planner.h"

#define SPEC_MAX_N_FFT 65536
/* Frames are computed in blocks so each output row receives SPEC_BLOCK consecutive values at once (one
 * cache line) instead of one scattered store per row per frame. */
#define SPEC_BLOCK 16

/* One mel filter: weights[0..count) apply to FFT bins first..first+count (sparse: a filter touches few bins). */
typedef struct mel_filter {
    int first;
    int count;
    size_t offset; /* into cnk_spec.weights */
} mel_filter;

struct cnk_spec {
    cnk_spec_params params;
    int n_bins;        /* n_fft/2 + 1 */
    int window_offset; /* where the window starts inside the n_fft buffer */
    int win_length;
    float *window; /* win_length values */
    float *frame;  /* n_fft, FFTW-aligned */
    fftwf_complex *spectrum;
    float *bin_values; /* |X|^power of one frame */
    float *block;      /* SPEC_BLOCK frames x rows, before the transposed write */
    fftwf_plan plan;
    /* The raw STFT runs in double precision: a bin 80 dB below its frame's peak keeps ~2e-4 relative error
     * through a float FFT (1e-3 dB), in double ~1e-12. Mel sums many bins and averages that error away, so it
     * keeps the faster float path (within 5e-4 dB of librosa). STFT only: */
    double *window_d;
    double *frame_d;
    fftw_complex *spectrum_d;
    fftw_plan plan_d;
    mel_filter *filters; /* n_mels, mel only */
    float *weights;
};

void cnk_spec_params_default(cnk_spec_params *p, int sample_rate)
{
    memset(p, 0, sizeof *p);
    p->kind = CNK_SPEC_MEL;
    p->sample_rate = sample_rate;
    p->n_fft = 2048;
    p->hop_length = 512;
    p->n_mels = 128;
    p->power = 2;
    p->center = 1;
    p->pad_mode = CNK_PAD_CONSTANT;
    p->mel_scale = CNK_MEL_SCALE_SLANEY;
    p->mel_norm = CNK_MEL_NORM_SLANEY;
    p->mel_interp = CNK_MEL_TRIANGLE_HZ;
    p->frame_layout = CNK_FRAME_LIBROSA;
}

void cnk_spec_params_yamnet(cnk_spec_params *p)
{
    cnk_spec_params_default(p, 16000);
    p->n_fft = 512;
    p->win_length = 400;
    p->hop_length = 160;
    p->n_mels = 64;
    p->fmin = 125.0;
    p->fmax = 7500.0;
    p->power = 1;
    p->center = 0;
    p->mel_scale = CNK_MEL_SCALE_HTK;
    p->mel_norm = CNK_MEL_NORM_NONE;
    p->mel_interp = CNK_MEL_TRIANGLE_MEL;
    p->frame_layout = CNK_FRAME_TF;
}

double cnk_hz_to_mel(double hz, cnk_mel_scale scale)
{
    if (scale == CNK_MEL_SCALE_HTK) return 2595.0 * log10(1.0 + hz / 700.0);
    /* Slaney: linear below 1 kHz, logarithmic above (librosa's constants). */
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    if (hz >= min_log_hz) return min_log_mel + log(hz / min_log_hz) / logstep;
    return hz / f_sp;
}

double cnk_mel_to_hz(double mel, cnk_mel_scale scale)
{
    if (scale == CNK_MEL_SCALE_HTK) return 700.0 * (pow(10.0, mel / 2595.0) - 1.0);
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    if (mel >= min_log_mel) return min_log_hz * exp(logstep * (mel - min_log_mel));
    return f_sp * mel;
}

static int check_params(cnk_ctx *ctx, const cnk_spec_params *p)
{
    if (p->kind != CNK_SPEC_STFT && p->kind != CNK_SPEC_MEL) return cnk_fail(ctx, CNK_ERR_ARG, "spectrogram: bad kind");
    if (p->sample_rate < 1) return cnk_fail(ctx, CNK_ERR_ARG, "spectrogram: bad sample rate %d", p->sample_rate);
    if (p->n_fft < 2 || p->n_fft > SPEC_MAX_N_FFT)
        return cnk_fail(ctx, CNK_ERR_ARG, "spectrogram: n_fft %d outside 2..%d", p->n_fft, SPEC_MAX_N_FFT);
    if (p->win_length < 0 || p->win_length > p->n_fft)
        return cnk_fail(ctx, CNK_ERR_ARG, "spectrogram: win_length %d outside 1..n_fft", p->win_length);
    if (p->hop_length < 1) return cnk_fail(ctx, CNK_ERR_ARG, "spectrogram: hop %d must be >= 1", p->hop_length);
    if (p->power != 1 && p->power != 2) return cnk_fail(ctx, CNK_ERR_ARG, "spectrogram: power must be 1 or 2");
    if (p->kind == CNK_SPEC_STFT) return CNK_OK;
    double f_max = p->fmax > 0 ? p->fmax : p->sample_rate / 2.0;
    if (p->n_mels < 1 || p->n_mels > 4096)
        return cnk_fail(ctx, CNK_ERR_ARG, "spectrogram: n_mels %d outside 1..4096", p->n_mels);
    if (!(p->fmin >= 0) || !(f_max > p->fmin) || f_max > p->sample_rate / 2.0 + 1e-9)
        return cnk_fail(ctx, CNK_ERR_ARG, "spectrogram: need 0 <= fmin (%g) < fmax (%g) <= sample_rate/2 (%g)", p->fmin,
                        f_max, p->sample_rate / 2.0);
    return CNK_OK;
}

/* Triangle weight of FFT bin frequency f for the filter with edges lo < mid < hi (all in the
 * interpolation domain: Hz for librosa, mel for TensorFlow). */
static double triangle(double f, double lo, double mid, double hi)
{
    double lower = (f - lo) / (mid - lo), upper = (hi - f) / (hi - mid);
    double w = lower < upper ? lower : upper;
    return w > 0 ? w : 0;
}

/* librosa.filters.mel (and TensorFlow's variant), kept sparse: each filter stores its nonzero run of bins. */
static int build_mel_filters(cnk_ctx *ctx, cnk_spec *s)
{
    const cnk_spec_params *p = &s->params;
    int n_mels = p->n_mels, n_bins = s->n_bins;
    double f_max = p->fmax > 0 ? p->fmax : p->sample_rate / 2.0;
    int tf = p->mel_interp == CNK_MEL_TRIANGLE_MEL;
    double *edges = malloc((size_t)(n_mels + 2) * sizeof *edges);
    double *dense = malloc((size_t)n_bins * sizeof *dense);
    s->filters = calloc((size_t)n_mels, sizeof *s->filters);
    s->weights = malloc((size_t)n_mels * (size_t)n_bins * sizeof *s->weights);
    if (!edges || !dense || !s->filters || !s->weights) {
        free(edges);
        free(dense);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "spectrogram: out of memory for %d mel filters", n_mels);
    }
    double mel_lo = cnk_hz_to_mel(p->fmin, p->mel_scale), mel_hi = cnk_hz_to_mel(f_max, p->mel_scale);
    for (int i = 0; i < n_mels + 2; i++) {
        double mel = mel_lo + (mel_hi - mel_lo) * i / (n_mels + 1);
        edges[i] = tf ? mel : cnk_mel_to_hz(mel, p->mel_scale);
    }
    size_t used = 0;
    for (int m = 0; m < n_mels; m++) {
        double enorm = 1.0;
        if (p->mel_norm == CNK_MEL_NORM_SLANEY && !tf) enorm = 2.0 / (edges[m + 2] - edges[m]);
        int first = -1, last = -1;
        for (int k = 0; k < n_bins; k++) {
            /* librosa: rfftfreq (k * sr / n_fft); TensorFlow: linspace(0, sr/2, n_bins). Equal for even n_fft. */
            double hz = tf ? (double)k * (p->sample_rate / 2.0) / (n_bins > 1 ? n_bins - 1 : 1)
                           : (double)k * p->sample_rate / p->n_fft;
            double f = tf ? cnk_hz_to_mel(hz, p->mel_scale) : hz;
            dense[k] = (tf && k == 0) ? 0.0 : triangle(f, edges[m], edges[m + 1], edges[m + 2]) * enorm;
            /* librosa casts the filterbank to float32; a weight that rounds to zero contributes nothing. */
            if ((float)dense[k] != 0.0f) {
                if (first < 0) first = k;
                last = k;
            }
        }
        mel_filter *flt = &s->filters[m];
        flt->offset = used;
        flt->first = first < 0 ? 0 : first;
        flt->count = first < 0 ? 0 : last - first + 1;
        for (int k = 0; k < flt->count; k++)
            s->weights[used++] = (float)dense[flt->first + k];
    }
    free(edges);
    free(dense);
    return CNK_OK;
}

/* Periodic Hann (scipy.signal.get_window('hann', N, fftbins=True), torch.hann_window(N, periodic=True)). */
static void build_window(cnk_spec *s)
{
    for (int i = 0; i < s->win_length; i++) {
        double w = 0.5 - 0.5 * cos(2.0 * M_PI * (double)i / (double)s->win_length);
        s->window[i] = (float)w;
        if (s->window_d) s->window_d[i] = w;
    }
}

/* The double-precision buffers and plan of the raw STFT (see cnk_spec.plan_d). */
static int create_double_plan(cnk_ctx *ctx, cnk_spec *s)
{
    int n_fft = s->params.n_fft;
    s->window_d = malloc((size_t)s->win_length * sizeof *s->window_d);
    s->frame_d = fftw_alloc_real((size_t)n_fft);
    s->spectrum_d = fftw_alloc_complex((size_t)s->n_bins);
    if (!s->window_d || !s->frame_d || !s->spectrum_d)
        return cnk_fail(ctx, CNK_ERR_NOMEM, "spectrogram: out of memory for n_fft %d", n_fft);
    memset(s->frame_d, 0, (size_t)n_fft * sizeof *s->frame_d);
    cnk_fftw_planner_lock();
    s->plan_d = fftw_plan_dft_r2c_1d(n_fft, s->frame_d, s->spectrum_d, FFTW_ESTIMATE);
    cnk_fftw_planner_unlock();
    if (!s->plan_d) return cnk_fail(ctx, CNK_ERR_INTERNAL, "spectrogram: FFTW could not plan n_fft %d", n_fft);
    return CNK_OK;
}

int cnk_spec_create(cnk_ctx *ctx, const cnk_spec_params *params, cnk_spec **out)
{
    *out = NULL;
    int rc = check_params(ctx, params);
    if (rc != CNK_OK) return rc;
    cnk_spec *s = calloc(1, sizeof *s);
    if (!s) return cnk_fail(ctx, CNK_ERR_NOMEM, "spectrogram: out of memory");
    s->params = *params;
    int n_fft = params->n_fft;
    s->n_bins = n_fft / 2 + 1;
    s->win_length = params->win_length > 0 ? params->win_length : n_fft;
    s->window_offset = params->frame_layout == CNK_FRAME_TF ? 0 : (n_fft - s->win_length) / 2;
    s->window = malloc((size_t)s->win_length * sizeof *s->window);
    s->frame = fftwf_alloc_real((size_t)n_fft);
    s->spectrum = fftwf_alloc_complex((size_t)s->n_bins);
    s->bin_values = malloc((size_t)s->n_bins * sizeof *s->bin_values);
    s->block =
        malloc(SPEC_BLOCK * (size_t)(params->kind == CNK_SPEC_MEL ? params->n_mels : s->n_bins) * sizeof *s->block);
    if (!s->window || !s->frame || !s->spectrum || !s->bin_values || !s->block) {
        cnk_spec_free(s);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "spectrogram: out of memory for n_fft %d", n_fft);
    }
    if (params->kind == CNK_SPEC_STFT && (rc = create_double_plan(ctx, s)) != CNK_OK) {
        cnk_spec_free(s);
        return rc;
    }
    build_window(s);
    /* Outside the window the frame buffer stays zero: FFTW's out-of-place r2c never writes its input. */
    memset(s->frame, 0, (size_t)n_fft * sizeof *s->frame);
    if (params->kind == CNK_SPEC_MEL && (rc = build_mel_filters(ctx, s)) != CNK_OK) {
        cnk_spec_free(s);
        return rc;
    }
    /* FFTW_ESTIMATE, not MEASURE: MEASURE picks algorithms by timing them, so two runs (or two workers) could
     * round differently and the same clip would not give byte-identical features. */
    cnk_fftw_planner_lock();
    s->plan = fftwf_plan_dft_r2c_1d(n_fft, s->frame, s->spectrum, FFTW_ESTIMATE);
    cnk_fftw_planner_unlock();
    if (!s->plan) {
        cnk_spec_free(s);
        return cnk_fail(ctx, CNK_ERR_INTERNAL, "spectrogram: FFTW could not plan n_fft %d", n_fft);
    }
    *out = s;
    return CNK_OK;
}

void cnk_spec_free(cnk_spec *s)
{
    if (!s) return;
    if (s->plan) {
        cnk_fftw_planner_lock();
        fftwf_destroy_plan(s->plan);
        cnk_fftw_planner_unlock();
    }
    if (s->plan_d) {
        cnk_fftw_planner_lock();
        fftw_destroy_plan(s->plan_d);
        cnk_fftw_planner_unlock();
    }
    fftw_free(s->frame_d);
    fftw_free(s->spectrum_d);
    free(s->window_d);
    fftwf_free(s->frame);
    fftwf_free(s->spectrum);
    free(s->window);
    free(s->bin_values);
    free(s->block);
    free(s->filters);
    free(s->weights);
    free(s);
}

const cnk_spec_params *cnk_spec_params_of(const cnk_spec *s) { return &s->params; }

size_t cnk_spec_n_rows(const cnk_spec *s)
{
    return s->params.kind == CNK_SPEC_MEL ? (size_t)s->params.n_mels : (size_t)s->n_bins;
}

static size_t center_pad(const cnk_spec *s) { return s->params.center ? (size_t)(s->params.n_fft / 2) : 0; }

size_t cnk_spec_n_frames(const cnk_spec *s, size_t n_samples)
{
    size_t span = s->params.frame_layout == CNK_FRAME_TF ? (size_t)s->win_length : (size_t)s->params.n_fft;
    size_t padded = n_samples + 2 * center_pad(s);
    if (n_samples == 0 || padded < span) return 0;
    return 1 + (padded - span) / (size_t)s->params.hop_length;
}

/* Sample at index i of the clip extended by the padding mode (i may fall outside [0, n)). */
static float padded_sample(const cnk_spec *s, const float *x, size_t n, long long i)
{
    if (i >= 0 && i < (long long)n) return x[i];
    if (s->params.pad_mode == CNK_PAD_CONSTANT || n == 1) return 0.0f;
    long long period = 2 * ((long long)n - 1); /* numpy 'reflect': ... x2 x1 | x0 x1 x2 ... */
    long long j = i % period;
    if (j < 0) j += period;
    return x[j < (long long)n ? j : period - j];
}

static void load_frame(cnk_spec *s, const float *x, size_t n, size_t t)
{
    long long start = (long long)(t * (size_t)s->params.hop_length) - (long long)center_pad(s) + s->window_offset;
    int w = s->win_length;
    float *dst = s->frame + s->window_offset;
    if (start >= 0 && start + w <= (long long)n) {
        const float *src = x + start;
        for (int j = 0; j < w; j++)
            dst[j] = src[j] * s->window[j];
    } else {
        for (int j = 0; j < w; j++)
            dst[j] = padded_sample(s, x, n, start + j) * s->window[j];
    }
}

/* The STFT's frame: as load_frame, windowed and transformed in double, |X|^power rounded to float at the end. */
static void stft_frame_double(cnk_spec *s, const float *x, size_t n, size_t t)
{
    long long start = (long long)(t * (size_t)s->params.hop_length) - (long long)center_pad(s) + s->window_offset;
    int w = s->win_length;
    double *dst = s->frame_d + s->window_offset;
    for (int j = 0; j < w; j++)
        dst[j] = (double)padded_sample(s, x, n, start + j) * s->window_d[j];
    fftw_execute(s->plan_d);
    const double *spec = (const double *)s->spectrum_d;
    for (int k = 0; k < s->n_bins; k++) {
        double power = spec[2 * k] * spec[2 * k] + spec[2 * k + 1] * spec[2 * k + 1];
        s->bin_values[k] = (float)(s->params.power == 1 ? sqrt(power) : power);
    }
}

static void frame_bin_values(cnk_spec *s)
{
    const float *restrict spec = (const float *)s->spectrum; /* interleaved re, im */
    float *restrict values = s->bin_values;
    int n = s->n_bins;
    for (int k = 0; k < n; k++)
        values[k] = spec[2 * k] * spec[2 * k] + spec[2 * k + 1] * spec[2 * k + 1];
    if (s->params.power == 1)
        for (int k = 0; k < n; k++)
            values[k] = sqrtf(values[k]);
}

static void mel_of_frame(const cnk_spec *s, float *mel)
{
    for (int m = 0; m < s->params.n_mels; m++) {
        const mel_filter *f = &s->filters[m];
        const float *w = s->weights + f->offset, *v = s->bin_values + f->first;
        float acc = 0; /* at most a few hundred positive terms: float keeps ~1e-6 relative */
#pragma omp simd reduction(+ : acc)
        for (int k = 0; k < f->count; k++)
            acc += w[k] * v[k];
        mel[m] = acc;
    }
}

int cnk_spec_compute(cnk_spec *s, const float *samples, size_t n_samples, float *out)
{
    size_t n_frames = cnk_spec_n_frames(s, n_samples);
    if (n_frames == 0) return CNK_ERR_ARG;
    int mel = s->params.kind == CNK_SPEC_MEL;
    size_t rows = cnk_spec_n_rows(s);
    for (size_t t0 = 0; t0 < n_frames; t0 += SPEC_BLOCK) {
        size_t block = n_frames - t0 < SPEC_BLOCK ? n_frames - t0 : SPEC_BLOCK;
        for (size_t b = 0; b < block; b++) {
            float *dst = s->block + b * rows;
            if (mel) {
                load_frame(s, samples, n_samples, t0 + b);
                fftwf_execute(s->plan);
                frame_bin_values(s);
                mel_of_frame(s, dst);
            } else {
                stft_frame_double(s, samples, n_samples, t0 + b);
                memcpy(dst, s->bin_values, rows * sizeof *dst);
            }
        }
        for (size_t r = 0; r < rows; r++)
            for (size_t b = 0; b < block; b++)
                out[r * n_frames + t0 + b] = s->block[b * rows + r];
    }
    return CNK_OK;
}

/* Natural log of a positive normal float, written so that a loop of it vectorises (glibc's logf does not
 * without -ffast-math, and dB conversion would otherwise cost a sixth of a mel spectrogram): x = 2^e m with
 * m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(u) = 2 (u + u^3/3 + ... + u^9/9), u = (m - 1) / (m + 1), |u| < 0.172,
 * truncation error < 3e-9; float rounding leaves ~1e-7 relative. */
static inline float ln_normal(float x)
{
    union {
        float f;
        uint32_t u;
    } v = {.f = x};
    int32_t exponent = (int32_t)((v.u >> 23) & 0xffu) - 127;
    v.u = (v.u & 0x007fffffu) | 0x3f800000u; /* the mantissa as a float in [1, 2) */
    float m = v.f;
    int32_t high = m > 1.41421356f;
    m = high ? 0.5f * m : m;
    exponent += high;
    float u = (m - 1.0f) / (m + 1.0f), u2 = u * u;
    float series = 2.0f * u * (1.0f + u2 * (1.0f / 3 + u2 * (1.0f / 5 + u2 * (1.0f / 7 + u2 * (1.0f / 9)))));
    return (float)exponent * 0.693147181f + series;
}

void cnk_power_to_db(float *x, size_t n, float ref, float amin, float top_db)
{
    /* Single precision as librosa on float32 input (within 1e-5 dB of the double result). */
    const float db_per_neper = (float)(10.0 / M_LN10); /* 10 log10(v) = (10 / ln 10) ln(v) */
    float ref_db = db_per_neper * logf(fmaxf(amin, ref));
    if (amin >= FLT_MIN) {
        /* (a > b ? a : b), not fmaxf: fmaxf's NaN rules keep GCC from vectorising. */
        for (size_t i = 0; i < n; i++)
            x[i] = db_per_neper * ln_normal(x[i] > amin ? x[i] : amin) - ref_db;
    } else { /* values may be 0 or subnormal: glibc's logf handles those */
        for (size_t i = 0; i < n; i++)
            x[i] = db_per_neper * logf(fmaxf(amin, x[i])) - ref_db;
    }
    float max_db = -INFINITY;
#pragma omp simd reduction(max : max_db)
    for (size_t i = 0; i < n; i++)
        max_db = x[i] > max_db ? x[i] : max_db;
    if (top_db < 0 || n == 0) return;
    float floor_db = max_db - top_db;
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] > floor_db ? x[i] : floor_db;
}

void cnk_log_offset(float *x, size_t n, float offset)
{
    for (size_t i = 0; i < n; i++)
        x[i] = logf(x[i] + offset);
}
