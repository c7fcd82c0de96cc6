/*
 * cloudfs format core: the CfsIO interface on a POSIX file descriptor,
 * for the tools, the daemon and the tests.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

static int fd_pread(void *opaque, void *buf, size_t len, uint64_t offset)
{
    int fd = *(int *)opaque;
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, offset + done);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return -EIO;    /* short file: the core checks sizes first */
        }
        done += n;
    }
    return 0;
}

static int fd_pwritev(void *opaque, const struct iovec *iov, int iovcnt,
                      uint64_t offset)
{
    int fd = *(int *)opaque;
    struct iovec *copy = g_memdup2(iov, sizeof(*iov) * iovcnt);
    struct iovec *cur = copy;
    int left = iovcnt;
    int ret = 0;

    while (left > 0) {
        ssize_t n = pwritev(fd, cur, MIN(left, IOV_MAX), offset);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            ret = -errno;
            break;
        }
        offset += n;
        /* skip what was written, including a partial iovec */
        while (left > 0 && (size_t)n >= cur->iov_len) {
            n -= cur->iov_len;
            cur++;
            left--;
        }
        if (left > 0) {
            cur->iov_base = (char *)cur->iov_base + n;
            cur->iov_len -= n;
        }
    }
    g_free(copy);
    return ret;
}

static int fd_flush(void *opaque)
{
    return fdatasync(*(int *)opaque) < 0 ? -errno : 0;
}

static int fd_truncate(void *opaque, uint64_t size)
{
    return ftruncate(*(int *)opaque, size) < 0 ? -errno : 0;
}

static int64_t fd_size(void *opaque)
{
    struct stat st;

    return fstat(*(int *)opaque, &st) < 0 ? -errno : st.st_size;
}

static int fd_discard(void *opaque, uint64_t offset, uint64_t len)
{
    return fallocate(*(int *)opaque, FALLOC_FL_PUNCH_HOLE |
                     FALLOC_FL_KEEP_SIZE, offset, len) < 0 ? -errno : 0;
}

void cfs_io_init_fd(CfsIO *io, int *fd)
{
    *io = (CfsIO) {
        .opaque = fd,
        .pread = fd_pread,
        .pwritev = fd_pwritev,
        .flush = fd_flush,
        .truncate = fd_truncate,
        .size = fd_size,
        .discard = fd_discard,
    };
}
