/* dense.h: the fully connected layer out = in W^T + b on a batch of flattened samples, via cblas_sgemm;
 * weight [out_features, in_features] as PyTorch. */
#ifndef CNK_DENSE_H
#define CNK_DENSE_H

/* threads: our OpenMP team, each thread calling sgemm single-threaded on a slice (the caller has set
 * openblas_set_num_threads(1), as nn/model.c does).
 * out[batch, out_f] = in[batch, in_f] * weight^T + bias (bias may be NULL). */
void cnk_dense_forward(float *out, const float *in, const float *weight, const float *bias, int batch, int in_f,
                       int out_f, int threads);
/* Accumulates (+=) dinp (NULL = not needed), dweight and dbias (NULL = frozen or absent). */
void cnk_dense_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *in,
                        const float *weight, int batch, int in_f, int out_f, int threads);

#endif
