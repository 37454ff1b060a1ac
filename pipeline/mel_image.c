#include "pipeline/mel_image.h"

#include <stdio.h>
#include <string.h>

int cnk_mel_image_from_text(cnk_ctx *ctx, const char *text, const char *source, cnk_mel_image *mi)
{
    memset(mi, 0, sizeof *mi);
    const char *line = text;
    while (line && *line && strncmp(line, "mel_image=", 10) != 0) {
        line = strchr(line, '\n');
        if (line) line++;
    }
    if (!line || !*line) return CNK_OK;
    int c, h, w, used = 0;
    if (sscanf(line + 10, "%dx%dx%d%n", &c, &h, &w, &used) != 3 || (line[10 + used] && line[10 + used] != '\n') ||
        c < 1 || c > 4 || h < 1 || h > 4096 || w < 1 || w > 4096)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: bad mel_image value (expected CxHxW, e.g. 3x224x224)", source);
    *mi = (cnk_mel_image){1, c, h, w};
    return CNK_OK;
}

void cnk_mel_image_to_text(const cnk_mel_image *mi, char *buf, size_t cap)
{
    if (!mi->active)
        snprintf(buf, cap, "%s", "");
    else
        snprintf(buf, cap, "mel_image=%dx%dx%d\n", mi->channels, mi->height, mi->width);
}

/* Source coordinate of destination pixel d when n_src pixels become n_dst (centres aligned), clamped. */
static void source_pos(int d, int n_src, int n_dst, int *i0, int *i1, float *frac)
{
    float x = ((float)d + 0.5f) * (float)n_src / (float)n_dst - 0.5f;
    if (x < 0) x = 0;
    if (x > (float)(n_src - 1)) x = (float)(n_src - 1);
    *i0 = (int)x;
    *i1 = *i0 + 1 < n_src ? *i0 + 1 : *i0;
    *frac = x - (float)*i0;
}

void cnk_mel_image_apply(const cnk_mel_image *mi, const float *seg, int rows, int frames, float *out)
{
    size_t n = (size_t)rows * frames;
    float lo = seg[0], hi = seg[0];
    for (size_t i = 1; i < n; i++) {
        if (seg[i] < lo) lo = seg[i];
        if (seg[i] > hi) hi = seg[i];
    }
    float scale = hi > lo ? 2.0f / (hi - lo) : 0.0f;
    size_t plane = (size_t)mi->height * mi->width;
    for (int y = 0; y < mi->height; y++) {
        int r0, r1;
        float fy;
        /* image row 0 is the top: the highest frequency */
        source_pos(mi->height - 1 - y, rows, mi->height, &r0, &r1, &fy);
        for (int x = 0; x < mi->width; x++) {
            int c0, c1;
            float fx;
            source_pos(x, frames, mi->width, &c0, &c1, &fx);
            float top = seg[(size_t)r0 * frames + c0] * (1 - fx) + seg[(size_t)r0 * frames + c1] * fx;
            float bottom = seg[(size_t)r1 * frames + c0] * (1 - fx) + seg[(size_t)r1 * frames + c1] * fx;
            float v = top * (1 - fy) + bottom * fy;
            out[(size_t)y * mi->width + x] = (v - lo) * scale - 1.0f;
        }
    }
    for (int c = 1; c < mi->channels; c++) memcpy(out + (size_t)c * plane, out, plane * sizeof *out);
}
