/*
 * The extent index against a naive model: random sets of DATA and ZERO
 * ranges, truncations and lookups must agree block for block, and merged
 * extents must stay merged only where guest and log space both continue.
 */
#include <string.h>
#include "fixture.h"

#define BS 512
#define NBLOCKS 512

typedef struct Cell {
    int kind;                   /* 0 unallocated, else CFS_EXTENT_* */
    uint64_t log;
} Cell;

static void check_model(CfsIndex *idx, const Cell *model, uint64_t nblocks)
{
    uint64_t b = 0;
    uint64_t data = 0;

    while (b < nblocks) {
        CfsMapping m;

        cfs_index_lookup(idx, b * BS, (nblocks - b) * BS, &m);
        g_assert_cmpuint(m.length, >, 0);
        g_assert_cmpuint(m.length % BS, ==, 0);
        for (uint64_t k = 0; k < m.length / BS; k++) {
            const Cell *c = &model[b + k];

            switch (m.kind) {
            case CFS_MAP_UNALLOCATED:
                g_assert_cmpint(c->kind, ==, 0);
                break;
            case CFS_MAP_ZERO:
                g_assert_cmpint(c->kind, ==, CFS_EXTENT_ZERO);
                break;
            case CFS_MAP_DATA:
                g_assert_cmpint(c->kind, ==, CFS_EXTENT_DATA);
                g_assert_cmpuint(c->log, ==, m.log_offset + k * BS);
                data += BS;
                break;
            }
        }
        b += m.length / BS;
    }
    g_assert_cmpuint(data, ==, cfs_index_data_bytes(idx));
}

static void test_random_against_model(void)
{
    CfsIndex *idx = cfs_index_new(BS);
    Cell model[NBLOCKS] = { 0 };
    uint64_t size = NBLOCKS;
    uint64_t next_log = 1 << 20;

    for (int i = 0; i < 3000; i++) {
        int op = g_test_rand_int_range(0, 10);
        uint64_t start = g_test_rand_int_range(0, size);
        uint64_t n = g_test_rand_int_range(1, MIN(64, size - start) + 1);

        if (op < 6) {
            /* sometimes continue the previous log position: merges */
            CfsExtent e = { .guest_offset = start * BS, .nblocks = n,
                            .kind = CFS_EXTENT_DATA,
                            .log_offset = next_log, .record_offset = 4096 };

            for (uint64_t k = 0; k < n; k++) {
                model[start + k] = (Cell) { CFS_EXTENT_DATA, next_log + k * BS };
            }
            next_log += n * BS + (op == 0 ? 0 : BS);
            cfs_index_set(idx, &e);
        } else if (op < 9) {
            CfsExtent e = { .guest_offset = start * BS, .nblocks = n,
                            .kind = CFS_EXTENT_ZERO };

            for (uint64_t k = 0; k < n; k++) {
                model[start + k] = (Cell) { CFS_EXTENT_ZERO, 0 };
            }
            cfs_index_set(idx, &e);
        } else {
            uint64_t cut = g_test_rand_int_range(1, NBLOCKS + 1);

            cfs_index_truncate(idx, cut * BS);
            for (uint64_t k = cut; k < NBLOCKS; k++) {
                model[k] = (Cell) { 0, 0 };
            }
        }
        if (i % 50 == 0) {
            check_model(idx, model, NBLOCKS);
        }
    }
    check_model(idx, model, NBLOCKS);
    {
        CfsIndex *copy = cfs_index_copy(idx);

        g_assert_true(cfs_index_equal(copy, idx));
        cfs_index_free(copy);
    }
    cfs_index_free(idx);
}

static void test_merge(void)
{
    CfsIndex *idx = cfs_index_new(BS);

    for (int i = 0; i < 100; i++) {
        CfsExtent e = { .guest_offset = i * BS, .nblocks = 1,
                        .kind = CFS_EXTENT_DATA, .log_offset = 8192 + i * BS,
                        .record_offset = 4096 };

        cfs_index_set(idx, &e);
    }
    g_assert_cmpuint(cfs_index_count(idx), ==, 1);
    /* overwrite the middle from another record: three extents */
    {
        CfsExtent e = { .guest_offset = 50 * BS, .nblocks = 1,
                        .kind = CFS_EXTENT_DATA, .log_offset = 1 << 20,
                        .record_offset = 1 << 19 };

        cfs_index_set(idx, &e);
    }
    g_assert_cmpuint(cfs_index_count(idx), ==, 3);
    /* zeroing everything collapses to one ZERO extent */
    {
        CfsExtent e = { .guest_offset = 0, .nblocks = 100,
                        .kind = CFS_EXTENT_ZERO };

        cfs_index_set(idx, &e);
    }
    g_assert_cmpuint(cfs_index_count(idx), ==, 1);
    g_assert_cmpuint(cfs_index_data_bytes(idx), ==, 0);
    cfs_index_free(idx);
}

static void test_append_rejects_overlap(void)
{
    CfsIndex *idx = cfs_index_new(BS);
    CfsExtent a = { .guest_offset = 0, .nblocks = 4, .kind = CFS_EXTENT_ZERO };
    CfsExtent b = { .guest_offset = 3 * BS, .nblocks = 1,
                    .kind = CFS_EXTENT_ZERO };
    CfsExtent c = { .guest_offset = 100, .nblocks = 1,
                    .kind = CFS_EXTENT_ZERO };

    g_assert_true(cfs_index_append(idx, &a));
    g_assert_false(cfs_index_append(idx, &b));
    g_assert_false(cfs_index_append(idx, &c));
    cfs_index_free(idx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/index/random-against-model", test_random_against_model);
    g_test_add_func("/index/merge", test_merge);
    g_test_add_func("/index/append-rejects-overlap",
                    test_append_rejects_overlap);
    return g_test_run();
}
