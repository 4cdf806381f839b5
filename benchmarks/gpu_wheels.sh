#!/usr/bin/env bash
# Prepare what benchmarks/gpu.sh needs on a GPU machine without network (GUIDE §5): Python 3.12
# wheels of everything sweep imports that such a machine (JAX + CUDA, PyTorch, no TensorFlow)
# may lack, and the real Fashion-MNIST sample, in benchmarks/gpu_carry/ (ignored by git; the
# device call carries it). Versions are pinned to what the suite passes with here.
#
#   bash benchmarks/gpu_wheels.sh        # then see benchmarks/README.md, "GPU measurement"
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=benchmarks/gpu_carry
SAMPLE=${SWEEP_SAMPLE:-../shared/data/fashion-mnist-sample}
mkdir -p "$CARRY/wheels" "$CARRY/fashion-mnist-sample"

# Pinned to the versions installed here, so the GPU run is the code the suite tested.
pinned() { python - "$@" <<'PY'
import sys
from importlib import metadata
for name in sys.argv[1:]:
    print(f"{name}=={metadata.version(name)}")
PY
}
# What sweep and Keras import at run time, and what those import, except NumPy, SciPy,
# ml_dtypes and opt_einsum (JAX's own dependencies, so there with JAX). Not greenlet (SQLAlchemy
# needs it only for asyncio) nor tzdata (pandas reads the system's zoneinfo): neither is installed here.
PACKAGES=(keras namex optree absl-py rich markdown-it-py mdurl pygments h5py packaging
          optuna sqlalchemy alembic mako markupsafe colorlog tqdm pyyaml typing-extensions
          pydantic pydantic-core annotated-types typing-inspection
          pandas python-dateutil six matplotlib contourpy cycler fonttools kiwisolver pillow pyparsing
          joblib)
SPECS=$(pinned "${PACKAGES[@]}")  # fails here if one is not installed
pip download -q --only-binary=:all: --no-deps --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_28_x86_64 --platform any -d "$CARRY/wheels" $SPECS
cp "$SAMPLE"/*.gz "$CARRY/fashion-mnist-sample/"
du -sh "$CARRY/wheels" "$CARRY/fashion-mnist-sample"
echo "carry: benchmarks/gpu_carry ($(du -sh "$CARRY" | cut -f1); the device call carries at most 64 MiB)"
