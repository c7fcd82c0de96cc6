/*
 * cloudfs block driver: qemu-img measure.
 *
 * The image of a disk is its metadata area, then one log record per
 * stretch of written data: a header block (with 8 bytes of checksum per
 * data block) and the data, then a checkpoint of the extent index.  Zero
 * blocks are not stored.  Records carry at most 1 MiB here, which bounds
 * what qemu-img convert writes (it writes at most 2 MiB at a time, and
 * group commit only merges requests into fewer records).
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-types-block-core.h"
#include "qemu/option.h"
#include "qemu/units.h"
#include "block/block-io.h"
#include "cloudfs-int.h"

#define MEASURE_RECORD_DATA (1 * MiB)

/* Log bytes for a run of data of the given length */
static uint64_t run_cost(uint64_t bytes, uint32_t block_size)
{
    uint64_t records = DIV_ROUND_UP(bytes, MEASURE_RECORD_DATA);
    uint64_t blocks = DIV_ROUND_UP(bytes, block_size);
    uint64_t per_record = sizeof(CfsRecordHeader) + sizeof(CfsWriteExtent) +
                          8 * DIV_ROUND_UP(blocks, records);

    return records * ROUND_UP(per_record, block_size) + blocks * block_size;
}

static uint64_t checkpoint_cost(uint64_t extents, uint32_t block_size)
{
    uint64_t state = sizeof(CfsCkptRoot) + extents * sizeof(CfsCkptExtent);
    uint64_t blocks = DIV_ROUND_UP(state, block_size);

    return ROUND_UP(sizeof(CfsRecordHeader) + sizeof(CfsCkptBody) + 8 * blocks,
                    block_size) + blocks * block_size;
}

BlockMeasureInfo *cloudfs_measure(QemuOpts *opts, BlockDriverState *in_bs,
                                  Error **errp)
{
    uint32_t block_size = qemu_opt_get_size_del(opts, "block-size",
                                                CFS_DEFAULT_BLOCK_SIZE);
    uint64_t size = ROUND_UP(qemu_opt_get_size_del(opts, BLOCK_OPT_SIZE, 0),
                             block_size);
    uint64_t meta = ROUND_UP(CFS_META_END, block_size);
    uint64_t required = 0, runs = 0;
    BlockMeasureInfo *info;

    if (block_size < CFS_MIN_BLOCK_SIZE || block_size > CFS_MAX_BLOCK_SIZE ||
        !is_power_of_2(block_size)) {
        error_setg(errp, "block-size must be a power of two from %d to %d",
                   CFS_MIN_BLOCK_SIZE, CFS_MAX_BLOCK_SIZE);
        return NULL;
    }
    if (in_bs) {
        int64_t length = bdrv_getlength(in_bs);
        uint64_t run = 0;

        if (length < 0) {
            error_setg_errno(errp, -length, "cannot get the source's size");
            return NULL;
        }
        size = ROUND_UP(length, block_size);
        for (int64_t offset = 0; offset < length;) {
            int64_t pnum;
            int ret = bdrv_block_status_above(in_bs, NULL, offset,
                                              length - offset, &pnum, NULL,
                                              NULL);

            if (ret < 0) {
                error_setg_errno(errp, -ret, "cannot read the source's "
                                 "allocation at offset %" PRId64, offset);
                return NULL;
            }
            if ((ret & BDRV_BLOCK_DATA) && !(ret & BDRV_BLOCK_ZERO)) {
                /* a run may start and end inside blocks: count both ends */
                run += pnum + block_size;
            } else if (run) {
                required += run_cost(run, block_size);
                runs++;
                run = 0;
            }
            offset += pnum;
        }
        if (run) {
            required += run_cost(run, block_size);
            runs++;
        }
    }
    info = g_new0(BlockMeasureInfo, 1);
    info->required = meta + required + checkpoint_cost(runs, block_size);
    info->fully_allocated = meta + run_cost(size, block_size) +
                            checkpoint_cost(DIV_ROUND_UP(size, MEASURE_RECORD_DATA),
                                            block_size);
    return info;
}
