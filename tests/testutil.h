/* testutil.h: what every cmocka test needs: where shared data and fixtures are, scratch folders, and
 * array comparisons that report the worst element. */
#ifndef CNK_TESTUTIL_H
#define CNK_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/context.h"

/* $CNK_SHARED/<rel> (../shared beside the source tree), written into buf. */
const char *tu_shared(char *buf, size_t cap, const char *rel);
/* $CNK_FIXTURES/<rel> (tests/fixtures). */
const char *tu_fixture(char *buf, size_t cap, const char *rel);
/* The built cnnkit binary ($CNK_BIN). */
const char *tu_cnnkit_bin(void);
/* A fresh empty scratch directory under the build tree (removed by tu_rmtree). */
const char *tu_tmpdir(char *buf, size_t cap, const char *tag);
void tu_rmtree(const char *dir);
/* 1 if both files exist and hold the same bytes (a resumed run against the uninterrupted one). */
int tu_files_equal(const char *a, const char *b);
/* Runs a shell command and returns its exit status (or 128+signal if killed). */
int tu_system(const char *fmt, ...);
/* A context with 1 thread, seed 42 and no callbacks. */
void tu_ctx(cnk_ctx *ctx);
/* 1 when running under the sanitizer build: heavy tests shrink their workload. */
int tu_sanitized(void);

/* Largest |a-b| over n floats; *where gets its index. */
double tu_max_abs_diff(const float *a, const float *b, size_t n, size_t *where);
/* Fails the test with a readable message if any |a-b| > atol + rtol*|b|. */
void tu_assert_close(const float *a, const float *b, size_t n, double atol, double rtol, const char *what);

#endif
