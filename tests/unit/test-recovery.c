/*
 * Crash safety by crashing: a small log with every record type is cut at
 * every byte offset, and torn or rotten payloads are planted in it.  Each
 * reopen must land on the newest version whose records are whole, read
 * exactly that version's content, never a stale record after a torn one,
 * and never wrong bytes: a rotten block reads as an error.
 */
#include <string.h>
#include <unistd.h>
#include "fixture.h"

#define BS 512
#define SIZE (32 * 1024)
#define MAXV 16
#define MiB_ (1024 * 1024)

typedef struct Log {
    uint8_t *bytes;             /* the whole image file */
    uint64_t len;
    uint64_t end[MAXV];         /* file offset after the record of v */
    uint8_t *content[MAXV];     /* expected content at version v */
    uint64_t size[MAXV];
    uint64_t versions;
    uint64_t ckpt_offset;
} Log;

static void snap(Log *log, CfsDisk *disk)
{
    uint64_t v = cfs_disk_version(disk);

    g_assert_cmpuint(v, <, MAXV);
    g_free(log->content[v]);
    log->content[v] = test_read_all(disk);
    log->size[v] = cfs_disk_size(disk);
    log->end[v] = cfs_disk_log_end(disk);
    log->versions = v;
}

static void write_at(CfsDisk *disk, uint64_t off, uint64_t len, int seed)
{
    g_autofree uint8_t *buf = g_malloc(len);
    GError *err = NULL;

    test_fill(buf, len, seed);
    if (seed == 0) {
        memset(buf + BS, 0, BS);    /* a zero block inside a write */
    }
    g_assert_true(cfs_disk_pwrite(disk, buf, len, off, &err));
    g_assert_no_error(err);
}

/* v1..v9 with every record type, a checkpoint after v4 */
static void build_log(TestImage *t, Log *log)
{
    CfsDisk *disk = test_create_open(t, SIZE, BS);
    GError *err = NULL;

    memset(log, 0, sizeof(*log));
    snap(log, disk);
    write_at(disk, 0, 4 * BS, 0);                       snap(log, disk);
    write_at(disk, 8 * BS, 3 * BS, 1);                  snap(log, disk);
    g_assert_true(cfs_disk_tag(disk, "first", &err));   snap(log, disk);
    write_at(disk, 2 * BS, 2 * BS, 2);                  snap(log, disk);
    g_assert_true(cfs_disk_checkpoint(disk, &err));
    log->ckpt_offset = disk->ckpt_offset;
    g_assert_true(cfs_disk_write_zeroes(disk, 0, BS, &err)); snap(log, disk);
    g_assert_true(cfs_disk_revert(disk, 2, &err));      snap(log, disk);
    g_assert_true(cfs_disk_resize(disk, SIZE / 2, &err)); snap(log, disk);
    write_at(disk, 20 * BS, 5 * BS, 3);                 snap(log, disk);
    g_assert_true(cfs_disk_untag(disk, "first", &err)); snap(log, disk);
    g_assert_no_error(err);
    g_assert_cmpuint(log->versions, ==, 9);
    cfs_disk_free(disk);
    g_assert_true(g_file_get_contents(t->path, (char **)&log->bytes,
                                      &log->len, NULL));
}

static void free_log(Log *log)
{
    for (int i = 0; i < MAXV; i++) {
        g_free(log->content[i]);
    }
    g_free(log->bytes);
}

static void restore(TestImage *t, const Log *log, uint64_t len)
{
    g_assert_cmpint(ftruncate(t->fd, 0), ==, 0);
    g_assert_cmpint(pwrite(t->fd, log->bytes, len, 0), ==, (ssize_t)len);
}

/* The newest version whose records all lie before the cut */
static uint64_t expected_version(const Log *log, uint64_t cut)
{
    uint64_t v = 0;

    for (uint64_t k = 1; k <= log->versions; k++) {
        if (log->end[k] <= cut) {
            v = k;
        }
    }
    return v;
}

static void assert_at_version(CfsDisk *disk, const Log *log, uint64_t v)
{
    g_assert_cmpuint(cfs_disk_version(disk), ==, v);
    g_assert_cmpuint(cfs_disk_size(disk), ==, log->size[v]);
    test_assert_content(disk, log->content[v], log->size[v]);
}

static void test_cut_everywhere(void)
{
    TestImage t;
    Log log;
    uint64_t start;

    test_image_init(&t);
    build_log(&t, &log);
    start = cfs_align_up(CFS_META_END, BS);
    for (uint64_t cut = start; cut <= log.len; cut++) {
        GError *err = NULL;
        CfsDisk *disk;

        restore(&t, &log, cut);
        disk = cfs_disk_open(&t.io, 0, CFS_VERSION_HEAD, &err);
        g_assert_no_error(err);
        assert_at_version(disk, &log, expected_version(&log, cut));
        cfs_disk_free(disk);
    }
    free_log(&log);
    test_image_cleanup(&t);
}

/*
 * A torn append followed by a later one that did reach the disk (several
 * appends in flight): the later one must not come back, now or after new
 * writes land on the same offsets.
 */
static void test_no_stale_resurrection(void)
{
    TestImage t;
    Log log;
    GError *err = NULL;
    CfsDisk *disk;
    uint8_t junk[BS];

    test_image_init(&t);
    build_log(&t, &log);
    restore(&t, &log, log.len);
    /* tear v8's payload: its last payload block is garbage */
    memset(junk, 0xee, sizeof(junk));
    g_assert_cmpint(pwrite(t.fd, junk, BS, log.end[8] - BS), ==, BS);
    disk = test_open(&t, CFS_OPEN_RDWR, CFS_VERSION_HEAD);
    /* v9 chains onto v8, but its writer never flushed v8: torn, not rot */
    assert_at_version(disk, &log, 7);
    /* write a new v8 of the same shape over it and crash (no close) */
    write_at(disk, 20 * BS, 5 * BS, 3);
    g_assert_cmpuint(cfs_disk_log_end(disk), ==, log.end[8]);
    cfs_disk_free(disk);
    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    /* the old v9 still sits after it but chains to the old v8 */
    g_assert_cmpuint(cfs_disk_version(disk), ==, 8);
    g_assert_cmpuint(cfs_disk_find_tag(disk, "first") != NULL, ==, 1);
    cfs_disk_free(disk);
    (void)err;
    free_log(&log);
    test_image_cleanup(&t);
}

/*
 * Rot in a block that was flushed: the record stays (the writer of a later
 * record vouched for it), reads of that block fail with an error, every
 * other block reads correctly.
 */
static void test_rot_after_flush(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    uint8_t buf[4 * BS], back[BS], junk[8];
    uint64_t data_at;
    CfsMapping m;

    test_image_init(&t);
    disk = test_create_open(&t, SIZE, BS);
    test_fill(buf, sizeof(buf), 5);
    g_assert_true(cfs_disk_pwrite(disk, buf, sizeof(buf), 0, &err));
    g_assert_true(cfs_disk_flush(disk, &err));
    g_assert_true(cfs_disk_pwrite(disk, buf, BS, 10 * BS, &err));
    g_assert_true(cfs_disk_map(disk, BS, BS, &m, &err));
    data_at = m.log_offset;
    cfs_disk_free(disk);

    memset(junk, 0x11, sizeof(junk));
    g_assert_cmpint(pwrite(t.fd, junk, 8, data_at + 100), ==, 8);
    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 2);
    g_assert_cmpuint(disk->corrupt_records, ==, 1);
    g_assert_false(cfs_disk_pread(disk, back, BS, BS, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_CORRUPT);
    g_clear_error(&err);
    test_assert_range(disk, 0, BS, buf);
    test_assert_range(disk, 2 * BS, BS, buf + 2 * BS);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

/*
 * Rot in a record whose next record was written before the flush: the
 * voucher is further on, reached through the chain of intact headers.
 */
static void test_rot_vouched_later(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    uint8_t a[BS], b[BS], back[BS], junk = 0x99;
    CfsMapping m;

    test_image_init(&t);
    disk = test_create_open(&t, SIZE, BS);
    test_fill(a, BS, 1);
    test_fill(b, BS, 2);
    g_assert_true(cfs_disk_pwrite(disk, a, BS, 0, &err));
    g_assert_true(cfs_disk_pwrite(disk, b, BS, BS, &err));
    g_assert_true(cfs_disk_flush(disk, &err));
    g_assert_true(cfs_disk_pwrite(disk, b, BS, 2 * BS, &err));
    g_assert_true(cfs_disk_map(disk, 0, BS, &m, &err));
    cfs_disk_free(disk);
    g_assert_cmpint(pwrite(t.fd, &junk, 1, m.log_offset + 3), ==, 1);

    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 3);
    g_assert_false(cfs_disk_pread(disk, back, BS, 0, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_CORRUPT);
    g_clear_error(&err);
    test_assert_range(disk, BS, BS, b);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

/*
 * A damaged header before the checkpoint: the walk of check stops there,
 * but the open goes on from the checkpoint; repair must not cut the log.
 */
static void test_repair_keeps_log_past_damage(void)
{
    TestImage t;
    GError *err = NULL;
    CfsCheckResult res;
    CfsDisk *disk;
    uint8_t junk = 0x42;
    uint64_t len;

    test_image_init(&t);
    disk = test_create_open(&t, SIZE, BS);
    write_at(disk, 0, 2 * BS, 1);
    write_at(disk, 4 * BS, 2 * BS, 2);
    g_assert_true(cfs_disk_checkpoint(disk, &err));
    write_at(disk, 8 * BS, 2 * BS, 3);
    cfs_disk_free(disk);
    len = test_file_size(&t);
    /* a byte inside v1's header */
    g_assert_cmpint(pwrite(t.fd, &junk, 1, cfs_align_up(CFS_META_END, BS) + 40),
                    ==, 1);
    g_assert_true(cfs_check(&t.io, true, &res, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(res.corruptions, >, 0);
    g_assert_cmpuint(res.torn_bytes, ==, 0);
    g_assert_cmpuint(res.versions, ==, 3);
    cfs_check_result_clear(&res);
    g_assert_cmpuint(test_file_size(&t), ==, len);
    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 3);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

/*
 * Random bit flips anywhere in the log: whatever version opens, every byte
 * read equals that version's content or the read fails — never a wrong
 * byte — and check reports something.
 */
static void test_bit_flips(void)
{
    TestImage t;
    Log log;
    uint64_t start = cfs_align_up(CFS_META_END, BS);

    test_image_init(&t);
    build_log(&t, &log);
    for (int i = 0; i < 400; i++) {
        uint64_t at = g_test_rand_int_range(start, log.len);
        uint8_t byte = log.bytes[at] ^ (1u << g_test_rand_int_range(0, 8));
        GError *err = NULL;
        CfsDisk *disk;
        CfsCheckResult res;

        restore(&t, &log, log.len);
        g_assert_cmpint(pwrite(t.fd, &byte, 1, at), ==, 1);
        disk = cfs_disk_open(&t.io, 0, CFS_VERSION_HEAD, &err);
        if (!disk) {
            /* refusing to open is allowed, with a corruption error */
            g_assert_error(err, CFS_ERROR, CFS_ERROR_CORRUPT);
            g_clear_error(&err);
        } else {
            uint64_t v = cfs_disk_version(disk);
            uint64_t size = cfs_disk_size(disk);
            g_autofree uint8_t *buf = g_malloc(BS);

            g_assert_cmpuint(size, ==, log.size[v]);
            for (uint64_t off = 0; off < size; off += BS) {
                if (cfs_disk_pread(disk, buf, BS, off, &err)) {
                    g_assert_true(memcmp(buf, log.content[v] + off, BS) == 0);
                } else {
                    g_assert_error(err, CFS_ERROR, CFS_ERROR_CORRUPT);
                    g_clear_error(&err);
                }
            }
            cfs_disk_free(disk);
        }
        if (!cfs_check(&t.io, false, &res, &err)) {
            g_error("check failed after flipping offset %" G_GUINT64_FORMAT
                    ": %s", at, err->message);
        }
        g_assert_true(res.corruptions > 0 || res.torn_bytes > 0);
        cfs_check_result_clear(&res);
    }
    free_log(&log);
    test_image_cleanup(&t);
}

/* check --repair cuts a torn tail; afterwards check is clean */
static void test_check_repair(void)
{
    TestImage t;
    Log log;
    GError *err = NULL;
    CfsCheckResult res;

    test_image_init(&t);
    build_log(&t, &log);
    restore(&t, &log, log.len);
    g_assert_true(cfs_check(&t.io, false, &res, &err));
    g_assert_cmpuint(res.corruptions, ==, 0);
    g_assert_cmpuint(res.torn_bytes, ==, 0);
    g_assert_cmpuint(res.versions, ==, 9);
    g_assert_cmpuint(res.log_end, ==, log.len);
    cfs_check_result_clear(&res);

    restore(&t, &log, log.end[8] - 7);
    g_assert_true(cfs_check(&t.io, false, &res, &err));
    g_assert_cmpuint(res.versions, ==, 7);
    g_assert_cmpuint(res.torn_bytes, ==, log.end[8] - 7 - log.end[7]);
    g_assert_false(res.repaired);
    cfs_check_result_clear(&res);
    g_assert_true(cfs_check(&t.io, true, &res, &err));
    g_assert_true(res.repaired);
    cfs_check_result_clear(&res);
    g_assert_cmpuint(test_file_size(&t), ==, log.end[7]);
    g_assert_true(cfs_check(&t.io, false, &res, &err));
    g_assert_cmpuint(res.torn_bytes, ==, 0);
    g_assert_cmpuint(res.corruptions, ==, 0);
    cfs_check_result_clear(&res);
    g_assert_no_error(err);
    free_log(&log);
    test_image_cleanup(&t);
}

/* v1 (4 KiB), v2 (2 MiB), v3 (4 KiB), each flushed; ends[v] after each */
static void build_spread_log(TestImage *t, uint64_t *ends)
{
    g_autofree uint8_t *buf = g_malloc(2 * MiB_);
    CfsDisk *disk = test_create_open(t, 4 * MiB_, BS);
    GError *err = NULL;

    test_fill(buf, 2 * MiB_, 7);
    g_assert_true(cfs_disk_pwrite(disk, buf, 4096, 0, &err));
    g_assert_true(cfs_disk_flush(disk, &err));
    ends[1] = cfs_disk_log_end(disk);
    g_assert_true(cfs_disk_pwrite(disk, buf, 2 * MiB_, MiB_, &err));
    g_assert_true(cfs_disk_flush(disk, &err));
    ends[2] = cfs_disk_log_end(disk);
    g_assert_true(cfs_disk_pwrite(disk, buf, 4096, 3 * MiB_, &err));
    g_assert_true(cfs_disk_flush(disk, &err));
    ends[3] = cfs_disk_log_end(disk);
    g_assert_no_error(err);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 3);
    cfs_disk_free(disk);
}

/*
 * After the log: torn bytes, then zeros a writer grew the file by and did
 * not trim (the block driver preallocates ahead of the log).  Check tells
 * the two apart across several MiB; opening is not disturbed; repair cuts
 * both.
 */
static void test_check_unused_space(void)
{
    TestImage t;
    uint64_t ends[4];
    uint8_t junk[3 * BS];
    GError *err = NULL;
    CfsCheckResult res;
    CfsDisk *disk;

    test_image_init(&t);
    build_spread_log(&t, ends);
    g_assert_cmpuint(test_file_size(&t), ==, ends[3]);
    test_fill(junk, sizeof(junk), 9);
    g_assert_cmpint(pwrite(t.fd, junk, sizeof(junk), ends[3]), ==,
                    sizeof(junk));
    g_assert_cmpint(ftruncate(t.fd, ends[3] + sizeof(junk) + 3 * MiB_), ==, 0);

    g_assert_true(cfs_check(&t.io, false, &res, &err));
    g_assert_cmpuint(res.log_end, ==, ends[3]);
    g_assert_cmpuint(res.torn_bytes, ==, sizeof(junk));
    g_assert_cmpuint(res.unused_bytes, ==, 3 * MiB_);
    g_assert_cmpuint(res.corruptions, ==, 0);
    cfs_check_result_clear(&res);

    /* zeros only: nothing torn */
    memset(junk, 0, sizeof(junk));
    g_assert_cmpint(pwrite(t.fd, junk, sizeof(junk), ends[3]), ==,
                    sizeof(junk));
    g_assert_true(cfs_check(&t.io, false, &res, &err));
    g_assert_cmpuint(res.torn_bytes, ==, 0);
    g_assert_cmpuint(res.unused_bytes, ==, sizeof(junk) + 3 * MiB_);
    cfs_check_result_clear(&res);

    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 3);
    cfs_disk_free(disk);

    g_assert_true(cfs_check(&t.io, true, &res, &err));
    g_assert_true(res.repaired);
    cfs_check_result_clear(&res);
    g_assert_cmpuint(test_file_size(&t), ==, ends[3]);
    g_assert_no_error(err);
    test_image_cleanup(&t);
}

/*
 * A flushed record far past the point where the log breaks (here 2 MiB
 * of another record's payload lie between): the tail check must still
 * find it, and refuse to open rather than drop flushed history.
 */
static void test_flushed_record_far_past_damage(void)
{
    TestImage t;
    uint64_t ends[4];
    uint8_t byte;
    GError *err = NULL;
    CfsCheckResult res;

    test_image_init(&t);
    build_spread_log(&t, ends);
    g_assert_cmpuint(ends[2] - ends[1], >, 2 * MiB_);
    /* damage v2's header: the log now ends after v1 */
    g_assert_cmpint(pread(t.fd, &byte, 1, ends[1] + 40), ==, 1);
    byte ^= 0x40;
    g_assert_cmpint(pwrite(t.fd, &byte, 1, ends[1] + 40), ==, 1);

    g_assert_null(cfs_disk_open(&t.io, 0, CFS_VERSION_HEAD, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_CORRUPT);
    g_assert_nonnull(strstr(err->message, "lie beyond it"));
    g_clear_error(&err);

    g_assert_true(cfs_check(&t.io, false, &res, &err));
    g_assert_cmpuint(res.log_end, ==, ends[1]);
    g_assert_cmpuint(res.torn_bytes, ==, ends[3] - ends[1]);
    g_assert_cmpuint(res.unused_bytes, ==, 0);
    cfs_check_result_clear(&res);
    test_image_cleanup(&t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/recovery/cut-everywhere", test_cut_everywhere);
    g_test_add_func("/recovery/no-stale-resurrection",
                    test_no_stale_resurrection);
    g_test_add_func("/recovery/rot-after-flush", test_rot_after_flush);
    g_test_add_func("/recovery/rot-vouched-later", test_rot_vouched_later);
    g_test_add_func("/recovery/repair-keeps-log-past-damage",
                    test_repair_keeps_log_past_damage);
    g_test_add_func("/recovery/bit-flips", test_bit_flips);
    g_test_add_func("/recovery/check-repair", test_check_repair);
    g_test_add_func("/recovery/check-unused-space", test_check_unused_space);
    g_test_add_func("/recovery/flushed-record-far-past-damage",
                    test_flushed_record_far_past_damage);
    return g_test_run();
}
