"""Training through the binding: losses, optimizers and schedules against
closed forms, datasets, fit/evaluate with Python callbacks, and files."""
import gzip
import json
import math
import struct

import numpy as np
import pytest

import dnngen as dg

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
XOR_Y = np.array([[0], [1], [1], [0]], np.float32)


def test_xor_trains_to_a_checked_result():
    net = dg.Net([2], [dg.dense(2, 8), dg.tanh(), dg.dense(8, 1)])
    net.init("xavier_uniform", 3)
    opt = dg.Adam(lr=0.05)
    for _ in range(400):
        net.zero_grad()
        value, grad = dg.loss("bce_with_logits", net.forward(XOR_X), XOR_Y,
                              grad=True)
        net.backward(grad)
        opt.step(net)
    logits = net.predict(XOR_X)
    assert value < 0.05
    assert ((logits > 0) == (XOR_Y > 0.5)).all()
    # The reported loss is the BCE of the logits, recomputed in numpy.
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    ref = -np.mean(XOR_Y * np.log(p) + (1 - XOR_Y) * np.log(1 - p))
    assert abs(dg.loss("bce", logits, XOR_Y) - ref) < 1e-5


def test_losses_match_numpy():
    pred = np.array([[0.5, -1.0, 2.0], [1.5, 0.2, -0.3]], np.float32)
    target = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], np.float32)
    v, g = dg.loss(dg.Loss.MSE, pred, target, grad=True)
    assert abs(v - np.mean((pred - target) ** 2)) < 1e-6
    np.testing.assert_allclose(g.numpy(), 2 * (pred - target) / pred.size,
                               rtol=1e-6)
    cls = np.array([2, 0], np.float32)
    v = dg.loss("cross_entropy", pred, cls)
    logp = pred - np.log(np.exp(pred).sum(1, keepdims=True))
    assert abs(v - -(logp[0, 2] + logp[1, 0]) / 2) < 1e-6
    hinge_t = 2 * target - 1
    v = dg.loss(dg.Loss.HINGE, pred, hinge_t)
    assert abs(v - np.maximum(0, 1 - hinge_t * pred).mean()) < 1e-6
    # A gradient written into a given tensor.
    out = dg.Tensor(pred.shape)
    v2, g2 = dg.loss("mse", pred, target, grad=out)
    assert g2 is out and np.allclose(out.numpy(), g.numpy())
    with pytest.raises(dg.Error) as e:
        dg.loss("cross_entropy", pred, np.array([3, 0], np.float32))
    assert e.value.status == dg.Status.ERR_INVALID_ARGUMENT
    with pytest.raises(dg.Error) as e:
        dg.loss("mse", pred, target[:, :2])
    assert e.value.status == dg.Status.ERR_SHAPE


def one_param_net(value, grad):
    """A network whose only parameters are a [1, 1] weight and a bias with
    the given gradient set by hand."""
    net = dg.Net([1], [dg.dense(1, 1)])
    net.param(0).fill(value)
    net.param(1).fill(0.0)
    net.grad(0).fill(grad)
    net.grad(1).fill(0.0)
    return net


def test_sgd_and_adam_steps_follow_their_formulas():
    net = one_param_net(1.0, 0.5)
    opt = dg.SGD(0.1, momentum=0.9)
    opt.step(net)
    assert abs(net.param(0).numpy()[0, 0] - (1.0 - 0.1 * 0.5)) < 1e-7
    opt.step(net)       # momentum buffer b = 0.9 * 0.5 + 0.5
    assert abs(net.param(0).numpy()[0, 0] - (0.95 - 0.1 * 0.95)) < 1e-6
    net = one_param_net(1.0, -3.0)
    opt = dg.Adam(lr=0.01)
    opt.step(net)       # the first Adam step moves by lr * sign(g)
    assert abs(net.param(0).numpy()[0, 0] - 1.01) < 1e-6
    net = one_param_net(2.0, 0.0)
    dg.AdamW(lr=0.1, weight_decay=0.5).step(net)
    assert abs(net.param(0).numpy()[0, 0] - 2.0 * (1 - 0.1 * 0.5)) < 1e-6
    net = one_param_net(1.0, 2.0)
    dg.RMSprop(lr=0.01, alpha=0.9).step(net)   # v = 0.1 g^2
    expect = 1.0 - 0.01 * 2.0 / (math.sqrt(0.1 * 4.0) + 1e-8)
    assert abs(net.param(0).numpy()[0, 0] - expect) < 1e-6


def test_schedules_and_clipping():
    opt = dg.SGD(1.0)
    opt.set_schedule(dg.Schedule.STEP, period=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        lrs.append(opt.lr)
        opt.schedule_step()
    np.testing.assert_allclose(lrs, [1, 1, 0.5, 0.5, 0.25])
    opt = dg.SGD(0.2).set_schedule("cosine", period=4, min_lr=0.0)
    for _ in range(2):
        opt.schedule_step()
    assert abs(opt.lr - 0.1) < 1e-7
    opt.lr = 0.4
    assert abs(opt.lr - 0.2) < 1e-7      # the base rate, still scheduled
    with pytest.raises(dg.Error):
        opt.set_schedule("step", period=0, gamma=0.5)
    with pytest.raises(ValueError):
        opt.set_schedule("sideways")
    # Clipping scales the global norm (3, 4) -> 5 down to 1.
    net = dg.Net([1], [dg.dense(1, 1)])
    net.param(0).fill(0.0)
    net.param(1).fill(0.0)
    net.grad(0).fill(3.0)
    net.grad(1).fill(4.0)
    opt = dg.SGD(1.0).set_clip_norm(1.0)
    assert opt.clip_norm == 1.0
    opt.step(net)
    np.testing.assert_allclose([net.param(0).numpy()[0, 0],
                                net.param(1).numpy()[0]], [-0.6, -0.8],
                               rtol=1e-6)
    # The optimizer's state belongs to the first network it stepped.
    with pytest.raises(dg.Error) as e:
        opt.step(dg.Net([1], [dg.dense(1, 1)]))
    assert e.value.status == dg.Status.ERR_STATE


def test_dataset_from_numpy_split_batch_and_shuffle():
    x = np.arange(40, dtype=np.float32).reshape(10, 2, 2)
    y = np.arange(10, dtype=np.float32)
    ds = dg.Dataset.from_numpy(x, y)
    x[0] = -1                                   # the dataset holds a copy
    assert len(ds) == 10 and ds.sample_shape == (2, 2) and ds.has_labels
    assert ds.x.numpy()[0, 0, 0] == 0 and ds.y.numpy().tolist() == \
        list(range(10))
    xb, yb = ds.batch(3, 4)
    assert xb.shape == (4, 2, 2) and yb.numpy().tolist() == [3, 4, 5, 6]
    assert np.array_equal(xb.numpy(), np.arange(12, 28).reshape(4, 2, 2))
    train, valid = ds.split(0.3)
    assert (len(train), len(valid)) == (7, 3)
    assert valid.y.numpy().tolist() == [7, 8, 9]
    ds.shuffle(dg.Rng(4))
    xs, ys = ds.x.numpy(), ds.y.numpy()
    assert sorted(ys.tolist()) == list(range(10)) and ys.tolist() != \
        list(range(10))
    for k in range(10):                 # samples keep their labels
        assert xs[k, 0, 0] == 4 * ys[k]
    unl = dg.Dataset.from_tensors(dg.Tensor.from_numpy(x))
    assert not unl.has_labels and unl.y is None
    assert unl.batch(0, 2)[1] is None
    with pytest.raises(dg.Error):
        ds.batch(8, 5)
    with pytest.raises(dg.Error):
        dg.Dataset.from_numpy(x, y[:5])
    # Rescaling in place through a view of the borrowed samples.
    v = ds.x.numpy(copy=False)
    v *= 0
    assert not ds.batch(0, 10)[0].numpy().any()


def write_idx(path, array, code):
    dims = array.shape
    head = struct.pack(">HBB", 0, code, len(dims)) + struct.pack(
        ">" + "I" * len(dims), *dims)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(head + array.tobytes())


def test_idx_loading(tmp_path):
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5) * 4
    labels = np.array([2, 0, 1], np.uint8)
    write_idx(tmp_path / "img.gz", images, 0x08)
    write_idx(tmp_path / "lab.gz", labels, 0x08)
    ds = dg.Dataset.load_idx(tmp_path / "img.gz", tmp_path / "lab.gz")
    assert ds.sample_shape == (1, 4, 5)
    np.testing.assert_allclose(ds.x.numpy()[:, 0], images / 255.0,
                               rtol=1e-6)
    assert ds.y.numpy().tolist() == [2, 0, 1]
    with pytest.raises(dg.Error) as e:
        dg.Dataset.load_idx(tmp_path / "nope.gz")
    assert "nope.gz" in e.value.message
    if not dg.has_symbol("dng_dataset_open_idx"):
        with pytest.raises(dg.Error) as e:
            dg.Dataset.open_idx(tmp_path / "img")
        assert e.value.status == dg.Status.ERR_UNSUPPORTED
        return
    write_idx(tmp_path / "img", images, 0x08)
    write_idx(tmp_path / "lab", labels, 0x08)
    mapped = dg.Dataset.open_idx(tmp_path / "img", tmp_path / "lab")
    xb, yb = mapped.batch(1, 2)
    np.testing.assert_allclose(xb.numpy().reshape(2, 4, 5),
                               images[1:] / 255.0, rtol=1e-6)
    assert yb.numpy().tolist() == [0, 1]
    with pytest.raises(dg.Error):
        mapped.x


def test_npy_mapped_dataset(tmp_path):
    x = np.random.default_rng(2).normal(size=(6, 3)).astype(np.float32)
    y = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    if not dg.has_symbol("dng_dataset_open_npy"):
        pytest.skip("this libdnngen has no dng_dataset_open_npy")
    ds = dg.Dataset.open_npy(tmp_path / "x.npy", tmp_path / "y.npy")
    assert len(ds) == 6 and ds.sample_shape == (3,)
    xb, yb = ds.batch(2, 3)
    assert np.array_equal(xb.numpy(), x[2:5])
    assert np.array_equal(yb.numpy(), y[2:5])


def regression_data(n=256, seed=0):
    r = np.random.default_rng(seed)
    x = r.uniform(-1, 1, size=(n, 3)).astype(np.float32)
    y = (x @ np.array([[1.5], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    return x, y


def test_fit_regression_callback_and_evaluate():
    x, y = regression_data()
    ds = dg.Dataset.from_numpy(x, y)
    train, valid = ds.split(0.25, dg.Rng(1))
    net = dg.Net([3], [dg.dense(3, 1)])
    seen = []
    history = dg.fit(net, dg.Adam(0.05), "mse", train, valid, epochs=30,
                     batch_size=32, seed=3, callback=seen.append)
    assert len(history) == 30 and seen == history
    assert [h.epoch for h in history] == list(range(1, 31))
    assert history[-1].valid_loss < 1e-3 < history[0].valid_loss
    assert history[-1].step == 30 * math.ceil(len(train) / 32)
    assert math.isnan(history[0].valid_accuracy) or \
        0 <= history[0].valid_accuracy <= 1
    w = net.param("0.weight").numpy().ravel()
    np.testing.assert_allclose(w, [1.5, -2.0, 0.5], atol=0.05)
    loss, _ = dg.evaluate(net, "mse", valid)
    pred = net.predict(valid.x)
    assert abs(loss - np.mean((pred - valid.y.numpy()) ** 2)) < 1e-6
    # Same seed, same numbers.
    net2 = dg.Net([3], [dg.dense(3, 1)])
    h2 = net2.fit(dg.Adam(0.05), "mse", train, valid, epochs=30,
                  batch_size=32, seed=3)
    assert [h.train_loss for h in h2] == [h.train_loss for h in history]


def test_fit_classification_accuracy():
    r = np.random.default_rng(5)
    x = r.normal(size=(300, 2)).astype(np.float32)
    labels = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    ds = dg.Dataset.from_numpy(x, labels)
    net = dg.Net([2], [dg.dense(2, 16), dg.relu(), dg.dense(16, 2)])
    net.fit(dg.Adam(0.02), dg.Loss.CROSS_ENTROPY, ds, epochs=15,
            batch_size=30)
    loss, acc = net.evaluate("cross_entropy", ds, 100)
    assert acc > 0.95 and loss < 0.2
    ref = (net.eval().predict(x).argmax(1) == labels).mean()
    assert abs(acc - ref) < 1e-6


def test_fit_callback_stops_and_exceptions_propagate():
    x, y = regression_data(64)
    ds = dg.Dataset.from_numpy(x, y)
    net = dg.Net([3], [dg.dense(3, 1)])
    hist = dg.fit(net, dg.SGD(0.1), "mse", ds, epochs=50, batch_size=16,
                  callback=lambda p: p.epoch == 3)
    assert len(hist) == 3

    class Boom(Exception):
        pass

    calls = []

    def bad(p):
        calls.append(p.epoch)
        if p.epoch == 2:
            raise Boom("from the callback")

    net2 = dg.Net([3], [dg.dense(3, 1)])
    with pytest.raises(Boom, match="from the callback"):
        dg.fit(net2, dg.SGD(0.1), "mse", ds, epochs=50, batch_size=16,
               callback=bad)
    assert calls == [1, 2]           # training stopped at the exception
    # The binding is still healthy afterwards.
    assert len(dg.fit(net2, dg.SGD(0.1), "mse", ds, epochs=2,
                      batch_size=16)) == 2
    with pytest.raises(TypeError):
        dg.fit(net2, dg.SGD(0.1), "mse", ds, epochs=1, callback=42)


def test_early_stopping_restores_the_best_weights():
    x, y = regression_data(128, 4)
    y_noisy = y + np.random.default_rng(0).normal(
        scale=3, size=y.shape).astype(np.float32)
    train = dg.Dataset.from_numpy(x[:64], y_noisy[:64])
    valid = dg.Dataset.from_numpy(x[64:], y[64:])
    net = dg.Net([3], [dg.dense(3, 64), dg.relu(), dg.dense(64, 1)])
    hist = dg.fit(net, dg.Adam(0.05), "mse", train, valid, epochs=200,
                  batch_size=8, patience=3)
    best = hist[-1].best_epoch
    assert len(hist) < 200 and len(hist) == best + 3
    assert abs(dg.evaluate(net, "mse", valid)[0] -
               hist[best - 1].valid_loss) < 1e-5


def test_save_load_state_dict_and_copy(tmp_path):
    net = dg.Net([1, 6, 6], [dg.conv2d(1, 2, 3), dg.batchnorm(2), dg.relu(),
                             dg.flatten(), dg.dense(32, 3)])
    net.init("he_normal", 8)
    x = np.random.default_rng(3).normal(size=(4, 1, 6, 6)).astype(np.float32)
    net.forward(x)                       # moves the running statistics
    net.eval()
    ref = net.predict(x)
    net.save(tmp_path / "m.dngm")
    loaded = dg.Net.load(tmp_path / "m.dngm")
    assert loaded.sample_shape == (1, 6, 6)
    assert loaded.param_names() == net.param_names()
    np.testing.assert_array_equal(loaded.eval().predict(x), ref)
    other = dg.Net([1, 6, 6], [dg.conv2d(1, 2, 3), dg.batchnorm(2),
                               dg.relu(), dg.flatten(), dg.dense(32, 3)])
    other.load_state_dict(net.state_dict())
    np.testing.assert_array_equal(other.eval().predict(x), ref)
    third = dg.Net([1, 6, 6], [dg.conv2d(1, 2, 3), dg.batchnorm(2),
                               dg.relu(), dg.flatten(), dg.dense(32, 3)])
    third.copy_weights_from(net)
    np.testing.assert_array_equal(third.eval().predict(x), ref)
    bad = net.state_dict()
    bad["4.weight"] = bad["4.weight"].T
    with pytest.raises(dg.Error) as e:
        other.load_state_dict(bad)
    assert e.value.status == dg.Status.ERR_SHAPE
    with pytest.raises(dg.Error):
        other.load_state_dict({"0.weight": bad["0.weight"]})
    (tmp_path / "bad.dngm").write_bytes(
        (tmp_path / "m.dngm").read_bytes()[:-9] + b"corrupted")
    with pytest.raises(dg.Error) as e:
        dg.Net.load(tmp_path / "bad.dngm")
    assert e.value.message
    with pytest.raises(dg.Error):
        dg.Net.load(tmp_path / "missing.dngm")
    with pytest.raises(dg.Error):
        net.copy_weights_from(dg.Net([1, 6, 6], [dg.flatten()]))


def read_safetensors(path):
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        assert info["dtype"] == "F32"
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], "<f4").reshape(
            info["shape"])
    return out


def test_safetensors_round_trip(tmp_path):
    net = dg.Net([3], [dg.dense(3, 4), dg.batchnorm(4), dg.dense(4, 2)])
    net.forward(np.random.default_rng(0).normal(size=(5, 3))
                .astype(np.float32))
    path = tmp_path / "w.safetensors"
    if not dg.has_symbol("dng_net_save_safetensors"):
        with pytest.raises(dg.Error) as e:
            net.save_safetensors(path)
        assert e.value.status == dg.Status.ERR_UNSUPPORTED
        assert "dng_net_save_safetensors" in e.value.message
        return
    net.save_safetensors(path)
    stored = read_safetensors(path)
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(stored[name], value)
    fresh = dg.Net([3], [dg.dense(3, 4), dg.batchnorm(4), dg.dense(4, 2)])
    fresh.init("xavier_uniform", 1)
    fresh.load_safetensors(path)
    for (name, a), b in zip(net.state_dict().items(),
                            fresh.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    with pytest.raises(dg.Error):
        dg.Net([3], [dg.dense(3, 5)]).load_safetensors(path)
