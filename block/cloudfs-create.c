/*
 * cloudfs block driver: image creation (qemu-img create, blockdev-create).
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-block-core.h"
#include "qobject/qdict.h"
#include "qapi/qobject-input-visitor.h"
#include "qemu/option.h"
#include "block/qdict.h"
#include "system/block-backend.h"
#include "cloudfs-int.h"

/* CfsIO on a BlockBackend, for the image being created */
static int blk_io_pread(void *opaque, void *buf, size_t len, uint64_t offset)
{
    int ret = blk_pread(opaque, offset, len, buf, 0);

    return ret < 0 ? ret : 0;
}

static int blk_io_pwritev(void *opaque, const struct iovec *iov, int iovcnt,
                          uint64_t offset)
{
    for (int i = 0; i < iovcnt; i++) {
        int ret = blk_pwrite(opaque, offset, iov[i].iov_len, iov[i].iov_base,
                             0);

        if (ret < 0) {
            return ret;
        }
        offset += iov[i].iov_len;
    }
    return 0;
}

static int blk_io_flush(void *opaque)
{
    return blk_flush(opaque);
}

static int blk_io_truncate(void *opaque, uint64_t size)
{
    return blk_truncate(opaque, size, false, PREALLOC_MODE_OFF, 0, NULL);
}

static int64_t blk_io_size(void *opaque)
{
    return blk_getlength(opaque);
}

/*
 * Fill in the parent of a branch from its backing file: a cloudfs image,
 * at its current version.
 */
static int coroutine_fn
cloudfs_branch_parent(const char *backing_file, CfsCreateOptions *copts,
                      Error **errp)
{
    BlockBackend *blk;
    QDict *options = qdict_new();
    BlockDriverState *bs;
    BDRVCloudfsState *ps;
    int ret = 0;

    qdict_put_str(options, "driver", "cloudfs");
    blk = blk_co_new_open(backing_file, NULL, options, BDRV_O_NO_BACKING,
                          errp);
    if (!blk) {
        error_prepend(errp, "cannot open the parent of the branch: ");
        return -EINVAL;
    }
    bs = blk_bs(blk);
    ps = bs->opaque;
    copts->has_parent = true;
    memcpy(copts->parent_disk_id, cfs_disk_id(ps->disk), CFS_ID_LEN);
    copts->parent_version = cfs_disk_version(ps->disk);
    memcpy(copts->parent_version_id, cfs_disk_version_id(ps->disk),
           CFS_ID_LEN);
    if (!copts->size) {
        copts->size = cfs_disk_size(ps->disk);
    }
    blk_co_unref(blk);
    return ret;
}

int coroutine_fn GRAPH_UNLOCKED
cloudfs_co_create(BlockdevCreateOptions *opts, Error **errp)
{
    BlockdevCreateOptionsCloudfs *o = &opts->u.cloudfs;
    g_autoptr(GError) gerr = NULL;
    CfsCreateOptions copts = {
        .size = o->size,
        .block_size = o->has_block_size ? o->block_size : 0,
    };
    BlockDriverState *bs;
    BlockBackend *blk;
    uint8_t id[CFS_ID_LEN];
    CfsIO io;
    int ret;

    assert(opts->driver == BLOCKDEV_DRIVER_CLOUDFS);
    if (o->has_backing_fmt && o->backing_fmt != BLOCKDEV_DRIVER_CLOUDFS) {
        error_setg(errp, "the parent of a cloudfs branch must be a "
                   "cloudfs image");
        return -EINVAL;
    }
    bs = bdrv_co_open_blockdev_ref(o->file, errp);
    if (!bs) {
        return -EIO;
    }
    if (o->backing_file) {
        /* a relative name is relative to the new image, as QEMU will
         * resolve it when it opens the branch */
        g_autofree char *full = strchr(o->backing_file, ':') ? NULL :
            bdrv_get_full_backing_filename_from_filename(bs->filename,
                                                         o->backing_file,
                                                         NULL);

        ret = cloudfs_branch_parent(full ?: o->backing_file, &copts, errp);
        if (ret < 0) {
            goto out;
        }
        copts.parent_hint = o->backing_file;
    }
    blk = blk_co_new_with_bs(bs, BLK_PERM_WRITE | BLK_PERM_RESIZE,
                             BLK_PERM_ALL, errp);
    if (!blk) {
        ret = -EPERM;
        goto out;
    }
    blk_set_allow_write_beyond_eof(blk, true);
    /* start from an empty file, as the core requires */
    ret = blk_co_truncate(blk, 0, true, PREALLOC_MODE_OFF, 0, errp);
    if (ret < 0) {
        goto out_blk;
    }
    io = (CfsIO) {
        .opaque = blk, .pread = blk_io_pread, .pwritev = blk_io_pwritev,
        .flush = blk_io_flush, .truncate = blk_io_truncate,
        .size = blk_io_size,
    };
    if (!cfs_disk_create(&io, &copts, id, &gerr)) {
        ret = cloudfs_error(g_steal_pointer(&gerr), errp);
        goto out_blk;
    }
    ret = 0;
out_blk:
    blk_co_unref(blk);
out:
    bdrv_co_unref(bs);
    return ret;
}

/*
 * qemu-img create -f cloudfs cloudfs:NEW: the new disk's name is its id,
 * which only exists once it is created, so the image is made under a
 * temporary name in the store and renamed to ID.cfs; the id is printed.
 */
static int coroutine_fn
cloudfs_store_create(QemuOpts *opts, Error **errp)
{
    g_autoptr(GError) gerr = NULL;
    g_autofree char *store = qemu_opt_get_del(opts, "store");
    g_autofree char *backing = qemu_opt_get_del(opts, BLOCK_OPT_BACKING_FILE);
    g_autofree char *tmp = NULL;
    g_autofree char *final = NULL;
    g_autofree char *name = NULL;
    CfsCreateOptions copts = {
        .size = qemu_opt_get_size_del(opts, BLOCK_OPT_SIZE, 0),
        .block_size = qemu_opt_get_size_del(opts, "block-size", 0),
    };
    uint8_t id[CFS_ID_LEN];
    char hex[41];
    CfsIO io;
    int fd, ret;

    if (backing) {
        /* the image lives in the store: name its parent absolutely */
        if (!strchr(backing, ':') && !g_path_is_absolute(backing)) {
            char *abs = g_canonicalize_filename(backing, NULL);

            g_free(backing);
            backing = abs;
        }
        ret = cloudfs_branch_parent(backing, &copts, errp);
        if (ret < 0) {
            return ret;
        }
        copts.parent_hint = backing;
    }
    if (!store) {
        store = g_strdup(g_getenv(CFS_STORE_ENV) ?: CFS_STORE_DEFAULT);
    }
    if (g_mkdir_with_parents(store, 0700) < 0) {
        error_setg_errno(errp, errno, "cannot create the store %s", store);
        return -errno;
    }
    tmp = g_build_filename(store, ".new-XXXXXX", NULL);
    fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot create a disk in %s", store);
        return -errno;
    }
    cfs_io_init_fd(&io, &fd);
    if (!cfs_disk_create(&io, &copts, id, &gerr)) {
        close(fd);
        unlink(tmp);
        return cloudfs_error(g_steal_pointer(&gerr), errp);
    }
    close(fd);
    cfs_id_to_hex(id, hex);
    name = g_strdup_printf("%s.cfs", hex);
    final = g_build_filename(store, name, NULL);
    if (rename(tmp, final) < 0) {
        ret = -errno;
        error_setg_errno(errp, errno, "cannot name the new disk %s", final);
        unlink(tmp);
        return ret;
    }
    /* the caller needs the id to use the disk: cloudfs:ID */
    printf("%s\n", hex);
    fflush(stdout);
    return 0;
}

int coroutine_fn GRAPH_UNLOCKED
cloudfs_co_create_opts(BlockDriver *drv, const char *filename,
                       QemuOpts *opts, Error **errp)
{
    BlockdevCreateOptions *create_options = NULL;
    QDict *qdict;
    Visitor *v;
    BlockDriverState *bs = NULL;
    int ret;

    if (g_str_equal(filename, "cloudfs:NEW") ||
        g_str_equal(filename, "cloudfs:new")) {
        return cloudfs_store_create(opts, errp);
    }

    static const QDictRenames opt_renames[] = {
        { BLOCK_OPT_BACKING_FILE, "backing-file" },
        { BLOCK_OPT_BACKING_FMT, "backing-fmt" },
        { NULL, NULL },
    };

    qdict = qemu_opts_to_qdict_filtered(opts, NULL, &cloudfs_create_opts,
                                        true);
    qdict_del(qdict, "store");     /* only for cloudfs:NEW */
    if (!qdict_rename_keys(qdict, opt_renames, errp)) {
        ret = -EINVAL;
        goto done;
    }
    ret = bdrv_co_create_file(filename, opts, errp);
    if (ret < 0) {
        goto done;
    }
    bs = bdrv_co_open(filename, NULL, NULL,
                      BDRV_O_RDWR | BDRV_O_RESIZE | BDRV_O_PROTOCOL, errp);
    if (!bs) {
        ret = -EIO;
        goto done;
    }
    qdict_put_str(qdict, "driver", "cloudfs");
    qdict_put_str(qdict, "file", bs->node_name);
    v = qobject_input_visitor_new_flat_confused(qdict, errp);
    if (!v) {
        ret = -EINVAL;
        goto done;
    }
    visit_type_BlockdevCreateOptions(v, NULL, &create_options, errp);
    visit_free(v);
    if (!create_options) {
        ret = -EINVAL;
        goto done;
    }
    ret = cloudfs_co_create(create_options, errp);
done:
    qobject_unref(qdict);
    bdrv_co_unref(bs);
    qapi_free_BlockdevCreateOptions(create_options);
    return ret;
}

QemuOptsList cloudfs_create_opts = {
    .name = "cloudfs-create-opts",
    .head = QTAILQ_HEAD_INITIALIZER(cloudfs_create_opts.head),
    .desc = {
        {
            .name = BLOCK_OPT_SIZE,
            .type = QEMU_OPT_SIZE,
            .help = "Virtual disk size"
        },
        {
            .name = "block-size",
            .type = QEMU_OPT_SIZE,
            .help = "Block size (power of two, 512 to 65536; default 4096)"
        },
        {
            .name = BLOCK_OPT_BACKING_FILE,
            .type = QEMU_OPT_STRING,
            .help = "Parent image of a branch (a cloudfs image)"
        },
        {
            .name = "store",
            .type = QEMU_OPT_STRING,
            .help = "Store directory for cloudfs:NEW (default "
                    CFS_STORE_DEFAULT ")"
        },
        {
            .name = BLOCK_OPT_BACKING_FMT,
            .type = QEMU_OPT_STRING,
            .help = "Format of the parent (cloudfs)"
        },
        { /* end of list */ }
    }
};
