/* commands.h: one entry point per `cnnkit` subcommand, each in apps/cmd_<name>.c. Each returns the
 * process exit code from ../shared/CLI.md; argv[0] is the subcommand name. */
#ifndef CNK_COMMANDS_H
#define CNK_COMMANDS_H

int cmd_features(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif
