/* cfg.h: the readable `.cfg` text form of an architecture (one [kind] block of key = value lines per
 * layer, Darknet-like but strict) and writing an arch back to it; write then parse gives the same arch.
 *
 * Format:
 *   # comment (also after a value)            [network]           optional, first: outputs = a, b, c
 *   [input]     name, shape = CxHxW            [conv2d]            filters, size (or size = KHxKW), stride,
 *   [depthwise_conv2d] size, stride, dilation, padding, bias, activation, alpha
 *   [maxpool] [avgpool] size, stride, padding  [global_avgpool]    [flatten]
 *   [batchnorm] eps, momentum, activation      [dense] units, bias, activation, alpha
 *   [dropout] rate                             [add] activation    [concat]
 *   [activation] activation, alpha             [softmax]
 * Every block accepts: name = ID, from = ID[, ID...] (default: the previous layer), trainable = 0|1.
 * stride / dilation: N or HxW. padding: same | valid | N | top,bottom,left,right. bias: 0|1.
 * Unknown blocks or keys, repeated keys, bad values and networks that don't fit (see cnk_arch_infer) fail
 * with one line "<source>:<line>: <problem>". */
#ifndef CNK_CFG_H
#define CNK_CFG_H

#include <stddef.h>

#include "core/context.h"
#include "nn/arch.h"

/* Parses text (NUL-terminated); source names it in messages (a path, or e.g. "builtin:cnn"). On success
 * *arch is initialised and inferred (release it with cnk_arch_release); on failure it is left empty. */
int cnk_cfg_parse(cnk_ctx *ctx, const char *text, const char *source, cnk_arch *arch);
/* Reads and parses a .cfg file (at most 16 MiB). */
int cnk_cfg_read_file(cnk_ctx *ctx, const char *path, cnk_arch *arch);
/* Writes arch (inferred or not) as cfg text into a malloc'd NUL-terminated string (*text; caller frees).
 * Only non-default values are written, except the ones that make a block readable (filters, size...). */
int cnk_cfg_write(cnk_ctx *ctx, const cnk_arch *arch, char **text);
/* cnk_cfg_write into a file, atomically. */
int cnk_cfg_write_file(cnk_ctx *ctx, const cnk_arch *arch, const char *path);

#endif
