#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The state of one command's progress bar; lives as long as the command (owned by cli_ctx_init's caller
 * through ctx->user, allocated once per process run). */
typedef struct cli_state {
    const char *command;
    int is_tty;
    double started;
    char last_stage[64];
    int bar_visible;
} cli_state;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void clear_bar(cli_state *st)
{
    if (st->bar_visible) {
        fputs("\r\033[K", stderr);
        st->bar_visible = 0;
    }
}

static void on_warn(void *user, const char *message)
{
    cli_state *st = user;
    clear_bar(st);
    fprintf(stderr, "cnnkit %s: skipped: %s\n", st->command, message);
}

static void on_progress(void *user, const char *stage, size_t done, size_t total, const char *extra)
{
    cli_state *st = user;
    if (!st->is_tty) return;
    if (strncmp(st->last_stage, stage, sizeof st->last_stage - 1) != 0) {
        snprintf(st->last_stage, sizeof st->last_stage, "%s", stage);
        st->started = now_seconds();
    }
    double frac = total ? (double)done / (double)total : 0;
    int width = 30, filled = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    double elapsed = now_seconds() - st->started;
    double eta = (done > 0 && done < total) ? elapsed * (double)(total - done) / (double)done : 0;
    fprintf(stderr, "\r\033[K%s [%s] %zu/%zu %s ETA %.0fs", stage, bar, done, total, extra ? extra : "", eta);
    st->bar_visible = 1;
    if (done >= total) {
        fputc('\n', stderr);
        st->bar_visible = 0;
    }
    fflush(stderr);
}

void cli_ctx_init(cnk_ctx *ctx, const char *command)
{
    /* One state per process: a command runs once and exits, so it is simply never freed. */
    static cli_state state;
    cnk_ctx_init(ctx);
    state.command = command;
    state.is_tty = isatty(STDERR_FILENO);
    ctx->user = &state;
    ctx->warn = on_warn;
    ctx->progress = on_progress;
}

int cli_fail(const char *command, const cnk_ctx *ctx, int status)
{
    if (ctx->user) clear_bar(ctx->user);
    fprintf(stderr, "cnnkit %s: %s\n", command, cnk_error(ctx)[0] ? cnk_error(ctx) : "failed");
    return status == CNK_ERR_ARG ? CLI_USAGE : CLI_FATAL;
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "cnnkit %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'cnnkit %s --help'.\n", command);
    return CLI_USAGE;
}

int cli_success(const cnk_ctx *ctx) { return ctx->n_warnings ? CLI_SKIPPED : CLI_OK; }
