/* cfg.c: strict parsing of `.cfg` architecture text into a cnk_arch, and writing one back (see nn/cfg.h for
 * the grammar). Every error is one line "<source>:<line>: <problem>". */
#include "nn/cfg.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/strbuf.h"

#define MAX_CFG_BYTES ((size_t)16 << 20)
#define MAX_LINE 4096

/* Keys a block may hold, as bits. */
enum {
    K_NAME = 1 << 0, K_FROM = 1 << 1, K_TRAINABLE = 1 << 2, K_SHAPE = 1 << 3, K_FILTERS = 1 << 4,
    K_SIZE = 1 << 5, K_STRIDE = 1 << 6, K_DILATION = 1 << 7, K_PADDING = 1 << 8, K_BIAS = 1 << 9,
    K_ACTIVATION = 1 << 10, K_ALPHA = 1 << 11, K_EPS = 1 << 12, K_MOMENTUM = 1 << 13, K_UNITS = 1 << 14,
    K_RATE = 1 << 15
};
static const char *const key_names[] = {"name",    "from", "trainable",  "shape", "filters", "size",
                                        "stride",  "dilation", "padding", "bias",  "activation", "alpha",
                                        "eps",     "momentum", "units",   "rate"};
enum { N_KEYS = (int)(sizeof key_names / sizeof key_names[0]) };

#define K_COMMON (K_NAME | K_FROM | K_TRAINABLE)
#define K_WINDOW (K_SIZE | K_STRIDE | K_PADDING)
#define K_ACT (K_ACTIVATION | K_ALPHA)

static unsigned allowed_keys(cnk_layer_kind kind)
{
    switch (kind) {
    case CNK_LAYER_INPUT: return K_NAME | K_SHAPE;
    case CNK_LAYER_CONV2D: return K_COMMON | K_FILTERS | K_WINDOW | K_DILATION | K_BIAS | K_ACT;
    case CNK_LAYER_DEPTHWISE_CONV2D: return K_COMMON | K_WINDOW | K_DILATION | K_BIAS | K_ACT;
    case CNK_LAYER_MAXPOOL:
    case CNK_LAYER_AVGPOOL: return K_COMMON | K_WINDOW;
    case CNK_LAYER_BATCHNORM: return K_COMMON | K_EPS | K_MOMENTUM | K_ACT;
    case CNK_LAYER_DENSE: return K_COMMON | K_UNITS | K_BIAS | K_ACT;
    case CNK_LAYER_DROPOUT: return K_COMMON | K_RATE;
    case CNK_LAYER_ADD:
    case CNK_LAYER_ACTIVATION: return K_COMMON | K_ACT;
    default: return K_COMMON; /* global_avgpool, flatten, concat, softmax */
    }
}

/* Parsing state: the arch being built, the block in progress and what it has seen. */
typedef struct parser {
    cnk_ctx *ctx;
    const char *source;
    cnk_arch *arch;
    int *layer_lines; /* line of each layer's [kind] header, for messages about whole-network problems */
    int line;
    int in_block;     /* 1 = a layer block, 2 = [network] */
    int network_seen;
    cnk_layer layer;
    unsigned seen;
    char from[MAX_LINE];
    int from_line;
    int alpha_line;
    char outputs[MAX_LINE];
    int outputs_line;
} parser;

static int perr(parser *p, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int perr(parser *p, int line, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cnk_fail(p->ctx, CNK_ERR_INPUT, "%s:%d: %s", p->source, line, msg);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = '\0';
    return s;
}

/* ---- value parsers: 0 on success ------------------------------------------------------------------------ */

static int parse_int_text(const char *s, int min, int max, int *out)
{
    if (*s == '\0' || *s == '+' || *s == ' ') return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max) return -1;
    *out = (int)v;
    return 0;
}

static int parse_float_text(const char *s, float *out)
{
    if (*s == '\0' || *s == ' ') return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end != '\0' || !isfinite(v) || fabs(v) > 1e30) return -1;
    *out = (float)v;
    return 0;
}

/* "N" or "AxB" (pair) / "AxBxC" (triple) of ints in [min, max]: splits on 'x'. Returns how many were read. */
static int parse_ints_x(const char *s, int min, int max, int *vals, int max_vals)
{
    char buf[128];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    int n = 0;
    char *save = NULL;
    size_t len = strlen(buf);
    if (len == 0 || buf[0] == 'x' || buf[len - 1] == 'x' || strstr(buf, "xx")) return -1;
    for (char *tok = strtok_r(buf, "x", &save); tok; tok = strtok_r(NULL, "x", &save)) {
        if (n == max_vals || parse_int_text(tok, min, max, &vals[n])) return -1;
        n++;
    }
    return n;
}

static int parse_hw(const char *s, int *h, int *w)
{
    int v[2];
    int n = parse_ints_x(s, 1, 4096, v, 2);
    if (n == 1) v[1] = v[0];
    else if (n != 2) return -1;
    *h = v[0];
    *w = v[1];
    return 0;
}

static int parse_padding(const char *s, cnk_window *w)
{
    if (strcmp(s, "same") == 0) {
        w->padding = CNK_PAD_SAME;
        return 0;
    }
    if (strcmp(s, "valid") == 0) {
        w->padding = CNK_PAD_VALID;
        return 0;
    }
    int v[4], n = 0;
    char buf[128];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    char *save = NULL;
    size_t len = strlen(buf);
    if (len == 0 || buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,")) return -1;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == 4 || parse_int_text(trim(tok), 0, 4096, &v[n])) return -1;
        n++;
    }
    if (n == 1) v[1] = v[2] = v[3] = v[0];
    else if (n != 4) return -1;
    w->padding = CNK_PAD_EXPLICIT;
    w->pad_top = v[0];
    w->pad_bottom = v[1];
    w->pad_left = v[2];
    w->pad_right = v[3];
    return 0;
}

/* Resolves a comma-separated list of layer names (among layers [0, limit)) into indices. */
static int parse_name_list(parser *p, int line, const char *text, int limit, int *idx, int max, int *count,
                           const char *what)
{
    char buf[MAX_LINE];
    snprintf(buf, sizeof buf, "%s", text);
    *count = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *name = trim(tok);
        if (*count == max) return perr(p, line, "at most %d %s", max, what);
        int found = -1;
        for (int i = 0; i < limit; i++)
            if (strcmp(p->arch->layers[i].name, name) == 0) found = i;
        if (found < 0) return perr(p, line, "%s '%s' is not an earlier layer", what, name);
        idx[(*count)++] = found;
    }
    if (*count == 0) return perr(p, line, "empty %s list", what);
    return CNK_OK;
}

/* ---- blocks --------------------------------------------------------------------------------------------- */

static int set_key(parser *p, int key, const char *value)
{
    cnk_layer *l = &p->layer;
    int bad = 0;
    switch (key) {
    case K_NAME:
        if (strlen(value) >= CNK_NAME_MAX) return perr(p, p->line, "name longer than %d bytes", CNK_NAME_MAX - 1);
        strcpy(l->name, value);
        break;
    case K_FROM:
        snprintf(p->from, sizeof p->from, "%s", value);
        p->from_line = p->line;
        break;
    case K_TRAINABLE: bad = parse_int_text(value, 0, 1, &l->trainable); break;
    case K_SHAPE: {
        int v[3];
        bad = parse_ints_x(value, 1, 1 << 24, v, 3) != 3;
        if (!bad) l->input_shape = (cnk_shape){v[0], v[1], v[2]};
        break;
    }
    case K_FILTERS: bad = parse_int_text(value, 1, 1000000, &l->filters); break;
    case K_UNITS: bad = parse_int_text(value, 1, 1000000, &l->units); break;
    case K_SIZE: bad = parse_hw(value, &l->window.kernel_h, &l->window.kernel_w); break;
    case K_STRIDE: bad = parse_hw(value, &l->window.stride_h, &l->window.stride_w); break;
    case K_DILATION: bad = parse_hw(value, &l->window.dilation_h, &l->window.dilation_w); break;
    case K_PADDING: bad = parse_padding(value, &l->window); break;
    case K_BIAS: bad = parse_int_text(value, 0, 1, &l->bias); break;
    case K_ACTIVATION:
        if (cnk_act_parse(value, &l->activation.kind))
            return perr(p, p->line, "unknown activation '%s' (linear, step, sigmoid, tanh, relu, relu6, "
                                    "leaky_relu, elu, softmax)", value);
        break;
    case K_ALPHA:
        bad = parse_float_text(value, &l->activation.alpha);
        p->alpha_line = p->line;
        break;
    case K_EPS: bad = parse_float_text(value, &l->eps) || !(l->eps > 0 && l->eps < 1); break;
    case K_MOMENTUM: bad = parse_float_text(value, &l->momentum) || !(l->momentum >= 0 && l->momentum <= 1); break;
    case K_RATE: bad = parse_float_text(value, &l->rate) || !(l->rate >= 0 && l->rate < 1); break;
    default: return perr(p, p->line, "internal: unhandled key");
    }
    if (bad) return perr(p, p->line, "bad value '%s' for %s", value, key_names[__builtin_ctz((unsigned)key)]);
    return CNK_OK;
}

static int finish_block(parser *p)
{
    if (p->in_block != 1) return CNK_OK;
    p->in_block = 0;
    cnk_layer *l = &p->layer;
    int header_line = p->layer_lines[p->arch->n_layers];
    if (l->kind == CNK_LAYER_INPUT && !(p->seen & K_SHAPE)) return perr(p, header_line, "[input] needs shape = CxHxW");
    if (l->kind == CNK_LAYER_CONV2D && !(p->seen & K_FILTERS)) return perr(p, header_line, "[conv2d] needs filters");
    if (l->kind == CNK_LAYER_DENSE && !(p->seen & K_UNITS)) return perr(p, header_line, "[dense] needs units");
    int leaky_or_elu = l->activation.kind == CNK_ACT_LEAKY_RELU || l->activation.kind == CNK_ACT_ELU;
    if ((p->seen & K_ALPHA) && !leaky_or_elu)
        return perr(p, p->alpha_line, "alpha needs activation = leaky_relu or elu");
    if (!(p->seen & K_ALPHA) && l->activation.kind == CNK_ACT_ELU) l->activation.alpha = 1.0f;
    if (p->seen & K_FROM) {
        int rc = parse_name_list(p, p->from_line, p->from, p->arch->n_layers, l->inputs, CNK_MAX_LAYER_INPUTS,
                                 &l->n_inputs, "input");
        if (rc) return rc;
    }
    int rc = cnk_arch_add(p->ctx, p->arch, l, NULL);
    if (rc) return perr(p, header_line, "%s", cnk_error(p->ctx));
    return CNK_OK;
}

static int start_block(parser *p, char *header)
{
    int rc = finish_block(p);
    if (rc) return rc;
    size_t n = strlen(header);
    if (n < 2 || header[n - 1] != ']') return perr(p, p->line, "bad block header '%s'", header);
    header[n - 1] = '\0';
    char *kind_name = trim(header + 1);
    if (strcmp(kind_name, "network") == 0) {
        if (p->network_seen) return perr(p, p->line, "[network] given twice");
        p->network_seen = 1;
        p->in_block = 2;
        return CNK_OK;
    }
    cnk_layer_kind kind;
    if (cnk_layer_kind_parse(kind_name, &kind))
        return perr(p, p->line, "unknown layer kind [%s] (input, conv2d, depthwise_conv2d, maxpool, avgpool, "
                                "global_avgpool, batchnorm, dense, dropout, flatten, add, concat, activation, "
                                "softmax, network)", kind_name);
    if (p->arch->n_layers >= CNK_MAX_LAYERS) return perr(p, p->line, "too many layers (limit %d)", CNK_MAX_LAYERS);
    cnk_layer_init(&p->layer, kind);
    p->layer_lines[p->arch->n_layers] = p->line;
    p->seen = 0;
    p->in_block = 1;
    return CNK_OK;
}

static int key_value(parser *p, char *line)
{
    char *eq = strchr(line, '=');
    if (!eq) return perr(p, p->line, "expected 'key = value' or a [block] header");
    *eq = '\0';
    char *key = trim(line), *value = trim(eq + 1);
    if (p->in_block == 0) return perr(p, p->line, "'%s' outside a block", key);
    if (*value == '\0') return perr(p, p->line, "empty value for '%s'", key);
    if (p->in_block == 2) {
        if (strcmp(key, "outputs") != 0) return perr(p, p->line, "unknown key '%s' in [network] (outputs)", key);
        if (p->outputs_line) return perr(p, p->line, "outputs given twice");
        snprintf(p->outputs, sizeof p->outputs, "%s", value);
        p->outputs_line = p->line;
        return CNK_OK;
    }
    int k = 0;
    while (k < N_KEYS && strcmp(key, key_names[k]) != 0) k++;
    unsigned bit = k < N_KEYS ? 1u << k : 0;
    if (!bit || !(allowed_keys(p->layer.kind) & bit))
        return perr(p, p->line, "unknown key '%s' in [%s]", key, cnk_layer_kind_name(p->layer.kind));
    if (p->seen & bit) return perr(p, p->line, "'%s' given twice", key);
    p->seen |= bit;
    return set_key(p, (int)bit, value);
}

static int parse_line(parser *p, char *line)
{
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    char *s = trim(line);
    if (*s == '\0') return CNK_OK;
    if (*s == '[') return start_block(p, s);
    return key_value(p, s);
}

/* Network-level checks after the last block: outputs, then shape inference with the failing layer's line. */
static int finish_network(parser *p)
{
    int rc = finish_block(p);
    if (rc) return rc;
    cnk_arch *arch = p->arch;
    if (arch->n_layers == 0) return perr(p, p->line, "no layers");
    if (p->outputs_line) {
        rc = parse_name_list(p, p->outputs_line, p->outputs, arch->n_layers, arch->outputs, CNK_MAX_OUTPUTS,
                             &arch->n_outputs, "output");
        if (rc) return rc;
    }
    rc = cnk_arch_infer(p->ctx, arch);
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", cnk_error(p->ctx));
        int line = p->line;
        const char *q = strncmp(msg, "layer '", 7) == 0 ? msg + 7 : NULL;
        const char *end = q ? strchr(q, '\'') : NULL;
        if (end) {
            for (int i = 0; i < arch->n_layers; i++)
                if (strlen(arch->layers[i].name) == (size_t)(end - q) && strncmp(arch->layers[i].name, q, (size_t)(end - q)) == 0)
                    line = p->layer_lines[i];
        }
        return perr(p, line, "%s", msg);
    }
    return CNK_OK;
}

int cnk_cfg_parse(cnk_ctx *ctx, const char *text, const char *source, cnk_arch *arch)
{
    cnk_arch_init(arch);
    parser p;
    memset(&p, 0, sizeof p);
    p.ctx = ctx;
    p.source = source ? source : "cfg";
    p.arch = arch;
    p.layer_lines = calloc(CNK_MAX_LAYERS + 1, sizeof *p.layer_lines);
    if (!p.layer_lines) return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory", p.source);
    int rc = CNK_OK;
    char line[MAX_LINE];
    const char *s = text;
    while (*s && rc == CNK_OK) {
        p.line++;
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        if (len >= sizeof line) {
            rc = perr(&p, p.line, "line longer than %d bytes", MAX_LINE - 1);
            break;
        }
        memcpy(line, s, len);
        line[len] = '\0';
        rc = parse_line(&p, line);
        s = nl ? nl + 1 : s + len;
    }
    if (!rc) rc = finish_network(&p);
    free(p.layer_lines);
    if (rc) cnk_arch_release(arch);
    return rc;
}

int cnk_cfg_read_file(cnk_ctx *ctx, const char *path, cnk_arch *arch)
{
    cnk_arch_init(arch);
    unsigned char *data;
    size_t size;
    int rc = cnk_read_file(ctx, path, MAX_CFG_BYTES, &data, &size);
    if (rc) return rc;
    if (strlen((char *)data) != size) {
        free(data);
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: not a text file (NUL byte)", path);
    }
    rc = cnk_cfg_parse(ctx, (char *)data, path, arch);
    free(data);
    return rc;
}

/* ---- writing -------------------------------------------------------------------------------------------- */

/* The shortest decimal text that reads back as exactly v ("0.001", not "0.00100000005"). */
static const char *float_text(float v, char *buf, size_t cap)
{
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, cap, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return buf;
}

static void write_window(cnk_strbuf *b, const cnk_layer *l, int with_dilation)
{
    const cnk_window *w = &l->window;
    if (w->kernel_h == w->kernel_w) cnk_strbuf_printf(b, "size = %d\n", w->kernel_h);
    else cnk_strbuf_printf(b, "size = %dx%d\n", w->kernel_h, w->kernel_w);
    if (w->stride_h == w->stride_w) cnk_strbuf_printf(b, "stride = %d\n", w->stride_h);
    else cnk_strbuf_printf(b, "stride = %dx%d\n", w->stride_h, w->stride_w);
    if (with_dilation && (w->dilation_h != 1 || w->dilation_w != 1)) {
        if (w->dilation_h == w->dilation_w) cnk_strbuf_printf(b, "dilation = %d\n", w->dilation_h);
        else cnk_strbuf_printf(b, "dilation = %dx%d\n", w->dilation_h, w->dilation_w);
    }
    if (w->padding == CNK_PAD_SAME) cnk_strbuf_printf(b, "padding = same\n");
    else if (w->padding == CNK_PAD_VALID) cnk_strbuf_printf(b, "padding = valid\n");
    else if (w->pad_top == w->pad_bottom && w->pad_top == w->pad_left && w->pad_top == w->pad_right)
        cnk_strbuf_printf(b, "padding = %d\n", w->pad_top);
    else cnk_strbuf_printf(b, "padding = %d,%d,%d,%d\n", w->pad_top, w->pad_bottom, w->pad_left, w->pad_right);
}

static void write_activation(cnk_strbuf *b, const cnk_activation *a)
{
    if (a->kind == CNK_ACT_LINEAR) return;
    cnk_strbuf_printf(b, "activation = %s\n", cnk_act_name(a->kind));
    char num[32];
    if (a->kind == CNK_ACT_LEAKY_RELU || a->kind == CNK_ACT_ELU)
        cnk_strbuf_printf(b, "alpha = %s\n", float_text(a->alpha, num, sizeof num));
}

/* 1 if the layer's inputs are just "the previous layer" (so `from` can be left out). */
static int default_inputs(const cnk_layer *l, int index)
{
    return l->n_inputs == 0 || (l->n_inputs == 1 && l->inputs[0] == index - 1);
}

static void write_layer(cnk_strbuf *b, const cnk_arch *arch, int index)
{
    const cnk_layer *l = &arch->layers[index];
    char num[32];
    cnk_strbuf_printf(b, "[%s]\nname = %s\n", cnk_layer_kind_name(l->kind), l->name);
    if (l->kind != CNK_LAYER_INPUT && !default_inputs(l, index)) {
        cnk_strbuf_printf(b, "from = ");
        for (int k = 0; k < l->n_inputs; k++) {
            int src = l->inputs[k];
            cnk_strbuf_printf(b, "%s%s", k ? ", " : "", src >= 0 && src < arch->n_layers ? arch->layers[src].name : "?");
        }
        cnk_strbuf_printf(b, "\n");
    }
    if (l->kind != CNK_LAYER_INPUT && !l->trainable) cnk_strbuf_printf(b, "trainable = 0\n");
    switch (l->kind) {
    case CNK_LAYER_INPUT:
        cnk_strbuf_printf(b, "shape = %dx%dx%d\n", l->input_shape.c, l->input_shape.h, l->input_shape.w);
        break;
    case CNK_LAYER_CONV2D:
    case CNK_LAYER_DEPTHWISE_CONV2D:
        if (l->kind == CNK_LAYER_CONV2D) cnk_strbuf_printf(b, "filters = %d\n", l->filters);
        write_window(b, l, 1);
        if (!l->bias) cnk_strbuf_printf(b, "bias = 0\n");
        write_activation(b, &l->activation);
        break;
    case CNK_LAYER_MAXPOOL:
    case CNK_LAYER_AVGPOOL: write_window(b, l, 0); break;
    case CNK_LAYER_BATCHNORM:
        cnk_strbuf_printf(b, "eps = %s\n", float_text(l->eps, num, sizeof num));
        cnk_strbuf_printf(b, "momentum = %s\n", float_text(l->momentum, num, sizeof num));
        write_activation(b, &l->activation);
        break;
    case CNK_LAYER_DENSE:
        cnk_strbuf_printf(b, "units = %d\n", l->units);
        if (!l->bias) cnk_strbuf_printf(b, "bias = 0\n");
        write_activation(b, &l->activation);
        break;
    case CNK_LAYER_DROPOUT: cnk_strbuf_printf(b, "rate = %s\n", float_text(l->rate, num, sizeof num)); break;
    case CNK_LAYER_ADD:
        write_activation(b, &l->activation);
        break;
    case CNK_LAYER_ACTIVATION:
        cnk_strbuf_printf(b, "activation = %s\n", cnk_act_name(l->activation.kind));
        if (l->activation.kind == CNK_ACT_LEAKY_RELU || l->activation.kind == CNK_ACT_ELU)
            cnk_strbuf_printf(b, "alpha = %s\n", float_text(l->activation.alpha, num, sizeof num));
        break;
    default: break;
    }
    cnk_strbuf_printf(b, "\n");
}

int cnk_cfg_write(cnk_ctx *ctx, const cnk_arch *arch, char **text)
{
    *text = NULL;
    cnk_strbuf b;
    cnk_strbuf_init(&b);
    cnk_strbuf_printf(&b, "# cnnkit architecture (%d layers)\n", arch->n_layers);
    int default_outputs = arch->n_outputs == 0 || (arch->n_outputs == 1 && arch->outputs[0] == arch->n_layers - 1);
    if (!default_outputs) {
        cnk_strbuf_printf(&b, "[network]\noutputs = ");
        for (int k = 0; k < arch->n_outputs; k++) {
            int o = arch->outputs[k];
            cnk_strbuf_printf(&b, "%s%s", k ? ", " : "", o >= 0 && o < arch->n_layers ? arch->layers[o].name : "?");
        }
        cnk_strbuf_printf(&b, "\n\n");
    }
    for (int i = 0; i < arch->n_layers; i++) write_layer(&b, arch, i);
    *text = cnk_strbuf_take(&b);
    return *text ? CNK_OK : cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory writing an architecture");
}

int cnk_cfg_write_file(cnk_ctx *ctx, const cnk_arch *arch, const char *path)
{
    char *text;
    int rc = cnk_cfg_write(ctx, arch, &text);
    if (rc) return rc;
    rc = cnk_write_file_atomic(ctx, path, text, strlen(text));
    free(text);
    return rc;
}
