/*
 * Bad images get clear errors and never a crash: not cloudfs, a newer
 * format version, unknown incompatible features, a truncated or corrupt
 * superblock, a file cut inside its header; sizes that are not sizes.
 */
#include <string.h>
#include <unistd.h>
#include "fixture.h"

static void expect_open_error(TestImage *t, int code, const char *words)
{
    GError *err = NULL;
    CfsDisk *disk = cfs_disk_open(&t->io, 0, CFS_VERSION_HEAD, &err);

    g_assert_null(disk);
    g_assert_error(err, CFS_ERROR, code);
    if (!strstr(err->message, words)) {
        g_error("message '%s' lacks '%s'", err->message, words);
    }
    g_clear_error(&err);
}

static void rewrite_superblock(TestImage *t, void (*edit)(CfsSuperblock *),
                               bool reseal)
{
    CfsSuperblock sb;

    g_assert_cmpint(pread(t->fd, &sb, sizeof(sb), 0), ==, sizeof(sb));
    edit(&sb);
    if (reseal) {
        cfs_superblock_seal(&sb);
    }
    g_assert_cmpint(pwrite(t->fd, &sb, sizeof(sb), 0), ==, sizeof(sb));
}

static void newer_version(CfsSuperblock *sb)
{
    sb->format_version = GUINT32_TO_LE(2);
}

static void unknown_feature(CfsSuperblock *sb)
{
    sb->incompat_features |= GUINT64_TO_LE(1ull << 40);
}

static void unknown_compat(CfsSuperblock *sb)
{
    sb->compat_features |= GUINT64_TO_LE(1ull << 5);
}

static void flip_size(CfsSuperblock *sb)
{
    sb->initial_size ^= GUINT64_TO_LE(1ull << 33);
}

static void test_bad_images(void)
{
    TestImage t;
    CfsDisk *disk;

    test_image_init(&t);
    expect_open_error(&t, CFS_ERROR_NOT_CFS, "not a cloudfs image");
    g_assert_cmpint(write(t.fd, "just some text, not an image", 28), ==, 28);
    expect_open_error(&t, CFS_ERROR_NOT_CFS, "not a cloudfs image");
    test_image_cleanup(&t);

    test_image_init(&t);
    disk = test_create_open(&t, 1 << 20, 4096);
    cfs_disk_free(disk);
    rewrite_superblock(&t, unknown_compat, true);
    disk = test_open(&t, 0, CFS_VERSION_HEAD);     /* compat: ignored */
    cfs_disk_free(disk);
    rewrite_superblock(&t, newer_version, true);
    expect_open_error(&t, CFS_ERROR_UNSUPPORTED, "format version 2");
    test_image_cleanup(&t);

    test_image_init(&t);
    disk = test_create_open(&t, 1 << 20, 4096);
    cfs_disk_free(disk);
    rewrite_superblock(&t, unknown_feature, true);
    expect_open_error(&t, CFS_ERROR_UNSUPPORTED, "incompatible features");
    test_image_cleanup(&t);

    test_image_init(&t);
    disk = test_create_open(&t, 1 << 20, 4096);
    cfs_disk_free(disk);
    rewrite_superblock(&t, flip_size, false);
    expect_open_error(&t, CFS_ERROR_CORRUPT, "superblock is corrupt");
    test_image_cleanup(&t);

    test_image_init(&t);
    disk = test_create_open(&t, 1 << 20, 4096);
    cfs_disk_free(disk);
    g_assert_cmpint(ftruncate(t.fd, 100), ==, 0);
    expect_open_error(&t, CFS_ERROR_CORRUPT, "truncated");
    g_assert_cmpint(ftruncate(t.fd, 5000), ==, 0);
    expect_open_error(&t, CFS_ERROR_CORRUPT, "superblock is corrupt");
    test_image_cleanup(&t);

    test_image_init(&t);
    disk = test_create_open(&t, 1 << 20, 4096);
    cfs_disk_free(disk);
    g_assert_cmpint(ftruncate(t.fd, 6000), ==, 0);
    expect_open_error(&t, CFS_ERROR_CORRUPT, "truncated");
    test_image_cleanup(&t);
}

static void test_create_refuses(void)
{
    TestImage t;
    GError *err = NULL;
    CfsCreateOptions bad_bs = { .size = 1 << 20, .block_size = 3000 };
    CfsCreateOptions zero = { .size = 0 };
    CfsCreateOptions ok = { .size = 1 << 20 };

    test_image_init(&t);
    g_assert_false(cfs_disk_create(&t.io, &bad_bs, NULL, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(cfs_disk_create(&t.io, &zero, NULL, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_true(cfs_disk_create(&t.io, &ok, NULL, &err));
    g_assert_false(cfs_disk_create(&t.io, &ok, NULL, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_EXISTS);
    g_clear_error(&err);
    test_image_cleanup(&t);
}

static void test_parse_size(void)
{
    uint64_t v;

    g_assert_true(cfs_parse_size("10G", &v));
    g_assert_cmpuint(v, ==, 10ull << 30);
    g_assert_true(cfs_parse_size("512M", &v));
    g_assert_cmpuint(v, ==, 512ull << 20);
    g_assert_true(cfs_parse_size("4096", &v));
    g_assert_cmpuint(v, ==, 4096);
    g_assert_true(cfs_parse_size("1.5T", &v));
    g_assert_cmpuint(v, ==, 3ull << 39);
    g_assert_true(cfs_parse_size("2KiB", &v));
    g_assert_cmpuint(v, ==, 2048);
    g_assert_false(cfs_parse_size("12X", &v));
    g_assert_false(cfs_parse_size("", &v));
    g_assert_false(cfs_parse_size("-1G", &v));
    g_assert_false(cfs_parse_size("G", &v));
    g_assert_false(cfs_parse_size("1.5", &v));
    g_assert_false(cfs_parse_size("99999999E", &v));
    g_assert_false(cfs_parse_size("0x10", &v));
    g_assert_false(cfs_parse_size("1e3", &v));
    g_assert_false(cfs_parse_size("1.2.3G", &v));
}

static void test_ids(void)
{
    uint8_t id[CFS_ID_LEN], back[CFS_ID_LEN];
    char hex[41];

    for (int i = 0; i < CFS_ID_LEN; i++) {
        id[i] = i * 13;
    }
    cfs_id_to_hex(id, hex);
    g_assert_cmpuint(strlen(hex), ==, 40);
    g_assert_true(cfs_id_from_hex(hex, back));
    g_assert_true(memcmp(id, back, CFS_ID_LEN) == 0);
    g_assert_false(cfs_id_from_hex("abc", back));
    hex[5] = 'z';
    g_assert_false(cfs_id_from_hex(hex, back));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/bad-input/images", test_bad_images);
    g_test_add_func("/bad-input/create-refuses", test_create_refuses);
    g_test_add_func("/bad-input/parse-size", test_parse_size);
    g_test_add_func("/bad-input/ids", test_ids);
    return g_test_run();
}
