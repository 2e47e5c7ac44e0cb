"""tg.save / tg.load: round trips, no pickle, atomic writes, clear errors."""
import io as _io
import os
import pathlib
import pickle
import zipfile

import numpy as np
import pytest

import tensorgraph as tg
from tensorgraph import io as tgio


def sample_state():
    return {
        "model": {"layers.0.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
                  "layers.0.bias": np.array([0.5, -1.5], dtype=np.float64)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones((2, 3), np.float32)}},
                      "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "amsgrad": False,
                                        "params": [0, 1]}]},
        "epoch": 7, "loss": 0.125, "nan": float("nan"), "inf": float("-inf"), "big": 2 ** 70,
        "note": "784-256-256-10 ✓", "none": None, "flag": True,
        "ints": np.array([[1, 2], [3, 4]], dtype=np.int64), "mask": np.array([True, False]),
        "bytes": np.array([0, 255], dtype=np.uint8), "empty": np.zeros((0, 3), np.float32),
        "zero_d": np.array(2.5), "np_scalar": np.float32(1.25), "np_int": np.int64(-3),
        "labels": np.array(["cat", "dog"]), "tensor": tg.tensor([1.0, 2.0]),
        "nested_list": [1, [2.5, "x"], (None, np.arange(3))],
    }


def assert_same(a, b, where="state"):
    """Equal values and the same types, recursively (Tensors come back as arrays)."""
    if isinstance(a, tg.Tensor):
        a = a.data
    if isinstance(a, np.ndarray):
        assert type(b) is np.ndarray, where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert type(b) is dict and list(a) == list(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(b) is type(a) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert type(b) is type(a), f"{where}: {type(b)} is not {type(a)}"
        assert (a == b) or (a != a and b != b), where  # NaN equals NaN here


def test_round_trip_keeps_structure_values_and_types(tmp_path):
    state = sample_state()
    path = tmp_path / "ckpt.npz"
    tg.save(state, path)
    assert_same(state, tg.load(path))


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_compressed_and_as_a_string_path(tmp_path, compress):
    path = str(tmp_path / "ckpt")  # used as given: no .npz appended
    tg.save(sample_state(), path, compress=compress)
    assert os.listdir(tmp_path) == ["ckpt"]
    assert_same(sample_state(), tg.load(path))


def test_file_is_an_ordinary_npz(tmp_path):
    path = tmp_path / "ckpt.npz"
    tg.save(sample_state(), path)
    with np.load(path, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["model/layers.0.weight"], np.arange(6).reshape(2, 3))
        np.testing.assert_array_equal(z["optimizer/state/0/exp_avg"], np.ones((2, 3)))
        assert "__tensorgraph__" in z.files


def test_save_into_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory .*nowhere does not exist"):
        tg.save({"w": 1}, tmp_path / "nowhere" / "a.npz")


def test_top_level_array_and_scalar(tmp_path):
    tg.save(np.eye(2), tmp_path / "a.npz")
    assert_same(np.eye(2), tg.load(tmp_path / "a.npz"))
    tg.save([1, "two"], tmp_path / "b.npz")
    assert tg.load(tmp_path / "b.npz") == [1, "two"]


def test_model_state_dict_round_trip(tmp_path):
    nn = pytest.importorskip("tensorgraph.nn")
    net = nn.FeedForward([4, 8, 3], seed=1)
    opt = tg.optim.Adam(net.parameters(), lr=0.01)
    x = tg.tensor(np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32))
    (net(x) ** 2).mean().backward()
    opt.step()
    tg.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 1},
            tmp_path / "net.npz")
    ckpt = tg.load(tmp_path / "net.npz")
    other = nn.FeedForward([4, 8, 3], seed=2)
    other.load_state_dict(ckpt["model"])
    np.testing.assert_array_equal(other(x).data, net(x).data)
    opt2 = tg.optim.Adam(other.parameters(), lr=0.01)
    opt2.load_state_dict(ckpt["optimizer"])
    assert opt2.state_dict()["state"][0]["step"] == 1


# -- never pickle -------------------------------------------------------------------

class _Evil:
    """Unpickling this touches a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_save_refuses_objects_that_would_need_pickle(tmp_path):
    with pytest.raises(TypeError, match="save: model/w: arrays of dtype object cannot be stored"):
        tg.save({"model": {"w": np.array([{}, 1], dtype=object)}}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match=r"save: opt/fn: cannot store a function"):
        tg.save({"opt": {"fn": lambda: 0}}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="keys must be strings or ints, got 1.5"):
        tg.save({1.5: 1}, tmp_path / "x.npz")
    with pytest.raises(ValueError, match="key 'a/b' is empty or contains the separator '/'"):
        tg.save({"a/b": 1}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


def test_loading_a_pickle_bomb_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    tg.save({"w": np.zeros(2)}, path)
    evil = np.empty(1, dtype=object)
    evil[0] = _Evil(marker)
    buf = _io.BytesIO()
    np.save(buf, evil, allow_pickle=True)
    rewrite(path, {"w.npy": buf.getvalue()})
    with pytest.raises(tgio.LoadError, match=f"{path}.*allow_pickle=False"):
        tg.load(path)
    assert not marker.exists()
    # A raw pickle file gets the same treatment.
    (tmp_path / "raw.npz").write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(tgio.LoadError, match="raw.npz: corrupt or truncated file"):
        tg.load(tmp_path / "raw.npz")
    assert not marker.exists()


# -- atomic writes --------------------------------------------------------------------

def test_a_crash_mid_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    tg.save({"version": 1, "w": np.zeros(3)}, path)
    before = path.read_bytes()
    real = np.lib.format.write_array
    calls = []

    def crash_on_second_array(fp, array, **kw):
        calls.append(1)
        if len(calls) == 3:  # the manifest, the first array, then boom
            raise OSError("disk full")
        return real(fp, array, **kw)

    monkeypatch.setattr(np.lib.format, "write_array", crash_on_second_array)
    with pytest.raises(OSError, match="disk full"):
        tg.save({"version": 2, "w": np.ones(3), "v": np.ones(1000)}, path)
    assert len(calls) == 3
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temporary file left behind
    monkeypatch.undo()
    assert tg.load(path)["version"] == 1


def test_interrupt_or_failed_rename_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    tg.save({"version": 1}, path)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(tgio.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tg.save({"version": 2}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert tg.load(path) == {"version": 1}


def test_writes_are_flushed_to_disk_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(tgio.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(tgio.os, "replace",
                        lambda a, b: (events.append("replace"), real_replace(a, b)))
    tg.save({"w": np.ones(2)}, tmp_path / "a.npz")
    assert events[:2] == ["fsync", "replace"]


def test_new_file_gets_the_usual_permissions(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    tg.save({"w": 1}, tmp_path / "a.npz")
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o666 & ~umask


# -- corrupt, truncated, mismatched ---------------------------------------------------------

def rewrite(path, replace=None, drop=(), add=None):
    """Rebuild the zip at `path` with some entries replaced, dropped or added."""
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    entries.update(replace or {})
    entries.update(add or {})
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in entries.items():
            if n not in drop:
                zf.writestr(n, data)


def npy(a):
    buf = _io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "ckpt.npz"
    tg.save({"w": np.arange(200, dtype=np.float64).reshape(20, 10), "epoch": 3}, path)
    return path


def test_truncated_file(saved):
    data = saved.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        saved.write_bytes(data[:cut])
        with pytest.raises(tgio.LoadError, match=f"{saved}: corrupt or truncated file"):
            tg.load(saved)


def test_corrupted_array_bytes_fail_the_crc(saved):
    data = bytearray(saved.read_bytes())
    i = data.index(np.arange(200, dtype=np.float64)[100].tobytes())
    data[i] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(tgio.LoadError, match=f"{saved}: corrupt .*CRC"):
        tg.load(saved)


def test_not_a_checkpoint(tmp_path):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(tgio.LoadError, match="empty.npz: corrupt or truncated"):
        tg.load(empty)
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.ones(2))
    with pytest.raises(tgio.LoadError, match="plain.npz: not a tensorgraph save file"):
        tg.load(plain)
    with pytest.raises(FileNotFoundError, match="missing.npz: no such file"):
        tg.load(tmp_path / "missing.npz")
    assert issubclass(tgio.LoadError, ValueError)


def test_array_that_does_not_match_the_manifest(saved):
    rewrite(saved, {"w.npy": npy(np.zeros((10, 20)))})
    with pytest.raises(tgio.LoadError, match=r"array 'w' has shape \(10, 20\) .* manifest says "
                                             r"\(20, 10\) .*mismatched"):
        tg.load(saved)


def test_missing_and_extra_entries(saved, tmp_path):
    original = saved.read_bytes()
    rewrite(saved, drop={"w.npy"})
    with pytest.raises(tgio.LoadError, match="lists array 'w', which the file does not hold"):
        tg.load(saved)
    saved.write_bytes(original)
    rewrite(saved, add={"sneaky.npy": npy(np.ones(1))})
    with pytest.raises(tgio.LoadError, match=r"entries \['sneaky'\] are not in the manifest"):
        tg.load(saved)
    saved.write_bytes(original)
    rewrite(saved, add={"readme.txt": b"hi"})
    with pytest.raises(tgio.LoadError, match="unexpected entry 'readme.txt'"):
        tg.load(saved)


def test_bad_manifest(saved):
    original = saved.read_bytes()
    rewrite(saved, {"__tensorgraph__.npy": npy(np.array("{not json"))})
    with pytest.raises(tgio.LoadError, match="corrupt or truncated file .*JSONDecodeError"):
        tg.load(saved)
    saved.write_bytes(original)
    rewrite(saved, {"__tensorgraph__.npy": npy(np.array(
        '{"format": "tensorgraph.save", "version": 99, "tree": {"value": 1}}'))})
    with pytest.raises(tgio.LoadError, match="format version 99, this tensorgraph reads version 1"):
        tg.load(saved)
    saved.write_bytes(original)
    rewrite(saved, {"__tensorgraph__.npy": npy(np.arange(3))})
    with pytest.raises(tgio.LoadError, match="entry is not a JSON string"):
        tg.load(saved)


# -- regressions from the review --------------------------------------------------------

@pytest.mark.parametrize("tree, why", [
    ({"dict": 5}, "TypeError"), ({"dict": [[1, 2, 3]]}, "ValueError"),
    ({"array": ["w"]}, "TypeError"), ({"dict": [[[1], {"value": 1}]]}, "TypeError"),
    ({"list": 3}, "TypeError"), ({"tuple": None}, "TypeError")])
def test_malformed_manifest_tree_is_a_load_error(saved, tree, why):
    import json
    manifest = json.dumps({"format": "tensorgraph.save", "version": 1, "tree": tree})
    rewrite(saved, {"__tensorgraph__.npy": npy(np.array(manifest))}, drop=("w.npy",))
    with pytest.raises(tgio.LoadError, match=f"malformed manifest \\({why}"):
        tg.load(saved)


def test_deeply_nested_manifest_is_a_load_error(saved):
    deep = '{"format": "tensorgraph.save", "version": 1, "tree": ' + \
        '{"list": [' * 5000 + ']}' * 5000 + '}'
    rewrite(saved, {"__tensorgraph__.npy": npy(np.array(deep))}, drop=("w.npy",))
    with pytest.raises(tgio.LoadError, match="RecursionError"):
        tg.load(saved)


def test_entry_declaring_more_data_than_it_holds_is_refused_before_allocating(saved):
    # A header claiming 8 TB must not reach read_array (which allocates first).
    header = _io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 12,)})
    rewrite(saved, {"w.npy": header.getvalue() + b"\0" * 64})
    with pytest.raises(tgio.LoadError, match=r"entry 'w.npy' declares shape \(1000000000000,\) "
                                             r"of float64 .* but holds 192 bytes"):
        tg.load(saved)


def test_saving_a_module_or_optimizer_says_to_save_its_state_dict(tmp_path):
    # torch.save(model) pickles the model; tg.save cannot (no pickle), and a
    # PyTorch user needs to hear what to save instead.
    net = tg.nn.Sequential(tg.nn.Linear(2, 3), tg.nn.ReLU())
    opt = tg.optim.SGD(net.parameters(), lr=0.1)
    for obj, name in ((net, "Sequential"), (opt, "SGD")):
        with pytest.raises(TypeError, match=rf"cannot store a {name}.*save its \.state_dict\(\) "
                                            r"instead.*\.load_state_dict\(tg\.load\(path\)\)"):
            tg.save(obj, tmp_path / "m.npz")
        with pytest.raises(TypeError, match=rf"save: model: cannot store a {name}.*state_dict"):
            tg.save({"model": obj}, tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []
