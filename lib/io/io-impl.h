/* io-impl.h: little-endian byte buffers, CRC-32 and atomic file writes,
 * shared by every file format (model files, checkpoints, .npy,
 * safetensors). */
#ifndef DNG_IO_IMPL_H
#define DNG_IO_IMPL_H

#include "core-impl.h"

/* A growable output buffer. Writers never fail individually: the first
 * allocation failure sets `failed` and later writes are ignored, so a
 * serialiser checks once at the end. */
typedef struct dng__wbuf {
    uint8_t *data;
    size_t len, cap;
    bool failed;
} dng__wbuf;

void dng__wbuf_free(dng__wbuf *w);
void dng__w_bytes(dng__wbuf *w, const void *p, size_t n);
void dng__w_u8(dng__wbuf *w, uint8_t v);
void dng__w_u32(dng__wbuf *w, uint32_t v);
void dng__w_u64(dng__wbuf *w, uint64_t v);
void dng__w_i64(dng__wbuf *w, int64_t v);
void dng__w_f32(dng__wbuf *w, float v);
void dng__w_f64(dng__wbuf *w, double v);
/* n floats, little-endian whatever the host */
void dng__w_f32s(dng__wbuf *w, const float *p, size_t n);
/* u32 length + bytes (no terminator) */
void dng__w_str(dng__wbuf *w, const char *s);

/* A bounds-checked input cursor. Each reader returns false (and sets
 * `failed`) when the data runs out; values are then left zeroed. */
typedef struct dng__rbuf {
    const uint8_t *data;
    size_t len, pos;
    bool failed;
} dng__rbuf;

bool dng__r_bytes(dng__rbuf *r, void *p, size_t n);
bool dng__r_u8(dng__rbuf *r, uint8_t *v);
bool dng__r_u32(dng__rbuf *r, uint32_t *v);
bool dng__r_u64(dng__rbuf *r, uint64_t *v);
bool dng__r_i64(dng__rbuf *r, int64_t *v);
bool dng__r_f32(dng__rbuf *r, float *v);
bool dng__r_f64(dng__rbuf *r, double *v);
bool dng__r_f32s(dng__rbuf *r, float *p, size_t n);
/* Reads a u32-length string into buf (cap bytes incl. terminator);
 * false when it is longer or contains NUL. */
bool dng__r_str(dng__rbuf *r, char *buf, size_t cap);
size_t dng__r_left(const dng__rbuf *r);

/* CRC-32 (IEEE 802.3, as zlib's crc32): pass 0 to start. */
uint32_t dng__crc32(uint32_t crc, const void *p, size_t n);

/* Write data to path through path.tmp-XXXXXX in the same folder: write,
 * flush, fsync, rename. An existing file at path is untouched on failure.
 * Errors are DNG_ERR_IO with the path and errno text. */
dng_status dng__write_file_atomic(const char *func, const char *path,
                                  const void *data, size_t len);
/* The same for the concatenation of nparts pieces (a header, a payload
 * and a trailer written without first copying them into one buffer). */
dng_status dng__write_file_atomic_parts(const char *func, const char *path,
                                        int nparts, const void *const *parts,
                                        const size_t *lens);

/* Read a whole file of at most max_len bytes. *data is freed with
 * dng__free. DNG_ERR_IO when it cannot be read, DNG_ERR_FORMAT when it is
 * larger than max_len. */
dng_status dng__read_file(const char *func, const char *path, size_t max_len,
                          uint8_t **data, size_t *len);

/* Parse the preamble and header of the float32 C-order .npy file at path
 * (the checks of dng_tensor_load_npy, which its messages name) without
 * reading the data: its shape (a 0-d array becomes [1]), element count
 * and the byte offset where the data starts, which runs to the end of
 * the file. For memory-mapping (lib/io/mapped.c). */
dng_status dng__npy_probe(const char *path, int *ndim, int64_t *shape,
                          int64_t *numel, uint64_t *data_offset);

/* dng_net_load_safetensors on a file already in memory (the fuzzing entry
 * point); name is used in messages only. */
dng_status dng__net_load_safetensors_bytes(dng_net *net, const uint8_t *data,
                                           size_t len, const char *name);

#endif
