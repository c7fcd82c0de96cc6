/*
 * The extent index against a naive model: random sets of DATA and ZERO
 * ranges, truncations and lookups must agree block for block, and merged
 * extents must stay merged only where guest and log space both continue.
 * Enough extents to make the B+tree several levels deep, and copies that
 * share nodes until one of them changes.
 */
#include <string.h>
#include "fixture.h"
#include "index-node.h"

#define BS 512
#define NBLOCKS (1 << 18)

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

        g_assert_true(cfs_index_lookup(idx, b * BS, (nblocks - b) * BS, &m,
                                       NULL));
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

typedef struct Model {
    Cell *cells;
    uint64_t next_log;
} Model;

/* One random change, to the index and to the model alike */
static void random_op(CfsIndex *idx, Model *m, uint64_t max_len)
{
    int op = g_test_rand_int_range(0, 40);
    uint64_t start = g_test_rand_int_range(0, NBLOCKS);
    uint64_t n = g_test_rand_int_range(1, MIN(max_len, NBLOCKS - start) + 1);

    if (op < 30) {
        /* sometimes continue the previous log position: merges */
        CfsExtent e = { .guest_offset = start * BS, .nblocks = n,
                        .kind = CFS_EXTENT_DATA,
                        .log_offset = m->next_log, .record_offset = 4096 };

        for (uint64_t k = 0; k < n; k++) {
            m->cells[start + k] = (Cell) { CFS_EXTENT_DATA,
                                           m->next_log + k * BS };
        }
        m->next_log += n * BS + (op == 0 ? 0 : BS);
        g_assert_true(cfs_index_set(idx, &e, NULL));
    } else if (op < 39) {
        CfsExtent e = { .guest_offset = start * BS, .nblocks = n,
                        .kind = CFS_EXTENT_ZERO };

        for (uint64_t k = 0; k < n; k++) {
            m->cells[start + k] = (Cell) { CFS_EXTENT_ZERO, 0 };
        }
        g_assert_true(cfs_index_set(idx, &e, NULL));
    } else {
        uint64_t cut = g_test_rand_int_range(NBLOCKS / 2, NBLOCKS + 1);

        g_assert_true(cfs_index_truncate(idx, cut * BS, NULL));
        for (uint64_t k = cut; k < NBLOCKS; k++) {
            m->cells[k] = (Cell) { 0, 0 };
        }
    }
}

static void test_random_against_model(void)
{
    CfsIndex *idx = cfs_index_new(NULL, BS);
    Model m = { g_new0(Cell, NBLOCKS), 1 << 20 };

    /* short extents fragment the disk into thousands (a deep tree), long
     * ones collapse it again (merges of nodes) */
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < (round ? 6000 : 200000); i++) {
            random_op(idx, &m, round % 2 ? 2048 : 4);
            if (i % 5000 == 0) {
                check_model(idx, m.cells, NBLOCKS);
            }
        }
        check_model(idx, m.cells, NBLOCKS);
        if (round == 0) {
            /* three levels: more leaves than one inner node holds */
            g_assert_cmpuint(cfs_index_count(idx), >, 40000);
            g_assert_cmpuint(idx->root->level, >=, 2);
        }
    }
    {
        CfsIndex *copy = cfs_index_copy(idx);
        bool same = false;

        g_assert_true(cfs_index_equal(copy, idx, &same, NULL));
        g_assert_true(same);
        cfs_index_free(copy);
    }
    cfs_index_free(idx);
    g_free(m.cells);
}

/* A copy and its original change independently (copy-on-write) */
static void test_copies_are_independent(void)
{
    CfsIndex *a = cfs_index_new(NULL, BS), *b;
    Model ma = { g_new0(Cell, NBLOCKS), 1 << 20 };
    Model mb = { g_new0(Cell, NBLOCKS), 0 };
    bool same = true;

    for (int i = 0; i < 8000; i++) {
        random_op(a, &ma, 4);
    }
    b = cfs_index_copy(a);
    memcpy(mb.cells, ma.cells, NBLOCKS * sizeof(Cell));
    mb.next_log = ma.next_log + (1 << 30);
    for (int i = 0; i < 3000; i++) {
        random_op(a, &ma, 8);
        random_op(b, &mb, 8);
    }
    check_model(a, ma.cells, NBLOCKS);
    check_model(b, mb.cells, NBLOCKS);
    g_assert_true(cfs_index_equal(a, b, &same, NULL));
    g_assert_false(same);
    cfs_index_free(a);
    check_model(b, mb.cells, NBLOCKS);
    cfs_index_free(b);
    g_free(ma.cells);
    g_free(mb.cells);
}

static void test_merge(void)
{
    CfsIndex *idx = cfs_index_new(NULL, BS);

    for (int i = 0; i < 100; i++) {
        CfsExtent e = { .guest_offset = i * BS, .nblocks = 1,
                        .kind = CFS_EXTENT_DATA, .log_offset = 8192 + i * BS,
                        .record_offset = 4096 };

        g_assert_true(cfs_index_set(idx, &e, NULL));
    }
    g_assert_cmpuint(cfs_index_count(idx), ==, 1);
    /* overwrite the middle from another record: three extents */
    {
        CfsExtent e = { .guest_offset = 50 * BS, .nblocks = 1,
                        .kind = CFS_EXTENT_DATA, .log_offset = 1 << 20,
                        .record_offset = 1 << 19 };

        g_assert_true(cfs_index_set(idx, &e, NULL));
    }
    g_assert_cmpuint(cfs_index_count(idx), ==, 3);
    /* zeroing everything collapses to one ZERO extent */
    {
        CfsExtent e = { .guest_offset = 0, .nblocks = 100,
                        .kind = CFS_EXTENT_ZERO };

        g_assert_true(cfs_index_set(idx, &e, NULL));
    }
    g_assert_cmpuint(cfs_index_count(idx), ==, 1);
    g_assert_cmpuint(cfs_index_data_bytes(idx), ==, 0);
    cfs_index_free(idx);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/index/random-against-model", test_random_against_model);
    g_test_add_func("/index/copies-are-independent",
                    test_copies_are_independent);
    g_test_add_func("/index/merge", test_merge);
    return g_test_run();
}
