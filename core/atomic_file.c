#include "core/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cnk_afile_open(cnk_ctx *ctx, cnk_afile *af, const char *path)
{
    memset(af, 0, sizeof *af);
    if (strlen(path) >= sizeof af->path) return cnk_fail(ctx, CNK_ERR_ARG, "%s: path too long", path);
    strcpy(af->path, path);
    /* mkstemp gives a unique name in the target's directory, so rename() stays on one file system. */
    snprintf(af->tmp_path, sizeof af->tmp_path, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(af->tmp_path);
    if (fd < 0) {
        af->tmp_path[0] = '\0';
        return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot create file: %s", path, strerror(errno));
    }
    fchmod(fd, 0644); /* mkstemp makes 0600; outputs are ordinary files */
    af->fp = fdopen(fd, "wb");
    if (!af->fp) {
        close(fd);
        unlink(af->tmp_path);
        af->tmp_path[0] = '\0';
        return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot open file: %s", path, strerror(errno));
    }
    return CNK_OK;
}

int cnk_afile_commit(cnk_ctx *ctx, cnk_afile *af)
{
    if (!af->fp) return cnk_fail(ctx, CNK_ERR_INTERNAL, "%s: file was not open", af->path);
    int failed = ferror(af->fp) || fflush(af->fp) != 0;
    if (!failed) failed = fsync(fileno(af->fp)) != 0 && errno != EINVAL;
    int err = errno;
    if (fclose(af->fp) != 0) failed = 1;
    af->fp = NULL;
    if (failed) {
        unlink(af->tmp_path);
        return cnk_fail(ctx, CNK_ERR_IO, "%s: write failed: %s", af->path, strerror(err));
    }
    if (rename(af->tmp_path, af->path) != 0) {
        err = errno;
        unlink(af->tmp_path);
        return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot rename into place: %s", af->path, strerror(err));
    }
    return CNK_OK;
}

void cnk_afile_abort(cnk_afile *af)
{
    if (af->fp) {
        fclose(af->fp);
        af->fp = NULL;
    }
    if (af->tmp_path[0]) unlink(af->tmp_path);
    af->tmp_path[0] = '\0';
}

int cnk_write_file_atomic(cnk_ctx *ctx, const char *path, const void *data, size_t size)
{
    cnk_afile af;
    int rc = cnk_afile_open(ctx, &af, path);
    if (rc) return rc;
    if (size && fwrite(data, 1, size, af.fp) != size) {
        cnk_afile_abort(&af);
        return cnk_fail(ctx, CNK_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return cnk_afile_commit(ctx, &af);
}

int cnk_read_file(cnk_ctx *ctx, const char *path, size_t max_size, unsigned char **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    /* O_NONBLOCK: opening a named pipe would otherwise wait forever for a writer; it is refused below. */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cnk_fail(ctx, CNK_ERR_IO, "%s: not a regular file", path);
    }
    FILE *fp = fdopen(fd, "rb");
    if (!fp) {
        close(fd);
        return cnk_fail(ctx, CNK_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    if (max_size && (size_t)st.st_size > max_size) {
        fclose(fp);
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: file too large (%lld bytes, limit %zu)", path,
                        (long long)st.st_size, max_size);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n + 1);
    if (!buf) {
        fclose(fp);
        return cnk_fail(ctx, CNK_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, fp);
    int err = ferror(fp);
    fclose(fp);
    if (err || got != n) {
        free(buf);
        return cnk_fail(ctx, CNK_ERR_IO, "%s: read failed", path);
    }
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return CNK_OK;
}
