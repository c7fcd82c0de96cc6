/*
 * The worked example of docs/format.rst, checked against the code: the
 * superblock checksum, the payload checksums, and a WRITE header built
 * byte for byte from the spec, whose MAC the reader must accept and whose
 * record id must be the one the spec prints.  If this fails, either the
 * code or the spec is wrong; fix the one that is.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "fixture.h"

static void example_superblock(CfsSuperblock *sb)
{
    memset(sb, 0, sizeof(*sb));
    memcpy(sb->magic, CFS_MAGIC, CFS_MAGIC_LEN);
    sb->format_version = GUINT32_TO_LE(1);
    sb->superblock_size = GUINT32_TO_LE(1024);
    for (int i = 0; i < CFS_ID_LEN; i++) {
        sb->disk_id[i] = 0xa0 + i;
    }
    sb->block_size = GUINT32_TO_LE(4096);
    sb->initial_size = GUINT64_TO_LE(1ull << 30);
    sb->log_start = GUINT64_TO_LE(12288);
    sb->created_ns = GUINT64_TO_LE(1767225600000000000ull);
    for (int i = 0; i < CFS_SECRET_LEN; i++) {
        sb->secret[i] = i;
    }
    cfs_superblock_seal(sb);
}

static void test_superblock(void)
{
    CfsSuperblock sb;
    static const uint8_t first_bytes[] = {
        0x43, 0x4c, 0x4f, 0x55, 0x44, 0x46, 0x53, 0x1a,
        0x01, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00,
    };

    example_superblock(&sb);
    g_assert_cmpmem(&sb, sizeof(first_bytes), first_bytes,
                    sizeof(first_bytes));
    g_assert_cmphex(GUINT64_FROM_LE(sb.checksum), ==, 0x78113139dcf7c3abull);
}

static void test_payload_checksums(void)
{
    uint8_t block[4096];

    memset(block, 0x55, sizeof(block));
    g_assert_cmphex(cfs_block_checksum(block, 4096, 0), ==,
                    0xfd6f1773ba20782bull);
    g_assert_cmphex(cfs_block_checksum(block, 4096, 1), ==,
                    0xaa725ffdfcdca462ull);
}

/* The record header as the spec prints it, bytes 0..119 */
static const uint8_t example_header[120] = {
    0x9b, 0x56, 0x8f, 0x39, 0x35, 0x8a, 0x65, 0xf0,
    0x00, 0x1c, 0xdb, 0x7a, 0x19, 0x87, 0x73, 0xe7,
    0x43, 0x46, 0x53, 0x52, 0x01, 0x00, 0x00, 0x00,
    0x78, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
    0xb0, 0xb1, 0xb2, 0xb3, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xca, 0x94, 0x29, 0x52, 0x72, 0x86, 0x18,
    0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x2b, 0x78, 0x20, 0xba, 0x73, 0x17, 0x6f, 0xfd,
};

static bool fetch_block(void *dst, size_t len, uint64_t at, void *opaque,
                        GError **errp)
{
    const uint8_t *record = opaque;

    g_assert_cmpuint(at + len, <=, 8192);
    memcpy(dst, record + at, len);
    return true;
}

static void test_write_record(void)
{
    CfsSuperblock sb;
    uint8_t record[8192] = { 0 };
    static const uint8_t id[CFS_ID_LEN] = {
        0x1c, 0x4d, 0x9f, 0x48, 0x01, 0xfc, 0xe5, 0xa1, 0x60, 0x46,
        0x18, 0xdf, 0x62, 0xd3, 0xcb, 0x0c, 0xbc, 0xbe, 0x68, 0xaa,
    };
    GError *err = NULL;
    CfsRecord r;

    example_superblock(&sb);
    memcpy(record, example_header, sizeof(example_header));
    memset(record + 4096, 0x55, 4096);
    g_assert_true(cfs_record_load(&sb, fetch_block, record, 0, 8192, &r,
                                  &err));
    g_assert_no_error(err);
    g_assert_cmpuint(r.header_len, ==, 120);
    g_assert_cmpuint(cfs_rec_total(&r), ==, 8192);
    g_assert_cmpmem(r.id, CFS_ID_LEN, id, CFS_ID_LEN);
    cfs_record_clear(&r);

    /* one bit of the MAC off: the reader refuses the header */
    record[0] ^= 1;
    g_assert_false(cfs_record_load(&sb, fetch_block, record, 0, 8192, &r,
                                   &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_CORRUPT);
    g_clear_error(&err);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/worked-example/superblock", test_superblock);
    g_test_add_func("/worked-example/payload-checksums",
                    test_payload_checksums);
    g_test_add_func("/worked-example/write-record", test_write_record);
    return g_test_run();
}
