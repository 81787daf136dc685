import hashlib
import math
import random

import keras
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecasting.errors import ModelArtifactError
from forecasting.features import prepare
from forecasting.model import (
    SCALE_FLOOR,
    DistributionHead,
    SavedModel,
    build_model,
    file_sha256,
    fine_tune,
    load_model,
    predict_distribution,
    save_model,
    set_seed,
    student_t_nll,
    train,
    walk_forward,
)
from forecasting.scoring import student_t_loss

# Four forecasts of a log return: what happened, mu and sigma.
ACTUAL = np.array([0.0, 1.0, -0.03, 0.05])
LOCATION = np.array([0.0, 0.0, 0.01, -0.02])
SCALE = np.array([1.0, 2.0, 0.02, 0.01])
# -log of Student's t(5) density at 0: Gamma(3) / (Gamma(5/2) sqrt(5 pi)) = 8 / (3 pi sqrt(5)).
NLL_AT_ZERO = math.log(3 * math.pi * math.sqrt(5) / 8)


def _nll_by_hand(actual, location, scale) -> float:
    z = (actual - location) / scale
    return float(np.mean(np.log(scale) + 3.0 * np.log1p(z * z / 5.0) + NLL_AT_ZERO))


def _copy(model: keras.Model, folder) -> keras.Model:
    """An independent copy (weights and compiled state) through a saved file."""
    path = folder / "copy.keras"
    save_model(model, path)
    return load_model(path)


def _assert_same_weights(first: list[np.ndarray], second: list[np.ndarray]) -> None:
    assert len(first) == len(second)
    for old, new in zip(first, second, strict=True):
        np.testing.assert_array_equal(old, new)


def test_default_architecture_is_three_lstms_and_a_distribution_head():
    model = build_model(n_features=6)
    lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    assert [layer.units for layer in lstms] == [50, 50, 50]
    assert [layer.return_sequences for layer in lstms] == [True, True, False]
    head = model.get_layer("head")
    assert isinstance(head, keras.layers.Dense) and head.units == 2
    assert head.activation is keras.activations.linear
    assert model.layers[-2] is head and isinstance(model.layers[-1], DistributionHead)
    assert model.input_shape == (None, 10, 6) and model.output_shape == (None, 2)
    assert not any(
        isinstance(layer, keras.layers.Dropout | keras.layers.Normalization)
        for layer in model.layers
    )
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert model.loss is student_t_nll


def test_scaling_is_built_into_the_model(prepared):
    scaling = prepared.scaling
    model = build_model(prepared.n_features, scaling=scaling, dropout=0.2, layers=2)
    normalization = model.get_layer("input_scaling")
    head = model.get_layer("distribution")
    assert model.layers[1] is normalization and model.layers[-1] is head
    np.testing.assert_allclose(normalization.mean.numpy().ravel(), scaling.feature_mean, rtol=1e-6)
    np.testing.assert_allclose(
        normalization.variance.numpy().ravel(), scaling.feature_std**2, rtol=1e-6
    )
    assert head.target_mean == scaling.target_mean and head.target_std == scaling.target_std
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers) == 2


def test_distribution_head_by_hand():
    head = DistributionHead(target_mean=0.01, target_std=0.02)
    raw = np.array([[0.5, 0.0], [-1.0, 2.0], [0.0, -60.0]], dtype="float32")
    output = keras.ops.convert_to_numpy(head(raw)).astype("float64")
    # softplus(x + log(e - 1)) = log(1 + (e - 1) e^x): 1 at x = 0.
    np.testing.assert_allclose(output[:, 0], [0.02, -0.01, 0.01], rtol=1e-6)
    expected_scale = [
        0.02 + SCALE_FLOOR,
        math.log1p((math.e - 1) * math.exp(2.0)) * 0.02 + SCALE_FLOOR,
        SCALE_FLOOR,  # the floor keeps a hopeless raw scale positive
    ]
    np.testing.assert_allclose(output[:, 1], expected_scale, rtol=1e-5)
    assert (output[:, 1] > 0).all()
    again = DistributionHead.from_config(head.get_config())
    assert (again.target_mean, again.target_std) == (0.01, 0.02)


def test_student_t_nll_by_hand_and_by_scipy():
    by_hand = _nll_by_hand(ACTUAL, LOCATION, SCALE)
    assert by_hand == pytest.approx(
        (NLL_AT_ZERO + (math.log(2) + 3 * math.log(1.05) + NLL_AT_ZERO)
         + (math.log(0.02) + 3 * math.log(1 + 4 / 5) + NLL_AT_ZERO)
         + (math.log(0.01) + 3 * math.log(1 + 49 / 5) + NLL_AT_ZERO)) / 4,
        rel=1e-12,
    )  # fmt: skip
    scipy_loss = -np.mean(stats.t.logpdf(ACTUAL, df=5, loc=LOCATION, scale=SCALE))
    assert by_hand == pytest.approx(scipy_loss, rel=1e-12)
    predicted = keras.ops.convert_to_tensor(np.stack([LOCATION, SCALE], axis=1))
    keras_loss = float(student_t_nll(keras.ops.convert_to_tensor(ACTUAL), predicted))
    assert keras_loss == pytest.approx(scipy_loss, rel=1e-9)
    assert float(student_t_nll(np.zeros(1), np.array([[0.0, 1.0]]))) == pytest.approx(NLL_AT_ZERO)


def test_numpy_student_t_loss_equals_the_keras_loss():
    base = np.array([100.0, 50.0, 20.0, 10.0])
    record = pd.DataFrame(
        {
            "base_close": [*base, 30.0],
            "actual_close": [*(base * np.exp(ACTUAL)), np.nan],  # the last is not realized
            "predicted_close": [*(base * np.exp(LOCATION)), 31.0],
            "scale": [*SCALE, 0.02],
        }
    )
    keras_loss = float(student_t_nll(ACTUAL, np.stack([LOCATION, SCALE], axis=1)))
    assert student_t_loss(record) == pytest.approx(keras_loss, rel=1e-9)
    assert math.isnan(student_t_loss(record.iloc[4:]))


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


def test_set_seed_sets_tensorflow_s_seed_only_when_it_changes(monkeypatch):
    # Each tf.random.set_seed empties TensorFlow's kernel cache (about 0.75 s a fit after it).
    import tensorflow as tf

    calls = []
    real = tf.random.set_seed
    monkeypatch.setattr(tf.random, "set_seed", lambda seed: (calls.append(seed), real(seed)))
    set_seed(11)
    set_seed(11)
    set_seed(12)
    set_seed(12)
    assert calls == [11, 12]
    assert random.random() == random.Random(12).random()  # Python's is reseeded every time


def test_forecast_scales_are_positive_and_batching_does_not_change_them(trained, prepared):
    location, scale = predict_distribution(trained.model, prepared.windows.x)
    assert location.shape == scale.shape == (len(prepared.windows),)
    assert location.dtype == scale.dtype == np.float64
    assert np.isfinite(location).all() and (scale > 0).all()
    # Above 1024 windows predict() runs in batches: the same numbers.
    many = np.concatenate([prepared.windows.x] * 5)[:1100]
    batched_location, batched_scale = predict_distribution(trained.model, many)
    np.testing.assert_allclose(batched_location[:270], location, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(batched_scale[:270], scale, rtol=1e-5)


def test_training_reduces_loss_and_restores_the_best_weights(trained, prepared):
    history = trained.history
    assert len(history["loss"]) == trained.epochs_run == 3
    assert history["loss"][-1] < history["loss"][0]
    assert trained.mode == "retrain" and trained.training_windows == len(prepared.train)
    assert trained.best_validation_loss == min(history["val_loss"])
    assert trained.best_epoch == 1 + int(np.argmin(history["val_loss"]))
    validation = prepared.validation
    loss = trained.model.evaluate(validation.x, validation.y, verbose=0)
    assert loss == pytest.approx(trained.best_validation_loss, rel=1e-4)


@pytest.mark.slow
def test_early_stopping_stops_patience_epochs_after_the_best(prepared, tiny_training):
    config = tiny_training.model_copy(update={"max_epochs": 60, "patience": 1, "seed": 5})
    result = train(prepared, config)
    assert result.epochs_run < 60
    assert result.epochs_run == result.best_epoch + 1
    assert result.history["val_loss"][-1] > result.best_validation_loss


@pytest.mark.slow
def test_same_seed_gives_identical_weights(prepared, tiny_training, trained):
    # Unseeded, two trainings start from different random weights and shuffles.
    again = train(prepared, tiny_training)
    _assert_same_weights(trained.model.get_weights(), again.model.get_weights())
    assert again.history == trained.history


@pytest.mark.slow
def test_steps_per_call_change_the_speed_not_the_numbers(prepared, tiny_training, monkeypatch):
    import forecasting.model.network as network_module
    import forecasting.model.trace as trace_module

    config = tiny_training.model_copy(update={"batch_size": 16})
    assert len(prepared.train) > 10 * config.batch_size  # an epoch is one call of many steps
    assert network_module.STEPS_PER_CALL >= 16
    many = train(prepared, config)
    # One step a call, on a network of its own (the shared one is compiled once a process).
    monkeypatch.setattr(network_module, "STEPS_PER_CALL", 1)
    monkeypatch.setattr(trace_module, "_shared_networks", {})
    one = train(prepared, config)
    (shared,) = trace_module._shared_networks.values()
    assert shared.network.steps_per_execution == 1
    _assert_same_weights(many.model.get_weights(), one.model.get_weights())
    assert one.history == many.history


def test_fit_batches_hold_every_window_once_an_epoch_in_a_seeded_order(prepared):
    from forecasting.model.training import _batches

    split = prepared.train

    def epochs(dataset, count=2):
        return [np.concatenate([y for _, y in dataset]) for _ in range(count)]

    first, second = epochs(_batches(split, 64, shuffle_seed=3))
    assert sorted(first) == sorted(second) == sorted(split.y)
    assert not np.array_equal(first, second)  # reshuffled every epoch
    again = epochs(_batches(split, 64, shuffle_seed=3))
    np.testing.assert_array_equal(again[0], first)
    np.testing.assert_array_equal(again[1], second)
    assert not np.array_equal(epochs(_batches(split, 64, shuffle_seed=4), 1)[0], first)
    (ordered,) = epochs(_batches(split, 64), 1)
    np.testing.assert_array_equal(ordered, split.y)  # validation: in order
    # No autotuning, one thread: a fit never waits on the pipeline's threads when the
    # cores are busy (two one-thread Dask workers on 2 cores).
    options = _batches(split, 64).options()
    assert options.autotune.enabled is False
    assert options.threading.private_threadpool_size == 1


def test_initial_weights_depend_on_the_seed_alone():
    # A Dask worker's other threads draw from Python's global generator at any moment; Keras'
    # unseeded layers drew their initializer seeds from it, so a fresh worker sometimes
    # started a ticker from other weights than the local runner did.
    random.seed(1)
    first = build_model(3, sequence_length=4, layers=2, units=3, dropout=0.1).get_weights()
    random.seed(2)
    random.random()
    second = build_model(3, sequence_length=4, layers=2, units=3, dropout=0.1).get_weights()
    other = build_model(3, sequence_length=4, layers=2, units=3, dropout=0.1, seed=7)
    _assert_same_weights(first, second)
    kernels = [w for w in first if w.ndim == 2]
    assert len({w.tobytes() for w in kernels}) == len(kernels)  # no two layers share draws
    assert not np.array_equal(first[0], other.get_weights()[0])


def test_walk_forward_changes_weights_in_place_and_keeps_the_scaling(
    trained, prepared, tiny_training, tmp_path
):
    model = _copy(trained.model, tmp_path)
    trainable = [weight.numpy().copy() for weight in model.trainable_weights]
    mean = model.get_layer("input_scaling").mean.numpy().copy()
    configs = {
        name: model.get_layer(name).get_config() for name in ("input_scaling", "distribution")
    }
    result = walk_forward(model, prepared.windows[-50:], tiny_training)
    assert result.model is model
    assert (result.mode, result.training_windows, result.epochs_run) == ("finetune", 50, 2)
    assert result.best_validation_loss is None and len(result.history["loss"]) == 2
    for name, config in configs.items():
        assert model.get_layer(name).get_config() == config
    # Every weight (LSTM kernels and bias, head) moved; the fit windows' statistics did not.
    assert len(trainable) == len(model.weights) == 5
    for old, weight in zip(trainable, model.trainable_weights, strict=True):
        assert not np.array_equal(old, weight.numpy()), weight.path
    np.testing.assert_array_equal(model.get_layer("input_scaling").mean.numpy(), mean)
    np.testing.assert_allclose(mean.ravel(), prepared.scaling.feature_mean, rtol=1e-6)
    # The session's model, copied before, is untouched.
    np.testing.assert_array_equal(trained.model.trainable_weights[-1].numpy(), trainable[-1])


@pytest.mark.parametrize(("finetune_windows", "expected"), [(50, 50), (400, 270)])
def test_fine_tune_walks_the_newest_finetune_windows(
    prepared, tiny_training, monkeypatch, finetune_windows, expected
):
    calls = []
    monkeypatch.setattr(
        "forecasting.model.training.walk_forward",
        lambda model, windows, config, **_: calls.append((model, windows, config)) or "walked",
    )
    config = tiny_training.model_copy(update={"finetune_windows": finetune_windows})
    champion = object()
    assert fine_tune(champion, prepared, config) == "walked"
    [(model, windows, passed)] = calls
    assert model is champion and passed is config and len(windows) == expected
    # The newest windows, the as-of date's own target included.
    assert windows.target_dates.equals(prepared.windows.target_dates[-expected:])
    assert windows.target_dates[-1].date() == prepared.last_date


def _own_trace_only(monkeypatch) -> None:
    """Make every model train and predict on its own trace, as without the shared network."""
    monkeypatch.setattr("forecasting.model.trace._shared_network", lambda model: None)


def _train_walk_and_fine_tune(prepared, config, tomorrow):
    result = train(prepared, config)
    walk_forward(result.model, prepared.windows[len(prepared.train) :], config, mode="retrain")
    walked = result.model.get_weights()
    fine_tune(result.model, tomorrow, config)
    return result, walked, predict_distribution(result.model, tomorrow.test.x)


@pytest.mark.slow
def test_the_shared_network_gives_exactly_what_a_model_s_own_trace_gives(
    prepared, tiny_training, make_prices, monkeypatch
):
    # Two layers and a batch that does not divide the windows: the shapes a real run has.
    config = tiny_training.model_copy(update={"layers": 2, "batch_size": 48, "max_epochs": 4})
    tomorrow = prepare(make_prices(320, seed=11))
    first = _train_walk_and_fine_tune(prepared, config, tomorrow)
    second = _train_walk_and_fine_tune(prepared, config, tomorrow)  # the trace reused
    with monkeypatch.context() as patch:
        _own_trace_only(patch)
        own = _train_walk_and_fine_tune(prepared, config, tomorrow)
    for other in (second, own):
        assert other[0].history == first[0].history
        _assert_same_weights(other[1], first[1])
        _assert_same_weights(other[0].model.get_weights(), first[0].model.get_weights())
        for mine, theirs in zip(other[2], first[2], strict=True):
            np.testing.assert_array_equal(mine, theirs)


@pytest.mark.slow
@pytest.mark.parametrize("shared", [True, False], ids=["shared-network", "own-trace"])
def test_a_loaded_champion_and_the_one_kept_in_memory_fine_tune_identically(
    trained, prepared, tiny_training, make_prices, tmp_path, monkeypatch, shared
):
    if not shared:
        _own_trace_only(monkeypatch)
    # As a retrain does: fit, then walk forward through the held-out windows at the
    # fine-tune rate. On its own trace, the model's optimizer now has that rate and a state.
    kept = _copy(trained.model, tmp_path)
    walk_forward(kept, prepared.windows[len(prepared.train) :], tiny_training, mode="retrain")
    if not shared:
        assert int(kept.optimizer.iterations) == 2 * math.ceil(80 / 64)
        assert any(
            np.abs(keras.ops.convert_to_numpy(variable)).sum() > 0
            for variable in kept.optimizer.variables
            if "momentum" in variable.path or "velocity" in variable.path
        )
    path = tmp_path / "champion.keras"
    loaded = load_model(path, sha256=save_model(kept, path))
    _assert_same_weights(kept.get_weights(), loaded.get_weights())
    # The contract both must meet: a fine-tune starts from a fresh Adam at the fine-tune rate.
    fresh = load_model(path)
    fresh.compile(optimizer=keras.optimizers.Adam(5e-3), loss=student_t_nll)
    tomorrow = prepare(make_prices(320, seed=11))
    for model in (kept, loaded, fresh):
        fine_tune(model, tomorrow, tiny_training)
    assert not np.array_equal(kept.get_weights()[-1], trained.model.get_weights()[-1])
    _assert_same_weights(kept.get_weights(), loaded.get_weights())
    _assert_same_weights(kept.get_weights(), fresh.get_weights())


def test_walk_forward_refuses_windows_of_another_shape(prepared, tiny_training):
    model = build_model(prepared.n_features, sequence_length=5, layers=1, units=2)
    with pytest.raises(ValueError, match=r"shape \(5, 6\).*\(10, 6\).*--mode retrain"):
        fine_tune(model, prepared, tiny_training)


def test_save_and_load_round_trip(trained, prepared, tmp_path):
    path = tmp_path / "models" / "champion.keras"
    digest = save_model(trained.model, path)
    assert digest == file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [item.name for item in path.parent.iterdir()] == ["champion.keras"]
    loaded = load_model(path, sha256=digest.upper())
    _assert_same_weights(loaded.get_weights(), trained.model.get_weights())
    np.testing.assert_array_equal(
        loaded.predict_on_batch(prepared.test.x), trained.model.predict_on_batch(prepared.test.x)
    )
    # The custom head and loss come back as themselves, with the fit windows' statistics.
    head = loaded.get_layer("distribution")
    assert isinstance(head, DistributionHead) and loaded.loss is student_t_nll
    assert head.get_config() == trained.model.get_layer("distribution").get_config()
    assert head.target_std == pytest.approx(prepared.scaling.target_std)
    # Plain Keras reads it too, once forecasting.model is imported (it registers both).
    assert isinstance(keras.saving.load_model(path).layers[-1], DistributionHead)


def test_the_next_load_of_a_model_just_saved_takes_the_live_model_once(trained):
    saved = SavedModel.of(trained.model)
    assert saved.load() is trained.model  # the forecast after a fine-tune: no rebuild
    again = saved.load()  # anyone else (or another process) gets it from the bytes
    assert again is not trained.model
    _assert_same_weights(again.get_weights(), trained.model.get_weights())
    SavedModel.of(trained.model)
    flipped = bytearray(saved.content)
    flipped[len(flipped) // 2] ^= 1
    with pytest.raises(ModelArtifactError, match="sha256"):
        SavedModel(bytes(flipped), saved.sha256).load()


def test_a_flipped_byte_is_refused_in_one_line(trained, tmp_path):
    path = tmp_path / "champion.keras"
    digest = save_model(trained.model, path)
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))
    actual = hashlib.sha256(bytes(content)).hexdigest()
    with pytest.raises(ModelArtifactError) as caught:
        load_model(path, sha256=digest)
    assert str(caught.value) == (
        f"model file {path} has sha256 {actual[:12]}..., not the recorded {digest[:12]}...: "
        "it was changed or corrupted; retrain with --mode retrain"
    )


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


def test_models_with_dropout_keep_their_own_trace():
    # Dropout draws random numbers inside the step: a shared trace would not replay them.
    from forecasting.model.trace import _shared_network

    assert _shared_network(build_model(6, layers=2, units=4, dropout=0.1)) is None
    shared = _shared_network(build_model(6, layers=2, units=4))
    assert shared is _shared_network(build_model(6, layers=2, units=4))
    assert shared is not _shared_network(build_model(6, layers=2, units=5))
