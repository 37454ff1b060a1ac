/* mel_image.h: a spectrogram segment shown to an ImageNet network as a picture: its dB range mapped to
 * [-1, 1], resized to the network's input and replicated to 3 channels (the classic genre-study recipe). */
#ifndef CNK_MEL_IMAGE_H
#define CNK_MEL_IMAGE_H

#include <stddef.h>

#include "core/context.h"

typedef struct cnk_mel_image {
    int active; /* 0: the model takes the segment as is */
    int channels, height, width;
} cnk_mel_image;

/* Reads "mel_image=CxHxW" from a model's preprocessing text; absent -> inactive. A malformed value fails
 * naming source. */
int cnk_mel_image_from_text(cnk_ctx *ctx, const char *text, const char *source, cnk_mel_image *mi);
/* The line "mel_image=CxHxW\n" (empty when inactive) into buf. */
void cnk_mel_image_to_text(const cnk_mel_image *mi, char *buf, size_t cap);

/* seg is rows x frames (row 0 = lowest frequency); out gets channels x height x width: the segment's
 * min..max mapped to [-1, 1] (a constant segment gives -1), bilinearly resized (pixel centres aligned, as
 * PIL and OpenCV), drawn with the highest frequency on top, the same plane in every channel. */
void cnk_mel_image_apply(const cnk_mel_image *mi, const float *seg, int rows, int frames, float *out);

#endif
