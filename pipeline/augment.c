#include "pipeline/augment.h"

#include <math.h>
#include <string.h>

#include "pipeline/spec_warp.h"

/* Photo defaults from the animals3 experiments (datasets/README.md): random-resized crops of 50-100% of the
 * area make each epoch new views of ~1000 photos; the jitter keeps colour and exposure from being the cue
 * (crops of 35-100% and jitter 0.2 did as well on validation accuracy, slightly worse on validation loss). */
void cnk_augment_defaults_image(cnk_augment_params *p)
{
    /* no extra shift (crop_pad 0): the random crop box already moves by up to (1 - sqrt(scale)) of the image */
    memset(p, 0, sizeof *p);
    p->flip = 1;
    p->scale_min = 0.5f;
    p->max_aspect = 4.0f / 3;
    p->brightness = p->contrast = p->saturation = 0.1f;
}

void cnk_augment_defaults_spectrogram(cnk_augment_params *p, int n_rows, int n_frames, float fill)
{
    memset(p, 0, sizeof *p);
    p->max_time_shift = n_frames / 8;
    p->n_time_masks = 2;
    p->time_mask = n_frames / 10;
    p->n_freq_masks = 2;
    p->freq_mask = n_rows / 8;
    p->fill = fill;
}

void cnk_augment_mirror(float *x, int channels, int height, int width)
{
    for (int row = 0; row < channels * height; row++) {
        float *line = x + (size_t)row * width;
        for (int a = 0, b = width - 1; a < b; a++, b--) {
            float t = line[a];
            line[a] = line[b];
            line[b] = t;
        }
    }
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* A uniform integer in [-m, m]. */
static int symmetric(cnk_rng *rng, int m) { return m > 0 ? (int)cnk_rng_below(rng, (uint64_t)(2 * m + 1)) - m : 0; }

/* The geometric part of one draw: output pixel (x, y) samples the source at (x0 + (x' + 0.5) * sx - 0.5,
 * y0 + (y + 0.5) * sy - 0.5), x' = x or its mirror; with no scale jitter that is an integer shift. */
typedef struct image_warp {
    double x0, y0, sx, sy;
    int flip;
} image_warp;

static float uniform_in(cnk_rng *rng, float amount) { return amount * (float)(2 * cnk_rng_uniform(rng) - 1); }

static image_warp draw_warp(cnk_rng *rng, const cnk_augment_params *p, int height, int width)
{
    /* Every value is drawn whatever applies, so the stream use does not depend on the parameters. */
    int dx = symmetric(rng, p->crop_pad), dy = symmetric(rng, p->crop_pad);
    int flip = (int)cnk_rng_below(rng, 2) && p->flip;
    double u_area = cnk_rng_uniform(rng), u_aspect = cnk_rng_uniform(rng);
    double u_x = cnk_rng_uniform(rng), u_y = cnk_rng_uniform(rng);
    image_warp w = {dx, dy, 1, 1, flip};
    if (p->scale_min > 0 && p->scale_min < 1) {
        double area = p->scale_min + (1 - p->scale_min) * u_area;
        double log_aspect = p->max_aspect > 1 ? log(p->max_aspect) * (2 * u_aspect - 1) : 0;
        double aspect = exp(log_aspect);
        w.sx = fmin(1.0, sqrt(area * aspect)); /* box width / image width */
        w.sy = fmin(1.0, sqrt(area / aspect));
        w.x0 = dx + u_x * (1 - w.sx) * width;
        w.y0 = dy + u_y * (1 - w.sy) * height;
    }
    return w;
}

/* Bilinear sample of one plane with the edges repeated. */
static float sample(const float *plane, int height, int width, double y, double x)
{
    double fy = floor(y), fx = floor(x);
    double ty = y - fy, tx = x - fx;
    int y0 = clampi((int)fy, 0, height - 1), y1 = clampi((int)fy + 1, 0, height - 1);
    int x0 = clampi((int)fx, 0, width - 1), x1 = clampi((int)fx + 1, 0, width - 1);
    const float *r0 = plane + (size_t)y0 * width, *r1 = plane + (size_t)y1 * width;
    double top = r0[x0] + tx * (r0[x1] - r0[x0]), bottom = r1[x0] + tx * (r1[x1] - r1[x0]);
    return (float)(top + ty * (bottom - top));
}

/* Shrinking by more than this per axis is filtered as if by this much (the options keep sources within 4 times
 * the input), so a tap list has a fixed bound. */
#define MAX_SHRINK 4.0
enum { MAX_TAPS = 12 };

/* The source pixels (edges repeated) and normalised weights of a tent of the given radius (>= 1) centred on
 * source coordinate c; returns their count. Radius 1 is linear interpolation; a wider one averages the
 * footprint of an output pixel when shrinking, as cnk_image_resize does, so fine detail does not alias. */
static int tent_taps(double c, double radius, int size, int *index, double *weight)
{
    int lo = (int)floor(c - radius) + 1, hi = (int)ceil(c + radius) - 1, n = 0;
    double sum = 0;
    for (int k = lo; k <= hi && n < MAX_TAPS; k++) {
        double w = 1 - fabs(k - c) / radius;
        if (w <= 0) continue;
        index[n] = clampi(k, 0, size - 1);
        weight[n] = w;
        sum += w;
        n++;
    }
    for (int i = 0; i < n; i++) weight[i] /= sum;
    return n;
}

/* One output row of the warp when it shrinks along an axis: tents as wide as each axis's step. */
static void warp_row_tent(const image_warp *w, const float *src, int channels, int src_h, int src_w, int yy,
                          float *dst, int height, int width)
{
    int iy[MAX_TAPS], ix[MAX_TAPS];
    double wy[MAX_TAPS], wx[MAX_TAPS];
    double ry = fmin(fmax(w->sy, 1.0), MAX_SHRINK), rx = fmin(fmax(w->sx, 1.0), MAX_SHRINK);
    int ny = tent_taps(w->y0 + (yy + 0.5) * w->sy - 0.5, ry, src_h, iy, wy);
    size_t src_plane = (size_t)src_h * src_w, dst_plane = (size_t)height * width;
    for (int xx = 0; xx < width; xx++) {
        double sx = w->x0 + ((w->flip ? width - 1 - xx : xx) + 0.5) * w->sx - 0.5;
        int nx = tent_taps(sx, rx, src_w, ix, wx);
        for (int c = 0; c < channels; c++) {
            const float *plane = src + c * src_plane;
            double v = 0;
            for (int i = 0; i < ny; i++) {
                const float *row = plane + (size_t)iy[i] * src_w;
                double across = 0;
                for (int j = 0; j < nx; j++) across += wx[j] * row[ix[j]];
                v += wy[i] * across;
            }
            dst[c * dst_plane + (size_t)yy * width + xx] = (float)v;
        }
    }
}

/* dst (channels x height x width) <- src (channels x src_h x src_w) through the warp: bilinear when no axis
 * shrinks (every warp of an image onto its own size), tents when one does (a larger source). */
static void apply_warp(const image_warp *w, const float *src, int src_h, int src_w, float *dst, int channels,
                       int height, int width)
{
    size_t src_plane = (size_t)src_h * src_w, dst_plane = (size_t)height * width;
    int shrinks = w->sx > 1 || w->sy > 1;
    for (int yy = 0; yy < height; yy++) {
        if (shrinks) {
            warp_row_tent(w, src, channels, src_h, src_w, yy, dst, height, width);
            continue;
        }
        double sy = w->y0 + (yy + 0.5) * w->sy - 0.5;
        for (int c = 0; c < channels; c++)
            for (int xx = 0; xx < width; xx++) {
                double sx = w->x0 + ((w->flip ? width - 1 - xx : xx) + 0.5) * w->sx - 0.5;
                dst[c * dst_plane + (size_t)yy * width + xx] = sample(src + c * src_plane, src_h, src_w, sy, sx);
            }
    }
}

/* Brightness, contrast (around the image's mean) and saturation (around each pixel's channel mean). */
static void jitter_colour(float *x, int channels, size_t plane, float brightness, float contrast, float saturation)
{
    size_t n = (size_t)channels * plane;
    double mean = 0;
    for (size_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    if (channels > 1 && saturation != 1)
        for (size_t i = 0; i < plane; i++) {
            float grey = 0;
            for (int c = 0; c < channels; c++) grey += x[c * plane + i];
            grey /= (float)channels;
            for (int c = 0; c < channels; c++) x[c * plane + i] = grey + saturation * (x[c * plane + i] - grey);
        }
    for (size_t i = 0; i < n; i++) x[i] = (float)mean + contrast * (x[i] - (float)mean) + brightness;
}

/* The colour part of one draw (drawn whatever applies, after the warp's values). */
typedef struct colour_jitter {
    float brightness, contrast, saturation;
} colour_jitter;

static colour_jitter draw_colour(cnk_rng *rng, const cnk_augment_params *p)
{
    colour_jitter j;
    j.brightness = uniform_in(rng, p->brightness);
    j.contrast = 1 + uniform_in(rng, p->contrast);
    j.saturation = 1 + uniform_in(rng, p->saturation);
    return j;
}

static void apply_colour(const colour_jitter *j, const cnk_augment_params *p, float *x, int channels, size_t plane)
{
    if (p->brightness > 0 || p->contrast > 0 || p->saturation > 0)
        jitter_colour(x, channels, plane, j->brightness, j->contrast, j->saturation);
}

/* Random erasing (Zhong et al. 2017): a hidden part of the photo (an ear, the muzzle) makes the network use
 * the other cues as well, for a model that memorises its ~1000 training photos (training accuracy 0.96 against
 * 0.81 on validation, datasets/README.md). The five values are drawn whenever it is on, erased or not; with it
 * off nothing is drawn, so runs without it keep their random streams. */
#define ERASE_AREA_MIN 0.02
#define ERASE_AREA_MAX 0.25
#define ERASE_ASPECT_MAX 3.3

static void erase_box(cnk_rng *rng, float prob, float *x, int channels, int height, int width)
{
    if (!(prob > 0)) return;
    double u_p = cnk_rng_uniform(rng), u_area = cnk_rng_uniform(rng), u_aspect = cnk_rng_uniform(rng);
    double u_x = cnk_rng_uniform(rng), u_y = cnk_rng_uniform(rng);
    if (u_p >= prob) return;
    double area = (ERASE_AREA_MIN + (ERASE_AREA_MAX - ERASE_AREA_MIN) * u_area) * height * width;
    double aspect = exp(log(ERASE_ASPECT_MAX) * (2 * u_aspect - 1)); /* height / width of the box */
    /* at most sqrt(0.25 * 3.3) = 0.91 of a side: the box always fits */
    int box_h = clampi((int)lround(sqrt(area * aspect)), 1, height);
    int box_w = clampi((int)lround(sqrt(area / aspect)), 1, width);
    int y0 = (int)(u_y * (height - box_h + 1)), x0 = (int)(u_x * (width - box_w + 1));
    for (int c = 0; c < channels; c++)
        for (int y = y0; y < y0 + box_h; y++)
            memset(x + ((size_t)c * height + y) * width + x0, 0, (size_t)box_w * sizeof *x);
}

void cnk_augment_image(cnk_rng *rng, const cnk_augment_params *p, float *x, int channels, int height, int width,
                       float *scratch)
{
    image_warp w = draw_warp(rng, p, height, width);
    colour_jitter j = draw_colour(rng, p);
    int moved = w.x0 != 0 || w.y0 != 0 || w.sx != 1 || w.sy != 1 || w.flip;
    if (moved) {
        memcpy(scratch, x, (size_t)channels * height * width * sizeof *x);
        apply_warp(&w, scratch, height, width, x, channels, height, width);
    }
    apply_colour(&j, p, x, channels, (size_t)height * width);
    erase_box(rng, p->erase, x, channels, height, width);
}

void cnk_augment_image_from(cnk_rng *rng, const cnk_augment_params *p, const float *src, int src_h, int src_w,
                            float *x, int channels, int height, int width)
{
    image_warp w = draw_warp(rng, p, height, width);
    colour_jitter j = draw_colour(rng, p);
    /* The box was drawn in output pixels: the same fractions of the source. */
    double ry = (double)src_h / height, rx = (double)src_w / width;
    w.x0 *= rx, w.sx *= rx;
    w.y0 *= ry, w.sy *= ry;
    apply_warp(&w, src, src_h, src_w, x, channels, height, width);
    apply_colour(&j, p, x, channels, (size_t)height * width);
    erase_box(rng, p->erase, x, channels, height, width);
}

void cnk_augment_crop_resize(const float *src, int channels, int src_h, int src_w, double box_x, double box_y,
                             double box_w, double box_h, int flip, float *dst, int height, int width)
{
    image_warp w = {box_x, box_y, box_w / width, box_h / height, flip};
    apply_warp(&w, src, src_h, src_w, dst, channels, height, width);
}

static void fill_frames(float *x, int channels, int n_rows, int n_frames, int from, int count, float fill)
{
    for (int c = 0; c < channels; c++)
        for (int r = 0; r < n_rows; r++) {
            float *row = x + ((size_t)c * n_rows + r) * n_frames;
            for (int t = from; t < from + count && t < n_frames; t++) row[t] = fill;
        }
}

/* Resamples each channel's plane by a random factor around 1: rows (warp) or frames (stretch). The factor is
 * drawn only when the range is on, so runs without it keep their random streams. */
static void resample_planes(cnk_rng *rng, float range, int rows_not_frames, float *x, int channels, int n_rows,
                            int n_frames, float fill, float *scratch)
{
    if (!(range > 0)) return;
    float factor = 1.0f + range * (float)(2 * cnk_rng_uniform(rng) - 1);
    size_t plane = (size_t)n_rows * n_frames;
    memcpy(scratch, x, (size_t)channels * plane * sizeof *x);
    for (int c = 0; c < channels; c++) {
        if (rows_not_frames) cnk_spec_warp_rows(scratch + c * plane, n_rows, n_frames, factor, x + c * plane);
        else cnk_spec_stretch_frames(scratch + c * plane, n_rows, n_frames, factor, fill, x + c * plane);
    }
}

void cnk_augment_spectrogram(cnk_rng *rng, const cnk_augment_params *p, float *x, int channels, int n_rows,
                             int n_frames, float *scratch)
{
    resample_planes(rng, p->freq_warp, 1, x, channels, n_rows, n_frames, p->fill, scratch);
    resample_planes(rng, p->time_stretch, 0, x, channels, n_rows, n_frames, p->fill, scratch);
    int shift = symmetric(rng, p->max_time_shift);
    if (shift) {
        size_t n = (size_t)channels * n_rows * n_frames;
        memcpy(scratch, x, n * sizeof *x);
        for (size_t row = 0; row < (size_t)channels * n_rows; row++) {
            const float *src = scratch + row * n_frames;
            float *dst = x + row * n_frames;
            for (int t = 0; t < n_frames; t++) {
                int s = t - shift;
                dst[t] = (s >= 0 && s < n_frames) ? src[s] : p->fill;
            }
        }
    }
    for (int m = 0; m < p->n_time_masks; m++) {
        int width = p->time_mask > 0 ? (int)cnk_rng_below(rng, (uint64_t)p->time_mask + 1) : 0;
        int from = (int)cnk_rng_below(rng, (uint64_t)n_frames);
        fill_frames(x, channels, n_rows, n_frames, from, width, p->fill);
    }
    for (int m = 0; m < p->n_freq_masks; m++) {
        int height = p->freq_mask > 0 ? (int)cnk_rng_below(rng, (uint64_t)p->freq_mask + 1) : 0;
        int from = (int)cnk_rng_below(rng, (uint64_t)n_rows);
        for (int c = 0; c < channels; c++)
            for (int r = from; r < from + height && r < n_rows; r++) {
                float *row = x + ((size_t)c * n_rows + r) * n_frames;
                for (int t = 0; t < n_frames; t++) row[t] = p->fill;
            }
    }
}

/* Johnk's method: accepts with probability >= pi/4 for a in (0, 1]. */
double cnk_augment_beta(cnk_rng *rng, double a)
{
    for (;;) {
        double x = pow(cnk_rng_uniform(rng), 1 / a), y = pow(cnk_rng_uniform(rng), 1 / a);
        if (x + y <= 1 && x + y > 0) return x / (x + y);
    }
}

void cnk_augment_mixup(float *x, const int *y, int n, size_t in_size, int n_classes, float lam, float *soft)
{
    size_t C = (size_t)n_classes;
    memset(soft, 0, (size_t)n * C * sizeof *soft);
    for (int k = 0; k < n; k++) {
        int j = n - 1 - k;
        soft[(size_t)k * C + (size_t)y[k]] += k == j ? 1.0f : lam;
        if (k != j) soft[(size_t)k * C + (size_t)y[j]] += 1 - lam;
        if (k >= j) continue;
        float *a = x + (size_t)k * in_size, *b = x + (size_t)j * in_size;
        for (size_t i = 0; i < in_size; i++) {
            float ai = a[i], bi = b[i];
            a[i] = lam * ai + (1 - lam) * bi;
            b[i] = lam * bi + (1 - lam) * ai;
        }
    }
}
