/*
 * cloudfs import and export: moving a disk's content from and to a raw
 * image file.
 *
 * Both sides keep holes holes: import skips the raw file's holes (and only
 * records zeros where the disk held something else), export maps the disk
 * and leaves unallocated and zero ranges as holes in the raw file.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* Bytes moved per read and per write: one log record per chunk on import */
#define CHUNK_SIZE  (1u << 20)

static uint64_t align_down(uint64_t value, uint64_t align)
{
    return value - value % align;
}

static uint64_t align_up(uint64_t value, uint64_t align)
{
    return align_down(value + align - 1, align);
}

static bool all_zero(const uint8_t *buf, size_t len)
{
    return len == 0 || (buf[0] == 0 && memcmp(buf, buf + 1, len - 1) == 0);
}

/* pread all of len bytes, short only at the end of the file */
static bool read_full(int fd, void *buf, size_t len, uint64_t offset,
                      size_t *done, const char *path, GError **errp)
{
    *done = 0;
    while (*done < len) {
        ssize_t n = pread(fd, (char *)buf + *done, len - *done,
                          offset + *done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "%s: read failed: %s",
                        path, g_strerror(errno));
            return false;
        }
        if (n == 0) {
            break;
        }
        *done += n;
    }
    return true;
}

static bool write_full(int fd, const void *buf, size_t len, uint64_t offset,
                       const char *path, GError **errp)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
                           offset + done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "%s: write failed: %s",
                        path, g_strerror(errno));
            return false;
        }
        done += n;
    }
    return true;
}

/* --- import ------------------------------------------------------------ */

/* The first offset >= pos holding data in fd, or end if there is none */
static uint64_t next_data(int fd, uint64_t pos, uint64_t end)
{
    off_t data = lseek(fd, pos, SEEK_DATA);

    if (data < 0) {
        /* ENXIO: only a hole up to the end; anything else: no hole support */
        return errno == ENXIO ? end : pos;
    }
    return MIN((uint64_t)data, end);
}

/*
 * Make [offset, end) of the disk read as zeros, recording zeros only where
 * it does not already: a fresh disk stays empty where the raw file had
 * holes, and a branch hides its parent's data there.
 */
static bool import_hole(CliImage *image, uint64_t offset, uint64_t end,
                        GError **errp)
{
    bool has_parent = cfs_disk_has_parent(image->disk);

    while (offset < end) {
        CfsMapping m;

        if (!cfs_disk_map(image->disk, offset, end - offset, &m, errp)) {
            return false;
        }
        if (m.kind == CFS_MAP_DATA ||
            (m.kind == CFS_MAP_UNALLOCATED && has_parent)) {
            if (!cfs_disk_write_zeroes(image->disk, offset, m.length, errp)) {
                return false;
            }
        }
        offset += m.length;
    }
    return true;
}

/*
 * Write [offset, offset + len) of the raw file to the disk.  A last block
 * that the raw file only partly covers keeps the disk's bytes beyond the
 * raw file's end.
 */
static bool import_chunk(CliImage *image, int raw_fd, const char *raw_path,
                         uint64_t raw_size, uint8_t *buf, uint64_t offset,
                         size_t len, GError **errp)
{
    uint32_t block_size = cfs_disk_block_size(image->disk);
    size_t got;

    if (offset + len > raw_size) {
        size_t last = len - block_size;

        if (!cfs_disk_pread(image->disk, buf + last, block_size,
                            offset + last, errp)) {
            return false;
        }
    }
    if (!read_full(raw_fd, buf, len, offset, &got, raw_path, errp)) {
        return false;
    }
    if (offset + got < MIN(offset + len, raw_size)) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO,
                    "%s: file shrank while being imported", raw_path);
        return false;
    }
    return cfs_disk_pwrite(image->disk, buf, len, offset, errp);
}

static bool import_file(CliImage *image, int raw_fd, const char *raw_path,
                        uint64_t raw_size, GError **errp)
{
    uint32_t block_size = cfs_disk_block_size(image->disk);
    uint64_t end = align_up(raw_size, block_size);
    g_autofree uint8_t *buf = g_malloc(CHUNK_SIZE);
    uint64_t pos = 0;

    while (pos < end) {
        uint64_t hole_end = align_down(next_data(raw_fd, pos, raw_size),
                                       block_size);
        size_t len;

        if (hole_end > pos) {
            if (!import_hole(image, pos, hole_end, errp)) {
                return false;
            }
            pos = hole_end;
            continue;
        }
        len = MIN(end - pos, CHUNK_SIZE - pos % CHUNK_SIZE);
        if (!import_chunk(image, raw_fd, raw_path, raw_size, buf, pos, len,
                          errp)) {
            return false;
        }
        pos += len;
    }
    return cfs_disk_flush(image->disk, errp);
}

static int import_run(int argc, char **argv)
{
    const char *raw_path = argv[1];
    GError *err = NULL;
    g_autoptr(CliImage) image = NULL;
    struct stat st;
    int raw_fd;
    bool ok;

    image = cli_image_open(argv[0], CLI_OPEN_WRITE | CLI_OPEN_PARENTS, &err);
    if (!image) {
        return cli_fail(err);
    }
    raw_fd = open(raw_path, O_RDONLY | O_CLOEXEC);
    if (raw_fd < 0) {
        cli_error("cannot open '%s': %s", raw_path, g_strerror(errno));
        return CLI_EXIT_FAILED;
    }
    if (fstat(raw_fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        cli_error("'%s' is not a regular file", raw_path);
        close(raw_fd);
        return CLI_EXIT_FAILED;
    }
    if ((uint64_t)st.st_size > cfs_disk_size(image->disk)) {
        cli_error("'%s' (%" G_GUINT64_FORMAT " bytes) does not fit in '%s' "
                  "(%" G_GUINT64_FORMAT " bytes)", raw_path,
                  (uint64_t)st.st_size, image->path,
                  cfs_disk_size(image->disk));
        close(raw_fd);
        return CLI_EXIT_FAILED;
    }
    ok = import_file(image, raw_fd, raw_path, st.st_size, &err);
    close(raw_fd);
    if (!ok) {
        return cli_fail(err);
    }
    if (!cli_image_close(g_steal_pointer(&image), &err)) {
        return cli_fail(err);
    }
    return CLI_EXIT_OK;
}

const CliCommand cli_cmd_import = {
    .name = "import",
    .synopsis = "PATH RAWFILE",
    .args = "PATH RAWFILE",
    .purpose = "copy a raw image into a disk",
    .description =
        "  Writes the content of the raw image RAWFILE to the start of the\n"
        "  existing disk PATH, as new versions of it (one per MiB written).\n"
        "  RAWFILE must not be larger than the disk.  Holes in RAWFILE are\n"
        "  skipped, blocks of zeros are stored as zero ranges, and a last\n"
        "  partial block keeps the disk's bytes after the end of RAWFILE.\n"
        "  The disk is flushed and checkpointed at the end.\n",
    .examples =
        "  cloudfs create vm.cfs 10G && cloudfs import vm.cfs vm.raw\n",
    .min_args = 2,
    .max_args = 2,
    .run = import_run,
};

/* --- export ------------------------------------------------------------ */

/*
 * Copy one run of the disk to the raw file.  Zero blocks are skipped when
 * the raw file already reads as zeros there (a regular file after
 * ftruncate), and written otherwise (a block device).
 */
static bool export_run_of(CliImage *image, int raw_fd, const char *raw_path,
                          bool holes_are_zero, const CfsMapping *m,
                          uint8_t *buf, GError **errp)
{
    bool read_data = m->kind == CFS_MAP_DATA ||
                     (m->kind == CFS_MAP_UNALLOCATED &&
                      cfs_disk_has_parent(image->disk));

    for (uint64_t done = 0; done < m->length; ) {
        size_t len = MIN(m->length - done, CHUNK_SIZE);
        uint64_t offset = m->guest_offset + done;

        if (read_data) {
            if (!cfs_disk_pread(image->disk, buf, len, offset, errp)) {
                g_prefix_error(errp, "%s: reading guest offset %"
                               G_GUINT64_FORMAT ": ", image->path, offset);
                return false;
            }
        } else {
            memset(buf, 0, len);
        }
        if (!(holes_are_zero && all_zero(buf, len)) &&
            !write_full(raw_fd, buf, len, offset, raw_path, errp)) {
            return false;
        }
        done += len;
    }
    return true;
}

static bool export_disk(CliImage *image, int raw_fd, const char *raw_path,
                        bool holes_are_zero, GError **errp)
{
    uint64_t size = cfs_disk_size(image->disk);
    g_autofree uint8_t *buf = g_malloc(CHUNK_SIZE);
    uint64_t pos = 0;

    while (pos < size) {
        CfsMapping m;

        if (!cfs_disk_map(image->disk, pos, size - pos, &m, errp)) {
            g_prefix_error(errp, "%s: ", image->path);
            return false;
        }
        if (!export_run_of(image, raw_fd, raw_path, holes_are_zero, &m, buf,
                           errp)) {
            return false;
        }
        pos += m.length;
    }
    if (fsync(raw_fd) < 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "%s: fsync failed: %s",
                    raw_path, g_strerror(errno));
        return false;
    }
    return true;
}

/* Exporting onto the image itself (or a parent) would destroy it */
static bool is_image_file(const CliImage *image, const struct stat *raw)
{
    for (; image; image = image->parent) {
        struct stat st;

        if (fstat(image->fd, &st) == 0 && st.st_dev == raw->st_dev &&
            st.st_ino == raw->st_ino) {
            return true;
        }
    }
    return false;
}

static int export_run(int argc, char **argv)
{
    const char *raw_path = argv[1];
    GError *err = NULL;
    g_autoptr(CliImage) image = cli_image_open(argv[0], CLI_OPEN_PARENTS,
                                               &err);
    struct stat st;
    bool regular, ok;
    int raw_fd;

    if (!image) {
        return cli_fail(err);
    }
    if (stat(raw_path, &st) == 0 && is_image_file(image, &st)) {
        cli_error("'%s' is the image being exported (or one of its "
                  "parents): refusing to overwrite it", raw_path);
        return CLI_EXIT_FAILED;
    }
    raw_fd = open(raw_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (raw_fd < 0 || fstat(raw_fd, &st) < 0) {
        cli_error("cannot open '%s': %s", raw_path, g_strerror(errno));
        return CLI_EXIT_FAILED;
    }
    /*
     * A regular file is emptied and sized, so every range left unwritten
     * is a hole; a block device must get its zeros written.
     */
    regular = S_ISREG(st.st_mode);
    if (regular && (ftruncate(raw_fd, 0) < 0 ||
                    ftruncate(raw_fd, cfs_disk_size(image->disk)) < 0)) {
        cli_error("%s: cannot truncate: %s", raw_path, g_strerror(errno));
        close(raw_fd);
        return CLI_EXIT_FAILED;
    }
    ok = export_disk(image, raw_fd, raw_path, regular, &err);
    if (close(raw_fd) < 0 && ok) {
        g_set_error(&err, CFS_ERROR, CFS_ERROR_IO, "%s: %s", raw_path,
                    g_strerror(errno));
        ok = false;
    }
    if (!ok && regular) {
        /* Half an export must not pass for a whole one */
        unlink(raw_path);
    }
    return ok ? CLI_EXIT_OK : cli_fail(err);
}

const CliCommand cli_cmd_export = {
    .name = "export",
    .synopsis = "PATH[@VERSION|@TAG] RAWFILE",
    .args = "PATH[@VERSION|@TAG] RAWFILE",
    .purpose = "copy a disk (at a version) to a raw image",
    .description =
        "  Writes the content of the disk PATH, at its head or at the given\n"
        "  version or tag, to the raw image RAWFILE, which is created or\n"
        "  truncated.  Ranges that were never written or read as zeros\n"
        "  become holes.  Every block read is checked against its checksum:\n"
        "  a corrupt block makes export fail, and a regular RAWFILE is then\n"
        "  removed rather than left holding part of the disk.\n"
        "  A branch reads through its parents, which must be where their\n"
        "  hints say and have the versions the branch was made from.\n",
    .examples =
        "  cloudfs export vm.cfs vm.raw\n"
        "  cloudfs export vm.cfs@before-upgrade old.raw\n",
    .min_args = 2,
    .max_args = 2,
    .run = export_run,
};
