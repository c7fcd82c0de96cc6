/*
 * cloudfs block driver: log-structured, versioned, branchable images.
 *
 * The format core (block/cloudfs/) decides where data goes and keeps the
 * metadata; this driver reads guest data with vectored I/O straight into
 * the guest's buffers, writes it from a copy of its own (cloudfs_co_write
 * says why), and batches concurrent writes into one log append (group
 * commit).
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-block-core.h"
#include "qobject/qdict.h"
#include "qemu/cutils.h"
#include "qobject/qjson.h"
#include "qemu/error-report.h"
#include "qemu/memalign.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "qemu/option.h"
#include "block/aio_task.h"
#include "block/block-io.h"
#include "block/qdict.h"
#include "system/block-backend.h"
#include "cloudfs-int.h"
#include "trace.h"

#define CLOUDFS_OPT_VERSION "version"

static QemuOptsList cloudfs_runtime_opts = {
    .name = "cloudfs",
    .head = QTAILQ_HEAD_INITIALIZER(cloudfs_runtime_opts.head),
    .desc = {
        {
            .name = CLOUDFS_OPT_VERSION,
            .type = QEMU_OPT_STRING,
            .help = "Open this version (number or snapshot name) read-only",
        },
        { /* end of list */ }
    },
};

static int cloudfs_probe(const uint8_t *buf, int buf_size,
                         const char *filename)
{
    if (buf_size >= CFS_MAGIC_LEN &&
        memcmp(buf, CFS_MAGIC, CFS_MAGIC_LEN) == 0) {
        return 100;
    }
    return 0;
}

/*
 * A branch's backing file is its parent at exactly the version it was
 * branched from, whatever the parent's head is now: the backing file name
 * QEMU opens says so, in a json: name with the version option.
 */
static void cloudfs_set_backing(BlockDriverState *bs, CfsDisk *disk)
{
    const CfsSuperblock *sb = cfs_disk_superblock(disk);
    g_autofree char *hint = NULL;
    g_autofree char *path = NULL;
    g_autoptr(GString) json = NULL;
    char version[32];
    QDict *opts, *file;

    if (!cfs_disk_has_parent(disk)) {
        return;
    }
    hint = g_strndup(sb->parent_hint, GUINT16_FROM_LE(sb->parent_hint_len));
    if (strstart(hint, "cloudfs:", NULL) && !strchr(hint, '@')) {
        /* a disk in the store: pinned with cloudfs:ID@VERSION */
        snprintf(bs->auto_backing_file, sizeof(bs->auto_backing_file),
                 "%s@%" PRIu64, hint,
                 (uint64_t)GUINT64_FROM_LE(sb->parent_version));
    } else if (strstart(hint, "json:", NULL) || strchr(hint, ':')) {
        /* not a plain file name: let the block layer take it as it is */
        pstrcpy(bs->auto_backing_file, sizeof(bs->auto_backing_file), hint);
    } else {
        path = bdrv_get_full_backing_filename_from_filename(bs->filename,
                                                            hint, NULL);
        file = qdict_new();
        qdict_put_str(file, "driver", "file");
        qdict_put_str(file, "filename", path ?: hint);
        opts = qdict_new();
        qdict_put_str(opts, "driver", "cloudfs");
        snprintf(version, sizeof(version), "%" PRIu64,
                 (uint64_t)GUINT64_FROM_LE(sb->parent_version));
        qdict_put_str(opts, "version", version);
        qdict_put(opts, "file", file);
        json = qobject_to_json(QOBJECT(opts));
        qobject_unref(opts);
        snprintf(bs->auto_backing_file, sizeof(bs->auto_backing_file),
                 "json:%s", json->str);
    }
    pstrcpy(bs->backing_file, sizeof(bs->backing_file),
            bs->auto_backing_file);
    pstrcpy(bs->backing_format, sizeof(bs->backing_format), "cloudfs");
}

static int cloudfs_open(BlockDriverState *bs, QDict *options, int flags,
                        Error **errp)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;
    QemuOpts *opts;
    g_autofree char *version_spec = NULL;
    uint64_t version = CFS_VERSION_HEAD;
    int ret;

    ret = bdrv_open_file_child(NULL, options, "file", bs, errp);
    if (ret < 0) {
        return ret;
    }

    GRAPH_RDLOCK_GUARD_MAINLOOP();

    opts = qemu_opts_create(&cloudfs_runtime_opts, NULL, 0, &error_abort);
    if (!qemu_opts_absorb_qdict(opts, options, errp)) {
        qemu_opts_del(opts);
        return -EINVAL;
    }
    version_spec = g_strdup(qemu_opt_get(opts, CLOUDFS_OPT_VERSION) ?:
                            cloudfs_store_version(bs->file->bs));

    qemu_co_mutex_init(&s->lock);
    qemu_co_queue_init(&s->batch_done);
    QSIMPLEQ_INIT(&s->queue);
    cloudfs_io_init(s, bs);

    if (version_spec) {
        /* resolve a tag or number against the head, then reopen there */
        CfsDisk *head = cfs_disk_open(&s->io, 0, CFS_VERSION_HEAD, &gerr);

        if (!head || !cfs_disk_resolve_version(head, version_spec, &version,
                                               &gerr)) {
            cfs_disk_free(head);
            qemu_opts_del(opts);
            return cloudfs_error(g_steal_pointer(&gerr), errp);
        }
        if (version == cfs_disk_version(head)) {
            version = CFS_VERSION_HEAD;
        }
        cfs_disk_free(head);
    }
    qemu_opts_del(opts);
    if (version != CFS_VERSION_HEAD && (flags & BDRV_O_RDWR)) {
        error_setg(errp, "version %s of a cloudfs image is a historical "
                   "version and can only be opened read-only", version_spec);
        return -EACCES;
    }
    /* a read-only or inactive user may share the image with its writer,
     * whose appends in progress are no evidence of damage */
    s->disk = cfs_disk_open(&s->io, (flags & BDRV_O_RDWR) ? CFS_OPEN_RDWR
                                                          : CFS_OPEN_SHARED,
                            version, &gerr);
    if (!s->disk) {
        return cloudfs_error(g_steal_pointer(&gerr), errp);
    }
    bs->total_sectors = cfs_disk_size(s->disk) / BDRV_SECTOR_SIZE;
    bs->supported_zero_flags = BDRV_REQ_MAY_UNMAP | BDRV_REQ_NO_FALLBACK;
    /* growing a branch must hide the parent in the new range */
    bs->supported_truncate_flags = BDRV_REQ_ZERO_WRITE;
    cloudfs_set_backing(bs, s->disk);
    return 0;
}

static void cloudfs_refresh_limits(BlockDriverState *bs, Error **errp)
{
    BDRVCloudfsState *s = bs->opaque;
    uint32_t block_size = cfs_disk_block_size(s->disk);

    /* the index maps whole blocks: QEMU does read-modify-write for us */
    bs->bl.request_alignment = block_size;
    bs->bl.pwrite_zeroes_alignment = block_size;
    bs->bl.pdiscard_alignment = block_size;
    bs->bl.max_transfer = CLOUDFS_MAX_TRANSFER;
}

/*
 * Read-only <-> read-write: the core disk is opened again the new way, at
 * the same version (a historical version never becomes writable).
 */
static int cloudfs_reopen_prepare(BDRVReopenState *state,
                                  BlockReopenQueue *queue, Error **errp)
{
    BDRVCloudfsState *s = state->bs->opaque;
    g_autoptr(GError) gerr = NULL;
    bool want_rw = state->flags & BDRV_O_RDWR;
    CfsDisk *disk;

    state->opaque = NULL;
    if (want_rw == !cfs_disk_read_only(s->disk)) {
        return 0;
    }
    if (want_rw && cfs_disk_historical(s->disk)) {
        error_setg(errp, "a historical version of a cloudfs image cannot "
                   "be reopened read-write");
        return -EACCES;
    }
    if (!want_rw) {
        /* leave a checkpoint behind while the file is still writable, and
         * give back the space grown ahead of the log */
        if (!cfs_disk_checkpoint(s->disk, &gerr)) {
            return cloudfs_error(g_steal_pointer(&gerr), errp);
        }
        cfs_disk_trim(s->disk);
        cloudfs_io_forget_growth(s);
    }
    disk = cfs_disk_open(&s->io, want_rw ? CFS_OPEN_RDWR : CFS_OPEN_SHARED,
                         CFS_VERSION_HEAD, &gerr);
    if (!disk) {
        return cloudfs_error(g_steal_pointer(&gerr), errp);
    }
    state->opaque = disk;
    return 0;
}

static void cloudfs_reopen_commit(BDRVReopenState *state)
{
    BDRVCloudfsState *s = state->bs->opaque;

    if (state->opaque) {
        cfs_disk_free(s->disk);
        s->disk = state->opaque;
        state->opaque = NULL;
        cloudfs_io_forget_growth(s);
    }
}

static void cloudfs_reopen_abort(BDRVReopenState *state)
{
    cfs_disk_free(state->opaque);
    state->opaque = NULL;
}

/*
 * Migration: the source stops writing (a last checkpoint so that the
 * destination opens fast), the destination rereads the log the source
 * wrote before it takes over.
 */
static int GRAPH_RDLOCK cloudfs_inactivate(BlockDriverState *bs)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;

    if (s->inflight || s->zeroing || !QSIMPLEQ_EMPTY(&s->queue) ||
        cfs_disk_appends_in_flight(s->disk)) {
        /* the block layer drains before it inactivates; say so if not */
        return -EBUSY;
    }
    if (!cfs_disk_read_only(s->disk) && !cfs_disk_checkpoint(s->disk, &gerr)) {
        error_report("cloudfs: %s", gerr->message);
        return -EIO;
    }
    /* the destination finds no preallocated space to clear */
    cfs_disk_trim(s->disk);
    cloudfs_io_forget_growth(s);
    return 0;
}

/*
 * Open the core disk again, the same way, from what the file holds now
 * (someone else wrote it: a migration source, a repair).  Called with
 * s->lock held and nothing in flight.
 */
static int coroutine_fn GRAPH_RDLOCK
cloudfs_reload(BlockDriverState *bs, Error **errp)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;
    unsigned flags = cfs_disk_read_only(s->disk) ? 0 : CFS_OPEN_RDWR;
    uint64_t version = cfs_disk_historical(s->disk) ?
                       cfs_disk_version(s->disk) : CFS_VERSION_HEAD;
    CfsDisk *fresh = cfs_disk_open(&s->io, flags, version, &gerr);

    if (!fresh) {
        return cloudfs_error(g_steal_pointer(&gerr), errp);
    }
    cfs_disk_free(s->disk);
    s->disk = fresh;
    cloudfs_io_forget_growth(s);
    bs->total_sectors = cfs_disk_size(s->disk) / BDRV_SECTOR_SIZE;
    return 0;
}

static void coroutine_fn GRAPH_RDLOCK
cloudfs_co_invalidate_cache(BlockDriverState *bs, Error **errp)
{
    BDRVCloudfsState *s = bs->opaque;

    qemu_co_mutex_lock(&s->lock);
    cloudfs_reload(bs, errp);
    qemu_co_mutex_unlock(&s->lock);
}

static void cloudfs_close(BlockDriverState *bs)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;

    GRAPH_RDLOCK_GUARD_MAINLOOP();

    if (s->disk && (bs->open_flags & BDRV_O_INACTIVE)) {
        /* another process owns the image now: write nothing */
        cfs_disk_free(s->disk);
    } else if (s->disk && !cfs_disk_close(s->disk, &gerr)) {
        /* writes since the last flush may be lost (as in a crash); the
         * log itself is whole */
        warn_report("cloudfs: closing did not complete: %s", gerr->message);
    }
    s->disk = NULL;
    cloudfs_io_cleanup(s);
}

/* --- reads ------------------------------------------------------------ */

/*
 * Before a branch reads through to its backing node, make sure that node
 * is the parent the branch was made from: same disk id, same version,
 * same version id.  Anything else would read someone else's data.
 */
static int coroutine_fn GRAPH_RDLOCK cloudfs_check_parent(BlockDriverState *bs)
{
    BDRVCloudfsState *s = bs->opaque;
    const CfsSuperblock *sb = cfs_disk_superblock(s->disk);
    BlockDriverState *parent = bs->backing->bs;
    BDRVCloudfsState *ps;

    if (s->parent_checked || !cfs_disk_has_parent(s->disk)) {
        return 0;
    }
    if (parent->drv != &bdrv_cloudfs) {
        error_report("cloudfs: the backing node of '%s' is not a cloudfs "
                     "image, but a branch reads only from its cloudfs parent",
                     bs->filename);
        return -EIO;
    }
    ps = parent->opaque;
    if (memcmp(cfs_disk_id(ps->disk), sb->parent_disk_id, CFS_ID_LEN) ||
        cfs_disk_version(ps->disk) != GUINT64_FROM_LE(sb->parent_version) ||
        memcmp(cfs_disk_version_id(ps->disk), sb->parent_version_id,
               CFS_ID_LEN)) {
        error_report("cloudfs: '%s' is not the parent of '%s' (another "
                     "disk, or another history at version %" PRIu64 ")",
                     parent->filename, bs->filename,
                     (uint64_t)GUINT64_FROM_LE(sb->parent_version));
        return -EIO;
    }
    s->parent_checked = true;
    return 0;
}

/* A read that cannot go on: say why, as the guest only sees an errno */
static int cloudfs_read_error(GError *gerr)
{
    error_report("cloudfs: %s", gerr->message);
    return cloudfs_error(gerr, NULL);
}

/*
 * Reads whose record header is not cached yet (right after open, or once
 * the cache turned over) would cost two I/Os, the header's under the
 * lock.  When the data sits close behind its header, as after small
 * random writes, read both in one I/O outside the lock instead (the bytes
 * in between, up to this many, are read and dropped).
 */
#define CLOUDFS_JOINED_LEAD_MAX (128 * KiB)

static int coroutine_fn GRAPH_RDLOCK
cloudfs_read_with_header(BlockDriverState *bs, const CfsMapping *m,
                         QEMUIOVector *qiov, size_t qiov_offset)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;
    /* block aligned: record and data offsets both are */
    uint64_t lead = m->log_offset - m->record_offset;
    uint8_t *head = qemu_try_blockalign(bs->file->bs, lead);
    g_auto(CfsDataCheck) check = { .sums_le = NULL };
    QEMUIOVector both, data;
    int ret;

    if (!head) {
        return -ENOMEM;
    }
    /* the header into our buffer, the data straight into the guest's */
    qemu_iovec_init_slice(&data, qiov, qiov_offset, m->length);
    qemu_iovec_init(&both, data.niov + 1);
    qemu_iovec_add(&both, head, lead);
    qemu_iovec_concat(&both, &data, 0, m->length);
    ret = bdrv_co_preadv(bs->file, m->record_offset, lead + m->length, &both,
                         0);
    if (ret >= 0) {
        bool known;

        qemu_co_mutex_lock(&s->lock);
        known = cfs_disk_learn_record(s->disk, m->record_offset, head, lead,
                                      &gerr) &&
                cfs_disk_data_check(s->disk, m, &check, &gerr);
        qemu_co_mutex_unlock(&s->lock);
        if (!known ||
            !cfs_data_check_verify(&check, data.iov, data.niov, &gerr)) {
            ret = cloudfs_read_error(g_steal_pointer(&gerr));
        }
    }
    qemu_iovec_destroy(&both);
    qemu_iovec_destroy(&data);
    qemu_vfree(head);
    return ret;
}

/*
 * Where the next piece of a read comes from: its mapping and, for data
 * not read together with its record header (*joined false), the
 * checksums to check it against.  The only part of a read that needs the
 * lock (the joined read takes it again, to learn the header): the data
 * is read and checked without it, as log data never changes once written.
 */
static int coroutine_fn GRAPH_RDLOCK
cloudfs_read_plan(BlockDriverState *bs, int64_t offset, int64_t bytes,
                  CfsMapping *m, CfsDataCheck *check, bool *joined)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;
    int ret = 0;

    *joined = false;
    qemu_co_mutex_lock(&s->lock);
    if (!cfs_disk_map(s->disk, offset, bytes, m, &gerr)) {
        ret = cloudfs_read_error(g_steal_pointer(&gerr));
    } else if (m->kind == CFS_MAP_UNALLOCATED && bs->backing) {
        ret = cloudfs_check_parent(bs);
    } else if (m->kind == CFS_MAP_DATA) {
        if (!cfs_disk_record_known(s->disk, m->record_offset) &&
            m->log_offset - m->record_offset <= CLOUDFS_JOINED_LEAD_MAX) {
            *joined = true;
        } else if (!cfs_disk_data_check(s->disk, m, check, &gerr)) {
            ret = cloudfs_read_error(g_steal_pointer(&gerr));
        }
    }
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_co_preadv_part(BlockDriverState *bs, int64_t offset, int64_t bytes,
                       QEMUIOVector *qiov, size_t qiov_offset,
                       BdrvRequestFlags flags)
{
    BDRVCloudfsState *s = bs->opaque;
    int ret = 0;

    /* only writers look at it, to tell whether reads came in between */
    qatomic_inc(&s->reads);
    while (bytes > 0) {
        g_autoptr(GError) gerr = NULL;
        g_auto(CfsDataCheck) check = { .sums_le = NULL };
        CfsMapping m;
        QEMUIOVector slice;
        bool joined;

        ret = cloudfs_read_plan(bs, offset, bytes, &m, &check, &joined);
        if (ret < 0) {
            break;
        }
        switch (m.kind) {
        case CFS_MAP_UNALLOCATED:
            if (bs->backing) {
                /* reads past the parent's end come back as zeros */
                ret = bdrv_co_preadv_part(bs->backing, offset, m.length, qiov,
                                          qiov_offset, 0);
                break;
            }
            /* fall through */
        case CFS_MAP_ZERO:
            qemu_iovec_memset(qiov, qiov_offset, 0, m.length);
            break;
        case CFS_MAP_DATA:
            if (joined) {
                ret = cloudfs_read_with_header(bs, &m, qiov, qiov_offset);
                break;
            }
            ret = bdrv_co_preadv_part(bs->file, m.log_offset, m.length, qiov,
                                      qiov_offset, 0);
            if (ret < 0) {
                break;
            }
            /* never hand the guest a block that does not match its
             * checksum: a rotten block is an I/O error */
            qemu_iovec_init_slice(&slice, qiov, qiov_offset, m.length);
            if (!cfs_data_check_verify(&check, slice.iov, slice.niov,
                                       &gerr)) {
                ret = cloudfs_read_error(g_steal_pointer(&gerr));
            }
            qemu_iovec_destroy(&slice);
            break;
        }
        if (ret < 0) {
            break;
        }
        offset += m.length;
        bytes -= m.length;
        qiov_offset += m.length;
    }
    return ret;
}

/* --- writes: group commit --------------------------------------------- */

/*
 * Write an iovec at offset, in pieces when it is longer than IOV_MAX (a
 * batch of guest requests split around zero blocks can be).
 */
static int coroutine_fn GRAPH_RDLOCK
cloudfs_write_iov(BlockDriverState *bs, const struct iovec *iov, int iovcnt,
                  uint64_t offset)
{
    while (iovcnt > 0) {
        int n = MIN(iovcnt, IOV_MAX);
        QEMUIOVector qiov;
        int ret;

        qemu_iovec_init_external(&qiov, (struct iovec *)iov, n);
        ret = bdrv_co_pwritev(bs->file, offset, qiov.size, &qiov, 0);
        if (ret < 0) {
            return ret;
        }
        offset += qiov.size;
        iov += n;
        iovcnt -= n;
    }
    return 0;
}

/* One of the two writes of an append that also seals the full record */
typedef struct CloudfsWriteTask {
    AioTask task;
    BlockDriverState *bs;
    const struct iovec *iov;
    int iovcnt;
    uint64_t offset;
} CloudfsWriteTask;

static int coroutine_fn GRAPH_RDLOCK cloudfs_write_task(AioTask *task)
{
    CloudfsWriteTask *t = container_of(task, CloudfsWriteTask, task);

    return cloudfs_write_iov(t->bs, t->iov, t->iovcnt, t->offset);
}

static void coroutine_fn
cloudfs_start_write(AioTaskPool *pool, BlockDriverState *bs,
                    const struct iovec *iov, int iovcnt, uint64_t offset)
{
    CloudfsWriteTask *t = g_new(CloudfsWriteTask, 1);

    *t = (CloudfsWriteTask) {
        .task.func = cloudfs_write_task,
        .bs = bs,
        .iov = iov,
        .iovcnt = iovcnt,
        .offset = offset,
    };
    aio_task_pool_start_task(pool, &t->task);
}

/*
 * Write an append: its data, and when it begins a new record, the full
 * record's header too.  The two are independent, so they go in parallel:
 * the header costs no extra round trip on the data's path.
 */
static int coroutine_fn GRAPH_RDLOCK
cloudfs_write_append(BlockDriverState *bs, CfsAppend *a, uint64_t header_at,
                     const struct iovec *header)
{
    int iovcnt;
    const struct iovec *iov = cfs_append_iov(a, &iovcnt);
    AioTaskPool *pool;
    int ret;

    if (!header->iov_len) {
        return cloudfs_write_iov(bs, iov, iovcnt, cfs_append_offset(a));
    }
    pool = aio_task_pool_new(2);
    cloudfs_start_write(pool, bs, header, 1, header_at);
    cloudfs_start_write(pool, bs, iov, iovcnt, cfs_append_offset(a));
    aio_task_pool_wait_all(pool);
    ret = aio_task_pool_status(pool);
    aio_task_pool_free(pool);
    return ret;
}

/* Bytes of data a queued request brings (zero writes and discards: none) */
static uint64_t cloudfs_req_payload(const CloudfsWriteReq *req)
{
    return req->write.iov ? req->write.length : 0;
}

/*
 * Take every queued request (up to the record size limit) into one
 * append.  Called with the lock held; returns with it held.  Returns
 * false, with the requests back in the queue, when the open record is
 * full while its first append is still in flight (as after a flush,
 * when the record's room fits its first batch only; or when the next
 * record's room must first be cleared, which waits for every append in
 * flight): the batch that freezes it once that is done takes them along.
 */
static bool coroutine_fn GRAPH_RDLOCK cloudfs_lead_batch(BlockDriverState *bs)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GArray) writes = g_array_new(FALSE, FALSE, sizeof(CfsWrite));
    g_autoptr(GPtrArray) reqs = g_ptr_array_new();
    uint64_t payload = 0, header_at = 0, log_end_before, log_end;
    unsigned reads;
    bool lone;
    struct iovec header = { 0 };
    CfsAppendState state;
    CfsAppend *a;
    int ret;

    while (!QSIMPLEQ_EMPTY(&s->queue)) {
        CloudfsWriteReq *req = QSIMPLEQ_FIRST(&s->queue);

        if (reqs->len &&
            (payload + req->write.length > CFS_MAX_CHAIN_PAYLOAD ||
             reqs->len >= CLOUDFS_MAX_BATCH)) {
            break;
        }
        QSIMPLEQ_REMOVE_HEAD(&s->queue, next);
        s->queued_bytes -= cloudfs_req_payload(req);
        req->taken = true;
        payload += cloudfs_req_payload(req);
        g_array_append_val(writes, req->write);
        g_ptr_array_add(reqs, req);
    }
    log_end_before = cfs_disk_log_end(s->disk);
    s->file_errno = 0;
    a = cfs_append_prepare(s->disk, (CfsWrite *)writes->data, writes->len,
                           &gerr);
    if (!a && g_error_matches(gerr, CFS_ERROR, CFS_ERROR_BUSY) &&
        s->inflight > 0) {
        /* the open record is full: it is frozen once the appends in
         * flight have settled */
        for (guint i = reqs->len; i-- > 0;) {
            CloudfsWriteReq *req = reqs->pdata[i];

            req->taken = false;
            s->queued_bytes += cloudfs_req_payload(req);
            QSIMPLEQ_INSERT_HEAD(&s->queue, req, next);
        }
        return false;
    }
    if (!a) {
        error_report("cloudfs: %s", gerr->message);
        ret = cloudfs_request_error(s, g_steal_pointer(&gerr), NULL);
        goto out;
    }
    s->inflight++;
    trace_cloudfs_append(bs, cfs_append_version(a), reqs->len,
                         cfs_append_offset(a), s->inflight);
    /*
     * Grow the file ahead of the log before the write, so that it lands
     * inside the file.  Once requests queue up behind one another or run
     * beside one another, with fallocate.  While small writes come one
     * at a time and alone, with zeros written ahead that the appends
     * overwrite (cloudfs_io_zero_ahead says why); not once they queue up,
     * nor beside reads (there, overwriting was slower than writing into
     * fallocated space).
     * A big request alone is left to extend the file: nothing could run
     * beside it, and on a fresh image a write into fallocated space was
     * slower (ext4 grows and collapses its extent tree at every write).
     * bench/analysis.rst has the measurements.
     */
    log_end = cfs_disk_log_end(s->disk);
    reads = qatomic_read(&s->reads);
    lone = reqs->len == 1 && s->inflight == 1 &&
           log_end - log_end_before < CLOUDFS_ZERO_AHEAD_BELOW &&
           reads == s->reads_seen;
    s->reads_seen = reads;
    /* rounded, so that it settles at CLOUDFS_SHARE_ONE */
    s->lone_share = (s->lone_share * 7 + (lone ? CLOUDFS_SHARE_ONE : 0) +
                     4) / 8;
    if (s->lone_share >= CLOUDFS_ZERO_AHEAD_SHARE) {
        cloudfs_io_zero_ahead(s, log_end);
    } else if (reqs->len > 1 || s->inflight > 1) {
        cloudfs_io_preallocate(s, log_end_before, log_end);
    }

    /* the header buffer is the core's: take it while the lock is held */
    header.iov_len = cfs_append_header(a, s->disk, &header_at,
                                       (const void **)&header.iov_base);
    /*
     * Not over zeros still being written ahead of the log (the frozen
     * header above cannot change meanwhile: this append is in flight).
     */
    while (s->zeroing && log_end > s->zeroing_from) {
        qemu_co_queue_wait(&s->batch_done, &s->lock);
    }
    /* the writes need no metadata: other batches go on meanwhile */
    qemu_co_mutex_unlock(&s->lock);
    ret = cloudfs_write_append(bs, a, header_at, &header);
    qemu_co_mutex_lock(&s->lock);

    state = cfs_append_complete(s->disk, a, ret);
    /* versions are applied in order: wait for the earlier batches */
    while (state == CFS_APPEND_PENDING) {
        qemu_co_queue_wait(&s->batch_done, &s->lock);
        state = cfs_append_state(a);
    }
    /* one that failed with an earlier one reports that one's error, so
     * that ENOSPC still pauses the guest (werror=enospc) */
    ret = cfs_append_error(a);
    cfs_append_free(a);
    s->inflight--;
    /* (while zeros are written ahead, the next batch to settle does it) */
    if (ret == 0 && s->inflight == 0 && !s->zeroing &&
        cfs_disk_checkpoint_due(s->disk)) {
        /*
         * Index nodes changed since the last checkpoint pile up in memory
         * until one is written; a guest that never flushes would grow
         * them without bound.  No append is in flight (nor zeros ahead
         * of the log) and none starts while the lock is held.
         */
        g_autoptr(GError) ckpt_err = NULL;

        if (!cfs_disk_checkpoint(s->disk, &ckpt_err)) {
            error_report("cloudfs: checkpoint failed: %s", ckpt_err->message);
        }
    }
out:
    for (guint i = 0; i < reqs->len; i++) {
        CloudfsWriteReq *req = reqs->pdata[i];

        req->ret = ret;
        req->done = true;
    }
    qemu_co_queue_restart_all(&s->batch_done);
    return true;
}

/*
 * May a writer lead a batch now?  When no batch is in flight, always.
 * While one is, small requests wait for it, so that the next batch
 * carries all of them; big ones start a batch of their own beside it,
 * as they gain nothing from waiting and the device gets several writes
 * at once (CLOUDFS_PARALLEL_BYTES).  Not while an append that failed is
 * settling: one prepared now would fail with it, where waiting lets it
 * go to the log once the tail starts again.
 */
static bool cloudfs_may_lead(BDRVCloudfsState *s)
{
    if (s->quiescing) {
        return false;
    }
    return s->inflight == 0 ||
           (s->inflight < CLOUDFS_MAX_INFLIGHT &&
            s->queued_bytes >= CLOUDFS_PARALLEL_BYTES &&
            !cfs_disk_appends_failing(s->disk));
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_co_write(BlockDriverState *bs, int64_t offset, int64_t bytes,
                 QEMUIOVector *qiov, size_t qiov_offset)
{
    BDRVCloudfsState *s = bs->opaque;
    struct iovec copy = { 0 };
    CloudfsWriteReq req = {
        .write = { .offset = offset, .length = bytes },
        .co = qemu_coroutine_self(),
    };

    if (qiov) {
        /*
         * The data is checksummed before it is written, and a guest may
         * change its buffer in between: virtio-blk does not ask Linux for
         * stable pages, and O_DIRECT programs can do it too.  Such a
         * block fails its checksum, and after a crash before the next
         * record header, replay takes its record for a torn one and ends
         * the log there, flushed writes with it (docs/format.rst,
         * "Group commit").  So the data checksummed and written is the
         * driver's copy; CLOUDFS_MAX_TRANSFER bounds it.
         */
        copy.iov_base = qemu_try_blockalign(bs->file->bs, bytes);
        if (!copy.iov_base) {
            return -ENOMEM;
        }
        copy.iov_len = bytes;
        qemu_iovec_to_buf(qiov, qiov_offset, copy.iov_base, bytes);
        req.write.iov = &copy;
        req.write.iovcnt = 1;
    }
    qemu_co_mutex_lock(&s->lock);
    QSIMPLEQ_INSERT_TAIL(&s->queue, &req, next);
    s->queued_bytes += cloudfs_req_payload(&req);
    /*
     * Whoever finds a free append slot leads a batch of everything queued
     * so far; the others wait.  While appends are in flight requests pile
     * up, so the next batch carries many of them in one log write.
     */
    while (!req.done) {
        if (req.taken || !cloudfs_may_lead(s) || !cloudfs_lead_batch(bs)) {
            qemu_co_queue_wait(&s->batch_done, &s->lock);
        }
    }
    qemu_co_mutex_unlock(&s->lock);
    qemu_vfree(copy.iov_base);
    return req.ret;
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_co_pwritev_part(BlockDriverState *bs, int64_t offset, int64_t bytes,
                        QEMUIOVector *qiov, size_t qiov_offset,
                        BdrvRequestFlags flags)
{
    return cloudfs_co_write(bs, offset, bytes, qiov, qiov_offset);
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_co_pwrite_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                         BdrvRequestFlags flags)
{
    /* a ZERO extent: no data stored, and never the parent's data */
    return cloudfs_co_write(bs, offset, bytes, NULL, 0);
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_co_pdiscard(BlockDriverState *bs, int64_t offset, int64_t bytes)
{
    /* discarded ranges read as zeros; garbage collection frees them */
    return cloudfs_co_write(bs, offset, bytes, NULL, 0);
}

/*
 * Wait until no batch (nor zeros ahead of the log) is in flight; holds
 * the lock on return.
 */
static void coroutine_fn cloudfs_quiesce(BDRVCloudfsState *s)
{
    qemu_co_mutex_lock(&s->lock);
    s->quiescing++;
    while (s->inflight > 0 || s->zeroing) {
        qemu_co_queue_wait(&s->batch_done, &s->lock);
    }
}

static void coroutine_fn cloudfs_unquiesce(BDRVCloudfsState *s)
{
    s->quiescing--;
    qemu_co_queue_restart_all(&s->batch_done);
    qemu_co_mutex_unlock(&s->lock);
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_co_flush_to_os(BlockDriverState *bs)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;
    int ret = 0;

    if (cfs_disk_read_only(s->disk)) {
        return 0;
    }
    cloudfs_quiesce(s);
    /* flushes the file, and checkpoints when the log has grown enough */
    s->file_errno = 0;
    if (!cfs_disk_flush(s->disk, &gerr)) {
        ret = cloudfs_request_error(s, g_steal_pointer(&gerr), NULL);
    }
    trace_cloudfs_flush(bs, cfs_disk_version(s->disk), ret);
    cloudfs_unquiesce(s);
    return ret;
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_co_truncate(BlockDriverState *bs, int64_t offset, bool exact,
                    PreallocMode prealloc, BdrvRequestFlags flags,
                    Error **errp)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;
    int ret = 0;

    if (prealloc != PREALLOC_MODE_OFF) {
        error_setg(errp, "cloudfs images do not support preallocation");
        return -ENOTSUP;
    }
    if (offset % cfs_disk_block_size(s->disk)) {
        error_setg(errp, "the size of a cloudfs image must be a multiple of "
                   "its %u-byte block size", cfs_disk_block_size(s->disk));
        return -EINVAL;
    }
    cloudfs_quiesce(s);
    if (!cfs_disk_resize(s->disk, offset, &gerr)) {
        ret = cloudfs_error(g_steal_pointer(&gerr), errp);
    } else if ((flags & BDRV_REQ_ZERO_WRITE) &&
               offset > bs->total_sectors * BDRV_SECTOR_SIZE) {
        /* a grown branch must not show its parent in the new range */
        uint64_t old = bs->total_sectors * BDRV_SECTOR_SIZE;

        if (!cfs_disk_write_zeroes(s->disk, old, offset - old, &gerr)) {
            ret = cloudfs_error(g_steal_pointer(&gerr), errp);
        }
    }
    cloudfs_unquiesce(s);
    return ret;
}

/* --- status and information -------------------------------------------- */

static int coroutine_fn GRAPH_RDLOCK
cloudfs_co_block_status(BlockDriverState *bs, bool want_zero,
                        int64_t offset, int64_t bytes, int64_t *pnum,
                        int64_t *map, BlockDriverState **file)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;
    uint32_t block_size;
    CfsMapping m;
    int ret;

    qemu_co_mutex_lock(&s->lock);
    block_size = cfs_disk_block_size(s->disk);
    /* the block layer aligns to request_alignment; be safe at the end */
    bytes = QEMU_ALIGN_UP(bytes, block_size);
    bytes = MIN(bytes, (int64_t)(cfs_disk_size(s->disk) - offset));
    if (!cfs_disk_map(s->disk, offset, bytes, &m, &gerr)) {
        qemu_co_mutex_unlock(&s->lock);
        return cloudfs_error(g_steal_pointer(&gerr), NULL);
    }
    qemu_co_mutex_unlock(&s->lock);
    *pnum = m.length;
    switch (m.kind) {
    case CFS_MAP_DATA:
        *map = m.log_offset;
        *file = bs->file->bs;
        ret = BDRV_BLOCK_DATA | BDRV_BLOCK_OFFSET_VALID;
        break;
    case CFS_MAP_ZERO:
        ret = BDRV_BLOCK_ZERO;
        break;
    default:
        ret = 0;    /* unallocated: the backing chain decides */
        break;
    }
    return ret;
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_co_get_info(BlockDriverState *bs, BlockDriverInfo *bdi)
{
    BDRVCloudfsState *s = bs->opaque;

    bdi->cluster_size = cfs_disk_block_size(s->disk);
    bdi->is_dirty = false;
    return 0;
}

static void hex_id(const uint8_t *id, char **out)
{
    char hex[41];

    cfs_id_to_hex(id, hex);
    *out = g_strdup(hex);
}

static ImageInfoSpecific *cloudfs_get_specific_info(BlockDriverState *bs,
                                                    Error **errp)
{
    BDRVCloudfsState *s = bs->opaque;
    const CfsSuperblock *sb = cfs_disk_superblock(s->disk);
    ImageInfoSpecific *spec = g_new0(ImageInfoSpecific, 1);
    ImageInfoSpecificCloudfs *info = g_new0(ImageInfoSpecificCloudfs, 1);

    spec->type = IMAGE_INFO_SPECIFIC_KIND_CLOUDFS;
    spec->u.cloudfs.data = info;
    hex_id(cfs_disk_id(s->disk), &info->disk_id);
    info->version = cfs_disk_version(s->disk);
    hex_id(cfs_disk_version_id(s->disk), &info->version_id);
    info->read_only_version = cfs_disk_historical(s->disk);
    info->block_size = cfs_disk_block_size(s->disk);
    info->log_bytes = cfs_disk_log_end(s->disk) -
                      GUINT64_FROM_LE(sb->log_start);
    info->live_bytes = cfs_disk_live_bytes(s->disk);
    info->extent_count = cfs_disk_extent_count(s->disk);
    if (cfs_disk_has_parent(s->disk)) {
        CloudfsParentInfo *p = g_new0(CloudfsParentInfo, 1);

        hex_id(sb->parent_disk_id, &p->disk_id);
        p->version = GUINT64_FROM_LE(sb->parent_version);
        hex_id(sb->parent_version_id, &p->version_id);
        p->hint = g_strndup(sb->parent_hint,
                            GUINT16_FROM_LE(sb->parent_hint_len));
        info->parent = p;
    }
    return spec;
}

static int coroutine_fn GRAPH_RDLOCK
cloudfs_co_check(BlockDriverState *bs, BdrvCheckResult *result,
                 BdrvCheckMode fix)
{
    BDRVCloudfsState *s = bs->opaque;
    g_autoptr(GError) gerr = NULL;
    Error *local_err = NULL;
    CfsCheckResult res;
    bool repair = fix & (BDRV_FIX_LEAKS | BDRV_FIX_ERRORS);
    uint32_t block_size = cfs_disk_block_size(s->disk);

    /*
     * The check reads the file, not our state: seal the open record and
     * flush first, or its batches would look like a torn tail (and a
     * repair would cut them).
     */
    cloudfs_quiesce(s);
    if ((!cfs_disk_read_only(s->disk) && !cfs_disk_flush(s->disk, &gerr)) ||
        !cfs_check(&s->io, repair, &res, &gerr)) {
        cloudfs_unquiesce(s);
        result->check_errors++;
        error_report("cloudfs: %s", gerr->message);
        return -EIO;
    }
    /*
     * A repair rewrote the file behind our disk (a new checkpoint, a cut
     * tail): continuing from the old state would append over it, or trim
     * it away at close.
     */
    if (res.repaired && cloudfs_reload(bs, &local_err) < 0) {
        cloudfs_unquiesce(s);
        result->check_errors++;
        error_report_err(local_err);
        cfs_check_result_clear(&res);
        return -EIO;
    }
    cloudfs_unquiesce(s);
    for (guint i = 0; i < res.messages->len; i++) {
        fprintf(stderr, "%s\n", (char *)res.messages->pdata[i]);
    }
    /* a torn tail and unused preallocation are leaks: harmless bytes
     * after the log */
    if (res.repaired) {
        result->leaks_fixed += DIV_ROUND_UP(res.torn_bytes + res.unused_bytes,
                                            block_size);
    } else {
        result->leaks += DIV_ROUND_UP(res.torn_bytes + res.unused_bytes,
                                      block_size);
    }
    result->corruptions += res.corruptions;
    result->image_end_offset = res.log_end;
    result->bfi.total_clusters = DIV_ROUND_UP(cfs_disk_size(s->disk),
                                              block_size);
    result->bfi.allocated_clusters = res.live_bytes / block_size;
    cfs_check_result_clear(&res);
    return 0;
}

static int GRAPH_RDLOCK cloudfs_has_zero_init(BlockDriverState *bs)
{
    /* unwritten ranges read as zeros (or the parent's, handled above) */
    return 1;
}

static const char *const cloudfs_strong_runtime_opts[] = {
    CLOUDFS_OPT_VERSION,
    NULL
};

BlockDriver bdrv_cloudfs = {
    .format_name                = "cloudfs",
    .instance_size              = sizeof(BDRVCloudfsState),
    .bdrv_probe                 = cloudfs_probe,
    .bdrv_open                  = cloudfs_open,
    .bdrv_close                 = cloudfs_close,
    .bdrv_reopen_prepare        = cloudfs_reopen_prepare,
    .bdrv_reopen_commit         = cloudfs_reopen_commit,
    .bdrv_reopen_abort          = cloudfs_reopen_abort,
    .bdrv_child_perm            = bdrv_default_perms,
    .bdrv_co_create_opts        = cloudfs_co_create_opts,
    .bdrv_co_create             = cloudfs_co_create,
    .bdrv_has_zero_init         = cloudfs_has_zero_init,
    .bdrv_co_block_status       = cloudfs_co_block_status,

    .bdrv_co_preadv_part        = cloudfs_co_preadv_part,
    .bdrv_co_pwritev_part       = cloudfs_co_pwritev_part,
    .bdrv_co_flush_to_os        = cloudfs_co_flush_to_os,

    .bdrv_co_pwrite_zeroes      = cloudfs_co_pwrite_zeroes,
    .bdrv_co_pdiscard           = cloudfs_co_pdiscard,
    .bdrv_co_truncate           = cloudfs_co_truncate,

    .bdrv_snapshot_create       = cloudfs_snapshot_create,
    .bdrv_snapshot_goto         = cloudfs_snapshot_goto,
    .bdrv_snapshot_delete       = cloudfs_snapshot_delete,
    .bdrv_snapshot_list         = cloudfs_snapshot_list,
    .bdrv_measure               = cloudfs_measure,
    .bdrv_co_get_info           = cloudfs_co_get_info,
    .bdrv_get_specific_info     = cloudfs_get_specific_info,

    .is_format                  = true,
    .supports_backing           = true,
    .bdrv_co_change_backing_file = cloudfs_co_change_backing_file,

    .bdrv_refresh_limits        = cloudfs_refresh_limits,
    .bdrv_co_invalidate_cache   = cloudfs_co_invalidate_cache,
    .bdrv_inactivate            = cloudfs_inactivate,

    .create_opts                = &cloudfs_create_opts,
    .amend_opts                 = &cloudfs_amend_opts,
    .bdrv_amend_options         = cloudfs_amend_options,
    .strong_runtime_opts        = cloudfs_strong_runtime_opts,
    .bdrv_co_check              = cloudfs_co_check,
};

static void bdrv_cloudfs_init(void)
{
    bdrv_register(&bdrv_cloudfs);
}

block_init(bdrv_cloudfs_init);
