"""The binding against the contract: every function of include/dnngen.h is
declared with the right C types, enums and structures match the header,
and the core objects (version, errors, random numbers, tensors) give the
values the header promises."""
import ctypes as C
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import dnngen as dg
from dnngen import _capi

from conftest import REPO

HEADER = os.path.join(REPO, "include", "dnngen.h")


def header_text():
    with open(HEADER) as f:
        return f.read()


def prototypes():
    """{name: (return type, [parameter types])} of every DNG_API function."""
    text = re.sub(r"/\*.*?\*/", "", header_text(), flags=re.S)
    out = {}
    for m in re.finditer(r"DNG_API\s+([^;(]*?)\b(dng_\w+)\s*\(([^)]*)\)\s*;",
                         text):
        ret, name, params = m.group(1).strip(), m.group(2), m.group(3)
        types = []
        if params.strip() != "void":
            for p in params.split(","):
                p = " ".join(p.split())
                arr = p.endswith("]")
                p = re.sub(r"\[\d*\]$", "", p)
                t = re.sub(r"\b\w+$", "", p).strip()   # drop the name
                types.append(t + (" *" if arr else ""))
        out[name] = (ret, types)
    return out


ENUMS = {"dng_status", "dng_act", "dng_init", "dng_loss_kind",
         "dng_schedule", "dng_gan_loss", "dng_noise"}
SCALARS = {"int": C.c_int, "int64_t": C.c_int64, "uint64_t": C.c_uint64,
           "float": C.c_float, "double": C.c_double, "size_t": C.c_size_t,
           "void *": C.c_void_p, "dng_fit_callback": _capi.FIT_CALLBACK,
           "dng_gan_callback": _capi.GAN_CALLBACK}


def ctype_of(c):
    """The ctypes type a C type must be declared as."""
    c = " ".join(c.replace("const ", "").replace("*", " * ").split())
    c = c.replace(" *", "*")
    if c == "char*":
        return C.c_char_p
    if c == "void*":
        return C.c_void_p
    if c == "void":
        return None
    stars = len(c) - len(c.rstrip("*"))
    base = c.rstrip("*").strip()
    if base in ENUMS:
        t = C.c_int
    elif base in SCALARS:
        t = SCALARS[base]
    elif base.startswith("dng_"):
        t = getattr(_capi, base)
    else:
        raise AssertionError("unmapped C type %r" % c)
    for _ in range(stars):
        t = C.POINTER(t)
    return t


def test_every_header_function_is_declared_with_matching_types():
    protos = prototypes()
    assert len(protos) > 100, "the header parser found too few prototypes"
    assert set(protos) == set(_capi.SIGNATURES), (
        set(protos) ^ set(_capi.SIGNATURES))
    for name, (ret, params) in protos.items():
        res, args = _capi.SIGNATURES[name]
        assert res is ctype_of(ret), (name, ret, res)
        assert len(args) == len(params), (name, params, args)
        for i, (c, t) in enumerate(zip(params, args)):
            assert t is ctype_of(c), (name, i, c, t)
        if dg.has_symbol(name):
            fn = getattr(_capi.lib, name)
            assert fn.argtypes == args and fn.restype is res


def test_required_functions_are_exported():
    for name in _capi.SIGNATURES:
        if name not in _capi.OPTIONAL:
            assert dg.has_symbol(name), name
    assert not dg.has_symbol("dng_no_such_function")


@pytest.mark.parametrize("cls,prefix", [
    (dg.Act, "DNG_ACT_"), (dg.Init, "DNG_INIT_"), (dg.Loss, "DNG_LOSS_"),
    (dg.Schedule, "DNG_SCHED_"), (dg.GanLoss, "DNG_GAN_LOSS_"),
    (dg.Noise, "DNG_NOISE_")])
def test_enum_values_match_the_header(cls, prefix):
    found = dict(re.findall(r"\b%s(\w+)\s*=\s*(\d+)" % prefix,
                            header_text()))
    assert {k: int(v) for k, v in found.items()} == \
        {m.name: m.value for m in cls}


def test_status_values_and_strings_match_the_header():
    table = re.findall(r"X\((\w+), (-?\d+), \"([^\"]+)\"\)", header_text())
    assert {n: int(v) for n, v, _ in table} == \
        {m.name: m.value for m in dg.Status}
    for _, v, text in table:
        assert dg.status_string(int(v)) == text
    assert dg.status_string(-999) == "unknown status"


def test_structure_layouts_match_the_compiler(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    build_inc = os.path.join(os.path.dirname(os.path.dirname(
        os.path.realpath(dg.library_path))), "include")
    if not cc or not os.path.exists(os.path.join(build_inc,
                                                 "dnngen-version.h")):
        pytest.skip("needs a C compiler and the build tree's include/")
    structs = {"dng_fit_options": _capi.dng_fit_options,
               "dng_fit_progress": _capi.dng_fit_progress,
               "dng_gan_stats": _capi.dng_gan_stats,
               "dng_gan_progress": _capi.dng_gan_progress}
    lines = []
    for name, cls in structs.items():
        lines.append('printf("%s %%zu\\n", sizeof(%s));' % (name, name))
        for field, _ in cls._fields_:
            lines.append('printf("%s.%s %%zu\\n", offsetof(%s, %s));'
                         % (name, field, name, field))
    src = tmp_path / "layout.c"
    src.write_text("#include <stddef.h>\n#include <stdio.h>\n"
                   "#include <dnngen.h>\nint main(void) {\n%s\nreturn 0;\n}\n"
                   % "\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-I", os.path.join(REPO, "include"), "-I", build_inc,
                    str(src), "-o", str(exe)], check=True)
    got = dict(line.split() for line in
               subprocess.run([str(exe)], check=True, capture_output=True,
                              text=True).stdout.splitlines())
    for name, cls in structs.items():
        assert int(got[name]) == C.sizeof(cls), name
        for field, _ in cls._fields_:
            assert int(got["%s.%s" % (name, field)]) == \
                getattr(cls, field).offset, (name, field)


def test_version():
    v = dg.version()
    major, minor, patch = (int(p) for p in dg.version_string().split("."))
    assert v == major * 10000 + minor * 100 + patch
    assert dg.__version__ == dg.version_string()
    assert major == _capi.ABI_MAJOR
    assert os.path.exists(dg.library_path)


def test_threads():
    try:
        dg.set_num_threads(2)
        assert dg.get_num_threads() == 2
        with pytest.raises(dg.Error) as e:
            dg.set_num_threads(-1)
        assert e.value.status == dg.Status.ERR_INVALID_ARGUMENT
        assert "dng_set_num_threads" in e.value.message
        assert dg.get_num_threads() == 2
    finally:
        dg.set_num_threads(1)
    assert dg.get_num_threads() == 1


def test_error_text_and_clearing():
    with pytest.raises(dg.Error) as e:
        dg.Tensor((2, 0))
    assert e.value.status is None          # NULL constructor: no code
    assert e.value.message == dg.last_error() != ""
    assert e.value.function == "dng_tensor_create"
    dg.clear_error()
    assert dg.last_error() == ""
    with pytest.raises(dg.Error) as e:
        dg.Tensor((2, 3)).reshape((4, 2))
    assert e.value.status == dg.Status.ERR_SHAPE
    assert e.value.status_name == "DNG_ERR_SHAPE"
    assert "shape mismatch" in str(e.value)


# ---- random numbers -------------------------------------------------------

def philox_uniform(seed, n):
    """A reference Philox4x32-10 (Salmon et al.), floats from the top 24
    bits of each word, as include/dnngen.h documents."""
    M0, M1, W0, W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
    mask = 0xFFFFFFFF
    out = []
    counter = 0
    while len(out) < n:
        c = [counter & mask, counter >> 32, 0, 0]
        k0, k1 = seed & mask, seed >> 32
        for _ in range(10):
            p0, p1 = M0 * c[0], M1 * c[2]
            c = [(p1 >> 32) ^ c[1] ^ k0, p1 & mask,
                 (p0 >> 32) ^ c[3] ^ k1, p0 & mask]
            k0, k1 = (k0 + W0) & mask, (k1 + W1) & mask
        out += [(w >> 8) / 16777216.0 for w in c]
        counter += 1
    return np.array(out[:n], dtype=np.float32)


def test_rng_matches_a_reference_philox():
    seed = 0x123456789ABCDEF
    with dg.Rng(seed) as r:
        assert np.array_equal(r.uniform(10), philox_uniform(seed, 10))
    assert r.closed


def test_rng_streams_and_state():
    a, b = dg.Rng(7), dg.Rng(7)
    first = a.uniform((3, 4), -2.0, 3.0)
    assert first.shape == (3, 4) and first.dtype == np.float32
    assert first.min() >= -2.0 and first.max() < 3.0
    assert np.array_equal(first, b.uniform((3, 4), -2.0, 3.0))
    state = a.get_state()
    assert len(state) == 4
    x1 = a.normal(1000, 1.0, 2.0)
    b.state = state
    assert np.array_equal(x1, b.normal(1000, 1.0, 2.0))
    big = dg.Rng(3).normal(20000, 1.0, 2.0)
    assert abs(big.mean() - 1.0) < 0.05 and abs(big.std() - 2.0) < 0.05
    with pytest.raises(dg.Error) as e:
        a.uniform(3, 2.0, 1.0)
    assert "dng_rng_uniform" in e.value.message
    with pytest.raises(dg.Error):
        a.set_state((1, 2, 3))
    with pytest.raises(OverflowError):
        dg.Rng(-1)
    with pytest.raises(TypeError):
        dg.Rng("1")


# ---- tensors --------------------------------------------------------------

def test_tensor_create_copy_and_shape():
    t = dg.Tensor((2, 3, 4))
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.numel == 24
    assert len(t) == 2 and t.dim(-1) == 4 and t.dim(1) == 3
    assert not t.numpy().any()
    src = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    u = dg.Tensor.from_numpy(src)
    src[0, 0, 0] = 99                      # a copy: unaffected
    assert np.array_equal(u.numpy(), np.arange(24).reshape(2, 3, 4))
    assert np.array_equal(np.asarray(u), u.numpy())
    u.reshape((4, 6))
    assert u.shape == (4, 6) and u.numpy()[3, 5] == 23
    c = u.clone()
    u.fill(1.5)
    assert np.all(u.numpy() == 1.5) and c.numpy()[3, 5] == 23
    u.copy_from(np.ones((2, 12)) * 2)
    assert np.all(u.numpy() == 2) and u.shape == (4, 6)
    with pytest.raises(dg.Error) as e:
        u.copy_from(np.ones(5))
    assert e.value.status < 0 and "dng_tensor_copy_in" in e.value.message
    with pytest.raises(dg.Error):
        u.dim(2)
    # A scalar becomes a one-element tensor, as numpy's ascontiguousarray.
    assert dg.Tensor.from_numpy(np.float32(3)).numpy().tolist() == [3.0]
    with pytest.raises(dg.Error):
        dg.Tensor(())                             # no dimensions
    with pytest.raises(dg.Error):
        dg.Tensor((1,) * 9)                       # > MAX_DIMS


def test_tensor_wrap_is_zero_copy_and_views():
    a = np.zeros((3, 2), dtype=np.float32)
    t = dg.Tensor.wrap(a)
    a[1, 1] = 5
    assert t.numpy()[1, 1] == 5
    t.fill(2.0)
    assert np.all(a == 2.0)
    assert t.numpy(copy=False) is not None and \
        np.shares_memory(t.numpy(copy=False), a)
    with pytest.raises(TypeError):
        dg.Tensor.wrap(np.zeros(3))               # float64
    with pytest.raises(ValueError):
        dg.Tensor.wrap(np.zeros((4, 4), np.float32)[:, ::2])
    with pytest.raises(TypeError):
        dg.Tensor.wrap([1.0, 2.0])
    # as_tensor wraps what it can and copies the rest.
    assert np.shares_memory(dg.as_tensor(a).numpy(copy=False), a)
    d = np.arange(3.0)
    assert dg.as_tensor(d).numpy().tolist() == [0, 1, 2]
    # A view of an owned tensor writes through and keeps it alive.
    o = dg.Tensor((4,))
    v = o.numpy(copy=False)
    v[:] = [1, 2, 3, 4]
    assert o.numpy().tolist() == [1, 2, 3, 4]


def test_tensor_random_fills_follow_the_rng():
    t = dg.Tensor((50, 20))
    t.fill_uniform(dg.Rng(11), -1.0, 1.0)
    assert np.array_equal(t.numpy().ravel(), dg.Rng(11).uniform(1000, -1, 1))
    t.fill_normal(dg.Rng(12), 0.5, 0.1)
    assert np.array_equal(t.numpy().ravel(), dg.Rng(12).normal(1000, 0.5,
                                                               0.1))
    with pytest.raises(dg.Error) as e:          # NULL reaches the library
        t.fill_normal(None)
    assert "rng is NULL" in e.value.message
    with pytest.raises(TypeError):
        t.fill_uniform("rng")


def test_npy_round_trips(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 3, 5)).astype(np.float32)
    path = tmp_path / "x.npy"
    dg.Tensor.from_numpy(x).save_npy(path)
    assert np.array_equal(np.load(path), x)
    np.save(tmp_path / "y.npy", x * 2)
    y = dg.Tensor.load_npy(str(tmp_path / "y.npy"))
    assert y.shape == x.shape and np.array_equal(y.numpy(), x * 2)
    np.save(tmp_path / "z.npy", x.astype(np.float64))
    with pytest.raises(dg.Error) as e:
        dg.Tensor.load_npy(tmp_path / "z.npy")
    assert "z.npy" in e.value.message or "dtype" in e.value.message
    with pytest.raises(dg.Error):
        dg.Tensor.load_npy(tmp_path / "missing.npy")
    with pytest.raises(TypeError):
        dg.Tensor.load_npy(42)


def test_every_public_name_has_a_docstring():
    import inspect
    missing = []
    for name in dg.__all__:
        obj = getattr(dg, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj) and not issubclass(obj, (int, Exception)):
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if callable(member) or isinstance(member, property):
                    if not (member.__doc__ or "").strip():
                        missing.append("%s.%s" % (name, attr))
    assert not missing, missing


def load_in_child(env_changes):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DNNGEN_LIBRARY", "DNG_LIBRARY")}
    env.update(env_changes)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(dg.__file__))
    return subprocess.run(
        [__import__("sys").executable, "-c",
         "import dnngen; print(dnngen.library_path)"],
        env=env, capture_output=True, text=True, timeout=60)


def test_library_lookup_order(tmp_path):
    lib = os.path.realpath(dg.library_path)
    r = load_in_child({"DNNGEN_LIBRARY": lib, "DNG_LIBRARY": "/nonexistent"})
    assert r.returncode == 0 and r.stdout.strip() == lib, r.stderr
    r = load_in_child({"DNG_LIBRARY": lib})
    assert r.returncode == 0 and r.stdout.strip() == lib, r.stderr
    r = load_in_child({"DNNGEN_LIBRARY": str(tmp_path / "libnope.so")})
    assert r.returncode != 0 and "DNNGEN_LIBRARY" in r.stderr \
        and "ImportError" in r.stderr
    # Without a variable: the installed library or a build tree of this
    # checkout; either way a real libdnngen.
    r = load_in_child({})
    assert r.returncode == 0, r.stderr
    assert "libdnngen" in os.path.basename(r.stdout.strip())
