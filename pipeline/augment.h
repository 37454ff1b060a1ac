/* augment.h: seeded training-time augmentation applied in place to one input tensor: images get a random
 * shifted crop and a horizontal flip; spectrograms a circular-free time shift and SpecAugment masks. */
#ifndef CNK_AUGMENT_H
#define CNK_AUGMENT_H

#include <stddef.h>

#include "core/rng.h"

typedef struct cnk_augment_params {
    /* images (C x H x W) */
    int crop_pad;        /* random crop of the image padded by this many pixels on each side (edge pixels
                            repeated): a shift of up to +-crop_pad in x and y; 0 = off */
    int flip;            /* 1 = mirror left-right with probability 1/2 */
    float scale_min;     /* random-resized crop: a box of U(scale_min, 1) of the image's area and aspect ratio
                            in [1/max_aspect, max_aspect], placed at random, resized back (bilinear); 0 = off */
    float max_aspect;    /* >= 1 (1 = the image's own aspect ratio) */
    float brightness;    /* colour jitter on the standardised input: add U(-brightness, brightness), */
    float contrast;      /* scale around the image's mean by U(1 - contrast, 1 + contrast), */
    float saturation;    /* and (3 channels) blend with the pixel's channel mean by U(1 - s, 1 + s); 0 = off */
    float erase;         /* random erasing, last: with this probability one box of 2-25% of the image's area,
                            aspect ratio 0.3-3.3 (log-uniform), placed at random, is set to 0 (the channel's
                            mean in the standardised input); 0 = off, and nothing is drawn for it */
    /* spectrograms (C x F x T, rows = frequency) */
    float freq_warp;     /* speech: resample the rows by a factor U(1 - w, 1 + w) (a VTLP-like pitch and formant
                            change, pipeline/spec_warp.h); 0 = off */
    float time_stretch;  /* speech: resample the frames by U(1 - s, 1 + s) (a tempo change); 0 = off */
    int max_time_shift;  /* shift by up to +-this many frames, uncovered frames set to fill; 0 = off */
    int n_time_masks;    /* SpecAugment: masks of up to time_mask frames each set to fill */
    int time_mask;
    int n_freq_masks;    /* and of up to freq_mask rows each */
    int freq_mask;
    float fill;          /* value for shifted-in frames and masks (the silence level of the normalised input) */
} cnk_augment_params;

/* Sensible defaults: images flip, random-resized crops (scale 0.5-1, aspect 3/4-4/3) and colour jitter of
 * 0.1 (no crop_pad: the crop box moves already); spectrograms shift = T/8, 2 time masks of
 * T/10, 2 frequency masks of F/8 (no warp or stretch: the caller turns those on for speech). */
void cnk_augment_defaults_image(cnk_augment_params *p);
void cnk_augment_defaults_spectrogram(cnk_augment_params *p, int n_rows, int n_frames, float fill);

/* Mirrors a C x H x W image left-right in place (test-time flip averaging uses it at evaluation and
 * prediction; the training flip goes through cnk_augment_image's warp). */
void cnk_augment_mirror(float *x, int channels, int height, int width);

/* Each needs scratch of channels*height*width floats (the size of x). */
void cnk_augment_image(cnk_rng *rng, const cnk_augment_params *p, float *x, int channels, int height, int width,
                       float *scratch);
/* The same random-resized crop, flip, colour jitter and erasing (the same draws from rng, so a run's stream does not
 * depend on it) with the crop box cut from src, a larger view of the same image (channels x src_h x src_w, e.g.
 * a photo kept at a training source size), and resized to height x width into x: the box is the same fraction
 * of src as cnk_augment_image's of the image, so scale 1 is the whole of src resized. Shrinking uses a tent as
 * wide as the shrink factor (at most 4), enlarging bilinear interpolation; src the size of x gives exactly
 * cnk_augment_image's result. */
void cnk_augment_image_from(cnk_rng *rng, const cnk_augment_params *p, const float *src, int src_h, int src_w,
                            float *x, int channels, int height, int width);
/* The box (box_x, box_y) + (box_w x box_h) of src, in source pixels (0 to src_w at the outer edges), resized to
 * height x width into dst (mirrored left-right if flip) with that filter: cnk_augment_image_from's geometry
 * without the randomness (box 0, 0, src_w, src_h is a plain resize). */
void cnk_augment_crop_resize(const float *src, int channels, int src_h, int src_w, double box_x, double box_y,
                             double box_w, double box_h, int flip, float *dst, int height, int width);
void cnk_augment_spectrogram(cnk_rng *rng, const cnk_augment_params *p, float *x, int channels, int n_rows,
                             int n_frames, float *scratch);

/* A Beta(a, a) draw for a in (0, 1], mixup's blend factor. */
double cnk_augment_beta(cnk_rng *rng, double a);

/* Mixup of a filled batch (n inputs of in_size floats in x, labels y in [0, n_classes)): samples k and n-1-k
 * become lam and 1 - lam blends of each other, and soft (n x n_classes) receives the same blends of their
 * one-hot labels; the middle sample of an odd batch stays as it is, with its one-hot label. */
void cnk_augment_mixup(float *x, const int *y, int n, size_t in_size, int n_classes, float lam, float *soft);

#endif
