/* cmd_features.c: `cnnkit features [OPTIONS] INPUT OUTPUT` (../shared/CLI.md): audio file or folder ->
 * mel / STFT / wavelet spectrograms as .npy or .png. Parses the options and calls features/extract_tree. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "core/fsutil.h"
#include "features/audio.h"
#include "features/extract_tree.h"
#include "pipeline/distributed.h"

static const char *const CMD = "features";

static void print_help(void)
{
    printf("Usage: cnnkit features [OPTIONS] INPUT OUTPUT\n\n"
           "Turns an audio file, or every audio file below a folder (wav au aiff aif flac ogg mp3, recursively),\n"
           "into spectrograms. A folder INPUT gives a folder OUTPUT mirroring its tree, each extension replaced\n"
           "by .npy or .png. Arrays are (rows, frames) float32, row 0 = lowest frequency.\n\n"
           "Options:\n"
           "  --kind mel|stft|wavelet  feature (default mel: librosa 0.10 melspectrogram + power_to_db)\n"
           "  --sr HZ              resample to HZ first; 0 keeps each file's rate (default 22050)\n"
           "  --n-fft N            FFT size (default 2048)\n"
           "  --hop N              hop length in samples (default 512)\n"
           "  --n-mels N           mel bands (default 128)\n"
           "  --fmin HZ            lowest frequency (default 0; 32 for wavelets)\n"
           "  --fmax HZ            highest frequency (default sr/2)\n"
           "  --scales N           wavelet rows, centre frequencies log-spaced fmin..fmax (default 64)\n"
           "  --db | --power       dB (ref 1, amin 1e-10, top_db 80; default) or linear power\n"
           "  --format npy|png     output format (default npy, or png when a single OUTPUT ends in .png)\n"
           "  --colormap grey|viridis|magma  PNG colours (default grey)\n"
           "  --jobs N             files processed in parallel (default: all cores)\n"
           "  -h, --help           this help\n\n"
           "Exit codes: 0 success, 1 some inputs were skipped (named on stderr), 2 usage error,\n"
           "3 fatal input or I/O error.\n");
}

typedef struct features_args {
    cnk_extract_params params;
    cnk_extract_output output;
    int format_given;
    int jobs;
    const char *input;
    const char *output_path;
} features_args;

/* The value of option `name` given as "--name=value" or "--name value"; NULL if arg is another option. */
static const char *option_value(const char *name, int argc, char **argv, int *i, int *missing)
{
    size_t len = strlen(name);
    const char *arg = argv[*i];
    *missing = 0;
    if (strncmp(arg, name, len) != 0) return NULL;
    if (arg[len] == '=') return arg + len + 1;
    if (arg[len] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

static int parse_number_option(const char *name, const char *value, long min, long max, int *out)
{
    long v;
    if (cnk_parse_long(value, min, max, &v) != 0)
        return cli_usage_error(CMD, "%s wants a whole number in %ld..%ld, not '%s'", name, min, max, value);
    *out = (int)v;
    return CLI_OK;
}

static int parse_hz_option(const char *name, const char *value, double *out)
{
    if (cnk_parse_double(value, 0, 1e7, out) != 0)
        return cli_usage_error(CMD, "%s wants a frequency in Hz, not '%s'", name, value);
    return CLI_OK;
}

/* Handles one "--name value" option; returns CLI_OK, CLI_USAGE, or -1 if arg is not one of these. */
static int parse_valued_option(features_args *a, int argc, char **argv, int *i)
{
    static const char *const names[] = {"--kind", "--sr",     "--n-fft",  "--hop",      "--n-mels", "--fmin",
                                        "--fmax", "--scales", "--format", "--colormap", "--jobs"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        int missing;
        const char *v = option_value(names[k], argc, argv, i, &missing);
        if (missing) return cli_usage_error(CMD, "%s needs a value", names[k]);
        if (!v) continue;
        cnk_extract_params *p = &a->params;
        switch (k) {
        case 0:
            if (cnk_feature_kind_parse(v, &p->kind) != 0)
                return cli_usage_error(CMD, "--kind is mel, stft or wavelet, not '%s'", v);
            return CLI_OK;
        case 1: return parse_number_option("--sr", v, 0, CNK_AUDIO_MAX_RATE, &p->sample_rate);
        case 2: return parse_number_option("--n-fft", v, 2, 65536, &p->n_fft);
        case 3: return parse_number_option("--hop", v, 1, 65536, &p->hop_length);
        case 4: return parse_number_option("--n-mels", v, 1, 4096, &p->n_mels);
        case 5: return parse_hz_option("--fmin", v, &p->fmin);
        case 6: return parse_hz_option("--fmax", v, &p->fmax);
        case 7: return parse_number_option("--scales", v, 1, 1024, &p->n_scales);
        case 8:
            a->format_given = 1;
            if (strcmp(v, "npy") == 0)
                a->output.format = CNK_OUTPUT_NPY;
            else if (strcmp(v, "png") == 0)
                a->output.format = CNK_OUTPUT_PNG;
            else
                return cli_usage_error(CMD, "--format is npy or png, not '%s'", v);
            return CLI_OK;
        case 9:
            if (cnk_colormap_parse(v, &a->output.colormap) != 0)
                return cli_usage_error(CMD, "--colormap is grey, viridis or magma, not '%s'", v);
            return CLI_OK;
        default: return parse_number_option("--jobs", v, 1, 4096, &a->jobs);
        }
    }
    return -1;
}

/* Returns CLI_OK, CLI_USAGE, or -2 after printing --help. */
static int parse_args(features_args *a, int argc, char **argv)
{
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            print_help();
            return -2;
        }
        if (strcmp(arg, "--db") == 0)
            a->params.db = 1;
        else if (strcmp(arg, "--power") == 0)
            a->params.db = 0;
        else if (arg[0] == '-' && arg[1] != '\0') {
            int rc = parse_valued_option(a, argc, argv, &i);
            if (rc == -1) return cli_usage_error(CMD, "unknown option '%s'", arg);
            if (rc != CLI_OK) return rc;
        } else if (positional == 0) {
            a->input = arg;
            positional++;
        } else if (positional == 1) {
            a->output_path = arg;
            positional++;
        } else {
            return cli_usage_error(CMD, "unexpected argument '%s' (INPUT and OUTPUT already given)", arg);
        }
    }
    if (positional < 2) return cli_usage_error(CMD, "needs INPUT and OUTPUT");
    return CLI_OK;
}

static int run_file(cnk_ctx *ctx, features_args *a)
{
    char out_path[4096];
    snprintf(out_path, sizeof out_path, "%s", a->output_path);
    if (!a->format_given && cnk_path_has_ext(out_path, "png")) a->output.format = CNK_OUTPUT_PNG;
    if (cnk_is_dir(out_path)) { /* an existing folder: write INPUT's name with the new extension inside it */
        const char *base = cnk_path_base(a->input), *ext = cnk_path_ext(base);
        int stem = (int)(*ext ? (size_t)(ext - 1 - base) : strlen(base));
        snprintf(out_path, sizeof out_path, "%s/%.*s.%s", a->output_path, stem, base,
                 a->output.format == CNK_OUTPUT_PNG ? "png" : "npy");
    }
    cnk_extractor *ex;
    int rc = cnk_extractor_create(ctx, &a->params, &ex);
    if (rc != CNK_OK) return cli_fail(CMD, ctx, rc);
    rc = cnk_extract_to_file(ctx, ex, a->input, out_path, &a->output);
    cnk_extractor_free(ex);
    if (rc != CNK_OK) return cli_fail(CMD, ctx, rc == CNK_ERR_ARG ? CNK_ERR_INPUT : rc);
    return cli_success(ctx);
}

/* Under mpirun every rank lists the same folder and writes the files it owns (round robin); the counts and
 * the worst status are combined so every rank exits alike and rank 0 prints the summary. */
static int run_tree(cnk_ctx *ctx, features_args *a)
{
    if (cnk_is_file(a->output_path)) {
        fprintf(stderr, "cnnkit %s: %s: INPUT is a folder, so OUTPUT must be a folder, not a file\n", CMD,
                a->output_path);
        return CLI_USAGE;
    }
    cnk_dist dist;
    int rc = cnk_dist_init(ctx, &dist);
    if (rc != CNK_OK) return cli_fail(CMD, ctx, rc);
    a->output.shard_index = cnk_dist_rank(&dist);
    a->output.shard_count = cnk_dist_size(&dist);
    if (dist.size > 1 && a->jobs == ctx->threads) a->jobs = cnk_dist_default_threads(&dist, ctx->threads);
    size_t written = 0;
    rc = cnk_extract_tree(ctx, &a->params, a->input, a->output_path, &a->output, a->jobs, &written);
    double counts[2] = {(double)written, (double)ctx->n_warnings};
    rc = cnk_dist_agree(ctx, &dist, rc);
    if (rc == CNK_OK) rc = cnk_dist_sum_doubles(ctx, &dist, counts, 2);
    if (rc != CNK_OK) {
        cnk_dist_finalize(&dist);
        return cli_fail(CMD, ctx, rc);
    }
    written = (size_t)counts[0];
    size_t skipped = (size_t)counts[1];
    if (cnk_dist_is_root(&dist)) {
        fprintf(stderr, "cnnkit %s: wrote %zu file%s to %s", CMD, written, written == 1 ? "" : "s",
                a->output_path);
        if (skipped) fprintf(stderr, " (%zu skipped)", skipped);
        fputc('\n', stderr);
    }
    /* No rank exits before rank 0 has printed: mpirun ends the job when a rank exits with 1 (skipped files). */
    cnk_dist_barrier(ctx, &dist);
    cnk_dist_finalize(&dist);
    return skipped ? CLI_SKIPPED : CLI_OK;
}

int cmd_features(int argc, char **argv)
{
    cnk_ctx ctx;
    cli_ctx_init(&ctx, CMD);
    features_args a;
    memset(&a, 0, sizeof a);
    cnk_extract_params_default(&a.params);
    a.output.format = CNK_OUTPUT_NPY;
    a.output.colormap = CNK_COLORMAP_GREY;
    a.jobs = ctx.threads;
    int rc = parse_args(&a, argc, argv);
    if (rc == -2) return CLI_OK;
    if (rc != CLI_OK) return rc;
    if (cnk_is_dir(a.input)) return run_tree(&ctx, &a);
    if (!cnk_is_file(a.input)) {
        fprintf(stderr, "cnnkit %s: %s: no such file or folder\n", CMD, a.input);
        return CLI_FATAL;
    }
    return run_file(&ctx, &a);
}
