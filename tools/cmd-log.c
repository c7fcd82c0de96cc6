/*
 * cloudfs log: every record of an image's log, decoded.
 *
 * The core hands each valid record's header to the walk callback; the
 * bodies are decoded here from their on-disk (little-endian) form, as
 * format.h lays them out.  A body whose length does not fit its type is
 * reported, not trusted.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct LogWalk {
    uint32_t block_size;
    uint64_t records;
} LogWalk;

static void print_malformed(uint32_t body_len)
{
    printf("    (body of %u bytes does not fit its type)\n", body_len);
}

static void print_write_body(const uint8_t *body, uint32_t body_len,
                             uint32_t block_size)
{
    if (body_len % sizeof(CfsWriteExtent)) {
        print_malformed(body_len);
        return;
    }
    for (uint32_t i = 0; i < body_len / sizeof(CfsWriteExtent); i++) {
        CfsWriteExtent e;
        uint64_t guest_offset, length;
        uint16_t kind;

        memcpy(&e, body + i * sizeof(e), sizeof(e));
        guest_offset = GUINT64_FROM_LE(e.guest_offset);
        length = (uint64_t)GUINT32_FROM_LE(e.nblocks) * block_size;
        kind = GUINT16_FROM_LE(e.kind);
        printf("    extent guest %" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT
               " %s\n", guest_offset, length,
               kind == CFS_EXTENT_DATA ? "data" :
               kind == CFS_EXTENT_ZERO ? "zero" : "unknown-kind");
    }
}

static void print_tag_body(const uint8_t *body, uint32_t body_len)
{
    CfsTagBody tag;
    g_autofree char *id = NULL;
    uint16_t name_len;

    if (body_len < sizeof(tag)) {
        print_malformed(body_len);
        return;
    }
    memcpy(&tag, body, sizeof(tag));
    name_len = GUINT16_FROM_LE(tag.name_len);
    if (name_len > body_len - sizeof(tag)) {
        print_malformed(body_len);
        return;
    }
    id = cli_id_hex(tag.target_version_id);
    printf("    tag '%.*s' -> version %" G_GUINT64_FORMAT " id %s\n",
           (int)name_len, (const char *)body + sizeof(tag),
           GUINT64_FROM_LE(tag.target_version), id);
}

static void print_untag_body(const uint8_t *body, uint32_t body_len)
{
    CfsUntagBody untag;
    uint16_t name_len;

    if (body_len < sizeof(untag)) {
        print_malformed(body_len);
        return;
    }
    memcpy(&untag, body, sizeof(untag));
    name_len = GUINT16_FROM_LE(untag.name_len);
    if (name_len > body_len - sizeof(untag)) {
        print_malformed(body_len);
        return;
    }
    printf("    untag '%.*s'\n", (int)name_len,
           (const char *)body + sizeof(untag));
}

static void print_revert_body(const uint8_t *body, uint32_t body_len)
{
    CfsRevertBody revert;
    g_autofree char *id = NULL;

    if (body_len < sizeof(revert)) {
        print_malformed(body_len);
        return;
    }
    memcpy(&revert, body, sizeof(revert));
    id = cli_id_hex(revert.target_version_id);
    printf("    revert to version %" G_GUINT64_FORMAT " id %s\n",
           GUINT64_FROM_LE(revert.target_version), id);
}

static void print_resize_body(const uint8_t *body, uint32_t body_len)
{
    CfsResizeBody resize;

    if (body_len < sizeof(resize)) {
        print_malformed(body_len);
        return;
    }
    memcpy(&resize, body, sizeof(resize));
    printf("    resize to %" G_GUINT64_FORMAT " bytes\n",
           GUINT64_FROM_LE(resize.new_size));
}

static void print_checkpoint_body(const uint8_t *body, uint32_t body_len)
{
    CfsCkptBody ckpt;

    if (body_len < sizeof(ckpt)) {
        print_malformed(body_len);
        return;
    }
    memcpy(&ckpt, body, sizeof(ckpt));
    printf("    checkpoint tags %u roots %u state %" G_GUINT64_FORMAT
           " bytes, index nodes %u, previous checkpoint at %" G_GUINT64_FORMAT
           ", replay from %" G_GUINT64_FORMAT "\n",
           GUINT32_FROM_LE(ckpt.tag_count), GUINT32_FROM_LE(ckpt.root_count),
           GUINT64_FROM_LE(ckpt.state_bytes), GUINT32_FROM_LE(ckpt.node_count),
           GUINT64_FROM_LE(ckpt.prev_checkpoint),
           GUINT64_FROM_LE(ckpt.replay_horizon));
}

static bool print_record(const CfsRecordInfo *rec, void *opaque,
                         GError **errp)
{
    LogWalk *walk = opaque;
    const uint8_t *header = (const uint8_t *)rec->header;
    uint32_t header_len = GUINT32_FROM_LE(rec->header->header_len);
    uint32_t body_len = GUINT32_FROM_LE(rec->header->body_len);
    const uint8_t *body = header + sizeof(CfsRecordHeader);
    g_autofree char *id = cli_id_hex(rec->version_id);
    g_autofree char *prev_id = cli_id_hex(rec->prev_version_id);
    g_autofree char *time = cli_format_time(rec->timestamp_ns);

    walk->records++;
    printf("record at %" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
           " bytes: %s\n", rec->offset, rec->total_len,
           cli_record_type_name(rec->type));
    printf("    version %" G_GUINT64_FORMAT ", %s\n", rec->version, time);
    printf("    id   %s\n", id);
    printf("    prev %s\n", prev_id);
    printf("    header %u bytes, body %u bytes, payload %u blocks, "
           "durable version %" G_GUINT64_FORMAT "\n", header_len, body_len,
           rec->payload_blocks,
           GUINT64_FROM_LE(rec->header->durable_version));
    if (body_len > header_len || header_len - body_len <
        sizeof(CfsRecordHeader)) {
        print_malformed(body_len);
        return true;
    }
    switch (rec->type) {
    case CFS_REC_WRITE:
        print_write_body(body, body_len, walk->block_size);
        break;
    case CFS_REC_TAG:
        print_tag_body(body, body_len);
        break;
    case CFS_REC_UNTAG:
        print_untag_body(body, body_len);
        break;
    case CFS_REC_REVERT:
        print_revert_body(body, body_len);
        break;
    case CFS_REC_RESIZE:
        print_resize_body(body, body_len);
        break;
    case CFS_REC_CHECKPOINT:
        print_checkpoint_body(body, body_len);
        break;
    default:
        printf("    (unknown record type %u)\n", rec->type);
        break;
    }
    return true;
}

static int log_run(int argc, char **argv)
{
    GError *err = NULL;
    g_autoptr(CliImage) image = cli_image_open(argv[0], 0, &err);
    LogWalk walk = { 0 };

    if (!image) {
        return cli_fail(err);
    }
    walk.block_size = cfs_disk_block_size(image->disk);
    if (!cfs_disk_walk(image->disk, print_record, &walk, &err)) {
        g_prefix_error(&err, "%s: ", image->path);
        return cli_fail(err);
    }
    printf("%" G_GUINT64_FORMAT " records, log ends at %" G_GUINT64_FORMAT
           "\n", walk.records, cfs_disk_log_end(image->disk));
    return CLI_EXIT_OK;
}

const CliCommand cli_cmd_log = {
    .name = "log",
    .synopsis = "PATH",
    .args = "PATH",
    .purpose = "dump every record of a disk's log",
    .description =
        "  Prints every valid record of the log of PATH in file order: its\n"
        "  file offset and length (padded header and payload), its type,\n"
        "  version, time (UTC), record id and previous version id, the\n"
        "  sizes of its header, body and payload, then its body decoded:\n"
        "  the extents of a write (guest offset+length, data or zero), the\n"
        "  name and target of a tag, the name of an untag, the target of a\n"
        "  revert, the size of a resize, and the counts of a checkpoint.\n"
        "  Checkpoint records are local to the file and create no version.\n",
    .examples =
        "  cloudfs log vm.cfs | less\n",
    .min_args = 1,
    .max_args = 1,
    .run = log_run,
};
