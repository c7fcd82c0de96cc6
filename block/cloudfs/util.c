/*
 * cloudfs format core: small helpers (errors, ids, sizes, I/O wrappers).
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include "internal.h"

G_DEFINE_QUARK(cloudfs-error-quark, cfs_error)

bool cfs_is_zero(const void *buf, size_t len)
{
    const uint8_t *p = buf;

    /* Compare the buffer with itself shifted by one: glibc's memcmp is
     * vectorised, so this runs at memory speed without a loop here. */
    return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

uint64_t cfs_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void cfs_random_bytes(void *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = getrandom((uint8_t *)buf + done, len - done, 0);

        if (n < 0 && errno != EINTR) {
            /* ids and secrets must never be predictable: no fallback */
            g_error("cloudfs: getrandom failed: %s", g_strerror(errno));
        }
        done += n > 0 ? n : 0;
    }
}

void *cfs_alloc_aligned(size_t len)
{
    void *p = NULL;

    if (posix_memalign(&p, 4096, MAX(len, 1)) != 0) {
        g_error("cloudfs: out of memory allocating %zu bytes", len);
    }
    memset(p, 0, len);
    return p;
}

void cfs_free_aligned(void *p)
{
    free(p);
}

bool cfs_io_pread(const CfsIO *io, void *buf, size_t len, uint64_t offset,
                  GError **errp)
{
    int ret = io->pread(io->opaque, buf, len, offset);

    if (ret < 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO,
                    "read of %zu bytes at offset %" G_GUINT64_FORMAT
                    " failed: %s", len, offset, g_strerror(-ret));
        return false;
    }
    return true;
}

bool cfs_io_pwritev_all(const CfsIO *io, const struct iovec *iov,
                        int iovcnt, uint64_t offset, GError **errp)
{
    int ret = io->pwritev(io->opaque, iov, iovcnt, offset);

    if (ret < 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO,
                    "write at offset %" G_GUINT64_FORMAT " failed: %s",
                    offset, g_strerror(-ret));
        return false;
    }
    return true;
}

bool cfs_io_pwrite(const CfsIO *io, const void *buf, size_t len,
                   uint64_t offset, GError **errp)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

    return cfs_io_pwritev_all(io, &iov, 1, offset, errp);
}

bool cfs_io_flush(const CfsIO *io, GError **errp)
{
    int ret = io->flush(io->opaque);

    if (ret < 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "flush failed: %s",
                    g_strerror(-ret));
        return false;
    }
    return true;
}

void cfs_id_to_hex(const uint8_t id[CFS_ID_LEN], char out[41])
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 0; i < CFS_ID_LEN; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[40] = '\0';
}

bool cfs_id_from_hex(const char *hex, uint8_t id[CFS_ID_LEN])
{
    if (strlen(hex) != 2 * CFS_ID_LEN) {
        return false;
    }
    for (int i = 0; i < CFS_ID_LEN; i++) {
        int hi = g_ascii_xdigit_value(hex[2 * i]);
        int lo = g_ascii_xdigit_value(hex[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return false;
        }
        id[i] = hi << 4 | lo;
    }
    return true;
}

bool cfs_parse_size(const char *text, uint64_t *bytes)
{
    static const char units[] = "KMGTPE";
    g_autofree char *number = NULL;
    const char *unit, *rest;
    size_t digits;
    double value;
    int shift = 0;

    /* digits with at most one '.', then an optional unit: no signs, hex
     * or exponents, which strtod alone would take */
    digits = text ? strspn(text, "0123456789.") : 0;
    if (digits == 0 || !g_ascii_isdigit(text[0]) ||
        memchr(text, '.', digits) != memrchr(text, '.', digits)) {
        return false;
    }
    number = g_strndup(text, digits);
    value = g_ascii_strtod(number, NULL);
    rest = text + digits;
    if (*rest) {
        unit = strchr(units, g_ascii_toupper(*rest));
        if (!unit) {
            return false;
        }
        shift = 10 * (unit - units + 1);
        rest++;
        /* accept "10G", "10GB", "10GiB" */
        if (*rest == 'i' || *rest == 'I') {
            rest++;
        }
        if (*rest == 'b' || *rest == 'B') {
            rest++;
        }
        if (*rest) {
            return false;
        }
    } else if (strchr(number, '.')) {
        return false;   /* a fraction of a byte is not a size */
    }
    value *= (double)(1ull << shift);
    if (value >= 18446744073709551616.0) {
        return false;
    }
    *bytes = (uint64_t)value;
    return true;
}

bool cfs_tag_name_valid(const char *name, GError **errp)
{
    size_t len = strlen(name);
    bool all_digits = true;

    if (len == 0 || len > CFS_TAG_NAME_MAX) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID,
                    "snapshot name must be 1 to %d bytes long",
                    CFS_TAG_NAME_MAX);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = name[i];

        if (c < 0x20 || c == 0x7f || c == '@' || c == '/') {
            g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID,
                        "snapshot name '%s' contains '@', '/' or a control "
                        "character", name);
            return false;
        }
        all_digits &= g_ascii_isdigit(c);
    }
    if (all_digits) {
        /* names and version numbers share the @ syntax */
        g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID,
                    "snapshot name '%s' is a number; numbers name versions",
                    name);
        return false;
    }
    return true;
}
