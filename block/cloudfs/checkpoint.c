/*
 * cloudfs format core: checkpoints — the whole state of the head written
 * into the log, found again through the double-buffered superblock slots,
 * so that opening replays only the log written since.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "internal.h"

typedef struct Writer {
    uint8_t *buf;
    uint64_t pos;
} Writer;

static bool put_extent(const CfsExtent *e, void *opaque)
{
    Writer *w = opaque;
    CfsCkptExtent ce = {
        .guest_offset = GUINT64_TO_LE(e->guest_offset),
        .log_offset = GUINT64_TO_LE(e->log_offset),
        .record_offset = GUINT64_TO_LE(e->record_offset),
        .nblocks = GUINT32_TO_LE(e->nblocks),
        .kind = GUINT16_TO_LE(e->kind),
    };

    memcpy(w->buf + w->pos, &ce, sizeof(ce));
    w->pos += sizeof(ce);
    return true;
}

uint8_t *cfs_checkpoint_serialize(const CfsState *st, uint32_t block_size,
                                  uint64_t *state_bytes, uint32_t *nblocks)
{
    g_autoptr(GPtrArray) tags = cfs_state_sorted_tags(st);
    uint64_t extents = cfs_index_count(st->index);
    uint64_t bytes = tags->len * sizeof(CfsCkptTag) + sizeof(CfsCkptRoot) +
                     extents * sizeof(CfsCkptExtent);
    uint64_t padded = cfs_align_up(bytes, block_size);
    Writer w = { .buf = cfs_alloc_aligned(padded) };
    CfsCkptRoot root = {
        .version = GUINT64_TO_LE(st->version),
        .virtual_size = GUINT64_TO_LE(st->size),
        .extent_count = GUINT64_TO_LE(extents),
    };

    for (guint i = 0; i < tags->len; i++) {
        const CfsTag *t = tags->pdata[i];
        CfsCkptTag ct = {
            .version = GUINT64_TO_LE(t->version),
            .name_len = GUINT16_TO_LE(strlen(t->name)),
            .timestamp_ns = GUINT64_TO_LE(t->timestamp_ns),
        };

        memcpy(ct.version_id, t->version_id, CFS_ID_LEN);
        memcpy(ct.name, t->name, strlen(t->name));
        memcpy(w.buf + w.pos, &ct, sizeof(ct));
        w.pos += sizeof(ct);
    }
    memcpy(root.version_id, st->version_id, CFS_ID_LEN);
    memcpy(w.buf + w.pos, &root, sizeof(root));
    w.pos += sizeof(root);
    cfs_index_foreach(st->index, put_extent, &w);
    g_assert(w.pos == bytes);
    *state_bytes = bytes;
    *nblocks = padded / block_size;
    return w.buf;
}

static bool ckpt_bad(GError **errp, const char *why)
{
    g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                "checkpoint is corrupt: %s", why);
    return false;
}

bool cfs_checkpoint_parse(const uint8_t *payload, uint64_t state_bytes,
                          const CfsCkptBody *body, uint32_t block_size,
                          CfsState *st, GError **errp)
{
    uint32_t tag_count = GUINT32_FROM_LE(body->tag_count);
    uint64_t pos = (uint64_t)tag_count * sizeof(CfsCkptTag);
    CfsCkptRoot root;
    uint64_t extents;

    if (GUINT32_FROM_LE(body->root_count) < 1 ||
        pos + sizeof(root) > state_bytes) {
        return ckpt_bad(errp, "no root");
    }
    cfs_state_init_empty(st, block_size);
    for (uint32_t i = 0; i < tag_count; i++) {
        CfsCkptTag ct;
        CfsTag *t;

        memcpy(&ct, payload + i * sizeof(ct), sizeof(ct));
        if (GUINT16_FROM_LE(ct.name_len) == 0 || ct.reserved ||
            GUINT16_FROM_LE(ct.name_len) > CFS_TAG_NAME_MAX ||
            memchr(ct.name, 0, GUINT16_FROM_LE(ct.name_len)) ||
            !cfs_is_zero(ct.name + GUINT16_FROM_LE(ct.name_len),
                         sizeof(ct.name) - GUINT16_FROM_LE(ct.name_len))) {
            return ckpt_bad(errp, "bad tag name");
        }
        t = g_new0(CfsTag, 1);
        t->name = g_strndup(ct.name, GUINT16_FROM_LE(ct.name_len));
        t->version = GUINT64_FROM_LE(ct.version);
        t->timestamp_ns = GUINT64_FROM_LE(ct.timestamp_ns);
        memcpy(t->version_id, ct.version_id, CFS_ID_LEN);
        if (!cfs_tag_name_valid(t->name, NULL) ||
            g_hash_table_contains(st->tags, t->name)) {
            g_free(t->name);
            g_free(t);
            return ckpt_bad(errp, "bad or duplicate tag name");
        }
        g_hash_table_insert(st->tags, t->name, t);
    }
    memcpy(&root, payload + pos, sizeof(root));
    pos += sizeof(root);
    extents = GUINT64_FROM_LE(root.extent_count);
    st->version = GUINT64_FROM_LE(root.version);
    memcpy(st->version_id, root.version_id, CFS_ID_LEN);
    st->size = GUINT64_FROM_LE(root.virtual_size);
    if (st->size == 0 || st->size % block_size || root.reserved ||
        extents != (state_bytes - pos) / sizeof(CfsCkptExtent) ||
        (state_bytes - pos) % sizeof(CfsCkptExtent)) {
        return ckpt_bad(errp, "bad root");
    }
    for (uint64_t i = 0; i < extents; i++) {
        CfsCkptExtent ce;
        CfsExtent e;

        memcpy(&ce, payload + pos + i * sizeof(ce), sizeof(ce));
        e = (CfsExtent) {
            .guest_offset = GUINT64_FROM_LE(ce.guest_offset),
            .log_offset = GUINT64_FROM_LE(ce.log_offset),
            .record_offset = GUINT64_FROM_LE(ce.record_offset),
            .nblocks = GUINT32_FROM_LE(ce.nblocks),
            .kind = GUINT16_FROM_LE(ce.kind),
        };
        if ((e.kind != CFS_EXTENT_DATA && e.kind != CFS_EXTENT_ZERO) ||
            ce.reserved ||
            (e.kind == CFS_EXTENT_ZERO && (e.log_offset || e.record_offset)) ||
            e.guest_offset >= st->size ||
            (uint64_t)e.nblocks * block_size > st->size - e.guest_offset ||
            (e.kind == CFS_EXTENT_DATA &&
             (e.log_offset % block_size || e.log_offset <= e.record_offset)) ||
            !cfs_index_append(st->index, &e)) {
            return ckpt_bad(errp, "bad extent");
        }
    }
    return true;
}

bool cfs_checkpoint_load(CfsDisk *disk, uint64_t offset, CfsState *st,
                         uint64_t *prev, uint64_t *end, GError **errp)
{
    int64_t file_size = disk->io.size(disk->io.opaque);
    CfsRecord r;
    CfsCkptBody body;
    uint8_t *payload = NULL;
    uint64_t state_bytes;
    bool ok = false;

    memset(st, 0, sizeof(*st));
    if (!cfs_record_read(&disk->io, &disk->sb, offset, file_size, &r, errp)) {
        return false;
    }
    if (GUINT16_FROM_LE(cfs_rec_hdr(&r)->type) != CFS_REC_CHECKPOINT) {
        ckpt_bad(errp, "slot points at a record that is not a checkpoint");
        goto out;
    }
    memcpy(&body, cfs_rec_body(&r), sizeof(body));
    state_bytes = GUINT64_FROM_LE(body.state_bytes);
    if (state_bytes > r.payload_len) {
        ckpt_bad(errp, "state larger than its payload");
        goto out;
    }
    payload = cfs_alloc_aligned(r.payload_len);
    {
        struct iovec iov = { .iov_base = payload, .iov_len = r.payload_len };

        if (!cfs_io_pread(&disk->io, payload, r.payload_len,
                          offset + r.padded_len, errp) ||
            !cfs_record_verify_blocks(&r, disk->block_size, 0, &iov, 1,
                                      r.payload_len, offset + r.padded_len,
                                      errp)) {
            goto out;
        }
    }
    if (!cfs_is_zero(payload + state_bytes, r.payload_len - state_bytes) ||
        body.replay_horizon != disk->sb.log_start) {
        ckpt_bad(errp, "padding or replay horizon");
        goto out;
    }
    if (!cfs_checkpoint_parse(payload, state_bytes, &body, disk->block_size,
                              st, errp)) {
        cfs_state_clear(st);
        goto out;
    }
    if (st->version != GUINT64_FROM_LE(cfs_rec_hdr(&r)->version) ||
        memcmp(st->version_id, cfs_rec_hdr(&r)->prev_version_id,
               CFS_ID_LEN)) {
        cfs_state_clear(st);
        ckpt_bad(errp, "root does not match the record");
        goto out;
    }
    *prev = GUINT64_FROM_LE(body.prev_checkpoint);
    if (*prev >= offset) {
        cfs_state_clear(st);
        ckpt_bad(errp, "its previous checkpoint is not before it");
        goto out;
    }
    *end = offset + cfs_rec_total(&r);
    ok = true;
out:
    cfs_free_aligned(payload);
    cfs_record_clear(&r);
    return ok;
}

bool cfs_disk_checkpoint(CfsDisk *disk, GError **errp)
{
    CfsState *st = &disk->head;
    uint64_t state_bytes, offset = disk->log_end;
    uint32_t nblocks, body_len = sizeof(CfsCkptBody);
    uint8_t *payload, *header;
    uint32_t header_len, padded;
    CfsCkptBody body;
    CfsSlot slot = { 0 };
    uint8_t unused_id[CFS_ID_LEN];
    struct iovec iov[2];
    int which = disk->slot_newest == 0 ? 1 : 0;
    bool ok;

    if (!cfs_disk_check_writable(disk, errp)) {
        return false;
    }
    g_assert(g_queue_is_empty(&disk->inflight));
    payload = cfs_checkpoint_serialize(st, disk->block_size, &state_bytes,
                                       &nblocks);
    if (nblocks > CFS_MAX_PAYLOAD_BLOCKS) {
        /* too many extents for one checkpoint record at this block size:
         * skip it; opening replays more of the log instead */
        cfs_free_aligned(payload);
        if (!cfs_io_flush(&disk->io, errp)) {
            return false;
        }
        disk->durable_version = st->version;
        disk->ckpt_log_end = disk->log_end;
        return true;
    }
    header_len = sizeof(CfsRecordHeader) + body_len + 8 * nblocks;
    padded = cfs_align_up(header_len, disk->block_size);
    header = cfs_alloc_aligned(padded);
    body = (CfsCkptBody) {
        .prev_checkpoint = GUINT64_TO_LE(disk->ckpt_offset),
        .state_bytes = GUINT64_TO_LE(state_bytes),
        .replay_horizon = disk->sb.log_start,
        .tag_count = GUINT32_TO_LE(g_hash_table_size(st->tags)),
        .root_count = GUINT32_TO_LE(1),
    };
    memcpy(header + sizeof(CfsRecordHeader), &body, sizeof(body));
    for (uint32_t i = 0; i < nblocks; i++) {
        uint64_t sum = GUINT64_TO_LE(cfs_block_checksum(
            payload + (uint64_t)i * disk->block_size, disk->block_size, i));

        memcpy(header + sizeof(CfsRecordHeader) + body_len + 8ull * i, &sum, 8);
    }
    cfs_record_seal(&disk->sb, header, CFS_REC_CHECKPOINT, body_len, nblocks,
                    st->version, st->version_id, disk->writer_nonce,
                    disk->durable_version, unused_id);
    iov[0] = (struct iovec) { header, padded };
    iov[1] = (struct iovec) { payload, (size_t)nblocks * disk->block_size };

    /* The record must be durable before a slot points at it, and the slot
     * before we rely on it: two flushes, as with any journal commit. */
    ok = cfs_io_pwritev_all(&disk->io, iov, 2, offset, errp) &&
         cfs_io_flush(&disk->io, errp);
    cfs_free_aligned(header);
    cfs_free_aligned(payload);
    if (!ok) {
        return false;   /* nothing refers to the bytes written: retry */
    }
    disk->log_end = disk->valid_end = offset + iov[0].iov_len + iov[1].iov_len;
    disk->durable_version = st->version;
    disk->prep_version = st->version;
    slot.sequence = GUINT64_TO_LE(disk->slot_sequence + 1);
    slot.checkpoint_offset = GUINT64_TO_LE(offset);
    slot.checkpoint_version = GUINT64_TO_LE(st->version);
    memcpy(slot.checkpoint_version_id, st->version_id, CFS_ID_LEN);
    if (!cfs_slot_write(&disk->io, which, &slot, errp) ||
        !cfs_io_flush(&disk->io, errp)) {
        return false;
    }
    disk->slot_sequence++;
    disk->slot_newest = which;
    disk->ckpt_offset = offset;
    disk->ckpt_version = st->version;
    disk->ckpt_log_end = disk->log_end;
    return true;
}
