#include "pipeline/preprocess.h"

#include <cblas.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "features/audio.h"
#include "features/image.h"
#include "features/spectrogram.h"
#include "features/wavelet.h"
#include "pipeline/segment.h"

static const char *const clip_norm_names[CNK_CLIP_NORM_COUNT] = {"none", "cmn", "cmvn"};

static const char *const kind_names[CNK_PREP_KIND_COUNT] = {"mel", "wavelet", "mel+wavelet", "image", "npy",
                                                             "csv"};

const char *cnk_prep_kind_name(cnk_prep_kind kind)
{
    return (kind >= 0 && kind < CNK_PREP_KIND_COUNT) ? kind_names[kind] : "?";
}

int cnk_prep_kind_is_audio(cnk_prep_kind kind)
{
    return kind == CNK_PREP_MEL || kind == CNK_PREP_WAVELET || kind == CNK_PREP_MEL_WAVELET;
}

int cnk_prep_kind_parse(const char *name, cnk_prep_kind *kind)
{
    for (int k = 0; k < CNK_PREP_KIND_COUNT; k++)
        if (strcmp(name, kind_names[k]) == 0) {
            *kind = (cnk_prep_kind)k;
            return 0;
        }
    return -1;
}

/* Defaults, chosen from the experiments in datasets/README.md: music-rate audio gets the contract's mel
 * (2048/512/128) and 3 s segments (130 frames); the dataset loader lowers the rate for low-rate speech
 * (see cnk_preprocess_set_rate). Images 3x64x64. */
void cnk_preprocess_defaults(cnk_preprocess *p, cnk_prep_kind kind)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->sample_rate = 22050;
    p->n_fft = 2048;
    p->hop_length = 512;
    p->n_mels = 128;
    p->n_scales = 64;
    p->fmin = 0;
    p->fmax = 0;
    p->wavelet_fmin = 32;
    p->top_db = 80;
    p->db_ref_max = 1; /* FSDD's speakers differ by 20 dB in level: absolute dB made a held-out speaker unreadable */
    cnk_preprocess_set_segment_seconds(p, 3.0);
    p->channels = kind == CNK_PREP_IMAGE ? 3 : 1;
    p->height = p->width = kind == CNK_PREP_CSV ? 0 : 64; /* CSV rows stay vectors unless given an image size */
    snprintf(p->csv_drop, sizeof p->csv_drop, "filename,length");
}

void cnk_preprocess_set_segment_seconds(cnk_preprocess *p, double seconds)
{
    int frames = (int)lround(seconds * p->sample_rate / p->hop_length) + 1;
    p->segment_frames = frames < 8 ? 8 : frames;
    p->segment_hop = (p->segment_frames + 1) / 2;
    p->train_hop = (p->segment_frames + 3) / 4;
    p->min_fill = p->segment_frames / 4;
}

static int spectrogram_rows(const cnk_preprocess *p)
{
    return p->kind == CNK_PREP_WAVELET ? p->n_scales : p->n_mels;
}

int cnk_preprocess_has_eval_view(const cnk_preprocess *p)
{
    return p->kind == CNK_PREP_IMAGE && p->eval_crop > 0 && p->eval_crop < 1 && p->crop != p->eval_crop;
}

void cnk_preprocess_eval_view(const cnk_preprocess *p, cnk_preprocess *view)
{
    *view = *p;
    if (p->kind == CNK_PREP_IMAGE && p->eval_crop > 0 && p->eval_crop < 1) view->crop = p->eval_crop;
}

void cnk_preprocess_input_shape(const cnk_preprocess *p, int *c, int *h, int *w)
{
    switch (p->kind) {
    case CNK_PREP_MEL:
    case CNK_PREP_WAVELET:
    case CNK_PREP_MEL_WAVELET:
        *c = 1, *h = spectrogram_rows(p), *w = p->segment_frames;
        break;
    case CNK_PREP_CSV:
        if (p->height > 0 && p->width > 0 && p->channels * p->height * p->width == p->n_features)
            *c = p->channels, *h = p->height, *w = p->width;
        else
            *c = p->n_features, *h = 1, *w = 1;
        break;
    default:
        *c = p->channels, *h = p->height, *w = p->width;
    }
}

/* ---- key=value text ---- */

typedef struct text_buf {
    char *data;
    size_t len, cap;
    int failed;
} text_buf;

static void tb_printf(text_buf *tb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(text_buf *tb, const char *fmt, ...)
{
    if (tb->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(tb->data + tb->len, tb->cap - tb->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            tb->failed = 1;
            return;
        }
        if (tb->len + (size_t)n < tb->cap) {
            tb->len += (size_t)n;
            return;
        }
        size_t cap = tb->cap * 2 + (size_t)n + 64;
        char *grown = realloc(tb->data, cap);
        if (!grown) {
            tb->failed = 1;
            return;
        }
        tb->data = grown;
        tb->cap = cap;
    }
}

static void tb_floats(text_buf *tb, const char *key, const float *v, int n)
{
    tb_printf(tb, "%s=", key);
    for (int i = 0; i < n; i++) tb_printf(tb, "%s%.9g", i ? "," : "", (double)v[i]);
    tb_printf(tb, "\n");
}

/* "key=value\n" with the fewest digits that read back as the same float (0.9, not 0.899999976). */
static void tb_float_short(text_buf *tb, const char *key, float v)
{
    char digits[32];
    for (int precision = 6; precision <= 9; precision++) {
        snprintf(digits, sizeof digits, "%.*g", precision, (double)v);
        if ((float)strtod(digits, NULL) == v) break; /* as get_floats reads it */
    }
    tb_printf(tb, "%s=%s\n", key, digits);
}

int cnk_preprocess_to_text(cnk_ctx *ctx, const cnk_preprocess *p, char **text)
{
    text_buf tb = {malloc(1024), 0, 1024, 0};
    if (!tb.data) return cnk_fail(ctx, CNK_ERR_NOMEM, "preprocessing text: out of memory");
    tb_printf(&tb, "input=%s\n", cnk_prep_kind_name(p->kind));
    tb_printf(&tb, "sample_rate=%d\nn_fft=%d\nhop_length=%d\nn_mels=%d\nn_scales=%d\n", p->sample_rate, p->n_fft,
              p->hop_length, p->n_mels, p->n_scales);
    tb_printf(&tb, "fmin=%.9g\nfmax=%.9g\nwavelet_fmin=%.9g\ndb_ref=%s\n", (double)p->fmin, (double)p->fmax,
              (double)p->wavelet_fmin, p->db_ref_max ? "max" : "1");
    tb_printf(&tb, "top_db=%.9g\n", (double)p->top_db);
    tb_printf(&tb, "clip_norm=%s\nlifter=%d\ntrim_db=%.9g\ncenter=%d\n", clip_norm_names[p->clip_norm], p->lifter,
              (double)p->trim_db, p->center);
    tb_printf(&tb, "segment_frames=%d\nsegment_hop=%d\ntrain_hop=%d\nmin_fill=%d\n", p->segment_frames,
              p->segment_hop, p->train_hop, p->min_fill);
    tb_printf(&tb, "channels=%d\nheight=%d\nwidth=%d\nn_features=%d\n", p->channels, p->height, p->width,
              p->n_features);
    if (p->tta_flip) tb_printf(&tb, "tta_flip=%d\n", p->tta_flip); /* absent = off (older readers ignore it) */
    if (p->eval_crop > 0 && p->eval_crop < 1) tb_float_short(&tb, "eval_crop", p->eval_crop); /* absent = 1 */
    tb_printf(&tb, "csv_drop=%s\nn_norm=%d\n", p->csv_drop, p->n_norm);
    tb_floats(&tb, "mean", p->mean, p->n_norm);
    tb_floats(&tb, "std", p->std, p->n_norm);
    if (tb.failed) {
        free(tb.data);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "preprocessing text: out of memory");
    }
    *text = tb.data;
    return CNK_OK;
}

/* Finds "key=" at a line start and returns a pointer to its value (up to the newline), or NULL. */
static const char *find_value(const char *text, const char *key, size_t *len)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            const char *v = line + klen + 1;
            const char *end = strchr(v, '\n');
            *len = end ? (size_t)(end - v) : strlen(v);
            return v;
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    return NULL;
}

static int get_int(cnk_ctx *ctx, const char *text, const char *source, const char *key, long min, long max,
                   int *out)
{
    size_t len;
    const char *v = find_value(text, key, &len);
    if (!v) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: preprocessing lacks '%s'", source, key);
    char buf[64];
    if (len >= sizeof buf) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: preprocessing '%s' is too long", source, key);
    memcpy(buf, v, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long x = strtol(buf, &end, 10);
    if (errno || end == buf || *end || x < min || x > max)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: preprocessing '%s=%s' is not an integer in [%ld, %ld]", source, key,
                        buf, min, max);
    *out = (int)x;
    return CNK_OK;
}

/* Parses up to max comma-separated floats; *n gets how many. */
static int get_floats(cnk_ctx *ctx, const char *text, const char *source, const char *key, float *out, int max,
                      int *n)
{
    size_t len;
    const char *v = find_value(text, key, &len);
    if (!v) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: preprocessing lacks '%s'", source, key);
    *n = 0;
    const char *end_of_value = v + len;
    while (v < end_of_value) {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || !isfinite(x) || *n >= max || (end < end_of_value && *end != ','))
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s: preprocessing '%s' has a bad value", source, key);
        out[(*n)++] = (float)x;
        v = end < end_of_value ? end + 1 : end;
    }
    return CNK_OK;
}

static int get_float(cnk_ctx *ctx, const char *text, const char *source, const char *key, float *out)
{
    int n;
    int rc = get_floats(ctx, text, source, key, out, 1, &n);
    if (!rc && n != 1) rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: preprocessing '%s' is empty", source, key);
    return rc;
}

/* The evaluation crop (images only, 0 < value <= 1; 1 is stored as 0, the whole centre crop). */
static int get_eval_crop(cnk_ctx *ctx, const char *text, const char *source, cnk_preprocess *p)
{
    float crop;
    int rc = get_float(ctx, text, source, "eval_crop", &crop);
    if (rc) return rc;
    if (!(crop > 0 && crop <= 1))
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: preprocessing 'eval_crop=%g' is not in (0, 1]", source, (double)crop);
    if (p->kind != CNK_PREP_IMAGE)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: preprocessing 'eval_crop' applies to images only", source);
    p->eval_crop = crop < 1 ? crop : 0;
    return CNK_OK;
}

int cnk_preprocess_from_text(cnk_ctx *ctx, const char *text, const char *source, cnk_preprocess *p)
{
    memset(p, 0, sizeof *p);
    size_t len;
    const char *v = find_value(text, "input", &len);
    char kind[32];
    if (!v || len >= sizeof kind)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: preprocessing lacks a valid 'input'", source);
    memcpy(kind, v, len);
    kind[len] = '\0';
    if (cnk_prep_kind_parse(kind, &p->kind))
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: unknown input kind '%s'", source, kind);
    int rc = CNK_OK, n_mean = 0, n_std = 0;
    rc = rc ? rc : get_int(ctx, text, source, "sample_rate", 1000, 768000, &p->sample_rate);
    rc = rc ? rc : get_int(ctx, text, source, "n_fft", 16, 1 << 16, &p->n_fft);
    rc = rc ? rc : get_int(ctx, text, source, "hop_length", 1, 1 << 16, &p->hop_length);
    rc = rc ? rc : get_int(ctx, text, source, "n_mels", 1, 4096, &p->n_mels);
    rc = rc ? rc : get_int(ctx, text, source, "n_scales", 1, 4096, &p->n_scales);
    rc = rc ? rc : get_float(ctx, text, source, "fmin", &p->fmin);
    rc = rc ? rc : get_float(ctx, text, source, "fmax", &p->fmax);
    rc = rc ? rc : get_float(ctx, text, source, "wavelet_fmin", &p->wavelet_fmin);
    rc = rc ? rc : get_int(ctx, text, source, "segment_frames", 1, 1 << 20, &p->segment_frames);
    rc = rc ? rc : get_int(ctx, text, source, "segment_hop", 1, 1 << 20, &p->segment_hop);
    rc = rc ? rc : get_int(ctx, text, source, "train_hop", 1, 1 << 20, &p->train_hop);
    rc = rc ? rc : get_int(ctx, text, source, "min_fill", 0, 1 << 20, &p->min_fill);
    rc = rc ? rc : get_int(ctx, text, source, "channels", 1, 4096, &p->channels);
    rc = rc ? rc : get_int(ctx, text, source, "height", 0, 65536, &p->height);
    rc = rc ? rc : get_int(ctx, text, source, "width", 0, 65536, &p->width);
    rc = rc ? rc : get_int(ctx, text, source, "n_features", 0, 1 << 24, &p->n_features);
    rc = rc ? rc : get_int(ctx, text, source, "n_norm", 0, CNK_PREP_MAX_NORM, &p->n_norm);
    rc = rc ? rc : get_floats(ctx, text, source, "mean", p->mean, CNK_PREP_MAX_NORM, &n_mean);
    rc = rc ? rc : get_floats(ctx, text, source, "std", p->std, CNK_PREP_MAX_NORM, &n_std);
    if (rc) return rc;
    if (n_mean != p->n_norm || n_std != p->n_norm)
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: preprocessing has %d/%d normalisation values, expected %d", source,
                        n_mean, n_std, p->n_norm);
    for (int i = 0; i < p->n_norm; i++)
        if (!(p->std[i] > 0)) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: preprocessing std %d is not > 0", source, i);
    v = find_value(text, "db_ref", &len); /* absent in the first models: they used ref 1 */
    if (v && len == 3 && strncmp(v, "max", 3) == 0) p->db_ref_max = 1;
    else if (v && !(len == 1 && v[0] == '1'))
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: preprocessing 'db_ref' must be max or 1", source);
    /* absent in models from before they existed: off (top_db: librosa's 80) */
    p->top_db = 80;
    if (find_value(text, "top_db", &len)) rc = get_float(ctx, text, source, "top_db", &p->top_db);
    if (!rc && !(p->top_db > 0))
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: preprocessing 'top_db' must be positive", source);
    if (!rc && find_value(text, "lifter", &len)) rc = get_int(ctx, text, source, "lifter", 0, 4096, &p->lifter);
    if (!rc && find_value(text, "trim_db", &len)) rc = get_float(ctx, text, source, "trim_db", &p->trim_db);
    if (!rc && find_value(text, "center", &len)) rc = get_int(ctx, text, source, "center", 0, 1, &p->center);
    if (!rc && find_value(text, "tta_flip", &len)) rc = get_int(ctx, text, source, "tta_flip", 0, 1, &p->tta_flip);
    if (!rc && find_value(text, "eval_crop", &len)) rc = get_eval_crop(ctx, text, source, p);
    if (rc) return rc;
    if (!(p->trim_db >= 0)) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: preprocessing 'trim_db' is negative", source);
    v = find_value(text, "clip_norm", &len); /* absent in models from before it existed: none */
    if (v) {
        int found = 0;
        for (int m = 0; m < CNK_CLIP_NORM_COUNT && !found; m++)
            if (len == strlen(clip_norm_names[m]) && strncmp(v, clip_norm_names[m], len) == 0)
                p->clip_norm = m, found = 1;
        if (!found)
            return cnk_fail(ctx, CNK_ERR_INPUT, "%s: preprocessing 'clip_norm' must be none, cmn or cmvn", source);
    }
    v = find_value(text, "csv_drop", &len);
    if (v && len < sizeof p->csv_drop) {
        memcpy(p->csv_drop, v, len);
        p->csv_drop[len] = '\0';
    }
    return CNK_OK;
}

/* Appends printf-style text to the key in out (cap bytes), truncating as snprintf does. */
static void append_key(char *out, size_t cap, const char *fmt, ...)
{
    size_t used = strlen(out);
    if (used >= cap) return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(out + used, cap - used, fmt, args);
    va_end(args);
}

void cnk_preprocess_feature_key(const cnk_preprocess *p, char *out, size_t cap)
{
    switch (p->kind) {
    case CNK_PREP_MEL:
    case CNK_PREP_MEL_WAVELET:
        snprintf(out, cap, "mel sr=%d n_fft=%d hop=%d n_mels=%d fmin=%.9g fmax=%.9g db ref=%s", p->sample_rate,
                 p->n_fft, p->hop_length, p->n_mels, (double)p->fmin, (double)p->fmax, p->db_ref_max ? "max" : "1");
        break;
    case CNK_PREP_WAVELET:
        snprintf(out, cap, "wavelet sr=%d hop=%d n_fft=%d scales=%d fmin=%.9g fmax=%.9g db ref=%s", p->sample_rate,
                 p->hop_length, p->n_fft, p->n_scales, (double)p->wavelet_fmin, (double)p->fmax,
                 p->db_ref_max ? "max" : "1");
        break;
    case CNK_PREP_IMAGE:
        snprintf(out, cap, "image c=%d h=%d w=%d centre-crop [0,1]", p->channels, p->height, p->width);
        /* the evaluation view's crop; training's key stays as it was, so its cache entries stay valid */
        if (p->crop > 0 && p->crop < 1) append_key(out, cap, " crop=%.9g", (double)p->crop);
        break;
    default:
        snprintf(out, cap, "%s", cnk_prep_kind_name(p->kind));
    }
    /* Only named when on, so the cache entries of runs without them stay valid. */
    if (!cnk_prep_kind_is_audio(p->kind)) return;
    if (p->clip_norm != CNK_CLIP_NORM_NONE) append_key(out, cap, " clip_norm=%s", clip_norm_names[p->clip_norm]);
    if (p->top_db > 0 && p->top_db != 80) append_key(out, cap, " top_db=%.9g", (double)p->top_db);
    if (p->lifter > 0) append_key(out, cap, " lifter=%d", p->lifter);
    if (p->trim_db > 0) append_key(out, cap, " trim_db=%.9g", (double)p->trim_db);
}

/* ---- segments and normalisation ---- */

static int is_spectrogram_kind(const cnk_preprocess *p)
{
    return cnk_prep_kind_is_audio(p->kind) || p->kind == CNK_PREP_NPY;
}

size_t cnk_preprocess_n_segments(const cnk_preprocess *p, const cnk_array *features, int train)
{
    if (!is_spectrogram_kind(p) || features->ndim != 2) return 1;
    return cnk_segment_count(features->shape[1], (size_t)p->segment_frames,
                             (size_t)(train ? p->train_hop : p->segment_hop), (size_t)p->min_fill);
}

static void normalise_planes(const cnk_preprocess *p, float *x, int channels, size_t plane)
{
    for (int c = 0; c < channels; c++) {
        int k = p->n_norm == 0 ? -1 : (p->n_norm == 1 ? 0 : c);
        if (k < 0 || k >= p->n_norm) continue;
        float mean = p->mean[k], inv = 1.0f / p->std[k];
        float *row = x + (size_t)c * plane;
        for (size_t i = 0; i < plane; i++) row[i] = (row[i] - mean) * inv;
    }
}

int cnk_preprocess_segment(cnk_ctx *ctx, const cnk_preprocess *p, const cnk_array *features, size_t i, int train,
                           float *out)
{
    int c, h, w;
    cnk_preprocess_input_shape(p, &c, &h, &w);
    size_t need = (size_t)c * h * w;
    if (is_spectrogram_kind(p) && features->ndim == 2) {
        if (features->shape[0] != (size_t)h || c != 1)
            return cnk_fail(ctx, CNK_ERR_INPUT, "features have %zu rows, the model expects %d", features->shape[0], h);
        size_t hop = (size_t)(train ? p->train_hop : p->segment_hop);
        size_t total = cnk_array_count(features);
        float floor_db = total ? features->data[0] : 0;
        for (size_t k = 1; k < total; k++) floor_db = fminf(floor_db, features->data[k]);
        size_t n = features->shape[1];
        if (p->center && n < (size_t)w) { /* the whole clip in the middle, silence on both sides */
            size_t offset = ((size_t)w - n) / 2;
            for (size_t k = 0; k < need; k++) out[k] = floor_db;
            for (size_t r = 0; r < (size_t)h; r++)
                memcpy(out + r * (size_t)w + offset, features->data + r * n, n * sizeof *out);
        } else {
            cnk_segment_copy_rows(features->data, features->shape[0], n, cnk_segment_start(i, hop), (size_t)w,
                                  floor_db, out);
        }
        normalise_planes(p, out, 1, need);
        return CNK_OK;
    }
    if (cnk_array_count(features) != need)
        return cnk_fail(ctx, CNK_ERR_INPUT, "features have %zu values, the model expects %dx%dx%d",
                        cnk_array_count(features), c, h, w);
    if (p->kind == CNK_PREP_CSV) {
        cnk_preprocess_normalise(p, features->data, need, out);
        return CNK_OK;
    }
    memcpy(out, features->data, need * sizeof *out);
    normalise_planes(p, out, c, (size_t)h * w);
    return CNK_OK;
}

void cnk_preprocess_normalise(const cnk_preprocess *p, const float *raw, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) {
        size_t k = p->n_norm == 1 ? 0 : i;
        out[i] = (int)k < p->n_norm ? (raw[i] - p->mean[k]) / p->std[k] : raw[i];
    }
}

int cnk_preprocess_fit(cnk_ctx *ctx, cnk_preprocess *p, const cnk_array *const *features, size_t n)
{
    int per_channel = p->kind == CNK_PREP_IMAGE;
    int n_norm = per_channel ? p->channels : 1;
    double sum[CNK_PREP_MAX_NORM] = {0}, sum2[CNK_PREP_MAX_NORM] = {0}, count[CNK_PREP_MAX_NORM] = {0};
    for (size_t f = 0; f < n; f++) {
        if (!features[f]) continue;
        size_t total = cnk_array_count(features[f]);
        size_t plane = per_channel ? total / (size_t)p->channels : total;
        for (size_t i = 0; i < total; i++) {
            int k = per_channel ? (int)(i / plane) : 0;
            double x = features[f]->data[i];
            sum[k] += x;
            sum2[k] += x * x;
            count[k] += 1;
        }
    }
    for (int k = 0; k < n_norm; k++) {
        if (count[k] == 0) return cnk_fail(ctx, CNK_ERR_INPUT, "no training features to normalise with");
        double mean = sum[k] / count[k], var = sum2[k] / count[k] - mean * mean;
        p->mean[k] = (float)mean;
        p->std[k] = var > 1e-12 ? (float)sqrt(var) : 1.0f;
    }
    p->n_norm = n_norm;
    return CNK_OK;
}

int cnk_preprocess_fit_rows(cnk_ctx *ctx, cnk_preprocess *p, const float *rows, size_t n_rows, size_t n_features)
{
    if (n_rows == 0) return cnk_fail(ctx, CNK_ERR_INPUT, "no training rows to normalise with");
    if (n_features > CNK_PREP_MAX_NORM)
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%zu features: at most %d can be normalised per feature",
                        n_features, CNK_PREP_MAX_NORM);
    for (size_t j = 0; j < n_features; j++) {
        double sum = 0, sum2 = 0;
        for (size_t i = 0; i < n_rows; i++) sum += rows[i * n_features + j];
        double mean = sum / (double)n_rows;
        for (size_t i = 0; i < n_rows; i++) {
            double d = rows[i * n_features + j] - mean;
            sum2 += d * d;
        }
        double sd = sqrt(sum2 / (double)n_rows); /* population std, as sklearn's StandardScaler */
        p->mean[j] = (float)mean;
        p->std[j] = sd > 1e-12 ? (float)sd : 1.0f;
    }
    p->n_norm = (int)n_features;
    return CNK_OK;
}

/* ---- decoding files ---- */

void cnk_preprocess_clip_norm(cnk_clip_norm mode, float *spec, size_t rows, size_t frames)
{
    if (mode == CNK_CLIP_NORM_NONE || frames == 0) return;
    for (size_t r = 0; r < rows; r++) {
        float *row = spec + r * frames;
        double sum = 0, sum2 = 0;
        for (size_t t = 0; t < frames; t++) sum += row[t];
        double mean = sum / (double)frames;
        for (size_t t = 0; t < frames; t++) sum2 += (row[t] - mean) * (row[t] - mean);
        /* the 1e-3 keeps a constant band (e.g. at the dB floor) at 0 instead of dividing by 0 */
        double scale = mode == CNK_CLIP_NORM_CMVN ? 1.0 / (sqrt(sum2 / (double)frames) + 1e-3) : 1.0;
        for (size_t t = 0; t < frames; t++) row[t] = (float)((row[t] - mean) * scale);
    }
}

struct cnk_prep_worker {
    cnk_preprocess params;
    cnk_spec *mel;         /* mel kinds */
    cnk_wavelet *wavelet;  /* wavelet kinds */
    float *lifter;         /* rows x rows smoothing matrix when params.lifter > 0 */
    int lifter_rows;
};

size_t cnk_preprocess_trim(float *spec, size_t rows, size_t frames, float trim_db)
{
    if (rows == 0 || frames == 0) return frames;
    float peak = spec[0];
    for (size_t i = 1; i < rows * frames; i++) peak = fmaxf(peak, spec[i]);
    size_t first = frames, last = 0;
    for (size_t t = 0; t < frames; t++) {
        float loudest = spec[t];
        for (size_t r = 1; r < rows; r++) loudest = fmaxf(loudest, spec[r * frames + t]);
        if (loudest >= peak - trim_db) {
            if (first == frames) first = t;
            last = t;
        }
    }
    if (first == frames) return frames; /* NaNs: leave the clip alone */
    size_t kept = last - first + 1;
    for (size_t r = 0; r < rows; r++) memmove(spec + r * kept, spec + r * frames + first, kept * sizeof *spec);
    return kept;
}

void cnk_preprocess_lifter_matrix(int rows, int keep, float *matrix)
{
    if (keep > rows) keep = rows;
    for (int n = 0; n < rows; n++)
        for (int m = 0; m < rows; m++) {
            double sum = 0; /* sum over kept k of basis_k[n] * basis_k[m], orthonormal DCT-II basis */
            for (int k = 0; k < keep; k++) {
                double scale = k == 0 ? 1.0 / rows : 2.0 / rows;
                sum += scale * cos(M_PI * k * (2 * n + 1) / (2.0 * rows)) * cos(M_PI * k * (2 * m + 1) / (2.0 * rows));
            }
            matrix[(size_t)n * rows + m] = (float)sum;
        }
}

void cnk_preprocess_lifter_apply(const float *matrix, float *spec, int rows, size_t frames, float *scratch)
{
    memcpy(scratch, spec, (size_t)rows * frames * sizeof *spec);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, (int)frames, rows, 1.0f, matrix, rows, scratch,
                (int)frames, 0.0f, spec, (int)frames);
}

int cnk_prep_worker_create(cnk_ctx *ctx, const cnk_preprocess *p, cnk_prep_worker **out)
{
    *out = NULL;
    cnk_prep_worker *w = calloc(1, sizeof *w);
    if (!w) return cnk_fail(ctx, CNK_ERR_NOMEM, "preprocessing: out of memory");
    w->params = *p;
    if (p->kind == CNK_PREP_MEL || p->kind == CNK_PREP_MEL_WAVELET) {
        cnk_spec_params sp;
        cnk_spec_params_default(&sp, p->sample_rate);
        sp.n_fft = p->n_fft;
        sp.hop_length = p->hop_length;
        sp.n_mels = p->n_mels;
        sp.fmin = p->fmin;
        sp.fmax = p->fmax;
        int rc = cnk_spec_create(ctx, &sp, &w->mel);
        if (rc) {
            free(w);
            return rc;
        }
    }
    int rows = p->kind == CNK_PREP_WAVELET ? p->n_scales : p->n_mels;
    if (p->lifter > 0 && (p->kind == CNK_PREP_MEL || p->kind == CNK_PREP_WAVELET)) {
        w->lifter = malloc((size_t)rows * rows * sizeof *w->lifter);
        if (!w->lifter) {
            cnk_prep_worker_free(w);
            return cnk_fail(ctx, CNK_ERR_NOMEM, "preprocessing: out of memory");
        }
        cnk_preprocess_lifter_matrix(rows, p->lifter, w->lifter);
        w->lifter_rows = rows;
    }
    if (p->kind == CNK_PREP_WAVELET || p->kind == CNK_PREP_MEL_WAVELET) {
        cnk_wavelet_params wp;
        cnk_wavelet_params_default(&wp, p->sample_rate);
        wp.n_scales = p->n_scales;
        wp.fmin = p->wavelet_fmin;
        wp.fmax = p->fmax;
        wp.hop_length = p->hop_length;
        wp.n_fft = p->n_fft;
        int rc = cnk_wavelet_create(ctx, &wp, &w->wavelet);
        if (rc) {
            cnk_prep_worker_free(w);
            return rc;
        }
    }
    *out = w;
    return CNK_OK;
}

void cnk_prep_worker_free(cnk_prep_worker *w)
{
    if (!w) return;
    cnk_spec_free(w->mel);
    cnk_wavelet_free(w->wavelet);
    free(w->lifter);
    free(w);
}

/* See cnk_preprocess_finish_db; lifter is the smoothing matrix when the caller has one made already. */
static int finish_db(cnk_ctx *ctx, const cnk_preprocess *p, const float *lifter, cnk_array *spec)
{
    size_t rows = spec->shape[0], frames = spec->shape[1], n = rows * frames;
    if (spec->ndim != 2 || n == 0) return cnk_fail(ctx, CNK_ERR_INPUT, "preprocessing: not a spectrogram");
    float peak = spec->data[0];
    for (size_t i = 1; i < n; i++) peak = fmaxf(peak, spec->data[i]);
    if (p->db_ref_max) /* as librosa's ref=np.max: the loudest bin becomes 0 dB */
        for (size_t i = 0; i < n; i++) spec->data[i] -= peak;
    /* trimming looks at the clip as recorded, before a higher floor would make its silence look loud */
    if (p->trim_db > 0) spec->shape[1] = frames = cnk_preprocess_trim(spec->data, rows, frames, p->trim_db);
    if (p->top_db > 0 && p->top_db < 80) { /* a higher floor than the 80 dB conversion's */
        float floor_db = (p->db_ref_max ? 0.0f : peak) - p->top_db;
        for (size_t i = 0; i < rows * frames; i++) spec->data[i] = fmaxf(spec->data[i], floor_db);
    }
    int rc = CNK_OK;
    if (p->lifter > 0 && p->lifter < (int)rows) {
        float *own = lifter ? NULL : malloc(rows * rows * sizeof *own);
        float *scratch = malloc(rows * frames * sizeof *scratch);
        if ((!lifter && !own) || !scratch) {
            rc = cnk_fail(ctx, CNK_ERR_NOMEM, "preprocessing: out of memory for a %zux%zu spectrogram", rows, frames);
        } else {
            if (own) cnk_preprocess_lifter_matrix((int)rows, p->lifter, own);
            cnk_preprocess_lifter_apply(lifter ? lifter : own, spec->data, (int)rows, frames, scratch);
        }
        free(own);
        free(scratch);
    }
    if (!rc) cnk_preprocess_clip_norm((cnk_clip_norm)p->clip_norm, spec->data, rows, frames);
    return rc;
}

int cnk_preprocess_finish_db(cnk_ctx *ctx, const cnk_preprocess *p, cnk_array *spec)
{
    return finish_db(ctx, p, NULL, spec);
}

/* The dB spectrogram (mel) or scalogram (wavelet) of a whole clip. */
static int spectrogram_of_file(cnk_ctx *ctx, cnk_prep_worker *w, const char *path, int wavelet, cnk_array *out)
{
    cnk_audio audio;
    int rc = cnk_audio_load(ctx, path, w->params.sample_rate, &audio);
    if (rc) return rc;
    size_t rows = wavelet ? cnk_wavelet_n_rows(w->wavelet) : cnk_spec_n_rows(w->mel);
    size_t frames = wavelet ? cnk_wavelet_n_frames(w->wavelet, audio.n_samples)
                            : cnk_spec_n_frames(w->mel, audio.n_samples);
    if (frames == 0 || rows == 0) {
        cnk_audio_release(&audio);
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: too short for one spectrogram frame", path);
    }
    out->data = malloc(rows * frames * sizeof *out->data);
    if (!out->data) {
        cnk_audio_release(&audio);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory for a %zux%zu spectrogram", path, rows, frames);
    }
    rc = wavelet ? cnk_wavelet_compute(ctx, w->wavelet, audio.samples, audio.n_samples, out->data)
                 : cnk_spec_compute(w->mel, audio.samples, audio.n_samples, out->data);
    cnk_audio_release(&audio);
    if (rc) {
        cnk_array_release(out);
        if (wavelet) return rc;
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: no spectrogram frame", path);
    }
    cnk_power_to_db(out->data, rows * frames, 1.0f, 1e-10f, 80.0f);
    out->ndim = 2;
    out->shape[0] = rows;
    out->shape[1] = frames;
    rc = finish_db(ctx, &w->params, w->lifter_rows == (int)rows ? w->lifter : NULL, out);
    if (rc) cnk_array_release(out);
    return rc;
}

/* An image centre-cropped to the model's aspect ratio (in the evaluation view its central p->crop), resized, in
 * [0, 1] (normalised later). */
static int image_of_file(cnk_ctx *ctx, const cnk_preprocess *p, const char *path, cnk_array *out)
{
    size_t n = (size_t)p->channels * p->height * p->width;
    out->data = malloc(n * sizeof *out->data);
    if (!out->data) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", path);
    float fraction = p->crop > 0 && p->crop < 1 ? p->crop : 1.0f;
    int rc = cnk_image_load_tensor_fraction(ctx, path, p->channels, p->width, p->height, CNK_CROP_CENTER, fraction,
                                            CNK_NORM_UNIT, out->data);
    if (rc) {
        cnk_array_release(out);
        return rc;
    }
    out->ndim = 3;
    out->shape[0] = (size_t)p->channels;
    out->shape[1] = (size_t)p->height;
    out->shape[2] = (size_t)p->width;
    return CNK_OK;
}

int cnk_preprocess_file(cnk_ctx *ctx, cnk_prep_worker *w, const char *path, cnk_array *features)
{
    memset(features, 0, sizeof *features);
    switch (w->params.kind) {
    case CNK_PREP_MEL:
        return spectrogram_of_file(ctx, w, path, 0, features);
    case CNK_PREP_WAVELET:
        return spectrogram_of_file(ctx, w, path, 1, features);
    case CNK_PREP_IMAGE:
        return image_of_file(ctx, &w->params, path, features);
    case CNK_PREP_NPY:
        return cnk_npy_read(ctx, path, features);
    default:
        return cnk_fail(ctx, CNK_ERR_UNSUPPORTED, "%s: input kind %s is not available in this build", path,
                        cnk_prep_kind_name(w->params.kind));
    }
}

static void describe_audio(const cnk_preprocess *p, char *out, size_t cap)
{
    int rows = p->kind == CNK_PREP_WAVELET ? p->n_scales : p->n_mels;
    double seconds = (double)(p->segment_frames - 1) * p->hop_length / (p->sample_rate > 0 ? p->sample_rate : 1);
    append_key(out, cap, ", %d Hz, FFT %d, hop %d, ", p->sample_rate, p->n_fft, p->hop_length);
    if (p->kind == CNK_PREP_MEL_WAVELET) append_key(out, cap, "%d bands and %d scales", p->n_mels, p->n_scales);
    else append_key(out, cap, "%d %s", rows, p->kind == CNK_PREP_WAVELET ? "scales" : "bands");
    append_key(out, cap, ", %.2g s segments (%d frames); dB re %s", seconds, p->segment_frames,
               p->db_ref_max ? "each clip's peak" : "1.0");
    append_key(out, cap, ", floor -%.3g dB", (double)(p->top_db > 0 && p->top_db < 80 ? p->top_db : 80));
    if (p->trim_db > 0) append_key(out, cap, ", silence trimmed at -%.3g dB", (double)p->trim_db);
    if (p->lifter > 0 && p->lifter < rows) append_key(out, cap, ", %d cepstral coefficients", p->lifter);
    if (p->clip_norm > 0 && p->clip_norm < CNK_CLIP_NORM_COUNT)
        append_key(out, cap, ", per-clip %s", clip_norm_names[p->clip_norm]);
    if (p->center) append_key(out, cap, ", centred");
}

void cnk_preprocess_describe(const cnk_preprocess *p, char *out, size_t cap)
{
    if (!cap) return;
    snprintf(out, cap, "%s", cnk_prep_kind_name(p->kind));
    if (cnk_prep_kind_is_audio(p->kind)) {
        describe_audio(p, out, cap);
    } else if (p->kind == CNK_PREP_IMAGE) {
        append_key(out, cap, " %dx%dx%d, standardised per channel", p->channels, p->height, p->width);
        if (p->eval_crop > 0 && p->eval_crop < 1)
            append_key(out, cap, ", evaluated on the central %.3g%% of the centre crop", 100.0 * p->eval_crop);
        if (p->tta_flip) append_key(out, cap, ", averaged with its mirror image");
    } else if (p->kind == CNK_PREP_CSV) {
        append_key(out, cap, ", %d features standardised one by one", p->n_features);
        if (p->height > 0) append_key(out, cap, ", as %dx%dx%d images", p->channels, p->height, p->width);
    }
}
