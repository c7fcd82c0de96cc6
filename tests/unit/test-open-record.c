/*
 * The open WRITE record: batches are readable as soon as their data is
 * written, become one version when the record is sealed (flush, metadata,
 * full header room), and a crash before the seal loses exactly them:
 * never a sealed version, never bytes nobody wrote.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include "fixture.h"

#define BS 4096
#define NBLOCKS 256
#define SIZE ((uint64_t)NBLOCKS * BS)

static CfsAppendState write_and_complete(CfsDisk *disk, CfsAppend *a)
{
    return cfs_append_complete(disk, a, test_append_write(disk, a));
}

/* One batch, written and applied */
static void append_one(CfsDisk *disk, const uint8_t *buf, uint64_t len,
                       uint64_t offset)
{
    g_assert_cmpint(test_append(disk, buf, len, offset), ==,
                    CFS_APPEND_APPLIED);
}

/* Reopen t's image: its head is version, holding content; it checks clean */
static void assert_reopens(TestImage *t, uint64_t version,
                           const uint8_t *content)
{
    GError *err = NULL;
    CfsCheckResult res;
    CfsDisk *disk = test_open(t, 0, CFS_VERSION_HEAD);

    g_assert_cmpuint(cfs_disk_version(disk), ==, version);
    test_assert_content(disk, content, SIZE);
    cfs_disk_free(disk);
    g_assert_true(cfs_check(&t->io, false, &res, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(res.corruptions, ==, 0);
    cfs_check_result_clear(&res);
}

/* Flush, crash, reopen: the flush made version, and it survived */
static void crash_after_flush(TestImage *t, CfsDisk *disk, uint64_t version,
                              const uint8_t *content)
{
    GError *err = NULL;

    g_assert_true(cfs_disk_flush(disk, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(cfs_disk_version(disk), ==, version);
    cfs_disk_free(disk);
    assert_reopens(t, version, content);
}

/*
 * Single-block writes share one header block: (4096 - 96) / (16 + 8) =
 * 166 of them fit; the 167th seals the record and opens the next.  The
 * log grows by one 4 KiB header per 166 blocks of data.
 */
static void test_header_room_full(void)
{
    TestImage t;
    CfsDisk *disk;
    uint8_t buf[BS];
    uint64_t start;
    int i;

    test_image_init(&t);
    disk = test_create_open(&t, SIZE, BS);
    start = cfs_disk_log_end(disk);
    for (i = 0; i < 166; i++) {
        test_fill(buf, BS, i + 1);
        /* every other block: no two writes merge into one extent */
        append_one(disk, buf, BS, (uint64_t)(2 * i % NBLOCKS) * BS);
        g_assert_cmpuint(cfs_disk_version(disk), ==, 0);
    }
    g_assert_cmpuint(cfs_disk_log_end(disk) - start, ==, (166 + 1) * BS);
    test_fill(buf, BS, 1000);
    append_one(disk, buf, BS, 3 * BS);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 1);
    g_assert_cmpuint(disk->valid_end - start, ==, (166 + 1) * BS);
    cfs_disk_free(disk);    /* a crash: the second record is lost */

    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 1);
    g_assert_cmpuint(cfs_disk_extent_count(disk), >=, 128);
    test_assert_range(disk, 3 * BS, BS, NULL);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

/*
 * The batch that begins the next record writes the full one's header;
 * while it is in flight the full record's blocks stay readable, and if
 * it fails the full record is open again and its header written later.
 */
static void test_frozen_record(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    static uint8_t model[SIZE];
    uint8_t buf[BS], lost[BS];
    CfsAppend *a;
    uint64_t header_at;
    const void *header;

    test_image_init(&t);
    disk = test_create_open(&t, SIZE, BS);
    for (int i = 0; i < 166; i++) {
        uint64_t at = (uint64_t)(2 * i % NBLOCKS) * BS;

        test_fill(model + at, BS, i + 1);
        append_one(disk, model + at, BS, at);
    }
    test_fill(lost, BS, 999);
    a = test_prepare(disk, lost, BS, BS, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(cfs_append_header(a, disk, &header_at, &header), ==, BS);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 0);
    /* the full record's header is not in the file yet: reads go on */
    test_assert_range(disk, 2 * BS, BS, model + 2 * BS);
    g_assert_cmpint(cfs_append_complete(disk, a, -EIO), ==,
                    CFS_APPEND_FAILED);
    cfs_append_free(a);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 0);

    /* open again, and still full: the next batch freezes it anew */
    test_fill(buf, BS, 1000);
    memcpy(model + 3 * BS, buf, BS);
    a = test_prepare(disk, buf, BS, 3 * BS, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(cfs_append_header(a, disk, &header_at, &header), ==, BS);
    g_assert_cmpint(write_and_complete(disk, a), ==, CFS_APPEND_APPLIED);
    cfs_append_free(a);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 1);
    g_assert_true(cfs_disk_flush(disk, &err));
    g_assert_cmpuint(cfs_disk_version(disk), ==, 2);
    cfs_disk_free(disk);

    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 2);
    test_assert_content(disk, model, SIZE);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

/*
 * Records that fill up get more header room: 1 MiB batches need half a
 * header block each, so with a fixed room every batch would be a record
 * (and a header write) of its own.  A flush sizes the next room by need
 * again.  Rooms larger than the header read back like any other record.
 */
static void test_header_room_grows(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    g_autofree uint8_t *buf = g_malloc(SIZE);
    uint64_t versions;
    CfsCheckResult res;

    test_image_init(&t);
    disk = test_create_open(&t, SIZE, BS);
    for (int i = 0; i < 100; i++) {
        test_fill(buf, SIZE, i + 1);
        append_one(disk, buf, SIZE, 0);
    }
    versions = cfs_disk_version(disk);
    g_assert_cmpuint(versions, >=, 3);
    g_assert_cmpuint(versions, <, 12);
    g_assert_cmpuint(disk->open.room, ==, CFS_OPEN_ROOM_MAX);
    g_assert_true(cfs_disk_flush(disk, &err));
    g_assert_no_error(err);
    append_one(disk, buf, BS, 0);
    g_assert_cmpuint(disk->open.room, ==, BS);
    g_assert_true(cfs_disk_close(disk, &err));

    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(cfs_disk_version(disk), ==, versions + 2);
    test_assert_content(disk, buf, SIZE);
    cfs_disk_free(disk);
    g_assert_true(cfs_check(&t.io, false, &res, &err));
    g_assert_cmpuint(res.corruptions, ==, 0);
    g_assert_cmpuint(res.torn_bytes, ==, 0);
    cfs_check_result_clear(&res);
    test_image_cleanup(&t);
}

/*
 * A full record is frozen while its last batches are still in flight:
 * the batch that begins the next record writes its header at once, and
 * the record becomes a version once that batch and every batch before it
 * are applied, whatever order their writes finish in.  Not before its
 * first batch is applied (that one writes zeros over the header's room):
 * the second record fills up while its first batch, which writes the
 * first record's header, is in flight, and waits.  A flush, then a
 * crash: every version is there, the file checks clean.
 */
static void test_freeze_while_in_flight(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    static uint8_t bufs[600][BS];
    static uint8_t model[SIZE];
    CfsAppend *a[600];
    uint64_t header_at;
    const void *header;
    int n = 0, carrier = -1;

    memset(model, 0, sizeof(model));
    test_image_init(&t);
    disk = test_create_open(&t, SIZE, BS);
    for (;;) {
        uint64_t at = (uint64_t)(2 * n % NBLOCKS) * BS;

        g_assert_cmpint(n, <, G_N_ELEMENTS(a));
        test_fill(bufs[n], BS, n + 1);
        a[n] = test_prepare(disk, bufs[n], BS, at, &err);
        if (!a[n]) {
            break;
        }
        if (cfs_append_header(a[n], disk, &header_at, &header)) {
            g_assert_cmpint(carrier, ==, -1);
            carrier = n;
        }
        memcpy(model + at, bufs[n], BS);
        if (n == 0) {
            /* the first batch's room is written before the header */
            g_assert_cmpint(write_and_complete(disk, a[0]), ==,
                            CFS_APPEND_APPLIED);
        }
        n++;
    }
    g_assert_error(err, CFS_ERROR, CFS_ERROR_BUSY);
    g_clear_error(&err);
    /* 166 batches fill the first record, the next one has twice the room */
    g_assert_cmpint(carrier, ==, 166);
    g_assert_cmpint(n, ==, 166 + (2 * BS - 96) / 24);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 0);
    /* the last write finishes first: each waits for those before it */
    for (int i = n - 1; i >= 1; i--) {
        g_assert_cmpint(write_and_complete(disk, a[i]), ==,
                        i > 1 ? CFS_APPEND_PENDING : CFS_APPEND_APPLIED);
    }
    for (int i = 0; i < n; i++) {
        g_assert_cmpint(cfs_append_state(a[i]), ==, CFS_APPEND_APPLIED);
        cfs_append_free(a[i]);
    }
    g_assert_cmpuint(cfs_disk_version(disk), ==, 1);
    test_assert_content(disk, model, SIZE);
    /* the frozen record is a version: the full second one freezes now */
    test_fill(bufs[n], BS, n + 1);
    memcpy(model + 2 * n % NBLOCKS * BS, bufs[n], BS);
    append_one(disk, bufs[n], BS, (uint64_t)(2 * n % NBLOCKS) * BS);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 2);
    crash_after_flush(&t, disk, 3, model);
    test_image_cleanup(&t);
}

/*
 * After a flush a record's room fits its first batch only.  A second
 * big batch finds it full while the first is still in flight: it waits
 * (the first batch's zeros over the room must not land on the header),
 * and freezes the record once the first is applied.
 */
static void test_freeze_waits_for_first_batch(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    g_autofree uint8_t *one = g_malloc(SIZE);
    g_autofree uint8_t *two = g_malloc(SIZE);
    uint8_t block[BS];
    CfsAppend *a, *b;

    test_fill(block, BS, 1);
    test_fill(one, SIZE, 2);
    test_fill(two, SIZE, 3);
    test_image_init(&t);
    disk = test_create_open(&t, SIZE, BS);
    append_one(disk, block, BS, 0);
    g_assert_true(cfs_disk_flush(disk, &err));
    g_assert_no_error(err);
    a = test_prepare(disk, one, SIZE, 0, &err);
    g_assert_no_error(err);
    g_assert_null(test_prepare(disk, two, SIZE, 0, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_BUSY);
    g_clear_error(&err);
    g_assert_cmpint(write_and_complete(disk, a), ==, CFS_APPEND_APPLIED);
    cfs_append_free(a);
    b = test_prepare(disk, two, SIZE, 0, &err);
    g_assert_no_error(err);
    g_assert_cmpint(write_and_complete(disk, b), ==, CFS_APPEND_APPLIED);
    cfs_append_free(b);
    crash_after_flush(&t, disk, 3, two);
    test_image_cleanup(&t);
}

/*
 * A batch of the frozen record fails while the batch that writes the
 * record's header succeeds: that header is in the file and lists the
 * failed batch.  The record is open again with the batches before it,
 * and its room is zeroed before anything else goes into it: the very
 * bytes written again at the failed batch's place, for another guest
 * offset, must not let the old header pass, nor describe the failed
 * write, after a crash.  Flushed instead, the record holds exactly the
 * batches that succeeded.
 */
static void frozen_batch_fails(bool crash)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    static uint8_t model[SIZE];
    uint8_t failed[BS], next[BS];
    const uint64_t failed_at = 1 * BS, again_at = 3 * BS;
    CfsAppend *b, *c;
    uint64_t b_offset;

    memset(model, 0, sizeof(model));
    test_image_init(&t);
    disk = test_create_open(&t, SIZE, BS);
    for (int i = 0; i < 165; i++) {
        uint64_t at = (uint64_t)(4 + 2 * i % (NBLOCKS - 4)) * BS;

        test_fill(model + at, BS, i + 1);
        append_one(disk, model + at, BS, at);
    }
    test_fill(failed, BS, 500);
    test_fill(next, BS, 501);
    b = test_prepare(disk, failed, BS, failed_at, &err);
    g_assert_no_error(err);
    b_offset = cfs_append_offset(b);
    c = test_prepare(disk, next, BS, 2 * BS, &err);
    g_assert_no_error(err);
    g_assert_cmpint(write_and_complete(disk, c), ==, CFS_APPEND_PENDING);
    /* b fails, and its data never reaches the file */
    g_assert_cmpint(cfs_append_complete(disk, b, -EIO), ==,
                    CFS_APPEND_FAILED);
    g_assert_cmpint(cfs_append_state(c), ==, CFS_APPEND_FAILED);
    cfs_append_free(b);
    cfs_append_free(c);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 0);
    g_assert_cmpuint(cfs_disk_log_end(disk), ==, b_offset);

    /* the same bytes again, for another offset, land where b would have */
    b = test_prepare(disk, failed, BS, again_at, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(cfs_append_offset(b), ==, b_offset);
    g_assert_cmpint(write_and_complete(disk, b), ==, CFS_APPEND_APPLIED);
    cfs_append_free(b);
    memcpy(model + again_at, failed, BS);
    test_assert_content(disk, model, SIZE);
    if (crash) {
        /* nothing was sealed: nothing of the failed write either */
        static const uint8_t nothing[SIZE];

        cfs_disk_free(disk);
        assert_reopens(&t, 0, nothing);
    } else {
        g_assert_true(cfs_disk_close(disk, &err));
        g_assert_no_error(err);
        assert_reopens(&t, 1, model);
    }
    test_image_cleanup(&t);
}

static void test_frozen_batch_fails_crash(void)
{
    frozen_batch_fails(true);
}

static void test_frozen_batch_fails_flush(void)
{
    frozen_batch_fails(false);
}

/*
 * A failed batch loses itself and what was prepared after it, never the
 * batches before it: their writes were acknowledged.
 */
static void test_failure_keeps_applied_batches(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    uint8_t one[BS], two[BS], three[BS];
    CfsAppend *a;

    test_fill(one, BS, 1);
    test_fill(two, BS, 2);
    test_fill(three, BS, 3);
    test_image_init(&t);
    disk = test_create_open(&t, SIZE, BS);
    append_one(disk, one, BS, 0);
    a = test_prepare(disk, two, BS, BS, &err);
    g_assert_no_error(err);
    g_assert_cmpint(cfs_append_complete(disk, a, -ENOSPC), ==,
                    CFS_APPEND_FAILED);
    cfs_append_free(a);
    append_one(disk, three, BS, 2 * BS);
    g_assert_true(cfs_disk_flush(disk, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 1);
    cfs_disk_free(disk);

    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    test_assert_range(disk, 0, BS, one);
    test_assert_range(disk, BS, BS, NULL);
    test_assert_range(disk, 2 * BS, BS, three);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

/*
 * A failed batch fails the batch in flight behind it at once, but the log
 * tail starts over only once that batch's write has finished too: a new
 * batch must never be placed where an old write may still land.
 */
static void test_failure_waits_for_writes_in_flight(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    uint8_t one[BS], two[BS], three[BS];
    CfsAppend *a0, *a1, *a2;
    uint64_t first_at;

    test_fill(one, BS, 1);
    test_fill(two, BS, 2);
    test_fill(three, BS, 3);
    test_image_init(&t);
    disk = test_create_open(&t, SIZE, BS);
    a0 = test_prepare(disk, one, BS, 0, &err);
    a1 = test_prepare(disk, two, BS, BS, &err);
    g_assert_no_error(err);
    first_at = cfs_append_offset(a0);
    g_assert_cmpint(cfs_append_complete(disk, a0, -EIO), ==,
                    CFS_APPEND_FAILED);
    g_assert_cmpint(cfs_append_state(a1), ==, CFS_APPEND_FAILED);
    /* a1's write is still running: no new batch yet */
    g_assert_null(test_prepare(disk, three, BS, 2 * BS, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_IO);
    g_clear_error(&err);
    g_assert_cmpint(write_and_complete(disk, a1), ==, CFS_APPEND_FAILED);
    cfs_append_free(a0);
    cfs_append_free(a1);
    /* settled: the tail starts over where a0 would have gone */
    a2 = test_prepare(disk, three, BS, 2 * BS, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(cfs_append_offset(a2), ==, first_at);
    g_assert_cmpint(write_and_complete(disk, a2), ==, CFS_APPEND_APPLIED);
    cfs_append_free(a2);
    g_assert_true(cfs_disk_close(disk, &err));

    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 1);
    test_assert_range(disk, BS, BS, NULL);
    test_assert_range(disk, 2 * BS, BS, three);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

/*
 * Past failed appends the file may hold their bytes: a record that opens
 * below their end first has its room cleared, synchronously, so a full
 * record there is frozen only with nothing in flight.  What is written
 * there reads back after a flush and a crash, and the file checks clean.
 */
static void test_full_below_stale_end(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    static uint8_t model[SIZE];
    static uint8_t bufs[200][BS];
    g_autofree uint8_t *failed = g_malloc(200 * BS);
    CfsAppend *a, *held;
    int n;

    memset(model, 0, sizeof(model));
    test_image_init(&t);
    disk = test_create_open(&t, SIZE, BS);
    /* 200 blocks whose write lands but reports an error */
    test_fill(failed, 200 * BS, 7);
    a = test_prepare(disk, failed, 200 * BS, 0, &err);
    g_assert_no_error(err);
    g_assert_cmpint(test_append_write(disk, a), ==, 0);
    g_assert_cmpint(cfs_append_complete(disk, a, -EIO), ==,
                    CFS_APPEND_FAILED);
    cfs_append_free(a);
    /* 165 single blocks, then one held in flight: the room is full */
    for (n = 0; n < 166; n++) {
        uint64_t at = (uint64_t)(2 * n % NBLOCKS) * BS;

        test_fill(bufs[n], BS, n + 1);
        memcpy(model + at, bufs[n], BS);
        if (n < 165) {
            append_one(disk, bufs[n], BS, at);
        }
    }
    held = test_prepare(disk, bufs[165], BS, 330 % NBLOCKS * BS, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(cfs_disk_log_end(disk), <, disk->stale_end);
    test_fill(bufs[166], BS, 167);
    g_assert_null(test_prepare(disk, bufs[166], BS, BS, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_BUSY);
    g_clear_error(&err);
    g_assert_cmpint(write_and_complete(disk, held), ==, CFS_APPEND_APPLIED);
    cfs_append_free(held);
    /* settled: the next record's room is cleared, the full one frozen */
    memcpy(model + BS, bufs[166], BS);
    append_one(disk, bufs[166], BS, BS);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 1);
    crash_after_flush(&t, disk, 2, model);
    test_image_cleanup(&t);
}

/*
 * A torn record's header, left past the log by a crash, must not pass
 * for the header of the record written over it, even when the new
 * record's data is the very data the torn one lost (a guest replaying
 * the same writes after a reboot).
 */
static void test_stale_header_cleared(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    uint8_t a[BS], b[2 * BS], junk[BS];
    uint64_t torn_at, end;

    test_fill(a, BS, 1);
    test_fill(b, 2 * BS, 2);
    test_image_init(&t);
    disk = test_create_open(&t, SIZE, BS);
    g_assert_true(cfs_disk_pwrite(disk, a, BS, 0, &err));
    torn_at = cfs_disk_log_end(disk);
    g_assert_true(cfs_disk_pwrite(disk, b, 2 * BS, 8 * BS, &err));
    end = cfs_disk_log_end(disk);
    cfs_disk_free(disk);
    /* tear version 2: its last payload block never made it */
    memset(junk, 0xee, sizeof(junk));
    g_assert_cmpint(pwrite(t.fd, junk, BS, end - BS), ==, BS);

    disk = test_open(&t, CFS_OPEN_RDWR, CFS_VERSION_HEAD);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 1);
    g_assert_cmpuint(cfs_disk_log_end(disk), ==, torn_at);
    /* the same write again, same place in the log; then a crash */
    append_one(disk, b, 2 * BS, 8 * BS);
    g_assert_cmpuint(cfs_disk_log_end(disk), ==, end);
    cfs_disk_free(disk);

    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 1);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

/*
 * Random batches into open records, flushes now and then; every version
 * a seal made is remembered with its content and where its record ends.
 * Then the writer crashes and the file is cut at random points past the
 * last flush: each reopen lands on the newest version whose record lies
 * before the cut, reads exactly its content, and never falls behind the
 * last flush.
 */
typedef struct Sealed {
    uint64_t end;
    uint8_t *content;
} Sealed;

static void test_crash_and_cut(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    g_autofree uint8_t *model = g_malloc0(SIZE);
    g_autofree uint8_t *file = NULL;
    GArray *sealed = g_array_new(FALSE, TRUE, sizeof(Sealed));
    uint64_t flushed_version = 0, flushed_end, len;
    gsize file_len;

    test_image_init(&t);
    disk = test_create_open(&t, SIZE, BS);
    g_array_set_size(sealed, 1);
    g_array_index(sealed, Sealed, 0).content = g_malloc0(SIZE);
    flushed_end = cfs_disk_log_end(disk);
    for (int i = 0; i < 600; i++) {
        uint64_t nblocks = g_test_rand_int_range(1, 5);
        uint64_t first = g_test_rand_int_range(0, NBLOCKS - nblocks + 1);
        g_autofree uint8_t *buf = g_malloc(nblocks * BS);
        uint64_t before = cfs_disk_version(disk);
        CfsAppend *a;

        test_fill(buf, nblocks * BS, i + 7);
        if (g_test_rand_int_range(0, 8) == 0) {
            memset(buf, 0, BS);     /* a ZERO extent in the batch */
        }
        a = test_prepare(disk, buf, nblocks * BS, first * BS, &err);
        g_assert_no_error(err);
        g_assert_cmpint(write_and_complete(disk, a), ==, CFS_APPEND_APPLIED);
        cfs_append_free(a);
        if (cfs_disk_version(disk) != before) {
            /* the batch did not fit: it wrote the full record's header,
             * and that record is a version without the batch */
            Sealed s = { disk->valid_end, g_memdup2(model, SIZE) };

            g_assert_cmpuint(cfs_disk_version(disk), ==, sealed->len);
            g_array_append_val(sealed, s);
        }
        memcpy(model + first * BS, buf, nblocks * BS);
        if (g_test_rand_int_range(0, 40) == 0) {
            Sealed s;

            g_assert_true(cfs_disk_flush(disk, &err));
            g_assert_no_error(err);
            s = (Sealed) { disk->valid_end, g_memdup2(model, SIZE) };
            g_assert_cmpuint(cfs_disk_version(disk), ==, sealed->len);
            g_array_append_val(sealed, s);
            flushed_version = cfs_disk_version(disk);
            flushed_end = disk->valid_end;
        }
    }
    /* reads see every batch, sealed or not */
    test_assert_content(disk, model, SIZE);
    g_assert_cmpuint(sealed->len, >, 3);
    cfs_disk_free(disk);    /* crash */

    g_assert_true(g_file_get_contents(t.path, (char **)&file, &file_len,
                                      NULL));
    for (int k = 0; k < 60; k++) {
        uint64_t expect = 0;

        len = k == 0 ? file_len
                     : flushed_end + g_test_rand_int_range(
                           0, file_len - flushed_end + 1);
        g_assert_cmpint(ftruncate(t.fd, 0), ==, 0);
        g_assert_cmpint(pwrite(t.fd, file, len, 0), ==, (ssize_t)len);
        for (guint v = 0; v < sealed->len; v++) {
            if (g_array_index(sealed, Sealed, v).end <= len) {
                expect = v;
            }
        }
        g_assert_cmpuint(expect, >=, flushed_version);
        disk = test_open(&t, 0, CFS_VERSION_HEAD);
        g_assert_cmpuint(cfs_disk_version(disk), ==, expect);
        test_assert_content(disk,
                            g_array_index(sealed, Sealed, expect).content,
                            SIZE);
        cfs_disk_free(disk);
    }
    for (guint v = 0; v < sealed->len; v++) {
        g_free(g_array_index(sealed, Sealed, v).content);
    }
    g_array_free(sealed, TRUE);
    test_image_cleanup(&t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/open-record/header-room-full", test_header_room_full);
    g_test_add_func("/open-record/frozen-record", test_frozen_record);
    g_test_add_func("/open-record/header-room-grows", test_header_room_grows);
    g_test_add_func("/open-record/freeze-while-in-flight",
                    test_freeze_while_in_flight);
    g_test_add_func("/open-record/freeze-waits-for-first-batch",
                    test_freeze_waits_for_first_batch);
    g_test_add_func("/open-record/frozen-batch-fails-crash",
                    test_frozen_batch_fails_crash);
    g_test_add_func("/open-record/frozen-batch-fails-flush",
                    test_frozen_batch_fails_flush);
    g_test_add_func("/open-record/failure-keeps-applied-batches",
                    test_failure_keeps_applied_batches);
    g_test_add_func("/open-record/failure-waits-for-writes-in-flight",
                    test_failure_waits_for_writes_in_flight);
    g_test_add_func("/open-record/full-below-stale-end",
                    test_full_below_stale_end);
    g_test_add_func("/open-record/stale-header-cleared",
                    test_stale_header_cleared);
    g_test_add_func("/open-record/crash-and-cut", test_crash_and_cut);
    return g_test_run();
}
