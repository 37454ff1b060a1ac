/* wavelet.h: continuous wavelet transform scalograms with the complex Morlet wavelet (Torrence & Compo 1998),
 * computed in the frequency domain with FFTW and averaged over each hop so the frames match the mel frames. */
#ifndef CNK_WAVELET_H
#define CNK_WAVELET_H

#include <stddef.h>

#include "core/context.h"

typedef struct cnk_wavelet_params {
    int sample_rate;
    int n_scales;     /* rows; centre frequencies log-spaced from fmin to fmax, row 0 = lowest */
    double fmin;      /* default 32 Hz */
    double fmax;      /* <= 0 means sample_rate / 2 */
    double omega0;    /* Morlet's non-dimensional frequency, 6 */
    int hop_length;   /* frame grid: as the mel spectrogram with this hop, n_fft and centring */
    int n_fft;
    int center;
} cnk_wavelet_params;

/* 64 scales from 32 Hz to sr/2, omega0 6, on the default mel grid (hop 512, n_fft 2048, centred). */
void cnk_wavelet_params_default(cnk_wavelet_params *p, int sample_rate);

typedef struct cnk_wavelet cnk_wavelet;

int cnk_wavelet_create(cnk_ctx *ctx, const cnk_wavelet_params *params, cnk_wavelet **out);
void cnk_wavelet_free(cnk_wavelet *w);
size_t cnk_wavelet_n_rows(const cnk_wavelet *w);
/* Same count as cnk_spec_n_frames for the same hop, n_fft and centring. */
size_t cnk_wavelet_n_frames(const cnk_wavelet *w, size_t n_samples);
/* Centre (Fourier) frequency of a row in Hz: sr * (omega0 + sqrt(2 + omega0^2)) / (4 pi scale). */
double cnk_wavelet_centre_hz(const cnk_wavelet *w, size_t row);
/* Writes rows x frames of wavelet power |W|^2 (T&C normalisation: white noise of variance v gives v),
 * each a mean over the frame's hop: weighted by a triangle of half-width hop centred where the mel frame's
 * window is (sample t*hop when centred, t*hop + n_fft/2 otherwise). Each row is computed at a decimated rate in
 * proportion to its bandwidth, within 0.015 dB of the full-length computation on the bins above an 80 dB floor
 * (test_wavelet). FFT plans for a clip length are made on first use and kept while clips keep that padded length.
 * One object serves one thread at a time. */
int cnk_wavelet_compute(cnk_ctx *ctx, cnk_wavelet *w, const float *samples, size_t n_samples, float *out);

#endif
