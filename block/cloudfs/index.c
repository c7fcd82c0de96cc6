/*
 * cloudfs format core: the extent index, guest range -> log extent.
 *
 * A copy-on-write B+tree of non-overlapping extents keyed by guest offset
 * (the node layout is in format.h, node memory and I/O in
 * index-store.c).  Ranges that no extent covers are unallocated: they fall
 * through to a parent.  Only the nodes a version changed since the last
 * checkpoint, and a bounded cache of clean ones, are in memory.
 *
 * Changes go through two primitives, insert and delete, which copy the
 * path from the root to the leaf they touch unless they own it; setting a
 * range is a punch (delete, reinsert the parts left over) plus merging
 * with neighbours that continue it in the log.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "index-node.h"

#define LEAF_MIN    (CFS_LEAF_MAX / 4)
#define INNER_MIN   (CFS_INNER_MAX / 4)
#define NO_BOUND    UINT64_MAX

CfsIndex *cfs_index_new(CfsNodeStore *store, uint32_t block_size)
{
    CfsIndex *idx = g_new0(CfsIndex, 1);

    idx->store = store;
    idx->block_size = block_size;
    return idx;
}

CfsIndex *cfs_index_copy(const CfsIndex *idx)
{
    CfsIndex *copy = g_memdup2(idx, sizeof(*idx));

    if (copy->root) {
        cfs_node_ref(copy->root);
    }
    return copy;
}

void cfs_index_free(CfsIndex *idx)
{
    if (idx) {
        if (idx->root) {
            cfs_node_unref(idx->root);
        }
        g_free(idx);
    }
}

uint64_t cfs_index_count(const CfsIndex *idx)
{
    return idx->count;
}

uint64_t cfs_index_data_bytes(const CfsIndex *idx)
{
    return idx->data_bytes;
}

/* ---- nodes ------------------------------------------------------------ */

static uint64_t extent_end(const CfsIndex *t, const CfsExtent *e)
{
    return e->guest_offset + (uint64_t)e->nblocks * t->block_size;
}

static uint64_t entry_key(const CfsNode *n, int i)
{
    return n->level ? n->u.kid[i].key : n->u.ext[i].guest_offset;
}

static uint64_t node_key(const CfsNode *n)
{
    return entry_key(n, 0);
}

static unsigned node_max(const CfsNode *n)
{
    return n->level ? CFS_INNER_MAX : CFS_LEAF_MAX;
}

static unsigned node_min(const CfsNode *n)
{
    return n->level ? INNER_MIN : LEAF_MIN;
}

static size_t entry_size(const CfsNode *n)
{
    return n->level ? sizeof(CfsChild) : sizeof(CfsExtent);
}

static uint8_t *entry_at(CfsNode *n, int i)
{
    return (uint8_t *)&n->u + (size_t)i * entry_size(n);
}

/* Index of the last entry whose key is <= key, or -1 */
static int floor_index(const CfsNode *n, uint64_t key)
{
    int lo = 0, hi = n->count;

    while (lo < hi) {
        int mid = (lo + hi) / 2;

        if (entry_key(n, mid) <= key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo - 1;
}

/* Upper bound of child i's keys, given n's own upper bound */
static uint64_t child_hi(const CfsNode *n, int i, uint64_t hi)
{
    return i + 1 < n->count ? n->u.kid[i + 1].key : hi;
}

static bool index_error(GError **errp, uint64_t offset, const char *why)
{
    g_set_error(errp, CFS_ERROR, CFS_ERROR_INDEX,
                "index node at offset %" G_GUINT64_FORMAT " %s; 'cloudfs "
                "check --repair' rebuilds the index from the log", offset,
                why);
    return false;
}

/*
 * A reference to child i of n, whose keys lie below hi.  A persisted child
 * must start exactly at its key and end below the next one: a node that
 * validates on its own but sits in the wrong place is corruption too.
 */
static CfsNode *child_get(CfsIndex *t, CfsNode *n, int i, uint64_t hi,
                          GError **errp)
{
    CfsChild *k = &n->u.kid[i];
    uint64_t top = child_hi(n, i, hi);
    CfsNode *c;

    if (k->ptr) {
        return cfs_node_ref(k->ptr);
    }
    c = cfs_store_get(t->store, k->offset, n->level - 1, errp);
    if (!c) {
        return NULL;
    }
    if (node_key(c) != k->key ||
        (c->level ? c->u.kid[c->count - 1].key >= top
                  : extent_end(t, &c->u.ext[c->count - 1]) > top)) {
        cfs_node_unref(c);
        index_error(errp, k->offset, "does not fit where its parent puts it");
        return NULL;
    }
    return c;
}

/* Child i of n, made private to n's tree so that it can change */
static CfsNode *child_writable(CfsIndex *t, CfsNode *n, int i, uint64_t hi,
                               GError **errp)
{
    CfsChild *k = &n->u.kid[i];
    CfsNode *c = k->ptr, *copy;

    if (c && !c->offset && c->refs == 1) {
        return c;
    }
    c = child_get(t, n, i, hi, errp);
    if (!c) {
        return NULL;
    }
    copy = cfs_node_clone(t->store, c);
    cfs_node_unref(c);
    if (k->ptr) {
        cfs_node_unref(k->ptr);
    }
    k->ptr = copy;
    k->offset = 0;
    return copy;
}

static void root_writable(CfsIndex *t)
{
    if (t->root->offset || t->root->refs > 1) {
        CfsNode *copy = cfs_node_clone(t->store, t->root);

        cfs_node_unref(t->root);
        t->root = copy;
    }
}

/* Move the upper half of a full node to a new right sibling */
static CfsNode *split(CfsIndex *t, CfsNode *n)
{
    CfsNode *right = cfs_node_new(t->store, n->level);
    int keep = n->count / 2;

    right->count = n->count - keep;
    memcpy(entry_at(right, 0), entry_at(n, keep),
           right->count * entry_size(n));
    n->count = keep;
    return right;
}

/* Put an entry at pos, splitting n first when it is full */
static void put_entry(CfsIndex *t, CfsNode *n, int pos, const void *entry,
                      CfsNode **right)
{
    CfsNode *at = n;

    *right = NULL;
    if (n->count == node_max(n)) {
        *right = split(t, n);
        if (pos > n->count) {
            at = *right;
            pos -= n->count;
        }
    }
    memmove(entry_at(at, pos + 1), entry_at(at, pos),
            (at->count - pos) * entry_size(at));
    memcpy(entry_at(at, pos), entry, entry_size(at));
    at->count++;
}

/* Remove entry pos (an inner entry's reference goes with the caller) */
static void remove_entry(CfsNode *n, int pos)
{
    memmove(entry_at(n, pos), entry_at(n, pos + 1),
            (n->count - pos - 1) * entry_size(n));
    n->count--;
}

static void account(CfsIndex *t, const CfsExtent *e, int sign)
{
    t->count += sign;
    if (e->kind == CFS_EXTENT_DATA) {
        t->data_bytes += sign * (int64_t)((uint64_t)e->nblocks *
                                          t->block_size);
    }
}

/* ---- insert and delete ------------------------------------------------ */

static bool node_insert(CfsIndex *t, CfsNode *n, const CfsExtent *e,
                        uint64_t hi, CfsNode **right, GError **errp)
{
    int i = floor_index(n, e->guest_offset);
    CfsNode *c, *split_off;

    if (n->level == 0) {
        put_entry(t, n, i + 1, e, right);
        account(t, e, 1);
        return true;
    }
    i = MAX(i, 0);
    c = child_writable(t, n, i, hi, errp);
    if (!c || !node_insert(t, c, e, child_hi(n, i, hi), &split_off, errp)) {
        return false;
    }
    n->u.kid[i].key = node_key(c);
    *right = NULL;
    if (split_off) {
        CfsChild k = { .key = node_key(split_off), .ptr = split_off };

        put_entry(t, n, i + 1, &k, right);
    }
    return true;
}

static bool tree_insert(CfsIndex *t, const CfsExtent *e, GError **errp)
{
    CfsNode *right;

    if (!t->root) {
        t->root = cfs_node_new(t->store, 0);
        t->root->u.ext[0] = *e;
        t->root->count = 1;
        account(t, e, 1);
        return true;
    }
    root_writable(t);
    if (!node_insert(t, t->root, e, NO_BOUND, &right, errp)) {
        return false;
    }
    if (right) {
        CfsNode *top = cfs_node_new(t->store, t->root->level + 1);

        g_assert(top->level <= CFS_NODE_MAX_LEVEL);
        top->u.kid[0] = (CfsChild) { .key = node_key(t->root),
                                     .ptr = t->root };
        top->u.kid[1] = (CfsChild) { .key = node_key(right), .ptr = right };
        top->count = 2;
        t->root = top;
    }
    return true;
}

/* Children l and l+1 of n: merge them, or even them out */
static bool rebalance(CfsIndex *t, CfsNode *n, int l, uint64_t hi,
                      GError **errp)
{
    CfsNode *a = child_writable(t, n, l, hi, errp);
    CfsNode *b = a ? child_writable(t, n, l + 1, hi, errp) : NULL;
    size_t es;

    if (!b) {
        return false;   /* the tree is still valid, only less full */
    }
    es = entry_size(a);
    if (a->count + b->count <= node_max(a)) {
        memcpy(entry_at(a, a->count), entry_at(b, 0), b->count * es);
        a->count += b->count;
        b->count = 0;   /* its children's references moved to a */
        cfs_node_unref(b);
        remove_entry(n, l + 1);
        return true;
    }
    if (a->count < b->count) {
        int move = (b->count - a->count) / 2;

        memcpy(entry_at(a, a->count), entry_at(b, 0), move * es);
        memmove(entry_at(b, 0), entry_at(b, move), (b->count - move) * es);
        a->count += move;
        b->count -= move;
    } else {
        int move = (a->count - b->count) / 2;

        memmove(entry_at(b, move), entry_at(b, 0), b->count * es);
        memcpy(entry_at(b, 0), entry_at(a, a->count - move), move * es);
        a->count -= move;
        b->count += move;
    }
    n->u.kid[l + 1].key = node_key(b);
    return true;
}

static bool node_delete(CfsIndex *t, CfsNode *n, uint64_t key, uint64_t hi,
                        GError **errp)
{
    int i = floor_index(n, key);
    CfsNode *c;
    bool ok;

    if (n->level == 0) {
        if (i < 0 || n->u.ext[i].guest_offset != key) {
            return index_error(errp, n->offset, "lost an extent");
        }
        account(t, &n->u.ext[i], -1);
        remove_entry(n, i);
        return true;
    }
    i = MAX(i, 0);
    c = child_writable(t, n, i, hi, errp);
    if (!c) {
        return false;
    }
    ok = node_delete(t, c, key, child_hi(n, i, hi), errp);
    if (c->count == 0) {
        cfs_node_unref(c);
        remove_entry(n, i);
        return ok;
    }
    /* even after a failure below (a rebalance that could not read a
     * sibling), the key must follow the child's first extent */
    n->u.kid[i].key = node_key(c);
    if (!ok) {
        return false;
    }
    if (c->count < node_min(c) && n->count > 1) {
        return rebalance(t, n, i + 1 < n->count ? i : i - 1, hi, errp);
    }
    return true;
}

static bool tree_delete(CfsIndex *t, uint64_t key, GError **errp)
{
    bool ok;

    root_writable(t);
    ok = node_delete(t, t->root, key, NO_BOUND, errp);
    /* a root with one child gives way to it; an empty one goes */
    while (t->root && (t->root->count == 0 ||
                       (t->root->level && t->root->count == 1))) {
        CfsNode *old = t->root;

        if (old->count == 0) {
            t->root = NULL;
        } else {
            t->root = child_get(t, old, 0, NO_BOUND, errp);
            if (!t->root) {
                t->root = old;  /* valid still, one level taller */
                return false;
            }
        }
        cfs_node_unref(old);
    }
    return ok;
}

/* ---- reading: a cursor on a path from the root to a leaf --------------- */

typedef struct Cursor {
    CfsIndex *t;
    int depth;
    CfsNode *node[CFS_NODE_MAX_LEVEL + 1];
    uint64_t hi[CFS_NODE_MAX_LEVEL + 1];
    int pos[CFS_NODE_MAX_LEVEL + 1];
} Cursor;

static void cursor_release(Cursor *c)
{
    while (c->depth > 0) {
        cfs_node_unref(c->node[--c->depth]);
    }
}

/* Go down from the node at depth-1 to a leaf, leftmost or towards key */
static bool cursor_descend(Cursor *c, bool leftmost, uint64_t key,
                           GError **errp)
{
    for (;;) {
        int d = c->depth - 1;
        CfsNode *n = c->node[d];
        CfsNode *child;

        if (n->level == 0) {
            c->pos[d] = leftmost ? 0 : floor_index(n, key);
            return true;
        }
        c->pos[d] = leftmost ? 0 : MAX(floor_index(n, key), 0);
        child = child_get(c->t, n, c->pos[d], c->hi[d], errp);
        if (!child) {
            return false;
        }
        c->node[d + 1] = child;
        c->hi[d + 1] = child_hi(n, c->pos[d], c->hi[d]);
        c->depth++;
    }
}

static const CfsExtent *cursor_get(const Cursor *c)
{
    const CfsNode *leaf;
    int pos;

    if (c->depth == 0) {
        return NULL;
    }
    leaf = c->node[c->depth - 1];
    pos = c->pos[c->depth - 1];
    return pos >= 0 && pos < leaf->count ? &leaf->u.ext[pos] : NULL;
}

static bool cursor_next(Cursor *c, GError **errp)
{
    int leaf = c->depth - 1, d;

    if (c->depth == 0 || ++c->pos[leaf] < c->node[leaf]->count) {
        return true;
    }
    for (d = leaf - 1; d >= 0 && c->pos[d] + 1 >= c->node[d]->count; d--) {
        /* this subtree is done too */
    }
    if (d < 0) {
        return true;    /* the end: cursor_get() says so */
    }
    c->pos[d]++;
    while (c->depth > d + 1) {
        cfs_node_unref(c->node[--c->depth]);
    }
    {
        CfsNode *n = c->node[d];
        CfsNode *child = child_get(c->t, n, c->pos[d], c->hi[d], errp);

        if (!child) {
            return false;
        }
        c->node[d + 1] = child;
        c->hi[d + 1] = child_hi(n, c->pos[d], c->hi[d]);
        c->depth++;
    }
    return cursor_descend(c, true, 0, errp);
}

/* Position on the first extent that ends after offset */
static bool cursor_seek(Cursor *c, CfsIndex *t, uint64_t offset,
                        GError **errp)
{
    const CfsExtent *e;

    c->t = t;
    c->depth = 0;
    if (!t->root) {
        return true;
    }
    c->node[0] = cfs_node_ref(t->root);
    c->hi[0] = NO_BOUND;
    c->depth = 1;
    if (!cursor_descend(c, false, offset, errp)) {
        return false;
    }
    e = cursor_get(c);
    if (e && extent_end(t, e) > offset) {
        return true;
    }
    return cursor_next(c, errp);
}

/* The first extent that ends after offset, if any */
static bool find_after(CfsIndex *t, uint64_t offset, CfsExtent *out,
                       bool *found, GError **errp)
{
    Cursor c;
    const CfsExtent *e;
    bool ok = cursor_seek(&c, t, offset, errp);

    e = ok ? cursor_get(&c) : NULL;
    *found = e != NULL;
    if (e) {
        *out = *e;
    }
    cursor_release(&c);
    return ok;
}

/* Every extent that ends after from and starts before to */
static bool collect(CfsIndex *t, uint64_t from, uint64_t to, GArray *out,
                    GError **errp)
{
    Cursor c;
    const CfsExtent *e;
    bool ok = cursor_seek(&c, t, from, errp);

    while (ok && (e = cursor_get(&c)) && e->guest_offset < to) {
        g_array_append_val(out, *e);
        ok = cursor_next(&c, errp);
    }
    cursor_release(&c);
    return ok;
}

/* ---- the operations the rest of the core uses ------------------------- */

/* Cut away [start, end) from the extents overlapping it */
static bool punch(CfsIndex *t, uint64_t start, uint64_t end, GError **errp)
{
    g_autoptr(GArray) hits = g_array_new(FALSE, FALSE, sizeof(CfsExtent));

    if (!collect(t, start, end, hits, errp)) {
        return false;
    }
    for (guint i = 0; i < hits->len; i++) {
        CfsExtent old = g_array_index(hits, CfsExtent, i);
        uint64_t old_end = extent_end(t, &old);

        if (!tree_delete(t, old.guest_offset, errp)) {
            return false;
        }
        if (old.guest_offset < start) {
            CfsExtent head = old;

            head.nblocks = (start - old.guest_offset) / t->block_size;
            if (!tree_insert(t, &head, errp)) {
                return false;
            }
        }
        if (old_end > end) {
            CfsExtent tail = old;
            uint64_t skip = end - old.guest_offset;

            tail.guest_offset = end;
            tail.nblocks = (old_end - end) / t->block_size;
            if (old.kind == CFS_EXTENT_DATA) {
                tail.log_offset += skip;
            }
            if (!tree_insert(t, &tail, errp)) {
                return false;
            }
        }
    }
    return true;
}

static bool can_merge(const CfsIndex *t, const CfsExtent *a,
                      const CfsExtent *b)
{
    uint64_t len = (uint64_t)a->nblocks * t->block_size;

    if (a->kind != b->kind || extent_end(t, a) != b->guest_offset ||
        (uint64_t)a->nblocks + b->nblocks > CFS_EXTENT_MAX_BLOCKS) {
        return false;
    }
    return a->kind == CFS_EXTENT_ZERO ||
           (a->record_offset == b->record_offset &&
            a->log_offset + len == b->log_offset);
}

bool cfs_index_set(CfsIndex *t, const CfsExtent *e, GError **errp)
{
    CfsExtent merged = *e, next, prev;
    uint64_t end = extent_end(t, e);
    bool found;

    g_assert(e->nblocks > 0);
    if (!punch(t, e->guest_offset, end, errp)) {
        return false;
    }
    /* Merge with neighbours that continue it in guest and log space, so
     * sequential writes cost one extent, not one per request */
    if (!find_after(t, end, &next, &found, errp)) {
        return false;
    }
    if (found && can_merge(t, &merged, &next)) {
        if (!tree_delete(t, next.guest_offset, errp)) {
            return false;
        }
        merged.nblocks += next.nblocks;
    }
    if (merged.guest_offset > 0) {
        if (!find_after(t, merged.guest_offset - 1, &prev, &found, errp)) {
            return false;
        }
        if (found && can_merge(t, &prev, &merged)) {
            if (!tree_delete(t, prev.guest_offset, errp)) {
                return false;
            }
            prev.nblocks += merged.nblocks;
            merged = prev;
        }
    }
    return tree_insert(t, &merged, errp);
}

bool cfs_index_truncate(CfsIndex *t, uint64_t size, GError **errp)
{
    return punch(t, size, NO_BOUND, errp);
}

bool cfs_index_lookup(CfsIndex *t, uint64_t offset, uint64_t length,
                      CfsMapping *out, GError **errp)
{
    uint64_t end = offset + length;
    CfsExtent e;
    bool found;

    out->guest_offset = offset;
    out->log_offset = 0;
    out->record_offset = 0;
    if (!find_after(t, offset, &e, &found, errp)) {
        return false;
    }
    if (!found || e.guest_offset > offset) {
        out->kind = CFS_MAP_UNALLOCATED;
        out->length = (found ? MIN(end, e.guest_offset) : end) - offset;
        return true;
    }
    out->length = MIN(end, extent_end(t, &e)) - offset;
    if (e.kind == CFS_EXTENT_ZERO) {
        out->kind = CFS_MAP_ZERO;
    } else {
        out->kind = CFS_MAP_DATA;
        out->log_offset = e.log_offset + (offset - e.guest_offset);
        out->record_offset = e.record_offset;
    }
    return true;
}

bool cfs_index_foreach(CfsIndex *t, CfsExtentFn fn, void *opaque,
                       GError **errp)
{
    Cursor c;
    const CfsExtent *e;
    bool ok = cursor_seek(&c, t, 0, errp);

    while (ok && (e = cursor_get(&c)) && fn(e, opaque)) {
        ok = cursor_next(&c, errp);
    }
    cursor_release(&c);
    return ok;
}

bool cfs_index_equal(CfsIndex *a, CfsIndex *b, bool *equal, GError **errp)
{
    Cursor x = { .depth = 0 }, y = { .depth = 0 };
    const CfsExtent *ex, *ey;
    bool ok;

    *equal = a->count == b->count && a->data_bytes == b->data_bytes;
    if (!*equal) {
        return true;
    }
    ok = cursor_seek(&x, a, 0, errp);
    ok = ok && cursor_seek(&y, b, 0, errp);
    while (ok) {
        ex = cursor_get(&x);
        ey = cursor_get(&y);
        if (!ex || !ey) {
            *equal = !ex && !ey;
            break;
        }
        if (memcmp(ex, ey, offsetof(CfsExtent, kind)) || ex->kind != ey->kind) {
            *equal = false;
            break;
        }
        ok = cursor_next(&x, errp) && cursor_next(&y, errp);
    }
    cursor_release(&x);
    cursor_release(&y);
    return ok;
}
