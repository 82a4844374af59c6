/* file.c: little-endian serialisation, CRC-32 and atomic file writes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>
#include <unistd.h>

#include "io-impl.h"

/* ---- writing ----------------------------------------------------------- */

void dng__wbuf_free(dng__wbuf *w)
{
    dng__free(w->data);
    w->data = NULL;
    w->len = w->cap = 0;
}

void dng__w_bytes(dng__wbuf *w, const void *p, size_t n)
{
    if (w->failed || n == 0)
        return;
    if (n > SIZE_MAX - w->len) {
        w->failed = true;
        return;
    }
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        uint8_t *d;
        while (cap < w->len + n)
            cap = cap > SIZE_MAX / 2 ? w->len + n : cap * 2;
        d = dng__malloc(cap, "file buffer");
        if (!d) {
            w->failed = true;
            return;
        }
        if (w->len)
            memcpy(d, w->data, w->len);
        dng__free(w->data);
        w->data = d;
        w->cap = cap;
    }
    memcpy(w->data + w->len, p, n);
    w->len += n;
}

void dng__w_u8(dng__wbuf *w, uint8_t v)
{
    dng__w_bytes(w, &v, 1);
}

void dng__w_u32(dng__wbuf *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                    (uint8_t)(v >> 24)};
    dng__w_bytes(w, b, 4);
}

void dng__w_u64(dng__wbuf *w, uint64_t v)
{
    dng__w_u32(w, (uint32_t)v);
    dng__w_u32(w, (uint32_t)(v >> 32));
}

void dng__w_i64(dng__wbuf *w, int64_t v)
{
    dng__w_u64(w, (uint64_t)v);
}

void dng__w_f32(dng__wbuf *w, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    dng__w_u32(w, u);
}

void dng__w_f64(dng__wbuf *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    dng__w_u64(w, u);
}

static bool host_is_le(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

void dng__w_f32s(dng__wbuf *w, const float *p, size_t n)
{
    if (host_is_le()) {
        if (n > SIZE_MAX / 4) {
            w->failed = true;
            return;
        }
        dng__w_bytes(w, p, n * 4);
    } else {
        for (size_t i = 0; i < n; i++)
            dng__w_f32(w, p[i]);
    }
}

void dng__w_str(dng__wbuf *w, const char *s)
{
    size_t n = strlen(s);
    if (n > UINT32_MAX) {
        w->failed = true;
        return;
    }
    dng__w_u32(w, (uint32_t)n);
    dng__w_bytes(w, s, n);
}

/* ---- reading ----------------------------------------------------------- */

size_t dng__r_left(const dng__rbuf *r)
{
    return r->len - r->pos;
}

bool dng__r_bytes(dng__rbuf *r, void *p, size_t n)
{
    if (r->failed || n > r->len - r->pos) {
        r->failed = true;
        memset(p, 0, n);
        return false;
    }
    memcpy(p, r->data + r->pos, n);
    r->pos += n;
    return true;
}

bool dng__r_u8(dng__rbuf *r, uint8_t *v)
{
    return dng__r_bytes(r, v, 1);
}

bool dng__r_u32(dng__rbuf *r, uint32_t *v)
{
    uint8_t b[4];
    bool ok = dng__r_bytes(r, b, 4);
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
         (uint32_t)b[3] << 24;
    return ok;
}

bool dng__r_u64(dng__rbuf *r, uint64_t *v)
{
    uint32_t lo, hi;
    bool ok = dng__r_u32(r, &lo);
    ok = dng__r_u32(r, &hi) && ok;
    *v = (uint64_t)lo | (uint64_t)hi << 32;
    return ok;
}

bool dng__r_i64(dng__rbuf *r, int64_t *v)
{
    uint64_t u;
    bool ok = dng__r_u64(r, &u);
    *v = (int64_t)u;
    return ok;
}

bool dng__r_f32(dng__rbuf *r, float *v)
{
    uint32_t u;
    bool ok = dng__r_u32(r, &u);
    memcpy(v, &u, 4);
    return ok;
}

bool dng__r_f64(dng__rbuf *r, double *v)
{
    uint64_t u;
    bool ok = dng__r_u64(r, &u);
    memcpy(v, &u, 8);
    return ok;
}

bool dng__r_f32s(dng__rbuf *r, float *p, size_t n)
{
    if (n > (r->len - r->pos) / 4) {
        r->failed = true;
        return false;
    }
    if (host_is_le())
        return dng__r_bytes(r, p, n * 4);
    for (size_t i = 0; i < n; i++)
        dng__r_f32(r, &p[i]);
    return !r->failed;
}

bool dng__r_str(dng__rbuf *r, char *buf, size_t cap)
{
    uint32_t n;
    if (!dng__r_u32(r, &n))
        return false;
    if ((size_t)n >= cap || n > r->len - r->pos) {
        r->failed = true;
        return false;
    }
    dng__r_bytes(r, buf, n);
    buf[n] = '\0';
    if (strlen(buf) != n) {
        r->failed = true;
        return false;
    }
    return true;
}

/* ---- CRC-32 ------------------------------------------------------------ */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

/* Reflected CRC-32, polynomial 0xEDB88320, init and final xor ~0. */
uint32_t dng__crc32(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ b[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- files ------------------------------------------------------------- */

dng_status dng__write_file_atomic_parts(const char *func, const char *path,
                                        int nparts, const void *const *parts,
                                        const size_t *lens)
{
    char *tmp;
    size_t plen;
    int fd;
    if (!path || !*path)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: path is empty",
                          func);
    plen = strlen(path);
    tmp = dng__malloc(plen + 16, func);
    if (!tmp)
        return DNG_ERR_OUT_OF_MEMORY;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp-XXXXXX", 12);
    fd = mkstemp(tmp);
    if (fd < 0) {
        dng_status s = dng__error(DNG_ERR_IO, "%s: cannot create a "
                                  "temporary file beside %s: %s", func, path,
                                  strerror(errno));
        dng__free(tmp);
        return s;
    }
    for (int i = 0; i < nparts; i++) {
        const uint8_t *p = parts[i];
        size_t len = lens[i];
        while (len > 0) {
            ssize_t k = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                dng_status s = dng__error(DNG_ERR_IO, "%s: cannot write %s: "
                                          "%s", func, path,
                                          k < 0 ? strerror(errno)
                                                : "no space");
                close(fd);
                unlink(tmp);
                dng__free(tmp);
                return s;
            }
            p += k;
            len -= (size_t)k;
        }
    }
    /* mkstemp makes 0600 files; a model file is an ordinary file. */
    fchmod(fd, 0644);
    if (fsync(fd) != 0 || close(fd) != 0) {
        dng_status s = dng__error(DNG_ERR_IO, "%s: cannot flush %s: %s",
                                  func, path, strerror(errno));
        unlink(tmp);
        dng__free(tmp);
        return s;
    }
    if (rename(tmp, path) != 0) {
        dng_status s = dng__error(DNG_ERR_IO, "%s: cannot rename into %s: "
                                  "%s", func, path, strerror(errno));
        unlink(tmp);
        dng__free(tmp);
        return s;
    }
    dng__free(tmp);
    return DNG_OK;
}

dng_status dng__write_file_atomic(const char *func, const char *path,
                                  const void *data, size_t len)
{
    return dng__write_file_atomic_parts(func, path, 1, &data, &len);
}

dng_status dng__read_file(const char *func, const char *path, size_t max_len,
                          uint8_t **data, size_t *len)
{
    FILE *f;
    struct stat st;
    uint8_t *buf;
    size_t n;
    *data = NULL;
    *len = 0;
    if (!path)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: path is NULL",
                          func);
    f = fopen(path, "rb");
    if (!f)
        return dng__error(DNG_ERR_IO, "%s: cannot open %s: %s", func, path,
                          strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return dng__error(DNG_ERR_IO, "%s: %s is not a regular file", func,
                          path);
    }
    if ((uint64_t)st.st_size > max_len) {
        fclose(f);
        return dng__error(DNG_ERR_FORMAT, "%s: %s is larger (%lld bytes) "
                          "than this format allows", func, path,
                          (long long)st.st_size);
    }
    n = (size_t)st.st_size;
    buf = dng__malloc(n ? n : 1, func);
    if (!buf) {
        fclose(f);
        return DNG_ERR_OUT_OF_MEMORY;
    }
    if (n && fread(buf, 1, n, f) != n) {
        dng_status s = dng__error(DNG_ERR_IO, "%s: cannot read %s", func,
                                  path);
        fclose(f);
        dng__free(buf);
        return s;
    }
    fclose(f);
    *data = buf;
    *len = n;
    return DNG_OK;
}
