"""Save and load checkpoints: `.npz` files, never pickle.

`save(state, path)` stores a (nested) dict of arrays, Tensors, numbers,
strings, booleans, None, lists and tuples, e.g.

    tg.save({"model": net.state_dict(), "optimizer": opt.state_dict(),
             "epoch": 12, "note": "784-256-256-10"}, "ckpt.npz")

Why this format:
- Loading runs no code. A pickle can execute anything when it is read; here
  the arrays are `.npy` entries read with `allow_pickle=False`, and the
  structure is a JSON manifest (a string array, `__tensorgraph__`), which
  only describes nesting, Python scalar values and which entry holds which
  array (with its shape and dtype, checked on load).
- The file is still an ordinary `.npz`: `np.load(path)` shows the arrays
  under their flattened keys (`model/layers.0.weight`).
- Writes are atomic: the file is written to a temporary file in the same
  directory, flushed to disk (fsync), then renamed over the target with
  `os.replace`, so a crash or an error mid-write leaves the previous file
  intact and no partial file behind.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from typing import Any, Callable, Union

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load", "LoadError"]

SEP = "/"
MANIFEST = "__tensorgraph__"
FORMAT = "tensorgraph.save"
VERSION = 1
PathLike = Union[str, "os.PathLike[str]"]


class LoadError(ValueError):
    """The file is not a readable tensorgraph save (corrupt, truncated, not
    written by `tg.save`, or its arrays do not match its manifest)."""


# ---------------------------------------------------------------------------
# Flattening: the nested state -> a JSON tree + a flat dict of arrays.

def _encode(obj: Any, key: str, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, Tensor):
        obj = obj.data
    if isinstance(obj, (np.ndarray, np.generic)):
        a = np.asarray(obj)
        if a.dtype.hasobject or a.dtype.kind == "V":
            raise TypeError(f"save: {key or 'state'}: arrays of dtype {a.dtype} cannot be "
                            "stored without pickle")
        name = key or "_"
        if name in arrays or name == MANIFEST:
            raise ValueError(f"save: two entries flatten to the same key {name!r}")
        arrays[name] = a
        node = {"array": name, "shape": list(a.shape), "dtype": a.dtype.str}
        if isinstance(obj, np.generic):
            node["scalar"] = True
        return node
    if obj is None or isinstance(obj, (bool, int, str)):
        return {"value": obj}
    if isinstance(obj, float):
        return {"value": obj}  # json writes repr(float): exact, NaN/Infinity included
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"save: {key or 'state'}: keys must be strings or ints, got "
                                f"{k!r} ({type(k).__name__})")
            if isinstance(k, str) and (SEP in k or not k):
                raise ValueError(f"save: {key or 'state'}: key {k!r} is empty or contains "
                                 f"the separator {SEP!r}")
            items.append([k, _encode(v, f"{key}{SEP}{k}" if key else str(k), arrays)])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, f"{key}{SEP}{i}" if key else str(i), arrays)
                       for i, v in enumerate(obj)]}
    hint = ""
    if callable(getattr(obj, "state_dict", None)):
        # torch.save(model) pickles it; here the state is saved, as arrays.
        hint = ("; save its .state_dict() instead and restore it with "
                "obj.load_state_dict(tg.load(path))")
    raise TypeError(f"save: {key or 'state'}: cannot store a {type(obj).__name__} (allowed: "
                    "dict, list, tuple, numpy array or scalar, Tensor, int, float, bool, str, "
                    f"None){hint}")


def _decode(node: Any, arrays: dict[str, np.ndarray], path: str, used: set[str]) -> Any:
    if not isinstance(node, dict) or len(node) == 0:
        raise LoadError(f"load: {path}: malformed manifest entry {node!r}")
    if "array" in node:
        name = node["array"]
        if name not in arrays:
            raise LoadError(f"load: {path}: the manifest lists array {name!r}, which the file "
                            "does not hold (truncated or mismatched file)")
        a = arrays[name]
        if list(a.shape) != node.get("shape") or a.dtype.str != node.get("dtype"):
            raise LoadError(f"load: {path}: array {name!r} has shape {a.shape} and dtype "
                            f"{a.dtype.str}, but the manifest says {tuple(node.get('shape', ()))} "
                            f"and {node.get('dtype')} (mismatched file)")
        used.add(name)
        return a[()] if node.get("scalar") else a
    if "value" in node:
        v = node["value"]
        if v is not None and not isinstance(v, (bool, int, float, str)):
            raise LoadError(f"load: {path}: malformed manifest value {v!r}")
        return v
    if "dict" in node:
        return {k: _decode(v, arrays, path, used) for k, v in node["dict"]}
    if "list" in node:
        return [_decode(v, arrays, path, used) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode(v, arrays, path, used) for v in node["tuple"])
    raise LoadError(f"load: {path}: malformed manifest entry with keys {sorted(node)}")


# ---------------------------------------------------------------------------

def save(state: Any, path: PathLike, compress: bool = False) -> None:
    """Write `state` (usually a dict; see the module docstring for what it may
    hold) to the `.npz` file `path`, atomically. The path is used as given
    (no `.npz` is appended). `compress=True` deflates the arrays."""
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(state, "", arrays)
    manifest = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree})
    write_atomically(path, lambda f: _write_npz(f, arrays, manifest, compress), "save")


def write_atomically(path: str, write: Callable[[Any], None], what: str) -> None:
    """Call `write(f)` on a temporary file in `path`'s directory, then move it
    over `path` (`os.replace`, after fsync): a reader sees the old file or the
    new one, never half of one, and a failure (Ctrl-C included) leaves no
    temporary file. `what` names the caller in the error for a missing folder."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{what}: {path}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:  # including KeyboardInterrupt: never leave the temp file
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def _write_npz(f: Any, arrays: dict[str, np.ndarray], manifest: str, compress: bool) -> None:
    """What np.savez does, plus the manifest entry (written first, so that a
    reader can tell a tensorgraph file at once)."""
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(f, mode="w", compression=mode, allowZip64=True) as zf:
        for name, a in [(MANIFEST, np.array(manifest))] + list(arrays.items()):
            with zf.open(name + ".npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(a), allow_pickle=False)


def _mode_for(path: str) -> int:
    """The permissions the file would have had if opened normally: those of
    the file being replaced, else 0666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_dir(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories
    cannot be opened (Windows)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _check_entry_size(zf: zipfile.ZipFile, name: str, path: str) -> None:
    """Refuse an entry whose .npy header declares more data than the entry
    holds, before `read_array` allocates that much memory."""
    with zf.open(name) as entry:
        major, _ = np.lib.format.read_magic(entry)
        read_header = (np.lib.format.read_array_header_1_0 if major == 1
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(entry)
        need = entry.tell() + math.prod(shape) * dtype.itemsize
    if need > zf.getinfo(name).file_size:
        raise LoadError(f"load: {path}: entry {name!r} declares shape {shape} of {dtype} "
                        f"({need} bytes) but holds {zf.getinfo(name).file_size} bytes "
                        "(truncated or corrupt file)")


def load(path: PathLike) -> Any:
    """Read a file written by `save` and return the state, with the same
    nesting, dict key types (str/int), list/tuple kinds and Python scalar
    types; arrays come back as numpy arrays (Tensors were saved as arrays).

    Never unpickles. A missing file raises FileNotFoundError; a corrupt,
    truncated or mismatched one raises `LoadError` naming the path.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: {path}: no such file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if MANIFEST + ".npy" not in names:
                raise LoadError(f"load: {path}: not a tensorgraph save file (no {MANIFEST} "
                                "entry; was it written by tg.save?)")
            arrays: dict[str, np.ndarray] = {}
            for n in names:
                if not n.endswith(".npy"):
                    raise LoadError(f"load: {path}: unexpected entry {n!r} in the file")
                _check_entry_size(zf, n, path)
                with zf.open(n) as entry:
                    a = np.lib.format.read_array(entry, allow_pickle=False)
                    if entry.read(1):  # also makes zipfile check the entry's CRC
                        raise LoadError(f"load: {path}: trailing data in entry {n!r}")
                arrays[n[:-4]] = a
        text = arrays.pop(MANIFEST)
        if text.shape != () or text.dtype.kind != "U":
            raise LoadError(f"load: {path}: the {MANIFEST} entry is not a JSON string")
        manifest = json.loads(str(text))
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise LoadError(f"load: {path}: the manifest does not describe a tensorgraph "
                            "save file")
        if manifest.get("version") != VERSION:
            raise LoadError(f"load: {path}: format version {manifest.get('version')!r}, "
                            f"this tensorgraph reads version {VERSION}")
    except LoadError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError,
            UnicodeDecodeError, KeyError, NotImplementedError, RecursionError) as e:
        # json.JSONDecodeError is a ValueError; a truncated zip is BadZipFile or EOFError;
        # a manifest nested thousands deep is a RecursionError.
        raise LoadError(f"load: {path}: corrupt or truncated file ({type(e).__name__}: {e})") from None
    used: set[str] = set()
    try:
        state = _decode(manifest.get("tree"), arrays, path, used)
    except LoadError:
        raise
    except (TypeError, ValueError, RecursionError) as e:
        # A manifest of the wrong shape ({"dict": 5}, a list as a key, ...).
        raise LoadError(f"load: {path}: malformed manifest ({type(e).__name__}: {e})") from None
    extra = sorted(set(arrays) - used)
    if extra:
        raise LoadError(f"load: {path}: entries {extra} are not in the manifest (mismatched file)")
    return state
