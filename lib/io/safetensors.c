/* safetensors.c: the safetensors interchange format, so that a PyTorch
 * state dict moves in and out of a network (dng_net_save_safetensors /
 * dng_net_load_safetensors).
 *
 * A safetensors file is a u64 little-endian header length N, N bytes of
 * UTF-8 JSON, then the data buffer. The JSON is one object mapping each
 * tensor name to {"dtype", "shape", "data_offsets": [begin, end]}, with
 * offsets relative to the start of the buffer, plus an optional
 * "__metadata__" object of string values. Tensors are stored row-major,
 * little-endian, contiguous and without gaps or overlaps.
 *
 * Reading treats the file as hostile: the header is parsed by a small,
 * strict JSON parser with a bounded nesting depth and value count, and
 * every entry is validated (dtype, shape, offsets, coverage of the buffer,
 * match with the network) before a single weight is written. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io-impl.h"
#include "net-impl.h"

/* The reference implementation refuses headers above 100 MB; so do we,
 * which bounds what a hostile length can make us parse. */
#define ST_MAX_HEADER 100000000u
/* Real headers nest three deep ({"name": {"shape": [..]}}). */
#define ST_MAX_DEPTH 64
/* A bound on the JSON values of one header, far above any real network
 * (a few per tensor), so a header of tiny values cannot make the value
 * table grow without end. */
#define ST_MAX_VALUES (1 << 22)
/* Dimensions kept per entry; longer shapes are still counted. */
#define ST_KEEP_DIMS DNG_MAX_DIMS

/* ---- dtypes ------------------------------------------------------------ */

typedef struct st_dtype {
    const char *name;
    int size; /* bytes per element */
} st_dtype;

/* Every dtype the format defines, so that a file holding other tensors is
 * still parsed (and its unknown entries named) rather than refused as
 * unreadable. */
static const st_dtype st_dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},   {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2},  {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"I64", 8},  {"U64", 8},     {"F64", 8},
};
#define ST_F32 11
#define ST_I64 12

/* ---- a small JSON parser ----------------------------------------------- */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

/* One parsed value. Elements and members are chained through next;
 * strings live NUL-terminated in the parser's pool. */
typedef struct jval {
    uint8_t kind;
    bool is_int;   /* a number without fraction or exponent that fits */
    int32_t next;  /* next element or member of the parent, or -1 */
    int32_t child; /* first element or member, or -1 */
    int32_t count; /* elements or members */
    uint32_t key;  /* pool offset of an object member's key */
    uint32_t str;  /* pool offset of a string's text */
    int64_t ival;  /* the value of an integer */
} jval;

typedef struct jparser {
    const char *begin, *p, *end;
    jval *v;
    int32_t nv, cap;
    /* Decoded strings. A decoded string with its terminator is never
     * longer than its quoted source, so a pool as large as the header
     * plus one byte never overflows. */
    char *pool;
    size_t plen;
    const char *func, *name;
} jparser;

static dng_status jbad(const jparser *j, const char *what)
{
    return dng__error(DNG_ERR_FORMAT, "%s: %s: bad JSON header at byte %td: "
                      "%s", j->func, j->name, j->p - j->begin, what);
}

static void jskip_ws(jparser *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
                             *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

/* Append a value of the given kind; its index goes to *out. */
static dng_status jnew(jparser *j, uint8_t kind, int32_t *out)
{
    jval *v;
    if (j->nv == j->cap) {
        int32_t cap = j->cap ? j->cap * 2 : 64;
        jval *nvv;
        if (j->cap >= ST_MAX_VALUES)
            return jbad(j, "more JSON values than any real header holds");
        if (cap > ST_MAX_VALUES)
            cap = ST_MAX_VALUES;
        nvv = dng__malloc((size_t)cap * sizeof *nvv, j->func);
        if (!nvv)
            return DNG_ERR_OUT_OF_MEMORY;
        if (j->nv)
            memcpy(nvv, j->v, (size_t)j->nv * sizeof *nvv);
        dng__free(j->v);
        j->v = nvv;
        j->cap = cap;
    }
    v = &j->v[j->nv];
    memset(v, 0, sizeof *v);
    v->kind = kind;
    v->next = v->child = -1;
    *out = j->nv++;
    return DNG_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits after "\u"; -1 when malformed. */
static int32_t jhex4(jparser *j)
{
    int32_t u = 0;
    if (j->end - j->p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = hexval(j->p[i]);
        if (h < 0)
            return -1;
        u = u * 16 + h;
    }
    j->p += 4;
    return u;
}

static void jput_utf8(jparser *j, uint32_t c)
{
    char *o = j->pool + j->plen;
    if (c < 0x80) {
        o[0] = (char)c;
        j->plen += 1;
    } else if (c < 0x800) {
        o[0] = (char)(0xC0 | c >> 6);
        o[1] = (char)(0x80 | (c & 0x3F));
        j->plen += 2;
    } else if (c < 0x10000) {
        o[0] = (char)(0xE0 | c >> 12);
        o[1] = (char)(0x80 | (c >> 6 & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        j->plen += 3;
    } else {
        o[0] = (char)(0xF0 | c >> 18);
        o[1] = (char)(0x80 | (c >> 12 & 0x3F));
        o[2] = (char)(0x80 | (c >> 6 & 0x3F));
        o[3] = (char)(0x80 | (c & 0x3F));
        j->plen += 4;
    }
}

/* A string at j->p (on its opening quote) decoded into the pool; its
 * pool offset goes to *off. The header's bytes were checked to be UTF-8
 * before parsing, so raw bytes are copied as they are. */
static dng_status jstring(jparser *j, uint32_t *off)
{
    *off = (uint32_t)j->plen;
    j->p++;
    for (;;) {
        unsigned char c;
        if (j->p >= j->end)
            return jbad(j, "unterminated string");
        c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20)
            return jbad(j, "control character inside a string");
        if (c != '\\') {
            j->pool[j->plen++] = (char)c;
            j->p++;
            continue;
        }
        if (++j->p >= j->end)
            return jbad(j, "unterminated escape");
        c = (unsigned char)*j->p++;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            j->pool[j->plen++] = (char)c;
            break;
        case 'b':
            j->pool[j->plen++] = '\b';
            break;
        case 'f':
            j->pool[j->plen++] = '\f';
            break;
        case 'n':
            j->pool[j->plen++] = '\n';
            break;
        case 'r':
            j->pool[j->plen++] = '\r';
            break;
        case 't':
            j->pool[j->plen++] = '\t';
            break;
        case 'u': {
            int32_t u = jhex4(j);
            if (u < 0)
                return jbad(j, "malformed \\u escape");
            if (u >= 0xDC00 && u <= 0xDFFF)
                return jbad(j, "lone low surrogate in a \\u escape");
            if (u >= 0xD800 && u <= 0xDBFF) {
                int32_t lo;
                if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
                    return jbad(j, "high surrogate without its low half");
                j->p += 2;
                lo = jhex4(j);
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return jbad(j, "high surrogate without its low half");
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            }
            /* Names are C strings: an embedded NUL could make two
             * different names compare equal. */
            if (u == 0)
                return jbad(j, "\\u0000 inside a string is not supported");
            jput_utf8(j, (uint32_t)u);
            break;
        }
        default:
            return jbad(j, "unknown escape in a string");
        }
    }
    j->pool[j->plen++] = '\0';
    return DNG_OK;
}

/* A number in JSON's grammar, -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?; only
 * integers that fit int64_t keep their value (is_int). */
static dng_status jnumber(jparser *j, jval *v)
{
    bool neg = false, overflow = false, frac = false;
    uint64_t mag = 0;
    if (*j->p == '-') {
        neg = true;
        j->p++;
    }
    if (j->p >= j->end || *j->p < '0' || *j->p > '9')
        return jbad(j, "malformed number");
    if (*j->p == '0') {
        j->p++;
        if (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            return jbad(j, "number with a leading zero");
    } else {
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            unsigned d = (unsigned)(*j->p++ - '0');
            if (mag > (UINT64_MAX - d) / 10)
                overflow = true;
            else
                mag = mag * 10 + d;
        }
    }
    if (j->p < j->end && *j->p == '.') {
        frac = true;
        j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
            return jbad(j, "malformed fraction");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        frac = true;
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
            return jbad(j, "malformed exponent");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    }
    v->is_int = !frac && !overflow &&
                mag <= (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX);
    if (v->is_int)
        v->ival = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return DNG_OK;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Reject an object that names a member twice (JSON leaves it undefined;
 * the safetensors format forbids it). Small objects are compared pairwise,
 * large ones sorted, so a hostile header costs O(n log n). */
static dng_status jcheck_dups(jparser *j, const jval *obj)
{
    const char **keys;
    int32_t n = obj->count, k = 0;
    const char *dup = NULL;
    if (n < 2)
        return DNG_OK;
    keys = dng__malloc((size_t)n * sizeof *keys, j->func);
    if (!keys)
        return DNG_ERR_OUT_OF_MEMORY;
    for (int32_t m = obj->child; m >= 0; m = j->v[m].next)
        keys[k++] = j->pool + j->v[m].key;
    if (n <= 8) {
        for (int32_t a = 0; a < n && !dup; a++)
            for (int32_t b = a + 1; b < n && !dup; b++)
                if (strcmp(keys[a], keys[b]) == 0)
                    dup = keys[a];
    } else {
        qsort(keys, (size_t)n, sizeof *keys, cmp_cstr);
        for (int32_t a = 1; a < n && !dup; a++)
            if (strcmp(keys[a - 1], keys[a]) == 0)
                dup = keys[a];
    }
    dng__free(keys);
    if (dup)
        return dng__error(DNG_ERR_FORMAT, "%s: %s: the header names \"%.200s\" "
                          "twice", j->func, j->name, dup);
    return DNG_OK;
}

/* Parse one value into *out (its index). */
static dng_status jvalue(jparser *j, int depth, int32_t *out)
{
    dng_status s;
    int32_t me;
    jskip_ws(j);
    if (j->p >= j->end)
        return jbad(j, "unexpected end of the header");
    if (depth > ST_MAX_DEPTH)
        return jbad(j, "values nested too deeply");
    switch (*j->p) {
    case '{':
    case '[': {
        bool obj = *j->p == '{';
        char close = obj ? '}' : ']';
        int32_t last = -1;
        if ((s = jnew(j, obj ? J_OBJ : J_ARR, &me)) != DNG_OK)
            return s;
        j->p++;
        jskip_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            break;
        }
        for (;;) {
            uint32_t key = 0;
            int32_t child;
            jskip_ws(j);
            if (obj) {
                if (j->p >= j->end || *j->p != '"')
                    return jbad(j, "expected a quoted member name");
                if ((s = jstring(j, &key)) != DNG_OK)
                    return s;
                jskip_ws(j);
                if (j->p >= j->end || *j->p != ':')
                    return jbad(j, "expected ':' after a member name");
                j->p++;
            }
            if ((s = jvalue(j, depth + 1, &child)) != DNG_OK)
                return s;
            /* j->v may have moved: index, never hold pointers. */
            j->v[child].key = key;
            if (last < 0)
                j->v[me].child = child;
            else
                j->v[last].next = child;
            last = child;
            j->v[me].count++;
            jskip_ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == close) {
                j->p++;
                break;
            }
            return jbad(j, obj ? "expected ',' or '}' in an object"
                               : "expected ',' or ']' in an array");
        }
        if (obj && (s = jcheck_dups(j, &j->v[me])) != DNG_OK)
            return s;
        break;
    }
    case '"':
        if ((s = jnew(j, J_STR, &me)) != DNG_OK)
            return s;
        if ((s = jstring(j, &j->v[me].str)) != DNG_OK)
            return s;
        break;
    case 't':
    case 'f':
    case 'n': {
        static const char *const words[] = {"true", "false", "null"};
        int w = *j->p == 't' ? 0 : *j->p == 'f' ? 1 : 2;
        size_t len = strlen(words[w]);
        if ((size_t)(j->end - j->p) < len ||
            memcmp(j->p, words[w], len) != 0)
            return jbad(j, "unknown literal");
        if ((s = jnew(j, w == 2 ? J_NULL : J_BOOL, &me)) != DNG_OK)
            return s;
        j->p += len;
        break;
    }
    default:
        if (*j->p != '-' && (*j->p < '0' || *j->p > '9'))
            return jbad(j, "unexpected character");
        if ((s = jnew(j, J_NUM, &me)) != DNG_OK)
            return s;
        if ((s = jnumber(j, &j->v[me])) != DNG_OK)
            return s;
        break;
    }
    *out = me;
    return DNG_OK;
}

/* Length of the valid UTF-8 prefix of s[0..n): n when all of it is. */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return i;
        }
        if (n - i < len)
            return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        /* Overlong forms, surrogates and code points past U+10FFFF. */
        if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return i;
        i += len;
    }
    return n;
}

/* ---- the header's entries ---------------------------------------------- */

typedef struct st_entry {
    const char *name;
    int dtype; /* index into st_dtypes */
    int ndim;  /* may exceed ST_KEEP_DIMS; then shape holds the first */
    int64_t shape[ST_KEEP_DIMS];
    uint64_t begin, end;
    int target; /* index into the network's params then buffers, or -1 */
} st_entry;

/* The member called key of object o, or -1. */
static int32_t jget(const jparser *j, int32_t o, const char *key)
{
    for (int32_t m = j->v[o].child; m >= 0; m = j->v[m].next)
        if (strcmp(j->pool + j->v[m].key, key) == 0)
            return m;
    return -1;
}

/* Check one tensor entry (value index v, named name) and fill e. */
static dng_status read_entry(const jparser *j, int32_t v, const char *name,
                             uint64_t buflen, st_entry *e)
{
    int32_t dt, sh, off, a, b;
    uint64_t numel = 1, bytes;
    const char *f = j->func, *path = j->name;
    memset(e, 0, sizeof *e);
    e->name = name;
    e->target = -1;
    if (j->v[v].kind != J_OBJ)
        return dng__error(DNG_ERR_FORMAT, "%s: %s: entry \"%.200s\" is not "
                          "an object", f, path, name);
    dt = jget(j, v, "dtype");
    sh = jget(j, v, "shape");
    off = jget(j, v, "data_offsets");
    if (dt < 0 || sh < 0 || off < 0)
        return dng__error(DNG_ERR_FORMAT, "%s: %s: entry \"%.200s\" lacks "
                          "\"%s\"", f, path, name,
                          dt < 0 ? "dtype" : sh < 0 ? "shape"
                                                    : "data_offsets");
    if (j->v[v].count != 3)
        return dng__error(DNG_ERR_FORMAT, "%s: %s: entry \"%.200s\" has "
                          "members other than dtype, shape and "
                          "data_offsets", f, path, name);
    if (j->v[dt].kind != J_STR)
        return dng__error(DNG_ERR_FORMAT, "%s: %s: the dtype of \"%.200s\" "
                          "is not a string", f, path, name);
    e->dtype = -1;
    for (int i = 0; i < (int)(sizeof st_dtypes / sizeof *st_dtypes); i++)
        if (strcmp(j->pool + j->v[dt].str, st_dtypes[i].name) == 0)
            e->dtype = i;
    if (e->dtype < 0)
        return dng__error(DNG_ERR_FORMAT, "%s: %s: \"%.200s\" has unknown "
                          "dtype \"%.40s\"", f, path, name,
                          j->pool + j->v[dt].str);
    if (j->v[sh].kind != J_ARR)
        return dng__error(DNG_ERR_FORMAT, "%s: %s: the shape of \"%.200s\" "
                          "is not an array", f, path, name);
    for (int32_t d = j->v[sh].child; d >= 0; d = j->v[d].next) {
        const jval *x = &j->v[d];
        if (x->kind != J_NUM || !x->is_int || x->ival < 0)
            return dng__error(DNG_ERR_FORMAT, "%s: %s: the shape of "
                              "\"%.200s\" holds something other than "
                              "non-negative integers", f, path, name);
        if (e->ndim < ST_KEEP_DIMS)
            e->shape[e->ndim] = x->ival;
        e->ndim++;
        /* The element count must stay below what the buffer could hold;
         * checking against 2^63 first keeps the product from wrapping. */
        if (x->ival != 0 && numel > (UINT64_MAX >> 1) / (uint64_t)x->ival)
            return dng__error(DNG_ERR_FORMAT, "%s: %s: the shape of "
                              "\"%.200s\" overflows", f, path, name);
        numel *= (uint64_t)x->ival;
    }
    if (j->v[off].kind != J_ARR || j->v[off].count != 2)
        return dng__error(DNG_ERR_FORMAT, "%s: %s: the data_offsets of "
                          "\"%.200s\" are not two integers", f, path, name);
    a = j->v[off].child;
    b = j->v[a].next;
    if (j->v[a].kind != J_NUM || !j->v[a].is_int || j->v[a].ival < 0 ||
        j->v[b].kind != J_NUM || !j->v[b].is_int || j->v[b].ival < 0)
        return dng__error(DNG_ERR_FORMAT, "%s: %s: the data_offsets of "
                          "\"%.200s\" are not two non-negative integers", f,
                          path, name);
    e->begin = (uint64_t)j->v[a].ival;
    e->end = (uint64_t)j->v[b].ival;
    if (e->begin > e->end || e->end > buflen)
        return dng__error(DNG_ERR_FORMAT, "%s: %s: \"%.200s\" claims bytes "
                          "[%" PRIu64 ", %" PRIu64 ") of a %" PRIu64
                          "-byte data buffer", f, path, name, e->begin,
                          e->end, buflen);
    bytes = e->end - e->begin;
    if (numel > bytes / (uint64_t)st_dtypes[e->dtype].size ||
        numel * (uint64_t)st_dtypes[e->dtype].size != bytes)
        return dng__error(DNG_ERR_FORMAT, "%s: %s: \"%.200s\" has %" PRIu64
                          " elements of %s but %" PRIu64 " data bytes", f,
                          path, name, numel, st_dtypes[e->dtype].name,
                          bytes);
    return DNG_OK;
}

static int cmp_offsets(const void *pa, const void *pb)
{
    const st_entry *a = *(const st_entry *const *)pa;
    const st_entry *b = *(const st_entry *const *)pb;
    if (a->begin != b->begin)
        return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end)
        return a->end < b->end ? -1 : 1;
    return 0;
}

static int cmp_names(const void *pa, const void *pb)
{
    const st_entry *a = pa, *b = pb;
    return strcmp(a->name, b->name);
}

/* Check that the entries tile the buffer exactly: sorted by offset, each
 * starts where the previous one ended and the last ends at buflen. */
static dng_status check_coverage(const char *f, const char *path,
                                 st_entry *e, int32_t n, uint64_t buflen)
{
    const st_entry **by;
    uint64_t at = 0;
    dng_status s = DNG_OK;
    if (n == 0) {
        if (buflen != 0)
            return dng__error(DNG_ERR_FORMAT, "%s: %s: %" PRIu64 " data "
                              "bytes but no tensor", f, path, buflen);
        return DNG_OK;
    }
    by = dng__malloc((size_t)n * sizeof *by, f);
    if (!by)
        return DNG_ERR_OUT_OF_MEMORY;
    for (int32_t i = 0; i < n; i++)
        by[i] = &e[i];
    qsort(by, (size_t)n, sizeof *by, cmp_offsets);
    for (int32_t i = 0; i < n && s == DNG_OK; i++) {
        if (by[i]->begin < at)
            s = dng__error(DNG_ERR_FORMAT, "%s: %s: tensors \"%.200s\" and "
                           "\"%.200s\" overlap", f, path, by[i - 1]->name,
                           by[i]->name);
        else if (by[i]->begin > at)
            s = dng__error(DNG_ERR_FORMAT, "%s: %s: data bytes [%" PRIu64
                           ", %" PRIu64 ") belong to no tensor", f, path, at,
                           by[i]->begin);
        at = by[i]->end;
    }
    if (s == DNG_OK && at != buflen)
        s = dng__error(DNG_ERR_FORMAT, "%s: %s: data bytes [%" PRIu64 ", %"
                       PRIu64 ") belong to no tensor", f, path, at, buflen);
    dng__free(by);
    return s;
}

/* The network's tensor k: parameters first, then buffers. */
static dng_tensor *net_tensor(const dng_net *net, int k, const char **name)
{
    if (k < net->nparams) {
        *name = net->param_names[k];
        return net->params[k];
    }
    *name = net->buffer_names[k - net->nparams];
    return net->buffers[k - net->nparams];
}

/* Whether name is "<i>.num_batches_tracked" for a layer i of net that
 * keeps running statistics: PyTorch's batch-norm step counter, which the
 * library does not keep. */
static bool is_step_counter(const dng_net *net, const char *name)
{
    static const char suffix[] = ".num_batches_tracked";
    size_t n = strlen(name), k = sizeof suffix - 1;
    if (n <= k || strcmp(name + n - k, suffix) != 0)
        return false;
    for (int b = 0; b < net->nbuffers; b++) {
        const char *bn = net->buffer_names[b];
        const char *dot = strchr(bn, '.');
        if (dot && (size_t)(dot - bn) == n - k &&
            memcmp(bn, name, n - k) == 0 &&
            strcmp(dot, ".running_mean") == 0)
            return true;
    }
    return false;
}

/* Append "name" to a comma-separated list in buf, or count it once the
 * list is full. */
static void list_add(char *buf, size_t cap, int *more, const char *name)
{
    size_t len = strlen(buf);
    int w;
    if (*more) {
        ++*more;
        return;
    }
    w = snprintf(buf + len, cap - len, "%s\"%.100s\"", len ? ", " : "",
                 name);
    if (w < 0 || (size_t)w >= cap - len) {
        buf[len] = '\0';
        *more = 1;
    }
}

static bool host_is_le(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Validate everything, then copy. */
static dng_status load_bytes(dng_net *net, const uint8_t *data, size_t len,
                             const char *path)
{
    static const char f[] = "dng_net_load_safetensors";
    jparser j = {0};
    uint64_t hlen = 0, buflen;
    const uint8_t *buf;
    st_entry *e = NULL;
    int32_t root, n = 0, ntensors;
    size_t valid;
    dng_status s = DNG_OK;
    char list[512] = "";
    int more = 0, nt = net->nparams + net->nbuffers;

    if (len < 8)
        return dng__error(DNG_ERR_FORMAT, "%s: %s: %zu bytes is too short "
                          "for a safetensors file", f, path, len);
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)data[i] << (8 * i);
    if (hlen > ST_MAX_HEADER)
        return dng__error(DNG_ERR_FORMAT, "%s: %s: header length %" PRIu64
                          " exceeds %u bytes", f, path, hlen, ST_MAX_HEADER);
    if (hlen > len - 8)
        return dng__error(DNG_ERR_FORMAT, "%s: %s: header length %" PRIu64
                          " exceeds the %zu bytes after it", f, path, hlen,
                          len - 8);
    buf = data + 8 + hlen;
    buflen = len - 8 - hlen;
    valid = utf8_valid_prefix(data + 8, (size_t)hlen);
    if (valid != hlen)
        return dng__error(DNG_ERR_FORMAT, "%s: %s: the header is not UTF-8 "
                          "(byte %zu)", f, path, valid);

    j.begin = j.p = (const char *)data + 8;
    j.end = j.begin + hlen;
    j.func = f;
    j.name = path;
    j.pool = dng__malloc((size_t)hlen + 1, f);
    if (!j.pool)
        return DNG_ERR_OUT_OF_MEMORY;
    jskip_ws(&j);
    if (j.p >= j.end || *j.p != '{') {
        s = jbad(&j, "the header is not a JSON object");
        goto done;
    }
    if ((s = jvalue(&j, 0, &root)) != DNG_OK)
        goto done;
    jskip_ws(&j);
    if (j.p != j.end) {
        s = jbad(&j, "text after the header's object");
        goto done;
    }

    /* Entries, with the metadata checked and set aside. */
    ntensors = j.v[root].count;
    if (ntensors > 0 &&
        !(e = dng__calloc((size_t)ntensors, sizeof *e, f))) {
        s = DNG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int32_t m = j.v[root].child; m >= 0; m = j.v[m].next) {
        const char *name = j.pool + j.v[m].key;
        if (strcmp(name, "__metadata__") == 0) {
            if (j.v[m].kind != J_OBJ) {
                s = dng__error(DNG_ERR_FORMAT, "%s: %s: __metadata__ is not "
                               "an object", f, path);
                goto done;
            }
            for (int32_t k = j.v[m].child; k >= 0; k = j.v[k].next)
                if (j.v[k].kind != J_STR) {
                    s = dng__error(DNG_ERR_FORMAT, "%s: %s: __metadata__ "
                                   "value \"%.200s\" is not a string", f,
                                   path, j.pool + j.v[k].key);
                    goto done;
                }
            continue;
        }
        if ((s = read_entry(&j, m, name, buflen, &e[n])) != DNG_OK)
            goto done;
        n++;
    }
    if ((s = check_coverage(f, path, e, n, buflen)) != DNG_OK)
        goto done;

    /* Match the network's tensors by name. */
    if (n > 1)
        qsort(e, (size_t)n, sizeof *e, cmp_names);
    for (int k = 0; k < nt; k++) {
        const char *name;
        dng_tensor *t = net_tensor(net, k, &name);
        st_entry key = {.name = name}, *hit;
        char a[160], b[160];
        hit = n ? bsearch(&key, e, (size_t)n, sizeof *e, cmp_names) : NULL;
        if (!hit) {
            list_add(list, sizeof list, &more, name);
            continue;
        }
        hit->target = k;
        if (hit->dtype != ST_F32) {
            s = dng__error(DNG_ERR_FORMAT, "%s: %s: \"%s\" has dtype %s; "
                           "the network needs F32", f, path, name,
                           st_dtypes[hit->dtype].name);
            goto done;
        }
        if (hit->ndim != t->ndim ||
            memcmp(hit->shape, t->shape, (size_t)t->ndim * sizeof *t->shape))
        {
            s = dng__error(DNG_ERR_FORMAT, "%s: %s: \"%s\" has shape %s in "
                           "the file but %s in the network", f, path, name,
                           dng__shape_str(a, sizeof a,
                                          hit->ndim < ST_KEEP_DIMS
                                              ? hit->ndim
                                              : ST_KEEP_DIMS,
                                          hit->shape),
                           dng__shape_str(b, sizeof b, t->ndim, t->shape));
            goto done;
        }
    }
    if (list[0]) {
        s = dng__error(DNG_ERR_FORMAT, "%s: %s: the file lacks %s%s", f,
                       path, list, more ? " and more" : "");
        goto done;
    }
    for (int32_t i = 0; i < n; i++) {
        if (e[i].target >= 0)
            continue;
        /* PyTorch's batch-norm step counter has no counterpart here. */
        if (e[i].dtype == ST_I64 && e[i].end - e[i].begin == 8 &&
            is_step_counter(net, e[i].name))
            continue;
        list_add(list, sizeof list, &more, e[i].name);
    }
    if (list[0]) {
        s = dng__error(DNG_ERR_FORMAT, "%s: %s: unknown tensors %s%s (the "
                       "network has no such parameter or buffer)", f, path,
                       list, more ? " and more" : "");
        goto done;
    }

    /* Every check passed: only now is the network written. */
    for (int32_t i = 0; i < n; i++) {
        const char *name;
        dng_tensor *t;
        if (e[i].target < 0)
            continue;
        t = net_tensor(net, e[i].target, &name);
        memcpy(t->data, buf + e[i].begin, (size_t)t->numel * 4);
        if (!host_is_le()) {
            uint8_t *p = (uint8_t *)t->data;
            for (int64_t q = 0; q < t->numel; q++, p += 4) {
                uint8_t x0 = p[0], x1 = p[1];
                p[0] = p[3];
                p[1] = p[2];
                p[2] = x1;
                p[3] = x0;
            }
        }
    }
done:
    dng__free(e);
    dng__free(j.v);
    dng__free(j.pool);
    return s;
}

dng_status dng__net_load_safetensors_bytes(dng_net *net, const uint8_t *data,
                                           size_t len, const char *name)
{
    DNG__CHECK_NULL(net, "dng_net_load_safetensors");
    DNG__CHECK_NULL(data, "dng_net_load_safetensors");
    return load_bytes(net, data, len, name ? name : "(memory)");
}

DNG_API dng_status dng_net_load_safetensors(dng_net *net, const char *path)
{
    uint8_t *data;
    size_t len;
    dng_status s;
    DNG__CHECK_NULL(net, "dng_net_load_safetensors");
    DNG__CHECK_NULL(path, "dng_net_load_safetensors");
    s = dng__read_file("dng_net_load_safetensors", path, SIZE_MAX, &data,
                       &len);
    if (s != DNG_OK)
        return s;
    s = load_bytes(net, data, len, path);
    dng__free(data);
    return s;
}

/* ---- writing ----------------------------------------------------------- */

/* A JSON string literal; names are ASCII in practice, but quotes,
 * backslashes and control characters are escaped all the same. */
static void w_json_str(dng__wbuf *w, const char *s)
{
    dng__w_u8(w, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            dng__w_u8(w, '\\');
            dng__w_u8(w, c);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            dng__w_bytes(w, esc, 6);
        } else {
            dng__w_u8(w, c);
        }
    }
    dng__w_u8(w, '"');
}

static void w_text(dng__wbuf *w, const char *s)
{
    dng__w_bytes(w, s, strlen(s));
}

/* The order of PyTorch's state_dict for an nn.Sequential: layer by layer,
 * each layer's parameters in registration order, then its buffers. The
 * library's flat tables hold the same tensors grouped as all parameters
 * then all buffers, so the two are interleaved here. torch's
 * spectral_norm removes "weight" and registers "weight_orig" after the
 * existing "bias", hence the swap for that kind. */
static int state_order(const dng_net *net, int *order)
{
    int n = 0, p = 0, b = 0;
    for (int i = 0; i < net->nlayers; i++) {
        const dng_layer *l = net->layers[i];
        if (l->ops->kind == DNG__LAYER_SPECTRAL_NORM && l->nparams == 2) {
            order[n++] = p + 1;
            order[n++] = p;
        } else {
            for (int k = 0; k < l->nparams; k++)
                order[n++] = p + k;
        }
        p += l->nparams;
        for (int k = 0; k < l->nbuffers; k++)
            order[n++] = net->nparams + b + k;
        b += l->nbuffers;
    }
    return n;
}

DNG_API dng_status dng_net_save_safetensors(const dng_net *net,
                                            const char *path)
{
    static const char f[] = "dng_net_save_safetensors";
    dng__wbuf head = {0}, swapped = {0};
    int nt, *order = NULL;
    const void **parts = NULL;
    size_t *lens = NULL;
    uint64_t at = 0;
    dng_status s;
    DNG__CHECK_NULL(net, f);
    DNG__CHECK_NULL(path, f);
    nt = net->nparams + net->nbuffers;
    order = dng__calloc((size_t)nt + 1, sizeof *order, f);
    parts = dng__calloc((size_t)nt + 2, sizeof *parts, f);
    lens = dng__calloc((size_t)nt + 2, sizeof *lens, f);
    if (!order || !parts || !lens) {
        s = DNG_ERR_OUT_OF_MEMORY;
        goto done;
    }
    if (state_order(net, order) != nt) {
        s = dng__error(DNG_ERR_STATE, "%s: the network's tensor tables do "
                       "not match its layers", f);
        goto done;
    }

    /* The 8 length bytes are reserved first and filled in at the end. */
    dng__w_u64(&head, 0);
    w_text(&head, "{\"__metadata__\":{\"format\":\"pt\",\"producer\":"
                  "\"libdnngen ");
    w_text(&head, dng_version_string());
    w_text(&head, "\"}");
    for (int i = 0; i < nt; i++) {
        const char *name;
        const dng_tensor *t = net_tensor(net, order[i], &name);
        char num[48];
        uint64_t bytes = (uint64_t)t->numel * 4;
        dng__w_u8(&head, ',');
        w_json_str(&head, name);
        w_text(&head, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(num, sizeof num, "%s%" PRId64, d ? "," : "",
                     t->shape[d]);
            w_text(&head, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64
                 "]}", at, at + bytes);
        w_text(&head, num);
        at += bytes;
        parts[i + 1] = t->data;
        lens[i + 1] = (size_t)bytes;
    }
    dng__w_u8(&head, '}');
    /* Spaces pad the header so that the data buffer starts 8-byte
     * aligned, as the reference writer does. */
    while (!head.failed && head.len % 8 != 0)
        dng__w_u8(&head, ' ');
    if (head.failed) {
        s = dng__error(DNG_ERR_OUT_OF_MEMORY, "%s: cannot build the header",
                       f);
        goto done;
    }
    for (int i = 0; i < 8; i++)
        head.data[i] = (uint8_t)((uint64_t)(head.len - 8) >> (8 * i));
    parts[0] = head.data;
    lens[0] = head.len;
    if (!host_is_le()) {
        /* The file is little-endian: swap every float into one buffer. */
        for (int i = 0; i < nt; i++)
            dng__w_f32s(&swapped, parts[i + 1], lens[i + 1] / 4);
        if (swapped.failed) {
            s = dng__error(DNG_ERR_OUT_OF_MEMORY, "%s: cannot buffer the "
                           "weights", f);
            goto done;
        }
        parts[1] = swapped.data;
        lens[1] = swapped.len;
        nt = 1;
    }
    s = dng__write_file_atomic_parts(f, path, nt + 1,
                                     (const void *const *)parts, lens);
done:
    dng__wbuf_free(&head);
    dng__wbuf_free(&swapped);
    dng__free(order);
    dng__free(parts);
    dng__free(lens);
    return s;
}
