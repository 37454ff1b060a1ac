/* modelfile.h: `.cnk` model files: everything needed to predict in one file (architecture cfg text, class
 * names, preprocessing parameters, weights and BN buffers), checksummed, written atomically, read safely.
 *
 * Layout (all integers little-endian):
 *   header   "CNKMODEL" (8 bytes) | u32 format version (1) | u32 section count | u32 CRC-32 of the 16 bytes
 *   section  u32 tag | u64 payload length | payload | u32 CRC-32 of tag+length+payload
 *   tags     'ARCH' cfg text, 'CLAS' class names (one per line), 'PREP' key=value lines,
 *            'PARM' u64 count + float32[count], 'BUFF' u64 count + float32[count]; each exactly once.
 * Reading checks magic, version (newer -> "made by a newer cnnkit"), every CRC, every length against the
 * file size, that the arch parses, and that the counts match it. */
#ifndef CNK_MODELFILE_H
#define CNK_MODELFILE_H

#include <stddef.h>

#include "core/context.h"
#include "nn/arch.h"

/* The .cnk format version (doc/FORMAT.md): 1 the first layout; 2 the same layout with PREP keys whose absence
 * would change predictions (the spectrogram clean-up top_db, clip_norm, lifter, trim_db, center, and photos'
 * tta_flip), so a version-1 reader, which would ignore them, refuses these files instead; 3 adds photos'
 * eval_crop (a version-2 reader would classify the whole centre crop). */
#define CNK_MODELFILE_VERSION 3

typedef struct cnk_modelfile {
    char *arch_text;    /* cfg text (nn/cfg.h) */
    char **class_names; /* n_classes strings (no newlines) */
    int n_classes;
    char *preprocess;   /* "key=value\n" lines filled by the pipeline; may be "" */
    float *params;      /* n_params floats, order of nn/arch.h */
    size_t n_params;
    float *buffers;     /* n_buffers floats */
    size_t n_buffers;
} cnk_modelfile;

/* All fields NULL / 0. */
void cnk_modelfile_init(cnk_modelfile *mf);
/* Frees every field the struct owns (after cnk_modelfile_read, or fields the caller malloc'd). */
void cnk_modelfile_release(cnk_modelfile *mf);

/* Writes mf atomically. Checks that arch_text parses, that n_params / n_buffers match it and that there are
 * as many class names as the main output has units (when it is C x 1 x 1). Class names must be non-empty
 * and contain no line break. Reading checks the same. */
int cnk_modelfile_write(cnk_ctx *ctx, const char *path, const cnk_modelfile *mf);
/* Reads path into *mf (initialised by this call). On failure *mf is empty and the message names the file. */
int cnk_modelfile_read(cnk_ctx *ctx, const char *path, cnk_modelfile *mf);
/* Same, from memory; name is used in messages. */
int cnk_modelfile_read_mem(cnk_ctx *ctx, const char *name, const unsigned char *data, size_t size,
                           cnk_modelfile *mf);
/* Parses mf->arch_text into *arch (initialised and inferred). */
int cnk_modelfile_arch(cnk_ctx *ctx, const cnk_modelfile *mf, cnk_arch *arch);

/* The value of key in a "key=value\n" text (e.g. mf->preprocess), copied into out; CNK_ERR_INPUT if absent
 * or too long. */
int cnk_kv_get(cnk_ctx *ctx, const char *text, const char *key, char *out, size_t out_size);

#endif
