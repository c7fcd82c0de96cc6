/*
 * The extent index in the file: checkpoints write only the nodes that
 * changed, opening reads nodes as they are needed and keeps a bounded
 * cache of them, and a damaged node never yields wrong data: reads of
 * what it maps fail, opening rebuilds from the log when it must, and
 * check finds it and repairs it from the log.
 */
#include <string.h>
#include <unistd.h>
#include "fixture.h"
#include "index-node.h"

#define BS 512
#define SIZE (32u << 20)
#define NBLOCKS (SIZE / BS)

typedef struct Fixture {
    TestImage t;
    uint8_t *model;             /* content of the head */
    uint8_t *model_v1;          /* content at the first checkpoint */
    uint64_t v1;
} Fixture;

static void write_random_blocks(CfsDisk *disk, uint8_t *model, int n,
                                uint32_t seed)
{
    uint8_t buf[BS];
    GError *err = NULL;

    for (int i = 0; i < n; i++) {
        uint64_t b = g_test_rand_int_range(0, NBLOCKS);

        test_fill(buf, BS, seed + i);
        g_assert_true(cfs_disk_pwrite(disk, buf, BS, b * BS, &err));
        g_assert_no_error(err);
        memcpy(model + b * BS, buf, BS);
    }
}

/* The body of the checkpoint record at offset */
static CfsCkptBody checkpoint_body(CfsDisk *disk, uint64_t offset,
                                   uint64_t *nodes_at)
{
    CfsRecord r;
    CfsCkptBody body;

    g_assert_true(cfs_record_read(&disk->io, &disk->sb, offset,
                                  disk->io.size(disk->io.opaque), &r, NULL));
    memcpy(&body, cfs_rec_body(&r), sizeof(body));
    *nodes_at = offset + r.padded_len +
                cfs_align_up(GUINT64_FROM_LE(body.state_bytes),
                             CFS_NODE_SIZE);
    cfs_record_clear(&r);
    return body;
}

/* Fragment a disk into ~10^4 extents, checkpoint, change a few blocks,
 * checkpoint again, and leave one change in the log after that */
static void fixture_build(Fixture *f)
{
    CfsDisk *disk;
    GError *err = NULL;
    uint64_t nodes_at;
    CfsCkptBody body;
    uint32_t full;

    test_image_init(&f->t);
    f->model = g_malloc0(SIZE);
    disk = test_create_open(&f->t, SIZE, BS);
    write_random_blocks(disk, f->model, 12000, 1);
    g_assert_true(cfs_disk_checkpoint(disk, &err));
    g_assert_no_error(err);
    f->v1 = cfs_disk_version(disk);
    f->model_v1 = g_memdup2(f->model, SIZE);
    g_assert_cmpuint(cfs_disk_extent_count(disk), >, 5000);
    body = checkpoint_body(disk, disk->ckpt_offset, &nodes_at);
    full = GUINT32_FROM_LE(body.node_count);
    /* the first checkpoint writes the whole tree: one leaf per at most
     * CFS_LEAF_MAX extents, plus inner nodes */
    g_assert_cmpuint(full, >, cfs_disk_extent_count(disk) / CFS_LEAF_MAX);
    g_assert_cmpuint(cfs_store_dirty_bytes(disk->nodes), ==, 0);

    /* ten more writes dirty at most ten leaves and their paths */
    write_random_blocks(disk, f->model, 10, 50000);
    g_assert_cmpuint(cfs_store_dirty_bytes(disk->nodes), >, 0);
    g_assert_true(cfs_disk_checkpoint(disk, &err));
    body = checkpoint_body(disk, disk->ckpt_offset, &nodes_at);
    g_assert_cmpuint(GUINT32_FROM_LE(body.node_count), >=, 2);
    g_assert_cmpuint(GUINT32_FROM_LE(body.node_count), <=, 10 * 2 + 1);
    g_assert_cmpuint(GUINT32_FROM_LE(body.node_count), <, full / 4);

    write_random_blocks(disk, f->model, 1, 60000);
    cfs_disk_free(disk);    /* no checkpoint at close: replayed */
}

static void fixture_free(Fixture *f)
{
    test_image_cleanup(&f->t);
    g_free(f->model);
    g_free(f->model_v1);
}

static void test_lazy_open_bounded_cache(void)
{
    Fixture f;
    CfsDisk *disk;
    size_t leaf = cfs_node_bytes(0), inner = cfs_node_bytes(1);

    fixture_build(&f);
    disk = test_open(&f.t, 0, CFS_VERSION_HEAD);
    /* opening read the root and the paths the replayed write touched */
    g_assert_cmpuint(disk->nodes->loads, <=, 4);
    g_assert_cmpuint(disk->ckpt_offset, !=, 0);
    /* a cache of eight nodes still reads everything right */
    disk->nodes->cache_limit = 8 * inner;
    test_assert_content(disk, f.model, SIZE);
    g_assert_cmpuint(cfs_store_cached_bytes(disk->nodes), <=,
                     8 * inner + leaf);
    g_assert_cmpuint(disk->nodes->loads, >, 20);
    cfs_disk_free(disk);

    /* an older version comes from the older checkpoint's tree */
    disk = test_open(&f.t, 0, f.v1);
    test_assert_content(disk, f.model_v1, SIZE);
    cfs_disk_free(disk);
    fixture_free(&f);
}

/* Offset of the first leaf of the newest checkpoint and the guest offset
 * of its first extent */
static uint64_t newest_first_leaf(Fixture *f, uint64_t *guest)
{
    CfsDisk *disk = test_open(&f->t, 0, CFS_VERSION_HEAD);
    uint64_t nodes_at;
    CfsCkptExtent first;
    CfsNodeHeader h;

    checkpoint_body(disk, disk->ckpt_offset, &nodes_at);
    cfs_disk_free(disk);
    g_assert_cmpint(pread(f->t.fd, &h, sizeof(h), nodes_at), ==, sizeof(h));
    g_assert_cmpuint(GUINT16_FROM_LE(h.level), ==, 0);  /* children first */
    g_assert_cmpint(pread(f->t.fd, &first, sizeof(first),
                          nodes_at + sizeof(h)), ==, sizeof(first));
    *guest = GUINT64_FROM_LE(first.guest_offset);
    return nodes_at;
}

static void flip_byte(TestImage *t, uint64_t at)
{
    uint8_t b;

    g_assert_cmpint(pread(t->fd, &b, 1, at), ==, 1);
    b ^= 0x40;
    g_assert_cmpint(pwrite(t->fd, &b, 1, at), ==, 1);
}

/* check --repair rebuilds the index; a second check finds nothing */
static void repair_and_recheck(TestImage *t)
{
    GError *err = NULL;
    CfsCheckResult res;

    g_assert_true(cfs_check(&t->io, true, &res, &err));
    g_assert_no_error(err);
    for (guint i = 0; i < res.messages->len; i++) {
        g_test_message("%s", (char *)res.messages->pdata[i]);
    }
    g_assert_true(res.repaired);
    g_assert_cmpuint(res.corruptions, ==, 0);
    cfs_check_result_clear(&res);
    g_assert_true(cfs_check(&t->io, false, &res, &err));
    g_assert_cmpuint(res.corruptions, ==, 0);
    g_assert_cmpuint(res.torn_bytes, ==, 0);
    cfs_check_result_clear(&res);
}

static void test_damaged_leaf(void)
{
    Fixture f;
    CfsDisk *disk;
    GError *err = NULL;
    CfsCheckResult res;
    uint64_t guest, leaf;
    uint8_t buf[BS];

    fixture_build(&f);
    leaf = newest_first_leaf(&f, &guest);
    flip_byte(&f.t, leaf + 100);

    /* reads of what the leaf maps fail; nothing else does */
    disk = test_open(&f.t, 0, CFS_VERSION_HEAD);
    if (disk->ignore_checkpoints) {
        /* the replayed write needed that leaf: rebuilt from the log */
        test_assert_content(disk, f.model, SIZE);
    } else {
        g_assert_false(cfs_disk_pread(disk, buf, BS, guest, &err));
        g_assert_error(err, CFS_ERROR, CFS_ERROR_INDEX);
        g_clear_error(&err);
        g_assert_true(cfs_disk_pread(disk, buf, BS, SIZE - BS, &err));
        g_assert_cmpmem(buf, BS, f.model + SIZE - BS, BS);
    }
    cfs_disk_free(disk);

    /* check finds it; repair rebuilds the index from the log */
    cfs_check(&f.t.io, false, &res, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(res.index_corruptions, >, 0);
    g_assert_cmpuint(res.corruptions, >=, res.index_corruptions);
    cfs_check_result_clear(&res);
    repair_and_recheck(&f.t);

    disk = test_open(&f.t, 0, CFS_VERSION_HEAD);
    g_assert_false(disk->ignore_checkpoints);
    test_assert_content(disk, f.model, SIZE);
    cfs_disk_free(disk);
    /* history older than the rebuilt checkpoint comes from the log */
    disk = test_open(&f.t, 0, f.v1);
    test_assert_content(disk, f.model_v1, SIZE);
    cfs_disk_free(disk);
    fixture_free(&f);
}

/* A write into the range of a damaged leaf: refused, and the disk stays
 * refusing (the record is in the file, the index could not take it) */
static void test_write_through_damaged_leaf(void)
{
    Fixture f;
    CfsDisk *disk;
    GError *err = NULL;
    uint64_t guest, leaf;
    uint8_t buf[BS];

    fixture_build(&f);
    /* checkpoint the tail so that opening does not need the leaf */
    disk = test_open(&f.t, CFS_OPEN_RDWR, CFS_VERSION_HEAD);
    g_assert_true(cfs_disk_close(disk, &err));
    leaf = newest_first_leaf(&f, &guest);
    flip_byte(&f.t, leaf + 200);

    disk = test_open(&f.t, CFS_OPEN_RDWR, CFS_VERSION_HEAD);
    g_assert_false(disk->ignore_checkpoints);
    test_fill(buf, BS, 777);
    g_assert_false(cfs_disk_pwrite(disk, buf, BS, guest, &err));
    g_clear_error(&err);
    g_assert_false(cfs_disk_pwrite(disk, buf, BS, SIZE - BS, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_IO);
    g_clear_error(&err);
    cfs_disk_free(disk);

    /* the failed write's data reached the file, but its record was never
     * sealed: after a repair the disk holds what it held before */
    repair_and_recheck(&f.t);
    disk = test_open(&f.t, 0, CFS_VERSION_HEAD);
    test_assert_content(disk, f.model, SIZE);
    cfs_disk_free(disk);
    fixture_free(&f);
}

/*
 * A batch that cannot be applied (its leaf is damaged) must not take the
 * acknowledged batches of the same open record with it: closing seals
 * them, and after a repair they are there.
 */
static void test_acknowledged_before_index_failure(void)
{
    Fixture f;
    CfsDisk *disk;
    GError *err = NULL;
    uint64_t guest;
    uint8_t good[BS], lost[BS];

    fixture_build(&f);
    disk = test_open(&f.t, CFS_OPEN_RDWR, CFS_VERSION_HEAD);
    g_assert_true(cfs_disk_close(disk, &err));
    flip_byte(&f.t, newest_first_leaf(&f, &guest) + 200);

    disk = test_open(&f.t, CFS_OPEN_RDWR, CFS_VERSION_HEAD);
    test_fill(good, BS, 4242);
    test_fill(lost, BS, 4343);
    g_assert_cmpint(test_append(disk, good, BS, SIZE - BS), ==,
                    CFS_APPEND_APPLIED);
    g_assert_cmpint(test_append(disk, lost, BS, guest), ==, CFS_APPEND_FAILED);
    g_assert_true(disk->index_broken);
    g_assert_true(cfs_disk_close(disk, &err));
    g_assert_no_error(err);

    repair_and_recheck(&f.t);
    memcpy(f.model + SIZE - BS, good, BS);
    disk = test_open(&f.t, 0, CFS_VERSION_HEAD);
    test_assert_content(disk, f.model, SIZE);
    cfs_disk_free(disk);
    fixture_free(&f);
}

/* The checkpoint with the damaged leaf is the last record of the log (as
 * after every clean close): still found, still repaired */
static void test_damaged_leaf_at_log_end(void)
{
    Fixture f;
    CfsDisk *disk;
    GError *err = NULL;
    uint64_t guest, leaf;

    fixture_build(&f);
    disk = test_open(&f.t, CFS_OPEN_RDWR, CFS_VERSION_HEAD);
    g_assert_true(cfs_disk_close(disk, &err));
    leaf = newest_first_leaf(&f, &guest);
    flip_byte(&f.t, leaf + 300);
    repair_and_recheck(&f.t);
    disk = test_open(&f.t, 0, CFS_VERSION_HEAD);
    test_assert_content(disk, f.model, SIZE);
    cfs_disk_free(disk);
    fixture_free(&f);
}

/* Changed nodes are bounded: past the limit a checkpoint is due, and a
 * flush writes it even though the log grew far less than the interval */
static void test_dirty_nodes_bounded(void)
{
    TestImage t;
    CfsDisk *disk;
    GError *err = NULL;
    g_autofree uint8_t *model = g_malloc0(SIZE);
    uint64_t before;

    test_image_init(&t);
    disk = test_create_open(&t, SIZE, BS);
    disk->dirty_limit = 16 * cfs_node_bytes(0);
    write_random_blocks(disk, model, 3000, 7);
    g_assert_true(cfs_disk_checkpoint_due(disk));
    before = disk->ckpt_offset;
    g_assert_true(cfs_disk_flush(disk, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(disk->ckpt_offset, >, before);
    g_assert_cmpuint(cfs_store_dirty_bytes(disk->nodes), ==, 0);
    g_assert_false(cfs_disk_checkpoint_due(disk));
    cfs_disk_free(disk);
    disk = test_open(&t, 0, CFS_VERSION_HEAD);
    test_assert_content(disk, model, SIZE);
    cfs_disk_free(disk);
    test_image_cleanup(&t);
}

/* A damaged root: the checkpoint does not load, the older one does */
static void test_damaged_root(void)
{
    Fixture f;
    CfsDisk *disk;
    uint64_t nodes_at, newest;
    CfsCkptBody body;

    fixture_build(&f);
    disk = test_open(&f.t, 0, CFS_VERSION_HEAD);
    newest = disk->ckpt_offset;
    body = checkpoint_body(disk, newest, &nodes_at);
    cfs_disk_free(disk);
    /* children first: the root is the last node written */
    flip_byte(&f.t, nodes_at + (GUINT32_FROM_LE(body.node_count) - 1) *
                    (uint64_t)CFS_NODE_SIZE + 8);
    disk = test_open(&f.t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(disk->ckpt_offset, !=, newest);
    g_assert_cmpuint(disk->ckpt_offset, !=, 0);
    test_assert_content(disk, f.model, SIZE);
    cfs_disk_free(disk);
    fixture_free(&f);
}

/*
 * A batch of a frozen record that the index cannot take (it maps into a
 * damaged leaf): the record is open again, and close seals the batches
 * applied before that one as the head's next version; they survive the
 * reopen after a repair.
 */
static void test_frozen_batch_meets_damaged_leaf(void)
{
    Fixture f;
    CfsDisk *disk;
    GError *err = NULL;
    uint8_t buf[BS];
    uint64_t guest, version, header_at;
    const void *header;
    CfsAppend *lost, *carrier;

    fixture_build(&f);
    /* checkpoint the tail so that opening does not need the leaf */
    disk = test_open(&f.t, CFS_OPEN_RDWR, CFS_VERSION_HEAD);
    g_assert_true(cfs_disk_close(disk, &err));
    flip_byte(&f.t, newest_first_leaf(&f, &guest) + 200);
    disk = test_open(&f.t, CFS_OPEN_RDWR, CFS_VERSION_HEAD);
    /* single blocks far from the damaged leaf, until the open record
     * has one place left in its header room */
    for (int i = 0; !disk->open.offset ||
                    disk->open.extents->len + 1 <
                    (disk->open.room - sizeof(CfsRecordHeader)) /
                    (sizeof(CfsWriteExtent) + 8); i++) {
        uint64_t at = SIZE - (uint64_t)(1 + 2 * (i % 1024)) * BS;

        g_assert_cmpint(i, <, 4096);
        test_fill(f.model + at, BS, 4242 + i);
        g_assert_cmpint(test_append(disk, f.model + at, BS, at), ==,
                        CFS_APPEND_APPLIED);
    }
    version = cfs_disk_version(disk);
    test_fill(buf, BS, 9999);
    lost = test_prepare(disk, buf, BS, guest, &err);
    g_assert_no_error(err);
    carrier = test_prepare(disk, buf, BS, SIZE - 400 * BS, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(cfs_append_header(carrier, disk, &header_at, &header),
                     >, 0);
    g_assert_cmpint(cfs_append_complete(disk, carrier,
                                        test_append_write(disk, carrier)),
                    ==, CFS_APPEND_PENDING);
    g_assert_cmpint(cfs_append_complete(disk, lost,
                                        test_append_write(disk, lost)),
                    ==, CFS_APPEND_FAILED);
    g_assert_cmpint(cfs_append_state(carrier), ==, CFS_APPEND_FAILED);
    cfs_append_free(lost);
    cfs_append_free(carrier);
    g_assert_true(disk->index_broken);
    g_assert_true(cfs_disk_close(disk, &err));
    g_assert_no_error(err);

    repair_and_recheck(&f.t);
    disk = test_open(&f.t, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(cfs_disk_version(disk), ==, version + 1);
    test_assert_content(disk, f.model, SIZE);
    cfs_disk_free(disk);
    fixture_free(&f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/index-persist/lazy-open-bounded-cache",
                    test_lazy_open_bounded_cache);
    g_test_add_func("/index-persist/damaged-leaf", test_damaged_leaf);
    g_test_add_func("/index-persist/write-through-damaged-leaf",
                    test_write_through_damaged_leaf);
    g_test_add_func("/index-persist/frozen-batch-meets-damaged-leaf",
                    test_frozen_batch_meets_damaged_leaf);
    g_test_add_func("/index-persist/damaged-leaf-at-log-end",
                    test_damaged_leaf_at_log_end);
    g_test_add_func("/index-persist/damaged-root", test_damaged_root);
    g_test_add_func("/index-persist/acknowledged-before-index-failure",
                    test_acknowledged_before_index_failure);
    g_test_add_func("/index-persist/dirty-nodes-bounded",
                    test_dirty_nodes_bounded);
    return g_test_run();
}
