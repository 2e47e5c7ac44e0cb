"""The main job, for now: build a small graph, backpropagate, print gradients.

A neuron y = sigmoid(w·x + b) (Fundamentals of Deep Learning, ch. 1) and its
squared error E = ½(t - y)²; backpropagation gives dE/dw and dE/db.
"""
import numpy as np

import tensorgraph as tg

x = tg.tensor([0.5, -1.0, 2.0], name="x")
w = tg.tensor([0.1, 0.4, -0.3], requires_grad=True, name="w")
b = tg.tensor(0.2, requires_grad=True, name="b")
t = 1.0

with tg.name_scope("neuron"):
    z = tg.dot(w, x) + b
    y = tg.sigmoid(z)
E = 0.5 * (t - y) ** 2
E.backward()

print(f"y = sigmoid(w.x + b) = {y.item():.6f}")
print(f"E = 1/2 (t - y)^2    = {E.item():.6f}")
print("dE/dw =", np.round(w.grad.numpy(), 6))
print("dE/db =", round(b.grad.item(), 6))
# The delta rule by hand: dE/dw_i = -(t - y) * y (1 - y) * x_i
delta = -(t - y.item()) * y.item() * (1 - y.item())
print("by hand: dE/dw =", np.round(delta * x.numpy(), 6), " dE/db =", round(delta, 6))
print(f"graph: {len(tg.walk(E))} tensors, ops:", [n.node.op.name for n in tg.walk(E) if n.node])
