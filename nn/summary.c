/* summary.c: the Keras-like architecture table (see nn/summary.h). */
#include "nn/summary.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    char *data;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    while (!b->failed) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) b->failed = 1;
        else if (b->data && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        } else {
            size_t cap = b->cap * 2 + (size_t)n + 1024;
            char *grown = realloc(b->data, cap);
            if (!grown) b->failed = 1;
            else {
                b->data = grown;
                b->cap = cap;
            }
        }
    }
}

/* 1234567 -> "1,234,567" */
static const char *with_commas(size_t v, char *buf, size_t cap)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%zu", v);
    size_t pos = 0;
    for (int i = 0; i < n && pos + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[pos++] = ',';
        buf[pos++] = digits[i];
    }
    buf[pos] = '\0';
    return buf;
}

static void rule(sbuf *b, char c, int width)
{
    for (int i = 0; i < width; i++) sb_printf(b, "%c", c);
    sb_printf(b, "\n");
}

static void layer_row(sbuf *b, const cnk_arch *arch, int i)
{
    const cnk_layer *l = &arch->layers[i];
    char shape[48], count[32], kind[40];
    snprintf(shape, sizeof shape, "%dx%dx%d", l->out.c, l->out.h, l->out.w);
    snprintf(kind, sizeof kind, "%s%s", cnk_layer_kind_name(l->kind), l->trainable ? "" : " (frozen)");
    sb_printf(b, "%-28s %-26s %-16s %12s  ", l->name, kind, shape,
              with_commas(l->n_params + l->n_buffers, count, sizeof count));
    /* Inputs are shown only where they are not simply the layer above, as Keras' "Connected to". */
    int show = l->n_inputs > 1 || (l->n_inputs == 1 && l->inputs[0] != i - 1);
    for (int k = 0; show && k < l->n_inputs; k++)
        sb_printf(b, "%s%s", k ? ", " : "", arch->layers[l->inputs[k]].name);
    sb_printf(b, "\n");
}

int cnk_summary_format(cnk_ctx *ctx, const cnk_arch *arch, const char *title, char **text)
{
    *text = NULL;
    if (!arch->inferred) return cnk_fail(ctx, CNK_ERR_ARG, "summary: the architecture is not inferred");
    sbuf b = {NULL, 0, 0, 0};
    const int width = 110;
    if (title) sb_printf(&b, "%s\n", title);
    rule(&b, '_', width);
    sb_printf(&b, "%-28s %-26s %-16s %12s  %s\n", "Layer", "Kind", "Output shape", "Params", "Inputs");
    rule(&b, '=', width);
    for (int i = 0; i < arch->n_layers; i++) layer_row(&b, arch, i);
    rule(&b, '=', width);
    char n1[32], n2[32], n3[32], n4[32];
    sb_printf(&b, "Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n",
              with_commas(arch->n_params + arch->n_buffers, n1, sizeof n1),
              with_commas(arch->n_trainable_params, n2, sizeof n2),
              with_commas(cnk_arch_non_trainable(arch), n3, sizeof n3));
    sb_printf(&b, "Parameter array: %s floats, buffer array: %s floats (%.2f MB)\n",
              with_commas(arch->n_params, n1, sizeof n1), with_commas(arch->n_buffers, n4, sizeof n4),
              (double)(arch->n_params + arch->n_buffers) * 4.0 / 1e6);
    sb_printf(&b, "Outputs:");
    for (int k = 0; k < arch->n_outputs; k++) {
        const cnk_layer *o = &arch->layers[arch->outputs[k]];
        sb_printf(&b, "%s %s (%dx%dx%d)", k ? "," : "", o->name, o->out.c, o->out.h, o->out.w);
    }
    sb_printf(&b, "\nForward FLOPs per sample: %.4g G\n", arch->flops / 1e9);
    rule(&b, '_', width);
    if (b.failed) {
        free(b.data);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "summary: out of memory");
    }
    *text = b.data;
    return CNK_OK;
}
