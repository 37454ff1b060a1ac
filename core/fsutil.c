#include "core/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

int cnk_pathlist_add(cnk_ctx *ctx, cnk_pathlist *list, const char *path)
{
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64;
        char **grown = realloc(list->paths, cap * sizeof *grown);
        if (!grown) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory listing files");
        list->paths = grown;
        list->cap = cap;
    }
    char *copy = strdup(path);
    if (!copy) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory listing files");
    list->paths[list->count++] = copy;
    return CNK_OK;
}

void cnk_pathlist_release(cnk_pathlist *list)
{
    for (size_t i = 0; i < list->count; i++) free(list->paths[i]);
    free(list->paths);
    memset(list, 0, sizeof *list);
}

static int compare_paths(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void cnk_pathlist_sort(cnk_pathlist *list)
{
    if (list->count > 1) qsort(list->paths, list->count, sizeof *list->paths, compare_paths);
}

int cnk_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int cnk_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Collects entries of one directory, sorted, so recursion visits them in bytewise order. */
static int read_sorted_entries(cnk_ctx *ctx, const char *dir, cnk_pathlist *names)
{
    DIR *d = opendir(dir);
    if (!d) return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = CNK_OK;
    while (!rc && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        rc = cnk_pathlist_add(ctx, names, e->d_name);
    }
    closedir(d);
    cnk_pathlist_sort(names);
    return rc;
}

static int list_into(cnk_ctx *ctx, const char *dir, int recursive, int depth, cnk_pathlist *out)
{
    if (depth > 64) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: directory tree deeper than 64 levels", dir);
    cnk_pathlist names = {0};
    int rc = read_sorted_entries(ctx, dir, &names);
    for (size_t i = 0; !rc && i < names.count; i++) {
        size_t len = strlen(dir) + strlen(names.paths[i]) + 2;
        char *full = malloc(len);
        if (!full) {
            rc = cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory listing %s", dir);
            break;
        }
        snprintf(full, len, "%s/%s", dir, names.paths[i]);
        struct stat st;
        if (stat(full, &st) == 0) {
            if (S_ISREG(st.st_mode)) rc = cnk_pathlist_add(ctx, out, full);
            else if (S_ISDIR(st.st_mode) && recursive) rc = list_into(ctx, full, recursive, depth + 1, out);
        }
        free(full);
    }
    cnk_pathlist_release(&names);
    return rc;
}

int cnk_list_files(cnk_ctx *ctx, const char *dir, int recursive, cnk_pathlist *out)
{
    memset(out, 0, sizeof *out);
    int rc = list_into(ctx, dir, recursive, 0, out);
    if (rc) cnk_pathlist_release(out);
    return rc;
}

int cnk_list_subdirs(cnk_ctx *ctx, const char *dir, cnk_pathlist *out)
{
    memset(out, 0, sizeof *out);
    cnk_pathlist names = {0};
    int rc = read_sorted_entries(ctx, dir, &names);
    for (size_t i = 0; !rc && i < names.count; i++) {
        size_t len = strlen(dir) + strlen(names.paths[i]) + 2;
        char *full = malloc(len);
        if (!full) {
            rc = cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory listing %s", dir);
            break;
        }
        snprintf(full, len, "%s/%s", dir, names.paths[i]);
        if (cnk_is_dir(full)) rc = cnk_pathlist_add(ctx, out, names.paths[i]);
        free(full);
    }
    cnk_pathlist_release(&names);
    if (rc) cnk_pathlist_release(out);
    return rc;
}

int cnk_mkdirs(cnk_ctx *ctx, const char *path)
{
    char buf[4096];
    if (strlen(path) >= sizeof buf) return cnk_fail(ctx, CNK_ERR_ARG, "%s: path too long", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
    if (!cnk_is_dir(buf)) return cnk_fail(ctx, CNK_ERR_IO, "%s: exists and is not a directory", buf);
    return CNK_OK;
}

const char *cnk_path_base(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

const char *cnk_path_ext(const char *path)
{
    const char *base = cnk_path_base(path);
    const char *dot = strrchr(base, '.');
    return (dot && dot != base) ? dot + 1 : "";
}

int cnk_path_has_ext(const char *path, const char *ext) { return strcasecmp(cnk_path_ext(path), ext) == 0; }
