"""safetensors interchange against PyTorch, both ways.

The safetensors package is not used: files are written and read here by
hand (struct + json) from the format's definition, so the test also checks
the library against an independent reading of the format. torch -> library:
a torch nn.Sequential's state_dict (after training-mode forwards, so batch
norm running statistics and spectral-norm vectors are not at their initial
values) is written as safetensors, loaded with dng_net_load_safetensors into
the same architecture built with the library, and both run the same input
in evaluation mode. library -> torch: the library's net gets random
weights and statistics, dng_net_save_safetensors writes it, the file is
parsed here and loaded with load_state_dict(strict=True) (the batch norms'
num_batches_tracked added, which the library does not keep), and the
outputs are compared again.
"""
import json
import struct

import numpy as np
import pytest
import torch
import torch.nn as nn

import dngtest as D

SN = nn.utils.spectral_norm


# ---- the format, by hand ---------------------------------------------------

DTYPES = {torch.float32: ("F32", np.float32), torch.int64: ("I64", np.int64)}
NP_OF = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}


def write_safetensors(path, state, metadata=None):
    """state: an ordered mapping name -> torch tensor (F32 or I64)."""
    header, chunks, at = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, t in state.items():
        code, npt = DTYPES[t.dtype]
        raw = np.ascontiguousarray(t.detach().numpy().astype(
            np.dtype(npt).newbyteorder("<"))).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape),
                        "data_offsets": [at, at + len(raw)]}
        chunks.append(raw)
        at += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def read_safetensors(path):
    """(names in file order, {name: numpy array}, metadata), checking the
    format's rules on the way."""
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    assert 8 + n <= len(blob)
    assert (8 + n) % 8 == 0, "data buffer not 8-byte aligned"
    text = blob[8:8 + n].decode("utf-8")
    pairs = json.loads(text, object_pairs_hook=list)
    names = [k for k, _ in pairs if k != "__metadata__"]
    assert len(set(names)) == len(names), "duplicate names"
    header = dict(pairs)
    meta = dict(header.pop("__metadata__", []))
    buf = blob[8 + n:]
    out, spans = {}, []
    for name in names:
        e = dict(header[name])
        assert set(e) == {"dtype", "shape", "data_offsets"}
        dt = NP_OF[e["dtype"]]
        b, end = e["data_offsets"]
        count = int(np.prod(e["shape"])) if e["shape"] else 1
        assert end - b == count * dt.itemsize
        out[name] = np.frombuffer(buf[b:end], dtype=dt).reshape(e["shape"])
        spans.append((b, end))
    at = 0
    for b, end in sorted(spans):
        assert b == at, "gap or overlap in the data buffer"
        at = end
    assert at == len(buf), "bytes after the last tensor"
    return names, out, meta


# ---- architectures, in torch and in the library ----------------------------

def arch_dense():
    tmod = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(),
                         nn.Linear(16, 4), nn.LayerNorm(4))
    layers = lambda: [D.dense(8, 16), D.batchnorm(16),  # noqa: E731
                      D.activation(D.ACT_RELU), D.dense(16, 4),
                      D.layernorm(4)]
    return tmod, layers, (8,)


def arch_conv():
    tmod = nn.Sequential(nn.Conv2d(2, 4, 3, 1, 1), nn.BatchNorm2d(4),
                         nn.LeakyReLU(0.2), nn.ConvTranspose2d(4, 3, 4, 2, 1),
                         nn.Tanh())
    layers = lambda: [D.conv2d(2, 4, 3, 3, 1, 1), D.batchnorm(4),  # noqa
                      D.activation(D.ACT_LEAKY_RELU, 0.2),
                      D.conv2d_transpose(4, 3, 4, 4, 2, 1),
                      D.activation(D.ACT_TANH)]
    return tmod, layers, (2, 6, 6)


def arch_spectral():
    tmod = nn.Sequential(SN(nn.Conv2d(1, 4, 3, 2, 1)), nn.LeakyReLU(0.2),
                         SN(nn.ConvTranspose2d(4, 2, 4, 2, 1)),
                         nn.BatchNorm2d(2), nn.Flatten(),
                         SN(nn.Linear(128, 3)))
    layers = lambda: [D.spectral_norm(D.conv2d(1, 4, 3, 3, 2, 1)),  # noqa
                      D.activation(D.ACT_LEAKY_RELU, 0.2),
                      D.spectral_norm(D.conv2d_transpose(4, 2, 4, 4, 2, 1)),
                      D.batchnorm(2), D.flatten(),
                      D.spectral_norm(D.dense(128, 3))]
    return tmod, layers, (1, 8, 8)


ARCHS = {"dense": arch_dense, "conv": arch_conv, "spectral": arch_spectral}


def season_torch(tmod, sample, seed):
    """Random affine norms and a few training-mode forwards, so running
    statistics, num_batches_tracked and spectral-norm vectors move."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in tmod.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
        tmod.train()
        for _ in range(3):
            tmod(torch.randn((5,) + sample) * 2 + 0.3)
    tmod.eval()


def compare_outputs(tmod, net, sample, seed):
    x = np.random.default_rng(seed).normal(size=(4,) + sample)
    x = x.astype(np.float32)
    with torch.no_grad():
        ref = tmod(torch.tensor(x)).numpy()
    got = net.eval().forward(x)
    scale = float(np.abs(ref).max())
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_torch_to_library(arch, tmp_path):
    tmod, layers, sample = ARCHS[arch]()
    season_torch(tmod, sample, 1)
    state = tmod.state_dict()
    assert any(k.endswith("num_batches_tracked") for k in state)
    assert int(next(v for k, v in state.items()
                    if k.endswith("num_batches_tracked"))) == 3
    path = tmp_path / "torch.safetensors"
    write_safetensors(path, state, {"format": "pt"})
    with D.Net(sample, layers()) as net:
        before = net.param(net.param_names()[0])
        net.load_safetensors(path)
        after = net.param(net.param_names()[0])
        assert not np.array_equal(before, after)
        # Every tensor arrived unchanged, by name.
        for name in net.param_names():
            np.testing.assert_array_equal(net.param(name),
                                          state[name].numpy())
        for name in net.buffer_names():
            np.testing.assert_array_equal(net.buffer(name),
                                          state[name].numpy())
        compare_outputs(tmod, net, sample, 2)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_library_to_torch(arch, tmp_path):
    tmod, layers, sample = ARCHS[arch]()
    rng = np.random.default_rng(3)
    path = tmp_path / "lib.safetensors"
    with D.Net(sample, layers()) as net:
        for name in net.param_names():
            shape = net.param(name).shape
            net.set_param(name, rng.uniform(-0.5, 0.5, shape))
        for name in net.buffer_names():
            shape = net.buffer(name).shape
            if name.endswith("running_var"):
                v = rng.uniform(0.5, 1.5, shape)
            elif name.endswith(("weight_u", "weight_v")):
                v = rng.normal(size=shape)
                v /= np.linalg.norm(v)
            else:
                v = rng.uniform(-0.5, 0.5, shape)
            net.set_buffer(name, v)
        net.save_safetensors(path)
        names, arrays, meta = read_safetensors(path)
        assert meta.get("format") == "pt"
        # PyTorch's state_dict order, minus the step counters.
        expect = [k for k in tmod.state_dict()
                  if not k.endswith("num_batches_tracked")]
        assert names == expect
        state = {k: torch.tensor(v.copy()) for k, v in arrays.items()}
        for k in tmod.state_dict():
            if k.endswith("num_batches_tracked"):
                state[k] = torch.tensor(0, dtype=torch.int64)
        tmod.load_state_dict(state, strict=True)
        tmod.eval()
        compare_outputs(tmod, net, sample, 4)


def test_round_trip_through_torch(tmp_path):
    """library -> torch -> library leaves every value as it was."""
    tmod, layers, sample = arch_spectral()
    with D.Net(sample, layers()) as a, D.Net(sample, layers()) as b:
        rng = np.random.default_rng(5)
        for name in a.param_names():
            a.set_param(name, rng.normal(size=a.param(name).shape))
        a.save_safetensors(tmp_path / "a.safetensors")
        _, arrays, _ = read_safetensors(tmp_path / "a.safetensors")
        state = {k: torch.tensor(v.copy()) for k, v in arrays.items()}
        state["3.num_batches_tracked"] = torch.tensor(9)
        tmod.load_state_dict(state, strict=True)
        write_safetensors(tmp_path / "t.safetensors", tmod.state_dict())
        b.load_safetensors(tmp_path / "t.safetensors")
        for name in a.param_names():
            np.testing.assert_array_equal(a.param(name), b.param(name))
        for name in a.buffer_names():
            np.testing.assert_array_equal(a.buffer(name), b.buffer(name))


def test_mismatch_is_refused(tmp_path):
    """A state dict of another architecture is refused with the names in
    the message, and the network keeps its weights."""
    tmod, _, _ = arch_dense()
    state = tmod.state_dict()
    state["9.weight"] = torch.zeros(2)
    write_safetensors(tmp_path / "x.safetensors", state)
    _, layers, sample = arch_dense()
    with D.Net(sample, layers()) as net:
        keep = net.param("0.weight")
        with pytest.raises(D.DngError, match=r'unknown tensors "9\.weight"'):
            net.load_safetensors(tmp_path / "x.safetensors")
        del state["9.weight"]
        del state["1.running_var"]
        write_safetensors(tmp_path / "y.safetensors", state)
        with pytest.raises(D.DngError, match=r'lacks "1\.running_var"'):
            net.load_safetensors(tmp_path / "y.safetensors")
        np.testing.assert_array_equal(net.param("0.weight"), keep)
