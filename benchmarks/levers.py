"""Speed levers of one worker, measured in one process on the real sample (seed CNN, Adam).

- ``model reuse``: a trial that builds and compiles its model (what sweep does) against
  one compiled model reused across trials (weights reset to a saved initial state,
  optimizer variables zeroed, the learning rate assigned to the optimizer's variable);
  1 epoch per trial, validation included; seconds per trial and resident-memory growth
  per trial (VmRSS). The reused arm stands for the lever's potential: sweep's schedules
  would need their parameters in variables for it to serve every trial.
- ``steps_per_execution``: 1 against 8 at batch 64 (seconds per epoch).
- ``batch size``: 32, 64, 128, 256 (images per second; accuracy is not measured here).

Arms alternate within each repeat; medians over repeats.

    python benchmarks/levers.py [--quick] [--repeats 8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import SAMPLE, loadavg, machine, machine_line, median, publish, rss_mb  # noqa: E402

NAME = "levers"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats; leaves the results alone")
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    start_load = loadavg()

    from sweep.commands import import_keras_quietly

    import_keras_quietly()
    import keras
    import numpy as np

    from sweep.config import DataConfig, ModelConfig
    from sweep.training.data import load_dataset
    from sweep.training.model import build_model, compile_model

    data = load_dataset(DataConfig(source="idx", path=str(SAMPLE)), 0)
    fit = dict(x=data.x_train, y=data.y_train, validation_data=(data.x_val, data.y_val), verbose=0, shuffle=True)

    # --- model reuse -----------------------------------------------------------------------
    reused = compile_model(build_model(ModelConfig()), 1e-3)
    initial = reused.get_weights()
    reused.fit(**fit, epochs=1, batch_size=64)  # trace once, as a worker's first trial would

    def trial_built(lr: float) -> None:
        model = compile_model(build_model(ModelConfig()), lr)
        model.fit(**fit, epochs=1, batch_size=64)
        keras.backend.clear_session()

    def trial_reused(lr: float) -> None:
        reused.set_weights(initial)
        for variable in reused.optimizer.variables:
            variable.assign(np.zeros(variable.shape, dtype=variable.dtype))
        reused.optimizer.learning_rate.assign(lr)
        reused.fit(**fit, epochs=1, batch_size=64)

    reuse = {"built": [], "reused": [], "built_mb": [], "reused_mb": []}
    trial_built(1e-3)  # the first build pays one-off costs
    for rep in range(repeats):
        for arm, run in (("built", trial_built), ("reused", trial_reused))[:: 1 if rep % 2 == 0 else -1]:
            before, started = rss_mb(), time.perf_counter()
            for lr in (3e-4, 1e-3):
                run(lr)
            reuse[arm].append((time.perf_counter() - started) / 2)
            reuse[f"{arm}_mb"].append((rss_mb() - before) / 2)
        print(f"reuse {rep}: built {reuse['built'][-1]:.2f}s (+{reuse['built_mb'][-1]:.1f} MB), reused "
              f"{reuse['reused'][-1]:.2f}s (+{reuse['reused_mb'][-1]:.1f} MB) per trial", flush=True)
    del reused

    # --- steps_per_execution and batch size ----------------------------------------------------
    def epoch_seconds(model, batch: int) -> float:
        started = time.perf_counter()
        model.fit(**fit, epochs=1, batch_size=batch)
        return time.perf_counter() - started

    def compiled(spe: int):
        model = build_model(ModelConfig())
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], steps_per_execution=spe)
        return model

    spe_models = {spe: compiled(spe) for spe in (1, 8)}
    spe = {1: [], 8: []}
    batches = {b: [] for b in (32, 64, 128, 256)}
    batch_model = compiled(1)
    for model in spe_models.values():
        epoch_seconds(model, 64)
    for b in batches:
        epoch_seconds(batch_model, b)
    for rep in range(repeats):
        for k in (1, 8)[:: 1 if rep % 2 == 0 else -1]:
            spe[k].append(epoch_seconds(spe_models[k], 64))
        for b in list(batches)[:: 1 if rep % 2 == 0 else -1]:
            batches[b].append(data.num_train / epoch_seconds(batch_model, b))
        print(f"repeat {rep}: spe1 {spe[1][-1]:.2f}s spe8 {spe[8][-1]:.2f}s; images/s "
              + ", ".join(f"b{b} {v[-1]:.0f}" for b, v in batches.items()), flush=True)

    summary = {
        "reuse": {"built_s": median(reuse["built"]), "reused_s": median(reuse["reused"]),
                  "built_mb_per_trial": median(reuse["built_mb"]), "reused_mb_per_trial": median(reuse["reused_mb"])},
        "steps_per_execution": {"1_s": median(spe[1]), "8_s": median(spe[8]),
                                "ratio_8_to_1": median([b / a for a, b in zip(spe[1], spe[8])])},
        "batch_images_per_s": {str(b): median(v) for b, v in batches.items()},
    }
    payload = {"repeats": repeats, "raw": {"reuse": reuse, "spe": spe, "batches": batches}, "median": summary,
               "machine": machine(start_load)}
    publish(NAME, payload, _table, args.quick, summary)
    return 0


def _table(p: dict) -> str:
    m = p["median"]
    r, s, b = m["reuse"], m["steps_per_execution"], m["batch_images_per_s"]
    return "\n".join([
        "## Speed levers in one worker (`benchmarks/levers.py`)",
        "",
        f"Real sample (2,700 training images), seed CNN, Adam, one process; arms alternate; medians of "
        f"{p['repeats']} repeats.",
        f"Command: `python benchmarks/levers.py`. {machine_line(p['machine'])}",
        "",
        "| lever | before | after | after / before |",
        "|---|---:|---:|---:|",
        f"| one compiled model reused across trials: s per 1-epoch trial | {r['built_s']:.2f} | {r['reused_s']:.2f} | "
        f"{r['reused_s'] / r['built_s']:.2f} |",
        f"| the same: resident memory growth per trial (MB) | {r['built_mb_per_trial']:+.1f} | "
        f"{r['reused_mb_per_trial']:+.1f} | |",
        f"| `steps_per_execution` 1 → 8, batch 64: s per epoch | {s['1_s']:.2f} | {s['8_s']:.2f} | "
        f"{s['ratio_8_to_1']:.2f} |",
        "",
        "| batch size | 32 | 64 | 128 | 256 |",
        "|---|---:|---:|---:|---:|",
        "| images/s (training epoch + validation) | " + " | ".join(f"{b[k]:.0f}" for k in ("32", "64", "128", "256")) + " |",
    ])


if __name__ == "__main__":
    sys.exit(main())
