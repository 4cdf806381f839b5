"""Make an .npz for sweep's ``data.source: npz`` from a folder of Fashion-MNIST IDX files.

    python examples/make_npz.py ../shared/data/fashion-mnist-sample examples/data/fmnist.npz
    python examples/make_npz.py ../shared/data/fashion-mnist-sample examples/data/fmnist-flat.npz --flatten

The file holds x_train, y_train and (unless --test-fraction 0) x_test, y_test: the last
images of the folder, held out for ``sweep evaluate``. Images stay uint8 (sweep scales
them to [0, 1]), as 28x28 arrays or, with --flatten, 784-long vectors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sweep.training.data import IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, read_idx


def make_npz(sample: Path, out: Path, *, limit: int | None = None, flatten: bool = False,
             test_fraction: float = 0.2) -> dict[str, tuple[int, ...]]:
    """Write ``out`` and return the shape of each array written."""
    images = read_idx(_find(sample, "train-images-idx3-ubyte"), IDX_IMAGES_MAGIC)
    labels = read_idx(_find(sample, "train-labels-idx1-ubyte"), IDX_LABELS_MAGIC)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    if flatten:
        images = images.reshape(len(images), -1)
    n_test = int(round(test_fraction * len(labels)))
    n_train = len(labels) - n_test
    arrays = {"x_train": images[:n_train], "y_train": labels[:n_train]}
    if n_test:
        arrays |= {"x_test": images[n_train:], "y_test": labels[n_train:]}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    return {key: value.shape for key, value in arrays.items()}


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise SystemExit(f"{folder}: no {stem}[.gz]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sample", type=Path, help="folder of IDX files (train-images-idx3-ubyte[.gz], ...)")
    parser.add_argument("out", type=Path, help="the .npz to write")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--flatten", action="store_true", help="784-long vectors instead of 28x28 images")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="held out as x_test/y_test (default 0.2)")
    args = parser.parse_args()
    shapes = make_npz(args.sample, args.out, limit=args.limit, flatten=args.flatten, test_fraction=args.test_fraction)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in shapes.items()))


if __name__ == "__main__":
    main()
