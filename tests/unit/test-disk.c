/*
 * The write and read paths: every record type round-trips through a close
 * and reopen, zero blocks are not stored, scattered iovecs are written
 * without copies, group commit applies out-of-order completions in order,
 * and a failed append poisons the disk instead of losing data silently.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include "fixture.h"

#define MiB (1024 * 1024)

static void test_write_read_reopen(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    uint64_t size = 4 * MiB;
    g_autofree uint8_t *model = g_malloc0(size);
    g_autofree uint8_t *buf = g_malloc(256 * 1024);

    test_image_init(&t);
    disk = test_create_open(&t, size, 4096);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 0);
    g_assert_true(memcmp(cfs_disk_version_id(disk), cfs_disk_id(disk),
                         CFS_ID_LEN) == 0);
    for (int i = 0; i < 50; i++) {
        uint64_t off = (g_test_rand_int_range(0, size / 4096 - 64)) * 4096ull;
        uint64_t len = g_test_rand_int_range(1, 64) * 4096ull;

        test_fill(buf, len, i);
        g_assert_true(cfs_disk_pwrite(disk, buf, len, off, &err));
        g_assert_no_error(err);
        memcpy(model + off, buf, len);
    }
    g_assert_cmpuint(cfs_disk_version(disk), ==, 50);
    test_assert_content(disk, model, size);
    g_assert_true(cfs_disk_close(disk, &err));
    g_assert_no_error(err);

    /* clean close wrote a checkpoint: reopen reads it */
    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 50);
    test_assert_content(disk, model, size);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

static void test_zero_blocks_not_stored(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    g_autofree uint8_t *buf = g_malloc0(64 * 1024);
    uint64_t before, after;

    test_image_init(&t);
    disk = test_create_open(&t, 1 * MiB, 4096);
    /* 16 blocks, only blocks 3 and 9 non-zero */
    memset(buf + 3 * 4096, 0xab, 4096);
    memset(buf + 9 * 4096, 0xcd, 4096);
    before = cfs_disk_log_end(disk);
    g_assert_true(cfs_disk_pwrite(disk, buf, 64 * 1024, 0, &err));
    after = cfs_disk_log_end(disk);
    /* one header block + two data blocks */
    g_assert_cmpuint(after - before, ==, 3 * 4096);
    g_assert_cmpuint(cfs_disk_live_bytes(disk), ==, 2 * 4096);
    {
        CfsMapping m;

        g_assert_true(cfs_disk_map(disk, 0, 1 * MiB, &m, &err));
        g_assert_cmpint(m.kind, ==, CFS_MAP_ZERO);
        g_assert_cmpuint(m.length, ==, 3 * 4096);
        g_assert_true(cfs_disk_map(disk, 3 * 4096, 4096, &m, &err));
        g_assert_cmpint(m.kind, ==, CFS_MAP_DATA);
        g_assert_true(cfs_disk_map(disk, 64 * 1024, 4096, &m, &err));
        g_assert_cmpint(m.kind, ==, CFS_MAP_UNALLOCATED);
    }
    /* write_zeroes stores no payload at all */
    before = cfs_disk_log_end(disk);
    g_assert_true(cfs_disk_write_zeroes(disk, 0, 1 * MiB, &err));
    g_assert_cmpuint(cfs_disk_log_end(disk) - before, ==, 4096);
    g_assert_cmpuint(cfs_disk_live_bytes(disk), ==, 0);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

/* A guest buffer in odd pieces: blocks straddle iovec elements */
static void test_scattered_iov(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    g_autofree uint8_t *data = g_malloc(32 * 1024);
    g_autofree uint8_t *back = g_malloc(32 * 1024);
    struct iovec iov[5];
    size_t cuts[] = { 0, 100, 5000, 5001, 20000, 32768 };
    CfsWrite w = { .offset = 8192, .length = 32 * 1024, .iov = iov,
                   .iovcnt = 5 };
    CfsAppend *a;
    int n;

    test_fill(data, 32 * 1024, 7);
    memset(data + 8192, 0, 4096);      /* one zero block in the middle */
    for (int i = 0; i < 5; i++) {
        iov[i].iov_base = data + cuts[i];
        iov[i].iov_len = cuts[i + 1] - cuts[i];
    }
    test_image_init(&t);
    disk = test_create_open(&t, 1 * MiB, 4096);
    a = cfs_append_prepare(disk, &w, 1, &err);
    g_assert_no_error(err);
    cfs_append_iov(a, &n);
    g_assert_cmpint(n, >=, 2);
    {
        int ret = test_append_write(disk, a);

        g_assert_cmpint(cfs_append_complete(disk, a, ret), ==,
                        CFS_APPEND_APPLIED);
    }
    cfs_append_free(a);
    g_assert_true(cfs_disk_pread(disk, back, 32 * 1024, 8192, &err));
    g_assert_true(memcmp(back, data, 32 * 1024) == 0);
    g_assert_cmpuint(cfs_disk_live_bytes(disk), ==, 7 * 4096);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

/* Three appends in flight finishing 3, 1, 2: applied strictly in order,
 * all three in the one open record, which a flush makes version 1 */
static void test_group_commit_order(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    uint8_t bufs[3][4096];
    CfsAppend *a[3];
    uint8_t back[4096];

    test_image_init(&t);
    disk = test_create_open(&t, 1 * MiB, 4096);
    for (int i = 0; i < 3; i++) {
        struct iovec iov = { bufs[i], 4096 };
        CfsWrite w = { .offset = 0, .length = 4096, .iov = &iov, .iovcnt = 1 };

        memset(bufs[i], 'a' + i, 4096);
        a[i] = cfs_append_prepare(disk, &w, 1, &err);
        g_assert_no_error(err);
        g_assert_cmpuint(cfs_append_version(a[i]), ==, 1);
    }
    g_assert_cmpuint(cfs_disk_appends_in_flight(disk), ==, 3);
    for (int k = 0; k < 3; k++) {
        int i = (k + 2) % 3;     /* 2, 0, 1 */
        int ret = test_append_write(disk, a[i]);
        CfsAppendState s = cfs_append_complete(disk, a[i], ret);

        if (i == 2) {
            /* finished first but waits for 1 and 2 */
            g_assert_cmpint(s, ==, CFS_APPEND_PENDING);
            g_assert_cmpuint(cfs_disk_version(disk), ==, 0);
        } else {
            g_assert_cmpint(s, ==, CFS_APPEND_APPLIED);
        }
    }
    g_assert_cmpint(cfs_append_state(a[2]), ==, CFS_APPEND_APPLIED);
    /* readable before it is a version */
    g_assert_true(cfs_disk_pread(disk, back, 4096, 0, &err));
    g_assert_cmpint(back[0], ==, 'c');
    g_assert_cmpuint(cfs_disk_version(disk), ==, 0);
    g_assert_true(cfs_disk_flush(disk, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 1);
    for (int i = 0; i < 3; i++) {
        cfs_append_free(a[i]);
    }
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

/* The first of two appends fails: both are lost and reported; once both
 * have settled the disk takes writes again, and the second append's
 * record, which did reach the file, never comes back */
static void test_failed_append_recovers(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    uint8_t buf[4096], back[4096];
    CfsAppend *a[2];

    memset(buf, 0x5a, sizeof(buf));
    test_image_init(&t);
    disk = test_create_open(&t, 1 * MiB, 4096);
    g_assert_true(cfs_disk_pwrite(disk, buf, 4096, 0, &err));
    for (int i = 0; i < 2; i++) {
        struct iovec iov = { buf, 4096 };
        CfsWrite w = { .offset = 4096 * (i + 1), .length = 4096, .iov = &iov,
                       .iovcnt = 1 };

        a[i] = cfs_append_prepare(disk, &w, 1, &err);
        g_assert_no_error(err);
    }
    {
        int ret = test_append_write(disk, a[1]);

        g_assert_cmpint(cfs_append_complete(disk, a[1], ret), ==,
                        CFS_APPEND_PENDING);
    }
    g_assert_cmpint(cfs_append_complete(disk, a[0], -ENOSPC), ==,
                    CFS_APPEND_FAILED);
    g_assert_cmpint(cfs_append_state(a[1]), ==, CFS_APPEND_FAILED);
    /* the one whose write went well failed with the first: says why */
    g_assert_cmpint(cfs_append_error(a[0]), ==, -ENOSPC);
    g_assert_cmpint(cfs_append_error(a[1]), ==, -ENOSPC);
    g_assert_true(cfs_disk_appends_failing(disk) == false);
    cfs_append_free(a[0]);
    cfs_append_free(a[1]);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 1);

    /* the space came back: writing goes on from version 1 */
    memset(buf, 0x77, sizeof(buf));
    g_assert_true(cfs_disk_pwrite(disk, buf, 4096, 8192, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 2);
    cfs_disk_free(disk);

    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 2);
    g_assert_true(cfs_disk_pread(disk, back, 4096, 4096, &err));
    g_assert_true(cfs_is_zero(back, 4096));
    g_assert_true(cfs_disk_pread(disk, back, 4096, 8192, &err));
    g_assert_cmpint(back[0], ==, 0x77);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

static void test_resize(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    uint8_t buf[8192], back[8192];

    test_fill(buf, sizeof(buf), 3);
    test_image_init(&t);
    disk = test_create_open(&t, 64 * 1024, 4096);
    g_assert_true(cfs_disk_pwrite(disk, buf, 8192, 56 * 1024, &err));
    g_assert_true(cfs_disk_resize(disk, 60 * 1024, &err));
    g_assert_cmpuint(cfs_disk_size(disk), ==, 60 * 1024);
    g_assert_true(cfs_disk_resize(disk, 128 * 1024, &err));
    g_assert_no_error(err);
    /* the cut-off block reads as zero once the disk grows again */
    g_assert_true(cfs_disk_pread(disk, back, 8192, 56 * 1024, &err));
    g_assert_true(memcmp(back, buf, 4096) == 0);
    g_assert_true(cfs_is_zero(back + 4096, 4096));
    g_assert_false(cfs_disk_resize(disk, 1000, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(cfs_disk_pwrite(disk, buf, 4096, 128 * 1024, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_INVALID);
    g_clear_error(&err);
    cfs_disk_free(disk);     /* no checkpoint: reopen replays */
    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(cfs_disk_size(disk), ==, 128 * 1024);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 3);
    /* and the earlier size is still there in history */
    cfs_disk_free(disk);
    disk = test_open(&t, 0, 1);
    g_assert_cmpuint(cfs_disk_size(disk), ==, 64 * 1024);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

/* Flushes past the interval write checkpoints; open uses the newest and
 * falls back when it is damaged */
static void test_checkpoint_fallback(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    uint64_t size = 8 * MiB;
    g_autofree uint8_t *model = g_malloc0(size);
    g_autofree uint8_t *buf = g_malloc(MiB);
    uint64_t ckpt2;

    test_image_init(&t);
    disk = test_create_open(&t, size, 4096);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 8; i++) {
            test_fill(buf, MiB, round * 10 + i);
            g_assert_true(cfs_disk_pwrite(disk, buf, MiB, i * MiB, &err));
            memcpy(model + i * MiB, buf, MiB);
        }
        g_assert_true(cfs_disk_checkpoint(disk, &err));
        g_assert_no_error(err);
    }
    ckpt2 = disk->ckpt_offset;
    g_assert_cmpint(disk->slot_newest, ==, 1);
    {
        /* one more write after the newest checkpoint: replayed */
        test_fill(buf, 4096, 99);
        g_assert_true(cfs_disk_pwrite(disk, buf, 4096, 0, &err));
        memcpy(model, buf, 4096);
    }
    cfs_disk_free(disk);

    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(disk->ckpt_offset, ==, ckpt2);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 17);
    test_assert_content(disk, model, size);
    cfs_disk_free(disk);

    /* damage the newest checkpoint's payload: the older one is used */
    {
        uint8_t junk[16];

        memset(junk, 0xff, sizeof(junk));
        g_assert_cmpint(pwrite(t.fd, junk, sizeof(junk), ckpt2 + 4096 + 16), ==, 16);
    }
    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(disk->ckpt_offset, !=, ckpt2);
    g_assert_cmpuint(disk->ckpt_offset, !=, 0);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 17);
    test_assert_content(disk, model, size);
    cfs_disk_free(disk);

    /* both slots garbage: full replay from the start */
    {
        uint8_t junk[64];

        memset(junk, 0x33, sizeof(junk));
        g_assert_cmpint(pwrite(t.fd, junk, 64, CFS_SLOT0_OFFSET), ==, 64);
        g_assert_cmpint(pwrite(t.fd, junk, 64, CFS_SLOT1_OFFSET), ==, 64);
    }
    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(disk->ckpt_offset, ==, 0);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 17);
    test_assert_content(disk, model, size);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/disk/write-read-reopen", test_write_read_reopen);
    g_test_add_func("/disk/zero-blocks-not-stored", test_zero_blocks_not_stored);
    g_test_add_func("/disk/scattered-iov", test_scattered_iov);
    g_test_add_func("/disk/group-commit-order", test_group_commit_order);
    g_test_add_func("/disk/failed-append-recovers",
                    test_failed_append_recovers);
    g_test_add_func("/disk/resize", test_resize);
    g_test_add_func("/disk/checkpoint-fallback", test_checkpoint_fallback);
    return g_test_run();
}
