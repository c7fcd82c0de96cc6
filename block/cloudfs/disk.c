/*
 * cloudfs format core: opening (checkpoint + replay), closing, and the
 * read side (map, verify, and a plain pread for ordinary processes).
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static CfsDisk *disk_new(const CfsIO *io)
{
    CfsDisk *disk = g_new0(CfsDisk, 1);

    disk->io = *io;
    disk->slot_newest = -1;
    g_queue_init(&disk->inflight);
    disk->sums_cache = g_hash_table_new_full(g_int64_hash, g_int64_equal,
                                             g_free, g_free);
    return disk;
}

void cfs_disk_free(CfsDisk *disk)
{
    if (!disk) {
        return;
    }
    g_assert(g_queue_is_empty(&disk->inflight));
    cfs_disk_drop_unsealed(disk);
    cfs_state_clear(&disk->head);
    cfs_store_free(disk->nodes);
    g_hash_table_destroy(disk->sums_cache);
    if (disk->version_ids) {
        g_array_free(disk->version_ids, TRUE);
    }
    g_free(disk);
}

/*
 * Pick the newest slot whose checkpoint loads, load it into disk->head and
 * return where replay continues.  A bad slot or a bad checkpoint falls back
 * to the other slot, then to replaying the whole log.
 */
static bool load_newest_checkpoint(CfsDisk *disk, uint64_t *replay_from,
                                   GError **errp)
{
    uint8_t *buf = cfs_alloc_aligned(2 * CFS_META_BLOCK);
    CfsSlot slots[2];
    bool valid[2];
    int order[2];

    if (!cfs_io_pread(&disk->io, buf, 2 * CFS_META_BLOCK, CFS_SLOT0_OFFSET,
                      errp)) {
        cfs_free_aligned(buf);
        return false;
    }
    valid[0] = cfs_slot_parse(buf, &slots[0]);
    valid[1] = cfs_slot_parse(buf + CFS_META_BLOCK, &slots[1]);
    cfs_free_aligned(buf);
    for (int i = 0; i < 2; i++) {
        if (valid[i] && GUINT64_FROM_LE(slots[i].sequence) >
            disk->slot_sequence) {
            disk->slot_sequence = GUINT64_FROM_LE(slots[i].sequence);
        }
    }
    if (disk->ignore_checkpoints) {
        valid[0] = valid[1] = false;
    }
    order[0] = valid[1] && (!valid[0] || GUINT64_FROM_LE(slots[1].sequence) >
                            GUINT64_FROM_LE(slots[0].sequence));
    order[1] = !order[0];

    for (int k = 0; k < 2; k++) {
        int i = order[k];
        uint64_t offset = GUINT64_FROM_LE(slots[i].checkpoint_offset);
        uint64_t prev, end;
        CfsState st;

        if (!valid[i] || offset < GUINT64_FROM_LE(disk->sb.log_start)) {
            continue;
        }
        if (!cfs_checkpoint_load(disk, offset, &st, &prev, &end, NULL)) {
            continue;
        }
        if (st.version != GUINT64_FROM_LE(slots[i].checkpoint_version) ||
            memcmp(st.version_id, slots[i].checkpoint_version_id,
                   CFS_ID_LEN)) {
            cfs_state_clear(&st);
            continue;
        }
        cfs_state_clear(&disk->head);
        disk->head = st;
        disk->ckpt_offset = offset;
        disk->ckpt_version = st.version;
        disk->ckpt_log_end = end;
        disk->slot_newest = i;
        *replay_from = end;
        return true;
    }
    *replay_from = GUINT64_FROM_LE(disk->sb.log_start);
    disk->ckpt_log_end = *replay_from;
    return true;
}

typedef struct TailCheck {
    CfsDisk *disk;
    GError **errp;
    bool damaged;
} TailCheck;

static bool flushed_beyond_tail(const CfsRecord *r, uint64_t at, void *opaque)
{
    TailCheck *t = opaque;
    uint64_t durable = GUINT64_FROM_LE(cfs_rec_hdr(r)->durable_version);

    if (durable > t->disk->head.version) {
        g_set_error(t->errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                    "the log is damaged at offset %" G_GUINT64_FORMAT
                    ": flushed versions up to %" G_GUINT64_FORMAT
                    " lie beyond it; run 'cloudfs check'",
                    t->disk->valid_end, durable);
        t->damaged = true;
        return false;
    }
    return true;
}

/*
 * After a crash the bytes past the log are torn or unflushed appends, or
 * zeros the block driver grew the file by ahead of the log (where
 * stale_end then ends).  A valid
 * record there whose writer had already flushed a version past our head
 * means the log was cut by corruption, not by a crash: refuse to open
 * rather than silently lose flushed history.
 */
static bool check_tail(CfsDisk *disk, GError **errp)
{
    int64_t size = disk->io.size(disk->io.opaque);
    TailCheck t = { .disk = disk, .errp = errp };
    uint64_t data_end;

    if (size <= (int64_t)disk->valid_end) {
        return true;
    }
    data_end = cfs_scan_tail(&disk->io, &disk->sb, disk->valid_end, size,
                             flushed_beyond_tail, &t);
    if (t.damaged) {
        return false;
    }
    /* the zeros after the last bytes written cannot pass for a header:
     * a new record there needs no cleared room */
    disk->stale_end = data_end;
    return true;
}

/*
 * Replay the log after the checkpoint.  Should the checkpoint's index turn
 * out damaged on the way, the log itself is intact: rebuild the index from
 * its start, in memory; the next checkpoint writes it out whole.
 */
static bool replay_or_rebuild(CfsDisk *disk, uint64_t from, GError **errp)
{
    g_autoptr(GError) local_err = NULL;

    if (cfs_replay(disk, from, &local_err)) {
        return true;
    }
    if (local_err->code != CFS_ERROR_INDEX || disk->ignore_checkpoints) {
        g_propagate_error(errp, g_steal_pointer(&local_err));
        return false;
    }
    disk->ignore_checkpoints = true;
    disk->corrupt_records = 0;
    disk->ckpt_offset = 0;
    disk->ckpt_version = 0;
    disk->ckpt_log_end = GUINT64_FROM_LE(disk->sb.log_start);
    cfs_state_clear(&disk->head);
    cfs_state_init_base(&disk->head, disk);
    return cfs_replay(disk, GUINT64_FROM_LE(disk->sb.log_start), errp);
}

CfsDisk *cfs_disk_open(const CfsIO *io, unsigned flags, uint64_t version,
                       GError **errp)
{
    CfsDisk *disk = disk_new(io);
    uint64_t replay_from;

    if (!cfs_superblock_read(io, &disk->sb, errp)) {
        goto fail;
    }
    disk->block_size = GUINT32_FROM_LE(disk->sb.block_size);
    disk->nodes = cfs_store_new(io, disk->block_size,
                                GUINT64_FROM_LE(disk->sb.log_start));
    disk->dirty_limit = CFS_DIRTY_INDEX_LIMIT;
    cfs_state_init_base(&disk->head, disk);
    disk->ignore_checkpoints = flags & CFS_OPEN_REBUILD_INDEX;
    if (!load_newest_checkpoint(disk, &replay_from, errp) ||
        !replay_or_rebuild(disk, replay_from, errp)) {
        goto fail;
    }
    disk->log_end = disk->valid_end;
    /* what lies past the log is torn or unsealed: an earlier writer's */
    disk->stale_end = MAX(disk->io.size(disk->io.opaque), 0);
    if (!(flags & (CFS_OPEN_FOR_CHECK | CFS_OPEN_SHARED)) &&
        !check_tail(disk, errp)) {
        goto fail;
    }
    disk->prep_version = disk->head.version;
    memcpy(disk->prep_version_id, disk->head.version_id, CFS_ID_LEN);

    if (version != CFS_VERSION_HEAD && version != disk->head.version) {
        CfsState old;

        if (version > disk->head.version) {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_NOT_FOUND,
                        "version %" G_GUINT64_FORMAT " does not exist "
                        "(the disk is at version %" G_GUINT64_FORMAT ")",
                        version, disk->head.version);
            goto fail;
        }
        if (!cfs_build_state(disk, version, &old, errp)) {
            goto fail;
        }
        cfs_state_clear(&disk->head);
        disk->head = old;
        disk->historical = true;
    } else if (version == disk->head.version) {
        disk->historical = false;
    }
    if (flags & CFS_OPEN_RDWR) {
        if (disk->historical) {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_READ_ONLY,
                        "version %" G_GUINT64_FORMAT " is a historical "
                        "version and can only be opened read-only", version);
            goto fail;
        }
        disk->writable = true;
        cfs_random_bytes(&disk->writer_nonce, sizeof(disk->writer_nonce));
        /* what replay found may still sit in a page cache: only after a
         * flush may new records vouch for it (durable_version) */
        if (!cfs_io_flush(&disk->io, errp)) {
            goto fail;
        }
        disk->durable_version = disk->head.version;
    }
    return disk;

fail:
    cfs_disk_free(disk);
    return NULL;
}

bool cfs_disk_resolve_version(CfsDisk *disk, const char *spec,
                              uint64_t *version, GError **errp)
{
    const CfsTag *tag = g_hash_table_lookup(disk->head.tags, spec);
    guint64 number;

    if (tag) {
        *version = tag->version;
        return true;
    }
    if (g_ascii_string_to_unsigned(spec, 10, 0, G_MAXUINT64, &number, NULL)) {
        if (number > disk->head.version) {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_NOT_FOUND,
                        "version %s does not exist (the disk is at version "
                        "%" G_GUINT64_FORMAT ")", spec, disk->head.version);
            return false;
        }
        *version = number;
        return true;
    }
    g_set_error(errp, CFS_ERROR, CFS_ERROR_NOT_FOUND,
                "no snapshot named '%s'", spec);
    return false;
}

/*
 * Nothing past the log's end belongs to the log: space a writer grew the
 * file by ahead of it (the block driver preallocates), or bytes of
 * records that never became whole.  Left there, the next open would take
 * them for stale bytes and clear each new record's header room first
 * (see stale_end).  A failure only leaves that cost: it is not an error.
 */
void cfs_disk_trim(CfsDisk *disk)
{
    int64_t size = disk->io.size(disk->io.opaque);

    if (!disk->writable || disk->poisoned || disk->open.offset ||
        disk->frozen.offset || disk->unsettled ||
        !g_queue_is_empty(&disk->inflight)) {
        return;
    }
    if (size > (int64_t)disk->log_end &&
        disk->io.truncate(disk->io.opaque, disk->log_end) == 0) {
        /* what a device that cannot shrink still holds stays stale */
        disk->stale_end = MAX((int64_t)disk->log_end,
                              disk->io.size(disk->io.opaque));
    }
}

bool cfs_disk_close(CfsDisk *disk, GError **errp)
{
    bool ok = true;

    /* Seal (even after an index failure: what was acknowledged stays),
     * and checkpoint so the next open replays nothing */
    if (disk->writable && g_queue_is_empty(&disk->inflight)) {
        ok = cfs_disk_seal(disk, errp);
        if (ok && !disk->poisoned && disk->log_end > disk->ckpt_log_end) {
            ok = cfs_disk_checkpoint(disk, errp);
        }
        if (ok) {
            cfs_disk_trim(disk);
        }
    }
    cfs_disk_free(disk);
    return ok;
}

const CfsSuperblock *cfs_disk_superblock(CfsDisk *disk)
{
    return &disk->sb;
}

const uint8_t *cfs_disk_id(CfsDisk *disk)
{
    return disk->sb.disk_id;
}

uint32_t cfs_disk_block_size(CfsDisk *disk)
{
    return disk->block_size;
}

uint64_t cfs_disk_size(CfsDisk *disk)
{
    return disk->head.size;
}

uint64_t cfs_disk_version(CfsDisk *disk)
{
    return disk->head.version;
}

const uint8_t *cfs_disk_version_id(CfsDisk *disk)
{
    return disk->head.version_id;
}

bool cfs_disk_read_only(CfsDisk *disk)
{
    return !disk->writable;
}

bool cfs_disk_historical(CfsDisk *disk)
{
    return disk->historical;
}

bool cfs_disk_has_parent(CfsDisk *disk)
{
    return GUINT64_FROM_LE(disk->sb.incompat_features) & CFS_INCOMPAT_PARENT;
}

uint64_t cfs_disk_log_end(CfsDisk *disk)
{
    return disk->log_end;
}

uint64_t cfs_disk_live_bytes(CfsDisk *disk)
{
    return cfs_index_data_bytes(disk->head.index);
}

uint64_t cfs_disk_extent_count(CfsDisk *disk)
{
    return cfs_index_count(disk->head.index);
}

GPtrArray *cfs_disk_tags(CfsDisk *disk)
{
    GPtrArray *tags = cfs_state_sorted_tags(&disk->head);

    g_ptr_array_set_free_func(tags, NULL);
    return tags;
}

const CfsTag *cfs_disk_find_tag(CfsDisk *disk, const char *name)
{
    return g_hash_table_lookup(disk->head.tags, name);
}

static bool range_ok(CfsDisk *disk, uint64_t offset, uint64_t length,
                     GError **errp)
{
    if (offset % disk->block_size || length % disk->block_size ||
        offset > disk->head.size || length > disk->head.size - offset) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID,
                    "range %" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT
                    " is not block aligned or not inside the %"
                    G_GUINT64_FORMAT "-byte disk", offset, length,
                    disk->head.size);
        return false;
    }
    return true;
}

bool cfs_disk_map(CfsDisk *disk, uint64_t offset, uint64_t length,
                  CfsMapping *out, GError **errp)
{
    if (!range_ok(disk, offset, length, errp) || length == 0) {
        if (length == 0) {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID, "empty range");
        }
        return false;
    }
    return cfs_index_lookup(disk->head.index, offset, length, out, errp);
}

bool cfs_disk_data_check(CfsDisk *disk, const CfsMapping *m,
                         CfsDataCheck *check, GError **errp)
{
    const CfsSums *r;
    uint64_t payload_start, nblocks;

    g_assert(m->kind == CFS_MAP_DATA && m->length % disk->block_size == 0);
    check->sums_le = NULL;
    r = cfs_sums_cached(disk, m->record_offset, errp);
    if (!r) {
        return false;
    }
    nblocks = m->length / disk->block_size;
    payload_start = m->record_offset + r->padded_len;
    if (m->log_offset < payload_start ||
        (m->log_offset - payload_start) % disk->block_size ||
        (m->log_offset - payload_start) / disk->block_size + nblocks >
            r->nblocks) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                    "index points outside the payload of the record at %"
                    G_GUINT64_FORMAT, m->record_offset);
        return false;
    }
    check->block_size = disk->block_size;
    check->first = (m->log_offset - payload_start) / disk->block_size;
    check->nblocks = nblocks;
    check->log_offset = m->log_offset;
    check->sums_le = nblocks <= CFS_DATA_CHECK_INLINE_BLOCKS ?
                     check->inline_sums : g_malloc(8 * nblocks);
    memcpy(check->sums_le, r->sums_le + 8ull * check->first, 8 * nblocks);
    return true;
}

bool cfs_data_check_verify(const CfsDataCheck *check,
                           const struct iovec *iov, int iovcnt,
                           GError **errp)
{
    return cfs_verify_sums(check->sums_le, check->block_size, check->first,
                           iov, iovcnt,
                           (uint64_t)check->nblocks * check->block_size,
                           check->log_offset, errp);
}

void cfs_data_check_clear(CfsDataCheck *check)
{
    if (check->sums_le != check->inline_sums) {
        g_free(check->sums_le);
    }
    check->sums_le = NULL;
}

void cfs_disk_set_parent(CfsDisk *disk, CfsDisk *parent)
{
    disk->parent = parent;
}

bool cfs_disk_pread(CfsDisk *disk, void *buf, uint64_t length,
                    uint64_t offset, GError **errp)
{
    uint8_t *out = buf;

    if (!range_ok(disk, offset, length, errp)) {
        return false;
    }
    while (length > 0) {
        CfsMapping m;

        if (!cfs_index_lookup(disk->head.index, offset, length, &m, errp)) {
            return false;
        }
        switch (m.kind) {
        case CFS_MAP_UNALLOCATED:
            if (disk->parent && offset < cfs_disk_size(disk->parent)) {
                uint64_t n = MIN(m.length,
                                 cfs_disk_size(disk->parent) - offset);

                if (!cfs_disk_pread(disk->parent, out, n, offset, errp)) {
                    return false;
                }
                memset(out + n, 0, m.length - n);
                break;
            }
            /* no parent means zeros */
            /* fall through */
        case CFS_MAP_ZERO:
            memset(out, 0, m.length);
            break;
        case CFS_MAP_DATA: {
            g_auto(CfsDataCheck) check = { 0 };
            struct iovec iov = { .iov_base = out, .iov_len = m.length };

            if (!cfs_disk_data_check(disk, &m, &check, errp) ||
                !cfs_io_pread(&disk->io, out, m.length, m.log_offset, errp) ||
                !cfs_data_check_verify(&check, &iov, 1, errp)) {
                return false;
            }
            break;
        }
        }
        out += m.length;
        offset += m.length;
        length -= m.length;
    }
    return true;
}

bool cfs_disk_checkpoint_due(CfsDisk *disk)
{
    return disk->writable && !disk->poisoned &&
           cfs_store_dirty_bytes(disk->nodes) > disk->dirty_limit;
}

bool cfs_disk_flush(CfsDisk *disk, GError **errp)
{
    if (!disk->writable) {
        return true;
    }
    g_assert(g_queue_is_empty(&disk->inflight));
    if (!cfs_disk_check_writable(disk, errp) || !cfs_disk_seal(disk, errp)) {
        return false;
    }
    if (disk->log_end - disk->ckpt_log_end > CFS_CHECKPOINT_INTERVAL ||
        cfs_disk_checkpoint_due(disk)) {
        /* the checkpoint flushes the data before it as well; it also
         * bounds the memory of index nodes changed since the last one */
        return cfs_disk_checkpoint(disk, errp);
    }
    if (!cfs_io_flush(&disk->io, errp)) {
        return false;
    }
    disk->durable_version = disk->head.version;
    return true;
}
