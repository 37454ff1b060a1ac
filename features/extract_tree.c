#include "features/extract_tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsutil.h"
#include "core/npy.h"
#include "features/audio.h"
#include "features/png.h"

static int write_array(cnk_ctx *ctx, const char *out_path, const cnk_array *a, const cnk_extract_output *output)
{
    if (output->format == CNK_OUTPUT_PNG)
        return cnk_png_write_array(ctx, out_path, a->data, a->shape[0], a->shape[1], output->colormap);
    return cnk_npy_write(ctx, out_path, a->data, 2, a->shape);
}

int cnk_extract_to_file(cnk_ctx *ctx, cnk_extractor *ex, const char *in_path, const char *out_path,
                        const cnk_extract_output *output)
{
    cnk_array a;
    int rc = cnk_extract_file(ctx, ex, in_path, &a);
    if (rc != CNK_OK) return rc;
    rc = write_array(ctx, out_path, &a, output);
    cnk_array_release(&a);
    return rc;
}

/* out_dir + (path relative to in_dir) with its extension replaced; creates the parent folders. */
static int mirror_path(cnk_ctx *ctx, const char *in_dir, const char *path, const char *out_dir, const char *ext,
                       char *out, size_t cap)
{
    const char *rel = path + strlen(in_dir);
    while (*rel == '/')
        rel++;
    const char *dot = cnk_path_ext(rel);
    size_t stem = *dot ? (size_t)(dot - 1 - rel) : strlen(rel);
    int len = snprintf(out, cap, "%s/%.*s.%s", out_dir, (int)stem, rel, ext);
    if (len < 0 || (size_t)len >= cap) return cnk_fail(ctx, CNK_ERR_ARG, "%s: output path too long", path);
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", out);
    char *slash = strrchr(parent, '/');
    if (slash) {
        *slash = '\0';
        return cnk_mkdirs(ctx, parent);
    }
    return CNK_OK;
}

static int list_audio(cnk_ctx *ctx, const char *in_dir, cnk_pathlist *audio)
{
    cnk_pathlist all;
    memset(audio, 0, sizeof *audio);
    int rc = cnk_list_files(ctx, in_dir, 1, &all);
    if (rc != CNK_OK) return rc;
    for (size_t i = 0; i < all.count && rc == CNK_OK; i++)
        if (cnk_audio_is_audio_path(all.paths[i])) rc = cnk_pathlist_add(ctx, audio, all.paths[i]);
    cnk_pathlist_release(&all);
    if (rc == CNK_OK && audio->count == 0)
        rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: no audio files (wav, au, aiff, aif, flac, ogg, mp3) found", in_dir);
    if (rc != CNK_OK) cnk_pathlist_release(audio);
    return rc;
}

/* Shared state of one tree run; touched only inside omp critical sections. */
typedef struct tree_run {
    cnk_ctx *ctx;
    size_t done;
    size_t written;
    size_t total;
    int fatal;
} tree_run;

/* One file, on a worker with its own context and extractor. Input problems become warnings on the
 * caller's context; a write failure is fatal. */
static void run_one(tree_run *run, cnk_ctx *local, cnk_extractor *ex, const char *in_dir, const char *path,
                    const char *out_dir, const cnk_extract_output *output)
{
    char out_path[4096];
    const char *ext = output->format == CNK_OUTPUT_PNG ? "png" : "npy";
    cnk_array a;
    memset(&a, 0, sizeof a);
    int fatal_rc = CNK_OK, skipped = 0;
    int rc = cnk_extract_file(local, ex, path, &a);
    if (rc != CNK_OK)
        skipped = 1;
    else if ((rc = mirror_path(local, in_dir, path, out_dir, ext, out_path, sizeof out_path)) != CNK_OK)
        fatal_rc = rc;
    else if ((rc = write_array(local, out_path, &a, output)) == CNK_ERR_ARG)
        skipped = 1; /* this array cannot be drawn (a PNG over 65535 frames): skip the file, go on */
    else if (rc != CNK_OK)
        fatal_rc = rc; /* I/O errors stop the run */
    cnk_array_release(&a);
#pragma omp critical(cnk_extract_tree)
    {
        if (skipped) cnk_warn(run->ctx, "%s", cnk_error(local));
        if (fatal_rc != CNK_OK && !run->fatal) {
            cnk_fail(run->ctx, fatal_rc, "%s", cnk_error(local));
#pragma omp atomic write
            run->fatal = 1;
        }
        if (!skipped && fatal_rc == CNK_OK) run->written++;
        run->done++;
        cnk_progress(run->ctx, "features", run->done, run->total, cnk_path_base(path));
    }
}

/* Two inputs that differ only in their extension (x.wav and x.au) would mirror onto the same output file.
 * The first in bytewise order keeps it; each later one is marked in skip[] and reported, never overwritten. */
typedef struct stem_entry {
    const char *path;
    size_t stem_len;
    size_t index;
} stem_entry;

static int compare_stems(const void *a, const void *b)
{
    const stem_entry *x = a, *y = b;
    size_t n = x->stem_len < y->stem_len ? x->stem_len : y->stem_len;
    int c = memcmp(x->path, y->path, n);
    if (c == 0 && x->stem_len != y->stem_len) c = x->stem_len < y->stem_len ? -1 : 1;
    if (c == 0) c = x->index < y->index ? -1 : (x->index > y->index);
    return c;
}

static int owns_file(const cnk_extract_output *output, size_t index)
{
    return output->shard_count <= 1 || index % (size_t)output->shard_count == (size_t)output->shard_index;
}

static int mark_output_collisions(cnk_ctx *ctx, const cnk_pathlist *files, const cnk_extract_output *output,
                                  unsigned char *skip)
{
    if (files->count < 2) return CNK_OK;
    stem_entry *entries = malloc(files->count * sizeof *entries);
    if (!entries) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory listing outputs");
    for (size_t i = 0; i < files->count; i++) {
        const char *path = files->paths[i], *ext = cnk_path_ext(path);
        entries[i] = (stem_entry){path, *ext ? (size_t)(ext - 1 - path) : strlen(path), i};
    }
    qsort(entries, files->count, sizeof *entries, compare_stems);
    for (size_t i = 1; i < files->count; i++) {
        const stem_entry *prev = &entries[i - 1], *cur = &entries[i];
        if (prev->stem_len != cur->stem_len || memcmp(prev->path, cur->path, cur->stem_len) != 0) continue;
        size_t keeper = i - 1;
        while (keeper > 0 && skip[entries[keeper].index]) keeper--;
        skip[cur->index] = 1;
        if (owns_file(output, cur->index)) /* every process marks it; its owner alone reports it */
            cnk_warn(ctx, "%s: its output would overwrite the one of %s (same name, other extension)", cur->path,
                 entries[keeper].path);
    }
    free(entries);
    return CNK_OK;
}

int cnk_extract_tree(cnk_ctx *ctx, const cnk_extract_params *params, const char *in_dir, const char *out_dir,
                     const cnk_extract_output *output, int jobs, size_t *n_written)
{
    *n_written = 0;
    cnk_extractor *probe;
    int rc = cnk_extractor_create(ctx, params, &probe); /* bad parameters fail here, once */
    if (rc != CNK_OK) return rc;
    cnk_extractor_free(probe);
    cnk_pathlist files;
    if ((rc = list_audio(ctx, in_dir, &files)) != CNK_OK) return rc;
    if ((rc = cnk_mkdirs(ctx, out_dir)) != CNK_OK) {
        cnk_pathlist_release(&files);
        return rc;
    }
    unsigned char *skip = calloc(files.count ? files.count : 1, 1);
    if (!skip || (rc = mark_output_collisions(ctx, &files, output, skip)) != CNK_OK) {
        if (!skip) rc = cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory listing outputs");
        free(skip);
        cnk_pathlist_release(&files);
        return rc;
    }
    if (jobs < 1) jobs = 1;
    if ((size_t)jobs > files.count) jobs = (int)files.count;
    tree_run run = {.ctx = ctx, .total = files.count};
    cnk_progress(ctx, "features", 0, files.count, NULL);
#pragma omp parallel num_threads(jobs)
    {
        cnk_ctx local;
        cnk_ctx_init(&local);
        local.threads = 1;
        local.seed = ctx->seed;
        cnk_extractor *ex = NULL;
        if (cnk_extractor_create(&local, params, &ex) != CNK_OK) {
#pragma omp critical(cnk_extract_tree)
            if (!run.fatal) {
                cnk_fail(ctx, local.status, "%s", cnk_error(&local));
#pragma omp atomic write
                run.fatal = 1;
            }
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < files.count; i++) {
            int stop;
#pragma omp atomic read
            stop = run.fatal;
            if (stop || !ex) continue;
            if (skip[i] || !owns_file(output, i)) {
#pragma omp critical(cnk_extract_tree)
                cnk_progress(ctx, "features", ++run.done, run.total, cnk_path_base(files.paths[i]));
                continue;
            }
            run_one(&run, &local, ex, in_dir, files.paths[i], out_dir, output);
        }
        cnk_extractor_free(ex);
    }
    cnk_pathlist_release(&files);
    free(skip);
    *n_written = run.written;
    return run.fatal ? ctx->status : CNK_OK;
}
