/*
 * Deltas: a full delta makes a replica with identical version ids and
 * content; incremental deltas catch it up; applying twice changes nothing;
 * a delta for another disk or from a missing version is refused; diverged
 * histories are detected and reported without touching the receiver; a
 * delta cut at any offset applies a prefix of whole records or nothing.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include "fixture.h"

#define SIZE (128 * 1024)

static bool sink_bytes(const void *buf, size_t len, void *opaque,
                       GError **errp)
{
    g_byte_array_append(opaque, buf, len);
    return true;
}

typedef struct Source {
    const uint8_t *data;
    size_t len, pos;
} Source;

static gssize source_bytes(void *buf, size_t len, void *opaque,
                           GError **errp)
{
    Source *s = opaque;
    size_t n = MIN(len, s->len - s->pos);

    memcpy(buf, s->data + s->pos, n);
    s->pos += n;
    return n;
}

static GByteArray *export(CfsDisk *disk, uint64_t from, uint64_t to)
{
    GByteArray *out = g_byte_array_new();
    GError *err = NULL;

    g_assert_true(cfs_delta_export(disk, from, to, sink_bytes, out, &err));
    g_assert_no_error(err);
    return out;
}

/* Apply; create the replica file first when the delta starts at base */
static bool apply(TestImage *t, const GByteArray *delta, bool create,
                  CfsDeltaResult *res, GError **errp)
{
    Source src = { delta->data, delta->len, 0 };
    CfsDeltaReader *rd = cfs_delta_reader_new(source_bytes, &src, errp);
    CfsDisk *disk;
    bool ok;

    if (!rd) {
        return false;
    }
    if (create) {
        g_assert_nonnull(cfs_delta_reader_superblock(rd));
        g_assert_true(cfs_disk_create_replica(&t->io,
                                              cfs_delta_reader_superblock(rd),
                                              errp));
    }
    disk = cfs_disk_open(&t->io, CFS_OPEN_RDWR, CFS_VERSION_HEAD, errp);
    g_assert_nonnull(disk);
    ok = cfs_delta_apply(disk, rd, res, errp);
    cfs_delta_reader_free(rd);
    g_assert_true(cfs_disk_close(disk, NULL));
    return ok;
}

static void write_some(CfsDisk *disk, int seed)
{
    uint8_t buf[3 * 4096];
    GError *err = NULL;

    test_fill(buf, sizeof(buf), seed);
    g_assert_true(cfs_disk_pwrite(disk, buf, sizeof(buf),
                                  (seed % 20) * 4096, &err));
    g_assert_no_error(err);
}

static void assert_same(TestImage *a, TestImage *b)
{
    CfsDisk *x = test_open(a, 0, CFS_VERSION_HEAD);
    CfsDisk *y = test_open(b, 0, CFS_VERSION_HEAD);
    g_autofree uint8_t *cx = test_read_all(x);

    g_assert_cmpuint(cfs_disk_version(x), ==, cfs_disk_version(y));
    g_assert_true(memcmp(cfs_disk_version_id(x), cfs_disk_version_id(y),
                         CFS_ID_LEN) == 0);
    test_assert_content(y, cx, cfs_disk_size(x));
    g_assert_cmpuint(g_hash_table_size(x->head.tags), ==,
                     g_hash_table_size(y->head.tags));
    cfs_disk_free(x);
    cfs_disk_free(y);
}

static void test_round_trip(void)
{
    TestImage src, dst;
    CfsDisk *disk;
    GError *err = NULL;
    CfsDeltaResult res;
    g_autoptr(GByteArray) full = NULL;
    g_autoptr(GByteArray) inc = NULL;

    test_image_init(&src);
    test_image_init(&dst);
    disk = test_create_open(&src, SIZE, 4096);
    for (int i = 0; i < 5; i++) {
        write_some(disk, i);
    }
    g_assert_true(cfs_disk_tag(disk, "t1", &err));
    g_assert_true(cfs_disk_revert(disk, 2, &err));
    g_assert_true(cfs_disk_checkpoint(disk, &err));  /* never exported */
    full = export(disk, 0, CFS_VERSION_HEAD);
    g_assert_true(apply(&dst, full, true, &res, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(res.records_applied, ==, 7);
    g_assert_cmpuint(res.version, ==, 7);
    assert_same(&src, &dst);

    /* incremental after more writes, including a resize */
    for (int i = 5; i < 9; i++) {
        write_some(disk, i);
    }
    g_assert_true(cfs_disk_resize(disk, 2 * SIZE, &err));
    inc = export(disk, 7, CFS_VERSION_HEAD);
    g_assert_true(apply(&dst, inc, false, &res, &err));
    g_assert_cmpuint(res.records_applied, ==, 5);
    assert_same(&src, &dst);

    /* again: nothing new, all skipped */
    g_assert_true(apply(&dst, inc, false, &res, &err));
    g_assert_cmpuint(res.records_applied, ==, 0);
    g_assert_cmpuint(res.records_skipped, ==, 5);
    /* an overlapping full delta: also only skips */
    g_byte_array_unref(full);
    full = export(disk, 0, CFS_VERSION_HEAD);
    g_assert_true(apply(&dst, full, false, &res, &err));
    g_assert_cmpuint(res.records_skipped, ==, 12);
    g_assert_no_error(err);
    assert_same(&src, &dst);
    cfs_disk_free(disk);
    test_image_cleanup(&src);
    test_image_cleanup(&dst);
}

static void test_refusals(void)
{
    TestImage a, b, other;
    CfsDisk *da, *db, *dother;
    GError *err = NULL;
    CfsDeltaResult res;
    g_autoptr(GByteArray) d = NULL;
    g_autoptr(GByteArray) later = NULL;
    g_autoptr(GByteArray) foreign = NULL;
    g_autoptr(GByteArray) forked = NULL;
    uint64_t log_before;

    test_image_init(&a);
    test_image_init(&b);
    test_image_init(&other);
    da = test_create_open(&a, SIZE, 4096);
    write_some(da, 1);
    write_some(da, 2);
    d = export(da, 0, 2);
    g_assert_true(apply(&b, d, true, &res, &err));

    /* a delta that starts after the receiver's head */
    write_some(da, 3);
    write_some(da, 4);
    later = export(da, 3, 4);
    g_assert_false(apply(&b, later, false, &res, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_MISMATCH);
    g_clear_error(&err);

    /* a delta of another disk */
    dother = test_create_open(&other, SIZE, 4096);
    write_some(dother, 1);
    foreign = export(dother, 0, 1);
    g_assert_false(apply(&b, foreign, false, &res, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_MISMATCH);
    g_clear_error(&err);

    /* divergence: b writes its own version 3, then a's 0..4 arrives */
    db = test_open(&b, CFS_OPEN_RDWR, CFS_VERSION_HEAD);
    write_some(db, 42);
    g_assert_true(cfs_disk_close(db, &err));
    log_before = test_file_size(&b);
    forked = export(da, 0, 4);
    g_assert_false(apply(&b, forked, false, &res, &err));
    g_assert_error(err, CFS_ERROR, CFS_ERROR_DIVERGED);
    g_assert_cmpuint(res.diverged_at, ==, 3);
    g_assert_cmpuint(res.records_applied, ==, 0);
    g_clear_error(&err);
    g_assert_cmpuint(test_file_size(&b), ==, log_before);
    db = test_open(&b, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(cfs_disk_version(db), ==, 3);
    cfs_disk_free(db);

    /* garbage is not a delta */
    {
        GByteArray *junk = g_byte_array_new();

        g_byte_array_append(junk, (const guint8 *)"hello world", 11);
        g_assert_false(apply(&b, junk, false, &res, &err));
        g_assert_error(err, CFS_ERROR, CFS_ERROR_NOT_CFS);
        g_clear_error(&err);
        g_byte_array_unref(junk);
    }
    cfs_disk_free(da);
    cfs_disk_free(dother);
    test_image_cleanup(&a);
    test_image_cleanup(&b);
    test_image_cleanup(&other);
}

/* A delta cut at every offset: whole records apply, the rest is refused */
static void test_truncated_everywhere(void)
{
    TestImage src, dst;
    CfsDisk *disk;
    GError *err = NULL;
    g_autoptr(GByteArray) full = NULL;
    uint64_t header = sizeof(CfsDeltaHeader) + sizeof(CfsSuperblock);
    uint64_t ends[8];
    int n = 0;

    test_image_init(&src);
    disk = test_create_open(&src, SIZE, 512);
    for (int i = 0; i < 4; i++) {
        uint64_t before = cfs_disk_log_end(disk);

        write_some(disk, i);
        ends[n] = (n ? ends[n - 1] : header) + cfs_disk_log_end(disk) - before;
        n++;
    }
    full = export(disk, 0, CFS_VERSION_HEAD);
    g_assert_cmpuint(full->len, ==, ends[n - 1]);
    cfs_disk_free(disk);
    for (uint64_t cut = 0; cut < full->len; cut += 97) {
        GByteArray part = { .data = full->data, .len = cut };
        CfsDeltaResult res = { 0 };
        uint64_t whole = 0;
        bool ok;

        test_image_init(&dst);
        for (int k = 0; k < n; k++) {
            whole += ends[k] <= cut;
        }
        if (cut < header) {
            Source s = { full->data, cut, 0 };
            CfsDeltaReader *rd = cfs_delta_reader_new(source_bytes, &s, &err);

            g_assert_null(rd);
            g_assert_nonnull(err);
            g_clear_error(&err);
            test_image_cleanup(&dst);
            continue;
        }
        ok = apply(&dst, &part, true, &res, &err);
        g_assert_false(ok);
        g_assert_error(err, CFS_ERROR, CFS_ERROR_CORRUPT);
        g_clear_error(&err);
        g_assert_cmpuint(res.records_applied, ==, whole);
        disk = test_open(&dst, 0, CFS_VERSION_HEAD);
        g_assert_cmpuint(cfs_disk_version(disk), ==, whole);
        cfs_disk_free(disk);
        test_image_cleanup(&dst);
    }
    test_image_cleanup(&src);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/delta/round-trip", test_round_trip);
    g_test_add_func("/delta/refusals", test_refusals);
    g_test_add_func("/delta/truncated-everywhere", test_truncated_everywhere);
    return g_test_run();
}
