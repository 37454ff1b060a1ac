/* fsutil.h: the file-system chores shared by every stage: listing a folder tree in a stable order,
 * making directories, and splitting paths. */
#ifndef CNK_FSUTIL_H
#define CNK_FSUTIL_H

#include <stddef.h>

#include "core/context.h"

typedef struct cnk_pathlist {
    char **paths; /* malloc'd strings */
    size_t count;
    size_t cap;
} cnk_pathlist;

/* Appends a copy of path. */
int cnk_pathlist_add(cnk_ctx *ctx, cnk_pathlist *list, const char *path);
void cnk_pathlist_release(cnk_pathlist *list);
/* Sorts bytewise (strcmp), the order class names and files are always taken in. */
void cnk_pathlist_sort(cnk_pathlist *list);

/* Lists regular files below dir (recursively if recursive), sorted bytewise, skipping hidden entries
 * (names starting with '.'). Paths are dir + "/" + relative path. */
int cnk_list_files(cnk_ctx *ctx, const char *dir, int recursive, cnk_pathlist *out);
/* Lists the immediate subdirectories of dir (names only), sorted bytewise, skipping hidden ones. */
int cnk_list_subdirs(cnk_ctx *ctx, const char *dir, cnk_pathlist *out);

/* 1 if path is a directory / a regular file. */
int cnk_is_dir(const char *path);
int cnk_is_file(const char *path);
/* mkdir -p. */
int cnk_mkdirs(cnk_ctx *ctx, const char *path);
/* Pointer to the extension after the last '.' of the basename ("" if none). */
const char *cnk_path_ext(const char *path);
/* Pointer to the basename. */
const char *cnk_path_base(const char *path);
/* Case-insensitive extension test: cnk_path_has_ext("a.WAV", "wav") == 1. */
int cnk_path_has_ext(const char *path, const char *ext);

#endif
