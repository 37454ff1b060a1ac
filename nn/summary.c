/* summary.c: the Keras-like architecture table (see nn/summary.h). */
#include "nn/summary.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"

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

static void rule(cnk_strbuf *b, char c, int width)
{
    for (int i = 0; i < width; i++) cnk_strbuf_printf(b, "%c", c);
    cnk_strbuf_printf(b, "\n");
}

static void layer_row(cnk_strbuf *b, const cnk_arch *arch, int i)
{
    const cnk_layer *l = &arch->layers[i];
    char shape[48], count[32], kind[40];
    snprintf(shape, sizeof shape, "%dx%dx%d", l->out.c, l->out.h, l->out.w);
    snprintf(kind, sizeof kind, "%s%s", cnk_layer_kind_name(l->kind), l->trainable ? "" : " (frozen)");
    cnk_strbuf_printf(b, "%-28s %-26s %-16s %12s  ", l->name, kind, shape,
              with_commas(l->n_params + l->n_buffers, count, sizeof count));
    /* Inputs are shown only where they are not simply the layer above, as Keras' "Connected to". */
    int show = l->n_inputs > 1 || (l->n_inputs == 1 && l->inputs[0] != i - 1);
    for (int k = 0; show && k < l->n_inputs; k++)
        cnk_strbuf_printf(b, "%s%s", k ? ", " : "", arch->layers[l->inputs[k]].name);
    cnk_strbuf_printf(b, "\n");
}

int cnk_summary_format(cnk_ctx *ctx, const cnk_arch *arch, const char *title, char **text)
{
    *text = NULL;
    if (!arch->inferred) return cnk_fail(ctx, CNK_ERR_ARG, "summary: the architecture is not inferred");
    cnk_strbuf b;
    cnk_strbuf_init(&b);
    const int width = 110;
    if (title) cnk_strbuf_printf(&b, "%s\n", title);
    rule(&b, '_', width);
    cnk_strbuf_printf(&b, "%-28s %-26s %-16s %12s  %s\n", "Layer", "Kind", "Output shape", "Params", "Inputs");
    rule(&b, '=', width);
    for (int i = 0; i < arch->n_layers; i++) layer_row(&b, arch, i);
    rule(&b, '=', width);
    char n1[32], n2[32], n3[32], n4[32];
    cnk_strbuf_printf(&b, "Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n",
              with_commas(arch->n_params + arch->n_buffers, n1, sizeof n1),
              with_commas(arch->n_trainable_params, n2, sizeof n2),
              with_commas(cnk_arch_non_trainable(arch), n3, sizeof n3));
    cnk_strbuf_printf(&b, "Parameter array: %s floats, buffer array: %s floats (%.2f MB)\n",
              with_commas(arch->n_params, n1, sizeof n1), with_commas(arch->n_buffers, n4, sizeof n4),
              (double)(arch->n_params + arch->n_buffers) * 4.0 / 1e6);
    cnk_strbuf_printf(&b, "Outputs:");
    for (int k = 0; k < arch->n_outputs; k++) {
        const cnk_layer *o = &arch->layers[arch->outputs[k]];
        cnk_strbuf_printf(&b, "%s %s (%dx%dx%d)", k ? "," : "", o->name, o->out.c, o->out.h, o->out.w);
    }
    cnk_strbuf_printf(&b, "\nForward FLOPs per sample: %.4g G\n", arch->flops / 1e9);
    rule(&b, '_', width);
    *text = cnk_strbuf_take(&b);
    return *text ? CNK_OK : cnk_fail(ctx, CNK_ERR_NOMEM, "summary: out of memory");
}
