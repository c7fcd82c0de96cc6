/*
 * cloudfs format core: the superblock and the two checkpoint slots.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include "hash.h"
#include "internal.h"

static uint64_t superblock_checksum(const CfsSuperblock *sb)
{
    return XXH3_64bits(sb, G_STRUCT_OFFSET(CfsSuperblock, checksum));
}

void cfs_superblock_seal(CfsSuperblock *sb)
{
    sb->checksum = GUINT64_TO_LE(superblock_checksum(sb));
}

bool cfs_superblock_validate(const CfsSuperblock *sb, uint64_t file_size,
                             GError **errp)
{
    uint64_t incompat = GUINT64_FROM_LE(sb->incompat_features);
    uint32_t block_size = GUINT32_FROM_LE(sb->block_size);
    uint64_t log_start = GUINT64_FROM_LE(sb->log_start);

    if (GUINT32_FROM_LE(sb->format_version) > CFS_FORMAT_VERSION) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_UNSUPPORTED,
                    "image uses cloudfs format version %u; this program "
                    "supports up to version %u",
                    GUINT32_FROM_LE(sb->format_version), CFS_FORMAT_VERSION);
        return false;
    }
    /* incompatible features before the checksum: a newer format may
     * change what the checksum covers */
    if (incompat & ~CFS_INCOMPAT_KNOWN) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_UNSUPPORTED,
                    "image uses unknown incompatible features 0x%" G_GINT64_MODIFIER
                    "x; a newer cloudfs is needed",
                    (guint64)(incompat & ~CFS_INCOMPAT_KNOWN));
        return false;
    }
    if (GUINT32_FROM_LE(sb->format_version) == 0 ||
        GUINT32_FROM_LE(sb->superblock_size) != sizeof(*sb) ||
        GUINT64_FROM_LE(sb->checksum) != superblock_checksum(sb)) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                    "cloudfs superblock is corrupt (checksum mismatch)");
        return false;
    }
    if (block_size < CFS_MIN_BLOCK_SIZE || block_size > CFS_MAX_BLOCK_SIZE ||
        (block_size & (block_size - 1)) ||
        log_start != cfs_align_up(CFS_META_END, block_size) ||
        GUINT64_FROM_LE(sb->initial_size) == 0 ||
        GUINT64_FROM_LE(sb->initial_size) % block_size ||
        GUINT16_FROM_LE(sb->parent_hint_len) > CFS_PARENT_HINT_MAX) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                    "cloudfs superblock is corrupt (impossible geometry)");
        return false;
    }
    if (file_size < log_start) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                    "image is truncated: %" G_GUINT64_FORMAT " bytes, "
                    "shorter than its %" G_GUINT64_FORMAT "-byte header",
                    file_size, log_start);
        return false;
    }
    return true;
}

bool cfs_superblock_read(const CfsIO *io, CfsSuperblock *sb, GError **errp)
{
    int64_t size = io->size(io->opaque);
    uint8_t magic[CFS_MAGIC_LEN];

    if (size < 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "cannot get image size: %s",
                    g_strerror(-size));
        return false;
    }
    if (size < CFS_MAGIC_LEN) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_NOT_CFS,
                    "not a cloudfs image (file is only %" G_GINT64_FORMAT
                    " bytes)", size);
        return false;
    }
    if (!cfs_io_pread(io, magic, sizeof(magic), 0, errp)) {
        return false;
    }
    if (memcmp(magic, CFS_MAGIC, CFS_MAGIC_LEN) != 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_NOT_CFS,
                    "not a cloudfs image (bad magic)");
        return false;
    }
    if ((uint64_t)size < sizeof(*sb)) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_CORRUPT,
                    "image is truncated: the superblock needs %zu bytes, "
                    "the file has %" G_GINT64_FORMAT, sizeof(*sb), size);
        return false;
    }
    if (!cfs_io_pread(io, sb, sizeof(*sb), 0, errp)) {
        return false;
    }
    return cfs_superblock_validate(sb, size, errp);
}

bool cfs_superblock_write(const CfsIO *io, const CfsSuperblock *sb,
                          GError **errp)
{
    uint8_t *block = cfs_alloc_aligned(CFS_META_BLOCK);
    bool ok;

    memcpy(block, sb, sizeof(*sb));
    ok = cfs_io_pwrite(io, block, CFS_META_BLOCK, CFS_SUPERBLOCK_OFFSET,
                       errp);
    cfs_free_aligned(block);
    return ok;
}

static uint64_t slot_checksum(const CfsSlot *slot)
{
    return XXH3_64bits(slot, G_STRUCT_OFFSET(CfsSlot, checksum));
}

bool cfs_slot_parse(const void *buf, CfsSlot *slot)
{
    memcpy(slot, buf, sizeof(*slot));
    return memcmp(slot->magic, CFS_SLOT_MAGIC, 8) == 0 &&
           GUINT64_FROM_LE(slot->checksum) == slot_checksum(slot);
}

static uint64_t slot_offset(int which)
{
    return which ? CFS_SLOT1_OFFSET : CFS_SLOT0_OFFSET;
}

bool cfs_slot_write(const CfsIO *io, int which, const CfsSlot *slot,
                    GError **errp)
{
    uint8_t *block = cfs_alloc_aligned(CFS_META_BLOCK);
    CfsSlot *s = (CfsSlot *)block;
    bool ok;

    *s = *slot;
    memcpy(s->magic, CFS_SLOT_MAGIC, 8);
    s->checksum = GUINT64_TO_LE(slot_checksum(s));
    ok = cfs_io_pwrite(io, block, CFS_META_BLOCK, slot_offset(which), errp);
    cfs_free_aligned(block);
    return ok;
}

bool cfs_slot_clear(const CfsIO *io, int which, GError **errp)
{
    uint8_t *block = cfs_alloc_aligned(CFS_META_BLOCK);
    bool ok = cfs_io_pwrite(io, block, CFS_META_BLOCK, slot_offset(which),
                            errp);

    cfs_free_aligned(block);
    return ok;
}

/* Write superblock and empty slots onto an empty file, then flush */
static bool write_new_image(const CfsIO *io, const CfsSuperblock *sb,
                            GError **errp)
{
    int64_t size = io->size(io->opaque);
    uint64_t log_start = GUINT64_FROM_LE(sb->log_start);
    int ret;

    if (size < 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "cannot get file size: %s",
                    g_strerror(-size));
        return false;
    }
    if (size > 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_EXISTS,
                    "refusing to create an image over a non-empty file");
        return false;
    }
    ret = io->truncate(io->opaque, log_start);
    if (ret < 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "cannot size image: %s",
                    g_strerror(-ret));
        return false;
    }
    return cfs_slot_clear(io, 0, errp) && cfs_slot_clear(io, 1, errp) &&
           cfs_superblock_write(io, sb, errp) && cfs_io_flush(io, errp);
}

/*
 * Set (or clear, without has_parent) the parent reference of a
 * superblock; false if the parent's name does not fit.
 */
static bool set_parent_fields(CfsSuperblock *sb, const CfsCreateOptions *opts,
                              GError **errp)
{
    size_t hint_len = opts->has_parent && opts->parent_hint ?
                      strlen(opts->parent_hint) : 0;
    uint64_t incompat = GUINT64_FROM_LE(sb->incompat_features);

    if (hint_len > CFS_PARENT_HINT_MAX) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID,
                    "parent name is longer than %d bytes",
                    CFS_PARENT_HINT_MAX);
        return false;
    }
    memset(sb->parent_disk_id, 0, CFS_ID_LEN);
    sb->parent_version = 0;
    memset(sb->parent_version_id, 0, CFS_ID_LEN);
    memset(sb->parent_hint, 0, sizeof(sb->parent_hint));
    incompat &= ~CFS_INCOMPAT_PARENT;
    if (opts->has_parent) {
        incompat |= CFS_INCOMPAT_PARENT;
        memcpy(sb->parent_disk_id, opts->parent_disk_id, CFS_ID_LEN);
        sb->parent_version = GUINT64_TO_LE(opts->parent_version);
        memcpy(sb->parent_version_id, opts->parent_version_id, CFS_ID_LEN);
        memcpy(sb->parent_hint, opts->parent_hint, hint_len);
    }
    sb->parent_hint_len = GUINT16_TO_LE(hint_len);
    sb->incompat_features = GUINT64_TO_LE(incompat);
    return true;
}

bool cfs_disk_create(const CfsIO *io, const CfsCreateOptions *opts,
                     uint8_t disk_id_out[CFS_ID_LEN], GError **errp)
{
    uint32_t block_size = opts->block_size ?: CFS_DEFAULT_BLOCK_SIZE;
    CfsSuperblock sb = { 0 };

    if (block_size < CFS_MIN_BLOCK_SIZE || block_size > CFS_MAX_BLOCK_SIZE ||
        (block_size & (block_size - 1))) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID,
                    "block size %u is not a power of two between %d and %d",
                    block_size, CFS_MIN_BLOCK_SIZE, CFS_MAX_BLOCK_SIZE);
        return false;
    }
    if (opts->size == 0 || opts->size > CFS_MAX_VIRTUAL_SIZE) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_INVALID,
                    "virtual size %" G_GUINT64_FORMAT " is out of range",
                    opts->size);
        return false;
    }
    if (!set_parent_fields(&sb, opts, errp)) {
        return false;
    }
    memcpy(sb.magic, CFS_MAGIC, CFS_MAGIC_LEN);
    sb.format_version = GUINT32_TO_LE(CFS_FORMAT_VERSION);
    sb.superblock_size = GUINT32_TO_LE(sizeof(sb));
    cfs_random_bytes(sb.disk_id, CFS_ID_LEN);
    sb.block_size = GUINT32_TO_LE(block_size);
    sb.initial_size = GUINT64_TO_LE(cfs_align_up(opts->size, block_size));
    sb.log_start = GUINT64_TO_LE(cfs_align_up(CFS_META_END, block_size));
    sb.created_ns = GUINT64_TO_LE(cfs_now_ns());
    cfs_random_bytes(sb.secret, CFS_SECRET_LEN);
    cfs_superblock_seal(&sb);
    if (!write_new_image(io, &sb, errp)) {
        return false;
    }
    if (disk_id_out) {
        memcpy(disk_id_out, sb.disk_id, CFS_ID_LEN);
    }
    return true;
}

bool cfs_disk_set_parent_ref(CfsDisk *disk, const CfsCreateOptions *opts,
                             GError **errp)
{
    CfsSuperblock sb = disk->sb;

    if (!cfs_disk_check_writable(disk, errp) ||
        !set_parent_fields(&sb, opts, errp)) {
        return false;
    }
    cfs_superblock_seal(&sb);
    /* the one in-place metadata write of the format: see format.rst */
    if (!cfs_superblock_write(&disk->io, &sb, errp) ||
        !cfs_io_flush(&disk->io, errp)) {
        return false;
    }
    disk->sb = sb;
    return true;
}

bool cfs_disk_create_replica(const CfsIO *io, const CfsSuperblock *sb,
                             GError **errp)
{
    CfsSuperblock copy = *sb;

    /* the sender's superblock has been validated by the delta reader */
    return write_new_image(io, &copy, errp);
}
