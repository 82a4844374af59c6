#!/usr/bin/python3
"""Regenerate the bad-file corpus under tests/data/corpus.

    DNG_LIBRARY=build/lib/libdnngen.so /usr/bin/python3 \\
        tests/data/make-corpus.py [tests/data/corpus]

For every loader (model, checkpoint, idx, npy, safetensors) it writes one
or more valid files into corpus/<loader>/good/, made by libdnngen itself
(through ctypes) or by NumPy, and then damaged variants of them into
corpus/<loader>/: truncated, bit-flipped, wrong magic, wrong version,
oversized dimensions, wrong CRC, and a few format-specific ones. The CRC of
a damaged model or checkpoint is recomputed where the point is to reach
the parser behind the CRC check.

tests/test-bigdata.c runs every file of corpus/<loader>/ through the
loaders and expects a refusal with a message (DNG_ERR_FORMAT or
DNG_ERR_IO), and every file of corpus/<loader>/good/ to load. The
architectures built here must stay identical to corpus_net() and
corpus_gan_make() there. Files found by the fuzzers (tests/fuzz) are kept
in corpus/<loader>/ as regression files; this script leaves any file whose
name starts with "fuzz-" alone.
"""
import ctypes as C
import json
import os
import struct
import sys
import zlib

import numpy as np

LIB_PATH = os.environ.get("DNG_LIBRARY", "build/lib/libdnngen.so")
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "corpus")

L = C.CDLL(LIB_PATH)
_h = C.c_void_p
_i64p = C.POINTER(C.c_int64)
for name, res, args in [
        ("dng_last_error", C.c_char_p, []),
        ("dng_set_num_threads", C.c_int, [C.c_int]),
        ("dng_net_create", _h, [C.c_int, _i64p]),
        ("dng_net_add", C.c_int, [_h, _h]),
        ("dng_net_destroy", None, [_h]),
        ("dng_net_save", C.c_int, [_h, C.c_char_p]),
        ("dng_net_save_safetensors", C.c_int, [_h, C.c_char_p]),
        ("dng_dense", _h, [C.c_int64, C.c_int64]),
        ("dng_batchnorm", _h, [C.c_int64]),
        ("dng_activation", _h, [C.c_int, C.c_float]),
        ("dng_spectral_norm", _h, [_h]),
        ("dng_adam", _h, [C.c_float] * 5),
        ("dng_optim_destroy", None, [_h]),
        ("dng_gan_create", _h, [_h, _h, _h, _h]),
        ("dng_gan_destroy", None, [_h]),
        ("dng_gan_set_seed", C.c_int, [_h, C.c_uint64]),
        ("dng_gan_step", C.c_int, [_h, _h, _h, _h]),
        ("dng_gan_save_checkpoint", C.c_int, [_h, C.c_char_p]),
        ("dng_tensor_from_data", _h, [C.c_int, _i64p,
                                      C.POINTER(C.c_float)]),
        ("dng_tensor_destroy", None, [_h])]:
    fn = getattr(L, name)
    fn.restype = res
    fn.argtypes = args


def check(status, what):
    if status != 0:
        raise SystemExit("%s failed: %s" % (what, L.dng_last_error()))


def shape(*dims):
    return (C.c_int64 * len(dims))(*dims)


def add(net, layer):
    check(L.dng_net_add(net, layer), "dng_net_add")


def corpus_net():
    """tests/test-bigdata.c corpus_net(): [6] -> dense(6, 5) ->
    batchnorm(5) -> relu -> spectral_norm(dense(5, 3))."""
    net = L.dng_net_create(1, shape(6))
    add(net, L.dng_dense(6, 5))
    add(net, L.dng_batchnorm(5))
    add(net, L.dng_activation(0, 0.0))
    add(net, L.dng_spectral_norm(L.dng_dense(5, 3)))
    return net


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def flip(data, offset, mask=0x01):
    b = bytearray(data)
    b[offset] ^= mask
    return bytes(b)


def put(data, offset, packed):
    b = bytearray(data)
    b[offset:offset + len(packed)] = packed
    return bytes(b)


def fix_crc(data):
    """Recompute the CRC-32 trailer of a DNGMODEL/DNGCKPT container."""
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]) & 0xffffffff)


def fresh(folder):
    os.makedirs(os.path.join(folder, "good"), exist_ok=True)
    for sub in (folder, os.path.join(folder, "good")):
        for name in os.listdir(sub):
            p = os.path.join(sub, name)
            if os.path.isfile(p) and not name.startswith("fuzz-"):
                os.remove(p)


def entry_offset(data, name):
    """Offset of a state entry's ndim field (after its u32-length name)."""
    key = struct.pack("<I", len(name)) + name.encode()
    at = data.find(key)
    if at < 0:
        raise SystemExit("entry %s not found" % name)
    return at + len(key)


def container_variants(good, magic_len=8):
    """Damage shared by model files and checkpoints."""
    n = len(good)
    return {
        "empty": b"",
        "truncated-header": good[:10],
        "truncated-half": good[:n // 2],
        "truncated-by-one": good[:-1],
        "bitflip-payload": flip(good, n // 2, 0x10),
        "bitflip-crc": flip(good, n - 1, 0x80),
        "wrong-magic": put(good, 0, b"NOTAFILE"),
        "wrong-version": fix_crc(put(good, 8, struct.pack("<I", 99))),
        "version-zero": put(good, 8, struct.pack("<I", 0)),
        "trailing-bytes": fix_crc(good[:-4] + b"\0\0\0\0" + good[-4:]),
    }


# ---- model files ------------------------------------------------------------

def make_model(folder):
    fresh(folder)
    net = corpus_net()
    good_path = os.path.join(folder, "good", "small.dngm")
    check(L.dng_net_save(net, good_path.encode()), "dng_net_save")
    L.dng_net_destroy(net)
    good = open(good_path, "rb").read()
    v = container_variants(good)
    w = entry_offset(good, "0.weight")  # ndim, then the shape
    v["oversized-dims"] = fix_crc(put(good, w + 4,
                                      struct.pack("<q", 1 << 40)))
    v["negative-dim"] = fix_crc(put(good, w + 4, struct.pack("<q", -5)))
    v["too-many-dims"] = fix_crc(put(good, w, struct.pack("<I", 200)))
    # in_ndim at 16, in_shape at 20, nlayers at 28.
    v["huge-layer-count"] = fix_crc(put(good, 28,
                                        struct.pack("<I", 0xFFFFFFF0)))
    v["huge-input-shape"] = fix_crc(put(good, 20,
                                        struct.pack("<q", 1 << 62)))
    v["unknown-flags"] = fix_crc(put(good, 12, struct.pack("<I", 4)))
    v["unknown-layer-kind"] = fix_crc(put(good, 32, struct.pack("<I", 99)))
    v["name-too-long"] = fix_crc(put(good, w - 4 - len("0.weight"),
                                     struct.pack("<I", 100000)))
    for name, data in v.items():
        write(os.path.join(folder, name + ".dngm"), data)
    return len(v)


# ---- GAN checkpoints --------------------------------------------------------

def make_checkpoint(folder):
    """tests/test-bigdata.c corpus_gan_make(): G [4] -> dense(4, 6) ->
    tanh, D [6] -> dense(6, 1), Adam(2e-4, 0.5, 0.999, 1e-8) both; one
    step taken so that the optimizers have state."""
    fresh(folder)
    g = L.dng_net_create(1, shape(4))
    add(g, L.dng_dense(4, 6))
    add(g, L.dng_activation(3, 0.0))
    d = L.dng_net_create(1, shape(6))
    add(d, L.dng_dense(6, 1))
    go = L.dng_adam(2e-4, 0.5, 0.999, 1e-8, 0.0)
    do = L.dng_adam(2e-4, 0.5, 0.999, 1e-8, 0.0)
    gan = L.dng_gan_create(g, d, go, do)
    if not gan:
        raise SystemExit("dng_gan_create: %s" % L.dng_last_error())
    check(L.dng_gan_set_seed(gan, 1), "dng_gan_set_seed")
    real = np.linspace(-1, 1, 8 * 6, dtype=np.float32)
    t = L.dng_tensor_from_data(2, shape(8, 6),
                               real.ctypes.data_as(C.POINTER(C.c_float)))
    check(L.dng_gan_step(gan, t, None, None), "dng_gan_step")
    good_path = os.path.join(folder, "good", "gan.dngc")
    check(L.dng_gan_save_checkpoint(gan, good_path.encode()),
          "dng_gan_save_checkpoint")
    L.dng_tensor_destroy(t)
    L.dng_gan_destroy(gan)
    L.dng_net_destroy(g)
    L.dng_net_destroy(d)
    L.dng_optim_destroy(go)
    L.dng_optim_destroy(do)
    good = open(good_path, "rb").read()
    v = container_variants(good)
    w = entry_offset(good, "0.weight")
    v["oversized-dims"] = fix_crc(put(good, w + 4,
                                      struct.pack("<q", 1 << 40)))
    v["zero-dim"] = fix_crc(put(good, w + 4, struct.pack("<q", 0)))
    # Settings at 12: loss, d_steps, real_label, noise, ema, clip, ...
    v["bad-d-steps"] = fix_crc(put(good, 16, struct.pack("<I", 0)))
    v["bad-loss-kind"] = fix_crc(put(good, 12, struct.pack("<I", 17)))
    v["nan-label"] = fix_crc(put(good, 20, struct.pack("<f", float("nan"))))
    v["wrong-net-name"] = fix_crc(put(good, w - 8, b"9"))
    v["truncated-payload"] = fix_crc(good[:len(good) // 2] + good[-4:])
    for name, data in v.items():
        write(os.path.join(folder, name + ".dngc"), data)
    return len(v)


# ---- IDX --------------------------------------------------------------------

def idx_bytes(dtype_code, dims, payload):
    return (bytes([0, 0, dtype_code, len(dims)]) +
            b"".join(struct.pack(">I", d) for d in dims) + payload)


def make_idx(folder):
    fresh(folder)
    img = np.arange(5 * 4 * 3, dtype=np.uint8) * 3
    good = idx_bytes(0x08, [5, 4, 3], img.tobytes())
    write(os.path.join(folder, "good", "images.idx"), good)
    flt = np.linspace(-1, 1, 6 * 2, dtype=">f4")
    write(os.path.join(folder, "good", "float.idx"),
          idx_bytes(0x0D, [6, 2], flt.tobytes()))
    v = {
        "empty": b"",
        "truncated-magic": good[:3],
        "truncated-dims": good[:9],
        "truncated-data": good[:-1],
        "trailing-bytes": good + b"\0",
        "wrong-magic": put(good, 0, b"\x1f\x9d"),
        "wrong-type": put(good, 2, b"\x0b"),
        "zero-ndim": put(good, 3, b"\x00"),
        "too-many-dims": put(good, 3, b"\x09"),
        "bitflip-ndim": flip(good, 3, 0x02),
        "oversized-dims": put(good, 4, struct.pack(">III", 0xFFFFFFFF,
                                                   0xFFFFFFFF, 0xFFFFFFFF)),
        "zero-dim": put(good, 8, struct.pack(">I", 0)),
        "float-truncated": idx_bytes(0x0D, [6, 2], flt.tobytes()[:-2]),
    }
    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    whole = gz.compress(good) + gz.flush()
    v["gzip-truncated"] = whole[:len(whole) - 6]
    for name, data in v.items():
        write(os.path.join(folder, name + ".idx"), data)
    return len(v)


# ---- .npy -------------------------------------------------------------------

def npy_bytes(header, payload, version=(1, 0)):
    text = header.encode("latin1")
    pre = b"\x93NUMPY" + bytes(version)
    lenlen = 2 if version[0] == 1 else 4
    pad = (64 - (len(pre) + lenlen + len(text) + 1) % 64) % 64
    text += b" " * pad + b"\n"
    fmt = "<H" if lenlen == 2 else "<I"
    return pre + struct.pack(fmt, len(text)) + text + payload


def make_npy(folder):
    fresh(folder)
    a = np.arange(12, dtype=np.float32).reshape(4, 3) / 4
    np.save(os.path.join(folder, "good", "x.npy"), a)
    with open(os.path.join(folder, "good", "v2.npy"), "wb") as f:
        np.lib.format.write_array(f, a, version=(2, 0))
    good = open(os.path.join(folder, "good", "x.npy"), "rb").read()
    h = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }"
    data = a.tobytes()
    v = {
        "empty": b"",
        "truncated-preamble": good[:7],
        "truncated-header": good[:40],
        "truncated-data": good[:-1],
        "trailing-bytes": good + b"\0\0\0\0",
        "wrong-magic": put(good, 0, b"\x93NUMPZ"),
        "wrong-version": put(good, 6, b"\x09\x00"),
        "header-past-end": put(good, 8, struct.pack("<H", 0xFFFF)),
        "bitflip-brace": flip(good, 10, 0x06),
        "oversized-dims": npy_bytes(h.replace("(4, 3)", "(4611686018427387904, "
                                              "4611686018427387904)"), data),
        "dims-overflow-digits": npy_bytes(
            h.replace("(4, 3)", "(99999999999999999999999, 3)"), data),
        "zero-dim": npy_bytes(h.replace("(4, 3)", "(0, 3)"), b""),
        "too-many-dims": npy_bytes(h.replace("(4, 3)", "(1,1,1,1,1,1,1,1,4,3)"),
                                   data),
        "wrong-dtype": npy_bytes(h.replace("<f4", "<f8"), data + data),
        "big-endian": npy_bytes(h.replace("<f4", ">f4"), data),
        "fortran-order": npy_bytes(h.replace("False", "True"), data),
        "structured-dtype": npy_bytes(h.replace("'<f4'", "[('a', '<f4')]"),
                                      data),
        "duplicate-key": npy_bytes(h.replace("}", "'shape': (4, 3), }"),
                                   data),
        "unknown-key": npy_bytes(h.replace("}", "'extra': 1, }"), data),
        "no-newline": put(good, good.index(b"\n"), b" "),
        "nul-in-header": put(good, 20, b"\0"),
        "shape-mismatch": npy_bytes(h.replace("(4, 3)", "(4, 4)"), data),
    }
    for name, data_ in v.items():
        write(os.path.join(folder, name + ".npy"), data_)
    return len(v)


# ---- safetensors ------------------------------------------------------------

def st_parse(blob):
    n = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def st_build(header, buf, raw=None):
    text = (raw if raw is not None else
            json.dumps(header, separators=(",", ":"))).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + buf


def make_safetensors(folder):
    fresh(folder)
    net = corpus_net()
    good_path = os.path.join(folder, "good", "net.safetensors")
    check(L.dng_net_save_safetensors(net, good_path.encode()),
          "dng_net_save_safetensors")
    L.dng_net_destroy(net)
    good = open(good_path, "rb").read()
    head, buf = st_parse(good)
    # The same with PyTorch's batch-norm counter, which loads too.
    h2 = dict(head)
    h2["1.num_batches_tracked"] = {"dtype": "I64", "shape": [],
                                   "data_offsets": [len(buf), len(buf) + 8]}
    write(os.path.join(folder, "good", "with-counter.safetensors"),
          st_build(h2, buf + struct.pack("<q", 7)))

    def changed(fn):
        h = json.loads(json.dumps(head))
        fn(h)
        return st_build(h, buf)

    first = next(k for k in head if k != "__metadata__")
    hlen = struct.unpack("<Q", good[:8])[0]
    text = good[8:8 + hlen].decode()
    v = {
        "empty": b"",
        "truncated-length": good[:5],
        "truncated-header": good[:8 + hlen // 2],
        "truncated-data": good[:-1],
        "trailing-bytes": good + b"\0\0\0\0",
        "length-past-end": put(good, 0, struct.pack("<Q", len(good))),
        "length-over-100mb": put(good, 0, struct.pack("<Q", 100000001)),
        "length-huge": put(good, 0, struct.pack("<Q", 1 << 63)),
        "bitflip-quote": flip(good, 8 + 1, 0x01),
        "bitflip-metadata-key": flip(good, 8 + 2, 0x01),
        "bitflip-brace": flip(good, 8, 0x02),
        "wrong-dtype": changed(lambda h: h[first].update(dtype="F64")),
        "unknown-dtype": changed(lambda h: h[first].update(dtype="X9")),
        "oversized-dims": changed(lambda h: h[first].update(
            shape=[1 << 40, 1 << 40])),
        "negative-dim": changed(lambda h: h[first].update(shape=[-1, 6])),
        "wrong-shape": changed(lambda h: h[first].update(
            shape=list(reversed(h[first]["shape"])))),
        "offsets-past-end": changed(lambda h: h[first].update(
            data_offsets=[len(buf), len(buf) + 120])),
        "offsets-reversed": changed(lambda h: h[first].update(
            data_offsets=h[first]["data_offsets"][::-1])),
        "overlap": changed(lambda h: h["0.bias"].update(
            data_offsets=[0, 20])),
        "missing-tensor": changed(lambda h: h.pop("1.running_var")),
        "renamed-tensor": changed(lambda h: h.update({"7.weight": h.pop(
            "3.weight_v")})),
        "unknown-tensor": st_build(dict(head, **{"7.weight": {
            "dtype": "F32", "shape": [1],
            "data_offsets": [len(buf), len(buf) + 4]}}), buf + b"\0" * 4),
        "metadata-not-string": changed(lambda h: h["__metadata__"].update(
            format=1)),
        "duplicate-name": st_build(None, buf, raw=text.rstrip()[:-1] + "," +
                                   json.dumps(first) + ":" +
                                   json.dumps(head[first]) + "}"),
        "not-an-object": st_build(None, buf, raw="[1, 2, 3]"),
        "bad-utf8": put(good, 8 + 3, b"\xff"),
        "deep-nesting": st_build(None, buf, raw='{"__metadata__": {"a": ' +
                                 "[" * 200 + "]" * 200 + "}}"),
        "lone-surrogate": st_build(None, buf, raw='{"\\udc00": 1}'),
        "nul-escape": st_build(None, buf, raw='{"0.bi\\u0000as": 1}'),
    }
    for name, data in v.items():
        write(os.path.join(folder, name + ".safetensors"), data)
    return len(v)


def main():
    L.dng_set_num_threads(1)
    total = 0
    for name, fn in [("model", make_model), ("checkpoint", make_checkpoint),
                     ("idx", make_idx), ("npy", make_npy),
                     ("safetensors", make_safetensors)]:
        n = fn(os.path.join(OUT, name))
        print("%-12s %3d bad files" % (name, n))
        total += n
    print("total        %3d" % total)


if __name__ == "__main__":
    main()
