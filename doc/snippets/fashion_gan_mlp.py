"""fashion_gan_mlp.py: a GAN of two multi-layer perceptrons trained on
Fashion-MNIST; writes a grid of samples and a checkpoint, then restores the
checkpoint into a fresh trainer (tutorial, part 3).

    python3 fashion_gan_mlp.py [DATA_DIR [TRAIN_IMAGES [EPOCHS [THREADS]]]]
"""
import sys

import numpy as np

import dnngen as dg

LATENT = 100
args = sys.argv[1:] + [None] * 4
folder = args[0] or "/usr/share/datasets/fashion-mnist"
limit = int(args[1] or 0)
epochs = int(args[2] or 10)
dg.set_num_threads(int(args[3] or 0))

data = dg.Dataset.load_idx(f"{folder}/train-images-idx3-ubyte.gz")
if 0 < limit < data.size:
    data, _ = data.split(1 - limit / data.size)
pixels = data.x.numpy(copy=False)  # a view on the dataset's memory
pixels *= 2
pixels -= 1                        # [0, 1] -> [-1, 1], in place


def build():
    g = dg.Net([LATENT], [
        dg.dense(LATENT, 256), dg.leaky_relu(0.2),
        dg.dense(256, 512), dg.leaky_relu(0.2),
        dg.dense(512, 784), dg.tanh(),
        dg.reshape([1, 28, 28]),
    ])
    d = dg.Net([1, 28, 28], [
        dg.flatten(),
        dg.dense(784, 512), dg.leaky_relu(0.2),
        dg.dense(512, 256), dg.leaky_relu(0.2),
        dg.dense(256, 1),
    ])
    return dg.GAN(g, d, dg.Adam(2e-4, beta1=0.5), dg.Adam(2e-4, beta1=0.5),
                  loss="bce", seed=1, report_interval=200)


def on_report(p):
    s = p.stats
    print(f"epoch {p.epoch}  step {p.step}/{p.steps}  d_loss {s.d_loss:.3f}  "
          f"g_loss {s.g_loss:.3f}  D(real) {s.d_real:.3f}  "
          f"D(fake) {s.d_fake:.3f}", flush=True)


gan = build()
gan.train(data, epochs, 64, callback=on_report)

z = dg.Tensor((64, LATENT)).fill_normal(dg.Rng(7))
grid = gan.generate(z)
dg.write_image_grid(grid, 8, "fashion-gan-mlp.pgm")
print("wrote fashion-gan-mlp.pgm")

gan.save_checkpoint("fashion-gan-mlp.ckpt")
fresh = build()
fresh.load_checkpoint("fashion-gan-mlp.ckpt")
same = np.array_equal(fresh.generate(z).numpy(), grid.numpy())
print(f"restored at step {fresh.steps}, same samples: "
      f"{'yes' if same else 'no'}")
sys.exit(0 if same else 1)
