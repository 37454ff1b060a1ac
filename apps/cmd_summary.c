/* cmd_summary.c: `cnnkit summary` (see ../shared/CLI.md). Not built yet: its issue replaces this file. */
#include <stdio.h>

#include "cli.h"
#include "commands.h"

int cmd_summary(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "cnnkit summary: not available in this build yet\n");
    return CLI_USAGE;
}
