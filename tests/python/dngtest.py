"""A small ctypes harness over libdnngen's public C API, for the PyTorch
comparison tests.

Every function used is declared with its argtypes and restype from
include/dnngen.h. Every status is checked: a negative status, or a NULL
handle from a constructor, raises DngError with dng_status_string() and
dng_last_error() in the text, so a failing test says what the library said.
A symbol missing from the shared object raises DngError when called (not at
import), so that the tests of the layers that exist keep running while
colleagues finish the rest.

Tensors cross the boundary as copies: numpy -> dng_tensor_from_data, and
borrowed library tensors -> numpy through dng_tensor_copy_out, so nothing
on the Python side outlives the memory it points to.
"""
import ctypes as C
import os

import numpy as np

LIBRARY = os.environ.get("DNG_LIBRARY")

# Enum values, copied from include/dnngen.h.
ACT_RELU, ACT_LEAKY_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX, ACT_GELU, \
    ACT_IDENTITY = range(7)
LOSS_MSE, LOSS_BCE_WITH_LOGITS, LOSS_CROSS_ENTROPY, LOSS_HINGE = range(4)
SCHED_CONSTANT, SCHED_STEP, SCHED_EXPONENTIAL, SCHED_COSINE, \
    SCHED_WARMUP_LINEAR = range(5)
INIT_DEFAULT, INIT_XAVIER_UNIFORM, INIT_HE_NORMAL, INIT_NORMAL_002 = range(4)

_h = C.c_void_p            # every opaque handle
_i64p = C.POINTER(C.c_int64)
_f32p = C.POINTER(C.c_float)
_hp = C.POINTER(C.c_void_p)  # dng_tensor ** out-parameters

# name: (restype, argtypes). "status" marks a dng_status return (checked),
# "handle" a constructor (NULL checked).
_SIGNATURES = {
    "dng_version": (C.c_int, []),
    "dng_status_string": (C.c_char_p, [C.c_int]),
    "dng_last_error": (C.c_char_p, []),
    "dng_clear_error": (None, []),
    "dng_set_num_threads": ("status", [C.c_int]),
    # tensors
    "dng_tensor_create": ("handle", [C.c_int, _i64p]),
    "dng_tensor_from_data": ("handle", [C.c_int, _i64p, _f32p]),
    "dng_tensor_destroy": (None, [_h]),
    "dng_tensor_ndim": (C.c_int, [_h]),
    "dng_tensor_shape": ("status", [_h, _i64p]),
    "dng_tensor_numel": (C.c_int64, [_h]),
    "dng_tensor_data": (_f32p, [_h]),
    "dng_tensor_copy_out": ("status", [_h, _f32p, C.c_int64]),
    "dng_tensor_copy_in": ("status", [_h, _f32p, C.c_int64]),
    # layers
    "dng_dense": ("handle", [C.c_int64, C.c_int64]),
    "dng_conv2d": ("handle", [C.c_int64, C.c_int64, C.c_int, C.c_int,
                              C.c_int, C.c_int]),
    "dng_conv2d_transpose": ("handle", [C.c_int64, C.c_int64, C.c_int,
                                        C.c_int, C.c_int, C.c_int]),
    "dng_maxpool2d": ("handle", [C.c_int, C.c_int]),
    "dng_avgpool2d": ("handle", [C.c_int, C.c_int]),
    "dng_batchnorm": ("handle", [C.c_int64]),
    "dng_layernorm": ("handle", [C.c_int64]),
    "dng_dropout": ("handle", [C.c_float]),
    "dng_activation": ("handle", [C.c_int, C.c_float]),
    "dng_reshape": ("handle", [C.c_int, _i64p]),
    "dng_flatten": ("handle", []),
    "dng_spectral_norm": ("handle", [_h]),
    "dng_layer_destroy": (None, [_h]),
    # networks
    "dng_net_create": ("handle", [C.c_int, _i64p]),
    "dng_net_destroy": (None, [_h]),
    "dng_net_add": ("status", [_h, _h]),
    "dng_net_set_seed": ("status", [_h, C.c_uint64]),
    "dng_net_forward": ("status", [_h, _h, _hp]),
    "dng_net_backward": ("status", [_h, _h, _hp]),
    "dng_net_zero_grad": ("status", [_h]),
    "dng_net_set_training": ("status", [_h, C.c_int]),
    "dng_net_num_params": (C.c_int, [_h]),
    "dng_net_param": (_h, [_h, C.c_int]),
    "dng_net_grad": (_h, [_h, C.c_int]),
    "dng_net_param_name": (C.c_char_p, [_h, C.c_int]),
    "dng_net_num_buffers": (C.c_int, [_h]),
    "dng_net_buffer": (_h, [_h, C.c_int]),
    "dng_net_buffer_name": (C.c_char_p, [_h, C.c_int]),
    "dng_net_save_safetensors": ("status", [_h, C.c_char_p]),
    "dng_net_load_safetensors": ("status", [_h, C.c_char_p]),
    # losses
    "dng_loss": ("status", [C.c_int, _h, _h, _f32p, _h]),
    # optimizers
    "dng_sgd": ("handle", [C.c_float, C.c_float, C.c_int, C.c_float]),
    "dng_adam": ("handle", [C.c_float, C.c_float, C.c_float, C.c_float,
                            C.c_float]),
    "dng_adamw": ("handle", [C.c_float, C.c_float, C.c_float, C.c_float,
                             C.c_float]),
    "dng_rmsprop": ("handle", [C.c_float, C.c_float, C.c_float, C.c_float,
                               C.c_float]),
    "dng_optim_destroy": (None, [_h]),
    "dng_optim_step": ("status", [_h, _h]),
    "dng_optim_set_lr": ("status", [_h, C.c_float]),
    "dng_optim_get_lr": (C.c_float, [_h]),
    "dng_optim_set_schedule": ("status", [_h, C.c_int, C.c_int64, C.c_float,
                                          C.c_float]),
    "dng_optim_schedule_step": ("status", [_h]),
    "dng_optim_set_clip_norm": ("status", [_h, C.c_float]),
}


class DngError(RuntimeError):
    """A libdnngen call failed; the text holds the library's message."""


class _Lib:
    """The loaded library with checked wrappers: lib.dng_xxx(...)."""

    def __init__(self, path):
        if not path:
            raise DngError("DNG_LIBRARY is not set: point it at the built "
                           "libdnngen.so")
        self.so = C.CDLL(path)
        self.path = path
        # ctypes caches one function object per name, so the declarations
        # made here also hold for the raw self.so.dng_last_error and
        # self.so.dng_status_string calls in error_text().
        for name, (res, args) in _SIGNATURES.items():
            setattr(self, name, self._wrap(name, res, args))

    def error_text(self, status=None):
        msg = self.so.dng_last_error()
        text = msg.decode() if msg else ""
        if status is not None:
            text = "%s (%d): %s" % (
                self.so.dng_status_string(status).decode(), status, text)
        return text

    def _wrap(self, name, res, args):
        try:
            fn = getattr(self.so, name)
        except AttributeError:
            def missing(*_a):
                raise DngError("%s is not exported by %s" % (name,
                                                             self.path))
            return missing
        fn.argtypes = args
        if res == "status":
            fn.restype = C.c_int

            def checked(*a):
                self.so.dng_clear_error()
                s = fn(*a)
                if s < 0:
                    raise DngError("%s: %s" % (name, self.error_text(s)))
                if s != 0:
                    raise DngError("%s returned %d, not a dng_status"
                                   % (name, s))
                return s
            return checked
        if res == "handle":
            fn.restype = C.c_void_p

            def constructed(*a):
                self.so.dng_clear_error()
                h = fn(*a)
                if not h:
                    raise DngError("%s returned NULL: %s"
                                   % (name, self.error_text()))
                return h
            return constructed
        fn.restype = res
        return fn


_LIB = None


def lib():
    """The library, loaded once per process."""
    global _LIB
    if _LIB is None:
        _LIB = _Lib(LIBRARY)
    return _LIB


def _shape_arg(shape):
    return (C.c_int64 * len(shape))(*[int(s) for s in shape])


def _fptr(a):
    return a.ctypes.data_as(_f32p)


# ---- tensors ---------------------------------------------------------------

class Tensor:
    """An owned dng_tensor holding a copy of a numpy array."""

    def __init__(self, array):
        a = np.ascontiguousarray(array, dtype=np.float32)
        if a.ndim == 0:
            a = a.reshape(1)
        self.shape = a.shape
        self.handle = lib().dng_tensor_from_data(a.ndim, _shape_arg(a.shape),
                                                 _fptr(a))

    def numpy(self):
        return to_numpy(self.handle)

    def close(self):
        if self.handle:
            lib().dng_tensor_destroy(self.handle)
            self.handle = None

    def __del__(self):
        self.close()


def to_numpy(handle):
    """Copy a (possibly borrowed) dng_tensor into a new numpy array."""
    L = lib()
    if not handle:
        raise DngError("NULL tensor: %s" % L.error_text())
    nd = L.dng_tensor_ndim(handle)
    if nd < 1:
        raise DngError("dng_tensor_ndim gave %d" % nd)
    shape = (C.c_int64 * nd)()
    L.dng_tensor_shape(handle, shape)
    out = np.empty(tuple(shape), dtype=np.float32)
    if L.dng_tensor_numel(handle) != out.size:
        raise DngError("dng_tensor_numel disagrees with the shape")
    L.dng_tensor_copy_out(handle, _fptr(out), out.size)
    return out


def copy_into(handle, array):
    """Overwrite a (borrowed) dng_tensor's values; shapes must match."""
    a = np.ascontiguousarray(array, dtype=np.float32)
    L = lib()
    nd = L.dng_tensor_ndim(handle)
    shape = (C.c_int64 * nd)()
    L.dng_tensor_shape(handle, shape)
    if tuple(shape) != a.shape:
        raise ValueError("shape %s does not match the library's %s"
                         % (a.shape, tuple(shape)))
    L.dng_tensor_copy_in(handle, _fptr(a), a.size)


# ---- layers ----------------------------------------------------------------

def dense(i, o):
    return lib().dng_dense(i, o)


def conv2d(cin, cout, kh, kw, stride, pad):
    return lib().dng_conv2d(cin, cout, kh, kw, stride, pad)


def conv2d_transpose(cin, cout, kh, kw, stride, pad):
    return lib().dng_conv2d_transpose(cin, cout, kh, kw, stride, pad)


def maxpool2d(k, stride):
    return lib().dng_maxpool2d(k, stride)


def avgpool2d(k, stride):
    return lib().dng_avgpool2d(k, stride)


def batchnorm(c):
    return lib().dng_batchnorm(c)


def layernorm(f):
    return lib().dng_layernorm(f)


def dropout(p):
    return lib().dng_dropout(p)


def activation(kind, param=0.0):
    return lib().dng_activation(kind, param)


def reshape(shape):
    return lib().dng_reshape(len(shape), _shape_arg(shape))


def flatten():
    return lib().dng_flatten()


def spectral_norm(inner):
    return lib().dng_spectral_norm(inner)


# ---- networks --------------------------------------------------------------

class Net:
    """A dng_net with numpy in and out. Parameters and buffers are looked
    up by their PyTorch-style names ("0.weight", "1.running_mean")."""

    def __init__(self, sample_shape, layers=()):
        L = lib()
        self.handle = L.dng_net_create(len(sample_shape),
                                       _shape_arg(sample_shape))
        for layer in layers:
            self.add(layer)

    def add(self, layer):
        # dng_net_add owns the layer from here on, even when it fails.
        lib().dng_net_add(self.handle, layer)

    def close(self):
        if self.handle:
            lib().dng_net_destroy(self.handle)
            self.handle = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def train(self, on=True):
        lib().dng_net_set_training(self.handle, 1 if on else 0)
        return self

    def eval(self):
        return self.train(False)

    def seed(self, s):
        lib().dng_net_set_seed(self.handle, s)

    def forward(self, x):
        t = Tensor(x)
        y = C.c_void_p()
        lib().dng_net_forward(self.handle, t.handle, C.byref(y))
        out = to_numpy(y.value)
        t.close()
        return out

    def backward(self, dy, want_dx=True):
        t = Tensor(dy)
        dx = C.c_void_p()
        lib().dng_net_backward(self.handle, t.handle,
                               C.byref(dx) if want_dx else None)
        t.close()
        return to_numpy(dx.value) if want_dx else None

    def zero_grad(self):
        lib().dng_net_zero_grad(self.handle)

    # parameters and buffers by name
    def param_names(self):
        L = lib()
        n = L.dng_net_num_params(self.handle)
        return [L.dng_net_param_name(self.handle, i).decode()
                for i in range(n)]

    def buffer_names(self):
        L = lib()
        n = L.dng_net_num_buffers(self.handle)
        return [L.dng_net_buffer_name(self.handle, i).decode()
                for i in range(n)]

    def _param_index(self, name):
        names = self.param_names()
        if name not in names:
            raise KeyError("no parameter %r; the net has %s" % (name, names))
        return names.index(name)

    def _buffer_index(self, name):
        names = self.buffer_names()
        if name not in names:
            raise KeyError("no buffer %r; the net has %s" % (name, names))
        return names.index(name)

    def param(self, name):
        h = lib().dng_net_param(self.handle, self._param_index(name))
        return to_numpy(h)

    def grad(self, name):
        h = lib().dng_net_grad(self.handle, self._param_index(name))
        return to_numpy(h)

    def buffer(self, name):
        h = lib().dng_net_buffer(self.handle, self._buffer_index(name))
        return to_numpy(h)

    def set_param(self, name, value):
        copy_into(lib().dng_net_param(self.handle, self._param_index(name)),
                  value)

    def set_grad(self, name, value):
        copy_into(lib().dng_net_grad(self.handle, self._param_index(name)),
                  value)

    def set_buffer(self, name, value):
        copy_into(lib().dng_net_buffer(self.handle,
                                       self._buffer_index(name)), value)

    def save_safetensors(self, path):
        lib().dng_net_save_safetensors(self.handle, os.fsencode(path))

    def load_safetensors(self, path):
        lib().dng_net_load_safetensors(self.handle, os.fsencode(path))

    def load_torch(self, module, prefix=""):
        """Copy every parameter and buffer of a torch module whose name the
        net also has (num_batches_tracked has no counterpart here)."""
        own = set(self.param_names())
        bufs = set(self.buffer_names())
        for name, p in module.named_parameters():
            key = prefix + name
            if key not in own:
                raise KeyError("torch parameter %r has no counterpart in %s"
                               % (key, sorted(own)))
            self.set_param(key, p.detach().numpy())
        for name, b in module.named_buffers():
            key = prefix + name
            if key.endswith("num_batches_tracked"):
                continue
            if key not in bufs:
                raise KeyError("torch buffer %r has no counterpart in %s"
                               % (key, sorted(bufs)))
            self.set_buffer(key, b.detach().numpy())


# ---- losses ----------------------------------------------------------------

def loss(kind, pred, target, want_grad=True):
    """(value, grad or None) of dng_loss."""
    p, t = Tensor(pred), Tensor(target)
    g = Tensor(np.zeros_like(pred)) if want_grad else None
    v = C.c_float(np.nan)
    lib().dng_loss(kind, p.handle, t.handle, C.byref(v),
                   g.handle if g else None)
    grad = g.numpy() if g else None
    return v.value, grad


# ---- optimizers ------------------------------------------------------------

class Optim:
    def __init__(self, handle):
        self.handle = handle

    @classmethod
    def sgd(cls, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        return cls(lib().dng_sgd(lr, momentum, int(nesterov), weight_decay))

    @classmethod
    def adam(cls, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        return cls(lib().dng_adam(lr, beta1, beta2, eps, weight_decay))

    @classmethod
    def adamw(cls, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
        return cls(lib().dng_adamw(lr, beta1, beta2, eps, weight_decay))

    @classmethod
    def rmsprop(cls, lr, alpha=0.99, eps=1e-8, momentum=0.0,
                weight_decay=0.0):
        return cls(lib().dng_rmsprop(lr, alpha, eps, momentum, weight_decay))

    def step(self, net):
        lib().dng_optim_step(self.handle, net.handle)

    def lr(self):
        return lib().dng_optim_get_lr(self.handle)

    def set_lr(self, lr):
        lib().dng_optim_set_lr(self.handle, lr)

    def set_schedule(self, kind, period=1, gamma=1.0, min_lr=0.0):
        lib().dng_optim_set_schedule(self.handle, kind, period, gamma, min_lr)

    def schedule_step(self):
        lib().dng_optim_schedule_step(self.handle)

    def set_clip_norm(self, max_norm):
        lib().dng_optim_set_clip_norm(self.handle, max_norm)

    def close(self):
        if self.handle:
            lib().dng_optim_destroy(self.handle)
            self.handle = None

    def __del__(self):
        self.close()


# ---- comparisons -----------------------------------------------------------

# rtol is the brief's 1e-4. The absolute tolerance is relative to the
# largest reference magnitude: a float32 sum of K terms carries an
# absolute error of order K * 2^-24 * max|term|, so an element that
# cancels to nearly zero has an unbounded *relative* error while being as
# accurate as its neighbours. 1e-5 of the array's scale is ~170 ulp of the
# largest value: far below any real bug (a wrong index, a missing term or
# a wrong scale moves elements by a large fraction of the scale).
RTOL = 1e-4
ATOL_SCALE = 1e-5


def assert_close(actual, expected, rtol=RTOL, atol_scale=ATOL_SCALE,
                 what=""):
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == expected.shape, \
        "%s: shape %s, expected %s" % (what, actual.shape, expected.shape)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol,
                               atol=atol_scale * scale, err_msg=what)
