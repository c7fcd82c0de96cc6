/*
 * Helpers shared by the core's unit tests: temporary images on real files,
 * and a byte-for-byte model of what each version must read back as.
 */
#ifndef CLOUDFS_TEST_FIXTURE_H
#define CLOUDFS_TEST_FIXTURE_H

#include "internal.h"

typedef struct TestImage {
    char *dir;
    char *path;
    int fd;
    CfsIO io;
} TestImage;

/* Create an empty file in a fresh temporary directory */
void test_image_init(TestImage *t);
/* Reopen the file descriptor (after an external truncate or copy) */
void test_image_reopen(TestImage *t);
void test_image_cleanup(TestImage *t);
/* Create an image of size/block_size and open it read-write */
CfsDisk *test_create_open(TestImage *t, uint64_t size, uint32_t block_size);
CfsDisk *test_open(TestImage *t, unsigned flags, uint64_t version);

/* Do the caller's part of an append: write its header (if it carries
 * one) and its data; returns 0 or -errno for cfs_append_complete() */
int test_append_write(CfsDisk *disk, CfsAppend *a);
/* A batch of one write through the asynchronous path: prepared and left
 * in flight (NULL and *errp on error) ... */
CfsAppend *test_prepare(CfsDisk *disk, const void *buf, uint64_t len,
                        uint64_t offset, GError **errp);
/* ... or prepared, written and completed: its state */
CfsAppendState test_append(CfsDisk *disk, const void *buf, uint64_t len,
                           uint64_t offset);

/* Deterministic pseudo-random, non-zero-ish data */
void test_fill(void *buf, size_t len, uint32_t seed);
/* Whole-disk content read back through the core */
uint8_t *test_read_all(CfsDisk *disk);
void test_assert_content(CfsDisk *disk, const uint8_t *expect, uint64_t len);
/* [offset, offset + len) reads back as expect (NULL: as zeros) */
void test_assert_range(CfsDisk *disk, uint64_t offset, uint64_t len,
                       const void *expect);
void test_copy_file(const char *from, const char *to);
uint64_t test_file_size(TestImage *t);

#endif
