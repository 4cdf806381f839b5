"""A regressor for sweep: a dense network with one linear output per target.

sweep calls ``build(input_shape, num_outputs)``; for real-valued targets the second
argument is the number of targets per sample (1 for ``make_regression.py``'s data), and the
model ends in a linear layer of that width (no softmax). ``configs/examples/regression.yaml``
compiles it with ``model.loss: mse`` and ``model.metrics: [mae]``.
"""

import keras


def build(input_shape, num_outputs):
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(num_outputs),  # linear: the targets themselves
        ],
        name="regression_mlp",
    )
