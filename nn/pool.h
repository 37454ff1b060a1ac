/* pool.h: max pooling, average pooling (padded cells not counted, as TensorFlow SAME) and global average
 * pooling over NCHW batches, forward and backward. */
#ifndef CNK_POOL_H
#define CNK_POOL_H

typedef struct cnk_pool_shape {
    int batch, channels, in_h, in_w, out_h, out_w;
    int kernel_h, kernel_w, stride_h, stride_w;
    int pad_top, pad_left; /* bottom/right implied by out_h/out_w; every window must touch the image */
    int threads;
} cnk_pool_shape;

/* argmax (NULL = not kept) receives, when cnk_maxpool_keeps_argmax(s), one byte per output: which cell of its
 * window holds the maximum, so backward need not read the input again. */
void cnk_maxpool_forward(float *out, unsigned char *argmax, const float *in, const cnk_pool_shape *s);
/* 1 if cnk_maxpool_forward fills argmax for s (2x2, stride 2, unpadded). */
int cnk_maxpool_keeps_argmax(const cnk_pool_shape *s);
/* Accumulates dout into dinp at each window's maximum (the first one in row-major order on ties), taken from
 * argmax (the forward's, when it kept one) or found again from in. With overwrite = 1 and
 * cnk_maxpool_backward_overwrites(s), dinp is written instead (its old contents are ignored), which saves
 * zeroing it first. */
void cnk_maxpool_backward(float *dinp, const float *dout, const float *in, const unsigned char *argmax,
                          const cnk_pool_shape *s, int overwrite);
/* 1 if the windows tile the input exactly (2x2, stride 2, even sizes), so backward can overwrite. */
int cnk_maxpool_backward_overwrites(const cnk_pool_shape *s);

void cnk_avgpool_forward(float *out, const float *in, const cnk_pool_shape *s);
void cnk_avgpool_backward(float *dinp, const float *dout, const cnk_pool_shape *s);

/* out[n, c] = mean of in[n, c, :, :] over spatial = H*W values. */
void cnk_global_avgpool_forward(float *out, const float *in, int batch, int channels, int spatial, int threads);
void cnk_global_avgpool_backward(float *dinp, const float *dout, int batch, int channels, int spatial,
                                 int threads);

#endif
