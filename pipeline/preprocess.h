/* preprocess.h: how one dataset item becomes the model's input tensor(s), per input kind (mel or wavelet
 * spectrogram segments of audio, images, .npy arrays, CSV rows). The parameters travel inside the model file
 * as key=value text, so predict applies exactly what training used. */
#ifndef CNK_PREPROCESS_H
#define CNK_PREPROCESS_H

#include <stddef.h>

#include "core/context.h"
#include "core/npy.h"

typedef enum cnk_prep_kind {
    CNK_PREP_MEL = 0,     /* audio -> mel dB spectrogram (n_mels x frames), cut into segments */
    CNK_PREP_WAVELET,     /* audio -> Morlet scalogram dB (n_scales x frames), cut into segments */
    CNK_PREP_MEL_WAVELET, /* both views of the same segment (two-input fusion models; not trained yet) */
    CNK_PREP_IMAGE,       /* image file -> C x H x W floats */
    CNK_PREP_NPY,         /* .npy array (rows x frames, or C x H x W) used as is, 2-D ones segmented */
    CNK_PREP_CSV,         /* a numeric CSV row -> n_features (or C x H x W with an image size) */
    CNK_PREP_KIND_COUNT
} cnk_prep_kind;

/* Per-clip normalisation of a dB spectrogram's rows (frequency bands) over the clip's frames, before the
 * global mean/std: CMVN removes each band's level and spread, i.e. most of the speaker's and microphone's
 * spectral colouring, which a network trained on a few speakers would otherwise learn. */
typedef enum cnk_clip_norm {
    CNK_CLIP_NORM_NONE = 0,
    CNK_CLIP_NORM_CMN,  /* subtract each band's mean */
    CNK_CLIP_NORM_CMVN, /* subtract each band's mean, divide by its standard deviation (+ 1e-3) */
    CNK_CLIP_NORM_COUNT
} cnk_clip_norm;

/* Drops the leading and trailing frames of a rows x frames dB matrix whose loudest row is more than trim_db
 * below the whole matrix's maximum, compacting it in place; returns the new frame count (>= 1). */
size_t cnk_preprocess_trim(float *spec, size_t rows, size_t frames, float trim_db);

/* Normalises the rows of a rows x frames matrix in place as mode says. */
void cnk_preprocess_clip_norm(cnk_clip_norm mode, float *spec, size_t rows, size_t frames);

/* The rows x rows matrix P (row-major) that smooths one frame x of `rows` dB values to P x: the orthonormal
 * DCT-II, coefficients from `keep` on set to 0, and the inverse DCT. keep >= rows gives the identity, keep 1
 * each frame's mean. */
void cnk_preprocess_lifter_matrix(int rows, int keep, float *matrix);
/* spec (rows x frames, row-major) <- matrix * spec; scratch holds rows x frames floats. */
void cnk_preprocess_lifter_apply(const float *matrix, float *spec, int rows, size_t frames, float *scratch);

#define CNK_PREP_MAX_NORM 4096 /* normalisation values: 1, one per channel, or one per CSV feature */

typedef struct cnk_preprocess {
    cnk_prep_kind kind;
    /* audio: decoding and the spectrogram (features/): */
    int sample_rate;        /* resample to this rate */
    int n_fft, hop_length;
    int n_mels;             /* mel rows */
    int n_scales;           /* wavelet rows */
    float fmin, fmax;       /* mel band (fmax 0 = sr/2) */
    float wavelet_fmin;     /* lowest wavelet centre frequency */
    int db_ref_max;         /* 1: dB relative to the clip's loudest bin (librosa ref=np.max), so recordings made
                             * at different levels look alike; 0: dB relative to 1.0 (ref=1) */
    float top_db;           /* the dB range kept below the clip's peak (librosa's top_db; 80 by default): quieter
                             * bins are raised to it, hiding each recording's own noise floor */
    int clip_norm;          /* a cnk_clip_norm: per-clip normalisation of each spectrogram row */
    int lifter;             /* > 0: keep only the first `lifter` cepstral coefficients (DCT-II over the rows) of
                             * every frame of the dB spectrogram: a smoothed spectral envelope without the
                             * pitch harmonics (speech); 0 = off */
    float trim_db;          /* > 0: drop the leading and trailing frames whose loudest band is more than trim_db
                             * below the clip's loudest bin (silence around a word); 0 = off */
    int center;             /* 1: a clip shorter than a segment sits in the segment's middle (padded on both
                             * sides) instead of at its start */
    /* audio segments, in spectrogram frames */
    int segment_frames;     /* the model's input width */
    int segment_hop;        /* frames between segment starts at prediction and evaluation */
    int train_hop;          /* frames between training segments (overlap gives more examples) */
    int min_fill;           /* a last partial segment needs this many new frames */
    /* images, and CSV rows reshaped as images: the model's C x H x W */
    int channels, height, width;
    int tta_flip;           /* images: the class probabilities are the mean of the image's and its left-right
                             * mirror's (test-time augmentation, in evaluation and prediction alike); 0 = off */
    float eval_crop;        /* images: evaluation and prediction read the central eval_crop (0 < eval_crop < 1) of
                             * the centre crop's side, resized to the model's size: training's random-resized crops
                             * show objects larger than the whole centre crop does (FixRes); 0 = the whole centre
                             * crop, as training's own validation (stored as the model's `eval_crop` key) */
    float crop;             /* images: the central fraction the features are read from (0 = all): 0 in training,
                             * eval_crop in the evaluation view (cnk_preprocess_eval_view); not stored */
    /* CSV: feature count (columns other than label/ids) */
    int n_features;
    /* Normalisation x' = (x - mean[i]) / std[i] with i = 0 (n_norm 1), the channel (images), or the feature
     * (CSV). Computed from the training split. Spectrogram segments past a clip's end are padded with the
     * clip's minimum (its silence level, top_db below its peak). */
    int n_norm;
    float mean[CNK_PREP_MAX_NORM], std[CNK_PREP_MAX_NORM];
    char csv_drop[512];     /* CSV: comma-separated identifier columns that are not features */
} cnk_preprocess;

const char *cnk_prep_kind_name(cnk_prep_kind kind);
int cnk_prep_kind_parse(const char *name, cnk_prep_kind *kind); /* 0 or -1 */
/* 1 for the kinds computed from audio files (mel, wavelet, mel+wavelet). */
int cnk_prep_kind_is_audio(cnk_prep_kind kind);

/* Defaults per kind (see the .c file for the experiments that chose them); n_norm = 0 until fitted. */
void cnk_preprocess_defaults(cnk_preprocess *p, cnk_prep_kind kind);
/* Sets segment_frames (and hops) for a segment length in seconds at p's sample rate and hop. */
void cnk_preprocess_set_segment_seconds(cnk_preprocess *p, double seconds);

/* The preprocessing that held-out evaluation and prediction apply: p with the stored evaluation-time settings
 * switched on (images: crop = eval_crop). Identical to p for models without them. Training and its per-epoch
 * validation use p itself. */
void cnk_preprocess_eval_view(const cnk_preprocess *p, cnk_preprocess *view);
/* 1 if the evaluation view reads other features than p (so they must be computed again). */
int cnk_preprocess_has_eval_view(const cnk_preprocess *p);

/* The per-sample model input shape (C, H, W). */
void cnk_preprocess_input_shape(const cnk_preprocess *p, int *c, int *h, int *w);

/* "key=value\n" text for the model file, and back. from_text checks every value. */
int cnk_preprocess_to_text(cnk_ctx *ctx, const cnk_preprocess *p, char **text);
int cnk_preprocess_from_text(cnk_ctx *ctx, const char *text, const char *source, cnk_preprocess *p);

/* One line for people (`cnnkit summary`): the input kind and what is done to a file before the network sees
 * it, e.g. "mel, 8000 Hz, FFT 512, hop 128, 64 bands, 1 s segments (64 frames); dB re each clip's peak,
 * floor -40 dB, silence trimmed at -40 dB, 20 cepstral coefficients, centred". */
void cnk_preprocess_describe(const cnk_preprocess *p, char *out, size_t cap);

/* The parameters that determine a file's features (not normalisation or segmenting): the cache key text. */
void cnk_preprocess_feature_key(const cnk_preprocess *p, char *out, size_t cap);

/* What one thread needs to turn files into features (FFT plans made once). */
typedef struct cnk_prep_worker cnk_prep_worker;
int cnk_prep_worker_create(cnk_ctx *ctx, const cnk_preprocess *p, cnk_prep_worker **out);
void cnk_prep_worker_free(cnk_prep_worker *w);

/* The un-normalised features of one file: audio -> (rows x frames) dB spectrogram of the whole clip
 * (shape [rows, frames]); image -> [C, H, W]; npy -> the array. A file that cannot be decoded fails with
 * the file named in the message (the caller skips it). One worker serves one thread at a time. */
int cnk_preprocess_file(cnk_ctx *ctx, cnk_prep_worker *w, const char *path, cnk_array *features);

/* What follows the dB conversion for audio kinds, in place on a (rows x frames) dB spectrogram of a whole clip
 * (dB re 1.0, at most 80 dB below its peak): dB relative to the peak (db_ref=max), trimming, the top_db
 * floor, liftering and the per-clip normalisation. cnk_preprocess_file does this; callers that compute
 * spectrograms of sample buffers themselves (api/) call it so both give identical features. */
int cnk_preprocess_finish_db(cnk_ctx *ctx, const cnk_preprocess *p, cnk_array *spec);

/* How many model inputs one file's features give (segments of a spectrogram; 1 otherwise). train = 1 uses
 * the training hop. */
size_t cnk_preprocess_n_segments(const cnk_preprocess *p, const cnk_array *features, int train);
/* Writes segment i (C*H*W floats, normalised) into out. */
int cnk_preprocess_segment(cnk_ctx *ctx, const cnk_preprocess *p, const cnk_array *features, size_t i, int train,
                           float *out);
/* Normalises one raw row of CSV features (n_features values) into out. */
void cnk_preprocess_normalise(const cnk_preprocess *p, const float *raw, size_t n, float *out);

/* Fits mean/std on training features: spectrograms and npy one scalar pair, images one per channel. */
int cnk_preprocess_fit(cnk_ctx *ctx, cnk_preprocess *p, const cnk_array *const *features, size_t n);
/* The same for CSV rows (n_rows x n_features): one pair per feature (std of a constant column -> 1). */
int cnk_preprocess_fit_rows(cnk_ctx *ctx, cnk_preprocess *p, const float *rows, size_t n_rows, size_t n_features);

#endif
