"""The GAN trainer through the binding: one step checked against the same
computation done by hand, toy training, train() callbacks, checkpoints,
sampling, the image grid and the Frechet distance."""
import numpy as np
import pytest

import dnngen as dg

LATENT = 4


def make_gan(seed=0, **options):
    g = dg.Net([LATENT], [dg.dense(LATENT, 16), dg.relu(), dg.dense(16, 1)])
    d = dg.Net([1], [dg.dense(1, 16), dg.leaky_relu(0.2), dg.dense(16, 1)])
    g.init("default", seed)
    d.init("default", seed + 1)
    return dg.GAN(g, d, dg.Adam(2e-3, 0.5), dg.Adam(2e-3, 0.5), **options)


def real_batch(n, seed):
    return (3 + 0.5 * np.random.default_rng(seed).normal(size=(n, 1))) \
        .astype(np.float32)


def sigmoid(v):
    return 1 / (1 + np.exp(-v.astype(np.float64)))


def test_one_step_matches_the_computation_by_hand():
    gan = make_gan()
    g, d = gan.generator, gan.discriminator
    x = real_batch(32, 1)
    z = dg.Rng(5).normal((32, LATENT))
    d_real = sigmoid(d.predict(x))
    d_fake = sigmoid(d.predict(g.predict(z)))
    g_before = g.state_dict()
    d_before = d.state_dict()
    st = gan.step(x, dg.Rng(5))
    assert st.step == 1 == gan.steps
    assert abs(st.d_real - d_real.mean()) < 1e-5
    assert abs(st.d_fake - d_fake.mean()) < 1e-5
    ref = -np.log(d_real).mean() - np.log(1 - d_fake).mean()
    assert abs(st.d_loss - ref) < 1e-4
    assert np.isfinite(st.g_loss) and st.g_loss > 0
    for name, value in d.state_dict().items():
        assert not np.array_equal(value, d_before[name]), name
    assert any(not np.array_equal(v, g_before[k])
               for k, v in g.state_dict().items())


def test_generator_update_waits_for_d_steps():
    gan = make_gan(d_steps=2)
    g = gan.generator
    before = g.state_dict()
    gan.step(real_batch(16, 2))
    for k, v in g.state_dict().items():      # D only
        assert np.array_equal(v, before[k]), k
    gan.step(real_batch(16, 3))
    assert any(not np.array_equal(v, before[k])
               for k, v in g.state_dict().items())


def test_same_seed_same_numbers():
    runs = []
    for _ in range(2):
        gan = make_gan(seed=4)
        gan.set_seed(11)
        stats = [gan.step(real_batch(16, k)) for k in range(5)]
        runs.append((stats, gan.sample(8).numpy()))
    assert runs[0][0] == runs[1][0]
    assert np.array_equal(runs[0][1], runs[1][1])


def test_toy_gan_learns_the_data_mean():
    gan = make_gan(seed=2, loss=dg.GanLoss.LSGAN)
    data = dg.Dataset.from_numpy(real_batch(1024, 7))
    gan.set_seed(3).set_report_interval(100)
    history = gan.train(data, epochs=40, batch_size=64)
    assert gan.steps == 40 * 16
    assert len(history) == gan.steps // 100 + 1
    assert history[-1].step == gan.steps == history[-1].steps
    samples = gan.sample(2000, dg.Rng(1)).numpy()
    assert abs(samples.mean() - 3.0) < 0.3, samples.mean()
    assert 0.1 < samples.std() < 1.5


def test_train_callback_stops_and_exceptions_propagate():
    data = dg.Dataset.from_numpy(real_batch(64, 1))
    gan = make_gan(report_interval=2)
    reports = gan.train(data, epochs=10, batch_size=8,
                        callback=lambda p: p.step >= 4)
    assert gan.steps == 4 and [r.step for r in reports] == [2, 4]
    assert reports[0].epochs == 10 and reports[0].steps == 80
    assert np.isfinite(reports[0].stats.d_loss)

    def bad(p):
        raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        gan.train(data, epochs=10, batch_size=8, callback=bad)
    assert gan.steps == 6
    with pytest.raises(dg.Error) as e:
        gan.train(data, epochs=1, batch_size=100)
    assert e.value.status == dg.Status.ERR_INVALID_ARGUMENT
    with pytest.raises(dg.Error) as e:
        gan.train(dg.Dataset.from_numpy(np.zeros((8, 2), np.float32)), 1, 4)
    assert e.value.status == dg.Status.ERR_SHAPE


def test_checkpoint_resumes_bit_identically(tmp_path):
    a = make_gan(seed=1)
    a.set_ema(0.9).set_seed(5)
    for k in range(4):
        a.step(real_batch(16, k))
    a.save_checkpoint(tmp_path / "a.ckpt")
    tail_a = [a.step(real_batch(16, 10 + k)) for k in range(3)]
    sample_a = a.sample(6).numpy()

    b = make_gan(seed=99)                    # other weights, same shapes
    b.set_ema(0.9)
    b.load_checkpoint(tmp_path / "a.ckpt")
    assert b.steps == 4
    tail_b = [b.step(real_batch(16, 10 + k)) for k in range(3)]
    assert tail_a == tail_b
    assert np.array_equal(sample_a, b.sample(6).numpy())
    b.save_checkpoint(tmp_path / "b.ckpt")
    a.save_checkpoint(tmp_path / "a2.ckpt")
    assert (tmp_path / "a2.ckpt").read_bytes() == \
        (tmp_path / "b.ckpt").read_bytes()
    # A trainer of another architecture refuses it and stays unchanged.
    other = dg.GAN(dg.Net([LATENT], [dg.dense(LATENT, 1)]),
                   dg.Net([1], [dg.dense(1, 1)]), dg.SGD(0.1), dg.SGD(0.1))
    with pytest.raises(dg.Error):
        other.load_checkpoint(tmp_path / "a.ckpt")
    assert other.steps == 0
    with pytest.raises(dg.Error):
        a.load_checkpoint(tmp_path / "missing.ckpt")


def test_sample_generate_and_ema():
    gan = make_gan()
    z = dg.Rng(3).normal((5, LATENT))
    out = gan.generate(z)
    assert out.shape == (5, 1)
    np.testing.assert_allclose(out.numpy(), gan.generator.eval().predict(z),
                               rtol=1e-6)
    s = gan.sample(7, dg.Rng(2))
    assert s.shape == (7, 1)
    np.testing.assert_allclose(
        s.numpy(), gan.generator.predict(dg.Rng(2).normal((7, LATENT))),
        rtol=1e-6)
    gan.set_ema(0.5)
    gan.generator.train()
    for k in range(3):
        gan.step(real_batch(8, k))
    ema_out = gan.generate(z).numpy()
    assert not np.allclose(ema_out, gan.generator.eval().predict(z))
    with pytest.raises(dg.Error):
        gan.generate(np.zeros((2, LATENT + 1), np.float32))
    with pytest.raises(dg.Error):
        gan.sample(0)


def test_gan_settings_are_checked():
    gan = make_gan()
    for bad in (lambda: gan.set_d_steps(0), lambda: gan.set_loss(9),
                lambda: gan.set_label_smoothing(1.5),
                lambda: gan.set_ema(1.0), lambda: gan.set_noise(5),
                lambda: gan.set_report_interval(0)):
        with pytest.raises(dg.Error) as e:
            bad()
        assert e.value.status == dg.Status.ERR_INVALID_ARGUMENT
        assert e.value.message.startswith("dng_gan_set_")
    gan.set_loss("wgan").set_clip(0.05).set_noise("uniform")
    gan.step(real_batch(8, 1))
    for _, w in gan.discriminator.named_parameters():
        assert np.abs(w.numpy()).max() <= 0.05 + 1e-7
    with pytest.raises(TypeError):
        make_gan(colour="blue")
    with pytest.raises(dg.Error) as e:     # D does not take G's output
        dg.GAN(dg.Net([2], [dg.dense(2, 3)]), dg.Net([4], [dg.dense(4, 1)]),
               dg.SGD(0.1), dg.SGD(0.1))
    assert "dng_gan_create" in e.value.message
    opt = dg.SGD(0.1)
    with pytest.raises(dg.Error):
        dg.GAN(dg.Net([2], [dg.dense(2, 1)]), dg.Net([1], [dg.dense(1, 1)]),
               opt, opt)


def test_image_grid_pixels(tmp_path):
    imgs = np.linspace(-1, 1, 4 * 2 * 3).reshape(4, 1, 2, 3) \
        .astype(np.float32)
    imgs[0, 0, 0, 0] = -5                  # clamped to black
    path = tmp_path / "g.pgm"
    dg.write_image_grid(imgs, 3, path)
    raw = path.read_bytes()
    magic, w, h, maxval = raw.split(maxsplit=4)[:4]
    assert (magic, maxval) == (b"P5", b"255")
    w, h = int(w), int(h)
    pix = np.frombuffer(raw[-w * h:], np.uint8).reshape(h, w)
    pad = (w - 3 * 3) // 2
    assert h == 2 * 2 + pad and pad > 0
    expect = np.clip(np.floor((imgs + 1) * 127.5 + 0.5), 0, 255)
    for i in range(4):
        y0, x0 = (i // 3) * (2 + pad), (i % 3) * (3 + pad)
        assert np.array_equal(pix[y0:y0 + 2, x0:x0 + 3], expect[i, 0]), i
    assert not pix[2:2 + pad].any()                # the gap row is black
    assert not pix[2 + pad:, 3:].any()             # no fifth image
    with pytest.raises(dg.Error):
        dg.write_image_grid(np.zeros((2, 2, 4, 4), np.float32), 2,
                            tmp_path / "x.pgm")
    with pytest.raises(dg.Error):
        dg.write_image_grid(imgs, 3, tmp_path / "no" / "such" / "dir.pgm")


def test_frechet_distance_matches_numpy():
    r = np.random.default_rng(0)
    a = r.normal(size=(200, 3)).astype(np.float32)
    b = (r.normal(size=(150, 3)) @ np.diag([1.0, 2.0, 0.5]) + 0.7) \
        .astype(np.float32)
    ma, mb = a.mean(0, dtype=np.float64), b.mean(0, dtype=np.float64)
    sa = np.cov(a.astype(np.float64), rowvar=False)
    sb = np.cov(b.astype(np.float64), rowvar=False)
    ev = np.linalg.eigvals(sa @ sb)
    ref = ((ma - mb) ** 2).sum() + np.trace(sa + sb) - 2 * np.sqrt(
        np.clip(ev.real, 0, None)).sum()
    got = dg.frechet_distance(a, dg.Tensor.from_numpy(b))
    assert abs(got - ref) < 1e-4 * max(1.0, abs(ref))
    assert abs(dg.frechet_distance(a, a)) < 1e-6
    with pytest.raises(dg.Error):
        dg.frechet_distance(a, b[:, :2])
