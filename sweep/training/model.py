"""The model a study trains: the user's (``model.builder``) or the built-in Fashion-MNIST CNN,
checked and compiled (``keras`` only).

A builder is called as ``function(input_shape, num_outputs)`` and returns an uncompiled
``keras.Model``. For class labels ``num_outputs`` is the number of classes and the output
is class probabilities (``model.from_logits: true`` for logits); for real-valued targets
(a regression) it is the number of targets per sample (1 for one value each) and the
output is those values (a linear last layer). ``make_model`` checks what it returns on
two zero samples before anything trains, so a wrong model is one line (``ConfigError``),
not a traceback mid-study.

``compile_model`` compiles with ``model.loss`` (a Keras loss name or the user's
``"module:function"``) and ``model.metrics``; ``check_compile`` resolves both (and the
optimizer's arguments) before anything runs.
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


def make_model(config: Config, input_shape: tuple[int, ...], num_classes: int, labels: str = "classes") -> keras.Model:
    """The config's model for samples of ``input_shape`` and ``num_classes`` classes (or outputs
    of a regression, ``labels`` "values"), uncompiled."""
    spec = config.model.builder
    if spec is None:
        return build_model(config.model, num_classes, input_shape, regression=labels == "values")
    builder = load_entry_point(spec, config.study.code_dir, "model.builder")
    call = f"model.builder: {spec}({tuple(input_shape)}, {num_classes})"
    try:
        model = builder.function(tuple(input_shape), int(num_classes))
    except Exception as exc:  # noqa: BLE001 - the user's builder failing is bad input, in one line
        raise ConfigError(f"{call} raised {exception_summary(exc)}") from None
    if not isinstance(model, keras.Model):
        raise ConfigError(f"{call} returned a {type(model).__name__}; expected an uncompiled keras.Model")
    _check_outputs(model, call, input_shape, num_classes, config.model.from_logits or labels == "values")
    return model


def model_name(config: Config) -> str:
    return config.model.builder or BUILT_IN


def build_model(
    cfg: ModelConfig, num_classes: int = NUM_CLASSES, input_shape: tuple[int, ...] = IMAGE_SHAPE,
    regression: bool = False,
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
        keras.layers.Dense(num_classes, activation=None if regression else "softmax"),
    ]
    return keras.Sequential(layers, name="fmnist_cnn")


def compile_model(model: keras.Model, learning_rate: Any, config: Config | None = None, labels: str = "classes",
                  params: Any = None, total_steps: int = 1) -> keras.Model:
    """Compile with ``model.loss`` (default for ``labels``: cross-entropy for classes, mean squared
    error for values), ``model.metrics`` and the optimizer: ``learning_rate`` when it is a
    ``keras.Optimizer`` already, else the config's (``optimizers.make_optimizer``) with
    ``learning_rate`` (a Python float or a ``LearningRateSchedule``) for trial ``params``.
    ``config`` defaults to ``Config()``: Adam and sparse cross-entropy with accuracy."""
    from sweep.training.optimizers import make_optimizer
    from sweep.training.params import TrialParams

    config = config or Config()
    optimizer = learning_rate
    if not isinstance(learning_rate, keras.optimizers.Optimizer):
        params = params or TrialParams(initial_lr=1e-3)
        optimizer = make_optimizer(config, params, learning_rate, total_steps)
    model.compile(optimizer=optimizer, loss=make_loss(config, labels), metrics=list(config.model.metrics),
                  steps_per_execution=config.train.steps_per_execution)
    return model


_CROSS_ENTROPIES = {"sparse_categorical_crossentropy": keras.losses.SparseCategoricalCrossentropy,
                    "categorical_crossentropy": keras.losses.CategoricalCrossentropy,
                    "binary_crossentropy": keras.losses.BinaryCrossentropy}
_DEFAULT_LOSS = {"classes": "sparse_categorical_crossentropy", "onehot": "categorical_crossentropy", "values": "mse"}


def make_loss(config: Config, labels: str = "classes") -> Any:
    """``model.loss`` as Keras takes it: a name, a cross-entropy on logits (``from_logits``) or
    the user's function wrapped to survive a checkpoint (``EntryPointLoss``)."""
    spec = config.model.loss or _DEFAULT_LOSS[labels]
    if ":" in spec:
        return EntryPointLoss(spec, config.study.code_dir)
    try:
        keras.losses.get(spec)
    except ValueError:
        raise ConfigError(f"model.loss: {spec!r} is not a Keras loss; expected a name such as mse, mae, huber, "
                          "binary_crossentropy, categorical_crossentropy, or 'module:function'") from None
    if config.model.from_logits and spec in _CROSS_ENTROPIES:
        return _CROSS_ENTROPIES[spec](from_logits=True)
    return spec


def check_compile(config: Config) -> None:
    """Resolve ``model.loss``, ``model.metrics`` and ``train.optimizer_args`` before anything runs
    (``ConfigError``, one line, on the first that Keras does not know)."""
    from sweep.training.optimizers import check_optimizer_args

    check_optimizer_args(config)
    make_loss(config)
    for name in config.model.metrics:
        if name in ("accuracy", "acc", "crossentropy", "ce"):
            continue  # compile resolves these by the loss and the labels' shape
        try:
            keras.metrics.get(name)
        except ValueError:
            raise ConfigError(f"model.metrics: {name!r} is not a Keras metric; expected names such as accuracy, "
                              "auc, mae, mse, precision, recall, top_k_categorical_accuracy") from None


@keras.saving.register_keras_serializable(package="sweep")
class EntryPointLoss(keras.losses.Loss):
    """The user's ``"module:function"(y_true, y_pred)`` as a Keras loss that a checkpoint stores
    by its spec (loaded again, by ``sweep.training.entry_points``' rules, when it is read)."""

    def __init__(self, spec: str, code_dir: str | None = None, **kwargs: Any):
        super().__init__(name=kwargs.pop("name", spec.partition(":")[2]), **kwargs)
        self.spec, self.code_dir = spec, code_dir
        self._function = load_entry_point(spec, code_dir, "model.loss").function

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return self._function(y_true, y_pred)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "spec": self.spec, "code_dir": self.code_dir}


def _check_outputs(model: keras.Model, call: str, input_shape: tuple[int, ...], num_classes: int,
                   any_values: bool) -> None:
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
    if not any_values and (values.min() < 0 or not np.allclose(sums, 1.0, atol=1e-3)):
        raise ConfigError(f"{call}: the outputs are not class probabilities (a row sums to {sums[0]:.3g}); "
                          "end the model with a softmax, or set model.from_logits: true if it returns logits")

