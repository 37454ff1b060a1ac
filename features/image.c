#include "features/image.h"

#include <stb/stb_image.h>
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fsutil.h"

/* Largest side we will resize to or crop at: far above any CNN input. */
#define IMAGE_MAX_SIDE 32768

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};

void cnk_image_release(cnk_image *img)
{
    if (!img) return;
    /* Pixels come from stbi_load or malloc; stb uses the C allocator (STBI_FREE = free) in Debian's build. */
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

int cnk_image_is_image_path(const char *path)
{
    static const char *const exts[] = {"jpg", "jpeg", "png", "bmp", "gif", "tga", "pnm", "ppm", "pgm"};
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (cnk_path_has_ext(path, exts[i])) return 1;
    return 0;
}

/* Where the pixel data of a binary PGM/PPM ("P5"/"P6") starts, parsed as stb_image parses it: three numbers
 * after the magic, each after whitespace and '#' comments, and then one byte, whatever it is. 0 for other files.
 * The file position is left where it was. */
static long pnm_data_offset(FILE *fp)
{
    long start = ftell(fp), offset = 0;
    int c0 = fgetc(fp), c1 = fgetc(fp);
    if (c0 == 'P' && (c1 == '5' || c1 == '6')) {
        int c = fgetc(fp);
        for (int field = 0; field < 3 && c != EOF; field++) {
            for (;;) {
                while (c != EOF && isspace(c))
                    c = fgetc(fp);
                if (c != '#') break;
                while (c != EOF && c != '\n' && c != '\r')
                    c = fgetc(fp);
            }
            while (c != EOF && isdigit(c))
                c = fgetc(fp);
        }
        offset = ftell(fp); /* past the separator byte (or at the end of a file that stops in its header) */
    }
    fseek(fp, start, SEEK_SET);
    return offset;
}

/* 1 <-> 3 channels the way stb_image converts 8-bit pixels (grey = (77 R + 150 G + 29 B) >> 8). Frees px. */
static unsigned char *convert_channels(unsigned char *px, size_t n_pixels, int from, int to)
{
    unsigned char *out = malloc(n_pixels * (size_t)to);
    for (size_t i = 0; out && i < n_pixels; i++) {
        if (from == 1) {
            out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = px[i];
        } else {
            const unsigned char *rgb = px + 3 * i;
            out[i] = (unsigned char)((rgb[0] * 77 + rgb[1] * 150 + rgb[2] * 29) >> 8);
        }
    }
    free(px);
    return out;
}

static size_t le16(const unsigned char *b) { return (size_t)b[0] | (size_t)b[1] << 8; }
static size_t le32(const unsigned char *b) { return le16(b) | le16(b + 2) << 16; }

/* Which of stb_image's formats has no magic number: TGA is what stb tries last, when nothing else matched. */
static int looks_like_tga(const unsigned char *b, size_t n)
{
    static const char *const magics[] = {"\xff\xd8", "\x89PNG", "GIF8", "BM", "8BPS", "\x53\x80\xf6\x34", "#?", "P"};
    if (n < 18) return 0;
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++)
        if (memcmp(b, magics[i], strlen(magics[i])) == 0) return 0;
    return b[2] == 1 || b[2] == 2 || b[2] == 3 || b[2] == 9 || b[2] == 10 || b[2] == 11;
}

/* Where the run-length packets of a TGA end once they have covered `pixels` pixels (walking the packets, as the
 * file may end early); SIZE_MAX when the file ends first. The file position is left where it was. */
static size_t tga_rle_end(FILE *fp, size_t offset, size_t pixels, size_t bytes_per_pixel)
{
    long start = ftell(fp);
    size_t covered = 0, position = offset;
    if (fseek(fp, (long)offset, SEEK_SET) != 0) position = SIZE_MAX;
    while (position != SIZE_MAX && covered < pixels) {
        int header = fgetc(fp);
        if (header == EOF) {
            position = SIZE_MAX;
            break;
        }
        size_t count = (size_t)(header & 127) + 1, bytes = header & 128 ? bytes_per_pixel : count * bytes_per_pixel;
        covered += count;
        position += 1 + bytes;
        if (fseek(fp, (long)bytes, SEEK_CUR) != 0) position = SIZE_MAX;
    }
    fseek(fp, start, SEEK_SET);
    return position;
}

/* The fewest bytes an uncompressed BMP or a TGA of this size can have, from its header; 0 when unknown. stb_image
 * reads missing BMP and TGA pixel data as zeros, so a 22-byte file could otherwise "decode" as 47 megapixels. */
static size_t minimum_file_bytes(FILE *fp, int width, int height)
{
    unsigned char b[54] = {0};
    long start = ftell(fp);
    size_t n = fread(b, 1, sizeof b, fp), pixels = (size_t)width * (size_t)height;
    fseek(fp, start, SEEK_SET);
    if (n >= 34 && b[0] == 'B' && b[1] == 'M') {
        size_t header = le32(b + 14), bits = header == 12 ? le16(b + 24) : le16(b + 28);
        size_t compression = header == 12 ? 0 : le32(b + 30);
        if (compression != 0 && compression != 3) return 0; /* stb refuses RLE BMPs itself */
        size_t row_bytes = ((size_t)width * bits + 31) / 32 * 4;
        return le32(b + 10) + row_bytes * (size_t)height;
    }
    if (looks_like_tga(b, n)) {
        size_t bytes_per_pixel = (b[16] + 7u) / 8u, entry_bytes = (b[7] + 7u) / 8u;
        size_t offset = 18 + b[0] + (b[1] ? le16(b + 5) * entry_bytes : 0);
        if (b[2] < 9) return offset + pixels * bytes_per_pixel;
        return tga_rle_end(fp, offset, pixels, bytes_per_pixel);
    }
    return 0;
}

int cnk_image_load_budget(cnk_ctx *ctx, const char *path, int channels, size_t max_pixels, cnk_image *out)
{
    memset(out, 0, sizeof *out);
    if (channels != 1 && channels != 3) return cnk_fail(ctx, CNK_ERR_ARG, "%s: channels must be 1 or 3", path);
    if (cnk_is_dir(path)) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: is a directory, not an image", path);
    /* Anything but a regular file is refused before opening: a named pipe would block fopen forever. */
    if (!cnk_is_file(path))
        return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot open (no such file, or not a regular file)", path);
    FILE *fp = fopen(path, "rb");
    if (!fp) return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot open (no such file or unreadable)", path);
    int width, height, file_channels;
    /* The header alone tells the size: refuse huge images before stb allocates for them. */
    if (!stbi_info_from_file(fp, &width, &height, &file_channels)) {
        fclose(fp);
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: not a readable image (%s)", path, stbi_failure_reason());
    }
    if (width < 1 || height < 1 || (size_t)width * (size_t)height > max_pixels) {
        fclose(fp);
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: %d x %d pixels exceeds the budget of %zu pixels", path, width, height,
                        max_pixels);
    }
    struct stat st;
    size_t least = minimum_file_bytes(fp, width, height);
    if (least == SIZE_MAX) {
        fclose(fp);
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: truncated (its run-length data ends before %d x %d pixels)", path,
                        width, height);
    }
    if (least > 0 && (fstat(fileno(fp), &st) != 0 || (size_t)st.st_size < least)) {
        fclose(fp);
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: truncated (its %d x %d header needs at least %zu bytes)", path, width,
                        height, least);
    }
    /* Two defects of Debian's stb_image 2.27 with binary PGM/PPM: pixel data cut short is left uninitialised (so
     * the length is checked here), and a 16-bit file converted to another channel count is read past the end of
     * its buffer (so it is decoded in its own channels and converted below). */
    int load_channels = channels;
    long data_offset = pnm_data_offset(fp);
    if (data_offset > 0) {
        int sixteen = stbi_is_16_bit_from_file(fp);
        size_t needed = (size_t)width * (size_t)height * (size_t)file_channels * (sixteen ? 2 : 1);
        if (fstat(fileno(fp), &st) != 0 || st.st_size < data_offset || (size_t)(st.st_size - data_offset) < needed) {
            fclose(fp);
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s: truncated (the PGM/PPM header promises %zu bytes of pixels)", path,
                            needed);
        }
        if (sixteen) load_channels = file_channels;
    }
    unsigned char *pixels = stbi_load_from_file(fp, &width, &height, &file_channels, load_channels);
    fclose(fp);
    if (!pixels) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: cannot decode image (%s)", path, stbi_failure_reason());
    if (load_channels != channels) {
        pixels = convert_channels(pixels, (size_t)width * (size_t)height, load_channels, channels);
        if (!pixels) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory for %d x %d pixels", path, width, height);
    }
    out->pixels = pixels;
    out->width = width;
    out->height = height;
    out->channels = channels;
    return CNK_OK;
}

int cnk_image_load(cnk_ctx *ctx, const char *path, int channels, cnk_image *out)
{
    return cnk_image_load_budget(ctx, path, channels, CNK_IMAGE_MAX_PIXELS, out);
}

static int alloc_image(cnk_ctx *ctx, int width, int height, int channels, cnk_image *out)
{
    memset(out, 0, sizeof *out);
    if (width < 1 || height < 1 || width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE)
        return cnk_fail(ctx, CNK_ERR_ARG, "image: size %d x %d outside 1..%d", width, height, IMAGE_MAX_SIDE);
    out->pixels = malloc((size_t)width * (size_t)height * (size_t)channels);
    if (!out->pixels) return cnk_fail(ctx, CNK_ERR_NOMEM, "image: out of memory for %d x %d", width, height);
    out->width = width;
    out->height = height;
    out->channels = channels;
    return CNK_OK;
}

int cnk_image_crop(cnk_ctx *ctx, const cnk_image *img, int x, int y, int width, int height, cnk_image *out)
{
    if (x < 0 || y < 0 || width < 1 || height < 1 || x > img->width - width || y > img->height - height)
        return cnk_fail(ctx, CNK_ERR_ARG, "image: crop %d,%d %dx%d outside a %dx%d image", x, y, width, height,
                        img->width, img->height);
    int rc = alloc_image(ctx, width, height, img->channels, out);
    if (rc != CNK_OK) return rc;
    size_t row_bytes = (size_t)width * (size_t)img->channels;
    for (int r = 0; r < height; r++)
        memcpy(out->pixels + (size_t)r * row_bytes,
               img->pixels + ((size_t)(y + r) * (size_t)img->width + (size_t)x) * (size_t)img->channels, row_bytes);
    return CNK_OK;
}

/* The largest centred rectangle with aspect aspect_w : aspect_h inside width x height. */
static void center_region(int width, int height, int aspect_w, int aspect_h, int *x, int *y, int *cw, int *ch)
{
    /* Compare width/height with aspect_w/aspect_h without floating point. */
    if ((long long)width * aspect_h > (long long)height * aspect_w) {
        *ch = height;
        *cw = (int)((long long)height * aspect_w / aspect_h);
    } else {
        *cw = width;
        *ch = (int)((long long)width * aspect_h / aspect_w);
    }
    if (*cw < 1) *cw = 1;
    if (*ch < 1) *ch = 1;
    *x = (width - *cw) / 2;
    *y = (height - *ch) / 2;
}

/* Shrinks the region (x, y, cw, ch) about its centre to `fraction` of its width and height (at least 1 pixel). */
static void shrink_region(float fraction, int *x, int *y, int *cw, int *ch)
{
    if (fraction >= 1.0f) return;
    int kw = (int)lround((double)*cw * fraction), kh = (int)lround((double)*ch * fraction);
    if (kw < 1) kw = 1;
    if (kh < 1) kh = 1;
    *x += (*cw - kw) / 2;
    *y += (*ch - kh) / 2;
    *cw = kw;
    *ch = kh;
}

int cnk_image_center_crop(cnk_ctx *ctx, const cnk_image *img, int aspect_w, int aspect_h, cnk_image *out)
{
    if (aspect_w < 1 || aspect_h < 1) return cnk_fail(ctx, CNK_ERR_ARG, "image: bad aspect %d:%d", aspect_w, aspect_h);
    int x, y, cw, ch;
    center_region(img->width, img->height, aspect_w, aspect_h, &x, &y, &cw, &ch);
    return cnk_image_crop(ctx, img, x, y, cw, ch, out);
}

/* The taps of a triangle (tent) filter resampling n_in samples to n_out along one axis: PIL's and torch's
 * antialiased bilinear. Output i is centred at (i + 0.5) * n_in / n_out in input coordinates; the tent's
 * radius is the shrink factor (at least 1, plain bilinear when enlarging); weights falling outside the
 * image are dropped and the rest renormalised (edge clamp). stb_image_resize's STBIR_FILTER_TRIANGLE is the
 * same filter, but Debian's v1 aborts on an assertion for some sizes (nothings/stb#1449), and the library
 * must never abort. */
typedef struct axis_taps {
    int *first;     /* first input index of output i */
    int *count;     /* taps of output i */
    float *weights; /* max_taps per output */
    int max_taps;
} axis_taps;

static void free_taps(axis_taps *t)
{
    free(t->first);
    free(t->count);
    free(t->weights);
}

static int build_taps(int n_in, int n_out, axis_taps *t)
{
    double scale = (double)n_in / n_out, radius = scale > 1 ? scale : 1.0;
    t->max_taps = (int)ceil(radius) * 2 + 2;
    t->first = malloc((size_t)n_out * sizeof *t->first);
    t->count = malloc((size_t)n_out * sizeof *t->count);
    t->weights = malloc((size_t)n_out * (size_t)t->max_taps * sizeof *t->weights);
    if (!t->first || !t->count || !t->weights) {
        free_taps(t);
        return -1;
    }
    for (int i = 0; i < n_out; i++) {
        double centre = (i + 0.5) * scale;
        int lo = (int)floor(centre - radius), hi = (int)ceil(centre + radius);
        if (lo < 0) lo = 0;
        if (hi > n_in) hi = n_in;
        if (hi - lo > t->max_taps) hi = lo + t->max_taps;
        float *w = t->weights + (size_t)i * (size_t)t->max_taps;
        double total = 0;
        for (int j = lo; j < hi; j++) {
            double tent = 1.0 - fabs((j + 0.5 - centre) / radius);
            w[j - lo] = (float)(tent > 0 ? tent : 0);
            total += w[j - lo];
        }
        for (int j = lo; j < hi; j++)
            w[j - lo] = total > 0 ? (float)(w[j - lo] / total) : 0.0f;
        t->first[i] = lo;
        t->count[i] = hi - lo;
    }
    return 0;
}

/* Resamples an interleaved float image (in_w x in_h x channels, rows `in_stride` floats apart) to
 * out_w x out_h, separably: rows first, then columns. */
static int resize_float(const float *in, int in_w, int in_h, size_t in_stride, int channels, float *out, int out_w,
                        int out_h)
{
    axis_taps tx, ty;
    if (build_taps(in_w, out_w, &tx) != 0) return -1;
    if (build_taps(in_h, out_h, &ty) != 0) {
        free_taps(&tx);
        return -1;
    }
    size_t row = (size_t)out_w * (size_t)channels;
    float *tmp = malloc((size_t)in_h * row * sizeof *tmp);
    if (!tmp) {
        free_taps(&tx);
        free_taps(&ty);
        return -1;
    }
    for (int y = 0; y < in_h; y++)
        for (int x = 0; x < out_w; x++) {
            const float *w = tx.weights + (size_t)x * (size_t)tx.max_taps;
            const float *src = in + (size_t)y * in_stride + (size_t)tx.first[x] * (size_t)channels;
            for (int c = 0; c < channels; c++) {
                double acc = 0;
                for (int k = 0; k < tx.count[x]; k++)
                    acc += w[k] * src[(size_t)k * (size_t)channels + (size_t)c];
                tmp[(size_t)y * row + (size_t)x * (size_t)channels + (size_t)c] = (float)acc;
            }
        }
    for (int y = 0; y < out_h; y++) {
        const float *w = ty.weights + (size_t)y * (size_t)ty.max_taps;
        float *dst = out + (size_t)y * row;
        for (size_t i = 0; i < row; i++)
            dst[i] = 0;
        for (int k = 0; k < ty.count[y]; k++) {
            const float *src = tmp + (size_t)(ty.first[y] + k) * row;
            for (size_t i = 0; i < row; i++)
                dst[i] += w[k] * src[i];
        }
    }
    free(tmp);
    free_taps(&tx);
    free_taps(&ty);
    return 0;
}

int cnk_image_resize(cnk_ctx *ctx, const cnk_image *img, int width, int height, cnk_image *out)
{
    int rc = alloc_image(ctx, width, height, img->channels, out);
    if (rc != CNK_OK) return rc;
    size_t n_in = (size_t)img->width * (size_t)img->height * (size_t)img->channels;
    size_t n_out = (size_t)width * (size_t)height * (size_t)img->channels;
    float *in = malloc(n_in * sizeof *in), *res = malloc(n_out * sizeof *res);
    int ok = in && res;
    if (ok) {
        for (size_t i = 0; i < n_in; i++)
            in[i] = img->pixels[i];
        ok = resize_float(in, img->width, img->height, (size_t)img->width * (size_t)img->channels, img->channels, res,
                          width, height) == 0;
    }
    if (ok)
        for (size_t i = 0; i < n_out; i++)
            out->pixels[i] = (unsigned char)lrintf(fminf(255.0f, fmaxf(0.0f, res[i])));
    free(in);
    free(res);
    if (!ok) {
        cnk_image_release(out);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "image: out of memory resizing to %d x %d", width, height);
    }
    return CNK_OK;
}

/* value in pixel units (0..255) -> normalised value of channel c. */
static float normalise(float value, int c, int channels, cnk_norm_mode norm)
{
    if (norm == CNK_NORM_SIGNED) return value / 127.5f - 1.0f;
    if (norm == CNK_NORM_IMAGENET) {
        float mean = channels == 3 ? imagenet_mean[c] : (imagenet_mean[0] + imagenet_mean[1] + imagenet_mean[2]) / 3;
        float std = channels == 3 ? imagenet_std[c] : (imagenet_std[0] + imagenet_std[1] + imagenet_std[2]) / 3;
        return (value / 255.0f - mean) / std;
    }
    return value / 255.0f;
}

void cnk_image_to_chw(const cnk_image *img, cnk_norm_mode norm, float *out)
{
    size_t plane = (size_t)img->width * (size_t)img->height;
    for (int c = 0; c < img->channels; c++)
        for (size_t i = 0; i < plane; i++)
            out[(size_t)c * plane + i] =
                normalise(img->pixels[i * (size_t)img->channels + (size_t)c], c, img->channels, norm);
}

int cnk_image_load_tensor(cnk_ctx *ctx, const char *path, int channels, int width, int height, cnk_crop_mode crop,
                          cnk_norm_mode norm, float *out)
{
    return cnk_image_load_tensor_fraction(ctx, path, channels, width, height, crop, 1.0f, norm, out);
}

static int check_target(cnk_ctx *ctx, const char *name, int width, int height, float fraction)
{
    if (width < 1 || height < 1 || width > IMAGE_MAX_SIDE || height > IMAGE_MAX_SIDE)
        return cnk_fail(ctx, CNK_ERR_ARG, "%s: bad target size %d x %d", name, width, height);
    if (!(fraction > 0.0f && fraction <= 1.0f))
        return cnk_fail(ctx, CNK_ERR_ARG, "%s: crop fraction %g is not in (0, 1]", name, (double)fraction);
    return CNK_OK;
}

/* See cnk_image_to_tensor; name (a path or "image") starts the error messages. */
static int image_to_tensor(cnk_ctx *ctx, const char *name, const cnk_image *img, int width, int height,
                           cnk_crop_mode crop, float fraction, cnk_norm_mode norm, float *out)
{
    int rc = check_target(ctx, name, width, height, fraction);
    if (rc) return rc;
    int channels = img->channels, x = 0, y = 0, cw = img->width, ch = img->height;
    if (crop == CNK_CROP_CENTER) center_region(img->width, img->height, width, height, &x, &y, &cw, &ch);
    shrink_region(fraction, &x, &y, &cw, &ch);
    /* Copy the crop region to float, resize it in float (no 8-bit rounding after the filter). */
    size_t in_count = (size_t)cw * (size_t)ch * (size_t)channels;
    size_t out_count = (size_t)width * (size_t)height * (size_t)channels;
    float *in = malloc(in_count * sizeof *in), *resized = malloc(out_count * sizeof *resized);
    if (!in || !resized) {
        free(in);
        free(resized);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory for a %d x %d image", name, cw, ch);
    }
    for (int r = 0; r < ch; r++)
        for (size_t i = 0; i < (size_t)cw * (size_t)channels; i++)
            in[(size_t)r * (size_t)cw * (size_t)channels + i] =
                img->pixels[((size_t)(y + r) * (size_t)img->width + (size_t)x) * (size_t)channels + i];
    int failed = resize_float(in, cw, ch, (size_t)cw * (size_t)channels, channels, resized, width, height);
    free(in);
    if (failed) {
        free(resized);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: resize to %d x %d failed (out of memory)", name, width, height);
    }
    size_t plane = (size_t)width * (size_t)height;
    for (int c = 0; c < channels; c++)
        for (size_t i = 0; i < plane; i++)
            out[(size_t)c * plane + i] = normalise(resized[i * (size_t)channels + (size_t)c], c, channels, norm);
    free(resized);
    return CNK_OK;
}

int cnk_image_to_tensor(cnk_ctx *ctx, const cnk_image *img, int width, int height, cnk_crop_mode crop,
                        float fraction, cnk_norm_mode norm, float *out)
{
    return image_to_tensor(ctx, "image", img, width, height, crop, fraction, norm, out);
}

int cnk_image_load_tensor_fraction(cnk_ctx *ctx, const char *path, int channels, int width, int height,
                                   cnk_crop_mode crop, float fraction, cnk_norm_mode norm, float *out)
{
    int rc = check_target(ctx, path, width, height, fraction); /* before decoding the file */
    cnk_image img;
    if (!rc) rc = cnk_image_load(ctx, path, channels, &img);
    if (rc != CNK_OK) return rc;
    rc = image_to_tensor(ctx, path, &img, width, height, crop, fraction, norm, out);
    cnk_image_release(&img);
    return rc;
}
