/*
 * cloudfs admin CLI: opening an image, a historical version of it, and the
 * chain of parents a branch reads through.
 *
 * A branch names its parent by disk id and version, plus a hint: the path
 * of the parent's file, relative to the branch's own directory unless it
 * is absolute (as a QEMU backing file name is).  The hint is only a hint:
 * the parent found there must have the id and version id the branch was
 * created from, or reading the branch would show somebody else's data.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* A chain longer than this is taken for a loop of hints */
#define CLI_MAX_PARENT_DEPTH    64

void cli_image_free(CliImage *image)
{
    while (image) {
        CliImage *parent = image->parent;

        /* The child reads through its parent: free it first */
        if (image->disk) {
            cfs_disk_free(image->disk);
        }
        if (image->fd >= 0) {
            close(image->fd);
        }
        g_free(image->path);
        g_free(image);
        image = parent;
    }
}

bool cli_image_close(CliImage *image, GError **errp)
{
    bool ok = true;

    if (image->disk) {
        ok = cfs_disk_close(image->disk, errp);
        if (!ok) {
            g_prefix_error(errp, "%s: ", image->path);
        }
        image->disk = NULL;
    }
    cli_image_free(image);
    return ok;
}

/* Open path's file and the disk in it, at version (or CFS_VERSION_HEAD) */
static CliImage *open_version(const char *path, bool write, uint64_t version,
                              GError **errp)
{
    g_autoptr(CliImage) image = g_new0(CliImage, 1);

    image->path = g_strdup(path);
    image->fd = open(path, (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (image->fd < 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "cannot open '%s': %s",
                    path, g_strerror(errno));
        return NULL;
    }
    if (write && !cli_lock_for_writing(image->fd, path, errp)) {
        return NULL;
    }
    cfs_io_init_fd(&image->io, &image->fd);
    image->disk = cfs_disk_open(&image->io, write ? CFS_OPEN_RDWR : 0,
                                version, errp);
    if (!image->disk) {
        g_prefix_error(errp, "%s: ", path);
        return NULL;
    }
    return g_steal_pointer(&image);
}

/* Where a branch's parent hint points, as a path usable from here */
static char *parent_path(const char *branch_path, const CfsSuperblock *sb)
{
    size_t len = MIN(GUINT16_FROM_LE(sb->parent_hint_len),
                     CFS_PARENT_HINT_MAX);
    g_autofree char *hint = g_strndup(sb->parent_hint, len);
    g_autofree char *dir = NULL;

    if (hint[0] == '\0' || g_path_is_absolute(hint)) {
        return g_steal_pointer(&hint);
    }
    dir = g_path_get_dirname(branch_path);
    return g_build_filename(dir, hint, NULL);
}

static bool attach_parent(CliImage *image, unsigned depth, GError **errp)
{
    const CfsSuperblock *sb = cfs_disk_superblock(image->disk);
    uint64_t version = GUINT64_FROM_LE(sb->parent_version);
    g_autofree char *path = parent_path(image->path, sb);
    g_autofree char *want_id = cli_id_hex(sb->parent_disk_id);
    g_autofree char *want_version_id = cli_id_hex(sb->parent_version_id);
    CliImage *parent;

    if (depth >= CLI_MAX_PARENT_DEPTH) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID,
                    "%s: more than %d parents: do the parent hints loop?",
                    image->path, CLI_MAX_PARENT_DEPTH);
        return false;
    }
    if (path[0] == '\0') {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_NOT_FOUND,
                    "%s: branch of disk %s (version %" G_GUINT64_FORMAT
                    ") names no parent file", image->path, want_id, version);
        return false;
    }
    /* The head first: a wrong file is "not the parent", whatever its age */
    parent = open_version(path, false, CFS_VERSION_HEAD, errp);
    if (!parent) {
        g_prefix_error(errp, "cannot open the parent of '%s' (disk %s, "
                       "version %" G_GUINT64_FORMAT "): ",
                       image->path, want_id, version);
        return false;
    }
    image->parent = parent;
    if (memcmp(cfs_disk_id(parent->disk), sb->parent_disk_id,
               CFS_ID_LEN) != 0) {
        g_autofree char *found = cli_id_hex(cfs_disk_id(parent->disk));

        g_set_error(errp, CFS_ERROR, CFS_ERROR_MISMATCH,
                    "'%s' is not the parent of '%s': it is disk %s, "
                    "the parent is disk %s", path, image->path, found,
                    want_id);
        return false;
    }
    if (cfs_disk_version(parent->disk) != version) {
        g_clear_pointer(&image->parent, cli_image_free);
        parent = open_version(path, false, version, errp);
        if (!parent) {
            g_prefix_error(errp, "'%s' was branched from version %"
                           G_GUINT64_FORMAT " of '%s': ", image->path,
                           version, path);
            return false;
        }
        image->parent = parent;
    }
    if (memcmp(cfs_disk_version_id(parent->disk), sb->parent_version_id,
               CFS_ID_LEN) != 0) {
        g_autofree char *found = cli_id_hex(cfs_disk_version_id(parent->disk));

        g_set_error(errp, CFS_ERROR, CFS_ERROR_MISMATCH,
                    "version %" G_GUINT64_FORMAT " of parent '%s' has id %s, "
                    "but '%s' was branched from id %s: the parent's history "
                    "is not the one the branch was made from",
                    version, path, found, image->path, want_version_id);
        return false;
    }
    if (cfs_disk_has_parent(parent->disk) &&
        !attach_parent(parent, depth + 1, errp)) {
        return false;
    }
    cfs_disk_set_parent(image->disk, parent->disk);
    return true;
}

CliImage *cli_image_open(const char *spec, unsigned flags, GError **errp)
{
    bool write = flags & CLI_OPEN_WRITE;
    g_autofree char *path = NULL;
    g_autofree char *version_spec = NULL;
    g_autoptr(CliImage) image = NULL;
    uint64_t version;

    cli_split_spec(spec, &path, &version_spec);
    if (write && version_spec) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_READ_ONLY,
                    "'%s' names a version: only the head of a disk can be "
                    "changed", spec);
        return NULL;
    }
    image = open_version(path, write, CFS_VERSION_HEAD, errp);
    if (!image) {
        return NULL;
    }
    image->head_version = cfs_disk_version(image->disk);
    if (version_spec) {
        if (!cli_resolve_version(image->disk, version_spec, &version, errp)) {
            g_prefix_error(errp, "%s: ", path);
            return NULL;
        }
        if (version != cfs_disk_version(image->disk)) {
            uint64_t head_version = image->head_version;

            g_clear_pointer(&image, cli_image_free);
            image = open_version(path, false, version, errp);
            if (!image) {
                return NULL;
            }
            image->head_version = head_version;
        }
    }
    if ((flags & CLI_OPEN_PARENTS) && cfs_disk_has_parent(image->disk) &&
        !attach_parent(image, 0, errp)) {
        return NULL;
    }
    return g_steal_pointer(&image);
}
