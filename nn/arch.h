/* arch.h: the description of a network (layers, their wiring and hyper-parameters), shape inference, parameter
 * counts, FLOPs, and THE one definition of the parameter-tensor order and layouts that models, .cnk files,
 * TFLite import and bench/cnk_torch.py all follow. No weights live here: nn/model.h builds a runnable model.
 *
 * A network is an ordered list of layers (a DAG in topological order: a layer only takes earlier layers as
 * inputs). Tensors are NCHW; every layer's per-sample output shape is (C, H, W); dense/global pool outputs
 * are (units, 1, 1).
 *
 * Parameter order (flat arrays): layers in arch order; inside a layer its trainable tensors in the order
 * cnk_arch_layer_tensors() lists them. Buffers (BN running statistics) go in a second flat array, same rule.
 * Layouts are PyTorch's:
 *   conv2d            weight [out, in, kh, kw] (OIHW), then bias [out] if bias = 1
 *   depthwise_conv2d  weight [C, 1, kh, kw], then bias [C] if bias = 1      (channel multiplier 1)
 *   dense             weight [out, in], then bias [out] if bias = 1; in = C*H*W of the input, flattened
 *                     in C, H, W order (a dense layer flattens its input implicitly)
 *   batchnorm         gamma [C], beta [C] (trainable); buffers running_mean [C], running_var [C]
 * A frozen layer (trainable = 0) keeps its tensors in the same place; they are just not updated. */
#ifndef CNK_ARCH_H
#define CNK_ARCH_H

#include <stddef.h>

#include "core/context.h"

#define CNK_NAME_MAX 64          /* layer names: [A-Za-z0-9_-]+, at most 63 bytes (no dots: PyTorch) */
#define CNK_MAX_LAYER_INPUTS 16  /* add / concat take at most this many inputs */
#define CNK_MAX_OUTPUTS 8        /* declared network outputs */
#define CNK_MAX_LAYERS 4096      /* refuse absurd architectures */
#define CNK_MAX_LAYER_TENSORS 4  /* trainable tensors + buffers of one layer */

typedef enum cnk_layer_kind {
    CNK_LAYER_INPUT = 0,          /* a network input of shape (C, H, W); several allowed */
    CNK_LAYER_CONV2D,             /* filters, window, bias, fused activation */
    CNK_LAYER_DEPTHWISE_CONV2D,   /* window, bias, fused activation; out channels = in channels */
    CNK_LAYER_MAXPOOL,            /* window (dilation 1); SAME/explicit padding never wins the max */
    CNK_LAYER_AVGPOOL,            /* window (dilation 1); padded cells are NOT counted (TF SAME semantics) */
    CNK_LAYER_GLOBAL_AVGPOOL,     /* (C, H, W) -> (C, 1, 1) */
    CNK_LAYER_BATCHNORM,          /* per channel; eps, momentum; fused activation allowed */
    CNK_LAYER_DENSE,              /* units, bias, fused activation; (C,H,W) input is flattened */
    CNK_LAYER_DROPOUT,            /* rate; identity at inference */
    CNK_LAYER_FLATTEN,            /* (C, H, W) -> (C*H*W, 1, 1) */
    CNK_LAYER_ADD,                /* element-wise sum of >= 2 equal-shaped inputs; fused activation allowed */
    CNK_LAYER_CONCAT,             /* along channels; inputs share H and W */
    CNK_LAYER_ACTIVATION,         /* a stand-alone activation (activation field) */
    CNK_LAYER_SOFTMAX,            /* softmax over channels at each (h, w) */
    CNK_LAYER_KIND_COUNT
} cnk_layer_kind;

typedef enum cnk_act_kind {
    CNK_ACT_LINEAR = 0, /* identity: "linear" (the default fused activation) */
    CNK_ACT_STEP,       /* x > 0 ? 1 : 0 (perceptron; gradient taken as 0) */
    CNK_ACT_SIGMOID,
    CNK_ACT_TANH,
    CNK_ACT_RELU,
    CNK_ACT_RELU6,
    CNK_ACT_LEAKY_RELU, /* x > 0 ? x : alpha * x */
    CNK_ACT_ELU,        /* x > 0 ? x : alpha * (exp(x) - 1) */
    CNK_ACT_SOFTMAX,    /* over channels, as CNK_LAYER_SOFTMAX */
    CNK_ACT_KIND_COUNT
} cnk_act_kind;

typedef struct cnk_activation {
    cnk_act_kind kind;
    float alpha; /* leaky_relu slope (default 0.01) / elu alpha (default 1.0); ignored otherwise */
} cnk_activation;

typedef enum cnk_window_padding {
    CNK_PAD_EXPLICIT = 0, /* pad_top/bottom/left/right as given (cfg: "padding = 1" or "padding = t,b,l,r") */
    CNK_PAD_SAME,         /* TensorFlow SAME: out = ceil(in / stride); total pad split with the odd extra
                           * cell at the bottom/right */
    CNK_PAD_VALID         /* no padding: out = floor((in - dilation*(k-1) - 1) / stride) + 1 */
} cnk_window_padding;

typedef struct cnk_shape {
    int c, h, w;
} cnk_shape;

/* The sliding window of conv2d, depthwise_conv2d, maxpool and avgpool. After cnk_arch_infer the pad_*
 * fields hold the ACTUAL padding for every mode (SAME resolved for the input size, VALID = 0), so kernels
 * only ever read pad_top/bottom/left/right. */
typedef struct cnk_window {
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int dilation_h, dilation_w; /* pools: always 1 */
    cnk_window_padding padding;
    int pad_top, pad_bottom, pad_left, pad_right;
} cnk_window;

/* One layer. Only the fields its kind uses are meaningful (listed per field); cnk_layer_init() sets every
 * field to its default so a builder sets just what differs. */
typedef struct cnk_layer {
    cnk_layer_kind kind;
    char name[CNK_NAME_MAX]; /* unique in the arch */
    /* Inputs: indices of earlier layers. n_inputs = 0 before inference means "the previous layer";
     * cnk_arch_infer fills it in. input layers have none. add/concat need >= 2. */
    int n_inputs;
    int inputs[CNK_MAX_LAYER_INPUTS];
    int trainable; /* 1 = its parameters are updated by training (default); 0 = frozen */

    cnk_shape input_shape;     /* input: the (C, H, W) of the data fed here */
    int filters;               /* conv2d: output channels */
    int units;                 /* dense: output features */
    cnk_window window;         /* conv2d, depthwise_conv2d, maxpool, avgpool */
    int bias;                  /* conv2d, depthwise_conv2d, dense: 1 = has a bias (default 1) */
    cnk_activation activation; /* fused activation of conv2d, depthwise, dense, batchnorm, add;
                                * THE activation of an activation layer (softmax layers ignore it) */
    float eps;                 /* batchnorm: default 1e-5 */
    float momentum;            /* batchnorm, PyTorch convention: running = (1-m)*running + m*batch_stat;
                                * running_var uses the unbiased batch variance; default 0.1 */
    float rate;                /* dropout: probability of zeroing, [0, 1) */

    /* Filled by cnk_arch_infer: */
    cnk_shape out;             /* per-sample output shape */
    size_t n_params;           /* trainable-tensor elements of this layer (frozen or not) */
    size_t n_buffers;          /* buffer elements (batchnorm running stats) */
    size_t param_offset;       /* where this layer's tensors start in the flat parameter array */
    size_t buffer_offset;      /* ... and in the flat buffer array */
    double flops;              /* forward floating-point operations per sample (2 per multiply-add) */
} cnk_layer;

typedef struct cnk_arch {
    cnk_layer *layers; /* malloc'd, n_layers used of cap */
    int n_layers;
    int cap;
    /* Declared outputs (layer indices); the first is the main output (the prediction). n_outputs = 0 before
     * inference means "the last layer"; cnk_arch_infer fills it in. */
    int n_outputs;
    int outputs[CNK_MAX_OUTPUTS];
    int outputs_defaulted;         /* set by cnk_arch_infer when it chose "the last layer"; cnk_arch_add
                                    * then clears the outputs again so the new last layer becomes it */
    /* Filled by cnk_arch_infer: */
    int inferred;                  /* 1 after a successful cnk_arch_infer; any edit should reset it */
    int n_input_layers;            /* input layers (at most CNK_MAX_OUTPUTS), in arch order: the order in
                                    * which inputs are passed to a model */
    int input_layers[CNK_MAX_OUTPUTS];
    size_t n_params;               /* all parameters, the length of the flat parameter array */
    size_t n_trainable_params;     /* those of layers with trainable = 1 */
    size_t n_buffers;              /* the length of the flat buffer array */
    double flops;                  /* forward FLOPs per sample */
} cnk_arch;

typedef enum cnk_tensor_role {
    CNK_TENSOR_WEIGHT = 0,  /* conv / depthwise / dense weight: random init (He or Glorot from fan_in/out) */
    CNK_TENSOR_BIAS,        /* init 0 */
    CNK_TENSOR_BN_GAMMA,    /* init 1 */
    CNK_TENSOR_BN_BETA,     /* init 0 */
    CNK_TENSOR_BN_MEAN,     /* buffer, init 0 */
    CNK_TENSOR_BN_VAR       /* buffer, init 1 */
} cnk_tensor_role;

/* One parameter tensor or buffer of a layer. */
typedef struct cnk_tensor_spec {
    const char *suffix;  /* "weight", "bias", "gamma", "beta", "running_mean", "running_var" (static) */
    cnk_tensor_role role;
    int is_buffer;       /* 0: in the flat parameter array; 1: in the flat buffer array */
    int ndim;
    int dims[4];         /* PyTorch layout, see the top of this file */
    size_t count;        /* product of dims */
    size_t offset;       /* absolute offset in the flat parameter (or buffer) array */
    int fan_in, fan_out; /* weights, as PyTorch computes them: dims[1]*kh*kw and dims[0]*kh*kw (dense:
                          * in, out; depthwise: kh*kw, C*kh*kw); 0 for the other roles */
} cnk_tensor_spec;

/* Names <-> enums ("conv2d", "depthwise_conv2d", "maxpool", "avgpool", "global_avgpool", "batchnorm",
 * "dense", "dropout", "flatten", "add", "concat", "activation", "softmax", "input"; activations "linear",
 * "step", "sigmoid", "tanh", "relu", "relu6", "leaky_relu", "elu", "softmax"). parse returns -1 if unknown. */
const char *cnk_layer_kind_name(cnk_layer_kind kind);
int cnk_layer_kind_parse(const char *name, cnk_layer_kind *kind);
const char *cnk_act_name(cnk_act_kind kind);
int cnk_act_parse(const char *name, cnk_act_kind *kind);

/* Every field of layer set to kind's defaults: stride 1, dilation 1, kernel 1, explicit padding 0, bias 1,
 * linear activation (alpha 0.01 / 1.0 for elu), eps 1e-5, momentum 0.1, rate 0.5, trainable 1, inputs =
 * previous layer, empty name. */
void cnk_layer_init(cnk_layer *layer, cnk_layer_kind kind);

void cnk_arch_init(cnk_arch *arch);
void cnk_arch_release(cnk_arch *arch);
/* Deep copy (dst is initialised by this call; release it with cnk_arch_release). */
int cnk_arch_copy(cnk_ctx *ctx, cnk_arch *dst, const cnk_arch *src);

/* Appends a copy of layer. An empty name gets "<kind><index>". Fails on a duplicate or malformed name or
 * too many layers. *index (may be NULL) receives the new layer's index. Resets arch->inferred. */
int cnk_arch_add(cnk_ctx *ctx, cnk_arch *arch, const cnk_layer *layer, int *index);
/* Index of the layer called name, or -1. */
int cnk_arch_find(const cnk_arch *arch, const char *name);

/* Validates the whole network and fills the inferred fields: default inputs/outputs, output shapes,
 * resolved padding, parameter/buffer counts and offsets, FLOPs. Every problem is one error naming the layer
 * ("layer 'block3_add': add inputs have different shapes 24x56x56 and 32x28x28"). Idempotent. */
int cnk_arch_infer(cnk_ctx *ctx, cnk_arch *arch);

/* The parameter tensors then buffers of layer (arch must be inferred), in THE flat-array order. Returns how
 * many were written to specs (0..CNK_MAX_LAYER_TENSORS). */
int cnk_arch_layer_tensors(const cnk_arch *arch, int layer, cnk_tensor_spec specs[CNK_MAX_LAYER_TENSORS]);

/* Parameter elements that are not trained: buffers + tensors of frozen layers (Keras' "non-trainable"). */
size_t cnk_arch_non_trainable(const cnk_arch *arch);

/* The layer whose output is the feature vector the main output's classifier reads: walking back from the
 * main output through softmax/activation/dropout/flatten layers to the last dense, its input (below any
 * dropout). -1 if the main output is not produced by a dense layer. Used for "--freeze backbone" and transfer-learning caches. */
int cnk_arch_feature_layer(const cnk_arch *arch);
/* Sets trainable = 0 on layers [0, n) (input layers stay 1: they hold nothing) and 1 on the rest. */
void cnk_arch_freeze_first(cnk_arch *arch, int n);
/* Sets the units of the dense layer that produces each declared output (as found by the same walk-back) to
 * n_classes, for transfer learning to a new class set; re-infers. Fails if an output has no such dense. */
int cnk_arch_set_classes(cnk_ctx *ctx, cnk_arch *arch, int n_classes);

/* Output size of one spatial dimension. SAME / VALID write the (before, after) padding they imply;
 * EXPLICIT reads it from *pad_before / *pad_after. Returns the output size, or <= 0 if the window does
 * not fit. */
int cnk_window_out_size(int in, int kernel, int stride, int dilation, cnk_window_padding mode, int *pad_before,
                        int *pad_after);

#endif
