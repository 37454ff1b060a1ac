/* Kernel tests for nn/: conv2d, depthwise, pools, batchnorm, dense, dropout, activations, optimisers, lr
 * schedules and init against naive double-precision references and known values, and results that do not
 * depend on the thread count (forward) or are deterministic for one (backward).
 * test-libs: core nn */
#include "testutil.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "nn/activation.h"
#include "nn/batchnorm.h"
#include "nn/conv2d.h"
#include "nn/dense.h"
#include "nn/depthwise.h"
#include "nn/dropout.h"
#include "nn/init.h"
#include "nn/optim.h"
#include "nn/pool.h"

static float *randn(size_t n, uint64_t seed)
{
    float *x = malloc(n * sizeof(float));
    cnk_rng rng;
    cnk_rng_seed(&rng, seed, 3);
    for (size_t i = 0; i < n; i++) x[i] = (float)cnk_rng_normal(&rng);
    return x;
}

static float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* Direct convolution in double; depthwise when groups == in_c. Also the three gradients for a given dout. */
static void naive_conv(const cnk_conv2d_shape *s, int depthwise, const float *in, const float *w, const float *b,
                       const float *dout, float *out, float *dinp, float *dw, float *db)
{
    int cin_per = depthwise ? 1 : s->in_c;
    for (int n = 0; n < s->batch; n++)
        for (int o = 0; o < s->out_c; o++)
            for (int oh = 0; oh < s->out_h; oh++)
                for (int ow = 0; ow < s->out_w; ow++) {
                    size_t oi = (((size_t)n * s->out_c + o) * s->out_h + oh) * s->out_w + ow;
                    double sum = b ? b[o] : 0.0;
                    for (int ci = 0; ci < cin_per; ci++) {
                        int c = depthwise ? o : ci;
                        for (int ki = 0; ki < s->kernel_h; ki++)
                            for (int kj = 0; kj < s->kernel_w; kj++) {
                                int ih = oh * s->stride_h - s->pad_top + ki * s->dilation_h;
                                int iw = ow * s->stride_w - s->pad_left + kj * s->dilation_w;
                                if (ih < 0 || ih >= s->in_h || iw < 0 || iw >= s->in_w) continue;
                                size_t ii = (((size_t)n * s->in_c + c) * s->in_h + ih) * s->in_w + iw;
                                size_t wi = (((size_t)o * cin_per + ci) * s->kernel_h + ki) * s->kernel_w + kj;
                                sum += (double)w[wi] * in[ii];
                                if (dout) {
                                    dinp[ii] += w[wi] * dout[oi];
                                    dw[wi] += in[ii] * dout[oi];
                                }
                            }
                    }
                    out[oi] = (float)sum;
                    if (dout && db) db[o] += dout[oi];
                }
}

static void check_conv(cnk_conv2d_shape s, int depthwise)
{
    size_t nin = (size_t)s.batch * s.in_c * s.in_h * s.in_w, nout = (size_t)s.batch * s.out_c * s.out_h * s.out_w;
    size_t nw = (size_t)s.out_c * (depthwise ? 1 : s.in_c) * s.kernel_h * s.kernel_w;
    float *in = randn(nin, 1), *w = randn(nw, 2), *b = randn((size_t)s.out_c, 3), *dout = randn(nout, 4);
    float *ref = zeros(nout), *ref_dinp = zeros(nin), *ref_dw = zeros(nw), *ref_db = zeros((size_t)s.out_c);
    naive_conv(&s, depthwise, in, w, b, dout, ref, ref_dinp, ref_dw, ref_db);
    float *first = NULL;
    for (int threads = 1; threads <= 3; threads += 2) {
        s.threads = threads;
        float *ws = zeros(cnk_conv2d_workspace_size(&s)), *out = zeros(nout);
        float *dinp = zeros(nin), *dw = zeros(nw), *db = zeros((size_t)s.out_c);
        if (depthwise) {
            cnk_depthwise_forward(out, in, w, b, &s);
            cnk_depthwise_backward(dinp, dw, db, dout, in, w, &s);
        } else {
            cnk_conv2d_forward(out, in, w, b, &s, ws);
            cnk_conv2d_backward(dinp, dw, db, dout, in, w, &s, 0, ws);
        }
        tu_assert_close(out, ref, nout, 1e-4, 1e-4, "conv output");
        tu_assert_close(dinp, ref_dinp, nin, 1e-4, 1e-4, "conv input gradient");
        tu_assert_close(dw, ref_dw, nw, 1e-3, 1e-4, "conv weight gradient");
        tu_assert_close(db, ref_db, (size_t)s.out_c, 1e-3, 1e-4, "conv bias gradient");
        if (!depthwise) {
            /* accumulating onto old contents adds; overwriting (where offered) ignores them */
            float *plus_one = malloc(nin * sizeof(float));
            for (size_t i = 0; i < nin; i++) dinp[i] = 1.0f, plus_one[i] = ref_dinp[i] + 1.0f;
            cnk_conv2d_backward(dinp, NULL, NULL, dout, in, w, &s, 0, ws);
            tu_assert_close(dinp, plus_one, nin, 1e-4, 1e-4, "conv input gradient, accumulated");
            if (cnk_conv2d_backward_overwrites(&s)) {
                for (size_t i = 0; i < nin; i++) dinp[i] = 1e6f;
                cnk_conv2d_backward(dinp, NULL, NULL, dout, in, w, &s, 1, ws);
                tu_assert_close(dinp, ref_dinp, nin, 1e-4, 1e-4, "conv input gradient, overwritten");
            }
            free(plus_one);
        }
        /* the thread counts agree to rounding: threads take column slices of one sgemm, and OpenBLAS may pick
         * another kernel for a narrower slice on some CPUs (its small-matrix kernels on Intel's AVX-512 parts:
         * seen on an Emerald Rapids Xeon, model 207), so bit-identity is not promised (it holds on AMD Zen 4) */
        if (!first) {
            first = out;
        } else {
            tu_assert_close(out, first, nout, 1e-6, 1e-5, "conv output, 1 and 3 threads");
            free(out);
        }
        free(ws);
        free(dinp);
        free(dw);
        free(db);
    }
    free(first);
    free(in);
    free(w);
    free(b);
    free(dout);
    free(ref);
    free(ref_dinp);
    free(ref_dw);
    free(ref_db);
}

static cnk_conv2d_shape conv_shape(int batch, int in_c, int in_h, int in_w, int out_c, int k, int stride, int dil,
                                   int same)
{
    cnk_conv2d_shape s = {batch, in_c, in_h, in_w, out_c, 0, 0, k, k, stride, stride, dil, dil, 0, 0, 1};
    int ph = same ? cnk_conv_same_pad_total(in_h, k, stride, dil) : 0;
    int pw = same ? cnk_conv_same_pad_total(in_w, k, stride, dil) : 0;
    s.pad_top = ph / 2;
    s.pad_left = pw / 2;
    s.out_h = cnk_conv_out_size(in_h, k, stride, dil, ph);
    s.out_w = cnk_conv_out_size(in_w, k, stride, dil, pw);
    return s;
}

static void test_conv2d_against_naive(void **state)
{
    (void)state;
    check_conv(conv_shape(3, 2, 9, 8, 4, 3, 1, 1, 1), 0);  /* chunks of several samples */
    check_conv(conv_shape(5, 3, 7, 7, 5, 3, 2, 1, 1), 0);  /* SAME, stride 2, odd size: asymmetric pad */
    check_conv(conv_shape(2, 2, 8, 9, 3, 3, 1, 2, 1), 0);  /* dilation 2 */
    check_conv(conv_shape(4, 6, 5, 5, 7, 1, 1, 1, 0), 0);  /* pointwise, chunked */
    check_conv(conv_shape(2, 4, 70, 70, 3, 1, 1, 1, 0), 0); /* pointwise, one sample per sgemm */
    check_conv(conv_shape(2, 1, 66, 64, 2, 3, 1, 1, 1), 0); /* one sample per chunk */
    /* Winograd F(4x4, 3x3) (3x3 stride 1, >= 8 channels, maps >= 4x4): odd and even sizes (partial tiles),
     * SAME and no padding, batch 1, exactly one tile, one pixel more than a tile, and a batch spanning several
     * tile chunks */
    check_conv(conv_shape(2, 8, 9, 7, 9, 3, 1, 1, 1), 0);
    check_conv(conv_shape(3, 9, 8, 10, 8, 3, 1, 1, 0), 0);
    check_conv(conv_shape(1, 16, 5, 5, 12, 3, 1, 1, 1), 0);
    check_conv(conv_shape(1, 8, 4, 4, 8, 3, 1, 1, 1), 0);
    check_conv(conv_shape(2, 8, 7, 6, 8, 3, 1, 1, 0), 0);
    check_conv(conv_shape(5, 8, 37, 35, 8, 3, 1, 1, 1), 0);
    /* TF SAME for 7 with kernel 3 stride 2: total pad 2 split 1/1; for 8: total 1, the extra at the bottom */
    assert_int_equal(cnk_conv_same_pad_total(7, 3, 2, 1), 2);
    assert_int_equal(cnk_conv_same_pad_total(8, 3, 2, 1), 1);
    assert_int_equal(cnk_conv_out_size(8, 3, 2, 1, 1), 4);
}

/* The last blocks of a small batch give Winograd few tile chunks (6 x 6 maps of 16 samples: 64 tiles, one
 * chunk; 12 x 12: three). With fewer than two chunks per thread the team shares each chunk (nn/winograd.c),
 * which must not change a bit: the forward and the input gradient are the same at every thread count, and
 * the weight gradient sums the chunks in order, so it equals one thread's (five chunks on three threads would
 * otherwise sum as (c0 + c1) + (c2 + c3) + c4). */
static void test_winograd_few_chunks(void **state)
{
    (void)state;
    /* batch, map side, input channels, chunks; each case runs at the thread counts with fewer than two chunks
     * per thread (and one) */
    const int cases[][4] = {{16, 6, 24, 1}, {2, 9, 40, 1}, {5, 14, 8, 2}, {16, 12, 16, 3}, {6, 28, 8, 5}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cnk_conv2d_shape s = conv_shape(cases[k][0], cases[k][2], cases[k][1], cases[k][1], 24, 3, 1, 1, 1);
        long tiles = (long)s.batch * ((s.out_h + 3) / 4) * ((s.out_w + 3) / 4);
        assert_int_equal((tiles + 63) / 64, cases[k][3]);
        size_t nin = (size_t)s.batch * s.in_c * s.in_h * s.in_w, nout = (size_t)s.batch * s.out_c * s.out_h * s.out_w;
        size_t nw = (size_t)s.out_c * s.in_c * 9;
        float *in = randn(nin, 11), *w = randn(nw, 12), *dout = randn(nout, 13);
        float *first[3] = {NULL, NULL, NULL};
        for (int threads = 1; threads <= 4; threads++) {
            if (threads > 1 && cases[k][3] >= 2 * threads) continue;
            s.threads = threads;
            float *ws = zeros(cnk_conv2d_workspace_size(&s));
            float *got[3] = {zeros(nout), zeros(nin), zeros(nw)};
            cnk_conv2d_forward(got[0], in, w, NULL, &s, ws);
            cnk_conv2d_backward(got[1], got[2], NULL, dout, in, w, &s, 0, ws);
            size_t sizes_of[3] = {nout, nin, nw};
            for (int i = 0; i < 3; i++) {
                if (!first[i]) {
                    first[i] = got[i];
                    continue;
                }
                assert_memory_equal(first[i], got[i], sizes_of[i] * sizeof(float));
                free(got[i]);
            }
            free(ws);
        }
        for (int i = 0; i < 3; i++) free(first[i]);
        free(in);
        free(w);
        free(dout);
    }
}

static void test_depthwise_against_naive(void **state)
{
    (void)state;
    check_conv(conv_shape(2, 5, 9, 8, 5, 3, 1, 1, 1), 1);  /* the 3x3 register path */
    check_conv(conv_shape(3, 4, 8, 7, 4, 3, 2, 1, 1), 1);  /* 3x3 stride 2 SAME, asymmetric */
    check_conv(conv_shape(2, 3, 9, 9, 3, 5, 1, 1, 1), 1);  /* general path */
    check_conv(conv_shape(2, 3, 9, 9, 3, 3, 1, 2, 1), 1);  /* dilated */
    check_conv(conv_shape(1, 2, 2, 2, 2, 3, 1, 1, 1), 1);  /* image smaller than the kernel */
}

static void test_pools_known_values(void **state)
{
    (void)state;
    /* one 3x3 plane 1..9; 2x2 windows stride 2 with TF SAME: pad 1 total, at the bottom/right */
    float in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, out[4], din[9] = {0};
    cnk_pool_shape s = {1, 1, 3, 3, 2, 2, 2, 2, 2, 2, 0, 0, 1};
    cnk_maxpool_forward(out, NULL, in, &s);
    float want_max[4] = {5, 6, 8, 9};
    assert_memory_equal(out, want_max, sizeof out);
    cnk_avgpool_forward(out, in, &s);
    float want_avg[4] = {3, 4.5f, 7.5f, 9}; /* padded cells not counted */
    tu_assert_close(out, want_avg, 4, 1e-6, 0, "avgpool");
    float dout[4] = {1, 2, 3, 4};
    cnk_maxpool_backward(din, dout, in, NULL, &s, 0);
    float want_din[9] = {0, 0, 0, 0, 1, 2, 0, 3, 4};
    assert_memory_equal(din, want_din, sizeof din);
    memset(din, 0, sizeof din);
    cnk_avgpool_backward(din, dout, &s);
    float want_avg_din[9] = {0.25f, 0.25f, 1, 0.25f, 0.25f, 1, 1.5f, 1.5f, 4};
    tu_assert_close(din, want_avg_din, 9, 1e-6, 0, "avgpool backward");
    /* exact 2x2 tiling: overwrite mode ignores what the buffer held; ties go to the first cell */
    float in4[16] = {1, 1, 0, 5, 1, 1, 2, 3, 9, 0, 4, 4, 0, 0, 4, 4}, dout4[4] = {1, 2, 3, 4}, din4[16];
    for (int i = 0; i < 16; i++) din4[i] = 99.0f;
    cnk_pool_shape s4 = {1, 1, 4, 4, 2, 2, 2, 2, 2, 2, 0, 0, 1};
    assert_true(cnk_maxpool_backward_overwrites(&s4));
    cnk_maxpool_backward(din4, dout4, in4, NULL, &s4, 1);
    float want4[16] = {1, 0, 0, 2, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0};
    assert_memory_equal(din4, want4, sizeof din4);
    /* the same from the argmax bytes the forward keeps (input not read: pass NULL), stored and added */
    unsigned char argmax4[4];
    float out4[4], want_out4[4] = {1, 5, 9, 4};
    assert_true(cnk_maxpool_keeps_argmax(&s4));
    cnk_maxpool_forward(out4, argmax4, in4, &s4);
    assert_memory_equal(out4, want_out4, sizeof out4);
    unsigned char want_argmax4[4] = {0, 1, 0, 0};
    assert_memory_equal(argmax4, want_argmax4, sizeof argmax4);
    for (int i = 0; i < 16; i++) din4[i] = 99.0f;
    cnk_maxpool_backward(din4, dout4, NULL, argmax4, &s4, 1);
    assert_memory_equal(din4, want4, sizeof din4);
    for (int i = 0; i < 16; i++) din4[i] = 1.0f;
    cnk_maxpool_backward(din4, dout4, NULL, argmax4, &s4, 0);
    for (int i = 0; i < 16; i++) assert_float_equal(din4[i], 1.0f + want4[i], 0.0f);
    float gp[2];
    cnk_global_avgpool_forward(gp, in4, 2, 1, 8, 1);
    assert_float_equal(gp[0], 14.0 / 8, 1e-6);
    assert_float_equal(gp[1], 25.0 / 8, 1e-6);
}

static void test_batchnorm_statistics(void **state)
{
    (void)state;
    enum { N = 4, C = 3, P = 10 };
    float *in = randn(N * C * P, 5), out[N * C * P], gamma[C] = {1, 2, 0.5f}, beta[C] = {0, 1, -1};
    float rm[C] = {0, 0, 0}, rv[C] = {1, 1, 1}, mean[C], rstd[C];
    cnk_bn_shape s = {N, C, P, 1e-5f, 0.1f, 1, -INFINITY, INFINITY};
    cnk_bn_forward_train(out, in, gamma, beta, rm, rv, mean, rstd, &s);
    for (int c = 0; c < C; c++) {
        double sum = 0, sq = 0, osum = 0, osq = 0;
        for (int n = 0; n < N; n++)
            for (int p = 0; p < P; p++) {
                double x = in[(n * C + c) * P + p], y = out[(n * C + c) * P + p];
                sum += x, sq += x * x, osum += y, osq += y * y;
            }
        double m = sum / (N * P), var = sq / (N * P) - m * m;
        assert_float_equal(mean[c], m, 1e-5);
        /* running stats: PyTorch momentum, unbiased variance */
        assert_float_equal(rm[c], 0.1 * m, 1e-5);
        assert_float_equal(rv[c], 0.9 + 0.1 * var * (N * P) / (N * P - 1), 1e-5);
        double om = osum / (N * P), ov = osq / (N * P) - om * om;
        assert_float_equal(om, beta[c], 1e-5);
        assert_float_equal(ov, gamma[c] * gamma[c] * var / (var + 1e-5), 1e-4);
    }
    {
        /* one-pass statistics must not cancel: values far from zero with a small spread, and a first value
         * far out in units of that spread */
        enum { PLANE = 16384, BIG = 2 * PLANE };
        float *x = randn(BIG, 9), *y = malloc(BIG * sizeof(float)), g1 = 1, b0 = 0, m0 = 0, v1 = 1, mean1, rstd1;
        double sum = 0, sq = 0;
        for (int i = 0; i < BIG; i++) x[i] = 1000.0f + 0.01f * x[i];
        x[0] = 1001.0f; /* 100 standard deviations out */
        for (int i = 0; i < BIG; i++) sum += x[i];
        for (int i = 0; i < BIG; i++) sq += (x[i] - sum / BIG) * (x[i] - sum / BIG);
        cnk_bn_shape one = {2, 1, PLANE, 1e-12f, 0.1f, 1, -INFINITY, INFINITY};
        cnk_bn_forward_train(y, x, &g1, &b0, &m0, &v1, &mean1, &rstd1, &one);
        assert_float_equal(mean1, sum / BIG, 1e-3);
        double var = 1.0 / ((double)rstd1 * rstd1) - 1e-12;
        assert_true(fabs(var - sq / BIG) <= 1e-3 * sq / BIG);
        free(x);
        free(y);
    }
    /* infer mode uses the running statistics; a fused relu6 clamps */
    cnk_bn_shape clip = s;
    clip.clip_min = 0.0f;
    clip.clip_max = 6.0f;
    cnk_bn_forward_infer(out, in, gamma, beta, rm, rv, NULL, NULL, &clip);
    for (int i = 0; i < N * C * P; i++) {
        int c = (i / P) % C;
        double y = gamma[c] * (in[i] - rm[c]) / sqrt(rv[c] + 1e-5) + beta[c];
        assert_float_equal(out[i], fmin(fmax(y, 0.0), 6.0), 1e-5);
    }
    free(in);
}

static void test_dense_threads(void **state)
{
    (void)state;
    enum { B = 7, IN_F = 300, OUT_F = 130 };
    float *in = randn(B * IN_F, 1), *w = randn(OUT_F * IN_F, 2), *b = randn(OUT_F, 3), *dout = randn(B * OUT_F, 4);
    float *out1 = zeros(B * OUT_F), *out2 = zeros(B * OUT_F), *din1 = zeros(B * IN_F), *din2 = zeros(B * IN_F);
    float *dw1 = zeros(OUT_F * IN_F), *dw2 = zeros(OUT_F * IN_F), *db1 = zeros(OUT_F), *db2 = zeros(OUT_F);
    openblas_set_num_threads(1);
    cnk_dense_forward(out1, in, w, b, B, IN_F, OUT_F, 1);
    cnk_dense_forward(out2, in, w, b, B, IN_F, OUT_F, 2);
    cnk_dense_backward(din1, dw1, db1, dout, in, w, B, IN_F, OUT_F, 1);
    cnk_dense_backward(din2, dw2, db2, dout, in, w, B, IN_F, OUT_F, 2);
    assert_memory_equal(out1, out2, sizeof(float) * B * OUT_F);
    assert_memory_equal(din1, din2, sizeof(float) * B * IN_F);
    assert_memory_equal(dw1, dw2, sizeof(float) * OUT_F * IN_F);
    for (int n = 0; n < B; n++)
        for (int o = 0; o < OUT_F; o++) {
            double sum = b[o];
            for (int i = 0; i < IN_F; i++) sum += (double)in[n * IN_F + i] * w[o * IN_F + i];
            assert_float_equal(out1[n * OUT_F + o], sum, 1e-3);
        }
    double g = 0;
    for (int n = 0; n < B; n++) g += (double)dout[n * OUT_F + 5] * in[n * IN_F + 7];
    assert_float_equal(dw1[5 * IN_F + 7], g, 1e-4);
    float *all[] = {in, w, b, dout, out1, out2, din1, din2, dw1, dw2, db1, db2};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) free(all[k]);
}

static void test_dropout_mask(void **state)
{
    (void)state;
    enum { B = 4, P = 5000 };
    float *in = zeros(B * P), *out = zeros(B * P), *out2 = zeros(B * P), *din = zeros(B * P);
    for (int i = 0; i < B * P; i++) in[i] = 1.0f;
    cnk_dropout_forward(out, in, B, P, 0.3f, 123, 1);
    cnk_dropout_forward(out2, in, B, P, 0.3f, 123, 2);
    assert_memory_equal(out, out2, sizeof(float) * B * P);
    int dropped = 0;
    for (int i = 0; i < B * P; i++) {
        assert_true(out[i] == 0.0f || fabsf(out[i] - 1.0f / 0.7f) < 1e-6f);
        dropped += out[i] == 0.0f;
    }
    assert_in_range(dropped, (int)(0.27 * B * P), (int)(0.33 * B * P));
    cnk_dropout_backward(din, in, B, P, 0.3f, 123, 1);
    assert_memory_equal(din, out, sizeof(float) * B * P); /* same mask */
    cnk_dropout_forward(out2, in, B, P, 0.3f, 124, 1);
    assert_true(memcmp(out, out2, sizeof(float) * B * P) != 0);
    free(in);
    free(out);
    free(out2);
    free(din);
}

static void test_activations_values(void **state)
{
    (void)state;
    float x[6] = {-2, -0.5f, 0, 0.5f, 3, 7};
    struct {
        cnk_act_kind kind;
        float want[6];
    } cases[] = {
        {CNK_ACT_STEP, {0, 0, 0, 1, 1, 1}},
        {CNK_ACT_RELU, {0, 0, 0, 0.5f, 3, 7}},
        {CNK_ACT_RELU6, {0, 0, 0, 0.5f, 3, 6}},
        {CNK_ACT_LEAKY_RELU, {-0.2f, -0.05f, 0, 0.5f, 3, 7}},
        {CNK_ACT_ELU, {0.1f * expm1f(-2), 0.1f * expm1f(-0.5f), 0, 0.5f, 3, 7}},
        {CNK_ACT_TANH, {tanhf(-2), tanhf(-0.5f), 0, tanhf(0.5f), tanhf(3), tanhf(7)}},
        {CNK_ACT_SIGMOID, {1 / (1 + expf(2)), 1 / (1 + expf(0.5f)), 0.5f, 1 / (1 + expf(-0.5f)), 1 / (1 + expf(-3)),
                           1 / (1 + expf(-7))}},
        {CNK_ACT_LINEAR, {-2, -0.5f, 0, 0.5f, 3, 7}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        float y[6];
        memcpy(y, x, sizeof y);
        cnk_act_forward(y, cases[k].kind, 0.1f, 1, 6, 1, 1);
        tu_assert_close(y, cases[k].want, 6, 1e-6, 1e-6, cnk_act_name(cases[k].kind));
    }
    /* softmax over channels at each position: 2 channels x 3 positions */
    float z[6] = {0, 1000, 2, 0, -1000, 2}, want[6] = {0.5f, 1, 0.5f, 0.5f, 0, 0.5f};
    cnk_act_forward(z, CNK_ACT_SOFTMAX, 0, 1, 2, 3, 1);
    tu_assert_close(z, want, 6, 1e-6, 0, "softmax");
}

static void test_optimisers(void **state)
{
    (void)state;
    cnk_ctx ctx;
    tu_ctx(&ctx);
    cnk_optim_config cfg;
    cnk_optim *opt;
    /* Adam's first step moves each parameter by lr against the gradient's sign */
    cnk_optim_config_init(&cfg, CNK_OPTIM_ADAM);
    cfg.lr = 0.1f;
    assert_int_equal(cnk_optim_create(&ctx, &cfg, 4, &opt), CNK_OK);
    float p[4] = {1, 1, 1, 1}, g[4] = {0.5f, -2, 0, 1e-3f};
    cnk_param_range only[1] = {{0, 3}}; /* the 4th parameter is frozen */
    cnk_optim_step(opt, p, g, only, 1, cfg.lr, 1);
    float want[4] = {0.9f, 1.1f, 1, 1};
    tu_assert_close(p, want, 4, 1e-5, 0, "adam first step");
    assert_int_equal(cnk_optim_steps(opt), 1);
    assert_int_equal(cnk_optim_state_size(opt), 8);
    cnk_optim_free(opt);
    /* SGD with momentum 0.9 and L2 decay 0.1: v1 = g + wd p; v2 = 0.9 v1 + g + wd p' */
    cnk_optim_config_init(&cfg, CNK_OPTIM_SGD);
    cfg.lr = 0.1f;
    cfg.weight_decay = 0.1f;
    assert_int_equal(cnk_optim_create(&ctx, &cfg, 1, &opt), CNK_OK);
    float q = 1.0f, gq = 1.0f;
    cnk_optim_step(opt, &q, &gq, NULL, 0, 0.1f, 1);
    assert_float_equal(q, 1.0 - 0.1 * 1.1, 1e-6);
    double v1 = 1.1, p1 = 1.0 - 0.11, v2 = 0.9 * v1 + 1.0 + 0.1 * p1;
    cnk_optim_step(opt, &q, &gq, NULL, 0, 0.1f, 1);
    assert_float_equal(q, p1 - 0.1 * v2, 1e-6);
    cnk_optim_free(opt);
    /* AdamW decays decoupled from the gradient: with a zero gradient only the decay acts */
    cnk_optim_config_init(&cfg, CNK_OPTIM_ADAMW);
    cfg.weight_decay = 0.5f;
    assert_int_equal(cnk_optim_create(&ctx, &cfg, 1, &opt), CNK_OK);
    float r = 2.0f, gr = 0.0f;
    cnk_optim_step(opt, &r, &gr, NULL, 0, 0.1f, 1);
    assert_float_equal(r, 2.0 * (1 - 0.1 * 0.5), 1e-6);
    cnk_optim_free(opt);
    cfg.beta1 = 1.5f;
    assert_int_equal(cnk_optim_create(&ctx, &cfg, 1, &opt), CNK_ERR_ARG);
}

static void test_lr_schedules(void **state)
{
    (void)state;
    cnk_lr_schedule step = {CNK_LR_STEP, 0.1f, 10, 0.5f, 0, 0, 0};
    assert_float_equal(cnk_lr_at(&step, 0), 0.1, 1e-7);
    assert_float_equal(cnk_lr_at(&step, 9), 0.1, 1e-7);
    assert_float_equal(cnk_lr_at(&step, 10), 0.05, 1e-7);
    assert_float_equal(cnk_lr_at(&step, 25), 0.025, 1e-7);
    cnk_lr_schedule cosine = {CNK_LR_COSINE, 0.1f, 0, 0, 100, 0.001f, 0};
    assert_float_equal(cnk_lr_at(&cosine, 0), 0.1, 1e-7);
    assert_float_equal(cnk_lr_at(&cosine, 50), 0.001 + 0.099 * 0.5, 1e-6);
    assert_float_equal(cnk_lr_at(&cosine, 100), 0.001, 1e-7);
    assert_float_equal(cnk_lr_at(&cosine, 500), 0.001, 1e-7);
    cnk_lr_schedule warm = {CNK_LR_CONSTANT, 0.1f, 0, 0, 0, 0, 4};
    assert_float_equal(cnk_lr_at(&warm, 0), 0.02, 1e-7);
    assert_float_equal(cnk_lr_at(&warm, 4), 0.1, 1e-7);
}

static void test_init_statistics(void **state)
{
    (void)state;
    enum { N = 200000 };
    float *w = zeros(N), *w2 = zeros(N);
    cnk_init_he_normal(w, N, 50, 9, 1);
    double sum = 0, sq = 0;
    for (int i = 0; i < N; i++) sum += w[i], sq += (double)w[i] * w[i];
    assert_float_equal(sum / N, 0.0, 0.002);
    assert_float_equal(sqrt(sq / N), sqrt(2.0 / 50), 0.002);
    cnk_init_he_normal(w2, N, 50, 9, 1);
    assert_memory_equal(w, w2, sizeof(float) * N);
    cnk_init_glorot_uniform(w, N, 30, 70, 9, 2);
    double limit = sqrt(6.0 / 100), maxabs = 0;
    for (int i = 0; i < N; i++) maxabs = fmax(maxabs, fabs(w[i]));
    assert_true(maxabs <= limit && maxabs > 0.99 * limit);
    free(w);
    free(w2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d_against_naive), cmocka_unit_test(test_winograd_few_chunks),
        cmocka_unit_test(test_depthwise_against_naive),
        cmocka_unit_test(test_pools_known_values),   cmocka_unit_test(test_batchnorm_statistics),
        cmocka_unit_test(test_dense_threads),        cmocka_unit_test(test_dropout_mask),
        cmocka_unit_test(test_activations_values),   cmocka_unit_test(test_optimisers),
        cmocka_unit_test(test_lr_schedules),         cmocka_unit_test(test_init_statistics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
