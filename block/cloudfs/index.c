/*
 * cloudfs format core: the extent index, guest range -> log extent.
 *
 * A balanced tree of non-overlapping extents keyed by guest offset.  Ranges
 * that no extent covers are unallocated (they fall through to a parent).
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "internal.h"

struct CfsIndex {
    GTree *tree;                /* CfsExtent * -> same, by guest_offset */
    uint32_t block_size;
    uint64_t data_bytes;        /* sum of DATA extents */
};

static gint extent_cmp(gconstpointer a, gconstpointer b, gpointer unused)
{
    uint64_t x = ((const CfsExtent *)a)->guest_offset;
    uint64_t y = ((const CfsExtent *)b)->guest_offset;

    return x < y ? -1 : x > y;
}

CfsIndex *cfs_index_new(uint32_t block_size)
{
    CfsIndex *idx = g_new0(CfsIndex, 1);

    idx->tree = g_tree_new_full(extent_cmp, NULL, g_free, NULL);
    idx->block_size = block_size;
    return idx;
}

void cfs_index_free(CfsIndex *idx)
{
    if (idx) {
        g_tree_destroy(idx->tree);
        g_free(idx);
    }
}

static uint64_t extent_end(const CfsIndex *idx, const CfsExtent *e)
{
    return e->guest_offset + (uint64_t)e->nblocks * idx->block_size;
}

static void insert(CfsIndex *idx, const CfsExtent *e)
{
    CfsExtent *copy = g_memdup2(e, sizeof(*e));

    g_tree_insert(idx->tree, copy, copy);
    if (e->kind == CFS_EXTENT_DATA) {
        idx->data_bytes += (uint64_t)e->nblocks * idx->block_size;
    }
}

static void remove_extent(CfsIndex *idx, CfsExtent *e)
{
    if (e->kind == CFS_EXTENT_DATA) {
        idx->data_bytes -= (uint64_t)e->nblocks * idx->block_size;
    }
    g_tree_remove(idx->tree, e);
}

static gboolean copy_one(gpointer key, gpointer value, gpointer data)
{
    insert(data, key);
    return FALSE;
}

CfsIndex *cfs_index_copy(const CfsIndex *idx)
{
    CfsIndex *copy = cfs_index_new(idx->block_size);

    g_tree_foreach(idx->tree, copy_one, copy);
    return copy;
}

/* The extent containing or following offset, or NULL */
static GTreeNode *first_at_or_after(const CfsIndex *idx, uint64_t offset)
{
    CfsExtent key = { .guest_offset = offset };
    GTreeNode *node = g_tree_upper_bound(idx->tree, &key);
    GTreeNode *prev = node ? g_tree_node_previous(node)
                           : g_tree_node_last(idx->tree);

    if (prev && extent_end(idx, g_tree_node_key(prev)) > offset) {
        return prev;
    }
    return node;
}

/* Cut away [start, end) from the extents overlapping it */
static void punch(CfsIndex *idx, uint64_t start, uint64_t end)
{
    GPtrArray *hit = g_ptr_array_new();
    GTreeNode *node;

    for (node = first_at_or_after(idx, start);
         node && ((CfsExtent *)g_tree_node_key(node))->guest_offset < end;
         node = g_tree_node_next(node)) {
        g_ptr_array_add(hit, g_tree_node_key(node));
    }
    for (guint i = 0; i < hit->len; i++) {
        CfsExtent old = *(CfsExtent *)hit->pdata[i];
        uint64_t old_end = extent_end(idx, &old);

        remove_extent(idx, hit->pdata[i]);
        if (old.guest_offset < start) {
            CfsExtent head = old;

            head.nblocks = (start - old.guest_offset) / idx->block_size;
            insert(idx, &head);
        }
        if (old_end > end) {
            CfsExtent tail = old;
            uint64_t skip = end - old.guest_offset;

            tail.guest_offset = end;
            tail.nblocks = (old_end - end) / idx->block_size;
            if (old.kind == CFS_EXTENT_DATA) {
                tail.log_offset += skip;
            }
            insert(idx, &tail);
        }
    }
    g_ptr_array_free(hit, TRUE);
}

static bool can_merge(const CfsIndex *idx, const CfsExtent *a,
                      const CfsExtent *b)
{
    uint64_t len = (uint64_t)a->nblocks * idx->block_size;

    if (a->kind != b->kind || extent_end(idx, a) != b->guest_offset ||
        (uint64_t)a->nblocks + b->nblocks > CFS_EXTENT_MAX_BLOCKS) {
        return false;
    }
    return a->kind == CFS_EXTENT_ZERO ||
           (a->record_offset == b->record_offset &&
            a->log_offset + len == b->log_offset);
}

void cfs_index_set(CfsIndex *idx, const CfsExtent *e)
{
    CfsExtent merged = *e;
    uint64_t end = extent_end(idx, e);
    GTreeNode *node;

    g_assert(e->nblocks > 0);
    punch(idx, e->guest_offset, end);

    /* Merge with neighbours that continue it in guest and log space, so
     * sequential writes cost one extent, not one per request */
    node = first_at_or_after(idx, end);
    if (node) {
        CfsExtent *next = g_tree_node_key(node);

        if (can_merge(idx, &merged, next)) {
            merged.nblocks += next->nblocks;
            remove_extent(idx, next);
        }
    }
    if (merged.guest_offset > 0) {
        node = first_at_or_after(idx, merged.guest_offset - 1);
        if (node) {
            CfsExtent *prev = g_tree_node_key(node);

            if (can_merge(idx, prev, &merged)) {
                CfsExtent grown = *prev;

                grown.nblocks += merged.nblocks;
                remove_extent(idx, prev);
                merged = grown;
            }
        }
    }
    insert(idx, &merged);
}

void cfs_index_truncate(CfsIndex *idx, uint64_t size)
{
    GTreeNode *last = g_tree_node_last(idx->tree);

    if (last) {
        uint64_t end = extent_end(idx, g_tree_node_key(last));

        if (end > size) {
            punch(idx, size, end);
        }
    }
}

void cfs_index_lookup(const CfsIndex *idx, uint64_t offset, uint64_t length,
                      CfsMapping *out)
{
    GTreeNode *node = first_at_or_after(idx, offset);
    uint64_t end = offset + length;

    out->guest_offset = offset;
    out->log_offset = 0;
    out->record_offset = 0;
    if (!node) {
        out->kind = CFS_MAP_UNALLOCATED;
        out->length = length;
        return;
    }
    const CfsExtent *e = g_tree_node_key(node);
    if (e->guest_offset > offset) {
        out->kind = CFS_MAP_UNALLOCATED;
        out->length = MIN(end, e->guest_offset) - offset;
        return;
    }
    out->length = MIN(end, extent_end(idx, e)) - offset;
    if (e->kind == CFS_EXTENT_ZERO) {
        out->kind = CFS_MAP_ZERO;
    } else {
        out->kind = CFS_MAP_DATA;
        out->log_offset = e->log_offset + (offset - e->guest_offset);
        out->record_offset = e->record_offset;
    }
}

typedef struct ForeachCtx {
    CfsExtentFn fn;
    void *opaque;
} ForeachCtx;

static gboolean foreach_one(gpointer key, gpointer value, gpointer data)
{
    ForeachCtx *ctx = data;

    return !ctx->fn(key, ctx->opaque);
}

void cfs_index_foreach(const CfsIndex *idx, CfsExtentFn fn, void *opaque)
{
    ForeachCtx ctx = { .fn = fn, .opaque = opaque };

    g_tree_foreach(idx->tree, foreach_one, &ctx);
}

uint64_t cfs_index_count(const CfsIndex *idx)
{
    return g_tree_nnodes(idx->tree);
}

uint64_t cfs_index_data_bytes(const CfsIndex *idx)
{
    return idx->data_bytes;
}

bool cfs_index_equal(const CfsIndex *a, const CfsIndex *b)
{
    GTreeNode *x = g_tree_node_first(a->tree);
    GTreeNode *y = g_tree_node_first(b->tree);

    for (; x && y; x = g_tree_node_next(x), y = g_tree_node_next(y)) {
        const CfsExtent *ex = g_tree_node_key(x);
        const CfsExtent *ey = g_tree_node_key(y);

        if (ex->guest_offset != ey->guest_offset ||
            ex->nblocks != ey->nblocks || ex->kind != ey->kind ||
            ex->log_offset != ey->log_offset ||
            ex->record_offset != ey->record_offset) {
            return false;
        }
    }
    return !x && !y;
}

bool cfs_index_append(CfsIndex *idx, const CfsExtent *e)
{
    GTreeNode *last = g_tree_node_last(idx->tree);

    if (e->nblocks == 0 || e->nblocks > CFS_EXTENT_MAX_BLOCKS ||
        e->guest_offset % idx->block_size ||
        (last && extent_end(idx, g_tree_node_key(last)) > e->guest_offset)) {
        return false;
    }
    insert(idx, e);
    return true;
}
