/* segment.h: cutting a clip (or its spectrogram) into fixed-length segments for training and prediction.
 * Short clips give one segment padded at the end; the last partial window is padded too, never dropped. */
#ifndef CNK_SEGMENT_H
#define CNK_SEGMENT_H

#include <stddef.h>

/* Number of segments of seg_len items, starting every hop items, needed to cover a clip of n items:
 * 1 when n <= seg_len, else 1 + ceil((n - seg_len) / hop). Segments that would start past the clip's end
 * are never produced, and a final window that would contain fewer than min_fill items of the clip (beyond
 * those already covered) is dropped, so a clip a hair longer than seg_len does not give a mostly-padding
 * segment. seg_len, hop >= 1. */
size_t cnk_segment_count(size_t n, size_t seg_len, size_t hop, size_t min_fill);

/* Start offset of segment i (i * hop). */
size_t cnk_segment_start(size_t i, size_t hop);

/* Copies src[start .. start+seg_len) into dst, filling positions past n with pad_value. */
void cnk_segment_copy(const float *src, size_t n, size_t start, size_t seg_len, float pad_value, float *dst);

/* The same for a (rows x n) row-major matrix (a spectrogram: rows = frequency, n = frames): dst is
 * (rows x seg_len), columns past n filled with pad_value. */
void cnk_segment_copy_rows(const float *src, size_t rows, size_t n, size_t start, size_t seg_len, float pad_value,
                           float *dst);

#endif
