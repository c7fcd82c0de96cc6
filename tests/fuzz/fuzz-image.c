/*
 * libFuzzer target for the parsers of the format core: superblock, slots,
 * record framing, record bodies, checkpoint payloads and delta streams.
 *
 * Random bytes never carry a valid MAC, so most modes build a real image
 * and seal fuzzer-chosen bodies with its key: that drives the fuzzer past
 * the MAC into body validation, replay, checkpoint parsing and check; one
 * mode seals fuzzed index nodes with their checksums, which drives it
 * into node validation and the tree walks.
 * Whatever it builds must open or fail with an error, never crash, and
 * every read must succeed or fail cleanly.
 */
#include <errno.h>
#include <string.h>
#include <xxhash.h>
#include "internal.h"

typedef struct MemFile {
    GByteArray *bytes;
} MemFile;

static int mem_pread(void *opaque, void *buf, size_t len, uint64_t offset)
{
    MemFile *f = opaque;

    if (offset > f->bytes->len || len > f->bytes->len - offset) {
        return -EIO;
    }
    memcpy(buf, f->bytes->data + offset, len);
    return 0;
}

static int mem_pwritev(void *opaque, const struct iovec *iov, int iovcnt,
                       uint64_t offset)
{
    MemFile *f = opaque;

    for (int i = 0; i < iovcnt; i++) {
        if (offset + iov[i].iov_len > (64u << 20)) {
            return -ENOSPC;
        }
        if (offset + iov[i].iov_len > f->bytes->len) {
            g_byte_array_set_size(f->bytes, offset + iov[i].iov_len);
        }
        memcpy(f->bytes->data + offset, iov[i].iov_base, iov[i].iov_len);
        offset += iov[i].iov_len;
    }
    return 0;
}

static int mem_flush(void *opaque)
{
    return 0;
}

static int mem_truncate(void *opaque, uint64_t size)
{
    MemFile *f = opaque;
    guint old = f->bytes->len;

    if (size > (64u << 20)) {
        return -ENOSPC;
    }
    g_byte_array_set_size(f->bytes, size);
    if (size > old) {
        memset(f->bytes->data + old, 0, size - old);
    }
    return 0;
}

static int64_t mem_size(void *opaque)
{
    return ((MemFile *)opaque)->bytes->len;
}

static void mem_io(CfsIO *io, MemFile *f)
{
    f->bytes = g_byte_array_new();
    *io = (CfsIO) { .opaque = f, .pread = mem_pread, .pwritev = mem_pwritev,
                    .flush = mem_flush, .truncate = mem_truncate,
                    .size = mem_size };
}

/* Open, read every block, walk, check: all must end cleanly */
static void exercise(const CfsIO *io)
{
    CfsDisk *disk = cfs_disk_open(io, 0, CFS_VERSION_HEAD, NULL);
    CfsCheckResult res;

    if (disk) {
        uint32_t bs = cfs_disk_block_size(disk);
        uint64_t size = MIN(cfs_disk_size(disk), 1u << 20);
        uint8_t *buf = g_malloc(bs);

        for (uint64_t off = 0; off + bs <= size; off += bs) {
            cfs_disk_pread(disk, buf, bs, off, NULL);
        }
        g_free(buf);
        cfs_disk_free(disk);
    }
    if (cfs_check(io, false, &res, NULL)) {
        cfs_check_result_clear(&res);
    }
}

typedef struct Input {
    const uint8_t *data;
    size_t len, pos;
} Input;

static uint32_t take(Input *in, size_t n)
{
    uint32_t v = 0;

    for (size_t i = 0; i < n && in->pos < in->len; i++) {
        v = v << 8 | in->data[in->pos++];
    }
    return v;
}

static size_t take_bytes(Input *in, uint8_t *dst, size_t n)
{
    size_t k = MIN(n, in->len - in->pos);

    memcpy(dst, in->data + in->pos, k);
    in->pos += k;
    return k;
}

/* Append one record with a fuzzed type, body and payload, sealed with the
 * image's key and chained onto prev */
static void seal_record(const CfsIO *io, const CfsSuperblock *sb,
                        Input *in, uint64_t *offset, uint64_t *version,
                        uint8_t prev[CFS_ID_LEN], bool checkpoint)
{
    uint32_t bs = GUINT32_FROM_LE(sb->block_size);
    uint16_t type = checkpoint ? CFS_REC_CHECKPOINT : 1 + take(in, 1) % 6;
    uint32_t body_len = take(in, 2) % 2048;
    uint32_t nblocks = take(in, 1) % 8;
    uint32_t header_len = sizeof(CfsRecordHeader) + body_len + 8 * nblocks;
    uint32_t padded = cfs_align_up(header_len, bs);
    uint8_t *buf = g_malloc0(padded + (size_t)nblocks * bs);
    uint8_t id[CFS_ID_LEN];
    struct iovec iov;

    take_bytes(in, buf + sizeof(CfsRecordHeader), body_len);
    take_bytes(in, buf + padded, (size_t)nblocks * bs);
    for (uint32_t i = 0; i < nblocks; i++) {
        uint64_t sum = GUINT64_TO_LE(cfs_block_checksum(
            buf + padded + (size_t)i * bs, bs, i));

        memcpy(buf + sizeof(CfsRecordHeader) + body_len + 8 * i, &sum, 8);
    }
    if (!checkpoint) {
        (*version)++;
    }
    cfs_record_seal(sb, buf, type, body_len, nblocks, padded, *version, prev,
                    1, *version, id);
    if (!checkpoint) {
        memcpy(prev, id, CFS_ID_LEN);
    }
    iov = (struct iovec) { buf, padded + (size_t)nblocks * bs };
    io->pwritev(io->opaque, &iov, 1, *offset);
    if (checkpoint) {
        CfsSlot slot = { .sequence = GUINT64_TO_LE(1),
                         .checkpoint_offset = GUINT64_TO_LE(*offset),
                         .checkpoint_version = GUINT64_TO_LE(*version) };

        memcpy(slot.checkpoint_version_id, prev, CFS_ID_LEN);
        cfs_slot_write(io, 0, &slot, NULL);
    }
    *offset += iov.iov_len;
    g_free(buf);
}

static void fuzz_sealed(Input *in, bool with_checkpoint)
{
    MemFile f;
    CfsIO io;
    CfsCreateOptions opts = { .size = 64 * 1024, .block_size = 512 };
    CfsSuperblock sb;
    uint64_t offset, version = 0;
    uint8_t prev[CFS_ID_LEN];

    mem_io(&io, &f);
    if (cfs_disk_create(&io, &opts, NULL, NULL) &&
        cfs_superblock_read(&io, &sb, NULL)) {
        offset = GUINT64_FROM_LE(sb.log_start);
        memcpy(prev, sb.disk_id, CFS_ID_LEN);
        for (int i = 0; i < 8 && in->pos < in->len; i++) {
            seal_record(&io, &sb, in, &offset, &version, prev,
                        with_checkpoint && i == 0);
        }
        exercise(&io);
    }
    g_byte_array_unref(f.bytes);
}

/*
 * A real image with a few writes, then a checkpoint whose index is one to
 * three fuzzed nodes, each with a fuzzed level and count and a correct
 * checksum; the root is the last of them.
 */
static void fuzz_nodes(Input *in)
{
    MemFile f;
    CfsIO io;
    CfsCreateOptions opts = { .size = 64 * 1024, .block_size = 512 };
    CfsSuperblock sb;
    CfsDisk *disk;
    uint8_t data[1024];

    mem_io(&io, &f);
    if (!cfs_disk_create(&io, &opts, NULL, NULL) ||
        !(disk = cfs_disk_open(&io, CFS_OPEN_RDWR, CFS_VERSION_HEAD, NULL))) {
        g_byte_array_unref(f.bytes);
        return;
    }
    memset(data, 0x5a, sizeof(data));
    cfs_disk_pwrite(disk, data, 1024, 0, NULL);
    cfs_disk_pwrite(disk, data, 512, 8192, NULL);
    cfs_disk_free(disk);
    if (cfs_superblock_read(&io, &sb, NULL)) {
        uint32_t nnodes = 1 + take(in, 1) % 3;
        uint32_t nblocks = (4096 + nnodes * CFS_NODE_SIZE) / 512;
        uint32_t body_len = sizeof(CfsCkptBody);
        uint32_t padded = cfs_align_up(sizeof(CfsRecordHeader) + body_len +
                                       8 * nblocks, 512);
        uint64_t offset = f.bytes->len;
        uint64_t nodes = offset + padded + 4096;
        g_autofree uint8_t *buf = g_malloc0(padded + nblocks * 512);
        uint8_t *payload = buf + padded;
        CfsCkptBody body = {
            .state_bytes = GUINT64_TO_LE(sizeof(CfsCkptRoot)),
            .replay_horizon = sb.log_start,
            .root_count = GUINT32_TO_LE(1),
            .node_count = GUINT32_TO_LE(nnodes),
        };
        CfsCkptRoot root = {
            .version = GUINT64_TO_LE(2),
            .virtual_size = sb.initial_size,
            .extent_count = GUINT64_TO_LE(1 + take(in, 2)),
            .data_bytes = GUINT64_TO_LE(512 * take(in, 1)),
            .root_node = GUINT64_TO_LE(nodes + (nnodes - 1) * CFS_NODE_SIZE),
        };
        CfsSlot slot = { .sequence = GUINT64_TO_LE(9),
                         .checkpoint_offset = GUINT64_TO_LE(offset),
                         .checkpoint_version = GUINT64_TO_LE(2) };
        uint8_t id[CFS_ID_LEN], prev[CFS_ID_LEN];
        struct iovec iov;

        /* the version id of version 2, from the log as written */
        disk = cfs_disk_open(&io, 0, CFS_VERSION_HEAD, NULL);
        if (!disk) {
            g_byte_array_unref(f.bytes);
            return;
        }
        memcpy(prev, cfs_disk_version_id(disk), CFS_ID_LEN);
        cfs_disk_free(disk);
        memcpy(root.version_id, prev, CFS_ID_LEN);
        memcpy(payload, &root, sizeof(root));
        for (uint32_t n = 0; n < nnodes; n++) {
            uint8_t *node = payload + 4096 + n * CFS_NODE_SIZE;
            CfsNodeHeader h = {
                .magic = GUINT32_TO_LE(CFS_NODE_MAGIC),
                .level = GUINT16_TO_LE(take(in, 1) % 3),
                .count = GUINT16_TO_LE(take(in, 1)),
            };

            take_bytes(in, node + sizeof(h),
                       take(in, 2) % (CFS_NODE_SIZE - sizeof(h) + 1));
            memcpy(node, &h, sizeof(h));
            h.checksum = GUINT64_TO_LE(XXH3_64bits_withSeed(
                node, CFS_NODE_SIZE, nodes + n * CFS_NODE_SIZE));
            memcpy(node, &h, sizeof(h));
        }
        memcpy(buf + sizeof(CfsRecordHeader), &body, sizeof(body));
        for (uint32_t i = 0; i < nblocks; i++) {
            uint64_t sum = GUINT64_TO_LE(cfs_block_checksum(
                payload + (size_t)i * 512, 512, i));

            memcpy(buf + sizeof(CfsRecordHeader) + body_len + 8 * i, &sum, 8);
        }
        cfs_record_seal(&sb, buf, CFS_REC_CHECKPOINT, body_len, nblocks,
                        padded, 2, prev, 1, 2, id);
        iov = (struct iovec) { buf, padded + nblocks * 512 };
        io.pwritev(io.opaque, &iov, 1, offset);
        memcpy(slot.checkpoint_version_id, prev, CFS_ID_LEN);
        cfs_slot_write(&io, 0, &slot, NULL);
        cfs_slot_clear(&io, 1, NULL);
        exercise(&io);
    }
    g_byte_array_unref(f.bytes);
}

static void fuzz_raw_image(Input *in)
{
    MemFile f;
    CfsIO io;

    mem_io(&io, &f);
    g_byte_array_append(f.bytes, in->data + in->pos, in->len - in->pos);
    exercise(&io);
    g_byte_array_unref(f.bytes);
}

static gssize source_input(void *buf, size_t len, void *opaque,
                           GError **errp)
{
    return take_bytes(opaque, buf, len);
}

static void fuzz_delta(Input *in)
{
    CfsDeltaReader *rd = cfs_delta_reader_new(source_input, in, NULL);
    MemFile f;
    CfsIO io;

    if (!rd) {
        return;
    }
    mem_io(&io, &f);
    if (cfs_delta_reader_superblock(rd) &&
        cfs_disk_create_replica(&io, cfs_delta_reader_superblock(rd), NULL)) {
        CfsDisk *disk = cfs_disk_open(&io, CFS_OPEN_RDWR, CFS_VERSION_HEAD,
                                      NULL);

        if (disk) {
            cfs_delta_apply(disk, rd, NULL, NULL);
            cfs_disk_free(disk);
            exercise(&io);
        }
    }
    cfs_delta_reader_free(rd);
    g_byte_array_unref(f.bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Input in = { data, size, 0 };

    switch (take(&in, 1) % 5) {
    case 0:
        fuzz_raw_image(&in);
        break;
    case 1:
        fuzz_sealed(&in, false);
        break;
    case 2:
        fuzz_sealed(&in, true);
        break;
    case 3:
        fuzz_delta(&in);
        break;
    case 4:
        fuzz_nodes(&in);
        break;
    }
    return 0;
}
