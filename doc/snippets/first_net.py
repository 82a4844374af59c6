"""first_net.py: a first network, trained by hand on XOR (tutorial, part 1)."""
import numpy as np

import dnngen as dg

dg.set_num_threads(1)  # a network this small is fastest on one thread

x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
y = np.array([[0], [1], [1], [0]], np.float32)
net = dg.Net([2], [dg.dense(2, 8), dg.tanh(), dg.dense(8, 1)])
net.init(dg.Init.XAVIER_UNIFORM, dg.Rng(42))
print(net.summary(), end="")
opt = dg.Adam(lr=0.05)
for step in range(1, 301):
    net.zero_grad()
    loss, grad = dg.loss(dg.Loss.BCE_WITH_LOGITS, net.forward(x), y,
                         grad=True)
    net.backward(grad)
    opt.step(net)
    if step % 100 == 0:
        print("step %d loss %.6f" % (step, loss))
net.eval()
print("predictions", *(net.predict(x)[:, 0] > 0).astype(int))
