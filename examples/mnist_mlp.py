"""A multilayer network on MNIST: Fundamentals of Deep Learning, chapter 3
("Multilayer Model in TensorFlow").

The book's 784-256-256-10 network: two hidden layers of 256 ReLU neurons,
weights drawn from N(0, 2/n_in) (He initialization, the book's
`stddev=(2/n_in)**0.5`), biases zero, and a softmax output layer,

    h1 = relu(x W1 + b1),  h2 = relu(h1 W2 + b2),  y = softmax(h2 W3 + b3),

trained on the cross-entropy E = -Σ_c t_c log y_c (from the logits, in one
stable op). The data is split as in the book: 55,000 training / 5,000
validation (the first 5,000 training images, as TensorFlow's `input_data`
did) / 10,000 test.

The book trains with plain SGD (learning rate 0.01, batches of 100) for
hundreds of epochs. Here SGD with Nesterov momentum (chapter 4; m = 0.9,
ε = 0.1 decayed ×0.8 per epoch) and a little L2 weight decay (chapter 2;
λ = 1e-4), with batches of 128, gets past 98% test accuracy in 20 epochs.

Writes network.svg (the network as the book draws it), graph.svg (the
recorded graph of one batch's loss, boxed by layer), curves.svg (loss and
accuracy per epoch), model.npz (the trained weights, `tg.save`) and
results.json.

    python examples/mnist_mlp.py [--data DIR] [--out DIR] [--quick] [--epochs N]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Optional

import tensorgraph as tg
from _common import Example, epochs_main, log_epoch

NAME = "mnist_mlp"
REPRODUCES = ("Fundamentals of Deep Learning, ch. 3: the 784-256-256-10 ReLU network on MNIST")
SIZES = [784, 256, 256, 10]
LR, MOMENTUM, WEIGHT_DECAY, DECAY = 0.1, 0.9, 1e-4, 0.8
BATCH, EPOCHS, QUICK_EPOCHS = 128, 20, 2


def run(out: Optional[Path] = None, quick: bool = False, data: Optional[Path] = None,
        epochs: Optional[int] = None) -> dict[str, Any]:
    """Train and draw; returns {"figures": [...], "results": {...}, "reproduces": ...}."""
    ex = Example(NAME, REPRODUCES, args=argparse.Namespace(out=out, quick=quick, data=data))
    epochs = epochs or (QUICK_EPOCHS if quick else EPOCHS)
    mnist = ex.mnist()

    model = tg.nn.FeedForward(SIZES, activation="relu", output="softmax", init="he", seed=0,
                              name="mlp")
    opt = tg.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True,
                       weight_decay=WEIGHT_DECAY)
    schedule = tg.optim.ExponentialLR(opt, gamma=DECAY)   # steps at each epoch's end
    optimizer = (f"SGD(lr={LR}, momentum={MOMENTUM}, nesterov=True, weight_decay="
                 f"{WEIGHT_DECAY}), ExponentialLR(gamma={DECAY})")
    print(f"model: {model}\n{model.num_parameters():,} parameters; optimizer: {optimizer}; "
          f"batch {BATCH}, {epochs} epochs")

    # Training uses the logits: cross_entropy applies the softmax itself (stably).
    t0 = time.perf_counter()
    history = tg.train.fit(model.logits, tg.losses.cross_entropy, opt, mnist.train, epochs,
                           val=mnist.val, batch_size=BATCH, seed=0, progress=not ex.quick,
                           callbacks=[schedule, log_epoch])
    train_seconds = time.perf_counter() - t0
    test = tg.train.evaluate(model.logits, tg.losses.cross_entropy, mnist.test)
    print(f"test accuracy {test['accuracy']:.4f} (test loss {test['loss']:.4f}) after "
          f"{epochs} epochs; training took {train_seconds:.1f} s "
          f"({train_seconds / max(epochs, 1):.1f} s per epoch)")
    tg.save({"model": model.state_dict(), "sizes": SIZES, "epochs": epochs},
            ex.out / "model.npz")

    ex.results.update(test_accuracy=test["accuracy"], test_loss=test["loss"],
                      val_accuracy=history["val_accuracy"][-1], epochs=epochs, batch_size=BATCH,
                      optimizer=optimizer,
                      train_seconds=round(train_seconds, 2),
                      seconds_per_epoch=round(train_seconds / max(epochs, 1), 2),
                      parameters=model.num_parameters(), n_train=len(mnist.train[0]),
                      n_val=len(mnist.val[0]), n_test=len(mnist.test[0]),
                      weights_file="model.npz")

    ex.figure(tg.draw(model, view="network", title="784-256-256-10: two hidden ReLU layers, "
                      "softmax output"), "network.svg",
              "The network as the book draws it (wide layers show their first and last "
              "neurons).")
    Xb, yb = mnist.test[0][:BATCH], mnist.test[1][:BATCH]
    loss = tg.losses.cross_entropy(model.logits(tg.tensor(Xb, name="x")),
                                   tg.tensor(yb, name="labels"))
    ex.figure(tg.draw(loss, view="modules", module=model, title="The recorded graph of one "
                      "batch's loss, boxed by layer"), "graph.svg",
              "Every op the network records for one batch, grouped by the layer that ran it.")
    ex.figure(tg.draw_history(history, title=f"784-256-256-10 on MNIST "
                              f"(test accuracy {test['accuracy']:.2%})"), "curves.svg",
              "Training (solid) and validation (dashed) loss and accuracy per epoch.")
    return ex.finish()


def main() -> None:
    epochs_main(__doc__, run, EPOCHS, QUICK_EPOCHS)


if __name__ == "__main__":
    main()
