#include "pipeline/ckpt_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/modelfile.h"

enum { VALUE_CHARS = 32 }; /* "%.17g" and a comma */

void cnk_ckpt_optim_path(const char *ckpt, int epoch, char *out, size_t cap)
{
    snprintf(out, cap, "%s.optim-%d.npy", ckpt, epoch);
}

void cnk_ckpt_remove_optim(const char *ckpt, int epoch)
{
    if (epoch < 0) return;
    char path[4400];
    cnk_ckpt_optim_path(ckpt, epoch, path, sizeof path);
    remove(path);
}

size_t cnk_ckpt_history_size(int n_series, int n_epochs)
{
    return (size_t)n_series * ((size_t)n_epochs * VALUE_CHARS + 16);
}

size_t cnk_ckpt_append_history(char *text, size_t len, size_t cap, double *const *series, int n_series, int n_epochs)
{
    for (int s = 0; s < n_series && len < cap; s++) {
        len += (size_t)snprintf(text + len, cap - len, "ckpt_h%d=", s);
        for (int e = 0; e < n_epochs && len < cap; e++)
            len += (size_t)snprintf(text + len, cap - len, "%s%.17g", e ? "," : "", series[s][e]);
        if (len < cap) len += (size_t)snprintf(text + len, cap - len, "\n");
    }
    return len;
}

int cnk_ckpt_read_history(cnk_ctx *ctx, const char *text, const char *source, double *const *series, int n_series,
                          int n_epochs)
{
    size_t cap = (size_t)n_epochs * VALUE_CHARS + 64;
    char *buf = malloc(cap);
    if (!buf) return cnk_fail(ctx, CNK_ERR_NOMEM, "out of memory");
    int rc = CNK_OK;
    for (int s = 0; s < n_series && !rc; s++) {
        char key[32];
        snprintf(key, sizeof key, "ckpt_h%d", s);
        if (cnk_kv_get(ctx, text, key, buf, cap)) {
            rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: no training history in the checkpoint", source);
            break;
        }
        const char *p = buf;
        for (int e = 0; !rc && e < n_epochs; e++) {
            char *end;
            series[s][e] = strtod(p, &end);
            if (end == p) rc = cnk_fail(ctx, CNK_ERR_INPUT, "%s: bad history in the checkpoint", source);
            p = *end == ',' ? end + 1 : end;
        }
    }
    free(buf);
    return rc;
}

int cnk_ckpt_number(cnk_ctx *ctx, const char *text, const char *source, const char *key, double *out)
{
    char buf[64];
    if (cnk_kv_get(ctx, text, key, buf, sizeof buf))
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: not a training checkpoint (no %s)", source, key);
    char *end;
    double v = strtod(buf, &end);
    if (end == buf || *end) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: bad value '%s' for %s", source, buf, key);
    *out = v;
    return CNK_OK;
}

static int read_schedule(cnk_ctx *ctx, const char *text, const char *source, int epochs_option,
                         cnk_ckpt_schedule *out)
{
    double epoch = 0, epochs = 0, batch = 0, lr = 0, patience = 0, wd = 0;
    int rc = cnk_ckpt_number(ctx, text, source, "ckpt_epoch", &epoch);
    if (!rc) rc = cnk_ckpt_number(ctx, text, source, "ckpt_epochs", &epochs);
    if (!rc) rc = cnk_ckpt_number(ctx, text, source, "ckpt_batch", &batch);
    if (!rc) rc = cnk_ckpt_number(ctx, text, source, "ckpt_lr", &lr);
    if (!rc) rc = cnk_ckpt_number(ctx, text, source, "ckpt_patience", &patience);
    if (!rc) rc = cnk_ckpt_number(ctx, text, source, "ckpt_wd", &wd);
    if (rc) return rc;
    if (!(epochs >= 1 && epochs <= 1e6 && epoch >= 0 && epoch <= epochs && batch >= 1 && batch <= 65536 && lr > 0 &&
          patience >= -1 && patience <= 1e6 && wd >= 0))
        return cnk_fail(ctx, CNK_ERR_INPUT, "%s: checkpoint values out of range", source);
    out->start_epoch = (int)epoch;
    out->epochs = epochs_option > 0 ? epochs_option : (int)epochs;
    if (out->epochs < out->start_epoch) out->epochs = out->start_epoch;
    out->batch = (int)batch;
    out->patience = (int)patience;
    out->lr = lr;
    out->weight_decay = wd;
    return CNK_OK;
}

void cnk_ckpt_kind(cnk_ctx *ctx, const char *text, char *out, size_t cap)
{
    cnk_ctx quiet = *ctx; /* an absent key is an answer here, not an error */
    char value[64];
    if (cnk_kv_get(&quiet, text, "ckpt_kind", value, sizeof value) == CNK_OK) {
        snprintf(out, cap, "%s", value);
        return;
    }
    int has_kind = strstr(text ? text : "", "ckpt_kind=") != NULL; /* then too long to be one we know */
    int has_epoch = cnk_kv_get(&quiet, text, "ckpt_epoch", value, sizeof value) == CNK_OK;
    snprintf(out, cap, "%s", has_epoch && !has_kind ? "plain" : "");
}

/* How a checkpoint of each kind is resumed, for the refusal's message. */
static const char *resumed_how(const char *kind)
{
    if (strcmp(kind, "plain") == 0) return "a plain training checkpoint: resume it without --from or --arch fusion";
    if (strcmp(kind, "fusion") == 0)
        return "a fusion training checkpoint: resume it with --input mel+wavelet --arch fusion";
    if (strcmp(kind, "transfer") == 0) return "a transfer-learning checkpoint: resume it with --from and its backbone";
    return "not a training checkpoint";
}

int cnk_ckpt_check_kind(cnk_ctx *ctx, const char *text, const char *source, const char *kind)
{
    char found[32];
    cnk_ckpt_kind(ctx, text, found, sizeof found);
    if (strcmp(found, kind) == 0) return CNK_OK;
    return cnk_fail(ctx, CNK_ERR_INPUT, "%s: %s", source, resumed_how(found));
}

int cnk_ckpt_read_schedule(cnk_ctx *ctx, const char *text, const char *source, int epochs_option,
                           cnk_ckpt_schedule *out)
{
    /* The plain loop names no kind: a transfer checkpoint, whose text has a schedule too, must not pass. */
    char found[32];
    cnk_ckpt_kind(ctx, text, found, sizeof found);
    if (strcmp(found, "transfer") == 0) return cnk_fail(ctx, CNK_ERR_INPUT, "%s: %s", source, resumed_how(found));
    return read_schedule(ctx, text, source, epochs_option, out);
}

int cnk_ckpt_read_schedule_of(cnk_ctx *ctx, const char *text, const char *source, const char *kind,
                              int epochs_option, cnk_ckpt_schedule *out)
{
    int rc = cnk_ckpt_check_kind(ctx, text, source, kind);
    return rc ? rc : read_schedule(ctx, text, source, epochs_option, out);
}
