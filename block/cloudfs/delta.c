/*
 * cloudfs format core: deltas — the chain records between two versions,
 * byte for byte as they sit in the log, behind a small header.  Export
 * streams them out of the log; apply verifies each one exactly as recovery
 * would and appends it, so replicas reach the sender's version ids.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "hash.h"
#include "internal.h"

#define DELTA_CHUNK (1u << 20)

static uint64_t delta_checksum(const CfsDeltaHeader *h)
{
    return XXH3_64bits(h, G_STRUCT_OFFSET(CfsDeltaHeader, checksum));
}

static bool export_record(CfsDisk *disk, const CfsRecord *r, uint64_t offset,
                          CfsSinkFn sink, void *opaque, GError **errp)
{
    uint8_t *buf;
    bool ok;

    if (!sink(r->buf, r->padded_len, opaque, errp)) {
        return false;
    }
    buf = cfs_alloc_aligned(MIN(DELTA_CHUNK, MAX(r->payload_len, 1)));
    ok = true;
    for (uint64_t done = 0; ok && done < r->payload_len; done += DELTA_CHUNK) {
        uint64_t len = MIN(DELTA_CHUNK, r->payload_len - done);
        uint64_t at = offset + r->padded_len + done;
        struct iovec iov = { .iov_base = buf, .iov_len = len };

        /* never ship a block that rotted here: the receiver would refuse
         * it anyway, and the error belongs to this side */
        ok = cfs_io_pread(&disk->io, buf, len, at, errp) &&
             cfs_record_verify_blocks(r, disk->block_size,
                                      done / disk->block_size, &iov, 1, len,
                                      at, errp) &&
             sink(buf, len, opaque, errp);
    }
    cfs_free_aligned(buf);
    return ok;
}

bool cfs_delta_export(CfsDisk *disk, uint64_t from, uint64_t to,
                      CfsSinkFn sink, void *opaque, GError **errp)
{
    int64_t file_size = disk->io.size(disk->io.opaque);
    CfsDeltaHeader h = { 0 };
    uint64_t offset;

    if (to == CFS_VERSION_HEAD) {
        to = disk->head.version;
    }
    if (from > to || to > disk->head.version) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID,
                    "cannot export versions %" G_GUINT64_FORMAT " to %"
                    G_GUINT64_FORMAT ": the disk is at version %"
                    G_GUINT64_FORMAT, from, to, disk->head.version);
        return false;
    }
    memcpy(h.magic, CFS_DELTA_MAGIC, 8);
    h.delta_version = GUINT32_TO_LE(CFS_DELTA_VERSION);
    h.flags = GUINT32_TO_LE(from == 0 ? CFS_DELTA_HAS_SUPERBLOCK : 0);
    memcpy(h.disk_id, disk->sb.disk_id, CFS_ID_LEN);
    h.block_size = disk->sb.block_size;
    h.from_version = GUINT64_TO_LE(from);
    h.to_version = GUINT64_TO_LE(to);
    h.record_count = GUINT64_TO_LE(to - from);
    if (!cfs_version_id_at(disk, from, h.from_version_id, errp) ||
        !cfs_version_id_at(disk, to, h.to_version_id, errp)) {
        return false;
    }
    h.checksum = GUINT64_TO_LE(delta_checksum(&h));
    if (!sink(&h, sizeof(h), opaque, errp) ||
        (from == 0 && !sink(&disk->sb, sizeof(disk->sb), opaque, errp))) {
        return false;
    }

    /* records after a checkpoint at or before from are all newer */
    cfs_checkpoint_before(disk, from, &offset);
    while (offset < disk->valid_end) {
        CfsRecord r;
        uint64_t v;
        bool ok = true;

        if (!cfs_record_read(&disk->io, &disk->sb, offset, file_size, &r,
                             errp)) {
            return false;
        }
        v = GUINT64_FROM_LE(cfs_rec_hdr(&r)->version);
        if (cfs_rec_is_chain(&r) && v > from && v <= to) {
            ok = export_record(disk, &r, offset, sink, opaque, errp);
        }
        offset += cfs_rec_total(&r);
        cfs_record_clear(&r);
        if (!ok) {
            return false;
        }
        if (v >= to) {
            break;
        }
    }
    return true;
}

struct CfsDeltaReader {
    CfsSourceFn source;
    void *opaque;
    CfsDeltaHeader header;
    CfsSuperblock sb;
    bool has_sb;
    bool at_eof;                /* the stream ended exactly at a record */
};

/* Read exactly len bytes; false at a short read (at_eof if none came) */
static bool read_exact(CfsDeltaReader *r, void *buf, size_t len,
                       GError **errp)
{
    size_t got = 0;

    r->at_eof = false;
    while (got < len) {
        gssize n = r->source((uint8_t *)buf + got, len - got, r->opaque, errp);

        if (n < 0) {
            return false;
        }
        if (n == 0) {
            r->at_eof = got == 0;
            g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                        "delta stream is truncated");
            return false;
        }
        got += n;
    }
    return true;
}

CfsDeltaReader *cfs_delta_reader_new(CfsSourceFn source, void *opaque,
                                     GError **errp)
{
    CfsDeltaReader *r = g_new0(CfsDeltaReader, 1);
    CfsDeltaHeader *h = &r->header;
    uint32_t flags;

    r->source = source;
    r->opaque = opaque;
    if (!read_exact(r, h, sizeof(*h), NULL) ||
        memcmp(h->magic, CFS_DELTA_MAGIC, 8) != 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_NOT_CFS,
                    "input is not a cloudfs delta");
        goto fail;
    }
    if (GUINT32_FROM_LE(h->delta_version) != CFS_DELTA_VERSION) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_UNSUPPORTED,
                    "delta format version %u is not supported",
                    GUINT32_FROM_LE(h->delta_version));
        goto fail;
    }
    flags = GUINT32_FROM_LE(h->flags);
    if (GUINT64_FROM_LE(h->checksum) != delta_checksum(h) ||
        (flags & ~CFS_DELTA_HAS_SUPERBLOCK) ||
        !(flags & CFS_DELTA_HAS_SUPERBLOCK) != !!h->from_version ||
        GUINT64_FROM_LE(h->to_version) < GUINT64_FROM_LE(h->from_version) ||
        GUINT64_FROM_LE(h->record_count) !=
        GUINT64_FROM_LE(h->to_version) - GUINT64_FROM_LE(h->from_version)) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                    "delta header is corrupt");
        goto fail;
    }
    if (flags & CFS_DELTA_HAS_SUPERBLOCK) {
        if (!read_exact(r, &r->sb, sizeof(r->sb), errp) ||
            !cfs_superblock_validate(&r->sb, UINT64_MAX, errp)) {
            g_prefix_error(errp, "delta's superblock: ");
            goto fail;
        }
        if (memcmp(r->sb.disk_id, h->disk_id, CFS_ID_LEN) ||
            r->sb.block_size != h->block_size) {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                        "delta's superblock is for another disk");
            goto fail;
        }
        r->has_sb = true;
    }
    return r;

fail:
    g_free(r);
    return NULL;
}

const CfsDeltaHeader *cfs_delta_reader_header(CfsDeltaReader *r)
{
    return &r->header;
}

const CfsSuperblock *cfs_delta_reader_superblock(CfsDeltaReader *r)
{
    return r->has_sb ? &r->sb : NULL;
}

void cfs_delta_reader_free(CfsDeltaReader *r)
{
    g_free(r);
}

static bool fetch_stream(void *dst, size_t len, uint64_t at, void *opaque,
                         GError **errp)
{
    return read_exact(opaque, dst, len, errp);
}

static bool check_start(CfsDisk *disk, const CfsDeltaHeader *h,
                        CfsDeltaResult *res, GError **errp)
{
    uint64_t from = GUINT64_FROM_LE(h->from_version);
    uint8_t id[CFS_ID_LEN];
    char want[41], have[41];

    if (memcmp(h->disk_id, disk->sb.disk_id, CFS_ID_LEN) ||
        h->block_size != disk->sb.block_size) {
        cfs_id_to_hex(h->disk_id, want);
        cfs_id_to_hex(disk->sb.disk_id, have);
        g_set_error(errp, CFS_ERROR, CFS_ERROR_MISMATCH,
                    "delta is for disk %s, not for this disk %s", want, have);
        return false;
    }
    if (from > disk->head.version) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_MISMATCH,
                    "delta starts at version %" G_GUINT64_FORMAT " but the "
                    "disk is at version %" G_GUINT64_FORMAT, from,
                    disk->head.version);
        return false;
    }
    if (!cfs_version_id_at(disk, from, id, errp)) {
        return false;
    }
    if (memcmp(id, h->from_version_id, CFS_ID_LEN)) {
        res->diverged_at = from;
        g_set_error(errp, CFS_ERROR, CFS_ERROR_DIVERGED,
                    "histories diverge at or before version %" G_GUINT64_FORMAT
                    ": the delta does not start from this disk's version",
                    from);
        return false;
    }
    return true;
}

/* Read a record's payload and check it against its header */
static uint8_t *read_payload(CfsDeltaReader *rd, const CfsRecord *r,
                             uint32_t block_size, GError **errp)
{
    uint8_t *payload = cfs_alloc_aligned(MAX(r->payload_len, 1));
    struct iovec iov = { .iov_base = payload, .iov_len = r->payload_len };

    if (!read_exact(rd, payload, r->payload_len, errp) ||
        !cfs_record_verify_blocks(r, block_size, 0, &iov, 1, r->payload_len,
                                  0, errp)) {
        cfs_free_aligned(payload);
        return NULL;
    }
    return payload;
}

static bool apply_one(CfsDisk *disk, CfsDeltaReader *rd, const CfsRecord *r,
                      CfsDeltaResult *res, GError **errp)
{
    uint64_t v = GUINT64_FROM_LE(cfs_rec_hdr(r)->version);
    uint8_t *payload;
    struct iovec iov;
    bool ok;

    if (!cfs_rec_is_chain(r)) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                    "delta carries a checkpoint record");
        return false;
    }
    if (v <= disk->head.version) {
        uint8_t id[CFS_ID_LEN];

        if (!cfs_version_id_at(disk, v, id, errp)) {
            return false;
        }
        if (memcmp(id, r->id, CFS_ID_LEN)) {
            res->diverged_at = v;
            g_set_error(errp, CFS_ERROR, CFS_ERROR_DIVERGED,
                        "histories diverge at version %" G_GUINT64_FORMAT
                        ": this disk has another version there", v);
            return false;
        }
        payload = read_payload(rd, r, disk->block_size, errp);
        cfs_free_aligned(payload);
        res->records_skipped++;
        return payload != NULL;
    }
    if (v != disk->head.version + 1 ||
        memcmp(cfs_rec_hdr(r)->prev_version_id, disk->head.version_id,
               CFS_ID_LEN)) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                    "delta record for version %" G_GUINT64_FORMAT " does not "
                    "continue the version chain", v);
        return false;
    }
    /* a MAC-valid record can still not fit this disk's state (a peer
     * with a bug): check before it reaches the log */
    if (!cfs_state_check(disk, &disk->head, r, disk->log_end, errp)) {
        return false;
    }
    payload = read_payload(rd, r, disk->block_size, errp);
    if (!payload) {
        return false;
    }
    /* Mirror the sender's flush points: a record whose writer had flushed
     * version d is only written here once d is durable here too, so that
     * recovery tells torn writes from rot on replicas the same way */
    if (GUINT64_FROM_LE(cfs_rec_hdr(r)->durable_version) >
        disk->durable_version) {
        if (!cfs_io_flush(&disk->io, errp)) {
            cfs_free_aligned(payload);
            return false;
        }
        disk->durable_version = disk->head.version;
    }
    iov = (struct iovec) { .iov_base = payload, .iov_len = r->payload_len };
    ok = cfs_append_raw(disk, r, &iov, r->payload_len ? 1 : 0, errp);
    cfs_free_aligned(payload);
    res->records_applied += ok;
    return ok;
}

bool cfs_delta_apply(CfsDisk *disk, CfsDeltaReader *rd,
                     CfsDeltaResult *result, GError **errp)
{
    const CfsDeltaHeader *h = &rd->header;
    uint64_t count = GUINT64_FROM_LE(h->record_count);
    CfsDeltaResult res = { 0 };
    bool ok = true;

    /* local writes not yet sealed are part of this disk's history */
    if (!cfs_disk_check_writable(disk, errp) || !cfs_disk_seal(disk, errp) ||
        !check_start(disk, h, &res, errp)) {
        ok = false;
        goto out;
    }
    for (uint64_t i = 0; ok && i < count; i++) {
        g_autoptr(GError) local_err = NULL;
        CfsRecord r;

        if (!cfs_record_load(&disk->sb, fetch_stream, rd, 0, UINT64_MAX, &r,
                             &local_err)) {
            if (rd->at_eof || local_err->code == CFS_ERROR_CORRUPT) {
                g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                            "delta is truncated or corrupt after %"
                            G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                            " records: %s", i, count, local_err->message);
            } else {
                g_propagate_error(errp, g_steal_pointer(&local_err));
            }
            ok = false;
            break;
        }
        ok = apply_one(disk, rd, &r, &res, errp);
        cfs_record_clear(&r);
    }
    /* what was applied stays, durably, even when the rest was bad */
    if (res.records_applied) {
        g_autoptr(GError) flush_err = NULL;

        if (!cfs_disk_flush(disk, ok ? errp : &flush_err)) {
            ok = false;
        }
    }
out:
    res.version = disk->head.version;
    if (result) {
        *result = res;
    }
    return ok;
}
