"""The Fashion-MNIST CNN: Conv2D+MaxPool blocks, Dense, Dropout, softmax (``keras`` only)."""

from __future__ import annotations

from typing import Any

import keras

from sweep.config import ModelConfig
from sweep.training.data import IMAGE_SHAPE, NUM_CLASSES


def build_model(cfg: ModelConfig, num_classes: int = NUM_CLASSES) -> keras.Model:
    """One ``Conv2D(k, 3, relu)`` + ``MaxPooling2D`` per entry of ``cfg.filters``, then the head."""
    layers: list[Any] = [keras.Input(shape=IMAGE_SHAPE)]
    for filters in cfg.filters:
        layers += [keras.layers.Conv2D(filters, 3, activation="relu"), keras.layers.MaxPooling2D()]
    layers += [
        keras.layers.Flatten(),
        keras.layers.Dense(cfg.dense_units, activation="relu"),
        keras.layers.Dropout(cfg.dropout),
        keras.layers.Dense(num_classes, activation="softmax"),
    ]
    return keras.Sequential(layers, name="fmnist_cnn")


def compile_model(
    model: keras.Model, learning_rate: Any, optimizer: str = "adam", steps_per_execution: int = 1
) -> keras.Model:
    """Compile with sparse categorical cross-entropy and accuracy.

    ``learning_rate`` is a Python float or a ``LearningRateSchedule`` (Keras rejects
    numpy floats here).
    """
    if optimizer != "adam":
        raise ValueError(f"Argument `optimizer` must be 'adam'. Received: optimizer={optimizer!r}")
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        learning_rate = float(learning_rate)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model
