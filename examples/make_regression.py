"""Make a regression .npz for sweep's ``data.source: npz``: real-valued targets of feature vectors.

    python examples/make_regression.py examples/data/regression.npz
    python examples/make_regression.py examples/data/regression.npz --samples 4000 --features 8 --seed 1

A smooth nonlinear function of the features plus noise (the targets are float32, one per
sample, which sweep reads as a regression): ``y = sin(x0) + x1 * x2 / 2 + 0.3 * x3 ** 2 +
0.1 * sum(x[4:]) + noise`` with ``x ~ N(0, 1)`` and noise ``N(0, 0.1)``. The last
``--test-fraction`` of the samples are x_test and y_test, for ``sweep evaluate``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

NOISE = 0.1


def make_regression(out: Path, *, samples: int = 3000, features: int = 8, seed: int = 0,
                    test_fraction: float = 0.2) -> dict[str, tuple[int, ...]]:
    """Write ``out`` and return the shape of each array written."""
    if features < 4:
        raise SystemExit(f"--features must be at least 4, got {features}")
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (samples, features)).astype(np.float32)
    y = (np.sin(x[:, 0]) + x[:, 1] * x[:, 2] / 2 + 0.3 * x[:, 3] ** 2 + 0.1 * x[:, 4:].sum(axis=1)
         + rng.normal(0.0, NOISE, samples)).astype(np.float32)
    n_test = int(round(test_fraction * samples))
    n_train = samples - n_test
    arrays = {"x_train": x[:n_train], "y_train": y[:n_train], "x_test": x[n_train:], "y_test": y[n_train:]}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    return {key: value.shape for key, value in arrays.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the .npz to write")
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-fraction", type=float, default=0.2, help="held out as x_test/y_test (default 0.2)")
    args = parser.parse_args()
    shapes = make_regression(args.out, samples=args.samples, features=args.features, seed=args.seed,
                             test_fraction=args.test_fraction)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in shapes.items()))


if __name__ == "__main__":
    main()
