#include "nn/dense.h"

#include <cblas.h>
#include <omp.h>
#include <stddef.h>

/* Each of the team's threads takes a slice of the output features (or, for dinp, of the input features)
 * and calls sgemm single-threaded on it: the slices never overlap, so the result is the same for any
 * number of threads. */
static void slice(int total, int parts, int part, int *begin, int *end)
{
    *begin = (int)((long)total * part / parts);
    *end = (int)((long)total * (part + 1) / parts);
}

static int team_for(int threads, int batch, int features)
{
    long work = (long)batch * features;
    if (threads < 1 || work < 16384) return 1;
    return threads < features ? threads : features;
}

void cnk_dense_forward(float *out, const float *in, const float *weight, const float *bias, int batch, int in_f,
                       int out_f, int threads)
{
    int team = team_for(threads, batch, out_f);
#pragma omp parallel num_threads(team)
    {
        int o0, o1;
        slice(out_f, omp_get_num_threads(), omp_get_thread_num(), &o0, &o1);
        if (o1 > o0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, o1 - o0, in_f, 1.0f, in, in_f,
                        weight + (size_t)o0 * in_f, in_f, 0.0f, out + o0, out_f);
    }
    if (!bias) return;
    for (int n = 0; n < batch; n++)
        for (int o = 0; o < out_f; o++) out[(size_t)n * out_f + o] += bias[o];
}

void cnk_dense_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *in,
                        const float *weight, int batch, int in_f, int out_f, int threads)
{
    int team = team_for(threads, batch, out_f > in_f ? out_f : in_f);
#pragma omp parallel num_threads(team)
    {
        int parts = omp_get_num_threads(), part = omp_get_thread_num(), a, b;
        slice(out_f, parts, part, &a, &b);
        if (dweight && b > a)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, b - a, in_f, batch, 1.0f, dout + a, out_f, in, in_f,
                        1.0f, dweight + (size_t)a * in_f, in_f);
        slice(in_f, parts, part, &a, &b);
        if (dinp && b > a)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, b - a, out_f, 1.0f, dout, out_f, weight + a,
                        in_f, 1.0f, dinp + a, in_f);
    }
    if (dbias)
        for (int o = 0; o < out_f; o++) {
            float sum = 0.0f;
            for (int n = 0; n < batch; n++) sum += dout[(size_t)n * out_f + o];
            dbias[o] += sum;
        }
}
