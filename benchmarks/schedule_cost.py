"""What the LR schedule costs per optimizer step, for every schedule family.

``TrialSchedule`` keeps every parameter in a variable so that one compiled step serves every
trial; with nine families that step must not pay for all nine. Arms, each timed as the
microseconds one schedule call costs inside a traced TensorFlow loop of ``--steps`` steps
(what a compiled train step runs once per batch):

- ``switch:<family>``: sweep's ``TrialSchedule`` (``ops.switch`` runs the selected family);
- ``where:<family>``: the same formulas with every family computed and ``ops.where`` selecting
  one (the first design);
- ``keras_cosine``: Keras' own ``CosineDecay``, the reference a user would write by hand.

For scale, the median time of one CNN train step (batch 64, synthetic images, ``fit``) is
measured too. Arms alternate within each repeat; figures are medians over repeats.

    flock /tmp/sweep-bench.lock python benchmarks/schedule_cost.py [--quick] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _harness import loadavg, machine, machine_line, median, publish  # noqa: E402

NAME = "schedule_cost"
PARAMS = {
    "constant": {},
    "exponential": {"decay_rate": 0.9, "decay_steps": 100},
    "step": {"decay_rate": 0.9, "decay_steps": 100},
    "cosine": {"min_lr_ratio": 0.01},
    "linear": {},
    "one_cycle": {"pct_start": 0.3},
    "wsd": {"decay_fraction": 0.2, "decay_shape": "sqrt"},
    "cosine_restarts": {"restart_fraction": 0.2},
    "polynomial": {"power": 2.0},
}


def where_schedule(schedule):
    """The first design: every family computed, ``ops.where`` picks the trial's."""
    from keras import ops

    from sweep.config import SCHEDULES
    from sweep.training.schedule_math import FAMILIES, after_warmup, with_warmup

    def call(step):
        v = {name: ops.convert_to_tensor(var) for name, var in schedule._vars.items()}  # noqa: SLF001
        t = ops.cast(step, "float32")

        def selected(a):
            curve = FAMILIES["constant"](ops, a, v)
            for index, name in enumerate(SCHEDULES):
                curve = ops.where(ops.equal(v["kind"], float(index)), FAMILIES[name](ops, a, v), curve)
            return curve

        return with_warmup(ops, t, v, selected(after_warmup(ops, t, v)), selected(t * 0.0))

    return call


def per_call_us(function, steps: int) -> float:
    import tensorflow as tf

    @tf.function
    def loop(n):
        total = tf.constant(0.0)
        for i in tf.range(n):
            total += function(i)
        return total

    loop(tf.constant(10))  # trace
    started = time.perf_counter()
    loop(tf.constant(steps))
    return (time.perf_counter() - started) / steps * 1e6


def train_step_ms(batch: int = 64, images: int = 2560) -> float:
    import keras
    import numpy as np

    from sweep.config import ModelConfig
    from sweep.training.model import build_model, compile_model
    from sweep.training.params import TrialParams
    from sweep.training.schedules import build_schedule

    rng = np.random.default_rng(0)
    x, y = rng.random((images, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, images)
    steps = images // batch
    model = compile_model(build_model(ModelConfig()), build_schedule(TrialParams(initial_lr=1e-3), 4 * steps))
    times = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append((time.perf_counter() - self.t) / steps * 1e3)

    model.fit(x, y, batch_size=batch, epochs=4, verbose=0, callbacks=[Clock()])
    return median(times[1:])  # the first epoch traces


def table(p: dict) -> str:
    m = p["median_us_per_call"]
    step_us = p["cnn_train_step_ms_batch64"] * 1e3
    switch = [m["switch:" + family] for family in PARAMS]
    where = [m["where:" + family] for family in PARAMS]
    rows = "\n".join(f"| {family} | {m['switch:' + family]:.0f} | {m['where:' + family]:.0f} |" for family in PARAMS)
    return (f"## What a schedule costs per step (`schedule_cost.py`)\n\n"
            f"Microseconds per schedule call inside a traced TensorFlow loop of {p['steps']:,} steps, "
            f"median of {p['repeats']} alternating repeats. `switch` is sweep's `TrialSchedule` (the selected "
            f"family only); `where` computes all nine and selects one (the first design). Keras' own "
            f"`CosineDecay`: {m['keras_cosine']:.0f} us. One CNN train step (batch 64, CPU): "
            f"{p['cnn_train_step_ms_batch64']:.1f} ms.\n\n| family | switch (us) | where (us) |\n|---|---|---|\n"
            f"{rows}\n\nSo the switch adds {min(switch) / step_us:.1%} to {max(switch) / step_us:.1%} to a CPU "
            f"train step here; the where over all nine would add {min(where) / step_us:.1%} to "
            f"{max(where) / step_us:.1%}. The gap to Keras' class is what the variables and the switch cost "
            f"(not measured apart): the price of one compiled step serving every trial. Per-call times in a loop of "
            f"tiny ops are noisy (the same arm varies by 1.5x between runs on the shared cores); read the "
            f"ratios, not the digits.\n\n"
            f"`flock /tmp/sweep-bench.lock python benchmarks/schedule_cost.py --steps {p['steps']} "
            f"--repeats {p['repeats']}`. {machine_line(p['machine'])}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat of 2,000 steps; writes nothing")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    repeats, steps = (1, 2000) if args.quick else (args.repeats, args.steps)
    started_load = loadavg()

    import keras

    from sweep.training.params import TrialParams
    from sweep.training.schedules import TrialSchedule

    arms: dict[str, list[float]] = {}
    for _ in range(repeats):
        for family, extra in PARAMS.items():
            schedule = TrialSchedule(TrialParams(initial_lr=1e-3, schedule=family, **extra), 10_000)
            arms.setdefault(f"switch:{family}", []).append(per_call_us(schedule, steps))
            arms.setdefault(f"where:{family}", []).append(per_call_us(where_schedule(schedule), steps))
        cosine = keras.optimizers.schedules.CosineDecay(1e-3, 10_000, alpha=0.01)
        arms.setdefault("keras_cosine", []).append(per_call_us(cosine, steps))
    step_ms = train_step_ms()
    medians = {arm: median(values) for arm, values in arms.items()}
    payload = {"steps": steps, "repeats": repeats, "us_per_call": arms, "median_us_per_call": medians,
               "cnn_train_step_ms_batch64": step_ms, "backend": keras.backend.backend(),
               "machine": machine(started_load)}

    summary = {"median_us_per_call": {k: round(v, 1) for k, v in medians.items()},
               "cnn_train_step_ms_batch64": round(step_ms, 2)}
    publish(NAME, payload, table, args.quick, summary)


if __name__ == "__main__":
    main()
