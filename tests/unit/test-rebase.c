/*
 * Rebasing a branch rewrites its parent reference, durably: the new
 * parent reads through, the disk id and history are untouched, and
 * dropping the parent makes unwritten ranges read as zeros.
 */
#include <string.h>
#include "fixture.h"

#define SIZE (64 * 1024)

static void test_set_parent_ref(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    uint8_t id[CFS_ID_LEN], buf[4096];
    CfsCreateOptions parent = { .has_parent = true, .parent_version = 7,
                                .parent_hint = "../other.cfs" };

    memset(parent.parent_disk_id, 0xaa, CFS_ID_LEN);
    memset(parent.parent_version_id, 0xbb, CFS_ID_LEN);
    test_image_init(&t);
    disk = test_create_open(&t, SIZE, 4096);
    memcpy(id, cfs_disk_id(disk), CFS_ID_LEN);
    memset(buf, 0x5c, sizeof(buf));
    g_assert_true(cfs_disk_pwrite(disk, buf, 4096, 0, &err));
    g_assert_true(cfs_disk_set_parent_ref(disk, &parent, &err));
    g_assert_no_error(err);
    g_assert_true(cfs_disk_has_parent(disk));
    cfs_disk_free(disk);

    disk = test_open(&t, CFS_OPEN_RDWR, CFS_VERSION_HEAD);
    {
        const CfsSuperblock *sb = cfs_disk_superblock(disk);

        g_assert_true(cfs_disk_has_parent(disk));
        g_assert_cmpuint(GUINT64_FROM_LE(sb->parent_version), ==, 7);
        g_assert_cmpint(sb->parent_disk_id[3], ==, 0xaa);
        g_assert_cmpuint(GUINT16_FROM_LE(sb->parent_hint_len), ==, 12);
        g_assert_cmpmem(sb->parent_hint, 12, "../other.cfs", 12);
    }
    g_assert_true(memcmp(cfs_disk_id(disk), id, CFS_ID_LEN) == 0);
    g_assert_cmpuint(cfs_disk_version(disk), ==, 1);

    /* standalone again: the parent fields are gone */
    parent.has_parent = false;
    g_assert_true(cfs_disk_set_parent_ref(disk, &parent, &err));
    cfs_disk_free(disk);
    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    g_assert_false(cfs_disk_has_parent(disk));
    g_assert_true(cfs_is_zero(cfs_disk_superblock(disk)->parent_hint,
                              CFS_PARENT_HINT_MAX));
    g_assert_true(cfs_disk_pread(disk, buf, 4096, 0, &err));
    g_assert_cmpint(buf[0], ==, 0x5c);
    /* read-only disks refuse */
    g_assert_false(cfs_disk_set_parent_ref(disk, &parent, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_READ_ONLY);
    g_clear_error(&err);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/rebase/set-parent-ref", test_set_parent_ref);
    return g_test_run();
}
