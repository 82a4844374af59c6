/**
 * @file dnngen.h
 * @brief libdnngen: build, train and run deep neural networks, GANs first.
 *
 * This is the one public header. What it does not declare is not API.
 *
 * Conventions that hold for every function below:
 * - Constructors return a handle, or NULL on failure with the reason in
 *   dng_last_error(). Every other function that can fail returns a
 *   ::dng_status (#DNG_OK is 0, errors are negative).
 * - Destroy functions accept NULL and then do nothing.
 * - The caller owns what a constructor returns, except a layer once added
 *   to a network (the network owns it). Tensors documented as *borrowed*
 *   belong to the handle they came from and stay valid until the next call
 *   that changes that handle (or its destruction).
 * - Different handles may be used from different threads at once; one
 *   handle is used by one thread at a time. dng_last_error() is per thread.
 * - Shapes are int64_t arrays; data is float32, row-major, NCHW.
 * - Nothing is printed unless a function's documentation says so.
 */
#ifndef DNNGEN_H
#define DNNGEN_H

#include <stddef.h>
#include <stdint.h>

#include "dnngen-version.h"

#if defined(_WIN32)
#define DNG_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define DNG_API __attribute__((visibility("default")))
#else
#define DNG_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/** @name Version and errors */
/** @{ */

/**
 * The status table: name, number, description. Numbers never change and
 * are never reused; new codes are added at the end.
 */
#define DNG_STATUS_MAP(X)                                                    \
    X(OK, 0, "success")                                                      \
    X(ERR_INVALID_ARGUMENT, -1, "invalid argument")                          \
    X(ERR_SHAPE, -2, "shape mismatch")                                       \
    X(ERR_OUT_OF_MEMORY, -3, "out of memory")                                \
    X(ERR_IO, -4, "input/output error")                                      \
    X(ERR_FORMAT, -5, "corrupt or unsupported file")                         \
    X(ERR_STATE, -6, "call out of order")                                    \
    X(ERR_NUMERIC, -7, "non-finite value (NaN or infinity)")                 \
    X(ERR_UNSUPPORTED, -8, "unsupported operation")

/**
 * Result of every fallible function: 0 on success, negative on error.
 * The values come from #DNG_STATUS_MAP; each one's description below is
 * the text dng_status_string() gives for it. The detail of a failure
 * (which argument, which layer, which file) is in dng_last_error().
 *
 * | Code                          | Typical cause |
 * |-------------------------------|---------------|
 * | #DNG_ERR_INVALID_ARGUMENT     | NULL handle or pointer, value out of range, unknown enum value |
 * | #DNG_ERR_SHAPE                | tensor or layer shapes that do not fit |
 * | #DNG_ERR_OUT_OF_MEMORY        | an allocation failed |
 * | #DNG_ERR_IO                   | a file could not be opened, read, written or renamed |
 * | #DNG_ERR_FORMAT               | a file is corrupt, truncated or of an unsupported version or type |
 * | #DNG_ERR_STATE                | a call out of order, e.g. backward before forward, or a handle already owned elsewhere |
 * | #DNG_ERR_NUMERIC              | a NaN or infinity in a loss or gradient |
 * | #DNG_ERR_UNSUPPORTED          | a feature not built in (PNG without libpng), a limit of the implementation, or an operation the handle does not offer (e.g. dng_dataset_x() on a memory-mapped dataset) |
 */
typedef enum dng_status {
#define DNG__STATUS_ENUM(name, num, text) DNG_##name = num,
    DNG_STATUS_MAP(DNG__STATUS_ENUM)
#undef DNG__STATUS_ENUM
    DNG__STATUS_FORCE_INT = -0x7fffffff
} dng_status;

/**
 * The library's version as DNG_VERSION encodes it, at run time.
 * Compare with DNG_VERSION to check that the loaded library matches the
 * header a program was built with.
 * @return major * 10000 + minor * 100 + patch.
 * @since 0.1.0
 */
DNG_API int dng_version(void);

/**
 * The library's version as a string such as "0.1.0".
 * @return a static string; never NULL, never freed.
 * @since 0.1.0
 */
DNG_API const char *dng_version_string(void);

/**
 * A short description of a status code.
 * @param status any value; unknown values give "unknown status".
 * @return a static string; never NULL.
 * @since 0.1.0
 */
DNG_API const char *dng_status_string(dng_status status);

/**
 * The message of the last failure on the calling thread.
 * Successful calls do not clear it.
 * @return a thread-local string, valid until the next failing call on this
 *         thread; "" when nothing has failed yet. Never NULL.
 * @since 0.1.0
 */
DNG_API const char *dng_last_error(void);

/**
 * Forget the calling thread's last error message.
 * @since 0.1.0
 */
DNG_API void dng_clear_error(void);

/**
 * Set how many threads BLIS and the library's own loops use, for every
 * call made after this one (a process-wide setting). Results do not
 * depend on the thread count.
 * @param n 1 or more, or 0 for the number of online processors.
 * @return #DNG_OK, or #DNG_ERR_INVALID_ARGUMENT when n is negative or
 *         above 1024.
 * @since 0.1.0
 */
DNG_API dng_status dng_set_num_threads(int n);

/**
 * The thread count in force (see dng_set_num_threads()).
 * @return 1 or more.
 * @since 0.1.0
 */
DNG_API int dng_get_num_threads(void);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Random numbers
 * A counter-based generator, Philox4x32-10 (Salmon et al., SC'11): the
 * seed is the key, a 64-bit counter advances by one block of four 32-bit
 * words. Uniform floats take the top 24 bits of a word; normal floats use
 * Box-Muller on two uniforms. Same seed, same stream, on every host.
 */
/** @{ */

/** A random number generator. Opaque. */
typedef struct dng_rng dng_rng;

/**
 * Create a generator.
 * @param seed any value.
 * @return a new generator (free with dng_rng_destroy()), or NULL when out
 *         of memory.
 * @since 0.1.0
 */
DNG_API dng_rng *dng_rng_create(uint64_t seed);

/**
 * Free a generator. NULL is a no-op.
 * @since 0.1.0
 */
DNG_API void dng_rng_destroy(dng_rng *rng);

/**
 * Fill @p out with @p n floats uniform in [lo, hi).
 * @return #DNG_OK, or #DNG_ERR_INVALID_ARGUMENT (NULL pointer, n < 0,
 *         non-finite or reversed bounds).
 * @since 0.1.0
 */
DNG_API dng_status dng_rng_uniform(dng_rng *rng, float *out, int64_t n,
                                   float lo, float hi);

/**
 * Fill @p out with @p n floats from N(mean, std^2).
 * @return #DNG_OK, or #DNG_ERR_INVALID_ARGUMENT (NULL pointer, n < 0,
 *         non-finite mean, negative or non-finite std).
 * @since 0.1.0
 */
DNG_API dng_status dng_rng_normal(dng_rng *rng, float *out, int64_t n,
                                  float mean, float std);

/**
 * Copy the generator's complete state (key and counter) into
 * @p state[0..3], so that dng_rng_set_state() resumes the same stream.
 * @since 0.1.0
 */
DNG_API dng_status dng_rng_get_state(const dng_rng *rng, uint64_t state[4]);

/**
 * Restore a state obtained from dng_rng_get_state().
 * @since 0.1.0
 */
DNG_API dng_status dng_rng_set_state(dng_rng *rng, const uint64_t state[4]);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Tensors
 * Dense float32 arrays of 1 to #DNG_MAX_DIMS dimensions, row-major.
 */
/** @{ */

/** The largest number of dimensions a tensor may have. */
#define DNG_MAX_DIMS 8

/** A tensor. Opaque. */
typedef struct dng_tensor dng_tensor;

/**
 * Create a tensor filled with zeros.
 * @param ndim 1 to #DNG_MAX_DIMS.
 * @param shape @p ndim sizes, each 1 or more; the element count must fit
 *        in memory (int64_t and size_t).
 * @return a new tensor (free with dng_tensor_destroy()), or NULL.
 * @since 0.1.0
 */
DNG_API dng_tensor *dng_tensor_create(int ndim, const int64_t *shape);

/**
 * Create a tensor holding a copy of @p data (numel floats).
 * @return a new tensor, or NULL.
 * @since 0.1.0
 */
DNG_API dng_tensor *dng_tensor_from_data(int ndim, const int64_t *shape,
                                         const float *data);

/**
 * Create a tensor over the caller's memory, without copying (zero-copy,
 * for numpy buffers). The caller keeps @p data alive and unmoved until the
 * tensor is destroyed; the tensor never frees it.
 * @return a new tensor handle, or NULL.
 * @since 0.1.0
 */
DNG_API dng_tensor *dng_tensor_wrap(int ndim, const int64_t *shape,
                                    float *data);

/**
 * Free a tensor (and its data unless it was wrapped). NULL is a no-op.
 * Tensors borrowed from another handle must not be destroyed.
 * @since 0.1.0
 */
DNG_API void dng_tensor_destroy(dng_tensor *t);

/**
 * Number of dimensions.
 * @return 1 to #DNG_MAX_DIMS, or -1 when @p t is NULL.
 * @since 0.1.0
 */
DNG_API int dng_tensor_ndim(const dng_tensor *t);

/**
 * Size of one dimension.
 * @param t the tensor.
 * @param axis 0 to ndim - 1, or negative to count from the end.
 * @return the size, or -1 on a NULL tensor or an axis out of range.
 * @since 0.1.0
 */
DNG_API int64_t dng_tensor_dim(const dng_tensor *t, int axis);

/**
 * Copy the shape into @p out, which has room for dng_tensor_ndim() values.
 * @since 0.1.0
 */
DNG_API dng_status dng_tensor_shape(const dng_tensor *t, int64_t *out);

/**
 * Number of elements.
 * @return the product of the shape, or -1 when @p t is NULL.
 * @since 0.1.0
 */
DNG_API int64_t dng_tensor_numel(const dng_tensor *t);

/**
 * The tensor's floats, read/write, numel of them in row-major order.
 * @return a pointer valid while the tensor lives and keeps its size, or
 *         NULL when @p t is NULL.
 * @since 0.1.0
 */
DNG_API float *dng_tensor_data(dng_tensor *t);

/**
 * Copy the tensor's floats into @p dst.
 * @param t the tensor.
 * @param dst room for at least numel floats.
 * @param n capacity of @p dst in floats; must be at least numel.
 * @return #DNG_OK, or #DNG_ERR_INVALID_ARGUMENT (NULL pointer, @p n too
 *         small).
 * @since 0.1.0
 */
DNG_API dng_status dng_tensor_copy_out(const dng_tensor *t, float *dst,
                                       int64_t n);

/**
 * Copy @p n floats from @p src into the tensor; @p n must equal numel.
 * @since 0.1.0
 */
DNG_API dng_status dng_tensor_copy_in(dng_tensor *t, const float *src,
                                      int64_t n);

/**
 * Set every element to @p value.
 * @since 0.1.0
 */
DNG_API dng_status dng_tensor_fill(dng_tensor *t, float value);

/**
 * Fill with floats uniform in [lo, hi) drawn from @p rng.
 * @since 0.1.0
 */
DNG_API dng_status dng_tensor_fill_uniform(dng_tensor *t, dng_rng *rng,
                                           float lo, float hi);

/**
 * Fill with floats from N(mean, std^2) drawn from @p rng.
 * @since 0.1.0
 */
DNG_API dng_status dng_tensor_fill_normal(dng_tensor *t, dng_rng *rng,
                                          float mean, float std);

/**
 * Give the tensor a new shape with the same element count (no copy).
 * @return #DNG_ERR_SHAPE when the counts differ.
 * @since 0.1.0
 */
DNG_API dng_status dng_tensor_reshape(dng_tensor *t, int ndim,
                                      const int64_t *shape);

/**
 * Save a tensor as a NumPy .npy file (format 1.0, '<f4', C order). The
 * file is written to a temporary name and renamed into place.
 * @since 0.1.0
 */
DNG_API dng_status dng_tensor_save_npy(const dng_tensor *t, const char *path);

/**
 * Load a float32 C-order NumPy .npy file. Other dtypes and Fortran order
 * are rejected with #DNG_ERR_FORMAT.
 * @return a new tensor, or NULL.
 * @since 0.1.0
 */
DNG_API dng_tensor *dng_tensor_load_npy(const char *path);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Layers
 * Each constructor returns a new layer, or NULL with a message. A layer
 * belongs to the caller until dng_net_add() takes it.
 * Parameter layouts are PyTorch's: dense weight [out, in], conv2d weight
 * [out_ch, in_ch, kh, kw], conv2d-transpose weight [in_ch, out_ch, kh, kw].
 */
/** @{ */

/** A layer. Opaque. */
typedef struct dng_layer dng_layer;

/** Elementwise (and row-wise, for softmax) activation functions. */
typedef enum dng_act {
    DNG_ACT_RELU = 0,       /**< max(0, x) */
    DNG_ACT_LEAKY_RELU = 1, /**< x if x > 0 else param * x */
    DNG_ACT_SIGMOID = 2,    /**< 1 / (1 + exp(-x)) */
    DNG_ACT_TANH = 3,       /**< tanh(x) */
    DNG_ACT_SOFTMAX = 4,    /**< exp(x_i) / sum_j exp(x_j) over features */
    DNG_ACT_GELU = 5,       /**< x * Phi(x), the exact (erf) form */
    DNG_ACT_IDENTITY = 6    /**< x */
} dng_act;

/**
 * Fully connected layer y = x W^T + b on [N, in]; W is [out, in].
 * @since 0.1.0
 */
DNG_API dng_layer *dng_dense(int64_t in_features, int64_t out_features);

/**
 * 2-D convolution on [N, in_ch, H, W] with square stride and zero
 * padding; output [N, out_ch, (H + 2 pad - kh) / stride + 1, ...].
 * @since 0.1.0
 */
DNG_API dng_layer *dng_conv2d(int64_t in_ch, int64_t out_ch, int kh, int kw,
                              int stride, int pad);

/**
 * 2-D transposed convolution (the gradient of conv2d with respect to its
 * input); output H' = (H - 1) stride - 2 pad + kh.
 * @since 0.1.0
 */
DNG_API dng_layer *dng_conv2d_transpose(int64_t in_ch, int64_t out_ch,
                                        int kh, int kw, int stride, int pad);

/**
 * Max pooling over k x k windows (no padding, floor mode).
 * @since 0.1.0
 */
DNG_API dng_layer *dng_maxpool2d(int k, int stride);

/**
 * Average pooling over k x k windows (no padding, floor mode).
 * @since 0.1.0
 */
DNG_API dng_layer *dng_avgpool2d(int k, int stride);

/**
 * Batch normalisation over [N, C] or [N, C, H, W] (eps 1e-5, momentum
 * 0.1, affine). Training mode uses batch statistics and updates the
 * running ones (unbiased variance, as PyTorch); evaluation mode uses the
 * running statistics.
 * @since 0.1.0
 */
DNG_API dng_layer *dng_batchnorm(int64_t channels);

/**
 * Layer normalisation over the last dimension (of size @p features),
 * eps 1e-5, with an elementwise affine weight and bias.
 * @since 0.1.0
 */
DNG_API dng_layer *dng_layernorm(int64_t features);

/**
 * Dropout with drop probability @p p in [0, 1): in training mode each
 * element is zeroed with probability p and the rest scaled by 1 / (1 - p);
 * identity in evaluation mode. The mask comes from the network's own
 * generator (seeded by dng_net_set_seed()).
 * @since 0.1.0
 */
DNG_API dng_layer *dng_dropout(float p);

/**
 * An activation layer.
 * @param kind one of ::dng_act.
 * @param param the negative slope for #DNG_ACT_LEAKY_RELU; ignored
 *        otherwise.
 * @since 0.1.0
 */
DNG_API dng_layer *dng_activation(dng_act kind, float param);

/**
 * Reshape each sample to @p shape (the batch dimension is kept).
 * @since 0.1.0
 */
DNG_API dng_layer *dng_reshape(int ndim, const int64_t *shape);

/**
 * Flatten each sample to one dimension.
 * @since 0.1.0
 */
DNG_API dng_layer *dng_flatten(void);

/**
 * Spectral normalisation (Miyato et al. 2018, PyTorch's
 * torch.nn.utils.spectral_norm): wraps a dense, conv2d or
 * conv2d-transpose layer so that its weight is divided by an estimate of
 * its largest singular value, refined by one power iteration on every
 * training-mode forward. Takes ownership of @p inner, also on failure.
 * Parameters are named "weight_orig" and "bias"; the vectors "weight_u"
 * and "weight_v" are saved state.
 * @since 0.1.0
 */
DNG_API dng_layer *dng_spectral_norm(dng_layer *inner);

/**
 * Free a layer that was never added to a network. NULL is a no-op. A
 * layer owned by a network is left alone (the call only records an error
 * message), so the network stays intact.
 * @since 0.1.0
 */
DNG_API void dng_layer_destroy(dng_layer *layer);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Networks
 * A sequential network. The first dimension of every tensor going in or
 * out is the batch; the rest is the per-sample shape.
 */
/** @{ */

/** A sequential network. Opaque. */
typedef struct dng_net dng_net;

/** Weight initialisation schemes. */
typedef enum dng_init {
    /** Default: weights U(-1/sqrt(fan_in), 1/sqrt(fan_in))-style as
     *  PyTorch's reset_parameters (kaiming_uniform a = sqrt(5)). */
    DNG_INIT_DEFAULT = 0,
    DNG_INIT_XAVIER_UNIFORM = 1, /**< U(-a, a), a = sqrt(6/(fan_in+fan_out)) */
    DNG_INIT_HE_NORMAL = 2,      /**< N(0, 2 / fan_in) */
    DNG_INIT_NORMAL_002 = 3      /**< DCGAN: N(0, 0.02^2), batch-norm
                                      weights N(1, 0.02^2) */
} dng_init;

/**
 * Create an empty network taking samples of @p sample_shape (without the
 * batch dimension).
 * @return a new network (free with dng_net_destroy()), or NULL.
 * @since 0.1.0
 */
DNG_API dng_net *dng_net_create(int ndim, const int64_t *sample_shape);

/**
 * Free a network and every layer it owns. NULL is a no-op.
 * @since 0.1.0
 */
DNG_API void dng_net_destroy(dng_net *net);

/**
 * Append a layer. The network takes ownership of @p layer in every case,
 * destroying it when the call fails, except when the layer already
 * belongs to a network (#DNG_ERR_STATE), where it is left alone. A NULL
 * @p layer (a failed constructor) gives #DNG_ERR_INVALID_ARGUMENT with the
 * constructor's message kept in the text.
 * A new layer is initialised with the default scheme from a seed derived
 * from its index, so a network is usable at once.
 * @return #DNG_ERR_SHAPE with a message naming the layer index and both
 *         shapes when the layer does not fit.
 * @since 0.1.0
 */
DNG_API dng_status dng_net_add(dng_net *net, dng_layer *layer);

/**
 * Re-initialise every parameter with @p scheme from @p rng. Biases become
 * 0, batch/layer-norm weights 1 (N(1, 0.02) for #DNG_INIT_NORMAL_002),
 * running statistics are reset.
 * @since 0.1.0
 */
DNG_API dng_status dng_net_init(dng_net *net, dng_init scheme, dng_rng *rng);

/**
 * Seed the generator that dropout masks are drawn from.
 * @since 0.1.0
 */
DNG_API dng_status dng_net_set_seed(dng_net *net, uint64_t seed);

/**
 * Run the network on a batch @p x of shape [N, sample shape...].
 * @param net the network; used by one thread at a time.
 * @param x the input batch, read only; it may be a wrapped tensor.
 * @param y receives the output, borrowed from the network: valid until the
 *        next forward on it or its destruction.
 * @return #DNG_ERR_SHAPE when @p x does not match the sample shape.
 * @since 0.1.0
 */
DNG_API dng_status dng_net_forward(dng_net *net, const dng_tensor *x,
                                   dng_tensor **y);

/**
 * Backpropagate @p dy (the gradient of the loss with respect to the last
 * forward's output) through the network: parameter gradients are
 * accumulated (added), and if @p dx is not NULL it receives the gradient
 * with respect to the last forward's input, borrowed like the output.
 * @return #DNG_ERR_STATE when no forward preceded this call (or the
 *         network changed since), #DNG_ERR_SHAPE when @p dy does not match
 *         the output.
 * @since 0.1.0
 */
DNG_API dng_status dng_net_backward(dng_net *net, const dng_tensor *dy,
                                    dng_tensor **dx);

/**
 * Set every parameter gradient to zero.
 * @since 0.1.0
 */
DNG_API dng_status dng_net_zero_grad(dng_net *net);

/**
 * Switch between training (non-zero, the default) and evaluation (0)
 * mode: dropout and batch-norm behave accordingly.
 * @since 0.1.0
 */
DNG_API dng_status dng_net_set_training(dng_net *net, int training);

/**
 * Number of layers added so far, or -1 when @p net is NULL.
 * @since 0.1.0
 */
DNG_API int dng_net_num_layers(const dng_net *net);

/**
 * The per-sample output shape (without the batch dimension): writes up to
 * #DNG_MAX_DIMS values into @p shape and the count into @p ndim.
 * @since 0.1.0
 */
DNG_API dng_status dng_net_output_shape(const dng_net *net, int *ndim,
                                        int64_t *shape);

/**
 * Number of parameter tensors, or -1 when @p net is NULL.
 * @since 0.1.0
 */
DNG_API int dng_net_num_params(const dng_net *net);

/**
 * Parameter @p i (0 to dng_net_num_params() - 1), borrowed, read/write, in
 * PyTorch's layout. NULL when out of range.
 * @since 0.1.0
 */
DNG_API dng_tensor *dng_net_param(dng_net *net, int i);

/**
 * Gradient of parameter @p i, borrowed, read/write. NULL when out of range.
 * @since 0.1.0
 */
DNG_API dng_tensor *dng_net_grad(dng_net *net, int i);

/**
 * Name of parameter @p i as PyTorch's nn.Sequential would give it, e.g.
 * "0.weight" (layer indices count every layer, activations included).
 * @return a string owned by the network, or NULL when out of range.
 * @since 0.1.0
 */
DNG_API const char *dng_net_param_name(const dng_net *net, int i);

/**
 * Index of the parameter called @p name, or -1 (with a message) when there
 * is none.
 * @since 0.1.0
 */
DNG_API int dng_net_param_index(const dng_net *net, const char *name);

/**
 * Number of non-trainable state tensors (batch-norm running statistics,
 * spectral-norm vectors), or -1 when @p net is NULL.
 * @since 0.1.0
 */
DNG_API int dng_net_num_buffers(const dng_net *net);

/**
 * State tensor @p i, borrowed, read/write. NULL when out of range.
 * @since 0.1.0
 */
DNG_API dng_tensor *dng_net_buffer(dng_net *net, int i);

/**
 * Name of state tensor @p i, e.g. "1.running_mean". NULL when out of range.
 * @since 0.1.0
 */
DNG_API const char *dng_net_buffer_name(const dng_net *net, int i);

/**
 * Total number of trainable scalars, or -1 when @p net is NULL.
 * @since 0.1.0
 */
DNG_API int64_t dng_net_param_count(const dng_net *net);

/**
 * Write a summary, one line per layer with its output shape and parameter
 * count, into @p buf (always NUL-terminated when @p len > 0).
 * @return #DNG_ERR_INVALID_ARGUMENT when the text was cut to fit.
 * @since 0.1.0
 */
DNG_API dng_status dng_net_summary(const dng_net *net, char *buf,
                                   size_t len);

/**
 * Save the architecture, parameters and state tensors in one
 * little-endian, versioned, CRC-32-checked file (see doc/file-format.md),
 * written to a temporary name and renamed into place.
 * @since 0.1.0
 */
DNG_API dng_status dng_net_save(const dng_net *net, const char *path);

/**
 * Load a network written by dng_net_save().
 * @return a new network, or NULL with #DNG_ERR_IO or #DNG_ERR_FORMAT
 *         details in dng_last_error().
 * @since 0.1.0
 */
DNG_API dng_net *dng_net_load(const char *path);

/**
 * Export the parameters and state tensors as a safetensors file
 * (little-endian F32, PyTorch-style names such as "0.weight" and
 * "1.running_mean", so torch.nn.Sequential.load_state_dict takes it).
 * Written to a temporary name and renamed into place.
 * @since 0.1.0
 */
DNG_API dng_status dng_net_save_safetensors(const dng_net *net,
                                            const char *path);

/**
 * Import parameters and state tensors from a safetensors file into an
 * already built network of the same architecture: every name, dtype
 * (F32) and shape is checked, PyTorch's integer "num_batches_tracked"
 * entries are accepted and ignored, and on any mismatch nothing changes.
 * @since 0.1.0
 */
DNG_API dng_status dng_net_load_safetensors(dng_net *net, const char *path);

/**
 * Copy every parameter and state tensor of @p src into @p dst, which must
 * have the same architecture.
 * @since 0.1.0
 */
DNG_API dng_status dng_net_copy_weights(dng_net *dst, const dng_net *src);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Losses */
/** @{ */

/** Loss functions; all use PyTorch's 'mean' reduction. */
typedef enum dng_loss_kind {
    /** mean over all elements of (pred - target)^2 */
    DNG_LOSS_MSE = 0,
    /** mean over all elements of the binary cross-entropy of
     *  sigmoid(pred) against targets in [0, 1], computed stably */
    DNG_LOSS_BCE_WITH_LOGITS = 1,
    /** pred [N, C] logits, target [N] (or [N, 1]) class indices stored as
     *  floats; mean over the batch of -log softmax(pred)[target] */
    DNG_LOSS_CROSS_ENTROPY = 2,
    /** mean over all elements of max(0, 1 - target * pred), targets
     *  -1 or +1 */
    DNG_LOSS_HINGE = 3
} dng_loss_kind;

/**
 * Compute a loss and, if @p grad is not NULL, its gradient with respect to
 * @p pred (same shape as @p pred), written over, not added to. Elementwise
 * losses take a target of pred's shape, or [N] against [N, 1] (elementwise,
 * not broadcast).
 * @param kind one of ::dng_loss_kind.
 * @param pred the predictions (logits for the BCE and cross-entropy
 *        losses), [N, ...].
 * @param target the targets, as described for each ::dng_loss_kind.
 * @param value receives the loss; may be NULL.
 * @param grad receives dloss/dpred, a tensor of pred's shape; may be
 *        NULL.
 * @return #DNG_ERR_SHAPE on mismatched shapes, #DNG_ERR_INVALID_ARGUMENT on
 *         a class index that is not an integer in 0..C-1, a BCE target
 *         outside [0, 1] or a hinge target other than -1 and +1,
 *         #DNG_ERR_NUMERIC when the loss is not finite (@p grad is then
 *         unspecified and @p value untouched).
 * @since 0.1.0
 */
DNG_API dng_status dng_loss(dng_loss_kind kind, const dng_tensor *pred,
                            const dng_tensor *target, float *value,
                            dng_tensor *grad);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Optimizers
 * Update rules follow PyTorch's definitions (torch.optim). An optimizer's
 * state belongs to the first network it steps; stepping another network
 * gives #DNG_ERR_STATE.
 */
/** @{ */

/** An optimizer. Opaque. */
typedef struct dng_optim dng_optim;

/** Learning-rate schedules, advanced by dng_optim_schedule_step(). */
typedef enum dng_schedule {
    DNG_SCHED_CONSTANT = 0,    /**< lr stays at the base rate */
    DNG_SCHED_STEP = 1,        /**< lr = base * gamma^floor(t / period) */
    DNG_SCHED_EXPONENTIAL = 2, /**< lr = base * gamma^t */
    /** lr = min + (base - min) (1 + cos(pi t / period)) / 2; past period
     *  it rises again, as PyTorch's CosineAnnealingLR */
    DNG_SCHED_COSINE = 3,
    /** lr = base * min(1, (t + 1) / (period + 1)): linear warm-up */
    DNG_SCHED_WARMUP_LINEAR = 4
} dng_schedule;

/**
 * Stochastic gradient descent with optional momentum, Nesterov momentum
 * and L2 weight decay (added to the gradient), as torch.optim.SGD.
 * @since 0.1.0
 */
DNG_API dng_optim *dng_sgd(float lr, float momentum, int nesterov,
                           float weight_decay);

/**
 * Adam (torch.optim.Adam), L2 weight decay added to the gradient.
 * @since 0.1.0
 */
DNG_API dng_optim *dng_adam(float lr, float beta1, float beta2, float eps,
                            float weight_decay);

/**
 * AdamW (torch.optim.AdamW): decoupled weight decay.
 * @since 0.1.0
 */
DNG_API dng_optim *dng_adamw(float lr, float beta1, float beta2, float eps,
                             float weight_decay);

/**
 * RMSProp (torch.optim.RMSprop, not centred).
 * @since 0.1.0
 */
DNG_API dng_optim *dng_rmsprop(float lr, float alpha, float eps,
                               float momentum, float weight_decay);

/**
 * Free an optimizer. NULL is a no-op.
 * @since 0.1.0
 */
DNG_API void dng_optim_destroy(dng_optim *opt);

/**
 * Apply one update to @p net's parameters from its accumulated gradients
 * (after gradient-norm clipping, when set). Gradients are not zeroed;
 * clipping scales them in place, as clip_grad_norm_ does.
 * @return #DNG_ERR_NUMERIC when a gradient is not finite (nothing is
 *         updated), #DNG_ERR_STATE for a network other than the first.
 * @since 0.1.0
 */
DNG_API dng_status dng_optim_step(dng_optim *opt, dng_net *net);

/**
 * Set the base learning rate (> 0); the schedule scales it.
 * @since 0.1.0
 */
DNG_API dng_status dng_optim_set_lr(dng_optim *opt, float lr);

/**
 * The learning rate the next step will use, or -1 when @p opt is NULL.
 * @since 0.1.0
 */
DNG_API float dng_optim_get_lr(const dng_optim *opt);

/**
 * Choose a schedule.
 * @param opt the optimizer.
 * @param kind one of ::dng_schedule; #DNG_SCHED_CONSTANT turns scheduling
 *        off.
 * @param period step size (#DNG_SCHED_STEP), T_max (#DNG_SCHED_COSINE) or
 *        warm-up length (#DNG_SCHED_WARMUP_LINEAR); at least 1 there.
 * @param gamma decay factor for step and exponential schedules, in (0, 1].
 * @param min_lr the floor of the cosine schedule.
 * @since 0.1.0
 */
DNG_API dng_status dng_optim_set_schedule(dng_optim *opt, dng_schedule kind,
                                          int64_t period, float gamma,
                                          float min_lr);

/**
 * Advance the schedule by one unit (dng_fit() calls it once per epoch).
 * @since 0.1.0
 */
DNG_API dng_status dng_optim_schedule_step(dng_optim *opt);

/**
 * Clip the global gradient norm to @p max_norm before every step
 * (torch.nn.utils.clip_grad_norm_); 0 turns clipping off.
 * @since 0.1.0
 */
DNG_API dng_status dng_optim_set_clip_norm(dng_optim *opt, float max_norm);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Datasets */
/** @{ */

/** A dataset of samples and optional labels. Opaque. */
typedef struct dng_dataset dng_dataset;

/**
 * An in-memory dataset holding copies of @p x [N, ...] and @p y [N, ...]
 * (or NULL for unlabelled data, as a GAN's).
 * @since 0.1.0
 */
DNG_API dng_dataset *dng_dataset_from_tensors(const dng_tensor *x,
                                              const dng_tensor *y);

/**
 * Load IDX files (raw or gzip-compressed, as MNIST and Fashion-MNIST ship)
 * into memory. Images [N, 1, H, W] (or [N, D] for 2-D IDX data) are scaled
 * to [0, 1]; labels are class indices stored as floats [N].
 * @param images_path an IDX file of unsigned bytes, 3-D [N, H, W] or
 *        2-D [N, D].
 * @param labels_path a 1-D IDX file of N class indices, or NULL.
 * @since 0.1.0
 */
DNG_API dng_dataset *dng_dataset_load_idx(const char *images_path,
                                          const char *labels_path);

/**
 * Open uncompressed IDX files (ubyte images [N, H, W] or [N, D], ubyte
 * labels [N]) as a memory-mapped dataset read batch by batch, for data
 * larger than memory. Samples are scaled to [0, 1] as
 * dng_dataset_load_idx() does. dng_dataset_x() gives NULL for it. A gzip
 * file is refused with #DNG_ERR_UNSUPPORTED (decompress it first).
 * @param images_path an uncompressed IDX file of unsigned bytes.
 * @param labels_path an uncompressed 1-D IDX file of N class indices, or
 *        NULL.
 * @since 0.1.0
 */
DNG_API dng_dataset *dng_dataset_open_idx(const char *images_path,
                                          const char *labels_path);

/**
 * Open float32 C-order .npy files as a memory-mapped dataset: x [N, ...]
 * and optionally y [N, ...] (NULL for unlabelled data), read batch by
 * batch like dng_dataset_open_idx(); dng_dataset_x() gives NULL for it.
 * Compressed files are refused with #DNG_ERR_UNSUPPORTED.
 * @since 0.1.0
 */
DNG_API dng_dataset *dng_dataset_open_npy(const char *x_path,
                                          const char *y_path);

/**
 * Free a dataset. NULL is a no-op.
 * @since 0.1.0
 */
DNG_API void dng_dataset_destroy(dng_dataset *ds);

/**
 * Number of samples, or -1 when @p ds is NULL.
 * @since 0.1.0
 */
DNG_API int64_t dng_dataset_size(const dng_dataset *ds);

/**
 * The per-sample shape of x into @p shape (room for #DNG_MAX_DIMS) and its
 * length into @p ndim.
 * @since 0.1.0
 */
DNG_API dng_status dng_dataset_sample_shape(const dng_dataset *ds, int *ndim,
                                            int64_t *shape);

/**
 * Whether the dataset has labels: 1, 0, or -1 when @p ds is NULL.
 * @since 0.1.0
 */
DNG_API int dng_dataset_has_labels(const dng_dataset *ds);

/**
 * The samples of an in-memory dataset as one tensor [N, ...], borrowed,
 * read/write (to rescale data in place, for instance).
 * @since 0.1.0
 */
DNG_API dng_tensor *dng_dataset_x(dng_dataset *ds);

/**
 * The labels of an in-memory dataset, borrowed; NULL when unlabelled.
 * @since 0.1.0
 */
DNG_API dng_tensor *dng_dataset_y(dng_dataset *ds);

/**
 * Shuffle the samples (with their labels) in place with @p rng.
 * @since 0.1.0
 */
DNG_API dng_status dng_dataset_shuffle(dng_dataset *ds, dng_rng *rng);

/**
 * Split into two new datasets: the last round(N * valid_fraction) samples
 * (after shuffling with @p rng, when not NULL) go to @p valid, the rest
 * to @p train. @p valid_fraction is in (0, 1). The halves of an in-memory
 * dataset are copies; those of a memory-mapped one (dng_dataset_open_idx(),
 * dng_dataset_open_npy()) are views sharing its mapping, which copy no
 * sample and stay valid after @p ds is destroyed.
 * @since 0.1.0
 */
DNG_API dng_status dng_dataset_split(const dng_dataset *ds,
                                     double valid_fraction, dng_rng *rng,
                                     dng_dataset **train,
                                     dng_dataset **valid);

/**
 * Copy samples [start, start + n) into @p x_out ([n, sample shape...]) and,
 * if not NULL, their labels into @p y_out.
 * @since 0.1.0
 */
DNG_API dng_status dng_dataset_batch(const dng_dataset *ds, int64_t start,
                                     int64_t n, dng_tensor *x_out,
                                     dng_tensor *y_out);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Supervised training */
/** @{ */

/** Options for dng_fit(). Fill with dng_fit_options_default() first. */
typedef struct dng_fit_options {
    size_t size;        /**< sizeof(dng_fit_options), set by _default() */
    int epochs;         /**< passes over the training set (default 10) */
    int64_t batch_size; /**< samples per step (default 64) */
    int shuffle;        /**< reshuffle every epoch (default 1) */
    uint64_t seed;      /**< seed of the shuffling and dropout (default 0) */
    int patience;       /**< early stopping: epochs without a better
                             validation loss before stopping; 0 = off
                             (default 0). The best weights are restored. */
    float min_delta;    /**< improvement that counts (default 0) */
} dng_fit_options;

/**
 * Fill @p opts with the defaults and set its size.
 * @since 0.1.0
 */
DNG_API void dng_fit_options_default(dng_fit_options *opts);

/** What dng_fit() reports after each epoch. */
typedef struct dng_fit_progress {
    size_t size;          /**< sizeof(dng_fit_progress) */
    int epoch;            /**< 1-based epoch just finished */
    int epochs;           /**< epochs asked for */
    int64_t step;         /**< optimizer steps so far */
    float train_loss;     /**< mean training loss of the epoch */
    float valid_loss;     /**< validation loss, NaN without validation */
    float valid_accuracy; /**< validation accuracy, NaN when undefined */
    float lr;             /**< learning rate used in the epoch */
    double seconds;       /**< wall-clock seconds of the epoch */
    int best_epoch;       /**< epoch with the best validation loss so far */
} dng_fit_progress;

/**
 * Progress callback: return 0 to go on, non-zero to stop training (the
 * stop is not an error).
 */
typedef int (*dng_fit_callback)(const dng_fit_progress *progress, void *user);

/**
 * Train @p net with @p opt on @p train: for each epoch, shuffle, run
 * batches of forward, loss, backward and step (a last smaller batch
 * included), then evaluate on @p valid (may be NULL) and report through
 * @p callback (may be NULL). With a patience, training stops after that
 * many epochs without improvement and the best weights are restored. The
 * network is left in training mode.
 * @return #DNG_ERR_NUMERIC when the loss stops being finite.
 * @since 0.1.0
 */
DNG_API dng_status dng_fit(dng_net *net, dng_optim *opt,
                           dng_loss_kind loss, const dng_dataset *train,
                           const dng_dataset *valid,
                           const dng_fit_options *opts,
                           dng_fit_callback callback, void *user);

/**
 * Mean loss and accuracy of @p net (in evaluation mode) over @p ds, in
 * batches of @p batch_size. Accuracy compares argmax of the output with
 * the label (class-index labels, or for one output the sign of the logit
 * against a 0/1 label); it is NaN when labels are not class indices.
 * The network's training mode is restored afterwards.
 * @param net the network.
 * @param loss_kind the loss to average, one of ::dng_loss_kind.
 * @param ds a labelled dataset.
 * @param batch_size samples per forward pass, 1 or more.
 * @param loss, accuracy receive the results; either may be NULL.
 * @since 0.1.0
 */
DNG_API dng_status dng_evaluate(dng_net *net, dng_loss_kind loss_kind,
                                const dng_dataset *ds, int64_t batch_size,
                                float *loss, float *accuracy);

/** @} */

/* ------------------------------------------------------------------------ */
/** @name Adversarial training (GAN) */
/** @{ */

/** A GAN trainer. Opaque. */
typedef struct dng_gan dng_gan;

/** Adversarial losses. */
typedef enum dng_gan_loss {
    /** non-saturating BCE: D minimises BCE(D(x), 1) + BCE(D(G(z)), 0),
     *  G minimises BCE(D(G(z)), 1) */
    DNG_GAN_LOSS_BCE = 0,
    /** hinge: D minimises relu(1 - D(x)) + relu(1 + D(G(z))), G minimises
     *  -D(G(z)) */
    DNG_GAN_LOSS_HINGE = 1,
    /** least squares: D minimises (D(x) - 1)^2 / 2 + D(G(z))^2 / 2, G
     *  minimises (D(G(z)) - 1)^2 / 2 */
    DNG_GAN_LOSS_LSGAN = 2,
    /** Wasserstein with weight clipping: D minimises D(G(z)) - D(x), G
     *  minimises -D(G(z)); D's weights are clipped after each step */
    DNG_GAN_LOSS_WASSERSTEIN = 3
} dng_gan_loss;

/** Distributions of the latent noise. */
typedef enum dng_noise {
    DNG_NOISE_NORMAL = 0, /**< N(0, 1) */
    DNG_NOISE_UNIFORM = 1 /**< U(-1, 1) */
} dng_noise;

/** What one dng_gan_step() measured. */
typedef struct dng_gan_stats {
    size_t size;  /**< set to sizeof(dng_gan_stats) by the caller */
    float d_loss; /**< discriminator loss (real and fake terms summed) */
    float g_loss; /**< generator loss of the latest generator update */
    float d_real; /**< mean D(x) on the real batch (a probability for BCE,
                       the raw output otherwise) */
    float d_fake; /**< mean D(G(z)) before the discriminator update */
    int64_t step; /**< discriminator updates so far */
} dng_gan_stats;

/** What dng_gan_train() reports. */
typedef struct dng_gan_progress {
    size_t size;      /**< sizeof(dng_gan_progress) */
    int epoch;        /**< 1-based current epoch */
    int epochs;       /**< epochs asked for */
    int64_t step;     /**< discriminator updates so far (all epochs) */
    int64_t steps;    /**< updates the whole run will make */
    dng_gan_stats stats; /**< means over the steps since the last report */
    double seconds;   /**< wall-clock seconds since training started */
} dng_gan_progress;

/** GAN progress callback: return non-zero to stop. */
typedef int (*dng_gan_callback)(const dng_gan_progress *progress,
                                void *user);

/**
 * Create a trainer over a generator (sample shape [latent]), a
 * discriminator whose sample shape is the generator's output shape and
 * whose output is one value per sample, and their optimizers. Borrows the
 * four: they must outlive the trainer.
 * @return NULL with #DNG_ERR_SHAPE details when the networks do not fit.
 * @since 0.1.0
 */
DNG_API dng_gan *dng_gan_create(dng_net *generator, dng_net *discriminator,
                                dng_optim *g_opt, dng_optim *d_opt);

/**
 * Free a trainer (not the networks or optimizers). NULL is a no-op.
 * @since 0.1.0
 */
DNG_API void dng_gan_destroy(dng_gan *gan);

/** Choose the loss (default #DNG_GAN_LOSS_BCE). @since 0.1.0 */
DNG_API dng_status dng_gan_set_loss(dng_gan *gan, dng_gan_loss loss);

/**
 * Discriminator updates per generator update (default 1, up to 100).
 * @since 0.1.0
 */
DNG_API dng_status dng_gan_set_d_steps(dng_gan *gan, int k);

/**
 * One-sided label smoothing: the target for real samples in BCE (default
 * 1.0, typically 0.9); must be in (0, 1].
 * @since 0.1.0
 */
DNG_API dng_status dng_gan_set_label_smoothing(dng_gan *gan,
                                               float real_label);

/** The latent distribution (default normal). @since 0.1.0 */
DNG_API dng_status dng_gan_set_noise(dng_gan *gan, dng_noise noise);

/**
 * Keep an exponential moving average of the generator's weights,
 * ema = decay * ema + (1 - decay) * w after each generator update, and
 * sample from it. decay in [0, 1); 0 turns it off (default).
 * @since 0.1.0
 */
DNG_API dng_status dng_gan_set_ema(dng_gan *gan, float decay);

/**
 * Weight clipping bound for #DNG_GAN_LOSS_WASSERSTEIN (default 0.01).
 * @since 0.1.0
 */
DNG_API dng_status dng_gan_set_clip(dng_gan *gan, float clip);

/**
 * Seed the trainer's own generator, used by dng_gan_train() and by
 * dng_gan_step() / dng_gan_sample() when passed a NULL rng.
 * @since 0.1.0
 */
DNG_API dng_status dng_gan_set_seed(dng_gan *gan, uint64_t seed);

/**
 * How many steps between two dng_gan_train() reports (default 100).
 * @since 0.1.0
 */
DNG_API dng_status dng_gan_set_report_interval(dng_gan *gan,
                                               int64_t steps);

/**
 * One discriminator update on the real batch @p real ([N, sample shape
 * of D]) against N generated samples; every k-th call (k from
 * dng_gan_set_d_steps()) is followed by one generator update. Real and
 * fake batches go through D separately. The generator's update leaves
 * D's weights and running statistics untouched.
 * @param gan the trainer.
 * @param real the real batch [N, sample shape of D], N >= 1 (a
 *        batch-norm layer over [N, C] in D needs N >= 2).
 * @param rng noise source; NULL uses the trainer's own.
 * @param out receives the statistics; may be NULL. Its size field must be
 *        set.
 * @since 0.1.0
 */
DNG_API dng_status dng_gan_step(dng_gan *gan, const dng_tensor *real,
                                dng_rng *rng, dng_gan_stats *out);

/**
 * Train for @p epochs over @p ds (reshuffled every epoch with the
 * trainer's generator) in batches of @p batch_size (a last partial batch
 * is dropped), reporting every report interval and at the end through
 * @p callback (may be NULL).
 * @since 0.1.0
 */
DNG_API dng_status dng_gan_train(dng_gan *gan, const dng_dataset *ds,
                                 int epochs, int64_t batch_size,
                                 dng_gan_callback callback, void *user);

/**
 * Generate @p n samples into @p out ([n, generator output shape]) in
 * evaluation mode, from the EMA weights when enabled.
 * @param gan the trainer.
 * @param n number of samples, 1 or more.
 * @param rng noise source; NULL uses the trainer's own.
 * @param out receives the samples; its shape must be [n, generator
 *        output shape].
 * @since 0.1.0
 */
DNG_API dng_status dng_gan_sample(dng_gan *gan, int64_t n, dng_rng *rng,
                                  dng_tensor *out);

/**
 * Generate from given latent vectors @p z [n, latent] into @p out.
 * @since 0.1.0
 */
DNG_API dng_status dng_gan_generate(dng_gan *gan, const dng_tensor *z,
                                    dng_tensor *out);

/**
 * Discriminator updates made so far, or -1 when @p gan is NULL.
 * @since 0.1.0
 */
DNG_API int64_t dng_gan_steps(const dng_gan *gan);

/**
 * Save both networks, both optimizers' state, the EMA weights, the step
 * count and the trainer's RNG state (written to a temporary file and
 * renamed into place).
 * @since 0.1.0
 */
DNG_API dng_status dng_gan_save_checkpoint(const dng_gan *gan,
                                           const char *path);

/**
 * Restore a checkpoint into a trainer built with the same architectures;
 * training then resumes bit-identically. On failure the trainer is
 * unchanged.
 * @since 0.1.0
 */
DNG_API dng_status dng_gan_load_checkpoint(dng_gan *gan, const char *path);

/**
 * Write @p images [N, C, H, W] (C = 1 or 3, values in [-1, 1]) as a grid of
 * @p cols columns: PNG when @p path ends in ".png" (needs libpng), binary
 * PGM (C = 1) or PPM otherwise.
 * @since 0.1.0
 */
DNG_API dng_status dng_write_image_grid(const dng_tensor *images, int cols,
                                        const char *path);

/**
 * Fréchet distance between two sets of feature vectors @p a [N, D] and
 * @p b [M, D] (N, M >= 2): |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2),
 * in double precision with the library's own symmetric eigen-solver.
 * @since 0.1.0
 */
DNG_API dng_status dng_frechet_distance(const dng_tensor *a,
                                        const dng_tensor *b, double *out);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* DNNGEN_H */
