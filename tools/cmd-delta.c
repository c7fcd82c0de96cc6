/*
 * cloudfs export-delta and apply-delta: moving versions between copies of
 * a disk as a byte stream (stdout to stdin, a pipe, ssh, a file).
 *
 * A delta holds the log records of a range of versions in the log's own
 * format; the receiver verifies them with the same checksums and hash
 * chain.  A delta from the base also carries the superblock, so it can
 * create a replica where there is none.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* --- export-delta ------------------------------------------------------ */

static bool stdout_sink(const void *buf, size_t len, void *opaque,
                        GError **errp)
{
    if (!cli_write_all(STDOUT_FILENO, buf, len, errp)) {
        g_prefix_error(errp, "standard output: ");
        return false;
    }
    return true;
}

/* FROM and TO: a version number, a tag, or 0 for the base */
static bool resolve_bound(CfsDisk *disk, const char *spec, uint64_t *version,
                          GError **errp)
{
    if (strcmp(spec, "0") == 0) {
        *version = 0;
        return true;
    }
    return cli_resolve_version(disk, spec, version, errp);
}

static int export_delta_run(int argc, char **argv)
{
    GError *err = NULL;
    g_autoptr(CliImage) image = NULL;
    uint64_t from, to = CFS_VERSION_HEAD;

    if (isatty(STDOUT_FILENO)) {
        return cli_usage_error("refusing to write a delta to a terminal: "
                               "redirect standard output");
    }
    image = cli_image_open(argv[0], 0, &err);
    if (!image) {
        return cli_fail(err);
    }
    if (!resolve_bound(image->disk, argv[1], &from, &err) ||
        (argc > 2 && !resolve_bound(image->disk, argv[2], &to, &err))) {
        g_prefix_error(&err, "%s: ", image->path);
        return cli_fail(err);
    }
    /* A reader that goes away is an error to report, not a silent death */
    signal(SIGPIPE, SIG_IGN);
    if (!cfs_delta_export(image->disk, from, to, stdout_sink, NULL, &err)) {
        g_prefix_error(&err, "%s: ", image->path);
        return cli_fail(err);
    }
    return CLI_EXIT_OK;
}

const CliCommand cli_cmd_export_delta = {
    .name = "export-delta",
    .synopsis = "PATH FROM [TO] > DELTA",
    .args = "PATH FROM [TO] > DELTA",
    .purpose = "write the versions after FROM as a delta to stdout",
    .description =
        "  Writes the records of the versions after FROM up to TO (default:\n"
        "  the head) of the disk PATH to standard output, which must not be\n"
        "  a terminal.  FROM and TO are version numbers or snapshot names;\n"
        "  FROM 0 is the base, and a delta from the base also carries what\n"
        "  is needed to create a new replica.  Apply it with apply-delta.\n",
    .examples =
        "  cloudfs export-delta vm.cfs 0 > full.delta\n"
        "  cloudfs export-delta vm.cfs nightly | ssh host2 cloudfs "
        "apply-delta vm.cfs\n"
        "  cloudfs export-delta vm.cfs 10 20 > v10-20.delta\n",
    .min_args = 2,
    .max_args = 3,
    .run = export_delta_run,
};

/* --- apply-delta ------------------------------------------------------- */

/* Fill buf from stdin; short only at the end of the stream */
static gssize stdin_source(void *buf, size_t len, void *opaque, GError **errp)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = read(STDIN_FILENO, (char *)buf + done, len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_IO,
                        "standard input: read failed: %s", g_strerror(errno));
            return -1;
        }
        if (n == 0) {
            break;
        }
        done += n;
    }
    return done;
}

/* Create path as an empty replica of the delta's disk */
static bool create_replica(const char *path, const CfsSuperblock *sb,
                           GError **errp)
{
    CfsIO io;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);

    if (fd < 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "cannot create '%s': %s",
                    path, g_strerror(errno));
        return false;
    }
    cfs_io_init_fd(&io, &fd);
    if (!cfs_disk_create_replica(&io, sb, errp)) {
        g_prefix_error(errp, "%s: ", path);
        unlink(path);
        close(fd);
        return false;
    }
    if (close(fd) < 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "%s: %s", path,
                    g_strerror(errno));
        unlink(path);
        return false;
    }
    return true;
}

static int apply_failed(const char *path, GError *err,
                        const CfsDeltaResult *result)
{
    if (g_error_matches(err, CFS_ERROR, CFS_ERROR_DIVERGED)) {
        cli_error("%s: %s; nothing from version %" G_GUINT64_FORMAT " on was "
                  "applied", path, err->message, result->diverged_at);
        g_error_free(err);
        return CLI_EXIT_FAILED;
    }
    g_prefix_error(&err, "%s: ", path);
    cli_fail(err);
    if (result->records_applied) {
        cli_error("%s: %" G_GUINT64_FORMAT " records were applied before "
                  "the error; now at version %" G_GUINT64_FORMAT, path,
                  result->records_applied, result->version);
    }
    return CLI_EXIT_FAILED;
}

static int apply_delta_run(int argc, char **argv)
{
    const char *path = argv[0];
    GError *err = NULL;
    CfsDeltaReader *reader;
    const CfsSuperblock *sb;
    g_autoptr(CliImage) image = NULL;
    g_autofree char *version_id = NULL;
    CfsDeltaResult result = { 0 };
    bool created = false, ok;
    struct stat st;

    if (isatty(STDIN_FILENO)) {
        return cli_usage_error("refusing to read a delta from a terminal: "
                               "redirect standard input");
    }
    reader = cfs_delta_reader_new(stdin_source, NULL, &err);
    if (!reader) {
        g_prefix_error(&err, "standard input: ");
        return cli_fail(err);
    }
    sb = cfs_delta_reader_superblock(reader);
    if (stat(path, &st) < 0 && errno == ENOENT) {
        if (!sb) {
            cli_error("'%s' does not exist, and the delta starts at version "
                      "%" G_GUINT64_FORMAT ", not at the base: only a delta "
                      "from version 0 can create a replica", path,
                      GUINT64_FROM_LE(cfs_delta_reader_header(reader)
                                      ->from_version));
            cfs_delta_reader_free(reader);
            return CLI_EXIT_FAILED;
        }
        if (!create_replica(path, sb, &err)) {
            cfs_delta_reader_free(reader);
            return cli_fail(err);
        }
        created = true;
    }
    image = cli_image_open(path, CLI_OPEN_WRITE, &err);
    if (!image) {
        cfs_delta_reader_free(reader);
        return cli_fail(err);
    }
    ok = cfs_delta_apply(image->disk, reader, &result, &err);
    cfs_delta_reader_free(reader);
    if (!ok) {
        GError *close_err = NULL;

        /*
         * The records applied before a bad or cut stream are good: close
         * (checkpoint) as after a success.  The core writes nothing to a
         * disk whose own write failed.
         */
        if (!cli_image_close(g_steal_pointer(&image), &close_err)) {
            cli_fail(close_err);
        }
        if (created && result.records_applied == 0) {
            /* Leave nothing behind for a delta that brought nothing */
            unlink(path);
        }
        return apply_failed(path, err, &result);
    }
    version_id = cli_id_hex(cfs_disk_version_id(image->disk));
    printf("applied %" G_GUINT64_FORMAT " records (%" G_GUINT64_FORMAT
           " already present); now at version %" G_GUINT64_FORMAT
           ", id %s\n", result.records_applied, result.records_skipped,
           cfs_disk_version(image->disk), version_id);
    if (!cli_image_close(g_steal_pointer(&image), &err)) {
        return cli_fail(err);
    }
    return CLI_EXIT_OK;
}

const CliCommand cli_cmd_apply_delta = {
    .name = "apply-delta",
    .synopsis = "PATH < DELTA",
    .args = "PATH < DELTA",
    .purpose = "apply a delta from stdin to a copy of its disk",
    .description =
        "  Reads a delta (made by export-delta) from standard input, which\n"
        "  must not be a terminal, and appends its versions to the disk\n"
        "  PATH.  Versions PATH already has are skipped.  If PATH does not\n"
        "  exist and the delta starts at the base (version 0), PATH is\n"
        "  created as a replica with the same disk id.\n"
        "\n"
        "  Every record is verified before it is appended.  A delta for\n"
        "  another disk, one that starts after PATH's head, or one whose\n"
        "  history differs from PATH's (the copies diverged: the version\n"
        "  where they differ is printed) is refused and PATH is left as it\n"
        "  was.  A truncated delta applies the complete records it holds.\n",
    .examples =
        "  cloudfs export-delta vm.cfs 0 | cloudfs apply-delta replica.cfs\n"
        "  ssh host1 cloudfs export-delta vm.cfs 42 | cloudfs apply-delta "
        "vm.cfs\n",
    .min_args = 1,
    .max_args = 1,
    .run = apply_delta_run,
};
