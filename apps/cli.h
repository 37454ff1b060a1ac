/* cli.h: what every subcommand shares: turning library statuses into the contract's exit codes, the
 * stderr progress bar and skip messages, and small option parsers. apps/ only parses and calls the library. */
#ifndef CNK_CLI_H
#define CNK_CLI_H

#include "core/context.h"
#include "core/parse.h"

/* Exit codes from ../shared/CLI.md. */
enum { CLI_OK = 0, CLI_SKIPPED = 1, CLI_USAGE = 2, CLI_FATAL = 3 };

/* Initialises ctx for a command: threads = cores, progress bar on stderr if it is a terminal, skipped
 * inputs printed as "cnnkit <cmd>: skipped: <message>". */
void cli_ctx_init(cnk_ctx *ctx, const char *command);
/* Prints "cnnkit <cmd>: <message>" to stderr and returns the exit code for a failed status. */
int cli_fail(const char *command, const cnk_ctx *ctx, int status);
/* Prints a usage error ("cnnkit <cmd>: <message>\nTry 'cnnkit <cmd> --help'.") and returns CLI_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The exit code of a run that succeeded: 1 if any input was skipped, else 0. */
int cli_success(const cnk_ctx *ctx);
/* Option values are parsed with core/parse.h's strict cnk_parse_long and cnk_parse_double. */

#endif
