/* tflite.h: reads a TensorFlow Lite flatbuffer (schema v3) into a neutral float graph: tensors with
 * NHWC shapes and dequantised constant data, and operators with their builtin options, for import. */
#ifndef CNK_TFLITE_H
#define CNK_TFLITE_H

#include <stddef.h>

#include "core/context.h"

#define CNK_TFL_MAX_DIMS 8
#define CNK_TFL_MAX_OP_IO 32 /* LSTMs take 24 inputs */

/* TensorType values of schema.fbs. */
enum cnk_tfl_type {
    CNK_TFL_FLOAT32 = 0,
    CNK_TFL_FLOAT16 = 1,
    CNK_TFL_INT32 = 2,
    CNK_TFL_UINT8 = 3,
    CNK_TFL_INT64 = 4,
    CNK_TFL_INT16 = 7,
    CNK_TFL_INT8 = 9
};

/* BuiltinOperator values of schema.fbs that cnnkit's import understands (others keep their number). */
enum cnk_tfl_opcode {
    CNK_TFL_ADD = 0,
    CNK_TFL_AVERAGE_POOL_2D = 1,
    CNK_TFL_CONCATENATION = 2,
    CNK_TFL_CONV_2D = 3,
    CNK_TFL_DEPTHWISE_CONV_2D = 4,
    CNK_TFL_DEQUANTIZE = 6,
    CNK_TFL_FULLY_CONNECTED = 9,
    CNK_TFL_LOGISTIC = 14,
    CNK_TFL_MAX_POOL_2D = 17,
    CNK_TFL_MUL = 18,
    CNK_TFL_RELU = 19,
    CNK_TFL_RELU6 = 21,
    CNK_TFL_RESHAPE = 22,
    CNK_TFL_SOFTMAX = 25,
    CNK_TFL_CUSTOM = 32,
    CNK_TFL_PAD = 34,
    CNK_TFL_MEAN = 40,
    CNK_TFL_SQUEEZE = 43,
    CNK_TFL_QUANTIZE = 114
};

/* Padding and fused activations of the builtin options. */
enum cnk_tfl_padding { CNK_TFL_PAD_SAME = 0, CNK_TFL_PAD_VALID = 1 };
enum cnk_tfl_activation { CNK_TFL_ACT_NONE = 0, CNK_TFL_ACT_RELU = 1, CNK_TFL_ACT_RELU_N1_TO_1 = 2,
                          CNK_TFL_ACT_RELU6 = 3, CNK_TFL_ACT_TANH = 4 };

typedef struct cnk_tfl_tensor {
    char *name;                  /* malloc'd, never NULL */
    int type;                    /* enum cnk_tfl_type as stored in the file */
    int ndim;
    int shape[CNK_TFL_MAX_DIMS]; /* as in the file (NHWC for activations) */
    size_t count;                /* product of shape */
    float *data;                 /* constant values dequantised to float32, or NULL for activations */
    /* Quantisation as stored (first channel's values; for reference only: data is already float). */
    int quantized;
    float scale;
    long zero_point;
    int n_scales;                /* 1 per tensor, > 1 per channel */
    int quantized_dimension;
} cnk_tfl_tensor;

typedef struct cnk_tfl_op {
    int code;                    /* BuiltinOperator */
    char name[64];               /* "CONV_2D", or the custom code's name for CUSTOM ops */
    int n_inputs, n_outputs;
    int inputs[CNK_TFL_MAX_OP_IO];  /* tensor indices, -1 = optional input left out */
    int outputs[CNK_TFL_MAX_OP_IO];
    /* Builtin options (whichever the op has; defaults otherwise). */
    int padding;                 /* enum cnk_tfl_padding */
    int stride_w, stride_h;
    int dilation_w, dilation_h;
    int filter_w, filter_h;      /* pools */
    int depth_multiplier;
    int activation;              /* enum cnk_tfl_activation */
    int keep_dims;               /* MEAN */
    float beta;                  /* SOFTMAX */
} cnk_tfl_op;

typedef struct cnk_tfl_graph {
    cnk_tfl_tensor *tensors;
    int n_tensors;
    cnk_tfl_op *ops;             /* in execution order */
    int n_ops;
    int inputs[CNK_TFL_MAX_OP_IO], n_inputs;
    int outputs[CNK_TFL_MAX_OP_IO], n_outputs;
    char description[128];
} cnk_tfl_graph;

/* Parses a .tflite image held in memory (name is used in messages). Constant tensors are dequantised
 * (uint8 asymmetric per tensor, int8 symmetric per channel, int32 biases); DEQUANTIZE ops on constants
 * are folded away. Every offset is bounds-checked: a damaged file is CNK_ERR_INPUT, never a crash. */
int cnk_tflite_parse(cnk_ctx *ctx, const char *name, const unsigned char *bytes, size_t size,
                     cnk_tfl_graph *graph);
/* Reads and parses a .tflite file. */
int cnk_tflite_read(cnk_ctx *ctx, const char *path, cnk_tfl_graph *graph);
void cnk_tflite_release(cnk_tfl_graph *graph);

/* The schema's name of a builtin operator ("CONV_2D"), or "BUILTIN_<n>" for ones not in the table. */
const char *cnk_tflite_op_name(int code, char *buf, size_t cap);
/* 1 for the ops a float run of the imported CNNs needs (CONV_2D, DEPTHWISE_CONV_2D, ADD, AVERAGE_POOL_2D,
 * MEAN, FULLY_CONNECTED, RESHAPE, SQUEEZE, SOFTMAX, LOGISTIC, PAD, DEQUANTIZE, QUANTIZE). */
int cnk_tflite_op_supported(int code);
/* Fails with "NAME: unsupported op X in layer I (output T)" for the first op in [first, last) that
 * cnk_tflite_op_supported() refuses. */
int cnk_tflite_check_ops(cnk_ctx *ctx, const char *name, const cnk_tfl_graph *graph, int first, int last);
/* Index of the tensor called name, or -1. */
int cnk_tflite_find_tensor(const cnk_tfl_graph *graph, const char *name);
/* Index of the op that writes tensor t, or -1 (graph inputs and constants). */
int cnk_tflite_producer(const cnk_tfl_graph *graph, int t);

#endif
