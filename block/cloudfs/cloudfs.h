/*
 * cloudfs format core: public interface.
 *
 * Plain C11 + GLib, no QEMU headers: the same code runs inside QEMU
 * coroutines (block/cloudfs.c) and in ordinary processes (tools/,
 * replicator/, tests/).  The core decides where data goes and keeps the
 * metadata; the caller moves data bytes itself with vectored I/O.
 *
 * Concurrency: a CfsDisk is not thread safe.  The caller serializes every
 * call (QEMU holds a CoMutex); between cfs_append_prepare() and
 * cfs_append_complete() the caller may do the data I/O without any lock,
 * and several appends may be in flight at once.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef CLOUDFS_H
#define CLOUDFS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <glib.h>
#include "format.h"

#define CFS_ERROR (cfs_error_quark())
GQuark cfs_error_quark(void);

typedef enum {
    CFS_ERROR_IO,           /* the underlying file failed (errno in msg) */
    CFS_ERROR_NOT_CFS,      /* not a cloudfs image / delta */
    CFS_ERROR_UNSUPPORTED,  /* newer format version or unknown feature */
    CFS_ERROR_CORRUPT,      /* checksum or structure error */
    CFS_ERROR_INVALID,      /* bad argument: size, name, range */
    CFS_ERROR_NOT_FOUND,    /* no such tag / version */
    CFS_ERROR_READ_ONLY,    /* write to a historical version or RO open */
    CFS_ERROR_MISMATCH,     /* delta for another disk or other version */
    CFS_ERROR_DIVERGED,     /* histories differ */
    CFS_ERROR_EXISTS,       /* tag or file already exists */
    CFS_ERROR_INDEX,        /* an index node is corrupt: the log itself is
                             * fine and can rebuild it (check --repair) */
    CFS_ERROR_BUSY,         /* the core: wait for the appends in flight,
                             * then retry; the CLI: another process has
                             * the image open */
} CfsErrorCode;

/*
 * The one I/O interface of the core.  Every callback returns 0 or -errno.
 * pread must fill the whole buffer; reading past the end of the file is
 * an error (-EIO) that the core avoids by checking size() first.
 */
typedef struct CfsIO {
    void *opaque;
    int (*pread)(void *opaque, void *buf, size_t len, uint64_t offset);
    int (*pwritev)(void *opaque, const struct iovec *iov, int iovcnt,
                   uint64_t offset);
    int (*flush)(void *opaque);
    int (*truncate)(void *opaque, uint64_t size);
    int64_t (*size)(void *opaque);
    /* optional (may be NULL): give back the space of a range */
    int (*discard)(void *opaque, uint64_t offset, uint64_t len);
} CfsIO;

typedef struct CfsDisk CfsDisk;

/* Where a host keeps its disks, as ID.cfs files (QEMU's cloudfs:ID, the
 * replicator): the store option, else $CLOUDFS_STORE, else this */
#define CFS_STORE_DEFAULT   "/var/lib/cloudfs/store"
#define CFS_STORE_ENV       "CLOUDFS_STORE"

/* Open flags */
#define CFS_OPEN_RDWR       (1u << 0)
/* Another process may be appending (a shared or inactive read-only open):
 * records past the recovered log are not evidence of damage */
#define CFS_OPEN_SHARED     (1u << 1)

/* cfs_disk_open() version argument meaning "the current head" */
#define CFS_VERSION_HEAD    UINT64_MAX

typedef struct CfsCreateOptions {
    uint64_t size;              /* virtual size, rounded up to block_size */
    uint32_t block_size;        /* 0 = CFS_DEFAULT_BLOCK_SIZE */
    bool has_parent;
    uint8_t parent_disk_id[CFS_ID_LEN];
    uint64_t parent_version;
    uint8_t parent_version_id[CFS_ID_LEN];
    const char *parent_hint;    /* where to find the parent; may be NULL */
} CfsCreateOptions;

/* Create a new image on an empty file; fills disk_id if not NULL */
bool cfs_disk_create(const CfsIO *io, const CfsCreateOptions *opts,
                     uint8_t disk_id_out[CFS_ID_LEN], GError **errp);

/*
 * Open an image.  version = CFS_VERSION_HEAD opens the current head
 * (read-write if CFS_OPEN_RDWR); any other version opens that historical
 * version read-only.  The CfsIO is copied; its opaque must outlive the disk.
 */
CfsDisk *cfs_disk_open(const CfsIO *io, unsigned flags, uint64_t version,
                       GError **errp);
/* Resolve a snapshot name or a version number (without the '@') */
bool cfs_disk_resolve_version(CfsDisk *disk, const char *spec,
                              uint64_t *version, GError **errp);
/* Writes a checkpoint if the log grew since the last one, and trims the
 * file to the log's end (RDWR only) */
bool cfs_disk_close(CfsDisk *disk, GError **errp);
/*
 * Cut the file at the log's end: what lies past it is not the log's (a
 * writer preallocated it, or it is torn).  RDWR, with nothing in flight
 * and the open record sealed; best effort, since bytes left there only
 * cost the next writer a cleared header room (see docs/format.rst).
 */
void cfs_disk_trim(CfsDisk *disk);
/* Free without writing anything (after an error, or for RO opens) */
void cfs_disk_free(CfsDisk *disk);

/* --- Properties ---------------------------------------------------- */
/* The superblock as on disk: little-endian fields */
const CfsSuperblock *cfs_disk_superblock(CfsDisk *disk);
const uint8_t *cfs_disk_id(CfsDisk *disk);
uint32_t cfs_disk_block_size(CfsDisk *disk);
uint64_t cfs_disk_size(CfsDisk *disk);
uint64_t cfs_disk_version(CfsDisk *disk);
const uint8_t *cfs_disk_version_id(CfsDisk *disk);
bool cfs_disk_read_only(CfsDisk *disk);
/* Opened at a version older than the head (always read-only) */
bool cfs_disk_historical(CfsDisk *disk);
bool cfs_disk_has_parent(CfsDisk *disk);
uint64_t cfs_disk_log_end(CfsDisk *disk);     /* file offset of log end */
uint64_t cfs_disk_live_bytes(CfsDisk *disk);  /* data the head maps */
uint64_t cfs_disk_extent_count(CfsDisk *disk);

/* --- Reads --------------------------------------------------------- */
typedef enum {
    CFS_MAP_UNALLOCATED,    /* never written here: parent's data, or zero */
    CFS_MAP_ZERO,           /* explicitly zero */
    CFS_MAP_DATA,           /* stored at log_offset */
} CfsMapKind;

typedef struct CfsMapping {
    CfsMapKind kind;
    uint64_t guest_offset;
    uint64_t length;        /* bytes, > 0, multiple of block_size */
    uint64_t log_offset;    /* DATA: file offset of guest_offset's block */
    uint64_t record_offset; /* DATA: record whose header holds checksums */
} CfsMapping;

/*
 * Describe the first run of [offset, offset+length) that has one kind.
 * offset and length must be block aligned and inside the disk.
 */
bool cfs_disk_map(CfsDisk *disk, uint64_t offset, uint64_t length,
                  CfsMapping *out, GError **errp);

/*
 * Whether cfs_disk_data_check() of a mapping into the record at
 * record_offset can run without reading the record's header from the
 * file.  When not, a caller that reads the data may read [record_offset,
 * log_offset + length) in one I/O instead and hand the leading part (up
 * to the data) to cfs_disk_learn_record(): one read instead of two,
 * outside any lock.
 */
bool cfs_disk_record_known(CfsDisk *disk, uint64_t record_offset);
bool cfs_disk_learn_record(CfsDisk *disk, uint64_t record_offset,
                           const void *buf, size_t len, GError **errp);

/*
 * What a reader needs to check the data of a DATA mapping on its own: the
 * checksums of its blocks, copied out of their record.  A record's
 * checksums never change once its data is written, so the check touches
 * no CfsDisk: it can run after the read, outside the lock that guards the
 * disk, while other requests change it.
 */
#define CFS_DATA_CHECK_INLINE_BLOCKS 64
typedef struct CfsDataCheck {
    uint32_t block_size;
    uint32_t first;             /* the first block's index in its record */
    uint32_t nblocks;
    uint64_t log_offset;        /* where the data is, for error messages */
    uint8_t *sums_le;           /* inline_sums, or allocated when longer */
    uint8_t inline_sums[CFS_DATA_CHECK_INLINE_BLOCKS * 8];
} CfsDataCheck;

/*
 * Fill check for the DATA mapping m.  Reads the record's header from the
 * file unless cfs_disk_record_known().  check must be cleared with
 * cfs_data_check_clear() afterwards, whatever this returns.
 */
bool cfs_disk_data_check(CfsDisk *disk, const CfsMapping *m,
                         CfsDataCheck *check, GError **errp);
/* Check the data read for the mapping (check->nblocks blocks in iov) */
bool cfs_data_check_verify(const CfsDataCheck *check,
                           const struct iovec *iov, int iovcnt,
                           GError **errp);
/* Free what cfs_disk_data_check() allocated; safe on a zeroed check */
void cfs_data_check_clear(CfsDataCheck *check);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CfsDataCheck, cfs_data_check_clear)

/*
 * Convenience for ordinary processes: read guest bytes (block aligned)
 * with verification; unallocated ranges come from parent if set (a disk
 * opened by the caller at the branch's parent version), else zeros.
 */
void cfs_disk_set_parent(CfsDisk *disk, CfsDisk *parent);
bool cfs_disk_pread(CfsDisk *disk, void *buf, uint64_t length,
                    uint64_t offset, GError **errp);

/* --- Writes (group commit) ----------------------------------------- */
typedef struct CfsWrite {
    uint64_t offset;            /* guest offset, block aligned */
    uint64_t length;            /* bytes, block aligned, > 0 */
    const struct iovec *iov;    /* NULL for a zero write */
    int iovcnt;
} CfsWrite;

typedef struct CfsAppend CfsAppend;

/*
 * Add a batch of guest writes to the open WRITE record (opening one when
 * there is none).  Reserves log space and computes checksums of the data
 * (which is read, never copied: writes[].iov must stay valid and unchanged
 * until cfs_append_complete()); blocks of zeros become ZERO extents.  The
 * caller then writes cfs_append_iov() at cfs_append_offset() and reports
 * the result with cfs_append_complete().  Batches become readable in the
 * order they were prepared, whatever order they complete in; they become
 * a version (cfs_append_version()) when the record is sealed: by
 * cfs_disk_flush(), by any metadata operation, by a checkpoint, at close,
 * or by the first batch that does not fit the record's header room
 * (cfs_append_header()).  That last case needs the record's first batch
 * applied (and nothing in flight where the next record's room must first
 * be cleared, past a crash's torn tail or failed appends): otherwise this
 * fails with CFS_ERROR_BUSY (retry once an append in flight completes).
 */
CfsAppend *cfs_append_prepare(CfsDisk *disk, const CfsWrite *writes,
                              size_t nwrites, GError **errp);
uint64_t cfs_append_offset(const CfsAppend *a);
const struct iovec *cfs_append_iov(const CfsAppend *a, int *iovcnt);
/*
 * When a batch did not fit the open record it begins a new one, and the
 * full record's header must be written too: its length (0 if none), with
 * where and what.  Write it in any order with the data, in parallel if
 * you can (it is not on the data's path), and report both writes as one
 * result to cfs_append_complete().  The buffer lives until then.
 */
size_t cfs_append_header(const CfsAppend *a, CfsDisk *disk,
                         uint64_t *offset, const void **buf);
uint64_t cfs_append_version(const CfsAppend *a);
typedef enum {
    CFS_APPEND_PENDING,     /* written, waiting for an earlier append */
    CFS_APPEND_APPLIED,     /* readable; part of the history once sealed */
    CFS_APPEND_FAILED,      /* lost: its write or an earlier one failed */
} CfsAppendState;

/*
 * Report the result of the caller's write (0 or -errno; the iov may be
 * written with several pwritev calls when it is longer than IOV_MAX).
 * Appends are applied strictly in the order they were prepared, so an
 * append whose write finished before an earlier one stays PENDING until
 * that one completes; the caller must not acknowledge the guest's write
 * before its append is APPLIED.  A failed write fails every append after
 * it too (they build on it); once all of them have settled, the log
 * continues after what was applied, so a transient error is survived.
 */
CfsAppendState cfs_append_complete(CfsDisk *disk, CfsAppend *a, int ret);
CfsAppendState cfs_append_state(const CfsAppend *a);
/*
 * Why a FAILED append failed, as a negative errno: its own write's error,
 * or that of the earlier append it failed with (-EIO when the index could
 * not take a write); 0 unless FAILED
 */
int cfs_append_error(const CfsAppend *a);
/* Free a settled (APPLIED or FAILED) append */
void cfs_append_free(CfsAppend *a);
/* Number of prepared but not yet completed appends */
unsigned cfs_disk_appends_in_flight(CfsDisk *disk);
/*
 * An append failed and the tail has not started again yet: appends
 * prepared now fail too.  It starts again by itself once every append
 * in flight has settled (unless the index could not take a write).
 */
bool cfs_disk_appends_failing(CfsDisk *disk);

/* Synchronous helpers for ordinary processes (prepare + write + complete
 * + seal: each call is a version of its own) */
bool cfs_disk_pwrite(CfsDisk *disk, const void *buf, uint64_t length,
                     uint64_t offset, GError **errp);
bool cfs_disk_write_zeroes(CfsDisk *disk, uint64_t offset, uint64_t length,
                           GError **errp);

/*
 * Make everything completed so far durable: seals the open record, and
 * writes a checkpoint first when
 * the log has grown by more than the checkpoint interval since the last
 * one.  No append may be in flight.
 */
bool cfs_disk_flush(CfsDisk *disk, GError **errp);
/* Write a checkpoint now (no append in flight) */
bool cfs_disk_checkpoint(CfsDisk *disk, GError **errp);
/*
 * Whether the index nodes changed since the last checkpoint take more
 * memory than they may: a writer calls cfs_disk_checkpoint() as soon as
 * no append is in flight, flush or not, so that a guest that never
 * flushes does not grow them without bound.
 */
bool cfs_disk_checkpoint_due(CfsDisk *disk);

/*
 * Point a branch at another parent (QEMU's rebase), or make the disk
 * standalone with has_parent false; only the parent fields of opts are
 * used.  Rewrites the superblock in place, then flushes.
 */
bool cfs_disk_set_parent_ref(CfsDisk *disk, const CfsCreateOptions *opts,
                             GError **errp);

/* --- Metadata records (no append may be in flight) ------------------ */
bool cfs_disk_resize(CfsDisk *disk, uint64_t new_size, GError **errp);

typedef struct CfsTag {
    char *name;
    uint64_t version;
    uint8_t version_id[CFS_ID_LEN];
    uint64_t timestamp_ns;   /* when the TAG record was written */
} CfsTag;

/* Tag the current version (snapshot create) */
bool cfs_disk_tag(CfsDisk *disk, const char *name, GError **errp);
bool cfs_disk_untag(CfsDisk *disk, const char *name, GError **errp);
/* Returns the tags sorted by version; free with g_ptr_array_unref */
GPtrArray *cfs_disk_tags(CfsDisk *disk);
const CfsTag *cfs_disk_find_tag(CfsDisk *disk, const char *name);
/* Make version's content current again (a new version; history kept) */
bool cfs_disk_revert(CfsDisk *disk, uint64_t version, GError **errp);

/* --- History -------------------------------------------------------- */
typedef struct CfsRecordInfo {
    uint64_t offset;            /* file offset of the record */
    uint64_t total_len;         /* padded header + payload */
    uint16_t type;
    uint64_t version;
    uint8_t version_id[CFS_ID_LEN];     /* record id */
    uint8_t prev_version_id[CFS_ID_LEN];
    uint64_t timestamp_ns;
    uint32_t payload_blocks;
    const CfsRecordHeader *header;      /* whole header, header_len bytes */
} CfsRecordInfo;

typedef bool (*CfsRecordFn)(const CfsRecordInfo *rec, void *opaque,
                            GError **errp);

/*
 * Call fn for every valid record from the start of the log to its end
 * (chain and checkpoint records).  Stops early when fn returns false.
 */
bool cfs_disk_walk(CfsDisk *disk, CfsRecordFn fn, void *opaque,
                   GError **errp);

/* --- Deltas ---------------------------------------------------------- */
typedef bool (*CfsSinkFn)(const void *buf, size_t len, void *opaque,
                          GError **errp);
/* Returns bytes read (0 at end of stream) or -1 with errp set */
typedef gssize (*CfsSourceFn)(void *buf, size_t len, void *opaque,
                              GError **errp);

/* Export versions (from, to]; to = CFS_VERSION_HEAD for the head */
bool cfs_delta_export(CfsDisk *disk, uint64_t from, uint64_t to,
                      CfsSinkFn sink, void *opaque, GError **errp);

typedef struct CfsDeltaResult {
    uint64_t records_applied;
    uint64_t records_skipped;   /* already present */
    uint64_t version;           /* receiver version afterwards */
    /* On CFS_ERROR_DIVERGED: the first version whose ids differ */
    uint64_t diverged_at;
} CfsDeltaResult;

/*
 * Read a delta header (and superblock, for deltas from version 0).
 * Separate from apply so a caller can create the replica file first.
 */
typedef struct CfsDeltaReader CfsDeltaReader;
CfsDeltaReader *cfs_delta_reader_new(CfsSourceFn source, void *opaque,
                                     GError **errp);
const CfsDeltaHeader *cfs_delta_reader_header(CfsDeltaReader *r);
/* NULL unless the delta starts at the base */
const CfsSuperblock *cfs_delta_reader_superblock(CfsDeltaReader *r);
void cfs_delta_reader_free(CfsDeltaReader *r);

/* Create an empty replica from a delta's superblock */
bool cfs_disk_create_replica(const CfsIO *io, const CfsSuperblock *sb,
                             GError **errp);
/*
 * Apply the delta's records to an open (RDWR) disk.  Records the disk
 * already has are skipped; a record that differs from the disk's own at
 * the same version fails with CFS_ERROR_DIVERGED and result->diverged_at.
 * Every record is verified before it is appended and made durable at the
 * end, so a truncated delta leaves the disk at its last complete record.
 */
bool cfs_delta_apply(CfsDisk *disk, CfsDeltaReader *r,
                     CfsDeltaResult *result, GError **errp);

/* --- Check ------------------------------------------------------------ */
typedef struct CfsCheckResult {
    uint64_t records;           /* valid records */
    uint64_t versions;          /* head version */
    uint64_t log_end;           /* end of the valid log */
    uint64_t file_size;
    uint64_t torn_bytes;        /* bytes after the valid log, up to... */
    uint64_t unused_bytes;      /* ...the trailing zeros: space grown ahead
                                 * of the log and not reached */
    uint64_t corruptions;       /* bad payload blocks, bad checkpoints */
    uint64_t live_bytes;        /* data bytes the head and tags reference */
    uint64_t data_bytes;        /* payload bytes in the log */
    uint64_t leaked_bytes;      /* payload no retained version references */
    uint64_t index_corruptions; /* of them, damaged index nodes (the log
                                 * can rebuild those) */
    bool repaired;
    GPtrArray *messages;        /* char *, one line per finding */
} CfsCheckResult;

/*
 * Walk the whole log, verify every record and payload block and both
 * checkpoints, and account space.  With repair, cut a torn tail, drop
 * checkpoint pointers that are bad, and rebuild a damaged index from the
 * log (a new checkpoint).  Opens the file itself.
 */
bool cfs_check(const CfsIO *io, bool repair, CfsCheckResult *result,
               GError **errp);
void cfs_check_result_clear(CfsCheckResult *result);

/* --- Helpers ------------------------------------------------------------ */
/* 40 hex digits, static thread-local buffer per call site is not used:
 * out must hold 41 bytes */
void cfs_id_to_hex(const uint8_t id[CFS_ID_LEN], char out[41]);
bool cfs_id_from_hex(const char *hex, uint8_t id[CFS_ID_LEN]);
/* "10G", "512M", "4096", "1.5T" -> bytes; false if not a size */
bool cfs_parse_size(const char *text, uint64_t *bytes);

/* CfsIO on a POSIX file descriptor (pread/pwritev/fdatasync/ftruncate) */
void cfs_io_init_fd(CfsIO *io, int *fd);

#endif /* CLOUDFS_H */
