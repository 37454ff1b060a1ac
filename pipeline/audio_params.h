/* audio_params.h: the default spectrogram parameters for a folder of audio clips (sample rate, FFT, hop,
 * mel bands, segment length), chosen from the clips' headers; used by transfer learning and fusion runs. */
#ifndef CNK_AUDIO_PARAMS_H
#define CNK_AUDIO_PARAMS_H

#include "pipeline/dataset.h"
#include "pipeline/preprocess.h"

/* Fills the audio fields of p (its kind is kept) as `cnnkit train` does (see datasets/README.md): music
 * rates keep 22050 Hz, 2048/512, 128 mels and 3 s segments; lower-rate recordings keep their rate with
 * 512-point frames, hop 128, 64 mels, and segments as long as the 95th-percentile clip (0.5..3 s, rounded
 * up to 0.25 s). sample_rate > 0 or segment_seconds > 0 override the choice. n_scales = n_mels. */
void cnk_audio_params_choose(const cnk_dataset *ds, int sample_rate, double segment_seconds, cnk_preprocess *p);

#endif
