#include "nn/winograd.h"

#include <cblas.h>
#include <omp.h>

/* Output tiles are processed in chunks of TILE_CHUNK (whole chunks per thread, the same cut whatever the
 * thread count, so results do not depend on it): the transformed inputs and products of one chunk
 * (16 x (in_c + out_c) x TILE_CHUNK floats) stay in cache between the transforms and the sgemms. */
enum { TILE_CHUNK = 256, POSITIONS = 16, MIN_CHANNELS = 8 };
/* The 16 position matrices sit POSITION_PAD floats further apart than their size: their sizes are often
 * multiples of 4 KiB, and 16 streams that far apart would all fall into the same cache sets. */
enum { POSITION_PAD = 32 };
/* Vector lanes a run's loops are padded to (see RUN_MAX below). */
enum { LANES = 16 };

/* A 3x3 stride-1 correlation of in (in_c planes of in_h x in_w, out-of-image taps zero) giving out_c planes
 * of out_h x out_w; output (oh, ow) reads input rows oh - pad_top .. oh - pad_top + 2. */
typedef struct geometry {
    int batch, in_c, in_h, in_w, out_c, out_h, out_w, pad_top, pad_left, threads;
    int tiles_h, tiles_w;
    long tiles; /* batch * tiles_h * tiles_w */
} geometry;

static geometry make_geometry(int batch, int in_c, int in_h, int in_w, int out_c, int out_h, int out_w, int pad_top,
                              int pad_left, int threads)
{
    geometry g = {batch, in_c, in_h, in_w, out_c, out_h, out_w, pad_top, pad_left, threads > 0 ? threads : 1,
                  (out_h + 1) / 2, (out_w + 1) / 2, 0};
    g.tiles = (long)batch * g.tiles_h * g.tiles_w;
    return g;
}

static geometry forward_geometry(const cnk_conv2d_shape *s)
{
    return make_geometry(s->batch, s->in_c, s->in_h, s->in_w, s->out_c, s->out_h, s->out_w, s->pad_top, s->pad_left,
                         s->threads);
}

/* The input gradient: dinp[ih] gathers dout[ih + pad_top - k] * w[k] for k = 0..2, i.e. a correlation of dout
 * with the flipped kernel, dout row r = ih - (2 - pad_top) + (2 - k). */
static geometry backward_geometry(const cnk_conv2d_shape *s)
{
    return make_geometry(s->batch, s->out_c, s->out_h, s->out_w, s->in_c, s->in_h, s->in_w, 2 - s->pad_top,
                         2 - s->pad_left, s->threads);
}

int cnk_winograd_applies(const cnk_conv2d_shape *s)
{
    return s->kernel_h == 3 && s->kernel_w == 3 && s->stride_h == 1 && s->stride_w == 1 && s->dilation_h == 1 &&
           s->dilation_w == 1 && s->in_c >= MIN_CHANNELS && s->out_c >= MIN_CHANNELS && s->out_h >= 2 &&
           s->out_w >= 2;
}

static size_t per_thread_floats(const geometry *g)
{
    /* transformed inputs, products (or transformed output gradients), a private weight-gradient partial */
    return (size_t)POSITIONS * ((size_t)(g->in_c + g->out_c) * (TILE_CHUNK + LANES) + 2 * POSITION_PAD) +
           (size_t)POSITIONS * g->in_c * g->out_c;
}

size_t cnk_winograd_workspace_size(const cnk_conv2d_shape *s)
{
    geometry g = forward_geometry(s); /* the backward geometry swaps in_c and out_c: the same sizes */
    return (size_t)POSITIONS * g.in_c * g.out_c + per_thread_floats(&g) * (size_t)g.threads;
}

/* ---------- transforms ---------- */

/* G g G^T of one 3x3 kernel into u[xi * stride], xi = 4 * row + column of the 4x4 result. */
static void transform_kernel(float *u, size_t stride, const float k[9])
{
    float h[4][3];
    for (int j = 0; j < 3; j++) {
        h[0][j] = k[j];
        h[1][j] = 0.5f * (k[j] + k[3 + j] + k[6 + j]);
        h[2][j] = 0.5f * (k[j] - k[3 + j] + k[6 + j]);
        h[3][j] = k[6 + j];
    }
    for (int i = 0; i < 4; i++) {
        u[(size_t)(4 * i + 0) * stride] = h[i][0];
        u[(size_t)(4 * i + 1) * stride] = 0.5f * (h[i][0] + h[i][1] + h[i][2]);
        u[(size_t)(4 * i + 2) * stride] = 0.5f * (h[i][0] - h[i][1] + h[i][2]);
        u[(size_t)(4 * i + 3) * stride] = h[i][2];
    }
}

/* u[xi][o][i] (g's out_c x in_c matrices, one per position) from OIHW weights; for the input gradient the
 * kernel is flipped and its two channel axes swapped. */
static void transform_weights(float *u, const float *weight, const geometry *g, int flipped)
{
    size_t plane = (size_t)g->out_c * g->in_c;
    int pairs = g->out_c * g->in_c;
#pragma omp parallel for num_threads(g->threads) schedule(static) if (pairs > 4096)
    for (int p = 0; p < pairs; p++) {
        int o = p / g->in_c, i = p % g->in_c;
        float k[9];
        if (flipped) {
            const float *src = weight + ((size_t)i * g->out_c + o) * 9; /* weight[i][o]: OIHW of the forward */
            for (int t = 0; t < 9; t++) k[t] = src[8 - t];
        } else {
            const float *src = weight + ((size_t)o * g->in_c + i) * 9;
            for (int t = 0; t < 9; t++) k[t] = src[t];
        }
        transform_kernel(u + (size_t)p, plane, k);
    }
}

/* Runs of at most RUN_MAX tiles along one tile row are transformed together, vectorised across tiles. The
 * loops over a run's tiles always cover a multiple of LANES (zero-padded), so narrow maps (8 or 16 tiles a
 * row) run whole vectors instead of scalar remainders; the chunk matrices' rows have LANES spare columns to
 * take the padding. */
enum { RUN_MAX = 64 };

static int lanes_up(int n) { return (n + LANES - 1) / LANES * LANES; }

/* One run of tiles along a tile row: sample n, tile row th, tile columns tw0 .. tw0 + count - 1, whose
 * transforms go to columns col0.. of the chunk's matrices. */
typedef struct tile_run {
    int n, th, tw0, count, col0;
} tile_run;

static tile_run run_at(const geometry *g, long t, long t_end, long t_base)
{
    long per_sample = (long)g->tiles_h * g->tiles_w, rem = t % per_sample;
    tile_run r = {(int)(t / per_sample), (int)(rem / g->tiles_w), (int)(rem % g->tiles_w), 0, (int)(t - t_base)};
    long left = g->tiles_w - r.tw0;
    if (left > RUN_MAX) left = RUN_MAX;
    r.count = (int)(t_end - t < left ? t_end - t : left);
    return r;
}

/* Input row r, columns c0 .. c0 + 2 * count + 1 (zero outside the image), split into even and odd columns. */
static void load_row_split(float *even, float *odd, const float *plane, const geometry *g, int r, int c0, int count)
{
    if (r < 0 || r >= g->in_h) {
        for (int k = 0; k <= count; k++) even[k] = odd[k] = 0.0f;
        return;
    }
    const float *row = plane + (size_t)r * g->in_w;
    /* k in [lo, hi) has both columns inside the image: a plain loop; the padded ends are checked */
    int lo = c0 >= 0 ? 0 : (1 - c0) / 2, hi = (g->in_w - c0) / 2;
    if (hi > count + 1) hi = count + 1;
    if (hi < lo) hi = lo;
    for (int k = 0; k <= count; k++) {
        if (k == lo) {
#pragma omp simd
            for (int q = lo; q < hi; q++) {
                even[q] = row[c0 + 2 * q];
                odd[q] = row[c0 + 2 * q + 1];
            }
            k = hi;
            if (k > count) break;
        }
        int c = c0 + 2 * k;
        even[k] = c >= 0 && c < g->in_w ? row[c] : 0.0f;
        odd[k] = c + 1 >= 0 && c + 1 < g->in_w ? row[c + 1] : 0.0f;
    }
}

/* B^T d B for every tile of the run and every input channel: first the row combinations (d0 - d2, d1 + d2,
 * d2 - d1, d1 - d3) on whole even/odd column vectors, then the same along columns, one position at a time. */
static void input_transform_run(float *v, size_t ld, size_t pos_stride, const float *in, const geometry *g,
                                const tile_run *r)
{
    size_t in_plane = (size_t)g->in_h * g->in_w;
    int r0 = 2 * r->th - g->pad_top, c0 = 2 * r->tw0 - g->pad_left, n = r->count;
    int wide = lanes_up(n);
    float even[4][RUN_MAX + LANES + 1], odd[4][RUN_MAX + LANES + 1];
    float e_even[4][RUN_MAX + LANES + 1], e_odd[4][RUN_MAX + LANES + 1];
    for (int i = 0; i < 4; i++)
        for (int k = n + 1; k <= wide; k++) even[i][k] = odd[i][k] = 0.0f;
    for (int c = 0; c < g->in_c; c++) {
        const float *plane = in + ((size_t)r->n * g->in_c + c) * in_plane;
        for (int i = 0; i < 4; i++) load_row_split(even[i], odd[i], plane, g, r0 + i, c0, n);
#pragma omp simd
        for (int k = 0; k <= wide; k++) {
            e_even[0][k] = even[0][k] - even[2][k];
            e_even[1][k] = even[1][k] + even[2][k];
            e_even[2][k] = even[2][k] - even[1][k];
            e_even[3][k] = even[1][k] - even[3][k];
            e_odd[0][k] = odd[0][k] - odd[2][k];
            e_odd[1][k] = odd[1][k] + odd[2][k];
            e_odd[2][k] = odd[2][k] - odd[1][k];
            e_odd[3][k] = odd[1][k] - odd[3][k];
        }
        float *dst = v + (size_t)c * ld + r->col0;
        for (int i = 0; i < 4; i++) {
            const float *ev = e_even[i], *od = e_odd[i];
            float *v0 = dst + (size_t)(4 * i) * pos_stride, *v1 = v0 + pos_stride, *v2 = v1 + pos_stride,
                  *v3 = v2 + pos_stride;
#pragma omp simd
            for (int k = 0; k < wide; k++) {
                /* tile k covers columns 2k .. 2k + 3 = even[k], odd[k], even[k + 1], odd[k + 1] */
                v0[k] = ev[k] - ev[k + 1];
                v1[k] = od[k] + ev[k + 1];
                v2[k] = ev[k + 1] - od[k];
                v3[k] = od[k] - od[k + 1];
            }
        }
    }
}

/* A^T m A for every tile of the run and every output channel, vectorised across tiles, then the 2x2 results
 * interleaved into the output rows (clipped at the bottom and right edges). */
static void output_transform_run(float *out, const float *m, size_t ld, size_t pos_stride, const geometry *g,
                                 const tile_run *r, int accumulate)
{
    size_t out_plane = (size_t)g->out_h * g->out_w;
    int oh = 2 * r->th, rows = g->out_h - oh < 2 ? 1 : 2, n = r->count, ow0 = 2 * r->tw0;
    int cols = g->out_w - ow0 < 2 * n ? g->out_w - ow0 : 2 * n;
    int wide = lanes_up(n);
    float a[2][4][RUN_MAX + LANES], y[2][2 * (RUN_MAX + LANES)];
    for (int o = 0; o < g->out_c; o++) {
        const float *src = m + (size_t)o * ld + r->col0;
        for (int j = 0; j < 4; j++) {
            const float *m0 = src + (size_t)j * pos_stride, *m1 = m0 + 4 * pos_stride, *m2 = m1 + 4 * pos_stride,
                        *m3 = m2 + 4 * pos_stride;
#pragma omp simd
            for (int k = 0; k < wide; k++) {
                a[0][j][k] = m0[k] + m1[k] + m2[k];
                a[1][j][k] = m1[k] - m2[k] - m3[k];
            }
        }
        for (int i = 0; i < 2; i++)
#pragma omp simd
            for (int k = 0; k < wide; k++) {
                y[i][2 * k] = a[i][0][k] + a[i][1][k] + a[i][2][k];
                y[i][2 * k + 1] = a[i][1][k] - a[i][2][k] - a[i][3][k];
            }
        float *plane = out + ((size_t)r->n * g->out_c + o) * out_plane + (size_t)oh * g->out_w + ow0;
        for (int i = 0; i < rows; i++) {
            float *dst = plane + (size_t)i * g->out_w;
            if (accumulate) {
#pragma omp simd
                for (int x = 0; x < cols; x++) dst[x] += y[i][x];
            } else {
                for (int x = 0; x < cols; x++) dst[x] = y[i][x];
            }
        }
    }
}

/* A dy A^T of every tile's 2x2 output gradient (cells past the bottom/right edge are zero), for every output
 * channel, into m[xi][o][tile]: the factor that multiplies the transformed input in the weight gradient. */
static void gradient_transform_run(float *m, size_t ld, size_t pos_stride, const float *dout, const geometry *g,
                                   const tile_run *r)
{
    size_t out_plane = (size_t)g->out_h * g->out_w;
    int oh = 2 * r->th, rows = g->out_h - oh < 2 ? 1 : 2, n = r->count, ow0 = 2 * r->tw0;
    int full = ow0 + 2 * n <= g->out_w;
    int wide = lanes_up(n);
    float even[2][RUN_MAX + LANES], odd[2][RUN_MAX + LANES];
    for (int i = 0; i < 2; i++)
        for (int k = n; k < wide; k++) even[i][k] = odd[i][k] = 0.0f;
    for (int o = 0; o < g->out_c; o++) {
        const float *plane = dout + ((size_t)r->n * g->out_c + o) * out_plane + (size_t)oh * g->out_w + ow0;
        for (int i = 0; i < 2; i++) {
            const float *row = plane + (size_t)i * g->out_w;
            if (i >= rows) {
                for (int k = 0; k < n; k++) even[i][k] = odd[i][k] = 0.0f;
            } else if (full) {
#pragma omp simd
                for (int k = 0; k < n; k++) {
                    even[i][k] = row[2 * k];
                    odd[i][k] = row[2 * k + 1];
                }
            } else {
                for (int k = 0; k < n; k++) {
                    even[i][k] = ow0 + 2 * k < g->out_w ? row[2 * k] : 0.0f;
                    odd[i][k] = ow0 + 2 * k + 1 < g->out_w ? row[2 * k + 1] : 0.0f;
                }
            }
        }
        float *dst = m + (size_t)o * ld + r->col0;
        for (int i = 0; i < 4; i++) {
            /* rows of A dy: y0, y0 + y1, y0 - y1, -y1 */
            float se = i == 3 ? 0.0f : 1.0f, sy1 = i == 0 ? 0.0f : (i == 1 ? 1.0f : -1.0f);
            float *m0 = dst + (size_t)(4 * i) * pos_stride, *m1 = m0 + pos_stride, *m2 = m1 + pos_stride,
                  *m3 = m2 + pos_stride;
#pragma omp simd
            for (int k = 0; k < wide; k++) {
                float e = se * even[0][k] + sy1 * even[1][k], od = se * odd[0][k] + sy1 * odd[1][k];
                m0[k] = e;
                m1[k] = e + od;
                m2[k] = e - od;
                m3[k] = -od;
            }
        }
    }
}

/* ---------- driver ---------- */

/* Tiles [t0, t1): transform the input patches, one sgemm per position, transform back. */
static void run_chunk(float *out, const float *in, const float *u, const geometry *g, long t0, long t1,
                      float *scratch, int accumulate)
{
    int count = (int)(t1 - t0);
    int ld = count + LANES;
    size_t v_pos = (size_t)g->in_c * ld + POSITION_PAD, m_pos = (size_t)g->out_c * ld + POSITION_PAD;
    float *v = scratch, *m = scratch + (size_t)POSITIONS * v_pos;
    for (long t = t0; t < t1;) {
        tile_run r = run_at(g, t, t1, t0);
        input_transform_run(v, (size_t)ld, v_pos, in, g, &r);
        t += r.count;
    }
    for (int xi = 0; xi < POSITIONS; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->out_c, count, g->in_c, 1.0f,
                    u + (size_t)xi * g->out_c * g->in_c, g->in_c, v + (size_t)xi * v_pos, ld, 0.0f,
                    m + (size_t)xi * m_pos, ld);
    for (long t = t0; t < t1;) {
        tile_run r = run_at(g, t, t1, t0);
        output_transform_run(out, m, (size_t)ld, m_pos, g, &r, accumulate);
        t += r.count;
    }
}

/* Chunks go to threads whole; the tile rows of two chunks may share output rows only within one sample's
 * plane, and then they write disjoint 2x2 tiles, so no two threads write one element. Each chunk's result
 * does not depend on which thread computes it, so chunks are handed out dynamically: a thread that lost its
 * core for a while (a busy machine) does not hold the others up at the end. */
static void run(float *out, const float *in, const float *weight, const geometry *g, int flipped, int accumulate,
                float *workspace)
{
    float *u = workspace, *scratch = workspace + (size_t)POSITIONS * g->in_c * g->out_c;
    transform_weights(u, weight, g, flipped);
    long n_chunks = (g->tiles + TILE_CHUNK - 1) / TILE_CHUNK;
    int team = g->threads < n_chunks ? g->threads : (int)n_chunks;
    size_t per_thread = per_thread_floats(g);
#pragma omp parallel num_threads(team)
    {
        float *mine = scratch + per_thread * (size_t)omp_get_thread_num();
#pragma omp for schedule(dynamic)
        for (long k = 0; k < n_chunks; k++) {
            long t0 = k * TILE_CHUNK, t1 = t0 + TILE_CHUNK < g->tiles ? t0 + TILE_CHUNK : g->tiles;
            run_chunk(out, in, u, g, t0, t1, mine, accumulate);
        }
    }
}

/* Tiles [t0, t1): part[xi] (out_c x in_c) += (A dy A^T)[xi] (out_c x tiles) * (B^T d B)[xi]^T. */
static void weight_chunk(float *part, const float *dout, const float *in, const geometry *g, long t0, long t1,
                         float *scratch)
{
    int count = (int)(t1 - t0);
    int ld = count + LANES;
    size_t v_pos = (size_t)g->in_c * ld + POSITION_PAD, m_pos = (size_t)g->out_c * ld + POSITION_PAD;
    float *v = scratch, *m = scratch + (size_t)POSITIONS * v_pos;
    for (long t = t0; t < t1;) {
        tile_run r = run_at(g, t, t1, t0);
        input_transform_run(v, (size_t)ld, v_pos, in, g, &r);
        gradient_transform_run(m, (size_t)ld, m_pos, dout, g, &r);
        t += r.count;
    }
    for (int xi = 0; xi < POSITIONS; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->out_c, g->in_c, count, 1.0f, m + (size_t)xi * m_pos,
                    ld, v + (size_t)xi * v_pos, ld, 1.0f, part + (size_t)xi * g->out_c * g->in_c, g->in_c);
}

/* dweight[o][i] += G^T du G, du the 16 position sums of the threads' partials added in thread order. */
static void weight_gradient_finish(float *dweight, const float *parts, size_t part_stride, int team, const geometry *g)
{
    size_t plane = (size_t)g->out_c * g->in_c;
    int pairs = g->out_c * g->in_c;
#pragma omp parallel for num_threads(g->threads) schedule(static) if (pairs > 4096)
    for (int p = 0; p < pairs; p++) {
        float du[4][4], h[3][4];
        for (int xi = 0; xi < POSITIONS; xi++) {
            float sum = 0.0f;
            for (int t = 0; t < team; t++) sum += parts[part_stride * (size_t)t + (size_t)xi * plane + (size_t)p];
            du[xi / 4][xi % 4] = sum;
        }
        /* G^T rows: (1, .5, .5, 0), (0, .5, -.5, 0), (0, .5, .5, 1) */
        for (int j = 0; j < 4; j++) {
            h[0][j] = du[0][j] + 0.5f * (du[1][j] + du[2][j]);
            h[1][j] = 0.5f * (du[1][j] - du[2][j]);
            h[2][j] = 0.5f * (du[1][j] + du[2][j]) + du[3][j];
        }
        float *dst = dweight + (size_t)p * 9;
        for (int i = 0; i < 3; i++) {
            dst[3 * i + 0] += h[i][0] + 0.5f * (h[i][1] + h[i][2]);
            dst[3 * i + 1] += 0.5f * (h[i][1] - h[i][2]);
            dst[3 * i + 2] += 0.5f * (h[i][1] + h[i][2]) + h[i][3];
        }
    }
}

void cnk_winograd_backward_weight(float *dweight, const float *dout, const float *in, const cnk_conv2d_shape *s,
                                  float *workspace)
{
    geometry g = forward_geometry(s);
    size_t per_thread = per_thread_floats(&g), wsize = (size_t)POSITIONS * g.in_c * g.out_c;
    size_t part_offset = per_thread - wsize;
    float *scratch = workspace + wsize;
    long n_chunks = (g.tiles + TILE_CHUNK - 1) / TILE_CHUNK;
    int team = g.threads < n_chunks ? g.threads : (int)n_chunks;
#pragma omp parallel num_threads(team)
    {
        float *mine = scratch + per_thread * (size_t)omp_get_thread_num(), *part = mine + part_offset;
        for (size_t i = 0; i < wsize; i++) part[i] = 0.0f;
#pragma omp for schedule(static)
        for (long k = 0; k < n_chunks; k++) {
            long t0 = k * TILE_CHUNK, t1 = t0 + TILE_CHUNK < g.tiles ? t0 + TILE_CHUNK : g.tiles;
            weight_chunk(part, dout, in, &g, t0, t1, mine);
        }
    }
    weight_gradient_finish(dweight, scratch + part_offset, per_thread, team, &g);
}

void cnk_winograd_forward(float *out, const float *in, const float *weight, const cnk_conv2d_shape *s,
                          float *workspace)
{
    geometry g = forward_geometry(s);
    run(out, in, weight, &g, 0, 0, workspace);
}

void cnk_winograd_backward_data(float *dinp, const float *dout, const float *weight, const cnk_conv2d_shape *s,
                                int overwrite, float *workspace)
{
    geometry g = backward_geometry(s);
    run(dinp, dout, weight, &g, 1, !overwrite, workspace);
}
