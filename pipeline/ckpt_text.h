/* ckpt_text.h: what the training loops' checkpoints (pipeline/train_loop.c, pipeline/fusion_ckpt.c,
 * pipeline/transfer_ckpt.c) keep in their model file's text besides the model's own keys: numbers by key, the
 * kind of run (ckpt_kind) and the history of every epoch so far as comma-separated series ckpt_h0=, ckpt_h1=,
 * ... (train loss, train accuracy, val loss, val accuracy). */
#ifndef CNK_CKPT_TEXT_H
#define CNK_CKPT_TEXT_H

#include <stddef.h>

#include "core/context.h"

/* The optimiser-state file of a checkpoint after `epoch` epochs: "<ckpt>.optim-<epoch>.npy". One file per
 * epoch, so a kill between writing it and the model checkpoint leaves the previous epoch's pair intact; once
 * the new checkpoint is in place, cnk_ckpt_remove_optim(ckpt, epoch - 1) drops the previous one. */
void cnk_ckpt_optim_path(const char *ckpt, int epoch, char *out, size_t cap);
void cnk_ckpt_remove_optim(const char *ckpt, int epoch);

/* Room the history of n_series series over n_epochs takes (for sizing the text buffer). */
size_t cnk_ckpt_history_size(int n_series, int n_epochs);
/* Appends the series (each n_epochs values) at text + len (cap bytes in all); returns the new length. */
size_t cnk_ckpt_append_history(char *text, size_t len, size_t cap, double *const *series, int n_series, int n_epochs);
/* Reads them back from a checkpoint's text (source names the file in messages). */
int cnk_ckpt_read_history(cnk_ctx *ctx, const char *text, const char *source, double *const *series, int n_series,
                          int n_epochs);
/* The schedule a checkpoint's run had: epochs done (start_epoch), planned epochs (epochs_option > 0, the new
 * --epochs, may extend a run; never below the epochs done), batch, rate, patience (-1 = off) and weight decay,
 * read from ckpt_epoch, ckpt_epochs, ckpt_batch, ckpt_lr, ckpt_patience and ckpt_wd and range-checked. */
typedef struct cnk_ckpt_schedule {
    int start_epoch, epochs, batch, patience;
    double lr, weight_decay;
} cnk_ckpt_schedule;
int cnk_ckpt_read_schedule(cnk_ctx *ctx, const char *text, const char *source, int epochs_option,
                           cnk_ckpt_schedule *out);

/* The kind of run a checkpoint's text belongs to, into out: its ckpt_kind ("fusion", "transfer"), "plain" for
 * the plain loop's (a schedule, no ckpt_kind), "" for a text that is no checkpoint's. */
void cnk_ckpt_kind(cnk_ctx *ctx, const char *text, char *out, size_t cap);
/* Refuses (naming source, what it is and how to resume it) a checkpoint that is not of `kind`. */
int cnk_ckpt_check_kind(cnk_ctx *ctx, const char *text, const char *source, const char *kind);
/* cnk_ckpt_check_kind, then cnk_ckpt_read_schedule. cnk_ckpt_read_schedule itself refuses transfer-learning
 * checkpoints (their schedule is one phase's: only pipeline/transfer_ckpt.c may read it, through this). */
int cnk_ckpt_read_schedule_of(cnk_ctx *ctx, const char *text, const char *source, const char *kind,
                              int epochs_option, cnk_ckpt_schedule *out);

/* The number stored under key; a missing key or an unreadable value fails naming source and the key. */
int cnk_ckpt_number(cnk_ctx *ctx, const char *text, const char *source, const char *key, double *out);

#endif
