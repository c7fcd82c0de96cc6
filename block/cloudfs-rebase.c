/*
 * cloudfs block driver: changing what a branch is based on.
 *
 * qemu-img rebase and qemu-img amend -o backing_file=... point a branch
 * at another parent, pinned to that parent's current version, or make it
 * standalone.  The parent's identity (disk id, version, version id) is
 * read from the parent image itself, never taken on trust from its name.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/option.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "block/qdict.h"
#include "cloudfs-int.h"

/*
 * Identity of the parent named name (a path, relative to the branch like
 * any backing file name, or cloudfs:ID in the store) at its head.
 */
static int cloudfs_parent_identity(BlockDriverState *bs, const char *name,
                                   CfsCreateOptions *out, char **hint,
                                   Error **errp)
{
    g_autoptr(GError) gerr = NULL;
    g_autofree char *path = NULL;
    g_autofree char *version_spec = NULL;
    uint64_t version = CFS_VERSION_HEAD;
    const char *id;
    CfsDisk *parent;
    CfsIO io;
    int fd, ret = 0;

    if (strstart(name, "json:", NULL)) {
        /*
         * The block jobs (stream, intermediate commit) name a parent by
         * its node's filename, which for a pinned parent is
         * json:{"driver": "cloudfs", "version": V, "file": {...}}
         */
        QObject *obj = qobject_from_json(name + 5, NULL);
        QDict *dict = qobject_to(QDict, obj);
        const char *file;

        if (dict) {
            qdict_flatten(dict);
        }
        file = dict ? qdict_get_try_str(dict, "file.filename") : NULL;
        if (!dict || g_strcmp0(qdict_get_try_str(dict, "driver"), "cloudfs") ||
            !file) {
            qobject_unref(obj);
            error_setg(errp, "the parent of a cloudfs branch must be a "
                       "cloudfs image on a file, not %s", name);
            return -ENOTSUP;
        }
        path = g_canonicalize_filename(file, NULL);
        version_spec = g_strdup(qdict_get_try_str(dict, "version"));
        qobject_unref(obj);
        name = path;
    } else if (strstart(name, "cloudfs:", &id)) {
        if (strchr(id, '@')) {
            error_setg(errp, "a parent is always based on at its current "
                       "version; drop the @VERSION from '%s'", name);
            return -EINVAL;
        }
        path = cloudfs_store_resolve(g_getenv(CFS_STORE_ENV) ?:
                                     CFS_STORE_DEFAULT, id, errp);
    } else {
        path = bdrv_get_full_backing_filename_from_filename(bs->filename,
                                                            name, errp);
    }
    if (!path) {
        return -EINVAL;
    }
    fd = qemu_open(path, O_RDONLY, errp);
    if (fd < 0) {
        return fd;
    }
    cfs_io_init_fd(&io, &fd);
    parent = cfs_disk_open(&io, CFS_OPEN_SHARED, CFS_VERSION_HEAD, &gerr);
    if (parent && version_spec &&
        (!cfs_disk_resolve_version(parent, version_spec, &version, &gerr) ||
         version != cfs_disk_version(parent))) {
        /* based on an older version of the parent: open that one */
        cfs_disk_free(parent);
        parent = gerr ? NULL : cfs_disk_open(&io, CFS_OPEN_SHARED, version,
                                             &gerr);
    }
    if (!parent) {
        ret = cloudfs_error(g_steal_pointer(&gerr), errp);
        error_prepend(errp, "the new parent %s: ", name);
    } else {
        out->has_parent = true;
        memcpy(out->parent_disk_id, cfs_disk_id(parent), CFS_ID_LEN);
        out->parent_version = cfs_disk_version(parent);
        memcpy(out->parent_version_id, cfs_disk_version_id(parent),
               CFS_ID_LEN);
        *hint = g_strdup(name);
        out->parent_hint = *hint;
        cfs_disk_free(parent);
    }
    qemu_close(fd);
    return ret;
}

static int cloudfs_change_parent(BlockDriverState *bs, const char *name,
                                 const char *fmt, Error **errp)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;
    g_autofree char *hint = NULL;
    CfsCreateOptions parent = { 0 };
    int ret;

    if (fmt && *fmt && strcmp(fmt, "cloudfs")) {
        error_setg(errp, "the parent of a cloudfs branch must be a cloudfs "
                   "image, not %s", fmt);
        return -ENOTSUP;
    }
    if (name && *name) {
        ret = cloudfs_parent_identity(bs, name, &parent, &hint, errp);
        if (ret < 0) {
            return ret;
        }
    }
    if (!cfs_disk_set_parent_ref(s->disk, &parent, &gerr)) {
        return cloudfs_error(g_steal_pointer(&gerr), errp);
    }
    s->parent_checked = false;
    return 0;
}

int coroutine_fn GRAPH_RDLOCK
cloudfs_co_change_backing_file(BlockDriverState *bs, const char *backing_file,
                               const char *backing_fmt)
{
    BDRVCloudfsState *s = bs->opaque;
    Error *err = NULL;
    int ret;

    qemu_co_mutex_lock(&s->lock);
    ret = cloudfs_change_parent(bs, backing_file, backing_fmt, &err);
    qemu_co_mutex_unlock(&s->lock);
    if (ret < 0) {
        error_report_err(err);
    }
    return ret;
}

int GRAPH_RDLOCK
cloudfs_amend_options(BlockDriverState *bs, QemuOpts *opts,
                      BlockDriverAmendStatusCB *status_cb, void *cb_opaque,
                      bool force, Error **errp)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;
    const char *backing = qemu_opt_get(opts, BLOCK_OPT_BACKING_FILE);
    const char *fmt = qemu_opt_get(opts, BLOCK_OPT_BACKING_FMT);
    uint64_t size = qemu_opt_get_size(opts, BLOCK_OPT_SIZE, 0);
    int ret;

    if (qemu_opt_get(opts, "block-size")) {
        error_setg(errp, "the block size of a cloudfs image cannot be "
                   "changed; convert the image instead");
        return -ENOTSUP;
    }
    if (backing || fmt) {
        ret = cloudfs_change_parent(bs, backing, fmt, errp);
        if (ret < 0) {
            return ret;
        }
        pstrcpy(bs->backing_file, sizeof(bs->backing_file), backing ?: "");
        pstrcpy(bs->backing_format, sizeof(bs->backing_format), fmt ?: "");
    }
    if (size) {
        if (size % cfs_disk_block_size(s->disk)) {
            error_setg(errp, "the size of a cloudfs image must be a multiple "
                       "of its %u-byte block size",
                       cfs_disk_block_size(s->disk));
            return -EINVAL;
        }
        uint64_t old = cfs_disk_size(s->disk);

        if (!cfs_disk_resize(s->disk, size, &gerr)) {
            return cloudfs_error(g_steal_pointer(&gerr), errp);
        }
        /* a grown branch must not show its parent in the new range */
        if (size > old && cfs_disk_has_parent(s->disk) &&
            !cfs_disk_write_zeroes(s->disk, old, size - old, &gerr)) {
            return cloudfs_error(g_steal_pointer(&gerr), errp);
        }
        bs->total_sectors = size / BDRV_SECTOR_SIZE;
    }
    return 0;
}

QemuOptsList cloudfs_amend_opts = {
    .name = "cloudfs-amend-opts",
    .head = QTAILQ_HEAD_INITIALIZER(cloudfs_amend_opts.head),
    .desc = {
        {
            .name = BLOCK_OPT_SIZE,
            .type = QEMU_OPT_SIZE,
            .help = "Virtual disk size (a multiple of the block size)"
        },
        {
            .name = "block-size",
            .type = QEMU_OPT_SIZE,
            .help = "Block size (cannot be changed)"
        },
        {
            .name = BLOCK_OPT_BACKING_FILE,
            .type = QEMU_OPT_STRING,
            .help = "New parent (a cloudfs image), or empty for none"
        },
        {
            .name = BLOCK_OPT_BACKING_FMT,
            .type = QEMU_OPT_STRING,
            .help = "Format of the new parent (cloudfs)"
        },
        { /* end of list */ }
    }
};
