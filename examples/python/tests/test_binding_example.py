"""examples/python/fashion_gan.py on a small IDX file: it runs, resumes
exactly, and drives the library exactly as the C example does (same flags,
byte-identical checkpoints, grids and samples)."""
import gzip
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

import dnngen as dg

from conftest import PKG_ROOT

SCRIPT = os.path.join(PKG_ROOT, "fashion_gan.py")
# The C example of the same build tree as the library under test.
C_EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(
    os.path.realpath(dg.library_path))), "examples", "fashion-gan")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fashion")
    images = np.random.default_rng(0).integers(0, 256, size=(96, 28, 28),
                                               dtype=np.uint8)
    with gzip.open(d / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, 96, 28, 28) + images.tobytes())
    return d


def run(cmd, cwd, check=True):
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=120)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def common(data_dir, model, steps):
    return ["--model", model, "--steps", str(steps), "--batch", "16",
            "--seed", "5", "--limit", "80", "--threads", "1", "--data",
            str(data_dir), "--report", "2", "--ema", "0.9"]


def test_python_example_trains_and_resumes(data_dir, tmp_path):
    args = common(data_dir, "mlp", 6)
    r = run([sys.executable, SCRIPT] + args + [
        "--out", "grid.pgm", "--save", "full.ckpt",
        "--dump-samples", "8", "s.npy"], tmp_path)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("fashion_gan: model mlp, loss bce, 80 images")
    steps = [ln for ln in lines if ln.startswith("step")]
    assert len(steps) == 3
    assert re.match(r"^step +6/6  d_loss \d+\.\d{4}  g_loss \d+\.\d{4}  "
                    r"D\(real\) \d\.\d{3}  D\(fake\) \d\.\d{3}  ", steps[-1])
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (8, 1, 28, 28)
    assert samples.min() >= -1 and samples.max() <= 1 and samples.std() > 0
    assert (tmp_path / "grid.pgm").read_bytes().startswith(b"P5\n238 238\n")
    # Three steps, a checkpoint, then a new process to six: the same bytes.
    run([sys.executable, SCRIPT] + common(data_dir, "mlp", 3) + [
        "--quiet", "--out", "", "--save", "half.ckpt"], tmp_path)
    run([sys.executable, SCRIPT] + args + [
        "--quiet", "--out", "", "--resume", "half.ckpt",
        "--save", "resumed.ckpt"], tmp_path)
    assert (tmp_path / "resumed.ckpt").read_bytes() == \
        (tmp_path / "full.ckpt").read_bytes()
    bad = run([sys.executable, SCRIPT, "--steps", "x"], tmp_path,
              check=False)
    assert bad.returncode == 2 and "usage:" in bad.stderr


@pytest.mark.parametrize("model,steps", [("mlp", 5), ("dcgan", 2)])
def test_python_and_c_examples_agree_bit_for_bit(data_dir, tmp_path, model,
                                                 steps):
    if not os.access(C_EXAMPLE, os.X_OK):
        pytest.skip("the C example is not built next to the library")
    args = common(data_dir, model, steps) + ["--quiet"]
    outputs = {}
    for who, cmd in (("c", [C_EXAMPLE]), ("py", [sys.executable, SCRIPT])):
        run(cmd + args + ["--out", who + ".pgm", "--save", who + ".ckpt",
                          "--dump-samples", "4", who + ".npy"], tmp_path)
        outputs[who] = [(tmp_path / (who + ext)).read_bytes()
                        for ext in (".ckpt", ".pgm", ".npy")]
    assert outputs["c"] == outputs["py"]
