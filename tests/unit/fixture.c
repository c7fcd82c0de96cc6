#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fixture.h"

void test_image_init(TestImage *t)
{
    GError *err = NULL;

    t->dir = g_dir_make_tmp("cfs-test-XXXXXX", &err);
    g_assert_no_error(err);
    t->path = g_build_filename(t->dir, "disk.cfs", NULL);
    t->fd = open(t->path, O_RDWR | O_CREAT | O_EXCL, 0600);
    g_assert_cmpint(t->fd, >=, 0);
    cfs_io_init_fd(&t->io, &t->fd);
}

void test_image_reopen(TestImage *t)
{
    close(t->fd);
    t->fd = open(t->path, O_RDWR);
    g_assert_cmpint(t->fd, >=, 0);
}

void test_image_cleanup(TestImage *t)
{
    g_autoptr(GDir) d = g_dir_open(t->dir, 0, NULL);
    const char *name;

    close(t->fd);
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(t->dir, name, NULL);

        g_unlink(p);
    }
    g_rmdir(t->dir);
    g_free(t->path);
    g_free(t->dir);
}

CfsDisk *test_create_open(TestImage *t, uint64_t size, uint32_t block_size)
{
    CfsCreateOptions opts = { .size = size, .block_size = block_size };
    GError *err = NULL;

    g_assert_true(cfs_disk_create(&t->io, &opts, NULL, &err));
    g_assert_no_error(err);
    return test_open(t, CFS_OPEN_RDWR, CFS_VERSION_HEAD);
}

CfsDisk *test_open(TestImage *t, unsigned flags, uint64_t version)
{
    GError *err = NULL;
    CfsDisk *disk = cfs_disk_open(&t->io, flags, version, &err);

    g_assert_no_error(err);
    g_assert_nonnull(disk);
    return disk;
}

void test_fill(void *buf, size_t len, uint32_t seed)
{
    GRand *rand = g_rand_new_with_seed(seed);
    uint8_t *p = buf;

    for (size_t i = 0; i < len; i++) {
        p[i] = g_rand_int_range(rand, 1, 256);
    }
    g_rand_free(rand);
}

uint8_t *test_read_all(CfsDisk *disk)
{
    uint64_t size = cfs_disk_size(disk);
    uint8_t *buf = g_malloc(size);
    GError *err = NULL;

    g_assert_true(cfs_disk_pread(disk, buf, size, 0, &err));
    g_assert_no_error(err);
    return buf;
}

void test_assert_content(CfsDisk *disk, const uint8_t *expect, uint64_t len)
{
    g_autofree uint8_t *got = test_read_all(disk);

    g_assert_cmpuint(cfs_disk_size(disk), ==, len);
    g_assert_true(memcmp(got, expect, len) == 0);
}

void test_assert_range(CfsDisk *disk, uint64_t offset, uint64_t len,
                       const void *expect)
{
    g_autofree uint8_t *got = g_malloc(len);
    GError *err = NULL;

    g_assert_true(cfs_disk_pread(disk, got, len, offset, &err));
    g_assert_no_error(err);
    if (expect) {
        g_assert_true(memcmp(got, expect, len) == 0);
    } else {
        g_assert_true(cfs_is_zero(got, len));
    }
}

void test_copy_file(const char *from, const char *to)
{
    g_autofree char *data = NULL;
    gsize len;
    GError *err = NULL;

    g_assert_true(g_file_get_contents(from, &data, &len, &err));
    g_assert_true(g_file_set_contents(to, data, len, &err));
    g_assert_no_error(err);
}

uint64_t test_file_size(TestImage *t)
{
    struct stat st;

    g_assert_cmpint(fstat(t->fd, &st), ==, 0);
    return st.st_size;
}

int test_append_write(CfsDisk *disk, CfsAppend *a)
{
    int n;
    const struct iovec *v = cfs_append_iov(a, &n);
    uint64_t header_at = 0;
    const void *header = NULL;
    size_t header_len = cfs_append_header(a, disk, &header_at, &header);
    int ret = 0;

    if (header_len) {
        struct iovec hv = { (void *)header, header_len };

        ret = disk->io.pwritev(disk->io.opaque, &hv, 1, header_at);
    }
    return ret ? ret : disk->io.pwritev(disk->io.opaque, v, n,
                                        cfs_append_offset(a));
}

CfsAppend *test_prepare(CfsDisk *disk, const void *buf, uint64_t len,
                        uint64_t offset, GError **errp)
{
    struct iovec iov = { (void *)buf, len };
    CfsWrite w = { .offset = offset, .length = len, .iov = &iov,
                   .iovcnt = 1 };

    return cfs_append_prepare(disk, &w, 1, errp);
}

CfsAppendState test_append(CfsDisk *disk, const void *buf, uint64_t len,
                           uint64_t offset)
{
    GError *err = NULL;
    CfsAppend *a = test_prepare(disk, buf, len, offset, &err);
    CfsAppendState state;

    g_assert_no_error(err);
    state = cfs_append_complete(disk, a, test_append_write(disk, a));
    cfs_append_free(a);
    return state;
}
