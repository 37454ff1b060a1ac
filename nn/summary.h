/* summary.h: a Keras-like text summary of an architecture (each layer's name, kind, output shape, parameter
 * count and inputs, then totals) formatted into a string; the caller decides where it is printed. */
#ifndef CNK_SUMMARY_H
#define CNK_SUMMARY_H

#include "core/context.h"
#include "nn/arch.h"

/* Formats the table of an inferred arch into a malloc'd NUL-terminated string (*text; caller frees). title
 * (may be NULL) heads the table. The totals follow Keras: "Total params" = parameters + buffers,
 * "Trainable params" = parameters of trainable layers, "Non-trainable params" = buffers + frozen
 * parameters; then the flat array lengths and the forward FLOPs per sample. Numbers use thousands commas. */
int cnk_summary_format(cnk_ctx *ctx, const cnk_arch *arch, const char *title, char **text);

#endif
