/*
 * cloudfs: the admin CLI.  This file picks the subcommand, parses its
 * options with GOptionContext and prints the man-style help; the
 * subcommands themselves live in tools/cmd-*.c.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const CliCommand *const commands[] = {
    &cli_cmd_create,
    &cli_cmd_info,
    &cli_cmd_import,
    &cli_cmd_export,
    &cli_cmd_snapshot,
    &cli_cmd_versions,
    &cli_cmd_log,
    &cli_cmd_check,
    &cli_cmd_export_delta,
    &cli_cmd_apply_delta,
};

static const char common_exit_status[] =
    "  0  success\n"
    "  1  the operation failed: an I/O error, an image that is not cloudfs\n"
    "     or is corrupt, a missing version or snapshot, a refused delta,\n"
    "     an image another process has open (writing subcommands)\n"
    "  2  usage error: bad arguments, a SIZE that is not a size, an\n"
    "     unknown subcommand; nothing was done\n";

static const CliCommand *find_command(const char *name)
{
    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        if (strcmp(commands[i]->name, name) == 0) {
            return commands[i];
        }
    }
    return NULL;
}

/*
 * A subcommand's option context.  GOption prints "Usage:", the summary,
 * the options and the description, in that order: NAME, SYNOPSIS and
 * DESCRIPTION go in the summary, EXIT STATUS and EXAMPLES after the
 * options.
 */
static GOptionContext *command_context(const CliCommand *cmd)
{
    GOptionContext *context = g_option_context_new(cmd->args);
    g_autofree char *summary = NULL;
    g_autofree char *description = NULL;

    summary = g_strdup_printf(
        "NAME\n  cloudfs %s - %s\n\n"
        "SYNOPSIS\n  cloudfs %s %s\n\n"
        "DESCRIPTION\n%s\n"
        "OPTIONS",
        cmd->name, cmd->purpose, cmd->name, cmd->synopsis, cmd->description);
    description = g_strdup_printf(
        "EXIT STATUS\n%s\nEXAMPLES\n%s",
        cmd->exit_status ? cmd->exit_status : common_exit_status,
        cmd->examples);
    g_option_context_set_summary(context, summary);
    g_option_context_set_description(context, description);
    if (cmd->options) {
        g_option_context_add_main_entries(context, cmd->options, NULL);
    }
    return context;
}

static void set_prgname_for(const CliCommand *cmd)
{
    g_autofree char *prgname = g_strdup_printf("cloudfs %s", cmd->name);

    g_set_prgname(prgname);
}

static int run_command(const CliCommand *cmd, int argc, char **argv)
{
    g_autoptr(GOptionContext) context = command_context(cmd);
    GError *err = NULL;
    unsigned nargs;

    cli_set_command(cmd->name);
    set_prgname_for(cmd);
    if (!g_option_context_parse(context, &argc, &argv, &err)) {
        cli_usage_error("%s", err->message);
        g_error_free(err);
        return CLI_EXIT_USAGE;
    }
    /* argv[0] is the subcommand's name; the rest are its arguments */
    nargs = argc - 1;
    if (nargs < cmd->min_args) {
        return cli_usage_error("missing arguments (usage: cloudfs %s %s)",
                               cmd->name, cmd->synopsis);
    }
    if (nargs > cmd->max_args) {
        return cli_usage_error("too many arguments (usage: cloudfs %s %s)",
                               cmd->name, cmd->synopsis);
    }
    return cmd->run(nargs, argv + 1);
}

static char *command_list(void)
{
    GString *list = g_string_new("COMMANDS\n");

    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        g_string_append_printf(list, "  %-13s %s\n", commands[i]->name,
                               commands[i]->purpose);
    }
    return g_string_free(list, false);
}

static gboolean opt_version;

static const GOptionEntry main_options[] = {
    { "version", 0, 0, G_OPTION_ARG_NONE, &opt_version,
      "Print the version of cloudfs and exit", NULL },
    { NULL }
};

static GOptionContext *main_context(void)
{
    GOptionContext *context = g_option_context_new("SUBCOMMAND [ARG…]");
    g_autofree char *commands_text = command_list();
    g_autofree char *summary = NULL;
    g_autofree char *description = NULL;

    summary = g_strdup_printf(
        "NAME\n  cloudfs - manage cloudfs disk images\n\n"
        "SYNOPSIS\n  cloudfs SUBCOMMAND [OPTION…] [ARG…]\n"
        "  cloudfs help SUBCOMMAND\n\n"
        "DESCRIPTION\n"
        "  cloudfs images are log-structured, versioned, branchable virtual\n"
        "  disks for QEMU.  This tool creates them, moves data in and out,\n"
        "  manages their versions and snapshots, checks them, and moves\n"
        "  versions between replicas as deltas.  Where a synopsis says\n"
        "  PATH[@VERSION|@TAG], a past version can be read by its number\n"
        "  or by the name of a snapshot of it.\n"
        "  Sizes are bytes with an optional K, M, G, T, P or E suffix\n"
        "  (powers of 1024).\n"
        "  A subcommand that writes an image takes the locks QEMU takes,\n"
        "  and refuses an image that a QEMU (or another cloudfs) has open\n"
        "  for writing, or for reading that must not see writes.  Reading\n"
        "  takes no lock.\n\n"
        "%s\n"
        "  'cloudfs help SUBCOMMAND' or 'cloudfs SUBCOMMAND --help' shows\n"
        "  the manual of one subcommand.\n\n"
        "OPTIONS", commands_text);
    description = g_strdup_printf(
        "EXIT STATUS\n%s"
        "  3  check --repair found problems and repaired all of them\n\n"
        "EXAMPLES\n"
        "  cloudfs create vm.cfs 10G\n"
        "  cloudfs import vm.cfs vm.raw\n"
        "  cloudfs snapshot create vm.cfs installed\n"
        "  cloudfs export vm.cfs@installed installed.raw\n"
        "  cloudfs export-delta vm.cfs 0 | cloudfs apply-delta copy.cfs\n",
        common_exit_status);
    g_option_context_set_summary(context, summary);
    g_option_context_set_description(context, description);
    g_option_context_add_main_entries(context, main_options, NULL);
    /* Stop at the subcommand: its options are its own */
    g_option_context_set_strict_posix(context, true);
    return context;
}

static int help_run(int argc, char **argv)
{
    const CliCommand *cmd;
    g_autoptr(GOptionContext) context = NULL;
    g_autofree char *help = NULL;

    if (argc < 2) {
        context = main_context();
    } else if (argc > 2) {
        return cli_usage_error("usage: cloudfs help [SUBCOMMAND]");
    } else if (strcmp(argv[1], "help") == 0) {
        context = main_context();
    } else {
        cmd = find_command(argv[1]);
        if (!cmd) {
            return cli_usage_error("unknown subcommand '%s'", argv[1]);
        }
        set_prgname_for(cmd);
        context = command_context(cmd);
    }
    help = g_option_context_get_help(context, true, NULL);
    fputs(help, stdout);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    g_autoptr(GOptionContext) context = NULL;
    GError *err = NULL;
    const CliCommand *cmd;

    setlocale(LC_ALL, "");
    g_set_prgname("cloudfs");
    context = main_context();
    if (!g_option_context_parse(context, &argc, &argv, &err)) {
        cli_usage_error("%s", err->message);
        g_error_free(err);
        return CLI_EXIT_USAGE;
    }
    if (opt_version) {
        printf("cloudfs %s\n", CLOUDFS_VERSION);
        return CLI_EXIT_OK;
    }
    if (argc < 2) {
        return cli_usage_error("missing subcommand");
    }
    if (strcmp(argv[1], "help") == 0) {
        cli_set_command("help");
        return help_run(argc - 1, argv + 1);
    }
    cmd = find_command(argv[1]);
    if (!cmd) {
        return cli_usage_error("unknown subcommand '%s'", argv[1]);
    }
    return run_command(cmd, argc - 1, argv + 1);
}
