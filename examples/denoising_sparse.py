"""Denoising and sparse autoencoders: Fundamentals of Deep Learning, chapter 6
("Denoising to Force Robust Representations", "Sparsity in Autoencoders").

Two autoencoders on MNIST, each against the same network trained without its twist.

  - Denoising (Vincent et al. 2008, as the book): the input is corrupted by
    *masking noise*, each pixel set to 0 with probability 0.5 (a fresh mask
    for every batch), and the network, 784-256-64-256-784 (ReLU hidden
    layers, linear 64-unit code, sigmoid output), learns to output the
    *clean* digit. Shown: test digits corrupted by one fixed mask, what the
    denoising autoencoder makes of them, what a plain autoencoder of the same
    shape (trained on clean inputs) makes of them, and the clean digit; the
    mean squared error per pixel of each against the clean test digits.
  - Sparse (the KL penalty of Ng's notes): one hidden layer of 256 sigmoid
    units, a ∈ (0, 1), and a sigmoid output. The loss per example is

        (1/784) [ ‖x̂ − x‖² + β Σ_j KL(ρ ‖ ρ̂_j) ],
        KL(ρ ‖ ρ̂) = ρ log(ρ/ρ̂) + (1 − ρ) log((1 − ρ)/(1 − ρ̂)),

    with ρ̂_j unit j's mean activation over the batch, target ρ = 0.05 and
    β = 3. The same network with β = 0 is the control. The histogram of the
    code activations on the test digits shows what the penalty does, and the
    fraction of activations below 0.05 ("near zero") is reported for each.

Both train with Adam (lr 1e-3, batches of 100; 20 on the shipped subset) on the mean squared error per pixel.

Writes denoising.svg, sparsity.svg, sparse_features.svg (the decoder's
weights of 32 code units, as images) and results.json.

    python examples/denoising_sparse.py [--data DIR] [--out DIR] [--quick] [--epochs N]

Data as examples/pca_autoencoder.py: all of MNIST from --data, else (and in
the gallery) the subset shipped in the package.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional

import numpy as np

import tensorgraph as tg
from _common import Example, epochs_main, svg_text
from mnist_cnn import machine
from pca_autoencoder import (Autoencoder, _figure, batched, digits_figure, load_digits, mse,
                             one_per_class, train_autoencoder)

NAME = "denoising_sparse"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 6: a denoising autoencoder (masking noise) "
              "and a sparse autoencoder (KL penalty) on MNIST")
DENOISE_HIDDEN, DENOISE_CODE, MASK_P = (256,), 64, 0.5
SPARSE_UNITS, RHO, BETA = 256, 0.05, 3.0
NEAR_ZERO = 0.05
SEED = 0
EPOCHS, SUBSET_EPOCHS, QUICK_EPOCHS = 5, 4, 2
#: batches of 100 on MNIST; the 1,800 subset digits in batches of 20 (more, smaller steps)
BATCH, SUBSET_BATCH = 100, 20


def masking_noise(p: float, seed: int) -> Any:
    """x -> x with each entry zeroed with probability p (a new mask each call)."""
    rng = np.random.default_rng(seed)

    def corrupt(x: Any) -> Any:
        keep = (rng.random(tuple(x.shape)) >= p).astype(np.float32)
        return x * keep
    return corrupt


class SparseAutoencoder(Autoencoder):
    """784 -> units (sigmoid) -> 784 (sigmoid); keeps the last batch's code
    for the sparsity penalty."""

    def __init__(self, units: int = SPARSE_UNITS, seed: int = SEED, name: str = "sparse") -> None:
        super().__init__(hidden=(), code=units, code_activation="sigmoid", seed=seed, name=name)
        self.code: Optional[tg.Tensor] = None

    def forward(self, x: Any) -> tg.Tensor:
        self.code = self.encoder(x)
        return self.decoder(self.code)


def kl_penalty(model: SparseAutoencoder, rho: float = RHO, beta: float = BETA) -> Any:
    """β Σ_j KL(ρ ‖ ρ̂_j) / 784 on the code of the batch just run (see the docstring)."""
    def penalty(_target: Any) -> tg.Tensor:
        assert model.code is not None
        rho_hat = model.code.mean(dim=0).clip(1e-6, 1 - 1e-6)
        kl = rho * (rho / rho_hat).log() + (1 - rho) * ((1 - rho) / (1 - rho_hat)).log()
        return kl.sum() * (beta / 784)
    return penalty


def histogram_figure(runs: list[tuple[str, np.ndarray]], title: str) -> str:
    fig = _figure(7.0, 4.0)
    ax = fig.subplots()
    bins = np.linspace(0.0, 1.0, 41)
    for (name, a), color in zip(runs, ("#9ca3af", "#4338ca")):
        ax.hist(a.ravel(), bins=bins, color=color, alpha=0.6, label=name,
                weights=np.full(a.size, 1.0 / a.size))
    ax.axvline(NEAR_ZERO, color="black", linewidth=0.8, linestyle=":")
    ax.set_yscale("log")
    ax.set_xlabel("code activation (sigmoid)")
    ax.set_ylabel("fraction of activations")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return svg_text(fig)


def features_figure(W: np.ndarray, title: str, n: int = 32) -> str:
    """The decoder's weight rows of the first n code units as 28x28 images."""
    fig = _figure(8.0, 4.4)
    axes = fig.subplots(4, n // 4)
    for k, ax in enumerate(axes.ravel()):
        w = W[k].reshape(28, 28)
        lim = float(np.abs(w).max()) or 1.0
        ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return svg_text(fig)


def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        epochs: Optional[int] = None) -> dict[str, Any]:
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    split, embedded = load_digits(ex, data)
    epochs = epochs or (QUICK_EPOCHS if quick else SUBSET_EPOCHS if embedded else EPOCHS)
    Xte, yte = split.test
    batch = SUBSET_BATCH if embedded else BATCH
    ex.results.update(embedded_data=embedded, n_train=len(split.train[0]),
                      n_val=len(split.val[0]), n_test=len(Xte), epochs=epochs,
                      optimizer="Adam(lr=0.001)", batch_size=batch, machine=machine())

    # -- denoising ----------------------------------------------------------
    sizes = "-".join(map(str, [784, *DENOISE_HIDDEN, DENOISE_CODE, *DENOISE_HIDDEN[::-1], 784]))
    print(f"\ndenoising autoencoder {sizes}, masking noise p={MASK_P}, {epochs} epochs")
    dae = Autoencoder(DENOISE_HIDDEN, DENOISE_CODE, seed=SEED, name="denoising")
    dae_hist, dae_s = train_autoencoder(dae, split, epochs, ex.quick, batch=batch,
                                        inputs=masking_noise(MASK_P, SEED + 1))
    print(f"plain autoencoder {sizes} (clean inputs), {epochs} epochs")
    plain = Autoencoder(DENOISE_HIDDEN, DENOISE_CODE, seed=SEED, name="plain")
    plain_hist, plain_s = train_autoencoder(plain, split, epochs, ex.quick, batch=batch)
    Xcor = masking_noise(MASK_P, SEED + 2)(Xte)     # one fixed corruption of the test set
    dae_rec, plain_rec = batched(dae, Xcor), batched(plain, Xcor)
    ex.results["denoising"] = {
        "architecture": sizes, "noise": f"masking: each pixel zeroed with probability {MASK_P}",
        "test_mse_corrupted_input_vs_clean": mse(Xcor, Xte),
        "test_mse_denoising_ae_vs_clean": mse(dae_rec, Xte),
        "test_mse_plain_ae_on_corrupted_vs_clean": mse(plain_rec, Xte),
        "test_mse_plain_ae_on_clean_vs_clean": mse(batched(plain, Xte), Xte),
        "test_mse_denoising_ae_on_clean_vs_clean": mse(batched(dae, Xte), Xte),
        "loss_per_epoch": [float(v) for v in dae_hist["loss"]],
        "plain_loss_per_epoch": [float(v) for v in plain_hist["loss"]],
        "train_seconds": round(dae_s, 2), "plain_train_seconds": round(plain_s, 2)}
    d = ex.results["denoising"]
    print(f"test MSE vs the clean digits: corrupted input {d['test_mse_corrupted_input_vs_clean']:.4f}, "
          f"denoising AE {d['test_mse_denoising_ae_vs_clean']:.4f}, plain AE "
          f"{d['test_mse_plain_ae_on_corrupted_vs_clean']:.4f}")

    # -- sparse -------------------------------------------------------------
    acts: dict[str, np.ndarray] = {}
    sparse_results: dict[str, Any] = {}
    models: dict[str, SparseAutoencoder] = {}
    for label, beta in (("without_penalty", 0.0), ("with_kl_penalty", BETA)):
        print(f"\nsparse autoencoder 784-{SPARSE_UNITS}-784 (sigmoid code), β = {beta}, "
              f"ρ = {RHO}, {epochs} epochs")
        model = SparseAutoencoder(seed=SEED, name=label)
        hist, secs = train_autoencoder(model, split, epochs, ex.quick, batch=batch,
                                       extra_loss=kl_penalty(model, RHO, beta) if beta else None)
        a = batched(model.encoder, Xte)
        acts[label], models[label] = a, model
        sparse_results[label] = {
            "beta": beta, "rho": RHO,
            "fraction_below_0.05": float((a < NEAR_ZERO).mean()),
            "mean_activation": float(a.mean()),
            "mean_units_above_0.5_per_digit": float((a > 0.5).sum(axis=1).mean()),
            "test_mse_per_pixel": mse(batched(model, Xte), Xte),
            "loss_per_epoch": [float(v) for v in hist["loss"]], "train_seconds": round(secs, 2)}
        s = sparse_results[label]
        print(f"  near-zero (< {NEAR_ZERO}) activations {s['fraction_below_0.05']:.1%}, mean "
              f"activation {s['mean_activation']:.3f}, test MSE {s['test_mse_per_pixel']:.4f}")
    ex.results["sparse"] = {"architecture": f"784-{SPARSE_UNITS}-784, sigmoid code and output",
                            "penalty": "beta * sum_j KL(rho || rho_hat_j) / 784", **sparse_results}

    idx = one_per_class(yte)
    ex.figure(digits_figure([("corrupted", Xcor[idx]), ("denoising\nAE", dae_rec[idx]),
                             ("plain AE", plain_rec[idx]), ("clean", Xte[idx])],
                            f"Test digits with half their pixels masked (p = {MASK_P})"),
              "denoising.svg",
              f"Masking noise zeroes each pixel with probability {MASK_P}. The denoising "
              f"autoencoder, trained to undo it, rebuilds the digits (test MSE per pixel "
              f"against the clean digits {d['test_mse_denoising_ae_vs_clean']:.4f}); the same "
              f"network trained on clean digits only gets "
              f"{d['test_mse_plain_ae_on_corrupted_vs_clean']:.4f} from the same corrupted "
              f"inputs, and the corrupted input itself is at "
              f"{d['test_mse_corrupted_input_vs_clean']:.4f}.")
    w, s = sparse_results["without_penalty"], sparse_results["with_kl_penalty"]
    ex.figure(histogram_figure([(f"β = 0: {w['fraction_below_0.05']:.0%} below {NEAR_ZERO}",
                                 acts["without_penalty"]),
                                (f"β = {BETA}, ρ = {RHO}: {s['fraction_below_0.05']:.0%} below "
                                 f"{NEAR_ZERO}", acts["with_kl_penalty"])],
                               f"Code activations of {len(Xte)} test digits x {SPARSE_UNITS} "
                               "units"),
              "sparsity.svg",
              "How often each code activation value occurs (log scale), without the sparsity "
              f"penalty (grey) and with the KL penalty pulling each unit's mean activation "
              f"towards ρ = {RHO} (blue). The dotted line marks {NEAR_ZERO}, the reported "
              f"near-zero threshold: {w['fraction_below_0.05']:.1%} of the activations are "
              f"below it without the penalty, {s['fraction_below_0.05']:.1%} with it (mean "
              f"activation {w['mean_activation']:.3f} and {s['mean_activation']:.3f}).")
    W = np.asarray(models["with_kl_penalty"].decoder.layers[0].weight.data)
    ex.figure(features_figure(W, "What 32 code units of the sparse autoencoder draw (decoder "
                                 "weights; red +, blue -)"), "sparse_features.svg",
              "Each code unit's outgoing weights in the sparse autoencoder's decoder, as a 28x28 "
              "image: what the unit adds to the reconstruction when it switches on (the first "
              "32 of the 256 units).")
    return ex.finish()


def main() -> None:
    epochs_main(__doc__, run, EPOCHS, QUICK_EPOCHS)


if __name__ == "__main__":
    main()
