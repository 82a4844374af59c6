#!/usr/bin/python3
"""Train the fashion-gan example's models with the same recipe in PyTorch.

Used side by side with examples/fashion-gan to compare the two libraries at
equal steps: generative quality (both sample sets scored with the same
Frechet distance by `fashion-gan --score`) and speed (steps per second on
the same machine and thread count).

    /usr/bin/python3 tests/bench/torch_gan.py --model dcgan --steps 3000 \
        --threads 2 --dump torch-dcgan.npy
"""
import argparse
import gzip
import os
import struct
import sys
import time

import numpy as np


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["mlp", "dcgan"], default="dcgan")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--dump", help="write 10000 samples as .npy [N,1,28,28]")
    p.add_argument("--dump-n", type=int, default=10000)
    p.add_argument("--report", type=int, default=500)
    return p.parse_args()


def load_images(path):
    with gzip.open(path, "rb") as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        if magic != 0x803:
            sys.exit(f"{path}: not an IDX image file")
        x = np.frombuffer(f.read(n * h * w), dtype=np.uint8)
    return (x.reshape(n, 1, h, w).astype(np.float32) / 255.0) * 2 - 1


def main():
    a = parse()
    # Thread counts must be fixed before torch loads BLIS/OpenMP.
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    os.environ["BLIS_NUM_THREADS"] = str(a.threads)
    import torch
    from torch import nn

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    latent = 100

    if a.model == "mlp":
        G = nn.Sequential(
            nn.Linear(latent, 256), nn.LeakyReLU(0.2),
            nn.Linear(256, 512), nn.LeakyReLU(0.2),
            nn.Linear(512, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))
        D = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 512), nn.LeakyReLU(0.2),
            nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1))
    else:
        G = nn.Sequential(
            nn.Linear(latent, 128 * 7 * 7), nn.Unflatten(1, (128, 7, 7)),
            nn.BatchNorm2d(128), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64),
            nn.ReLU(), nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())
        D = nn.Sequential(
            nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128),
            nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(128 * 7 * 7, 1))

        def dcgan_init(m):
            # DCGAN: N(0, 0.02) weights, batch-norm weights N(1, 0.02).
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
        G.apply(dcgan_init)
        D.apply(dcgan_init)

    x_all = torch.from_numpy(
        load_images(os.path.join(a.data, "train-images-idx3-ubyte.gz")))
    n = x_all.shape[0]
    og = torch.optim.Adam(G.parameters(), lr=a.lr, betas=(0.5, 0.999))
    od = torch.optim.Adam(D.parameters(), lr=a.lr, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones = torch.ones(a.batch, 1)
    zeros = torch.zeros(a.batch, 1)
    gen = torch.Generator().manual_seed(a.seed)
    perm = torch.randperm(n, generator=gen)
    pos = 0
    t0 = time.perf_counter()
    for step in range(1, a.steps + 1):
        if pos + a.batch > n:
            perm = torch.randperm(n, generator=gen)
            pos = 0
        real = x_all[perm[pos:pos + a.batch]]
        pos += a.batch
        # Discriminator: real and fake batches separately.
        od.zero_grad(set_to_none=False)
        dr = D(real)
        lr_ = bce(dr, ones)
        lr_.backward()
        fake = G(torch.randn(a.batch, latent))
        df = D(fake.detach())
        lf = bce(df, zeros)
        lf.backward()
        od.step()
        # Generator: fresh noise, non-saturating loss.
        og.zero_grad(set_to_none=False)
        fake = G(torch.randn(a.batch, latent))
        lg = bce(D(fake), ones)
        lg.backward()
        og.step()
        if step % a.report == 0 or step == a.steps:
            el = time.perf_counter() - t0
            print(f"step {step:6d}/{a.steps}  d_loss {lr_.item() + lf.item():.4f}"
                  f"  g_loss {lg.item():.4f}"
                  f"  D(real) {torch.sigmoid(dr).mean().item():.3f}"
                  f"  D(fake) {torch.sigmoid(df).mean().item():.3f}"
                  f"  {step / el:.1f} steps/s", flush=True)
    el = time.perf_counter() - t0
    print(f"torch_steps_per_s={a.steps / el:.3f}")
    if a.dump:
        # Sampling in evaluation mode, as dng_gan_sample does.
        G.eval()
        out = []
        with torch.no_grad():
            for i in range(0, a.dump_n, 500):
                k = min(500, a.dump_n - i)
                out.append(G(torch.randn(k, latent)).numpy())
        np.save(a.dump, np.concatenate(out).astype(np.float32))
        print(f"wrote {a.dump_n} samples to {a.dump}")


if __name__ == "__main__":
    main()
