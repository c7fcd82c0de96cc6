/*
 * cloudfs format core: named snapshots (tags), non-destructive revert, and
 * resize — the metadata-only records.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "internal.h"

bool cfs_disk_tag(CfsDisk *disk, const char *name, GError **errp)
{
    size_t len = strlen(name);
    g_autofree uint8_t *body = NULL;
    CfsTagBody tb = { 0 };

    /* seal first: the tag names the version that holds every write */
    if (!cfs_disk_check_writable(disk, errp) ||
        !cfs_tag_name_valid(name, errp) || !cfs_disk_seal(disk, errp)) {
        return false;
    }
    if (g_hash_table_contains(disk->head.tags, name)) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_EXISTS,
                    "a snapshot named '%s' already exists", name);
        return false;
    }
    tb.target_version = GUINT64_TO_LE(disk->head.version);
    memcpy(tb.target_version_id, disk->head.version_id, CFS_ID_LEN);
    tb.name_len = GUINT16_TO_LE(len);
    body = g_malloc(sizeof(tb) + len);
    memcpy(body, &tb, sizeof(tb));
    memcpy(body + sizeof(tb), name, len);
    return cfs_append_meta(disk, CFS_REC_TAG, body, sizeof(tb) + len, errp);
}

bool cfs_disk_untag(CfsDisk *disk, const char *name, GError **errp)
{
    size_t len = strlen(name);
    g_autofree uint8_t *body = NULL;
    CfsUntagBody ub = { 0 };

    if (!cfs_disk_check_writable(disk, errp) || !cfs_disk_seal(disk, errp)) {
        return false;
    }
    if (!g_hash_table_contains(disk->head.tags, name)) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_NOT_FOUND,
                    "no snapshot named '%s'", name);
        return false;
    }
    ub.name_len = GUINT16_TO_LE(len);
    body = g_malloc(sizeof(ub) + len);
    memcpy(body, &ub, sizeof(ub));
    memcpy(body + sizeof(ub), name, len);
    return cfs_append_meta(disk, CFS_REC_UNTAG, body, sizeof(ub) + len, errp);
}

bool cfs_disk_revert(CfsDisk *disk, uint64_t version, GError **errp)
{
    CfsRevertBody rb = { 0 };

    if (!cfs_disk_check_writable(disk, errp) || !cfs_disk_seal(disk, errp)) {
        return false;
    }
    if (version == disk->head.version) {
        return true;    /* sealed: nothing was written since */
    }
    if (version > disk->head.version) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID,
                    "can only revert to an earlier version (the disk is at "
                    "version %" G_GUINT64_FORMAT ")", disk->head.version);
        return false;
    }
    rb.target_version = GUINT64_TO_LE(version);
    if (!cfs_version_id_at(disk, version, rb.target_version_id, errp)) {
        return false;
    }
    return cfs_append_meta(disk, CFS_REC_REVERT, &rb, sizeof(rb), errp);
}

bool cfs_disk_resize(CfsDisk *disk, uint64_t new_size, GError **errp)
{
    CfsResizeBody body;

    if (!cfs_disk_check_writable(disk, errp) || !cfs_disk_seal(disk, errp)) {
        return false;
    }
    if (new_size == 0 || new_size % disk->block_size ||
        new_size > CFS_MAX_VIRTUAL_SIZE) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID,
                    "new size %" G_GUINT64_FORMAT " is zero, too large or not "
                    "a multiple of the %u-byte block size", new_size,
                    disk->block_size);
        return false;
    }
    if (new_size == disk->head.size) {
        return true;
    }
    body.new_size = GUINT64_TO_LE(new_size);
    return cfs_append_meta(disk, CFS_REC_RESIZE, &body, sizeof(body), errp);
}
