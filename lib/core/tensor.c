/* tensor.c: dense float32 tensors. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core-impl.h"

const char *dng__shape_str(char *buf, size_t len, int ndim,
                           const int64_t *shape)
{
    size_t off = 0;
    if (len == 0)
        return buf;
    buf[0] = '\0';
    off += (size_t)snprintf(buf + off, len - off, "[");
    for (int i = 0; i < ndim && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%" PRId64,
                                i ? ", " : "", shape[i]);
    if (off < len)
        snprintf(buf + off, len - off, "]");
    return buf;
}

dng_status dng__shape_check(const char *func, int ndim, const int64_t *shape,
                            int64_t *numel)
{
    int64_t n = 1;
    if (ndim < 1 || ndim > DNG_MAX_DIMS)
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "%s: ndim = %d is outside 1..%d", func, ndim,
                          DNG_MAX_DIMS);
    if (!shape)
        return dng__error(DNG_ERR_INVALID_ARGUMENT, "%s: shape is NULL",
                          func);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1)
            return dng__error(DNG_ERR_INVALID_ARGUMENT,
                              "%s: shape[%d] = %" PRId64 " is not positive",
                              func, i, shape[i]);
        if (dng__mul_overflow_i64(n, shape[i], &n) ||
            (uint64_t)n > SIZE_MAX / sizeof(float))
            return dng__error(DNG_ERR_INVALID_ARGUMENT,
                              "%s: shape's element count overflows", func);
    }
    if (numel)
        *numel = n;
    return DNG_OK;
}

static dng_tensor *tensor_new(const char *func, int ndim,
                              const int64_t *shape, float *wrap, bool alloc)
{
    int64_t numel;
    dng_tensor *t;
    if (dng__shape_check(func, ndim, shape, &numel) != DNG_OK)
        return NULL;
    t = dng__calloc(1, sizeof *t, func);
    if (!t)
        return NULL;
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->numel = numel;
    if (wrap) {
        t->data = wrap;
        t->wrapped = true;
    } else if (alloc) {
        t->data = dng__calloc((size_t)numel, sizeof(float), func);
        if (!t->data) {
            dng__free(t);
            return NULL;
        }
        t->cap = (size_t)numel;
    }
    return t;
}

DNG_API dng_tensor *dng_tensor_create(int ndim, const int64_t *shape)
{
    return tensor_new("dng_tensor_create", ndim, shape, NULL, true);
}

DNG_API dng_tensor *dng_tensor_from_data(int ndim, const int64_t *shape,
                                         const float *data)
{
    dng_tensor *t;
    if (!data) {
        dng__error(DNG_ERR_INVALID_ARGUMENT,
                   "dng_tensor_from_data: data is NULL");
        return NULL;
    }
    t = tensor_new("dng_tensor_from_data", ndim, shape, NULL, true);
    if (t)
        memcpy(t->data, data, (size_t)t->numel * sizeof(float));
    return t;
}

DNG_API dng_tensor *dng_tensor_wrap(int ndim, const int64_t *shape,
                                    float *data)
{
    if (!data) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_tensor_wrap: data is NULL");
        return NULL;
    }
    return tensor_new("dng_tensor_wrap", ndim, shape, data, false);
}

DNG_API void dng_tensor_destroy(dng_tensor *t)
{
    if (!t)
        return;
    if (!t->wrapped)
        dng__free(t->data);
    dng__free(t);
}

DNG_API int dng_tensor_ndim(const dng_tensor *t)
{
    if (!t) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_tensor_ndim: t is NULL");
        return -1;
    }
    return t->ndim;
}

DNG_API int64_t dng_tensor_dim(const dng_tensor *t, int axis)
{
    if (!t) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_tensor_dim: t is NULL");
        return -1;
    }
    if (axis < -t->ndim || axis >= t->ndim) {
        dng__error(DNG_ERR_INVALID_ARGUMENT,
                   "dng_tensor_dim: axis %d is outside %d..%d", axis,
                   -t->ndim, t->ndim - 1);
        return -1;
    }
    return t->shape[axis < 0 ? axis + t->ndim : axis];
}

DNG_API dng_status dng_tensor_shape(const dng_tensor *t, int64_t *out)
{
    DNG__CHECK_NULL(t, "dng_tensor_shape");
    DNG__CHECK_NULL(out, "dng_tensor_shape");
    memcpy(out, t->shape, (size_t)t->ndim * sizeof *out);
    return DNG_OK;
}

DNG_API int64_t dng_tensor_numel(const dng_tensor *t)
{
    if (!t) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_tensor_numel: t is NULL");
        return -1;
    }
    return t->numel;
}

DNG_API float *dng_tensor_data(dng_tensor *t)
{
    if (!t) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_tensor_data: t is NULL");
        return NULL;
    }
    return t->data;
}

DNG_API dng_status dng_tensor_copy_out(const dng_tensor *t, float *dst,
                                       int64_t n)
{
    DNG__CHECK_NULL(t, "dng_tensor_copy_out");
    DNG__CHECK_NULL(dst, "dng_tensor_copy_out");
    if (n < t->numel)
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_tensor_copy_out: n = %" PRId64
                          " is less than the tensor's %" PRId64 " elements",
                          n, t->numel);
    memcpy(dst, t->data, (size_t)t->numel * sizeof(float));
    return DNG_OK;
}

DNG_API dng_status dng_tensor_copy_in(dng_tensor *t, const float *src,
                                      int64_t n)
{
    DNG__CHECK_NULL(t, "dng_tensor_copy_in");
    DNG__CHECK_NULL(src, "dng_tensor_copy_in");
    if (n != t->numel)
        return dng__error(DNG_ERR_INVALID_ARGUMENT,
                          "dng_tensor_copy_in: n = %" PRId64
                          " differs from the tensor's %" PRId64 " elements",
                          n, t->numel);
    memmove(t->data, src, (size_t)n * sizeof(float));
    return DNG_OK;
}

DNG_API dng_status dng_tensor_fill(dng_tensor *t, float value)
{
    DNG__CHECK_NULL(t, "dng_tensor_fill");
    for (int64_t i = 0; i < t->numel; i++)
        t->data[i] = value;
    return DNG_OK;
}

DNG_API dng_status dng_tensor_fill_uniform(dng_tensor *t, dng_rng *rng,
                                           float lo, float hi)
{
    dng_status s;
    DNG__CHECK_NULL(t, "dng_tensor_fill_uniform");
    DNG__CHECK_NULL(rng, "dng_tensor_fill_uniform");
    s = dng_rng_uniform(rng, t->data, t->numel, lo, hi);
    return s == DNG_OK ? s : dng__error_prefix(s, "dng_tensor_fill_uniform");
}

DNG_API dng_status dng_tensor_fill_normal(dng_tensor *t, dng_rng *rng,
                                          float mean, float std)
{
    dng_status s;
    DNG__CHECK_NULL(t, "dng_tensor_fill_normal");
    DNG__CHECK_NULL(rng, "dng_tensor_fill_normal");
    s = dng_rng_normal(rng, t->data, t->numel, mean, std);
    return s == DNG_OK ? s : dng__error_prefix(s, "dng_tensor_fill_normal");
}

DNG_API dng_status dng_tensor_reshape(dng_tensor *t, int ndim,
                                      const int64_t *shape)
{
    int64_t numel;
    dng_status s;
    char a[128], b[128];
    DNG__CHECK_NULL(t, "dng_tensor_reshape");
    s = dng__shape_check("dng_tensor_reshape", ndim, shape, &numel);
    if (s != DNG_OK)
        return s;
    if (numel != t->numel)
        return dng__error(DNG_ERR_SHAPE,
                          "dng_tensor_reshape: %s has %" PRId64
                          " elements, %s has %" PRId64,
                          dng__shape_str(a, sizeof a, t->ndim, t->shape),
                          t->numel, dng__shape_str(b, sizeof b, ndim, shape),
                          numel);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    return DNG_OK;
}

dng_status dng__tensor_resize(dng_tensor *t, int ndim, const int64_t *shape)
{
    int64_t numel;
    dng_status s = dng__shape_check("dng__tensor_resize", ndim, shape, &numel);
    if (s != DNG_OK)
        return s;
    if ((uint64_t)numel > t->cap) {
        float *d;
        if (t->wrapped)
            return dng__error(DNG_ERR_SHAPE,
                              "a wrapped tensor of %" PRId64
                              " elements cannot grow to %" PRId64,
                              t->numel, numel);
        d = dng__calloc((size_t)numel, sizeof(float), "tensor storage");
        if (!d)
            return DNG_ERR_OUT_OF_MEMORY;
        dng__free(t->data);
        t->data = d;
        t->cap = (size_t)numel;
    }
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->numel = numel;
    return DNG_OK;
}

dng_status dng__tensor_ensure(dng_tensor **t, int64_t n, int sample_ndim,
                              const int64_t *sample_shape)
{
    int64_t shape[DNG_MAX_DIMS];
    if (sample_ndim + 1 > DNG_MAX_DIMS)
        return dng__error(DNG_ERR_SHAPE, "a batch of %d-D samples exceeds "
                          "%d dimensions", sample_ndim, DNG_MAX_DIMS);
    shape[0] = n;
    memcpy(shape + 1, sample_shape, (size_t)sample_ndim * sizeof *shape);
    if (!*t) {
        *t = dng_tensor_create(sample_ndim + 1, shape);
        return *t ? DNG_OK : DNG_ERR_OUT_OF_MEMORY;
    }
    return dng__tensor_resize(*t, sample_ndim + 1, shape);
}

bool dng__same_shape(const dng_tensor *a, const dng_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}
