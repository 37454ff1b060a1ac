/* cmd_import.c: `cnnkit import FILE.tflite -o MODEL.cnk [--labels FILE]` (see ../shared/CLI.md): a pretrained
 * TensorFlow Lite MobileNet or YAMNet as a cnnkit model, with its class names and preprocessing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "nn/import.h"
#include "nn/modelfile.h"
#include "pipeline/preprocess.h"

static const char *const CMD = "import";

static void print_help(void)
{
    printf("Usage: cnnkit import FILE.tflite -o MODEL.cnk [--labels FILE]\n\n"
           "Imports a pretrained TensorFlow Lite model as a cnnkit model: MobileNetV2 and MobileNetV1 (any\n"
           "published width; uint8 or int8 quantised or float weights, dequantised to float32) become the\n"
           "built-in mobilenet_v2 / mobilenet_v1 with batch norm folded into the conv biases; YAMNet's CNN\n"
           "becomes mobilenet_v1 on a 96x64 log-mel patch (its waveform front end is computed by cnnkit).\n"
           "Image models predict on images: centre square crop, resize, pixel / 127.5 - 1.\n\n"
           "Options:\n"
           "  -o, --output MODEL.cnk  the model file to write (required)\n"
           "  --labels FILE           class names: one per line (text up to the first comma is kept), or a\n"
           "                          CSV with a display_name column; default: imagenet_labels.txt or\n"
           "                          yamnet_class_map.csv beside FILE.tflite, else class_0, class_1, ...\n"
           "  --help                  this text\n\n"
           "Exit codes: 0 success, 2 usage error, 3 unreadable, damaged or unsupported model file.\n");
}

typedef struct import_args {
    const char *input, *output, *labels;
} import_args;

/* Returns -1 to continue, else the exit code. */
static int parse_args(int argc, char **argv, import_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_help();
            return CLI_OK;
        }
        if (strcmp(arg, "-o") == 0 || strcmp(arg, "--output") == 0 || strcmp(arg, "--labels") == 0) {
            if (i + 1 >= argc) return cli_usage_error(CMD, "%s needs a value", arg);
            if (strcmp(arg, "--labels") == 0) a->labels = argv[++i];
            else a->output = argv[++i];
            continue;
        }
        if (arg[0] == '-' && arg[1]) return cli_usage_error(CMD, "unknown option '%s'", arg);
        if (a->input) return cli_usage_error(CMD, "one FILE.tflite at a time");
        a->input = arg;
    }
    if (!a->input) return cli_usage_error(CMD, "missing FILE.tflite");
    if (!a->output) return cli_usage_error(CMD, "missing -o MODEL.cnk");
    return -1;
}

/* The pipeline's preprocessing text: images in [0, 1] normalised with mean 0.5 and std 0.5 per channel is
 * MobileNet's pixel / 127.5 - 1. YAMNet's input is a log-mel patch: an npy array used as is; the front end
 * line names what produces it (pipeline/yamnet.h). */
static int preprocess_text(cnk_ctx *ctx, const cnk_import_info *info, char **text)
{
    cnk_preprocess p;
    int yamnet = info->kind == CNK_IMPORT_YAMNET;
    cnk_preprocess_defaults(&p, yamnet ? CNK_PREP_NPY : CNK_PREP_IMAGE);
    p.channels = info->input.c;
    p.height = info->input.h;
    p.width = info->input.w;
    if (!yamnet) {
        p.n_norm = p.channels;
        for (int c = 0; c < p.channels; c++) {
            p.mean[c] = 0.5f;
            p.std[c] = 0.5f;
        }
    }
    char *base;
    int rc = cnk_preprocess_to_text(ctx, &p, &base);
    if (rc || !yamnet) {
        *text = rc ? NULL : base;
        return rc;
    }
    const char *extra = "frontend=yamnet (16 kHz, 25 ms Hann, 10 ms hop, 512-point FFT, 64 HTK mels 125-7500 Hz, "
                        "log(mel + 0.001), 96-frame patches: time x mel)\noutput=sigmoid\n";
    *text = malloc(strlen(base) + strlen(extra) + 1);
    if (!*text) {
        free(base);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory");
    }
    strcpy(*text, base);
    strcat(*text, extra);
    free(base);
    return CNK_OK;
}

int cmd_import(int argc, char **argv)
{
    import_args a;
    int code = parse_args(argc, argv, &a);
    if (code >= 0) return code;
    cnk_ctx ctx;
    cli_ctx_init(&ctx, CMD);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cnk_modelfile mf;
    cnk_import_info info;
    int rc = cnk_import_tflite(&ctx, a.input, a.labels, &mf, &info);
    if (!rc) rc = preprocess_text(&ctx, &info, &mf.preprocess);
    if (!rc) rc = cnk_modelfile_write(&ctx, a.output, &mf);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc) {
        cnk_modelfile_release(&mf);
        return cli_fail(CMD, &ctx, rc);
    }
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    fprintf(stderr, "cnnkit import: %s -> %s: %s width %.2f, input %dx%dx%d, %d classes, %zu parameters (%.2f s)\n",
            a.input, a.output, info.kind == CNK_IMPORT_YAMNET ? "YAMNet (mobilenet_v1 body)" : info.arch_name,
            (double)info.width, info.input.c, info.input.h, info.input.w, info.n_classes, mf.n_params, seconds);
    cnk_modelfile_release(&mf);
    return cli_success(&ctx);
}
