/* cmd_summary.c: `cnnkit summary MODEL.cnk|FILE.cfg|BUILTIN` (see ../shared/CLI.md): prints each layer's
 * output shape and parameter count and the totals; `--write-cfg FILE` also saves the architecture as .cfg. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "core/fsutil.h"
#include "nn/arch.h"
#include "nn/builtin.h"
#include "nn/cfg.h"
#include "nn/modelfile.h"
#include "nn/summary.h"
#include "pipeline/preprocess.h"

static const char *const CMD = "summary";

static void print_help(void)
{
    char names[CNK_BUILTIN_NAMES_MAX];
    printf("Usage: cnnkit summary MODEL.cnk|FILE.cfg|ARCH [OPTIONS]\n\n"
           "Prints each layer of a network (name, kind, output shape, parameters, inputs) and the totals.\n"
           "ARCH is a built-in: %s.\n\n"
           "Options for built-ins:\n"
           "  --input CxHxW     input shape (default per network: mlp 1x28x28, cnn/fusion 1x128x128,\n"
           "                    mobilenets 3x224x224)\n"
           "  --input2 CxHxW    fusion: the wavelet input (default: same as --input)\n"
           "  --classes N       classifier units (default 10; mobilenets 1001)\n"
           "  --width W         mobilenets' width multiplier (default 1.0)\n"
           "  --folded-bn       mobilenets: conv with bias instead of conv + batchnorm (as in TFLite files)\n"
           "  --dropout R       dropout before the classifier (0 = none)\n"
           "Other options:\n"
           "  --write-cfg FILE  also write the architecture as a .cfg file\n"
           "  --help            this text\n\n"
           "Exit codes: 0 success, 2 usage error, 3 unreadable or invalid model/architecture file.\n",
           cnk_builtin_names_text(names, sizeof names));
}

static int parse_shape(const char *text, cnk_shape *shape)
{
    int c, h, w;
    char tail;
    if (sscanf(text, "%dx%dx%d%c", &c, &h, &w, &tail) != 3 || c < 1 || h < 1 || w < 1 || c > 100000 ||
        h > 100000 || w > 100000)
        return -1;
    *shape = (cnk_shape){c, h, w};
    return 0;
}

typedef struct summary_args {
    const char *target;
    const char *write_cfg;
    cnk_builtin_opts opts;
    int builtin_opts_given;
} summary_args;

/* Returns -1 on success (continue), else the exit code to return. */
static int parse_args(int argc, char **argv, summary_args *a)
{
    memset(a, 0, sizeof *a);
    cnk_builtin_opts_init(&a->opts);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        double d;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_help();
            return CLI_OK;
        }
        if (strcmp(arg, "--folded-bn") == 0) {
            a->opts.folded_bn = 1;
            a->builtin_opts_given = 1;
            continue;
        }
        int takes_value = strcmp(arg, "--input") == 0 || strcmp(arg, "--input2") == 0 ||
                          strcmp(arg, "--classes") == 0 || strcmp(arg, "--width") == 0 ||
                          strcmp(arg, "--dropout") == 0 || strcmp(arg, "--write-cfg") == 0;
        if (takes_value && !value) return cli_usage_error(CMD, "%s needs a value", arg);
        if (strcmp(arg, "--input") == 0 || strcmp(arg, "--input2") == 0) {
            if (parse_shape(value, strcmp(arg, "--input") == 0 ? &a->opts.input : &a->opts.input2))
                return cli_usage_error(CMD, "%s wants CxHxW (e.g. 1x128x128), got '%s'", arg, value);
        } else if (strcmp(arg, "--classes") == 0) {
            if (cnk_parse_long(value, 1, 1000000, &n)) return cli_usage_error(CMD, "bad --classes '%s'", value);
            a->opts.n_classes = (int)n;
        } else if (strcmp(arg, "--width") == 0) {
            if (cnk_parse_double(value, 0.01, 8, &d)) return cli_usage_error(CMD, "bad --width '%s'", value);
            a->opts.width = (float)d;
        } else if (strcmp(arg, "--dropout") == 0) {
            if (cnk_parse_double(value, 0, 0.99, &d)) return cli_usage_error(CMD, "bad --dropout '%s'", value);
            a->opts.dropout = d == 0 ? -1.0f : (float)d;
        } else if (strcmp(arg, "--write-cfg") == 0) {
            a->write_cfg = value;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return cli_usage_error(CMD, "unknown option '%s'", arg);
        } else {
            if (a->target) return cli_usage_error(CMD, "one MODEL.cnk, FILE.cfg or ARCH at a time");
            a->target = arg;
            continue;
        }
        if (strcmp(arg, "--write-cfg") != 0) a->builtin_opts_given = 1;
        i++;
    }
    if (!a->target) return cli_usage_error(CMD, "missing MODEL.cnk, FILE.cfg or ARCH");
    return -1;
}

/* 1 if path is named .cnk or starts with the .cnk magic. */
static int looks_like_model(const char *path)
{
    if (cnk_path_has_ext(path, "cnk")) return 1;
    if (!cnk_is_file(path)) return 0; /* a named pipe would block fopen; the cfg reader refuses it */
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    char magic[8];
    int yes = fread(magic, 1, 8, fp) == 8 && memcmp(magic, "CNKMODEL", 8) == 0;
    fclose(fp);
    return yes;
}

/* "\nInput: ..." after the title when the model carries the pipeline's preprocessing (imported networks
 * before training carry none). */
static void append_input_line(const cnk_modelfile *mf, const char *path, char *title, size_t cap)
{
    cnk_ctx quiet;
    cnk_ctx_init(&quiet);
    cnk_preprocess p;
    if (!mf->preprocess || !mf->preprocess[0] || cnk_preprocess_from_text(&quiet, mf->preprocess, path, &p)) return;
    char line[400];
    cnk_preprocess_describe(&p, line, sizeof line);
    size_t used = strlen(title);
    if (used < cap) snprintf(title + used, cap - used, "\nInput: %s", line);
}

static int load_target(cnk_ctx *ctx, const summary_args *a, cnk_arch *arch, char *title, size_t title_cap)
{
    if (looks_like_model(a->target)) {
        cnk_modelfile mf;
        int rc = cnk_modelfile_read(ctx, a->target, &mf);
        if (rc) return rc;
        rc = cnk_modelfile_arch(ctx, &mf, arch);
        snprintf(title, title_cap, "Model: %s (%d classes: %s%s)", a->target, mf.n_classes, mf.class_names[0],
                 mf.n_classes > 1 ? ", ..." : "");
        append_input_line(&mf, a->target, title, title_cap);
        cnk_modelfile_release(&mf);
        return rc;
    }
    if (cnk_is_file(a->target) || cnk_path_has_ext(a->target, "cfg")) {
        snprintf(title, title_cap, "Architecture: %s", a->target);
        return cnk_cfg_read_file(ctx, a->target, arch);
    }
    snprintf(title, title_cap, "Architecture: %s (built-in)", a->target);
    return cnk_builtin_arch(ctx, a->target, &a->opts, arch);
}

int cmd_summary(int argc, char **argv)
{
    summary_args a;
    int exit_code = parse_args(argc, argv, &a);
    if (exit_code >= 0) return exit_code;
    int names_a_file = cnk_is_file(a.target) || cnk_path_has_ext(a.target, "cnk") || cnk_path_has_ext(a.target, "cfg");
    char names[CNK_BUILTIN_NAMES_MAX];
    if (!names_a_file && !cnk_builtin_exists(a.target))
        return cli_usage_error(CMD, "'%s' is neither a file nor a built-in architecture (%s)", a.target,
                               cnk_builtin_names_text(names, sizeof names));
    if (names_a_file && a.builtin_opts_given)
        return cli_usage_error(CMD, "--input/--classes/--width/--folded-bn/--dropout apply to built-ins only");
    cnk_ctx ctx;
    cli_ctx_init(&ctx, CMD);
    cnk_arch arch;
    char title[1024];
    int rc = load_target(&ctx, &a, &arch, title, sizeof title);
    if (rc) return cli_fail(CMD, &ctx, rc);
    char *text = NULL;
    rc = cnk_summary_format(&ctx, &arch, title, &text);
    if (!rc && a.write_cfg) rc = cnk_cfg_write_file(&ctx, &arch, a.write_cfg);
    cnk_arch_release(&arch);
    if (rc) {
        free(text);
        return cli_fail(CMD, &ctx, rc);
    }
    fputs(text, stdout);
    free(text);
    return cli_success(&ctx);
}
