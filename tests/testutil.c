#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return (v && *v) ? v : fallback;
}

const char *tu_shared(char *buf, size_t cap, const char *rel)
{
    snprintf(buf, cap, "%s/%s", env_or("CNK_SHARED", "../shared"), rel);
    return buf;
}

const char *tu_fixture(char *buf, size_t cap, const char *rel)
{
    snprintf(buf, cap, "%s/%s", env_or("CNK_FIXTURES", "tests/fixtures"), rel);
    return buf;
}

const char *tu_cnnkit_bin(void) { return env_or("CNK_BIN", "cnnkit"); }

const char *tu_tmpdir(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "%s/tmp-%s-%ld", env_or("CNK_BUILD_DIR", "."), tag, (long)getpid());
    tu_rmtree(buf);
    tu_system("mkdir -p '%s'", buf);
    return buf;
}

void tu_rmtree(const char *dir) { tu_system("rm -rf '%s'", dir); }

int tu_files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

int tu_system(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int status = system(cmd);
    if (status == -1) return -1;
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

void tu_ctx(cnk_ctx *ctx)
{
    cnk_ctx_init(ctx);
    ctx->threads = 1;
}

int tu_sanitized(void)
{
    const char *v = getenv("CNK_SANITIZE");
    return v && strcmp(v, "1") == 0;
}

double tu_max_abs_diff(const float *a, const float *b, size_t n, size_t *where)
{
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > worst || isnan(d)) {
            worst = isnan(d) ? INFINITY : d;
            at = i;
        }
    }
    if (where) *where = at;
    return worst;
}

void tu_assert_close(const float *a, const float *b, size_t n, double atol, double rtol, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= atol + rtol * fabs((double)b[i]))) {
            fail_msg("%s: element %zu differs: got %.8g, expected %.8g (|diff| %.3g, atol %.3g, rtol %.3g)", what, i,
                     (double)a[i], (double)b[i], d, atol, rtol);
        }
    }
}
