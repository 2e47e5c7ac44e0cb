"""Backpropagation, one step at a time: Fundamentals of Deep Learning, chapter 2
("The Backpropagation Algorithm").

A 2-2-1 network of sigmoid neurons (`tg.nn.FeedForward([2, 2, 1],
activation="sigmoid", output="sigmoid")`) sees one XOR example, x = (1, 0)
with target t = 1, and its squared error E = 1/2 (t - y)^2 is backpropagated.
The book derives, for sigmoid neurons y_j = 1 / (1 + e^(-z_j)) with
z_j = sum_i w_ij y_i + b_j,

    dE/dy_j  = -(t_j - y_j)                                at the output layer,
    dE/dz_j  = y_j (1 - y_j) dE/dy_j                       through the sigmoid,
    dE/dy_i  = sum_j w_ij y_j (1 - y_j) dE/dy_j            one layer down,
    dE/dw_ij = y_i y_j (1 - y_j) dE/dy_j                   for each weight,

(and dE/db_j = y_j (1 - y_j) dE/dy_j for the biases, which the book folds into
the weights), summed over the examples of a batch. tensorgraph knows none of
these formulas: each op only knows its own vector-Jacobian product, and
`backward()` chains them. The script checks that the two agree, for the one
example and for all four XOR examples at once, and prints both.

To show the flow step by step, the backward pass is paused: a hook on a
tensor (`Tensor.register_hook`) is called as soon as that tensor's gradient
is complete, and raising there stops `backward()` with every op above it
done and every op below it untouched. Drawing the graph then
(`tg.draw(E, view="backward")`) shows the gradients that have been computed
so far in red, and the edges still waiting dashed. One figure per step:

    1. the forward pass: every value (view "ops", values=True);
    2. the gradient at the output, dE/dy;
    3. through the output neuron's sigmoid, dE/dz;
    4. into the output layer's weights and bias, and down to the hidden outputs;
    5. through the hidden sigmoids;
    6. into the hidden layer's weights and bias: backpropagation is complete.

Also writes backprop_network.svg (the network as the book draws it) and
results.json.

    python examples/backprop.py [--out DIR] [--quick]
"""
from __future__ import annotations

import os

# Small matrices: BLAS threads only add overhead (and thrash on a busy 2-core
# machine). Effective only if numpy is not imported yet, i.e. when run as a script.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

import numpy as np  # noqa: E402

import tensorgraph as tg  # noqa: E402
from _common import Example, parser  # noqa: E402

NAME = "backprop"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 2: the backpropagation algorithm, step by "
              "step through a 2-2-1 sigmoid network, checked against the book's formulas")
SEED = 1


class _Pause(Exception):
    """Raised by a hook to stop the backward pass at a tensor."""


def make_net() -> tg.nn.FeedForward:
    return tg.nn.FeedForward([2, 2, 1], activation="sigmoid", output="sigmoid", init="xavier",
                             seed=SEED, name="net")


def forward(net: tg.nn.FeedForward, X: np.ndarray, T: np.ndarray) -> dict[str, tg.Tensor]:
    """Run the network and pick the intermediate values out of the recorded
    graph by the scope and op that made them."""
    x = tg.tensor(X, name="x")
    t = tg.tensor(T, name="t")
    E = tg.losses.squared_error(net(x), t)
    made = {(v.node.scope, v.node.op.name): v for v in tg.walk(E) if v.node is not None}
    hidden, output = ("net", "layers", "0"), ("net", "layers", "1")
    return {"x": x, "t": t, "E": E,
            "z1": made[hidden, "add"], "h": made[hidden, "sigmoid"],
            "z2": made[output, "add"], "y": made[("net",), "sigmoid"]}


def backward_until(E: tg.Tensor, stop: Optional[tg.Tensor]) -> None:
    """E.backward(), paused as soon as the gradient reaching `stop` is complete
    (None: run to the end). The graph is kept so that it can be drawn."""
    if stop is None:
        E.backward(retain_graph=True)
        return

    def pause(grad: tg.Tensor) -> None:
        raise _Pause

    handle = stop.register_hook(pause)
    try:
        E.backward(retain_graph=True)
    except _Pause:
        pass
    finally:
        handle.remove()


def book_gradients(x: np.ndarray, h: np.ndarray, y: np.ndarray, t: np.ndarray,
                   W2: np.ndarray) -> dict[str, np.ndarray]:
    """The book's hand-derived backpropagation for sigmoid layers, in float64,
    from the forward values alone (rows are examples; the sums over i, j and
    the examples k are written out as loops, as the book writes them)."""
    n, n_in, n_h, n_out = x.shape[0], x.shape[1], h.shape[1], y.shape[1]
    dE_dy = -(t - y)                                          # output layer
    dE_dW2, dE_db2 = np.zeros((n_h, n_out)), np.zeros(n_out)
    dE_dh = np.zeros((n, n_h))
    for k in range(n):
        for j in range(n_out):
            s = y[k, j] * (1 - y[k, j]) * dE_dy[k, j]         # y_j (1 - y_j) dE/dy_j
            dE_db2[j] += s
            for i in range(n_h):
                dE_dW2[i, j] += h[k, i] * s                   # dE/dw_ij = y_i y_j(1-y_j) dE/dy_j
                dE_dh[k, i] += W2[i, j] * s                   # dE/dy_i = sum_j w_ij (...)
    dE_dW1, dE_db1 = np.zeros((n_in, n_h)), np.zeros(n_h)
    for k in range(n):
        for j in range(n_h):
            s = h[k, j] * (1 - h[k, j]) * dE_dh[k, j]
            dE_db1[j] += s
            for i in range(n_in):
                dE_dW1[i, j] += x[k, i] * s
    return {"dE/dy (output)": dE_dy, "dE/dh (hidden outputs)": dE_dh,
            "layers.1.weight": dE_dW2, "layers.1.bias": dE_db2,
            "layers.0.weight": dE_dW1, "layers.0.bias": dE_db1}


def check(net: tg.nn.FeedForward, X: np.ndarray, T: np.ndarray, label: str) -> float:
    """Backpropagate with tensorgraph and with the book's formulas; print both
    side by side and return the largest difference."""
    net.zero_grad()
    v = forward(net, X, T)
    v["y"].retain_grad()
    v["h"].retain_grad()
    v["E"].backward()
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    book = book_gradients(f64(X), f64(v["h"].data), f64(v["y"].data), f64(T),
                          f64(net.layers[1].weight.data))
    engine = {"dE/dy (output)": v["y"].grad.data, "dE/dh (hidden outputs)": v["h"].grad.data,
              **{name: p.grad.data for name, p in net.named_parameters()}}
    print(f"\n{label}: E = {v['E'].item():.6f}")
    worst = 0.0
    fmt = lambda a: np.array2string(np.ravel(a), precision=6, separator=", ",  # noqa: E731
                                    floatmode="fixed", max_line_width=200)
    for name in book:
        diff = float(np.abs(f64(engine[name]) - book[name]).max())
        worst = max(worst, diff)
        print(f"  {name:24s} |difference| {diff:.1e}\n"
              f"      tensorgraph backward()  {fmt(engine[name])}\n"
              f"      book's formula          {fmt(book[name])}")
    return worst


# -- the step figures -------------------------------------------------------

def _v(a: np.ndarray) -> str:
    return "[" + ", ".join(f"{float(x):.4g}" for x in np.ravel(a)) + "]"


def _captions(x: np.ndarray, t: np.ndarray, h: np.ndarray, y: np.ndarray,
              g: dict[str, np.ndarray]) -> list[str]:
    """The captions of steps 2-6, with the numbers of the book's formulas."""
    dz2 = y * (1 - y) * g["dE/dy (output)"]
    dz1 = h * (1 - h) * g["dE/dh (hidden outputs)"]
    return [
        ("The backward pass starts at E = \u00bd(t \u2212 y)\u00b2 with dE/dE = 1 and runs "
         "back through its ops (mul, sum, the square, the subtraction) to the network's "
         f"output: dE/dy = \u2212(t \u2212 y) = {_v(g['dE/dy (output)'])}, the book's first "
         "formula. Red edges carry the gradient sent along them; dashed ones are still waiting."),
        ("The gradient is multiplied by the sigmoid's "
         f"derivative y(1 \u2212 y) = {_v(y * (1 - y))}: dE/dz = y(1 \u2212 y) dE/dy = {_v(dz2)}."),
        ("The output layer's add and matmul share dE/dz out: the bias gets it unchanged "
         f"({_v(g['layers.1.bias'])}), each weight w_ij gets y_i dE/dz_j = "
         f"{_v(g['layers.1.weight'])} (the book's \u2202E/\u2202w_ij = y_i y_j(1 \u2212 y_j) "
         "\u2202E/\u2202y_j, with y_i the hidden outputs), and each hidden output gets "
         f"\u03a3_j w_ij dE/dz_j = {_v(g['dE/dh (hidden outputs)'])}: the error has been "
         "propagated one layer down."),
        ("The same rule one layer down: each hidden sigmoid multiplies dE/dh by "
         f"h(1 \u2212 h) = {_v(h * (1 - h))}, giving dE/dz = {_v(dz1)}."),
        ("Backpropagation is complete: the hidden layer's weights get x_i dE/dz_j = "
         f"{_v(g['layers.0.weight'])} (the row for x\u2082 is zero because x\u2082 = 0 in this "
         f"example) and its biases dE/dz_j = {_v(g['layers.0.bias'])}. Every parameter now holds "
         "its gradient, ready for a gradient-descent step; the input x gets none (it does not "
         "require grad)."),
    ]


#: Steps 2-6: (file suffix, title, where the backward pass pauses).
STEPS: list[tuple[str, str, Optional[str]]] = [
    ("output", "the gradient reaches the output y", "y"),
    ("output_sigmoid", "through the output neuron's sigmoid", "z2"),
    ("output_weights", "into the output layer's weights, down to the hidden outputs", "h"),
    ("hidden_sigmoid", "through the hidden sigmoids", "z1"),
    ("hidden_weights", "into the hidden layer's weights: done", None),
]


def run(out: Path, quick: bool = False, data: Optional[Path] = None) -> dict:
    """Draw the steps, check the gradients, write results.json into `out`;
    returns {"figures": [{"file", "caption"}...], "results": {...}}. `data`
    is unused (XOR is embedded); `quick` changes nothing (this is fast)."""
    ex = Example(NAME, REPRODUCES, doc=__doc__,
                 args=argparse.Namespace(out=out, quick=quick, data=data))
    ex.data_source = "embedded: tg.data.xor()"
    X, labels = tg.data.xor()
    T = labels.astype(np.float32)[:, None]
    x1, t1 = X[2:3], T[2:3]                     # the example x = (1, 0), t = 1
    net = make_net()
    print(f"network: {net}")
    ex.figure(tg.draw(net, view="network", title="A 2-2-1 network of sigmoid neurons"),
              "backprop_network.svg",
              "The network whose backward pass the next figures follow, as the book draws "
              "it: two inputs, two hidden sigmoid neurons and one sigmoid output neuron; edge "
              "width grows with |w|, blue for positive and red for negative weights.")

    # Step 1: the forward pass, every value shown.
    v = forward(net, x1, t1)
    ex.figure(tg.draw(v["E"], view="ops", values=True, module=net,
                      title="Backpropagation, step 1 of 6: the forward pass"),
              "backprop_step1_forward.svg",
              f"Step 1, the forward pass: for x = {_v(x1)} the network computes the hidden "
              f"outputs h = sigmoid(x W\u2081 + b\u2081) = {_v(v['h'].data)}, the output "
              f"y = sigmoid(h W\u2082 + b\u2082) = {_v(v['y'].data)}, and the error "
              f"E = 1/2 (t \u2212 y)\u00b2 = {v['E'].item():.4f} for the target t = 1. "
              "Each box is a recorded op with its output shape and value; orange boxes are "
              "parameters, blue ones inputs.")

    # Steps 2-6: the backward pass paused at successive tensors.
    f64 = lambda a: np.asarray(a, dtype=np.float64)  # noqa: E731
    h, y = f64(v["h"].data), f64(v["y"].data)
    captions = _captions(f64(x1), f64(t1), h, y,
                         book_gradients(f64(x1), h, y, f64(t1), f64(net.layers[1].weight.data)))
    for k, ((slug, what, stop), caption) in enumerate(zip(STEPS, captions), start=2):
        net.zero_grad()
        v = forward(net, x1, t1)
        v["E"].retain_grad()  # so that the output's box shows dE/dE = 1 too
        backward_until(v["E"], v[stop] if stop else None)
        drawing = tg.draw(v["E"], view="backward", values=True, module=net,
                          title=f"Backpropagation, step {k} of 6: {what}")
        ex.figure(drawing, f"backprop_step{k}_{slug}.svg", f"Step {k}, {what}. {caption}")

    # The check: tensorgraph's gradients against the book's formulas.
    diff1 = check(net, x1, t1, "one example, x = (1, 0), t = 1")
    diff4 = check(net, X, T, "all four XOR examples (gradients summed over the batch)")
    print(f"\nlargest difference between backward() and the book's formulas: "
          f"{max(diff1, diff4):.1e} (float32 network, formulas in float64)")
    if not max(diff1, diff4) < 1e-6:
        raise RuntimeError(f"backprop: backward() and the book's formulas differ by "
                           f"{max(diff1, diff4):.2e}")
    ex.results.update(max_abs_diff_one_example=diff1, max_abs_diff_xor_batch=diff4,
                      error_one_example=float(forward(net, x1, t1)["E"].item()),
                      steps=1 + len(STEPS))
    return ex.finish()


def main() -> None:
    args = parser(__doc__).parse_args()
    run(args.out or Path("out") / NAME, args.quick, args.data)


if __name__ == "__main__":
    main()
