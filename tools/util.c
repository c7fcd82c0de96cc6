/*
 * cloudfs admin CLI: error reporting, version specs and formatting.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char *current_command;

void cli_set_command(const char *name)
{
    current_command = name;
}

static void vreport(const char *fmt, va_list ap)
{
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);

    if (current_command) {
        fprintf(stderr, "cloudfs: %s: %s\n", current_command, msg);
    } else {
        fprintf(stderr, "cloudfs: %s\n", msg);
    }
}

void cli_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
}

int cli_fail(GError *err)
{
    cli_error("%s", err ? err->message : "unknown error");
    g_clear_error(&err);
    return CLI_EXIT_FAILED;
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreport(fmt, ap);
    va_end(ap);
    if (current_command) {
        fprintf(stderr, "Try 'cloudfs help %s' for more information.\n",
                current_command);
    } else {
        fprintf(stderr, "Try 'cloudfs --help' for more information.\n");
    }
    return CLI_EXIT_USAGE;
}

void cli_split_spec(const char *spec, char **path, char **version_spec)
{
    const char *at = strrchr(spec, '@');
    struct stat st;

    /*
     * "a@b/c.cfs" is a path with an '@' in a directory name, and a file
     * literally named "x@1" is taken as that file, not version 1 of "x".
     */
    if (!at || at[1] == '\0' || strchr(at, '/') || stat(spec, &st) == 0) {
        *path = g_strdup(spec);
        *version_spec = NULL;
        return;
    }
    *path = g_strndup(spec, at - spec);
    *version_spec = g_strdup(at);
}

bool cli_parse_size_arg(const char *what, const char *text, uint64_t *bytes)
{
    if (!cfs_parse_size(text, bytes)) {
        cli_usage_error("%s '%s' is not a size (examples: 4096, 512M, 10G)",
                        what, text);
        return false;
    }
    return true;
}

char *cli_id_hex(const uint8_t id[CFS_ID_LEN])
{
    char hex[41];

    cfs_id_to_hex(id, hex);
    return g_strdup(hex);
}

char *cli_format_time(uint64_t unix_ns)
{
    g_autoptr(GDateTime) time = NULL;

    /* 0 is "not recorded" (the core loses tag times at a checkpoint) */
    if (unix_ns != 0) {
        time = g_date_time_new_from_unix_utc((gint64)(unix_ns / 1000000000u));
    }
    if (!time) {
        return g_strdup("-");
    }
    return g_date_time_format(time, "%Y-%m-%dT%H:%M:%SZ");
}

char *cli_format_size(uint64_t bytes)
{
    /* Not g_format_size(): its output depends on the locale */
    static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB",
                                         "EiB" };
    double value = bytes;
    int unit = -1;

    if (bytes < 1024) {
        return g_strdup_printf("%" G_GUINT64_FORMAT " bytes", bytes);
    }
    while (value >= 1024 && unit < (int)G_N_ELEMENTS(units) - 1) {
        value /= 1024;
        unit++;
    }
    return g_strdup_printf("%.1f %s (%" G_GUINT64_FORMAT " bytes)", value,
                           units[unit], bytes);
}

const char *cli_record_type_name(uint16_t type)
{
    switch (type) {
    case CFS_REC_WRITE:
        return "write";
    case CFS_REC_TAG:
        return "tag";
    case CFS_REC_UNTAG:
        return "untag";
    case CFS_REC_REVERT:
        return "revert";
    case CFS_REC_RESIZE:
        return "resize";
    case CFS_REC_CHECKPOINT:
        return "checkpoint";
    default:
        return "unknown";
    }
}

bool cli_write_all(int fd, const void *buf, size_t len, GError **errp)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "write failed: %s",
                        g_strerror(errno));
            return false;
        }
        p += n;
        len -= n;
    }
    return true;
}

/*
 * cloudfs.h documents cfs_disk_resolve_version() as taking "@NAME" or
 * "@NUMBER", and the core resolves a bare "NAME" or "NUMBER": accept
 * either, so this keeps working whichever of the two is settled on.
 */
bool cli_resolve_version(CfsDisk *disk, const char *spec, uint64_t *version,
                         GError **errp)
{
    const char *bare = spec[0] == '@' ? spec + 1 : spec;
    g_autofree char *at_spec = g_strconcat("@", bare, NULL);
    GError *err = NULL;

    if (cfs_disk_resolve_version(disk, bare, version, &err) ||
        cfs_disk_resolve_version(disk, at_spec, version, NULL)) {
        g_clear_error(&err);
        return true;
    }
    g_propagate_error(errp, err);
    return false;
}
