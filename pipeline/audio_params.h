/* audio_params.h: the default spectrogram parameters for a folder of audio clips (sample rate, FFT, hop,
 * mel bands, segment length), chosen from the clips' headers; used by transfer learning and fusion runs. */
#ifndef CNK_AUDIO_PARAMS_H
#define CNK_AUDIO_PARAMS_H

#include "pipeline/augment.h"
#include "pipeline/dataset.h"
#include "pipeline/preprocess.h"

/* Fills the audio fields of p (its kind is kept) as `cnnkit train` does (see datasets/README.md): music
 * rates keep 22050 Hz, 2048/512, 128 mels and 3 s segments; lower-rate recordings keep their rate with
 * 512-point frames, hop 128, 64 mels, and segments as long as the 95th-percentile clip (0.5..3 s, rounded
 * up to 0.25 s). Speech (see below) also gets cepstral liftering (20 coefficients), 40 dB silence trimming
 * and centred segments. sample_rate > 0 or segment_seconds > 0 override the choice. n_scales = n_mels. */
void cnk_audio_params_choose(const cnk_dataset *ds, int sample_rate, double segment_seconds, cnk_preprocess *p);

/* 1 when p describes short lower-rate recordings (below 22050 Hz, segments under 3 s): speech such as
 * spoken digits, whose training augmentation differs from music's (pitch and tempo perturbation). */
int cnk_audio_params_is_speech(const cnk_preprocess *p);

/* Turns on the speech augmentation (frequency warp and time stretch) in aug when p is speech; leaves aug
 * unchanged otherwise. */
void cnk_audio_params_augment(const cnk_preprocess *p, cnk_augment_params *aug);

/* The user's overrides of the automatic spectrogram clean-up (`cnnkit train --top-db --trim-db --lifter
 * --center --clip-norm`). A negative value keeps the automatic choice; cnk_audio_overrides_init sets them
 * all so. The values end up in the model's preprocessing, so eval and predict apply them too. */
typedef struct cnk_audio_overrides {
    double top_db;  /* > 0: dB kept below each clip's peak */
    double trim_db; /* >= 0: leading/trailing silence threshold; 0 = no trimming */
    int lifter;     /* >= 0: cepstral coefficients kept; 0 = no liftering */
    int center;     /* 0 or 1: a short clip sits at its segment's start or in its middle */
    int clip_norm;  /* a cnk_clip_norm */
} cnk_audio_overrides;

void cnk_audio_overrides_init(cnk_audio_overrides *o);
/* 1 when o changes anything. */
int cnk_audio_overrides_any(const cnk_audio_overrides *o);
/* Applies the set fields of o to p (after cnk_audio_params_choose). */
void cnk_audio_overrides_apply(const cnk_audio_overrides *o, cnk_preprocess *p);

#endif
