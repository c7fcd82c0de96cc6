/*
 * cloudfs block driver: state shared by block/cloudfs*.c
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef BLOCK_CLOUDFS_INT_H
#define BLOCK_CLOUDFS_INT_H

#include "block/block_int.h"
#include "qemu/coroutine.h"
#include "qemu/queue.h"
#include "qemu/units.h"
#include "cloudfs/cloudfs.h"

/*
 * Appends whose data write may be in flight at once, and the payload
 * queued behind them that lets a second one start (cloudfs_may_lead).
 * Small writes do best with one in flight: every request that arrives
 * meanwhile queues, and the next append carries all of them (4 KiB
 * random writes at QD32: 51k-58k IOPS with one, 26k-28k with two or
 * four).  Big writes gain nothing from waiting, and a log written one
 * append at a time leaves the daemon idle between them (1 MiB sequential
 * writes at QD4: 0.86x raw with one, 0.89x-0.95x when a megabyte in queue
 * may start another; bench/analysis.rst).
 */
#define CLOUDFS_MAX_INFLIGHT    4
#define CLOUDFS_PARALLEL_BYTES  (1 * MiB)
/* Requests in one batch: keeps its record header small (zero writes and
 * discards carry no payload, so the payload bound does not cap them) */
#define CLOUDFS_MAX_BATCH       256
/* Largest guest request; a batch stays below CFS_MAX_CHAIN_PAYLOAD */
#define CLOUDFS_MAX_TRANSFER    (16 * MiB)
/*
 * The image file is grown ahead of the log by this much at a time
 * (cloudfs_io_preallocate): a few fallocate() calls a second at full
 * device speed; while the image is open the file is then 32 MiB to twice
 * this longer than the log (close trims it).
 */
#define CLOUDFS_PREALLOC_CHUNK  (64 * MiB)
/*
 * While small writes come alone the file is instead grown by writing
 * zeros (cloudfs_io_zero_ahead) in chunks of this size, to 1 to 4 MiB
 * ahead of the log, from a buffer of CLOUDFS_ZERO_BUF zeros repeated,
 * into space fallocated up to the next multiple of
 * CLOUDFS_PREALLOC_CHUNK past them.
 */
#define CLOUDFS_ZERO_AHEAD      (2 * MiB)
#define CLOUDFS_ZERO_BUF        (64 * KiB)
/*
 * Zeros are written ahead while nearly every append (7 in 8 of a moving
 * average, CLOUDFS_SHARE_ONE being all) carries one request of fewer than
 * CLOUDFS_ZERO_AHEAD_BELOW bytes with no other append beside it and no
 * read since the append before: there they gain (8 % at one 4 KiB write
 * at a time), where batches of several requests gained nothing and
 * beside reads they lost (bench/analysis.rst).
 */
#define CLOUDFS_ZERO_AHEAD_BELOW (24 * KiB)
#define CLOUDFS_SHARE_ONE       256
#define CLOUDFS_ZERO_AHEAD_SHARE (CLOUDFS_SHARE_ONE * 7 / 8)

typedef struct CloudfsWriteReq {
    CfsWrite write;             /* iov: the driver's copy of the data */
    Coroutine *co;
    int ret;
    bool taken;                 /* a leader has put it in a batch */
    bool done;
    QSIMPLEQ_ENTRY(CloudfsWriteReq) next;
} CloudfsWriteReq;

typedef struct BDRVCloudfsState {
    CfsDisk *disk;
    CfsIO io;                   /* the core's I/O, on bs->file */
    BlockDriverState *bs;

    /*
     * Every call into the core that touches the CfsDisk runs under this
     * lock; the data I/O of reads and of appends runs outside it, and so
     * does checking read data against a CfsDataCheck.  Log bytes never
     * change once written, so a mapping taken under the lock stays valid
     * while the lock is dropped to read the data it points at.
     */
    CoMutex lock;
    QSIMPLEQ_HEAD(, CloudfsWriteReq) queue;     /* waiting for a batch */
    CoQueue batch_done;         /* queued writers wait here */
    unsigned inflight;          /* batches between prepare and settle */
    uint64_t queued_bytes;      /* payload of the requests in queue */
    unsigned quiescing;         /* flushes/resizes waiting for quiet */
    bool parent_checked;        /* the backing node is the recorded parent */
    uint64_t file_end;          /* bs->file's length, as last seen */
    uint64_t zeroed_end;        /* bs->file's blocks are all written up to
                                 * here (data, or zeros written ahead);
                                 * 0: not known yet */
    uint64_t prealloc_retry_at; /* bs->file could not be grown ahead of
                                 * the log: not again before the log
                                 * reaches this offset */
    uint64_t allocate_retry_at; /* fallocate() for the zeros ahead failed
                                 * (they extend the file): likewise */
    unsigned lone_share;        /* of appends that carried one small
                                 * request alone, no read since the one
                                 * before: a moving average */
    unsigned reads, reads_seen; /* reads so far (atomic: counted outside
                                 * the lock); as the last append saw */
    bool zeroing;               /* zeros are being written ahead of the
                                 * log: checkpoints and flushes wait */
    uint64_t zeroing_from;      /* where the chunk being written starts:
                                 * appends reaching past it wait */
    void *zeros;                /* CLOUDFS_ZERO_BUF of them, or NULL */
    int file_errno;             /* of the core's last failed I/O on
                                 * bs->file (cloudfs_request_error) */
} BDRVCloudfsState;

extern BlockDriver bdrv_cloudfs;
extern BlockDriver bdrv_cloudfs_store;

typedef struct BDRVCloudfsStoreState {
    char *version;              /* from cloudfs:ID@VERSION, or NULL */
} BDRVCloudfsStoreState;

/* block/cloudfs-store.c */
/* The version asked for in cloudfs:ID@VERSION if bs is a store node */
const char *cloudfs_store_version(BlockDriverState *bs);
/* Path of the image of the disk whose id starts with prefix */
char *cloudfs_store_resolve(const char *store, const char *prefix,
                            Error **errp);

/* block/cloudfs-io.c: the core's CfsIO on a BdrvChild */
void cloudfs_io_init(BDRVCloudfsState *s, BlockDriverState *bs);
/*
 * Keep bs->file allocated well past log_end (call with s->lock held).
 * The zeros go from no lower than from: appends in flight lie below it.
 */
void coroutine_fn GRAPH_RDLOCK
cloudfs_io_preallocate(BDRVCloudfsState *s, uint64_t from, uint64_t log_end);
/*
 * Keep bs->file written (with zeros) a little past log_end, in the
 * background (call with s->lock held, after the prepare of the append
 * that moved the log end there).
 */
void coroutine_fn GRAPH_RDLOCK
cloudfs_io_zero_ahead(BDRVCloudfsState *s, uint64_t log_end);
/* Forget what is known of bs->file's length (someone else may change it) */
void cloudfs_io_forget_growth(BDRVCloudfsState *s);
/* Free the zeros the growth writes from */
void cloudfs_io_cleanup(BDRVCloudfsState *s);
/* Turn a core error into an errno and an Error */
int cloudfs_error(GError *gerr, Error **errp);
/*
 * The same for the error of a core call that a guest request made on an
 * open image (clear s->file_errno before the call): an I/O error of
 * bs->file keeps its errno, so that ENOSPC while sealing a record or
 * writing a checkpoint reaches werror=enospc, as it does for guest data
 */
int cloudfs_request_error(BDRVCloudfsState *s, GError *gerr, Error **errp);

/* block/cloudfs-snapshot.c */
int cloudfs_snapshot_create(BlockDriverState *bs, QEMUSnapshotInfo *sn_info);
int cloudfs_snapshot_goto(BlockDriverState *bs, const char *snapshot_id);
int cloudfs_snapshot_delete(BlockDriverState *bs, const char *snapshot_id,
                            const char *name, Error **errp);
int cloudfs_snapshot_list(BlockDriverState *bs, QEMUSnapshotInfo **psn_tab);

/* block/cloudfs-rebase.c */
int coroutine_fn GRAPH_RDLOCK
cloudfs_co_change_backing_file(BlockDriverState *bs, const char *backing_file,
                               const char *backing_fmt);
int GRAPH_RDLOCK
cloudfs_amend_options(BlockDriverState *bs, QemuOpts *opts,
                      BlockDriverAmendStatusCB *status_cb, void *cb_opaque,
                      bool force, Error **errp);
extern QemuOptsList cloudfs_amend_opts;

/* block/cloudfs-measure.c */
BlockMeasureInfo *cloudfs_measure(QemuOpts *opts, BlockDriverState *in_bs,
                                  Error **errp);

/* block/cloudfs-create.c */
int coroutine_fn GRAPH_UNLOCKED
cloudfs_co_create(BlockdevCreateOptions *opts, Error **errp);
int coroutine_fn GRAPH_UNLOCKED
cloudfs_co_create_opts(BlockDriver *drv, const char *filename,
                       QemuOpts *opts, Error **errp);
extern QemuOptsList cloudfs_create_opts;

#endif
