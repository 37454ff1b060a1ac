#include "pipeline/transfer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fsutil.h"
#include "core/npy.h"
#include "core/rng.h"
#include "nn/cfg.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/modelfile.h"
#include "nn/optim.h"
#include "pipeline/audio_params.h"
#include "pipeline/cache.h"
#include "pipeline/dataset.h"
#include "pipeline/featureset.h"
#include "pipeline/mel_image.h"
#include "pipeline/preprocess.h"
#include "pipeline/report.h"
#include "pipeline/split.h"
#include "pipeline/train.h"
#include "pipeline/transfer_internal.h"
#include "pipeline/yamnet.h"

enum { EXTRACT_CHUNK = 64, BACKBONE_BATCH = 16 };

void cnk_transfer_options_init(cnk_transfer_options *opts, const cnk_train_options *train)
{
    memset(opts, 0, sizeof *opts);
    opts->train = train;
    opts->finetune_epochs = -1;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- architecture helpers ---- */

int cnk_transfer_head_layer(const cnk_arch *arch)
{
    if (arch->n_outputs < 1) return -1;
    int l = arch->outputs[0];
    for (int guard = 0; l >= 0 && guard < arch->n_layers; guard++) {
        const cnk_layer *layer = &arch->layers[l];
        if (layer->kind == CNK_LAYER_DENSE) return l;
        if (layer->kind != CNK_LAYER_SOFTMAX && layer->kind != CNK_LAYER_ACTIVATION &&
            layer->kind != CNK_LAYER_DROPOUT && layer->kind != CNK_LAYER_FLATTEN)
            return -1;
        if (layer->n_inputs != 1) return -1;
        l = layer->inputs[0];
    }
    return -1;
}

static size_t prefix_len(const char *name)
{
    const char *u = strchr(name, '_');
    return u ? (size_t)(u - name) : strlen(name);
}

static int same_block(const cnk_layer *a, const cnk_layer *b)
{
    size_t n = prefix_len(a->name);
    return n == prefix_len(b->name) && strncmp(a->name, b->name, n) == 0;
}

int cnk_transfer_unfreeze_from(const cnk_arch *arch, int n_blocks)
{
    int feature = cnk_arch_feature_layer(arch);
    if (feature < 0) return arch->n_layers;
    int from = feature + 1;
    /* Parameter-free layers on top (global pooling) belong to no block. */
    int l = feature;
    while (l > 0 && arch->layers[l].n_params == 0 && arch->layers[l].kind != CNK_LAYER_INPUT) l--;
    for (int b = 0; b < n_blocks && l > 0 && arch->layers[l].kind != CNK_LAYER_INPUT; b++) {
        int start = l;
        while (start > 0 && same_block(&arch->layers[start - 1], &arch->layers[l]) &&
               arch->layers[start - 1].kind != CNK_LAYER_INPUT)
            start--;
        from = start;
        l = start - 1;
    }
    return from;
}

int cnk_transfer_parse_freeze(const char *text, int *frozen_layers)
{
    if (!text || strcmp(text, "backbone") == 0) {
        *frozen_layers = -1;
        return 0;
    }
    if (strcmp(text, "none") == 0) {
        *frozen_layers = 0;
        return 0;
    }
    char *end;
    long n = strtol(text, &end, 10);
    if (end == text || *end || n < 0 || n > CNK_MAX_LAYERS) return -1;
    *frozen_layers = (int)n;
    return 0;
}

/* ---- the run's state (pipeline/transfer_internal.h) ---- */

static void release_run(xfer_run *r)
{
    if (r->feats)
        for (size_t i = 0; i < r->ds.n_items; i++) free(r->feats[i]);
    cnk_dataset_release(&r->ds);
    cnk_modelfile_release(&r->from);
    cnk_arch_release(&r->arch);
    cnk_arch_release(&r->full);
    cnk_model_free(r->backbone);
    cnk_yamnet_free(r->yamnet);
    free(r->feats);
    free(r->n_seg);
    free(r->head_params);
    free(r->full_params);
    free(r->full_buffers);
    for (int s = 0; s < XFER_HIST_SERIES; s++) free(r->hist[s]);
    cnk_modelfile_release(&r->ck);
    cnk_array_release(&r->ck_state);
}

int cnk_transfer_push_history(xfer_run *r, double tl, double ta, double vl, double va)
{
    if (r->n_hist == r->hist_cap) {
        int cap = r->hist_cap ? r->hist_cap * 2 : 64;
        for (int s = 0; s < XFER_HIST_SERIES; s++) {
            double *grown = realloc(r->hist[s], (size_t)cap * sizeof *grown);
            if (!grown) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
            r->hist[s] = grown;
        }
        r->hist_cap = cap;
    }
    r->hist[0][r->n_hist] = tl, r->hist[1][r->n_hist] = ta, r->hist[2][r->n_hist] = vl, r->hist[3][r->n_hist] = va;
    r->n_hist++;
    return CNK_OK;
}

/* ---- loading the backbone ---- */

static int is_yamnet_text(const char *prep_text)
{
    const char *f = strstr(prep_text ? prep_text : "", "frontend=yamnet");
    return f && (f == prep_text || f[-1] == '\n');
}

/* The built-in family an imported network belongs to (nn/builtin.h's layer names), else the file's name. */
static const char *backbone_name(const cnk_arch *arch, const char *path)
{
    if (cnk_arch_find(arch, "block16_project") >= 0) return "mobilenet_v2";
    if (cnk_arch_find(arch, "block13_pw") >= 0) return "mobilenet_v1";
    return cnk_path_base(path);
}

static int load_backbone(xfer_run *r)
{
    cnk_ctx *ctx = r->ctx;
    const char *path = r->t->from;
    int rc = cnk_modelfile_read(ctx, path, &r->from);
    if (!rc) rc = cnk_modelfile_arch(ctx, &r->from, &r->arch);
    if (rc) return rc;
    if (r->arch.n_input_layers != 1)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: a backbone must have one input", path);
    r->feature_layer = cnk_arch_feature_layer(&r->arch);
    if (r->feature_layer < 0 || cnk_transfer_head_layer(&r->arch) < 0)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: no dense classifier on top to replace", path);
    const cnk_layer *f = &r->arch.layers[r->feature_layer];
    r->feat_dim = f->out.c * f->out.h * f->out.w;
    r->in = r->arch.layers[r->arch.input_layers[0]].input_shape;
    r->in_size = (size_t)r->in.c * r->in.h * r->in.w;
    r->is_yamnet = is_yamnet_text(r->from.preprocess);
    /* The backbone's identity for the cache: its architecture text and every weight. */
    cnk_cache_key key;
    cnk_cache_key_bytes(r->from.params, r->from.n_params * sizeof(float), r->from.arch_text, &key);
    cnk_cache_key_hex(&key, r->backbone_hex);
    snprintf(r->backbone_key, sizeof r->backbone_key, "transfer-backbone v1 %s layer=%s", r->backbone_hex, f->name);
    char name[256] = "";
    if (cnk_kv_get(ctx, r->from.preprocess, "arch_name", name, sizeof name) != CNK_OK || !name[0])
        snprintf(name, sizeof name, "%s", backbone_name(&r->arch, path));
    cnk_clear_error(ctx);
    snprintf(r->res->backbone, sizeof r->res->backbone, "%.63s", r->is_yamnet ? "yamnet" : name);
    r->res->feature_dim = r->feat_dim;
    return CNK_OK;
}

/* ---- data, split, what each file becomes ---- */

static int open_data(xfer_run *r)
{
    const cnk_train_options *t = r->t;
    cnk_dataset_options dopts;
    cnk_dataset_options_init(&dopts);
    if (t->input && strcmp(t->input, "image") == 0) dopts.kind = CNK_INPUT_IMAGE;
    if (t->input && strcmp(t->input, "mel") == 0) dopts.kind = CNK_INPUT_AUDIO;
    dopts.train_dir = t->train_dir;
    dopts.val_dir = t->val_dir;
    dopts.test_dir = t->test_dir;
    int rc = cnk_dataset_open(r->ctx, t->data, &dopts, &r->ds);
    if (rc) return rc;
    const char *name = t->data ? t->data : t->train_dir;
    if (r->ds.n_classes < 2)
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: found %zu class(es); training needs at least 2", name,
                        r->ds.n_classes);
    r->n_classes = (int)r->ds.n_classes;
    if (t->input && strcmp(t->input, "auto") && strcmp(t->input, "image") && strcmp(t->input, "mel"))
        return cnk_fail(r->ctx, CNK_ERR_ARG, "--input %s: transfer learning takes image or mel input", t->input);
    return CNK_OK;
}

static int choose_inputs(xfer_run *r)
{
    cnk_ctx *ctx = r->ctx;
    const char *from = r->t->from;
    if (r->ds.kind == CNK_INPUT_IMAGE) {
        if (r->is_yamnet) return cnk_fail(ctx, CNK_ERR_ARG, "%s: YAMNet is an audio network, the data are images", from);
        if (cnk_audio_overrides_any(&r->t->audio))
            return cnk_fail(ctx, CNK_ERR_ARG, "%s: --top-db, --trim-db, --lifter, --center and --clip-norm apply to "
                            "audio clips only", r->t->data ? r->t->data : r->t->train_dir);
        int rc = cnk_preprocess_from_text(ctx, r->from.preprocess, from, &r->prep);
        if (rc) return rc;
        if (r->prep.kind != CNK_PREP_IMAGE)
            return cnk_fail(ctx, CNK_ERR_ARG, "%s: not an image network (input %s)", from, cnk_prep_kind_name(r->prep.kind));
        r->prep.eval_crop = 0; /* the new model is evaluated as it is trained: transfer has no evaluation crop */
        return CNK_OK;
    }
    if (r->ds.kind != CNK_INPUT_AUDIO)
        return cnk_fail(ctx, CNK_ERR_ARG, "%s: transfer learning takes image or audio folders",
                        r->t->data ? r->t->data : r->t->train_dir);
    if (r->is_yamnet && cnk_audio_overrides_any(&r->t->audio))
        return cnk_fail(ctx, CNK_ERR_ARG, "%s: YAMNet brings its own log-mel front end; --top-db, --trim-db, "
                        "--lifter, --center and --clip-norm do not apply", from);
    if (r->is_yamnet) return CNK_OK; /* YAMNet brings its own front end */
    cnk_preprocess_defaults(&r->prep, CNK_PREP_MEL);
    cnk_audio_params_choose(&r->ds, r->t->sample_rate, r->t->segment_seconds, &r->prep);
    cnk_audio_overrides_apply(&r->t->audio, &r->prep);
    if (r->in.c != 3 && r->in.c != 1)
        return cnk_fail(ctx, CNK_ERR_ARG, "%s: input has %d channels; mel images need 1 or 3", from, r->in.c);
    r->mel_image = (cnk_mel_image){1, r->in.c, r->in.h, r->in.w};
    return CNK_OK;
}

static int assign_split(xfer_run *r)
{
    char split_path[4200];
    int rc = cnk_split_file_path(r->ctx, r->t->model_path, split_path, sizeof split_path);
    if (rc) return rc;
    if (r->t->resume) return cnk_split_read(r->ctx, split_path, &r->ds); /* the interrupted run's split */
    cnk_split_options so;
    cnk_split_options_init(&so);
    if (r->t->val_fraction >= 0) so.val_fraction = r->t->val_fraction;
    if (r->t->test_fraction >= 0) so.test_fraction = r->t->test_fraction;
    so.group_by = r->t->group_by;
    so.test_match = r->t->test_match;
    rc = cnk_split_assign(r->ctx, &r->ds, &so);
    if (!rc) rc = cnk_split_write(r->ctx, split_path, &r->ds);
    return rc;
}

static int wanted(const cnk_item *item)
{
    return item->label >= 0 && item->part >= CNK_PART_TRAIN && item->part <= CNK_PART_TEST;
}

/* ---- backbone outputs, cached per file ---- */

/* The model inputs of one decoded file: its segments (adapted to pictures for mel images). */
static size_t n_inputs_of(const xfer_run *r, const cnk_array *features)
{
    return cnk_preprocess_n_segments(&r->prep, features, 0);
}

static int input_of(xfer_run *r, const cnk_array *features, size_t seg, float *scratch, float *out)
{
    if (!r->mel_image.active) return cnk_preprocess_segment(r->ctx, &r->prep, features, seg, 0, out);
    int c, h, w;
    cnk_preprocess_input_shape(&r->prep, &c, &h, &w);
    int rc = cnk_preprocess_segment(r->ctx, &r->prep, features, seg, 0, scratch);
    if (!rc) cnk_mel_image_apply(&r->mel_image, scratch, h, w, out);
    return rc;
}

/* Backbone outputs of every segment of one decoded file into *out (n x feat_dim, malloc'd). */
static int backbone_outputs(xfer_run *r, const cnk_array *features, float *batch_x, float *scratch, float **out,
                            int *n_out)
{
    size_t n = n_inputs_of(r, features);
    float *dst = malloc((n ? n : 1) * (size_t)r->feat_dim * sizeof *dst);
    if (!dst) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory for backbone outputs");
    int rc = CNK_OK;
    for (size_t from = 0; from < n && !rc; from += BACKBONE_BATCH) {
        int bs = (int)(n - from < BACKBONE_BATCH ? n - from : BACKBONE_BATCH);
        for (int k = 0; k < bs && !rc; k++) rc = input_of(r, features, from + (size_t)k, scratch, batch_x + k * r->in_size);
        const float *inputs[1] = {batch_x};
        if (!rc)
            rc = cnk_model_features(r->ctx, r->backbone, inputs, bs, r->feature_layer, dst + from * (size_t)r->feat_dim);
    }
    if (rc) {
        free(dst);
        return rc;
    }
    *out = dst;
    *n_out = (int)n;
    return CNK_OK;
}

static void cache_key_text(const xfer_run *r, char *buf, size_t cap)
{
    char feature_key[512] = "", prep_extra[64] = "";
    if (!r->is_yamnet) {
        cnk_preprocess_feature_key(&r->prep, feature_key, sizeof feature_key);
        cnk_mel_image_to_text(&r->mel_image, prep_extra, sizeof prep_extra);
    }
    char norm[256] = "";
    size_t len = 0;
    for (int i = 0; i < r->prep.n_norm && len + 40 < sizeof norm; i++)
        len += (size_t)snprintf(norm + len, sizeof norm - len, "%.9g/%.9g,", (double)r->prep.mean[i],
                                (double)r->prep.std[i]);
    snprintf(buf, cap, "%s | %s seg=%d hop=%d fill=%d norm=%s %s", r->backbone_key,
             r->is_yamnet ? "yamnet-mean-embedding" : feature_key, r->prep.segment_frames, r->prep.segment_hop,
             r->prep.min_fill, norm, prep_extra);
}

static int cache_lookup(xfer_run *r, const cnk_cache *cache, const char *key_text, size_t i, int *found)
{
    *found = 0;
    cnk_cache_key key;
    cnk_ctx quiet = *r->ctx;
    if (!cache || cnk_cache_key_file(&quiet, r->ds.items[i].path, key_text, &key) != CNK_OK) return CNK_OK;
    cnk_array a = {0};
    int hit = 0;
    if (cnk_cache_get(&quiet, cache, &key, &a, &hit) != CNK_OK || !hit) return CNK_OK;
    if (a.ndim == 2 && a.shape[1] == (size_t)r->feat_dim && a.shape[0] >= 1 && a.shape[0] < (1u << 20)) {
        r->feats[i] = a.data;
        r->n_seg[i] = (int)a.shape[0];
        *found = 1;
        return CNK_OK;
    }
    cnk_array_release(&a);
    return CNK_OK;
}

static void cache_store(xfer_run *r, const cnk_cache *cache, const char *key_text, size_t i)
{
    cnk_cache_key key;
    cnk_ctx quiet = *r->ctx;
    if (!cache || cnk_cache_key_file(&quiet, r->ds.items[i].path, key_text, &key) != CNK_OK) return;
    size_t shape[2] = {(size_t)r->n_seg[i], (size_t)r->feat_dim};
    cnk_cache_put(&quiet, cache, &key, r->feats[i], 2, shape); /* a failed write only costs speed */
}

/* Decodes the files of one chunk (in parallel) and runs the backbone on them. */
static int compute_chunk(xfer_run *r, const size_t *items, size_t n, float *batch_x, float *scratch)
{
    const char **paths = malloc(n * sizeof *paths);
    if (!paths) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < n; k++) paths[k] = r->ds.items[items[k]].path;
    cnk_featureset fs;
    cnk_ctx quiet = *r->ctx;
    quiet.progress = NULL;
    /* Decoded images are large and only needed once: only spectrograms go to the feature cache. */
    const char *decode_cache = r->prep.kind == CNK_PREP_IMAGE ? "" : r->t->cache_dir;
    int rc = cnk_featureset_compute_paths(&quiet, (const char *const *)paths, n, &r->prep, decode_cache, &fs);
    r->ctx->n_warnings = quiet.n_warnings;
    free(paths);
    if (rc) return rc;
    for (size_t k = 0; k < n && !rc; k++) {
        if (!fs.features[k].data) continue;
        rc = backbone_outputs(r, &fs.features[k], batch_x, scratch, &r->feats[items[k]], &r->n_seg[items[k]]);
    }
    cnk_featureset_release(&fs);
    return rc;
}

static int compute_yamnet_item(xfer_run *r, size_t i, float *scores)
{
    float *emb = malloc(CNK_YAMNET_EMBEDDING * sizeof *emb);
    if (!emb) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    int rc = cnk_yamnet_classify_file(r->ctx, r->yamnet, r->ds.items[i].path, scores, emb);
    if (rc == CNK_ERR_NOMEM) {
        free(emb);
        return rc;
    }
    if (rc) {
        cnk_warn(r->ctx, "%s", cnk_error(r->ctx));
        cnk_clear_error(r->ctx);
        free(emb);
        return CNK_OK;
    }
    r->feats[i] = emb;
    r->n_seg[i] = 1;
    return CNK_OK;
}

static int create_extractor(xfer_run *r, float **batch_x, float **scratch, float **scores)
{
    if (r->is_yamnet) {
        int rc = cnk_yamnet_create(r->ctx, r->t->from, &r->yamnet);
        if (rc) return rc;
        *scores = malloc((size_t)cnk_yamnet_n_classes(r->yamnet) * sizeof **scores);
        return *scores ? CNK_OK : cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    }
    int rc = cnk_model_create(r->ctx, &r->arch, BACKBONE_BATCH, &r->backbone);
    if (rc) return rc;
    memcpy(cnk_model_params(r->backbone), r->from.params, r->from.n_params * sizeof(float));
    memcpy(cnk_model_buffers(r->backbone), r->from.buffers, r->from.n_buffers * sizeof(float));
    int c, h, w;
    cnk_preprocess_input_shape(&r->prep, &c, &h, &w);
    *batch_x = malloc(BACKBONE_BATCH * r->in_size * sizeof **batch_x);
    *scratch = malloc(((size_t)c * h * w + 1) * sizeof **scratch);
    if (!*batch_x || !*scratch) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    if (!r->mel_image.active && (size_t)c * h * w != r->in_size)
        return cnk_fail(r->ctx, CNK_ERR_INPUT, "%s: its preprocessing gives %dx%dx%d, the network takes %dx%dx%d",
                        r->t->from, c, h, w, r->in.c, r->in.h, r->in.w);
    return CNK_OK;
}

static int extract_all(xfer_run *r)
{
    size_t n = r->ds.n_items;
    r->feats = calloc(n ? n : 1, sizeof *r->feats);
    r->n_seg = calloc(n ? n : 1, sizeof *r->n_seg);
    size_t *todo = malloc((n ? n : 1) * sizeof *todo);
    float *batch_x = NULL, *scratch = NULL, *scores = NULL;
    int rc = r->feats && r->n_seg && todo ? CNK_OK : cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    if (!rc) rc = create_extractor(r, &batch_x, &scratch, &scores);
    cnk_cache cache;
    const cnk_cache *cp = NULL;
    const char *cdir = r->t->cache_dir;
    cnk_ctx quiet = *r->ctx;
    if (!rc && (!cdir || cdir[0]) && cnk_cache_init(&quiet, &cache, cdir) == CNK_OK) cp = &cache;
    char key_text[1200];
    cache_key_text(r, key_text, sizeof key_text);
    size_t total = 0, done = 0;
    for (size_t i = 0; i < n; i++) total += wanted(&r->ds.items[i]);
    for (size_t from = 0; from < n && !rc; from += EXTRACT_CHUNK) {
        size_t to = from + EXTRACT_CHUNK < n ? from + EXTRACT_CHUNK : n, n_todo = 0;
        for (size_t i = from; i < to && !rc; i++) {
            if (!wanted(&r->ds.items[i])) continue;
            int found;
            rc = cache_lookup(r, cp, key_text, i, &found);
            if (found) r->res->n_backbone_cached++;
            else todo[n_todo++] = i;
            done++;
        }
        if (!rc && r->is_yamnet)
            for (size_t k = 0; k < n_todo && !rc; k++) rc = compute_yamnet_item(r, todo[k], scores);
        else if (!rc && n_todo)
            rc = compute_chunk(r, todo, n_todo, batch_x, scratch);
        for (size_t k = 0; k < n_todo && !rc; k++)
            if (r->feats[todo[k]]) {
                r->res->n_backbone_computed++;
                cache_store(r, cp, key_text, todo[k]);
            }
        cnk_progress(r->ctx, "backbone", done, total, NULL);
    }
    free(todo);
    free(batch_x);
    free(scratch);
    free(scores);
    return rc;
}

/* ---- the head, trained on backbone outputs ---- */

static int build_head_arch(cnk_ctx *ctx, int feat_dim, int n_classes, float dropout, cnk_arch *arch)
{
    cnk_arch_init(arch);
    cnk_layer l;
    cnk_layer_init(&l, CNK_LAYER_INPUT);
    snprintf(l.name, sizeof l.name, "features");
    l.input_shape = (cnk_shape){feat_dim, 1, 1};
    int rc = cnk_arch_add(ctx, arch, &l, NULL);
    cnk_layer_init(&l, CNK_LAYER_DROPOUT);
    snprintf(l.name, sizeof l.name, "dropout");
    l.rate = dropout;
    if (!rc) rc = cnk_arch_add(ctx, arch, &l, NULL);
    cnk_layer_init(&l, CNK_LAYER_DENSE);
    snprintf(l.name, sizeof l.name, "logits");
    l.units = n_classes;
    if (!rc) rc = cnk_arch_add(ctx, arch, &l, NULL);
    if (!rc) rc = cnk_arch_infer(ctx, arch);
    return rc;
}

static int collect_samples(xfer_run *r, int part, int **s_item, int **s_seg, size_t *n)
{
    size_t count = 0;
    for (size_t i = 0; i < r->ds.n_items; i++)
        if (r->feats[i] && r->ds.items[i].part == part) count += (size_t)r->n_seg[i];
    *s_item = malloc((count + 1) * sizeof **s_item);
    *s_seg = malloc((count + 1) * sizeof **s_seg);
    if (!*s_item || !*s_seg) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    *n = 0;
    for (size_t i = 0; i < r->ds.n_items; i++)
        if (r->feats[i] && r->ds.items[i].part == part)
            for (int s = 0; s < r->n_seg[i]; s++) (*s_item)[*n] = (int)i, (*s_seg)[(*n)++] = s;
    return CNK_OK;
}

/* Clip-level evaluation of the head on one part: mean segment softmax per clip. Fills (when not NULL) the
 * items, predictions and probabilities of the n clips; returns mean segment loss and clip accuracy. */
typedef struct part_eval {
    size_t n;
    int *items, *y_true, *y_pred;
    double *proba;
    double loss, accuracy;
} part_eval;

static void part_eval_release(part_eval *e)
{
    free(e->items);
    free(e->y_true);
    free(e->y_pred);
    free(e->proba);
    memset(e, 0, sizeof *e);
}

static int part_eval_alloc(xfer_run *r, int part, part_eval *e)
{
    memset(e, 0, sizeof *e);
    size_t n = 0;
    for (size_t i = 0; i < r->ds.n_items; i++) n += r->feats[i] && r->ds.items[i].part == part;
    e->items = malloc((n + 1) * sizeof *e->items);
    e->y_true = malloc((n + 1) * sizeof *e->y_true);
    e->y_pred = malloc((n + 1) * sizeof *e->y_pred);
    e->proba = calloc(n * (size_t)r->n_classes + 1, sizeof *e->proba);
    if (!e->items || !e->y_true || !e->y_pred || !e->proba) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < r->ds.n_items; i++)
        if (r->feats[i] && r->ds.items[i].part == part) {
            e->items[e->n] = (int)i;
            e->y_true[e->n++] = r->ds.items[i].label;
        }
    return CNK_OK;
}

/* Turns summed segment probabilities into clip means, predictions and accuracy. */
static void part_eval_finish(part_eval *e, const int *seg_count, int n_classes, double loss_sum, size_t n_segments)
{
    size_t correct = 0, C = (size_t)n_classes;
    for (size_t k = 0; k < e->n; k++) {
        int best = 0;
        for (size_t c = 0; c < C; c++) {
            e->proba[k * C + c] /= seg_count[k] > 0 ? seg_count[k] : 1;
            if (e->proba[k * C + c] > e->proba[k * C + (size_t)best]) best = (int)c;
        }
        e->y_pred[k] = best;
        correct += best == e->y_true[k];
    }
    e->loss = n_segments ? loss_sum / (double)n_segments : NAN;
    e->accuracy = e->n ? (double)correct / (double)e->n : NAN;
}

static int eval_head(xfer_run *r, head_trainer *h, int part, part_eval *e)
{
    int rc = part_eval_alloc(r, part, e);
    int *seg_count = calloc(e->n + 1, sizeof *seg_count);
    if (!rc && !seg_count) rc = cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    size_t C = (size_t)r->n_classes, F = (size_t)r->feat_dim, n_segments = 0;
    double loss_sum = 0;
    for (size_t k = 0; k < e->n && !rc; k++) {
        int item = e->items[k];
        for (int from = 0; from < r->n_seg[item] && !rc; from += r->batch) {
            int bs = r->n_seg[item] - from < r->batch ? r->n_seg[item] - from : r->batch;
            const float *inputs[1] = {r->feats[item] + (size_t)from * F};
            rc = cnk_model_forward(r->ctx, h->model, inputs, bs, CNK_MODE_INFER);
            if (rc) break;
            for (int b = 0; b < bs; b++) h->y[b] = e->y_true[k];
            loss_sum += bs * cnk_loss_softmax_ce(cnk_model_output(h->model, 0, NULL), h->y, bs, r->n_classes,
                                                 h->probs, NULL);
            n_segments += (size_t)bs;
            for (int b = 0; b < bs; b++)
                for (size_t c = 0; c < C; c++) e->proba[k * C + c] += h->probs[(size_t)b * C + c];
            seg_count[k] += bs;
        }
    }
    if (!rc) part_eval_finish(e, seg_count, r->n_classes, loss_sum, n_segments);
    free(seg_count);
    return rc;
}

static int argmax_f(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static int head_epoch(xfer_run *r, head_trainer *h, int epoch, float lr, double *loss, double *acc)
{
    cnk_rng rng;
    cnk_rng_seed(&rng, r->ctx->seed, 7000 + (uint64_t)epoch);
    cnk_model_set_seed(h->model, r->ctx->seed * 31 + (uint64_t)epoch);
    for (size_t i = 0; i < h->n_samples; i++) h->order[i] = (int)i;
    cnk_rng_shuffle(&rng, h->order, (int)h->n_samples);
    size_t F = (size_t)r->feat_dim, seen = 0, correct = 0;
    double loss_sum = 0;
    for (size_t from = 0; from < h->n_samples; from += (size_t)r->batch) {
        int bs = (int)(h->n_samples - from < (size_t)r->batch ? h->n_samples - from : (size_t)r->batch);
        for (int k = 0; k < bs; k++) {
            int s = h->order[from + (size_t)k];
            memcpy(h->x + (size_t)k * F, r->feats[h->s_item[s]] + (size_t)h->s_seg[s] * F, F * sizeof(float));
            h->y[k] = r->ds.items[h->s_item[s]].label;
        }
        const float *inputs[1] = {h->x};
        int rc = cnk_model_forward(r->ctx, h->model, inputs, bs, CNK_MODE_TRAIN);
        if (rc) return rc;
        double l = cnk_loss_softmax_ce(cnk_model_output(h->model, 0, NULL), h->y, bs, r->n_classes, h->probs,
                                       h->dlogits);
        if (!isfinite(l)) return cnk_fail(r->ctx, CNK_ERR_INPUT, "head training diverged (loss %g): try a lower --lr", l);
        cnk_model_zero_grad(h->model);
        const float *douts[1] = {h->dlogits};
        rc = cnk_model_backward(r->ctx, h->model, douts);
        if (rc) return rc;
        cnk_optim_step(h->opt, cnk_model_params(h->model), cnk_model_grads(h->model), NULL, 0, lr, r->ctx->threads);
        loss_sum += l * bs;
        seen += (size_t)bs;
        for (int k = 0; k < bs; k++) correct += argmax_f(h->probs + (size_t)k * r->n_classes, r->n_classes) == h->y[k];
    }
    *loss = seen ? loss_sum / (double)seen : NAN;
    *acc = seen ? (double)correct / (double)seen : NAN;
    return CNK_OK;
}

static void head_trainer_free(head_trainer *h)
{
    cnk_model_free(h->model);
    cnk_optim_free(h->opt);
    free(h->order);
    free(h->s_item);
    free(h->s_seg);
    free(h->x);
    free(h->dlogits);
    free(h->probs);
    free(h->y);
}

static int head_trainer_init(xfer_run *r, head_trainer *h)
{
    memset(h, 0, sizeof *h);
    cnk_arch arch;
    int rc = build_head_arch(r->ctx, r->feat_dim, r->n_classes, 0.2f, &arch);
    if (!rc) rc = cnk_model_create(r->ctx, &arch, r->batch, &h->model);
    cnk_arch_release(&arch);
    if (rc) return rc;
    cnk_model_init_params(h->model, r->ctx->seed);
    cnk_optim_config oc;
    cnk_optim_config_init(&oc, CNK_OPTIM_ADAM);
    oc.lr = (float)r->lr;
    oc.weight_decay = (float)r->weight_decay;
    rc = cnk_optim_create(r->ctx, &oc, cnk_model_arch(h->model)->n_params, &h->opt);
    if (!rc) rc = collect_samples(r, CNK_PART_TRAIN, &h->s_item, &h->s_seg, &h->n_samples);
    if (rc) return rc;
    if (h->n_samples == 0) return cnk_fail(r->ctx, CNK_ERR_INPUT, "no training data could be read");
    size_t B = (size_t)r->batch, C = (size_t)r->n_classes;
    h->order = malloc(h->n_samples * sizeof *h->order);
    h->x = malloc(B * (size_t)r->feat_dim * sizeof *h->x);
    h->dlogits = malloc(B * C * sizeof *h->dlogits);
    h->probs = malloc(B * C * sizeof *h->probs);
    h->y = malloc(B * sizeof *h->y);
    r->head_params = calloc(cnk_model_arch(h->model)->n_params, sizeof *r->head_params);
    if (!h->order || !h->x || !h->dlogits || !h->probs || !h->y || !r->head_params)
        return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    return CNK_OK;
}

static int has_part(const xfer_run *r, int part)
{
    for (size_t i = 0; i < r->ds.n_items; i++)
        if (r->feats[i] && r->ds.items[i].part == part) return 1;
    return 0;
}

static void report_epoch(xfer_run *r, int epoch, int epochs, double tl, double ta, double vl, double va, double lr,
                         double seconds, int improved)
{
    if (!r->t->on_epoch) return;
    cnk_epoch_stats st = {.epoch = epoch, .epochs = epochs, .train_loss = tl, .train_acc = ta, .val_loss = vl,
                          .val_acc = va, .lr = lr, .seconds = seconds, .improved = improved};
    r->t->on_epoch(r->t->user, &st);
}

/* --stop-after: this process has run its share of epochs; the checkpoint holds the state. */
static int stop_here(xfer_run *r)
{
    int max = r->t->max_epochs_this_run;
    if (max <= 0 || r->run_epochs < max) return 0;
    r->res->train.interrupted = 1;
    return 1;
}

/* One epoch of the head, its validation, the kept head and the checkpoint. */
static int head_step(xfer_run *r, head_trainer *h, int epoch, float lr, int has_val)
{
    double t0 = now_seconds(), tl = NAN, ta = NAN;
    size_t n_params = cnk_model_arch(h->model)->n_params;
    int rc = head_epoch(r, h, epoch, lr, &tl, &ta);
    part_eval val = {0};
    val.loss = val.accuracy = NAN;
    if (!rc && has_val) rc = eval_head(r, h, CNK_PART_VAL, &val);
    if (rc) {
        part_eval_release(&val);
        return rc;
    }
    double score = has_val ? val.loss : -(double)epoch;
    int improved = score < r->best_score - (has_val ? 1e-4 : 0);
    if (improved) {
        r->best_score = score;
        r->best_epoch = epoch + 1;
        r->bad_epochs = 0;
        memcpy(r->head_params, cnk_model_params(h->model), n_params * sizeof(float));
    } else {
        r->bad_epochs++;
    }
    rc = cnk_transfer_push_history(r, tl, ta, val.loss, val.accuracy);
    report_epoch(r, epoch + 1, r->epochs, tl, ta, val.loss, val.accuracy, lr, now_seconds() - t0, improved);
    r->res->train.epochs_run = epoch + 1;
    if (improved) r->res->train.best_epoch = epoch + 1, r->res->train.best_val_loss = score;
    part_eval_release(&val);
    r->run_epochs++;
    return rc ? rc : cnk_transfer_ckpt_save_head(r, h, r->n_hist);
}

static int train_head(xfer_run *r)
{
    head_trainer h;
    int rc = head_trainer_init(r, &h);
    int has_val = !rc && has_part(r, CNK_PART_VAL);
    cnk_lr_schedule sched = {.kind = CNK_LR_COSINE, .base_lr = (float)r->lr, .total = r->epochs,
                             .min_lr = (float)(r->lr * 0.02)};
    r->best_score = INFINITY;
    r->best_epoch = r->bad_epochs = 0;
    int start = 0;
    if (!rc && r->resume_phase == 1) {
        rc = cnk_transfer_ckpt_load_head(r, &h);
        start = r->start_epoch;
    }
    for (int epoch = start; !rc; epoch++) {
        /* checked before the epoch range, so a resumed run that had stopped early says so too */
        if (r->patience > 0 && r->bad_epochs >= r->patience) {
            r->res->train.stopped_early = 1;
            break;
        }
        if (epoch >= r->epochs || stop_here(r)) break;
        rc = head_step(r, &h, epoch, cnk_lr_at(&sched, epoch), has_val);
    }
    if (!rc && !r->res->train.interrupted) {
        memcpy(cnk_model_params(h.model), r->head_params, cnk_model_arch(h.model)->n_params * sizeof(float));
        part_eval test = {0};
        r->res->head_test_accuracy = NAN;
        if (has_part(r, CNK_PART_TEST)) {
            rc = eval_head(r, &h, CNK_PART_TEST, &test);
            if (!rc) r->res->head_test_accuracy = test.accuracy;
        }
        part_eval_release(&test);
    }
    head_trainer_free(&h);
    return rc;
}

/* ---- the whole network: backbone + new head ---- */

static int copy_layer(const cnk_arch *dst_arch, float *dst, float *dst_buf, int dl, const cnk_arch *src_arch,
                      const float *src, const float *src_buf, int sl)
{
    cnk_tensor_spec ds[CNK_MAX_LAYER_TENSORS], ss[CNK_MAX_LAYER_TENSORS];
    int nd = cnk_arch_layer_tensors(dst_arch, dl, ds), ns = cnk_arch_layer_tensors(src_arch, sl, ss);
    if (nd != ns) return -1;
    for (int k = 0; k < nd; k++)
        if (ds[k].count != ss[k].count || ds[k].is_buffer != ss[k].is_buffer) return -1;
    for (int k = 0; k < nd; k++) {
        float *d = ds[k].is_buffer ? dst_buf + ds[k].offset : dst + ds[k].offset;
        const float *s = ss[k].is_buffer ? src_buf + ss[k].offset : src + ss[k].offset;
        memcpy(d, s, ds[k].count * sizeof(float));
    }
    return 0;
}

static int assemble(xfer_run *r)
{
    cnk_ctx *ctx = r->ctx;
    int rc = cnk_arch_copy(ctx, &r->full, &r->arch);
    if (!rc) rc = cnk_arch_set_classes(ctx, &r->full, r->n_classes);
    if (rc) return rc;
    int head = cnk_transfer_head_layer(&r->full);
    r->full_params = calloc(r->full.n_params + 1, sizeof(float));
    r->full_buffers = calloc(r->full.n_buffers + 1, sizeof(float));
    if (!r->full_params || !r->full_buffers) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory for the network");
    for (int l = 0; l < r->full.n_layers; l++) {
        if (l == head || r->full.layers[l].n_params + r->full.layers[l].n_buffers == 0) continue;
        int sl = cnk_arch_find(&r->arch, r->full.layers[l].name);
        if (sl < 0 || copy_layer(&r->full, r->full_params, r->full_buffers, l, &r->arch, r->from.params,
                                 r->from.buffers, sl))
            return cnk_fail(ctx, CNK_ERR_INTERNAL, "transfer: layer '%s' does not match the backbone",
                            r->full.layers[l].name);
    }
    const cnk_layer *h = &r->full.layers[head];
    size_t expect = (size_t)r->n_classes * ((size_t)r->feat_dim + 1);
    if (h->n_params != expect)
        return cnk_fail(ctx, CNK_ERR_INTERNAL, "transfer: head has %zu parameters, expected %zu", h->n_params, expect);
    memcpy(r->full_params + h->param_offset, r->head_params, expect * sizeof(float));
    return CNK_OK;
}

int cnk_transfer_model_text(xfer_run *r, char **out)
{
    char *base = NULL;
    int rc = CNK_OK;
    if (r->ds.kind == CNK_INPUT_IMAGE || r->is_yamnet) {
        base = strdup(r->from.preprocess ? r->from.preprocess : "");
        if (!base) rc = cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    } else {
        rc = cnk_preprocess_to_text(r->ctx, &r->prep, &base);
    }
    if (rc) return rc;
    /* Drop the backbone's arch_name and output lines: the new head is a softmax classifier. */
    char extra[512], mel[64];
    cnk_mel_image_to_text(&r->mel_image, mel, sizeof mel);
    snprintf(extra, sizeof extra, "%sarch_name=transfer:%s\ntransfer_backbone=%s\n", mel, r->res->backbone,
             cnk_path_base(r->t->from));
    size_t cap = strlen(base) + strlen(extra) + 2, len = 0;
    char *text = malloc(cap);
    if (!text) {
        free(base);
        return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    }
    for (char *line = base; line && *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);
        if (strncmp(line, "arch_name=", 10) && strncmp(line, "output=", 7)) {
            memcpy(text + len, line, n);
            len += n;
            if (!nl) text[len++] = '\n';
        }
        line = nl ? nl + 1 : NULL;
    }
    memcpy(text + len, extra, strlen(extra) + 1);
    free(base);
    *out = text;
    return CNK_OK;
}

static int save_model(xfer_run *r)
{
    char *arch_text = NULL, *prep_text = NULL;
    int rc = cnk_cfg_write(r->ctx, &r->full, &arch_text);
    if (!rc) rc = cnk_transfer_model_text(r, &prep_text);
    if (!rc) {
        cnk_modelfile mf = {.arch_text = arch_text,
                            .class_names = r->ds.classes,
                            .n_classes = r->n_classes,
                            .preprocess = prep_text,
                            .params = r->full_params,
                            .n_params = r->full.n_params,
                            .buffers = r->full_buffers,
                            .n_buffers = r->full.n_buffers};
        rc = cnk_modelfile_write(r->ctx, r->t->model_path, &mf);
    }
    free(arch_text);
    free(prep_text);
    return rc;
}

/* ---- phase two: fine-tuning the whole network on decoded inputs ---- */

static void tuner_free(tuner *t)
{
    cnk_model_free(t->model);
    cnk_optim_free(t->opt);
    free(t->x);
    free(t->scratch);
    free(t->dlogits);
    free(t->probs);
    free(t->y);
    free(t->best_params);
    free(t->best_buffers);
}

/* Decodes the given items in parallel (no cache for images) into fs. */
static int decode_items(xfer_run *r, const int *items, int n, cnk_featureset *fs)
{
    const char **paths = malloc((size_t)(n > 0 ? n : 1) * sizeof *paths);
    if (!paths) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    for (int k = 0; k < n; k++) paths[k] = r->ds.items[items[k]].path;
    cnk_ctx quiet = *r->ctx;
    quiet.progress = NULL;
    quiet.warn = NULL; /* files that fail were already reported while extracting */
    const char *decode_cache = r->prep.kind == CNK_PREP_IMAGE ? "" : r->t->cache_dir;
    int rc = cnk_featureset_compute_paths(&quiet, (const char *const *)paths, (size_t)n, &r->prep, decode_cache, fs);
    free(paths);
    if (rc) cnk_fail(r->ctx, rc, "%s", cnk_error(&quiet));
    return rc;
}

static int tune_step(xfer_run *r, tuner *t, int bs, float lr, double *loss_sum, size_t *correct)
{
    const float *inputs[1] = {t->x};
    int rc = cnk_model_forward(r->ctx, t->model, inputs, bs, CNK_MODE_TRAIN);
    if (rc) return rc;
    double l = cnk_loss_softmax_ce(cnk_model_output(t->model, 0, NULL), t->y, bs, r->n_classes, t->probs, t->dlogits);
    if (!isfinite(l)) return cnk_fail(r->ctx, CNK_ERR_INPUT, "fine-tuning diverged (loss %g): try a lower --finetune-lr", l);
    cnk_model_zero_grad(t->model);
    const float *douts[1] = {t->dlogits};
    rc = cnk_model_backward(r->ctx, t->model, douts);
    if (rc) return rc;
    int n_ranges;
    const cnk_param_range *ranges = cnk_model_trainable_ranges(t->model, &n_ranges);
    cnk_optim_step(t->opt, cnk_model_params(t->model), cnk_model_grads(t->model), ranges, n_ranges, lr, r->ctx->threads);
    *loss_sum += l * bs;
    for (int k = 0; k < bs; k++) *correct += argmax_f(t->probs + (size_t)k * r->n_classes, r->n_classes) == t->y[k];
    return CNK_OK;
}

static int tune_epoch(xfer_run *r, tuner *t, const int *s_item, const int *s_seg, size_t n, int epoch, float lr,
                      double *loss, double *acc)
{
    int *order = malloc((n + 1) * sizeof *order), *batch_items = malloc((size_t)r->batch * sizeof *batch_items);
    if (!order || !batch_items) {
        free(order);
        free(batch_items);
        return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) order[i] = (int)i;
    cnk_rng rng;
    cnk_rng_seed(&rng, r->ctx->seed, 9000 + (uint64_t)epoch);
    cnk_rng_shuffle(&rng, order, (int)n);
    cnk_model_set_seed(t->model, r->ctx->seed * 131 + (uint64_t)epoch);
    double loss_sum = 0;
    size_t correct = 0, seen = 0;
    int rc = CNK_OK;
    size_t n_batches = (n + (size_t)r->batch - 1) / (size_t)r->batch;
    for (size_t b = 0; b < n_batches && !rc; b++) {
        size_t from = b * (size_t)r->batch;
        int bs = (int)(n - from < (size_t)r->batch ? n - from : (size_t)r->batch);
        for (int k = 0; k < bs; k++) batch_items[k] = s_item[order[from + (size_t)k]];
        cnk_featureset fs;
        rc = decode_items(r, batch_items, bs, &fs);
        int decoded = !rc, filled = 0;
        for (int k = 0; k < bs && !rc; k++) {
            if (!fs.features[k].data) continue;
            rc = input_of(r, &fs.features[k], (size_t)s_seg[order[from + (size_t)k]], t->scratch,
                          t->x + (size_t)filled * r->in_size);
            t->y[filled++] = r->ds.items[batch_items[k]].label;
        }
        if (decoded) cnk_featureset_release(&fs);
        if (!rc && filled > 1) rc = tune_step(r, t, filled, lr, &loss_sum, &correct), seen += (size_t)filled;
        cnk_progress(r->ctx, "fine-tune", b + 1, n_batches, NULL);
    }
    free(order);
    free(batch_items);
    *loss = seen ? loss_sum / (double)seen : NAN;
    *acc = seen ? (double)correct / (double)seen : NAN;
    return rc;
}

/* Clip-level evaluation of the whole network on one part (decoding every file again). */
static int eval_full(xfer_run *r, tuner *t, int part, part_eval *e)
{
    int rc = part_eval_alloc(r, part, e);
    int *seg_count = calloc(e->n + 1, sizeof *seg_count);
    if (!rc && !seg_count) rc = cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    size_t C = (size_t)r->n_classes, n_segments = 0;
    double loss_sum = 0;
    for (size_t from = 0; from < e->n && !rc; from += EXTRACT_CHUNK) {
        int n = (int)(e->n - from < EXTRACT_CHUNK ? e->n - from : EXTRACT_CHUNK);
        cnk_featureset fs;
        rc = decode_items(r, e->items + from, n, &fs);
        int decoded = !rc;
        for (int k = 0; k < n && !rc; k++) {
            size_t clip = from + (size_t)k;
            if (!fs.features[k].data) continue;
            size_t n_seg = n_inputs_of(r, &fs.features[k]);
            for (size_t s0 = 0; s0 < n_seg && !rc; s0 += (size_t)r->batch) {
                int bs = (int)(n_seg - s0 < (size_t)r->batch ? n_seg - s0 : (size_t)r->batch);
                for (int b = 0; b < bs && !rc; b++) {
                    rc = input_of(r, &fs.features[k], s0 + (size_t)b, t->scratch, t->x + (size_t)b * r->in_size);
                    t->y[b] = e->y_true[clip];
                }
                const float *inputs[1] = {t->x};
                if (!rc) rc = cnk_model_forward(r->ctx, t->model, inputs, bs, CNK_MODE_INFER);
                if (rc) break;
                loss_sum += bs * cnk_loss_softmax_ce(cnk_model_output(t->model, 0, NULL), t->y, bs, r->n_classes,
                                                     t->probs, NULL);
                n_segments += (size_t)bs;
                for (int b = 0; b < bs; b++)
                    for (size_t c = 0; c < C; c++) e->proba[clip * C + c] += t->probs[(size_t)b * C + c];
                seg_count[clip] += bs;
            }
        }
        if (decoded) cnk_featureset_release(&fs);
    }
    if (!rc) part_eval_finish(e, seg_count, r->n_classes, loss_sum, n_segments);
    free(seg_count);
    return rc;
}

static int tuner_init(xfer_run *r, tuner *t, int trainable_from)
{
    memset(t, 0, sizeof *t);
    int rc = cnk_model_create(r->ctx, &r->full, r->batch, &t->model);
    if (rc) return rc;
    memcpy(cnk_model_params(t->model), r->full_params, r->full.n_params * sizeof(float));
    memcpy(cnk_model_buffers(t->model), r->full_buffers, r->full.n_buffers * sizeof(float));
    for (int l = 0; l < r->full.n_layers; l++) cnk_model_set_trainable(t->model, l, l >= trainable_from);
    cnk_optim_config oc;
    cnk_optim_config_init(&oc, CNK_OPTIM_ADAM);
    oc.lr = (float)r->finetune_lr;
    oc.weight_decay = (float)r->weight_decay;
    rc = cnk_optim_create(r->ctx, &oc, r->full.n_params, &t->opt);
    if (rc) return rc;
    int c, h, w;
    cnk_preprocess_input_shape(&r->prep, &c, &h, &w);
    size_t B = (size_t)r->batch, C = (size_t)r->n_classes;
    t->x = malloc(B * r->in_size * sizeof *t->x);
    t->scratch = malloc(((size_t)c * h * w + 1) * sizeof *t->scratch);
    t->dlogits = malloc(B * C * sizeof *t->dlogits);
    t->probs = malloc(B * C * sizeof *t->probs);
    t->y = malloc(B * sizeof *t->y);
    t->best_params = malloc((r->full.n_params + 1) * sizeof *t->best_params);
    t->best_buffers = malloc((r->full.n_buffers + 1) * sizeof *t->best_buffers);
    if (!t->x || !t->scratch || !t->dlogits || !t->probs || !t->y || !t->best_params || !t->best_buffers)
        return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory for fine-tuning");
    memcpy(t->best_params, r->full_params, r->full.n_params * sizeof(float));
    memcpy(t->best_buffers, r->full_buffers, r->full.n_buffers * sizeof(float));
    return CNK_OK;
}

/* One fine-tuning epoch, its validation, the kept network and the checkpoint. */
static int finetune_one_epoch(xfer_run *r, tuner *t, const int *s_item, const int *s_seg, size_t n, int epoch,
                              float lr, int has_val)
{
    double t0 = now_seconds(), tl = NAN, ta = NAN;
    int rc = tune_epoch(r, t, s_item, s_seg, n, epoch, lr, &tl, &ta);
    part_eval val = {0};
    val.loss = val.accuracy = NAN;
    if (!rc && has_val) rc = eval_full(r, t, CNK_PART_VAL, &val);
    double score = has_val ? val.loss : -(double)epoch;
    int improved = !rc && score < r->best_score;
    if (improved) {
        r->best_score = score;
        r->best_epoch = epoch + 1;
        r->bad_epochs = 0;
        memcpy(t->best_params, cnk_model_params(t->model), r->full.n_params * sizeof(float));
        memcpy(t->best_buffers, cnk_model_buffers(t->model), r->full.n_buffers * sizeof(float));
    } else {
        r->bad_epochs++;
    }
    if (!rc) rc = cnk_transfer_push_history(r, tl, ta, val.loss, val.accuracy);
    report_epoch(r, r->n_hist, r->n_hist - epoch - 1 + r->finetune_epochs, tl, ta, val.loss, val.accuracy, lr,
                 now_seconds() - t0, improved);
    r->res->finetune_epochs_run = epoch + 1;
    part_eval_release(&val);
    r->run_epochs++;
    return rc ? rc : cnk_transfer_ckpt_save_tuner(r, t, r->n_hist);
}

static int finetune(xfer_run *r)
{
    int epochs = r->finetune_epochs;
    if (epochs == 0) return CNK_OK;
    if (r->is_yamnet)
        return cnk_fail(r->ctx, CNK_ERR_UNSUPPORTED, "fine-tuning YAMNet is not supported: its head trains on clip embeddings");
    if (r->resume_phase != 2 && stop_here(r)) return CNK_OK; /* phase one's last checkpoint holds the state */
    tuner t;
    int *s_item = NULL, *s_seg = NULL;
    size_t n = 0;
    int rc = tuner_init(r, &t, r->trainable_from);
    if (!rc) rc = collect_samples(r, CNK_PART_TRAIN, &s_item, &s_seg, &n);
    int has_val = has_part(r, CNK_PART_VAL);
    double t_start = now_seconds();
    float lr0 = (float)r->finetune_lr;
    cnk_lr_schedule sched = {.kind = CNK_LR_COSINE, .base_lr = lr0, .total = epochs, .min_lr = lr0 * 0.02f};
    r->best_score = INFINITY;
    r->best_epoch = r->bad_epochs = 0;
    int start = 0;
    if (!rc && r->resume_phase == 2) {
        rc = cnk_transfer_ckpt_load_tuner(r, &t);
        start = r->start_epoch;
    } else if (!rc && has_val) { /* the phase-one model is the one to beat */
        part_eval val;
        rc = eval_full(r, &t, CNK_PART_VAL, &val);
        r->best_score = rc ? r->best_score : val.loss;
        part_eval_release(&val);
    }
    for (int epoch = start; epoch < epochs && !rc && !stop_here(r); epoch++)
        rc = finetune_one_epoch(r, &t, s_item, s_seg, n, epoch, cnk_lr_at(&sched, epoch), has_val);
    if (!rc && !r->res->train.interrupted) {
        memcpy(r->full_params, t.best_params, r->full.n_params * sizeof(float));
        memcpy(r->full_buffers, t.best_buffers, r->full.n_buffers * sizeof(float));
    }
    r->res->seconds_finetune = now_seconds() - t_start;
    free(s_item);
    free(s_seg);
    tuner_free(&t);
    return rc;
}

/* ---- final evaluation and report (with the whole network when it was fine-tuned) ---- */

static int evaluate_final(xfer_run *r, part_eval *e)
{
    memset(e, 0, sizeof *e);
    if (!has_part(r, CNK_PART_TEST)) return CNK_OK;
    if (r->res->finetune_epochs_run == 0) { /* the backbone is untouched: the head on cached outputs suffices */
        head_trainer h;
        memset(&h, 0, sizeof h);
        cnk_arch arch;
        int rc = build_head_arch(r->ctx, r->feat_dim, r->n_classes, 0.2f, &arch);
        if (!rc) rc = cnk_model_create(r->ctx, &arch, r->batch, &h.model);
        cnk_arch_release(&arch);
        size_t B = (size_t)r->batch, C = (size_t)r->n_classes;
        h.probs = rc ? NULL : malloc(B * C * sizeof *h.probs);
        h.y = rc ? NULL : malloc(B * sizeof *h.y);
        if (!rc && (!h.probs || !h.y)) rc = cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
        if (!rc) {
            memcpy(cnk_model_params(h.model), r->head_params, cnk_model_arch(h.model)->n_params * sizeof(float));
            rc = eval_head(r, &h, CNK_PART_TEST, e);
        }
        head_trainer_free(&h);
        return rc;
    }
    tuner t;
    int rc = tuner_init(r, &t, r->full.n_layers);
    if (!rc) rc = eval_full(r, &t, CNK_PART_TEST, e);
    tuner_free(&t);
    return rc;
}

static int write_report(xfer_run *r, const part_eval *e)
{
    const char **paths = malloc((e->n + 1) * sizeof *paths);
    if (!paths) return cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < e->n; k++) paths[k] = r->ds.items[e->items[k]].path;
    cnk_report_history hist = {(size_t)r->n_hist, r->hist[0], r->hist[1], r->hist[2], r->hist[3]};
    char name[96];
    snprintf(name, sizeof name, "transfer (%s)", r->res->backbone);
    cnk_report_model model = {.name = name,
                              .n_samples = e->n,
                              .n_classes = (size_t)r->n_classes,
                              .class_names = (const char *const *)r->ds.classes,
                              .y_true = e->y_true,
                              .y_pred = e->y_pred,
                              .proba = e->proba,
                              .paths = paths,
                              .history = r->n_hist ? &hist : NULL};
    char feat[64], ft[64], epochs[32];
    snprintf(feat, sizeof feat, "%d per segment", r->feat_dim);
    snprintf(epochs, sizeof epochs, "%d (best %d)", r->res->train.epochs_run, r->res->train.best_epoch);
    snprintf(ft, sizeof ft, "%d epochs", r->res->finetune_epochs_run);
    cnk_report_param params[] = {{"data", r->t->data ? r->t->data : r->t->train_dir},
                                 {"model", r->t->model_path},
                                 {"backbone", r->t->from},
                                 {"backbone outputs", feat},
                                 {"input", r->is_yamnet ? "yamnet embeddings" : r->mel_image.active ? "mel image" : "image"},
                                 {"head epochs", epochs},
                                 {"fine-tuning", ft},
                                 {"split", "test split held out from training (see the .split.csv file)"}};
    cnk_report_input in = {.title = "cnnkit transfer-learning report: held-out test split",
                           .models = &model,
                           .n_models = 1,
                           .params = params,
                           .n_params = sizeof params / sizeof params[0]};
    int rc = cnk_report_write(r->ctx, r->t->report_dir, &in);
    free(paths);
    return rc;
}

/* ---- the run ---- */

static void choose_hyper(xfer_run *r)
{
    const cnk_train_options *t = r->t;
    r->epochs = t->epochs > 0 ? t->epochs : 30;
    r->batch = t->batch_size > 0 ? t->batch_size : 32;
    r->lr = t->lr > 0 ? t->lr : 1e-3;
    r->weight_decay = t->weight_decay >= 0 ? t->weight_decay : 1e-4;
    r->patience = t->patience != 0 ? t->patience : 10;
    /* the second phase's plan */
    r->finetune_epochs = r->o->finetune_epochs >= 0 ? r->o->finetune_epochs : r->frozen_layers < 0 ? 0 : r->epochs;
    r->finetune_lr = r->o->finetune_lr > 0 ? r->o->finetune_lr : r->lr / 10;
    int top_blocks = r->o->unfreeze > 0 ? r->o->unfreeze : 1;
    r->trainable_from = r->frozen_layers >= 0 ? r->frozen_layers : cnk_transfer_unfreeze_from(&r->arch, top_blocks);
}

static int check_options(cnk_ctx *ctx, const cnk_transfer_options *o)
{
    const cnk_train_options *t = o->train;
    if (!t || !t->from) return cnk_fail(ctx, CNK_ERR_ARG, "transfer learning needs --from MODEL.cnk");
    if (!t->model_path) return cnk_fail(ctx, CNK_ERR_ARG, "the model path (-o MODEL.cnk) is required");
    if (!t->data && !t->train_dir) return cnk_fail(ctx, CNK_ERR_ARG, "no data given");
    if (t->arch) return cnk_fail(ctx, CNK_ERR_ARG, "--arch and --from exclude each other: the backbone is the architecture");
    /* Options the transfer phases do not implement are refused, never silently ignored. */
    if (t->ema_decay > 0 || t->label_smoothing > 0 || t->mixup > 0 || t->erase > 0 || t->tta_flip > 0 ||
        (t->eval_crop > 0 && t->eval_crop < 1) || t->train_width > 0 ||
        (t->optimizer && strcmp(t->optimizer, "adam") != 0))
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "--ema, --label-smoothing, --mixup, --erase, --tta, --eval-crop, "
                                                  "--train-size and --optimizer other than adam are not available with --from");
    int frozen;
    if (cnk_transfer_parse_freeze(t->freeze, &frozen))
        return cnk_fail(ctx, CNK_ERR_ARG, "--freeze %s: expected backbone, none or a layer count", t->freeze);
    if (o->unfreeze < 0) return cnk_fail(ctx, CNK_ERR_ARG, "--unfreeze %d: expected a block count >= 1", o->unfreeze);
    return CNK_OK;
}

/* The head (phase one), or with a checkpoint of phase two room for it: assemble() puts it into the network,
 * whose weights then come from the checkpoint. */
static int head_phase(xfer_run *r)
{
    if (r->resume_phase != 2) return train_head(r);
    r->head_params = calloc((size_t)r->n_classes * ((size_t)r->feat_dim + 1), sizeof *r->head_params);
    return r->head_params ? CNK_OK : cnk_fail(r->ctx, CNK_ERR_NOMEM, "out of memory");
}

/* Both phases; a --stop-after interruption leaves the rest to --resume. */
static int train_phases(xfer_run *r)
{
    double t0 = now_seconds();
    int rc = head_phase(r);
    r->res->seconds_head = now_seconds() - t0;
    if (rc || r->res->train.interrupted) return rc;
    rc = assemble(r);
    /* the phase-one model is kept even if fine-tuning is interrupted (a resumed phase two has it already) */
    if (!rc && r->resume_phase != 2) rc = save_model(r);
    if (!rc) rc = finetune(r);
    if (!rc && r->res->finetune_epochs_run && !r->res->train.interrupted) rc = save_model(r);
    return rc;
}

static int run_phases(xfer_run *r)
{
    int rc = load_backbone(r);
    if (!rc) rc = open_data(r);
    if (!rc) rc = choose_inputs(r);
    if (rc) return rc;
    choose_hyper(r);
    if (r->t->resume) rc = cnk_transfer_ckpt_open(r); /* refusals before the slow part; its schedule */
    if (!rc) rc = assign_split(r);
    if (rc) return rc;
    double t0 = now_seconds();
    rc = extract_all(r);
    r->res->seconds_backbone = now_seconds() - t0;
    r->res->train.seconds_features = r->res->seconds_backbone;
    if (!rc) rc = train_phases(r);
    r->res->train.seconds_training = r->res->seconds_head + r->res->seconds_finetune;
    if (r->res->train.interrupted) r->res->train.epochs_run = r->n_hist; /* "stopped after N epochs": both phases */
    if (rc || r->res->train.interrupted) return rc;
    part_eval e = {0};
    if (!rc) rc = evaluate_final(r, &e);
    r->res->train.test_accuracy = e.n ? e.accuracy : NAN;
    if (!rc && r->t->report_dir) {
        if (!e.n) rc = cnk_fail(r->ctx, CNK_ERR_ARG, "--report: there is no test split to evaluate on");
        else rc = write_report(r, &e);
    }
    part_eval_release(&e);
    return rc;
}

static void fill_counts(xfer_run *r)
{
    cnk_train_result *res = &r->res->train;
    snprintf(res->input, sizeof res->input, "%s",
             r->is_yamnet ? "yamnet" : r->mel_image.active ? "mel-image" : "image");
    snprintf(res->arch, sizeof res->arch, "transfer:%s", r->res->backbone);
    res->n_cached = r->res->n_backbone_cached; /* the backbone outputs are the cached features here */
    for (size_t i = 0; r->feats && i < r->ds.n_items; i++) {
        if (!r->feats[i]) continue;
        int part = r->ds.items[i].part;
        if (part == CNK_PART_TRAIN) res->n_train++, res->n_train_segments += (size_t)r->n_seg[i];
        if (part == CNK_PART_VAL) res->n_val++;
        if (part == CNK_PART_TEST) res->n_test++;
    }
}

int cnk_transfer_run(cnk_ctx *ctx, const cnk_transfer_options *opts, cnk_transfer_result *result)
{
    memset(result, 0, sizeof *result);
    result->train.test_accuracy = NAN;
    result->head_test_accuracy = NAN;
    int rc = check_options(ctx, opts);
    if (rc) return rc;
    xfer_run *r = calloc(1, sizeof *r);
    if (!r) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory");
    r->ctx = ctx;
    r->o = opts;
    r->t = opts->train;
    r->res = result;
    cnk_modelfile_init(&r->from);
    cnk_arch_init(&r->arch);
    cnk_arch_init(&r->full);
    cnk_transfer_parse_freeze(r->t->freeze, &r->frozen_layers);
    rc = run_phases(r);
    fill_counts(r);
    release_run(r);
    free(r);
    return rc;
}

/* ---- predicting with a YAMNet-backbone model ---- */

int cnk_transfer_is_yamnet_model(const cnk_modelfile *mf)
{
    return is_yamnet_text(mf->preprocess) && strstr(mf->preprocess, "arch_name=transfer:") != NULL;
}

/* softmax(W e + b) of one mean embedding into proba. */
static void head_probs(const float *weight, const float *bias, const float *embedding, int n_classes, int dim,
                       double *proba)
{
    double max = -INFINITY, sum = 0;
    for (int c = 0; c < n_classes; c++) {
        double z = bias[c];
        for (int k = 0; k < dim; k++) z += (double)weight[(size_t)c * dim + k] * embedding[k];
        proba[c] = z;
        max = fmax(max, z);
    }
    for (int c = 0; c < n_classes; c++) sum += (proba[c] = exp(proba[c] - max));
    for (int c = 0; c < n_classes; c++) proba[c] /= sum;
}

int cnk_transfer_predict_files(cnk_ctx *ctx, const cnk_modelfile *mf, const char *model_path,
                               const char *const *paths, size_t n, double *proba, int *ok)
{
    cnk_arch arch;
    int rc = cnk_modelfile_arch(ctx, mf, &arch);
    if (rc) return rc;
    int head = cnk_transfer_head_layer(&arch);
    const cnk_layer *h = head >= 0 ? &arch.layers[head] : NULL;
    size_t dim = h ? h->n_params / (size_t)(mf->n_classes > 0 ? mf->n_classes : 1) - 1 : 0;
    if (!h || dim != CNK_YAMNET_EMBEDDING || h->units != mf->n_classes) {
        cnk_arch_release(&arch);
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: not a YAMNet transfer model (no %d-input head)", model_path,
                        CNK_YAMNET_EMBEDDING);
    }
    const float *weight = mf->params + h->param_offset, *bias = weight + (size_t)mf->n_classes * dim;
    cnk_arch_release(&arch);
    cnk_yamnet *y = NULL;
    rc = cnk_yamnet_create(ctx, model_path, &y);
    float *scores = rc ? NULL : malloc((size_t)cnk_yamnet_n_classes(y) * sizeof *scores);
    float *embedding = malloc(CNK_YAMNET_EMBEDDING * sizeof *embedding);
    if (!rc && (!scores || !embedding)) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        ok[i] = 0;
        int frc = paths[i] ? cnk_yamnet_classify_file(ctx, y, paths[i], scores, embedding) : CNK_ERR_INPUT;
        if (frc == CNK_ERR_NOMEM) rc = frc;
        else if (frc && paths[i]) cnk_warn(ctx, "%s", cnk_error(ctx)), cnk_clear_error(ctx);
        if (frc) continue;
        head_probs(weight, bias, embedding, mf->n_classes, (int)dim, proba + i * (size_t)mf->n_classes);
        ok[i] = 1;
        cnk_progress(ctx, "classify", i + 1, n, NULL);
    }
    free(scores);
    free(embedding);
    cnk_yamnet_free(y);
    return rc;
}
