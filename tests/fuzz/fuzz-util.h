/* fuzz-util.h: what the libFuzzer targets share (header-only). */
#ifndef DNG_FUZZ_UTIL_H
#define DNG_FUZZ_UTIL_H

#define _GNU_SOURCE 1
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dnngen.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A check the loaders' contract makes: a violation is a bug, reported as
 * a crash so that libFuzzer keeps the input. */
#define FUZZ_ASSERT(cond, ...)                                               \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "fuzz assertion failed: %s: ", #cond);           \
            fprintf(stderr, __VA_ARGS__);                                    \
            fprintf(stderr, "\n");                                           \
            abort();                                                         \
        }                                                                    \
    } while (0)

/* The loaders take paths: the input goes into an in-memory file
 * (memfd) reached through /proc/self/fd, rewritten for every input, so no
 * disk is involved. */
static int fuzz_fd = -1;
static char fuzz_path[64];

static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
    if (fuzz_fd < 0) {
        fuzz_fd = memfd_create("dng-fuzz", 0);
        if (fuzz_fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(fuzz_path, sizeof fuzz_path, "/proc/self/fd/%d", fuzz_fd);
    }
    if (ftruncate(fuzz_fd, 0) != 0 ||
        (size && pwrite(fuzz_fd, data, size, 0) != (ssize_t)size)) {
        perror("memfd write");
        abort();
    }
    return fuzz_path;
}

/* A failed loader must say why. */
static inline void fuzz_expect_message(const char *who)
{
    FUZZ_ASSERT(dng_last_error()[0] != '\0', "%s failed without a message",
                who);
}

/* CRC-32 (zlib's) of n bytes, to repair a container's trailer. */
static inline uint32_t fuzz_crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

/* A copy of a DNGMODEL/DNGCKPT container with its CRC recomputed, so that
 * mutations reach the parser behind the CRC check (which the corpus
 * covers on its own). The caller frees it. */
static inline uint8_t *fuzz_fix_crc(const uint8_t *data, size_t size)
{
    uint8_t *b = malloc(size ? size : 1);
    if (!b)
        abort();
    memcpy(b, data, size);
    if (size >= 16) {
        uint32_t c = fuzz_crc32(b, size - 4);
        for (int i = 0; i < 4; i++)
            b[size - 4 + i] = (uint8_t)(c >> (8 * i));
    }
    return b;
}

#endif
