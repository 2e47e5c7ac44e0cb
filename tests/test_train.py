"""tg.train: fit, evaluate, early stopping, callbacks, Ctrl-C, determinism,
and the chapter-2 acceptance test (the delta rule finds the fast-food prices)."""
import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph import data, losses, nn, optim, train


class Scale:
    """y = w·x with one weight per input feature, no bias: the book's linear
    neuron (and small enough to follow by hand). Records its calls."""

    def __init__(self, w, dtype=np.float64):
        self.w = tg.tensor(np.array(w, dtype=dtype), requires_grad=True)
        self.training = True
        self.calls = []

    def parameters(self):
        return [self.w]

    def train(self):
        self.training = True

    def eval(self):
        self.training = False

    def __call__(self, x):
        self.calls.append((self.training, tg.is_grad_enabled(), len(x)))
        return x @ self.w


def mean_sq(y, t):
    d = y - t
    return (d * d).mean()


# -- chapter 2 acceptance ------------------------------------------------------------

def test_delta_rule_gradient_is_the_books_formula():
    """For E = ½ Σ (t − y)² and y = x·w, backward gives ∂E/∂w_k = −Σ x_k (t − y),
    i.e. a gradient step is the delta rule Δw_k = ε Σ x_k (t − y)."""
    X, t = data.fast_food(8, seed=1, dtype=np.float64)
    w = np.array([1.0, 2.0, 3.0])
    model = Scale(w)
    losses.squared_error(model(tg.tensor(X)), tg.tensor(t)).backward()
    np.testing.assert_allclose(model.w.grad.data, -(X * (t - X @ w)[:, None]).sum(axis=0),
                               rtol=1e-12)


def test_delta_rule_recovers_the_fast_food_prices():
    prices = (3.2, 1.7, 1.1)
    X, t = data.fast_food(100, seed=0, prices=prices)
    model = Scale(np.zeros(3), dtype=np.float32)
    hist = train.fit(model, losses.squared_error, optim.SGD(model.parameters(), lr=0.005),
                     (X, t), epochs=60, batch_size=10, seed=0, metrics=(), progress=False)
    np.testing.assert_allclose(model.w.data, prices, atol=1e-3)
    assert hist["loss"][-1] < 1e-6 < hist["loss"][0]


# -- history, modes, no graph in evaluation --------------------------------------------

def test_fit_history_and_modes():
    X, t = np.ones((10, 1)), np.ones(10)
    model = Scale([0.0])
    model.eval()  # restored afterwards
    hist = train.fit(model, mean_sq, optim.SGD(model.parameters(), lr=0.1), (X, t), epochs=3,
                     val=(X[:4], 0.5 * t[:4]), metrics=(), batch_size=4, progress=False)
    assert hist.epochs == [0, 1, 2] and len(hist) == 3
    assert sorted(hist.history) == ["loss", "lr", "val_loss"]
    assert hist["lr"] == [0.1, 0.1, 0.1] and not hist.interrupted
    # Training batches (4, 4, 2) in train mode with recording on; validation in eval mode without.
    per_epoch = [(True, True, 4), (True, True, 4), (True, True, 2), (False, False, 4)]
    assert model.calls == per_epoch * 3
    assert model.training is False


def test_fit_losses_by_hand():
    """One full batch per epoch on (w − 1)²: w = 0.2, 0.36, 0.488; the epoch's
    training loss is measured before each update, the validation loss after."""
    X, t = np.ones((5, 1)), np.ones(5)
    model = Scale([0.0])
    hist = train.fit(model, mean_sq, optim.SGD(model.parameters(), lr=0.1), (X, t), epochs=3,
                     val=(X, 0.5 * t), metrics=(), batch_size=5, progress=False)
    ws = [0.0, 0.2, 0.36, 0.488]
    np.testing.assert_allclose(hist["loss"], [(w - 1) ** 2 for w in ws[:3]], rtol=1e-12)
    np.testing.assert_allclose(hist["val_loss"], [(w - 0.5) ** 2 for w in ws[1:]], rtol=1e-12)


def test_same_seed_same_run_bit_for_bit():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2)).astype(np.float32)
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)

    def run(seed):
        net = nn.Sequential(nn.Layer(2, 16, activation="relu", seed=1), nn.Dropout(0.2, seed=2),
                            nn.Layer(16, 2, seed=3))
        opt = optim.Adam(net.parameters(), lr=0.01)
        hist = train.fit(net, losses.cross_entropy, opt, (X[:48], y[:48]), epochs=4,
                         val=(X[48:], y[48:]), batch_size=8, seed=seed, progress=False)
        return hist, net.state_dict()

    (h1, w1), (h2, w2), (h3, _) = run(0), run(0), run(1)
    assert h1.history == h2.history  # float equality: bit for bit
    for k in w1:
        np.testing.assert_array_equal(w1[k], w2[k])
    assert h1.history["loss"] != h3.history["loss"]  # the seed does matter


def test_feedforward_learns_xor_with_fit():
    X, y = data.xor()
    net = nn.FeedForward([2, 8, 2], activation="tanh", seed=0)
    hist = train.fit(net, losses.cross_entropy, optim.Adam(net.parameters(), lr=0.05),
                     (X, y), epochs=150, batch_size=4, seed=0, progress=False)
    assert hist["accuracy"][-1] == 1.0
    assert train.evaluate(net, losses.cross_entropy, (X, y))["accuracy"] == 1.0


# -- evaluate and metrics -------------------------------------------------------------

def test_evaluate_by_hand_and_batch_size_independent():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
    y = np.array([0, 1, 1, 0, 0])
    model = Scale(np.array([[1.0, 0.0], [0.0, 2.0]]))  # logits (x0, 2 x1)
    # predicted classes: 0, 1, 1, 0, 1 -> 4 of 5 right
    got = train.evaluate(model, mean_sq, (X, data.one_hot(y, 2, np.float64)), batch_size=2)
    out = X @ np.array([[1.0, 0.0], [0.0, 2.0]])
    assert got["accuracy"] == pytest.approx(0.8, rel=1e-15)
    assert got["loss"] == pytest.approx(np.mean((out - data.one_hot(y, 2))**2), rel=1e-12)
    assert all(not training and not grad for training, grad, _ in model.calls)
    assert model.training  # mode restored
    whole = train.evaluate(model, mean_sq, (X, data.one_hot(y, 2, np.float64)), batch_size=100)
    assert whole["loss"] == pytest.approx(got["loss"], rel=1e-12)
    assert train.evaluate(model, None, (X, y)) == {"accuracy": pytest.approx(0.8)}


def test_accuracy_conventions():
    acc = train.accuracy
    logits = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert acc(logits, np.array([0, 1, 1])) == pytest.approx(2 / 3)
    assert acc(logits, data.one_hot([0, 1, 1], 2)) == pytest.approx(2 / 3)
    assert acc(np.array([0.7, -0.2, 0.0, -3.0]), np.array([1, -1, 1, 1])) == 0.75     # signs
    assert acc(np.array([[0.9], [0.2], [0.6]]), np.array([1, 0, 0])) == pytest.approx(2 / 3)


def test_custom_metric_named_after_the_function():
    def mae(out, t):
        return float(np.mean(np.abs(out - t)))

    X, t = np.ones((4, 1)), np.full(4, 2.0)
    model = Scale([0.5])
    hist = train.fit(model, mean_sq, optim.SGD(model.parameters(), lr=0.0), (X, t), epochs=1,
                     val=(X, t), metrics=["accuracy", mae], progress=False)
    assert hist["mae"] == [1.5] and hist["val_mae"] == [1.5]


# -- early stopping ----------------------------------------------------------------------

def test_early_stopping_restores_the_best_weights():
    """Training pulls w towards 1, validation wants 0.5: w = 0.2, 0.36, 0.488,
    0.5904, 0.67232, ...; the best validation epoch is 2 (w = 0.488)."""
    X, t = np.ones((5, 1)), np.ones(5)
    model = Scale([0.0])
    es = train.EarlyStopping(patience=2)
    hist = train.fit(model, mean_sq, optim.SGD(model.parameters(), lr=0.1), (X, t), epochs=50,
                     val=(X, 0.5 * t), metrics=(), batch_size=5, early_stopping=es,
                     progress=False)
    assert hist.epochs == [0, 1, 2, 3, 4] and hist.stopped_epoch == 4 and hist.best_epoch == 2
    np.testing.assert_allclose(model.w.data, [0.488], rtol=1e-12)


def test_early_stopping_min_delta_patience_shorthand_and_no_restore():
    X, t = np.ones((5, 1)), np.ones(5)
    model = Scale([0.0])
    # Training loss (w − 1)² = 0.64^epoch: 1, 0.64, 0.4096, 0.2621, 0.1678: each drop is
    # more than 0.1 until epoch 4 (a drop of 0.094), so with patience 1 it stops there.
    es = train.EarlyStopping("loss", patience=1, min_delta=0.1, restore_best_weights=False)
    hist = train.fit(model, mean_sq, optim.SGD(model.parameters(), lr=0.1), (X, t), epochs=50,
                     metrics=(), batch_size=5, early_stopping=es, progress=False)
    assert hist.stopped_epoch == 4 and hist.best_epoch == 3
    np.testing.assert_allclose(model.w.data, [1 - 0.8 ** 5], rtol=1e-12)  # not restored
    model = Scale([0.0])
    hist = train.fit(model, mean_sq, optim.SGD(model.parameters(), lr=0.1), (X, t), epochs=50,
                     val=(X, 0.5 * t), metrics=(), batch_size=5, early_stopping=1,
                     progress=False)
    assert hist.stopped_epoch == 3 and hist.best_epoch == 2


def test_early_stopping_with_a_module_uses_its_state_dict():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3)).astype(np.float32)
    y = rng.integers(0, 2, size=30)
    net = nn.FeedForward([3, 16, 2], seed=0)
    snapshots = {}

    def remember(epoch, logs):
        snapshots[epoch] = net.state_dict()

    hist = train.fit(net, losses.cross_entropy, optim.Adam(net.parameters(), lr=0.05),
                     (X[:20], y[:20]), epochs=40, val=(X[20:], y[20:]), batch_size=5, seed=0,
                     early_stopping=train.EarlyStopping(patience=3), callbacks=[remember],
                     progress=False)
    assert hist.stopped_epoch is not None and hist.best_epoch < hist.stopped_epoch
    assert hist.best_epoch == int(np.argmin(hist["val_loss"]))
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, snapshots[hist.best_epoch][k])


def test_early_stopping_errors():
    X, t = np.ones((5, 1)), np.ones(5)
    model = Scale([0.0])
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="monitors 'val_loss' but no val data was given"):
        train.fit(model, mean_sq, opt, (X, t), 3, early_stopping=train.EarlyStopping(),
                  progress=False)
    with pytest.raises(ValueError, match=r"'val_acc' is not among the epoch's logs "
                                         r"\['loss', 'lr', 'val_loss'\]"):
        train.fit(model, mean_sq, opt, (X, t), 3, val=(X, t), metrics=(), progress=False,
                  early_stopping=train.EarlyStopping("val_acc"))
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max'"):
        train.EarlyStopping(mode="down")


# -- callbacks, schedules, Ctrl-C ------------------------------------------------------------

def test_callbacks_and_a_schedule():
    X, t = np.ones((4, 1)), np.ones(4)
    model = Scale([0.0])
    opt = optim.SGD(model.parameters(), lr=1.0)
    events = []

    class Recorder(train.Callback):
        def on_train_begin(self, history):
            events.append("begin")

        def on_epoch_begin(self, epoch):
            events.append(f"epoch {epoch}")

        def on_batch_end(self, batch, logs):
            events.append(f"batch {batch}")

        def on_train_end(self, history):
            events.append(f"end {len(history)}")

    def stop_after_two(epoch, logs):
        events.append(f"fn {epoch} {sorted(logs)}")
        if epoch == 2:
            raise train.StopTraining

    hist = train.fit(model, mean_sq, opt, (X, t), epochs=10, batch_size=2, metrics=(),
                     callbacks=[Recorder(), optim.StepLR(opt, step_size=1, gamma=0.5),
                                stop_after_two], progress=False)
    assert hist["lr"] == [1.0, 0.5, 0.25] and hist.stopped_epoch == 2
    assert events == ["begin"] + [e for i in range(3) for e in
                                  (f"epoch {i}", "batch 0", "batch 1", f"fn {i} ['loss', 'lr']")] \
        + ["end 3"]


@pytest.mark.parametrize("where", ["loss", "callback"])
def test_keyboard_interrupt_returns_the_history_so_far(where):
    X, t = np.ones((6, 1)), np.ones(6)
    model = Scale([0.0])
    model.eval()
    calls = []

    def loss(y, target):
        calls.append(1)
        if where == "loss" and len(calls) == 8:  # epoch 2 (0-based), its 2nd batch
            raise KeyboardInterrupt
        return mean_sq(y, target)

    def ctrl_c(epoch, logs):
        if where == "callback" and epoch == 1:
            raise KeyboardInterrupt

    hist = train.fit(model, loss, optim.SGD(model.parameters(), lr=0.1), (X, t), epochs=10,
                     batch_size=2, metrics=(), callbacks=[ctrl_c], progress=False)
    assert hist.interrupted and hist.epochs == [0, 1] and len(hist["loss"]) == 2
    assert model.training is False  # mode restored
    assert "interrupted" in repr(hist)


# -- progress bar -----------------------------------------------------------------------------

def test_progress_bar_only_on_a_terminal(monkeypatch, capsys):
    X, t = np.ones((8, 1)), np.ones(8)

    def run(progress):
        model = Scale([0.0])
        train.fit(model, mean_sq, optim.SGD(model.parameters(), lr=0.1), (X, t), epochs=2,
                  batch_size=4, metrics=(), progress=progress)
        return capsys.readouterr()

    out = run(True)  # pytest's captured stderr is not a terminal
    assert out.err == "" and out.out == ""
    monkeypatch.setattr(train, "_interactive", lambda: True)
    assert "epoch 2/2" in run(True).err
    out = run(False)
    assert out.err == "" and out.out == ""


# -- bad input ------------------------------------------------------------------------------

def test_fit_errors():
    X, t = np.ones((4, 1)), np.ones(4)
    model = Scale([0.0])
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TypeError, match="fit: train: data must be an \\(X, y\\) pair, got ndarray"):
        train.fit(model, mean_sq, opt, X, 1, progress=False)
    with pytest.raises(ValueError, match=r"different numbers of examples: X has shape \(4, 1\), "
                                         r"y has shape \(3,\)"):
        train.fit(model, mean_sq, opt, (X, t[:3]), 1, progress=False)
    with pytest.raises(ValueError, match="epochs must be an integer >= 0, got -1"):
        train.fit(model, mean_sq, opt, (X, t), -1, progress=False)
    with pytest.raises(ValueError, match="unknown metric 'acc'; known: \\['accuracy'\\]"):
        train.fit(model, mean_sq, opt, (X, t), 1, metrics=["acc"], progress=False)
    with pytest.raises(ValueError, match=r"the loss must be a scalar .* got shape \(2,\)"):
        train.fit(model, lambda y, t: (y - t) ** 2, opt, (X, t), 1, batch_size=2,
                  progress=False)


# -- regressions from the review -----------------------------------------------------

@pytest.mark.parametrize("bad", [None, "3", float("inf"), 1.5])
def test_bad_epochs_patience_min_delta_name_the_argument(bad):
    model = Scale([0.0])
    opt = optim.SGD(model.parameters(), lr=0.1)
    X, t = np.ones((2, 1)), np.ones(2)
    with pytest.raises(ValueError, match=f"fit: epochs must be an integer >= 0, got {bad!r}"):
        train.fit(model, losses.mse, opt, (X, t), bad, progress=False)
    with pytest.raises(ValueError, match=f"patience must be an integer >= 0, got {bad!r}"):
        train.EarlyStopping(patience=bad)
    if not isinstance(bad, float):
        with pytest.raises(ValueError, match=f"min_delta must be >= 0, got {bad!r}"):
            train.EarlyStopping(min_delta=bad)


# -- a non-finite loss stops training (finding 6) ----------------------------------------

def _nan_data():
    X, t = np.ones((12, 1)), np.ones(12)
    X[9, 0] = np.nan                        # in the third batch of 4 (no shuffling)
    return X, t


def test_fit_stops_at_the_first_nonfinite_loss_naming_epoch_and_batch():
    X, t = _nan_data()
    model = Scale([0.0])
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(train.NonFiniteLossError, match=(
            r"fit: the loss is nan in epoch 1 of 3, batch 3 of 3 \(1-based\); training stopped "
            r"before that batch's update\. Look for NaN or inf in the data")):
        train.fit(model, mean_sq, opt, (X, t), epochs=3, metrics=(), batch_size=4,
                  shuffle=False, progress=False)
    # Two updates were made (batches 1 and 2), the NaN batch's was not: w = 0.2, then 0.36.
    assert model.w.data[0] == pytest.approx(0.36, rel=1e-12)
    assert model.training                   # the mode is restored
    assert issubclass(train.NonFiniteLossError, FloatingPointError)
    # An infinite loss in a later epoch: clean data, then a learning rate that diverges.
    X2, t2 = np.ones((4, 1)), np.ones(4)
    big = Scale([0.0])
    with np.errstate(over="ignore"), pytest.raises(
            train.NonFiniteLossError, match=r"the loss is inf in epoch \d+ of 400, batch 1 of 1"):
        train.fit(big, mean_sq, optim.SGD(big.parameters(), lr=10.0), (X2, t2), epochs=400,
                  metrics=(), batch_size=4, progress=False)


def test_fit_on_nonfinite_warn_returns_the_history_so_far():
    X, t = np.ones((12, 1)), np.ones(12)
    model = Scale([0.0])
    opt = optim.SGD(model.parameters(), lr=0.1)
    hist = train.fit(model, mean_sq, opt, (X, t), epochs=2, metrics=(), batch_size=4,
                     shuffle=False, progress=False)
    assert len(hist) == 2 and hist.stopped_epoch is None
    # Data with an inf in the second batch: a warning, the history so far, no bad update.
    Xbad = X.copy()
    Xbad[5, 0] = np.inf
    w = model.w.data.copy()
    with pytest.warns(train.NonFiniteLossWarning, match=r"fit: the loss is inf in epoch 1 of 5, "
                                                        r"batch 2 of 3 \(1-based\)"):
        hist = train.fit(model, mean_sq, opt, (Xbad, t), epochs=5, metrics=(), batch_size=4,
                         shuffle=False, progress=False, on_nonfinite="warn")
    assert hist.epochs == [] and hist.stopped_epoch == 0 and not hist.interrupted
    assert np.isfinite(model.w.data).all() and model.w.data[0] > w[0]    # batch 1 was applied
    # A loss that turns non-finite in a later epoch (a callback spoils the weight).
    def spoil(epoch, logs):
        if epoch == 1:
            model.w.data[0] = np.inf

    with pytest.warns(train.NonFiniteLossWarning, match=r"the loss is inf in epoch 3 of 5, "
                                                        r"batch 1 of 3"):
        hist = train.fit(model, mean_sq, opt, (X, t), epochs=5, metrics=(), batch_size=4,
                         shuffle=False, progress=False, on_nonfinite="warn", callbacks=[spoil])
    assert hist.epochs == [0, 1] and hist.stopped_epoch == 2
    assert np.isfinite(hist["loss"]).all()


def test_fit_on_nonfinite_ignore_trains_on_and_bad_values_are_refused():
    X, t = _nan_data()
    model = Scale([0.0])
    hist = train.fit(model, mean_sq, optim.SGD(model.parameters(), lr=0.1), (X, t), epochs=2,
                     metrics=(), batch_size=4, shuffle=False, progress=False,
                     on_nonfinite="ignore")
    assert len(hist) == 2 and np.isnan(hist["loss"]).all()   # the old behaviour, on request
    with pytest.raises(ValueError, match="fit: on_nonfinite must be 'raise', 'warn' or 'ignore', "
                                         "got 'skip'"):
        train.fit(model, mean_sq, optim.SGD(model.parameters(), lr=0.1), (X, t), epochs=1,
                  on_nonfinite="skip")
