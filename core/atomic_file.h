/* atomic_file.h: write a file under a temporary name and rename it into place on success, so a crash,
 * a kill or an error never leaves a half-written output where the user expects a complete one. */
#ifndef CNK_ATOMIC_FILE_H
#define CNK_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "core/context.h"

typedef struct cnk_afile {
    FILE *fp;            /* write here */
    char path[4096];     /* final name */
    char tmp_path[4200]; /* temporary name in the same directory */
} cnk_afile;

/* Opens a unique "<path>.tmp.XXXXXX" beside path for binary writing. */
int cnk_afile_open(cnk_ctx *ctx, cnk_afile *af, const char *path);
/* Flushes, syncs, closes and renames onto the final path. Fails (and removes the temporary file) if any
 * earlier write failed. */
int cnk_afile_commit(cnk_ctx *ctx, cnk_afile *af);
/* Closes and removes the temporary file. Safe to call after a failed commit or on an unopened afile. */
void cnk_afile_abort(cnk_afile *af);

/* Writes a whole buffer atomically. */
int cnk_write_file_atomic(cnk_ctx *ctx, const char *path, const void *data, size_t size);

/* Reads a whole file into a malloc'd buffer (NUL-terminated for convenience; size excludes it).
 * max_size guards against absurd inputs (0 = no limit). */
int cnk_read_file(cnk_ctx *ctx, const char *path, size_t max_size, unsigned char **data, size_t *size);

#endif
