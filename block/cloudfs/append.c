/*
 * cloudfs format core: the write path.  Batches of guest writes (group
 * commit) fill one open WRITE record: the core lays each batch out and
 * checksums it, the caller writes its data with one vectored write from
 * the buffers it passed (which must not change until then), and
 * completions are applied in order.  The
 * record's header is written once, when the record is sealed (at flush,
 * before any other record, or when the header room is full), so a small
 * write costs its data and a share of one header block, not a block of its
 * own (docs/format.rst, "Group commit").
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <string.h>
#include "internal.h"

struct CfsAppend {
    CfsAppendState state;
    bool written;               /* the caller's write finished */
    int ret;
    int error;                  /* FAILED: why, as a negative errno */
    uint64_t offset;            /* where the caller writes iov */
    uint64_t version;
    CfsRecord rec;              /* a whole record: its sealed header;
                                 * buf is NULL for a batch */
    /* a batch of an open record: which one (by offset: the record may
     * be frozen by the time the batch is applied), and its part of that
     * record's extents and sums */
    uint64_t record_offset;
    guint first_extent, nextents;
    guint first_sum, nsums;
    bool carries_header;        /* also writes the frozen record's header */
    GArray *iov;                /* header (whole records), data slices */
};

uint64_t cfs_append_offset(const CfsAppend *a)
{
    return a->offset;
}

const struct iovec *cfs_append_iov(const CfsAppend *a, int *iovcnt)
{
    *iovcnt = a->iov->len;
    return (const struct iovec *)a->iov->data;
}

/* The blocks of a header that hold more than zeros */
static uint32_t header_used(CfsDisk *disk, const CfsRecord *rec)
{
    return cfs_align_up(rec->header_len, disk->block_size);
}

size_t cfs_append_header(const CfsAppend *a, CfsDisk *disk,
                         uint64_t *offset, const void **buf)
{
    if (!a->carries_header) {
        return 0;
    }
    *offset = disk->frozen.offset;
    *buf = disk->frozen_header.buf;
    /* the rest of the room is zeros already, written with the first batch */
    return header_used(disk, &disk->frozen_header);
}

uint64_t cfs_append_version(const CfsAppend *a)
{
    return a->version;
}

CfsAppendState cfs_append_state(const CfsAppend *a)
{
    return a->state;
}

void cfs_append_free(CfsAppend *a)
{
    if (a) {
        g_assert(a->state != CFS_APPEND_PENDING);
        cfs_record_clear(&a->rec);
        g_array_free(a->iov, TRUE);
        g_free(a);
    }
}

unsigned cfs_disk_appends_in_flight(CfsDisk *disk)
{
    return g_queue_get_length(&disk->inflight);
}

bool cfs_disk_appends_failing(CfsDisk *disk)
{
    return disk->poisoned;
}

int cfs_append_error(const CfsAppend *a)
{
    if (a->state != CFS_APPEND_FAILED) {
        return 0;
    }
    return a->error ? a->error : -EIO;
}

/* Fail a: with its own write's error, else with what poisoned the disk */
static void append_fail(CfsDisk *disk, CfsAppend *a)
{
    a->state = CFS_APPEND_FAILED;
    a->error = a->ret < 0 ? a->ret : disk->poison_error;
}

bool cfs_disk_check_writable(CfsDisk *disk, GError **errp)
{
    if (!disk->writable) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_READ_ONLY,
                    disk->historical ? "a historical version is read-only"
                                     : "the disk is open read-only");
        return false;
    }
    if (disk->poisoned) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO,
                    disk->index_broken
                    ? "the index could not be updated after a write; reopen "
                      "the disk (or run 'cloudfs check')"
                    : "an earlier write to the log failed; reopen the disk");
        return false;
    }
    return true;
}

/*
 * Builds the extent list and the data iovec of one batch.  Checksums come
 * last (layout_checksum()): their seeds are the blocks' places in the
 * record's payload, known once the batch has a record.
 */
typedef struct Layout {
    GArray *extents;            /* CfsWriteExtent */
    GPtrArray *blocks;          /* each DATA block's bytes, in order */
    GPtrArray *gathered;        /* copies of blocks split across iovecs */
    GArray *sums;               /* uint64_t, little-endian */
    GArray *iov;                /* data slices */
    uint32_t block_size;
    uint8_t *bounce;
} Layout;

static void add_extent(Layout *l, uint64_t guest_offset, uint16_t kind)
{
    if (l->extents->len) {
        CfsWriteExtent *last = &g_array_index(l->extents, CfsWriteExtent,
                                              l->extents->len - 1);
        uint64_t end = GUINT64_FROM_LE(last->guest_offset) +
                       (uint64_t)GUINT32_FROM_LE(last->nblocks) *
                       l->block_size;

        if (GUINT16_FROM_LE(last->kind) == kind && end == guest_offset &&
            GUINT32_FROM_LE(last->nblocks) < CFS_EXTENT_MAX_BLOCKS) {
            last->nblocks = GUINT32_TO_LE(GUINT32_FROM_LE(last->nblocks) + 1);
            return;
        }
    }
    CfsWriteExtent e = {
        .guest_offset = GUINT64_TO_LE(guest_offset),
        .nblocks = GUINT32_TO_LE(1),
        .kind = GUINT16_TO_LE(kind),
    };
    g_array_append_val(l->extents, e);
}

static void add_zero_range(Layout *l, uint64_t offset, uint64_t length)
{
    while (length > 0) {
        uint64_t n = MIN(length / l->block_size, CFS_EXTENT_MAX_BLOCKS);
        CfsWriteExtent e = {
            .guest_offset = GUINT64_TO_LE(offset),
            .nblocks = GUINT32_TO_LE(n),
            .kind = GUINT16_TO_LE(CFS_EXTENT_ZERO),
        };

        g_array_append_val(l->extents, e);
        offset += n * l->block_size;
        length -= n * l->block_size;
    }
}

static void add_slice(Layout *l, void *base, size_t len)
{
    if (l->iov->len) {
        struct iovec *last = &g_array_index(l->iov, struct iovec,
                                            l->iov->len - 1);

        if ((uint8_t *)last->iov_base + last->iov_len == base) {
            last->iov_len += len;
            return;
        }
    }
    struct iovec v = { .iov_base = base, .iov_len = len };
    g_array_append_val(l->iov, v);
}

/*
 * Walk one write block by block: zero blocks become ZERO extents, the
 * others DATA extents whose bytes are referenced (not copied) in the iovec.
 * A block split across iovec elements is gathered into a copy only to be
 * tested for zeros and hashed.
 */
static void layout_write(Layout *l, const CfsWrite *w)
{
    int vi = 0;
    size_t vo = 0;

    for (uint64_t done = 0; done < w->length; done += l->block_size) {
        const uint8_t *block;
        int first_vi;
        size_t first_vo;

        while (vo == w->iov[vi].iov_len) {
            vi++;
            vo = 0;
        }
        first_vi = vi;
        first_vo = vo;
        if (w->iov[vi].iov_len - vo >= l->block_size) {
            block = (const uint8_t *)w->iov[vi].iov_base + vo;
            vo += l->block_size;
        } else {
            size_t got = 0;

            while (got < l->block_size) {
                size_t n;

                while (vo == w->iov[vi].iov_len) {
                    vi++;
                    vo = 0;
                }
                n = MIN(l->block_size - got, w->iov[vi].iov_len - vo);
                memcpy(l->bounce + got, (uint8_t *)w->iov[vi].iov_base + vo,
                       n);
                got += n;
                vo += n;
            }
            block = l->bounce;
        }
        if (cfs_is_zero(block, l->block_size)) {
            add_extent(l, w->offset + done, CFS_EXTENT_ZERO);
            continue;
        }
        add_extent(l, w->offset + done, CFS_EXTENT_DATA);
        if (block == l->bounce) {
            block = g_memdup2(l->bounce, l->block_size);
            g_ptr_array_add(l->gathered, (void *)block);
        }
        g_ptr_array_add(l->blocks, (void *)block);
        /* reference the block's bytes where they are, piece by piece */
        for (size_t left = l->block_size; left > 0;) {
            size_t n = MIN(left, w->iov[first_vi].iov_len - first_vo);

            add_slice(l, (uint8_t *)w->iov[first_vi].iov_base + first_vo, n);
            left -= n;
            first_vo += n;
            if (first_vo == w->iov[first_vi].iov_len) {
                first_vi++;
                first_vo = 0;
            }
        }
    }
}

/* Checksum the DATA blocks as payload blocks first, first + 1, ... */
static void layout_checksum(Layout *l, uint32_t first)
{
    for (guint i = 0; i < l->blocks->len; i++) {
        uint64_t sum = GUINT64_TO_LE(cfs_block_checksum(l->blocks->pdata[i],
                                                        l->block_size,
                                                        first + i));

        g_array_append_val(l->sums, sum);
    }
}

static bool writes_valid(CfsDisk *disk, const CfsWrite *writes, size_t n,
                         GError **errp)
{
    if (n == 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID, "empty batch");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const CfsWrite *w = &writes[i];
        uint64_t iov_len = 0;

        if (w->length == 0 || w->offset % disk->block_size ||
            w->length % disk->block_size || w->offset > disk->head.size ||
            w->length > disk->head.size - w->offset) {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID,
                        "write %" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT
                        " is not block aligned or not inside the %"
                        G_GUINT64_FORMAT "-byte disk", w->offset, w->length,
                        disk->head.size);
            return false;
        }
        for (int k = 0; w->iov && k < w->iovcnt; k++) {
            iov_len += w->iov[k].iov_len;
        }
        if (w->iov && iov_len != w->length) {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID,
                        "write buffer holds %" G_GUINT64_FORMAT " bytes, not %"
                        G_GUINT64_FORMAT, iov_len, w->length);
            return false;
        }
    }
    return true;
}

/* Seal a metadata record (no payload) and queue it */
static CfsAppend *queue_meta(CfsDisk *disk, uint16_t type, const void *body,
                             uint32_t body_len)
{
    CfsAppend *a = g_new0(CfsAppend, 1);
    uint32_t header_len = sizeof(CfsRecordHeader) + body_len;
    struct iovec head;

    g_assert(!disk->open.offset);
    a->rec.header_len = header_len;
    a->rec.padded_len = cfs_align_up(header_len, disk->block_size);
    a->rec.buf = cfs_alloc_aligned(a->rec.padded_len);
    memcpy(a->rec.buf + sizeof(CfsRecordHeader), body, body_len);
    a->version = disk->prep_version + 1;
    cfs_record_seal(&disk->sb, a->rec.buf, type, body_len, 0,
                    a->rec.padded_len, a->version,
                    disk->prep_version_id, disk->writer_nonce,
                    disk->durable_version, a->rec.id);
    a->offset = disk->log_end;
    a->state = CFS_APPEND_PENDING;
    a->iov = g_array_new(FALSE, FALSE, sizeof(struct iovec));
    head = (struct iovec) { a->rec.buf, a->rec.padded_len };
    g_array_append_val(a->iov, head);

    disk->prep_version = a->version;
    memcpy(disk->prep_version_id, a->rec.id, CFS_ID_LEN);
    disk->log_end += cfs_rec_total(&a->rec);
    g_queue_push_tail(&disk->inflight, a);
    return a;
}

/* --- the open record ------------------------------------------------- */

static uint64_t header_need(guint nextents, uint64_t nsums)
{
    return sizeof(CfsRecordHeader) + nextents * sizeof(CfsWriteExtent) +
           8 * nsums;
}

static bool open_record_takes(CfsDisk *disk, const Layout *l)
{
    CfsOpenRecord *o = &disk->open;

    return header_need(o->extents->len + l->extents->len,
                       (uint64_t)o->nsums + l->blocks->len) <= o->room &&
           (uint64_t)(o->nsums + l->blocks->len) * disk->block_size <=
           CFS_MAX_CHAIN_PAYLOAD;
}

/*
 * The header room: what the first batch needs, block aligned, or more
 * when records have been filling up (room_hint).  With 4 KiB blocks one
 * block lists 166 scattered 4 KiB writes, but only one or two batches of
 * 1 MiB writes: a record per batch would cost a header write per batch.
 */
static uint32_t header_room(CfsDisk *disk, const Layout *l)
{
    return MAX(cfs_align_up(header_need(l->extents->len, l->blocks->len),
                            disk->block_size),
               cfs_align_up(disk->room_hint, disk->block_size));
}

/*
 * len bytes of zeros, for a new record's header room.  Only a record's
 * first batch writes the buffer, and no record opens while such a batch
 * is in flight (a full record is frozen only once its first batch is
 * applied), so no write still uses the buffer when it grows.
 */
static uint8_t *zero_room(CfsDisk *disk, uint32_t len)
{
    if (len > disk->zero_room_len) {
        for (GList *l = disk->inflight.head; l; l = l->next) {
            const CfsAppend *a = l->data;

            g_assert(a->rec.buf || a->offset != a->record_offset);
        }
        cfs_free_aligned(disk->zero_room);
        disk->zero_room = cfs_alloc_aligned(len);
        disk->zero_room_len = len;
    }
    return disk->zero_room;
}

/* The version sealing the open record creates */
static uint64_t open_version(CfsDisk *disk)
{
    return disk->prep_version + 1;
}

static void open_record_start(CfsDisk *disk, const Layout *l)
{
    CfsOpenRecord *o = &disk->open;

    o->offset = disk->log_end;
    o->room = header_room(disk, l);
    o->extents = g_array_new(FALSE, FALSE, sizeof(CfsWriteExtent));
    o->applied_extents = o->nsums = 0;
    /* room for every checksum the header room can list */
    o->view = g_malloc(sizeof(CfsSums) + o->room);
    o->view->padded_len = o->room;
    o->view->nblocks = 0;
    disk->log_end += o->room;
}


/* Add a laid-out batch to the open record (opening one if needed) */
static CfsAppend *queue_batch(CfsDisk *disk, Layout *l)
{
    CfsOpenRecord *o = &disk->open;
    CfsAppend *a = g_new0(CfsAppend, 1);

    a->iov = g_array_new(FALSE, FALSE, sizeof(struct iovec));
    a->offset = disk->log_end;
    if (!o->offset) {
        struct iovec room;

        open_record_start(disk, l);
        /*
         * Write the header room (zeros) with the first batch, contiguous
         * with its data: the file grows without a hole, and the header,
         * written later, overwrites blocks the file system has already
         * allocated instead of filling a hole behind the log's tail.
         */
        room = (struct iovec) { zero_room(disk, o->room), o->room };
        g_array_append_val(a->iov, room);
    }
    layout_checksum(l, o->nsums);
    a->version = open_version(disk);
    a->record_offset = o->offset;
    a->first_extent = o->extents->len;
    a->nextents = l->extents->len;
    a->first_sum = o->nsums;
    a->nsums = l->sums->len;
    g_array_append_vals(o->extents, l->extents->data, l->extents->len);
    if (a->nsums) {     /* a batch of zero writes has none */
        memcpy(o->view->sums_le + 8ull * o->nsums, l->sums->data,
               8ull * a->nsums);
    }
    o->nsums += a->nsums;
    g_array_append_vals(a->iov, l->iov->data, l->iov->len);
    disk->log_end += (uint64_t)l->sums->len * disk->block_size;
    a->state = CFS_APPEND_PENDING;
    g_queue_push_tail(&disk->inflight, a);
    return a;
}

/* The record a batch belongs to: the open one, or the one frozen since */
static CfsOpenRecord *batch_record(CfsDisk *disk, const CfsAppend *a)
{
    if (disk->frozen.offset == a->record_offset) {
        return &disk->frozen;
    }
    g_assert(disk->open.offset == a->record_offset);
    return &disk->open;
}

/* A batch's data is written: its blocks become readable */
static bool apply_batch(CfsDisk *disk, CfsAppend *a, GError **errp)
{
    CfsOpenRecord *o = batch_record(disk, a);

    g_assert(a->first_extent == o->applied_extents &&
             a->first_sum == o->view->nblocks);
    if (!cfs_index_apply_extents(
            disk->head.index, disk->block_size,
            &g_array_index(o->extents, CfsWriteExtent, a->first_extent),
            a->nextents, o->offset,
            o->offset + o->room + (uint64_t)a->first_sum * disk->block_size,
            errp)) {
        return false;
    }
    /* its checksums are in view already: readers may use them now */
    o->view->nblocks += a->nsums;
    o->applied_extents += a->nextents;
    return true;
}

/*
 * Build the open record's header (no I/O): its content is final.  It
 * becomes the last prepared version: what follows chains to it.
 */
static void build_header(CfsDisk *disk, const CfsOpenRecord *o, CfsRecord *rec)
{
    uint32_t body_len = o->extents->len * sizeof(CfsWriteExtent);

    *rec = (CfsRecord) { 0 };
    rec->header_len = header_need(o->extents->len, o->nsums);
    rec->padded_len = o->room;
    g_assert(cfs_align_up(rec->header_len, disk->block_size) <= o->room);
    rec->payload_len = (uint64_t)o->nsums * disk->block_size;
    rec->buf = cfs_alloc_aligned(o->room);
    memcpy(rec->buf + sizeof(CfsRecordHeader), o->extents->data, body_len);
    memcpy(rec->buf + sizeof(CfsRecordHeader) + body_len, o->view->sums_le,
           8ull * o->nsums);
    cfs_record_seal(&disk->sb, rec->buf, CFS_REC_WRITE, body_len, o->nsums,
                    o->room, open_version(disk), disk->prep_version_id,
                    disk->writer_nonce, disk->durable_version, rec->id);
}

/* The header is built and its write under way: later records chain to it */
static void chain_to(CfsDisk *disk, const CfsRecord *rec)
{
    disk->prep_version++;
    memcpy(disk->prep_version_id, rec->id, CFS_ID_LEN);
}

static void free_open_record(CfsOpenRecord *o)
{
    if (o->offset) {
        g_array_free(o->extents, TRUE);
        g_free(o->view);
    }
    memset(o, 0, sizeof(*o));
}

/*
 * Forget the open record's batches that were prepared but never applied
 * (they failed, or the index could not take them): the log continues
 * after the applied ones, or after the last record if there are none.
 */
static void open_record_trim(CfsDisk *disk)
{
    CfsOpenRecord *o = &disk->open;

    if (o->offset && o->applied_extents) {
        g_array_set_size(o->extents, o->applied_extents);
        o->nsums = o->view->nblocks;
        disk->log_end = o->offset + o->room +
                        (uint64_t)o->nsums * disk->block_size;
    } else {
        free_open_record(o);
        disk->log_end = disk->valid_end;
        /* a record opened there again clears its room (stale_end) */
        disk->open_room_stale = false;
    }
}

/*
 * A batch failed at or before the one that was to write the frozen
 * record's header (the header may or may not be in the file): the frozen
 * record is open again, to be trimmed to its applied batches, and the
 * record that batch began is gone.
 */
static void reopen_frozen(CfsDisk *disk)
{
    CfsOpenRecord *o = &disk->open;

    if (!disk->frozen.offset) {
        return;
    }
    g_assert(!o->applied_extents);
    free_open_record(o);
    *o = disk->frozen;
    memset(&disk->frozen, 0, sizeof(disk->frozen));
    cfs_record_clear(&disk->frozen_header);
    /* its header is no version: the record seals as the head's next */
    disk->prep_version = disk->head.version;
    memcpy(disk->prep_version_id, disk->head.version_id, CFS_ID_LEN);
    /*
     * That header may list batches that failed and are trimmed now:
     * until a new header replaces it, batches written again over them,
     * byte for byte, would let it pass, and a shorter new header would
     * leave some of it in the room's padding.  Zero the room before
     * anything else goes into the record.
     */
    disk->open_room_stale = true;
}

void cfs_disk_drop_unsealed(CfsDisk *disk)
{
    free_open_record(&disk->open);
    free_open_record(&disk->frozen);
    cfs_record_clear(&disk->frozen_header);
    cfs_free_aligned(disk->zero_room);
    disk->zero_room = NULL;
    disk->zero_room_len = 0;
    disk->open_room_stale = false;
}

/* The header of record o is written: it is the new head version */
static void commit_record(CfsDisk *disk, CfsOpenRecord *o, CfsRecord *rec)
{
    uint64_t at = o->offset;

    disk->head.version = GUINT64_FROM_LE(cfs_rec_hdr(rec)->version);
    memcpy(disk->head.version_id, rec->id, CFS_ID_LEN);
    disk->valid_end = at + cfs_rec_total(rec);
    free_open_record(o);
    cfs_sums_remember(disk, at, rec);
    cfs_record_clear(rec);
}

/*
 * The open record is full and the next batch starts a new one: freeze
 * it.  Its header is built now, from every batch prepared for it (the
 * last ones may still be in flight: the header's checksums are the
 * blocks', whether their writes have landed or not), and written with
 * that batch (at another offset, in parallel).  The record becomes a
 * version when that batch is applied, that is after each of its own
 * batches was; until then its checksums stay readable from disk->frozen.
 */
static void freeze_open_record(CfsDisk *disk)
{
    g_assert(!disk->frozen.offset);
    /* records fill up between flushes: give the next one more room */
    disk->room_hint = MIN(2 * disk->open.room, CFS_OPEN_ROOM_MAX);
    build_header(disk, &disk->open, &disk->frozen_header);
    chain_to(disk, &disk->frozen_header);
    disk->frozen = disk->open;
    memset(&disk->open, 0, sizeof(disk->open));
}

/*
 * A record about to open where the file may hold an earlier writer's
 * bytes: an earlier, torn record may start right here, and until our
 * header is written its header would pass for ours, even describe our
 * payload if the guest repeats the very writes it lost.  Zero the room,
 * durably, before any of our data can land behind it.  Rare: only past
 * a crash's torn tail or failed appends.
 */
static bool clear_room(CfsDisk *disk, uint32_t room, uint64_t offset,
                       GError **errp)
{
    return cfs_io_pwrite(&disk->io, zero_room(disk, room), room, offset,
                         errp) &&
           cfs_io_flush(&disk->io, errp);
}

/* The open record's room may hold a header it outgrew: zero it first */
static bool clear_open_room(CfsDisk *disk, GError **errp)
{
    if (!disk->open_room_stale) {
        return true;
    }
    /* set with nothing in flight; the first batch or seal clears it */
    g_assert(g_queue_is_empty(&disk->inflight));
    if (!clear_room(disk, disk->open.room, disk->open.offset, errp)) {
        return false;
    }
    disk->open_room_stale = false;
    return true;
}

bool cfs_disk_seal(CfsDisk *disk, GError **errp)
{
    CfsOpenRecord *o = &disk->open;
    CfsRecord rec;

    if (!o->offset) {
        return true;
    }
    g_assert(g_queue_is_empty(&disk->inflight));
    if (disk->index_broken && disk->writable && !disk->unsettled) {
        /*
         * A batch could not be applied (an index node failed to read):
         * nothing is appended any more, but the batches applied before
         * it were acknowledged.  Seal just those; a reopen rebuilds the
         * index from the log.
         */
        reopen_frozen(disk);
        open_record_trim(disk);
        if (!o->offset) {
            return true;
        }
    } else if (!cfs_disk_check_writable(disk, errp)) {
        return false;
    }
    if (!clear_open_room(disk, errp)) {
        return false;
    }
    /* a frozen record is committed or open again once nothing is in
     * flight, unless the disk is still poisoned (refused above) */
    g_assert(!disk->frozen.offset);
    build_header(disk, o, &rec);
    /* sealed before it filled up (a flush): size the next by its need */
    disk->room_hint = 0;
    /* the rest of the room is zeros already, written with the first batch */
    if (!cfs_io_pwrite(&disk->io, rec.buf, header_used(disk, &rec), o->offset,
                       errp)) {
        /* the batches stay applied and the record open: sealing again
         * (the next flush) rewrites the header */
        cfs_record_clear(&rec);
        return false;
    }
    g_assert(o->offset + cfs_rec_total(&rec) == disk->log_end);
    chain_to(disk, &rec);
    commit_record(disk, o, &rec);
    return true;
}

CfsAppend *cfs_append_prepare(CfsDisk *disk, const CfsWrite *writes,
                              size_t nwrites, GError **errp)
{
    Layout l;
    CfsAppend *a = NULL;

    if (!cfs_disk_check_writable(disk, errp) ||
        !writes_valid(disk, writes, nwrites, errp)) {
        return NULL;
    }
    l = (Layout) {
        .extents = g_array_new(FALSE, FALSE, sizeof(CfsWriteExtent)),
        .blocks = g_ptr_array_new(),
        .gathered = g_ptr_array_new_with_free_func(g_free),
        .sums = g_array_new(FALSE, FALSE, sizeof(uint64_t)),
        .iov = g_array_new(FALSE, FALSE, sizeof(struct iovec)),
        .block_size = disk->block_size,
        .bounce = g_malloc(disk->block_size),
    };
    for (size_t i = 0; i < nwrites; i++) {
        if (writes[i].iov) {
            layout_write(&l, &writes[i]);
        } else {
            add_zero_range(&l, writes[i].offset, writes[i].length);
        }
    }
    if (l.extents->len * sizeof(CfsWriteExtent) + l.blocks->len * 8ull >
        CFS_MAX_HEADER_LEN - sizeof(CfsRecordHeader) ||
        (uint64_t)l.blocks->len * disk->block_size > CFS_MAX_CHAIN_PAYLOAD) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID,
                    "batch too large for one record; split it");
    } else {
        bool full = disk->open.offset && !open_record_takes(disk, &l);

        /*
         * A full record is frozen only once its first batch is applied:
         * that batch writes zeros over the whole header room, which must
         * not land after the header.  (So only one record is frozen at a
         * time: a record's first batch writes the header of the record
         * frozen before it, and the two become versions together.)  And
         * where the room must first be cleared (rare), nothing in
         * flight: that write and its flush are synchronous.
         */
        if (full && (!disk->open.applied_extents ||
                     (disk->log_end < disk->stale_end &&
                      !g_queue_is_empty(&disk->inflight)))) {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_BUSY,
                        "the open record is full: retry once the appends "
                        "in flight have settled");
        } else if (!clear_open_room(disk, errp) ||
                   ((!disk->open.offset || full) &&
                    disk->log_end < disk->stale_end &&
                    !clear_room(disk, header_room(disk, &l), disk->log_end,
                                errp))) {
            /* nothing happened */
        } else {
            if (full) {
                freeze_open_record(disk);
            }
            a = queue_batch(disk, &l);
            a->carries_header = full;
        }
    }
    g_array_free(l.extents, TRUE);
    g_ptr_array_free(l.blocks, TRUE);
    g_ptr_array_free(l.gathered, TRUE);
    g_array_free(l.sums, TRUE);
    g_array_free(l.iov, TRUE);
    g_free(l.bounce);
    return a;
}

/* Apply every leading append whose write finished, in order */
static void apply_ready(CfsDisk *disk)
{
    CfsAppend *a;

    while ((a = g_queue_peek_head(&disk->inflight)) && a->written) {
        g_autoptr(GError) err = NULL;
        bool applied;

        g_queue_pop_head(&disk->inflight);
        if (disk->poisoned || a->ret < 0) {
            /* what comes after this one builds on it: lost too */
            disk->poisoned = true;
            append_fail(disk, a);
            continue;
        }
        if (a->carries_header) {
            /* both writes done, and every batch of the frozen record
             * was applied before: it is a version now */
            g_assert(disk->frozen.applied_extents ==
                     disk->frozen.extents->len);
            commit_record(disk, &disk->frozen, &disk->frozen_header);
        }
        applied = a->rec.buf
                  ? cfs_state_apply(disk, &disk->head, &a->rec, a->offset,
                                    &err)
                  : apply_batch(disk, a, &err);
        if (!applied) {
            /* the data is in the file but the index could not take it
             * (an index node failed to read), perhaps only in part: no
             * more appends, which could overwrite what it maps */
            disk->index_broken = true;
            disk->poisoned = true;
            disk->poison_error = -EIO;
            append_fail(disk, a);
            continue;
        }
        if (a->rec.buf) {
            disk->valid_end = a->offset + cfs_rec_total(&a->rec);
            cfs_sums_remember(disk, a->offset, &a->rec);
        }
        a->state = CFS_APPEND_APPLIED;
    }
    if (disk->poisoned) {
        /* fail the rest now: their successors will never be applied */
        while ((a = g_queue_pop_head(&disk->inflight))) {
            append_fail(disk, a);
            /* its write may still be landing: counted until it reports */
            disk->unsettled += !a->written;
        }
        cfs_disk_recover_tail(disk);
    }
}

/*
 * After failed appends have all settled, start the tail again right after
 * what was applied: the open record's applied batches (their writes were
 * acknowledged, they stay), else the last record.  A transient error
 * (ENOSPC, a pulled cable) then does not break the disk for good.  Bytes
 * that did reach the file past that point are never taken for ours: a
 * fresh writer nonce keeps any record there from chaining to a new one,
 * and stale_end has the next record's header room cleared first.
 */
void cfs_disk_recover_tail(CfsDisk *disk)
{
    if (!g_queue_is_empty(&disk->inflight) || disk->unsettled ||
        disk->index_broken) {
        return;
    }
    disk->stale_end = MAX(disk->stale_end, disk->log_end);
    reopen_frozen(disk);
    open_record_trim(disk);
    disk->prep_version = disk->head.version;
    memcpy(disk->prep_version_id, disk->head.version_id, CFS_ID_LEN);
    cfs_random_bytes(&disk->writer_nonce, sizeof(disk->writer_nonce));
    disk->poisoned = false;
}

CfsAppendState cfs_append_complete(CfsDisk *disk, CfsAppend *a, int ret)
{
    if (a->state == CFS_APPEND_FAILED && !a->written) {
        /* failed with an earlier one while its write was still running:
         * the tail can start over once the last such write is done */
        a->written = true;
        disk->unsettled--;
        cfs_disk_recover_tail(disk);
        return a->state;
    }
    a->written = true;
    a->ret = ret;
    if (ret < 0 && !disk->poisoned) {
        disk->poisoned = true;
        disk->poison_error = ret;
    }
    apply_ready(disk);
    return a->state;
}

static bool append_sync(CfsDisk *disk, CfsAppend *a, GError **errp)
{
    int iovcnt;
    const struct iovec *iov = cfs_append_iov(a, &iovcnt);
    uint64_t header_at = 0;
    const void *header = NULL;
    size_t header_len = cfs_append_header(a, disk, &header_at, &header);
    struct iovec hv = { (void *)header, header_len };
    int ret = header_len ? disk->io.pwritev(disk->io.opaque, &hv, 1,
                                            header_at) : 0;
    CfsAppendState state;

    if (ret == 0) {
        ret = disk->io.pwritev(disk->io.opaque, iov, iovcnt, a->offset);
    }
    state = cfs_append_complete(disk, a, ret);

    cfs_append_free(a);
    if (state != CFS_APPEND_APPLIED) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "writing to the log failed: %s",
                    ret < 0 ? g_strerror(-ret) : "an earlier write failed");
        return false;
    }
    return true;
}

/* The synchronous helpers make each call a version of its own */
bool cfs_disk_pwrite(CfsDisk *disk, const void *buf, uint64_t length,
                     uint64_t offset, GError **errp)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = length };
    CfsWrite w = { .offset = offset, .length = length, .iov = &iov,
                   .iovcnt = 1 };
    CfsAppend *a;

    g_assert(g_queue_is_empty(&disk->inflight));
    a = cfs_append_prepare(disk, &w, 1, errp);
    return a && append_sync(disk, a, errp) && cfs_disk_seal(disk, errp);
}

bool cfs_disk_write_zeroes(CfsDisk *disk, uint64_t offset, uint64_t length,
                           GError **errp)
{
    CfsWrite w = { .offset = offset, .length = length };
    CfsAppend *a;

    g_assert(g_queue_is_empty(&disk->inflight));
    a = cfs_append_prepare(disk, &w, 1, errp);
    return a && append_sync(disk, a, errp) && cfs_disk_seal(disk, errp);
}

bool cfs_append_meta(CfsDisk *disk, uint16_t type, const void *body,
                     uint32_t body_len, GError **errp)
{
    if (!cfs_disk_check_writable(disk, errp)) {
        return false;
    }
    g_assert(g_queue_is_empty(&disk->inflight));
    /* the caller sealed before building a body that names the version */
    g_assert(!disk->open.offset);
    return append_sync(disk, queue_meta(disk, type, body, body_len), errp);
}

bool cfs_append_raw(CfsDisk *disk, const CfsRecord *r,
                    const struct iovec *payload, int iovcnt, GError **errp)
{
    CfsAppend *a;
    struct iovec head;

    if (!cfs_disk_check_writable(disk, errp) || !cfs_disk_seal(disk, errp)) {
        return false;
    }
    g_assert(g_queue_is_empty(&disk->inflight));
    a = g_new0(CfsAppend, 1);
    a->rec = *r;
    a->rec.buf = cfs_alloc_aligned(r->padded_len);
    memcpy(a->rec.buf, r->buf, r->padded_len);
    a->version = GUINT64_FROM_LE(cfs_rec_hdr(r)->version);
    a->offset = disk->log_end;
    a->state = CFS_APPEND_PENDING;
    a->iov = g_array_new(FALSE, FALSE, sizeof(struct iovec));
    head = (struct iovec) { a->rec.buf, a->rec.padded_len };
    g_array_append_val(a->iov, head);
    g_array_append_vals(a->iov, payload, iovcnt);
    disk->prep_version = a->version;
    memcpy(disk->prep_version_id, a->rec.id, CFS_ID_LEN);
    disk->log_end += cfs_rec_total(&a->rec);
    g_queue_push_tail(&disk->inflight, a);
    return append_sync(disk, a, errp);
}
