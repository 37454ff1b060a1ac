/* cmd_eval.c: `cnnkit eval` (see ../shared/CLI.md). Not built yet: its issue replaces this file. */
#include <stdio.h>

#include "cli.h"
#include "commands.h"

int cmd_eval(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "cnnkit eval: not available in this build yet\n");
    return CLI_USAGE;
}
