/*
 * Writes seed inputs for fuzz-image into a directory: a real image
 * (mode 0), real deltas (mode 3) and structured sealed-record inputs
 * (modes 1 and 2), so the fuzzer starts from valid structures.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"

static void save(const char *dir, const char *name, uint8_t mode,
                 const void *data, size_t len)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autoptr(GByteArray) out = g_byte_array_new();

    g_byte_array_append(out, &mode, 1);
    g_byte_array_append(out, data, len);
    if (!g_file_set_contents(path, (char *)out->data, out->len, NULL)) {
        g_error("cannot write %s", path);
    }
}

static bool sink(const void *buf, size_t len, void *opaque, GError **errp)
{
    g_byte_array_append(opaque, buf, len);
    return true;
}

int main(int argc, char **argv)
{
    g_autofree char *img = NULL;
    CfsCreateOptions opts = { .size = 64 * 1024, .block_size = 512 };
    CfsDisk *disk;
    CfsIO io;
    int fd;
    uint8_t buf[2048];
    g_autoptr(GByteArray) delta = g_byte_array_new();
    g_autofree char *bytes = NULL;
    gsize len;

    if (argc != 2) {
        g_printerr("usage: fuzz-seeds DIR\n");
        return 2;
    }
    g_mkdir_with_parents(argv[1], 0755);
    img = g_build_filename(argv[1], "image.tmp", NULL);
    unlink(img);
    fd = open(img, O_RDWR | O_CREAT | O_EXCL, 0600);
    cfs_io_init_fd(&io, &fd);
    if (fd < 0 || !cfs_disk_create(&io, &opts, NULL, NULL) ||
        !(disk = cfs_disk_open(&io, CFS_OPEN_RDWR, CFS_VERSION_HEAD, NULL))) {
        g_error("cannot create a seed image");
    }
    memset(buf, 0x41, sizeof(buf));
    cfs_disk_pwrite(disk, buf, sizeof(buf), 4096, NULL);
    cfs_disk_tag(disk, "seed", NULL);
    cfs_disk_write_zeroes(disk, 0, 1024, NULL);
    cfs_disk_revert(disk, 1, NULL);
    cfs_disk_resize(disk, 32 * 1024, NULL);
    cfs_delta_export(disk, 0, CFS_VERSION_HEAD, sink, delta, NULL);
    cfs_disk_close(disk, NULL);
    close(fd);
    g_file_get_contents(img, &bytes, &len, NULL);
    unlink(img);
    save(argv[1], "image", 0, bytes, len);
    save(argv[1], "delta", 3, delta->data, delta->len);
    {
        /* a WRITE record: type 1, body 16 bytes (one DATA extent of 1
         * block at 0), 1 payload block */
        uint8_t rec[1 + 2 + 1 + 16 + 512] = { 0, 0, 16, 1 };
        CfsWriteExtent e = { .guest_offset = 0, .nblocks = GUINT32_TO_LE(1),
                             .kind = GUINT16_TO_LE(CFS_EXTENT_DATA) };

        memcpy(rec + 4, &e, sizeof(e));
        memset(rec + 20, 0x5a, 512);
        save(argv[1], "sealed-write", 1, rec, sizeof(rec));
        save(argv[1], "sealed-checkpoint", 2, rec, sizeof(rec));
    }
    {
        /* two nodes: a leaf with one DATA extent at 0 (2 blocks, in the
         * first record's payload) and a root above it; the fuzzer finds
         * the leaf's file offset for the root's child entry */
        static const uint8_t head[] = { 1, 0, 0, 2, 0, 1, 0, 32 };
        static const uint8_t inner[] = { 1, 1, 0, 16 };
        CfsCkptExtent e = { .nblocks = GUINT32_TO_LE(2),
                            .kind = GUINT16_TO_LE(CFS_EXTENT_DATA),
                            .log_offset = GUINT64_TO_LE(12288 + 512),
                            .record_offset = GUINT64_TO_LE(12288) };
        CfsNodeChild c = { 0 };
        g_autoptr(GByteArray) rec = g_byte_array_new();

        g_byte_array_append(rec, head, sizeof(head));
        g_byte_array_append(rec, (const uint8_t *)&e, sizeof(e));
        g_byte_array_append(rec, inner, sizeof(inner));
        g_byte_array_append(rec, (const uint8_t *)&c, sizeof(c));
        save(argv[1], "sealed-nodes", 4, rec->data, rec->len);
    }
    return 0;
}
