"""A second architecture for sweep: a small CNN with batch normalisation.

sweep calls ``build(input_shape, num_classes)`` and compiles what it returns (optimizer,
learning-rate schedule, loss, accuracy); the model ends in a softmax, so the config
leaves ``model.from_logits`` false. Used by ``configs/examples/bn_cnn.yaml``.
"""

import keras


def build(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = inputs if len(input_shape) == 3 else keras.layers.Reshape((*input_shape, 1))(inputs)
    for filters in (16, 32):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="bn_cnn")
