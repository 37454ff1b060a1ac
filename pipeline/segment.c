#include "pipeline/segment.h"

#include <string.h>

size_t cnk_segment_count(size_t n, size_t seg_len, size_t hop, size_t min_fill)
{
    if (seg_len == 0 || hop == 0 || n <= seg_len) return 1;
    size_t count = 1 + (n - seg_len + hop - 1) / hop;
    /* The last window covers items (start_last + seg_len - hop .. n) that no earlier window covered;
     * drop it when that new part is smaller than min_fill. */
    size_t last_start = (count - 1) * hop;
    size_t prev_end = (count - 2) * hop + seg_len;
    size_t new_items = n > prev_end ? n - prev_end : 0;
    if (count > 1 && new_items < min_fill && last_start < n) count--;
    return count;
}

size_t cnk_segment_start(size_t i, size_t hop) { return i * hop; }

void cnk_segment_copy(const float *src, size_t n, size_t start, size_t seg_len, float pad_value, float *dst)
{
    size_t avail = start < n ? n - start : 0;
    size_t take = avail < seg_len ? avail : seg_len;
    if (take) memcpy(dst, src + start, take * sizeof *dst);
    for (size_t i = take; i < seg_len; i++) dst[i] = pad_value;
}

void cnk_segment_copy_rows(const float *src, size_t rows, size_t n, size_t start, size_t seg_len, float pad_value,
                           float *dst)
{
    for (size_t r = 0; r < rows; r++) cnk_segment_copy(src + r * n, n, start, seg_len, pad_value, dst + r * seg_len);
}
