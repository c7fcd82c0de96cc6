/*
 * cloudfs block driver: the format core's CfsIO on bs->file.
 *
 * The core calls these for its metadata I/O (record headers, checkpoints,
 * the superblock), both from coroutines (the request paths) and from the
 * main loop (open, close, snapshot commands); the generated mixed wrappers
 * handle both.  Guest data never goes through here; the driver also
 * grows bs->file ahead of the log from here (cloudfs_io_preallocate,
 * cloudfs_io_zero_ahead).
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "block/block-io.h"
#include "qemu/memalign.h"
#include "cloudfs-int.h"
#include "trace.h"

/* The core keeps only a message of the errno: the driver keeps the errno */
static int cloudfs_io_result(BDRVCloudfsState *s, int ret)
{
    if (ret < 0) {
        s->file_errno = -ret;
        return ret;
    }
    return 0;
}

/*
 * The core runs under the caller's graph read lock (the request paths
 * hold it, the main loop may take it), but TSA cannot follow a call
 * through the CfsIO function pointers, hence TSA_NO_TSA below.
 */
static int cloudfs_io_pread(void *opaque, void *buf, size_t len,
                            uint64_t offset) TSA_NO_TSA
{
    BDRVCloudfsState *s = opaque;

    return cloudfs_io_result(s, bdrv_pread(s->bs->file, offset, len, buf, 0));
}

static int cloudfs_io_pwritev(void *opaque, const struct iovec *iov,
                              int iovcnt, uint64_t offset) TSA_NO_TSA
{
    BDRVCloudfsState *s = opaque;

    if (qemu_in_coroutine()) {
        QEMUIOVector qiov;

        qemu_iovec_init_external(&qiov, (struct iovec *)iov, iovcnt);
        return cloudfs_io_result(s, bdrv_co_pwritev(s->bs->file, offset,
                                                    qiov.size, &qiov, 0));
    }
    for (int i = 0; i < iovcnt; i++) {
        int ret = bdrv_pwrite(s->bs->file, offset, iov[i].iov_len,
                              iov[i].iov_base, 0);

        if (ret < 0) {
            return cloudfs_io_result(s, ret);
        }
        offset += iov[i].iov_len;
    }
    return 0;
}

static int cloudfs_io_flush(void *opaque) TSA_NO_TSA
{
    BDRVCloudfsState *s = opaque;

    return cloudfs_io_result(s, bdrv_flush(s->bs->file->bs));
}

static int cloudfs_io_truncate(void *opaque, uint64_t size) TSA_NO_TSA
{
    BDRVCloudfsState *s = opaque;

    return cloudfs_io_result(s, bdrv_truncate(s->bs->file, size, false,
                                              PREALLOC_MODE_OFF, 0, NULL));
}

static int64_t cloudfs_io_size(void *opaque) TSA_NO_TSA
{
    BDRVCloudfsState *s = opaque;

    return bdrv_getlength(s->bs->file->bs);
}

void cloudfs_io_init(BDRVCloudfsState *s, BlockDriverState *bs)
{
    s->bs = bs;
    s->io = (CfsIO) {
        .opaque = s,
        .pread = cloudfs_io_pread,
        .pwritev = cloudfs_io_pwritev,
        .flush = cloudfs_io_flush,
        .truncate = cloudfs_io_truncate,
        .size = cloudfs_io_size,
    };
}

/* Growth failed at log_end: not again for a while (a full disk may get
 * room again), and the appends extend the file meanwhile */
static void cloudfs_io_growth_failed(BDRVCloudfsState *s, uint64_t log_end)
{
    s->prealloc_retry_at = log_end + CLOUDFS_PREALLOC_CHUNK;
}

/*
 * Ask bs->file how long it is (into s->file_end); the first time, what
 * it holds counts as written (s->zeroed_end).  False if it cannot say.
 */
static bool coroutine_fn GRAPH_RDLOCK
cloudfs_io_learn_length(BDRVCloudfsState *s, uint64_t log_end)
{
    int64_t len = bdrv_co_getlength(s->bs->file->bs);

    if (len < 0) {
        cloudfs_io_growth_failed(s, log_end);
        return false;
    }
    s->file_end = len;
    if (!s->zeroed_end) {
        s->zeroed_end = len;
    }
    return true;
}

/*
 * fallocate() bs->file from start, at or past its end and above every
 * append in flight, to want, and record the new length.
 */
static int coroutine_fn GRAPH_RDLOCK
cloudfs_io_allocate(BDRVCloudfsState *s, uint64_t start, uint64_t want)
{
    int ret = bdrv_co_pwrite_zeroes(s->bs->file, start, want - start,
                                    BDRV_REQ_NO_FALLBACK);

    trace_cloudfs_preallocate(s->bs, want, ret);
    if (ret == 0) {
        s->file_end = want;
    }
    return ret;
}

/*
 * The log only ever appends, and on ext4 and XFS a direct write past the
 * end of the file takes the inode lock exclusively and completes
 * synchronously: io_uring hands each such write to a worker thread and
 * no two run at once.  A write into space fallocate() has already given
 * the file is submitted inline and runs beside others (bench/analysis.rst
 * has the measurements).  So the file is grown ahead of the log a chunk
 * at a time; the space reads as zeros, which no record header is, and
 * cfs_disk_close() trims what the log did not use.
 *
 * The growth is a write of zeros with BDRV_REQ_NO_FALLBACK: file-posix
 * does it with fallocate() (FALLOC_FL_ZERO_RANGE, or mode 0 past the
 * end), and where that is not supported it fails instead of writing the
 * zeros (as posix_fallocate() would, a byte per block).  A file that
 * cannot be grown that way (no fallocate, not a regular file, ENOSPC) is
 * extended by the appends themselves, as without this; the growth is
 * tried again once the log has gone another chunk further.
 *
 * The zeros must not land on an append still in flight (fallocate() could
 * zero blocks after its write put data there): they start no lower than
 * from, the log end before the batch that calls this, below which every
 * append in flight lies.  That batch writes only after this returns.
 */
void coroutine_fn GRAPH_RDLOCK
cloudfs_io_preallocate(BDRVCloudfsState *s, uint64_t from, uint64_t log_end)
{
    uint64_t want;

    if (s->zeroing || log_end < s->prealloc_retry_at ||
        log_end + CLOUDFS_PREALLOC_CHUNK / 2 <= s->file_end) {
        return;
    }
    if (!cloudfs_io_learn_length(s, log_end) ||
        log_end + CLOUDFS_PREALLOC_CHUNK / 2 <= s->file_end) {
        return;
    }
    want = QEMU_ALIGN_UP(log_end + CLOUDFS_PREALLOC_CHUNK,
                         CLOUDFS_PREALLOC_CHUNK);
    if (cloudfs_io_allocate(s, MAX(s->file_end, from), want) < 0) {
        cloudfs_io_growth_failed(s, log_end);
    }
}

/*
 * fallocate() gives the file unwritten extents, and a direct write into
 * one converts it when it completes: a journalled metadata update that,
 * at one 4 KiB write at a time, costs about a tenth of each write (as
 * does extending the file).  A write over blocks that hold data needs no
 * metadata at all.  So while appends are small (CLOUDFS_ZERO_AHEAD_BELOW)
 * the file is grown by writing zeros a little ahead of the log, and the
 * appends overwrite them: the device writes those bytes twice, which
 * costs less than the conversions while the writes are small and more
 * once they are big (bench/analysis.rst).
 *
 * The zeros are written into space fallocate() has given the file first,
 * a chunk of CLOUDFS_PREALLOC_CHUNK at a time, not past its end: a write
 * past the end takes the inode lock exclusively (above), and the appends
 * that overwrite zeros, which share it, would wait behind it.  Where the
 * file cannot be grown that way the zeros extend it themselves.
 *
 * The zeros are written by a coroutine of their own, so that no request
 * waits for them: they are written once fewer than CLOUDFS_ZERO_AHEAD / 2
 * written bytes are left past the log end, up to the next multiple of
 * CLOUDFS_ZERO_AHEAD at least that far past it (so 1 to 4 MiB ahead), a
 * chunk at a time; an append that reaches a chunk before it is written
 * waits (s->zeroing_from, in cloudfs_lead_batch), and checkpoints and
 * flushes wait for all of them (they need no append in flight, and
 * s->zeroing counts as one).
 * Space the file held when first seen counts as written, so a log inside
 * a block device (or a bigger file) is never zeroed ahead.
 */
typedef struct CloudfsZeroAhead {
    BDRVCloudfsState *s;
    uint64_t start, end;
    uint64_t log_end;           /* when it was started */
} CloudfsZeroAhead;

static void coroutine_fn cloudfs_zero_ahead_entry(void *opaque)
{
    CloudfsZeroAhead *z = opaque;
    BDRVCloudfsState *s = z->s;
    BlockDriverState *bs = s->bs;
    struct iovec iov[CLOUDFS_ZERO_AHEAD / CLOUDFS_ZERO_BUF];
    uint64_t at = z->start;
    int ret = 0;

    bdrv_graph_co_rdlock();
    /* the lock keeps s->file_end from other threads' batches */
    qemu_co_mutex_lock(&s->lock);
    if (z->end > s->file_end && z->log_end >= s->allocate_retry_at &&
        cloudfs_io_learn_length(s, z->log_end) && z->end > s->file_end) {
        /*
         * Appends in flight lie below z->start; those that reach past it
         * wait for the zeros, which come after this.  Should fallocate()
         * fail, the zeros extend the file, as they did before it was
         * used, and it is not tried again for a chunk of log.
         */
        if (cloudfs_io_allocate(s, MAX(s->file_end, z->start),
                                QEMU_ALIGN_UP(z->end + 1,
                                              CLOUDFS_PREALLOC_CHUNK)) < 0) {
            s->allocate_retry_at = z->log_end + CLOUDFS_PREALLOC_CHUNK;
        }
    }
    qemu_co_mutex_unlock(&s->lock);
    while (at < z->end) {
        QEMUIOVector qiov;
        uint64_t len = MIN(z->end - at, CLOUDFS_ZERO_AHEAD);
        uint64_t done = 0;
        int n = 0;

        /* the same zeros, repeated */
        while (done < len) {
            iov[n].iov_base = s->zeros;
            iov[n].iov_len = MIN(len - done, CLOUDFS_ZERO_BUF);
            done += iov[n].iov_len;
            n++;
        }
        qemu_iovec_init_external(&qiov, iov, n);
        ret = bdrv_co_pwritev(bs->file, at, len, &qiov, 0);
        trace_cloudfs_zero_ahead(bs, at, len, ret);
        if (ret < 0) {
            break;
        }
        at += len;

        /* appends waiting for this chunk need not wait for the next */
        qemu_co_mutex_lock(&s->lock);
        s->zeroed_end = MAX(s->zeroed_end, at);
        s->file_end = MAX(s->file_end, at);
        s->zeroing_from = at;
        qemu_co_queue_restart_all(&s->batch_done);
        qemu_co_mutex_unlock(&s->lock);
    }
    bdrv_graph_co_rdunlock();

    qemu_co_mutex_lock(&s->lock);
    if (ret < 0) {
        /* this also holds back growth with fallocate, which would meet
         * the same full disk */
        cloudfs_io_growth_failed(s, z->log_end);
    }
    s->zeroing = false;
    qemu_co_queue_restart_all(&s->batch_done);
    qemu_co_mutex_unlock(&s->lock);
    bdrv_dec_in_flight(bs);
    g_free(z);
}

void coroutine_fn GRAPH_RDLOCK
cloudfs_io_zero_ahead(BDRVCloudfsState *s, uint64_t log_end)
{
    CloudfsZeroAhead *z;

    if (s->zeroing || log_end < s->prealloc_retry_at ||
        log_end + CLOUDFS_ZERO_AHEAD / 2 <= s->zeroed_end) {
        return;
    }
    if (!s->zeroed_end &&
        (!cloudfs_io_learn_length(s, log_end) ||
         log_end + CLOUDFS_ZERO_AHEAD / 2 <= s->zeroed_end)) {
        return;
    }
    if (!s->zeros) {
        s->zeros = qemu_try_blockalign0(s->bs->file->bs, CLOUDFS_ZERO_BUF);
        if (!s->zeros) {
            cloudfs_io_growth_failed(s, log_end);
            return;
        }
    }

    z = g_new(CloudfsZeroAhead, 1);
    *z = (CloudfsZeroAhead) {
        .s = s,
        /* appends in flight all lie below log_end */
        .start = MAX(s->zeroed_end, log_end),
        .end = QEMU_ALIGN_UP(log_end + CLOUDFS_ZERO_AHEAD, CLOUDFS_ZERO_AHEAD),
        .log_end = log_end,
    };
    s->zeroing = true;
    s->zeroing_from = z->start;
    /* drains wait for it (the zeros buffer and s stay until then) */
    bdrv_inc_in_flight(s->bs);
    /*
     * In this thread, after the caller yields: the coroutine takes its
     * graph read lock while the caller still holds one, so no graph
     * writer can come between them while appends wait for the zeros.
     */
    aio_co_enter(qemu_get_current_aio_context(),
                 qemu_coroutine_create(cloudfs_zero_ahead_entry, z));
}

void cloudfs_io_forget_growth(BDRVCloudfsState *s)
{
    s->file_end = 0;
    s->zeroed_end = 0;
    s->prealloc_retry_at = 0;
    s->allocate_retry_at = 0;
}

void cloudfs_io_cleanup(BDRVCloudfsState *s)
{
    qemu_vfree(s->zeros);
    s->zeros = NULL;
}

int cloudfs_error(GError *gerr, Error **errp)
{
    int ret;

    switch (gerr->code) {
    case CFS_ERROR_NOT_CFS:
    case CFS_ERROR_UNSUPPORTED:
        ret = -ENOTSUP;
        break;
    case CFS_ERROR_INVALID:
    case CFS_ERROR_MISMATCH:
        ret = -EINVAL;
        break;
    case CFS_ERROR_NOT_FOUND:
        ret = -ENOENT;
        break;
    case CFS_ERROR_READ_ONLY:
        ret = -EACCES;
        break;
    case CFS_ERROR_EXISTS:
        ret = -EEXIST;
        break;
    default:
        ret = -EIO;
        break;
    }
    error_setg(errp, "%s", gerr->message);
    g_error_free(gerr);
    return ret;
}

int cloudfs_request_error(BDRVCloudfsState *s, GError *gerr, Error **errp)
{
    int file_errno = s->file_errno;

    s->file_errno = 0;
    if (!g_error_matches(gerr, CFS_ERROR, CFS_ERROR_IO) || !file_errno) {
        /* a disk refusing writes after an earlier failure, say: EIO */
        return cloudfs_error(gerr, errp);
    }
    error_setg(errp, "%s", gerr->message);
    g_error_free(gerr);
    return -file_errno;
}
