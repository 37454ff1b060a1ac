#include "pipeline/spec_warp.h"

#include <math.h>
#include <stddef.h>

void cnk_spec_warp_rows(const float *src, int rows, int frames, float factor, float *dst)
{
    for (int r = 0; r < rows; r++) {
        double pos = factor > 0 ? r / (double)factor : r;
        if (pos > rows - 1) pos = rows - 1;
        int lo = (int)floor(pos);
        int hi = lo + 1 < rows ? lo + 1 : lo;
        float w = (float)(pos - lo);
        const float *a = src + (size_t)lo * frames, *b = src + (size_t)hi * frames;
        float *out = dst + (size_t)r * frames;
        for (int t = 0; t < frames; t++) out[t] = a[t] + w * (b[t] - a[t]);
    }
}

void cnk_spec_stretch_frames(const float *src, int rows, int frames, float factor, float fill, float *dst)
{
    for (int t = 0; t < frames; t++) {
        double pos = factor > 0 ? t / (double)factor : t;
        int lo = (int)floor(pos);
        float w = (float)(pos - lo);
        for (int r = 0; r < rows; r++) {
            const float *row = src + (size_t)r * frames;
            float a = lo < frames ? row[lo] : fill;
            float b = lo + 1 < frames ? row[lo + 1] : fill;
            dst[(size_t)r * frames + t] = w == 0 ? a : a + w * (b - a);
        }
    }
}
