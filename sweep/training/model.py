"""The model a study trains: the user's (``model.builder``) or the built-in Fashion-MNIST CNN,
checked and compiled (``keras`` only).

A builder is called as ``function(input_shape, num_classes)`` and returns an uncompiled
``keras.Model`` whose output is class probabilities (``model.from_logits: true`` for
logits). ``make_model`` checks what it returns on two zero samples before anything
trains, so a wrong model is one line (``ConfigError``), not a traceback mid-study.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from sweep.config import Config, ModelConfig
from sweep.errors import ConfigError, exception_summary
from sweep.training.data import IMAGE_SHAPE, NUM_CLASSES
from sweep.training.entry_points import load_entry_point

BUILT_IN = "built-in CNN"


def make_model(config: Config, input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """The config's model for samples of ``input_shape`` and ``num_classes`` classes, uncompiled."""
    spec = config.model.builder
    if spec is None:
        return build_model(config.model, num_classes, input_shape)
    builder = load_entry_point(spec, config.study.code_dir, "model.builder")
    call = f"model.builder: {spec}({tuple(input_shape)}, {num_classes})"
    try:
        model = builder.function(tuple(input_shape), int(num_classes))
    except Exception as exc:  # noqa: BLE001 - the user's builder failing is bad input, in one line
        raise ConfigError(f"{call} raised {exception_summary(exc)}") from None
    if not isinstance(model, keras.Model):
        raise ConfigError(f"{call} returned a {type(model).__name__}; expected an uncompiled keras.Model")
    _check_outputs(model, call, input_shape, num_classes, config.model.from_logits)
    return model


def model_name(config: Config) -> str:
    return config.model.builder or BUILT_IN


def build_model(
    cfg: ModelConfig, num_classes: int = NUM_CLASSES, input_shape: tuple[int, ...] = IMAGE_SHAPE
) -> keras.Model:
    """The built-in CNN: one ``Conv2D(k, 3, relu)`` + ``MaxPooling2D`` per entry of ``cfg.filters``, then the head."""
    if len(input_shape) not in (2, 3):
        raise ConfigError(f"the built-in CNN needs images (H x W or H x W x C), got samples of shape "
                          f"{tuple(input_shape)}; set model.builder to a model for this data")
    layers: list[Any] = [keras.Input(shape=tuple(input_shape))]
    if len(input_shape) == 2:
        layers.append(keras.layers.Reshape((*input_shape, 1)))  # one channel
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
    model: keras.Model, learning_rate: Any, optimizer: str = "adam", steps_per_execution: int = 1,
    from_logits: bool = False,
) -> keras.Model:
    """Compile with sparse categorical cross-entropy (on logits when ``from_logits``) and accuracy.

    ``learning_rate`` is a Python float or a ``LearningRateSchedule`` (Keras rejects
    numpy floats here).
    """
    if optimizer != "adam":
        raise ValueError(f"Argument `optimizer` must be 'adam'. Received: optimizer={optimizer!r}")
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        learning_rate = float(learning_rate)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True) if from_logits else "sparse_categorical_crossentropy"
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=loss,
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model


def _check_outputs(model: keras.Model, call: str, input_shape: tuple[int, ...], num_classes: int,
                   from_logits: bool) -> None:
    """Two zero samples through the model (inference mode: no dropout, no batch-norm update)."""
    try:
        outputs = model(np.zeros((2, *input_shape), dtype="float32"), training=False)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"{call}: the model does not accept samples of shape {tuple(input_shape)}: "
                          f"{exception_summary(exc)}") from None
    if isinstance(outputs, (list, tuple, dict)):
        raise ConfigError(f"{call}: the model has {len(outputs)} outputs; expected one, of {num_classes} classes")
    values = np.asarray(keras.ops.convert_to_numpy(outputs), dtype="float64")
    if values.shape != (2, num_classes):
        raise ConfigError(f"{call}: the model's output has shape {(None, *values.shape[1:])}; expected "
                          f"(None, {num_classes}), one score for each of the data's {num_classes} classes")
    sums = values.sum(axis=1)
    if not from_logits and (values.min() < 0 or not np.allclose(sums, 1.0, atol=1e-3)):
        raise ConfigError(f"{call}: the outputs are not class probabilities (a row sums to {sums[0]:.3g}); "
                          "end the model with a softmax, or set model.from_logits: true if it returns logits")

