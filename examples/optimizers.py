"""SGD, momentum, Nesterov, AdaGrad, RMSProp and Adam compared: Fundamentals of
Deep Learning, chapter 4 ("Beyond Gradient Descent").

Chapter 4 explains why plain gradient descent struggles on error surfaces with
pathological curvature (a long narrow valley: the gradient points across it,
not along it) and the remedies, in the book's notation (ε the learning rate,
g the gradient, δ a small constant):

    momentum   v ← m v − ε g,  θ ← θ + v  (Nesterov: g taken at the look-ahead θ + m v)
    AdaGrad    r ← r + g ⊙ g,  θ ← θ − ε g / (δ + √r)
    RMSProp    r ← ρ r + (1 − ρ) g ⊙ g,  θ ← θ − ε g / (δ + √r)
    Adam       RMSProp's scale plus momentum on g, both bias-corrected

Two experiments, each optimizer from the same start:

1. A two-dimensional error surface with such a valley, Rosenbrock's
   E(x, y) = (1 − x)² + 10 (y − x²)², minimum 0 at (1, 1), starting at
   (−1.5, 2); 300 steps each; the path each optimizer takes is drawn on
   the surface.
2. The chapter-3 network (784-256-256-10 ReLU) on MNIST: the same initial
   weights and the same minibatches (128) for every optimizer, 5 epochs each.

Learning rates (surface / MNIST): 0.01 for the three SGD variants (the book's,
with momentum m = 0.9), AdaGrad 0.5 / 0.01, RMSProp 0.02 / 0.001 with ρ = 0.9,
Adam 0.1 / 0.001 with the usual β1 = 0.9, β2 = 0.999.

Writes surface.svg (all six paths on the surface), surface_panels.svg (one
panel per optimizer), surface_loss.svg (E along each path), surface_graph.svg
(the recorded graph of E), mnist_loss.svg and mnist_val_error.svg
(learning curves of the six) and results.json.

    python examples/optimizers.py [--data DIR] [--out DIR] [--quick] [--epochs N]
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

import tensorgraph as tg
from _common import COLORS, Example, colormap, esc, image, line_chart, parser, svg

NAME = "optimizers"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 4: SGD, momentum, Nesterov, AdaGrad, RMSProp "
              "and Adam on an error surface with a narrow valley and on the MNIST network")
EPOCHS, QUICK_EPOCHS, BATCH, STEPS = 5, 1, 128, 300
START, MINIMUM = (-1.5, 2.0), (1.0, 1.0)
XLIM, YLIM = (-2.0, 2.0), (-1.0, 3.0)

Make = Callable[[list], tg.optim.Optimizer]
# name -> (optimizer for the surface, optimizer for MNIST)
OPTIMIZERS: dict[str, tuple[Make, Make]] = {
    "SGD": (lambda p: tg.optim.SGD(p, lr=0.01),
            lambda p: tg.optim.SGD(p, lr=0.01)),
    "Momentum": (lambda p: tg.optim.SGD(p, lr=0.01, momentum=0.9),
                 lambda p: tg.optim.SGD(p, lr=0.01, momentum=0.9)),
    "Nesterov": (lambda p: tg.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True),
                 lambda p: tg.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True)),
    "AdaGrad": (lambda p: tg.optim.AdaGrad(p, lr=0.5),
                lambda p: tg.optim.AdaGrad(p, lr=0.01)),
    "RMSProp": (lambda p: tg.optim.RMSProp(p, lr=0.02, alpha=0.9),
                lambda p: tg.optim.RMSProp(p, lr=0.001, alpha=0.9)),
    "Adam": (lambda p: tg.optim.Adam(p, lr=0.1),
             lambda p: tg.optim.Adam(p, lr=0.001)),
}


def error_surface(x, y):
    """Rosenbrock's valley, E(x, y) = (1 − x)² + 10 (y − x²)²: Tensors in,
    a Tensor out (numpy arrays work too, for the picture)."""
    return (1.0 - x) ** 2 + 10.0 * (y - x * x) ** 2


# ---------------------------------------------------------------------------
# 1. The two-dimensional surface

def descend(make: Make, steps: int) -> np.ndarray:
    """The path (steps + 1, 2) of an optimizer on the surface from START."""
    theta = tg.nn.Parameter(np.array(START, dtype=np.float64), name="theta")
    opt = make([theta])
    path = [theta.data.copy()]
    for _ in range(steps):
        opt.zero_grad()
        error_surface(theta[0], theta[1]).backward()
        opt.step()
        path.append(theta.data.copy())
    return np.array(path)


def contour_segments(Z: np.ndarray, xs: np.ndarray, ys: np.ndarray, level: float) -> np.ndarray:
    """Marching squares: the line segments (n, 2, 2) where the grid Z (rows
    along ys, columns along xs) crosses `level`, linearly interpolated."""
    def crossings(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        hit = (a >= level) != (b >= level)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(hit, (level - a) / (b - a), 0.0)
        return hit, t

    X, Y = np.meshgrid(xs, ys)
    h_hit, h_t = crossings(Z[:, :-1], Z[:, 1:])            # edges along x
    v_hit, v_t = crossings(Z[:-1, :], Z[1:, :])            # edges along y
    hx = X[:, :-1] + h_t * (X[:, 1:] - X[:, :-1])
    vy = Y[:-1, :] + v_t * (Y[1:, :] - Y[:-1, :])
    hp = np.stack([hx, Y[:, :-1]], -1)
    vp = np.stack([X[:-1, :], vy], -1)
    # A cell's edges in order bottom, right, top, left: 0, 2 or 4 crossings.
    hits = np.stack([h_hit[:-1], v_hit[:, 1:], h_hit[1:], v_hit[:, :-1]])
    pts = np.stack([hp[:-1], vp[:, 1:], hp[1:], vp[:, :-1]])
    segs = []
    for pair in ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)):
        others = [k for k in range(4) if k not in pair]
        sel = hits[pair[0]] & hits[pair[1]] & ~hits[others[0]] & ~hits[others[1]]
        segs.append(np.stack([pts[pair[0]][sel], pts[pair[1]][sel]], 1))
    four = hits.all(axis=0)                                # a saddle cell: pair them up
    segs += [np.stack([pts[0][four], pts[1][four]], 1), np.stack([pts[2][four], pts[3][four]], 1)]
    return np.concatenate(segs)


class Plot:
    """Maps the surface's (x, y) into a box of the SVG."""

    def __init__(self, x: float, y: float, w: float, h: float) -> None:
        self.x, self.y, self.w, self.h = x, y, w, h

    def __call__(self, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = self.x + (np.asarray(px) - XLIM[0]) / (XLIM[1] - XLIM[0]) * self.w
        v = self.y + (1 - (np.asarray(py) - YLIM[0]) / (YLIM[1] - YLIM[0])) * self.h
        return u, v


def surface_defs(n: int = 160) -> list[str]:
    """The surface as reusable SVG pieces in a unit box: a heat map of log E
    ("#surface") and contour lines at E = 10^k ("#contours")."""
    xs, ys = np.linspace(*XLIM, n), np.linspace(*YLIM, n)
    X, Y = np.meshgrid(xs, ys)
    Z = error_surface(X, Y)
    logZ = np.log10(Z + 1e-2)
    rgb = colormap(logZ[::-1], logZ.min(), logZ.max(), "light")  # image rows go top-down
    unit = Plot(0, 0, 1, 1)
    paths = []
    for level in (0.1, 1.0, 10.0, 100.0):
        seg = contour_segments(Z, xs, ys, level)
        u, v = unit(seg[..., 0], seg[..., 1])
        d = " ".join(f"M{a:.4f} {b:.4f}L{c:.4f} {e:.4f}"
                     for a, b, c, e in zip(u[:, 0], v[:, 0], u[:, 1], v[:, 1]))
        paths.append(f'<path d="{d}" fill="none" stroke="black" stroke-opacity="0.35" '
                     f'stroke-width="0.003"/>')
    return ["<defs>", f'<g id="surface">{image(rgb, 0, 0, 1, 1)}</g>',
            f'<g id="contours">{"".join(paths)}</g>', "</defs>"]


def surface_panel(box: Plot, paths: dict[str, np.ndarray], colors: dict[str, str],
                  clip_id: str, heading: Sequence[str] = ()) -> list[str]:
    """The surface in `box` with each path drawn on it, start and minimum marked."""
    t = f"translate({box.x:g},{box.y:g}) scale({box.w:g},{box.h:g})"
    out = [f'<clipPath id="{clip_id}"><rect x="{box.x:g}" y="{box.y:g}" width="{box.w:g}" '
           f'height="{box.h:g}"/></clipPath>',
           f'<use href="#surface" transform="{t}"/><use href="#contours" transform="{t}"/>',
           f'<g clip-path="url(#{clip_id})">']
    for name, path in paths.items():
        u, v = box(path[:, 0], path[:, 1])
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(u, v))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colors[name]}" '
                   f'stroke-width="2" stroke-linejoin="round"/>')
        out.append(f'<circle cx="{u[-1]:.1f}" cy="{v[-1]:.1f}" r="3.5" fill="{colors[name]}" '
                   f'stroke="white"/>')
    out.append("</g>")
    (su,), (sv,) = box([START[0]], [START[1]])
    (mu,), (mv,) = box([MINIMUM[0]], [MINIMUM[1]])
    out.append(f'<circle cx="{su:.1f}" cy="{sv:.1f}" r="5" fill="white" stroke="black"/>')
    out.append(f'<path d="M{mu - 6:.1f} {mv:.1f}h12M{mu:.1f} {mv - 6:.1f}v12" stroke="white" '
               f'stroke-width="2.5"/>')
    out.append(f'<rect x="{box.x:g}" y="{box.y:g}" width="{box.w:g}" height="{box.h:g}" '
               f'fill="none" stroke="#666"/>')
    for i, line in enumerate(reversed(heading)):
        out.append(f'<text x="{box.x + box.w / 2:g}" y="{box.y - 6 - 15 * i:g}" '
                   f'text-anchor="middle" font-size="13">{esc(line)}</text>')
    return out


def axes_labels(box: Plot) -> list[str]:
    out = []
    for x in np.arange(XLIM[0], XLIM[1] + 1e-9, 1.0):
        (u,), _ = box([x], [YLIM[0]])
        out.append(f'<text x="{u:.1f}" y="{box.y + box.h + 15:g}" text-anchor="middle">'
                   f'{x:g}</text>')
    for y in np.arange(YLIM[0], YLIM[1] + 1e-9, 1.0):
        _, (v,) = box([XLIM[0]], [y])
        out.append(f'<text x="{box.x - 6:g}" y="{v + 4:.1f}" text-anchor="end">{y:g}</text>')
    out.append(f'<text x="{box.x + box.w / 2:g}" y="{box.y + box.h + 32:g}" '
               f'text-anchor="middle">x</text>')
    out.append(f'<text x="{box.x - 30:g}" y="{box.y + box.h / 2:g}">y</text>')
    return out


def surface_figures(paths: dict[str, np.ndarray], summary: dict[str, tuple[str, str]]
                    ) -> tuple[str, str]:
    colors = {name: COLORS[i] for i, name in enumerate(paths)}
    note = ("E(x, y) = (1 − x)² + 10 (y − x²)²; shade: log E (darker is lower), lines: "
            "E = 0.1, 1, 10, 100; ○ start, + minimum")
    # All six on one surface, with a legend.
    box = Plot(60, 40, 520, 520)
    body = surface_defs() + surface_panel(box, paths, colors, "clip-all") + axes_labels(box)
    for i, name in enumerate(paths):
        y = 60 + 40 * i
        body.append(f'<line x1="600" x2="630" y1="{y}" y2="{y}" stroke="{colors[name]}" '
                    f'stroke-width="3"/><text x="638" y="{y + 4}">{esc(name)}: '
                    f'{esc(summary[name][0])}</text><text x="638" y="{y + 20}" fill="#555">'
                    f'{esc(summary[name][1])}</text>')
    body.append(f'<text x="60" y="608">{esc(note)}</text>')
    combined = svg(960, 620, body, f"Six optimizers, {len(next(iter(paths.values()))) - 1} "
                   "steps each, on a valley with pathological curvature")
    # One panel per optimizer.
    body = surface_defs()
    w, h = 280, 280
    for i, (name, path) in enumerate(paths.items()):
        box = Plot(30 + (i % 3) * (w + 30), 75 + (i // 3) * (h + 50), w, h)
        body += surface_panel(box, {name: path}, colors, f"clip-{i}",
                              (f"{name}: {summary[name][0]}", summary[name][1]))
    body.append(f'<text x="30" y="{75 + 2 * (h + 50) - 20}">{esc(note)}</text>')
    panels = svg(30 + 3 * (w + 30), 75 + 2 * (h + 50), body, "Each optimizer's path")
    return combined, panels


# ---------------------------------------------------------------------------
# 2. The MNIST network

class BatchLosses(tg.train.Callback):
    """Keeps every minibatch's training loss."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_batch_end(self, batch: int, logs: dict[str, float]) -> None:
        self.losses.append(logs["loss"])


def smooth(values: list[float], per_epoch: int, points_per_epoch: int = 10
           ) -> tuple[list[float], list[float]]:
    """Means over windows of ~1/points_per_epoch epoch, at the window's end (in epochs)."""
    k = max(1, per_epoch // points_per_epoch)
    n = len(values) // k
    means = np.asarray(values[: n * k]).reshape(n, k).mean(axis=1)
    return [(i + 1) * k / per_epoch for i in range(n)], means.tolist()


def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        epochs: Optional[int] = None) -> dict[str, Any]:
    """Both experiments; returns {"figures": [...], "results": {...}, "reproduces": ...}."""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)

    # 1. The error surface.
    steps = 100 if quick else STEPS
    paths, summary = {}, {}
    print(f"\nthe error surface: {steps} steps from {START}")
    for name, (make, _) in OPTIMIZERS.items():
        path = descend(make, steps)
        E = error_surface(path[:, 0], path[:, 1])
        near = np.flatnonzero(np.hypot(path[:, 0] - 1, path[:, 1] - 1) < 0.05)
        reached = int(near[0]) if len(near) else None
        paths[name] = path
        summary[name] = (f"E = {E[-1]:.2g} after {steps} steps",
                         f"within 0.05 of the minimum at step {reached}"
                         if reached is not None else "")
        ex.results.setdefault("surface", {})[name] = {
            "final_E": float(E[-1]), "final_xy": path[-1].tolist(), "steps_to_0.05": reached}
        print(f"  {name:9s} ends at ({path[-1, 0]:+.3f}, {path[-1, 1]:+.3f}), "
              + ", ".join(filter(None, summary[name])))
    combined, panels = surface_figures(paths, summary)
    ex.figure(combined, "surface.svg", "The paths of the six optimizers on Rosenbrock's valley.")
    ex.figure(panels, "surface_panels.svg", "The same paths, one panel per optimizer.")
    ex.figure(line_chart({n: (np.arange(len(pth)), np.maximum(error_surface(pth[:, 0], pth[:, 1]),
                                                               1e-12))
                          for n, pth in paths.items()},
                         title="E along each path", xlabel="step", ylabel="E(x, y)", log_y=True),
              "surface_loss.svg", "The error at each step (log scale).")
    x = tg.tensor(START[0], requires_grad=True, name="x")
    y = tg.tensor(START[1], requires_grad=True, name="y")
    E = error_surface(x, y)
    E.backward(retain_graph=True)   # keep the edge gradients for the drawing
    ex.figure(tg.draw(E, view="backward", title="E(x, y) = (1 − x)² + 10 (y − x²)² at the "
                      "start, and the gradients backward() sends along each edge"),
              "surface_graph.svg", "The error surface is a small graph; backward() gives "
              "∂E/∂x and ∂E/∂y, the direction every optimizer starts from.")

    # 2. The MNIST network.
    mnist_data = ex.mnist(quick_sizes=(1000, 250, 250))
    print(f"\nthe 784-256-256-10 network, {epochs} epoch(s) per optimizer, batch {BATCH}")
    loss_curves, val_curves, mnist = {}, {}, {}
    for name, (_, make) in OPTIMIZERS.items():
        model = tg.nn.FeedForward([784, 256, 256, 10], output="softmax", seed=0)  # same start
        batches = BatchLosses()
        t0 = time.perf_counter()
        history = tg.train.fit(model.logits, tg.losses.cross_entropy, make(model.parameters()),
                               mnist_data.train, epochs, val=mnist_data.val, batch_size=BATCH,
                               seed=0, progress=False, callbacks=[batches])
        seconds = time.perf_counter() - t0
        test = tg.train.evaluate(model.logits, None, mnist_data.test)["accuracy"]
        per_epoch = math.ceil(len(mnist_data.train[0]) / BATCH)
        loss_curves[f"{name} ({test:.2%})"] = smooth(batches.losses, per_epoch)
        val_curves[name] = ([e + 1 for e in history.epochs],
                            [max(1 - a, 1e-4) for a in history["val_accuracy"]])
        mnist[name] = {"train_loss": history["loss"][-1],
                       "val_accuracy": history["val_accuracy"][-1], "test_accuracy": test,
                       "seconds": round(seconds, 2)}
        print(f"  {name:9s} loss {history['loss'][-1]:.4f}  val_accuracy "
              f"{history['val_accuracy'][-1]:.4f}  test accuracy {test:.4f}  ({seconds:.1f} s)")
    ex.results["mnist"] = mnist
    ex.results.update(epochs=epochs, batch_size=BATCH, surface_steps=steps)
    best = max(mnist, key=lambda n: mnist[n]["test_accuracy"])
    print(f"best on MNIST after {epochs} epoch(s): {best}, test accuracy "
          f"{mnist[best]['test_accuracy']:.4f}")
    ex.figure(line_chart(loss_curves, title=f"784-256-256-10 on MNIST: training loss "
                         f"(legend: test accuracy after {epochs} epochs)", xlabel="epoch",
                         ylabel="training loss (per 1/10 epoch)", log_y=True, width=760),
              "mnist_loss.svg", "Training loss of the MNIST network under each optimizer, "
              "from the same initial weights and minibatches.")
    ex.figure(line_chart(val_curves, title="784-256-256-10 on MNIST: validation error",
                         xlabel="epoch", ylabel="validation error (1 − accuracy)", log_y=True),
              "mnist_val_error.svg", f"The fraction of the {len(mnist_data.val[0]):,} "
              "validation images misclassified after each epoch.")
    return ex.finish()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--epochs", type=int, default=None, help=f"MNIST epochs per optimizer "
                   f"(default {EPOCHS}, {QUICK_EPOCHS} with --quick)")
    args = p.parse_args()
    run(args.out, args.quick, args.data, args.epochs)


if __name__ == "__main__":
    main()
