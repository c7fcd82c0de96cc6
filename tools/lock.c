/*
 * cloudfs admin CLI: the image locks QEMU takes, taken the same way.
 *
 * QEMU's file-posix driver says what it does with an image file by
 * shared OFD locks on single bytes of it: byte 100 + i while it holds
 * permission i (consistent read, write, write unchanged, resize), byte
 * 200 + i while it lets nobody else have permission i.  Nobody locks
 * exclusively; a process finds a conflict by asking (F_OFD_GETLK) whether
 * an exclusive lock of the byte would be refused.  The CLI writes an
 * image only under the same locks, so that it and a QEMU never append to
 * one log at once: whichever comes second is refused.  Reading takes no
 * lock (as qemu-img --force-share): it changes nothing.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "cli.h"

#define QEMU_LOCK_PERM_BASE     100
#define QEMU_LOCK_SHARED_BASE   200

/* QEMU's BLK_PERM_* bits, in order */
static const char *const perm_names[] = {
    "consistent read", "write", "write unchanged", "resize",
};
#define PERM_COUNT      G_N_ELEMENTS(perm_names)
/* The CLI appends and truncates: it shares reading only */
#define PERM_UNSHARED   (1u << 1 | 1u << 3)

static int lock_byte(int fd, int cmd, short type, off_t at, struct flock *fl)
{
    *fl = (struct flock) {
        .l_type = type,
        .l_whence = SEEK_SET,
        .l_start = at,
        .l_len = 1,
    };
    return fcntl(fd, cmd, fl);
}

/* Would an exclusive lock of byte at be refused: does somebody hold it? */
static bool byte_held(int fd, off_t at, bool *held)
{
    struct flock fl;

    if (lock_byte(fd, F_OFD_GETLK, F_WRLCK, at, &fl) < 0) {
        return false;
    }
    *held = fl.l_type != F_UNLCK;
    return true;
}

/*
 * Does the kernel have OFD locks?  QEMU asks the same way, once, and goes
 * without locks (locking=auto) only when it has not; a file system that
 * refuses them makes QEMU refuse the image, and the CLI too.
 */
static bool kernel_has_ofd_locks(void)
{
    struct flock fl;
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    bool has;

    if (fd < 0) {
        return true;
    }
    has = lock_byte(fd, F_OFD_GETLK, F_WRLCK, 0, &fl) == 0 ||
          errno != EINVAL;
    close(fd);
    return has;
}

bool cli_lock_for_writing(int fd, const char *path, GError **errp)
{
    struct flock fl;

    if (!kernel_has_ofd_locks()) {
        fprintf(stderr, "cloudfs: warning: this kernel has no OFD locks: "
                "'%s' is written without QEMU's image locks\n", path);
        return true;
    }
    for (unsigned i = 0; i < PERM_COUNT; i++) {
        if (lock_byte(fd, F_OFD_SETLK, F_RDLCK, QEMU_LOCK_PERM_BASE + i,
                      &fl) < 0 ||
            ((PERM_UNSHARED >> i & 1) &&
             lock_byte(fd, F_OFD_SETLK, F_RDLCK, QEMU_LOCK_SHARED_BASE + i,
                       &fl) < 0)) {
            bool held = errno == EAGAIN || errno == EACCES;

            g_set_error(errp, CFS_ERROR, held ? CFS_ERROR_BUSY : CFS_ERROR_IO,
                        "cannot lock '%s': %s%s", path, g_strerror(errno),
                        held ? "" : " (QEMU refuses such a file too, unless "
                        "opened with locking=off)");
            return false;
        }
    }
    for (unsigned i = 0; i < PERM_COUNT; i++) {
        bool kept = false, held = false;

        if (!byte_held(fd, QEMU_LOCK_SHARED_BASE + i, &kept) ||
            ((PERM_UNSHARED >> i & 1) &&
             !byte_held(fd, QEMU_LOCK_PERM_BASE + i, &held))) {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_IO,
                        "cannot test the locks of '%s': %s", path,
                        g_strerror(errno));
            return false;
        }
        if (kept || held) {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_BUSY,
                        "'%s' is in use: another process (a QEMU?) %s its "
                        "\"%s\" permission.  Writing now would corrupt the "
                        "image: stop that process first, or make the change "
                        "through it (e.g. snapshots with QMP or HMP)",
                        path, kept ? "keeps" : "holds", perm_names[i]);
            return false;
        }
    }
    return true;
}
