/* spectrogram.h: STFT power/magnitude and mel spectrograms (librosa 0.10 conventions by default, TensorFlow
 * framing and mel weights for YAMNet as an option) and the dB conversion, computed through a reusable plan. */
#ifndef CNK_SPECTROGRAM_H
#define CNK_SPECTROGRAM_H

#include <stddef.h>

#include "core/context.h"

typedef enum cnk_spec_kind { CNK_SPEC_STFT = 0, CNK_SPEC_MEL = 1 } cnk_spec_kind;
typedef enum cnk_mel_scale { CNK_MEL_SCALE_SLANEY = 0, CNK_MEL_SCALE_HTK = 1 } cnk_mel_scale;
typedef enum cnk_mel_norm { CNK_MEL_NORM_SLANEY = 0, CNK_MEL_NORM_NONE = 1 } cnk_mel_norm;
/* Where the triangles are linear: in Hz (librosa, torchaudio) or in mel (TensorFlow's
 * linear_to_mel_weight_matrix, which also zeroes the DC bin). */
typedef enum cnk_mel_interp { CNK_MEL_TRIANGLE_HZ = 0, CNK_MEL_TRIANGLE_MEL = 1 } cnk_mel_interp;
typedef enum cnk_pad_mode { CNK_PAD_CONSTANT = 0, CNK_PAD_REFLECT = 1 } cnk_pad_mode;
/* librosa/torchaudio: a frame is n_fft samples with a shorter window centred in it.
 * TensorFlow (tf.signal.stft): a frame is win_length samples, zero-padded at its end to n_fft. */
typedef enum cnk_frame_layout { CNK_FRAME_LIBROSA = 0, CNK_FRAME_TF = 1 } cnk_frame_layout;

typedef struct cnk_spec_params {
    cnk_spec_kind kind;
    int sample_rate;
    int n_fft;
    int win_length;   /* periodic Hann of this length; 0 = n_fft */
    int hop_length;
    int n_mels;       /* mel only */
    double fmin;      /* mel only */
    double fmax;      /* mel only; <= 0 means sample_rate / 2 */
    int power;        /* 2 = power (|X|^2), 1 = magnitude */
    int center;       /* pad n_fft/2 on both sides so frame t is centred on sample t*hop */
    cnk_pad_mode pad_mode;
    cnk_mel_scale mel_scale;
    cnk_mel_norm mel_norm;
    cnk_mel_interp mel_interp;
    cnk_frame_layout frame_layout;
} cnk_spec_params;

/* librosa.feature.melspectrogram defaults (the CLI contract): n_fft 2048, hop 512, 128 slaney mels with
 * slaney norm, fmin 0, fmax sr/2, power 2, centre with zero padding. */
void cnk_spec_params_default(cnk_spec_params *p, int sample_rate);
/* YAMNet's front end: 16 kHz, 400-sample window, hop 160, n_fft 512, magnitude, 64 HTK mels 125-7500 Hz
 * triangular in mel with no norm, TensorFlow framing without centring. Follow with cnk_log_offset(.., 0.001). */
void cnk_spec_params_yamnet(cnk_spec_params *p);

typedef struct cnk_spec cnk_spec;

/* Validates params, builds the window, mel weights and the FFTW plan (thread-safe to call). */
int cnk_spec_create(cnk_ctx *ctx, const cnk_spec_params *params, cnk_spec **out);
void cnk_spec_free(cnk_spec *spec);
const cnk_spec_params *cnk_spec_params_of(const cnk_spec *spec);
/* Rows of the output: n_mels, or n_fft/2 + 1 for the STFT. */
size_t cnk_spec_n_rows(const cnk_spec *spec);
/* Frames for a clip of n_samples (0 if the clip is shorter than one frame without centring). */
size_t cnk_spec_n_frames(const cnk_spec *spec, size_t n_samples);
/* Writes rows x frames (row-major, row 0 = lowest frequency) into out. One plan serves one thread at a
 * time. Returns CNK_OK, or CNK_ERR_ARG when the clip gives no frame (nothing written). */
int cnk_spec_compute(cnk_spec *spec, const float *samples, size_t n_samples, float *out);

/* librosa.power_to_db: 10*log10(max(amin, x)) - 10*log10(max(amin, ref)), then clipped at (max - top_db)
 * unless top_db < 0. In place. */
void cnk_power_to_db(float *x, size_t n, float ref, float amin, float top_db);
/* x = log(x + offset) (natural log), YAMNet's compression. In place. */
void cnk_log_offset(float *x, size_t n, float offset);

/* Mel scale conversions (slaney or htk, as librosa.hz_to_mel / mel_to_hz). */
double cnk_hz_to_mel(double hz, cnk_mel_scale scale);
double cnk_mel_to_hz(double mel, cnk_mel_scale scale);

#endif
