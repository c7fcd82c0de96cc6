/*
 * cloudfs-store: the protocol driver for cloudfs:ID and cloudfs:ID@VERSION.
 *
 * It finds the image of disk ID (a unique hex prefix is enough, as in git)
 * in the host's store directory and passes the image file's bytes
 * through, so that format probing finds the cloudfs format on top of it;
 * the cloudfs format driver takes the version from here.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/module.h"
#include "qemu/option.h"
#include "qobject/qdict.h"
#include "qobject/qstring.h"
#include "block/block-io.h"
#include "cloudfs-int.h"

#define STORE_OPT_ID        "disk-id"
#define STORE_OPT_VERSION   "version"
#define STORE_OPT_STORE     "store"

static QemuOptsList cloudfs_store_runtime_opts = {
    .name = "cloudfs-store",
    .head = QTAILQ_HEAD_INITIALIZER(cloudfs_store_runtime_opts.head),
    .desc = {
        {
            .name = STORE_OPT_ID,
            .type = QEMU_OPT_STRING,
            .help = "Disk id, or a unique prefix of it (hex)",
        },
        {
            .name = STORE_OPT_VERSION,
            .type = QEMU_OPT_STRING,
            .help = "Version (number or snapshot name) to open read-only",
        },
        {
            .name = STORE_OPT_STORE,
            .type = QEMU_OPT_STRING,
            .help = "Store directory (default " CFS_STORE_DEFAULT ")",
        },
        { /* end of list */ }
    },
};

/* cloudfs:ID[@VERSION] */
static void cloudfs_store_parse_filename(const char *filename, QDict *options,
                                         Error **errp)
{
    const char *spec;
    const char *at;

    if (!strstart(filename, "cloudfs:", &spec) || !*spec) {
        error_setg(errp, "cloudfs disks are named cloudfs:ID[@VERSION]");
        return;
    }
    at = strchr(spec, '@');
    if (at) {
        qdict_put_str(options, STORE_OPT_VERSION, at + 1);
        qdict_put(options, STORE_OPT_ID,
                  qstring_from_substr(spec, 0, at - spec));
    } else {
        qdict_put_str(options, STORE_OPT_ID, spec);
    }
}

char *cloudfs_store_resolve(const char *store, const char *prefix,
                            Error **errp)
{
    g_autoptr(GDir) dir = NULL;
    g_autoptr(GError) gerr = NULL;
    g_autofree char *match = NULL;
    const char *name;
    size_t len = strlen(prefix);

    if (len == 0 || len > 2 * CFS_ID_LEN ||
        strspn(prefix, "0123456789abcdefABCDEF") != len) {
        error_setg(errp, "'%s' is not a cloudfs disk id (hex digits)", prefix);
        return NULL;
    }
    dir = g_dir_open(store, 0, &gerr);
    if (!dir) {
        error_setg(errp, "cannot read the cloudfs store %s: %s", store,
                   gerr->message);
        return NULL;
    }
    while ((name = g_dir_read_name(dir))) {
        if (strlen(name) != 2 * CFS_ID_LEN + 4 ||
            !g_str_has_suffix(name, ".cfs") ||
            g_ascii_strncasecmp(name, prefix, len)) {
            continue;
        }
        if (match) {
            error_setg(errp, "disk id prefix '%s' is ambiguous in %s: it "
                       "matches %.40s and %.40s", prefix, store, match, name);
            return NULL;
        }
        match = g_strdup(name);
    }
    if (!match) {
        error_setg(errp, "no cloudfs disk %s in the store %s", prefix, store);
        return NULL;
    }
    return g_build_filename(store, match, NULL);
}

static int cloudfs_store_open(BlockDriverState *bs, QDict *options, int flags,
                              Error **errp)
{
    BDRVCloudfsStoreState *s = bs->opaque;
    QemuOpts *opts;
    g_autofree char *path = NULL;
    const char *store;
    int ret = 0;

    opts = qemu_opts_create(&cloudfs_store_runtime_opts, NULL, 0,
                            &error_abort);
    if (!qemu_opts_absorb_qdict(opts, options, errp)) {
        ret = -EINVAL;
        goto out;
    }
    store = qemu_opt_get(opts, STORE_OPT_STORE) ?: g_getenv(CFS_STORE_ENV) ?:
            CFS_STORE_DEFAULT;
    if (!qemu_opt_get(opts, STORE_OPT_ID)) {
        error_setg(errp, "cloudfs-store needs the disk id");
        ret = -EINVAL;
        goto out;
    }
    path = cloudfs_store_resolve(store, qemu_opt_get(opts, STORE_OPT_ID),
                                 errp);
    if (!path) {
        ret = -ENOENT;
        goto out;
    }
    s->version = g_strdup(qemu_opt_get(opts, STORE_OPT_VERSION));
    /* the image file's bytes, never probed: the format goes on top of us */
    qdict_put_str(options, "file.driver", "file");
    qdict_put_str(options, "file.filename", path);
    if (!bdrv_open_child(NULL, options, "file", bs, &child_of_bds,
                         BDRV_CHILD_DATA | BDRV_CHILD_PRIMARY, false, errp)) {
        g_free(s->version);     /* close is not called after a failed open */
        s->version = NULL;
        ret = -EINVAL;
        goto out;
    }
    pstrcpy(bs->exact_filename, sizeof(bs->exact_filename), path);
    /* zero writes pass through: the format grows the file ahead of its
     * log with BDRV_REQ_NO_FALLBACK (block/cloudfs-io.c) */
    bdrv_graph_rdlock_main_loop();
    bs->supported_zero_flags = bs->file->bs->supported_zero_flags &
                               (BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK);
    bdrv_graph_rdunlock_main_loop();
out:
    qemu_opts_del(opts);
    return ret;
}

static int cloudfs_store_reopen_prepare(BDRVReopenState *state,
                                        BlockReopenQueue *queue, Error **errp)
{
    /* nothing of ours depends on read-only or read-write */
    return 0;
}

static void cloudfs_store_close(BlockDriverState *bs)
{
    BDRVCloudfsStoreState *s = bs->opaque;

    g_free(s->version);
    s->version = NULL;
}

const char *cloudfs_store_version(BlockDriverState *bs)
{
    if (bs->drv != &bdrv_cloudfs_store) {
        return NULL;
    }
    return ((BDRVCloudfsStoreState *)bs->opaque)->version;
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_store_co_preadv(BlockDriverState *bs, int64_t offset, int64_t bytes,
                        QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    return bdrv_co_preadv(bs->file, offset, bytes, qiov, flags);
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_store_co_pwritev(BlockDriverState *bs, int64_t offset, int64_t bytes,
                         QEMUIOVector *qiov, BdrvRequestFlags flags)
{
    return bdrv_co_pwritev(bs->file, offset, bytes, qiov, flags);
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_store_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset,
                               int64_t bytes, BdrvRequestFlags flags)
{
    return bdrv_co_pwrite_zeroes(bs->file, offset, bytes, flags);
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_store_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    return bdrv_co_pdiscard(bs->file, offset, bytes);
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_store_co_flush(BlockDriverState *bs)
{
    return bdrv_co_flush(bs->file->bs);
}

static int64_t coroutine_fn GRAPH_RDLOCK
cloudfs_store_co_getlength(BlockDriverState *bs)
{
    return bdrv_co_getlength(bs->file->bs);
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_store_co_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                          PreallocMode prealloc, BdrvRequestFlags flags,
                          Error **errp)
{
    return bdrv_co_truncate(bs->file, offset, exact, prealloc, flags, errp);
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_store_co_block_status(BlockDriverState *bs, bool want_zero,
                              int64_t offset, int64_t bytes, int64_t *pnum,
                              int64_t *map, BlockDriverState **file)
{
    *pnum = bytes;
    *map = offset;
    *file = bs->file->bs;
    return BDRV_BLOCK_RAW | BDRV_BLOCK_OFFSET_VALID;
}

static void cloudfs_store_refresh_limits(BlockDriverState *bs, Error **errp)
{
    bs->bl.request_alignment = 1;
}

/*
 * Creation goes through the cloudfs format (qemu-img create -f cloudfs
 * cloudfs:NEW), which names the new image by its id; the protocol alone
 * cannot, as an id exists only once the image does.
 */
static int coroutine_fn GRAPH_UNLOCKED
cloudfs_store_co_create_opts(BlockDriver *drv, const char *filename,
                             QemuOpts *opts, Error **errp)
{
    error_setg(errp, "cloudfs disks are created with qemu-img create "
               "-f cloudfs cloudfs:NEW");
    return -ENOTSUP;
}

static QemuOptsList cloudfs_store_create_opts = {
    .name = "cloudfs-store-create-opts",
    .head = QTAILQ_HEAD_INITIALIZER(cloudfs_store_create_opts.head),
    .desc = {
        { /* end of list */ }
    }
};

static const char *const cloudfs_store_strong_runtime_opts[] = {
    STORE_OPT_ID,
    STORE_OPT_VERSION,
    STORE_OPT_STORE,
    NULL
};

BlockDriver bdrv_cloudfs_store = {
    .format_name                = "cloudfs-store",
    .protocol_name              = "cloudfs",
    .instance_size              = sizeof(BDRVCloudfsStoreState),
    .bdrv_parse_filename        = cloudfs_store_parse_filename,
    .bdrv_open                  = cloudfs_store_open,
    .bdrv_close                 = cloudfs_store_close,
    .bdrv_reopen_prepare        = cloudfs_store_reopen_prepare,
    .bdrv_child_perm            = bdrv_default_perms,

    .bdrv_co_preadv             = cloudfs_store_co_preadv,
    .bdrv_co_pwritev            = cloudfs_store_co_pwritev,
    .bdrv_co_pwrite_zeroes      = cloudfs_store_co_pwrite_zeroes,
    .bdrv_co_pdiscard           = cloudfs_store_co_pdiscard,
    .bdrv_co_flush              = cloudfs_store_co_flush,
    .bdrv_co_getlength          = cloudfs_store_co_getlength,
    .bdrv_co_truncate           = cloudfs_store_co_truncate,
    .bdrv_co_block_status       = cloudfs_store_co_block_status,
    .bdrv_refresh_limits        = cloudfs_store_refresh_limits,

    .bdrv_co_create_opts        = cloudfs_store_co_create_opts,
    .create_opts                = &cloudfs_store_create_opts,
    .strong_runtime_opts        = cloudfs_store_strong_runtime_opts,
};

static void bdrv_cloudfs_store_init(void)
{
    bdrv_register(&bdrv_cloudfs_store);
}

block_init(bdrv_cloudfs_store_init);
