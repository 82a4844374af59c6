"""Low-level ctypes declarations of libdnngen's public C API.

This module finds and loads the shared library, declares the argument and
result types of every function in include/dnngen.h (so that a call with
the wrong Python types raises instead of passing garbage to C), and
defines the structures and callback types the API uses. The object API in
:mod:`dnngen` is built on top of it; programs normally never import this
module directly.

Library lookup order (the first that loads wins):

1. the environment variable ``DNNGEN_LIBRARY``, then ``DNG_LIBRARY``: a
   path to ``libdnngen.so``; when set it must load, so that a typo is an
   error instead of a silent fallback to another copy;
2. the installed library: ``ctypes.util.find_library('dnngen')``, then
   ``libdnngen.so.0`` through the dynamic loader's search path;
3. build trees of the source checkout this package sits in
   (``<repo>/build*/lib/libdnngen.so.0``), the most recently built first.
"""
import ctypes as C
import ctypes.util
import glob
import os

__all__ = ["lib", "library_path", "has_symbol", "ABI_MAJOR", "MAX_DIMS"]

#: The major version of the C API this binding was written against.
ABI_MAJOR = 0
#: The lowest minor version (within ABI_MAJOR) that has every required
#: function.
ABI_MINOR_MIN = 1
#: The largest number of dimensions a tensor may have (DNG_MAX_DIMS).
MAX_DIMS = 8


# ---- opaque handle types ---------------------------------------------------
# One distinct pointer type per handle kind: passing a network where a
# tensor is expected fails in ctypes' argument conversion instead of
# reaching the library.

class dng_rng(C.Structure):
    """Opaque struct dng_rng."""


class dng_tensor(C.Structure):
    """Opaque struct dng_tensor."""


class dng_layer(C.Structure):
    """Opaque struct dng_layer."""


class dng_net(C.Structure):
    """Opaque struct dng_net."""


class dng_optim(C.Structure):
    """Opaque struct dng_optim."""


class dng_dataset(C.Structure):
    """Opaque struct dng_dataset."""


class dng_gan(C.Structure):
    """Opaque struct dng_gan."""


RngP = C.POINTER(dng_rng)
TensorP = C.POINTER(dng_tensor)
LayerP = C.POINTER(dng_layer)
NetP = C.POINTER(dng_net)
OptimP = C.POINTER(dng_optim)
DatasetP = C.POINTER(dng_dataset)
GanP = C.POINTER(dng_gan)

i64p = C.POINTER(C.c_int64)
u64p = C.POINTER(C.c_uint64)
f32p = C.POINTER(C.c_float)
f64p = C.POINTER(C.c_double)
intp = C.POINTER(C.c_int)


# ---- structures ------------------------------------------------------------

class dng_fit_options(C.Structure):
    """struct dng_fit_options (fill with dng_fit_options_default)."""
    _fields_ = [("size", C.c_size_t),
                ("epochs", C.c_int),
                ("batch_size", C.c_int64),
                ("shuffle", C.c_int),
                ("seed", C.c_uint64),
                ("patience", C.c_int),
                ("min_delta", C.c_float)]


class dng_fit_progress(C.Structure):
    """struct dng_fit_progress, what dng_fit reports after each epoch."""
    _fields_ = [("size", C.c_size_t),
                ("epoch", C.c_int),
                ("epochs", C.c_int),
                ("step", C.c_int64),
                ("train_loss", C.c_float),
                ("valid_loss", C.c_float),
                ("valid_accuracy", C.c_float),
                ("lr", C.c_float),
                ("seconds", C.c_double),
                ("best_epoch", C.c_int)]


class dng_gan_stats(C.Structure):
    """struct dng_gan_stats, what one dng_gan_step measured."""
    _fields_ = [("size", C.c_size_t),
                ("d_loss", C.c_float),
                ("g_loss", C.c_float),
                ("d_real", C.c_float),
                ("d_fake", C.c_float),
                ("step", C.c_int64)]


class dng_gan_progress(C.Structure):
    """struct dng_gan_progress, what dng_gan_train reports."""
    _fields_ = [("size", C.c_size_t),
                ("epoch", C.c_int),
                ("epochs", C.c_int),
                ("step", C.c_int64),
                ("steps", C.c_int64),
                ("stats", dng_gan_stats),
                ("seconds", C.c_double)]


#: int (*dng_fit_callback)(const dng_fit_progress *, void *user)
FIT_CALLBACK = C.CFUNCTYPE(C.c_int, C.POINTER(dng_fit_progress), C.c_void_p)
#: int (*dng_gan_callback)(const dng_gan_progress *, void *user)
GAN_CALLBACK = C.CFUNCTYPE(C.c_int, C.POINTER(dng_gan_progress), C.c_void_p)

# dng_status and every enum are C ints.
status = C.c_int
enum = C.c_int

# name: (restype, argtypes), in the order of include/dnngen.h.
SIGNATURES = {
    # version and errors
    "dng_version": (C.c_int, []),
    "dng_version_string": (C.c_char_p, []),
    "dng_status_string": (C.c_char_p, [status]),
    "dng_last_error": (C.c_char_p, []),
    "dng_clear_error": (None, []),
    "dng_set_num_threads": (status, [C.c_int]),
    "dng_get_num_threads": (C.c_int, []),
    # random numbers
    "dng_rng_create": (RngP, [C.c_uint64]),
    "dng_rng_destroy": (None, [RngP]),
    "dng_rng_uniform": (status, [RngP, f32p, C.c_int64, C.c_float,
                                 C.c_float]),
    "dng_rng_normal": (status, [RngP, f32p, C.c_int64, C.c_float,
                                C.c_float]),
    "dng_rng_get_state": (status, [RngP, u64p]),
    "dng_rng_set_state": (status, [RngP, u64p]),
    # tensors
    "dng_tensor_create": (TensorP, [C.c_int, i64p]),
    "dng_tensor_from_data": (TensorP, [C.c_int, i64p, f32p]),
    "dng_tensor_wrap": (TensorP, [C.c_int, i64p, f32p]),
    "dng_tensor_destroy": (None, [TensorP]),
    "dng_tensor_ndim": (C.c_int, [TensorP]),
    "dng_tensor_dim": (C.c_int64, [TensorP, C.c_int]),
    "dng_tensor_shape": (status, [TensorP, i64p]),
    "dng_tensor_numel": (C.c_int64, [TensorP]),
    "dng_tensor_data": (f32p, [TensorP]),
    "dng_tensor_copy_out": (status, [TensorP, f32p, C.c_int64]),
    "dng_tensor_copy_in": (status, [TensorP, f32p, C.c_int64]),
    "dng_tensor_fill": (status, [TensorP, C.c_float]),
    "dng_tensor_fill_uniform": (status, [TensorP, RngP, C.c_float,
                                         C.c_float]),
    "dng_tensor_fill_normal": (status, [TensorP, RngP, C.c_float,
                                        C.c_float]),
    "dng_tensor_reshape": (status, [TensorP, C.c_int, i64p]),
    "dng_tensor_save_npy": (status, [TensorP, C.c_char_p]),
    "dng_tensor_load_npy": (TensorP, [C.c_char_p]),
    # layers
    "dng_dense": (LayerP, [C.c_int64, C.c_int64]),
    "dng_conv2d": (LayerP, [C.c_int64, C.c_int64, C.c_int, C.c_int,
                            C.c_int, C.c_int]),
    "dng_conv2d_transpose": (LayerP, [C.c_int64, C.c_int64, C.c_int,
                                      C.c_int, C.c_int, C.c_int]),
    "dng_maxpool2d": (LayerP, [C.c_int, C.c_int]),
    "dng_avgpool2d": (LayerP, [C.c_int, C.c_int]),
    "dng_batchnorm": (LayerP, [C.c_int64]),
    "dng_layernorm": (LayerP, [C.c_int64]),
    "dng_dropout": (LayerP, [C.c_float]),
    "dng_activation": (LayerP, [enum, C.c_float]),
    "dng_reshape": (LayerP, [C.c_int, i64p]),
    "dng_flatten": (LayerP, []),
    "dng_spectral_norm": (LayerP, [LayerP]),
    "dng_layer_destroy": (None, [LayerP]),
    # networks
    "dng_net_create": (NetP, [C.c_int, i64p]),
    "dng_net_destroy": (None, [NetP]),
    "dng_net_add": (status, [NetP, LayerP]),
    "dng_net_init": (status, [NetP, enum, RngP]),
    "dng_net_set_seed": (status, [NetP, C.c_uint64]),
    "dng_net_forward": (status, [NetP, TensorP, C.POINTER(TensorP)]),
    "dng_net_backward": (status, [NetP, TensorP, C.POINTER(TensorP)]),
    "dng_net_zero_grad": (status, [NetP]),
    "dng_net_set_training": (status, [NetP, C.c_int]),
    "dng_net_num_layers": (C.c_int, [NetP]),
    "dng_net_output_shape": (status, [NetP, intp, i64p]),
    "dng_net_num_params": (C.c_int, [NetP]),
    "dng_net_param": (TensorP, [NetP, C.c_int]),
    "dng_net_grad": (TensorP, [NetP, C.c_int]),
    "dng_net_param_name": (C.c_char_p, [NetP, C.c_int]),
    "dng_net_param_index": (C.c_int, [NetP, C.c_char_p]),
    "dng_net_num_buffers": (C.c_int, [NetP]),
    "dng_net_buffer": (TensorP, [NetP, C.c_int]),
    "dng_net_buffer_name": (C.c_char_p, [NetP, C.c_int]),
    "dng_net_param_count": (C.c_int64, [NetP]),
    "dng_net_summary": (status, [NetP, C.c_char_p, C.c_size_t]),
    "dng_net_save": (status, [NetP, C.c_char_p]),
    "dng_net_load": (NetP, [C.c_char_p]),
    "dng_net_save_safetensors": (status, [NetP, C.c_char_p]),
    "dng_net_load_safetensors": (status, [NetP, C.c_char_p]),
    "dng_net_copy_weights": (status, [NetP, NetP]),
    # losses
    "dng_loss": (status, [enum, TensorP, TensorP, f32p, TensorP]),
    # optimizers
    "dng_sgd": (OptimP, [C.c_float, C.c_float, C.c_int, C.c_float]),
    "dng_adam": (OptimP, [C.c_float, C.c_float, C.c_float, C.c_float,
                          C.c_float]),
    "dng_adamw": (OptimP, [C.c_float, C.c_float, C.c_float, C.c_float,
                           C.c_float]),
    "dng_rmsprop": (OptimP, [C.c_float, C.c_float, C.c_float, C.c_float,
                             C.c_float]),
    "dng_optim_destroy": (None, [OptimP]),
    "dng_optim_step": (status, [OptimP, NetP]),
    "dng_optim_set_lr": (status, [OptimP, C.c_float]),
    "dng_optim_get_lr": (C.c_float, [OptimP]),
    "dng_optim_set_schedule": (status, [OptimP, enum, C.c_int64, C.c_float,
                                        C.c_float]),
    "dng_optim_schedule_step": (status, [OptimP]),
    "dng_optim_set_clip_norm": (status, [OptimP, C.c_float]),
    # datasets
    "dng_dataset_from_tensors": (DatasetP, [TensorP, TensorP]),
    "dng_dataset_load_idx": (DatasetP, [C.c_char_p, C.c_char_p]),
    "dng_dataset_open_idx": (DatasetP, [C.c_char_p, C.c_char_p]),
    "dng_dataset_open_npy": (DatasetP, [C.c_char_p, C.c_char_p]),
    "dng_dataset_destroy": (None, [DatasetP]),
    "dng_dataset_size": (C.c_int64, [DatasetP]),
    "dng_dataset_sample_shape": (status, [DatasetP, intp, i64p]),
    "dng_dataset_has_labels": (C.c_int, [DatasetP]),
    "dng_dataset_x": (TensorP, [DatasetP]),
    "dng_dataset_y": (TensorP, [DatasetP]),
    "dng_dataset_shuffle": (status, [DatasetP, RngP]),
    "dng_dataset_split": (status, [DatasetP, C.c_double, RngP,
                                   C.POINTER(DatasetP),
                                   C.POINTER(DatasetP)]),
    "dng_dataset_batch": (status, [DatasetP, C.c_int64, C.c_int64, TensorP,
                                   TensorP]),
    # supervised training
    "dng_fit_options_default": (None, [C.POINTER(dng_fit_options)]),
    "dng_fit": (status, [NetP, OptimP, enum, DatasetP, DatasetP,
                         C.POINTER(dng_fit_options), FIT_CALLBACK,
                         C.c_void_p]),
    "dng_evaluate": (status, [NetP, enum, DatasetP, C.c_int64, f32p, f32p]),
    # GAN
    "dng_gan_create": (GanP, [NetP, NetP, OptimP, OptimP]),
    "dng_gan_destroy": (None, [GanP]),
    "dng_gan_set_loss": (status, [GanP, enum]),
    "dng_gan_set_d_steps": (status, [GanP, C.c_int]),
    "dng_gan_set_label_smoothing": (status, [GanP, C.c_float]),
    "dng_gan_set_noise": (status, [GanP, enum]),
    "dng_gan_set_ema": (status, [GanP, C.c_float]),
    "dng_gan_set_clip": (status, [GanP, C.c_float]),
    "dng_gan_set_seed": (status, [GanP, C.c_uint64]),
    "dng_gan_set_report_interval": (status, [GanP, C.c_int64]),
    "dng_gan_step": (status, [GanP, TensorP, RngP,
                              C.POINTER(dng_gan_stats)]),
    "dng_gan_train": (status, [GanP, DatasetP, C.c_int, C.c_int64,
                               GAN_CALLBACK, C.c_void_p]),
    "dng_gan_sample": (status, [GanP, C.c_int64, RngP, TensorP]),
    "dng_gan_generate": (status, [GanP, TensorP, TensorP]),
    "dng_gan_steps": (C.c_int64, [GanP]),
    "dng_gan_save_checkpoint": (status, [GanP, C.c_char_p]),
    "dng_gan_load_checkpoint": (status, [GanP, C.c_char_p]),
    "dng_write_image_grid": (status, [TensorP, C.c_int, C.c_char_p]),
    "dng_frechet_distance": (status, [TensorP, TensorP, f64p]),
}

#: Functions newer than the first release of the header: the binding works
#: without them and raises an error naming the function when one is used.
OPTIONAL = frozenset({
    "dng_net_save_safetensors", "dng_net_load_safetensors",
    "dng_dataset_open_idx", "dng_dataset_open_npy",
})


def _candidates():
    """Paths (or loader names) to try, in the documented order."""
    for var in ("DNNGEN_LIBRARY", "DNG_LIBRARY"):
        value = os.environ.get(var)
        if value:
            # An explicit choice is final: falling back to another copy
            # would hide the mistake.
            return [(value, var)]
    out = []
    found = ctypes.util.find_library("dnngen")
    if found:
        out.append((found, "ctypes.util.find_library('dnngen')"))
    out.append(("libdnngen.so.0", "the dynamic loader's search path"))
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", "..", ".."))
    builds = []
    for pattern in ("libdnngen.so.0", "libdnngen.so", "libdnngen.dylib"):
        builds += glob.glob(os.path.join(root, "build*", "lib", pattern))

    def mtime(path):
        try:
            return os.path.getmtime(path)
        except OSError:        # a dangling link of a half-built tree
            return None

    # The most recently built tree is the one a developer is working in.
    builds = [(mtime(p), p) for p in builds]
    builds = [p for t, p in sorted((b for b in builds if b[0] is not None),
                                   reverse=True)]
    out += [(p, "a build tree next to the package") for p in builds]
    return out


def _load():
    tried = []
    for path, origin in _candidates():
        try:
            so = C.CDLL(path)
        except OSError as e:
            if origin.endswith("LIBRARY"):
                raise ImportError("dnngen: %s=%s cannot be loaded: %s"
                                  % (origin, path, e)) from None
            tried.append("%s (%s): %s" % (path, origin, e))
            continue
        if not hasattr(so, "dng_version"):
            tried.append("%s (%s): not libdnngen" % (path, origin))
            continue
        return so, path
    raise ImportError("dnngen: libdnngen was not found. Set DNNGEN_LIBRARY "
                      "to the path of libdnngen.so, install the library, or "
                      "build it with meson in the source tree. Tried:\n  "
                      + "\n  ".join(tried))


def _declare(so):
    missing = []
    for name, (res, args) in SIGNATURES.items():
        try:
            fn = getattr(so, name)
        except AttributeError:
            if name not in OPTIONAL:
                missing.append(name)
            continue
        fn.restype = res
        fn.argtypes = args
    if missing:
        raise ImportError("dnngen: %s lacks required functions: %s (too old "
                          "a libdnngen?)" % (library_path,
                                             ", ".join(missing)))


lib, library_path = _load()
_declare(lib)

_version = lib.dng_version()
if _version // 10000 != ABI_MAJOR or _version % 10000 // 100 < ABI_MINOR_MIN:
    raise ImportError("dnngen: %s is libdnngen %s; this binding needs "
                      "%d.%d or a later %d.x"
                      % (library_path, lib.dng_version_string().decode(),
                         ABI_MAJOR, ABI_MINOR_MIN, ABI_MAJOR))


def has_symbol(name):
    """Whether the loaded library exports the function ``name``."""
    return name in SIGNATURES and hasattr(lib, name)
