/*
 * cloudfs format core: the nodes of the extent index B+tree, shared by the
 * tree operations (index.c) and the node store (index-store.c) only.
 *
 * A node is either dirty (changed since the last checkpoint, only in
 * memory, offset == 0) or clean (persisted at offset, immutable).  Nodes
 * are reference counted: a tree holds its root, an inner node holds the
 * children it points at in memory, the store's cache holds clean nodes.
 * A dirty node with one reference belongs to one tree and is changed in
 * place; any other node is copied before a change (copy-on-write), so
 * several versions' trees share everything they did not change.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef CLOUDFS_INDEX_NODE_H
#define CLOUDFS_INDEX_NODE_H

#include "internal.h"

typedef struct CfsNode CfsNode;

struct CfsIndex {
    CfsNodeStore *store;        /* where clean nodes come from; NULL for a
                                 * tree that lives in memory only */
    uint32_t block_size;
    CfsNode *root;              /* a reference, or NULL when empty */
    uint64_t count;             /* extents */
    uint64_t data_bytes;        /* guest bytes of DATA extents */
};

typedef struct CfsChild {
    uint64_t key;               /* first guest offset below the child */
    uint64_t offset;            /* where the child is persisted, or 0 */
    CfsNode *ptr;               /* the child in memory (a reference), or
                                 * NULL: find it in the store by offset */
} CfsChild;

struct CfsNode {
    int refs;
    uint16_t level;             /* 0 = leaf */
    uint16_t count;
    uint64_t offset;            /* file offset once persisted, 0 if dirty */
    uint64_t pending;           /* offset given by a checkpoint in writing */
    CfsNodeStore *store;
    GList lru;                  /* link in the store's LRU while cached */
    bool cached;
    union {
        CfsExtent ext[CFS_LEAF_MAX];
        CfsChild kid[CFS_INNER_MAX];
    } u;
};

struct CfsNodeStore {
    CfsIO io;
    uint32_t block_size;
    uint64_t log_start;
    GHashTable *by_offset;      /* uint64 offset -> CfsNode (a reference) */
    GQueue lru;                 /* most recently used first */
    uint64_t cached_bytes;
    uint64_t cache_limit;
    uint64_t dirty_bytes;       /* dirty nodes alive, all trees */
    uint64_t loads;             /* nodes read from the file */
};

size_t cfs_node_bytes(uint16_t level);
CfsNode *cfs_node_new(CfsNodeStore *store, uint16_t level);
CfsNode *cfs_node_ref(CfsNode *n);
void cfs_node_unref(CfsNode *n);
/* A dirty copy of n with one reference */
CfsNode *cfs_node_clone(CfsNodeStore *store, const CfsNode *n);

/* A reference to the clean node at offset, from the cache or the file;
 * its level must be level (CFS_ERROR_INDEX otherwise), unless level is
 * CFS_NODE_ANY_LEVEL */
#define CFS_NODE_ANY_LEVEL G_MAXUINT16
CfsNode *cfs_store_get(CfsNodeStore *store, uint64_t offset, uint16_t level,
                       GError **errp);

#endif /* CLOUDFS_INDEX_NODE_H */
