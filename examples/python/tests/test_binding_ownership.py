"""Ownership and misuse: who frees what, borrowed tensors and views
outliving their owner, closed objects, bad arguments. Every misuse must
raise (dnngen.Error, TypeError, OverflowError, ValueError), never crash;
the churn test runs in a child process so that a double free (which glibc
aborts on) fails the test instead of killing pytest."""
import ctypes as C
import gc
import os
import subprocess
import sys
import weakref

import numpy as np
import pytest

import dnngen as dg
from dnngen import _capi

from conftest import PKG_ROOT


def small_net():
    return dg.Net([3], [dg.dense(3, 4), dg.relu(), dg.dense(4, 2)])


X = np.ones((2, 3), np.float32)


def test_layer_added_then_python_object_deleted():
    net = dg.Net([3])
    layer = dg.dense(3, 2)
    net.add(layer)
    assert layer.net is net
    del layer
    gc.collect()
    assert net.forward(X).shape == (2, 2)


def test_layer_keeps_its_network_alive():
    layer = dg.dense(3, 2)
    net = dg.Net([3], [layer])
    ref = weakref.ref(net)
    w = net.param(0).numpy()
    del net
    gc.collect()
    assert ref() is not None and layer.net is ref()
    assert np.array_equal(layer.net.param(0).numpy(), w)
    layer.close()                    # owned: only marks the object closed
    assert layer.closed and ref().forward(X).shape == (2, 2)


def test_layer_cannot_join_two_networks():
    layer = dg.dense(3, 2)
    first = dg.Net([3], [layer])
    with pytest.raises(dg.Error) as e:
        dg.Net([3]).add(layer)
    assert e.value.status == dg.Status.ERR_STATE
    assert "already belongs" in e.value.message
    assert layer.net is first and len(first) == 1
    assert first.forward(X).shape == (2, 2)


def test_failed_add_consumes_the_layer():
    layer = dg.dense(5, 2)
    net = dg.Net([3])
    with pytest.raises(dg.Error) as e:
        net.add(layer)
    assert e.value.status == dg.Status.ERR_SHAPE
    assert "layer 0 (dense)" in e.value.message
    assert layer.closed and "failed Net.add" in repr(layer)
    with pytest.raises(dg.Error) as e:
        net.add(layer)
    assert e.value.status == dg.Status.ERR_STATE
    assert len(net) == 0


def test_spectral_norm_takes_its_inner_layer():
    inner = dg.dense(3, 3)
    sn = dg.spectral_norm(inner)
    assert inner.closed
    with pytest.raises(dg.Error):
        dg.Net([3]).add(inner)
    with pytest.raises(dg.Error):
        dg.spectral_norm(inner)
    net = dg.Net([3], [sn])
    owned = dg.dense(3, 3)
    net.add(owned)
    with pytest.raises(dg.Error) as e:     # refused, the net keeps it
        dg.spectral_norm(owned)
    assert e.value.status == dg.Status.ERR_STATE
    assert not owned.closed and net.forward(X).shape == (2, 3)
    bad = dg.relu()
    with pytest.raises(dg.Error) as e:     # wrong kind: freed by the C side
        dg.spectral_norm(bad)
    assert bad.closed and "only dense" in e.value.message


def test_borrowed_tensors_outlive_the_network_variable():
    net = small_net()
    p = net.param("0.weight")
    g = net.grad(0)
    b = net.buffer_names()
    out = net.forward(X)
    expect = p.numpy()
    del net
    gc.collect()
    assert np.array_equal(p.numpy(), expect) and g.shape == (4, 3)
    assert out.shape == (2, 2) and b == []
    assert p.borrowed and "borrowed" in repr(p)


def test_closed_network_makes_borrowed_tensors_raise():
    net = small_net()
    p, out = net.param(0), net.forward(X)
    layer = dg.dense(2, 2)
    net.add(layer)
    net.close()
    net.close()                               # idempotent
    for bad in (p.numpy, lambda: out.shape, lambda: net.forward(X),
                lambda: net.param(0), lambda: dg.Net([2]).add(layer),
                net.summary):
        with pytest.raises(dg.Error) as e:
            bad()
        assert e.value.status == dg.Status.ERR_STATE
    assert "closed" in repr(net)


def test_views_keep_memory_alive_across_close():
    net = small_net()
    view = net.param(0).numpy(copy=False)
    expect = view.copy()
    sub = view[1:]                            # a view of the view
    del view
    net.close()
    gc.collect()
    assert net._ptr is not None               # freed only after the views
    assert np.array_equal(sub, expect[1:])
    del sub
    gc.collect()
    assert net._ptr is None

    t = dg.Tensor((3,)).fill(7)
    v = t.numpy(copy=False)
    t.close()
    with pytest.raises(dg.Error):
        t.numpy()
    assert v.tolist() == [7, 7, 7]
    del v
    gc.collect()
    assert t._ptr is None


def test_stale_outputs_and_refused_output_views():
    net = small_net()
    y1 = net.forward(X)
    vals = y1.numpy()
    with pytest.raises(dg.Error):
        y1.numpy(copy=False)
    _, grad = dg.loss("mse", y1, np.zeros((2, 2), np.float32), grad=True)
    dx = net.backward(grad, input_grad=True)
    assert y1.numpy().tolist() == vals.tolist()   # backward keeps y
    y2 = net.forward(np.zeros((5, 3), np.float32))
    for stale in (y1, dx):
        with pytest.raises(dg.Error) as e:
            stale.numpy()
        assert "stale" in e.value.message
    assert y2.shape == (5, 2)
    # Training runs count as runs too.
    ds = dg.Dataset.from_numpy(np.ones((4, 3), np.float32),
                               np.ones((4, 2), np.float32))
    dg.fit(net, dg.SGD(0.01), "mse", ds, epochs=1, batch_size=2)
    with pytest.raises(dg.Error):
        y2.numpy()
    # Borrowed tensors keep their shape.
    with pytest.raises(dg.Error):
        net.param(0).reshape((12,))


def test_wrapped_array_stays_alive():
    a = np.arange(6, dtype=np.float32)
    t = dg.Tensor.wrap(a)
    ref = weakref.ref(a)
    del a
    gc.collect()
    assert ref() is not None and t.numpy().tolist() == list(range(6))
    t.close()
    gc.collect()
    assert ref() is None


def test_gan_keeps_its_parts_alive_and_refuses_closed_parts():
    gan = dg.GAN(dg.Net([2], [dg.dense(2, 1)]),
                 dg.Net([1], [dg.dense(1, 1)]), dg.SGD(0.1), dg.SGD(0.1))
    gc.collect()
    gan.step(np.ones((4, 1), np.float32))
    gan.discriminator.close()
    with pytest.raises(dg.Error) as e:
        gan.step(np.ones((4, 1), np.float32))
    assert "discriminator" in e.value.message
    gan.close()
    with pytest.raises(dg.Error):
        gan.steps


def test_optimizer_bound_to_a_closed_network():
    net = small_net()
    opt = dg.Adam()
    net.forward(X)
    opt.step(net)
    net.close()
    with pytest.raises(dg.Error) as e:
        opt.step(small_net())
    assert e.value.status == dg.Status.ERR_STATE


def test_context_managers():
    with dg.Tensor((2,)) as t, dg.Rng(1) as r, small_net() as net:
        t.fill_normal(r)
        net.forward(X)
    assert t.closed and r.closed and net.closed
    with pytest.raises(dg.Error):
        with t:
            pass


def test_bad_python_calls_raise_type_errors():
    net = small_net()
    for bad in (lambda: dg.dense("3", 4), lambda: dg.dense(3.0, 4),
                lambda: net.add(object()), lambda: net.add(None),
                lambda: net.forward(None), lambda: net.forward(net),
                lambda: net.forward(["a", "b"]), lambda: dg.Net("abc"),
                lambda: net.param(1.5), lambda: dg.SGD("fast"),
                lambda: dg.SGD(0.1).step("net"), lambda: net.save(3),
                lambda: dg.fit(net, None, "mse", None),
                lambda: dg.activation(None), lambda: dg.Layer(),
                lambda: dg.loss("mse", X, X, grad="yes"),
                lambda: dg.Dataset.from_numpy(None)):
        with pytest.raises(TypeError):
            bad()
    with pytest.raises(OverflowError):
        dg.conv2d(1, 1, 2 ** 31)
    with pytest.raises(OverflowError):
        dg.dense(2 ** 63, 1)
    with pytest.raises(ValueError):
        dg.activation("swish")
    # The raw layer: a wrong handle type is refused by ctypes.
    with pytest.raises(C.ArgumentError):
        _capi.lib.dng_net_num_layers(dg.Tensor((1,))._p())


def test_library_errors_carry_status_and_message():
    net = small_net()
    cases = [
        (lambda: net.forward(np.ones((2, 4), np.float32)),
         dg.Status.ERR_SHAPE, "dng_net_forward: x has shape [2, 4]"),
        (lambda: small_net().backward(np.ones((2, 2), np.float32)),
         dg.Status.ERR_STATE, "dng_net_backward: no forward"),
        (lambda: net.param(99), dg.Status.ERR_INVALID_ARGUMENT,
         "index 99 is outside 0..3"),
        (lambda: net.grad(-1), dg.Status.ERR_INVALID_ARGUMENT, "index -1"),
        (lambda: net.buffer(0), dg.Status.ERR_INVALID_ARGUMENT,
         "dng_net_buffer"),
        (lambda: net.param_name(4), dg.Status.ERR_INVALID_ARGUMENT,
         "dng_net_param_name"),
        (lambda: net.param("9.weight"), dg.Status.ERR_INVALID_ARGUMENT,
         "9.weight"),
        (lambda: net.init(17), dg.Status.ERR_INVALID_ARGUMENT,
         "unknown scheme 17"),
        (lambda: dg.SGD(0.1).set_lr(-1), dg.Status.ERR_INVALID_ARGUMENT,
         "dng_optim_set_lr"),
        (lambda: dg.loss(42, X, X), dg.Status.ERR_INVALID_ARGUMENT,
         "dng_loss"),
    ]
    for call, status, text in cases:
        with pytest.raises(dg.Error) as e:
            call()
        assert e.value.status == status, (text, e.value)
        assert text in e.value.message, (text, e.value.message)
    for call, text in [(lambda: dg.activation(99), "dng_activation"),
                       (lambda: dg.dropout(1.0), "dng_dropout"),
                       (lambda: dg.conv2d(1, 1, 0), "dng_conv2d"),
                       (lambda: dg.Net([0]), "dng_net_create"),
                       (lambda: dg.SGD(0.0), "dng_sgd"),
                       (lambda: dg.reshape([0]), "dng_reshape")]:
        with pytest.raises(dg.Error) as e:
            call()
        assert e.value.status is None and text in e.value.message


def test_null_handles_reach_the_library_safely():
    lib = _capi.lib
    out = _capi.TensorP()
    assert lib.dng_net_forward(None, None, C.byref(out)) == \
        dg.Status.ERR_INVALID_ARGUMENT
    assert b"NULL" in lib.dng_last_error()
    assert lib.dng_tensor_numel(None) == -1
    assert lib.dng_net_num_layers(None) == -1
    assert lib.dng_gan_steps(None) == -1
    lib.dng_tensor_destroy(None)
    lib.dng_net_destroy(None)
    lib.dng_layer_destroy(None)
    assert lib.dng_optim_get_lr(None) == -1


CHURN = r"""
import gc, random, sys
import numpy as np
import dnngen as dg
dg.set_num_threads(1)
rnd = random.Random(0)
x = np.ones((4, 3), np.float32)
for it in range(40):
    keep = []
    net = dg.Net([3])
    layers = [dg.dense(3, 4), dg.relu(), dg.dense(4, 1)]
    for l in layers:
        net.add(l)
    y = net.forward(x)
    p = net.param(0)
    v = net.param(1).numpy(copy=False)
    bad = dg.dense(7, 1)
    try:
        net.add(bad)
    except dg.Error:
        pass
    sn = dg.spectral_norm(dg.dense(1, 1))
    d = dg.Net([1], [sn])
    gan = dg.GAN(dg.Net([2], [dg.dense(2, 1)]), d, dg.Adam(), dg.Adam())
    gan.step(np.ones((4, 1), np.float32))
    t = dg.Tensor.wrap(np.zeros(5, np.float32))
    ds = dg.Dataset.from_numpy(x)
    dsx = ds.x
    objs = [net, layers, y, p, v, bad, sn, d, gan, t, ds, dsx]
    rnd.shuffle(objs)
    for o in objs:
        if rnd.random() < 0.5 and hasattr(o, "close"):
            o.close()
    # Build cycles so that the collector frees in an arbitrary order.
    a, b = [gan, net, p], [ds, dsx]
    a.append(a); b.append(b); a.append(b)
    del net, layers, y, p, v, bad, sn, d, gan, t, ds, dsx, objs, a, b
    if it % 5 == 0:
        gc.collect()
gc.collect()
print("churn ok")
"""


def test_churn_with_gc_never_double_frees():
    env = dict(os.environ)
    env["PYTHONPATH"] = PKG_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    # glibc's checking allocator (when installed) and poisoned frees make
    # a double free or a use after free fail loudly.
    env["MALLOC_CHECK_"] = "3"
    env["MALLOC_PERTURB_"] = "165"
    debug = "/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"
    if os.path.exists(debug):
        env["LD_PRELOAD"] = debug
    r = subprocess.run([sys.executable, "-c", CHURN], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "churn ok" in r.stdout
    assert "Exception ignored" not in r.stderr, r.stderr[-2000:]
