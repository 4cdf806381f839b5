import keras

from sweep.config import ModelConfig
from sweep.training.model import build_model, compile_model


def test_the_seed_cnn_layout():
    model = build_model(ModelConfig())
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout", "Dense"]
    assert model.layers[0].filters == 32 and model.layers[3].units == 128
    assert model.layers[4].rate == 0.1 and model.output_shape == (None, 10)
    # conv 26x26x32 -> pool 13x13x32 -> 5408 -> 128 -> 10
    assert model.count_params() == (3 * 3 * 32 + 32) + (5408 * 128 + 128) + (128 * 10 + 10)


def test_filters_add_blocks_and_compile_uses_adam():
    model = compile_model(build_model(ModelConfig(filters=[8, 16], dense_units=32)), 0.001)
    assert [type(layer).__name__ for layer in model.layers].count("Conv2D") == 2
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.loss == "sparse_categorical_crossentropy"
