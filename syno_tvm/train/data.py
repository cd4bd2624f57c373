"""Real image data for training, loaded with no network access.

* ``fashion-mnist``: the Debian package ``dataset-fashion-mnist`` installs the IDX files under
  ``/usr/share/datasets/fashion-mnist/``; 28x28 images are zero-padded to 32x32 and repeated to 3 channels so the
  CIFAR-shaped models take them unchanged.  Nothing in PyPI or Debian ships CIFAR, so accuracies here are relative
  rankings on this proxy, not CIFAR numbers.
* ``digits``: scikit-learn's ``load_digits`` (1,797 8x8 images, shipped inside the wheel), upsampled 4x: the fast
  real-data check of the test suite.
* a user's ``.npz`` with ``images`` (N,H,W | N,C,H,W | N,H,W,C) and integer ``labels``.

The train/validation split is a fixed permutation of a seed, normalization statistics come from the training part
only, and augmentation (random crop with padding, horizontal flip) is numpy driven by a per-epoch seed, so an epoch
is the same after ``--resume`` as in an uninterrupted run.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import SynoError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass
class Dataset:
    """Normalized float32 NCHW images with int64 labels, already split."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    num_classes: int
    channels: int

    @property
    def image_shape(self) -> tuple[int, ...]:
        return (self.channels,) + tuple(self.train_x.shape[2:])


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped): magic 0x0000 0x08 ndim, big-endian int32 dims, then uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise SynoError(f"'{path}' is not a uint8 IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise SynoError(f"'{path}' is truncated: {data.size} bytes for dims {list(dims)}")
    return data.reshape(tuple(int(d) for d in dims))


def _find(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    raise SynoError(f"Fashion-MNIST file '{stem}' not found in {root}: apt-get install dataset-fashion-mnist, "
                    f"or pass --data FILE.npz")


def fashion_mnist(root: Path = FASHION_DIR) -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 images (train then t10k) as uint8 [N,28,28] and labels; the caller splits them."""
    xs, ys = [], []
    for part in ("train", "t10k"):
        xs.append(_read_idx(_find(root, f"{part}-images-idx3-ubyte")))
        ys.append(_read_idx(_find(root, f"{part}-labels-idx1-ubyte")))
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits (values 0..16)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float32), d.target.astype(np.int64)


def from_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A user's ``images`` + ``labels`` arrays, checked so a bad file is one line."""
    p = Path(path)
    if not p.is_file():
        raise SynoError(f"data file '{path}' does not exist: give an .npz with 'images' and 'labels'")
    try:
        with np.load(p, allow_pickle=False) as z:
            if "images" not in z or "labels" not in z:
                raise SynoError(f"'{path}' must contain arrays 'images' and 'labels' (has {', '.join(z.files)})")
            images, labels = z["images"], z["labels"]
    except SynoError:
        raise
    except Exception as e:  # np.load raises several types for a non-npz file
        raise SynoError(f"cannot read '{path}' as .npz ({type(e).__name__})") from None
    if images.ndim not in (3, 4) or labels.ndim != 1 or len(images) != len(labels) or len(labels) < 2:
        raise SynoError(f"'{path}': images must be [N,H,W] or [N,C,H,W]/[N,H,W,C] and labels [N], "
                        f"got {list(images.shape)} and {list(labels.shape)}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise SynoError(f"'{path}': labels must be non-negative integers, got dtype {labels.dtype}")
    return images.astype(np.float32), labels.astype(np.int64)


def to_nchw(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """[N,H,W] / [N,H,W,C] / [N,C,H,W] -> float32 [N,1 or channels,size,size]: centre zero-pad, or nearest
    upsample by an integer factor for small images.  A single channel is repeated later, per batch (memory)."""
    x = images.astype(np.float32)
    if x.ndim == 3:
        x = x[:, None]
    elif x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    h, w = x.shape[2:]
    if h != w or h > size:
        raise SynoError(f"images are {h}x{w}: square images of at most {size}x{size} are supported")
    if size % h == 0 and size // h > 1 and h <= size // 2:
        x = x.repeat(size // h, axis=2).repeat(size // h, axis=3)
    elif h < size:
        lo = (size - h) // 2
        x = np.pad(x, ((0, 0), (0, 0), (lo, size - h - lo), (lo, size - h - lo)))
    if x.shape[1] not in (1, channels):
        raise SynoError(f"images have {x.shape[1]} channels, the model takes {channels}")
    return np.ascontiguousarray(x)


def load(source: str, size: int = 32, channels: int = 3, val_fraction: float = 0.1, seed: int = 0,
         limit: int | None = None) -> Dataset:
    """``fashion-mnist`` | ``digits`` | a path to an .npz; a deterministic split, normalized by training stats.

    ``limit`` keeps a fixed random subset (the proxy recipe uses it) before splitting."""
    if source == "fashion-mnist":
        images, labels = fashion_mnist()
    elif source == "digits":
        images, labels = digits()
    else:
        images, labels = from_npz(source)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    if limit is not None:
        order = order[:limit]
    n_val = max(1, int(round(len(order) * val_fraction)))
    if len(order) - n_val < 1:
        raise SynoError(f"{len(order)} images are too few to split into train and validation")
    x = to_nchw(images[order], size, channels)          # single-channel data stays 1 channel until batching
    y = labels[order]
    mean, std = float(x[n_val:].mean()), float(x[n_val:].std()) or 1.0
    x = (x - mean) / std
    return Dataset(source, x[n_val:], y[n_val:], x[:n_val], y[:n_val], int(labels.max()) + 1, channels)


def augment(x: np.ndarray, rng: np.random.Generator, pad: int = 4, flip: bool = True) -> np.ndarray:
    """Random crop of the zero-padded image (per image offsets) and a random horizontal flip."""
    n, _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dy, dx = rng.integers(0, 2 * pad + 1, size=(2, n))
    rows = (dy[:, None] + np.arange(h))[:, None, :, None]
    cols = (dx[:, None] + np.arange(w))[:, None, None, :]
    out = padded[np.arange(n)[:, None, None, None], np.arange(x.shape[1])[None, :, None, None], rows, cols]
    if flip:
        mask = rng.random(n) < 0.5
        out[mask] = out[mask, :, :, ::-1]
    return out


def batches(x: np.ndarray, y: np.ndarray, batch: int, channels: int, rng: np.random.Generator | None = None,
            aug: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """``(images, labels, valid)`` of exactly ``batch`` rows (the step is compiled for one batch size).

    With an rng: shuffled, augmented when ``aug``, the last partial batch dropped (training).  Without: in order,
    the last batch padded by repeating rows and ``valid`` says how many are real (evaluation)."""
    idx = rng.permutation(len(y)) if rng is not None else np.arange(len(y))
    stop = len(idx) - len(idx) % batch if rng is not None else len(idx)
    for start in range(0, stop, batch):
        part = idx[start:start + batch]
        valid = len(part)
        if valid < batch:
            part = np.concatenate([part, np.resize(part, batch - valid)])
        xb = x[part]
        if xb.shape[1] != channels:
            xb = np.repeat(xb, channels, axis=1)
        if aug and rng is not None:
            xb = augment(xb, rng)
        yield np.ascontiguousarray(xb, dtype=np.float32), y[part], valid
