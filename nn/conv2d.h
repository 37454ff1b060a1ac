/* conv2d.h: 2-D convolution over NCHW float32 batches (stride, asymmetric padding such as TensorFlow SAME,
 * dilation) lowered to im2col + cblas_sgemm, forward and backward. Weights OIHW, as PyTorch. */
#ifndef CNK_CONV2D_H
#define CNK_CONV2D_H

#include <stddef.h>

typedef struct cnk_conv2d_shape {
    int batch, in_c, in_h, in_w;
    int out_c, out_h, out_w;
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int dilation_h, dilation_w;
    int pad_top, pad_left; /* bottom/right padding is whatever out_h/out_w imply (SAME puts the odd one there) */
    int threads;           /* threads of our OpenMP team; each calls sgemm single-threaded, so the caller
                            * must have set openblas_set_num_threads(1) (nn/model.c does) */
} cnk_conv2d_shape;

/* Output size along one axis for a padding total (pad_before + pad_after). */
int cnk_conv_out_size(int in, int kernel, int stride, int dilation, int pad_total);
/* TensorFlow SAME padding along one axis: total padding so out = ceil(in / stride); the smaller half goes
 * before (top/left). */
int cnk_conv_same_pad_total(int in, int kernel, int stride, int dilation);

/* Floats of scratch space forward/backward need for s->threads threads (a slice per thread). */
size_t cnk_conv2d_workspace_size(const cnk_conv2d_shape *s);

/* out[N, out_c, out_h, out_w] = conv(in, weight[out_c, in_c, kh, kw]) + bias (bias may be NULL).
 * workspace holds cnk_conv2d_workspace_size(s) floats. */
void cnk_conv2d_forward(float *out, const float *in, const float *weight, const float *bias,
                        const cnk_conv2d_shape *s, float *workspace);

/* Accumulates (+=) the gradients: dinp (w.r.t. in; NULL if not needed), dweight and dbias (NULL if
 * frozen or absent). dout is the gradient w.r.t. out; in and weight are the forward's. With overwrite = 1
 * and cnk_conv2d_backward_overwrites(s), dinp is stored instead (its old contents are ignored: no need to
 * zero it first). */
void cnk_conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *in,
                         const float *weight, const cnk_conv2d_shape *s, int overwrite, float *workspace);
/* 1 if cnk_conv2d_backward can store dinp instead of adding to it (the Winograd path writes every element). */
int cnk_conv2d_backward_overwrites(const cnk_conv2d_shape *s);

/* Floating-point operations of one forward pass (2 per multiply-add). */
double cnk_conv2d_flops(const cnk_conv2d_shape *s);

#endif
