/*
 * cloudfs block driver: internal snapshots are named versions.
 *
 * Creating one tags the current version (constant time, whatever the
 * size); going to one writes a REVERT record, so the abandoned head stays
 * readable as a historical version; deleting drops the name.  The id QEMU
 * shows is the version number.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "cloudfs-int.h"

/* A snapshot is found by name, or by id (its version number) */
static const CfsTag *find_snapshot(BDRVCloudfsState *s, const char *id,
                                   const char *name)
{
    g_autoptr(GPtrArray) tags = cfs_disk_tags(s->disk);

    for (guint i = 0; i < tags->len; i++) {
        const CfsTag *t = tags->pdata[i];
        char version[32];

        snprintf(version, sizeof(version), "%" PRIu64, t->version);
        if ((name && !strcmp(t->name, name)) || (id && !strcmp(version, id))) {
            return cfs_disk_find_tag(s->disk, t->name);
        }
    }
    return NULL;
}

int cloudfs_snapshot_create(BlockDriverState *bs, QEMUSnapshotInfo *sn_info)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;
    Error *err = NULL;
    int ret;

    if (sn_info->vm_state_size) {
        error_report("cloudfs: snapshots with VM state are not supported");
        return -ENOTSUP;
    }
    if (!sn_info->name[0]) {
        /* QEMU asks for a snapshot without a name: name it by time */
        snprintf(sn_info->name, sizeof(sn_info->name), "snap-%" PRIu64,
                 (uint64_t)g_get_real_time());
    }
    GRAPH_RDLOCK_GUARD_MAINLOOP();
    if (!cfs_disk_tag(s->disk, sn_info->name, &gerr)) {
        ret = cloudfs_error(g_steal_pointer(&gerr), &err);
        error_report_err(err);
        return ret;
    }
    snprintf(sn_info->id_str, sizeof(sn_info->id_str), "%" PRIu64,
             cfs_disk_find_tag(s->disk, sn_info->name)->version);
    return 0;
}

int cloudfs_snapshot_goto(BlockDriverState *bs, const char *snapshot_id)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;
    const CfsTag *tag;
    Error *err = NULL;
    int ret;

    GRAPH_RDLOCK_GUARD_MAINLOOP();
    tag = find_snapshot(s, snapshot_id, snapshot_id);
    if (!tag) {
        return -ENOENT;
    }
    /* the core seals first: writes since the tag are not yet a version,
     * so comparing version numbers here would keep them */
    if (!cfs_disk_revert(s->disk, tag->version, &gerr)) {
        ret = cloudfs_error(g_steal_pointer(&gerr), &err);
        error_report_err(err);
        return ret;
    }
    bs->total_sectors = cfs_disk_size(s->disk) / BDRV_SECTOR_SIZE;
    return 0;
}

int cloudfs_snapshot_delete(BlockDriverState *bs, const char *snapshot_id,
                            const char *name, Error **errp)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;
    const CfsTag *tag;

    GRAPH_RDLOCK_GUARD_MAINLOOP();
    tag = find_snapshot(s, snapshot_id, name);
    if (!tag) {
        error_setg(errp, "Can't find the snapshot");
        return -ENOENT;
    }
    if (!cfs_disk_untag(s->disk, tag->name, &gerr)) {
        return cloudfs_error(g_steal_pointer(&gerr), errp);
    }
    return 0;
}

int cloudfs_snapshot_list(BlockDriverState *bs, QEMUSnapshotInfo **psn_tab)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GPtrArray) tags = cfs_disk_tags(s->disk);
    QEMUSnapshotInfo *tab = g_new0(QEMUSnapshotInfo, tags->len);

    for (guint i = 0; i < tags->len; i++) {
        const CfsTag *t = tags->pdata[i];

        snprintf(tab[i].id_str, sizeof(tab[i].id_str), "%" PRIu64, t->version);
        pstrcpy(tab[i].name, sizeof(tab[i].name), t->name);
        tab[i].date_sec = t->timestamp_ns / 1000000000ull;
        tab[i].date_nsec = t->timestamp_ns % 1000000000ull;
        tab[i].icount = -1ULL;
    }
    *psn_tab = tab;
    return tags->len;
}
