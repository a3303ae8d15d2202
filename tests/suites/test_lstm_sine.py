"""lstm_sine: Linear(1,H) LSTM(H,H) Linear(H,1) on a sine wave, unrolled or fused."""
import numpy
import pytest

from benchbench.core import seed


def test_variants_and_parameters(get):
    assert get("lstm_sine")[1] == {"hidden": 5, "fused": False, "embed": 0}
    assert get("lstm_sine:small")[1]["hidden"] == 5
    assert get("lstm_sine:wide")[1]["hidden"] == 128
    assert get("lstm_sine:wide,fused=true")[1] == {"hidden": 128, "fused": True, "embed": 0}
    assert get("lstm_sine:embed")[1] == {"hidden": 5, "fused": False, "embed": 32}
    with pytest.raises(ValueError, match="embed"):
        get("lstm_sine:embed=1")
    with pytest.raises(ValueError, match="hidden"):
        get("lstm_sine:hidden=0")


def test_the_model_is_1_5_1_and_the_data_matches_the_sequence_length(get):
    wl, params, module = get("lstm_sine:small")
    model = wl.build_model(params)
    # Linear(1,5) + LSTM(5,5) (input and recurrent gate weights, gate bias) + Linear(5,1)
    assert model.count_params() == (5 + 5) + (4 * 5 * 5 + 4 * 5 * 5 + 4 * 5) + (5 + 1)
    ds = wl.load_data("synthetic", n_train=4, n_val=2)
    x, t = ds.train
    assert x.shape == t.shape == (4, module.SEQ_LEN, 1)
    assert model(x).shape == (4, module.SEQ_LEN, 1)


@pytest.mark.parametrize("hidden", [5, 128])
def test_flops_match_a_hand_count(get, hidden):
    wl, params, module = get(f"lstm_sine:hidden={hidden}")
    per_step = 1 * hidden + (hidden + hidden) * 4 * hidden + hidden * 1
    forward = 2 * per_step * module.SEQ_LEN
    train_step = 2 * forward + 2 * (per_step - hidden) * module.SEQ_LEN
    assert wl.flops_per_sample(params) == {"forward": forward, "train_step": train_step}


def test_unrolled_and_fused_compute_the_same_losses(get, trainer):
    runs = []
    for spec in ("lstm_sine", "lstm_sine:fused=true"):
        seed(0)
        wl, params, _ = get(spec)
        runs.append(trainer.train(wl, params, steps=4, batch=10, n_train=20)[0])
    numpy.testing.assert_allclose(runs[0], runs[1], rtol=1e-4)


@pytest.mark.parametrize("spec", ["lstm_sine", "lstm_sine:fused=true"])
def test_trains_and_loss_falls_and_the_metric_is_the_mse(get, trainer, spec):
    wl, params, _ = get(spec)
    losses, model, ds = trainer.train(wl, params, steps=8, batch=10, n_train=40)
    assert losses[-1] < losses[0] and trainer.falls(losses, 3)
    x, t = ds.val
    loss, mse = trainer.evaluate(wl, params, model, x, t)
    y = trainer.as_float(((model(x).array - t) ** 2).mean())
    assert loss == pytest.approx(mse) and mse == pytest.approx(y, rel=1e-5)
    assert wl.metric == "mse" and not wl.higher_is_better


def test_the_embed_variant_gathers_repeated_rows_and_accumulates_their_gradient(get):
    from benchbench.core import functions as F

    wl, params, module = get("lstm_sine:embed")
    seed(0)
    model = wl.build_model(params)
    assert model.count_params() == 32 * 5 + (4 * 5 * 5 + 4 * 5 * 5 + 4 * 5) + (5 + 1)
    x, t = wl.load_data("synthetic", n_train=4, n_val=2).train
    loss = F.mean_squared_error(model(x), t)
    model.cleargrads()
    loss.backward()
    used = numpy.flatnonzero(numpy.abs(model.table.grad).sum(axis=1))
    assert 2 <= used.size < 32  # 200 values fall into fewer levels: rows repeat, their gradients add
