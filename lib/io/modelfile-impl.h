/* modelfile-impl.h: the model file's building blocks, shared with the GAN
 * checkpoint (lib/train/gan.c). The byte layout is specified in
 * doc/file-format.md. */
#ifndef DNG_MODELFILE_IMPL_H
#define DNG_MODELFILE_IMPL_H

#include "io-impl.h"
#include "net-impl.h"

/* The format version dng_net_save() writes; dng_net_load() reads every
 * version from 1 up to this one. */
#define DNG__MODEL_VERSION 1u

/* Append the architecture (input shape and layer records) and then the
 * state (dng__net_write_state) of net to w. DNG_ERR_OUT_OF_MEMORY when w
 * could not grow. */
dng_status dng__net_serialize(dng__wbuf *w, const dng_net *net);

/* Parse what dng__net_serialize wrote, starting at r's position, and
 * build a new network through the public constructors (the caller
 * destroys it). Every length is checked against the bytes left before
 * anything is allocated; r is left just after the network, so a caller
 * may read more after it. NULL with DNG_ERR_FORMAT (or
 * DNG_ERR_OUT_OF_MEMORY) in dng_last_error(), prefixed with func. */
dng_net *dng__net_deserialize(dng__rbuf *r, const char *func);

/* Append net's parameters then buffers, each as name, ndim, shape and
 * float32 LE data. */
dng_status dng__net_write_state(dng__wbuf *w, const dng_net *net);

/* Read a state written by dng__net_write_state into net, which must have
 * the same parameter and buffer names and shapes. With apply false only
 * validates and leaves net unchanged; with apply true the whole record is
 * validated first too, so net is never left half-written. r advances past
 * the record in both cases (on success). */
dng_status dng__net_read_state(dng__rbuf *r, dng_net *net, bool apply,
                               const char *func);

/* Write magic (8 bytes), version (u32 LE), the payload and a CRC-32 (u32
 * LE) of everything before it to path, atomically. */
dng_status dng__file_save(const char *func, const char *path,
                          const char magic[8], uint32_t version,
                          const dng__wbuf *payload);

/* Read a file written by dng__file_save: checks the magic, that the
 * version is 1 to max_version and the CRC. On success *data (free with
 * dng__free) holds the whole file, *len its size, *payload a cursor over
 * the payload bytes and *version the file's version. DNG_ERR_IO when the
 * file cannot be read, DNG_ERR_FORMAT when it is not valid. */
dng_status dng__file_load(const char *func, const char *path,
                          const char magic[8], uint32_t max_version,
                          uint8_t **data, size_t *len, dng__rbuf *payload,
                          uint32_t *version);

/* The checks of dng__file_load on a file already in memory: data (len
 * bytes, named name in messages) stays owned by the caller and payload
 * points into it. */
dng_status dng__file_check(const char *func, const char *name,
                           const char magic[8], uint32_t max_version,
                           const uint8_t *data, size_t len,
                           dng__rbuf *payload, uint32_t *version);

/* dng_net_load on the bytes of a model file already in memory (the
 * fuzzing entry point): a new network, or NULL with DNG_ERR_FORMAT
 * details. name is used in messages only. */
dng_net *dng__net_from_bytes(const uint8_t *data, size_t len,
                             const char *name);

#endif
