/*
 * cloudfs format core: check and repair.  Walks the whole log from its
 * start without trusting checkpoints, verifies every record and payload
 * block, compares each checkpoint with the replayed state, and accounts
 * for space.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "internal.h"

static void note(CfsCheckResult *res, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void note(CfsCheckResult *res, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_ptr_array_add(res->messages, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

static bool tags_equal(GHashTable *a, GHashTable *b)
{
    GHashTableIter it;
    gpointer value;

    if (g_hash_table_size(a) != g_hash_table_size(b)) {
        return false;
    }
    g_hash_table_iter_init(&it, a);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        const CfsTag *x = value;
        const CfsTag *y = g_hash_table_lookup(b, x->name);

        if (!y || x->version != y->version ||
            memcmp(x->version_id, y->version_id, CFS_ID_LEN)) {
            return false;
        }
    }
    return true;
}

/*
 * Compare a checkpoint with the state replayed up to it.  The index of the
 * checkpoint that opening uses is compared extent by extent, which reads
 * every node of its tree; older ones (whose trees mostly share those
 * nodes) only by their sums, unless they are small.
 */
static bool compare_checkpoint(CfsDisk *disk, uint64_t offset, CfsState *st,
                               CfsCheckResult *res, GError **errp)
{
    g_autoptr(GError) err = NULL;
    CfsState ck;
    uint64_t prev, end;
    bool same = true;

    if (!cfs_checkpoint_load(disk, offset, &ck, &prev, &end, &err)) {
        if (err->code == CFS_ERROR_IO) {
            g_propagate_error(errp, g_steal_pointer(&err));
            return false;
        }
        res->corruptions++;
        res->index_corruptions += err->code == CFS_ERROR_INDEX;
        note(res, "checkpoint at offset %" G_GUINT64_FORMAT ": %s", offset,
             err->message);
        return true;
    }
    if (offset == disk->ckpt_offset || cfs_index_count(st->index) <= 65536) {
        if (!cfs_index_equal(ck.index, st->index, &same, &err)) {
            cfs_state_clear(&ck);
            if (err->code == CFS_ERROR_IO) {
                g_propagate_error(errp, g_steal_pointer(&err));
                return false;
            }
            res->corruptions++;
            res->index_corruptions++;
            note(res, "checkpoint at offset %" G_GUINT64_FORMAT ": %s",
                 offset, err->message);
            return true;
        }
    } else {
        same = cfs_index_count(ck.index) == cfs_index_count(st->index) &&
               cfs_index_data_bytes(ck.index) ==
               cfs_index_data_bytes(st->index);
    }
    if (ck.size != st->size || !same || !tags_equal(ck.tags, st->tags)) {
        res->corruptions++;
        note(res, "checkpoint at offset %" G_GUINT64_FORMAT " does not match "
             "the state replayed from the log at version %" G_GUINT64_FORMAT,
             offset, st->version);
        res->index_corruptions++;
    }
    cfs_state_clear(&ck);
    return true;
}

/* Count valid record headers after the end of the log: a crash leaves
 * at most a few, corruption of a header can leave many */
static bool count_orphan(const CfsRecord *r, uint64_t at, void *opaque)
{
    (*(uint64_t *)opaque)++;
    return true;
}

typedef struct Range {
    uint64_t start, end;
} Range;

typedef struct RangeCtx {
    GArray *ranges;
    uint32_t block_size;
} RangeCtx;

static bool add_range(const CfsExtent *e, void *opaque)
{
    RangeCtx *ctx = opaque;

    if (e->kind == CFS_EXTENT_DATA) {
        Range r = { e->log_offset,
                    e->log_offset + (uint64_t)e->nblocks * ctx->block_size };

        g_array_append_val(ctx->ranges, r);
    }
    return true;
}

static gint range_cmp(gconstpointer a, gconstpointer b)
{
    const Range *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

/* Bytes of log that the head or any tagged version maps */
/* Add the data ranges a tagged version maps */
static bool tag_ranges(CfsDisk *disk, const CfsTag *t, RangeCtx *ctx,
                       GError **errp)
{
    CfsState st;
    bool ok;

    if (!cfs_build_state(disk, t->version, &st, errp)) {
        return false;
    }
    ok = cfs_index_foreach(st.index, add_range, ctx, errp);
    cfs_state_clear(&st);
    return ok;
}

/* head: the head's index as the log replays it (the opened one may have
 * damaged nodes), NULL if the log does not replay to the head */
static bool live_bytes(CfsDisk *disk, CfsIndex *head, CfsCheckResult *res,
                       GError **errp)
{
    RangeCtx ctx = { g_array_new(FALSE, FALSE, sizeof(Range)),
                     disk->block_size };
    g_autoptr(GPtrArray) tags = cfs_state_sorted_tags(&disk->head);
    uint64_t total = 0, end = 0;

    if (!cfs_index_foreach(head ? head : disk->head.index, add_range, &ctx,
                           errp)) {
        g_array_free(ctx.ranges, TRUE);
        return false;
    }
    for (guint i = 0; i < tags->len; i++) {
        const CfsTag *t = tags->pdata[i];
        g_autoptr(GError) err = NULL;
        bool ok;

        if (head && t->version == disk->head.version) {
            continue;   /* its extents are the head's, counted above */
        }
        ok = tag_ranges(disk, t, &ctx, &err);
        if (!ok && err->code == CFS_ERROR_INDEX) {
            /* a damaged node of an older checkpoint: count it, and take
             * the snapshot's extents from the log itself */
            res->corruptions++;
            res->index_corruptions++;
            note(res, "snapshot '%s': %s", t->name, err->message);
            g_clear_error(&err);
            disk->ignore_checkpoints = true;
            ok = tag_ranges(disk, t, &ctx, &err);
        }
        if (!ok) {
            if (err->code == CFS_ERROR_IO) {
                g_propagate_error(errp, g_steal_pointer(&err));
                g_array_free(ctx.ranges, TRUE);
                return false;
            }
            res->corruptions++;
            note(res, "snapshot '%s' (version %" G_GUINT64_FORMAT ") cannot "
                 "be rebuilt: %s", t->name, t->version, err->message);
        }
    }
    g_array_sort(ctx.ranges, range_cmp);
    for (guint i = 0; i < ctx.ranges->len; i++) {
        Range r = g_array_index(ctx.ranges, Range, i);

        if (r.start < end) {
            r.start = end;
        }
        if (r.end > r.start) {
            total += r.end - r.start;
            end = r.end;
        }
    }
    g_array_free(ctx.ranges, TRUE);
    res->live_bytes = total;
    return true;
}

static void check_slots(CfsDisk *disk, CfsCheckResult *res, bool bad[2])
{
    uint8_t *buf = cfs_alloc_aligned(2 * CFS_META_BLOCK);

    bad[0] = bad[1] = false;
    if (!cfs_io_pread(&disk->io, buf, 2 * CFS_META_BLOCK, CFS_SLOT0_OFFSET,
                      NULL)) {
        cfs_free_aligned(buf);
        return;
    }
    for (int i = 0; i < 2; i++) {
        const uint8_t *raw = buf + i * CFS_META_BLOCK;
        CfsSlot slot;
        CfsState st;
        uint64_t prev, end, offset;

        if (!cfs_slot_parse(raw, &slot)) {
            if (!cfs_is_zero(raw, sizeof(CfsSlot))) {
                bad[i] = true;
                note(res, "checkpoint slot %d is corrupt", i);
            }
            continue;
        }
        offset = GUINT64_FROM_LE(slot.checkpoint_offset);
        if (offset >= res->log_end ||
            !cfs_checkpoint_load(disk, offset, &st, &prev, &end, NULL)) {
            bad[i] = true;
            note(res, "checkpoint slot %d points at offset %" G_GUINT64_FORMAT
                 ", which holds no valid checkpoint", i, offset);
            continue;
        }
        cfs_state_clear(&st);
    }
    cfs_free_aligned(buf);
}

/* The checkpoints opening and rebuilding history use: the newest one and
 * those its chain of previous checkpoints reaches */
static GHashTable *checkpoints_in_use(CfsDisk *disk, uint64_t file_size)
{
    GHashTable *set = g_hash_table_new_full(g_int64_hash, g_int64_equal,
                                            g_free, NULL);
    uint64_t at = disk->ckpt_offset;

    while (at) {
        CfsRecord r;
        CfsCkptBody body;

        g_hash_table_add(set, g_memdup2(&at, sizeof(at)));
        if (!cfs_record_read(&disk->io, &disk->sb, at, file_size, &r, NULL)) {
            break;
        }
        memcpy(&body, cfs_rec_body(&r), sizeof(body));
        cfs_record_clear(&r);
        at = GUINT64_FROM_LE(body.prev_checkpoint) < at ?
             GUINT64_FROM_LE(body.prev_checkpoint) : 0;
    }
    return set;
}

/* Walks the log; *replayed gets the index it replays to */
static bool walk_log(CfsDisk *disk, uint64_t file_size, CfsCheckResult *res,
                     CfsIndex **replayed, GError **errp)
{
    g_autoptr(GHashTable) in_use = checkpoints_in_use(disk, file_size);
    uint64_t offset = GUINT64_FROM_LE(disk->sb.log_start);
    CfsState st;
    bool ok = true;

    cfs_state_init_base(&st, disk);
    for (;;) {
        g_autoptr(GError) err = NULL;
        CfsRecord r;
        uint16_t type;

        if (!cfs_record_read(&disk->io, &disk->sb, offset, file_size, &r,
                             &err)) {
            if (err->code == CFS_ERROR_IO) {
                g_propagate_error(errp, g_steal_pointer(&err));
                ok = false;
            }
            break;
        }
        type = GUINT16_FROM_LE(cfs_rec_hdr(&r)->type);
        if (!cfs_record_verify_payload(&disk->io, &r, disk->block_size,
                                       offset, &err)) {
            /* a checkpoint a slot reaches was flushed before the slot
             * was written: damage there is rot even at the log's end */
            bool used = type == CFS_REC_CHECKPOINT &&
                        g_hash_table_contains(in_use, &offset);

            if (!used && !cfs_successor_vouches(disk, &r, offset +
                                                cfs_rec_total(&r),
                                                file_size)) {
                cfs_record_clear(&r);
                break;      /* a torn last append */
            }
            if (type == CFS_REC_CHECKPOINT &&
                !g_hash_table_contains(in_use, &offset)) {
                /* superseded (by a repair): nothing reads it any more */
                note(res, "unused checkpoint at offset %" G_GUINT64_FORMAT
                     " is damaged (ignored): %s", offset, err->message);
            } else {
                res->corruptions++;
                /* a checkpoint holds no data: the log rebuilds it */
                res->index_corruptions += type == CFS_REC_CHECKPOINT;
                note(res, "record at offset %" G_GUINT64_FORMAT " (version %"
                     G_GUINT64_FORMAT "): %s", offset,
                     GUINT64_FROM_LE(cfs_rec_hdr(&r)->version), err->message);
            }
        } else if (type == CFS_REC_CHECKPOINT &&
                   g_hash_table_contains(in_use, &offset) &&
                   !compare_checkpoint(disk, offset, &st, res, errp)) {
            cfs_record_clear(&r);
            ok = false;
            break;
        }
        if (!cfs_state_apply(disk, &st, &r, offset, &err)) {
            note(res, "log ends at offset %" G_GUINT64_FORMAT ": %s", offset,
                 err->message);
            cfs_record_clear(&r);
            break;
        }
        if (type == CFS_REC_WRITE) {
            res->data_bytes += r.payload_len;
        }
        res->records++;
        offset += cfs_rec_total(&r);
        cfs_record_clear(&r);
    }
    res->log_end = offset;
    res->versions = st.version;
    if (ok && offset >= disk->valid_end &&
        st.version != disk->head.version) {
        res->corruptions++;
        note(res, "opening the image reaches version %" G_GUINT64_FORMAT
             " but the log replays to version %" G_GUINT64_FORMAT,
             disk->head.version, st.version);
    }
    *replayed = ok && st.version == disk->head.version ? st.index : NULL;
    if (*replayed) {
        st.index = NULL;
    }
    cfs_state_clear(&st);
    return ok;
}

/*
 * The log is intact but a checkpoint's index is not: replay the whole log
 * into a fresh index and write it as a new checkpoint, which every later
 * open uses instead of the damaged one.
 */
static bool rebuild_index(const CfsIO *io, CfsCheckResult *res,
                          GError **errp)
{
    CfsDisk *disk = cfs_disk_open(io, CFS_OPEN_RDWR | CFS_OPEN_REBUILD_INDEX,
                                  CFS_VERSION_HEAD, errp);

    if (!disk || !cfs_disk_checkpoint(disk, errp)) {
        cfs_disk_free(disk);
        return false;
    }
    if (cfs_store_dirty_bytes(disk->nodes)) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID,
                    "the rebuilt index has more nodes than one checkpoint "
                    "holds at this block size; opening rebuilds it each "
                    "time instead");
        cfs_disk_free(disk);
        return false;
    }
    cfs_disk_free(disk);
    res->repaired = true;
    res->corruptions -= res->index_corruptions;
    res->index_corruptions = 0;
    note(res, "repaired: rebuilt the index from the log in a new "
         "checkpoint");
    return true;
}

bool cfs_check(const CfsIO *io, bool repair, CfsCheckResult *res,
               GError **errp)
{
    CfsDisk *disk;
    CfsIndex *replayed = NULL;
    int64_t file_size;
    bool bad_slot[2];

    memset(res, 0, sizeof(*res));
    res->messages = g_ptr_array_new_with_free_func(g_free);
    disk = cfs_disk_open(io, CFS_OPEN_FOR_CHECK, CFS_VERSION_HEAD, errp);
    if (!disk) {
        return false;
    }
    file_size = io->size(io->opaque);
    res->file_size = file_size;
    if (disk->ignore_checkpoints) {
        res->corruptions++;
        res->index_corruptions++;
        note(res, "the index of the newest checkpoint is damaged; opening "
             "rebuilds it from the log each time");
    }
    if (!walk_log(disk, file_size, res, &replayed, errp) ||
        !live_bytes(disk, replayed, res, errp)) {
        cfs_index_free(replayed);
        cfs_disk_free(disk);
        return false;
    }
    cfs_index_free(replayed);
    res->leaked_bytes = res->data_bytes > res->live_bytes ?
                        res->data_bytes - res->live_bytes : 0;
    if (disk->valid_end > res->log_end) {
        /* a damaged record before the checkpoint stops the walk early,
         * but the log goes on: never cut it there */
        res->corruptions++;
        note(res, "the log is damaged at offset %" G_GUINT64_FORMAT "; the "
             "checkpoint carries the disk on to offset %" G_GUINT64_FORMAT
             " (version %" G_GUINT64_FORMAT "); history before it is "
             "partly unreadable", res->log_end, disk->valid_end,
             disk->head.version);
        res->log_end = disk->valid_end;
        res->versions = disk->head.version;
    }
    if (res->file_size > res->log_end) {
        uint64_t orphans = 0;
        uint64_t data_end = cfs_scan_tail(io, &disk->sb, res->log_end,
                                          file_size, count_orphan, &orphans);

        res->torn_bytes = data_end - res->log_end;
        res->unused_bytes = file_size - data_end;
        if (res->torn_bytes) {
            note(res, "log ends at offset %" G_GUINT64_FORMAT "; %"
                 G_GUINT64_FORMAT " bytes after it are not part of it (a "
                 "torn write)", res->log_end, res->torn_bytes);
        }
        if (res->unused_bytes) {
            note(res, "the last %" G_GUINT64_FORMAT " bytes of the file are "
                 "zeros the log did not reach (space grown ahead of it by a "
                 "writer that did not close the image)", res->unused_bytes);
        }
        if (orphans) {
            note(res, "%" G_GUINT64_FORMAT " valid record headers follow the "
                 "end of the log: history after it may have been cut by "
                 "corruption", orphans);
        }
    }
    check_slots(disk, res, bad_slot);
    res->corruptions += bad_slot[0] + bad_slot[1];

    if (repair && (res->torn_bytes || res->unused_bytes || bad_slot[0] ||
                   bad_slot[1])) {
        int ret = 0;

        for (int i = 0; i < 2; i++) {
            if (bad_slot[i] && !cfs_slot_clear(io, i, errp)) {
                cfs_disk_free(disk);
                return false;
            }
        }
        if (res->torn_bytes || res->unused_bytes) {
            ret = io->truncate(io->opaque, res->log_end);
        }
        if (ret < 0) {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_IO,
                        "cannot cut the torn tail: %s", g_strerror(-ret));
            cfs_disk_free(disk);
            return false;
        }
        if (!cfs_io_flush(io, errp)) {
            cfs_disk_free(disk);
            return false;
        }
        res->repaired = true;
        if (res->torn_bytes || res->unused_bytes) {
            note(res, "repaired: cut %" G_GUINT64_FORMAT " bytes after the "
                 "end of the log", res->torn_bytes + res->unused_bytes);
        }
        if (bad_slot[0] || bad_slot[1]) {
            note(res, "repaired: cleared bad checkpoint slots");
            res->corruptions -= bad_slot[0] + bad_slot[1];
        }
    }
    /* after the slots are cleared, so that the new checkpoint's slot is
     * not one of those */
    if (repair && res->index_corruptions &&
        disk->valid_end == res->log_end) {
        cfs_disk_free(disk);
        return rebuild_index(io, res, errp);
    }
    cfs_disk_free(disk);
    return true;
}

void cfs_check_result_clear(CfsCheckResult *res)
{
    if (res->messages) {
        g_ptr_array_free(res->messages, TRUE);
    }
    memset(res, 0, sizeof(*res));
}
