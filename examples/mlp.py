"""A non-image model for sweep: a dense network on flat feature vectors.

It returns logits (no softmax), so ``configs/examples/mlp.yaml`` sets
``model.from_logits: true`` and sweep compiles the loss to match.
"""

import keras


def build(input_shape, num_classes):
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(num_classes),  # logits
        ],
        name="mlp",
    )
