"""fashion_mlp.py: train a multi-layer perceptron on Fashion-MNIST, evaluate
it, save it and load it back (tutorial, part 2).

    python3 fashion_mlp.py [DATA_DIR [TRAIN_IMAGES [EPOCHS [THREADS]]]]
"""
import sys

import dnngen as dg

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
           "Shirt", "Sneaker", "Bag", "Ankle boot"]

args = sys.argv[1:] + [None] * 4
folder = args[0] or "/usr/share/datasets/fashion-mnist"
limit = int(args[1] or 0)
epochs = int(args[2] or 10)
dg.set_num_threads(int(args[3] or 0))


def load(stem):
    return dg.Dataset.load_idx(f"{folder}/{stem}-images-idx3-ubyte.gz",
                               f"{folder}/{stem}-labels-idx1-ubyte.gz")


data, test = load("train"), load("t10k")
if 0 < limit < data.size:
    data, _ = data.split(1 - limit / data.size)
rng = dg.Rng(1)
train, valid = data.split(0.1, rng)

net = dg.Net([1, 28, 28], [
    dg.flatten(),
    dg.dense(784, 256), dg.relu(), dg.dropout(0.2),
    dg.dense(256, 10),
])
net.init(dg.Init.HE_NORMAL, rng)


def on_epoch(p):
    print(f"epoch {p.epoch}/{p.epochs}  train loss {p.train_loss:.4f}  "
          f"valid loss {p.valid_loss:.4f}  "
          f"valid accuracy {p.valid_accuracy:.4f}", flush=True)


opt = dg.Adam(lr=1e-3)
dg.fit(net, opt, dg.Loss.CROSS_ENTROPY, train, valid, epochs=epochs,
       batch_size=64, seed=1, patience=3, callback=on_epoch)

loss, accuracy = dg.evaluate(net, dg.Loss.CROSS_ENTROPY, test, 500)
print(f"test loss {loss:.4f}  test accuracy {accuracy:.4f}")
x, label = test.batch(0, 1)
net.eval()
logits = net.predict(x)
print(f"first test image: predicted {CLASSES[logits[0].argmax()]}, "
      f"labelled {CLASSES[int(label.numpy()[0])]}")

net.save("fashion-mlp.dngm")
loaded = dg.Net.load("fashion-mlp.dngm")
print(f"reloaded test accuracy "
      f"{dg.evaluate(loaded, 'cross_entropy', test, 500)[1]:.4f}")
