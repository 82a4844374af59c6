"""dnngen: a Python binding of libdnngen over ctypes.

libdnngen builds, trains and runs deep neural networks (GANs first). This
package is pure Python: it loads the shared library with :mod:`ctypes`
(see :mod:`dnngen._capi` for where it looks) and wraps every function of
the public C API, ``include/dnngen.h``, in Python objects.

Rules that hold throughout:

* Errors. Every failing library call raises :class:`Error`, which carries
  the library's :class:`Status` (``.status``) and the text of
  ``dng_last_error()`` (``.message``). A constructor that fails returns
  NULL in C, which carries no status code: the :class:`Error` then has
  ``status`` None and the message. Wrong Python types raise
  :class:`TypeError`; integers that do not fit the C type raise
  :class:`OverflowError`. Using an object after :meth:`close` raises
  :class:`Error` with :attr:`Status.ERR_STATE`.
* Ownership. Objects free their C handle when garbage-collected, or at
  once with ``close()`` or a ``with`` block. A :class:`Layer` added to a
  :class:`Net` belongs to the network from then on: the Python object
  keeps the network alive and never frees the layer. Tensors *borrowed*
  from a network (outputs, parameters, gradients, buffers) or a dataset
  keep their owner alive and are never freed by Python.
* Borrowed outputs. ``Net.forward()`` and ``Net.backward()`` return
  tensors that the next run of the same network overwrites (and may
  reallocate): using one afterwards raises :class:`Error` (stale). Take a
  copy with ``.numpy()`` to keep the values.
* numpy. ``Tensor.from_numpy`` copies; ``Tensor.wrap`` shares a float32
  C-contiguous array without copying and keeps the array alive.
  ``Tensor.numpy()`` returns a copy; ``Tensor.numpy(copy=False)`` returns
  a view on the tensor's memory, which keeps the tensor (and its owner)
  alive for as long as the view lives, even across ``close()``.
* Threads. As in C: one object is used by one thread at a time; different
  objects may be used from different threads.

Example::

    import numpy as np, dnngen as dg
    net = dg.Net([2], [dg.dense(2, 8), dg.tanh(), dg.dense(8, 1)])
    opt = dg.Adam(lr=0.05)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([[0], [1], [1], [0]], np.float32)
    for _ in range(300):
        net.zero_grad()
        value, grad = dg.loss(dg.Loss.MSE, net.forward(x), y, grad=True)
        net.backward(grad)
        opt.step(net)
"""
import contextlib
import ctypes as C
import dataclasses
import enum
import numbers
import operator
import os
import re
import weakref
from collections import OrderedDict

import numpy as np

from . import _capi
from ._capi import MAX_DIMS, library_path

_lib = _capi.lib

__all__ = [
    # version, errors, threads
    "__version__", "version", "version_string", "library_path",
    "has_symbol", "MAX_DIMS", "Status", "Error", "status_string",
    "last_error", "clear_error", "set_num_threads", "get_num_threads",
    # enums
    "Act", "Init", "Loss", "Schedule", "GanLoss", "Noise",
    # objects
    "Rng", "Tensor", "Layer", "Net", "Optimizer", "SGD", "Adam", "AdamW",
    "RMSprop", "Dataset", "GAN",
    # layers
    "dense", "conv2d", "conv2d_transpose", "maxpool2d", "avgpool2d",
    "batchnorm", "layernorm", "dropout", "activation", "relu",
    "leaky_relu", "sigmoid", "tanh", "softmax", "gelu", "identity",
    "reshape", "flatten", "spectral_norm",
    # functions
    "as_tensor", "loss", "fit", "evaluate", "FitProgress", "GanStats",
    "GanProgress", "write_image_grid", "frechet_distance",
]


# ---- enums -----------------------------------------------------------------

class Status(enum.IntEnum):
    """dng_status: 0 is success, errors are negative and never renumbered."""
    OK = 0
    ERR_INVALID_ARGUMENT = -1
    ERR_SHAPE = -2
    ERR_OUT_OF_MEMORY = -3
    ERR_IO = -4
    ERR_FORMAT = -5
    ERR_STATE = -6
    ERR_NUMERIC = -7
    ERR_UNSUPPORTED = -8


class Act(enum.IntEnum):
    """dng_act: activation functions for :func:`activation`."""
    RELU = 0
    LEAKY_RELU = 1
    SIGMOID = 2
    TANH = 3
    SOFTMAX = 4
    GELU = 5
    IDENTITY = 6


class Init(enum.IntEnum):
    """dng_init: weight initialisation schemes for :meth:`Net.init`."""
    DEFAULT = 0
    XAVIER_UNIFORM = 1
    HE_NORMAL = 2
    NORMAL_002 = 3


class Loss(enum.IntEnum):
    """dng_loss_kind: loss functions (PyTorch's 'mean' reduction)."""
    MSE = 0
    BCE_WITH_LOGITS = 1
    CROSS_ENTROPY = 2
    HINGE = 3


class Schedule(enum.IntEnum):
    """dng_schedule: learning-rate schedules for
    :meth:`Optimizer.set_schedule`."""
    CONSTANT = 0
    STEP = 1
    EXPONENTIAL = 2
    COSINE = 3
    WARMUP_LINEAR = 4


class GanLoss(enum.IntEnum):
    """dng_gan_loss: adversarial losses for :meth:`GAN.set_loss`."""
    BCE = 0
    HINGE = 1
    LSGAN = 2
    WASSERSTEIN = 3


class Noise(enum.IntEnum):
    """dng_noise: latent distributions for :meth:`GAN.set_noise`."""
    NORMAL = 0
    UNIFORM = 1


_ENUM_ALIASES = {GanLoss: {"WGAN": GanLoss.WASSERSTEIN},
                 Loss: {"BCE": Loss.BCE_WITH_LOGITS,
                        "CE": Loss.CROSS_ENTROPY}}


def _enum(cls, value, what):
    """An enum argument as a C int: a member, a plain int (passed on for
    the library to check) or a member name such as "relu"."""
    if isinstance(value, str):
        key = value.strip().upper().replace("-", "_")
        if key in cls.__members__:
            return int(cls.__members__[key])
        if key in _ENUM_ALIASES.get(cls, {}):
            return int(_ENUM_ALIASES[cls][key])
        raise ValueError("%s: unknown %s %r (one of %s)"
                         % (what, cls.__name__, value,
                            ", ".join(m.lower() for m in cls.__members__)))
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError("%s: expected a %s, its name or an int, not %s"
                        % (what, cls.__name__, type(value).__name__))
    return _cint(value, what)


# ---- errors ----------------------------------------------------------------

def status_string(status):
    """A short description of a status code, e.g. "shape mismatch"."""
    return _lib.dng_status_string(_cint(status, "status")).decode()


def last_error():
    """The message of the calling thread's last failed library call."""
    return _lib.dng_last_error().decode("utf-8", "replace")


def clear_error():
    """Forget the calling thread's last error message."""
    _lib.dng_clear_error()


class Error(Exception):
    """A libdnngen call failed.

    Attributes:
        status: the :class:`Status` the function returned, or None when the
            failure was signalled by a NULL return (constructors and
            loaders), which carries no code.
        message: the library's message (``dng_last_error()``), naming the
            function and the argument at fault.
        function: the C function that failed (or the Python method, for
            failures detected before reaching C).
    """

    def __init__(self, status, message, function=None):
        self.status = None if status is None else _as_status(status)
        self.message = message
        self.function = function
        super().__init__(message)

    def __reduce__(self):
        return (Error, (self.status, self.message, self.function))

    @property
    def status_name(self):
        """The status as its C name, e.g. "DNG_ERR_SHAPE" (None without a
        status)."""
        if self.status is None:
            return None
        if isinstance(self.status, Status):
            return "DNG_" + self.status.name
        return str(self.status)

    def __str__(self):
        if self.status is None:
            return self.message
        return "%s [%s: %s]" % (self.message, self.status_name,
                                _lib.dng_status_string(int(self.status))
                                .decode())


def _as_status(s):
    try:
        return Status(int(s))
    except ValueError:
        return int(s)


def _fail(status, function, fallback=None):
    msg = last_error() or fallback or "%s failed" % function
    raise Error(status, msg, function)


_FUNCTIONS = {name: getattr(_lib, name) for name in _capi.SIGNATURES
              if _capi.has_symbol(name)}


def _fn(name):
    fn = _FUNCTIONS.get(name)
    if fn is None:
        raise Error(Status.ERR_UNSUPPORTED, "%s is not exported by %s (a "
                    "libdnngen without this feature)" % (name, library_path),
                    name)
    return fn


def _invoke(name, args):
    fn = _fn(name)
    _lib.dng_clear_error()
    try:
        return fn(*args)
    except C.ArgumentError as e:
        raise TypeError("%s: %s" % (name, e)) from None


def _call(name, *args):
    """Call a function returning dng_status; raise Error when negative."""
    s = _invoke(name, args)
    if s < 0:
        _fail(s, name)
    return s


def _make(name, *args, status=None):
    """Call a constructor; raise Error when it returns NULL."""
    p = _invoke(name, args)
    if not p:
        _fail(status, name, "%s returned NULL" % name)
    return p


def _stale_error(what, function):
    return Error(Status.ERR_STATE, what, function)


def version():
    """The loaded library's version as major * 10000 + minor * 100 + patch."""
    return _lib.dng_version()


def version_string():
    """The loaded library's version as a string, e.g. "0.1.0"."""
    return _lib.dng_version_string().decode()


__version__ = version_string()


def has_symbol(name):
    """Whether the loaded library exports the C function ``name`` (for
    optional features such as ``dng_net_save_safetensors``)."""
    return _capi.has_symbol(name)


def set_num_threads(n):
    """Set the process-wide thread count of BLIS and the library's loops
    (0 means the number of online processors)."""
    _call("dng_set_num_threads", _cint(n, "n"))


def get_num_threads():
    """The thread count in force."""
    return _lib.dng_get_num_threads()


# ---- argument conversion ---------------------------------------------------

_INT_LIMITS = {"int": (-2 ** 31, 2 ** 31 - 1),
               "int64": (-2 ** 63, 2 ** 63 - 1),
               "uint64": (0, 2 ** 64 - 1)}


def _integer(value, what, kind):
    if isinstance(value, bool):
        raise TypeError("%s must be an integer, not bool" % what)
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError("%s must be an integer, not %s"
                        % (what, type(value).__name__)) from None
    lo, hi = _INT_LIMITS[kind]
    if not lo <= v <= hi:
        raise OverflowError("%s = %d does not fit a C %s" % (what, v, kind))
    return v


def _cint(value, what):
    return _integer(value, what, "int")


def _i64(value, what):
    return _integer(value, what, "int64")


def _u64(value, what):
    return _integer(value, what, "uint64")


def _float(value, what):
    if isinstance(value, (str, bytes)) or not isinstance(value,
                                                         numbers.Real):
        raise TypeError("%s must be a number, not %s"
                        % (what, type(value).__name__))
    return float(value)


def _path(p, what="path"):
    try:
        return os.fsencode(os.fspath(p))
    except TypeError:
        raise TypeError("%s must be a str, bytes or os.PathLike, not %s"
                        % (what, type(p).__name__)) from None


def _shape(shape, what="shape"):
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(_i64(s, what) for s in shape)
    except TypeError:
        if not hasattr(shape, "__iter__"):
            raise TypeError("%s must be a sequence of integers, not %s"
                            % (what, type(shape).__name__)) from None
        raise
    if len(dims) > 64:
        # The library rejects it anyway; this only bounds the C array.
        raise Error(Status.ERR_INVALID_ARGUMENT, "%s has %d dimensions; at "
                    "most %d are allowed" % (what, len(dims), MAX_DIMS),
                    what)
    return dims


def _shape_arg(dims):
    return (C.c_int64 * max(len(dims), 1))(*dims)


def _addr(ptr):
    return C.cast(ptr, C.c_void_p).value


def _check(obj, cls, what, allow_none=False):
    if obj is None and allow_none:
        return None
    if not isinstance(obj, cls):
        raise TypeError("%s must be a dnngen.%s, not %s"
                        % (what, cls.__name__, type(obj).__name__))
    return obj


def _rng_arg(rng, what="rng"):
    """An optional Rng argument as a pointer (None means NULL)."""
    if rng is None:
        return None
    return _check(rng, Rng, what)._p()


# ---- the handle base class -------------------------------------------------

class _Handle:
    """A Python object owning (or borrowing) one C handle.

    Subclasses set _destroy to the C destructor. close() releases the handle
    at once unless numpy views of its memory are alive; then the release
    waits until the last view is gone (the views hold a reference), so
    that a view can never point at freed memory.
    """
    _destroy = None
    _what = "object"
    _ptr = None
    _owns = False
    _closed = True
    _views = ()

    def _init_handle(self, ptr, owns=True):
        self._ptr = ptr
        self._owns = owns
        self._closed = False
        self._views = ()      # a WeakSet once a numpy view is made

    def _p(self):
        """The C pointer, or Error when the object was closed."""
        if self._closed or not self._ptr:
            raise Error(Status.ERR_STATE, "%s has been closed or destroyed"
                        % self._describe(), type(self).__name__)
        return self._ptr

    def _describe(self):
        return "this %s" % self._what

    @property
    def closed(self):
        """True once close() was called (or the handle was consumed)."""
        return self._closed or not self._ptr

    def close(self):
        """Release the C handle now (idempotent). Using the object
        afterwards raises Error. When numpy views of its memory are alive,
        the memory itself is freed after the last view goes."""
        if self._closed:
            return
        self._closed = True
        if not len(self._views):
            self._release()

    def _view_released(self, view):
        if self._closed and not any(v is not view for v in self._views):
            self._release()

    def _release(self):
        p, self._ptr = self._ptr, None
        if p and self._owns and type(self)._destroy is not None:
            type(self)._destroy(p)

    def __enter__(self):
        self._p()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self._release()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass


class _ArrayView:
    """The base object of a numpy view on library memory: keeps the tensor
    and the memory's owner alive while any array derived from it lives."""

    def __init__(self, tensor, root, address, shape):
        self.__array_interface__ = {"version": 3, "shape": tuple(shape),
                                    "typestr": "<f4",
                                    "data": (address, False)}
        self._tensor = tensor
        self._root = root
        if not isinstance(root._views, weakref.WeakSet):
            root._views = weakref.WeakSet()
        root._views.add(self)

    def __del__(self):
        try:
            self._root._view_released(self)
        except Exception:  # noqa: BLE001
            pass


# ---- random numbers --------------------------------------------------------

class Rng(_Handle):
    """A Philox4x32-10 random number generator (dng_rng): same seed, same
    stream on every host.

    Args:
        seed: an integer in [0, 2**64).
    """
    _destroy = _lib.dng_rng_destroy
    _what = "Rng"

    def __init__(self, seed=0):
        self.seed = _u64(seed, "seed")
        self._init_handle(_make("dng_rng_create", self.seed))

    def __repr__(self):
        return "Rng(seed=%d)%s" % (self.seed, " (closed)" if self.closed
                                   else "")

    def _draw(self, fn, size, a, b):
        dims = _shape(size, "size")
        n = int(np.prod(dims, dtype=np.int64)) if dims else 1
        out = np.empty(dims, dtype=np.float32)
        _call(fn, self._p(), out.ctypes.data_as(_capi.f32p), _i64(n, "n"),
              _float(a, "bound"), _float(b, "bound"))
        return out

    def uniform(self, size, lo=0.0, hi=1.0):
        """A float32 array of shape ``size`` (int or tuple) with values
        uniform in [lo, hi)."""
        return self._draw("dng_rng_uniform", size, lo, hi)

    def normal(self, size, mean=0.0, std=1.0):
        """A float32 array of shape ``size`` with values from
        N(mean, std**2)."""
        return self._draw("dng_rng_normal", size, mean, std)

    def get_state(self):
        """The complete state (key and counter) as a tuple of 4 ints."""
        st = (C.c_uint64 * 4)()
        _call("dng_rng_get_state", self._p(), st)
        return tuple(int(v) for v in st)

    def set_state(self, state):
        """Restore a state obtained from get_state()."""
        vals = [_u64(v, "state") for v in state]
        if len(vals) != 4:
            raise Error(Status.ERR_INVALID_ARGUMENT, "Rng.set_state: state "
                        "must hold 4 integers, not %d" % len(vals),
                        "Rng.set_state")
        _call("dng_rng_set_state", self._p(), (C.c_uint64 * 4)(*vals))

    state = property(get_state, set_state,
                     doc="The generator's state (see get_state()).")


# ---- tensors ---------------------------------------------------------------

class Tensor(_Handle):
    """A dense float32 tensor (dng_tensor) of 1 to MAX_DIMS dimensions.

    ``Tensor(shape)`` creates zeros. See also :meth:`from_numpy` (copy),
    :meth:`wrap` (zero-copy over a numpy array), :meth:`load_npy` and
    :func:`as_tensor`. Tensors returned by networks and datasets are
    borrowed: they keep their owner alive and are never freed by Python.
    """
    _destroy = _lib.dng_tensor_destroy
    _what = "Tensor"
    _owner = None      # the handle the memory belongs to (borrowed)
    _array = None      # the numpy array a wrapped tensor shares
    _stamp = None      # (counter name, value) of a volatile borrowed tensor

    def __init__(self, shape):
        dims = _shape(shape)
        self._init_handle(_make("dng_tensor_create", len(dims),
                                _shape_arg(dims)))

    @classmethod
    def _new(cls, ptr, owns=True, owner=None, array=None, stamp=None):
        t = cls.__new__(cls)
        t._init_handle(ptr, owns)
        t._owner = owner
        t._array = array
        t._stamp = stamp
        return t

    @classmethod
    def zeros(cls, shape):
        """A new tensor of zeros."""
        return cls(shape)

    @classmethod
    def from_numpy(cls, array):
        """A new tensor holding a float32 copy of ``array`` (any array-like;
        a scalar becomes a one-element tensor)."""
        a = np.ascontiguousarray(array, dtype=np.float32)
        return cls._new(_make("dng_tensor_from_data", a.ndim,
                              _shape_arg(a.shape),
                              a.ctypes.data_as(_capi.f32p)))

    @classmethod
    def wrap(cls, array):
        """A tensor over ``array``'s memory, without copying
        (dng_tensor_wrap). ``array`` must be a writeable, C-contiguous
        numpy float32 array; the tensor keeps it alive, and writes through
        either are seen by both. Do not resize the array in place."""
        if not isinstance(array, np.ndarray):
            raise TypeError("Tensor.wrap: array must be a numpy.ndarray, "
                            "not %s" % type(array).__name__)
        if array.dtype != np.float32:
            raise TypeError("Tensor.wrap: array has dtype %s; float32 is "
                            "needed (use Tensor.from_numpy to convert)"
                            % array.dtype)
        if not array.flags.c_contiguous or not array.flags.writeable:
            raise ValueError("Tensor.wrap: array must be C-contiguous and "
                             "writeable (use Tensor.from_numpy to copy)")
        return cls._new(_make("dng_tensor_wrap", array.ndim,
                              _shape_arg(array.shape),
                              array.ctypes.data_as(_capi.f32p)),
                        array=array)

    @classmethod
    def load_npy(cls, path):
        """Load a float32 C-order .npy file (other dtypes are rejected)."""
        return cls._new(_make("dng_tensor_load_npy", _path(path)))

    # Borrowed tensors check that their owner is alive and, for outputs
    # the next run overwrites, that no run happened since.
    def _p(self):
        p = super()._p()
        owner = self._owner
        if owner is not None:
            if owner.closed:
                raise Error(Status.ERR_STATE, "this Tensor is borrowed from "
                            "a %s that has been closed" % owner._what,
                            "Tensor")
            if self._stamp is not None and \
                    getattr(owner, self._stamp[0]) != self._stamp[1]:
                raise _stale_error(
                    "this Tensor is a stale borrowed %s: the %s ran again "
                    "since and overwrote it (copy values with .numpy() "
                    "before the next call)" % (self._stamp[2], owner._what),
                    "Tensor")
        return p

    def _release(self):
        self._array = None
        super()._release()

    @property
    def borrowed(self):
        """True for a tensor that belongs to a network or dataset."""
        return self._owner is not None

    @property
    def ndim(self):
        """Number of dimensions."""
        return _lib.dng_tensor_ndim(self._p())

    @property
    def shape(self):
        """The shape as a tuple of ints."""
        p = self._p()
        n = _lib.dng_tensor_ndim(p)
        out = (C.c_int64 * MAX_DIMS)()
        _call("dng_tensor_shape", p, out)
        return tuple(int(out[i]) for i in range(n))

    def dim(self, axis):
        """Size of one dimension (negative axes count from the end)."""
        d = _invoke("dng_tensor_dim", (self._p(), _cint(axis, "axis")))
        if d < 0:
            _fail(Status.ERR_INVALID_ARGUMENT, "dng_tensor_dim",
                  "dng_tensor_dim: axis %d is out of range for %d "
                  "dimensions" % (axis, self.ndim))
        return d

    @property
    def numel(self):
        """Number of elements."""
        return _lib.dng_tensor_numel(self._p())

    size = numel

    def __len__(self):
        return self.dim(0)

    def data_ptr(self):
        """The address of the tensor's floats (valid while it lives and
        keeps its size)."""
        return _addr(_lib.dng_tensor_data(self._p()))

    def numpy(self, copy=True):
        """The values as a numpy float32 array.

        Args:
            copy: True (default) for an independent copy. False for a view
                on the tensor's memory: writes go to the tensor; the view
                keeps the tensor and its owner alive. Views of network
                outputs and input gradients are refused (the next run may
                move that memory): copy those.
        """
        p = self._p()
        shape = self.shape
        if copy:
            out = np.empty(shape, dtype=np.float32)
            _call("dng_tensor_copy_out", p, out.ctypes.data_as(_capi.f32p),
                  out.size)
            return out
        if self._array is not None:
            return self._array.reshape(shape)
        if self._stamp is not None:
            raise Error(Status.ERR_STATE, "Tensor.numpy(copy=False): a "
                        "borrowed %s is overwritten by the next run of its "
                        "%s; take a copy instead" % (self._stamp[2],
                                                     self._owner._what),
                        "Tensor.numpy")
        root = self._owner if self._owner is not None else self
        view = _ArrayView(self, root, _addr(_lib.dng_tensor_data(p)), shape)
        return np.asarray(view)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def copy_from(self, array):
        """Copy values in (dng_tensor_copy_in); the element count must
        equal numel."""
        a = np.ascontiguousarray(array, dtype=np.float32)
        _call("dng_tensor_copy_in", self._p(),
              a.ctypes.data_as(_capi.f32p), _i64(a.size, "n"))
        return self

    def clone(self):
        """A new owned tensor with a copy of the values and shape."""
        return Tensor.from_numpy(self.numpy())

    def fill(self, value):
        """Set every element to ``value``."""
        _call("dng_tensor_fill", self._p(), _float(value, "value"))
        return self

    def fill_uniform(self, rng, lo=0.0, hi=1.0):
        """Fill with values uniform in [lo, hi) drawn from ``rng``."""
        _call("dng_tensor_fill_uniform", self._p(), _rng_arg(rng),
              _float(lo, "lo"), _float(hi, "hi"))
        return self

    def fill_normal(self, rng, mean=0.0, std=1.0):
        """Fill with values from N(mean, std**2) drawn from ``rng``."""
        _call("dng_tensor_fill_normal", self._p(), _rng_arg(rng),
              _float(mean, "mean"), _float(std, "std"))
        return self

    def reshape(self, shape):
        """Give the tensor a new shape with the same element count, in
        place (no copy). Borrowed tensors cannot be reshaped: their owner
        relies on their shape."""
        if self._owner is not None:
            raise Error(Status.ERR_STATE, "Tensor.reshape: a borrowed tensor "
                        "belongs to its %s and keeps its shape"
                        % self._owner._what, "Tensor.reshape")
        dims = _shape(shape)
        _call("dng_tensor_reshape", self._p(), len(dims), _shape_arg(dims))
        return self

    def save_npy(self, path):
        """Save as a NumPy .npy file (float32, C order)."""
        _call("dng_tensor_save_npy", self._p(), _path(path))

    def __repr__(self):
        if self.closed:
            return "Tensor(closed)"
        try:
            shape = self.shape
        except Error as e:
            return "Tensor(%s)" % e.message
        return "Tensor(shape=%s%s)" % (list(shape), ", borrowed"
                                       if self.borrowed else "")


@contextlib.contextmanager
def _tensor_arg(x, what):
    """The C pointer of a Tensor, or of a temporary tensor over an
    array-like (zero-copy when it is float32 C-contiguous), for one call."""
    if isinstance(x, Tensor):
        yield x._p()
        return
    if x is None:
        raise TypeError("%s must be a Tensor or an array, not None" % what)
    if isinstance(x, _Handle):
        raise TypeError("%s must be a Tensor or an array, not %s"
                        % (what, type(x).__name__))
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError("%s must hold real numbers, not %s (dtype %s)"
                        % (what, type(x).__name__, a.dtype))
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not a.flags.writeable:
        a = a.copy()
    t = Tensor.wrap(a)
    try:
        yield t._p()
    finally:
        t.close()


def as_tensor(x):
    """A Tensor for ``x``: ``x`` itself if it is a Tensor, a zero-copy wrap
    of a writeable float32 C-contiguous numpy array, else a copy."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray) and x.dtype == np.float32 and \
            x.flags.c_contiguous and x.flags.writeable:
        return Tensor.wrap(x)
    return Tensor.from_numpy(x)


# ---- layers ----------------------------------------------------------------

class Layer(_Handle):
    """A layer (dng_layer), made by the factory functions such as
    :func:`dense` and :func:`conv2d`.

    A layer belongs to the caller until :meth:`Net.add` takes it; then the
    network frees it, this object keeps the network alive, and close() only
    marks it closed. A layer that a failed :meth:`Net.add` destroyed, or
    that :func:`spectral_norm` took, can no longer be used.
    """
    _destroy = _lib.dng_layer_destroy
    _what = "Layer"
    _net = None
    _gone = None

    def __init__(self, *a, **k):
        raise TypeError("use the layer functions (dnngen.dense, ...) to "
                        "create layers")

    @classmethod
    def _new(cls, ptr, kind):
        layer = cls.__new__(cls)
        layer._init_handle(ptr)
        layer.kind = kind
        return layer

    def _describe(self):
        if self._gone:
            return "layer %s (%s)" % (self.kind, self._gone)
        return "layer %s" % self.kind

    def _p(self):
        if self._net is not None and self._net.closed:
            raise Error(Status.ERR_STATE, "layer %s belongs to a Net that "
                        "has been closed" % self.kind, "Layer")
        return super()._p()

    def _consume(self, why):
        self._ptr = None
        self._closed = True
        self._gone = why

    def _release(self):
        # A layer owned by a network is freed with it, never alone.
        if self._net is None:
            super()._release()
        else:
            self._ptr = None

    @property
    def net(self):
        """The Net that owns this layer, or None."""
        return self._net

    def __repr__(self):
        state = ""
        if self._gone:
            state = " (%s)" % self._gone
        elif self._net is not None:
            state = " (in a Net)"
        elif self.closed:
            state = " (closed)"
        return "<Layer %s%s>" % (self.kind, state)


def _layer(name, kind, *args):
    return Layer._new(_make(name, *args), kind)


def dense(in_features, out_features):
    """Fully connected layer y = x W^T + b on [N, in]; W is [out, in]."""
    i, o = _i64(in_features, "in_features"), _i64(out_features,
                                                   "out_features")
    return _layer("dng_dense", "dense(%d, %d)" % (i, o), i, o)


def conv2d(in_ch, out_ch, kernel_size, stride=1, padding=0):
    """2-D convolution on [N, in_ch, H, W]; ``kernel_size`` is an int or a
    (kh, kw) pair; square stride and zero padding."""
    kh, kw = _pair(kernel_size, "kernel_size")
    args = (_i64(in_ch, "in_ch"), _i64(out_ch, "out_ch"), kh, kw,
            _cint(stride, "stride"), _cint(padding, "padding"))
    return _layer("dng_conv2d", "conv2d(%d, %d, %dx%d, stride %d, pad %d)"
                  % args, *args)


def conv2d_transpose(in_ch, out_ch, kernel_size, stride=1, padding=0):
    """2-D transposed convolution; output H' = (H - 1) stride - 2 pad + kh.
    The weight is [in_ch, out_ch, kh, kw] as in PyTorch."""
    kh, kw = _pair(kernel_size, "kernel_size")
    args = (_i64(in_ch, "in_ch"), _i64(out_ch, "out_ch"), kh, kw,
            _cint(stride, "stride"), _cint(padding, "padding"))
    return _layer("dng_conv2d_transpose", "conv2d_transpose(%d, %d, %dx%d, "
                  "stride %d, pad %d)" % args, *args)


def _pair(v, what):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise TypeError("%s must be an int or a pair" % what)
        return _cint(v[0], what), _cint(v[1], what)
    v = _cint(v, what)
    return v, v


def maxpool2d(kernel_size, stride=None):
    """Max pooling over k x k windows (no padding, floor mode); the stride
    defaults to the window size."""
    k = _cint(kernel_size, "kernel_size")
    s = k if stride is None else _cint(stride, "stride")
    return _layer("dng_maxpool2d", "maxpool2d(%d, stride %d)" % (k, s), k, s)


def avgpool2d(kernel_size, stride=None):
    """Average pooling over k x k windows (no padding, floor mode)."""
    k = _cint(kernel_size, "kernel_size")
    s = k if stride is None else _cint(stride, "stride")
    return _layer("dng_avgpool2d", "avgpool2d(%d, stride %d)" % (k, s), k, s)


def batchnorm(channels):
    """Batch normalisation over [N, C] or [N, C, H, W] (eps 1e-5, momentum
    0.1, affine, running statistics for evaluation mode)."""
    c = _i64(channels, "channels")
    return _layer("dng_batchnorm", "batchnorm(%d)" % c, c)


def layernorm(features):
    """Layer normalisation over the last dimension (eps 1e-5, affine)."""
    f = _i64(features, "features")
    return _layer("dng_layernorm", "layernorm(%d)" % f, f)


def dropout(p):
    """Dropout with drop probability p in [0, 1) (identity in evaluation
    mode; masks from the network's generator, see Net.set_seed)."""
    p = _float(p, "p")
    return _layer("dng_dropout", "dropout(%g)" % p, p)


def activation(kind, param=0.0):
    """An activation layer; ``kind`` is an :class:`Act` (or its name),
    ``param`` the negative slope of LEAKY_RELU."""
    k = _enum(Act, kind, "activation")
    name = Act(k).name.lower() if k in Act._value2member_map_ else str(k)
    return _layer("dng_activation", name, k, _float(param, "param"))


def relu():
    """max(0, x)."""
    return activation(Act.RELU)


def leaky_relu(slope=0.01):
    """x if x > 0 else slope * x."""
    return activation(Act.LEAKY_RELU, slope)


def sigmoid():
    """1 / (1 + exp(-x))."""
    return activation(Act.SIGMOID)


def tanh():
    """tanh(x)."""
    return activation(Act.TANH)


def softmax():
    """Softmax over the features of each sample."""
    return activation(Act.SOFTMAX)


def gelu():
    """x * Phi(x), the exact (erf) form."""
    return activation(Act.GELU)


def identity():
    """x."""
    return activation(Act.IDENTITY)


def reshape(shape):
    """Reshape each sample to ``shape`` (the batch dimension is kept)."""
    dims = _shape(shape)
    return _layer("dng_reshape", "reshape(%s)" % list(dims), len(dims),
                  _shape_arg(dims))


def flatten():
    """Flatten each sample to one dimension."""
    return _layer("dng_flatten", "flatten")


def spectral_norm(inner):
    """Spectral normalisation of a dense, conv2d or conv2d-transpose layer
    (torch.nn.utils.spectral_norm). Takes ``inner``: it can no longer be
    used, even when this fails (unless it already belongs to a network,
    which is an error that leaves it alone)."""
    _check(inner, Layer, "inner")
    p = inner._p()
    kind = "spectral_norm(%s)" % inner.kind
    owned = inner._net is not None
    try:
        ptr = _invoke("dng_spectral_norm", (p,))
    finally:
        # The library takes the layer in every case but one: a layer that
        # belongs to a network is refused and left alone.
        if not owned:
            inner._consume("taken by spectral_norm()")
    if not ptr:
        _fail(Status.ERR_STATE if owned else None, "dng_spectral_norm")
    return Layer._new(ptr, kind)


# ---- networks --------------------------------------------------------------

class Net(_Handle):
    """A sequential network (dng_net).

    Args:
        sample_shape: the shape of one sample, without the batch dimension.
        layers: layers to add at once (see :meth:`add`).

    The first dimension of every tensor going in or out is the batch.
    Inputs may be Tensors or array-likes (float32 C-contiguous arrays are
    used without copying).
    """
    _destroy = _lib.dng_net_destroy
    _what = "Net"
    _fwd = 0    # runs of forward (and of training that runs forward)
    _bwd = 0    # runs of backward
    _training = True
    _sample_shape = None

    def __init__(self, sample_shape, layers=()):
        dims = _shape(sample_shape, "sample_shape")
        self._init_handle(_make("dng_net_create", len(dims),
                                _shape_arg(dims)))
        self._sample_shape = dims
        for layer in layers:
            self.add(layer)

    @classmethod
    def load(cls, path):
        """Load a network written by :meth:`save` (architecture and
        weights)."""
        net = cls.__new__(cls)
        net._init_handle(_make("dng_net_load", _path(path)))
        return net

    @property
    def _runs(self):
        # An input gradient belongs to one forward and one backward.
        return (self._fwd, self._bwd)

    def _ran(self):
        """Record that the network ran: borrowed outputs become stale."""
        self._fwd += 1
        self._bwd += 1

    # -- building --

    def add(self, layer):
        """Append a layer and take ownership of it. On failure the layer
        is destroyed (it can no longer be used), except when it already
        belongs to a network, which is left alone. Returns self."""
        _check(layer, Layer, "layer")
        lp = layer._p()
        np_ = self._p()
        self._ran()
        s = _invoke("dng_net_add", (np_, lp))
        if s < 0:
            if layer._net is None:
                layer._consume("destroyed by a failed Net.add")
            _fail(s, "dng_net_add")
        layer._net = self
        return self

    def init(self, scheme=Init.DEFAULT, rng=0):
        """Re-initialise every parameter with ``scheme`` (an :class:`Init`
        or its name) from ``rng`` (an :class:`Rng` or an integer seed)."""
        k = _enum(Init, scheme, "scheme")
        if isinstance(rng, Rng):
            _call("dng_net_init", self._p(), k, rng._p())
        else:
            with Rng(rng) as r:
                _call("dng_net_init", self._p(), k, r._p())
        return self

    def set_seed(self, seed):
        """Seed the generator that dropout masks are drawn from."""
        _call("dng_net_set_seed", self._p(), _u64(seed, "seed"))
        return self

    # -- running --

    def forward(self, x):
        """Run the network on a batch ``x`` [N, *sample_shape].

        Returns the output as a borrowed Tensor, valid until the next run
        of this network (forward, fit, a GAN step...); afterwards using it
        raises Error. Copy it with ``.numpy()``."""
        p = self._p()
        out = _capi.TensorP()
        with _tensor_arg(x, "x") as xp:
            self._fwd += 1
            _call("dng_net_forward", p, xp, C.byref(out))
        return Tensor._new(out, owns=False, owner=self,
                           stamp=("_fwd", self._fwd, "output"))

    __call__ = forward

    def predict(self, x):
        """forward(x) as a numpy copy."""
        return self.forward(x).numpy()

    def backward(self, dy, input_grad=False):
        """Backpropagate ``dy`` (the loss gradient with respect to the last
        forward's output): parameter gradients are accumulated.

        Returns the gradient with respect to the input as a borrowed Tensor
        when ``input_grad`` is true (valid until the next run), else None.
        """
        p = self._p()
        dx = _capi.TensorP()
        with _tensor_arg(dy, "dy") as dyp:
            self._bwd += 1
            _call("dng_net_backward", p, dyp,
                  C.byref(dx) if input_grad else None)
            if not input_grad:
                return None
            if _addr(dx) == _addr(dyp):
                # An empty network hands dy back: return it by value.
                return Tensor.from_numpy(Tensor._new(dyp, owns=False)
                                         .numpy())
        return Tensor._new(dx, owns=False, owner=self,
                           stamp=("_runs", self._runs, "input gradient"))

    def zero_grad(self):
        """Set every parameter gradient to zero."""
        _call("dng_net_zero_grad", self._p())
        return self

    def set_training(self, training):
        """Training (True, the default) or evaluation (False) mode."""
        _call("dng_net_set_training", self._p(), 1 if training else 0)
        self._training = bool(training)
        return self

    def train(self, mode=True):
        """Switch to training mode (or evaluation with mode=False)."""
        return self.set_training(mode)

    def eval(self):
        """Switch to evaluation mode."""
        return self.set_training(False)

    @property
    def training(self):
        """The mode last set through this object (True initially)."""
        return self._training

    @training.setter
    def training(self, value):
        self.set_training(value)

    # -- structure --

    @property
    def num_layers(self):
        """Number of layers."""
        return _lib.dng_net_num_layers(self._p())

    def __len__(self):
        return self.num_layers

    @property
    def sample_shape(self):
        """The per-sample input shape (read from the summary for a loaded
        network)."""
        if self._sample_shape is None:
            line = self.summary().splitlines()[1]
            m = re.search(r"\[([0-9, ]*)\]", line)
            self._sample_shape = tuple(int(v) for v in
                                       re.findall(r"\d+", m.group(1)))
        return self._sample_shape

    @property
    def output_shape(self):
        """The per-sample output shape."""
        nd = C.c_int()
        out = (C.c_int64 * MAX_DIMS)()
        _call("dng_net_output_shape", self._p(), C.byref(nd), out)
        return tuple(int(out[i]) for i in range(nd.value))

    @property
    def num_params(self):
        """Number of parameter tensors."""
        return _lib.dng_net_num_params(self._p())

    @property
    def num_buffers(self):
        """Number of state tensors (running statistics, ...)."""
        return _lib.dng_net_num_buffers(self._p())

    @property
    def param_count(self):
        """Total number of trainable scalars."""
        return _lib.dng_net_param_count(self._p())

    def param_index(self, name):
        """Index of the parameter called ``name`` (e.g. "0.weight")."""
        if not isinstance(name, str):
            raise TypeError("name must be a str, not %s"
                            % type(name).__name__)
        i = _invoke("dng_net_param_index", (self._p(), name.encode()))
        if i < 0:
            _fail(Status.ERR_INVALID_ARGUMENT, "dng_net_param_index",
                  "no parameter named %r" % name)
        return i

    def _index(self, key, fn_name, names):
        if isinstance(key, str):
            if fn_name == "dng_net_buffer":
                found = [i for i, n in enumerate(names()) if n == key]
                if not found:
                    raise Error(Status.ERR_INVALID_ARGUMENT, "Net.buffer: no "
                                "state tensor named %r (have %s)"
                                % (key, ", ".join(names()) or "none"),
                                "Net.buffer")
                return found[0]
            return self.param_index(key)
        return _cint(key, "index")

    def _borrow(self, fn_name, key, names):
        i = self._index(key, fn_name, names)
        t = _invoke(fn_name, (self._p(), i))
        if not t:
            _fail(Status.ERR_INVALID_ARGUMENT, fn_name)
        return Tensor._new(t, owns=False, owner=self)

    def _name(self, fn_name, i):
        s = _invoke(fn_name, (self._p(), _cint(i, "index")))
        if s is None:
            _fail(Status.ERR_INVALID_ARGUMENT, fn_name)
        return s.decode()

    def param(self, key):
        """Parameter ``key`` (index or name) as a borrowed, writable Tensor
        in PyTorch's layout; valid as long as the network lives."""
        return self._borrow("dng_net_param", key, self.param_names)

    def grad(self, key):
        """Gradient of parameter ``key`` (index or name), borrowed."""
        return self._borrow("dng_net_grad", key, self.param_names)

    def buffer(self, key):
        """State tensor ``key`` (index or name, e.g. "1.running_mean"),
        borrowed."""
        return self._borrow("dng_net_buffer", key, self.buffer_names)

    def param_name(self, i):
        """Name of parameter i as nn.Sequential gives it, e.g. "0.weight"."""
        return self._name("dng_net_param_name", i)

    def buffer_name(self, i):
        """Name of state tensor i."""
        return self._name("dng_net_buffer_name", i)

    def param_names(self):
        """Every parameter name, in order."""
        return [self.param_name(i) for i in range(self.num_params)]

    def buffer_names(self):
        """Every state tensor name, in order."""
        return [self.buffer_name(i) for i in range(self.num_buffers)]

    def parameters(self):
        """Every parameter as a borrowed Tensor."""
        return [self.param(i) for i in range(self.num_params)]

    def grads(self):
        """Every parameter gradient as a borrowed Tensor."""
        return [self.grad(i) for i in range(self.num_params)]

    def named_parameters(self):
        """[(name, borrowed Tensor)] for every parameter."""
        return [(self.param_name(i), self.param(i))
                for i in range(self.num_params)]

    def named_buffers(self):
        """[(name, borrowed Tensor)] for every state tensor."""
        return [(self.buffer_name(i), self.buffer(i))
                for i in range(self.num_buffers)]

    def state_dict(self):
        """An OrderedDict name -> numpy copy of every parameter and state
        tensor (PyTorch-style names)."""
        d = OrderedDict()
        for name, t in self.named_parameters() + self.named_buffers():
            d[name] = t.numpy()
        return d

    def load_state_dict(self, state, strict=True):
        """Copy values from a mapping name -> array into the parameters and
        state tensors. Shapes must match; with ``strict`` every name must
        be present and none unknown. Nothing changes when a check fails."""
        own = OrderedDict(self.named_parameters() + self.named_buffers())
        unknown = [k for k in state if k not in own]
        missing = [k for k in own if k not in state]
        if strict and (unknown or missing):
            raise Error(Status.ERR_INVALID_ARGUMENT, "Net.load_state_dict: "
                        "missing %s, unknown %s" % (missing or "none",
                                                    unknown or "none"),
                        "Net.load_state_dict")
        todo = []
        for k, t in own.items():
            if k in state:
                a = np.asarray(state[k], dtype=np.float32)
                if a.shape != t.shape:
                    raise Error(Status.ERR_SHAPE, "Net.load_state_dict: %s "
                                "has shape %s; the network's is %s"
                                % (k, list(a.shape), list(t.shape)),
                                "Net.load_state_dict")
                todo.append((t, a))
        for t, a in todo:
            t.copy_from(a)
        return self

    def summary(self):
        """One line per layer with its output shape and parameter count."""
        p = self._p()
        size = 4096
        while True:
            buf = C.create_string_buffer(size)
            s = _invoke("dng_net_summary", (p, buf, size))
            if s == 0:
                return buf.value.decode()
            if s == Status.ERR_INVALID_ARGUMENT and \
                    len(buf.value) == size - 1 and size < 1 << 26:
                size *= 4
                continue
            _fail(s, "dng_net_summary")

    def __repr__(self):
        if self.closed:
            return "<Net (closed)>"
        return "<Net %d layers, %d parameters, output %s>" % (
            self.num_layers, self.param_count, list(self.output_shape))

    # -- files --

    def save(self, path):
        """Save architecture, parameters and state tensors (a versioned,
        CRC-checked file written to a temporary name then renamed)."""
        _call("dng_net_save", self._p(), _path(path))

    def save_safetensors(self, path):
        """Export parameters and state tensors as safetensors with
        PyTorch-style names (when the library has this feature)."""
        _call("dng_net_save_safetensors", self._p(), _path(path))

    def load_safetensors(self, path):
        """Import parameters and state tensors from a safetensors file into
        this network (same architecture; nothing changes on a mismatch)."""
        _call("dng_net_load_safetensors", self._p(), _path(path))
        return self

    def copy_weights_from(self, src):
        """Copy every parameter and state tensor of ``src`` (same
        architecture) into this network."""
        _check(src, Net, "src")
        _call("dng_net_copy_weights", self._p(), src._p())
        return self


# ---- losses ----------------------------------------------------------------

def loss(kind, pred, target, grad=False):
    """Compute a loss (an :class:`Loss` or its name) of ``pred`` against
    ``target`` (Tensors or arrays).

    Args:
        grad: False for the value only; True to also get the gradient with
            respect to ``pred`` as a new Tensor; or a Tensor of pred's shape
            to write the gradient into.

    Returns:
        the value (float), or (value, gradient Tensor).
    """
    k = _enum(Loss, kind, "kind")
    if not isinstance(grad, (bool, Tensor)):
        raise TypeError("grad must be a bool or a Tensor, not %s"
                        % type(grad).__name__)
    value = C.c_float()
    g = grad if isinstance(grad, Tensor) else None
    with _tensor_arg(pred, "pred") as pp, \
            _tensor_arg(target, "target") as tp:
        if grad is True:
            g = Tensor(Tensor._new(pp, owns=False).shape)
        _call("dng_loss", k, pp, tp, C.byref(value),
              g._p() if g is not None else None)
    if g is not None:
        return float(value.value), g
    return float(value.value)


# ---- optimizers ------------------------------------------------------------

class Optimizer(_Handle):
    """Base class of the optimizers (dng_optim). The optimizer's state
    belongs to the first network it steps; this object keeps that network
    alive."""
    _destroy = _lib.dng_optim_destroy
    _what = "Optimizer"
    _net = None
    _clip = 0.0

    def __init__(self, *a, **k):
        raise TypeError("use SGD, Adam, AdamW or RMSprop")

    def _start(self, ptr):
        self._init_handle(ptr)

    def _bind(self, net):
        if self._net is None:
            self._net = net

    def _check_net(self, net, what):
        _check(net, Net, what)
        if self._net is not None and self._net is not net and \
                self._net.closed:
            raise Error(Status.ERR_STATE, "%s: the optimizer's state "
                        "belongs to a network that has been closed; use a "
                        "new optimizer" % type(self).__name__,
                        "Optimizer.step")
        return net._p()

    def step(self, net):
        """Apply one update to ``net``'s parameters from its accumulated
        gradients (gradients are not zeroed)."""
        np_ = self._check_net(net, "net")
        _call("dng_optim_step", self._p(), np_)
        self._bind(net)

    @property
    def lr(self):
        """The learning rate the next step uses (the schedule applied);
        setting it sets the base rate."""
        return _lib.dng_optim_get_lr(self._p())

    @lr.setter
    def lr(self, value):
        self.set_lr(value)

    def set_lr(self, lr):
        """Set the base learning rate (> 0)."""
        _call("dng_optim_set_lr", self._p(), _float(lr, "lr"))
        return self

    def set_schedule(self, kind, period=1, gamma=1.0, min_lr=0.0):
        """Choose a learning-rate schedule (a :class:`Schedule` or its
        name). ``period``: step size, T_max or warm-up length; ``gamma``:
        decay factor; ``min_lr``: the cosine floor."""
        _call("dng_optim_set_schedule", self._p(),
              _enum(Schedule, kind, "kind"), _i64(period, "period"),
              _float(gamma, "gamma"), _float(min_lr, "min_lr"))
        return self

    def schedule_step(self):
        """Advance the schedule by one unit (fit() does it per epoch)."""
        _call("dng_optim_schedule_step", self._p())
        return self

    def set_clip_norm(self, max_norm):
        """Clip the global gradient norm to ``max_norm`` before every step
        (0 turns clipping off)."""
        _call("dng_optim_set_clip_norm", self._p(),
              _float(max_norm, "max_norm"))
        self._clip = float(max_norm)
        return self

    clip_norm = property(lambda self: self._clip,
                         lambda self, v: self.set_clip_norm(v),
                         doc="The gradient-norm clipping bound (0 = off).")

    def __repr__(self):
        if self.closed:
            return "<%s (closed)>" % type(self).__name__
        return "<%s lr=%g>" % (type(self).__name__, self.lr)


class SGD(Optimizer):
    """Stochastic gradient descent (torch.optim.SGD): momentum, Nesterov
    momentum and L2 weight decay added to the gradient."""

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self._start(_make("dng_sgd", _float(lr, "lr"),
                          _float(momentum, "momentum"),
                          1 if nesterov else 0,
                          _float(weight_decay, "weight_decay")))


class Adam(Optimizer):
    """Adam (torch.optim.Adam), L2 weight decay added to the gradient."""

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                 weight_decay=0.0):
        self._start(_make("dng_adam", _float(lr, "lr"),
                          _float(beta1, "beta1"), _float(beta2, "beta2"),
                          _float(eps, "eps"),
                          _float(weight_decay, "weight_decay")))


class AdamW(Optimizer):
    """AdamW (torch.optim.AdamW): decoupled weight decay."""

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
                 weight_decay=0.01):
        self._start(_make("dng_adamw", _float(lr, "lr"),
                          _float(beta1, "beta1"), _float(beta2, "beta2"),
                          _float(eps, "eps"),
                          _float(weight_decay, "weight_decay")))


class RMSprop(Optimizer):
    """RMSProp (torch.optim.RMSprop, not centred)."""

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0,
                 weight_decay=0.0):
        self._start(_make("dng_rmsprop", _float(lr, "lr"),
                          _float(alpha, "alpha"), _float(eps, "eps"),
                          _float(momentum, "momentum"),
                          _float(weight_decay, "weight_decay")))


# ---- datasets --------------------------------------------------------------

class Dataset(_Handle):
    """A dataset of samples and optional labels (dng_dataset). Create one
    with :meth:`from_numpy`, :meth:`from_tensors`, :meth:`load_idx`,
    :meth:`open_idx` or :meth:`open_npy`."""
    _destroy = _lib.dng_dataset_destroy
    _what = "Dataset"
    _y_shape = None   # per-sample label shape, when known

    def __init__(self, *a, **k):
        raise TypeError("use Dataset.from_numpy, from_tensors, load_idx, "
                        "open_idx or open_npy")

    @classmethod
    def _new(cls, ptr, y_shape=None):
        ds = cls.__new__(cls)
        ds._init_handle(ptr)
        ds._y_shape = y_shape
        if y_shape is None and ds.has_labels and \
                _lib.dng_dataset_y(ptr):
            ds._y_shape = Tensor._new(_lib.dng_dataset_y(ptr),
                                      owns=False).shape[1:]
        return ds

    @classmethod
    def from_tensors(cls, x, y=None):
        """An in-memory dataset holding copies of ``x`` [N, ...] and ``y``
        [N, ...] (None for unlabelled data); Tensors or arrays."""
        with _tensor_arg(x, "x") as xp:
            if y is None:
                return cls._new(_make("dng_dataset_from_tensors", xp, None))
            with _tensor_arg(y, "y") as yp:
                return cls._new(_make("dng_dataset_from_tensors", xp, yp))

    from_numpy = from_tensors

    @classmethod
    def load_idx(cls, images, labels=None):
        """Load IDX files (raw or gzip, as (Fashion-)MNIST ship) into
        memory: images [N, 1, H, W] scaled to [0, 1], labels [N]."""
        return cls._new(_make("dng_dataset_load_idx", _path(images),
                              None if labels is None else _path(labels)))

    @classmethod
    def open_idx(cls, images, labels=None):
        """Memory-map uncompressed IDX files, read batch by batch."""
        return cls._new(_make("dng_dataset_open_idx", _path(images),
                              None if labels is None else _path(labels)),
                        y_shape=())

    @classmethod
    def open_npy(cls, x_path, y_path=None):
        """Memory-map float32 C-order .npy files x [N, ...] and optionally
        y [N, ...]."""
        y_shape = None
        if y_path is not None:
            try:
                y_shape = tuple(np.load(os.fspath(y_path), mmap_mode="r")
                                .shape[1:])
            except Exception:  # noqa: BLE001 - the library says why
                y_shape = ()
        return cls._new(_make("dng_dataset_open_npy", _path(x_path, "x_path"),
                              None if y_path is None
                              else _path(y_path, "y_path")),
                        y_shape=y_shape)

    @property
    def size(self):
        """Number of samples."""
        return _lib.dng_dataset_size(self._p())

    def __len__(self):
        return self.size

    @property
    def sample_shape(self):
        """The per-sample shape of x."""
        nd = C.c_int()
        out = (C.c_int64 * MAX_DIMS)()
        _call("dng_dataset_sample_shape", self._p(), C.byref(nd), out)
        return tuple(int(out[i]) for i in range(nd.value))

    @property
    def has_labels(self):
        """Whether the dataset has labels."""
        return _lib.dng_dataset_has_labels(self._p()) == 1

    @property
    def x(self):
        """The samples [N, ...] as a borrowed, writable Tensor (to rescale
        in place, for instance). Error for a memory-mapped dataset."""
        t = _invoke("dng_dataset_x", (self._p(),))
        if not t:
            _fail(Status.ERR_UNSUPPORTED, "dng_dataset_x")
        return Tensor._new(t, owns=False, owner=self)

    @property
    def y(self):
        """The labels as a borrowed Tensor, or None when unlabelled. Error
        for a memory-mapped dataset."""
        t = _invoke("dng_dataset_y", (self._p(),))
        if not t:
            if self.has_labels:
                _fail(Status.ERR_UNSUPPORTED, "dng_dataset_y")
            return None
        return Tensor._new(t, owns=False, owner=self)

    def shuffle(self, rng):
        """Shuffle the samples (with their labels) in place."""
        _call("dng_dataset_shuffle", self._p(), _check(rng, Rng, "rng")._p())
        return self

    def split(self, valid_fraction, rng=None):
        """Two new datasets (train, valid): the last round(N * fraction)
        samples, after shuffling with ``rng`` when given, go to valid."""
        t, v = _capi.DatasetP(), _capi.DatasetP()
        _call("dng_dataset_split", self._p(),
              _float(valid_fraction, "valid_fraction"), _rng_arg(rng),
              C.byref(t), C.byref(v))
        return (Dataset._new(t, self._y_shape),
                Dataset._new(v, self._y_shape))

    def batch(self, start, n, x_out=None, y_out=None):
        """Samples [start, start + n) as (x, y) Tensors (y None when
        unlabelled), written into ``x_out``/``y_out`` when given."""
        p = self._p()
        start, n = _i64(start, "start"), _i64(n, "n")
        # A bad n still gets outputs of one row, so that the library's
        # message is about n rather than about a missing tensor.
        rows = max(n, 1)
        if x_out is None:
            x_out = Tensor((rows,) + self.sample_shape)
        else:
            _check(x_out, Tensor, "x_out")
        if y_out is None and self.has_labels:
            y_out = Tensor((rows,) + tuple(self._y_shape or ()))
        elif y_out is not None:
            _check(y_out, Tensor, "y_out")
        _call("dng_dataset_batch", p, start, n, x_out._p(),
              y_out._p() if y_out is not None else None)
        return x_out, y_out

    def __repr__(self):
        if self.closed:
            return "<Dataset (closed)>"
        return "<Dataset %d samples of %s%s>" % (
            self.size, list(self.sample_shape),
            ", labelled" if self.has_labels else "")


# ---- supervised training ---------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FitProgress:
    """What fit() reports after each epoch (dng_fit_progress)."""
    epoch: int
    epochs: int
    step: int
    train_loss: float
    valid_loss: float
    valid_accuracy: float
    lr: float
    seconds: float
    best_epoch: int


@dataclasses.dataclass(frozen=True)
class GanStats:
    """What one GAN step measured (dng_gan_stats)."""
    d_loss: float
    g_loss: float
    d_real: float
    d_fake: float
    step: int


@dataclasses.dataclass(frozen=True)
class GanProgress:
    """What GAN.train() reports (dng_gan_progress); ``stats`` are means
    since the last report."""
    epoch: int
    epochs: int
    step: int
    steps: int
    stats: GanStats
    seconds: float


def _fit_progress(p):
    return FitProgress(p.epoch, p.epochs, p.step, p.train_loss, p.valid_loss,
                       p.valid_accuracy, p.lr, p.seconds, p.best_epoch)


def _gan_stats(s):
    return GanStats(s.d_loss, s.g_loss, s.d_real, s.d_fake, s.step)


def _gan_progress(p):
    return GanProgress(p.epoch, p.epochs, p.step, p.steps,
                       _gan_stats(p.stats), p.seconds)


def _with_callback(cfunc_type, convert, callback, run):
    """Run a C training loop with a Python progress callback.

    The ctypes callback object lives in this frame for the whole call. An
    exception in ``callback`` (KeyboardInterrupt included) must not unwind
    through C: it is caught, training is stopped by returning non-zero,
    and the exception is re-raised once the C function has returned.
    Returns the list of every report.
    """
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable or None")
    history = []
    caught = []

    def trampoline(progress, _user):
        try:
            item = convert(progress.contents)
            history.append(item)
            if callback is not None and callback(item):
                return 1
            return 0
        except BaseException as e:  # noqa: BLE001 - re-raised below
            caught.append(e)
            return 1

    cfunc = cfunc_type(trampoline)
    try:
        run(cfunc)
    except Error:
        if not caught:
            raise
    finally:
        del cfunc
    if caught:
        raise caught[0]
    return history


def fit(net, opt, loss, train, valid=None, *, epochs=10, batch_size=64,
        shuffle=True, seed=0, patience=0, min_delta=0.0, callback=None):
    """Train ``net`` with ``opt`` on the Dataset ``train`` (dng_fit).

    Args:
        loss: a :class:`Loss` or its name.
        valid: a validation Dataset or None.
        patience: early stopping after that many epochs without a better
            validation loss (0 = off); the best weights are restored.
        callback: called with a :class:`FitProgress` after each epoch;
            return a true value to stop. An exception raised in it stops
            training and is re-raised here.

    Returns:
        the list of FitProgress of every epoch run.
    """
    _check(net, Net, "net")
    _check(opt, Optimizer, "opt")
    _check(train, Dataset, "train")
    _check(valid, Dataset, "valid", allow_none=True)
    k = _enum(Loss, loss, "loss")
    o = _capi.dng_fit_options()
    _lib.dng_fit_options_default(C.byref(o))
    o.epochs = _cint(epochs, "epochs")
    o.batch_size = _i64(batch_size, "batch_size")
    o.shuffle = 1 if shuffle else 0
    o.seed = _u64(seed, "seed")
    o.patience = _cint(patience, "patience")
    o.min_delta = _float(min_delta, "min_delta")
    np_ = opt._check_net(net, "net")
    args = (np_, opt._p(), k, train._p(),
            valid._p() if valid is not None else None, C.byref(o))
    net._ran()

    def run(cb):
        _call("dng_fit", *args, cb, None)

    try:
        return _with_callback(_capi.FIT_CALLBACK, _fit_progress, callback,
                              run)
    finally:
        # dng_fit leaves the network in training mode, and the optimizer's
        # state bound to it once a step was made.
        net._training = True
        opt._bind(net)


def evaluate(net, loss, dataset, batch_size=256):
    """Mean loss and accuracy of ``net`` (in evaluation mode) over
    ``dataset``: returns (loss, accuracy); accuracy is NaN when labels are
    not class indices."""
    _check(net, Net, "net")
    _check(dataset, Dataset, "dataset")
    lv, acc = C.c_float(), C.c_float()
    net._ran()
    _call("dng_evaluate", net._p(), _enum(Loss, loss, "loss"),
          dataset._p(), _i64(batch_size, "batch_size"), C.byref(lv),
          C.byref(acc))
    return float(lv.value), float(acc.value)


Net.fit = lambda self, opt, loss, train, valid=None, **kw: fit(
    self, opt, loss, train, valid, **kw)
Net.fit.__doc__ = "Train this network: see :func:`dnngen.fit`."
Net.evaluate = lambda self, loss, dataset, batch_size=256: evaluate(
    self, loss, dataset, batch_size)
Net.evaluate.__doc__ = "Loss and accuracy: see :func:`dnngen.evaluate`."


# ---- GAN -------------------------------------------------------------------

class GAN(_Handle):
    """An adversarial trainer (dng_gan) over a generator (sample shape
    [latent]), a discriminator (one output per sample) and their
    optimizers. The four are borrowed: this object keeps them alive, and
    refuses to run once one of them was closed.

    Keyword arguments set the options at once (see the set_* methods):
    loss, d_steps, label_smoothing, noise, ema, clip, seed,
    report_interval.
    """
    _destroy = _lib.dng_gan_destroy
    _what = "GAN"

    def __init__(self, generator, discriminator, g_opt, d_opt, **options):
        _check(generator, Net, "generator")
        _check(discriminator, Net, "discriminator")
        _check(g_opt, Optimizer, "g_opt")
        _check(d_opt, Optimizer, "d_opt")
        if g_opt is d_opt:
            raise Error(Status.ERR_INVALID_ARGUMENT, "GAN: g_opt and d_opt "
                        "must be two optimizers (an optimizer's state "
                        "belongs to one network)", "GAN")
        self.generator, self.discriminator = generator, discriminator
        self.g_opt, self.d_opt = g_opt, d_opt
        gp = g_opt._check_net(generator, "generator")
        dp = d_opt._check_net(discriminator, "discriminator")
        self._init_handle(_make("dng_gan_create", gp, dp, g_opt._p(),
                                d_opt._p()))
        for key, value in options.items():
            setter = getattr(self, "set_" + key, None)
            if setter is None:
                self.close()
                raise TypeError("GAN: unknown option %r" % key)
            setter(value)

    def _p(self):
        p = super()._p()
        for part in ("generator", "discriminator", "g_opt", "d_opt"):
            if getattr(self, part).closed:
                raise Error(Status.ERR_STATE, "GAN: its %s has been closed"
                            % part, "GAN")
        return p

    def _ran(self):
        self.generator._ran()
        self.discriminator._ran()
        self.g_opt._bind(self.generator)
        self.d_opt._bind(self.discriminator)

    def set_loss(self, loss):
        """The adversarial loss, a :class:`GanLoss` or its name ("bce",
        "hinge", "lsgan", "wasserstein"/"wgan")."""
        _call("dng_gan_set_loss", self._p(), _enum(GanLoss, loss, "loss"))
        return self

    def set_d_steps(self, k):
        """Discriminator updates per generator update (1 to 100)."""
        _call("dng_gan_set_d_steps", self._p(), _cint(k, "k"))
        return self

    def set_label_smoothing(self, real_label):
        """One-sided label smoothing: the BCE target of real samples, in
        (0, 1]."""
        _call("dng_gan_set_label_smoothing", self._p(),
              _float(real_label, "real_label"))
        return self

    def set_noise(self, noise):
        """The latent distribution, a :class:`Noise` or its name."""
        _call("dng_gan_set_noise", self._p(), _enum(Noise, noise, "noise"))
        return self

    def set_ema(self, decay):
        """Sample from an EMA of the generator's weights with ``decay`` in
        [0, 1) (0 = off)."""
        _call("dng_gan_set_ema", self._p(), _float(decay, "decay"))
        return self

    def set_clip(self, clip):
        """Weight clipping bound of the Wasserstein loss."""
        _call("dng_gan_set_clip", self._p(), _float(clip, "clip"))
        return self

    def set_seed(self, seed):
        """Seed the trainer's own generator (train(), and step()/sample()
        without an rng)."""
        _call("dng_gan_set_seed", self._p(), _u64(seed, "seed"))
        return self

    def set_report_interval(self, steps):
        """Steps between two train() reports."""
        _call("dng_gan_set_report_interval", self._p(), _i64(steps, "steps"))
        return self

    @property
    def latent_size(self):
        """The generator's input size."""
        return int(np.prod(self.generator.sample_shape))

    @property
    def steps(self):
        """Discriminator updates made so far."""
        return _lib.dng_gan_steps(self._p())

    def step(self, real, rng=None):
        """One discriminator update on the real batch (Tensor or array),
        followed every d_steps calls by one generator update. ``rng`` is the
        noise source (None: the trainer's own). Returns :class:`GanStats`.
        """
        p = self._p()
        st = _capi.dng_gan_stats()
        st.size = C.sizeof(st)
        r = _rng_arg(rng)
        with _tensor_arg(real, "real") as rp:
            try:
                _call("dng_gan_step", p, rp, r, C.byref(st))
            finally:
                self._ran()
        return _gan_stats(st)

    def train(self, dataset, epochs, batch_size, callback=None):
        """Train for ``epochs`` over ``dataset`` in batches (a last partial
        batch is dropped). ``callback`` gets a :class:`GanProgress` every
        report interval and at the end; a true return value stops training,
        and an exception in it stops training and is re-raised here.
        Returns the list of every report."""
        p = self._p()
        _check(dataset, Dataset, "dataset")
        args = (p, dataset._p(), _cint(epochs, "epochs"),
                _i64(batch_size, "batch_size"))

        def run(cb):
            try:
                _call("dng_gan_train", *args, cb, None)
            finally:
                self._ran()

        return _with_callback(_capi.GAN_CALLBACK, _gan_progress, callback,
                              run)

    def sample(self, n, rng=None, out=None):
        """``n`` generated samples as a Tensor [n, *output shape] (from the
        EMA weights when enabled), written into ``out`` when given."""
        p = self._p()
        n = _i64(n, "n")
        if out is None:
            out = Tensor((max(n, 1),) + self.generator.output_shape)
        _check(out, Tensor, "out")
        r = _rng_arg(rng)
        try:
            _call("dng_gan_sample", p, n, r, out._p())
        finally:
            self.generator._ran()
        return out

    def generate(self, z, out=None):
        """Samples for the latent vectors ``z`` [n, latent] as a Tensor."""
        p = self._p()
        with _tensor_arg(z, "z") as zp:
            if out is None:
                n = Tensor._new(zp, owns=False).dim(0)
                out = Tensor((n,) + self.generator.output_shape)
            _check(out, Tensor, "out")
            try:
                _call("dng_gan_generate", p, zp, out._p())
            finally:
                self.generator._ran()
        return out

    def save_checkpoint(self, path):
        """Save both networks, both optimizers' state, the EMA weights, the
        step count and the RNG state."""
        _call("dng_gan_save_checkpoint", self._p(), _path(path))

    def load_checkpoint(self, path):
        """Restore a checkpoint into this trainer (same architectures);
        training then resumes bit-identically. Unchanged on failure."""
        _call("dng_gan_load_checkpoint", self._p(), _path(path))
        self._ran()
        return self

    def __repr__(self):
        if self.closed:
            return "<GAN (closed)>"
        return "<GAN at step %d>" % self.steps


# ---- images and metrics ----------------------------------------------------

def write_image_grid(images, cols, path):
    """Write images [N, C, H, W] (C = 1 or 3, values in [-1, 1]) as a grid
    of ``cols`` columns: PNG for a ".png" path (when the library has
    libpng), else PGM/PPM."""
    with _tensor_arg(images, "images") as ip:
        _call("dng_write_image_grid", ip, _cint(cols, "cols"), _path(path))


def frechet_distance(a, b):
    """Frechet distance between feature sets a [N, D] and b [M, D]:
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2)."""
    out = C.c_double()
    with _tensor_arg(a, "a") as ap, _tensor_arg(b, "b") as bp:
        _call("dng_frechet_distance", ap, bp, C.byref(out))
    return float(out.value)
