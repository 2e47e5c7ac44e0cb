"""Graphs and sessions: Fundamentals of Deep Learning, chapter 3 ("Logistic
Regression in TensorFlow"), written the TensorFlow way.

The book builds a graph first and runs it later: placeholders stand for the
data fed at each run (`x` of shape (None, 784), None being the batch size),
variables hold the model (W of 784x10 and b of 10, both starting at zero),
operations connect them, and a session runs the graph on fed batches. Here:

    x = tg.placeholder((None, 784), name="x")         # tf.placeholder
    W = tg.tensor(zeros, requires_grad=True)           # tf.Variable
    train_op = tg.capture(train_step, x, y)            # optimizer.minimize(cost), built once
    train_op(X_batch, y_batch)                         # session.run(train_op, feed_dict)
    g = tg.capture(evaluate, x, y)                     # the evaluation graph
    g(X_val, y_val)                                    # session.run(..., feed_dict)

`evaluate` is written as a student would write the book's `inference`,
`loss` and `evaluate` functions: it builds x W + b twice (once for the
output, once for the loss), computes an entropy it never returns (left
over from a print), and multiplies two constants for the weight decay.
`tg.passes.optimize` removes all three: the graph is drawn before and after.

Training is minibatch SGD with the whole step in a graph, as the book's
`train_op = optimizer.minimize(cost)`: `train_step` is written with PyTorch's
habits (`opt.zero_grad(); loss.backward(); opt.step()`), and `tg.capture`
records the forward pass, the backward pass (one op per VJP) and the update
(`apply_sgd` ops that write W and b in place, printed in the listing). Each
minibatch is one run of that graph, like `session.run(train_op)`; the
evaluation graph reads W and b by reference, so each run of it sees the
trained values, as a TensorFlow session sees its variables. The inference
graph (softmax(x W + b)) is exported to ONNX and run by onnxruntime (the
largest difference from the replay and the accuracy are reported), and the
training is logged to TensorBoard (scalars per epoch, histograms of W and b,
the graph) into <out>/runs.

MNIST comes from --data (as examples/mnist_logreg.py); with --quick and no
such directory, and always when called without a data directory (the
gallery), a synthetic MNIST-shaped stand-in of a few thousand images is used.

Writes graph_before.svg, graph_after.svg, train_step.svg, inference.svg,
curves.svg, logreg.onnx, runs/ and results.json.

    python examples/graphs_and_sessions.py [--data DIR] [--out DIR] [--quick]
"""
from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

import tensorgraph as tg
from _common import Example, Split, epochs_main, synthetic_mnist

NAME = "graphs_and_sessions"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 3: logistic regression in TensorFlow: "
              "placeholders, variables, a graph run like a session, TensorBoard")
LR, BATCH, EPOCHS, QUICK_EPOCHS = 0.2, 128, 10, 2
DECAY = 1e-4           # weight decay: gives the graph a pair of constants to fold
EMBEDDED = (3000, 500, 1000)     # synthetic train/val/test sizes when no data directory is given
QUICK_EMBEDDED = (1000, 300, 300)


def build_variables() -> tuple[tg.Tensor, tg.Tensor]:
    """The book's variables: W and b start at zero (logistic regression is
    convex, so no symmetry needs breaking)."""
    W = tg.tensor(np.zeros((784, 10), np.float32), requires_grad=True, name="W")
    b = tg.tensor(np.zeros(10, np.float32), requires_grad=True, name="b")
    return W, b


def make_train_step(W: tg.Tensor, b: tg.Tensor) -> Any:
    """The training step, written as in PyTorch: captured, it is the book's
    `train_op` (forward, backward and the SGD update of W and b)."""
    opt = tg.optim.SGD([W, b], lr=LR)

    def train_step(x: tg.Tensor, y: tg.Tensor) -> tg.Tensor:
        opt.zero_grad()
        loss = tg.losses.cross_entropy(x @ W + b, y) + 0.5 * DECAY * (W * W).sum()
        loss.backward()                                # recorded: the VJPs are ops
        opt.step()                                     # recorded: W -= lr dW, b -= lr db
        return loss

    return train_step


def make_functions(W: tg.Tensor, b: tg.Tensor) -> tuple[Any, Any]:
    """`inference(x)` and `evaluate(x, y)`, written as in the book's code."""

    def inference(x: tg.Tensor) -> tg.Tensor:
        return tg.softmax(x @ W + b, axis=1)          # output = softmax(x W + b)

    def evaluate(x: tg.Tensor, y: tg.Tensor) -> dict[str, tg.Tensor]:
        output = inference(x)
        entropy = -(output * tg.log(output)).sum(axis=1)   # noqa: F841 (was printed once; now unused)
        logits = x @ W + b                             # loss() builds x W + b again
        decay = tg.tensor(0.5) * tg.tensor(DECAY)      # constants only: folded into one
        loss = tg.losses.cross_entropy(logits, y) + decay * (W * W).sum()
        correct = tg.argmax(output, axis=1) == y       # tf.equal(tf.argmax(output, 1), y)
        return {"loss": loss, "accuracy": correct.astype("float32").mean()}

    return inference, evaluate


def load_data(ex: Example, data: Optional[Path]) -> Split:
    """MNIST from `data` (the examples' convention), or the synthetic stand-in
    when no directory is given (the gallery needs no data files)."""
    if data is not None:
        return ex.mnist()
    n_tr, n_va, n_te = QUICK_EMBEDDED if ex.quick else EMBEDDED
    X, y = synthetic_mnist(n_tr + n_va + n_te, seed=0)
    ex.data_source = (f"synthetic MNIST-shaped blobs (no data directory given): {n_tr} train / "
                      f"{n_va} validation / {n_te} test")
    print(f"data: {ex.data_source}", flush=True)
    a, b = n_tr, n_tr + n_va
    return Split((X[:a], y[:a]), (X[a:b], y[a:b]), (X[b:], y[b:]), ex.data_source)


def train(W: tg.Tensor, b: tg.Tensor, train_op: tg.Graph, session: tg.Graph, mnist: Split,
          epochs: int, writer: Any) -> dict[str, list[float]]:
    """Minibatch SGD, one run of the captured training step per minibatch;
    after each epoch the evaluation graph is run on the training and
    validation sets like `session.run`."""
    X, y = mnist.train
    rng = np.random.default_rng(0)
    history: dict[str, list[float]] = {"loss": [], "accuracy": [], "val_loss": [],
                                       "val_accuracy": []}
    for epoch in range(epochs):
        order = rng.permutation(len(X))
        for start in range(0, len(X), BATCH):
            idx = order[start:start + BATCH]
            train_op(X[idx], y[idx])                    # session.run(train_op, feed_dict)
        # The session: the same graph, fed two data sets, sees the updated W and b.
        for prefix, (Xs, ys) in (("", mnist.train), ("val_", mnist.val)):
            out = session(Xs, ys)
            history[prefix + "loss"].append(float(out["loss"].numpy()))
            history[prefix + "accuracy"].append(float(out["accuracy"].numpy()))
        logs = {k: v[-1] for k, v in history.items()}
        print(f"epoch {epoch + 1:3d}: " + "  ".join(f"{k} {v:.4g}" for k, v in logs.items()),
              flush=True)
        if writer is not None:
            for k, v in logs.items():
                writer.add_scalar(k, v, epoch)
            writer.add_histogram("W", W, epoch)
            writer.add_histogram("b", b, epoch)
    return history


def run_onnx(inference_graph: tg.Graph, path: Path, X: np.ndarray, y: np.ndarray
             ) -> dict[str, Any]:
    """Export the inference graph, run it with onnxruntime on X and compare
    with the replay: the largest absolute difference and both accuracies."""
    tg.onnx.export(inference_graph, path=path, input_names=["x"], output_names=["probs"])
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ours = inference_graph(X).numpy()
    theirs = sess.run(["probs"], {"x": X})[0]
    return {"max_abs_difference_vs_replay": float(np.abs(ours - theirs).max()),
            "accuracy": float((theirs.argmax(axis=1) == y).mean()),
            "replay_accuracy": float((ours.argmax(axis=1) == y).mean()),
            "file": path.name, "bytes": path.stat().st_size}


def have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        epochs: Optional[int] = None) -> dict[str, Any]:
    """Build, train, optimise, export and log; returns the gallery's dict."""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    mnist = load_data(ex, data)

    # -- the graph: placeholders, variables, operations ----------------------
    W, b = build_variables()
    inference, evaluate = make_functions(W, b)
    x = tg.placeholder((None, 784), name="x")
    y = tg.placeholder((None,), dtype="int64", name="y")
    train_op = tg.capture(make_train_step(W, b), x, y)
    print("\nThe training step, captured whole (forward, backward, update):\n" + str(train_op))
    session = tg.capture(evaluate, x, y)
    optimized = tg.passes.optimize(session)
    print("\nThe captured graph, as written:\n" + str(session))
    print("\nAfter tg.passes.optimize:\n" + str(optimized) + "\n")
    n_before, n_after = len(session.nodes), len(optimized.nodes)

    # -- training, with the graph run like a session after each epoch --------
    writer = None
    runs = ex.out / "runs"
    if have("tensorboard"):
        writer = tg.tensorboard.SummaryWriter(runs / "logreg")
        writer.add_graph(optimized)
    else:
        print("tensorboard not installed (pip install -e '.[tensorboard]'): no TensorBoard log")
    t0 = time.perf_counter()
    try:
        history = train(W, b, train_op, optimized, mnist, epochs, writer)
    finally:
        if writer is not None:
            writer.close()
    train_seconds = time.perf_counter() - t0

    # -- the same answers from the graph as written, the optimised one and eager code
    Xte, yte = mnist.test
    before, after = session(Xte, yte), optimized(Xte, yte)
    eager = evaluate(tg.tensor(Xte), tg.tensor(yte))
    same_bits = all(np.array_equal(before[k].numpy(), after[k].numpy()) for k in before)
    eager_diff = max(float(np.abs(before[k].numpy() - eager[k].numpy()).max()) for k in before)
    test_accuracy = float(after["accuracy"].numpy())
    print(f"test accuracy {test_accuracy:.4f}, test loss {float(after['loss'].numpy()):.4f}; "
          f"graph: {n_before} ops -> {n_after} after the passes, same bits: {same_bits}")

    ex.results.update(
        test_accuracy=test_accuracy, test_loss=float(after["loss"].numpy()),
        val_accuracy=history["val_accuracy"][-1], epochs=epochs, batch_size=BATCH,
        optimizer=f"SGD(lr={LR}), the whole step captured (backward and update in the graph)",
        train_step_ops=len(train_op.nodes), train_seconds=round(train_seconds, 2),
        ops_before_passes=n_before, ops_after_passes=n_after,
        passes_same_bits=same_bits, max_abs_difference_replay_vs_eager=eager_diff,
        n_train=len(mnist.train[0]), n_val=len(mnist.val[0]), n_test=len(Xte))

    # -- ONNX: the inference graph, run by onnxruntime ------------------------
    inference_graph = tg.capture(inference, x)
    if have("onnx", "onnxruntime"):
        onnx = run_onnx(inference_graph, ex.out / "logreg.onnx", Xte, yte)
        print(f"onnxruntime: accuracy {onnx['accuracy']:.4f}, largest difference from the "
              f"replay {onnx['max_abs_difference_vs_replay']:.2e}")
        ex.results["onnx"] = onnx
    else:
        print("onnx/onnxruntime not installed (pip install -e '.[onnx]'): no ONNX export")
        ex.results["onnx"] = "skipped: onnx and onnxruntime are not installed"
    ex.results["tensorboard_log"] = ("runs/logreg (view: tensorboard --logdir runs)"
                                     if writer is not None else "skipped: tensorboard not installed")

    # -- figures ----------------------------------------------------------------
    removed = n_before - n_after
    ex.figure(tg.draw(session, title="The graph as written (captured from evaluate)"),
              "graph_before.svg",
              f"The graph tg.capture recorded from evaluate(x, y): {n_before} operations. "
              "x and y are placeholders (fed at each run), W and b are variables (read at "
              "each run, so training shows), 0.5 and 1e-4 are constants. Note x @ W + b built "
              "twice, the entropy that nothing uses, and the two constants multiplied at "
              "every run.")
    ex.figure(tg.draw(optimized, title="After tg.passes.optimize"), "graph_after.svg",
              f"The same graph after the three passes: {n_after} operations ({removed} "
              "fewer). Common-subexpression elimination kept one x @ W + b, dead-code "
              "elimination dropped the unused entropy, constant folding replaced 0.5 x 1e-4 "
              "by one constant. On the test set both graphs give the same bits"
              f" ({'checked' if same_bits else 'NOT the same: a bug'}).")
    ex.figure(tg.draw(train_op, title="The training step: forward, gradients, update"),
              "train_step.svg",
              f"The training step captured whole ({len(train_op.nodes)} operations): the "
              "forward pass and loss, the backward pass recorded by loss.backward() (one "
              "operation per VJP, in the gradients scope), and opt.step()'s two apply_sgd "
              "updates, which write W and b in place at each run, like TensorFlow's "
              "train_op.")
    ex.figure(tg.draw(inference_graph, title="The inference graph exported to ONNX"),
              "inference.svg",
              "The graph exported to ONNX: output = softmax(x W + b), with W and b as the "
              "model's initializers and the batch size left open.")
    ex.figure(tg.draw_history(history, title=f"Logistic regression, the graph run like a "
                              f"session (test accuracy {test_accuracy:.2%})"), "curves.svg",
              "Loss and accuracy per epoch, each point one run of the captured graph on the "
              "training set (solid) and the validation set (dashed)."
              + (" Synthetic MNIST-shaped data: no data files are needed here."
                 if data is None or "synthetic" in ex.data_source else ""))
    return ex.finish()


def main() -> None:
    epochs_main(__doc__, run, EPOCHS, QUICK_EPOCHS)


if __name__ == "__main__":
    main()
