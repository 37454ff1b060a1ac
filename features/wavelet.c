#include "features/wavelet.h"

#include <fftw3.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "features/fftw_planner.h"

/* The Morlet spectrum exp(-(s*omega - omega0)^2 / 2) is treated as zero beyond CUT standard deviations
 * (amplitude e^-8, power -70 dB below the row's peak). */
#define WAVELET_CUT 4.0
#define WAVELET_MAX_SCALES 1024
/* Clip-length transforms are planned per length; FFTW_MEASURE on ~10 sizes up to 2^20 costs tens of
 * seconds of planning (and its timing-dependent choices make results differ in the last bits between runs);
 * ESTIMATE costs nothing, is deterministic, and runs ~1.5x slower. */
#define WAVELET_PLANNER FFTW_ESTIMATE

/* Scales sharing one decimated inverse-FFT length m * k (k a divisor of hop). */
typedef struct size_plan {
    size_t length;
    fftwf_plan plan;
} size_plan;

struct cnk_wavelet {
    cnk_wavelet_params params;
    double *scales; /* in samples, row order */
    /* Per clip length: */
    size_t n_padded;         /* N = hop * blocks */
    size_t blocks;           /* N / hop */
    float *signal;           /* N real */
    fftwf_complex *spectrum; /* N/2 + 1 */
    fftwf_complex *work;     /* N, the folded weighted spectrum (inverse FFT input) */
    fftwf_complex *series;   /* N, W sampled every D samples (inverse FFT output; out of place is faster) */
    fftwf_plan forward;
    size_plan *inverse; /* one per divisor of hop, created lazily */
    int *divisors;
    int n_divisors;
    double *triangle; /* 3 * hop averaging weights, scratch */
};

void cnk_wavelet_params_default(cnk_wavelet_params *p, int sample_rate)
{
    memset(p, 0, sizeof *p);
    p->sample_rate = sample_rate;
    p->n_scales = 64;
    p->fmin = 32.0;
    p->omega0 = 6.0;
    p->hop_length = 512;
    p->n_fft = 2048;
    p->center = 1;
}

static double fourier_factor(double omega0) { return (omega0 + sqrt(2.0 + omega0 * omega0)) / (4.0 * M_PI); }

static int check_params(cnk_ctx *ctx, const cnk_wavelet_params *p)
{
    double fmax = p->fmax > 0 ? p->fmax : p->sample_rate / 2.0;
    if (p->sample_rate < 1) return cnk_fail(ctx, CNK_ERR_ARG, "wavelet: bad sample rate %d", p->sample_rate);
    if (p->n_scales < 1 || p->n_scales > WAVELET_MAX_SCALES)
        return cnk_fail(ctx, CNK_ERR_ARG, "wavelet: scales %d outside 1..%d", p->n_scales, WAVELET_MAX_SCALES);
    if (!(p->fmin > 0) || !(fmax >= p->fmin) || fmax > p->sample_rate / 2.0 + 1e-9)
        return cnk_fail(ctx, CNK_ERR_ARG, "wavelet: need 0 < fmin (%g) <= fmax (%g) <= sample_rate/2 (%g)", p->fmin,
                        fmax, p->sample_rate / 2.0);
    if (!(p->omega0 >= 3 && p->omega0 <= 20))
        return cnk_fail(ctx, CNK_ERR_ARG, "wavelet: omega0 %g outside 3..20", p->omega0);
    if (p->hop_length < 1 || p->hop_length > 65536)
        return cnk_fail(ctx, CNK_ERR_ARG, "wavelet: bad hop %d", p->hop_length);
    if (p->n_fft < 2 || p->n_fft > 65536) return cnk_fail(ctx, CNK_ERR_ARG, "wavelet: bad n_fft %d", p->n_fft);
    return CNK_OK;
}

int cnk_wavelet_create(cnk_ctx *ctx, const cnk_wavelet_params *params, cnk_wavelet **out)
{
    *out = NULL;
    int rc = check_params(ctx, params);
    if (rc != CNK_OK) return rc;
    cnk_wavelet *w = calloc(1, sizeof *w);
    if (!w) return cnk_fail(ctx, CNK_ERR_NOMEM, "wavelet: out of memory");
    w->params = *params;
    int hop = params->hop_length;
    w->scales = malloc((size_t)params->n_scales * sizeof *w->scales);
    w->divisors = malloc((size_t)hop * sizeof *w->divisors);
    w->triangle = malloc(3 * (size_t)hop * sizeof *w->triangle);
    if (!w->scales || !w->divisors || !w->triangle) {
        cnk_wavelet_free(w);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "wavelet: out of memory");
    }
    for (int d = 1; d <= hop; d++)
        if (hop % d == 0) w->divisors[w->n_divisors++] = d;
    double fmax = params->fmax > 0 ? params->fmax : params->sample_rate / 2.0;
    for (int i = 0; i < params->n_scales; i++) {
        double frac = params->n_scales > 1 ? (double)i / (params->n_scales - 1) : 0.0;
        double hz = params->fmin * pow(fmax / params->fmin, frac);
        w->scales[i] = fourier_factor(params->omega0) * params->sample_rate / hz;
    }
    *out = w;
    return CNK_OK;
}

/* Frees everything that depends on the clip length. */
static void release_length(cnk_wavelet *w)
{
    cnk_fftw_planner_lock();
    if (w->forward) fftwf_destroy_plan(w->forward);
    if (w->inverse)
        for (int i = 0; i < w->n_divisors; i++)
            if (w->inverse[i].plan) fftwf_destroy_plan(w->inverse[i].plan);
    cnk_fftw_planner_unlock();
    w->forward = NULL;
    free(w->inverse);
    w->inverse = NULL;
    fftwf_free(w->signal);
    fftwf_free(w->spectrum);
    fftwf_free(w->work);
    fftwf_free(w->series);
    w->signal = NULL;
    w->spectrum = NULL;
    w->work = NULL;
    w->series = NULL;
    w->n_padded = 0;
}

void cnk_wavelet_free(cnk_wavelet *w)
{
    if (!w) return;
    release_length(w);
    free(w->scales);
    free(w->divisors);
    free(w->triangle);
    free(w);
}

size_t cnk_wavelet_n_rows(const cnk_wavelet *w) { return (size_t)w->params.n_scales; }

size_t cnk_wavelet_n_frames(const cnk_wavelet *w, size_t n_samples)
{
    size_t pad = w->params.center ? (size_t)(w->params.n_fft / 2) : 0;
    size_t padded = n_samples + 2 * pad;
    if (n_samples == 0 || padded < (size_t)w->params.n_fft) return 0;
    return 1 + (padded - (size_t)w->params.n_fft) / (size_t)w->params.hop_length;
}

double cnk_wavelet_centre_hz(const cnk_wavelet *w, size_t row)
{
    return fourier_factor(w->params.omega0) * w->params.sample_rate / w->scales[row];
}

/* Smallest integer >= n whose only prime factors are 2, 3, 5 and 7 (fast FFTW sizes). */
static size_t smooth_ceil(size_t n)
{
    for (size_t m = n < 1 ? 1 : n;; m++) {
        size_t r = m;
        static const size_t primes[] = {2, 3, 5, 7};
        for (int i = 0; i < 4; i++)
            while (r % primes[i] == 0)
                r /= primes[i];
        if (r == 1) return m;
    }
}

/* Where sample 0 sits in the padded buffer: frame t's centre (sample t*hop when centred, as the mel frame's
 * window; t*hop + n_fft/2 otherwise) lands on buffer index t*hop, a point of every row's decimated grid. */
static size_t sample_offset(const cnk_wavelet *w, size_t n_padded)
{
    long long off = w->params.center ? 0 : -(long long)(w->params.n_fft / 2);
    off %= (long long)n_padded;
    return (size_t)(off < 0 ? off + (long long)n_padded : off);
}

/* Sizes the buffers for a clip: the zero padding beyond the clip must outlast the widest wavelet
 * (e-folding time sqrt(2) * scale) so the circular transform does not wrap one end onto the other. */
static int prepare_length(cnk_ctx *ctx, cnk_wavelet *w, size_t n_samples)
{
    double widest = w->scales[0];
    size_t guard = (size_t)ceil(4.0 * sqrt(2.0) * widest) + (size_t)w->params.n_fft + 3 * (size_t)w->params.hop_length;
    size_t hop = (size_t)w->params.hop_length;
    size_t blocks = smooth_ceil((n_samples + guard + hop - 1) / hop);
    size_t n_padded = blocks * hop;
    /* Same padded length, same plans. Only the exact length is reused: a longer buffer would change the last
     * bits of the result, and a clip must give the same features whatever was computed before it. */
    if (w->n_padded == n_padded) return CNK_OK;
    release_length(w);
    if (n_padded >= (size_t)INT_MAX / 2)
        return cnk_fail(ctx, CNK_ERR_NOMEM, "wavelet: clip of %zu samples too long", n_samples);
    w->signal = fftwf_alloc_real(n_padded);
    w->spectrum = fftwf_alloc_complex(n_padded / 2 + 1);
    w->work = fftwf_alloc_complex(n_padded);
    w->series = fftwf_alloc_complex(n_padded);
    w->inverse = calloc((size_t)w->n_divisors, sizeof *w->inverse);
    if (!w->signal || !w->spectrum || !w->work || !w->series || !w->inverse) {
        release_length(w);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "wavelet: out of memory for %zu-point transforms", n_padded);
    }
    cnk_fftw_planner_lock();
    w->forward = fftwf_plan_dft_r2c_1d((int)n_padded, w->signal, w->spectrum, WAVELET_PLANNER);
    cnk_fftw_planner_unlock();
    if (!w->forward) {
        release_length(w);
        return cnk_fail(ctx, CNK_ERR_INTERNAL, "wavelet: FFTW could not plan %zu points", n_padded);
    }
    w->n_padded = n_padded;
    w->blocks = blocks;
    return CNK_OK;
}

static fftwf_plan inverse_plan(cnk_wavelet *w, int divisor_index)
{
    size_plan *sp = &w->inverse[divisor_index];
    if (!sp->plan) {
        sp->length = w->blocks * (size_t)w->divisors[divisor_index];
        cnk_fftw_planner_lock();
        sp->plan = fftwf_plan_dft_1d((int)sp->length, w->work, w->series, FFTW_BACKWARD, WAVELET_PLANNER);
        cnk_fftw_planner_unlock();
    }
    return sp->plan;
}

/* Accumulates the Morlet-weighted spectrum over bins [k_lo, k_hi], folded modulo m. The Gaussian
 * g(k) = norm * exp(-(a k - w0)^2 / 2) is stepped by its exact ratio recurrence (two multiplies per bin
 * instead of an exp: this loop touches several times the clip length per clip). */
static void fold_weighted_spectrum(cnk_wavelet *w, double a, double norm, size_t k_lo, size_t k_hi, size_t m)
{
    double omega0 = w->params.omega0, z = a * (double)k_lo - omega0;
    double g = norm * exp(-0.5 * z * z);
    double ratio = exp(-a * z - 0.5 * a * a), ratio_step = exp(-a * a);
    size_t r = k_lo % m;
    for (size_t k = k_lo; k <= k_hi; k++) {
        w->work[r][0] += (float)(g * w->spectrum[k][0]);
        w->work[r][1] += (float)(g * w->spectrum[k][1]);
        g *= ratio;
        ratio *= ratio_step;
        if (++r == m) r = 0;
    }
}

/* Frame t's value: the mean of |W|^2 (power[j], W sampled every D = hop / K input samples) weighted by
 * a triangle 1 - |n - c| / hop over the two hops around the frame centre c. The centre is a grid point and
 * the grid is symmetric about it, and the triangle's spectrum falls as 1/f^2, so the decimated weighted
 * sum reproduces the full-rate one closely even for large D (a box average would not). */
static void triangle_means(cnk_wavelet *w, const float *power, size_t m, size_t per_hop, size_t n_frames,
                           float *row_out)
{
    double hop = (double)w->params.hop_length, d = hop / (double)per_hop;
    long k = (long)per_hop, i_min = -(k - 1), span = 2 * k - 1;
    double *weights = w->triangle, total = 0;
    for (long i = 0; i < span; i++) {
        weights[i] = 1.0 - fabs((double)(i + i_min) * d) / hop;
        total += weights[i];
    }
    for (long t = 0; t < (long)n_frames; t++) {
        long start = t * k + i_min;
        double sum = 0;
        if (start >= 0 && start + span <= (long)m) {
            /* Four partial sums: the adds do not wait on each other. */
            const float *v = power + start;
            double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            long i = 0;
            for (; i + 4 <= span; i += 4) {
                s0 += weights[i] * v[i];
                s1 += weights[i + 1] * v[i + 1];
                s2 += weights[i + 2] * v[i + 2];
                s3 += weights[i + 3] * v[i + 3];
            }
            for (; i < span; i++)
                s0 += weights[i] * v[i];
            sum = (s0 + s1) + (s2 + s3);
        } else { /* the first frame reaches before sample 0: the circular buffer's end holds that time */
            for (long i = 0; i < span; i++) {
                long j = (start + i) % (long)m;
                sum += weights[i] * power[j < 0 ? j + (long)m : j];
            }
        }
        row_out[t] = (float)(sum / total);
    }
}

/* One row: multiply the clip's spectrum by the Morlet spectrum of this scale over its support, fold the
 * product modulo the decimated length M (exactly the DFT of W sampled every N/M samples), inverse FFT,
 * and take triangle-weighted means of |W|^2 per frame. The spectrum of |W|^2 is about a Gaussian of
 * standard deviation sqrt(2) * sigma bins (sigma = N / (2 pi s), W's own width), so M >= 6 sigma plus the
 * frame-rate band keeps what aliases onto the frame means small (test_wavelet: within ~2% of the
 * time-domain definition; 10 sigma + 2 blocks gives 0.6% for twice the transform work).
 * K = M / blocks must divide hop so frames fall on whole decimated samples. */
static int compute_row(cnk_ctx *ctx, cnk_wavelet *w, double scale, size_t n_frames, float *row_out)
{
    size_t n = w->n_padded, n_bins = n / 2 + 1;
    double omega0 = w->params.omega0, bin_omega = 2.0 * M_PI / (double)n, sigma = 1.0 / (scale * bin_omega);
    double lo = (omega0 - WAVELET_CUT) * sigma, hi = (omega0 + WAVELET_CUT) * sigma;
    size_t k_lo = lo < 1 ? 1 : (size_t)ceil(lo), k_hi = hi >= (double)(n_bins - 1) ? n_bins - 1 : (size_t)floor(hi);
    int di = 0;
    while (di < w->n_divisors - 1 && (double)(w->blocks * (size_t)w->divisors[di]) < 6.0 * sigma + (double)w->blocks)
        di++;
    fftwf_plan plan = inverse_plan(w, di);
    if (!plan) return cnk_fail(ctx, CNK_ERR_INTERNAL, "wavelet: FFTW could not plan an inverse transform");
    size_t m = w->inverse[di].length, per_hop = (size_t)w->divisors[di];
    memset(w->work, 0, m * sizeof *w->work);
    /* T&C: psi_hat(s w) = pi^-1/4 exp(-(s w - w0)^2 / 2), normalised by sqrt(2 pi s / dt); 1/N for the IFFT. */
    double norm = pow(M_PI, -0.25) * sqrt(2.0 * M_PI * scale) / (double)n;
    if (k_hi >= k_lo) fold_weighted_spectrum(w, scale * bin_omega, norm, k_lo, k_hi, m);
    fftwf_execute(plan);
    /* |W|^2 packed into the front of the same buffer (float j overwrites nothing not yet read). */
    float *power = (float *)w->series;
    for (size_t j = 0; j < m; j++) {
        float re = w->series[j][0], im = w->series[j][1];
        power[j] = re * re + im * im;
    }
    triangle_means(w, power, m, per_hop, n_frames, row_out);
    return CNK_OK;
}

int cnk_wavelet_compute(cnk_ctx *ctx, cnk_wavelet *w, const float *samples, size_t n_samples, float *out)
{
    size_t n_frames = cnk_wavelet_n_frames(w, n_samples);
    if (n_frames == 0) return cnk_fail(ctx, CNK_ERR_INPUT, "wavelet: clip of %zu samples gives no frame", n_samples);
    int rc = prepare_length(ctx, w, n_samples);
    if (rc != CNK_OK) return rc;
    size_t n = w->n_padded, offset = sample_offset(w, n);
    memset(w->signal, 0, n * sizeof *w->signal);
    for (size_t i = 0; i < n_samples; i++)
        w->signal[(i + offset) % n] = samples[i];
    fftwf_execute(w->forward);
    for (int s = 0; s < w->params.n_scales; s++)
        if ((rc = compute_row(ctx, w, w->scales[s], n_frames, out + (size_t)s * n_frames)) != CNK_OK) return rc;
    return CNK_OK;
}
