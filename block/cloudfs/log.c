/*
 * cloudfs format core: applying records to a version's state, recovery
 * replay, and rebuilding any retained version from checkpoints and the log.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "internal.h"

/* 64 MiB of checksums cover 32 GiB of guest data at 4 KiB blocks */
#define SUMS_CACHE_BYTES (64ull << 20)

static void tag_free(gpointer p)
{
    CfsTag *t = p;

    g_free(t->name);
    g_free(t);
}

static GHashTable *tags_new(void)
{
    return g_hash_table_new_full(g_str_hash, g_str_equal, NULL, tag_free);
}

void cfs_state_init_empty(CfsState *st, CfsDisk *disk)
{
    memset(st, 0, sizeof(*st));
    st->index = cfs_index_new(disk->nodes, disk->block_size);
    st->tags = tags_new();
}

void cfs_state_init_base(CfsState *st, CfsDisk *disk)
{
    cfs_state_init_empty(st, disk);
    st->size = GUINT64_FROM_LE(disk->sb.initial_size);
    memcpy(st->version_id, disk->sb.disk_id, CFS_ID_LEN);
}

void cfs_state_copy(CfsState *dst, const CfsState *src)
{
    GHashTableIter it;
    gpointer value;

    dst->index = cfs_index_copy(src->index);
    dst->size = src->size;
    dst->version = src->version;
    memcpy(dst->version_id, src->version_id, CFS_ID_LEN);
    dst->tags = tags_new();
    g_hash_table_iter_init(&it, src->tags);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        CfsTag *t = g_memdup2(value, sizeof(CfsTag));

        t->name = g_strdup(t->name);
        g_hash_table_insert(dst->tags, t->name, t);
    }
}

void cfs_state_clear(CfsState *st)
{
    cfs_index_free(st->index);
    if (st->tags) {
        g_hash_table_destroy(st->tags);
    }
    memset(st, 0, sizeof(*st));
}

static gint tag_by_version(gconstpointer a, gconstpointer b)
{
    const CfsTag *x = *(CfsTag * const *)a;
    const CfsTag *y = *(CfsTag * const *)b;

    return x->version != y->version ? (x->version < y->version ? -1 : 1)
                                    : strcmp(x->name, y->name);
}

GPtrArray *cfs_state_sorted_tags(const CfsState *st)
{
    GPtrArray *arr = g_ptr_array_new();
    GHashTableIter it;
    gpointer value;

    g_hash_table_iter_init(&it, st->tags);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        g_ptr_array_add(arr, value);
    }
    g_ptr_array_sort(arr, tag_by_version);
    return arr;
}

static bool bad(GError **errp, uint64_t offset, const char *why)
{
    g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                "record at offset %" G_GUINT64_FORMAT " %s", offset, why);
    return false;
}

/* Check every extent of a WRITE before any of them changes the index */
static bool write_fits(CfsDisk *disk, const CfsState *st, const CfsRecord *r,
                       uint64_t offset, GError **errp)
{
    uint32_t n = GUINT32_FROM_LE(cfs_rec_hdr(r)->body_len) /
                 sizeof(CfsWriteExtent);

    for (uint32_t i = 0; i < n; i++) {
        CfsWriteExtent we;
        uint64_t start, len;

        memcpy(&we, cfs_rec_body(r) + i * sizeof(we), sizeof(we));
        start = GUINT64_FROM_LE(we.guest_offset);
        len = (uint64_t)GUINT32_FROM_LE(we.nblocks) * disk->block_size;
        if (start >= st->size || len > st->size - start) {
            return bad(errp, offset, "writes beyond the end of the disk");
        }
    }
    return true;
}

bool cfs_index_apply_extents(CfsIndex *idx, uint32_t block_size,
                             const CfsWriteExtent *extents, uint32_t n,
                             uint64_t record_offset, uint64_t data_at,
                             GError **errp)
{
    for (uint32_t i = 0; i < n; i++) {
        CfsWriteExtent we;
        CfsExtent e = { 0 };

        memcpy(&we, &extents[i], sizeof(we));
        e.guest_offset = GUINT64_FROM_LE(we.guest_offset);
        e.nblocks = GUINT32_FROM_LE(we.nblocks);
        e.kind = GUINT16_FROM_LE(we.kind);
        if (e.kind == CFS_EXTENT_DATA) {
            e.log_offset = data_at;
            e.record_offset = record_offset;
            data_at += (uint64_t)e.nblocks * block_size;
        }
        if (!cfs_index_set(idx, &e, errp)) {
            return false;
        }
    }
    return true;
}

static bool apply_write(CfsDisk *disk, CfsState *st, const CfsRecord *r,
                        uint64_t offset, GError **errp)
{
    uint32_t n = GUINT32_FROM_LE(cfs_rec_hdr(r)->body_len) /
                 sizeof(CfsWriteExtent);

    return cfs_index_apply_extents(st->index, disk->block_size,
                                   (const CfsWriteExtent *)cfs_rec_body(r), n,
                                   offset, offset + r->padded_len, errp);
}

static char *body_name(const CfsRecord *r, size_t skip, uint16_t len_le)
{
    return g_strndup((const char *)cfs_rec_body(r) + skip,
                     GUINT16_FROM_LE(len_le));
}

bool cfs_state_check(CfsDisk *disk, const CfsState *st, const CfsRecord *r,
                     uint64_t offset, GError **errp)
{
    const CfsRecordHeader *h = cfs_rec_hdr(r);
    uint64_t version = GUINT64_FROM_LE(h->version);

    if (!cfs_rec_is_chain(r)) {
        return true;
    }
    if (version != st->version + 1 ||
        memcmp(h->prev_version_id, st->version_id, CFS_ID_LEN)) {
        return bad(errp, offset, "does not continue the version chain");
    }
    switch (GUINT16_FROM_LE(h->type)) {
    case CFS_REC_WRITE:
        return write_fits(disk, st, r, offset, errp);
    case CFS_REC_TAG: {
        CfsTagBody b;
        g_autofree char *name = NULL;

        memcpy(&b, cfs_rec_body(r), sizeof(b));
        name = body_name(r, sizeof(b), b.name_len);
        if (GUINT64_FROM_LE(b.target_version) != st->version ||
            memcmp(b.target_version_id, st->version_id, CFS_ID_LEN)) {
            return bad(errp, offset, "tags a version that is not current");
        }
        if (g_hash_table_contains(st->tags, name) ||
            !cfs_tag_name_valid(name, NULL)) {
            return bad(errp, offset, "has a duplicate or invalid tag name");
        }
        return true;
    }
    case CFS_REC_UNTAG: {
        CfsUntagBody b;
        g_autofree char *name = NULL;

        memcpy(&b, cfs_rec_body(r), sizeof(b));
        name = body_name(r, sizeof(b), b.name_len);
        if (!g_hash_table_contains(st->tags, name)) {
            return bad(errp, offset, "drops a tag that does not exist");
        }
        return true;
    }
    case CFS_REC_REVERT: {
        CfsRevertBody b;

        memcpy(&b, cfs_rec_body(r), sizeof(b));
        if (GUINT64_FROM_LE(b.target_version) >= version) {
            return bad(errp, offset, "reverts to a later version");
        }
        return true;    /* the target is checked when it is rebuilt */
    }
    default:
        return true;
    }
}

bool cfs_state_apply(CfsDisk *disk, CfsState *st, const CfsRecord *r,
                     uint64_t offset, GError **errp)
{
    const CfsRecordHeader *h = cfs_rec_hdr(r);
    uint16_t type = GUINT16_FROM_LE(h->type);
    uint64_t version = GUINT64_FROM_LE(h->version);

    if (type == CFS_REC_CHECKPOINT) {
        if (version != st->version ||
            memcmp(h->prev_version_id, st->version_id, CFS_ID_LEN)) {
            return bad(errp, offset, "is a checkpoint of another version");
        }
        return true;
    }
    if (!cfs_state_check(disk, st, r, offset, errp)) {
        return false;
    }
    switch (type) {
    case CFS_REC_WRITE:
        if (!apply_write(disk, st, r, offset, errp)) {
            return false;
        }
        break;
    case CFS_REC_TAG: {
        CfsTagBody b;
        CfsTag *t;

        memcpy(&b, cfs_rec_body(r), sizeof(b));
        t = g_new0(CfsTag, 1);
        t->name = body_name(r, sizeof(b), b.name_len);
        t->version = st->version;
        memcpy(t->version_id, st->version_id, CFS_ID_LEN);
        t->timestamp_ns = GUINT64_FROM_LE(h->timestamp_ns);
        g_hash_table_insert(st->tags, t->name, t);
        break;
    }
    case CFS_REC_UNTAG: {
        CfsUntagBody b;
        g_autofree char *name = NULL;

        memcpy(&b, cfs_rec_body(r), sizeof(b));
        name = body_name(r, sizeof(b), b.name_len);
        g_hash_table_remove(st->tags, name);
        break;
    }
    case CFS_REC_REVERT: {
        CfsRevertBody b;
        CfsState target = { 0 };

        memcpy(&b, cfs_rec_body(r), sizeof(b));
        if (!cfs_build_state(disk, GUINT64_FROM_LE(b.target_version),
                             &target, errp)) {
            /* the history it needs is damaged: the record cannot apply */
            if (errp && *errp && (*errp)->code != CFS_ERROR_IO &&
                (*errp)->code != CFS_ERROR_INDEX) {
                (*errp)->code = CFS_ERROR_CORRUPT;
            }
            return false;
        }
        if (memcmp(target.version_id, b.target_version_id, CFS_ID_LEN)) {
            cfs_state_clear(&target);
            return bad(errp, offset, "reverts to an unknown version id");
        }
        /* the content and size come back; the names stay as they are */
        cfs_index_free(st->index);
        st->index = target.index;
        st->size = target.size;
        target.index = NULL;
        cfs_state_clear(&target);
        break;
    }
    case CFS_REC_RESIZE: {
        CfsResizeBody b;

        memcpy(&b, cfs_rec_body(r), sizeof(b));
        if (!cfs_index_truncate(st->index, GUINT64_FROM_LE(b.new_size),
                                errp)) {
            return false;
        }
        st->size = GUINT64_FROM_LE(b.new_size);
        break;
    }
    default:
        return bad(errp, offset, "has an unknown type");
    }
    st->version = version;
    memcpy(st->version_id, r->id, CFS_ID_LEN);
    return true;
}

uint64_t cfs_checkpoint_before(CfsDisk *disk, uint64_t version,
                               uint64_t *end)
{
    uint64_t ckpt = disk->ckpt_offset;
    int64_t file_size = disk->io.size(disk->io.opaque);

    /* A bad link ends the walk: the log from its start always works */
    while (ckpt && file_size > 0) {
        CfsRecord r;
        CfsCkptBody body;
        uint64_t older;

        if (!cfs_record_read(&disk->io, &disk->sb, ckpt, file_size, &r,
                             NULL)) {
            break;
        }
        if (GUINT64_FROM_LE(cfs_rec_hdr(&r)->version) <= version) {
            *end = ckpt + cfs_rec_total(&r);
            cfs_record_clear(&r);
            return ckpt;
        }
        memcpy(&body, cfs_rec_body(&r), sizeof(body));
        older = GUINT64_FROM_LE(body.prev_checkpoint);
        cfs_record_clear(&r);
        /* the chain goes backwards, or a crafted one loops forever */
        ckpt = older < ckpt ? older : 0;
    }
    *end = GUINT64_FROM_LE(disk->sb.log_start);
    return 0;
}

bool cfs_find_scan_start(CfsDisk *disk, uint64_t version, CfsState *st,
                         uint64_t *offset, GError **errp)
{
    uint64_t prev;
    uint64_t ckpt = disk->ignore_checkpoints ? 0 :
                    cfs_checkpoint_before(disk, version, offset);

    if (ckpt && cfs_checkpoint_load(disk, ckpt, st, &prev, offset, NULL)) {
        return true;
    }
    cfs_state_init_base(st, disk);
    *offset = GUINT64_FROM_LE(disk->sb.log_start);
    return true;
}

static bool build_state_once(CfsDisk *disk, uint64_t version, CfsState *out,
                             GError **errp)
{
    int64_t file_size = disk->io.size(disk->io.opaque);
    uint64_t offset;

    if (!cfs_find_scan_start(disk, version, out, &offset, errp)) {
        return false;
    }
    while (out->version < version) {
        CfsRecord r;
        bool ok;

        if (offset >= disk->valid_end ||
            !cfs_record_read(&disk->io, &disk->sb, offset, file_size, &r,
                             NULL)) {
            cfs_state_clear(out);
            g_set_error(errp, CFS_ERROR, CFS_ERROR_NOT_FOUND,
                        "version %" G_GUINT64_FORMAT " is not in the log",
                        version);
            return false;
        }
        ok = cfs_state_apply(disk, out, &r, offset, errp);
        offset += cfs_rec_total(&r);
        cfs_record_clear(&r);
        if (!ok) {
            cfs_state_clear(out);
            return false;
        }
    }
    return true;
}

bool cfs_build_state(CfsDisk *disk, uint64_t version, CfsState *out,
                     GError **errp)
{
    g_autoptr(GError) local_err = NULL;

    /* the head's index holds the open record's batches too */
    if (!disk->historical && version == disk->head.version &&
        !disk->open.offset) {
        cfs_state_copy(out, &disk->head);
        return true;
    }
    if (build_state_once(disk, version, out, &local_err)) {
        return true;
    }
    if (local_err->code != CFS_ERROR_INDEX || disk->ignore_checkpoints) {
        g_propagate_error(errp, g_steal_pointer(&local_err));
        return false;
    }
    /* a checkpoint's index is damaged; the log before it is not */
    disk->ignore_checkpoints = true;
    return build_state_once(disk, version, out, errp);
}

/*
 * A record whose header is intact but whose payload fails its checksums is
 * either a torn append of a crash or data that rotted after it was
 * flushed.  It is rot exactly when a later record, reached through a
 * chain of intact headers, was written by a writer that knew it durable:
 * then it is kept (reads of its bad blocks fail), otherwise the log ends
 * before it.
 */
bool cfs_successor_vouches(CfsDisk *disk, const CfsRecord *r, uint64_t next,
                           uint64_t file_size)
{
    uint64_t version = GUINT64_FROM_LE(cfs_rec_hdr(r)->version);
    uint8_t id[CFS_ID_LEN];

    memcpy(id, cfs_rec_is_chain(r) ? r->id : cfs_rec_hdr(r)->prev_version_id,
           CFS_ID_LEN);
    for (;;) {
        CfsRecord n;
        bool chains, vouches;

        if (!cfs_record_read(&disk->io, &disk->sb, next, file_size, &n,
                             NULL)) {
            return false;
        }
        chains = !memcmp(cfs_rec_hdr(&n)->prev_version_id, id, CFS_ID_LEN);
        vouches = GUINT64_FROM_LE(cfs_rec_hdr(&n)->durable_version) >= version;
        if (cfs_rec_is_chain(&n)) {
            memcpy(id, n.id, CFS_ID_LEN);
        }
        next += cfs_rec_total(&n);
        cfs_record_clear(&n);
        if (!chains) {
            return false;
        }
        if (vouches) {
            return true;
        }
    }
}

bool cfs_replay(CfsDisk *disk, uint64_t offset, GError **errp)
{
    int64_t file_size = disk->io.size(disk->io.opaque);

    if (file_size < 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "cannot get image size: %s",
                    g_strerror(-file_size));
        return false;
    }
    /* a REVERT replayed below rebuilds older versions from the log
     * before it, which must count as valid */
    disk->valid_end = offset;
    for (;;) {
        g_autoptr(GError) local_err = NULL;
        CfsRecord r;
        bool ok;

        if (!cfs_record_read(&disk->io, &disk->sb, offset, file_size, &r,
                             &local_err)) {
            if (local_err->code == CFS_ERROR_IO) {
                g_propagate_error(errp, g_steal_pointer(&local_err));
                return false;
            }
            break;      /* the end of the log */
        }
        if (!cfs_record_verify_payload(&disk->io, &r, disk->block_size,
                                       offset, &local_err)) {
            if (local_err->code == CFS_ERROR_IO ||
                !cfs_successor_vouches(disk, &r, offset + cfs_rec_total(&r),
                                  file_size)) {
                cfs_record_clear(&r);
                if (local_err->code == CFS_ERROR_IO) {
                    g_propagate_error(errp, g_steal_pointer(&local_err));
                    return false;
                }
                break;
            }
            disk->corrupt_records++;
            g_clear_error(&local_err);
        }
        ok = cfs_state_apply(disk, &disk->head, &r, offset, &local_err);
        if (ok) {
            offset += cfs_rec_total(&r);
        }
        cfs_record_clear(&r);
        if (!ok) {
            /* a damaged index node is not the end of the log: the
             * caller rebuilds the index without checkpoints */
            if (local_err->code != CFS_ERROR_CORRUPT) {
                g_propagate_error(errp, g_steal_pointer(&local_err));
                return false;
            }
            break;
        }
        disk->valid_end = offset;
    }
    disk->valid_end = offset;
    return true;
}

typedef struct IdCollector {
    GArray *ids;
} IdCollector;

static bool collect_id(const CfsRecordInfo *rec, void *opaque, GError **errp)
{
    IdCollector *c = opaque;

    if (rec->type != CFS_REC_CHECKPOINT) {
        g_array_append_vals(c->ids, rec->version_id, 1);
    }
    return true;
}

typedef struct { uint8_t b[CFS_ID_LEN]; } IdBytes;

bool cfs_version_id_at(CfsDisk *disk, uint64_t version,
                       uint8_t id[CFS_ID_LEN], GError **errp)
{
    if (version == disk->head.version) {
        memcpy(id, disk->head.version_id, CFS_ID_LEN);
        return true;
    }
    if (version == 0) {
        memcpy(id, disk->sb.disk_id, CFS_ID_LEN);
        return true;
    }
    if (!disk->version_ids || version >= disk->version_ids->len) {
        IdCollector c;

        if (disk->version_ids) {
            g_array_free(disk->version_ids, TRUE);
        }
        disk->version_ids = g_array_new(FALSE, FALSE, sizeof(IdBytes));
        g_array_append_vals(disk->version_ids, disk->sb.disk_id, 1);
        c.ids = disk->version_ids;
        if (!cfs_disk_walk(disk, collect_id, &c, errp)) {
            return false;
        }
    }
    if (version >= disk->version_ids->len) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_NOT_FOUND,
                    "version %" G_GUINT64_FORMAT " does not exist",
                    version);
        return false;
    }
    memcpy(id, &g_array_index(disk->version_ids, IdBytes, version),
           CFS_ID_LEN);
    return true;
}

void cfs_sums_remember(CfsDisk *disk, uint64_t record_offset,
                       const CfsRecord *r)
{
    uint32_t nblocks = GUINT32_FROM_LE(cfs_rec_hdr(r)->payload_blocks);
    size_t bytes = sizeof(CfsSums) + 8ull * nblocks;
    CfsSums *sums;

    if (nblocks == 0 || !cfs_rec_is_chain(r)) {
        return;     /* only WRITE records hold guest data */
    }
    if (disk->sums_cache_bytes + bytes > SUMS_CACHE_BYTES) {
        /* simple and bounded; the working set refills it */
        g_hash_table_remove_all(disk->sums_cache);
        disk->sums_cache_bytes = 0;
    }
    sums = g_malloc(bytes);
    sums->padded_len = r->padded_len;
    sums->nblocks = nblocks;
    memcpy(sums->sums_le, cfs_rec_sums(r), 8ull * nblocks);
    g_hash_table_replace(disk->sums_cache,
                         g_memdup2(&record_offset, sizeof(record_offset)),
                         sums);
    disk->sums_cache_bytes += bytes;
}

bool cfs_disk_record_known(CfsDisk *disk, uint64_t record_offset)
{
    return (disk->open.offset && record_offset == disk->open.offset) ||
           (disk->frozen.offset && record_offset == disk->frozen.offset) ||
           g_hash_table_contains(disk->sums_cache, &record_offset);
}

typedef struct BufferFetch {
    const uint8_t *buf;
    size_t len;
    uint64_t base;
    const CfsIO *io;
} BufferFetch;

/* From the caller's buffer (if any), and from the file past its end */
static bool fetch_buffer(void *dst, size_t len, uint64_t at, void *opaque,
                         GError **errp)
{
    BufferFetch *f = opaque;
    uint64_t rel = at - f->base;

    if (rel + len <= f->len) {
        memcpy(dst, f->buf + rel, len);
        return true;
    }
    return cfs_io_pread(f->io, dst, len, at, errp);
}

bool cfs_disk_learn_record(CfsDisk *disk, uint64_t record_offset,
                           const void *buf, size_t len, GError **errp)
{
    BufferFetch f = { .buf = buf, .len = len, .base = record_offset,
                      .io = &disk->io };
    int64_t file_size = disk->io.size(disk->io.opaque);
    CfsRecord r;

    if (cfs_disk_record_known(disk, record_offset)) {
        return true;
    }
    if (file_size < 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "cannot get image size: %s",
                    g_strerror(-file_size));
        return false;
    }
    if (record_offset > (uint64_t)file_size) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                    "index points beyond the end of the file at offset %"
                    G_GUINT64_FORMAT, record_offset);
        return false;
    }
    if (!cfs_record_load(&disk->sb, fetch_buffer, &f, record_offset,
                         file_size, &r, errp)) {
        return false;
    }
    cfs_sums_remember(disk, record_offset, &r);
    cfs_record_clear(&r);
    return true;
}

const CfsSums *cfs_sums_cached(CfsDisk *disk, uint64_t record_offset,
                               GError **errp)
{
    const CfsSums *sums;

    /* their headers are not written yet */
    if (disk->open.offset && record_offset == disk->open.offset) {
        return disk->open.view;
    }
    if (disk->frozen.offset && record_offset == disk->frozen.offset) {
        return disk->frozen.view;
    }
    if (!cfs_disk_learn_record(disk, record_offset, NULL, 0, errp)) {
        return NULL;
    }
    sums = g_hash_table_lookup(disk->sums_cache, &record_offset);
    if (!sums) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                    "index points at a record without data at offset %"
                    G_GUINT64_FORMAT, record_offset);
    }
    return sums;
}

bool cfs_disk_walk(CfsDisk *disk, CfsRecordFn fn, void *opaque,
                   GError **errp)
{
    int64_t file_size = disk->io.size(disk->io.opaque);
    uint64_t offset = GUINT64_FROM_LE(disk->sb.log_start);

    while (offset < disk->valid_end) {
        CfsRecord r;
        CfsRecordInfo info;
        const CfsRecordHeader *h;
        bool more;

        if (!cfs_record_read(&disk->io, &disk->sb, offset, file_size, &r,
                             errp)) {
            return false;
        }
        h = cfs_rec_hdr(&r);
        info = (CfsRecordInfo) {
            .offset = offset,
            .total_len = cfs_rec_total(&r),
            .type = GUINT16_FROM_LE(h->type),
            .version = GUINT64_FROM_LE(h->version),
            .timestamp_ns = GUINT64_FROM_LE(h->timestamp_ns),
            .payload_blocks = GUINT32_FROM_LE(h->payload_blocks),
            .header = h,
        };
        /* a checkpoint names the version it describes */
        memcpy(info.version_id, cfs_rec_is_chain(&r) ? r.id
                                : h->prev_version_id, CFS_ID_LEN);
        memcpy(info.prev_version_id, h->prev_version_id, CFS_ID_LEN);
        more = fn(&info, opaque, errp);
        offset += cfs_rec_total(&r);
        cfs_record_clear(&r);
        if (!more) {
            return errp == NULL || *errp == NULL;
        }
    }
    return true;
}
