/* npy.c: NumPy .npy files holding float32 arrays.
 *
 * A .npy file is the magic "\x93NUMPY", a major and a minor version byte,
 * the header length (u16 LE in version 1.0, u32 LE in 2.0 and 3.0), the
 * header itself (a Python dict literal with the keys 'descr',
 * 'fortran_order' and 'shape', padded with spaces and ended by '\n'), then
 * the raw array data. We write version 1.0 (2.0 only when the header
 * does not fit in 65535 bytes, which our shapes never need) and read all
 * three versions. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "io-impl.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* A real header is under 200 bytes; a larger one is corrupt or hostile,
 * and refusing it bounds what we allocate before looking at the data.
 * NumPy itself refuses headers over 10000 bytes unless told otherwise. */
#define NPY_MAX_HEADER 65536

/* ---- writing ----------------------------------------------------------- */

static bool host_is_le(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

DNG_API dng_status dng_tensor_save_npy(const dng_tensor *t, const char *path)
{
    char head[128 + DNG_MAX_DIMS * 24];
    size_t off = NPY_MAGIC_LEN + 4, hlen;
    dng__wbuf swapped = {0};
    const void *parts[2];
    size_t lens[2];
    dng_status s;
    DNG__CHECK_NULL(t, "dng_tensor_save_npy");
    DNG__CHECK_NULL(path, "dng_tensor_save_npy");
    off += (size_t)snprintf(head + off, sizeof head - off,
                            "{'descr': '<f4', 'fortran_order': False, "
                            "'shape': (");
    for (int i = 0; i < t->ndim; i++)
        off += (size_t)snprintf(head + off, sizeof head - off, "%" PRId64
                                "%s", t->shape[i],
                                t->ndim == 1 ? "," : i + 1 < t->ndim ? ", "
                                                                     : "");
    off += (size_t)snprintf(head + off, sizeof head - off, "), }");
    /* Pad with spaces so that the data starts on a 64-byte boundary (what
     * NumPy writes, good for memory-mapping), then end with '\n'. */
    while ((off + 1) % 64 != 0)
        head[off++] = ' ';
    head[off++] = '\n';
    hlen = off - NPY_MAGIC_LEN - 4;
    memcpy(head, NPY_MAGIC, NPY_MAGIC_LEN);
    head[6] = 1;
    head[7] = 0;
    head[8] = (char)(hlen & 0xff);
    head[9] = (char)(hlen >> 8);
    parts[0] = head;
    lens[0] = off;
    lens[1] = (size_t)t->numel * 4;
    if (host_is_le()) {
        /* The floats go straight from the tensor to the file. */
        parts[1] = t->data;
    } else {
        dng__w_f32s(&swapped, t->data, (size_t)t->numel);
        if (swapped.failed) {
            dng__wbuf_free(&swapped);
            return dng__error(DNG_ERR_OUT_OF_MEMORY, "dng_tensor_save_npy: "
                              "cannot buffer %" PRId64 " floats", t->numel);
        }
        parts[1] = swapped.data;
    }
    s = dng__write_file_atomic_parts("dng_tensor_save_npy", path, 2, parts,
                                     lens);
    dng__wbuf_free(&swapped);
    return s;
}

/* ---- header parsing ---------------------------------------------------- */

/* The parsed header. ndim = -1 until a shape is seen. */
typedef struct npy_header {
    char descr[32];
    int fortran; /* -1 unseen, 0, 1 */
    int ndim;
    int64_t shape[DNG_MAX_DIMS];
} npy_header;

typedef struct npy_lex {
    const char *p, *end;
    const char *path;
} npy_lex;

static dng_status npy_bad(const npy_lex *lx, const char *what)
{
    return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s: bad header: "
                      "%s", lx->path, what);
}

static void npy_skip_ws(npy_lex *lx)
{
    while (lx->p < lx->end &&
           (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' ||
            *lx->p == '\r'))
        lx->p++;
}

/* Accept the character c (after white space). */
static bool npy_accept(npy_lex *lx, char c)
{
    npy_skip_ws(lx);
    if (lx->p < lx->end && *lx->p == c) {
        lx->p++;
        return true;
    }
    return false;
}

/* A Python string literal in single or double quotes, without escapes
 * (none of the values we accept need one). */
static bool npy_string(npy_lex *lx, char *buf, size_t cap)
{
    char q;
    size_t n = 0;
    npy_skip_ws(lx);
    if (lx->p >= lx->end || (*lx->p != '\'' && *lx->p != '"'))
        return false;
    q = *lx->p++;
    while (lx->p < lx->end && *lx->p != q) {
        if (*lx->p == '\\' || n + 1 >= cap)
            return false;
        buf[n++] = *lx->p++;
    }
    if (lx->p >= lx->end)
        return false;
    lx->p++;
    buf[n] = '\0';
    return true;
}

static bool npy_word(npy_lex *lx, const char *word)
{
    size_t n = strlen(word);
    npy_skip_ws(lx);
    if ((size_t)(lx->end - lx->p) >= n && memcmp(lx->p, word, n) == 0) {
        const char *after = lx->p + n;
        /* "Falsey" is not False. */
        if (after < lx->end &&
            ((*after >= 'a' && *after <= 'z') ||
             (*after >= 'A' && *after <= 'Z') ||
             (*after >= '0' && *after <= '9') || *after == '_'))
            return false;
        lx->p = after;
        return true;
    }
    return false;
}

/* A tuple of non-negative integers: "()", "(5,)", "(2, 3)", "(2, 3,)".
 * A list is accepted too, as NumPy's own parser (ast.literal_eval)
 * would read one. */
static dng_status npy_shape(npy_lex *lx, npy_header *h)
{
    char close;
    npy_skip_ws(lx);
    if (npy_accept(lx, '('))
        close = ')';
    else if (npy_accept(lx, '['))
        close = ']';
    else
        return npy_bad(lx, "'shape' is not a tuple");
    h->ndim = 0;
    for (;;) {
        int64_t v = 0;
        bool digits = false;
        if (npy_accept(lx, close))
            break;
        npy_skip_ws(lx);
        while (lx->p < lx->end && *lx->p >= '0' && *lx->p <= '9') {
            int d = *lx->p++ - '0';
            if (v > (INT64_MAX - d) / 10)
                return npy_bad(lx, "a dimension in 'shape' overflows");
            v = v * 10 + d;
            digits = true;
        }
        /* Python 2 era writers appended 'L' to long integers. */
        if (digits && lx->p < lx->end && *lx->p == 'L')
            lx->p++;
        if (!digits)
            return npy_bad(lx, "'shape' holds something other than "
                           "non-negative integers");
        if (h->ndim == DNG_MAX_DIMS)
            return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s: the "
                              "array has more than %d dimensions", lx->path,
                              DNG_MAX_DIMS);
        h->shape[h->ndim++] = v;
        if (npy_accept(lx, ','))
            continue;
        if (npy_accept(lx, close))
            break;
        return npy_bad(lx, "'shape' is not a well-formed tuple");
    }
    return DNG_OK;
}

static dng_status npy_parse(npy_lex *lx, npy_header *h)
{
    dng_status s;
    bool have_descr = false;
    h->fortran = -1;
    h->ndim = -1;
    if (!npy_accept(lx, '{'))
        return npy_bad(lx, "it does not start with '{'");
    for (;;) {
        char key[32];
        if (npy_accept(lx, '}'))
            break;
        if (!npy_string(lx, key, sizeof key))
            return npy_bad(lx, "expected a quoted key");
        if (!npy_accept(lx, ':'))
            return npy_bad(lx, "expected ':' after a key");
        if (strcmp(key, "descr") == 0) {
            if (have_descr)
                return npy_bad(lx, "'descr' appears twice");
            npy_skip_ws(lx);
            if (lx->p < lx->end && *lx->p == '[')
                return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s: "
                                  "structured dtypes are not supported "
                                  "(only '<f4')", lx->path);
            if (!npy_string(lx, h->descr, sizeof h->descr))
                return npy_bad(lx, "'descr' is not a short string");
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (h->fortran >= 0)
                return npy_bad(lx, "'fortran_order' appears twice");
            if (npy_word(lx, "False"))
                h->fortran = 0;
            else if (npy_word(lx, "True"))
                h->fortran = 1;
            else
                return npy_bad(lx, "'fortran_order' is neither True nor "
                               "False");
        } else if (strcmp(key, "shape") == 0) {
            if (h->ndim >= 0)
                return npy_bad(lx, "'shape' appears twice");
            if ((s = npy_shape(lx, h)) != DNG_OK)
                return s;
        } else {
            return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s: bad "
                              "header: unknown key '%s'", lx->path, key);
        }
        if (npy_accept(lx, ','))
            continue;
        if (npy_accept(lx, '}'))
            break;
        return npy_bad(lx, "expected ',' or '}' after a value");
    }
    npy_skip_ws(lx);
    if (lx->p != lx->end)
        return npy_bad(lx, "text after the closing '}'");
    if (!have_descr || h->fortran < 0 || h->ndim < 0)
        return npy_bad(lx, "'descr', 'fortran_order' or 'shape' is "
                       "missing");
    return DNG_OK;
}

/* ---- reading ----------------------------------------------------------- */

static dng_status npy_read_exact(FILE *f, void *buf, size_t n,
                                 const char *path, const char *what)
{
    if (n && fread(buf, 1, n, f) != n)
        return dng__error(ferror(f) ? DNG_ERR_IO : DNG_ERR_FORMAT,
                          "dng_tensor_load_npy: %s: %s %s", path,
                          ferror(f) ? "cannot read the" : "truncated in the",
                          what);
    return DNG_OK;
}

/* Parse the preamble and header of an open file; on success *numel and
 * the shape in h describe the data, which starts at the file position. */
static dng_status npy_read_header(FILE *f, const char *path, uint64_t fsize,
                                  npy_header *h, int64_t *numel)
{
    uint8_t pre[12];
    uint64_t hlen, start, need;
    char *text;
    npy_lex lx;
    dng_status s;
    int64_t n = 1;
    if ((s = npy_read_exact(f, pre, 8, path, "preamble")) != DNG_OK)
        return s;
    if (memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s is not a "
                          ".npy file (no \\x93NUMPY magic)", path);
    if (pre[6] == 1 && pre[7] == 0) {
        if ((s = npy_read_exact(f, pre + 8, 2, path, "preamble")) != DNG_OK)
            return s;
        hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
        start = 10;
    } else if ((pre[6] == 2 || pre[6] == 3) && pre[7] == 0) {
        if ((s = npy_read_exact(f, pre + 8, 4, path, "preamble")) != DNG_OK)
            return s;
        hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8 |
               (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
        start = 12;
    } else {
        return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s: format "
                          "version %u.%u is not supported (1.0, 2.0, 3.0)",
                          path, pre[6], pre[7]);
    }
    if (hlen > NPY_MAX_HEADER)
        return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s: header "
                          "length %" PRIu64 " exceeds %d bytes", path, hlen,
                          NPY_MAX_HEADER);
    if (hlen > fsize - start)
        return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s: "
                          "truncated in the header (%" PRIu64 " bytes "
                          "announced)", path, hlen);
    text = dng__malloc((size_t)hlen + 1, "dng_tensor_load_npy");
    if (!text)
        return DNG_ERR_OUT_OF_MEMORY;
    if ((s = npy_read_exact(f, text, (size_t)hlen, path, "header")) !=
        DNG_OK) {
        dng__free(text);
        return s;
    }
    text[hlen] = '\0';
    if (hlen == 0 || text[hlen - 1] != '\n') {
        dng__free(text);
        return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s: bad "
                          "header: it does not end with a newline", path);
    }
    if (memchr(text, '\0', (size_t)hlen)) {
        dng__free(text);
        return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s: bad "
                          "header: it contains a NUL byte", path);
    }
    lx.p = text;
    lx.end = text + hlen;
    lx.path = path;
    s = npy_parse(&lx, h);
    dng__free(text);
    if (s != DNG_OK)
        return s;
    if (strcmp(h->descr, "<f4") != 0)
        return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s: dtype "
                          "'%s' is not supported (only float32, '<f4')",
                          path, h->descr);
    if (h->fortran)
        return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s: "
                          "Fortran-order arrays are not supported (save a "
                          "C-contiguous array)", path);
    /* A 0-d array holds one scalar: it becomes a 1-element 1-D tensor,
     * since tensors have at least one dimension. */
    if (h->ndim == 0) {
        h->ndim = 1;
        h->shape[0] = 1;
    }
    for (int i = 0; i < h->ndim; i++) {
        if (h->shape[i] == 0)
            return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s: the "
                              "array is empty (dimension %d is 0), which a "
                              "tensor cannot hold", path, i);
        if (dng__mul_overflow_i64(n, h->shape[i], &n) || n > INT64_MAX / 4)
            return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s: the "
                              "shape's element count overflows", path);
    }
    /* Compare with the file before allocating anything: a corrupt shape
     * must not make us reserve gigabytes. */
    need = (uint64_t)n * 4;
    if (need > fsize - start - hlen)
        return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s: "
                          "truncated: the shape needs %" PRIu64 " data "
                          "bytes, the file holds %" PRIu64, path, need,
                          fsize - start - hlen);
    if (need < fsize - start - hlen)
        return dng__error(DNG_ERR_FORMAT, "dng_tensor_load_npy: %s: %" PRIu64
                          " unexpected bytes after the data", path,
                          fsize - start - hlen - need);
    *numel = n;
    return DNG_OK;
}

DNG_API dng_tensor *dng_tensor_load_npy(const char *path)
{
    FILE *f;
    struct stat st;
    npy_header h;
    int64_t numel = 0;
    dng_tensor *t;
    if (!path) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_tensor_load_npy: path is "
                   "NULL");
        return NULL;
    }
    f = fopen(path, "rb");
    if (!f) {
        dng__error(DNG_ERR_IO, "dng_tensor_load_npy: cannot open %s: %s",
                   path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        dng__error(DNG_ERR_IO, "dng_tensor_load_npy: %s is not a regular "
                   "file", path);
        return NULL;
    }
    if (npy_read_header(f, path, (uint64_t)st.st_size, &h, &numel) !=
        DNG_OK) {
        fclose(f);
        return NULL;
    }
    t = dng_tensor_create(h.ndim, h.shape);
    if (!t) {
        fclose(f);
        dng__error_prefix(DNG_ERR_OUT_OF_MEMORY, "dng_tensor_load_npy: %s",
                          path);
        return NULL;
    }
    if (npy_read_exact(f, t->data, (size_t)numel * 4, path, "data") !=
        DNG_OK) {
        fclose(f);
        dng_tensor_destroy(t);
        return NULL;
    }
    fclose(f);
    if (!host_is_le()) {
        /* The file is little-endian; swap each float in place. */
        uint8_t *b = (uint8_t *)t->data;
        for (int64_t i = 0; i < numel; i++, b += 4) {
            uint8_t x = b[0], y = b[1];
            b[0] = b[3];
            b[1] = b[2];
            b[2] = y;
            b[3] = x;
        }
    }
    return t;
}

dng_status dng__npy_probe(const char *path, int *ndim, int64_t *shape,
                          int64_t *numel, uint64_t *data_offset)
{
    FILE *f;
    struct stat st;
    npy_header h;
    long pos;
    dng_status s;
    f = fopen(path, "rb");
    if (!f)
        return dng__error(DNG_ERR_IO, "dng_tensor_load_npy: cannot open %s: "
                          "%s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return dng__error(DNG_ERR_IO, "dng_tensor_load_npy: %s is not a "
                          "regular file", path);
    }
    s = npy_read_header(f, path, (uint64_t)st.st_size, &h, numel);
    pos = s == DNG_OK ? ftell(f) : -1;
    fclose(f);
    if (s != DNG_OK)
        return s;
    if (pos < 0)
        return dng__error(DNG_ERR_IO, "dng_tensor_load_npy: %s: cannot tell "
                          "the data's position", path);
    *ndim = h.ndim;
    memcpy(shape, h.shape, (size_t)h.ndim * sizeof *shape);
    *data_offset = (uint64_t)pos;
    return DNG_OK;
}
