"""Overfitting, and what L2 regularization, dropout and early stopping do to it:
Fundamentals of Deep Learning, chapter 2 ("Test Sets, Validation Sets, and
Overfitting", "Preventing Overfitting in Deep Neural Networks").

A network much larger than its problem needs, a 2-64-64-2 ReLU network with
4,482 parameters, learns a noisy XOR: 200 training points in the square
[-1, 1]^2 whose class is the XOR of the signs of their coordinates, with 10%
of the labels flipped. Trained long enough on the cross-entropy it learns the
noise too: the training error goes towards zero while the error on 200
held-out validation points, after a minimum early on, climbs and keeps
climbing: the picture the book uses to motivate a validation set. The same
network is then trained three more times, from the same initial weights, with
each cure the book describes:

    L2       E + 1/2 lambda sum w^2 (`tg.losses.l2_penalty` on the weights,
             lambda = 0.003): large weights cost, so the function stays smooth;
    dropout  each hidden neuron is dropped with probability p = 0.5 during
             training (`tg.nn.Dropout`), so that none can rely on another;
    early    training stops once the validation error has not improved for
    stopping 50 epochs, and the weights of the best epoch are restored
             (`tg.train.EarlyStopping`).

The optimizer is Adam (chapter 4) only to get there in fewer epochs; gradient
descent with momentum overfits too, more slowly and less smoothly. The validation curves are
compared on the cross-entropy alone (for L2 the training loss also holds the
penalty), and the 200 test points are used once, at the end.

Writes overfitting_validation.svg (the four validation curves),
overfitting_boundaries.svg (what each network learned), learning curves
overfitting_curves_<plain|l2|dropout|early_stopping>.svg from tg.draw_history,
and results.json.

    python examples/overfitting.py [--out DIR] [--quick]
"""
from __future__ import annotations

import os

# Small matrices: BLAS threads only add overhead (and thrash on a busy 2-core
# machine). Effective only if numpy is not imported yet, i.e. when run as a script.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, NamedTuple, Optional  # noqa: E402

import numpy as np  # noqa: E402

import tensorgraph as tg  # noqa: E402
from _common import Example, parser, svg_text  # noqa: E402

NAME = "overfitting"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 2: overfitting (training vs validation "
              "error) and what L2 regularization, dropout and early stopping do to it")
N_TRAIN, N_VAL, N_TEST, FLIP = 200, 200, 200, 0.10
HIDDEN, LR, LAMBDA, P_DROP, PATIENCE = 64, 0.003, 0.003, 0.5, 50
EPOCHS, QUICK_EPOCHS = 1500, 300
CONFIGS = (("plain", "#d62728"), ("L2", "#1f77b4"), ("dropout", "#2ca02c"),
           ("early stopping", "#9467bd"))



def noisy_xor(n: int, flip: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n points uniform in [-1, 1]^2, class = XOR of the signs of the
    coordinates, a fraction `flip` of the labels flipped. Returns X (n, 2)
    float32, labels (n,) int64 and which labels were flipped (n,) bool."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 2)).astype(np.float32)
    clean = ((X[:, 0] > 0) != (X[:, 1] > 0)).astype(np.int64)
    flipped = rng.random(n) < flip
    return X, np.where(flipped, 1 - clean, clean), flipped


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy from logits, in numpy: a metric for
    `tg.train.fit`, so that every run reports the data error without penalties."""
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def make_net(dropout: float = 0.0) -> tg.nn.Sequential:
    """2-64-64-2 ReLU; the same seeds give every configuration the same initial weights."""
    layers: list[tg.nn.Module] = []
    sizes = [2, HIDDEN, HIDDEN, 2]
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = k == len(sizes) - 2
        layers.append(tg.nn.Layer(n_in, n_out, activation=None if last else "relu", seed=k))
        if dropout and not last:
            layers.append(tg.nn.Dropout(dropout, seed=100 + k))
    return tg.nn.Sequential(*layers, name="net")


class Trained(NamedTuple):
    net: tg.nn.Sequential
    history: tg.train.History
    seconds: float


def train(config: str, train_set: Any, val_set: Any, epochs: int, patience: int) -> Trained:
    net = make_net(P_DROP if config == "dropout" else 0.0)
    weights = [m.weight for m in net.layers if isinstance(m, tg.nn.Layer)]

    def loss(logits: tg.Tensor, labels: tg.Tensor) -> tg.Tensor:
        E = tg.losses.cross_entropy(logits, labels)
        if config == "L2":
            E = E + tg.losses.l2_penalty(weights, LAMBDA)   # biases are not penalized
        return E

    stop = (tg.train.EarlyStopping("val_loss", patience=patience, restore_best_weights=True)
            if config == "early stopping" else None)
    opt = tg.optim.Adam(net.parameters(), lr=LR)
    t0 = time.perf_counter()
    history = tg.train.fit(net, loss, opt, train_set, epochs, val=val_set,
                           metrics=["accuracy", cross_entropy], batch_size=len(train_set[0]),
                           seed=0, early_stopping=stop, progress=False)
    return Trained(net, history, time.perf_counter() - t0)


def validation_figure(runs: dict[str, Trained], epochs: int) -> str:
    from matplotlib.figure import Figure
    fig = Figure(figsize=(11, 4.3), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    plain = runs["plain"].history
    ax1.plot(plain.epochs, plain["cross_entropy"], color="#d62728", lw=1, ls=":",
             label="plain, training error")
    for config, color in CONFIGS:
        h = runs[config].history
        ls = "--" if config == "early stopping" else "-"
        ax1.plot(h.epochs, h["val_cross_entropy"], color=color, lw=1.8, ls=ls,
                 label=f"{config}, validation")
        ax2.plot(h.epochs, h["val_accuracy"], color=color, lw=1.4, ls=ls, label=config)
        if h.best_epoch is not None:
            for ax, key in ((ax1, "val_cross_entropy"), (ax2, "val_accuracy")):
                ax.plot(h.best_epoch, h[key][h.best_epoch], "*", color=color, mec="black",
                        ms=13, zorder=5)
            ax1.annotate(f"stopped at epoch {h.epochs[-1] + 1},\nbest weights "
                         f"(epoch {h.best_epoch + 1}) restored",
                         (h.best_epoch, h["val_cross_entropy"][h.best_epoch]),
                         xytext=(30, 45), textcoords="offset points", fontsize=8.5,
                         color=color, arrowprops=dict(arrowstyle="->", color=color))
    ax1.set(xlabel="epoch", ylabel="cross-entropy (data error only)", xlim=(0, epochs),
            title="Validation error per epoch")
    ax1.set_ylim(0, min(2.0, max(max(r.history["val_cross_entropy"]) for r in runs.values())
                        * 1.05))
    ax2.set(xlabel="epoch", ylabel="accuracy", xlim=(0, epochs), ylim=(0.5, 1.0),
            title="Validation accuracy per epoch")
    ax2.axhline(1 - FLIP, color="gray", lw=0.8, ls=":")
    ax2.annotate(f"best possible: {1 - FLIP:.0%} (labels flipped by noise)", (epochs, 1 - FLIP),
                 xytext=(-4, 4), textcoords="offset points", ha="right", fontsize=8.5,
                 color="gray")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8.5, loc="upper left" if ax is ax1 else "lower right")
    fig.suptitle(f"Overfitting a 2-{HIDDEN}-{HIDDEN}-2 network to {N_TRAIN} noisy XOR points, "
                 "and three cures")
    return svg_text(fig)


def boundaries_figure(runs: dict[str, Trained], X: np.ndarray, labels: np.ndarray,
                      flipped: np.ndarray, test_acc: dict[str, float]) -> str:
    from matplotlib.figure import Figure
    g = np.linspace(-1.0, 1.0, 121, dtype=np.float32)
    G1, G2 = np.meshgrid(g, g)
    grid = np.stack([G1.ravel(), G2.ravel()], axis=1)
    fig = Figure(figsize=(13, 3.9), layout="constrained")
    axes = fig.subplots(1, 4, sharey=True)
    for ax, (config, _) in zip(axes, CONFIGS):
        net = runs[config].net
        net.eval()
        with tg.no_grad():
            p1 = tg.softmax(net(tg.tensor(grid)), axis=-1).numpy()[:, 1].reshape(G1.shape)
        im = ax.imshow(p1, origin="lower", extent=(-1, 1, -1, 1), cmap="RdBu_r", vmin=0,
                       vmax=1, alpha=0.75, interpolation="bilinear")
        ax.contour(G1, G2, p1, levels=[0.5], colors="black", linewidths=1.2)
        for cls, color in ((0, "#2166ac"), (1, "#b2182b")):
            sel = labels == cls
            ax.scatter(X[sel & ~flipped, 0], X[sel & ~flipped, 1], s=9, c=color,
                       edgecolors="white", linewidths=0.4)
            ax.scatter(X[sel & flipped, 0], X[sel & flipped, 1], s=34, c=color, marker="X",
                       edgecolors="black", linewidths=0.5)
        ax.set_title(f"{config}: test accuracy {test_acc[config]:.1%}", fontsize=11)
        ax.set_xlabel("x\u2081")
        ax.set_aspect("equal")
    axes[0].set_ylabel("x\u2082")
    fig.colorbar(im, ax=list(axes), shrink=0.85, label="P(class 1)")
    fig.suptitle("What each network learned: P(class 1) and its 0.5 boundary over the training "
                 "points (crosses: labels flipped by noise)")
    return svg_text(fig)


def run(out: Path, quick: bool = False, data: Optional[Path] = None) -> dict:
    """Train the four configurations, print, write the figures and
    results.json into `out`; returns {"figures": [{"file", "caption"}...],
    "results": {...}}. `data` is unused (the points are generated); `quick`
    trains for fewer epochs (the network has then only begun to overfit)."""
    ex = Example(NAME, REPRODUCES, doc=__doc__,
                 args=argparse.Namespace(out=out, quick=quick, data=data))
    epochs = QUICK_EPOCHS if quick else EPOCHS
    patience = PATIENCE if not quick else 30
    X, labels, flipped = noisy_xor(N_TRAIN + N_VAL + N_TEST, FLIP)
    # Split the flip flags along with the labels, to mark them in the figure.
    (Xtr, Ytr), (Xva, Yva), (Xte, Yte) = tg.data.split(X, np.stack([labels, flipped], axis=1),
                                                       val=N_VAL, test=N_TEST, seed=0)
    train_set, val_set, test_set = (Xtr, Ytr[:, 0]), (Xva, Yva[:, 0]), (Xte, Yte[:, 0])
    ex.data_source = (f"generated: noisy XOR, {N_TRAIN} train / {N_VAL} validation / "
                      f"{N_TEST} test points, {FLIP:.0%} of labels flipped")
    print(f"data: {ex.data_source}")
    print(f"network: 2-{HIDDEN}-{HIDDEN}-2 ReLU "
          f"({sum(p.size for p in make_net().parameters())} parameters), Adam lr {LR}, "
          f"full batch, up to {epochs} epochs\n")

    runs: dict[str, Trained] = {}
    test_acc: dict[str, float] = {}
    print(f"{'':15s} {'epochs':>6s} {'best val CE':>12s} {'final val CE':>13s} "
          f"{'final train CE':>15s} {'test acc':>9s} {'test CE':>8s} {'seconds':>8s}")
    for config, _ in CONFIGS:
        r = runs[config] = train(config, train_set, val_set, epochs, patience)
        h = r.history
        best = int(np.argmin(h["val_cross_entropy"]))
        # The model as it ends: for early stopping, the restored best weights.
        test = tg.train.evaluate(r.net, None, test_set, metrics=["accuracy", cross_entropy])
        test_acc[config] = test["accuracy"]
        print(f"{config:15s} {len(h):6d} {h['val_cross_entropy'][best]:8.3f} @{best + 1:<4d}"
              f"{h['val_cross_entropy'][-1]:13.3f} {h['cross_entropy'][-1]:15.3f} "
              f"{test['accuracy']:9.3f} {test['cross_entropy']:8.3f} {r.seconds:8.2f}")
        ex.results[config.replace(" ", "_")] = {
            "epochs": len(h), "best_val_cross_entropy": h["val_cross_entropy"][best],
            "best_epoch": best + 1, "final_val_cross_entropy": h["val_cross_entropy"][-1],
            "final_train_cross_entropy": h["cross_entropy"][-1],
            "final_train_accuracy": h["accuracy"][-1], "final_val_accuracy": h["val_accuracy"][-1],
            "test_accuracy": test["accuracy"], "test_cross_entropy": test["cross_entropy"],
            "restored_epoch": None if h.best_epoch is None else h.best_epoch + 1,
            "seconds": round(r.seconds, 2)}
    ex.results.update(epochs=epochs, lr=LR, l2_lambda=LAMBDA, dropout_p=P_DROP,
                      patience=patience, n_train=N_TRAIN, n_val=N_VAL, n_test=N_TEST,
                      label_noise=FLIP)

    res = ex.results
    pl, l2, do, es = (res[k] for k in ("plain", "L2", "dropout", "early_stopping"))
    ex.figure(validation_figure(runs, epochs), "overfitting_validation.svg",
              f"Left: the cross-entropy on the {N_VAL} validation points per epoch. Unregularized "
              f"(red), the network reaches its best validation error at epoch "
              f"{pl['best_epoch']} ({pl['best_val_cross_entropy']:.3f}) and then overfits: its "
              f"training error (dotted) falls to {pl['final_train_cross_entropy']:.3f} while the "
              f"validation error climbs to {pl['final_val_cross_entropy']:.3f}. With L2 "
              f"regularization (\u03bb = {LAMBDA}) the validation error stays at "
              f"{l2['final_val_cross_entropy']:.3f}, with dropout (p = {P_DROP}) at "
              f"{do['final_val_cross_entropy']:.3f}; early stopping (patience {patience}) "
              f"ends training at epoch {es['epochs']} and restores the weights of epoch "
              f"{es['restored_epoch']} (star). Right: validation accuracy; no model can beat "
              f"{1 - FLIP:.0%}, the share of labels not flipped by noise.")
    ex.figure(boundaries_figure(runs, Xtr, Ytr[:, 0], Ytr[:, 1].astype(bool), test_acc),
              "overfitting_boundaries.svg",
              f"What each network learned from the {N_TRAIN} training points (crosses: the "
              f"labels flipped by noise). Unregularized, the network carves out islands "
              f"around the flipped points and scores {pl['test_accuracy']:.1%} on the test "
              f"set; L2 ({l2['test_accuracy']:.1%}), dropout ({do['test_accuracy']:.1%}) and "
              f"early stopping ({es['test_accuracy']:.1%}) keep the four XOR quadrants "
              f"simple.")
    for config, _ in CONFIGS:
        h = runs[config].history
        slug = config.lower().replace(" ", "_")
        ex.figure(tg.draw_history(h, title=f"Learning curves: {config}",
                                  metrics=["cross_entropy", "accuracy"]),
                  f"overfitting_curves_{slug}.svg",
                  f"Learning curves of the {config} network drawn by tg.draw_history: "
                  f"training (solid) and validation (dashed) cross-entropy and accuracy per "
                  f"epoch" + ("; the gap between them is overfitting." if config == "plain"
                              else "."))
    return ex.finish()


def main() -> None:
    args = parser(__doc__).parse_args()
    run(args.out or Path("out") / NAME, args.quick, args.data)


if __name__ == "__main__":
    main()
