/* cmd_bench.c: `cnnkit bench ARCH` (see ../shared/CLI.md): times training steps (forward, backward, Adam)
 * or inference of a built-in or .cfg architecture on random data, against an sgemm measured in the same run.
 * The last line is exactly `samples_per_s=<number>`. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "core/rng.h"
#include "nn/blas_cpu.h"
#include "nn/builtin.h"
#include "nn/cfg.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/optim.h"

static const char *const CMD = "bench";

typedef struct bench_args {
    const char *arch;
    int batch, steps, warmup, threads, infer, classes;
    cnk_shape input;
} bench_args;

static void print_help(void)
{
    char names[CNK_BUILTIN_NAMES_MAX];
    printf("Usage: cnnkit bench ARCH [OPTIONS]\n\n"
           "Times training steps (forward + backward + Adam) or inference of an architecture on random data and\n"
           "prints samples/s, GFLOP/s, an sgemm peak measured in the same run and the OpenBLAS kernels it ran\n"
           "(blas_core, see OPENBLAS_CORETYPE in cnnkit(1)).\n"
           "ARCH is a built-in (%s) or a .cfg file.\n"
           "The last line is samples_per_s=<number>.\n"
           "GFLOP/s counts direct-convolution FLOPs: 3x3 convolutions run as Winograd F(4x4,3x3) do fewer\n"
           "multiplies, so fraction_of_peak can exceed 1.\n\n"
           "Options:\n"
           "  --batch N        samples per step (default 32)\n"
           "  --steps N        timed steps (default 10)\n"
           "  --warmup N       untimed steps first (default 2)\n"
           "  --threads N      threads for OpenBLAS and our loops (default: all cores)\n"
           "  --infer          time inference instead of training\n"
           "  --input CxHxW    input shape of a built-in (default per architecture)\n"
           "  --classes N      classifier units of a built-in (default 10)\n"
           "  --help           this text\n\n"
           "Exit codes: 0 success, 2 usage error, 3 invalid architecture or out of memory.\n",
           cnk_builtin_names_text(names, sizeof names));
}

static int parse_shape(const char *text, cnk_shape *shape)
{
    int c, h, w;
    char tail;
    if (sscanf(text, "%dx%dx%d%c", &c, &h, &w, &tail) != 3 || c < 1 || h < 1 || w < 1 || c > 65536 || h > 65536 ||
        w > 65536)
        return -1;
    *shape = (cnk_shape){c, h, w};
    return 0;
}

/* Returns -1 to continue, else the exit code. */
static int parse_args(int argc, char **argv, bench_args *a)
{
    memset(a, 0, sizeof *a);
    a->batch = 32;
    a->steps = 10;
    a->warmup = 2;
    a->threads = cnk_cpu_count();
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_help();
            return CLI_OK;
        }
        if (strcmp(arg, "--infer") == 0) {
            a->infer = 1;
            continue;
        }
        int *target = strcmp(arg, "--batch") == 0     ? &a->batch
                      : strcmp(arg, "--steps") == 0   ? &a->steps
                      : strcmp(arg, "--warmup") == 0  ? &a->warmup
                      : strcmp(arg, "--threads") == 0 ? &a->threads
                      : strcmp(arg, "--classes") == 0 ? &a->classes
                                                      : NULL;
        if (target || strcmp(arg, "--input") == 0) {
            if (!value) return cli_usage_error(CMD, "%s needs a value", arg);
            i++;
            if (!target) {
                if (parse_shape(value, &a->input)) return cli_usage_error(CMD, "--input wants CxHxW, got '%s'", value);
                continue;
            }
            long min = target == &a->warmup ? 0 : 1, max = target == &a->threads ? 1024 : 1000000;
            if (cnk_parse_long(value, min, max, &n)) return cli_usage_error(CMD, "%s: bad value '%s'", arg, value);
            *target = (int)n;
            continue;
        }
        if (arg[0] == '-' && arg[1]) return cli_usage_error(CMD, "unknown option '%s'", arg);
        if (a->arch) return cli_usage_error(CMD, "one architecture only ('%s' and '%s')", a->arch, arg);
        a->arch = arg;
    }
    if (!a->arch) return cli_usage_error(CMD, "no architecture given");
    return -1;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Best of a few 1024^3 sgemms: the machine's attainable GFLOP/s with these threads, measured now. */
static double sgemm_peak(void)
{
    enum { N = 1024 };
    float *a = malloc(sizeof(float) * N * N), *b = malloc(sizeof(float) * N * N), *c = malloc(sizeof(float) * N * N);
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        return 0.0;
    }
    for (int i = 0; i < N * N; i++) {
        a[i] = (float)(i % 7) * 0.1f;
        b[i] = (float)(i % 5) * 0.1f;
    }
    double best = 1e30;
    for (int r = 0; r < 6; r++) {
        double t0 = now_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
        double dt = now_seconds() - t0;
        if (dt < best) best = dt;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * N * N * N / best / 1e9;
}

static int load_arch(cnk_ctx *ctx, const bench_args *a, cnk_arch *arch)
{
    if (cnk_builtin_exists(a->arch)) {
        cnk_builtin_opts opts;
        cnk_builtin_opts_init(&opts);
        opts.input = a->input;
        opts.n_classes = a->classes ? a->classes : 10;
        return cnk_builtin_arch(ctx, a->arch, &opts, arch);
    }
    return cnk_cfg_read_file(ctx, a->arch, arch);
}

typedef struct bench_data {
    float *inputs[CNK_MAX_OUTPUTS];
    int *labels;
    float *dlogits[CNK_MAX_OUTPUTS];
} bench_data;

static void data_release(bench_data *d)
{
    for (int k = 0; k < CNK_MAX_OUTPUTS; k++) {
        free(d->inputs[k]);
        free(d->dlogits[k]);
    }
    free(d->labels);
}

static int data_make(cnk_ctx *ctx, const cnk_arch *arch, int batch, bench_data *d)
{
    memset(d, 0, sizeof *d);
    cnk_rng rng;
    cnk_rng_seed(&rng, ctx->seed, 1);
    for (int k = 0; k < arch->n_input_layers; k++) {
        cnk_shape s = arch->layers[arch->input_layers[k]].out;
        size_t n = (size_t)batch * s.c * s.h * s.w;
        d->inputs[k] = malloc(n * sizeof(float));
        if (!d->inputs[k]) return cnk_fail(ctx, CNK_ERR_NOMEM, "bench: out of memory for inputs");
        for (size_t i = 0; i < n; i++) d->inputs[k][i] = (float)cnk_rng_normal(&rng);
    }
    for (int k = 0; k < arch->n_outputs; k++) {
        cnk_shape s = arch->layers[arch->outputs[k]].out;
        d->dlogits[k] = malloc((size_t)batch * s.c * s.h * s.w * sizeof(float));
        if (!d->dlogits[k]) return cnk_fail(ctx, CNK_ERR_NOMEM, "bench: out of memory");
    }
    d->labels = malloc(sizeof(int) * (size_t)batch);
    if (!d->labels) return cnk_fail(ctx, CNK_ERR_NOMEM, "bench: out of memory");
    cnk_shape s = arch->layers[arch->outputs[0]].out;
    for (int n = 0; n < batch; n++) d->labels[n] = (int)cnk_rng_below(&rng, (uint64_t)(s.c * s.h * s.w));
    return CNK_OK;
}

static int train_step(cnk_ctx *ctx, cnk_model *m, cnk_optim *opt, bench_data *d, int batch)
{
    const cnk_arch *arch = cnk_model_arch(m);
    int rc = cnk_model_forward(ctx, m, (const float *const *)d->inputs, batch, CNK_MODE_TRAIN);
    if (rc != CNK_OK) return rc;
    for (int k = 0; k < arch->n_outputs; k++) {
        int units;
        const float *logits = cnk_model_output(m, k, &units);
        cnk_loss_softmax_ce(logits, d->labels, batch, units, NULL, d->dlogits[k]);
    }
    cnk_model_zero_grad(m);
    rc = cnk_model_backward(ctx, m, (const float *const *)d->dlogits);
    if (rc != CNK_OK) return rc;
    int n_ranges;
    const cnk_param_range *ranges = cnk_model_trainable_ranges(m, &n_ranges);
    cnk_optim_step(opt, cnk_model_params(m), cnk_model_grads(m), ranges, n_ranges, 1e-3f, ctx->threads);
    return CNK_OK;
}

static int run(cnk_ctx *ctx, const bench_args *a)
{
    cnk_arch arch;
    int rc = load_arch(ctx, a, &arch);
    if (rc != CNK_OK) return rc;
    cnk_model *m = NULL;
    cnk_optim *opt = NULL;
    bench_data d;
    memset(&d, 0, sizeof d);
    rc = cnk_model_create(ctx, &arch, a->batch, &m);
    cnk_arch_release(&arch);
    if (rc == CNK_OK) rc = data_make(ctx, cnk_model_arch(m), a->batch, &d);
    if (rc == CNK_OK && !a->infer) {
        cnk_optim_config cfg;
        cnk_optim_config_init(&cfg, CNK_OPTIM_ADAM);
        rc = cnk_optim_create(ctx, &cfg, cnk_model_arch(m)->n_params, &opt);
    }
    if (rc != CNK_OK) goto done;
    openblas_set_num_threads(ctx->threads);
    double peak = sgemm_peak();
    double elapsed = 0.0;
    for (int s = 0; s < a->warmup + a->steps && rc == CNK_OK; s++) {
        double t0 = now_seconds();
        if (a->infer)
            rc = cnk_model_forward(ctx, m, (const float *const *)d.inputs, a->batch, CNK_MODE_INFER);
        else
            rc = train_step(ctx, m, opt, &d, a->batch);
        if (s >= a->warmup) elapsed += now_seconds() - t0;
    }
    if (rc != CNK_OK) goto done;
    const cnk_arch *ar = cnk_model_arch(m);
    double samples = (double)a->batch * a->steps, per_s = samples / elapsed;
    /* training: forward + backward (input and weight gradients) is about 3x the forward's arithmetic */
    double flops = ar->flops * samples * (a->infer ? 1.0 : 3.0), gflops = flops / elapsed / 1e9;
    cnk_shape in = ar->layers[ar->input_layers[0]].out;
    printf("arch=%s input=%dx%dx%d batch=%d threads=%d mode=%s steps=%d blas_core=%s\n", a->arch, in.c, in.h, in.w,
           a->batch, ctx->threads, a->infer ? "infer" : "train", a->steps, cnk_blas_core());
    printf("params=%zu forward_mflops_per_sample=%.1f model_memory_mb=%.1f\n", ar->n_params, ar->flops / 1e6,
           cnk_model_memory(m) / 1e6);
    printf("ms_per_step=%.2f gflop_per_s=%.1f sgemm_peak_gflop_per_s=%.1f fraction_of_peak=%.2f\n",
           1e3 * elapsed / a->steps, gflops, peak, peak > 0 ? gflops / peak : 0.0);
    printf("samples_per_s=%.2f\n", per_s);
done:
    data_release(&d);
    cnk_optim_free(opt);
    cnk_model_free(m);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    bench_args a;
    int code = parse_args(argc, argv, &a);
    if (code >= 0) return code;
    cnk_ctx ctx;
    cli_ctx_init(&ctx, CMD);
    ctx.threads = a.threads;
    int rc = run(&ctx, &a);
    if (rc != CNK_OK) return cli_fail(CMD, &ctx, rc);
    return CLI_OK;
}
