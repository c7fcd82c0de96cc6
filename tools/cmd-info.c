/*
 * cloudfs info: what a disk is, at its head or at a version.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <json-glib/json-glib.h>

#include "cli.h"

static gboolean opt_json;

static const GOptionEntry info_options[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json,
      "Print one JSON object instead of text", NULL },
    { NULL }
};

/* Everything info reports, gathered once for both output forms */
typedef struct DiskInfo {
    const char *path;
    CfsDisk *disk;
    const CfsSuperblock *sb;
    uint64_t head_version;
    uint64_t file_size;
    uint64_t log_bytes;
    GPtrArray *tags;
} DiskInfo;

static char *parent_hint(const CfsSuperblock *sb)
{
    return g_strndup(sb->parent_hint, MIN(GUINT16_FROM_LE(sb->parent_hint_len),
                                          CFS_PARENT_HINT_MAX));
}

static void add_id(JsonBuilder *b, const char *member,
                   const uint8_t id[CFS_ID_LEN])
{
    g_autofree char *hex = cli_id_hex(id);

    json_builder_set_member_name(b, member);
    json_builder_add_string_value(b, hex);
}

static void add_int(JsonBuilder *b, const char *member, uint64_t value)
{
    /* JSON numbers are exact up to 2^53, far beyond any real size */
    json_builder_set_member_name(b, member);
    json_builder_add_int_value(b, (gint64)value);
}

static void print_json(const DiskInfo *info)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;
    g_autofree char *text = NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "filename");
    json_builder_add_string_value(b, info->path);
    add_id(b, "disk-id", cfs_disk_id(info->disk));
    add_int(b, "virtual-size", cfs_disk_size(info->disk));
    add_int(b, "block-size", cfs_disk_block_size(info->disk));
    add_int(b, "version", cfs_disk_version(info->disk));
    add_id(b, "version-id", cfs_disk_version_id(info->disk));
    add_int(b, "head-version", info->head_version);
    add_int(b, "file-size", info->file_size);
    add_int(b, "log-bytes", info->log_bytes);
    add_int(b, "live-bytes", cfs_disk_live_bytes(info->disk));
    add_int(b, "extent-count", cfs_disk_extent_count(info->disk));

    json_builder_set_member_name(b, "snapshots");
    json_builder_begin_array(b);
    for (unsigned i = 0; i < info->tags->len; i++) {
        const CfsTag *tag = info->tags->pdata[i];
        g_autofree char *time = cli_format_time(tag->timestamp_ns);

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, tag->name);
        add_int(b, "version", tag->version);
        add_id(b, "version-id", tag->version_id);
        json_builder_set_member_name(b, "time");
        json_builder_add_string_value(b, time);
        add_int(b, "timestamp-ns", tag->timestamp_ns);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);

    if (cfs_disk_has_parent(info->disk)) {
        g_autofree char *hint = parent_hint(info->sb);

        json_builder_set_member_name(b, "parent");
        json_builder_begin_object(b);
        add_id(b, "disk-id", info->sb->parent_disk_id);
        add_int(b, "version", GUINT64_FROM_LE(info->sb->parent_version));
        add_id(b, "version-id", info->sb->parent_version_id);
        json_builder_set_member_name(b, "hint");
        json_builder_add_string_value(b, hint);
        json_builder_end_object(b);
    }
    json_builder_end_object(b);

    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, true);
    text = json_generator_to_data(gen, NULL);
    printf("%s\n", text);
}

static void print_text(const DiskInfo *info)
{
    CfsDisk *disk = info->disk;
    g_autofree char *disk_id = cli_id_hex(cfs_disk_id(disk));
    g_autofree char *version_id = cli_id_hex(cfs_disk_version_id(disk));
    g_autofree char *size = cli_format_size(cfs_disk_size(disk));
    g_autofree char *live = cli_format_size(cfs_disk_live_bytes(disk));

    printf("image: %s\n", info->path);
    printf("disk id: %s\n", disk_id);
    printf("virtual size: %s\n", size);
    printf("block size: %u\n", cfs_disk_block_size(disk));
    if (cfs_disk_version(disk) == info->head_version) {
        printf("version: %" G_GUINT64_FORMAT " (head)\n",
               cfs_disk_version(disk));
    } else {
        printf("version: %" G_GUINT64_FORMAT " (the head is version %"
               G_GUINT64_FORMAT ")\n", cfs_disk_version(disk),
               info->head_version);
    }
    printf("version id: %s\n", version_id);
    printf("file size: %" G_GUINT64_FORMAT " bytes\n", info->file_size);
    printf("log bytes: %" G_GUINT64_FORMAT
           " (from the log start to the log end)\n", info->log_bytes);
    printf("live bytes: %s\n", live);
    printf("extents: %" G_GUINT64_FORMAT "\n", cfs_disk_extent_count(disk));
    if (cfs_disk_has_parent(disk)) {
        g_autofree char *parent_id = cli_id_hex(info->sb->parent_disk_id);
        g_autofree char *parent_version_id =
            cli_id_hex(info->sb->parent_version_id);
        g_autofree char *hint = parent_hint(info->sb);

        printf("parent:\n");
        printf("    disk id: %s\n", parent_id);
        printf("    version: %" G_GUINT64_FORMAT "\n",
               GUINT64_FROM_LE(info->sb->parent_version));
        printf("    version id: %s\n", parent_version_id);
        printf("    hint: %s\n", hint);
    }
    if (info->tags->len == 0) {
        printf("snapshots: none\n");
        return;
    }
    printf("snapshots:\n");
    printf("    %-20s %8s  %-40s  %s\n", "NAME", "VERSION", "VERSION ID",
           "TIME");
    for (unsigned i = 0; i < info->tags->len; i++) {
        const CfsTag *tag = info->tags->pdata[i];
        g_autofree char *tag_id = cli_id_hex(tag->version_id);
        g_autofree char *time = cli_format_time(tag->timestamp_ns);

        printf("    %-20s %8" G_GUINT64_FORMAT "  %s  %s\n", tag->name,
               tag->version, tag_id, time);
    }
}

static int info_run(int argc, char **argv)
{
    GError *err = NULL;
    g_autoptr(CliImage) image = cli_image_open(argv[0], 0, &err);
    g_autoptr(GPtrArray) tags = NULL;
    DiskInfo info;
    struct stat st;

    if (!image) {
        return cli_fail(err);
    }
    if (fstat(image->fd, &st) < 0) {
        cli_error("%s: %s", image->path, g_strerror(errno));
        return CLI_EXIT_FAILED;
    }
    tags = cfs_disk_tags(image->disk);
    info = (DiskInfo) {
        .path = image->path,
        .disk = image->disk,
        .sb = cfs_disk_superblock(image->disk),
        .head_version = image->head_version,
        .file_size = st.st_size,
        .tags = tags,
    };
    info.log_bytes = cfs_disk_log_end(image->disk) -
                     GUINT64_FROM_LE(info.sb->log_start);
    if (opt_json) {
        print_json(&info);
    } else {
        print_text(&info);
    }
    return CLI_EXIT_OK;
}

const CliCommand cli_cmd_info = {
    .name = "info",
    .synopsis = "[--json] PATH[@VERSION|@TAG]",
    .args = "PATH[@VERSION|@TAG]",
    .purpose = "show what a disk image holds",
    .description =
        "  Prints the disk id, virtual size, block size, version and version\n"
        "  id of the disk in PATH (at its head, or at the given version or\n"
        "  tag), the size of its file and of its log (the bytes from the\n"
        "  first log record to the end of the last valid one), the data\n"
        "  bytes the version maps and its number of extents, its parent if\n"
        "  it is a branch, and its snapshots (tags).  The file is opened\n"
        "  read-only.\n",
    .examples =
        "  cloudfs info vm.cfs\n"
        "  cloudfs info vm.cfs@before-upgrade\n"
        "  cloudfs info --json vm.cfs@12\n",
    .options = info_options,
    .min_args = 1,
    .max_args = 1,
    .run = info_run,
};
