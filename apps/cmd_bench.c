/* cmd_bench.c: `cnnkit bench` (see ../shared/CLI.md). Not built yet: its issue replaces this file. */
#include <stdio.h>

#include "cli.h"
#include "commands.h"

int cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "cnnkit bench: not available in this build yet\n");
    return CLI_USAGE;
}
