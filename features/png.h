/* png.h: spectrograms (or any rows x cols float array) as 8-bit PNG images, written atomically: min..max
 * mapped to 0..255, grey or a colour map, and image row 0 = the array's LAST row (highest frequency on top). */
#ifndef CNK_PNG_H
#define CNK_PNG_H

#include <stddef.h>

#include "core/context.h"
#include "features/colormap.h"

/* Writes path as a grey (1-channel) or RGB PNG. A constant array maps to 0; NaN maps to 0. */
int cnk_png_write_array(cnk_ctx *ctx, const char *path, const float *data, size_t rows, size_t cols, cnk_colormap map);

/* Writes 8-bit pixels (height x width x channels, row 0 = top, channels 1..4) as a PNG, atomically. */
int cnk_png_write_pixels(cnk_ctx *ctx, const char *path, const unsigned char *pixels, int width, int height,
                         int channels);

#endif
