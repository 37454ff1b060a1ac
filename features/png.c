#include "features/png.h"

#include <math.h>
#include <stb/stb_image_write.h>
#include <stdlib.h>

#include "core/atomic_file.h"

/* PNG dimensions cnnkit will write (a 30 s clip's STFT is 1025 x 1300; this leaves lots of room). */
#define PNG_MAX_SIDE 65535

static void write_to_file(void *context, void *data, int size)
{
    FILE *fp = context;
    if (size > 0) fwrite(data, 1, (size_t)size, fp); /* errors surface in cnk_afile_commit's ferror check */
}

int cnk_png_write_pixels(cnk_ctx *ctx, const char *path, const unsigned char *pixels, int width, int height,
                         int channels)
{
    if (width < 1 || height < 1 || width > PNG_MAX_SIDE || height > PNG_MAX_SIDE || channels < 1 || channels > 4)
        return cnk_fail(ctx, CNK_ERR_ARG, "%s: cannot write a %dx%dx%d PNG", path, width, height, channels);
    cnk_afile af;
    int rc = cnk_afile_open(ctx, &af, path);
    if (rc != CNK_OK) return rc;
    if (!stbi_write_png_to_func(write_to_file, af.fp, width, height, channels, pixels, width * channels)) {
        cnk_afile_abort(&af);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: PNG encoding failed (out of memory)", path);
    }
    return cnk_afile_commit(ctx, &af);
}

int cnk_png_write_array(cnk_ctx *ctx, const char *path, const float *data, size_t rows, size_t cols, cnk_colormap map)
{
    if (rows < 1 || cols < 1 || rows > PNG_MAX_SIDE || cols > PNG_MAX_SIDE)
        return cnk_fail(ctx, CNK_ERR_ARG, "%s: cannot draw a %zu x %zu array as a PNG", path, rows, cols);
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < rows * cols; i++) {
        if (isnan(data[i])) continue;
        if (data[i] < lo) lo = data[i];
        if (data[i] > hi) hi = data[i];
    }
    int channels = map == CNK_COLORMAP_GREY ? 1 : 3;
    unsigned char *pixels = malloc(rows * cols * (size_t)channels);
    if (!pixels) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory for a %zu x %zu image", path, rows, cols);
    double span = (isfinite(lo) && isfinite(hi) && hi > lo) ? (double)hi - (double)lo : 0.0;
    for (size_t r = 0; r < rows; r++) {
        const float *src = data + (rows - 1 - r) * cols; /* highest frequency on the top line */
        for (size_t c = 0; c < cols; c++) {
            double v = (span > 0 && !isnan(src[c])) ? ((double)src[c] - lo) / span * 255.0 : 0.0;
            int level = (int)lround(v < 0 ? 0 : v > 255 ? 255 : v);
            unsigned char rgb[3];
            cnk_colormap_rgb(map, level, rgb);
            for (int ch = 0; ch < channels; ch++)
                pixels[(r * cols + c) * (size_t)channels + (size_t)ch] = rgb[ch];
        }
    }
    int rc = cnk_png_write_pixels(ctx, path, pixels, (int)cols, (int)rows, channels);
    free(pixels);
    return rc;
}
