/*
 * Snapshots are named versions: tag, list, revert without losing the
 * abandoned head, drop; historical versions open read-only and read what
 * they held; names are validated.
 */
#include <string.h>
#include "fixture.h"

#define SIZE (256 * 1024)

static void test_tag_revert_history(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    g_autofree uint8_t *orig = g_malloc(SIZE);
    g_autofree uint8_t *changed = NULL;
    g_autoptr(GPtrArray) tags = NULL;
    uint64_t v_tag, v_head;

    test_image_init(&t);
    disk = test_create_open(&t, SIZE, 4096);
    test_fill(orig, SIZE, 1);
    g_assert_true(cfs_disk_pwrite(disk, orig, SIZE, 0, &err));
    g_assert_true(cfs_disk_tag(disk, "golden", &err));
    g_assert_no_error(err);
    v_tag = cfs_disk_find_tag(disk, "golden")->version;
    g_assert_cmpuint(v_tag, ==, 1);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 2);

    /* duplicate and invalid names */
    g_assert_false(cfs_disk_tag(disk, "golden", &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_EXISTS);
    g_clear_error(&err);
    g_assert_false(cfs_disk_tag(disk, "123", &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(cfs_disk_tag(disk, "a@b", &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_INVALID);
    g_clear_error(&err);

    {
        uint8_t buf[8192];

        test_fill(buf, sizeof(buf), 2);
        g_assert_true(cfs_disk_pwrite(disk, buf, sizeof(buf), 4096, &err));
        g_assert_true(cfs_disk_write_zeroes(disk, 65536, 65536, &err));
    }
    changed = test_read_all(disk);
    v_head = cfs_disk_version(disk);
    g_assert_true(cfs_disk_tag(disk, "after", &err));
    g_assert_true(cfs_disk_revert(disk, v_tag, &err));
    g_assert_no_error(err);
    test_assert_content(disk, orig, SIZE);
    g_assert_cmpuint(cfs_disk_version(disk), ==, v_head + 2);

    tags = cfs_disk_tags(disk);
    g_assert_cmpuint(tags->len, ==, 2);
    g_assert_cmpstr(((CfsTag *)tags->pdata[0])->name, ==, "golden");
    g_assert_cmpstr(((CfsTag *)tags->pdata[1])->name, ==, "after");
    g_assert_true(cfs_disk_close(disk, &err));

    /* the abandoned head is still there, by number and by tag */
    disk = test_open(&t, 0, v_head);
    g_assert_true(cfs_disk_read_only(disk));
    test_assert_content(disk, changed, SIZE);
    {
        uint8_t b[4096];

        g_assert_false(cfs_disk_pwrite(disk, b, 4096, 0, &err));
        g_assert_error(err, CFS_ERROR, CFS_ERROR_READ_ONLY);
        g_clear_error(&err);
    }
    cfs_disk_free(disk);
    g_assert_null(cfs_disk_open(&t.io, CFS_OPEN_RDWR, v_head, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_READ_ONLY);
    g_clear_error(&err);
    g_assert_null(cfs_disk_open(&t.io, 0, 999, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_NOT_FOUND);
    g_clear_error(&err);

    disk = test_open(&t, CFS_OPEN_RDWR, CFS_VERSION_HEAD);
    {
        uint64_t v;

        g_assert_true(cfs_disk_resolve_version(disk, "after", &v, &err));
        g_assert_cmpuint(v, ==, v_head);
        g_assert_true(cfs_disk_resolve_version(disk, "1", &v, &err));
        g_assert_cmpuint(v, ==, 1);
        g_assert_false(cfs_disk_resolve_version(disk, "nope", &v, &err));
        g_assert_error(err, CFS_ERROR, CFS_ERROR_NOT_FOUND);
        g_clear_error(&err);
    }
    /* revert forward to the abandoned head works too */
    g_assert_true(cfs_disk_revert(disk, v_head, &err));
    test_assert_content(disk, changed, SIZE);
    g_assert_true(cfs_disk_untag(disk, "golden", &err));
    g_assert_false(cfs_disk_untag(disk, "golden", &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_NOT_FOUND);
    g_clear_error(&err);
    g_assert_null(cfs_disk_find_tag(disk, "golden"));
    cfs_disk_free(disk);     /* crash: replay must redo tags and reverts */
    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    test_assert_content(disk, changed, SIZE);
    g_assert_null(cfs_disk_find_tag(disk, "golden"));
    g_assert_nonnull(cfs_disk_find_tag(disk, "after"));
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

/* A branch reads its parent's version where it has not written */
static void test_branch_reads_parent(void)
{
    TestImage p, b;
    CfsDisk *parent, *branch;
    GError *err = NULL;
    g_autofree uint8_t *base = g_malloc(SIZE);
    g_autofree uint8_t *expect = NULL;
    uint8_t mine[4096];
    CfsCreateOptions opts = { .size = SIZE, .has_parent = true,
                              .parent_hint = "parent.cfs" };

    test_image_init(&p);
    parent = test_create_open(&p, SIZE, 4096);
    test_fill(base, SIZE, 9);
    g_assert_true(cfs_disk_pwrite(parent, base, SIZE, 0, &err));
    g_assert_true(cfs_disk_tag(parent, "base", &err));
    opts.parent_version = cfs_disk_version(parent);
    memcpy(opts.parent_disk_id, cfs_disk_id(parent), CFS_ID_LEN);
    memcpy(opts.parent_version_id, cfs_disk_version_id(parent), CFS_ID_LEN);
    /* the parent moves on; the branch must keep seeing the old version */
    g_assert_true(cfs_disk_write_zeroes(parent, 0, SIZE, &err));
    g_assert_true(cfs_disk_close(parent, &err));
    parent = test_open(&p, 0, opts.parent_version);

    test_image_init(&b);
    g_assert_true(cfs_disk_create(&b.io, &opts, NULL, &err));
    g_assert_no_error(err);
    branch = test_open(&b, CFS_OPEN_RDWR, CFS_VERSION_HEAD);
    g_assert_true(cfs_disk_has_parent(branch));
    cfs_disk_set_parent(branch, parent);
    memset(mine, 0x77, sizeof(mine));
    g_assert_true(cfs_disk_pwrite(branch, mine, 4096, 8192, &err));
    /* an explicit zero in the branch hides the parent's data */
    g_assert_true(cfs_disk_write_zeroes(branch, 16384, 4096, &err));
    expect = g_memdup2(base, SIZE);
    memcpy(expect + 8192, mine, 4096);
    memset(expect + 16384, 0, 4096);
    test_assert_content(branch, expect, SIZE);
    {
        const CfsSuperblock *sb = cfs_disk_superblock(branch);

        g_assert_cmpuint(GUINT64_FROM_LE(sb->parent_version), ==,
                         opts.parent_version);
        g_assert_cmpint(memcmp(sb->parent_hint, "parent.cfs", 10), ==, 0);
    }
    cfs_disk_free(branch);
    cfs_disk_free(parent);
    test_image_cleanup(&b);
    test_image_cleanup(&p);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/snapshot/tag-revert-history", test_tag_revert_history);
    g_test_add_func("/snapshot/branch-reads-parent", test_branch_reads_parent);
    return g_test_run();
}
