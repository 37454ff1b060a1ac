#include "nn/winograd.h"

#include <cblas.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

/* F(4x4, 3x3): each 4x4 output tile comes from a 6x6 input patch; 36 multiplies per tile (2.25 per output)
 * against 9 per output directly. Transforms (Lavin & Gray, points 0, +-1, +-2):
 *   Y = A^T [(G g G^T) . (B^T d B)] A, dg = G^T [sum over tiles (A dy A^T) . (B^T d B)] G. */
enum { TILE = 4, ALPHA = 6, POSITIONS = ALPHA * ALPHA, MIN_CHANNELS = 8 };
/* Output tiles are processed in chunks of TILE_CHUNK (whole chunks per thread, or one chunk at a time shared
 * by the team when there are few; the same cut whatever the thread count, so results do not depend on it):
 * the transformed inputs and products of one chunk
 * (36 x (in_c + out_c) x TILE_CHUNK floats) stay in cache between the transforms and the sgemms. */
enum { TILE_CHUNK = 64 };
/* The position matrices sit POSITION_PAD floats further apart than their size: their sizes are often
 * multiples of 4 KiB, and streams that far apart would all fall into the same cache sets. */
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
                  (out_h + TILE - 1) / TILE, (out_w + TILE - 1) / TILE, 0};
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
           s->dilation_w == 1 && s->in_c >= MIN_CHANNELS && s->out_c >= MIN_CHANNELS && s->out_h >= TILE &&
           s->out_w >= TILE;
}

/* Every piece of the workspace starts on a 64-byte boundary, so each chunk's vector loops and sgemms see the
 * same alignment whichever thread (slice) runs it and wherever the caller's buffer starts: results must not
 * depend on the thread count. */
enum { ALIGN_FLOATS = 16 };

static size_t aligned_floats(size_t n) { return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS; }

static float *align_up(float *p)
{
    uintptr_t a = (uintptr_t)p, step = ALIGN_FLOATS * sizeof(float);
    return (float *)((a + step - 1) / step * step);
}

static size_t weight_floats(const geometry *g) { return aligned_floats((size_t)POSITIONS * g->in_c * g->out_c); }

static size_t per_thread_floats(const geometry *g)
{
    /* transformed inputs, products (or transformed output gradients), a private weight-gradient partial */
    size_t chunk = (size_t)POSITIONS * ((size_t)(g->in_c + g->out_c) * (TILE_CHUNK + LANES) + 2 * POSITION_PAD);
    return aligned_floats(chunk) + weight_floats(g);
}

size_t cnk_winograd_workspace_size(const cnk_conv2d_shape *s)
{
    geometry g = forward_geometry(s); /* the backward geometry swaps in_c and out_c: the same sizes */
    return ALIGN_FLOATS + weight_floats(&g) + per_thread_floats(&g) * (size_t)g.threads;
}

/* ---------- transforms ---------- */

/* The 1-D transforms, each on LANES-padded vectors of tiles (in[i][k] -> out[j][k], k < len). */
static inline void bt6(float *const out[6], const float *const in[6], int len)
{
#pragma omp simd
    for (int k = 0; k < len; k++) {
        float d0 = in[0][k], d1 = in[1][k], d2 = in[2][k], d3 = in[3][k], d4 = in[4][k], d5 = in[5][k];
        out[0][k] = 4.0f * d0 - 5.0f * d2 + d4;
        out[1][k] = -4.0f * (d1 + d2) + d3 + d4;
        out[2][k] = 4.0f * (d1 - d2) - d3 + d4;
        out[3][k] = 2.0f * (d3 - d1) - d2 + d4;
        out[4][k] = 2.0f * (d1 - d3) - d2 + d4;
        out[5][k] = 4.0f * d1 - 5.0f * d3 + d5;
    }
}

/* A^T: 6 products -> 4 outputs */
static inline void at6(float *const out[4], const float *const in[6], int len)
{
#pragma omp simd
    for (int k = 0; k < len; k++) {
        float m0 = in[0][k], m1 = in[1][k], m2 = in[2][k], m3 = in[3][k], m4 = in[4][k], m5 = in[5][k];
        float s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4;
        out[0][k] = m0 + s12 + s34;
        out[1][k] = d12 + 2.0f * d34;
        out[2][k] = s12 + 4.0f * s34;
        out[3][k] = d12 + 8.0f * d34 + m5;
    }
}

/* A: 4 output gradients -> 6 */
static inline void a6(float *const out[6], const float *const in[4], int len)
{
#pragma omp simd
    for (int k = 0; k < len; k++) {
        float y0 = in[0][k], y1 = in[1][k], y2 = in[2][k], y3 = in[3][k];
        float e = y0 + y2, o = y1 + y3, e4 = y0 + 4.0f * y2, o8 = 2.0f * y1 + 8.0f * y3;
        out[0][k] = y0;
        out[1][k] = e + o;
        out[2][k] = e - o;
        out[3][k] = e4 + o8;
        out[4][k] = e4 - o8;
        out[5][k] = y3;
    }
}

/* The kernel transforms run on blocks of PAIR_BLOCK (output, input) channel pairs at once, one pair per vector
 * lane: the scalar form spent most of its time in the divisions below and in strided stores. Each lane does
 * exactly the scalar arithmetic (no multiply-add to contract, divisions rounded the same), so the results
 * are the same bits whichever way they are computed. */
enum { PAIR_BLOCK = 16 };
typedef float pair_vec[PAIR_BLOCK];

/* G: 3 kernel taps -> 6, for every lane */
static inline void g6(pair_vec out[6], const pair_vec in0, const pair_vec in1, const pair_vec in2)
{
#pragma omp simd
    for (int l = 0; l < PAIR_BLOCK; l++) {
        float a = in0[l], b = in1[l], c = in2[l];
        out[0][l] = a / 4.0f;
        out[1][l] = -(a + b + c) / 6.0f;
        out[2][l] = -(a - b + c) / 6.0f;
        out[3][l] = a / 24.0f + b / 12.0f + c / 6.0f;
        out[4][l] = a / 24.0f - b / 12.0f + c / 6.0f;
        out[5][l] = c;
    }
}

/* G^T: 6 -> 3 kernel taps, for every lane */
static inline void gt6(pair_vec out[3], const pair_vec in[6])
{
#pragma omp simd
    for (int l = 0; l < PAIR_BLOCK; l++) {
        float i0 = in[0][l], i1 = in[1][l], i2 = in[2][l], i3 = in[3][l], i4 = in[4][l], i5 = in[5][l];
        out[0][l] = i0 / 4.0f - (i1 + i2) / 6.0f + (i3 + i4) / 24.0f;
        out[1][l] = (i2 - i1) / 6.0f + (i3 - i4) / 12.0f;
        out[2][l] = (i3 + i4 - i1 - i2) / 6.0f + i5;
    }
}

/* G g G^T of the lanes' 3x3 kernels k[tap][lane] into u[xi * stride + lane] for lanes < count, xi = 6 * row +
 * column of the 6x6 result. */
static void transform_kernels(float *u, size_t stride, pair_vec k[9], int count)
{
    pair_vec cols[3][6], rows[6];
    for (int j = 0; j < 3; j++) g6(cols[j], k[j], k[3 + j], k[6 + j]);
    for (int i = 0; i < ALPHA; i++) {
        g6(rows, cols[0][i], cols[1][i], cols[2][i]);
        for (int j = 0; j < ALPHA; j++) {
            float *dst = u + (size_t)(ALPHA * i + j) * stride;
            for (int l = 0; l < count; l++) dst[l] = rows[j][l];
        }
    }
}

/* u[xi][o][i] (g's out_c x in_c matrices, one per position) from OIHW weights; for the input gradient the
 * kernel is flipped and its two channel axes swapped. */
static void transform_weights(float *u, const float *weight, const geometry *g, int flipped)
{
    size_t plane = (size_t)g->out_c * g->in_c;
    int pairs = g->out_c * g->in_c, blocks = (pairs + PAIR_BLOCK - 1) / PAIR_BLOCK;
#pragma omp parallel for num_threads(g->threads) schedule(static) if (pairs > 4096)
    for (int b = 0; b < blocks; b++) {
        int p0 = b * PAIR_BLOCK, count = pairs - p0 < PAIR_BLOCK ? pairs - p0 : PAIR_BLOCK;
        pair_vec k[9] = {{0}};
        for (int l = 0; l < count; l++) {
            int o = (p0 + l) / g->in_c, i = (p0 + l) % g->in_c;
            if (flipped) {
                const float *src = weight + ((size_t)i * g->out_c + o) * 9; /* weight[i][o]: OIHW of the forward */
                for (int t = 0; t < 9; t++) k[t][l] = src[8 - t];
            } else {
                const float *src = weight + ((size_t)o * g->in_c + i) * 9;
                for (int t = 0; t < 9; t++) k[t][l] = src[t];
            }
        }
        transform_kernels(u + (size_t)p0, plane, k, count);
    }
}

/* Runs of at most RUN_MAX tiles along one tile row are transformed together, vectorised across tiles. The
 * loops over a run's tiles always cover a multiple of LANES (zero-padded), so narrow maps run whole vectors
 * instead of scalar remainders; the chunk matrices' rows have LANES spare columns to take the padding. */
enum { RUN_MAX = 32, RUN_LEN = RUN_MAX + LANES + 1 };

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

/* Row r of a plane (rows rows of width width), columns c0 + TILE * k + q for k <= count, split by phase q:
 * phase[q][k] (zero outside the plane). Entries count + 1 .. wide stay as they are (zero). */
static void load_row_phases(float phase[TILE][RUN_LEN], const float *plane, int rows, int width, int r, int c0,
                            int count)
{
    if (r < 0 || r >= rows) {
        for (int q = 0; q < TILE; q++)
            for (int k = 0; k <= count; k++) phase[q][k] = 0.0f;
        return;
    }
    const float *row = plane + (size_t)r * width;
    /* k in [lo, hi) has all four columns inside the row: the four phases in one loop body (an interleaved
     * group the compiler splits with shuffles); the padded ends are checked one by one */
    int lo = c0 >= 0 ? 0 : (-c0 + TILE - 1) / TILE, hi = width - c0 >= TILE ? (width - c0) / TILE : 0;
    if (hi > count + 1) hi = count + 1;
    if (lo > hi) lo = hi;
#pragma omp simd
    for (int k = lo; k < hi; k++) {
        int c = c0 + TILE * k;
        phase[0][k] = row[c];
        phase[1][k] = row[c + 1];
        phase[2][k] = row[c + 2];
        phase[3][k] = row[c + 3];
    }
    for (int k = 0; k <= count; k++) {
        if (k == lo) k = hi;
        if (k > count) break;
        for (int q = 0; q < TILE; q++) {
            int c = c0 + TILE * k + q;
            phase[q][k] = c >= 0 && c < width ? row[c] : 0.0f;
        }
    }
}

/* B^T d B for every tile of the run and input channels c_lo .. c_hi - 1: the 6 rows combined first (on whole
 * phase vectors), then the 6 columns of each tile (columns 4k .. 4k + 5 = phases 0..3 at k, phases 0..1 at
 * k + 1). Each channel's values depend on nothing else, so any split of the channels gives the same bits. */
static void input_transform_run(float *v, size_t ld, size_t pos_stride, const float *in, const geometry *g,
                                const tile_run *r, int c_lo, int c_hi)
{
    size_t in_plane = (size_t)g->in_h * g->in_w;
    int r0 = TILE * r->th - g->pad_top, c0 = TILE * r->tw0 - g->pad_left, n = r->count, wide = lanes_up(n);
    float rows[ALPHA][TILE][RUN_LEN], e[ALPHA][TILE][RUN_LEN];
    for (int i = 0; i < ALPHA; i++)
        for (int q = 0; q < TILE; q++)
            for (int k = n + 1; k <= wide; k++) rows[i][q][k] = 0.0f;
    for (int c = c_lo; c < c_hi; c++) {
        const float *plane = in + ((size_t)r->n * g->in_c + c) * in_plane;
        for (int i = 0; i < ALPHA; i++) load_row_phases(rows[i], plane, g->in_h, g->in_w, r0 + i, c0, n);
        for (int q = 0; q < TILE; q++) {
            const float *src[6] = {rows[0][q], rows[1][q], rows[2][q], rows[3][q], rows[4][q], rows[5][q]};
            float *dst[6] = {e[0][q], e[1][q], e[2][q], e[3][q], e[4][q], e[5][q]};
            bt6(dst, src, wide + 1);
        }
        float *base = v + (size_t)c * ld + r->col0;
        for (int i = 0; i < ALPHA; i++) {
            const float *src[6] = {e[i][0], e[i][1], e[i][2], e[i][3], e[i][0] + 1, e[i][1] + 1};
            float *dst[6];
            for (int j = 0; j < ALPHA; j++) dst[j] = base + (size_t)(ALPHA * i + j) * pos_stride;
            bt6(dst, src, wide);
        }
    }
}

/* A^T m A for every tile of the run and output channels o_lo .. o_hi - 1, then the 4x4 results interleaved
 * into the output rows (clipped at the bottom and right edges). */
static void output_transform_run(float *out, const float *m, size_t ld, size_t pos_stride, const geometry *g,
                                 const tile_run *r, int accumulate, int o_lo, int o_hi)
{
    size_t out_plane = (size_t)g->out_h * g->out_w;
    int oh = TILE * r->th, n = r->count, ow0 = TILE * r->tw0, wide = lanes_up(n);
    int rows = g->out_h - oh < TILE ? g->out_h - oh : TILE;
    int cols = g->out_w - ow0 < TILE * n ? g->out_w - ow0 : TILE * n;
    float a[TILE][ALPHA][RUN_LEN], y[TILE][RUN_LEN], row[TILE * RUN_LEN];
    for (int o = o_lo; o < o_hi; o++) {
        const float *src = m + (size_t)o * ld + r->col0;
        for (int j = 0; j < ALPHA; j++) {
            const float *in6[6];
            for (int i = 0; i < ALPHA; i++) in6[i] = src + (size_t)(ALPHA * i + j) * pos_stride;
            float *dst[4] = {a[0][j], a[1][j], a[2][j], a[3][j]};
            at6(dst, in6, wide);
        }
        float *plane = out + ((size_t)r->n * g->out_c + o) * out_plane + (size_t)oh * g->out_w + ow0;
        for (int i = 0; i < rows; i++) {
            const float *in6[6] = {a[i][0], a[i][1], a[i][2], a[i][3], a[i][4], a[i][5]};
            float *dst[4] = {y[0], y[1], y[2], y[3]};
            at6(dst, in6, wide);
#pragma omp simd
            for (int k = 0; k < wide; k++) {
                row[TILE * k] = y[0][k];
                row[TILE * k + 1] = y[1][k];
                row[TILE * k + 2] = y[2][k];
                row[TILE * k + 3] = y[3][k];
            }
            float *d = plane + (size_t)i * g->out_w;
            if (accumulate) {
#pragma omp simd
                for (int x = 0; x < cols; x++) d[x] += row[x];
            } else {
                for (int x = 0; x < cols; x++) d[x] = row[x];
            }
        }
    }
}

/* A dy A^T of every tile's 4x4 output gradient (cells past the bottom/right edge are zero), for output
 * channels o_lo .. o_hi - 1, into m[xi][o][tile]: the factor that multiplies the transformed input in the
 * weight gradient. */
static void gradient_transform_run(float *m, size_t ld, size_t pos_stride, const float *dout, const geometry *g,
                                   const tile_run *r, int o_lo, int o_hi)
{
    size_t out_plane = (size_t)g->out_h * g->out_w;
    int oh = TILE * r->th, n = r->count, ow0 = TILE * r->tw0, wide = lanes_up(n);
    float dy[TILE][TILE][RUN_LEN], z[ALPHA][TILE][RUN_LEN];
    for (int i = 0; i < TILE; i++)
        for (int q = 0; q < TILE; q++)
            for (int k = n; k <= wide; k++) dy[i][q][k] = 0.0f;
    for (int o = o_lo; o < o_hi; o++) {
        const float *plane = dout + ((size_t)r->n * g->out_c + o) * out_plane;
        /* rows oh .. oh + 3, columns ow0 + 4k + q for k < n (the loader's extra entry k = n is zeroed) */
        for (int i = 0; i < TILE; i++) {
            load_row_phases(dy[i], plane, g->out_h, g->out_w, oh + i, ow0, n - 1);
            if (ow0 + TILE * n > g->out_w)
                for (int q = 0; q < TILE; q++)
                    if (ow0 + TILE * (n - 1) + q >= g->out_w) dy[i][q][n - 1] = 0.0f;
        }
        for (int q = 0; q < TILE; q++) {
            const float *src[4] = {dy[0][q], dy[1][q], dy[2][q], dy[3][q]};
            float *dst[6] = {z[0][q], z[1][q], z[2][q], z[3][q], z[4][q], z[5][q]};
            a6(dst, src, wide);
        }
        float *base = m + (size_t)o * ld + r->col0;
        for (int i = 0; i < ALPHA; i++) {
            const float *src[4] = {z[i][0], z[i][1], z[i][2], z[i][3]};
            float *dst[6];
            for (int j = 0; j < ALPHA; j++) dst[j] = base + (size_t)(ALPHA * i + j) * pos_stride;
            a6(dst, src, wide);
        }
    }
}

/* ---------- driver ---------- */

/* A chunk of tiles [t0, t1) is transformed, multiplied (one sgemm per position) and transformed back in a
 * thread's scratch: V (in_c x ld per position, the transformed input) then M (out_c x ld per position); ld
 * has spare columns so vector loops need no tail. */
typedef struct chunk_layout {
    int count, ld;
    size_t v_pos, m_pos; /* floats from one position's matrix to the next */
    float *v, *m;
} chunk_layout;

static chunk_layout chunk_layout_of(const geometry *g, long t0, long t1, float *scratch)
{
    chunk_layout c;
    c.count = (int)(t1 - t0);
    c.ld = c.count + LANES;
    c.v_pos = (size_t)g->in_c * c.ld + POSITION_PAD;
    c.m_pos = (size_t)g->out_c * c.ld + POSITION_PAD;
    c.v = scratch;
    c.m = scratch + (size_t)POSITIONS * c.v_pos;
    return c;
}

/* The chunk's stages, each over a range of channels or positions so a team can share one chunk. */
static void chunk_input_transform(const chunk_layout *c, const float *in, const geometry *g, long t0, long t1,
                                  int c_lo, int c_hi)
{
    for (long t = t0; t < t1;) {
        tile_run r = run_at(g, t, t1, t0);
        input_transform_run(c->v, (size_t)c->ld, c->v_pos, in, g, &r, c_lo, c_hi);
        t += r.count;
    }
}

static void chunk_output_transform(float *out, const chunk_layout *c, const geometry *g, long t0, long t1,
                                   int accumulate, int o_lo, int o_hi)
{
    for (long t = t0; t < t1;) {
        tile_run r = run_at(g, t, t1, t0);
        output_transform_run(out, c->m, (size_t)c->ld, c->m_pos, g, &r, accumulate, o_lo, o_hi);
        t += r.count;
    }
}

static void chunk_gradient_transform(const chunk_layout *c, const float *dout, const geometry *g, long t0, long t1,
                                     int o_lo, int o_hi)
{
    for (long t = t0; t < t1;) {
        tile_run r = run_at(g, t, t1, t0);
        gradient_transform_run(c->m, (size_t)c->ld, c->m_pos, dout, g, &r, o_lo, o_hi);
        t += r.count;
    }
}

/* M[xi] = U[xi] V[xi] for positions xi_lo .. xi_hi - 1. */
static void chunk_products(const chunk_layout *c, const float *u, const geometry *g, int xi_lo, int xi_hi)
{
    for (int xi = xi_lo; xi < xi_hi; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->out_c, c->count, g->in_c, 1.0f,
                    u + (size_t)xi * g->out_c * g->in_c, g->in_c, c->v + (size_t)xi * c->v_pos, c->ld, 0.0f,
                    c->m + (size_t)xi * c->m_pos, c->ld);
}

/* part[xi] (out_c x in_c) += M[xi] (out_c x tiles) * V[xi]^T for positions xi_lo .. xi_hi - 1. */
static void chunk_weight_products(float *part, const chunk_layout *c, const geometry *g, int xi_lo, int xi_hi)
{
    for (int xi = xi_lo; xi < xi_hi; xi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->out_c, g->in_c, c->count, 1.0f,
                    c->m + (size_t)xi * c->m_pos, c->ld, c->v + (size_t)xi * c->v_pos, c->ld, 1.0f,
                    part + (size_t)xi * g->out_c * g->in_c, g->in_c);
}

static long chunk_count(const geometry *g) { return (g->tiles + TILE_CHUNK - 1) / TILE_CHUNK; }

static void chunk_bounds(const geometry *g, long k, long *t0, long *t1)
{
    *t0 = k * TILE_CHUNK;
    *t1 = *t0 + TILE_CHUNK < g->tiles ? *t0 + TILE_CHUNK : g->tiles;
}

/* Member id of a team of size team gets the contiguous share [*lo, *hi) of n items. */
static void share_of(int n, int id, int team, int *lo, int *hi)
{
    *lo = (int)((long)n * id / team);
    *hi = (int)((long)n * (id + 1) / team);
}

/* With fewer than two chunks per thread, handing out whole chunks leaves threads idle (the last blocks of a
 * small batch: 6 x 6 maps of 16 photos are 64 tiles, one chunk) or unbalanced (three chunks on two threads).
 * Then the whole team works on one chunk at a time instead: the transforms split by channel, the 36 sgemms by
 * position. Every value is computed by the same code on the same operands as when one thread does the chunk,
 * so the forward and the input gradient keep their bits; the weight gradient sums the chunks in order, as one
 * thread does. */
static int team_shares_chunks(const geometry *g) { return g->threads > 1 && chunk_count(g) < 2L * g->threads; }

/* One chunk at a time, shared by the team (see team_shares_chunks); the chunk lives in the first slice. */
static void run_shared(float *out, const float *in, const float *u, const geometry *g, int accumulate,
                       float *scratch)
{
    long n_chunks = chunk_count(g);
#pragma omp parallel num_threads(g->threads)
    {
        int id = omp_get_thread_num(), team = omp_get_num_threads(), lo, hi;
        for (long k = 0; k < n_chunks; k++) {
            long t0, t1;
            chunk_bounds(g, k, &t0, &t1);
            chunk_layout c = chunk_layout_of(g, t0, t1, scratch);
            share_of(g->in_c, id, team, &lo, &hi);
            chunk_input_transform(&c, in, g, t0, t1, lo, hi);
#pragma omp barrier
            share_of(POSITIONS, id, team, &lo, &hi);
            chunk_products(&c, u, g, lo, hi);
#pragma omp barrier
            share_of(g->out_c, id, team, &lo, &hi);
            /* the next chunk's input transform writes only V, which nobody reads until its barrier */
            chunk_output_transform(out, &c, g, t0, t1, accumulate, lo, hi);
        }
    }
}

/* Chunks go to threads whole; the tile rows of two chunks may share output rows only within one sample's
 * plane, and then they write disjoint 4x4 tiles, so no two threads write one element. Each chunk's result
 * does not depend on which thread computes it, so chunks are handed out dynamically: a thread that lost its
 * core for a while (a busy machine) does not hold the others up at the end. */
static void run(float *out, const float *in, const float *weight, const geometry *g, int flipped, int accumulate,
                float *workspace)
{
    float *u = align_up(workspace), *scratch = u + weight_floats(g);
    transform_weights(u, weight, g, flipped);
    if (team_shares_chunks(g)) {
        run_shared(out, in, u, g, accumulate, scratch);
        return;
    }
    long n_chunks = chunk_count(g);
    int team = g->threads < n_chunks ? g->threads : (int)n_chunks;
    size_t per_thread = per_thread_floats(g);
#pragma omp parallel num_threads(team)
    {
        float *mine = scratch + per_thread * (size_t)omp_get_thread_num();
#pragma omp for schedule(dynamic)
        for (long k = 0; k < n_chunks; k++) {
            long t0, t1;
            chunk_bounds(g, k, &t0, &t1);
            chunk_layout c = chunk_layout_of(g, t0, t1, mine);
            chunk_input_transform(&c, in, g, t0, t1, 0, g->in_c);
            chunk_products(&c, u, g, 0, POSITIONS);
            chunk_output_transform(out, &c, g, t0, t1, accumulate, 0, g->out_c);
        }
    }
}

/* dweight[o][i] += G^T du G, du the 36 position sums of the threads' partials added in thread order; a block
 * of PAIR_BLOCK pairs at a time, one per lane. */
static void weight_gradient_finish(float *dweight, const float *parts, size_t part_stride, int team, const geometry *g)
{
    size_t plane = (size_t)g->out_c * g->in_c;
    int pairs = g->out_c * g->in_c, blocks = (pairs + PAIR_BLOCK - 1) / PAIR_BLOCK;
#pragma omp parallel for num_threads(g->threads) schedule(static) if (pairs > 4096)
    for (int b = 0; b < blocks; b++) {
        int p0 = b * PAIR_BLOCK, count = pairs - p0 < PAIR_BLOCK ? pairs - p0 : PAIR_BLOCK;
        pair_vec du[ALPHA][ALPHA] = {{{0}}}, col[ALPHA], h[3][ALPHA], taps[3];
        for (int xi = 0; xi < POSITIONS; xi++) {
            float *sum = du[xi / ALPHA][xi % ALPHA];
            for (int t = 0; t < team; t++) {
                const float *part = parts + part_stride * (size_t)t + (size_t)xi * plane + (size_t)p0;
                for (int l = 0; l < count; l++) sum[l] += part[l];
            }
        }
        for (int j = 0; j < ALPHA; j++) {
            for (int i = 0; i < ALPHA; i++) memcpy(col[i], du[i][j], sizeof(pair_vec));
            gt6(taps, col);
            for (int i = 0; i < 3; i++) memcpy(h[i][j], taps[i], sizeof(pair_vec));
        }
        for (int i = 0; i < 3; i++) {
            gt6(taps, h[i]);
            for (int l = 0; l < count; l++) {
                float *dst = dweight + (size_t)(p0 + l) * 9 + 3 * i;
                for (int j = 0; j < 3; j++) dst[j] += taps[j][l];
            }
        }
    }
}

/* The weight gradient with the team sharing each chunk: one partial (in the first slice), each position's
 * matrix accumulated by one thread over the chunks in order. */
static void weight_gradient_shared(float *part, const float *dout, const float *in, const geometry *g, float *scratch)
{
    long n_chunks = chunk_count(g);
    size_t plane = (size_t)g->out_c * g->in_c;
#pragma omp parallel num_threads(g->threads)
    {
        int id = omp_get_thread_num(), team = omp_get_num_threads(), lo, hi, xi_lo, xi_hi;
        share_of(POSITIONS, id, team, &xi_lo, &xi_hi);
        for (size_t i = (size_t)xi_lo * plane; i < (size_t)xi_hi * plane; i++) part[i] = 0.0f;
        for (long k = 0; k < n_chunks; k++) {
            long t0, t1;
            chunk_bounds(g, k, &t0, &t1);
            chunk_layout c = chunk_layout_of(g, t0, t1, scratch);
            /* V and M of the previous chunk are read by its products until this barrier */
            if (k > 0) {
#pragma omp barrier
            }
            share_of(g->in_c, id, team, &lo, &hi);
            chunk_input_transform(&c, in, g, t0, t1, lo, hi);
            share_of(g->out_c, id, team, &lo, &hi);
            chunk_gradient_transform(&c, dout, g, t0, t1, lo, hi);
#pragma omp barrier
            chunk_weight_products(part, &c, g, xi_lo, xi_hi);
        }
    }
}

void cnk_winograd_backward_weight(float *dweight, const float *dout, const float *in, const cnk_conv2d_shape *s,
                                  float *workspace)
{
    geometry g = forward_geometry(s);
    /* the same layout as run(): the weight area first (unused here), then a slice per thread ending in its
     * partial */
    size_t per_thread = per_thread_floats(&g), wsize = (size_t)POSITIONS * g.in_c * g.out_c;
    size_t part_offset = per_thread - weight_floats(&g);
    float *scratch = align_up(workspace) + weight_floats(&g);
    if (team_shares_chunks(&g)) {
        weight_gradient_shared(scratch + part_offset, dout, in, &g, scratch);
        weight_gradient_finish(dweight, scratch + part_offset, per_thread, 1, &g);
        return;
    }
    long n_chunks = chunk_count(&g);
    int team = g.threads < n_chunks ? g.threads : (int)n_chunks;
#pragma omp parallel num_threads(team)
    {
        float *mine = scratch + per_thread * (size_t)omp_get_thread_num(), *part = mine + part_offset;
        for (size_t i = 0; i < wsize; i++) part[i] = 0.0f;
#pragma omp for schedule(static)
        for (long k = 0; k < n_chunks; k++) {
            long t0, t1;
            chunk_bounds(&g, k, &t0, &t1);
            chunk_layout c = chunk_layout_of(&g, t0, t1, mine);
            chunk_input_transform(&c, in, &g, t0, t1, 0, g.in_c);
            chunk_gradient_transform(&c, dout, &g, t0, t1, 0, g.out_c);
            chunk_weight_products(part, &c, &g, 0, POSITIONS);
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
