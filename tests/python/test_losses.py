"""Losses against PyTorch: the value and the gradient with respect to the
prediction, with the 'mean' reduction."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import dngtest as D
from dngtest import assert_close


def np32(t):
    return t.detach().numpy().astype(np.float32)


def torch_loss(fn, pred, target):
    p = torch.tensor(pred, requires_grad=True)
    value = fn(p, torch.tensor(target))
    value.backward()
    return float(value), np32(p.grad)


def compare(kind, fn, pred, target, what):
    v_ref, g_ref = torch_loss(fn, pred, target)
    v, g = D.loss(kind, pred, target)
    assert_close(np.float32(v), np.float32(v_ref), what=what + ": value")
    assert_close(g, g_ref, what=what + ": gradient")
    # The gradient is optional and the value does not depend on asking.
    v2, g2 = D.loss(kind, pred, target, want_grad=False)
    assert g2 is None and v2 == v


@pytest.mark.parametrize("shape", [(8, 1), (5, 7), (3, 2, 4, 4)])
def test_mse(shape):
    torch.manual_seed(sum(shape))
    pred = np32(torch.randn(*shape))
    target = np32(torch.randn(*shape))
    compare(D.LOSS_MSE, F.mse_loss, pred, target, "mse")


@pytest.mark.parametrize("scale", [1.0, 40.0])
@pytest.mark.parametrize("shape", [(16, 1), (6, 5)])
def test_bce_with_logits(shape, scale):
    """Hard and soft targets; scale 40 pushes logits to where a naive
    log(sigmoid(x)) underflows."""
    torch.manual_seed(int(scale) + shape[1])
    pred = np32(torch.randn(*shape) * scale)
    hard = np32(torch.randint(0, 2, shape).float())
    soft = np32(torch.rand(*shape))
    compare(D.LOSS_BCE_WITH_LOGITS, F.binary_cross_entropy_with_logits, pred,
            hard, "bce hard targets")
    compare(D.LOSS_BCE_WITH_LOGITS, F.binary_cross_entropy_with_logits, pred,
            soft, "bce soft targets")


@pytest.mark.parametrize("n,c,scale", [(8, 10, 1.0), (5, 3, 1.0),
                                       (4, 6, 50.0), (1, 2, 1.0)])
def test_cross_entropy(n, c, scale):
    torch.manual_seed(n * c)
    pred = np32(torch.randn(n, c) * scale)
    labels = torch.randint(0, c, (n,))
    target = np32(labels.float())

    def ref(p, _t):
        return F.cross_entropy(p, labels)

    compare(D.LOSS_CROSS_ENTROPY, ref, pred, target, "cross-entropy [N]")
    # Targets may also be shaped [N, 1].
    compare(D.LOSS_CROSS_ENTROPY, ref, pred, target.reshape(n, 1),
            "cross-entropy [N, 1]")


def test_cross_entropy_bad_class():
    pred = np.zeros((2, 3), dtype=np.float32)
    for bad in (3.0, -1.0, 0.5):
        with pytest.raises(D.DngError, match="invalid argument"):
            D.loss(D.LOSS_CROSS_ENTROPY, pred,
                   np.array([0.0, bad], dtype=np.float32))


@pytest.mark.parametrize("shape", [(12, 1), (4, 5)])
def test_hinge(shape):
    torch.manual_seed(shape[0])
    pred = np32(torch.randn(*shape) * 1.5)
    target = np32(torch.randint(0, 2, shape).float() * 2 - 1)
    # Keep clear of the kink 1 - t p == 0, where the derivative is a
    # convention.
    margin = 1 - target * pred
    pred[np.abs(margin) < 1e-3] += 0.01

    def ref(p, t):
        return torch.clamp(1 - t * p, min=0).mean()

    compare(D.LOSS_HINGE, ref, pred, target, "hinge")


def test_loss_shape_mismatch():
    with pytest.raises(D.DngError, match="shape"):
        D.loss(D.LOSS_MSE, np.zeros((4, 2), np.float32),
               np.zeros((4, 3), np.float32))
