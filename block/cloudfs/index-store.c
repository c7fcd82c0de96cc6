/*
 * cloudfs format core: index nodes in memory and in the file — reference
 * counting, the bounded cache of clean nodes, reading and validating a
 * node, and writing a tree's dirty nodes for a checkpoint.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "hash.h"
#include "index-node.h"

/* 16 MiB of clean nodes: ~500k extents' leaves, all inner nodes of far
 * more; the working set of a guest refills it */
#define CFS_NODE_CACHE_BYTES (16ull << 20)

/* ---- nodes in memory --------------------------------------------------- */

size_t cfs_node_bytes(uint16_t level)
{
    return G_STRUCT_OFFSET(CfsNode, u) +
           (level ? sizeof(CfsChild) * CFS_INNER_MAX
                  : sizeof(CfsExtent) * CFS_LEAF_MAX);
}

static CfsNode *node_alloc(CfsNodeStore *store, uint16_t level)
{
    CfsNode *n = g_malloc0(cfs_node_bytes(level));

    n->refs = 1;
    n->level = level;
    n->store = store;
    n->lru.data = n;
    return n;
}

CfsNode *cfs_node_new(CfsNodeStore *store, uint16_t level)
{
    CfsNode *n = node_alloc(store, level);

    if (store) {
        store->dirty_bytes += cfs_node_bytes(level);
    }
    return n;
}

CfsNode *cfs_node_ref(CfsNode *n)
{
    n->refs++;
    return n;
}

void cfs_node_unref(CfsNode *n)
{
    g_assert(n->refs > 0);
    if (--n->refs > 0) {
        return;
    }
    if (n->level) {
        for (int i = 0; i < n->count; i++) {
            if (n->u.kid[i].ptr) {
                cfs_node_unref(n->u.kid[i].ptr);
            }
        }
    }
    if (!n->offset && n->store) {
        n->store->dirty_bytes -= cfs_node_bytes(n->level);
    }
    g_free(n);
}

CfsNode *cfs_node_clone(CfsNodeStore *store, const CfsNode *n)
{
    CfsNode *copy = cfs_node_new(store, n->level);

    copy->count = n->count;
    if (n->level) {
        memcpy(copy->u.kid, n->u.kid, n->count * sizeof(CfsChild));
        for (int i = 0; i < n->count; i++) {
            if (copy->u.kid[i].ptr) {
                cfs_node_ref(copy->u.kid[i].ptr);
            }
        }
    } else {
        memcpy(copy->u.ext, n->u.ext, n->count * sizeof(CfsExtent));
    }
    return copy;
}

/* ---- the store: a bounded LRU cache of clean nodes ---------------------- */

CfsNodeStore *cfs_store_new(const CfsIO *io, uint32_t block_size,
                            uint64_t log_start)
{
    CfsNodeStore *s = g_new0(CfsNodeStore, 1);

    s->io = *io;
    s->block_size = block_size;
    s->log_start = log_start;
    s->by_offset = g_hash_table_new(g_int64_hash, g_int64_equal);
    g_queue_init(&s->lru);
    s->cache_limit = CFS_NODE_CACHE_BYTES;
    return s;
}

static void evict(CfsNodeStore *s, CfsNode *n)
{
    g_queue_unlink(&s->lru, &n->lru);
    g_hash_table_remove(s->by_offset, &n->offset);
    s->cached_bytes -= cfs_node_bytes(n->level);
    n->cached = false;
    cfs_node_unref(n);
}

void cfs_store_free(CfsNodeStore *s)
{
    if (!s) {
        return;
    }
    while (s->lru.tail) {
        evict(s, s->lru.tail->data);
    }
    g_hash_table_destroy(s->by_offset);
    g_free(s);
}

uint64_t cfs_store_dirty_bytes(const CfsNodeStore *s)
{
    return s->dirty_bytes;
}

uint64_t cfs_store_cached_bytes(const CfsNodeStore *s)
{
    return s->cached_bytes;
}

/* Hand a clean node to the cache (which takes a reference) */
static void store_remember(CfsNodeStore *s, CfsNode *n)
{
    g_assert(n->offset);
    if (n->cached || g_hash_table_contains(s->by_offset, &n->offset)) {
        return;
    }
    n->cached = true;
    g_hash_table_insert(s->by_offset, &n->offset, cfs_node_ref(n));
    g_queue_push_head_link(&s->lru, &n->lru);
    s->cached_bytes += cfs_node_bytes(n->level);
    /* nodes in use elsewhere stay alive through their references */
    while (s->cached_bytes > s->cache_limit && s->lru.tail != &n->lru) {
        evict(s, s->lru.tail->data);
    }
}

/* ---- nodes in the file --------------------------------------------------- */

static uint64_t node_checksum(const uint8_t *raw, uint64_t offset)
{
    uint8_t copy[CFS_NODE_SIZE];

    memcpy(copy, raw, CFS_NODE_SIZE);
    memset(copy + G_STRUCT_OFFSET(CfsNodeHeader, checksum), 0, 8);
    return XXH3_64bits_withSeed(copy, CFS_NODE_SIZE, offset);
}

static bool node_bad(GError **errp, uint64_t offset, const char *why)
{
    g_set_error(errp, CFS_ERROR, CFS_ERROR_INDEX,
                "index node at offset %" G_GUINT64_FORMAT " is corrupt: %s; "
                "'cloudfs check --repair' rebuilds the index from the log",
                offset, why);
    return false;
}

static bool leaf_decode(CfsNodeStore *s, CfsNode *n, const uint8_t *raw,
                        GError **errp)
{
    uint64_t prev_end = 0;

    for (int i = 0; i < n->count; i++) {
        CfsCkptExtent ce;
        CfsExtent *e = &n->u.ext[i];
        uint64_t len;

        memcpy(&ce, raw + sizeof(CfsNodeHeader) + i * sizeof(ce), sizeof(ce));
        *e = (CfsExtent) {
            .guest_offset = GUINT64_FROM_LE(ce.guest_offset),
            .log_offset = GUINT64_FROM_LE(ce.log_offset),
            .record_offset = GUINT64_FROM_LE(ce.record_offset),
            .nblocks = GUINT32_FROM_LE(ce.nblocks),
            .kind = GUINT16_FROM_LE(ce.kind),
        };
        len = (uint64_t)e->nblocks * s->block_size;
        if ((e->kind != CFS_EXTENT_DATA && e->kind != CFS_EXTENT_ZERO) ||
            ce.reserved || e->nblocks == 0 ||
            e->nblocks > CFS_EXTENT_MAX_BLOCKS ||
            e->guest_offset % s->block_size ||
            e->guest_offset > CFS_MAX_VIRTUAL_SIZE - len ||
            (i > 0 && e->guest_offset < prev_end)) {
            return node_bad(errp, n->offset, "bad or overlapping extent");
        }
        if (e->kind == CFS_EXTENT_ZERO ? e->log_offset || e->record_offset
            : e->log_offset % s->block_size ||
              e->record_offset < s->log_start ||
              e->log_offset <= e->record_offset ||
              e->log_offset > n->offset || len > n->offset - e->log_offset) {
            /* data always lies before the checkpoint that maps it */
            return node_bad(errp, n->offset, "extent points at a bad place");
        }
        prev_end = e->guest_offset + len;
    }
    return true;
}

static bool inner_decode(CfsNodeStore *s, CfsNode *n, const uint8_t *raw,
                         GError **errp)
{
    for (int i = 0; i < n->count; i++) {
        CfsNodeChild nc;
        CfsChild *k = &n->u.kid[i];

        memcpy(&nc, raw + sizeof(CfsNodeHeader) + i * sizeof(nc), sizeof(nc));
        k->key = GUINT64_FROM_LE(nc.key);
        k->offset = GUINT64_FROM_LE(nc.offset);
        k->ptr = NULL;
        if ((i > 0 && k->key <= n->u.kid[i - 1].key) ||
            k->offset < s->log_start ||
            k->offset > n->offset - CFS_NODE_SIZE) {
            /* children are written before their parents */
            return node_bad(errp, n->offset, "bad child");
        }
    }
    return true;
}

static CfsNode *node_read(CfsNodeStore *s, uint64_t offset, GError **errp)
{
    int64_t file_size = s->io.size(s->io.opaque);
    g_autofree uint8_t *raw = NULL;
    CfsNodeHeader h;
    CfsNode *n;
    size_t used;
    bool ok;

    if (offset <= s->log_start || file_size < 0 ||
        offset > (uint64_t)file_size - MIN((uint64_t)file_size,
                                           CFS_NODE_SIZE)) {
        node_bad(errp, offset, "it lies outside the log");
        return NULL;
    }
    raw = cfs_alloc_aligned(CFS_NODE_SIZE);
    if (!cfs_io_pread(&s->io, raw, CFS_NODE_SIZE, offset, errp)) {
        cfs_free_aligned(g_steal_pointer(&raw));
        return NULL;
    }
    s->loads++;
    memcpy(&h, raw, sizeof(h));
    if (GUINT32_FROM_LE(h.magic) != CFS_NODE_MAGIC ||
        GUINT64_FROM_LE(h.checksum) != node_checksum(raw, offset)) {
        cfs_free_aligned(g_steal_pointer(&raw));
        node_bad(errp, offset, "bad magic or checksum");
        return NULL;
    }
    n = node_alloc(s, GUINT16_FROM_LE(h.level));
    n->offset = offset;
    n->count = GUINT16_FROM_LE(h.count);
    used = sizeof(h) + n->count * (n->level ? sizeof(CfsNodeChild)
                                            : sizeof(CfsCkptExtent));
    if (n->level > CFS_NODE_MAX_LEVEL || n->count == 0 ||
        n->count > (n->level ? CFS_INNER_MAX : CFS_LEAF_MAX) ||
        !cfs_is_zero(raw + used, CFS_NODE_SIZE - used)) {
        ok = node_bad(errp, offset, "bad level, count or padding");
    } else {
        ok = n->level ? inner_decode(s, n, raw, errp)
                      : leaf_decode(s, n, raw, errp);
    }
    cfs_free_aligned(g_steal_pointer(&raw));
    if (!ok) {
        n->count = 0;
        cfs_node_unref(n);
        return NULL;
    }
    return n;
}

CfsNode *cfs_store_get(CfsNodeStore *s, uint64_t offset, uint16_t level,
                       GError **errp)
{
    CfsNode *n = g_hash_table_lookup(s->by_offset, &offset);

    if (n) {
        g_queue_unlink(&s->lru, &n->lru);
        g_queue_push_head_link(&s->lru, &n->lru);
        cfs_node_ref(n);
    } else {
        n = node_read(s, offset, errp);
        if (!n) {
            return NULL;
        }
        store_remember(s, n);
    }
    if (level != CFS_NODE_ANY_LEVEL && n->level != level) {
        cfs_node_unref(n);
        node_bad(errp, offset, "it is not at the level its parent says");
        return NULL;
    }
    return n;
}

static void node_encode(const CfsNode *n, uint64_t offset, uint8_t *raw)
{
    CfsNodeHeader h = {
        .magic = GUINT32_TO_LE(CFS_NODE_MAGIC),
        .level = GUINT16_TO_LE(n->level),
        .count = GUINT16_TO_LE(n->count),
    };

    memset(raw, 0, CFS_NODE_SIZE);
    for (int i = 0; i < n->count; i++) {
        uint8_t *at = raw + sizeof(h);

        if (n->level) {
            const CfsChild *k = &n->u.kid[i];
            CfsNodeChild nc = {
                .key = GUINT64_TO_LE(k->key),
                .offset = GUINT64_TO_LE(!k->ptr ? k->offset :
                                        k->ptr->offset ? k->ptr->offset
                                                       : k->ptr->pending),
            };

            memcpy(at + i * sizeof(nc), &nc, sizeof(nc));
        } else {
            const CfsExtent *e = &n->u.ext[i];
            CfsCkptExtent ce = {
                .guest_offset = GUINT64_TO_LE(e->guest_offset),
                .log_offset = GUINT64_TO_LE(e->log_offset),
                .record_offset = GUINT64_TO_LE(e->record_offset),
                .nblocks = GUINT32_TO_LE(e->nblocks),
                .kind = GUINT16_TO_LE(e->kind),
            };

            memcpy(at + i * sizeof(ce), &ce, sizeof(ce));
        }
    }
    memcpy(raw, &h, sizeof(h));
    h.checksum = GUINT64_TO_LE(node_checksum(raw, offset));
    memcpy(raw, &h, sizeof(h));
}

/* ---- trees in the file ------------------------------------------------- */

bool cfs_index_open(CfsIndex *idx, uint64_t root_node, uint64_t count,
                    uint64_t data_bytes, GError **errp)
{
    g_assert(!idx->root);
    if (root_node) {
        idx->root = cfs_store_get(idx->store, root_node, CFS_NODE_ANY_LEVEL,
                                  errp);
        if (!idx->root) {
            return false;
        }
    }
    idx->count = count;
    idx->data_bytes = data_bytes;
    return true;
}

uint64_t cfs_index_root_node(const CfsIndex *idx)
{
    if (!idx->root) {
        return 0;
    }
    return idx->root->offset ? idx->root->offset : idx->root->pending;
}

/* Children before parents, so that a parent knows where they go */
static void collect_dirty(CfsNode *n, GPtrArray *out)
{
    if (n->offset) {
        return;
    }
    if (n->level) {
        for (int i = 0; i < n->count; i++) {
            if (n->u.kid[i].ptr) {
                collect_dirty(n->u.kid[i].ptr, out);
            }
        }
    }
    g_ptr_array_add(out, n);
}

GPtrArray *cfs_index_dirty_nodes(CfsIndex *idx)
{
    GPtrArray *nodes = g_ptr_array_new();

    if (idx->root) {
        collect_dirty(idx->root, nodes);
    }
    return nodes;
}

void cfs_index_encode_nodes(GPtrArray *nodes, uint64_t at, uint8_t *buf)
{
    for (guint i = 0; i < nodes->len; i++) {
        CfsNode *n = nodes->pdata[i];

        n->pending = at + (uint64_t)i * CFS_NODE_SIZE;
        node_encode(n, n->pending, buf + (size_t)i * CFS_NODE_SIZE);
    }
}

void cfs_index_nodes_written(GPtrArray *nodes, bool written)
{
    for (guint i = 0; i < nodes->len; i++) {
        CfsNode *n = nodes->pdata[i];

        if (!written) {
            n->pending = 0;
            continue;
        }
        /* clean now: immutable, found by offset, its children too */
        n->offset = n->pending;
        n->pending = 0;
        if (n->store) {
            n->store->dirty_bytes -= cfs_node_bytes(n->level);
        }
        for (int k = 0; n->level && k < n->count; k++) {
            CfsChild *c = &n->u.kid[k];

            if (c->ptr) {
                c->offset = c->ptr->offset;
                cfs_node_unref(c->ptr);
                c->ptr = NULL;
            }
        }
        if (n->store) {
            store_remember(n->store, n);
        }
    }
}
