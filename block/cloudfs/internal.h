/*
 * cloudfs format core: definitions shared by the core's own files only.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef CLOUDFS_INTERNAL_H
#define CLOUDFS_INTERNAL_H

#include "cloudfs.h"

/* cfs_disk_open() flag for check: open even when the tail looks damaged */
#define CFS_OPEN_FOR_CHECK      (1u << 31)
/* ... and to rebuild the index from the log alone, ignoring checkpoints */
#define CFS_OPEN_REBUILD_INDEX  (1u << 30)

/* Largest header room a record reserves beyond what its first batch
 * needs: 64 KiB lists 31 writes of 1 MiB, or 2700 scattered 4 KiB ones */
#define CFS_OPEN_ROOM_MAX       (64u << 10)

/* A checkpoint is written at flush when the log grew this much since */
#define CFS_CHECKPOINT_INTERVAL (64ull << 20)
/* ... or when the index nodes changed since the last one take this much
 * memory (about 8000 nodes, each one 4 KiB in the log) */
#define CFS_DIRTY_INDEX_LIMIT   (32ull << 20)

/* ---- util.c ---------------------------------------------------------- */
static inline uint64_t cfs_align_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}
bool cfs_is_zero(const void *buf, size_t len);
uint64_t cfs_now_ns(void);
void cfs_random_bytes(void *buf, size_t len);
void *cfs_alloc_aligned(size_t len);  /* zeroed, 4 KiB aligned */
void cfs_free_aligned(void *p);
bool cfs_io_pread(const CfsIO *io, void *buf, size_t len, uint64_t offset,
                  GError **errp);
bool cfs_io_pwrite(const CfsIO *io, const void *buf, size_t len,
                   uint64_t offset, GError **errp);
bool cfs_io_pwritev_all(const CfsIO *io, const struct iovec *iov,
                        int iovcnt, uint64_t offset, GError **errp);
bool cfs_io_flush(const CfsIO *io, GError **errp);
bool cfs_tag_name_valid(const char *name, GError **errp);

/* ---- superblock.c ------------------------------------------------------ */
void cfs_superblock_seal(CfsSuperblock *sb);
bool cfs_superblock_read(const CfsIO *io, CfsSuperblock *sb, GError **errp);
bool cfs_superblock_validate(const CfsSuperblock *sb, uint64_t file_size,
                             GError **errp);
bool cfs_superblock_write(const CfsIO *io, const CfsSuperblock *sb,
                          GError **errp);
/* Returns false for an empty or invalid slot (no error: it is optional) */
bool cfs_slot_parse(const void *buf, CfsSlot *slot);
bool cfs_slot_write(const CfsIO *io, int which, const CfsSlot *slot,
                    GError **errp);
bool cfs_slot_clear(const CfsIO *io, int which, GError **errp);

/* ---- record.c ---------------------------------------------------------- */
/* A record header read from the log or a delta, checked for shape */
typedef struct CfsRecord {
    uint8_t *buf;               /* aligned, padded_len bytes */
    uint32_t header_len;
    uint32_t padded_len;        /* header_blocks * block_size */
    uint64_t payload_len;
    uint8_t id[CFS_ID_LEN];     /* SHA-256 of header[16..header_len) */
} CfsRecord;

static inline const CfsRecordHeader *cfs_rec_hdr(const CfsRecord *r)
{
    return (const CfsRecordHeader *)r->buf;
}
static inline const uint8_t *cfs_rec_body(const CfsRecord *r)
{
    return r->buf + sizeof(CfsRecordHeader);
}
/* The payload block checksums, little-endian u64s after the body */
static inline const uint8_t *cfs_rec_sums(const CfsRecord *r)
{
    return cfs_rec_body(r) + GUINT32_FROM_LE(cfs_rec_hdr(r)->body_len);
}
static inline uint64_t cfs_rec_total(const CfsRecord *r)
{
    return r->padded_len + r->payload_len;
}
static inline bool cfs_rec_is_chain(const CfsRecord *r)
{
    return GUINT16_FROM_LE(cfs_rec_hdr(r)->type) != CFS_REC_CHECKPOINT;
}

void cfs_record_clear(CfsRecord *r);
/*
 * Validate what can be validated from the header alone: magic, MAC, type,
 * lengths, body shape.  Computes r->id.  first is at least the fixed
 * header; more() fetches the rest of the header when header_len is larger.
 */
typedef bool (*CfsFetchFn)(void *dst, size_t len, uint64_t at, void *opaque,
                           GError **errp);
bool cfs_record_load(const CfsSuperblock *sb, CfsFetchFn fetch,
                     void *opaque, uint64_t at, uint64_t limit,
                     CfsRecord *r, GError **errp);
/* Read a record header from the image file at offset */
bool cfs_record_read(const CfsIO *io, const CfsSuperblock *sb,
                     uint64_t offset, uint64_t file_size, CfsRecord *r,
                     GError **errp);
/*
 * Look at what lies past the end of a log, [from, size): every valid
 * record that starts on a block boundary after from is passed to fn and
 * skipped whole, until fn returns false.  Returns the end of the last
 * block that is not all zeros (from if there is none, and where the scan
 * stopped if fn stopped it): what follows is space grown ahead of the log
 * and never written.  Reads a MiB at a time.
 */
typedef bool (*CfsTailRecordFn)(const CfsRecord *r, uint64_t at,
                                void *opaque);
uint64_t cfs_scan_tail(const CfsIO *io, const CfsSuperblock *sb,
                       uint64_t from, uint64_t size, CfsTailRecordFn fn,
                       void *opaque);
/* Verify payload blocks [first, first+n) held in iov against r */
bool cfs_record_verify_blocks(const CfsRecord *r, uint32_t block_size,
                              uint32_t first, const struct iovec *iov,
                              int iovcnt, uint64_t length, uint64_t where,
                              GError **errp);
/* The same against little-endian checksums, sums_le[0] being block first's */
bool cfs_verify_sums(const uint8_t *sums_le, uint32_t block_size,
                     uint32_t first, const struct iovec *iov, int iovcnt,
                     uint64_t length, uint64_t where, GError **errp);
/* Read and verify the whole payload of a record at offset */
bool cfs_record_verify_payload(const CfsIO *io, const CfsRecord *r,
                               uint32_t block_size, uint64_t offset,
                               GError **errp);
uint64_t cfs_block_checksum(const void *block, uint32_t block_size,
                            uint32_t index);
/*
 * Build a header: fills magic, type, lengths, version, prev id, time,
 * nonce and the MAC; buf points at a zeroed buffer of padded_len bytes
 * (a multiple of the block size, at least align_up(header_len)) whose
 * body and checksums the caller has already written.
 */
void cfs_record_seal(const CfsSuperblock *sb, uint8_t *buf, uint16_t type,
                     uint32_t body_len, uint32_t payload_blocks,
                     uint32_t padded_len, uint64_t version, const uint8_t prev_id[CFS_ID_LEN],
                     uint64_t nonce, uint64_t durable_version,
                     uint8_t id_out[CFS_ID_LEN]);
const char *cfs_record_type_name(uint16_t type);

/* ---- index.c ----------------------------------------------------------- */
typedef struct CfsExtent {
    uint64_t guest_offset;
    uint64_t log_offset;        /* DATA only */
    uint64_t record_offset;     /* DATA only */
    uint32_t nblocks;
    uint16_t kind;              /* CFS_EXTENT_* */
} CfsExtent;

typedef struct CfsIndex CfsIndex;
typedef struct CfsNodeStore CfsNodeStore;

/*
 * Every operation that may read index nodes from the file can fail: with
 * CFS_ERROR_IO, or CFS_ERROR_INDEX for a corrupt node.  A failed change
 * leaves a valid tree, though not necessarily the one asked for.
 */
CfsIndex *cfs_index_new(CfsNodeStore *store, uint32_t block_size);
/* A copy that shares every node until one of the two changes */
CfsIndex *cfs_index_copy(const CfsIndex *idx);
void cfs_index_free(CfsIndex *idx);
/* Map [guest_offset, +nblocks) to kind; replaces what was there */
bool cfs_index_set(CfsIndex *idx, const CfsExtent *e, GError **errp);
/* Drop mappings at and beyond size */
bool cfs_index_truncate(CfsIndex *idx, uint64_t size, GError **errp);
/* First run inside [offset, offset+length) */
bool cfs_index_lookup(CfsIndex *idx, uint64_t offset, uint64_t length,
                      CfsMapping *out, GError **errp);
/* Calls fn in guest offset order until it returns false */
typedef bool (*CfsExtentFn)(const CfsExtent *e, void *opaque);
bool cfs_index_foreach(CfsIndex *idx, CfsExtentFn fn, void *opaque,
                       GError **errp);
uint64_t cfs_index_count(const CfsIndex *idx);
uint64_t cfs_index_data_bytes(const CfsIndex *idx);
bool cfs_index_equal(CfsIndex *a, CfsIndex *b, bool *equal, GError **errp);

/* index-store.c: nodes in the file, and the cache of clean ones */
CfsNodeStore *cfs_store_new(const CfsIO *io, uint32_t block_size,
                            uint64_t log_start);
void cfs_store_free(CfsNodeStore *store);
uint64_t cfs_store_dirty_bytes(const CfsNodeStore *store);
uint64_t cfs_store_cached_bytes(const CfsNodeStore *store);
/* Open the tree persisted with its root node at root_node (0: empty) */
bool cfs_index_open(CfsIndex *idx, uint64_t root_node, uint64_t count,
                    uint64_t data_bytes, GError **errp);
/* Where the root is persisted (or about to be, during a checkpoint) */
uint64_t cfs_index_root_node(const CfsIndex *idx);
/*
 * Writing a checkpoint: the tree's dirty nodes, children first; encode
 * them to buf (CFS_NODE_SIZE each) as if written at file offset at; once
 * the write is durable (or failed), say so.
 */
GPtrArray *cfs_index_dirty_nodes(CfsIndex *idx);
void cfs_index_encode_nodes(GPtrArray *nodes, uint64_t at, uint8_t *buf);
void cfs_index_nodes_written(GPtrArray *nodes, bool written);

/* ---- the state of one version (log.c) ---------------------------------- */
typedef struct CfsState {
    CfsIndex *index;
    uint64_t size;
    uint64_t version;
    uint8_t version_id[CFS_ID_LEN];
    GHashTable *tags;           /* name -> CfsTag* */
} CfsState;

typedef struct CfsDisk CfsDisk;
void cfs_state_init_empty(CfsState *st, CfsDisk *disk);
void cfs_state_init_base(CfsState *st, CfsDisk *disk);
void cfs_state_copy(CfsState *dst, const CfsState *src);
void cfs_state_clear(CfsState *st);
GPtrArray *cfs_state_sorted_tags(const CfsState *st);

/*
 * What reads need of a record to verify data: where its payload starts
 * and its block checksums.  Cached by record offset, bounded in bytes, and
 * filled by the write path too, so reads after writes never miss.
 */
typedef struct CfsSums {
    uint32_t padded_len;
    uint32_t nblocks;
    uint8_t sums_le[];          /* nblocks * 8 */
} CfsSums;

/*
 * The WRITE record being filled (append.c).  Batches of guest writes go
 * to its payload and are applied (readable) as soon as their data is
 * written; its header, which lists them all, is written once, when the
 * record is sealed: at flush, before any other record, or when its header
 * room is full.  Until then the log ends before it (docs/format.rst,
 * "Group commit").
 */
typedef struct CfsOpenRecord {
    uint64_t offset;            /* where its header goes; 0: none open */
    uint32_t room;              /* header bytes reserved, block aligned */
    GArray *extents;            /* CfsWriteExtent (LE), prepared batches */
    guint applied_extents;      /* how many of them are applied */
    uint32_t nsums;             /* checksums of the prepared batches */
    /* every prepared checksum (capacity: room bytes); what readers may
     * use, view->nblocks, is the applied ones */
    CfsSums *view;
} CfsOpenRecord;

/* ---- the open disk ----------------------------------------------------- */
struct CfsDisk {
    CfsIO io;
    CfsSuperblock sb;
    uint32_t block_size;
    bool writable;              /* opened RDWR at the head */
    bool historical;            /* opened at an older version */
    CfsState head;              /* applied state (or the historical one) */

    /* log tail */
    uint64_t log_end;           /* next append goes here */
    uint64_t valid_end;         /* end of the last applied record */
    uint64_t prep_version;      /* version of the last prepared record */
    uint8_t prep_version_id[CFS_ID_LEN];
    GQueue inflight;            /* CfsAppend *, in version order */
    CfsOpenRecord open;
    CfsOpenRecord frozen;       /* full, its header being written by the
                                 * batch that began the open record; its
                                 * last batches may still be in flight */
    CfsRecord frozen_header;
    uint32_t room_hint;         /* header room for the next record */
    uint8_t *zero_room;         /* zeros a new record's first batch writes */
    uint32_t zero_room_len;
    bool open_room_stale;       /* the open record's room may hold an old
                                 * header of it: zero before use */
    unsigned unsettled;         /* failed appends whose write still runs */
    uint64_t stale_end;         /* bytes below this may be an earlier
                                 * writer's: never take them for ours */
    bool poisoned;
    int poison_error;           /* why: the failed write's errno, or -EIO */
    bool index_broken;          /* an applied record's index update failed */
    uint64_t writer_nonce;
    uint64_t durable_version;   /* head version at the last completed flush */
    uint64_t corrupt_records;   /* bit-rotten payloads seen at replay */

    /* checkpoints */
    uint64_t ckpt_offset;       /* newest valid checkpoint record, or 0 */
    uint64_t ckpt_version;
    uint64_t ckpt_log_end;      /* log_end just after it was written */
    uint64_t slot_sequence;
    int slot_newest;            /* -1: none */

    CfsDisk *parent;
    CfsNodeStore *nodes;        /* index nodes: cache and accounting */
    uint64_t dirty_limit;       /* CFS_DIRTY_INDEX_LIMIT (tests lower it) */
    bool ignore_checkpoints;    /* an index node was corrupt: rebuild
                                 * every version from the log itself */
    GHashTable *sums_cache;     /* record offset -> CfsSums * */
    uint64_t sums_cache_bytes;
    GArray *version_ids;        /* lazily built: version -> id (delta) */
};

/* log.c: replay and history */
/* Whether r can apply to st; cfs_state_apply() changes nothing unless so */
bool cfs_state_check(CfsDisk *disk, const CfsState *st, const CfsRecord *r,
                     uint64_t offset, GError **errp);
bool cfs_state_apply(CfsDisk *disk, CfsState *st, const CfsRecord *r,
                     uint64_t offset, GError **errp);
/*
 * Newest checkpoint describing a version <= version, following the chain
 * back from the newest: its offset (0 if none) and in *end where the log
 * after it starts (log_start if none).  Reads headers only.
 */
uint64_t cfs_checkpoint_before(CfsDisk *disk, uint64_t version,
                               uint64_t *end);
/* Build the state of any version <= head from checkpoints and the log */
bool cfs_build_state(CfsDisk *disk, uint64_t version, CfsState *out,
                     GError **errp);
/* File offset of the first record after the checkpoint that can start a
 * scan for version (the newest checkpoint whose version <= version) */
bool cfs_find_scan_start(CfsDisk *disk, uint64_t version, CfsState *st,
                         uint64_t *offset, GError **errp);
/* Recovery: replay valid records from offset onto disk->head */
bool cfs_replay(CfsDisk *disk, uint64_t offset, GError **errp);
/* Whether the valid record at next chains onto r and its writer had
 * flushed r: r's bad payload is then rot, not a torn write */
bool cfs_successor_vouches(CfsDisk *disk, const CfsRecord *r, uint64_t next,
                           uint64_t file_size);
/* Record id of version v (v <= head) */
bool cfs_version_id_at(CfsDisk *disk, uint64_t version,
                       uint8_t id[CFS_ID_LEN], GError **errp);
const CfsSums *cfs_sums_cached(CfsDisk *disk, uint64_t record_offset,
                               GError **errp);
void cfs_sums_remember(CfsDisk *disk, uint64_t record_offset,
                       const CfsRecord *r);

/* checkpoint.c */
bool cfs_checkpoint_load(CfsDisk *disk, uint64_t offset, CfsState *st,
                         uint64_t *prev, uint64_t *end, GError **errp);

/* log.c: map a WRITE's extents (little-endian, as in the body), whose
 * payload blocks start at data_at, into an index */
bool cfs_index_apply_extents(CfsIndex *idx, uint32_t block_size,
                             const CfsWriteExtent *extents, uint32_t n,
                             uint64_t record_offset, uint64_t data_at,
                             GError **errp);

/*
 * append.c: write the open WRITE record's header, making its batches a
 * version; no append may be in flight.  A no-op without an open record.
 * Every record other than the open one's batches is written after it.
 */
bool cfs_disk_seal(CfsDisk *disk, GError **errp);
/* Free the open and frozen records, losing what they hold (the disk is
 * being freed) */
void cfs_disk_drop_unsealed(CfsDisk *disk);
/* write a metadata-only chain record synchronously */
bool cfs_append_meta(CfsDisk *disk, uint16_t type, const void *body,
                     uint32_t body_len, GError **errp);
bool cfs_disk_check_writable(CfsDisk *disk, GError **errp);
/* Forget failed appends once none is in flight (clears the poison) */
void cfs_disk_recover_tail(CfsDisk *disk);
/* Append raw record bytes already verified (delta apply) */
bool cfs_append_raw(CfsDisk *disk, const CfsRecord *r,
                    const struct iovec *payload, int iovcnt,
                    GError **errp);

#endif /* CLOUDFS_INTERNAL_H */
