/* spec_warp.h: resampling a spectrogram segment along its frequency rows (a VTLP-like pitch/formant warp)
 * or its time frames (a tempo change), the speed/pitch perturbation used to train on a few speakers. */
#ifndef CNK_SPEC_WARP_H
#define CNK_SPEC_WARP_H

/* dst row r = src at row r / factor (linear interpolation between rows, rows past the top repeat the top
 * row): factor > 1 moves the content up in frequency, < 1 down. src and dst are rows x frames, distinct. */
void cnk_spec_warp_rows(const float *src, int rows, int frames, float factor, float *dst);

/* dst frame t = src at frame t / factor (linear interpolation); frames read from past the last one get
 * fill: factor > 1 slows the segment down (the content lasts longer), < 1 speeds it up. */
void cnk_spec_stretch_frames(const float *src, int rows, int frames, float factor, float fill, float *dst);

#endif
