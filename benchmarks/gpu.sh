#!/usr/bin/env bash
# The GPU measurement in one call (issue 23; GUIDE §4-5): on a machine with JAX + CUDA, PyTorch,
# no TensorFlow and no network, run with KERAS_BACKEND=jax, each stage time-boxed, results in
# OUT_DIR as they come (gpu.json and gpu.md at the end, plus each stage's JSON):
#   env         versions, devices
#   quickstart  the README's quick-start study on the real sample, and its report
#   epochs      sweep's compiled seed CNN on 60,000 synthetic images: batch 64/256/1024 x steps_per_execution 1/8
#   floor       the same CNN in a bare keras.Model.fit, and in a plain PyTorch loop with the data on the GPU
#   workers     trials an hour of a 60,000-image 3-epoch study with 1, 2, 4 workers on the GPU (nvidia-smi busy)
#
#   bash benchmarks/gpu.sh [--dry-run] [OUT_DIR]     # OUT_DIR: default $OUT, else benchmarks/results/gpu
#
# --dry-run: the same stages at a tiny scale on whatever is here (the suite runs it on CPU); what
# needs torch or nvidia-smi is recorded as skipped. Wheels and the sample come from
# benchmarks/gpu_carry/ (benchmarks/gpu_wheels.sh makes it) when present; see benchmarks/README.md
# for the one-call command.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=() SLOW=1
# CPU is far slower than the GPU: a dry run gives each stage 4 times its box.
if [ "${1:-}" = "--dry-run" ]; then DRY=(--dry-run) SLOW=4; shift; fi
OUT_DIR=$(mkdir -p "${1:-${OUT:-benchmarks/results/gpu}}" && cd "${1:-${OUT:-benchmarks/results/gpu}}" && pwd)
DEADLINE=$(( ${GPU_DEADLINE_S:-450} * SLOW ))  # the whole script, wheels included (the call's limit: 480 s)
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=3
CARRY=${SWEEP_GPU_CARRY:-benchmarks/gpu_carry}  # what gpu_wheels.sh prepared (absent: use what is installed)
PY_PATH="$PWD"
if compgen -G "$CARRY/wheels/*.whl" >/dev/null; then
    SITE=$(mktemp -d)/site
    python -m pip install -q --no-index --no-deps --target "$SITE" "$CARRY"/wheels/*.whl \
        || echo "gpu.sh: installing the carried wheels failed; going on with what is installed" >&2
    PY_PATH="$SITE:$PY_PATH"
fi
export PYTHONPATH="$PY_PATH${PYTHONPATH:+:$PYTHONPATH}"
SAMPLE=../shared/data/fashion-mnist-sample
[ -d "$CARRY/fashion-mnist-sample" ] && SAMPLE="$CARRY/fashion-mnist-sample"
SAMPLE=$(cd "$SAMPLE" && pwd)
WORK=$(mktemp -d)
: > "$OUT_DIR/status.tsv"

# stage NAME BOX_SECONDS: run one stage in its own process, cut at BOX (or at what is left).
stage() {
    local name=$1 box=$(( $2 * SLOW )) left=$(( DEADLINE - SECONDS - 10 ))
    (( box > left )) && box=$left
    if (( box < 5 )); then
        printf '%s\t%s\t%s\t%s\n' "$name" - 0 "$box" >> "$OUT_DIR/status.tsv"  # no time left
        return
    fi
    local started=$SECONDS
    echo "== $name (at most ${box} s)" >&2
    timeout -k 5 "$box" python benchmarks/gpu_bench.py "$name" --out "$OUT_DIR" --work "$WORK" --sample "$SAMPLE" \
        --box "$box" "${DRY[@]}" > "$OUT_DIR/$name.log" 2>&1
    local rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" $(( SECONDS - started )) "$box" >> "$OUT_DIR/status.tsv"
    tail -n 3 "$OUT_DIR/$name.log" >&2
}

# The boxes add up to 430 s, so with the wheels installed (~20 s) every stage gets its whole box.
stage env 30
stage quickstart 80
stage epochs 70
stage floor 50
stage workers 200
python benchmarks/gpu_bench.py table --out "$OUT_DIR"
rm -rf "$WORK"
