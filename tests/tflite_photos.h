/* tflite_photos.h: the ImageNet test photos of ../shared/weights as network inputs, for tests only:
 * centre square crop, bilinear resize (half-pixel centres), pixel / 127.5 - 1, NHWC or NCHW. */
#ifndef CNK_TEST_TFLITE_PHOTOS_H
#define CNK_TEST_TFLITE_PHOTOS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>

typedef struct tp_photo {
    const char *file;
    const char *top1; /* the weights README's top-1 label (text up to the first comma) */
} tp_photo;

static const tp_photo tp_photos[] = {
    {"cat.bmp", "Egyptian cat"},   {"grace_hopper.bmp", "military uniform"}, {"bird.bmp", "chickadee"},
    {"parrot.jpg", "macaw"},       {"owl.jpg", "ruffed grouse"},             {"hot_dog.jpg", "hotdog"},
    {"dragonfly.bmp", "dragonfly"}};
#define TP_N_PHOTOS ((int)(sizeof tp_photos / sizeof tp_photos[0]))

/* Triangle-filter weights of one output cell over the source cells (PIL's antialiased bilinear: when
 * shrinking, the filter widens by the scale so every source pixel contributes). */
static int tp_weights(int out_index, double scale, int n_src, int *first, double *weights, int cap)
{
    double support = scale > 1 ? scale : 1, centre = (out_index + 0.5) * scale;
    int lo = (int)floor(centre - support), hi = (int)ceil(centre + support), n = 0;
    double total = 0;
    if (lo < 0) lo = 0;
    if (hi > n_src) hi = n_src;
    for (int k = lo; k < hi && n < cap; k++) {
        double w = 1 - fabs((k + 0.5 - centre) / support);
        weights[n++] = w > 0 ? w : 0;
        total += w > 0 ? w : 0;
    }
    for (int k = 0; k < n; k++) weights[k] /= total;
    *first = lo;
    return n;
}

/* Loads path into size x size x 3 floats (NHWC when nchw = 0, else CHW): centre square crop, antialiased
 * bilinear resize, pixel / 127.5 - 1. Returns a malloc'd buffer or NULL. */
static float *tp_load(const char *path, int size, int nchw)
{
    int w, h, c;
    unsigned char *pixels = stbi_load(path, &w, &h, &c, 3);
    if (!pixels) return NULL;
    int side = w < h ? w : h, x0 = (w - side) / 2, y0 = (h - side) / 2;
    double scale = (double)side / size;
    float *out = malloc((size_t)size * size * 3 * sizeof *out);
    double *rows = malloc((size_t)side * size * 3 * sizeof *rows); /* horizontal pass: side x size x 3 */
    if (!out || !rows) {
        free(out);
        free(rows);
        stbi_image_free(pixels);
        return NULL;
    }
    double wts[256];
    for (int ox = 0; ox < size; ox++) {
        int first, n = tp_weights(ox, scale, side, &first, wts, 256);
        for (int y = 0; y < side; y++)
            for (int ch = 0; ch < 3; ch++) {
                double v = 0;
                for (int k = 0; k < n; k++) v += wts[k] * pixels[((size_t)(y0 + y) * w + x0 + first + k) * 3 + ch];
                rows[((size_t)y * size + ox) * 3 + ch] = v;
            }
    }
    for (int oy = 0; oy < size; oy++) {
        int first, n = tp_weights(oy, scale, side, &first, wts, 256);
        for (int ox = 0; ox < size; ox++)
            for (int ch = 0; ch < 3; ch++) {
                double v = 0;
                for (int k = 0; k < n; k++) v += wts[k] * rows[((size_t)(first + k) * size + ox) * 3 + ch];
                float value = (float)(v / 127.5 - 1.0);
                if (nchw) out[((size_t)ch * size + oy) * size + ox] = value;
                else out[((size_t)oy * size + ox) * 3 + ch] = value;
            }
    }
    free(rows);
    stbi_image_free(pixels);
    return out;
}

/* Line index (0-based) of labels file -> label text up to the first comma, into out. 0 on success. */
static int tp_label(const char *labels_path, int index, char *out, size_t cap)
{
    FILE *f = fopen(labels_path, "r");
    if (!f) return -1;
    char line[512];
    int i = 0, found = -1;
    while (fgets(line, sizeof line, f)) {
        if (i++ != index) continue;
        size_t len = strcspn(line, ",\r\n");
        if (len >= cap) len = cap - 1;
        memcpy(out, line, len);
        out[len] = '\0';
        found = 0;
        break;
    }
    fclose(f);
    return found;
}

static int tp_argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

#endif
