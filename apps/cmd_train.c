/* cmd_train.c: `cnnkit train DATA [OPTIONS] -o MODEL.cnk` (see ../shared/CLI.md): parses the options and
 * runs pipeline/train.h; per-epoch lines and the progress bar go to stderr, the summary to stdout. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "pipeline/distributed.h"
#include "pipeline/fusion.h"
#include "pipeline/train.h"
#include "pipeline/transfer.h"

static const char *const usage_text =
    "Usage: cnnkit train DATA [OPTIONS] -o MODEL.cnk\n"
    "       cnnkit train --train DIR [--val DIR] --test DIR [OPTIONS] -o MODEL.cnk\n\n"
    "Trains a classifier on DATA: a folder with one subfolder per class (audio clips, images or .npy arrays),\n"
    "a folder with train/ and test/ (and val/) class folders, or a CSV file with a `label` column. With no\n"
    "options the data is split 0.6/0.1/0.3 (stratified, seeded), features are computed once and cached, and\n"
    "the model with the best validation loss is kept.\n\n"
    "Options:\n"
    "  -o, --output MODEL.cnk   the model file to write (required); the split goes to MODEL.cnk.split.csv and\n"
    "                           a resumable checkpoint to MODEL.cnk.ckpt\n"
    "  --input KIND             auto|mel|wavelet|mel+wavelet|image|csv|npy|idx (default auto: from the files)\n"
    "  --arch NAME|FILE.cfg     network (default: cnn5d for images, cnn4d for speech, cnn for other spectrograms,\n"
    "                           mlp for feature vectors)\n"
    "  --epochs N               (default 30 audio, 60 images, 150 feature vectors)\n"
    "  --batch-size N           (default 32; 16 for images and below 512 training inputs)\n"
    "  --lr X                   initial learning rate, cosine-decayed (default 0.001; images with sgd 0.05)\n"
    "  --optimizer NAME         adam|adamw|sgd (with momentum 0.9) (default adam)\n"
    "  --weight-decay X         (default 1e-4; images with sgd 5e-4)\n"
    "  --label-smoothing X      smooth the training targets by X in [0, 1) (default 0.1 for images and speech\n"
    "                           when the run plans at least 200 steps, 0 otherwise)\n"
    "  --tta flip|none          images: evaluate and predict on the mean of the image's and its mirror's\n"
    "                           probabilities (stored in the model; default flip)\n"
    "  --eval-crop F            images: evaluate and predict on the central fraction F in (0, 1] of each\n"
    "                           centre-cropped image, resized to the input size (stored in the model; training\n"
    "                           and its validation use the whole centre crop; default 0.9, 1 = whole)\n"
    "  --ema DECAY              validate, keep and save an exponential moving average of the weights, updated\n"
    "                           every step with this decay, at most 1 - 10 / the run's steps (default 0.995\n"
    "                           images and speech, 0 = off otherwise)\n"
    "  --mixup A                blend each training batch with itself reversed by lam ~ Beta(A, A), labels\n"
    "                           alike (A in (0, 1]; default 0: off)\n"
    "  --erase P                images: with probability P per training photo, set one random box of 2-25% of\n"
    "                           its area to the mean (random erasing; default 0: off)\n"
    "  --patience N             early stopping after N epochs without a better val loss (default 10, images 20,\n"
    "                           feature vectors 30; 0 = off)\n"
    "  --seed N                 seed of the split, initialisation, shuffling and augmentation (default 42)\n"
    "  --test-fraction F        (default 0.3)    --val-fraction F (default 0.1; speech 0: the last epoch's\n"
    "                           weight average is kept, as clips of the training voices say little about new ones)\n"
    "  --group-by REGEX         files whose names give the same first capture group stay on one side\n"
    "  --test-match REGEX       files whose names match form the test split\n"
    "  --train DIR --val DIR --test DIR   pre-split class folders\n"
    "  --segment SECONDS        audio segment length (default: 3 s for music-length clips, shorter clips: their\n"
    "                           95th-percentile length)\n"
    "  --sr HZ                  audio sample rate (default 22050, or the files' rate when lower)\n"
    "  --top-db DB              audio: bins more than DB below each clip's peak are raised to -DB (1-80, default 80;\n"
    "                           speech, i.e. short clips recorded below 22050 Hz: 40)\n"
    "  --trim-db DB             audio: drop leading/trailing frames DB below the peak (default off; speech 40;\n"
    "                           0 = off)\n"
    "  --lifter N               audio: keep N cepstral coefficients of each frame (default off; speech 20; 0 = off)\n"
    "  --center on|off          audio: a clip shorter than a segment sits in its middle (default off; speech on)\n"
    "  --clip-norm none|cmn|cmvn  audio: per-clip normalisation of each band (default none)\n"
    "  --image-size WxH         image input size (default 96x96); CSV: reshape rows into WxH images\n"
    "  --train-size N|WxH       images: keep the training photos at this size (centre crop resized to it) and cut\n"
    "                           the random-resized crops from it, resized to the input size: sharper training\n"
    "                           crops; validation, evaluation and predict are unchanged (the input size to 4 times\n"
    "                           it, its aspect ratio; default: 4/3 of the input size, 128 for 96; 0: the input size)\n"
    "  --report DIR             evaluate on the test split and write the report files into DIR\n"
    "  --resume CHECKPOINT      continue an interrupted run (same DATA, options and -o)\n"
    "  --cache DIR | --no-cache feature cache folder (default ~/.cache/cnnkit)\n"
    "  --threads N              (default: all cores; under mpirun, per rank: the cores / the ranks on a machine)\n"
    "  --from MODEL.cnk         transfer learning from a pretrained model (`cnnkit import`: MobileNet, YAMNet):\n"
    "                           a new head for DATA's classes on the backbone's cached outputs\n"
    "  --freeze backbone|none|N with --from: train the head only (default), everything, or all but the first N\n"
    "                           layers (none / N: after the head, --finetune-epochs, default --epochs)\n"
    "  --finetune-epochs E      with --from: a second phase of E epochs training the whole network but what\n"
    "                           --freeze keeps (backbone: all but the top --unfreeze N blocks, default 1) at\n"
    "  --unfreeze N             --finetune-lr X (default lr / 10)\n"
    "  --finetune-lr X\n"
    "  --input mel+wavelet --arch fusion [--fusion mean|weighted|concat]   late fusion of the mel and wavelet\n"
    "                           views of each segment (default concat)\n";

enum {
    OPT_INPUT = 256, OPT_ARCH, OPT_EPOCHS, OPT_BATCH, OPT_LR, OPT_OPTIMIZER, OPT_WD, OPT_PATIENCE, OPT_SEED,
    OPT_TEST_FRACTION, OPT_VAL_FRACTION, OPT_GROUP_BY, OPT_TEST_MATCH, OPT_TRAIN, OPT_VAL, OPT_TEST, OPT_SEGMENT,
    OPT_SR, OPT_IMAGE_SIZE, OPT_REPORT, OPT_RESUME, OPT_CACHE, OPT_NO_CACHE, OPT_THREADS, OPT_FROM, OPT_FREEZE,
    OPT_STOP_AFTER, OPT_FUSION, OPT_FINETUNE_EPOCHS, OPT_UNFREEZE, OPT_FINETUNE_LR, OPT_LABEL_SMOOTHING, OPT_TTA,
    OPT_EMA, OPT_MIXUP, OPT_ERASE, OPT_HELP,
    OPT_TOP_DB, OPT_TRIM_DB, OPT_LIFTER, OPT_CENTER, OPT_CLIP_NORM, OPT_EVAL_CROP, OPT_TRAIN_SIZE
};

static const struct option long_options[] = {
    {"output", required_argument, NULL, 'o'},
    {"input", required_argument, NULL, OPT_INPUT},
    {"arch", required_argument, NULL, OPT_ARCH},
    {"epochs", required_argument, NULL, OPT_EPOCHS},
    {"batch-size", required_argument, NULL, OPT_BATCH},
    {"lr", required_argument, NULL, OPT_LR},
    {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
    {"weight-decay", required_argument, NULL, OPT_WD},
    {"label-smoothing", required_argument, NULL, OPT_LABEL_SMOOTHING},
    {"tta", required_argument, NULL, OPT_TTA},
    {"eval-crop", required_argument, NULL, OPT_EVAL_CROP},
    {"ema", required_argument, NULL, OPT_EMA},
    {"mixup", required_argument, NULL, OPT_MIXUP},
    {"erase", required_argument, NULL, OPT_ERASE},
    {"patience", required_argument, NULL, OPT_PATIENCE},
    {"seed", required_argument, NULL, OPT_SEED},
    {"test-fraction", required_argument, NULL, OPT_TEST_FRACTION},
    {"val-fraction", required_argument, NULL, OPT_VAL_FRACTION},
    {"group-by", required_argument, NULL, OPT_GROUP_BY},
    {"test-match", required_argument, NULL, OPT_TEST_MATCH},
    {"train", required_argument, NULL, OPT_TRAIN},
    {"val", required_argument, NULL, OPT_VAL},
    {"test", required_argument, NULL, OPT_TEST},
    {"segment", required_argument, NULL, OPT_SEGMENT},
    {"sr", required_argument, NULL, OPT_SR},
    {"image-size", required_argument, NULL, OPT_IMAGE_SIZE},
    {"train-size", required_argument, NULL, OPT_TRAIN_SIZE},
    {"report", required_argument, NULL, OPT_REPORT},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"cache", required_argument, NULL, OPT_CACHE},
    {"no-cache", no_argument, NULL, OPT_NO_CACHE},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"from", required_argument, NULL, OPT_FROM},
    {"freeze", required_argument, NULL, OPT_FREEZE},
    {"stop-after", required_argument, NULL, OPT_STOP_AFTER}, /* undocumented: for tests of --resume */
    {"fusion", required_argument, NULL, OPT_FUSION},
    {"finetune-epochs", required_argument, NULL, OPT_FINETUNE_EPOCHS},
    {"unfreeze", required_argument, NULL, OPT_UNFREEZE},
    {"finetune-lr", required_argument, NULL, OPT_FINETUNE_LR},
    {"help", no_argument, NULL, OPT_HELP},
    {"top-db", required_argument, NULL, OPT_TOP_DB},
    {"trim-db", required_argument, NULL, OPT_TRIM_DB},
    {"lifter", required_argument, NULL, OPT_LIFTER},
    {"center", required_argument, NULL, OPT_CENTER},
    {"clip-norm", required_argument, NULL, OPT_CLIP_NORM},
    {NULL, 0, NULL, 0}};

static void on_epoch(void *user, const cnk_epoch_stats *st)
{
    (void)user;
    fprintf(stderr, "epoch %3d/%d  train loss %.4f acc %.3f", st->epoch, st->epochs, st->train_loss, st->train_acc);
    if (!isnan(st->val_loss)) fprintf(stderr, "  val loss %.4f acc %.3f", st->val_loss, st->val_acc);
    fprintf(stderr, "  lr %.2e  %.1fs%s\n", st->lr, st->seconds, st->improved ? "  *saved" : "");
}

/* The options cnk_train_option_set does not know (paths, names, the context's seed and threads) into opts /
 * ctx; returns -1 on a bad value. */
static int parse_option(int c, const char *arg, cnk_train_options *o, cnk_ctx *ctx)
{
    long n;
    switch (c) {
    case 'o': o->model_path = arg; return 0;
    case OPT_INPUT: o->input = arg; return 0;
    case OPT_ARCH: o->arch = arg; return 0;
    case OPT_OPTIMIZER: o->optimizer = arg; return 0;
    case OPT_GROUP_BY: o->group_by = arg; return 0;
    case OPT_TEST_MATCH: o->test_match = arg; return 0;
    case OPT_TRAIN: o->train_dir = arg; return 0;
    case OPT_VAL: o->val_dir = arg; return 0;
    case OPT_TEST: o->test_dir = arg; return 0;
    case OPT_REPORT: o->report_dir = arg; return 0;
    case OPT_RESUME: o->resume = arg; return 0;
    case OPT_CACHE: o->cache_dir = arg; return 0;
    case OPT_NO_CACHE: o->cache_dir = ""; return 0;
    case OPT_FROM: o->from = arg; return 0;
    case OPT_FREEZE: o->freeze = arg; return 0;
    case OPT_SEED: return cnk_parse_long(arg, 0, 0x7fffffffL, &n) ? -1 : (ctx->seed = (uint64_t)n, 0);
    case OPT_THREADS: return cnk_parse_long(arg, 1, 1024, &n) ? -1 : (ctx->threads = (int)n, 0);
    case OPT_STOP_AFTER: return cnk_parse_long(arg, 1, 100000, &n) ? -1 : (o->max_epochs_this_run = (int)n, 0);
    default: return -1;
    }
}

static void print_summary(const cnk_train_options *o, const cnk_train_result *res)
{
    printf("input: %s, architecture: %s\n", res->input, res->arch);
    printf("files: %zu train (%zu segments), %zu val, %zu test\n", res->n_train, res->n_train_segments, res->n_val,
           res->n_test);
    printf("epochs: %d (best %d%s)\n", res->epochs_run, res->best_epoch, res->stopped_early ? ", stopped early" : "");
    printf("time: features %.1f s (%zu files from the cache), training %.1f s\n", res->seconds_features,
           res->n_cached, res->seconds_training);
    if (!isnan(res->test_accuracy)) printf("test accuracy: %.4f\n", res->test_accuracy);
    printf("model: %s\n", o->model_path);
    if (o->report_dir) printf("report: %s/report.html\n", o->report_dir);
}

/* Rank 0's last words: the summary, or how to continue an interrupted run. */
static void print_outcome(const cnk_train_options *o, const cnk_train_result *res, const cnk_dist *dist, int threads)
{
    if (res->interrupted) {
        printf("stopped after %d epochs; continue with --resume %s.ckpt\n", res->epochs_run, o->model_path);
        return;
    }
    print_summary(o, res);
    if (dist->size > 1)
        printf("ranks: %d x %d thread(s); %zu gradient allreduces, %.1f s waiting in collectives on rank 0\n",
               dist->size, threads, dist->n_reductions, dist->comm_seconds);
}

/* The second phase of transfer learning (--finetune-epochs, --unfreeze, --finetune-lr). */
typedef struct finetune_options {
    int epochs; /* -1 = default */
    int unfreeze;
    double lr;
} finetune_options;

static int parse_finetune(int c, const char *arg, finetune_options *f)
{
    long n;
    double x;
    switch (c) {
    case OPT_FINETUNE_EPOCHS: return cnk_parse_long(arg, 0, 100000, &n) ? -1 : (f->epochs = (int)n, 0);
    case OPT_UNFREEZE: return cnk_parse_long(arg, 1, 100000, &n) ? -1 : (f->unfreeze = (int)n, 0);
    case OPT_FINETUNE_LR: return cnk_parse_double(arg, 1e-9, 10, &x) || x <= 0 ? -1 : (f->lr = x, 0);
    default: return -1;
    }
}

/* --from: transfer learning (pipeline/transfer.h). */
static int run_transfer(cnk_ctx *ctx, const cnk_train_options *opts, const finetune_options *f, cnk_train_result *res)
{
    cnk_transfer_options to;
    cnk_transfer_options_init(&to, opts);
    to.finetune_epochs = f->epochs;
    to.unfreeze = f->unfreeze;
    to.finetune_lr = f->lr;
    cnk_transfer_result tr;
    int rc = cnk_transfer_run(ctx, &to, &tr);
    *res = tr.train;
    if (rc || tr.train.interrupted) return rc; /* an interrupted run only says how to continue */
    printf("backbone: %s (%d features per segment), head trained in %.1f s\n", tr.backbone, tr.feature_dim,
           tr.seconds_head);
    if (tr.finetune_epochs_run)
        printf("fine-tuning: %d epochs in %.1f s (test accuracy after the head alone: %.4f)\n", tr.finetune_epochs_run,
               tr.seconds_finetune, tr.head_test_accuracy);
    return rc;
}

/* --input mel+wavelet / --arch fusion: late fusion (pipeline/fusion.h). */
static int run_fusion(cnk_ctx *ctx, const cnk_train_options *opts, const char *mode_name, cnk_train_result *res)
{
    cnk_fusion_mode mode = CNK_FUSION_DEFAULT;
    if (mode_name && cnk_fusion_mode_parse(mode_name, &mode))
        return cnk_fail(ctx, CNK_ERR_ARG, "--fusion %s: expected mean, weighted or concat", mode_name);
    cnk_fusion_result fr;
    int rc = cnk_fusion_run(ctx, opts, mode, &fr);
    *res = fr.train;
    if (!rc && !isnan(fr.mel_test_accuracy))
        printf("branches: mel %.4f, wavelet %.4f test accuracy alone\n", fr.mel_test_accuracy,
               fr.wavelet_test_accuracy);
    return rc;
}

/* Under `mpirun -np N` (pipeline/distributed.h) every rank trains its shard of each batch; rank 0 alone prints
 * and writes files, the other ranks keep quiet, and by default each rank takes its share of the cores. */
static int start_ranks(cnk_ctx *ctx, cnk_train_options *opts, int threads_given, int data_parallel, cnk_dist *dist)
{
    int rc = cnk_dist_init(ctx, dist);
    if (rc) return rc;
    if (dist->size > 1 && !data_parallel)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "--from (transfer learning) is not data-parallel: run it "
                                                  "without mpirun");
    if (!threads_given) ctx->threads = cnk_dist_default_threads(dist, ctx->threads);
    if (!cnk_dist_is_root(dist)) ctx->progress = NULL, ctx->warn = NULL, opts->on_epoch = NULL;
    opts->dist = dist;
    return CNK_OK;
}

/* A failed rank ends every rank (none may wait for it); then MPI is closed. Returns the exit code. */
static int end_ranks(cnk_dist *dist, int exit_code)
{
    if (exit_code != CLI_OK && exit_code != CLI_SKIPPED) cnk_dist_abort(dist, exit_code);
    cnk_dist_finalize(dist);
    return exit_code;
}

int cmd_train(int argc, char **argv)
{
    cnk_ctx ctx;
    cli_ctx_init(&ctx, "train");
    cnk_train_options opts;
    cnk_train_options_init(&opts);
    opts.on_epoch = on_epoch;
    optind = 1;
    opterr = 0;
    int c, threads_given = 0;
    const char *fusion = NULL;
    finetune_options finetune = {-1, 0, 0};
    int index = -1;
    while ((c = getopt_long(argc, argv, "o:h", long_options, &index)) != -1) {
        /* the flag as typed: argv[optind - 1] is its value when the value came as a separate argument */
        char flag[64];
        const char *name = index >= 0 ? long_options[index].name : NULL;
        snprintf(flag, sizeof flag, "-%s%s", name ? "-" : "", name ? name : "o");
        index = -1;
        threads_given |= c == OPT_THREADS;
        if (c == OPT_HELP || c == 'h') {
            fputs(usage_text, stdout);
            return CLI_OK;
        }
        if (c == OPT_FUSION) {
            fusion = optarg;
            continue;
        }
        if (c == OPT_FINETUNE_EPOCHS || c == OPT_UNFREEZE || c == OPT_FINETUNE_LR) {
            if (parse_finetune(c, optarg, &finetune))
                return cli_usage_error("train", "bad value '%s' for %s", optarg, flag);
            continue;
        }
        if (c == '?' || c == ':') return cli_usage_error("train", "unknown option or missing value: %s", argv[optind - 1]);
        int known = name ? cnk_train_option_set(&opts, name, optarg) : 1;
        if (known < 0 || (known > 0 && parse_option(c, optarg, &opts, &ctx)))
            return cli_usage_error("train", "bad value '%s' for %s", optarg, flag);
    }
    if (optind < argc) opts.data = argv[optind++];
    if (optind < argc) return cli_usage_error("train", "unexpected argument '%s'", argv[optind]);
    if (!opts.model_path) return cli_usage_error("train", "the model path is required: -o MODEL.cnk");
    if (!opts.data && !opts.train_dir) return cli_usage_error("train", "no DATA given");
    if (opts.data && opts.train_dir) return cli_usage_error("train", "give DATA or --train/--test, not both");
    if ((opts.train_dir != NULL) != (opts.test_dir != NULL))
        return cli_usage_error("train", "--train and --test go together");
    if ((opts.freeze || finetune.epochs >= 0 || finetune.unfreeze || finetune.lr > 0) && !opts.from)
        return cli_usage_error("train", "--freeze, --finetune-epochs, --unfreeze and --finetune-lr go with --from");
    int is_fusion = (opts.input && strcmp(opts.input, "mel+wavelet") == 0) ||
                    (opts.arch && strcmp(opts.arch, "fusion") == 0);
    if (fusion && !is_fusion) return cli_usage_error("train", "--fusion goes with --input mel+wavelet --arch fusion");
    cnk_dist dist;
    if (start_ranks(&ctx, &opts, threads_given, !opts.from, &dist))
        return end_ranks(&dist, cli_fail("train", &ctx, ctx.status));
    cnk_train_result res;
    int rc = opts.from ? run_transfer(&ctx, &opts, &finetune, &res)
             : is_fusion ? run_fusion(&ctx, &opts, fusion, &res)
                         : cnk_train_run(&ctx, &opts, &res);
    if (rc) return end_ranks(&dist, cli_fail("train", &ctx, rc));
    if (cnk_dist_is_root(&dist)) print_outcome(&opts, &res, &dist, ctx.threads);
    /* No rank exits before rank 0 has printed: mpirun ends the job when a rank exits with 1 (skipped files). */
    fflush(stdout);
    cnk_dist_barrier(&ctx, &dist);
    return end_ranks(&dist, cli_success(&ctx));
}
