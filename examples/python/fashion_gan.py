#!/usr/bin/env python3
"""fashion_gan: train a GAN on Fashion-MNIST with libdnngen from Python and
write a grid of generated garments.

    python3 fashion_gan.py --model dcgan --steps 3000 --out samples.png

The Python twin of examples/fashion-gan.c: same architectures, same options,
same data order and random streams, so that with the same flags both
programs make bit-identical checkpoints and samples. Run with --help for
every option. Needs numpy and the dnngen package (examples/python) on
PYTHONPATH; the library is found as dnngen's documentation says (set
DNNGEN_LIBRARY to choose one).
"""
import argparse
import os
import sys
import time

import numpy as np

import dnngen as dg

LATENT = 100
GRID = 64


def build_generator(model):
    """The generator: [100] -> [1, 28, 28] in [-1, 1]."""
    if model == "mlp":
        layers = [dg.dense(LATENT, 256), dg.leaky_relu(0.2),
                  dg.dense(256, 512), dg.leaky_relu(0.2),
                  dg.dense(512, 784), dg.tanh(), dg.reshape([1, 28, 28])]
    else:
        layers = [dg.dense(LATENT, 128 * 7 * 7), dg.reshape([128, 7, 7]),
                  dg.batchnorm(128), dg.relu(),
                  dg.conv2d_transpose(128, 64, 4, stride=2, padding=1),
                  dg.batchnorm(64), dg.relu(),
                  dg.conv2d_transpose(64, 1, 4, stride=2, padding=1),
                  dg.tanh()]
    return dg.Net([LATENT], layers)


def build_discriminator(model):
    """The discriminator: [1, 28, 28] -> one logit."""
    if model == "mlp":
        layers = [dg.flatten(), dg.dense(784, 512), dg.leaky_relu(0.2),
                  dg.dense(512, 256), dg.leaky_relu(0.2), dg.dense(256, 1)]
    else:
        layers = [dg.conv2d(1, 64, 4, stride=2, padding=1),
                  dg.leaky_relu(0.2),
                  dg.conv2d(64, 128, 4, stride=2, padding=1),
                  dg.batchnorm(128), dg.leaky_relu(0.2), dg.flatten(),
                  dg.dense(128 * 7 * 7, 1)]
    return dg.Net([1, 28, 28], layers)


def load_images(folder, stem, with_labels=False, limit=0):
    """Load IDX images scaled to [-1, 1] (the generator's Tanh range)."""
    images = os.path.join(folder, "%s-images-idx3-ubyte.gz" % stem)
    labels = os.path.join(folder, "%s-labels-idx1-ubyte.gz" % stem)
    try:
        ds = dg.Dataset.load_idx(images, labels if with_labels else None)
    except dg.Error as e:
        sys.exit("fashion_gan: %s\n(install the data with `apt-get install "
                 "dataset-fashion-mnist` or pass --data)" % e.message)
    if 0 < limit < len(ds):
        # The first `limit` images, exactly as the C example takes them.
        train, _valid = ds.split(1.0 - limit / len(ds))
        ds = train
    x = ds.x.numpy(copy=False)      # a view: rescale in place
    np.multiply(x, np.float32(2), out=x)
    np.subtract(x, np.float32(1), out=x)
    return ds


def epoch_order(seed, epoch, n):
    """The data order of one epoch: a pure function of (seed, epoch), so a
    resumed run sees exactly the batches an uninterrupted one would."""
    with dg.Rng((seed * 1000003 + epoch) % 2 ** 64) as r:
        u = r.uniform(max(n - 1, 1))
    perm = list(range(n))
    k = 0
    for i in range(n - 1, 0, -1):
        j = min(int(float(u[k]) * (i + 1)), i)
        k += 1
        perm[i], perm[j] = perm[j], perm[i]
    return np.array(perm, dtype=np.int64)


# ---- Frechet distance on classifier features ------------------------------

def classifier_arch(features_only):
    """A small MLP classifier; its 128-wide penultimate layer gives the
    features."""
    layers = [dg.flatten(), dg.dense(784, 256), dg.relu(),
              dg.dense(256, 128), dg.relu()]
    if not features_only:
        layers.append(dg.dense(128, 10))
    return dg.Net([1, 28, 28], layers)


def feature_extractor(args):
    """The classifier's first five layers, trained once and cached."""
    try:
        full = dg.Net.load(args.classifier)
    except dg.Error:
        print("fashion_gan: training the feature classifier once (cached "
              "in %s)" % args.classifier, file=sys.stderr)
        train = load_images(args.data, "train", with_labels=True)
        test = load_images(args.data, "t10k", with_labels=True)
        full = classifier_arch(False)
        dg.fit(full, dg.Adam(1e-3), dg.Loss.CROSS_ENTROPY, train, epochs=5,
               batch_size=128, seed=7)
        _, acc = dg.evaluate(full, dg.Loss.CROSS_ENTROPY, test, 500)
        print("fashion_gan: feature classifier test accuracy %.4f" % acc,
              file=sys.stderr)
        full.save(args.classifier)
    feat = classifier_arch(True)
    for name, param in feat.named_parameters():
        try:
            param.copy_from(full.param(name).numpy())
        except dg.Error:
            sys.exit("fashion_gan: %s is not the expected classifier "
                     "(delete it to retrain)" % args.classifier)
    return feat.eval()


def features(feat, images):
    """Features [N, 128] of images [N, 1, 28, 28] in [-1, 1]."""
    return np.concatenate([feat.predict(images[i:i + 500])
                           for i in range(0, len(images), 500)])


def fid_of(args, samples):
    feat = feature_extractor(args)
    test = load_images(args.data, "t10k")
    return dg.frechet_distance(features(feat, test.x.numpy(copy=False)),
                               features(feat, samples))


# ---- training --------------------------------------------------------------

def fmt_eta(s):
    t = int(s + 0.5)
    if t >= 3600:
        return "%dh%02dm" % (t // 3600, t // 60 % 60)
    return "%dm%02ds" % (t // 60, t % 60)


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="fashion_gan.py",
        description="Train a GAN on Fashion-MNIST and write a grid of "
                    "generated images.")
    p.add_argument("--model", choices=["mlp", "dcgan"], default="dcgan",
                   help="architecture (default dcgan)")
    p.add_argument("--steps", type=int, default=3000,
                   help="train until N discriminator steps (default 3000)")
    p.add_argument("--batch", type=int, default=64,
                   help="batch size (default 64)")
    p.add_argument("--lr", type=float, default=2e-4,
                   help="Adam learning rate (default 2e-4)")
    p.add_argument("--loss", choices=["bce", "hinge", "lsgan", "wgan"],
                   default="bce", help="adversarial loss (default bce)")
    p.add_argument("--ema", type=float, default=0.0,
                   help="sample from an EMA of G's weights (decay X)")
    p.add_argument("--smooth", type=float, default=1.0,
                   help="one-sided label smoothing: real label X")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    p.add_argument("--threads", type=int, default=0,
                   help="threads (default: all cores)")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist",
                   help="Fashion-MNIST folder")
    p.add_argument("--limit", type=int, default=0,
                   help="use only the first N training images")
    p.add_argument("--out", default="samples.png",
                   help="sample grid, .png/.pgm (default samples.png)")
    p.add_argument("--sample-every", type=int, default=500,
                   help="rewrite the grid every N steps (default 500)")
    p.add_argument("--report", type=int, default=100,
                   help="progress line every N steps (default 100)")
    p.add_argument("--save", help="write a checkpoint at the end")
    p.add_argument("--resume", help="continue from a checkpoint")
    p.add_argument("--dump-samples", nargs=2, metavar=("N", "FILE"),
                   help="write N samples as float32 .npy [N,1,28,28]")
    p.add_argument("--eval", action="store_true",
                   help="print fid=X (Frechet distance of classifier "
                        "features, 10000 samples vs the test set)")
    p.add_argument("--classifier", default="fashion-features.dngm",
                   help="feature extractor cache (trained once if missing)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)
    if args.steps < 0 or args.batch < 2 or not args.lr > 0 or \
            args.sample_every < 1 or args.report < 1 or args.limit < 0 or \
            args.seed < 0 or not 0 <= args.threads <= 1024:
        p.error("a numeric option is out of range")
    if args.dump_samples:
        try:
            args.dump_n = int(args.dump_samples[0])
        except ValueError:
            args.dump_n = 0
        if args.dump_n < 1:
            p.error("--dump-samples takes N FILE with N >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        dg.set_num_threads(args.threads)

    g = build_generator(args.model)
    d = build_discriminator(args.model)
    # DCGAN's initialisation is N(0, 0.02) weights and N(1, 0.02) batch
    # norm; the MLP keeps PyTorch's default. One stream for both networks.
    scheme = dg.Init.NORMAL_002 if args.model == "dcgan" else dg.Init.DEFAULT
    with dg.Rng(args.seed) as ir:
        g.init(scheme, ir)
        d.init(scheme, ir)
    g_opt = dg.Adam(args.lr, 0.5, 0.999, 1e-8)
    d_opt = dg.Adam(args.lr, 0.5, 0.999, 1e-8)
    gan = dg.GAN(g, d, g_opt, d_opt, loss=args.loss,
                 label_smoothing=args.smooth, seed=args.seed)
    if args.ema > 0:
        gan.set_ema(args.ema)
    if args.resume:
        gan.load_checkpoint(args.resume)

    # 64 fixed latent vectors: the grid shows the same z over time.
    with dg.Rng(args.seed + 424242) as zr:
        fixed_z = dg.Tensor((GRID, LATENT)).fill_normal(zr)
    grid = dg.Tensor((GRID, 1, 28, 28))

    def write_grid():
        gan.generate(fixed_z, out=grid)
        dg.write_image_grid(grid, 8, args.out)

    start = gan.steps
    if start < args.steps:
        train = load_images(args.data, "train", limit=args.limit)
        n = len(train)
        if args.batch > n:
            print("fashion_gan: --batch %d exceeds the %d training images"
                  % (args.batch, n), file=sys.stderr)
            return 2
        images = train.x.numpy(copy=False)
        if not args.quiet:
            print("fashion_gan: model %s, loss %s, %d images, batch %d, "
                  "steps %d..%d, %d threads"
                  % (args.model, args.loss, n, args.batch, start, args.steps,
                     dg.get_num_threads()), flush=True)
        per_epoch = n // args.batch
        epoch, perm = -1, None
        acc = np.zeros(4)
        since = 0
        t0 = time.monotonic()
        for step in range(start, args.steps):
            e, b = divmod(step, per_epoch)
            if e != epoch:
                perm = epoch_order(args.seed, e, n)
                epoch = e
            batch = images[perm[b * args.batch:(b + 1) * args.batch]]
            st = gan.step(batch)
            acc += (st.d_loss, st.g_loss, st.d_real, st.d_fake)
            since += 1
            if not args.quiet and ((step + 1) % args.report == 0 or
                                   step + 1 == args.steps):
                rate = (step + 1 - start) / max(time.monotonic() - t0, 1e-9)
                m = acc / since
                print("step %6d/%d  d_loss %.4f  g_loss %.4f  D(real) %.3f  "
                      "D(fake) %.3f  %.1f steps/s  ETA %s"
                      % (step + 1, args.steps, m[0], m[1], m[2], m[3], rate,
                         fmt_eta((args.steps - step - 1) / rate)),
                      flush=True)
                acc[:] = 0
                since = 0
            if (step + 1) % args.sample_every == 0 and args.out:
                write_grid()
    if args.out:
        write_grid()
        if not args.quiet:
            print("wrote %s" % args.out)
    if args.save:
        gan.save_checkpoint(args.save)
        if not args.quiet:
            print("saved checkpoint %s at step %d" % (args.save, gan.steps))
    if args.dump_samples or args.eval:
        ns = args.dump_n if args.dump_samples else 10000
        with dg.Rng(args.seed + 777) as sr:
            samples = gan.sample(ns, sr)
            if args.dump_samples:
                samples.save_npy(args.dump_samples[1])
                if not args.quiet:
                    print("wrote %d samples to %s" % (ns,
                                                      args.dump_samples[1]))
            if args.eval:
                if ns != 10000:
                    samples = gan.sample(10000, sr)
                print("fid=%.4f" % fid_of(args, samples.numpy()))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except dg.Error as err:
        sys.exit("fashion_gan: %s" % err)
