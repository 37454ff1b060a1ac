/* builtin.h: the built-in architectures (mlp, cnn, cnn4d, cnn5, cnn5d, cnn5s, mobilenet_v2, mobilenet_v1,
 * fusion) built for a given input shape and class count, so `--arch NAME` needs no .cfg file. The layer names are stable: TFLite
 * import and transfer learning rely on them (see each builder in builtin.c for the naming scheme). */
#ifndef CNK_BUILTIN_H
#define CNK_BUILTIN_H

#include "core/context.h"
#include "nn/arch.h"

typedef struct cnk_builtin_opts {
    cnk_shape input;   /* (C, H, W) of the (first) input; 0s = the architecture's default (see below) */
    cnk_shape input2;  /* fusion: the second (wavelet) input; 0s = same as input */
    int n_classes;     /* units of the classifier(s); 0 = default (10; 1001 for mobilenets) */
    float width;       /* mobilenets' width multiplier (alpha); 0 = 1.0 */
    int folded_bn;     /* mobilenets: 1 = every conv has a bias and a fused activation and there are no
                        * batchnorm layers (BN folded into the conv, as in TFLite files); 0 = conv + BN */
    float dropout;     /* rate of the dropout before the classifier; < 0 = none, 0 = default per arch */
} cnk_builtin_opts;

/* Default inputs: mlp 1x28x28, cnn 1x128x128, mobilenet_v2 3x224x224, mobilenet_v1 3x224x224 (YAMNet's body
 * is mobilenet_v1 at 1x96x64, width 1.0), fusion 1x128x128 + the same.
 *
 * Layer names:
 *   mlp:  flatten, fc1 (512 relu), drop1, fc2 (512 relu), drop2, logits
 *   cnn:  convN, convN_bn (relu), poolN for N = 1..4 (32, 64, 128, 128 filters), gap, dropout, logits
 *   cnn4d: cnn with a second conv in block 4: ..., conv4, conv4_bn, conv4b, conv4b_bn (relu), pool4, gap,
 *     dropout, logits (the speech default)
 *   cnn5: the same as cnn for N = 1..5 (32, 64, 128, 256, 256 filters), gap, dropout, logits
 *   cnn5d: cnn5 with a second conv in block 5: ..., conv5, conv5_bn, conv5b, conv5b_bn (relu), pool5, gap,
 *     dropout, logits (the photo default)
 *   cnn5s: cnn5 with a stride-2 conv1 and no pool1 (conv1, conv1_bn, then convN, convN_bn, poolN for N = 2..5),
 *     gap, dropout, logits (for 112 x 112 photos at about cnn5's cost at 96 x 96)
 *   mobilenet_v2 (Keras numbering): conv1 [+ conv1_bn]; blockB_expand [+ _bn] (absent in block0),
 *     blockB_dw [+ _bn], blockB_project [+ _bn], blockB_add (residual blocks only) for B = 0..16;
 *     conv_last [+ conv_last_bn]; gap; dropout; logits. The BN (or folded conv) carries relu6 except after
 *     project convs (linear).
 *   mobilenet_v1: conv1 [+ conv1_bn]; blockB_dw [+ _bn], blockB_pw [+ _bn] for B = 1..13 (all relu6); gap;
 *     dropout; logits.
 *   fusion: mel, wavelet (inputs); mel_convN/_bn/_poolN and wavelet_convN/... (4 blocks each, as cnn),
 *     mel_gap, mel_dropout, mel_logits, wavelet_gap, wavelet_dropout, wavelet_logits (per-branch heads),
 *     concat (of the two gaps), dropout, logits (fused).
 *     Outputs: logits (main), mel_logits, wavelet_logits. */
void cnk_builtin_opts_init(cnk_builtin_opts *opts);

/* Builds the named architecture into *arch (initialised and inferred by this call). Unknown name ->
 * CNK_ERR_ARG "unknown architecture 'x' (known: mlp, cnn, ...)". */
int cnk_builtin_arch(cnk_ctx *ctx, const char *name, const cnk_builtin_opts *opts, cnk_arch *arch);
/* 1 if name is a built-in. */
int cnk_builtin_exists(const char *name);
/* The built-in names, NULL-terminated. */
const char *const *cnk_builtin_names(void);
/* The built-in names as one line, "mlp, cnn, ..." (for messages and help texts); truncated to fit cap, which
 * CNK_BUILTIN_NAMES_MAX holds whole. */
#define CNK_BUILTIN_NAMES_MAX 256
const char *cnk_builtin_names_text(char *out, size_t cap);

/* Keras' _make_divisible: v rounded to the nearest multiple of divisor (>= min_value, default divisor),
 * never more than 10% below v. */
int cnk_make_divisible(double v, int divisor);

#endif
