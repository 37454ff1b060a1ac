#include "nn/conv2d.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "nn/winograd.h"

/* Samples are convolved in chunks: one sgemm over chunk*out_h*out_w columns keeps the matrix wide enough
 * for OpenBLAS to run near peak even on 7x7 maps, while the im2col buffer stays bounded. */
enum { TARGET_COLUMNS = 4096, MAX_COL_FLOATS = 1 << 22 };

int cnk_conv_out_size(int in, int kernel, int stride, int dilation, int pad_total)
{
    int span = dilation * (kernel - 1) + 1;
    return (in + pad_total - span) / stride + 1;
}

int cnk_conv_same_pad_total(int in, int kernel, int stride, int dilation)
{
    int span = dilation * (kernel - 1) + 1;
    int out = (in + stride - 1) / stride;
    int total = (out - 1) * stride + span - in;
    return total > 0 ? total : 0;
}

static int is_pointwise(const cnk_conv2d_shape *s)
{
    return s->kernel_h == 1 && s->kernel_w == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_top == 0 &&
           s->pad_left == 0 && s->out_h == s->in_h && s->out_w == s->in_w;
}

static int chunk_samples(const cnk_conv2d_shape *s)
{
    size_t spatial = (size_t)s->out_h * s->out_w;
    size_t rows = (size_t)s->in_c * s->kernel_h * s->kernel_w;
    size_t chunk = (TARGET_COLUMNS + spatial - 1) / spatial;
    while (chunk > 1 && rows * spatial * chunk > MAX_COL_FLOATS) chunk--;
    if (chunk > (size_t)s->batch) chunk = (size_t)s->batch;
    return chunk < 1 ? 1 : (int)chunk;
}

/* Floats of one thread's scratch: the column matrix, the staging matrix, a private weight gradient. */
static size_t per_thread_floats(const cnk_conv2d_shape *s)
{
    size_t cols = (size_t)chunk_samples(s) * s->out_h * s->out_w;
    size_t rows = (size_t)s->in_c * s->kernel_h * s->kernel_w;
    return rows * cols + (size_t)s->out_c * cols + (size_t)s->out_c * rows;
}

size_t cnk_conv2d_workspace_size(const cnk_conv2d_shape *s)
{
    size_t im2col = per_thread_floats(s) * (size_t)(s->threads > 0 ? s->threads : 1);
    size_t winograd = cnk_winograd_applies(s) ? cnk_winograd_workspace_size(s) : 0;
    return im2col > winograd ? im2col : winograd;
}

double cnk_conv2d_flops(const cnk_conv2d_shape *s)
{
    return 2.0 * s->batch * s->out_c * s->out_h * s->out_w * (double)s->in_c * s->kernel_h * s->kernel_w;
}

/* Writes sample `in_n`'s patches into columns [col_offset, col_offset + out_h*out_w) of col (row stride
 * ld): row (c, ki, kj), column (oh, ow). Out-of-image taps are zero. */
static void im2col_row(float *dst, const float *plane, const cnk_conv2d_shape *s, int ki, int kj)
{
    for (int oh = 0; oh < s->out_h; oh++) {
        int ih = oh * s->stride_h - s->pad_top + ki * s->dilation_h;
        float *row = dst + (size_t)oh * s->out_w;
        if (ih < 0 || ih >= s->in_h) {
            memset(row, 0, sizeof(float) * (size_t)s->out_w);
            continue;
        }
        const float *src = plane + (size_t)ih * s->in_w;
        int iw0 = -s->pad_left + kj * s->dilation_w;
        if (s->stride_w == 1) {
            /* contiguous run: zero the padded ends, copy the middle */
            int lo = iw0 < 0 ? -iw0 : 0;
            int hi = s->out_w;
            if (iw0 + hi > s->in_w) hi = s->in_w - iw0;
            if (hi < lo) hi = lo;
            for (int ow = 0; ow < lo; ow++) row[ow] = 0.0f;
            if (hi > lo) memcpy(row + lo, src + iw0 + lo, sizeof(float) * (size_t)(hi - lo));
            for (int ow = hi; ow < s->out_w; ow++) row[ow] = 0.0f;
        } else {
            for (int ow = 0; ow < s->out_w; ow++) {
                int iw = iw0 + ow * s->stride_w;
                row[ow] = (iw >= 0 && iw < s->in_w) ? src[iw] : 0.0f;
            }
        }
    }
}

/* The helpers below do their share (part of parts, a contiguous slice of rows) of the chunk; serial callers
 * pass 0 of 1. */
static void task_slice(int tasks, int part, int parts, int *begin, int *end)
{
    *begin = (int)((long)tasks * part / parts);
    *end = (int)((long)tasks * (part + 1) / parts);
}

static void im2col_chunk(float *col, const float *in, int n0, int count, const cnk_conv2d_shape *s, int part,
                         int parts)
{
    int khw = s->kernel_h * s->kernel_w, begin, end;
    size_t spatial = (size_t)s->out_h * s->out_w, ld = spatial * count;
    size_t in_plane = (size_t)s->in_h * s->in_w;
    task_slice(count * s->in_c * khw, part, parts, &begin, &end);
    for (int t = begin; t < end; t++) {
        int b = t / (s->in_c * khw), r = t % (s->in_c * khw);
        int c = r / khw, k = r % khw;
        const float *plane = in + ((size_t)(n0 + b) * s->in_c + c) * in_plane;
        im2col_row(col + (size_t)r * ld + (size_t)b * spatial, plane, s, k / s->kernel_w, k % s->kernel_w);
    }
}

/* Adds column-matrix gradients back onto the input planes (the transpose of im2col). Each task owns one
 * (sample, channel) plane, so threads never write the same element. */
static void col2im_chunk(float *dinp, const float *col, int n0, int count, const cnk_conv2d_shape *s)
{
    int khw = s->kernel_h * s->kernel_w;
    size_t spatial = (size_t)s->out_h * s->out_w, ld = spatial * count;
    size_t in_plane = (size_t)s->in_h * s->in_w;
    int tasks = count * s->in_c;
    for (int t = 0; t < tasks; t++) {
        int b = t / s->in_c, c = t % s->in_c;
        float *plane = dinp + ((size_t)(n0 + b) * s->in_c + c) * in_plane;
        for (int k = 0; k < khw; k++) {
            int ki = k / s->kernel_w, kj = k % s->kernel_w;
            const float *src = col + (size_t)(c * khw + k) * ld + (size_t)b * spatial;
            for (int oh = 0; oh < s->out_h; oh++) {
                int ih = oh * s->stride_h - s->pad_top + ki * s->dilation_h;
                if (ih < 0 || ih >= s->in_h) continue;
                float *dst = plane + (size_t)ih * s->in_w;
                const float *row = src + (size_t)oh * s->out_w;
                int iw0 = -s->pad_left + kj * s->dilation_w;
                for (int ow = 0; ow < s->out_w; ow++) {
                    int iw = iw0 + ow * s->stride_w;
                    if (iw >= 0 && iw < s->in_w) dst[iw] += row[ow];
                }
            }
        }
    }
}

/* Staging between NCHW samples n0.. and a [channels x count*spatial] matrix (sample-major columns). */
static void stage_gather(float *staged, const float *nchw, int n0, int count, int channels, size_t spatial,
                         int part, int parts)
{
    size_t ld = spatial * count;
    int begin, end;
    task_slice(count * channels, part, parts, &begin, &end);
    for (int t = begin; t < end; t++) {
        int b = t / channels, c = t % channels;
        memcpy(staged + (size_t)c * ld + (size_t)b * spatial, nchw + ((size_t)(n0 + b) * channels + c) * spatial,
               sizeof(float) * spatial);
    }
}

static void stage_scatter(float *nchw, const float *staged, int n0, int count, int channels, size_t spatial,
                          int part, int parts)
{
    size_t ld = spatial * count;
    int begin, end;
    task_slice(count * channels, part, parts, &begin, &end);
    for (int t = begin; t < end; t++) {
        int b = t / channels, c = t % channels;
        memcpy(nchw + ((size_t)(n0 + b) * channels + c) * spatial, staged + (size_t)c * ld + (size_t)b * spatial,
               sizeof(float) * spatial);
    }
}

static void add_bias(float *out, const float *bias, int batch, int channels, size_t spatial, int threads)
{
    int tasks = batch * channels;
#pragma omp parallel for num_threads(threads) schedule(static) if (tasks * spatial > 65536)
    for (int t = 0; t < tasks; t++) {
        float b = bias[t % channels];
        float *plane = out + (size_t)t * spatial;
        for (size_t p = 0; p < spatial; p++) plane[p] += b;
    }
}

static int team_size(const cnk_conv2d_shape *s, int n_chunks)
{
    int threads = s->threads > 0 ? s->threads : 1;
    if (n_chunks < 1) return 1;
    return threads < n_chunks ? threads : n_chunks;
}

/* One chunk of samples through im2col + one single-threaded sgemm, written back as NCHW. */
static void forward_chunk(float *out, const float *in, const float *weight, int n0, int count,
                          const cnk_conv2d_shape *s, float *col)
{
    int rows = s->in_c * s->kernel_h * s->kernel_w;
    size_t spatial = (size_t)s->out_h * s->out_w;
    size_t in_sample = (size_t)s->in_c * s->in_h * s->in_w, out_sample = (size_t)s->out_c * spatial;
    int cols = (int)(spatial * count);
    const float *b_mat = in + (size_t)n0 * in_sample;
    if (count > 1 || !is_pointwise(s)) {
        if (is_pointwise(s))
            stage_gather(col, in, n0, count, s->in_c, spatial, 0, 1);
        else
            im2col_chunk(col, in, n0, count, s, 0, 1);
        b_mat = col;
    }
    float *c_mat = count == 1 ? out + (size_t)n0 * out_sample : col + (size_t)rows * cols;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->out_c, cols, rows, 1.0f, weight, rows, b_mat, cols,
                0.0f, c_mat, cols);
    if (count > 1) stage_scatter(out, c_mat, n0, count, s->out_c, spatial, 0, 1);
}

/* Threads take whole chunks of samples, each with its own slice of the workspace and single-threaded
 * sgemm calls: one thread team for everything, so OpenBLAS's and OpenMP's pools never fight over cores. */
/* Fewer chunks than threads (a small batch, or small maps batched into one chunk): the whole team works on
 * each chunk, splitting the im2col rows, then the sgemm's columns, then the write-back. */
static void forward_cooperative(float *out, const float *in, const float *weight, int chunk, int n_chunks,
                                const cnk_conv2d_shape *s, float *col)
{
    int rows = s->in_c * s->kernel_h * s->kernel_w, pointwise = is_pointwise(s);
    size_t spatial = (size_t)s->out_h * s->out_w;
    size_t in_sample = (size_t)s->in_c * s->in_h * s->in_w, out_sample = (size_t)s->out_c * spatial;
    for (int k = 0; k < n_chunks; k++) {
        int n0 = k * chunk, count = s->batch - n0 < chunk ? s->batch - n0 : chunk;
        int cols = (int)(spatial * count), direct_in = pointwise && count == 1, direct_out = count == 1;
        const float *b_mat = direct_in ? in + (size_t)n0 * in_sample : col;
        float *c_mat = direct_out ? out + (size_t)n0 * out_sample : col + (size_t)rows * cols;
#pragma omp parallel num_threads(s->threads)
        {
            int part = omp_get_thread_num(), parts = omp_get_num_threads(), c0, c1;
            if (!direct_in) {
                if (pointwise)
                    stage_gather(col, in, n0, count, s->in_c, spatial, part, parts);
                else
                    im2col_chunk(col, in, n0, count, s, part, parts);
            }
#pragma omp barrier
            task_slice(cols, part, parts, &c0, &c1);
            if (c1 > c0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->out_c, c1 - c0, rows, 1.0f, weight, rows,
                            b_mat + c0, cols, 0.0f, c_mat + c0, cols);
#pragma omp barrier
            if (!direct_out) stage_scatter(out, c_mat, n0, count, s->out_c, spatial, part, parts);
        }
    }
}

void cnk_conv2d_forward(float *out, const float *in, const float *weight, const float *bias,
                        const cnk_conv2d_shape *s, float *workspace)
{
    int chunk = chunk_samples(s), n_chunks = (s->batch + chunk - 1) / chunk;
    size_t per_thread = per_thread_floats(s);
    if (cnk_winograd_applies(s)) {
        cnk_winograd_forward(out, in, weight, s, workspace);
        if (bias) add_bias(out, bias, s->batch, s->out_c, (size_t)s->out_h * s->out_w, s->threads);
        return;
    }
    if (s->threads > 1 && n_chunks < s->threads) {
        forward_cooperative(out, in, weight, chunk, n_chunks, s, workspace);
        if (bias) add_bias(out, bias, s->batch, s->out_c, (size_t)s->out_h * s->out_w, s->threads);
        return;
    }
#pragma omp parallel num_threads(team_size(s, n_chunks))
    {
        float *col = workspace + per_thread * (size_t)omp_get_thread_num();
#pragma omp for schedule(static)
        for (int k = 0; k < n_chunks; k++) {
            int n0 = k * chunk, count = s->batch - n0 < chunk ? s->batch - n0 : chunk;
            forward_chunk(out, in, weight, n0, count, s, col);
        }
    }
    if (bias) add_bias(out, bias, s->batch, s->out_c, (size_t)s->out_h * s->out_w, s->threads);
}

static void bias_backward(float *dbias, const float *dout, int batch, int channels, size_t spatial, int threads)
{
#pragma omp parallel for num_threads(threads) schedule(static) if (batch * channels * spatial > 65536)
    for (int c = 0; c < channels; c++) {
        double sum = 0.0;
        for (int n = 0; n < batch; n++) {
            const float *plane = dout + ((size_t)n * channels + c) * spatial;
            float part = 0.0f;
#pragma omp simd reduction(+ : part)
            for (size_t p = 0; p < spatial; p++) part += plane[p];
            sum += part;
        }
        dbias[c] += (float)sum;
    }
}

/* One chunk: dweight_part += dout * col^T; dinp += col2im(W^T * dout). */
static void backward_chunk(float *dinp, float *dweight_part, const float *dout, const float *in, const float *weight,
                           int n0, int count, const cnk_conv2d_shape *s, float *col)
{
    int rows = s->in_c * s->kernel_h * s->kernel_w, pointwise = is_pointwise(s);
    size_t spatial = (size_t)s->out_h * s->out_w;
    size_t in_sample = (size_t)s->in_c * s->in_h * s->in_w, out_sample = (size_t)s->out_c * spatial;
    int cols = (int)(spatial * count);
    const float *dout_mat = dout + (size_t)n0 * out_sample;
    float *staged = col + (size_t)rows * cols;
    if (count > 1) {
        stage_gather(staged, dout, n0, count, s->out_c, spatial, 0, 1);
        dout_mat = staged;
    }
    int direct = pointwise && count == 1; /* the input sample itself is the column matrix */
    if (dweight_part) {
        const float *b_mat = in + (size_t)n0 * in_sample;
        if (!direct) {
            if (pointwise)
                stage_gather(col, in, n0, count, s->in_c, spatial, 0, 1);
            else
                im2col_chunk(col, in, n0, count, s, 0, 1);
            b_mat = col;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->out_c, rows, cols, 1.0f, dout_mat, cols, b_mat, cols,
                    1.0f, dweight_part, rows);
    }
    if (!dinp) return;
    if (direct) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, cols, s->out_c, 1.0f, weight, rows, dout_mat, cols,
                    1.0f, dinp + (size_t)n0 * in_sample, cols);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, rows, cols, s->out_c, 1.0f, weight, rows, dout_mat, cols,
                0.0f, col, cols);
    col2im_chunk(dinp, col, n0, count, s);
}

int cnk_conv2d_backward_overwrites(const cnk_conv2d_shape *s) { return cnk_winograd_applies(s); }

void cnk_conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *in,
                         const float *weight, const cnk_conv2d_shape *s, int overwrite, float *workspace)
{
    if (dbias) bias_backward(dbias, dout, s->batch, s->out_c, (size_t)s->out_h * s->out_w, s->threads);
    if (cnk_winograd_applies(s)) {
        if (dweight) cnk_winograd_backward_weight(dweight, dout, in, s, workspace);
        if (dinp) cnk_winograd_backward_data(dinp, dout, weight, s, overwrite, workspace);
        return;
    }
    if (!dweight && !dinp) return;
    int chunk = chunk_samples(s), n_chunks = (s->batch + chunk - 1) / chunk, team = team_size(s, n_chunks);
    int rows = s->in_c * s->kernel_h * s->kernel_w;
    size_t per_thread = per_thread_floats(s), wcount = (size_t)s->out_c * rows;
    size_t part_offset = per_thread - wcount;
#pragma omp parallel num_threads(team)
    {
        int t = omp_get_thread_num();
        float *col = workspace + per_thread * (size_t)t;
        /* with one thread the gradient goes straight into dweight; otherwise into a private partial */
        float *part = dweight ? (team == 1 ? dweight : col + part_offset) : NULL;
        if (part && team > 1) memset(part, 0, sizeof(float) * wcount);
#pragma omp for schedule(static)
        for (int k = 0; k < n_chunks; k++) {
            int n0 = k * chunk, count = s->batch - n0 < chunk ? s->batch - n0 : chunk;
            backward_chunk(dinp, part, dout, in, weight, n0, count, s, col);
        }
    }
    if (!dweight || team == 1) return;
    /* partials summed in thread order: deterministic for a given thread count */
#pragma omp parallel for num_threads(s->threads) schedule(static) if (wcount > 65536)
    for (size_t i = 0; i < wcount; i++) {
        float sum = 0.0f;
        for (int t = 0; t < team; t++) sum += workspace[per_thread * (size_t)t + part_offset + i];
        dweight[i] += sum;
    }
}
