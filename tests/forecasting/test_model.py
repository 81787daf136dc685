import keras
import numpy as np
import pytest

from forecasting.errors import ModelArtifactError
from forecasting.features import prepare
from forecasting.model import (
    build_model,
    file_sha256,
    fine_tune,
    load_model,
    save_model,
    set_seed,
    train,
)


def _layer(model: keras.Model, name: str) -> keras.layers.Layer:
    return model.get_layer(name)


def test_default_architecture_is_the_original_design():
    model = build_model(n_features=5)
    lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    assert [layer.units for layer in lstms] == [50, 50, 50]
    assert [layer.return_sequences for layer in lstms] == [True, True, False]
    head = model.layers[-1]
    assert isinstance(head, keras.layers.Dense) and head.units == 1
    assert head.activation is keras.activations.linear
    assert model.input_shape == (None, 10, 5) and model.output_shape == (None, 1)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)
    assert model.loss == "mse"


def test_scaling_is_built_into_the_model(prepared):
    model = build_model(prepared.n_features, scaling=prepared.scaling, dropout=0.2, layers=2)
    normalization = _layer(model, "input_scaling")
    rescaling = _layer(model, "target_scaling")
    assert model.layers[1] is normalization and model.layers[-1] is rescaling
    np.testing.assert_allclose(normalization.mean.numpy().ravel(), prepared.scaling.feature_mean,
                               rtol=1e-6)  # fmt: skip
    assert rescaling.scale == pytest.approx(prepared.scaling.target_std)
    assert rescaling.offset == pytest.approx(prepared.scaling.target_mean)
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n_features": 0}, "n_features"),
        ({"n_features": 5, "units": 0}, "units"),
        ({"n_features": 5, "layers": 2.5}, "layers"),
        ({"n_features": 5, "dropout": 1.0}, "dropout"),
        ({"n_features": 5, "learning_rate": 0.0}, "learning_rate"),
    ],
)
def test_bad_arguments_are_value_errors(arguments, message):
    with pytest.raises(ValueError, match=message):
        build_model(**arguments)


def test_set_seed_rejects_a_non_integer():
    with pytest.raises(ValueError, match="seed"):
        set_seed("42")


def test_training_reduces_loss_and_restores_the_best_weights(trained, prepared):
    history = trained.history
    assert history["loss"][-1] < history["loss"][0]
    assert trained.mode == "retrain" and trained.training_windows == len(prepared.train)
    loss = trained.model.evaluate(prepared.validation.x, prepared.validation.y, verbose=0)
    assert loss == pytest.approx(trained.best_validation_loss, rel=1e-4)


@pytest.mark.slow
def test_early_stopping_stops_before_max_epochs(prepared, tiny_training):
    config = tiny_training.model_copy(update={"max_epochs": 60, "patience": 1, "seed": 5})
    result = train(prepared, config)
    assert result.epochs_run < 60
    assert result.epochs_run == result.best_epoch + 1


@pytest.mark.slow
def test_same_seed_gives_identical_predictions(prepared, tiny_training, trained):
    again = train(prepared, tiny_training)
    first = trained.model.predict(prepared.test.x, verbose=0)
    second = again.model.predict(prepared.test.x, verbose=0)
    np.testing.assert_array_equal(first, second)
    for old, new in zip(trained.model.get_weights(), again.model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    other = train(prepared, tiny_training.model_copy(update={"seed": 4}))
    assert not np.array_equal(first, other.model.predict(prepared.test.x, verbose=0))


def test_fine_tune_changes_weights_but_keeps_the_champions_scaling(
    trained, tiny_training, make_prices
):
    champion = trained.model
    before = [weights.copy() for weights in champion.get_weights()]
    newer = prepare(make_prices(320, seed=11))  # other data, other statistics
    result = fine_tune(champion, newer, tiny_training)
    candidate = result.model
    assert result.mode == "finetune" and result.training_windows == 50
    assert result.epochs_run <= tiny_training.finetune_epochs
    assert candidate.optimizer.learning_rate.numpy() == pytest.approx(1e-2)
    for name in ("input_scaling", "target_scaling"):
        assert _layer(candidate, name).get_config() == _layer(champion, name).get_config()
    changed = [
        not np.array_equal(old, new)
        for old, new in zip(before, candidate.get_weights(), strict=True)
    ]
    assert any(changed)
    for old, kept in zip(before, champion.get_weights(), strict=True):
        np.testing.assert_array_equal(old, kept)


def test_fine_tune_refuses_windows_of_another_shape(prepared, tiny_training):
    model = build_model(prepared.n_features, sequence_length=5, layers=1, units=2)
    with pytest.raises(ValueError, match="retrain"):
        fine_tune(model, prepared, tiny_training)


def test_save_and_load_round_trip(trained, prepared, tmp_path):
    path = tmp_path / "models" / "champion.keras"
    digest = save_model(trained.model, path)
    assert digest == file_sha256(path) and len(digest) == 64
    assert [item.name for item in path.parent.iterdir()] == ["champion.keras"]
    loaded = load_model(path, sha256=digest)
    np.testing.assert_array_equal(
        loaded.predict(prepared.test.x, verbose=0),
        trained.model.predict(prepared.test.x, verbose=0),
    )
    # Self-contained: plain Keras reads it without custom objects.
    assert keras.saving.load_model(path).get_layer("target_scaling") is not None


def test_tampered_file_is_refused(trained, tmp_path):
    path = tmp_path / "champion.keras"
    digest = save_model(trained.model, path)
    with path.open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelArtifactError, match=r"sha256.*retrain with --mode retrain"):
        load_model(path, sha256=digest)


def test_garbage_and_missing_files_are_artifact_errors(tmp_path):
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"this is not a zip archive")
    with pytest.raises(ModelArtifactError, match="cannot be read") as caught:
        load_model(garbage)
    assert "\n" not in str(caught.value)
    with pytest.raises(ModelArtifactError, match="missing"):
        load_model(tmp_path / "absent.keras", sha256="0" * 64)


def test_save_needs_a_keras_suffix(trained, tmp_path):
    with pytest.raises(ValueError, match=r"\.keras"):
        save_model(trained.model, tmp_path / "model.h5")
