/*
 * cloudfs format core: log record headers — sealing (MAC, record id) and
 * validation of everything a header alone can prove, plus payload block
 * checksums.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "hash.h"
#include "internal.h"

const char *cfs_record_type_name(uint16_t type)
{
    switch (type) {
    case CFS_REC_WRITE:      return "write";
    case CFS_REC_TAG:        return "tag";
    case CFS_REC_UNTAG:      return "untag";
    case CFS_REC_REVERT:     return "revert";
    case CFS_REC_RESIZE:     return "resize";
    case CFS_REC_CHECKPOINT: return "checkpoint";
    default:                 return "unknown";
    }
}

uint64_t cfs_block_checksum(const void *block, uint32_t block_size,
                            uint32_t index)
{
    return XXH3_64bits_withSeed(block, block_size, index);
}

/*
 * GLib's SHA-256 and HMAC: the core links into QEMU (GPLv2), where
 * OpenSSL's licence is a problem, and a header is a few hundred bytes, so
 * an accelerated implementation would not be noticed.
 */
static void record_mac(const CfsSuperblock *sb, const uint8_t *buf,
                       uint32_t header_len, uint8_t mac[CFS_MAC_LEN])
{
    GHmac *hmac = g_hmac_new(G_CHECKSUM_SHA256, sb->secret, CFS_SECRET_LEN);
    uint8_t full[32];
    gsize full_len = sizeof(full);

    g_hmac_update(hmac, buf + CFS_MAC_LEN, header_len - CFS_MAC_LEN);
    g_hmac_get_digest(hmac, full, &full_len);
    g_hmac_unref(hmac);
    memcpy(mac, full, CFS_MAC_LEN);
}

static void record_id(const uint8_t *buf, uint32_t header_len,
                      uint8_t id[CFS_ID_LEN])
{
    GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
    uint8_t digest[32];
    gsize digest_len = sizeof(digest);

    g_checksum_update(sum, buf + CFS_MAC_LEN, header_len - CFS_MAC_LEN);
    g_checksum_get_digest(sum, digest, &digest_len);
    g_checksum_free(sum);
    memcpy(id, digest, CFS_ID_LEN);
}

/* Constant time, so a MAC check leaks nothing through timing */
static bool mac_equal(const uint8_t *a, const uint8_t *b)
{
    uint8_t diff = 0;

    for (int i = 0; i < CFS_MAC_LEN; i++) {
        diff |= a[i] ^ b[i];
    }
    return diff == 0;
}

void cfs_record_seal(const CfsSuperblock *sb, uint8_t *buf, uint16_t type,
                     uint32_t body_len, uint32_t payload_blocks,
                     uint32_t padded_len,
                     uint64_t version, const uint8_t prev_id[CFS_ID_LEN],
                     uint64_t nonce, uint64_t durable_version,
                     uint8_t id_out[CFS_ID_LEN])
{
    CfsRecordHeader *h = (CfsRecordHeader *)buf;
    uint32_t header_len = sizeof(*h) + body_len + 8 * payload_blocks;

    h->magic = GUINT32_TO_LE(CFS_RECORD_MAGIC);
    h->type = GUINT16_TO_LE(type);
    h->flags = 0;
    h->header_len = GUINT32_TO_LE(header_len);
    h->body_len = GUINT32_TO_LE(body_len);
    h->payload_blocks = GUINT32_TO_LE(payload_blocks);
    h->header_blocks = GUINT32_TO_LE(padded_len /
                                     GUINT32_FROM_LE(sb->block_size));
    h->version = GUINT64_TO_LE(version);
    memcpy(h->prev_version_id, prev_id, CFS_ID_LEN);
    h->reserved1 = 0;
    h->timestamp_ns = GUINT64_TO_LE(cfs_now_ns());
    h->writer_nonce = GUINT64_TO_LE(nonce);
    h->durable_version = GUINT64_TO_LE(durable_version);
    record_mac(sb, buf, header_len, h->mac);
    record_id(buf, header_len, id_out);
}

void cfs_record_clear(CfsRecord *r)
{
    cfs_free_aligned(r->buf);
    memset(r, 0, sizeof(*r));
}

static bool body_valid(const CfsRecordHeader *h, const uint8_t *body,
                       uint32_t block_size)
{
    uint32_t body_len = GUINT32_FROM_LE(h->body_len);
    uint32_t payload_blocks = GUINT32_FROM_LE(h->payload_blocks);
    uint64_t data_blocks = 0;

    switch (GUINT16_FROM_LE(h->type)) {
    case CFS_REC_WRITE:
        if (body_len == 0 || body_len % sizeof(CfsWriteExtent)) {
            return false;
        }
        for (uint32_t i = 0; i < body_len / sizeof(CfsWriteExtent); i++) {
            CfsWriteExtent e;

            memcpy(&e, body + i * sizeof(e), sizeof(e));
            if (GUINT64_FROM_LE(e.guest_offset) % block_size ||
                e.nblocks == 0 || e.reserved ||
                GUINT32_FROM_LE(e.nblocks) > CFS_EXTENT_MAX_BLOCKS) {
                return false;
            }
            switch (GUINT16_FROM_LE(e.kind)) {
            case CFS_EXTENT_DATA:
                data_blocks += GUINT32_FROM_LE(e.nblocks);
                break;
            case CFS_EXTENT_ZERO:
                break;
            default:
                return false;
            }
        }
        return data_blocks == payload_blocks;
    case CFS_REC_TAG: {
        CfsTagBody t;

        if (body_len < sizeof(t)) {
            return false;
        }
        memcpy(&t, body, sizeof(t));
        return payload_blocks == 0 && t.name_len && t.reserved == 0 &&
               GUINT16_FROM_LE(t.name_len) <= CFS_TAG_NAME_MAX &&
               body_len == sizeof(t) + GUINT16_FROM_LE(t.name_len) &&
               !memchr(body + sizeof(t), 0, body_len - sizeof(t));
    }
    case CFS_REC_UNTAG: {
        CfsUntagBody u;

        if (body_len < sizeof(u)) {
            return false;
        }
        memcpy(&u, body, sizeof(u));
        return payload_blocks == 0 && u.name_len &&
               !u.reserved[0] && !u.reserved[1] && !u.reserved[2] &&
               GUINT16_FROM_LE(u.name_len) <= CFS_TAG_NAME_MAX &&
               body_len == sizeof(u) + GUINT16_FROM_LE(u.name_len) &&
               !memchr(body + sizeof(u), 0, body_len - sizeof(u));
    }
    case CFS_REC_REVERT: {
        CfsRevertBody rv;

        if (body_len != sizeof(rv) || payload_blocks) {
            return false;
        }
        memcpy(&rv, body, sizeof(rv));
        return rv.reserved == 0;
    }
    case CFS_REC_RESIZE: {
        CfsResizeBody r;

        if (body_len != sizeof(r) || payload_blocks) {
            return false;
        }
        memcpy(&r, body, sizeof(r));
        return r.new_size && GUINT64_FROM_LE(r.new_size) % block_size == 0;
    }
    case CFS_REC_CHECKPOINT: {
        CfsCkptBody c;

        if (body_len != sizeof(c)) {
            return false;
        }
        memcpy(&c, body, sizeof(c));
        /* one root until garbage collection adds retained roots */
        return GUINT32_FROM_LE(c.root_count) == 1 &&
               GUINT64_FROM_LE(c.state_bytes) <=
               (uint64_t)payload_blocks * block_size;
    }
    default:
        return false;
    }
}

static bool corrupt(GError **errp, uint64_t at, const char *why)
{
    g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                "no valid record at offset %" G_GUINT64_FORMAT ": %s", at, why);
    return false;
}

bool cfs_record_load(const CfsSuperblock *sb, CfsFetchFn fetch,
                     void *opaque, uint64_t at, uint64_t limit,
                     CfsRecord *r, GError **errp)
{
    uint32_t block_size = GUINT32_FROM_LE(sb->block_size);
    CfsRecordHeader h;
    uint32_t header_len, body_len, payload_blocks, header_blocks;
    uint8_t mac[CFS_MAC_LEN];

    memset(r, 0, sizeof(*r));
    if (limit - at < block_size) {
        return corrupt(errp, at, "end of file");
    }
    if (!fetch(&h, sizeof(h), at, opaque, errp)) {
        return false;
    }
    header_len = GUINT32_FROM_LE(h.header_len);
    body_len = GUINT32_FROM_LE(h.body_len);
    payload_blocks = GUINT32_FROM_LE(h.payload_blocks);
    if (GUINT32_FROM_LE(h.magic) != CFS_RECORD_MAGIC) {
        return corrupt(errp, at, "bad magic");
    }
    if (header_len > CFS_MAX_HEADER_LEN || body_len > CFS_MAX_HEADER_LEN ||
        payload_blocks > CFS_MAX_PAYLOAD_BLOCKS ||
        header_len != sizeof(h) + (uint64_t)body_len + 8ull * payload_blocks) {
        return corrupt(errp, at, "impossible lengths");
    }
    header_blocks = GUINT32_FROM_LE(h.header_blocks);
    if ((uint64_t)header_blocks * block_size < cfs_align_up(header_len,
                                                            block_size) ||
        header_blocks > CFS_MAX_HEADER_LEN / block_size) {
        return corrupt(errp, at, "impossible lengths");
    }
    r->header_len = header_len;
    r->padded_len = header_blocks * block_size;
    r->payload_len = (uint64_t)payload_blocks * block_size;
    if (GUINT16_FROM_LE(h.type) != CFS_REC_CHECKPOINT &&
        r->payload_len > CFS_MAX_CHAIN_PAYLOAD) {
        return corrupt(errp, at, "payload too large");
    }
    if (limit - at < cfs_rec_total(r)) {
        return corrupt(errp, at, "record extends past the end");
    }
    r->buf = cfs_alloc_aligned(r->padded_len);
    memcpy(r->buf, &h, sizeof(h));
    if (!fetch(r->buf + sizeof(h), r->padded_len - sizeof(h), at + sizeof(h),
               opaque, errp)) {
        cfs_record_clear(r);
        return false;
    }
    record_mac(sb, r->buf, header_len, mac);
    if (!mac_equal(mac, h.mac)) {
        cfs_record_clear(r);
        return corrupt(errp, at, "header checksum mismatch");
    }
    if (h.flags || h.reserved1 ||
        GUINT64_FROM_LE(h.durable_version) > GUINT64_FROM_LE(h.version) ||
        !body_valid(&h, cfs_rec_body(r), block_size) ||
        !cfs_is_zero(r->buf + header_len, r->padded_len - header_len)) {
        cfs_record_clear(r);
        return corrupt(errp, at, "malformed record body");
    }
    record_id(r->buf, header_len, r->id);
    return true;
}

typedef struct FileFetch {
    const CfsIO *io;
} FileFetch;

static bool fetch_file(void *dst, size_t len, uint64_t at, void *opaque,
                       GError **errp)
{
    FileFetch *f = opaque;

    return cfs_io_pread(f->io, dst, len, at, errp);
}

bool cfs_record_read(const CfsIO *io, const CfsSuperblock *sb,
                     uint64_t offset, uint64_t file_size, CfsRecord *r,
                     GError **errp)
{
    FileFetch f = { .io = io };

    if (offset > file_size) {
        return corrupt(errp, offset, "beyond the end of the file");
    }
    return cfs_record_load(sb, fetch_file, &f, offset, file_size, r, errp);
}

/*
 * Checksum blocks that arrive in an iovec whose elements need not be
 * block sized: a block that straddles elements is gathered into a bounce
 * block for hashing only.
 */
bool cfs_record_verify_blocks(const CfsRecord *r, uint32_t block_size,
                              uint32_t first, const struct iovec *iov,
                              int iovcnt, uint64_t length, uint64_t where,
                              GError **errp)
{
    return cfs_verify_sums(cfs_rec_sums(r) + 8ull * first, block_size, first,
                           iov, iovcnt, length, where, errp);
}

bool cfs_verify_sums(const uint8_t *sums_le, uint32_t block_size,
                     uint32_t first, const struct iovec *iov, int iovcnt,
                     uint64_t length, uint64_t where, GError **errp)
{
    g_autofree uint8_t *bounce = NULL;
    uint64_t nblocks = length / block_size;
    int vi = 0;
    size_t vo = 0;

    for (uint64_t b = 0; b < nblocks; b++) {
        const uint8_t *block;
        uint32_t index = first + b;

        while (vi < iovcnt && vo == iov[vi].iov_len) {
            vi++;
            vo = 0;
        }
        g_assert(vi < iovcnt);
        if (iov[vi].iov_len - vo >= block_size) {
            block = (const uint8_t *)iov[vi].iov_base + vo;
            vo += block_size;
        } else {
            size_t got = 0;

            if (!bounce) {
                bounce = g_malloc(block_size);
            }
            while (got < block_size) {
                size_t n;

                while (vo == iov[vi].iov_len) {
                    vi++;
                    vo = 0;
                }
                n = MIN(block_size - got, iov[vi].iov_len - vo);
                memcpy(bounce + got, (uint8_t *)iov[vi].iov_base + vo, n);
                got += n;
                vo += n;
            }
            block = bounce;
        }
        uint64_t want;

        memcpy(&want, sums_le + 8ull * b, 8);
        if (cfs_block_checksum(block, block_size, index) !=
            GUINT64_FROM_LE(want)) {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                        "data block at image offset %" G_GUINT64_FORMAT
                        " is corrupt (checksum mismatch)",
                        where + b * block_size);
            return false;
        }
    }
    return true;
}

bool cfs_record_verify_payload(const CfsIO *io, const CfsRecord *r,
                               uint32_t block_size, uint64_t offset,
                               GError **errp)
{
    const uint64_t chunk = 1 << 20;
    uint64_t start = offset + r->padded_len;
    uint8_t *buf = cfs_alloc_aligned(MIN(chunk, MAX(r->payload_len, 1)));
    bool ok = true;

    for (uint64_t done = 0; ok && done < r->payload_len; done += chunk) {
        uint64_t len = MIN(chunk, r->payload_len - done);
        struct iovec iov = { .iov_base = buf, .iov_len = len };

        ok = cfs_io_pread(io, buf, len, start + done, errp) &&
             cfs_record_verify_blocks(r, block_size, done / block_size, &iov,
                                      1, len, start + done, errp);
    }
    cfs_free_aligned(buf);
    return ok;
}

/* Bytes past the log that cfs_scan_tail() reads at once */
#define TAIL_SCAN_CHUNK         (1u << 20)

/* Could the block at buf start a record?  (Unreadable: maybe.) */
static bool may_be_record(const uint8_t *buf, size_t len, bool readable)
{
    const CfsRecordHeader *h = (const CfsRecordHeader *)buf;

    return !readable || (len >= sizeof(*h) &&
                         GUINT32_FROM_LE(h->magic) == CFS_RECORD_MAGIC);
}

uint64_t cfs_scan_tail(const CfsIO *io, const CfsSuperblock *sb,
                       uint64_t from, uint64_t size, CfsTailRecordFn fn,
                       void *opaque)
{
    uint32_t bs = GUINT32_FROM_LE(sb->block_size);
    size_t chunk = MAX(TAIL_SCAN_CHUNK, bs);
    uint8_t *buf = cfs_alloc_aligned(chunk);
    uint64_t data_end = from, at = from;

    while (at < size) {
        size_t len = MIN(chunk, size - at);
        /* an unreadable chunk counts as data, its blocks as maybe records */
        bool readable = io->pread(io->opaque, buf, len, at) == 0;
        uint64_t next = at + len;

        for (size_t b = 0; b < len; b += bs) {
            size_t n = MIN(bs, len - b);
            CfsRecord r;
            bool go_on;

            if (readable && cfs_is_zero(buf + b, n)) {
                continue;
            }
            data_end = at + b + n;
            if (at + b == from || !may_be_record(buf + b, n, readable) ||
                !cfs_record_read(io, sb, at + b, size, &r, NULL)) {
                continue;
            }
            next = at + b + cfs_rec_total(&r);
            data_end = MIN(next, size);
            go_on = fn(&r, at + b, opaque);
            cfs_record_clear(&r);
            if (!go_on) {
                cfs_free_aligned(buf);
                return data_end;
            }
            break;
        }
        at = next;
    }
    cfs_free_aligned(buf);
    return data_end;
}
