/*
 * cloudfs admin CLI: what the subcommand files share.
 *
 * tools/cloudfs.c picks the subcommand, parses its options with
 * GOptionContext and prints help; each tools/cmd-*.c file implements one
 * group of subcommands on top of the core's public API (cloudfs.h);
 * tools/open.c opens an image with its chain of parents, and tools/util.c
 * holds the small helpers (errors, version specs, formatting).
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef CLOUDFS_CLI_H
#define CLOUDFS_CLI_H

#include <glib.h>
#include "cloudfs.h"

/* Exit statuses, the same for every subcommand (see EXIT STATUS in help) */
enum {
    CLI_EXIT_OK       = 0,  /* success; check: no problem found */
    CLI_EXIT_FAILED   = 1,  /* the operation failed; check: problems remain */
    CLI_EXIT_USAGE    = 2,  /* bad arguments; nothing was done */
    CLI_EXIT_REPAIRED = 3,  /* check --repair fixed every problem it found */
};

/*
 * A subcommand.  The option entries point at the file-static variables of
 * the subcommand's own file; run() gets the positional arguments left after
 * option parsing (argv[0] is the first of them, not a program name).
 */
typedef struct CliCommand {
    const char *name;
    const char *synopsis;       /* after "cloudfs NAME " */
    const char *args;           /* the positional part of the synopsis */
    const char *purpose;        /* one line, for NAME and the command list */
    const char *description;    /* DESCRIPTION body, indented lines */
    const char *exit_status;    /* NULL: the common EXIT STATUS text */
    const char *examples;       /* EXAMPLES body, indented lines */
    const GOptionEntry *options;    /* NULL-terminated, or NULL */
    unsigned min_args, max_args;
    int (*run)(int argc, char **argv);
} CliCommand;

extern const CliCommand cli_cmd_create;
extern const CliCommand cli_cmd_info;
extern const CliCommand cli_cmd_import;
extern const CliCommand cli_cmd_export;
extern const CliCommand cli_cmd_snapshot;
extern const CliCommand cli_cmd_versions;
extern const CliCommand cli_cmd_log;
extern const CliCommand cli_cmd_check;
extern const CliCommand cli_cmd_export_delta;
extern const CliCommand cli_cmd_apply_delta;

/* --- lock.c ------------------------------------------------------------ */

/*
 * Take the locks QEMU takes on an image file it writes, on fd (O_RDWR:
 * the locks are read locks), and fail with CFS_ERROR_BUSY if another
 * process holds the image for writing or keeps others from it.  Closing
 * fd drops them.
 */
bool cli_lock_for_writing(int fd, const char *path, GError **errp);

/* --- util.c ------------------------------------------------------------ */

/* The subcommand being run, for the "cloudfs: NAME: " prefix of errors */
void cli_set_command(const char *name);
/* Print "cloudfs: <subcommand>: <message>" on stderr */
void cli_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* Print err as above, free it, and return CLI_EXIT_FAILED */
int cli_fail(GError *err);
/* Print a usage error and a pointer to the help; returns CLI_EXIT_USAGE */
int cli_usage_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/*
 * Split "PATH@VERSION" / "PATH@TAG" into the path and "@VERSION" (NULL when
 * there is no '@' part).  A name whose last '@' is followed by a '/' is a
 * plain path, as is one that names an existing file as a whole.
 */
void cli_split_spec(const char *spec, char **path, char **version_spec);

/* Parse a size ("10G", "4096"); false and a usage message if it is not one */
bool cli_parse_size_arg(const char *what, const char *text, uint64_t *bytes);

/* Hex of an id, as a newly allocated string */
char *cli_id_hex(const uint8_t id[CFS_ID_LEN]);
/* "2026-01-02T03:04:05Z" (UTC), or "-" if unknown; newly allocated */
char *cli_format_time(uint64_t unix_ns);
/* "10 GiB (10737418240 bytes)", newly allocated */
char *cli_format_size(uint64_t bytes);
/* Name of a record type ("write", "tag", ...) */
const char *cli_record_type_name(uint16_t type);

/* Write all of buf to fd, retrying on EINTR and partial writes */
bool cli_write_all(int fd, const void *buf, size_t len, GError **errp);

/* --- open.c ------------------------------------------------------------ */

/*
 * An open image: its file, its CfsIO, the disk, and (for branches opened
 * with their parents) the parent image it reads through.
 */
typedef struct CliImage {
    char *path;
    int fd;
    CfsIO io;
    CfsDisk *disk;
    uint64_t head_version;      /* the file's head, whatever version is open */
    struct CliImage *parent;
} CliImage;

typedef enum {
    CLI_OPEN_WRITE   = 1 << 0,  /* O_RDWR, the head, CFS_OPEN_RDWR */
    CLI_OPEN_PARENTS = 1 << 1,  /* open and attach the chain of parents */
} CliOpenFlags;

/*
 * Open spec ("PATH", "PATH@VERSION" or "PATH@TAG"; with CLI_OPEN_WRITE only
 * a plain PATH).  With CLI_OPEN_PARENTS, a branch's parent is found through
 * its parent hint (relative to the branch's directory), opened read-only at
 * the branch's parent version, checked against the branch's parent id and
 * version id, and attached with cfs_disk_set_parent(), recursively.
 */
CliImage *cli_image_open(const char *spec, unsigned flags, GError **errp);
/* Close a writable image (checkpoint), then free; frees even on failure */
bool cli_image_close(CliImage *image, GError **errp);
/* Free without writing anything */
void cli_image_free(CliImage *image);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CliImage, cli_image_free)

/* Resolve "@NAME", "@NUMBER", "NAME" or "NUMBER" on an open disk */
bool cli_resolve_version(CfsDisk *disk, const char *spec, uint64_t *version,
                         GError **errp);

#endif /* CLOUDFS_CLI_H */
