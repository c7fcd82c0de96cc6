/*
 * cloudfs format core: the XXH3-64 hash every checksum uses.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef CLOUDFS_HASH_H
#define CLOUDFS_HASH_H

#include <xxhash.h>

/*
 * On x86-64, libxxhash exports *_dispatch variants that pick SSE2, AVX2
 * or AVX-512 at run time; the plain entry points are built for baseline
 * x86-64 (SSE2) only.  Every payload block is hashed on write and
 * verified on read, so the difference is the CPU cost of a write: about
 * 4.6 GB/s against 25 GB/s for 4 KiB blocks on an AVX-512 machine
 * (docs/performance.rst).  The header maps XXH3_64bits* to the dispatch
 * functions; the hash values are identical.  (Debian's libxxhash ships
 * the header and the functions together.)
 */
#if defined(__x86_64__) && defined(__has_include)
#if __has_include(<xxh_x86dispatch.h>)
#include <xxh_x86dispatch.h>
#endif
#endif

#endif
