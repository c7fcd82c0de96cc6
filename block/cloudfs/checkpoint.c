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

/* Tags and root of a checkpoint: the payload's first state_bytes */
static uint8_t *encode_state(const CfsState *st, uint64_t *state_bytes)
{
    g_autoptr(GPtrArray) tags = cfs_state_sorted_tags(st);
    uint64_t bytes = tags->len * sizeof(CfsCkptTag) + sizeof(CfsCkptRoot);
    uint8_t *buf = g_malloc0(bytes);
    CfsCkptRoot root = {
        .version = GUINT64_TO_LE(st->version),
        .virtual_size = GUINT64_TO_LE(st->size),
        .extent_count = GUINT64_TO_LE(cfs_index_count(st->index)),
        .data_bytes = GUINT64_TO_LE(cfs_index_data_bytes(st->index)),
        .root_node = GUINT64_TO_LE(cfs_index_root_node(st->index)),
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
        memcpy(buf + i * sizeof(ct), &ct, sizeof(ct));
    }
    memcpy(root.version_id, st->version_id, CFS_ID_LEN);
    memcpy(buf + tags->len * sizeof(CfsCkptTag), &root, sizeof(root));
    *state_bytes = bytes;
    return buf;
}

static bool ckpt_bad(GError **errp, const char *why)
{
    g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                "checkpoint is corrupt: %s", why);
    return false;
}

static bool parse_tags(const uint8_t *payload, uint32_t tag_count,
                       CfsState *st, GError **errp)
{
    for (uint32_t i = 0; i < tag_count; i++) {
        CfsCkptTag ct;
        CfsTag *t;
        uint16_t len;

        memcpy(&ct, payload + i * sizeof(ct), sizeof(ct));
        len = GUINT16_FROM_LE(ct.name_len);
        if (len == 0 || ct.reserved || len > CFS_TAG_NAME_MAX ||
            memchr(ct.name, 0, len) ||
            !cfs_is_zero(ct.name + len, sizeof(ct.name) - len)) {
            return ckpt_bad(errp, "bad tag name");
        }
        t = g_new0(CfsTag, 1);
        t->name = g_strndup(ct.name, len);
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
    return true;
}

/*
 * Load the checkpoint record at offset: its tags and root, verified
 * against the record's block checksums, and the root node of its index.
 * The rest of the tree is read when it is needed.
 */
bool cfs_checkpoint_load(CfsDisk *disk, uint64_t offset, CfsState *st,
                         uint64_t *prev, uint64_t *end, GError **errp)
{
    int64_t file_size = disk->io.size(disk->io.opaque);
    uint32_t bs = disk->block_size;
    CfsRecord r;
    CfsCkptBody body;
    CfsCkptRoot root;
    uint8_t *payload = NULL;
    uint64_t state_bytes, state_len, nodes_at, root_node;
    uint32_t tag_count, node_count;
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
    tag_count = GUINT32_FROM_LE(body.tag_count);
    node_count = GUINT32_FROM_LE(body.node_count);
    nodes_at = cfs_align_up(state_bytes, CFS_NODE_SIZE);
    if (state_bytes != (uint64_t)tag_count * sizeof(CfsCkptTag) +
                       sizeof(CfsCkptRoot) || body.reserved ||
        nodes_at + (uint64_t)node_count * CFS_NODE_SIZE > r.payload_len ||
        r.payload_len - nodes_at - (uint64_t)node_count * CFS_NODE_SIZE >=
        MAX(bs, CFS_NODE_SIZE) ||
        body.replay_horizon != disk->sb.log_start) {
        ckpt_bad(errp, "bad sizes or replay horizon");
        goto out;
    }
    /* only the blocks holding tags and roots; nodes check themselves */
    state_len = MIN(cfs_align_up(nodes_at, bs), r.payload_len);
    payload = cfs_alloc_aligned(state_len);
    {
        struct iovec iov = { .iov_base = payload, .iov_len = state_len };

        if (!cfs_io_pread(&disk->io, payload, state_len,
                          offset + r.padded_len, errp) ||
            !cfs_record_verify_blocks(&r, bs, 0, &iov, 1, state_len,
                                      offset + r.padded_len, errp)) {
            goto out;
        }
    }
    if (!cfs_is_zero(payload + state_bytes, MIN(nodes_at, state_len) -
                     state_bytes)) {
        ckpt_bad(errp, "padding");
        goto out;
    }
    cfs_state_init_empty(st, disk);
    if (!parse_tags(payload, tag_count, st, errp)) {
        goto fail;
    }
    memcpy(&root, payload + tag_count * sizeof(CfsCkptTag), sizeof(root));
    st->version = GUINT64_FROM_LE(root.version);
    memcpy(st->version_id, root.version_id, CFS_ID_LEN);
    st->size = GUINT64_FROM_LE(root.virtual_size);
    root_node = GUINT64_FROM_LE(root.root_node);
    if (st->size == 0 || st->size % bs || root.reserved ||
        st->size > CFS_MAX_VIRTUAL_SIZE ||
        !root_node != !root.extent_count ||
        GUINT64_FROM_LE(root.data_bytes) > st->size ||
        root_node >= offset + cfs_rec_total(&r)) {
        ckpt_bad(errp, "bad root");
        goto fail;
    }
    if (st->version != GUINT64_FROM_LE(cfs_rec_hdr(&r)->version) ||
        memcmp(st->version_id, cfs_rec_hdr(&r)->prev_version_id,
               CFS_ID_LEN)) {
        ckpt_bad(errp, "root does not match the record");
        goto fail;
    }
    *prev = GUINT64_FROM_LE(body.prev_checkpoint);
    if (*prev >= offset) {
        ckpt_bad(errp, "its previous checkpoint is not before it");
        goto fail;
    }
    if (!cfs_index_open(st->index, root_node,
                        GUINT64_FROM_LE(root.extent_count),
                        GUINT64_FROM_LE(root.data_bytes), errp)) {
        goto fail;
    }
    *end = offset + cfs_rec_total(&r);
    ok = true;
    goto out;
fail:
    cfs_state_clear(st);
out:
    cfs_free_aligned(payload);
    cfs_record_clear(&r);
    return ok;
}

/*
 * Write a checkpoint of the head: its tags and root, and the index nodes
 * changed since the last checkpoint (the rest of the tree is where earlier
 * checkpoints put it).  Then point the older slot at it.
 */
bool cfs_disk_checkpoint(CfsDisk *disk, GError **errp)
{
    CfsState *st = &disk->head;
    uint32_t bs = disk->block_size;
    uint64_t state_bytes, nodes_at, payload_len, offset = disk->log_end;
    uint32_t nblocks, body_len = sizeof(CfsCkptBody);
    g_autoptr(GPtrArray) nodes = NULL;
    g_autofree uint8_t *state = NULL;
    uint8_t *payload, *header;
    uint32_t header_len, padded;
    CfsCkptBody body;
    CfsSlot slot = { 0 };
    uint8_t unused_id[CFS_ID_LEN];
    struct iovec iov[2];
    int which = disk->slot_newest == 0 ? 1 : 0;
    bool ok;

    /* a checkpoint describes a version: the open record's batches first
     * become one (sealing leaves log_end where it is) */
    if (!cfs_disk_check_writable(disk, errp) || !cfs_disk_seal(disk, errp)) {
        return false;
    }
    g_assert(g_queue_is_empty(&disk->inflight));
    nodes = cfs_index_dirty_nodes(st->index);
    /* tags + root fit a few blocks: their size is known before the nodes'
     * offsets are, and the root's offset goes into them */
    nodes_at = cfs_align_up((uint64_t)g_hash_table_size(st->tags) *
                            sizeof(CfsCkptTag) + sizeof(CfsCkptRoot),
                            CFS_NODE_SIZE);
    payload_len = cfs_align_up(nodes_at + (uint64_t)nodes->len *
                               CFS_NODE_SIZE, bs);
    nblocks = payload_len / bs;
    if (nblocks > CFS_MAX_PAYLOAD_BLOCKS) {
        /* more changed nodes than one record holds at this block size:
         * skip it; opening replays more of the log instead */
        if (!cfs_io_flush(&disk->io, errp)) {
            return false;
        }
        disk->durable_version = st->version;
        disk->ckpt_log_end = disk->log_end;
        return true;
    }
    header_len = sizeof(CfsRecordHeader) + body_len + 8 * nblocks;
    padded = cfs_align_up(header_len, bs);
    payload = cfs_alloc_aligned(payload_len);
    cfs_index_encode_nodes(nodes, offset + padded + nodes_at,
                           payload + nodes_at);
    state = encode_state(st, &state_bytes);
    g_assert(cfs_align_up(state_bytes, CFS_NODE_SIZE) == nodes_at);
    memcpy(payload, state, state_bytes);

    header = cfs_alloc_aligned(padded);
    body = (CfsCkptBody) {
        .prev_checkpoint = GUINT64_TO_LE(disk->ckpt_offset),
        .state_bytes = GUINT64_TO_LE(state_bytes),
        .replay_horizon = disk->sb.log_start,
        .tag_count = GUINT32_TO_LE(g_hash_table_size(st->tags)),
        .root_count = GUINT32_TO_LE(1),
        .node_count = GUINT32_TO_LE(nodes->len),
    };
    memcpy(header + sizeof(CfsRecordHeader), &body, sizeof(body));
    for (uint32_t i = 0; i < nblocks; i++) {
        uint64_t sum = GUINT64_TO_LE(cfs_block_checksum(
            payload + (uint64_t)i * bs, bs, i));

        memcpy(header + sizeof(CfsRecordHeader) + body_len + 8ull * i, &sum, 8);
    }
    cfs_record_seal(&disk->sb, header, CFS_REC_CHECKPOINT, body_len, nblocks,
                    padded, st->version, st->version_id, disk->writer_nonce,
                    disk->durable_version, unused_id);
    iov[0] = (struct iovec) { header, padded };
    iov[1] = (struct iovec) { payload, payload_len };

    /* The record must be durable before a slot points at it, and the slot
     * before we rely on it: two flushes, as with any journal commit. */
    ok = cfs_io_pwritev_all(&disk->io, iov, 2, offset, errp) &&
         cfs_io_flush(&disk->io, errp);
    cfs_free_aligned(header);
    cfs_free_aligned(payload);
    /* on failure nothing refers to the bytes written: the nodes stay
     * dirty and the next checkpoint writes them again */
    cfs_index_nodes_written(nodes, ok);
    if (!ok) {
        /* some of it may be in the file: not ours any more */
        disk->stale_end = MAX(disk->stale_end, offset + padded + payload_len);
        return false;
    }
    disk->log_end = disk->valid_end = offset + padded + payload_len;
    disk->durable_version = st->version;
    disk->prep_version = st->version;
    /* durable, and later trees use its nodes: the next checkpoint links
     * to it even if no slot ever points at it */
    disk->ckpt_offset = offset;
    disk->ckpt_version = st->version;
    disk->ckpt_log_end = disk->log_end;
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
    return true;
}
