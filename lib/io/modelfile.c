/* modelfile.c: the model file (dng_net_save / dng_net_load) and the
 * network (de)serialisation that the GAN checkpoint reuses. The byte
 * layout is specified in doc/file-format.md; keep the two in step.
 *
 * Reading treats the file as hostile: every count and length is checked
 * against the bytes that remain before anything is allocated, and the
 * architecture is rebuilt through the public constructors, so a file can
 * only ever describe a network that the API could have built. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "modelfile-impl.h"

static const char model_magic[8] = {'D', 'N', 'G', 'M', 'O', 'D', 'E', 'L'};

/* Bounds that no real network reaches; they keep a corrupt count from
 * turning into a long loop or a large allocation. Building a network
 * costs time quadratic in its layer count (dng_net_add rebuilds the
 * parameter tables), which this bound also keeps to seconds. */
#define DNG__MAX_LAYERS 65536
#define DNG__MAX_NAME 255
/* A spectral-norm wrapper holds one inner layer, which holds none. */
#define DNG__MAX_NEST 1
/* Smallest encoded layer record: kind, niargs, nfargs, inner flag. */
#define DNG__MIN_LAYER_BYTES 13
/* Smallest encoded state entry: name length, ndim, one dimension. */
#define DNG__MIN_ENTRY_BYTES 16

/* ---- layers from recorded arguments ---------------------------------- */

static bool int_range(int64_t v)
{
    return v >= INT_MIN && v <= INT_MAX;
}

/* Check a recorded argument count; on mismatch record why. */
static bool arg_counts(const char *name, int niargs, int nfargs, int want_i,
                       int want_f)
{
    if (niargs == want_i && nfargs == want_f)
        return true;
    dng__error(DNG_ERR_FORMAT, "a %s layer has %d integer and %d float "
               "arguments; expected %d and %d", name, niargs, nfargs, want_i,
               want_f);
    return false;
}

static bool args_in_int_range(const char *name, int n, const int64_t *a)
{
    for (int i = 0; i < n; i++)
        if (!int_range(a[i])) {
            dng__error(DNG_ERR_FORMAT, "a %s layer's argument %d (%" PRId64
                       ") does not fit an int", name, i, a[i]);
            return false;
        }
    return true;
}

/* Takes ownership of inner in every case (spectral norm's constructor
 * does too), so a failed call leaks nothing. Errors are DNG_ERR_FORMAT:
 * the arguments come from a file. */
dng_layer *dng__layer_from_args(dng__layer_kind kind, int niargs,
                                const int64_t *iargs, int nfargs,
                                const float *fargs, dng_layer *inner)
{
    dng_layer *l = NULL;
    if (niargs < 0 || niargs > DNG__MAX_ARGS || nfargs < 0 ||
        nfargs > DNG__MAX_ARGS) {
        dng__layer_free(inner);
        dng__error(DNG_ERR_FORMAT, "argument counts %d and %d are outside "
                   "0..%d", niargs, nfargs, DNG__MAX_ARGS);
        return NULL;
    }
    if (inner && kind != DNG__LAYER_SPECTRAL_NORM) {
        dng__layer_free(inner);
        dng__error(DNG_ERR_FORMAT, "layer kind %d cannot wrap another "
                   "layer", (int)kind);
        return NULL;
    }
    switch (kind) {
    case DNG__LAYER_DENSE:
        if (arg_counts("dense", niargs, nfargs, 2, 0))
            l = dng_dense(iargs[0], iargs[1]);
        break;
    case DNG__LAYER_CONV2D:
        if (arg_counts("conv2d", niargs, nfargs, 6, 0) &&
            args_in_int_range("conv2d", 6, iargs))
            l = dng_conv2d(iargs[0], iargs[1], (int)iargs[2], (int)iargs[3],
                           (int)iargs[4], (int)iargs[5]);
        break;
    case DNG__LAYER_CONV2D_TRANSPOSE:
        if (arg_counts("conv2d_transpose", niargs, nfargs, 6, 0) &&
            args_in_int_range("conv2d_transpose", 6, iargs))
            l = dng_conv2d_transpose(iargs[0], iargs[1], (int)iargs[2],
                                     (int)iargs[3], (int)iargs[4],
                                     (int)iargs[5]);
        break;
    case DNG__LAYER_MAXPOOL2D:
        if (arg_counts("maxpool2d", niargs, nfargs, 2, 0) &&
            args_in_int_range("maxpool2d", 2, iargs))
            l = dng_maxpool2d((int)iargs[0], (int)iargs[1]);
        break;
    case DNG__LAYER_AVGPOOL2D:
        if (arg_counts("avgpool2d", niargs, nfargs, 2, 0) &&
            args_in_int_range("avgpool2d", 2, iargs))
            l = dng_avgpool2d((int)iargs[0], (int)iargs[1]);
        break;
    case DNG__LAYER_BATCHNORM:
        if (arg_counts("batchnorm", niargs, nfargs, 1, 0))
            l = dng_batchnorm(iargs[0]);
        break;
    case DNG__LAYER_LAYERNORM:
        if (arg_counts("layernorm", niargs, nfargs, 1, 0))
            l = dng_layernorm(iargs[0]);
        break;
    case DNG__LAYER_DROPOUT:
        if (arg_counts("dropout", niargs, nfargs, 0, 1))
            l = dng_dropout(fargs[0]);
        break;
    case DNG__LAYER_ACTIVATION:
        if (arg_counts("activation", niargs, nfargs, 1, 1) &&
            args_in_int_range("activation", 1, iargs))
            l = dng_activation((dng_act)iargs[0], fargs[0]);
        break;
    case DNG__LAYER_RESHAPE:
        if (niargs < 1 || iargs[0] != niargs - 1)
            dng__error(DNG_ERR_FORMAT, "a reshape layer has %d integer "
                       "arguments but announces %" PRId64 " dimensions",
                       niargs, niargs ? iargs[0] : 0);
        else if (arg_counts("reshape", niargs, nfargs, niargs, 0))
            l = dng_reshape(niargs - 1, iargs + 1);
        break;
    case DNG__LAYER_FLATTEN:
        if (arg_counts("flatten", niargs, nfargs, 0, 0))
            l = dng_flatten();
        break;
    case DNG__LAYER_SPECTRAL_NORM:
        if (!inner) {
            dng__error(DNG_ERR_FORMAT, "a spectral_norm layer without an "
                       "inner layer");
            return NULL;
        }
        if (!arg_counts("spectral_norm", niargs, nfargs, 0, 0)) {
            dng__layer_free(inner);
            return NULL;
        }
        /* Takes ownership of inner, also when it fails. */
        return dng_spectral_norm(inner);
    default:
        dng__layer_free(inner);
        dng__error(DNG_ERR_FORMAT, "unknown layer kind %d", (int)kind);
        return NULL;
    }
    return l;
}

/* A lower bound on the floats a layer built from these arguments stores
 * as parameters (its weight), which the file must then also hold: a
 * record claiming a huge layer is refused before its constructor
 * allocates. Arguments are not validated here (the constructors do
 * that); *count is 0 when they are nonsense. False on overflow. */
static bool weight_floats(uint32_t kind, int niargs, const int64_t *a,
                          int64_t *count)
{
    int64_t n = 1;
    int use = 0;
    *count = 0;
    switch (kind) {
    case DNG__LAYER_DENSE:
        use = niargs == 2 ? 2 : 0;
        break;
    case DNG__LAYER_CONV2D:
    case DNG__LAYER_CONV2D_TRANSPOSE:
        use = niargs == 6 ? 4 : 0; /* in_ch, out_ch, kh, kw */
        break;
    case DNG__LAYER_BATCHNORM:
    case DNG__LAYER_LAYERNORM:
        use = niargs == 1 ? 1 : 0;
        break;
    default: /* no parameters, or (spectral norm) its inner layer's */
        return true;
    }
    for (int i = 0; i < use; i++) {
        if (a[i] < 1)
            return true;
        if (dng__mul_overflow_i64(n, a[i], &n))
            return false;
    }
    *count = use ? n : 0;
    return true;
}

/* ---- architecture records -------------------------------------------- */

typedef struct layer_rec {
    uint32_t kind;
    int niargs, nfargs;
    int64_t iargs[DNG__MAX_ARGS];
    float fargs[DNG__MAX_ARGS];
    bool has_inner;
} layer_rec;

static void write_layer(dng__wbuf *w, const dng_layer *l)
{
    dng__w_u32(w, (uint32_t)l->ops->kind);
    dng__w_u32(w, (uint32_t)l->niargs);
    for (int i = 0; i < l->niargs; i++)
        dng__w_i64(w, l->iargs[i]);
    dng__w_u32(w, (uint32_t)l->nfargs);
    for (int i = 0; i < l->nfargs; i++)
        dng__w_f32(w, l->fargs[i]);
    dng__w_u8(w, l->inner ? 1 : 0);
    if (l->inner)
        write_layer(w, l->inner);
}

/* Read one record header (not its inner record). */
static dng_status read_rec(dng__rbuf *r, layer_rec *rec)
{
    uint32_t ni, nf;
    uint8_t inner;
    dng__r_u32(r, &rec->kind);
    if (!dng__r_u32(r, &ni))
        return dng__error(DNG_ERR_FORMAT, "truncated layer record");
    if (ni > DNG__MAX_ARGS)
        return dng__error(DNG_ERR_FORMAT, "%" PRIu32 " integer arguments "
                          "(at most %d)", ni, DNG__MAX_ARGS);
    for (uint32_t i = 0; i < ni; i++)
        dng__r_i64(r, &rec->iargs[i]);
    if (!dng__r_u32(r, &nf))
        return dng__error(DNG_ERR_FORMAT, "truncated layer record");
    if (nf > DNG__MAX_ARGS)
        return dng__error(DNG_ERR_FORMAT, "%" PRIu32 " float arguments (at "
                          "most %d)", nf, DNG__MAX_ARGS);
    for (uint32_t i = 0; i < nf; i++)
        dng__r_f32(r, &rec->fargs[i]);
    if (!dng__r_u8(r, &inner))
        return dng__error(DNG_ERR_FORMAT, "truncated layer record");
    if (inner > 1)
        return dng__error(DNG_ERR_FORMAT, "inner-layer flag %u is not 0 or "
                          "1", inner);
    rec->niargs = (int)ni;
    rec->nfargs = (int)nf;
    rec->has_inner = inner == 1;
    return DNG_OK;
}

/* Walk one record and its inner records without building anything,
 * adding the weight floats it implies to *weights. */
static dng_status skip_layer(dng__rbuf *r, int depth, int64_t *weights)
{
    layer_rec rec;
    int64_t n;
    dng_status s = read_rec(r, &rec);
    if (s != DNG_OK)
        return s;
    if (!weight_floats(rec.kind, rec.niargs, rec.iargs, &n) ||
        n > INT64_MAX - *weights)
        return dng__error(DNG_ERR_FORMAT, "a layer's arguments overflow");
    *weights += n;
    if (rec.has_inner) {
        if (depth >= DNG__MAX_NEST)
            return dng__error(DNG_ERR_FORMAT, "layers nested more than %d "
                              "deep", DNG__MAX_NEST);
        return skip_layer(r, depth + 1, weights);
    }
    return DNG_OK;
}

/* Build one layer from its record (and inner record). */
static dng_layer *build_layer(dng__rbuf *r, int depth)
{
    layer_rec rec;
    dng_layer *inner = NULL, *l;
    if (read_rec(r, &rec) != DNG_OK)
        return NULL;
    if (rec.has_inner) {
        if (depth >= DNG__MAX_NEST) {
            dng__error(DNG_ERR_FORMAT, "layers nested more than %d deep",
                       DNG__MAX_NEST);
            return NULL;
        }
        if (!(inner = build_layer(r, depth + 1)))
            return NULL;
    }
    l = dng__layer_from_args((dng__layer_kind)rec.kind, rec.niargs,
                             rec.iargs, rec.nfargs, rec.fargs, inner);
    if (!l)
        return NULL;
    /* The constructor must record exactly what the file says, or saving
     * the loaded network would not give back the same file. */
    if (l->niargs != rec.niargs || l->nfargs != rec.nfargs ||
        (l->inner != NULL) != rec.has_inner ||
        memcmp(l->iargs, rec.iargs, (size_t)rec.niargs * sizeof(int64_t)) ||
        memcmp(l->fargs, rec.fargs, (size_t)rec.nfargs * sizeof(float))) {
        dng__error(DNG_ERR_FORMAT, "the %s layer's arguments do not "
                   "round-trip through its constructor", l->ops->name);
        dng__layer_free(l);
        return NULL;
    }
    return l;
}

/* ---- state ------------------------------------------------------------- */

static void write_entry(dng__wbuf *w, const char *name, const dng_tensor *t)
{
    dng__w_str(w, name);
    dng__w_u32(w, (uint32_t)t->ndim);
    for (int i = 0; i < t->ndim; i++)
        dng__w_i64(w, t->shape[i]);
    dng__w_f32s(w, t->data, (size_t)t->numel);
}

dng_status dng__net_write_state(dng__wbuf *w, const dng_net *net)
{
    dng__w_u32(w, (uint32_t)net->nparams);
    for (int i = 0; i < net->nparams; i++)
        write_entry(w, net->param_names[i], net->params[i]);
    dng__w_u32(w, (uint32_t)net->nbuffers);
    for (int i = 0; i < net->nbuffers; i++)
        write_entry(w, net->buffer_names[i], net->buffers[i]);
    if (w->failed)
        return dng__error(DNG_ERR_OUT_OF_MEMORY, "cannot grow the output "
                          "buffer for the network's state");
    return DNG_OK;
}

/* Read an entry's name and shape, and check that its data is present. */
static dng_status read_entry_head(dng__rbuf *r, char *name, int *ndim,
                                  int64_t *shape, int64_t *numel)
{
    uint32_t nd;
    int64_t n = 1;
    if (!dng__r_str(r, name, DNG__MAX_NAME + 1))
        return dng__error(DNG_ERR_FORMAT, "a tensor name is truncated, "
                          "longer than %d bytes or holds a NUL",
                          DNG__MAX_NAME);
    if (!dng__r_u32(r, &nd))
        return dng__error(DNG_ERR_FORMAT, "truncated at tensor %s", name);
    if (nd < 1 || nd > DNG_MAX_DIMS)
        return dng__error(DNG_ERR_FORMAT, "tensor %s has %" PRIu32
                          " dimensions (1..%d)", name, nd, DNG_MAX_DIMS);
    for (uint32_t i = 0; i < nd; i++) {
        if (!dng__r_i64(r, &shape[i]))
            return dng__error(DNG_ERR_FORMAT, "truncated at tensor %s",
                              name);
        if (shape[i] < 1 || dng__mul_overflow_i64(n, shape[i], &n) ||
            n > INT64_MAX / 4)
            return dng__error(DNG_ERR_FORMAT, "tensor %s has an invalid "
                              "shape (dimension %u is %" PRId64 ")", name,
                              (unsigned)i, shape[i]);
    }
    if ((uint64_t)n > dng__r_left(r) / 4)
        return dng__error(DNG_ERR_FORMAT, "tensor %s needs %" PRId64 " data "
                          "bytes, %zu are left", name, n * 4,
                          dng__r_left(r));
    *ndim = (int)nd;
    *numel = n;
    return DNG_OK;
}

/* Walk a state record without a network: its structure only. Adds the
 * float count to *floats. */
static dng_status scan_state(dng__rbuf *r, int64_t *floats)
{
    for (int part = 0; part < 2; part++) {
        uint32_t count;
        if (!dng__r_u32(r, &count))
            return dng__error(DNG_ERR_FORMAT, "truncated before the %s "
                              "count", part ? "buffer" : "parameter");
        if (count > dng__r_left(r) / DNG__MIN_ENTRY_BYTES)
            return dng__error(DNG_ERR_FORMAT, "%" PRIu32 " %s cannot fit in "
                              "the %zu bytes left", count,
                              part ? "buffers" : "parameters",
                              dng__r_left(r));
        for (uint32_t i = 0; i < count; i++) {
            char name[DNG__MAX_NAME + 1];
            int64_t shape[DNG_MAX_DIMS], n;
            int nd;
            dng_status s = read_entry_head(r, name, &nd, shape, &n);
            if (s != DNG_OK)
                return s;
            r->pos += (size_t)n * 4;
            *floats += n;
        }
    }
    return DNG_OK;
}

/* One pass over a state record against net; copies data when apply. */
static dng_status state_pass(dng__rbuf *r, dng_net *net, bool apply)
{
    for (int part = 0; part < 2; part++) {
        const char *what = part ? "buffer" : "parameter";
        int want = part ? net->nbuffers : net->nparams;
        dng_tensor **ts = part ? net->buffers : net->params;
        char **names = part ? net->buffer_names : net->param_names;
        uint32_t count;
        if (!dng__r_u32(r, &count))
            return dng__error(DNG_ERR_FORMAT, "truncated before the %s "
                              "count", what);
        if (count != (uint32_t)want)
            return dng__error(DNG_ERR_FORMAT, "the file has %" PRIu32 " %ss, "
                              "the network %d", count, what, want);
        for (int i = 0; i < want; i++) {
            char name[DNG__MAX_NAME + 1], a[160], b[160];
            int64_t shape[DNG_MAX_DIMS], n;
            int nd;
            dng_tensor *t = ts[i];
            dng_status s = read_entry_head(r, name, &nd, shape, &n);
            if (s != DNG_OK)
                return s;
            if (strcmp(name, names[i]) != 0)
                return dng__error(DNG_ERR_FORMAT, "%s %d is \"%s\" in the "
                                  "file but \"%s\" in the network", what, i,
                                  name, names[i]);
            if (nd != t->ndim ||
                memcmp(shape, t->shape, (size_t)nd * sizeof *shape) != 0)
                return dng__error(DNG_ERR_FORMAT, "%s %s has shape %s in the "
                                  "file but %s in the network", what, name,
                                  dng__shape_str(a, sizeof a, nd, shape),
                                  dng__shape_str(b, sizeof b, t->ndim,
                                                 t->shape));
            if (apply)
                dng__r_f32s(r, t->data, (size_t)n);
            else
                r->pos += (size_t)n * 4;
        }
    }
    return DNG_OK;
}

dng_status dng__net_read_state(dng__rbuf *r, dng_net *net, bool apply,
                               const char *func)
{
    dng__rbuf probe = *r;
    dng_status s;
    DNG__CHECK_NULL(net, func);
    /* Validate the whole record before touching the network. */
    if ((s = state_pass(&probe, net, false)) != DNG_OK)
        return dng__error_prefix(s, "%s", func);
    if (apply && (s = state_pass(r, net, true)) != DNG_OK)
        return dng__error_prefix(s, "%s", func);
    *r = probe;
    return DNG_OK;
}

/* ---- whole networks ---------------------------------------------------- */

dng_status dng__net_serialize(dng__wbuf *w, const dng_net *net)
{
    if (net->nlayers > DNG__MAX_LAYERS)
        return dng__error(DNG_ERR_UNSUPPORTED, "the network has %d layers; "
                          "model files hold at most %d", net->nlayers,
                          DNG__MAX_LAYERS);
    dng__w_u32(w, (uint32_t)net->in_ndim);
    for (int i = 0; i < net->in_ndim; i++)
        dng__w_i64(w, net->in_shape[i]);
    dng__w_u32(w, (uint32_t)net->nlayers);
    for (int i = 0; i < net->nlayers; i++)
        write_layer(w, net->layers[i]);
    return dng__net_write_state(w, net);
}

dng_net *dng__net_deserialize(dng__rbuf *r, const char *func)
{
    uint32_t ndim, nlayers;
    int64_t shape[DNG_MAX_DIMS], weights = 0, floats = 0, numel = 1;
    dng__rbuf scan;
    dng_net *net;
    dng_status s;
    if (!dng__r_u32(r, &ndim)) {
        dng__error(DNG_ERR_FORMAT, "%s: truncated before the input shape",
                   func);
        return NULL;
    }
    if (ndim < 1 || ndim >= DNG_MAX_DIMS) {
        dng__error(DNG_ERR_FORMAT, "%s: the input has %" PRIu32
                   " dimensions (1..%d)", func, ndim, DNG_MAX_DIMS - 1);
        return NULL;
    }
    for (uint32_t i = 0; i < ndim; i++) {
        dng__r_i64(r, &shape[i]);
        if (shape[i] < 1 || dng__mul_overflow_i64(numel, shape[i], &numel) ||
            numel > INT64_MAX / 4) {
            dng__error(DNG_ERR_FORMAT, "%s: the input shape is invalid "
                       "(dimension %u is %" PRId64 ")", func, (unsigned)i,
                       shape[i]);
            return NULL;
        }
    }
    if (!dng__r_u32(r, &nlayers)) {
        dng__error(DNG_ERR_FORMAT, "%s: truncated before the layer count",
                   func);
        return NULL;
    }
    if (nlayers > DNG__MAX_LAYERS ||
        nlayers > dng__r_left(r) / DNG__MIN_LAYER_BYTES) {
        dng__error(DNG_ERR_FORMAT, "%s: %" PRIu32 " layers cannot fit in the "
                   "%zu bytes left", func, nlayers, dng__r_left(r));
        return NULL;
    }
    /* First pass, building nothing: walk the layer records and the state
     * record, and check that the weights the layers imply are really in
     * the file before any constructor allocates them. */
    scan = *r;
    for (uint32_t i = 0; i < nlayers; i++)
        if (skip_layer(&scan, 0, &weights) != DNG_OK) {
            dng__error_prefix(DNG_ERR_FORMAT, "%s: layer %u", func,
                              (unsigned)i);
            return NULL;
        }
    if (scan_state(&scan, &floats) != DNG_OK) {
        dng__error_prefix(DNG_ERR_FORMAT, "%s", func);
        return NULL;
    }
    if (weights > floats) {
        dng__error(DNG_ERR_FORMAT, "%s: the layers need at least %" PRId64
                   " weights but the file stores %" PRId64, func, weights,
                   floats);
        return NULL;
    }
    /* Second pass: build. */
    if (!(net = dng_net_create((int)ndim, shape))) {
        dng__error_prefix(DNG_ERR_FORMAT, "%s", func);
        return NULL;
    }
    for (uint32_t i = 0; i < nlayers; i++) {
        dng_layer *l = build_layer(r, 0);
        if (!l) {
            dng__error_prefix(DNG_ERR_FORMAT, "%s: layer %u", func,
                              (unsigned)i);
            dng_net_destroy(net);
            return NULL;
        }
        if ((s = dng_net_add(net, l)) != DNG_OK) {
            dng__error_prefix(s, "%s", func);
            dng_net_destroy(net);
            return NULL;
        }
    }
    if (dng__net_read_state(r, net, true, func) != DNG_OK) {
        dng_net_destroy(net);
        return NULL;
    }
    return net;
}

/* ---- files ------------------------------------------------------------- */

dng_status dng__file_save(const char *func, const char *path,
                          const char magic[8], uint32_t version,
                          const dng__wbuf *payload)
{
    uint8_t head[12], tail[4];
    const void *parts[3] = {head, payload->data, tail};
    size_t lens[3] = {sizeof head, payload->len, sizeof tail};
    uint32_t crc;
    if (payload->failed)
        return dng__error(DNG_ERR_OUT_OF_MEMORY, "%s: the file contents "
                          "could not be built in memory", func);
    /* Written in three pieces so that a large payload is never copied. */
    memcpy(head, magic, 8);
    for (int i = 0; i < 4; i++)
        head[8 + i] = (uint8_t)(version >> (8 * i));
    crc = dng__crc32(0, head, sizeof head);
    crc = dng__crc32(crc, payload->data, payload->len);
    for (int i = 0; i < 4; i++)
        tail[i] = (uint8_t)(crc >> (8 * i));
    return dng__write_file_atomic_parts(func, path, 3, parts, lens);
}

dng_status dng__file_check(const char *func, const char *name,
                           const char magic[8], uint32_t max_version,
                           const uint8_t *data, size_t len,
                           dng__rbuf *payload, uint32_t *version)
{
    uint32_t ver, stored, crc;
    dng__rbuf r;
    if (len < 16 || memcmp(data, magic, 8) != 0)
        return dng__error(DNG_ERR_FORMAT, "%s: %s is not a %.8s file (wrong "
                          "magic or too short)", func, name, magic);
    r = (dng__rbuf){.data = data, .len = len, .pos = 8};
    dng__r_u32(&r, &ver);
    /* The version is checked before the CRC: a file from a newer
     * library deserves that message rather than "corrupt". */
    if (ver < 1 || ver > max_version)
        return dng__error(DNG_ERR_FORMAT, "%s: %s has format version %"
                          PRIu32 "; this library reads 1 to %" PRIu32, func,
                          name, ver, max_version);
    r.pos = len - 4;
    dng__r_u32(&r, &stored);
    crc = dng__crc32(0, data, len - 4);
    if (crc != stored)
        return dng__error(DNG_ERR_FORMAT, "%s: %s is corrupt or truncated "
                          "(CRC-32 %08" PRIx32 ", stored %08" PRIx32 ")",
                          func, name, crc, stored);
    *payload = (dng__rbuf){.data = data + 12, .len = len - 16};
    *version = ver;
    return DNG_OK;
}

dng_status dng__file_load(const char *func, const char *path,
                          const char magic[8], uint32_t max_version,
                          uint8_t **data, size_t *len, dng__rbuf *payload,
                          uint32_t *version)
{
    uint8_t *d;
    size_t n;
    dng_status s;
    *data = NULL;
    *len = 0;
    if ((s = dng__read_file(func, path, SIZE_MAX, &d, &n)) != DNG_OK)
        return s;
    s = dng__file_check(func, path, magic, max_version, d, n, payload,
                        version);
    if (s != DNG_OK) {
        dng__free(d);
        return s;
    }
    *data = d;
    *len = n;
    return DNG_OK;
}

DNG_API dng_status dng_net_save(const dng_net *net, const char *path)
{
    dng__wbuf w = {0};
    dng_status s;
    DNG__CHECK_NULL(net, "dng_net_save");
    DNG__CHECK_NULL(path, "dng_net_save");
    dng__w_u32(&w, 0); /* flags: none are defined in version 1 */
    if ((s = dng__net_serialize(&w, net)) == DNG_OK)
        s = dng__file_save("dng_net_save", path, model_magic,
                           DNG__MODEL_VERSION, &w);
    else
        dng__error_prefix(s, "dng_net_save");
    dng__wbuf_free(&w);
    return s;
}

dng_net *dng__net_from_bytes(const uint8_t *data, size_t len,
                             const char *name)
{
    uint32_t version, flags;
    dng__rbuf r;
    dng_net *net;
    char func[64 + 1024];
    if (dng__file_check("dng_net_load", name, model_magic,
                        DNG__MODEL_VERSION, data, len, &r, &version) !=
        DNG_OK)
        return NULL;
    snprintf(func, sizeof func, "dng_net_load: %s", name);
    if (!dng__r_u32(&r, &flags)) {
        dng__error(DNG_ERR_FORMAT, "%s: the file ends before the flags",
                   func);
        return NULL;
    }
    /* Version 1 defines no flag; a set bit means a feature this reader
     * cannot honour. */
    if (flags != 0) {
        dng__error(DNG_ERR_FORMAT, "%s: unknown flags %08" PRIx32, func,
                   flags);
        return NULL;
    }
    net = dng__net_deserialize(&r, func);
    if (net && dng__r_left(&r) != 0) {
        dng__error(DNG_ERR_FORMAT, "%s: %zu unexpected bytes after the "
                   "network", func, dng__r_left(&r));
        dng_net_destroy(net);
        net = NULL;
    }
    return net;
}

DNG_API dng_net *dng_net_load(const char *path)
{
    uint8_t *data;
    size_t len;
    dng_net *net;
    if (!path) {
        dng__error(DNG_ERR_INVALID_ARGUMENT, "dng_net_load: path is NULL");
        return NULL;
    }
    if (dng__read_file("dng_net_load", path, SIZE_MAX, &data, &len) !=
        DNG_OK)
        return NULL;
    net = dng__net_from_bytes(data, len, path);
    dng__free(data);
    return net;
}
