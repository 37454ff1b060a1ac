/* extract_tree.h: `cnnkit features` as a library call: one audio file to one .npy/.png, or a folder tree
 * of audio files to a mirrored tree of feature files, files in parallel, bad inputs skipped and reported. */
#ifndef CNK_EXTRACT_TREE_H
#define CNK_EXTRACT_TREE_H

#include <stddef.h>

#include "core/context.h"
#include "features/colormap.h"
#include "features/extract.h"

typedef enum cnk_output_format { CNK_OUTPUT_NPY = 0, CNK_OUTPUT_PNG = 1 } cnk_output_format;

typedef struct cnk_extract_output {
    cnk_output_format format;
    cnk_colormap colormap; /* png only */
    /* Folder runs split across processes (MPI ranks): this process handles the files whose index in the
     * sorted listing is shard_index modulo shard_count. shard_count 0 or 1 = every file. */
    int shard_index, shard_count;
} cnk_extract_output;

/* Computes the features of in_path and writes out_path (atomically). */
int cnk_extract_to_file(cnk_ctx *ctx, cnk_extractor *ex, const char *in_path, const char *out_path,
                        const cnk_extract_output *output);

/* Every audio file below in_dir (wav au aiff aif flac ogg mp3, recursively) -> out_dir/<same relative path with
 * the extension replaced by .npy or .png>, with `jobs` files in flight (each worker has its own plans).
 * Unreadable inputs are reported through cnk_warn and skipped (ctx->n_warnings counts them); progress goes
 * through cnk_progress. Fails (and stops) on a write error, or if in_dir holds no audio file.
 * *n_written gets the number of feature files written. */
int cnk_extract_tree(cnk_ctx *ctx, const cnk_extract_params *params, const char *in_dir, const char *out_dir,
                     const cnk_extract_output *output, int jobs, size_t *n_written);

#endif
