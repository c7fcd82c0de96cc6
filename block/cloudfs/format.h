/*
 * cloudfs on-disk format: every structure that is written to an image file
 * or to a delta stream.  docs/format.rst is the prose version of this file;
 * the two must agree byte for byte.
 *
 * All integers are little-endian.  All structures are packed by
 * construction (every field is naturally aligned and the sizes are
 * asserted), so they can be read and written with memcpy and the
 * cfs_le*() helpers.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef CLOUDFS_FORMAT_H
#define CLOUDFS_FORMAT_H

#include <stdint.h>
#include <glib.h>

#define CFS_ID_LEN          20      /* disk ids and version ids: 160 bits */
#define CFS_SECRET_LEN      32
#define CFS_MAC_LEN         16
#define CFS_TAG_NAME_MAX    255

/* ---------------------------------------------------------------------
 * File layout
 *
 *   0      superblock (CfsSuperblock, 1024 bytes, rest of 4 KiB is zero)
 *   4096   checkpoint slot 0 (CfsSlot, 64 bytes, rest of 4 KiB is zero)
 *   8192   checkpoint slot 1
 *   log_start = align_up(12288, block_size): first log record
 *
 * The log is a sequence of records, each starting at a block-aligned file
 * offset, each followed immediately by the next.  The log ends at the first
 * record that does not validate (see cfs_record_validate()).
 * --------------------------------------------------------------------- */

#define CFS_SUPERBLOCK_OFFSET   0
#define CFS_SLOT0_OFFSET        4096
#define CFS_SLOT1_OFFSET        8192
#define CFS_META_END            12288
#define CFS_META_BLOCK          4096

#define CFS_MIN_BLOCK_SIZE      512
#define CFS_MAX_BLOCK_SIZE      65536
#define CFS_DEFAULT_BLOCK_SIZE  4096

/* "CLOUDFS" followed by 0x1a, which stops `type` on a terminal */
#define CFS_MAGIC               "CLOUDFS\x1a"
#define CFS_MAGIC_LEN           8
#define CFS_FORMAT_VERSION      1

/* Incompatible features: a reader that does not know a set bit must refuse */
#define CFS_INCOMPAT_PARENT     (1ULL << 0)  /* disk is a branch of a parent */
#define CFS_INCOMPAT_KNOWN      (CFS_INCOMPAT_PARENT)
/* Compatible features: ignored by readers that do not know them */
#define CFS_COMPAT_KNOWN        0ULL

#define CFS_PARENT_HINT_MAX     760

typedef struct CfsSuperblock {
    uint8_t  magic[8];                  /*    0 CFS_MAGIC */
    uint32_t format_version;            /*    8 CFS_FORMAT_VERSION */
    uint32_t superblock_size;           /*   12 sizeof(CfsSuperblock) */
    uint64_t incompat_features;         /*   16 */
    uint64_t compat_features;           /*   24 */
    uint8_t  disk_id[CFS_ID_LEN];       /*   32 random, = base version id */
    uint32_t block_size;                /*   52 power of two, 512..65536 */
    uint64_t initial_size;              /*   56 virtual size at version 0 */
    uint64_t log_start;                 /*   64 offset of the first record */
    uint64_t created_ns;                /*   72 creation time, Unix ns */
    uint8_t  secret[CFS_SECRET_LEN];    /*   80 key of the header MACs */
    uint8_t  parent_disk_id[CFS_ID_LEN];    /*  112 */
    uint32_t reserved0;                 /*  132 zero */
    uint64_t parent_version;            /*  136 */
    uint8_t  parent_version_id[CFS_ID_LEN]; /*  144 */
    uint16_t parent_hint_len;           /*  164 bytes used in parent_hint */
    uint8_t  reserved1[90];             /*  166 zero */
    char     parent_hint[CFS_PARENT_HINT_MAX]; /* 256 where to find parent */
    uint64_t checksum;                  /* 1016 XXH3-64 of bytes 0..1015 */
} CfsSuperblock;
G_STATIC_ASSERT(sizeof(CfsSuperblock) == 1024);
G_STATIC_ASSERT(G_STRUCT_OFFSET(CfsSuperblock, parent_hint) == 256);

/*
 * Checkpoint slots are double-buffered: a new checkpoint pointer is written
 * to the slot that does not hold the newest valid pointer, so a torn slot
 * write leaves the other one intact.  The slot with the highest sequence
 * whose checksum and checkpoint record both validate wins.
 */
#define CFS_SLOT_MAGIC          "CFSSLOT\0"

typedef struct CfsSlot {
    uint8_t  magic[8];                  /*  0 CFS_SLOT_MAGIC */
    uint64_t sequence;                  /*  8 bumped at every slot write */
    uint64_t checkpoint_offset;         /* 16 file offset of the record */
    uint64_t checkpoint_version;        /* 24 version it describes */
    uint8_t  checkpoint_version_id[CFS_ID_LEN]; /* 32 */
    uint32_t reserved;                  /* 52 zero */
    uint64_t checksum;                  /* 56 XXH3-64 of bytes 0..55 */
} CfsSlot;
G_STATIC_ASSERT(sizeof(CfsSlot) == 64);

/* ---------------------------------------------------------------------
 * Log records
 *
 *   [ header: CfsRecordHeader, body, payload block checksums ]
 *   [ zero padding up to header_blocks * block_size          ]
 *   [ payload: payload_blocks * block_size bytes              ]
 *
 * header_blocks is at least align_up(header_len, block_size) / block_size
 * (a writer may reserve more, to add to the record later) and at most
 * CFS_MAX_HEADER_LEN / block_size.
 *
 * header_len covers the header proper (fixed part + body + checksums).
 *
 * mac        = HMAC-SHA-256(secret, header[16 .. header_len))[0..16)
 * record id  = SHA-256(header[16 .. header_len))[0..20)
 *
 * For a chain record (every type but CHECKPOINT) the record id is the
 * version id of the version it creates, and version = previous version + 1,
 * prev_version_id = the previous version id.  Because the header holds a
 * checksum of every payload block, the version id covers the disk's whole
 * content history.  The base version (0) has version id = disk id.
 *
 * durable_version tells recovery a torn write from a rotten one: a record
 * whose payload fails its checksums is kept (its bad blocks read as I/O
 * errors) only when a valid successor chains onto it and that successor's
 * durable_version is >= its version, i.e. the writer had flushed it.
 * Otherwise it is the torn tail of a crash and the log ends before it.
 *
 * A CHECKPOINT is local to one file (replicas checkpoint at their own
 * pace): its version and prev_version_id are the current version and
 * version id, it creates no version, and it is never part of a delta.
 * --------------------------------------------------------------------- */

#define CFS_RECORD_MAGIC        0x52534643u /* "CFSR" */

enum {
    CFS_REC_WRITE       = 1,    /* guest data and zeroed ranges */
    CFS_REC_TAG         = 2,    /* name a version */
    CFS_REC_UNTAG       = 3,    /* drop a name */
    CFS_REC_REVERT      = 4,    /* make an earlier version's content current */
    CFS_REC_RESIZE      = 5,    /* change the virtual size */
    CFS_REC_CHECKPOINT  = 6,    /* local: snapshot of the index */
    /* 7 is reserved for RELOCATE (garbage collection, docs/format.rst),
     * which will come with incompatible feature bit 1 */
};

typedef struct CfsRecordHeader {
    uint8_t  mac[CFS_MAC_LEN];          /*  0 keyed checksum, see above */
    uint32_t magic;                     /* 16 CFS_RECORD_MAGIC */
    uint16_t type;                      /* 20 CFS_REC_* */
    uint16_t flags;                     /* 22 zero */
    uint32_t header_len;                /* 24 bytes, unpadded */
    uint32_t body_len;                  /* 28 bytes of type-specific body */
    uint32_t payload_blocks;            /* 32 */
    uint32_t header_blocks;             /* 36 blocks the header occupies,
                                         *    padding included: the payload
                                         *    starts that many blocks in */
    uint64_t version;                   /* 40 */
    uint8_t  prev_version_id[CFS_ID_LEN]; /* 48 */
    uint32_t reserved1;                 /* 68 zero */
    uint64_t timestamp_ns;              /* 72 wall clock at write, Unix ns */
    uint64_t writer_nonce;              /* 80 random per open for writing */
    uint64_t durable_version;           /* 88 newest version the writer knew
                                         *    durable (flushed) when it
                                         *    wrote this record */
    /* 96: body (body_len bytes), then payload_blocks * u64 checksums */
} CfsRecordHeader;
G_STATIC_ASSERT(sizeof(CfsRecordHeader) == 96);

/* Largest extent of a WRITE body or checkpoint root, in blocks */
#define CFS_EXTENT_MAX_BLOCKS   (1u << 30)
/* Largest virtual size a writer creates or resizes to (2^62 bytes) */
#define CFS_MAX_VIRTUAL_SIZE    (UINT64_MAX >> 2)

/* Bounds that keep a hostile header from making a reader allocate much */
#define CFS_MAX_HEADER_LEN      (4u << 20)
#define CFS_MAX_PAYLOAD_BLOCKS  ((CFS_MAX_HEADER_LEN - 96) / 8)
/* A chain record carries at most this much payload (checkpoints may be
 * larger, up to CFS_MAX_PAYLOAD_BLOCKS blocks) */
#define CFS_MAX_CHAIN_PAYLOAD   (64u << 20)

/*
 * Payload block checksum: XXH3-64 of the block, seeded with the block's
 * index inside the payload (so swapped blocks do not validate).
 */

/* WRITE body: an array of extents, applied in order */
enum {
    CFS_EXTENT_DATA = 1,    /* next nblocks payload blocks hold the data */
    CFS_EXTENT_ZERO = 2,    /* range reads as zeros; no payload */
};

typedef struct CfsWriteExtent {
    uint64_t guest_offset;              /*  0 multiple of block_size */
    uint32_t nblocks;                   /*  8 > 0 */
    uint16_t kind;                      /* 12 CFS_EXTENT_* */
    uint16_t reserved;                  /* 14 zero */
} CfsWriteExtent;
G_STATIC_ASSERT(sizeof(CfsWriteExtent) == 16);

/* TAG body: name follows the fixed part, no terminating NUL */
typedef struct CfsTagBody {
    uint64_t target_version;            /*  0 version being named */
    uint8_t  target_version_id[CFS_ID_LEN]; /* 8 */
    uint16_t name_len;                  /* 28 1..255 */
    uint16_t reserved;                  /* 30 zero */
} CfsTagBody;
G_STATIC_ASSERT(sizeof(CfsTagBody) == 32);

/* UNTAG body */
typedef struct CfsUntagBody {
    uint16_t name_len;                  /* 0 1..255 */
    uint16_t reserved[3];               /* 2 zero */
} CfsUntagBody;
G_STATIC_ASSERT(sizeof(CfsUntagBody) == 8);

/* REVERT body: the new version has the content (and size) of target */
typedef struct CfsRevertBody {
    uint64_t target_version;            /*  0 */
    uint8_t  target_version_id[CFS_ID_LEN]; /* 8 */
    uint32_t reserved;                  /* 28 zero */
} CfsRevertBody;
G_STATIC_ASSERT(sizeof(CfsRevertBody) == 32);

/* RESIZE body: mappings at and beyond new_size are dropped; a regrown
 * range is unallocated (zero, or the parent's data in a branch) */
typedef struct CfsResizeBody {
    uint64_t new_size;                  /* 0 multiple of block_size */
} CfsResizeBody;
G_STATIC_ASSERT(sizeof(CfsResizeBody) == 8);

/*
 * CHECKPOINT body.  The payload holds
 *   tag_count  * CfsCkptTag
 *   root_count * CfsCkptRoot            (state_bytes bytes in all)
 *   zero padding up to the next multiple of CFS_NODE_SIZE
 *   node_count * CFS_NODE_SIZE index nodes (see below)
 *   zero padding up to whole blocks.
 * Root 0 is the current version; further roots are reserved for retained
 * versions whose records garbage collection has removed (see
 * docs/format.rst, "Garbage collection").
 *
 * The extent index is a copy-on-write B+tree whose nodes live in the log.
 * A checkpoint writes only the nodes that changed since the previous one;
 * its tree refers to older checkpoints' nodes for the rest.
 */
typedef struct CfsCkptBody {
    uint64_t prev_checkpoint;           /*  0 offset of the previous one, 0 */
    uint64_t state_bytes;               /*  8 bytes of tags and roots */
    uint64_t replay_horizon;            /* 16 first record offset replay
                                         *    may need (log_start today) */
    uint32_t tag_count;                 /* 24 */
    uint32_t root_count;                /* 28 >= 1 */
    uint32_t node_count;                /* 32 nodes written by this one */
    uint32_t reserved;                  /* 36 zero */
} CfsCkptBody;
G_STATIC_ASSERT(sizeof(CfsCkptBody) == 40);

typedef struct CfsCkptTag {
    uint64_t version;                   /*   0 */
    uint8_t  version_id[CFS_ID_LEN];    /*   8 */
    uint16_t name_len;                  /*  28 */
    uint16_t reserved;                  /*  30 */
    uint64_t timestamp_ns;              /*  32 of the TAG record */
    char     name[256];                 /*  40 zero padded */
} CfsCkptTag;
G_STATIC_ASSERT(sizeof(CfsCkptTag) == 296);

typedef struct CfsCkptRoot {
    uint64_t version;                   /*  0 */
    uint8_t  version_id[CFS_ID_LEN];    /*  8 */
    uint32_t reserved;                  /* 28 zero */
    uint64_t virtual_size;              /* 32 */
    uint64_t extent_count;              /* 40 extents in the tree */
    uint64_t data_bytes;                /* 48 guest bytes of DATA extents */
    uint64_t root_node;                 /* 56 file offset of the root node;
                                         *    0 when the tree is empty */
} CfsCkptRoot;
G_STATIC_ASSERT(sizeof(CfsCkptRoot) == 64);

/*
 * Index nodes: CFS_NODE_SIZE bytes each, at any file offset inside a
 * checkpoint's node area.  A leaf (level 0) holds extents sorted by guest
 * offset, not overlapping; an inner node (level >= 1) holds children
 * sorted by key, where key is exactly the guest offset of the first extent
 * below the child.  Every node but the root is at least a quarter full.
 *
 * checksum = XXH3-64 of the whole node with the checksum field zero,
 * seeded with the node's own file offset, so a node read from the wrong
 * place does not validate.  Children are always written before their
 * parent: a child's offset is below its parent's.
 */
#define CFS_NODE_SIZE           4096
#define CFS_NODE_MAGIC          0x4e534643u /* "CFSN" */
#define CFS_NODE_MAX_LEVEL      23

typedef struct CfsNodeHeader {
    uint32_t magic;                     /*  0 CFS_NODE_MAGIC */
    uint16_t level;                     /*  4 0 = leaf */
    uint16_t count;                     /*  6 entries, >= 1 */
    uint64_t checksum;                  /*  8 see above */
} CfsNodeHeader;
G_STATIC_ASSERT(sizeof(CfsNodeHeader) == 16);

typedef struct CfsCkptExtent {          /* a leaf entry */
    uint64_t guest_offset;              /*  0 */
    uint64_t log_offset;                /*  8 data location; 0 for ZERO */
    uint64_t record_offset;             /* 16 header holding its checksums */
    uint32_t nblocks;                   /* 24 */
    uint16_t kind;                      /* 28 CFS_EXTENT_* */
    uint16_t reserved;                  /* 30 zero */
} CfsCkptExtent;
G_STATIC_ASSERT(sizeof(CfsCkptExtent) == 32);

typedef struct CfsNodeChild {           /* an inner node entry */
    uint64_t key;                       /*  0 first guest offset below */
    uint64_t offset;                    /*  8 file offset of the child */
} CfsNodeChild;
G_STATIC_ASSERT(sizeof(CfsNodeChild) == 16);

#define CFS_LEAF_MAX    ((CFS_NODE_SIZE - sizeof(CfsNodeHeader)) / \
                         sizeof(CfsCkptExtent))         /* 127 */
#define CFS_INNER_MAX   ((CFS_NODE_SIZE - sizeof(CfsNodeHeader)) / \
                         sizeof(CfsNodeChild))          /* 255 */

/* ---------------------------------------------------------------------
 * Delta stream: a header, then chain records exactly as they sit in the
 * log (padded header + payload), in version order, from from_version + 1
 * to to_version.  Records carry no file offsets, so the receiver appends
 * them at its own log end and verifies them with the same MACs, payload
 * checksums and hash chain.
 * --------------------------------------------------------------------- */
#define CFS_DELTA_MAGIC         "CFSDELTA"
#define CFS_DELTA_VERSION       1
#define CFS_DELTA_HAS_SUPERBLOCK (1u << 0)

typedef struct CfsDeltaHeader {
    uint8_t  magic[8];                  /*   0 CFS_DELTA_MAGIC */
    uint32_t delta_version;             /*   8 CFS_DELTA_VERSION */
    uint32_t flags;                     /*  12 CFS_DELTA_HAS_SUPERBLOCK */
    uint8_t  disk_id[CFS_ID_LEN];       /*  16 */
    uint32_t block_size;                /*  36 */
    uint64_t from_version;              /*  40 */
    uint8_t  from_version_id[CFS_ID_LEN]; /* 48 */
    uint32_t reserved0;                 /*  68 */
    uint64_t to_version;                /*  72 */
    uint8_t  to_version_id[CFS_ID_LEN]; /*  80 */
    uint32_t reserved1;                 /* 100 */
    uint64_t record_count;              /* 104 */
    uint64_t checksum;                  /* 112 XXH3-64 of bytes 0..111 */
} CfsDeltaHeader;
G_STATIC_ASSERT(sizeof(CfsDeltaHeader) == 120);
/*
 * With CFS_DELTA_HAS_SUPERBLOCK (set exactly when from_version is 0) the
 * header is followed by the sender's 1024-byte superblock, so the receiver
 * can create a replica with the same disk id, secret and block size.
 */

#endif /* CLOUDFS_FORMAT_H */
