/* import.h: a parsed TensorFlow Lite graph (nn/tflite.h) as a cnnkit network: MobileNetV2 / MobileNetV1
 * (any width) and YAMNet's CNN map onto the built-in mobilenet_v2 / mobilenet_v1 (folded BN) tensor by tensor. */
#ifndef CNK_IMPORT_H
#define CNK_IMPORT_H

#include <stddef.h>

#include "core/context.h"
#include "nn/arch.h"
#include "nn/modelfile.h"
#include "nn/tflite.h"

typedef enum cnk_import_kind {
    CNK_IMPORT_MOBILENET_V2 = 0, /* an image classifier: input RGB in [-1, 1] (pixel / 127.5 - 1) */
    CNK_IMPORT_MOBILENET_V1,     /* the same */
    CNK_IMPORT_YAMNET            /* AudioSet tagger: input one 96-frame x 64-band log-mel patch; the file's own
                                  * waveform front end is not imported (pipeline/yamnet.h computes it) */
} cnk_import_kind;

typedef struct cnk_import_info {
    cnk_import_kind kind;
    const char *arch_name;  /* "mobilenet_v2" or "mobilenet_v1" */
    float width;            /* the width multiplier that matched */
    cnk_shape input;        /* (C, H, W) of the network input */
    int n_classes;
    int first_op;           /* the graph's first op that belongs to the imported CNN */
    int logits_tensor;      /* the graph tensor holding the classifier's pre-activation output */
    int sigmoid_output;     /* 1: the file ends in LOGISTIC (multi-label scores), 0: SOFTMAX */
} cnk_import_info;

/* Builds the cnnkit architecture (*arch, initialised and inferred here) and its flat parameter array
 * (*params, malloc'd, arch->n_params floats in nn/arch.h's order) from graph. Conv weights go OHWI -> OIHW,
 * depthwise [1, kh, kw, C] -> [C, 1, kh, kw], the final 1x1 conv or fully-connected layer becomes the dense
 * `logits`; fused activations are carried over. Anything that does not fit fails with one line naming
 * `name` and the layer ("unsupported op X in layer Y", "layer 'block3_dw': stride 1 in the file, 2 in
 * mobilenet_v2"). */
int cnk_import_graph(cnk_ctx *ctx, const char *name, const cnk_tfl_graph *graph, cnk_arch *arch, float **params,
                     cnk_import_info *info);

/* Reads class names: a .csv class map with a display_name column (YAMNet's), or a text file with one label
 * per line of which the text up to the first comma is kept (ImageNet's). Repeated names get " (N)" appended
 * so each class stays unique. Fails unless the file has exactly n_expected names. *names is malloc'd
 * (n_expected malloc'd strings). */
int cnk_import_read_labels(cnk_ctx *ctx, const char *path, int n_expected, char ***names);

/* The labels file expected beside a .tflite (imagenet_labels.txt or yamnet_class_map.csv in its folder),
 * written into out; 0 if there is none. */
int cnk_import_default_labels(const char *tflite_path, char *out, size_t cap);

/* The whole import: reads the .tflite, maps it, and fills *mf (initialised here) with the arch text,
 * parameters and class names (from labels_path, or the default beside the file, or "class_<i>"); the
 * preprocessing text is left NULL for the caller, who knows the pipeline's format. */
int cnk_import_tflite(cnk_ctx *ctx, const char *tflite_path, const char *labels_path, cnk_modelfile *mf,
                      cnk_import_info *info);

#endif
