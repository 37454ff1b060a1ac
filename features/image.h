/* image.h: images for CNNs: load what stb_image reads (JPEG, PNG, BMP, GIF, TGA, PNM) as grey or RGB,
 * centre crop, resize (antialiased bilinear = triangle filter) and normalise into a float CHW tensor. */
#ifndef CNK_IMAGE_H
#define CNK_IMAGE_H

#include <stddef.h>

#include "core/context.h"

/* Images with more pixels than this are refused before decoding (a 16k x 16k photo is 268 M pixels). */
#define CNK_IMAGE_MAX_PIXELS ((size_t)100 * 1000 * 1000)

typedef struct cnk_image {
    unsigned char *pixels; /* malloc'd, height x width x channels, row 0 = top */
    int width;
    int height;
    int channels;          /* 1 (grey) or 3 (RGB) */
} cnk_image;

typedef enum cnk_crop_mode {
    CNK_CROP_NONE = 0,  /* stretch the whole image to the target size */
    CNK_CROP_CENTER = 1 /* the largest centred region with the target's aspect ratio, then resize */
} cnk_crop_mode;

typedef enum cnk_norm_mode {
    CNK_NORM_UNIT = 0,     /* pixel / 255, in [0, 1] */
    CNK_NORM_SIGNED = 1,   /* pixel / 127.5 - 1, in [-1, 1] (MobileNet, TensorFlow) */
    CNK_NORM_IMAGENET = 2  /* (pixel / 255 - mean) / std with ImageNet's RGB statistics (grey: their averages) */
} cnk_norm_mode;

/* Decodes path into channels 1 (grey: stb's luma 77R+150G+29B >> 8) or 3 (RGB; alpha dropped). */
int cnk_image_load(cnk_ctx *ctx, const char *path, int channels, cnk_image *out);
/* As cnk_image_load with an explicit pixel budget (width * height). */
int cnk_image_load_budget(cnk_ctx *ctx, const char *path, int channels, size_t max_pixels, cnk_image *out);
void cnk_image_release(cnk_image *img);

/* A copy of the region (x, y, width, height), which must lie inside img. */
int cnk_image_crop(cnk_ctx *ctx, const cnk_image *img, int x, int y, int width, int height, cnk_image *out);
/* The largest centred region whose aspect ratio is aspect_w : aspect_h (1:1 for a square). */
int cnk_image_center_crop(cnk_ctx *ctx, const cnk_image *img, int aspect_w, int aspect_h, cnk_image *out);
/* Resizes with a triangle filter: bilinear when enlarging, antialiased (tent as wide as the shrink factor)
 * when shrinking, as PIL and torch's bilinear with antialias=True (and stb_image_resize's TRIANGLE). */
int cnk_image_resize(cnk_ctx *ctx, const cnk_image *img, int width, int height, cnk_image *out);

/* Writes img as channels x height x width floats with the normalisation. */
void cnk_image_to_chw(const cnk_image *img, cnk_norm_mode norm, float *out);

/* file -> float CHW tensor of channels x height x width: load, crop, resize (in float, so no 8-bit rounding
 * after the filter), normalise. out holds channels * width * height floats. */
int cnk_image_load_tensor(cnk_ctx *ctx, const char *path, int channels, int width, int height, cnk_crop_mode crop,
                          cnk_norm_mode norm, float *out);

/* The same on the central `fraction` (0 < fraction <= 1) of the crop region's width and height (rounded, at
 * least 1 pixel), e.g. 0.875 for ImageNet's usual evaluation crop; fraction 1 is cnk_image_load_tensor. */
int cnk_image_load_tensor_fraction(cnk_ctx *ctx, const char *path, int channels, int width, int height,
                                   cnk_crop_mode crop, float fraction, cnk_norm_mode norm, float *out);
/* The same from a decoded image (of img->channels channels). */
int cnk_image_to_tensor(cnk_ctx *ctx, const cnk_image *img, int width, int height, cnk_crop_mode crop,
                        float fraction, cnk_norm_mode norm, float *out);

/* 1 if the path's extension is one stb_image reads (jpg jpeg png bmp gif tga pnm ppm pgm). */
int cnk_image_is_image_path(const char *path);

#endif
