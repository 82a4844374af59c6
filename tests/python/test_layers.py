"""Layers and small networks against PyTorch: outputs, input gradients and
parameter gradients for random inputs and a random upstream gradient dy,
with the weights copied from torch modules.

Every torch module is wrapped in nn.Sequential so that its parameter and
buffer names ("0.weight", "1.running_mean") are exactly what
dng_net_param_name() / dng_net_buffer_name() must give.
"""
import numpy as np
import pytest
import torch
import torch.nn as nn

import dngtest as D
from dngtest import assert_close


def np32(t):
    return t.detach().numpy().astype(np.float32)


def randomize_affine(module):
    """Batch/layer norms start at weight 1, bias 0, which would hide a
    swapped or ignored affine step: give them random values."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def torch_step(tmod, x):
    """Forward and backward in torch with a random dy; returns
    (y, dx, dy, {name: grad})."""
    xt = torch.tensor(x, requires_grad=True)
    tmod.zero_grad()
    yt = tmod(xt)
    dy = torch.randn(yt.shape)
    yt.backward(dy)
    grads = {n: np32(p.grad) for n, p in tmod.named_parameters()}
    return np32(yt), np32(xt.grad), np32(dy), grads


def compare_step(tmod, net, x, what, dx_atol_dy=None, zero_grads=()):
    """One training (or evaluation) step on both sides, all compared.

    dx_atol_dy, when given, sets the absolute tolerance of dL/dx to that
    fraction of max|dy|, for layers whose dx elements are differences of
    terms as large as dy (see test_softmax).
    zero_grads names parameters whose gradient is zero in exact arithmetic
    (a bias feeding a training-mode batch norm, which subtracts the batch
    mean): both sides hold only rounding noise there, which cannot be
    compared relatively; the library's must be below 1e-5 of the largest
    gradient of the same layer instead.
    """
    y_ref, dx_ref, dy, g_ref = torch_step(tmod, x)
    net.zero_grad()
    y = net.forward(x)
    assert_close(y, y_ref, what=what + ": output")
    dx = net.backward(dy)
    if dx_atol_dy is None:
        assert_close(dx, dx_ref, what=what + ": dL/dx")
    else:
        np.testing.assert_allclose(
            dx, dx_ref, rtol=D.RTOL,
            atol=dx_atol_dy * float(np.abs(dy).max()),
            err_msg=what + ": dL/dx")
    assert sorted(net.param_names()) == sorted(g_ref), \
        "%s: parameter names %s, torch has %s" % (
            what, net.param_names(), sorted(g_ref))
    for name, g in g_ref.items():
        if name in zero_grads:
            layer = name.split(".")[0] + "."
            scale = max(float(np.abs(v).max()) for k, v in g_ref.items()
                        if k.startswith(layer))
            got = float(np.abs(net.grad(name)).max())
            assert got <= 1e-5 * scale, \
                "%s: dL/d%s = %g should be ~0 (layer scale %g)" % (
                    what, name, got, scale)
            continue
        assert_close(net.grad(name), g, what="%s: dL/d%s" % (what, name))
    return y


def make_net(tmod, sample_shape, layers):
    net = D.Net(sample_shape, layers)
    net.load_torch(tmod)
    return net


# ---- dense -----------------------------------------------------------------

@pytest.mark.parametrize("n,fin,fout", [(4, 7, 5), (1, 3, 1), (33, 64, 17)])
def test_dense(n, fin, fout):
    torch.manual_seed(100 + fin)
    tmod = nn.Sequential(nn.Linear(fin, fout))
    x = np32(torch.randn(n, fin))
    with make_net(tmod, [fin], [D.dense(fin, fout)]) as net:
        compare_step(tmod, net, x, "dense")
        # A second step on new data: nothing stale is reused.
        compare_step(tmod, net, np32(torch.randn(n, fin)), "dense again")


def test_dense_grads_accumulate():
    """dng_net_backward adds into the gradients, as torch's .grad does."""
    torch.manual_seed(1)
    tmod = nn.Sequential(nn.Linear(5, 3))
    x1, x2 = np32(torch.randn(4, 5)), np32(torch.randn(4, 5))
    dy1, dy2 = torch.randn(4, 3), torch.randn(4, 3)
    tmod(torch.tensor(x1)).backward(dy1)
    tmod(torch.tensor(x2)).backward(dy2)
    with make_net(tmod, [5], [D.dense(5, 3)]) as net:
        net.forward(x1)
        net.backward(np32(dy1), want_dx=False)
        net.forward(x2)
        net.backward(np32(dy2), want_dx=False)
        for name, p in tmod.named_parameters():
            assert_close(net.grad(name), np32(p.grad), what=name)


# ---- convolutions ----------------------------------------------------------

# (in_ch, out_ch, kh, kw, stride, pad, H, W, N)
CONV_CASES = [
    (3, 4, 3, 3, 1, 1, 8, 8, 2),     # "same" 3x3
    (2, 5, 3, 3, 2, 0, 9, 7, 3),     # odd sizes, stride 2, no padding
    (1, 3, 5, 5, 2, 2, 11, 10, 2),   # 5x5 with padding 2
    (4, 2, 1, 1, 1, 0, 5, 5, 2),     # 1x1
    (3, 2, 2, 4, 3, 1, 10, 13, 2),   # rectangular kernel, stride 3
    (2, 3, 4, 4, 2, 1, 16, 16, 4),   # DCGAN down-sampling block
    (3, 3, 3, 3, 1, 2, 4, 5, 1),     # padding larger than half the kernel
    (2, 2, 3, 2, 2, 1, 3, 3, 2),     # tiny input, one or two outputs
]


@pytest.mark.parametrize("cin,cout,kh,kw,stride,pad,h,w,n", CONV_CASES)
def test_conv2d(cin, cout, kh, kw, stride, pad, h, w, n):
    torch.manual_seed(cin * 100 + cout * 10 + kh)
    tmod = nn.Sequential(nn.Conv2d(cin, cout, (kh, kw), stride, pad))
    x = np32(torch.randn(n, cin, h, w))
    with make_net(tmod, [cin, h, w],
                  [D.conv2d(cin, cout, kh, kw, stride, pad)]) as net:
        compare_step(tmod, net, x, "conv2d")


# (in_ch, out_ch, kh, kw, stride, pad, H, W, N)
CONVT_CASES = [
    (4, 3, 4, 4, 2, 1, 4, 4, 2),     # DCGAN up-sampling block
    (2, 3, 3, 3, 1, 0, 5, 6, 2),     # stride 1: a "full" convolution
    (3, 2, 3, 3, 2, 1, 5, 7, 3),     # odd sizes
    (2, 2, 5, 5, 3, 2, 3, 4, 2),     # stride 3, kernel 5
    (3, 1, 2, 3, 2, 0, 4, 5, 2),     # rectangular kernel
    (5, 4, 1, 1, 1, 0, 3, 3, 1),     # 1x1
    (2, 3, 4, 4, 1, 1, 1, 1, 2),     # 1x1 input (a generator's first layer)
]


@pytest.mark.parametrize("cin,cout,kh,kw,stride,pad,h,w,n", CONVT_CASES)
def test_conv2d_transpose(cin, cout, kh, kw, stride, pad, h, w, n):
    torch.manual_seed(cin * 100 + cout * 10 + kh + 7)
    tmod = nn.Sequential(nn.ConvTranspose2d(cin, cout, (kh, kw), stride, pad))
    assert tuple(tmod[0].weight.shape) == (cin, cout, kh, kw)
    x = np32(torch.randn(n, cin, h, w))
    with make_net(tmod, [cin, h, w],
                  [D.conv2d_transpose(cin, cout, kh, kw, stride,
                                      pad)]) as net:
        compare_step(tmod, net, x, "conv2d_transpose")


# ---- pooling ---------------------------------------------------------------

# (k, stride, C, H, W, N)
POOL_CASES = [
    (2, 2, 3, 8, 8, 2),     # the common halving
    (3, 2, 2, 9, 7, 2),     # overlapping windows, odd sizes
    (3, 3, 2, 10, 11, 2),   # floor mode drops the remainder
    (2, 1, 1, 5, 6, 3),     # stride 1, heavily overlapping
    (4, 4, 2, 4, 4, 2),     # one window per channel
]


@pytest.mark.parametrize("k,stride,c,h,w,n", POOL_CASES)
def test_maxpool2d(k, stride, c, h, w, n):
    torch.manual_seed(k * 10 + stride + h)
    tmod = nn.Sequential(nn.MaxPool2d(k, stride))
    # A permutation of distinct values: no ties, so the argmax (and with
    # it the gradient's destination) is unique on both sides.
    x = np32(torch.randperm(n * c * h * w).float().reshape(n, c, h, w)
             / (n * c * h * w) - 0.5)
    with make_net(tmod, [c, h, w], [D.maxpool2d(k, stride)]) as net:
        compare_step(tmod, net, x, "maxpool2d")


@pytest.mark.parametrize("k,stride,c,h,w,n", POOL_CASES)
def test_avgpool2d(k, stride, c, h, w, n):
    torch.manual_seed(k * 10 + stride + h + 1)
    tmod = nn.Sequential(nn.AvgPool2d(k, stride))
    x = np32(torch.randn(n, c, h, w))
    with make_net(tmod, [c, h, w], [D.avgpool2d(k, stride)]) as net:
        compare_step(tmod, net, x, "avgpool2d")


# ---- batch normalisation ---------------------------------------------------

def check_buffers(tmod, net, what):
    for name, b in tmod.named_buffers():
        if name.endswith("num_batches_tracked"):
            continue
        assert_close(net.buffer(name), np32(b), what="%s: %s" % (what, name))


@pytest.mark.parametrize("shape", [(8, 5), (6, 3, 4, 5), (2, 4, 3, 3)])
def test_batchnorm(shape):
    torch.manual_seed(sum(shape))
    c = shape[1]
    bn = nn.BatchNorm1d(c) if len(shape) == 2 else nn.BatchNorm2d(c)
    tmod = nn.Sequential(bn)
    randomize_affine(tmod)
    with make_net(tmod, list(shape[1:]), [D.batchnorm(c)]) as net:
        assert sorted(net.buffer_names()) == ["0.running_mean",
                                              "0.running_var"]
        # Training mode: batch statistics; the running ones follow with
        # momentum 0.1 and the unbiased variance. Inputs with a non-zero
        # mean and a non-unit spread so that the statistics matter.
        tmod.train()
        net.train()
        for step in range(3):
            x = np32(torch.randn(*shape) * (1.0 + step) + 0.5 * step - 1.0)
            compare_step(tmod, net, x, "batchnorm train step %d" % step)
            check_buffers(tmod, net, "batchnorm train step %d" % step)
        # Evaluation mode: the running statistics, left unchanged.
        tmod.eval()
        net.eval()
        x = np32(torch.randn(*shape) * 2.0 + 0.3)
        compare_step(tmod, net, x, "batchnorm eval")
        check_buffers(tmod, net, "batchnorm eval")


# ---- layer normalisation ---------------------------------------------------

@pytest.mark.parametrize("shape", [(6, 10), (4, 3, 7), (1, 16)])
def test_layernorm(shape):
    torch.manual_seed(sum(shape) + 3)
    f = shape[-1]
    tmod = nn.Sequential(nn.LayerNorm(f))
    randomize_affine(tmod)
    x = np32(torch.randn(*shape) * 3.0 + 1.0)
    with make_net(tmod, list(shape[1:]), [D.layernorm(f)]) as net:
        compare_step(tmod, net, x, "layernorm")
        net.eval()
        tmod.eval()
        compare_step(tmod, net, np32(torch.randn(*shape)), "layernorm eval")


# ---- dropout ---------------------------------------------------------------

def dropout_input(shape, seed):
    g = torch.Generator().manual_seed(seed)
    # No zeros in x, so a zero in y can only be a dropped element.
    mag = torch.rand(shape, generator=g) + 0.5
    sign = torch.randint(0, 2, shape, generator=g) * 2 - 1
    return np32(mag * sign)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.75])
def test_dropout_training(p):
    shape = (64, 3, 8, 8)
    x = dropout_input(shape, 7)
    dy = dropout_input(shape, 8)
    with D.Net(list(shape[1:]), [D.dropout(p)]) as net:
        net.seed(1234)
        net.train()
        y = net.forward(x)
        mask = y != 0
        # Survivors are scaled by 1 / (1 - p), exactly as torch computes it.
        scale = np.float32(1.0) / np.float32(1.0 - p)
        assert_close(y[mask], x[mask] * scale, rtol=1e-6, atol_scale=0,
                     what="dropout survivors")
        # The drop rate is p: 12288 Bernoulli draws give a standard
        # deviation of at most 0.0045, so 0.02 is over 4 sigma.
        assert abs((~mask).mean() - p) < 0.02
        # Backward applies the same mask and scale (torch's rule).
        dx = net.backward(dy)
        assert_close(dx, np.where(mask, dy * scale, 0.0), rtol=1e-6,
                     atol_scale=0, what="dropout dL/dx")
        # The mask is torch's dropout with this mask: check through torch.
        xt = torch.tensor(x, requires_grad=True)
        yt = xt * torch.tensor(mask, dtype=torch.float32) / (1.0 - p)
        yt.backward(torch.tensor(dy))
        assert_close(y, np32(yt), what="dropout vs torch with the mask")
        assert_close(dx, np32(xt.grad), what="dropout dx vs torch")
        # A new forward draws a new mask; the same seed, the same mask.
        y2 = net.forward(x)
        assert not np.array_equal(y2 != 0, mask)
        net.seed(1234)
        y3 = net.forward(x)
        np.testing.assert_array_equal(y3, y)


def test_dropout_eval_identity():
    x = dropout_input((16, 20), 3)
    dy = dropout_input((16, 20), 4)
    with D.Net([20], [D.dropout(0.5)]) as net:
        net.eval()
        np.testing.assert_array_equal(net.forward(x), x)
        np.testing.assert_array_equal(net.backward(dy), dy)
        tmod = nn.Dropout(0.5).eval()
        np.testing.assert_array_equal(np32(tmod(torch.tensor(x))), x)


# ---- activations -----------------------------------------------------------

ACTIVATIONS = [
    ("relu", D.ACT_RELU, 0.0, nn.ReLU()),
    ("leaky_relu", D.ACT_LEAKY_RELU, 0.2, nn.LeakyReLU(0.2)),
    ("sigmoid", D.ACT_SIGMOID, 0.0, nn.Sigmoid()),
    ("tanh", D.ACT_TANH, 0.0, nn.Tanh()),
    ("gelu", D.ACT_GELU, 0.0, nn.GELU()),       # exact (erf) form
    ("identity", D.ACT_IDENTITY, 0.0, nn.Identity()),
]


@pytest.mark.parametrize("name,kind,param,tact", ACTIVATIONS,
                         ids=[a[0] for a in ACTIVATIONS])
@pytest.mark.parametrize("shape", [(5, 13), (2, 3, 4, 5)])
def test_activation(name, kind, param, tact, shape):
    torch.manual_seed(len(name) + len(shape))
    tmod = nn.Sequential(tact)
    # Values from -6 to 6 reach the saturated tails of sigmoid/tanh/GELU;
    # none is exactly 0 (where ReLU's derivative is a convention).
    x = np32(torch.randn(*shape) * 3.0)
    x[x == 0] = 0.5
    with D.Net(list(shape[1:]), [D.activation(kind, param)]) as net:
        compare_step(tmod, net, x, name)


@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_softmax(scale):
    """Softmax over the features of each sample: torch's Softmax(dim=1) on
    [N, C]. Large logits (scale 30) must neither overflow nor lose the
    gradient."""
    torch.manual_seed(int(scale))
    tmod = nn.Sequential(nn.Softmax(dim=1))
    x = np32(torch.randn(6, 9) * scale)
    with D.Net([9], [D.activation(D.ACT_SOFTMAX, 0.0)]) as net:
        # dx_i = y_i (dy_i - sum_j y_j dy_j): when one y_j is ~1 the
        # bracket cancels, and float32 leaves an absolute error of a few
        # ulp of |dy|. At scale 30 torch's own float32 value of such an
        # element is 2e-3 (relative) away from the float64 one, the
        # library's 2e-4, so dx gets an absolute tolerance of 1e-6 of
        # max|dy| (~16 ulp) instead of one relative to max|dx|.
        y = compare_step(tmod, net, x, "softmax", dx_atol_dy=1e-6)
        assert np.all(np.isfinite(y))
        assert_close(y.sum(axis=1), np.ones(6), rtol=1e-6, atol_scale=0,
                     what="softmax rows sum to 1")


def test_leaky_relu_other_slopes():
    torch.manual_seed(5)
    x = np32(torch.randn(4, 11))
    for slope in (0.01, 0.3, 1.5):
        tmod = nn.Sequential(nn.LeakyReLU(slope))
        with D.Net([11], [D.activation(D.ACT_LEAKY_RELU, slope)]) as net:
            compare_step(tmod, net, x, "leaky_relu(%g)" % slope)


# ---- flatten / reshape -----------------------------------------------------

def test_flatten():
    torch.manual_seed(11)
    tmod = nn.Sequential(nn.Flatten())
    x = np32(torch.randn(3, 2, 3, 4))
    with D.Net([2, 3, 4], [D.flatten()]) as net:
        compare_step(tmod, net, x, "flatten")


class Reshape(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


@pytest.mark.parametrize("shape", [(4, 6), (6, 2, 2), (24,), (1, 3, 8)])
def test_reshape(shape):
    torch.manual_seed(len(shape))
    tmod = nn.Sequential(Reshape(*shape))
    x = np32(torch.randn(3, 2, 3, 4))
    with D.Net([2, 3, 4], [D.reshape(list(shape))]) as net:
        compare_step(tmod, net, x, "reshape to %s" % (shape,))


def test_dense_reshape_conv_transpose():
    """A generator's head: dense -> reshape to an image -> deconvolution,
    so the reshape's gradient routing matters for both neighbours."""
    torch.manual_seed(21)
    tmod = nn.Sequential(nn.Linear(6, 32), Reshape(2, 4, 4),
                         nn.ConvTranspose2d(2, 3, 4, 2, 1))
    x = np32(torch.randn(4, 6))
    with make_net(tmod, [6], [D.dense(6, 32), D.reshape([2, 4, 4]),
                              D.conv2d_transpose(2, 3, 4, 4, 2, 1)]) as net:
        compare_step(tmod, net, x, "dense-reshape-deconv")


# ---- spectral normalisation ------------------------------------------------

def sn_module(kind):
    if kind == "dense":
        inner = nn.Linear(7, 5)
        lib_inner = D.dense(7, 5)
        sample = [7]
    elif kind == "conv2d":
        inner = nn.Conv2d(3, 4, 3, 1, 1)
        lib_inner = D.conv2d(3, 4, 3, 3, 1, 1)
        sample = [3, 6, 5]
    else:  # torch picks dim = 1 for transposed convolutions
        inner = nn.ConvTranspose2d(4, 2, 4, 2, 1)
        lib_inner = D.conv2d_transpose(4, 2, 4, 4, 2, 1)
        sample = [4, 3, 3]
    return inner, lib_inner, sample


@pytest.mark.parametrize("kind", ["dense", "conv2d", "conv2d_transpose"])
def test_spectral_norm(kind):
    torch.manual_seed(31 + len(kind))
    inner, lib_inner, sample = sn_module(kind)
    tmod = nn.Sequential(nn.utils.spectral_norm(inner))
    sn = tmod[0]
    with make_net(tmod, sample, [D.spectral_norm(lib_inner)]) as net:
        assert sorted(net.param_names()) == ["0.bias", "0.weight_orig"]
        assert sorted(net.buffer_names()) == ["0.weight_u", "0.weight_v"]
        np.testing.assert_array_equal(net.buffer("0.weight_u"),
                                      np32(sn.weight_u))
        # Training mode: one power iteration per forward, so u and v move
        # identically on both sides; the gradient reaches weight_orig
        # through sigma with u and v held constant.
        tmod.train()
        net.train()
        for step in range(3):
            x = np32(torch.randn(3, *sample))
            compare_step(tmod, net, x, "spectral_norm(%s) train %d"
                         % (kind, step))
            for b in ("weight_u", "weight_v"):
                assert_close(net.buffer("0." + b), np32(getattr(sn, b)),
                             what="%s after step %d" % (b, step))
        # Evaluation mode: the stored u and v, not updated.
        tmod.eval()
        net.eval()
        u_before = net.buffer("0.weight_u")
        x = np32(torch.randn(2, *sample))
        compare_step(tmod, net, x, "spectral_norm(%s) eval" % kind)
        np.testing.assert_array_equal(net.buffer("0.weight_u"), u_before)
        assert_close(net.buffer("0.weight_u"), np32(sn.weight_u),
                     what="weight_u in eval")


# ---- small networks end to end ---------------------------------------------

def test_conv_bn_lrelu_flatten_dense():
    torch.manual_seed(41)
    tmod = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.BatchNorm2d(4),
                         nn.LeakyReLU(0.2), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 5))
    randomize_affine(tmod)
    layers = [D.conv2d(3, 4, 3, 3, 1, 1), D.batchnorm(4),
              D.activation(D.ACT_LEAKY_RELU, 0.2), D.flatten(),
              D.dense(4 * 6 * 6, 5)]
    with make_net(tmod, [3, 6, 6], layers) as net:
        assert net.param_names() == ["0.weight", "0.bias", "1.weight",
                                     "1.bias", "4.weight", "4.bias"]
        assert net.buffer_names() == ["1.running_mean", "1.running_var"]
        for step in range(2):
            x = np32(torch.randn(5, 3, 6, 6))
            compare_step(tmod, net, x, "net train %d" % step,
                         zero_grads={"0.bias"})
            check_buffers(tmod, net, "net train %d" % step)
        tmod.eval()
        net.eval()
        compare_step(tmod, net, np32(torch.randn(3, 3, 6, 6)), "net eval")


def test_dcgan_like_generator():
    """dense -> BN1d -> ReLU -> reshape -> deconv -> BN2d -> ReLU ->
    deconv -> tanh: the shapes and layers a small DCGAN generator uses."""
    torch.manual_seed(43)
    tmod = nn.Sequential(nn.Linear(8, 4 * 3 * 3), nn.BatchNorm1d(36),
                         nn.ReLU(), Reshape(4, 3, 3),
                         nn.ConvTranspose2d(4, 3, 4, 2, 1),
                         nn.BatchNorm2d(3), nn.ReLU(),
                         nn.ConvTranspose2d(3, 1, 4, 2, 1), nn.Tanh())
    randomize_affine(tmod)
    layers = [D.dense(8, 36), D.batchnorm(36), D.activation(D.ACT_RELU),
              D.reshape([4, 3, 3]), D.conv2d_transpose(4, 3, 4, 4, 2, 1),
              D.batchnorm(3), D.activation(D.ACT_RELU),
              D.conv2d_transpose(3, 1, 4, 4, 2, 1),
              D.activation(D.ACT_TANH)]
    with make_net(tmod, [8], layers) as net:
        x = np32(torch.randn(6, 8))
        y = compare_step(tmod, net, x, "generator",
                         zero_grads={"0.bias", "4.bias"})
        assert y.shape == (6, 1, 12, 12)
        check_buffers(tmod, net, "generator")


def test_sn_discriminator_with_pooling():
    """SN(conv) -> LeakyReLU -> maxpool -> SN(conv) -> LeakyReLU ->
    avgpool -> flatten -> SN(dense): a hinge-loss GAN's critic."""
    torch.manual_seed(47)
    sn = nn.utils.spectral_norm
    tmod = nn.Sequential(sn(nn.Conv2d(1, 4, 3, 1, 1)), nn.LeakyReLU(0.2),
                         nn.MaxPool2d(2, 2), sn(nn.Conv2d(4, 6, 4, 2, 1)),
                         nn.LeakyReLU(0.2), nn.AvgPool2d(2, 2), nn.Flatten(),
                         sn(nn.Linear(6, 1)))
    layers = [D.spectral_norm(D.conv2d(1, 4, 3, 3, 1, 1)),
              D.activation(D.ACT_LEAKY_RELU, 0.2), D.maxpool2d(2, 2),
              D.spectral_norm(D.conv2d(4, 6, 4, 4, 2, 1)),
              D.activation(D.ACT_LEAKY_RELU, 0.2), D.avgpool2d(2, 2),
              D.flatten(), D.spectral_norm(D.dense(6, 1))]
    with make_net(tmod, [1, 8, 8], layers) as net:
        for step in range(2):
            x = np32(torch.randn(4, 1, 8, 8))
            compare_step(tmod, net, x, "critic train %d" % step)
        tmod.eval()
        net.eval()
        compare_step(tmod, net, np32(torch.randn(4, 1, 8, 8)), "critic eval")


def test_results_do_not_depend_on_thread_count():
    """The header promises the same numbers for any thread count: a conv
    net's output and gradients at 2 threads equal those at 1, bit for
    bit."""
    torch.manual_seed(53)
    tmod = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.BatchNorm2d(8),
                         nn.ReLU(), nn.ConvTranspose2d(8, 4, 4, 2, 1),
                         nn.Flatten(), nn.Linear(4 * 20 * 20, 10))
    x = np32(torch.randn(16, 3, 10, 10))
    dy = np32(torch.randn(16, 10))
    results = []
    L = D.lib()
    try:
        for threads in (1, 2):
            L.dng_set_num_threads(threads)
            layers = [D.conv2d(3, 8, 3, 3, 1, 1), D.batchnorm(8),
                      D.activation(D.ACT_RELU),
                      D.conv2d_transpose(8, 4, 4, 4, 2, 1), D.flatten(),
                      D.dense(4 * 20 * 20, 10)]
            with make_net(tmod, [3, 10, 10], layers) as net:
                y = net.forward(x)
                dx = net.backward(dy)
                results.append([("y", y), ("dx", dx)] +
                               [(n, net.grad(n)) for n in net.param_names()])
    finally:
        L.dng_set_num_threads(1)
    for (name, a), (_, b) in zip(*results):
        np.testing.assert_array_equal(a, b, err_msg=name)
