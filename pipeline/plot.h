/* plot.h: the report's PNG charts drawn with PLplot's cairo device: confusion-matrix heatmap, per-class
 * F1 bars (one bar per model when comparing) and training curves. Each chart is written atomically. */
#ifndef CNK_PLOT_H
#define CNK_PLOT_H

#include <stddef.h>

#include "core/context.h"

/* A heatmap: cells coloured by the row-normalised value, the count written in every cell, class names
 * on both axes. Figure and fonts scale with the class count (readable from 2 to 50+ classes). */
int cnk_plot_confusion(cnk_ctx *ctx, const char *path, const char *title, size_t n_classes,
                       const char *const *class_names, const size_t *counts, const double *row_norm);

/* Horizontal bars: values[m * n_classes + c] in [0, 1] for model m and class c (NAN = no bar). With
 * several models the bars are grouped per class and a legend names the models. */
int cnk_plot_class_bars(cnk_ctx *ctx, const char *path, const char *title, const char *value_name, size_t n_classes,
                        const char *const *class_names, size_t n_models, const char *const *model_names,
                        const double *values);

/* One model's (or several models') per-epoch series. Any pointer may be NULL; NAN = missing value. */
typedef struct cnk_plot_series {
    const char *name;
    size_t n_epochs;
    const double *train_loss, *val_loss, *train_acc, *val_acc;
} cnk_plot_series;

/* Two panels, loss and accuracy per epoch, train (solid) and validation (dashed), one colour per model. */
int cnk_plot_curves(cnk_ctx *ctx, const char *path, const char *title, size_t n_series, const cnk_plot_series *series);

#endif
