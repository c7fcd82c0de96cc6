/*
 * cloudfs create: a new disk, or a branch of an existing one.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static char *opt_block_size;
static char *opt_parent;

static const GOptionEntry create_options[] = {
    { "block-size", 'b', 0, G_OPTION_ARG_STRING, &opt_block_size,
      "Block size: a power of two from 512 to 64K (default 4K, or the "
      "parent's block size for a branch)", "N" },
    { "parent", 'p', 0, G_OPTION_ARG_FILENAME, &opt_parent,
      "Create a branch of this disk, at this version or tag (default: its "
      "head)", "PATH[@VERSION|@TAG]" },
    { NULL }
};

/* The real directory a file is (or will be) in */
static char *real_dirname(const char *path, GError **errp)
{
    g_autofree char *dir = g_path_get_dirname(path);
    char *real = realpath(dir, NULL);

    if (!real) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "%s: %s", dir,
                    g_strerror(errno));
        return NULL;
    }
    return real;
}

/* The non-empty components of an absolute path */
static GPtrArray *path_components(const char *path)
{
    GPtrArray *parts = g_ptr_array_new_with_free_func(g_free);
    g_auto(GStrv) split = g_strsplit(path, "/", -1);

    for (size_t i = 0; split[i]; i++) {
        if (split[i][0]) {
            g_ptr_array_add(parts, g_strdup(split[i]));
        }
    }
    return parts;
}

/*
 * The parent hint stored in a branch: the parent's path relative to the
 * branch's directory (that is how it is resolved again, by this tool and by
 * QEMU for backing files), or absolute if it was given absolute.
 */
static char *parent_hint_for(const char *branch_path, const char *parent_path,
                             GError **errp)
{
    g_autofree char *branch_dir = NULL;
    g_autofree char *parent_dir = NULL;
    g_autofree char *parent_base = NULL;
    g_autoptr(GPtrArray) from = NULL;
    g_autoptr(GPtrArray) to = NULL;
    GString *hint;
    unsigned common = 0;

    if (g_path_is_absolute(parent_path)) {
        return g_strdup(parent_path);
    }
    branch_dir = real_dirname(branch_path, errp);
    parent_dir = branch_dir ? real_dirname(parent_path, errp) : NULL;
    if (!parent_dir) {
        return NULL;
    }
    parent_base = g_path_get_basename(parent_path);
    from = path_components(branch_dir);
    to = path_components(parent_dir);
    while (common < from->len && common < to->len &&
           strcmp(from->pdata[common], to->pdata[common]) == 0) {
        common++;
    }
    hint = g_string_new(NULL);
    for (unsigned i = common; i < from->len; i++) {
        g_string_append(hint, "../");
    }
    for (unsigned i = common; i < to->len; i++) {
        g_string_append_printf(hint, "%s/", (char *)to->pdata[i]);
    }
    g_string_append(hint, parent_base);
    return g_string_free(hint, false);
}

/* Fill the parent fields of opts from the disk at spec */
static bool branch_options(const char *branch_path, const char *spec,
                           CfsCreateOptions *opts, char **hint,
                           uint64_t *parent_size, uint32_t *parent_block_size,
                           GError **errp)
{
    g_autoptr(CliImage) parent = cli_image_open(spec, 0, errp);
    g_autofree char *parent_path = NULL;
    g_autofree char *version_spec = NULL;

    if (!parent) {
        g_prefix_error(errp, "cannot use '%s' as parent: ", spec);
        return false;
    }
    cli_split_spec(spec, &parent_path, &version_spec);
    *hint = parent_hint_for(branch_path, parent_path, errp);
    if (!*hint) {
        return false;
    }
    opts->has_parent = true;
    memcpy(opts->parent_disk_id, cfs_disk_id(parent->disk), CFS_ID_LEN);
    opts->parent_version = cfs_disk_version(parent->disk);
    memcpy(opts->parent_version_id, cfs_disk_version_id(parent->disk),
           CFS_ID_LEN);
    opts->parent_hint = *hint;
    *parent_size = cfs_disk_size(parent->disk);
    *parent_block_size = cfs_disk_block_size(parent->disk);
    return true;
}

static int create_run(int argc, char **argv)
{
    const char *path = argv[0];
    CfsCreateOptions opts = { 0 };
    g_autofree char *hint = NULL;
    uint64_t parent_size = 0, block_size = 0;
    uint32_t parent_block_size = 0;
    uint8_t disk_id[CFS_ID_LEN];
    g_autofree char *disk_id_hex = NULL;
    GError *err = NULL;
    CfsIO io;
    int fd;

    if (argc < 2 && !opt_parent) {
        return cli_usage_error("missing SIZE (it may be left out only with "
                               "--parent)");
    }
    if (argc >= 2 && !cli_parse_size_arg("SIZE", argv[1], &opts.size)) {
        return CLI_EXIT_USAGE;
    }
    if (opt_block_size) {
        if (!cli_parse_size_arg("block size", opt_block_size, &block_size)) {
            return CLI_EXIT_USAGE;
        }
        if (block_size > UINT32_MAX) {
            return cli_usage_error("block size %s is too large",
                                   opt_block_size);
        }
    }
    if (opt_parent &&
        !branch_options(path, opt_parent, &opts, &hint, &parent_size,
                        &parent_block_size, &err)) {
        return cli_fail(err);
    }
    if (argc < 2) {
        opts.size = parent_size;
    }
    opts.block_size = opt_block_size ? (uint32_t)block_size
                                     : parent_block_size;

    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        int err_no = errno;

        cli_error("cannot create '%s': %s%s", path, g_strerror(err_no),
                  err_no == EEXIST ? " (refusing to overwrite it)" : "");
        return CLI_EXIT_FAILED;
    }
    cfs_io_init_fd(&io, &fd);
    if (!cfs_disk_create(&io, &opts, disk_id, &err)) {
        /* The file is ours and holds nothing yet: leave no half image */
        unlink(path);
        close(fd);
        g_prefix_error(&err, "%s: ", path);
        return cli_fail(err);
    }
    if (close(fd) < 0) {
        cli_error("%s: %s", path, g_strerror(errno));
        return CLI_EXIT_FAILED;
    }
    disk_id_hex = cli_id_hex(disk_id);
    printf("%s\n", disk_id_hex);
    return CLI_EXIT_OK;
}

const CliCommand cli_cmd_create = {
    .name = "create",
    .synopsis = "[--block-size N] [--parent PATH[@VERSION|@TAG]] PATH [SIZE]",
    .args = "PATH [SIZE]",
    .purpose = "create a new disk image, or a branch of one",
    .description =
        "  Creates the image file PATH (which must not exist yet) holding an\n"
        "  empty disk of SIZE bytes, and prints its disk id (40 hex digits).\n"
        "  SIZE is a number of bytes with an optional suffix K, M, G, T, P or\n"
        "  E (powers of 1024); it is rounded up to a whole block.\n"
        "\n"
        "  With --parent, the new disk is a branch: every range it has not\n"
        "  written reads as the parent's content at the chosen version (its\n"
        "  head unless @VERSION or @TAG is given), and SIZE defaults to the\n"
        "  parent's size.  The branch records the parent's disk id and\n"
        "  version id, and the parent's path relative to the branch's\n"
        "  directory (absolute if given absolute); the parent must stay\n"
        "  there, with that version, for the branch to be readable.\n",
    .examples =
        "  cloudfs create vm.cfs 10G\n"
        "  cloudfs create --block-size 64K big.cfs 2T\n"
        "  cloudfs create --parent base.cfs@installed clone.cfs\n",
    .options = create_options,
    .min_args = 1,
    .max_args = 2,
    .run = create_run,
};
