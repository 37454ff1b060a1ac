#include "features/wavelet.h"

#include <fftw3.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "features/fftw_planner.h"

/* The Morlet spectrum exp(-(s*omega - omega0)^2 / 2) is treated as zero beyond CUT standard deviations:
 * amplitude e^-12.5 = 3.7e-6, so a component outside the band reaches the row at most 109 dB down. Features are
 * clipped 80 dB below their maximum, and 0.01 dB there is 2.3e-3 relative (-26 dB), so anything under -106 dB
 * of the loudest component is invisible; test_wavelet measured no difference between 5, 5.68 (1e-7 of the
 * peak) and 7, while 4 (e^-8, the old cut) left 0.013 dB in the lowest rows. */
#define WAVELET_CUT 5.0
/* The decimated length M per row is at least SIGMAS * sigma + BLOCKS * blocks: sigma = N / (2 pi s) bins is the
 * width of W's spectrum, the spectrum of |W|^2 is a Gaussian of width sqrt(2) sigma, and what lies beyond
 * M - BLOCKS * blocks aliases onto the frame-rate band the frame means keep (see compute_row). Measured against
 * the exact full-length computation on 6 s of GTZAN jazz and metal (test_wavelet), max dB error on the bins
 * above the 80 dB floor: 5.5 and 2 give 0.0086 dB; 5 and 2 give 0.031 dB for ~5% less time, 4 and 2 0.38 dB
 * for ~25% less. At least MIN_PER_HOP samples per hop: the lowest rows are cheap and have deep dips (with 1,
 * 1.3 dB there). */
#define WAVELET_SIGMAS 5.5
#define WAVELET_BLOCKS 2.0
#define WAVELET_MIN_PER_HOP 8
/* Frame kernel reach beyond the triangle, in decimated samples (see frame_kernel). */
#define WAVELET_KERNEL_EXTRA 16
#define WAVELET_MAX_SCALES 1024
/* Clip-length transforms are planned per length; FFTW_MEASURE on ~10 sizes up to 2^20 costs tens of
 * seconds of planning (and its timing-dependent choices make results differ in the last bits between runs);
 * ESTIMATE costs nothing, is deterministic, and runs ~1.5x slower. */
#define WAVELET_PLANNER FFTW_ESTIMATE

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
    fftwf_plan *inverse;     /* [K]: inverse FFT of blocks * K points (K decimated samples per hop), made lazily */
    float **kernels;         /* [K]: frame weights on the decimated grid, 2 * half + 1 each (any length), lazily */
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
    w->kernels = calloc((size_t)hop + 1, sizeof *w->kernels);
    if (!w->scales || !w->kernels) {
        cnk_wavelet_free(w);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "wavelet: out of memory");
    }
    double fmax = params->fmax > 0 ? params->fmax : params->sample_rate / 2.0;
    for (int i = 0; i < params->n_scales; i++) {
        double frac = params->n_scales > 1 ? (double)i / (params->n_scales - 1) : 0.0;
        double hz = params->fmin * pow(fmax / params->fmin, frac);
        w->scales[i] = fourier_factor(params->omega0) * params->sample_rate / hz;
    }
    *out = w;
    return CNK_OK;
}

/* Bins per step of the Morlet weights' recurrence: that many independent chains (one AVX-512 register). */
#define FOLD_LANES 8

/* Frees everything that depends on the clip length. */
static void release_length(cnk_wavelet *w)
{
    cnk_fftw_planner_lock();
    if (w->forward) fftwf_destroy_plan(w->forward);
    if (w->inverse)
        for (int k = 0; k <= w->params.hop_length; k++)
            if (w->inverse[k]) fftwf_destroy_plan(w->inverse[k]);
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
    if (w->kernels)
        for (int k = 0; k <= w->params.hop_length; k++)
            free(w->kernels[k]);
    free(w->kernels);
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

/* Blocks (hops) in the padded clip: 7-smooth like every transform length, and a multiple of 16, because the
 * decimated lengths blocks * K then keep a power-of-two factor FFTW handles fastest (1344 instead of 1323 blocks
 * for a 30 s clip: 10-15% less time in the inverse FFTs). */
static size_t fast_blocks(size_t n)
{
    for (size_t b = smooth_ceil(n);; b = smooth_ceil(b + 1))
        if (b % 16 == 0) return b;
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
    size_t blocks = fast_blocks((n_samples + guard + hop - 1) / hop);
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
    w->inverse = calloc((size_t)w->params.hop_length + 1, sizeof *w->inverse);
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

static fftwf_plan inverse_plan(cnk_wavelet *w, size_t per_hop)
{
    if (!w->inverse[per_hop]) {
        cnk_fftw_planner_lock();
        w->inverse[per_hop] =
            fftwf_plan_dft_1d((int)(w->blocks * per_hop), w->work, w->series, FFTW_BACKWARD, WAVELET_PLANNER);
        cnk_fftw_planner_unlock();
    }
    return w->inverse[per_hop];
}

/* dst[j] (=|+=) weight[j] * src[j] for n complex values. */
static void weighted_run(float *restrict dst, const float *restrict src, const float *restrict weight, size_t n,
                         int assign)
{
    if (assign)
        for (size_t j = 0; j < n; j++) {
            dst[2 * j] = weight[j] * src[2 * j];
            dst[2 * j + 1] = weight[j] * src[2 * j + 1];
        }
    else
        for (size_t j = 0; j < n; j++) {
            dst[2 * j] += weight[j] * src[2 * j];
            dst[2 * j + 1] += weight[j] * src[2 * j + 1];
        }
}

/* Folds the Morlet-weighted spectrum over bins [k_lo, k_hi] modulo m into work (every one of its m values is
 * written). The Gaussian g(k) = norm * exp(-(a k - w0)^2 / 2) is stepped by its exact ratio recurrence (two
 * multiplies per bin instead of an exp: this loop touches several times the clip length per clip), in
 * L = FOLD_LANES interleaved chains g(k + L) = g(k) R(k), R(k + L) = R(k) exp(-L^2 a^2), so the steps
 * vectorise; chunk by chunk, so the weights stay in L1. The recurrence stays in double (relative drift ~1e-16
 * per step); each weight is rounded to float once, like the spectrum. The first m bins are stored, not added,
 * so work needs no clearing except where the band is narrower than m. */
static void fold_weighted_spectrum(cnk_wavelet *w, double a, double norm, size_t k_lo, size_t k_hi, size_t m)
{
    enum { CHUNK = 1024 };
    const double lanes = FOLD_LANES;
    double g[FOLD_LANES], ratio[FOLD_LANES], step = exp(-lanes * lanes * a * a);
    for (int j = 0; j < FOLD_LANES; j++) {
        double z = a * (double)(k_lo + (size_t)j) - w->params.omega0;
        g[j] = norm * exp(-0.5 * z * z);
        ratio[j] = exp(-lanes * a * z - 0.5 * lanes * lanes * a * a);
    }
    size_t count = k_hi - k_lo + 1, first = count < m ? count : m, r0 = k_lo % m, r = r0;
    const float *in = (const float *)w->spectrum[k_lo];
    float *out = (float *)w->work, weights[CHUNK];
    for (size_t c = 0; c < count; c += CHUNK) {
        size_t len = count - c < CHUNK ? count - c : CHUNK;
        for (size_t i = 0; i < len; i += FOLD_LANES) {
            float *restrict dst = weights + i;
#pragma omp simd
            for (int j = 0; j < FOLD_LANES; j++) {
                dst[j] = (float)g[j];
                g[j] *= ratio[j];
                ratio[j] *= step;
            }
        }
        for (size_t i = 0; i < len;) { /* runs that neither wrap round m nor cross the store/add boundary */
            size_t bin = c + i, run = len - i;
            if (run > m - r) run = m - r;
            if (bin < first && run > first - bin) run = first - bin;
            weighted_run(out + 2 * r, in + 2 * bin, weights + i, run, bin < first);
            i += run;
            r += run;
            if (r == m) r = 0;
        }
    }
    if (first < m) { /* the positions the band did not reach: from r0 + count round to r0 */
        size_t from = (r0 + count) % m, tail = m - count;
        size_t part = tail < m - from ? tail : m - from;
        memset(w->work + from, 0, part * sizeof *w->work);
        memset(w->work, 0, (tail - part) * sizeof *w->work);
    }
}

/* Half-width (in decimated samples) of the frame kernel for K samples per hop. */
static long kernel_half(const cnk_wavelet *w, size_t per_hop)
{
    return per_hop >= (size_t)w->params.hop_length ? (long)per_hop - 1 : (long)per_hop + WAVELET_KERNEL_EXTRA;
}

/* The frame mean is sum_n tri(n - c) P(n) / hop over every input sample n, tri(i) = 1 - |i| / hop. With P known
 * only every d = hop / K samples, sum_j P(c + j d) omega(j) equals it exactly when P is band-limited below the
 * grid's Nyquist rate, for omega(j) = sum_i tri(i) sinc(i / d - j): the triangle seen through the band-limited
 * interpolation of P. Plain triangle weights (omega(j) = tri(j d) d) err by ~(f d)^2 for power fluctuating at f,
 * 1-2 dB in the dips of the lowest rows; these weights cost the same per frame. The sinc's tails beyond the
 * triangle fall off fast because the triangle's three kinks cancel; past kernel_half they are dropped and the
 * rest renormalised so a constant power gives exactly itself.
 * Making one costs ~4 hop (K + 16) operations, ~1 ms at hop 512; past 2^24 (hops of several thousand samples with
 * large K) the plain triangle weights are used instead, and at K = hop (full rate) they are exact. */
static float *triangle_kernel(long hop, long half, long k)
{
    float *kernel = calloc((size_t)(2 * half + 1), sizeof *kernel);
    if (!kernel) return NULL;
    double total = 0, d = (double)hop / (double)k;
    for (long j = -(k - 1); j <= k - 1; j++)
        total += 1.0 - fabs((double)j * d) / (double)hop;
    for (long j = -(k - 1); j <= k - 1; j++)
        kernel[j + half] = (float)((1.0 - fabs((double)j * d) / (double)hop) / total);
    return kernel;
}

static const float *frame_kernel(cnk_wavelet *w, size_t per_hop)
{
    if (w->kernels[per_hop]) return w->kernels[per_hop];
    long hop = w->params.hop_length, half = kernel_half(w, per_hop), k = (long)per_hop, n = 2 * hop - 1;
    if (k >= hop || (double)n * (double)(half + 1) > 16777216.0)
        return w->kernels[per_hop] = triangle_kernel(hop, half, k);
    /* numerator[i] = tri(i) sin(pi i K / hop) / pi for i = -(hop - 1)..hop - 1, so that term (i, j) is
     * (-1)^j numerator[i] hop / (i K - j hop), except where i K = j hop (the sinc's 1: tri(i)). */
    double *numerator = malloc((size_t)n * sizeof *numerator);
    float *kernel = malloc((size_t)(2 * half + 1) * sizeof *kernel);
    if (!numerator || !kernel) {
        free(numerator);
        free(kernel);
        return NULL;
    }
    for (long i = -(hop - 1); i <= hop - 1; i++) {
        long r = ((i * k) % (2 * hop) + 2 * hop) % (2 * hop); /* exact argument reduction */
        numerator[i + hop - 1] = (1.0 - fabs((double)i) / (double)hop) * sin(M_PI * (double)r / (double)hop) / M_PI;
    }
    double total = 0, *values = malloc((size_t)(half + 1) * sizeof *values);
    if (!values) {
        free(numerator);
        free(kernel);
        return NULL;
    }
    for (long j = 0; j <= half; j++) { /* symmetric in j */
        double sum = 0, jh = (double)(j * hop), kd = (double)k, hd = (double)hop;
#pragma omp simd reduction(+ : sum)
        for (long i = 0; i < n; i++) {
            double q = (double)(i - (hop - 1)) * kd - jh;
            sum += q != 0.0 ? numerator[i] * hd / q : 0.0;
        }
        if (j & 1) sum = -sum;
        if ((j * hop) % k == 0 && j * hop / k <= hop - 1) sum += 1.0 - (double)(j * hop / k) / hd;
        values[j] = sum;
        total += j == 0 ? values[j] : 2.0 * values[j];
    }
    for (long j = 0; j <= half; j++)
        kernel[half + j] = kernel[half - j] = (float)(values[j] / total);
    free(values);
    free(numerator);
    w->kernels[per_hop] = kernel;
    return kernel;
}

/* Frame t's value: its kernel over |W|^2 (power[j], W sampled every d = hop / K input samples) around the
 * frame centre c = t K on the decimated grid. Summed in float, vectorised: at most ~1000 terms, mostly positive,
 * so ~1e-6 relative, far below what the decimation leaves. */
static void frame_means(const float *kernel, long half, const float *power, size_t m, size_t per_hop,
                        size_t n_frames, float *row_out)
{
    long k = (long)per_hop, span = 2 * half + 1;
    for (long t = 0; t < (long)n_frames; t++) {
        long start = t * k - half;
        float sum = 0;
        if (start >= 0 && start + span <= (long)m) {
            const float *v = power + start;
#pragma omp simd reduction(+ : sum)
            for (long i = 0; i < span; i++)
                sum += kernel[i] * v[i];
        } else { /* the first frame reaches before sample 0: the circular buffer's end holds that time */
            for (long i = 0; i < span; i++) {
                long j = (start + i) % (long)m;
                sum += kernel[i] * power[j < 0 ? j + (long)m : j];
            }
        }
        row_out[t] = sum;
    }
}

/* K, the decimated samples per hop of a row whose W has spectral width sigma bins: M = K * blocks, a 7-smooth
 * length (K need not divide hop: frame centres t * hop land on decimated sample t * K for any K). */
static size_t samples_per_hop(const cnk_wavelet *w, double sigma)
{
    double need = WAVELET_SIGMAS * sigma / (double)w->blocks + WAVELET_BLOCKS;
    if (need < WAVELET_MIN_PER_HOP) need = WAVELET_MIN_PER_HOP;
    size_t hop = (size_t)w->params.hop_length, k = smooth_ceil((size_t)ceil(need));
    return k > hop ? hop : k;
}

/* One row, at a cost proportional to its bandwidth: multiply the clip's spectrum by the Morlet spectrum of this
 * scale over its support (WAVELET_CUT), fold the product modulo the decimated length M (exactly the DFT of W
 * sampled every N/M samples: the band lands at baseband shifted by a multiple of M, a complex demodulation that
 * leaves |W|^2 unchanged), inverse FFT of M points, and the frame means of |W|^2 on that grid (frame_kernel).
 * Folding loses nothing of W's samples; the approximation is in P = |W|^2: its spectrum (a Gaussian of width
 * sqrt(2) sigma) beyond M/2 aliases, and lands at |f| >= M - WAVELET_SIGMAS sigma >= WAVELET_BLOCKS * blocks
 * bins, where the frame kernel's response (the triangle's, falling as (blocks / (pi f))^2) is small. */
static int compute_row(cnk_ctx *ctx, cnk_wavelet *w, double scale, size_t n_frames, float *row_out)
{
    size_t n = w->n_padded, n_bins = n / 2 + 1;
    double omega0 = w->params.omega0, bin_omega = 2.0 * M_PI / (double)n, sigma = 1.0 / (scale * bin_omega);
    double lo = (omega0 - WAVELET_CUT) * sigma, hi = (omega0 + WAVELET_CUT) * sigma;
    size_t k_lo = lo < 1 ? 1 : (size_t)ceil(lo), k_hi = hi >= (double)(n_bins - 1) ? n_bins - 1 : (size_t)floor(hi);
    size_t per_hop = samples_per_hop(w, sigma);
    fftwf_plan plan = inverse_plan(w, per_hop);
    if (!plan) return cnk_fail(ctx, CNK_ERR_INTERNAL, "wavelet: FFTW could not plan an inverse transform");
    size_t m = w->blocks * per_hop;
    const float *kernel = frame_kernel(w, per_hop);
    if (!kernel) return cnk_fail(ctx, CNK_ERR_NOMEM, "wavelet: out of memory");
    /* T&C: psi_hat(s w) = pi^-1/4 exp(-(s w - w0)^2 / 2), normalised by sqrt(2 pi s / dt); 1/N for the IFFT. */
    double norm = pow(M_PI, -0.25) * sqrt(2.0 * M_PI * scale) / (double)n;
    if (k_hi >= k_lo)
        fold_weighted_spectrum(w, scale * bin_omega, norm, k_lo, k_hi, m);
    else
        memset(w->work, 0, m * sizeof *w->work);
    fftwf_execute(plan);
    /* |W|^2 into the transform's input buffer, free again now (a separate buffer lets the loop vectorise). */
    float *restrict power = (float *)w->work;
    const float *restrict series = (const float *)w->series;
    for (size_t j = 0; j < m; j++)
        power[j] = series[2 * j] * series[2 * j] + series[2 * j + 1] * series[2 * j + 1];
    frame_means(kernel, kernel_half(w, per_hop), power, m, per_hop, n_frames, row_out);
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
    size_t head = n_samples < n - offset ? n_samples : n - offset; /* the rest wraps to the buffer's start */
    memcpy(w->signal + offset, samples, head * sizeof *samples);
    memcpy(w->signal, samples + head, (n_samples - head) * sizeof *samples);
    fftwf_execute(w->forward);
    for (int s = 0; s < w->params.n_scales; s++)
        if ((rc = compute_row(ctx, w, w->scales[s], n_frames, out + (size_t)s * n_frames)) != CNK_OK) return rc;
    return CNK_OK;
}
