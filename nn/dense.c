#include "nn/dense.h"

#include <cblas.h>
#include <stddef.h>

void cnk_dense_forward(float *out, const float *in, const float *weight, const float *bias, int batch, int in_f,
                       int out_f)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, out_f, in_f, 1.0f, in, in_f, weight, in_f, 0.0f, out,
                out_f);
    if (!bias) return;
    for (int n = 0; n < batch; n++)
        for (int o = 0; o < out_f; o++) out[(size_t)n * out_f + o] += bias[o];
}

void cnk_dense_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *in,
                        const float *weight, int batch, int in_f, int out_f)
{
    if (dweight)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out_f, in_f, batch, 1.0f, dout, out_f, in, in_f, 1.0f,
                    dweight, in_f);
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, in_f, out_f, 1.0f, dout, out_f, weight, in_f,
                    1.0f, dinp, in_f);
    if (dbias)
        for (int o = 0; o < out_f; o++) {
            float sum = 0.0f;
            for (int n = 0; n < batch; n++) sum += dout[(size_t)n * out_f + o];
            dbias[o] += sum;
        }
}
