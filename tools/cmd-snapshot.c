/*
 * cloudfs snapshot and versions: named versions (tags) and the history of
 * versions they name.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* --- snapshot ---------------------------------------------------------- */

static void print_tag_table(GPtrArray *tags)
{
    printf("%-20s %8s  %-40s  %s\n", "NAME", "VERSION", "VERSION ID", "DATE");
    for (unsigned i = 0; i < tags->len; i++) {
        const CfsTag *tag = tags->pdata[i];
        g_autofree char *id = cli_id_hex(tag->version_id);
        g_autofree char *time = cli_format_time(tag->timestamp_ns);

        printf("%-20s %8" G_GUINT64_FORMAT "  %s  %s\n", tag->name,
               tag->version, id, time);
    }
}

static int snapshot_list(const char *spec)
{
    GError *err = NULL;
    g_autoptr(CliImage) image = cli_image_open(spec, 0, &err);
    g_autoptr(GPtrArray) tags = NULL;

    if (!image) {
        return cli_fail(err);
    }
    tags = cfs_disk_tags(image->disk);
    print_tag_table(tags);
    return CLI_EXIT_OK;
}

static int snapshot_create(CliImage *image, const char *name, GError **errp)
{
    g_autofree char *id = NULL;

    if (!cfs_disk_tag(image->disk, name, errp)) {
        return CLI_EXIT_FAILED;
    }
    id = cli_id_hex(cfs_disk_version_id(image->disk));
    /* The tag names the version before the TAG record itself */
    printf("created snapshot '%s' of version %" G_GUINT64_FORMAT
           "; new version %" G_GUINT64_FORMAT "\n", name,
           cfs_disk_find_tag(image->disk, name)->version,
           cfs_disk_version(image->disk));
    return CLI_EXIT_OK;
}

static int snapshot_revert(CliImage *image, const char *target, GError **errp)
{
    const CfsTag *tag = cfs_disk_find_tag(image->disk, target);
    uint64_t version;

    if (tag) {
        version = tag->version;
    } else if (!cli_resolve_version(image->disk, target, &version, errp)) {
        return CLI_EXIT_FAILED;
    }
    if (!cfs_disk_revert(image->disk, version, errp)) {
        return CLI_EXIT_FAILED;
    }
    if (tag) {
        printf("reverted to '%s' (version %" G_GUINT64_FORMAT ")", target,
               version);
    } else {
        printf("reverted to version %" G_GUINT64_FORMAT, version);
    }
    printf("; new version %" G_GUINT64_FORMAT "\n",
           cfs_disk_version(image->disk));
    return CLI_EXIT_OK;
}

static int snapshot_delete(CliImage *image, const char *name, GError **errp)
{
    const CfsTag *tag = cfs_disk_find_tag(image->disk, name);
    uint64_t version = tag ? tag->version : 0;

    if (!cfs_disk_untag(image->disk, name, errp)) {
        return CLI_EXIT_FAILED;
    }
    printf("deleted snapshot '%s' of version %" G_GUINT64_FORMAT
           "; new version %" G_GUINT64_FORMAT "\n", name, version,
           cfs_disk_version(image->disk));
    return CLI_EXIT_OK;
}

static int snapshot_run(int argc, char **argv)
{
    const char *action = argv[0];
    GError *err = NULL;
    g_autoptr(CliImage) image = NULL;
    int ret;

    if (strcmp(action, "list") == 0) {
        if (argc != 2) {
            return cli_usage_error("too many arguments (usage: cloudfs "
                                   "snapshot list PATH)");
        }
        return snapshot_list(argv[1]);
    }
    if (strcmp(action, "create") != 0 && strcmp(action, "revert") != 0 &&
        strcmp(action, "delete") != 0) {
        return cli_usage_error("unknown action '%s' (create, list, revert "
                               "or delete)", action);
    }
    if (argc != 3) {
        return cli_usage_error("missing NAME (usage: cloudfs snapshot %s "
                               "PATH %s)", action,
                               strcmp(action, "revert") == 0
                               ? "NAME|VERSION" : "NAME");
    }
    image = cli_image_open(argv[1], CLI_OPEN_WRITE, &err);
    if (!image) {
        return cli_fail(err);
    }
    if (strcmp(action, "create") == 0) {
        ret = snapshot_create(image, argv[2], &err);
    } else if (strcmp(action, "revert") == 0) {
        ret = snapshot_revert(image, argv[2], &err);
    } else {
        ret = snapshot_delete(image, argv[2], &err);
    }
    if (ret != CLI_EXIT_OK) {
        g_prefix_error(&err, "%s: ", image->path);
        return cli_fail(err);
    }
    if (!cli_image_close(g_steal_pointer(&image), &err)) {
        return cli_fail(err);
    }
    return CLI_EXIT_OK;
}

const CliCommand cli_cmd_snapshot = {
    .name = "snapshot",
    .synopsis = "create|list|revert|delete PATH [NAME]",
    .args = "create|list|revert|delete PATH [NAME]",
    .purpose = "create, list, revert to and delete named versions",
    .description =
        "  A snapshot is a name for a version of the disk.  Taking one costs\n"
        "  one small log record, whatever the size of the disk.\n"
        "\n"
        "  create PATH NAME   name the current version NAME\n"
        "  list PATH          list the snapshots: name, version, version id\n"
        "                     and the time the snapshot was taken (UTC)\n"
        "  revert PATH NAME   make the content of snapshot NAME current\n"
        "                     again; NAME may also be a version number.  This\n"
        "                     adds a new version: the versions after NAME are\n"
        "                     kept and can still be read (see 'versions')\n"
        "  delete PATH NAME   drop the name NAME (the version stays in the\n"
        "                     history until garbage collection)\n"
        "\n"
        "  Each change adds a version and is printed on stdout.\n",
    .examples =
        "  cloudfs snapshot create vm.cfs before-upgrade\n"
        "  cloudfs snapshot list vm.cfs\n"
        "  cloudfs snapshot revert vm.cfs before-upgrade\n"
        "  cloudfs snapshot revert vm.cfs 17\n"
        "  cloudfs snapshot delete vm.cfs before-upgrade\n",
    .min_args = 2,
    .max_args = 3,
    .run = snapshot_run,
};

/* --- versions ---------------------------------------------------------- */

typedef struct VersionsWalk {
    GPtrArray *tags;
} VersionsWalk;

/* ", tagged a, b": the current tags naming version */
static char *tag_names(GPtrArray *tags, uint64_t version)
{
    GString *names = g_string_new(NULL);

    for (unsigned i = 0; i < tags->len; i++) {
        const CfsTag *tag = tags->pdata[i];

        if (tag->version == version) {
            g_string_append_printf(names, "%s'%s'",
                                   names->len ? ", " : "  tagged ",
                                   tag->name);
        }
    }
    return g_string_free(names, false);
}

static bool print_version(const CfsRecordInfo *rec, void *opaque,
                          GError **errp)
{
    VersionsWalk *walk = opaque;
    g_autofree char *id = NULL;
    g_autofree char *time = NULL;
    g_autofree char *tags = NULL;

    if (rec->type == CFS_REC_CHECKPOINT) {
        return true;
    }
    id = cli_id_hex(rec->version_id);
    time = cli_format_time(rec->timestamp_ns);
    tags = tag_names(walk->tags, rec->version);
    printf("%8" G_GUINT64_FORMAT "  %s  %-6s  %s  %10" G_GUINT64_FORMAT "%s\n",
           rec->version, id, cli_record_type_name(rec->type), time,
           rec->total_len, tags);
    return true;
}

static int versions_run(int argc, char **argv)
{
    GError *err = NULL;
    g_autoptr(CliImage) image = cli_image_open(argv[0], 0, &err);
    g_autoptr(GPtrArray) tags = NULL;
    g_autofree char *base_id = NULL;
    g_autofree char *base_time = NULL;
    g_autofree char *base_tags = NULL;
    VersionsWalk walk;

    if (!image) {
        return cli_fail(err);
    }
    tags = cfs_disk_tags(image->disk);
    walk.tags = tags;
    base_id = cli_id_hex(cfs_disk_id(image->disk));
    base_time = cli_format_time(
        GUINT64_FROM_LE(cfs_disk_superblock(image->disk)->created_ns));
    base_tags = tag_names(tags, 0);
    printf("%8s  %-40s  %-6s  %-20s  %10s\n", "VERSION", "VERSION ID", "TYPE",
           "TIME", "BYTES");
    printf("%8d  %s  %-6s  %s  %10d%s\n", 0, base_id, "base", base_time, 0,
           base_tags);
    if (!cfs_disk_walk(image->disk, print_version, &walk, &err)) {
        g_prefix_error(&err, "%s: ", image->path);
        return cli_fail(err);
    }
    return CLI_EXIT_OK;
}

const CliCommand cli_cmd_versions = {
    .name = "versions",
    .synopsis = "PATH",
    .args = "PATH",
    .purpose = "list the versions of a disk",
    .description =
        "  Prints one line per version of the disk PATH, oldest first:\n"
        "  the version number, its version id, the kind of record that made\n"
        "  it (base, write, tag, untag, revert or resize), when it was\n"
        "  written (UTC), the bytes its record takes in the log, and the\n"
        "  snapshots that name it.  Version 0 is the empty disk as created;\n"
        "  its version id is the disk id.  Versions abandoned by a revert\n"
        "  are listed too: they can still be read as PATH@VERSION.\n",
    .examples =
        "  cloudfs versions vm.cfs\n"
        "  cloudfs export vm.cfs@12 v12.raw\n",
    .min_args = 1,
    .max_args = 1,
    .run = versions_run,
};
