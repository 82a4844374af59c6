"""Layers and networks through the binding, checked against numpy
references: forward values, gradients (analytic and finite differences),
parameters, buffers and the network's bookkeeping."""
import math

import numpy as np
import pytest

import dnngen as dg

RNG = np.random.default_rng(1234)


def randn(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def run(layer, x, sample_shape=None, training=True):
    net = dg.Net(sample_shape or x.shape[1:], [layer])
    net.set_training(training)
    return net, net.forward(x).numpy()


def conv2d_ref(x, w, b, stride, pad):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho = (h + 2 * pad - kh) // stride + 1
    wo = (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, o, ho, wo), np.float64)
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * stride:i * stride + kh,
                       j * stride:j * stride + kw]
            out[:, :, i, j] = np.einsum("nckl,ockl->no", patch, w)
    return out + b[None, :, None, None]


def conv2d_transpose_ref(x, w, b, stride, pad):
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    full = np.zeros((n, o, (h - 1) * stride + kh, (wd - 1) * stride + kw))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * stride:i * stride + kh,
                 j * stride:j * stride + kw] += np.einsum(
                     "nc,cokl->nokl", x[:, :, i, j], w)
    ho, wo = (h - 1) * stride - 2 * pad + kh, (wd - 1) * stride - 2 * pad + kw
    return full[:, :, pad:pad + ho, pad:pad + wo] + b[None, :, None, None]


def test_dense_forward_and_backward_match_numpy():
    x = randn(5, 4)
    net, y = run(dg.dense(4, 3), x)
    w, b = net.param("0.weight").numpy(), net.param("0.bias").numpy()
    assert w.shape == (3, 4) and b.shape == (3,)
    np.testing.assert_allclose(y, x @ w.T + b, rtol=1e-5, atol=1e-6)
    dy = randn(5, 3)
    net.zero_grad()
    dx = net.backward(dy, input_grad=True).numpy()
    np.testing.assert_allclose(dx, dy @ w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.grad("0.weight").numpy(), dy.T @ x,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(net.grad(1).numpy(), dy.sum(0), rtol=1e-5,
                               atol=1e-6)
    # Gradients accumulate until zero_grad.
    net.forward(x)
    net.backward(dy)
    np.testing.assert_allclose(net.grad(1).numpy(), 2 * dy.sum(0),
                               rtol=1e-5, atol=1e-5)
    net.zero_grad()
    assert not net.grad(0).numpy().any()


@pytest.mark.parametrize("stride,pad", [(1, 0), (2, 1)])
def test_conv2d_matches_numpy(stride, pad):
    x = randn(2, 3, 7, 6)
    net, y = run(dg.conv2d(3, 4, (3, 2), stride=stride, padding=pad), x)
    w, b = net.param(0).numpy(), net.param(1).numpy()
    assert w.shape == (4, 3, 3, 2)
    np.testing.assert_allclose(y, conv2d_ref(x, w, b, stride, pad),
                               rtol=1e-4, atol=1e-5)


def test_conv2d_transpose_matches_numpy():
    x = randn(2, 3, 4, 4)
    net, y = run(dg.conv2d_transpose(3, 2, 4, stride=2, padding=1), x)
    w, b = net.param(0).numpy(), net.param(1).numpy()
    assert w.shape == (3, 2, 4, 4) and y.shape == (2, 2, 8, 8)
    np.testing.assert_allclose(y, conv2d_transpose_ref(x, w, b, 2, 1),
                               rtol=1e-4, atol=1e-5)


def test_pooling_matches_numpy():
    x = randn(2, 3, 6, 5)
    _, ymax = run(dg.maxpool2d(2), x)
    _, yavg = run(dg.avgpool2d(2, 1), x)
    ref_max = x[:, :, :6, :4].reshape(2, 3, 3, 2, 2, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(ymax, ref_max)
    ref_avg = (x[:, :, :-1, :-1] + x[:, :, 1:, :-1] + x[:, :, :-1, 1:] +
               x[:, :, 1:, 1:]) / 4
    np.testing.assert_allclose(yavg, ref_avg, rtol=1e-5, atol=1e-6)


def test_batchnorm_training_and_running_statistics():
    x = randn(8, 3, 2, 2) * 2 + 1
    net = dg.Net([3, 2, 2], [dg.batchnorm(3)])
    assert net.buffer_names()[:2] == ["0.running_mean", "0.running_var"]
    w = np.array([1.0, 2.0, 0.5], np.float32)
    b = np.array([0.0, -1.0, 3.0], np.float32)
    net.param("0.weight").copy_from(w)
    net.param("0.bias").copy_from(b)
    y = net.forward(x).numpy()
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    ref = (x - mean[None, :, None, None]) / np.sqrt(
        var[None, :, None, None] + 1e-5) * w[None, :, None, None] + \
        b[None, :, None, None]
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    n = x.size // 3
    np.testing.assert_allclose(net.buffer("0.running_mean").numpy(),
                               0.1 * mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(net.buffer(1).numpy(),
                               0.9 + 0.1 * var * n / (n - 1), rtol=1e-4)
    # Evaluation mode normalises with the running statistics.
    net.eval()
    assert not net.training
    rm, rv = net.buffer(0).numpy(), net.buffer(1).numpy()
    y2 = net.forward(x).numpy()
    ref2 = (x - rm[None, :, None, None]) / np.sqrt(
        rv[None, :, None, None] + 1e-5) * w[None, :, None, None] + \
        b[None, :, None, None]
    np.testing.assert_allclose(y2, ref2, rtol=1e-4, atol=1e-4)


def test_layernorm_matches_numpy():
    x = randn(4, 6) * 3
    net, y = run(dg.layernorm(6), x)
    ref = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) +
                                                   1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("make,ref", [
    (dg.relu, lambda x: np.maximum(x, 0)),
    (lambda: dg.leaky_relu(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (dg.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    (dg.tanh, np.tanh),
    (dg.softmax, lambda x: np.exp(x) / np.exp(x).sum(1, keepdims=True)),
    (dg.gelu,
     lambda x: x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))),
    (dg.identity, lambda x: x),
    (lambda: dg.activation("leaky_relu", 0.1),
     lambda x: np.where(x > 0, x, 0.1 * x)),
])
def test_activations_match_numpy(make, ref):
    x = randn(3, 5) * 2
    _, y = run(make(), x)
    np.testing.assert_allclose(y, ref(x.astype(np.float64)), rtol=1e-5,
                               atol=1e-6)


def test_reshape_flatten_and_dropout():
    x = randn(2, 12)
    net = dg.Net([12], [dg.reshape([3, 4]), dg.flatten()])
    assert net.output_shape == (12,)
    assert net.summary().splitlines()[2].split()[2:4] == ["[3,", "4]"]
    np.testing.assert_array_equal(net.forward(x).numpy(), x)
    x = np.ones((100, 50), np.float32)
    net = dg.Net([50], [dg.dropout(0.25)]).set_seed(3)
    y = net.forward(x).numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert abs(1 - kept.mean() - 0.25) < 0.03
    # Same seed, same mask; evaluation mode is the identity.
    assert np.array_equal(dg.Net([50], [dg.dropout(0.25)]).set_seed(3)
                          .forward(x).numpy(), y)
    assert np.array_equal(net.eval().forward(x).numpy(), x)


def test_network_gradients_match_finite_differences():
    x = randn(3, 2, 5, 5)
    target = randn(3, 2)
    net = dg.Net([2, 5, 5], [dg.conv2d(2, 3, 3, padding=1), dg.tanh(),
                             dg.avgpool2d(2), dg.flatten(), dg.dense(12, 2)])
    net.init("xavier_uniform", 5)

    def loss_of():
        return dg.loss(dg.Loss.MSE, net.forward(x), target)

    net.zero_grad()
    _, g = dg.loss(dg.Loss.MSE, net.forward(x), target, grad=True)
    dx = net.backward(g, input_grad=True).numpy()
    for name in ("0.weight", "0.bias", "4.weight"):
        p = net.param(name)
        view = p.numpy(copy=False)          # write-through view
        grad = net.grad(name).numpy().ravel()
        flat = view.reshape(-1)
        for k in (0, flat.size // 2, flat.size - 1):
            old = flat[k]
            flat[k] = old + 1e-2
            up = loss_of()
            flat[k] = old - 1e-2
            down = loss_of()
            flat[k] = old
            fd = (up - down) / 2e-2
            assert abs(fd - grad[k]) <= 2e-3 + 2e-2 * abs(fd), (name, k)
    # The input gradient, checked on one element.
    xv = x.copy()
    xv[1, 0, 2, 2] += 1e-2
    up = dg.loss("mse", net.forward(xv), target)
    xv[1, 0, 2, 2] -= 2e-2
    down = dg.loss("mse", net.forward(xv), target)
    fd = (up - down) / 2e-2
    assert abs(fd - dx[1, 0, 2, 2]) <= 2e-3 + 2e-2 * abs(fd)


def test_spectral_norm_divides_by_the_largest_singular_value():
    net = dg.Net([6], [dg.spectral_norm(dg.dense(6, 4))])
    names = net.param_names()
    assert names == ["0.weight_orig", "0.bias"]
    assert "0.weight_u" in net.buffer_names()
    w = net.param("0.weight_orig").numpy()
    b = net.param("0.bias").numpy()
    x = randn(3, 6)
    for _ in range(30):                     # power iterations converge
        net.forward(x)
    sigma = np.linalg.svd(w.astype(np.float64), compute_uv=False)[0]
    y = net.eval().forward(x).numpy()
    np.testing.assert_allclose(y, x @ (w / sigma).T + b, rtol=1e-3,
                               atol=1e-4)


def test_net_bookkeeping_and_summary():
    net = dg.Net([1, 8, 8], [dg.conv2d(1, 2, 3), dg.batchnorm(2), dg.relu(),
                             dg.flatten(), dg.dense(72, 3)])
    assert len(net) == net.num_layers == 5
    assert net.sample_shape == (1, 8, 8) and net.output_shape == (3,)
    assert net.param_names() == ["0.weight", "0.bias", "1.weight", "1.bias",
                                 "4.weight", "4.bias"]
    assert net.num_params == 6 and net.num_buffers == 2
    assert net.param_count == 2 * 9 + 2 + 2 + 2 + 72 * 3 + 3
    assert net.param_index("4.bias") == 5
    assert [n for n, _ in net.named_buffers()] == ["1.running_mean",
                                                   "1.running_var"]
    lines = net.summary().splitlines()
    assert len(lines) == 1 + 1 + 5 + 1
    assert lines[-1] == "total trainable parameters: %d" % net.param_count
    assert "dense" in lines[6] and lines[6].split()[-1] == str(72 * 3 + 3)
    big = dg.Net([4], [dg.identity() for _ in range(300)])
    assert len(big.summary().splitlines()) == 303   # grown past 4 KiB
    sd = net.state_dict()
    assert list(sd) == net.param_names() + net.buffer_names()
    assert sd["4.weight"].shape == (3, 72)
    assert "5 layers" in repr(net)


def test_init_schemes_are_reproducible_and_scaled():
    net = dg.Net([400], [dg.dense(400, 300)])
    net.init(dg.Init.HE_NORMAL, dg.Rng(1))
    w = net.param(0).numpy()
    assert abs(w.std() - math.sqrt(2 / 400)) < 0.002
    assert not net.param(1).numpy().any()
    net.init("normal_002", 9)
    a = net.param(0).numpy()
    assert abs(a.std() - 0.02) < 0.001
    net.init("normal_002", dg.Rng(9))
    assert np.array_equal(net.param(0).numpy(), a)
    net.init(dg.Init.XAVIER_UNIFORM, 2)
    bound = math.sqrt(6 / 700)
    w = net.param(0).numpy()
    assert w.max() <= bound and w.min() >= -bound and w.max() > 0.9 * bound
