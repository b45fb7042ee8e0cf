"""The neural models (autoencoder, dae, vae): what the shared contract test does not cover.

Determinism, state dicts saved and loaded with weights_only, fold-in, sparse mini-batches, early
stopping, the KL annealing schedule, AutoRec's rating prediction on a planted matrix, the
TensorBoard logs, and the CLI (``--nn-batch``/``--nn-epochs``, validation passed by train).
Tiny data and few epochs, one torch thread: fast.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from deepcart.models import neural

neural.omp_defaults()  # before torch loads (see neural.require_torch)
torch = pytest.importorskip("torch")

from deepcart.cli import main  # noqa: E402
from deepcart.errors import InputError  # noqa: E402
from deepcart.models import create  # noqa: E402
from deepcart.models.base import Recommender  # noqa: E402
from deepcart.models.vae import kl_beta  # noqa: E402
from tests.models.test_contract import planted, two_group_dataset  # noqa: E402

NEURAL = ["autoencoder", "dae", "vae"]
FAST = {"threads": 1, "progress": False, "epochs": 20}


def fast(name: str, tmp_path: Path, **params: object) -> Recommender:
    return create(name, {**FAST, "log_dir": str(tmp_path / "runs"), **params})


@pytest.mark.parametrize("name", NEURAL)
def test_same_seed_same_weights_other_seed_other_weights(name: str, tmp_path: Path) -> None:
    x = planted()
    a = fast(name, tmp_path, device="cpu").fit(x).score(x[:10])
    b = fast(name, tmp_path, device="cpu").fit(x).score(x[:10])
    c = fast(name, tmp_path, device="cpu", seed=1).fit(x).score(x[:10])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", NEURAL)
def test_on_cuda_the_same_seed_gives_the_same_model_up_to_rounding(
    name: str, tmp_path: Path
) -> None:
    # cuSPARSE and cuBLAS may sum in another order from run to run: equal up to float32
    # rounding, not bit for bit (the module's docstring says so).
    x = planted()
    a = fast(name, tmp_path, device="cuda").fit(x)
    assert next(a.net_.parameters()).device.type == "cuda"
    b = fast(name, tmp_path, device="cuda").fit(x).score(x[:10])
    c = fast(name, tmp_path, device="cuda", seed=1).fit(x).score(x[:10])
    np.testing.assert_allclose(a.score(x[:10]), b, rtol=1e-4, atol=1e-5)
    assert not np.allclose(b, c, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NEURAL)
def test_fit_and_score_warn_nothing(name: str) -> None:
    # torch 2.11 warned on a process's first sparse batch (run this test alone to see it there)
    with warnings.catch_warnings(record=True) as caught:
        fast(name, Path("unused"), log_dir=None, epochs=2).fit(planted()).score(planted()[:3])
    assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == []


def test_fit_leaves_the_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    fast("vae", tmp_path, epochs=2).fit(planted())
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


@pytest.mark.parametrize("name", NEURAL)
def test_state_dict_saved_and_loaded_with_weights_only(name: str, tmp_path: Path) -> None:
    x = planted()
    model = fast(name, tmp_path, epochs=3).fit(x)
    model.save(tmp_path / "m")
    state = torch.load(tmp_path / "m" / "model.pt", weights_only=True)
    assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    loaded = Recommender.load(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.best_epoch_ == model.best_epoch_
    np.testing.assert_array_equal(loaded.score(x[:15]), model.score(x[:15]))
    if model.predicts_ratings:
        items = np.arange(15) % x.shape[1]
        np.testing.assert_array_equal(loaded.predict(x[:15], items), model.predict(x[:15], items))


def test_load_reports_missing_or_foreign_weights(tmp_path: Path) -> None:
    model = fast("vae", tmp_path, epochs=2).fit(planted())
    model.save(tmp_path / "m")
    (tmp_path / "m" / "model.pt").unlink()
    with pytest.raises(InputError, match="model.pt: missing"):
        Recommender.load(tmp_path / "m")
    other = fast("vae", tmp_path, epochs=2, hidden_dim=8).fit(planted())
    torch.save(other.net_.state_dict(), tmp_path / "m" / "model.pt")
    with pytest.raises(InputError, match="do not fit the saved hyperparameters"):
        Recommender.load(tmp_path / "m")


@pytest.mark.parametrize("name", ["dae", "vae"])
def test_fold_in_a_new_user_follows_their_items(name: str, tmp_path: Path) -> None:
    x = planted()
    model = fast(name, tmp_path, epochs=60).fit(x)
    half = x.shape[1] // 2
    for group in (0, 1):
        new = sp.csr_matrix(
            ([1.0, 1.0, 1.0], ([0, 0, 0], np.array([1, 2, 3]) + group * half)),
            shape=(1, x.shape[1]),
        )
        idx, _ = model.recommend(new, k=5)
        assert (idx[0] // half == group).mean() >= 0.8
    # A row without interactions gets the same (popularity-like) list as any other empty row.
    empty = sp.csr_matrix((2, x.shape[1]))
    scores = model.score(empty)
    np.testing.assert_array_equal(scores[0], scores[1])


@pytest.mark.parametrize("name", NEURAL)
def test_training_takes_sparse_mini_batches(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    real = neural.SparseBatch.__init__

    def spy(self: neural.SparseBatch, x: sp.csr_matrix, *args: object, **kwargs: object) -> None:
        if x is not None:
            assert sp.issparse(x)
            sizes.append(x.shape[0])
        real(self, x, *args, **kwargs)

    monkeypatch.setattr(neural.SparseBatch, "__init__", spy)
    fast(name, tmp_path, epochs=2, batch_size=16).fit(planted())
    assert sizes and max(sizes) == 16


def test_early_stopping_stops_and_restores_the_best_epoch(tmp_path: Path) -> None:
    x = planted()
    val_in, val_check = x[:40].tolil(), sp.lil_matrix(x[:40].shape, dtype=np.float32)
    rng = np.random.default_rng(0)
    for u in range(40):  # hold out one of each validation user's items
        items = x[u].indices
        j = int(rng.choice(items))
        val_in[u, j] = 0
        val_check[u, j] = 1
    val_in, val_check = sp.csr_matrix(val_in), sp.csr_matrix(val_check)
    val_in.eliminate_zeros()
    model = fast("vae", tmp_path, epochs=300, patience=3)
    model.fit(x, val_inputs=val_in, val_check=val_check)
    ndcg = [h["val_ndcg@10"] for h in model.history_]
    assert model.epochs_run_ < 300 and model.epochs_run_ == len(ndcg)
    best = int(np.argmax(ndcg))
    assert model.best_epoch_ == best + 1
    assert model.epochs_run_ == model.best_epoch_ + 3  # patience epochs without a better NDCG
    # The weights are the best epoch's: scoring the validation users again gives its NDCG.
    device = next(model.net_.parameters()).device  # the GPU's where there is one
    assert model._val_ndcg(model.net_, device, val_in, val_check) == pytest.approx(
        ndcg[best], abs=1e-6
    )


def test_without_validation_it_trains_every_epoch(tmp_path: Path) -> None:
    model = fast("dae", tmp_path, epochs=7).fit(planted())
    assert model.epochs_run_ == 7 == model.best_epoch_
    assert "val_ndcg@10" not in model.history_[-1]


def test_validation_arguments_are_checked(tmp_path: Path) -> None:
    x = planted()
    with pytest.raises(InputError, match="go together"):
        fast("vae", tmp_path).fit(x, val_inputs=x[:5])
    with pytest.raises(InputError, match="val_check: has 3 rows"):
        fast("vae", tmp_path).fit(x, val_inputs=x[:5], val_check=x[:3])


def test_kl_annealing_schedule(tmp_path: Path) -> None:
    assert [kl_beta(s, 100, 0.2) for s in (0, 10, 20, 50)] == [0.0, 0.1, 0.2, 0.2]
    assert kl_beta(30, 100, 1.0) == pytest.approx(0.3)
    # Given steps: beta grows by 1/total per update and stops at the cap.
    x = planted()  # 120 users, batch 40: 3 updates per epoch
    model = fast("vae", tmp_path, epochs=6, batch_size=40, total_anneal_steps=30, anneal_cap=0.4)
    model.fit(x)
    betas = [h["beta"] for h in model.history_]  # mean over each epoch's updates
    assert betas == pytest.approx([1 / 30, 4 / 30, 7 / 30, 10 / 30, 0.4, 0.4])
    # The default ramp: 0.2 after 10,000 updates.
    model = fast("vae", tmp_path, epochs=2, batch_size=40).fit(x)
    assert [h["beta"] for h in model.history_] == pytest.approx([1 / 50_000, 4 / 50_000])


def test_autoencoder_predicts_planted_ratings(tmp_path: Path) -> None:
    """Ratings from a rank-2 model: AutoRec predicts held-out ones far better than the mean."""
    rng = np.random.default_rng(3)
    n_users, n_items = 400, 60
    u, v = rng.normal(size=(n_users, 2)), rng.normal(size=(n_items, 2))
    full = np.clip(np.rint(3 + 1.2 * (u @ v.T)), 1, 5)
    mask = rng.random((n_users, n_items)) < 0.35
    held = mask & (rng.random((n_users, n_items)) < 0.2)
    train = sp.csr_matrix(np.where(mask & ~held, full, 0.0), dtype=np.float32)
    model = fast("autoencoder", tmp_path, epochs=150, batch_size=64, lr=3e-3)
    model.fit(train)
    rows, cols = np.nonzero(held)
    pred = model.predict(train[rows], cols)
    truth = full[rows, cols]
    rmse = np.sqrt(np.mean((pred - truth) ** 2))
    baseline = np.sqrt(np.mean((train.data.mean() - truth) ** 2))
    assert pred.min() >= 1 and pred.max() <= 5
    assert rmse < 0.75 * baseline
    assert np.corrcoef(pred, truth)[0, 1] > 0.7


def test_tensorboard_event_files_per_epoch(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    x = planted()
    model = fast("vae", tmp_path, epochs=4)
    model.fit(x, val_inputs=x[:20], val_check=x[20:40])
    run = Path(model.log_dir_)
    assert run.parent == tmp_path / "runs" and run.name.startswith("vae-")
    assert list(run.glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(run))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    for tag in ("train/loss", "train/kl", "train/beta", "val/val_ndcg@10"):
        assert tag in tags
        assert [e.step for e in acc.Scalars(tag)] == [1, 2, 3, 4]
    # log_dir=None: no logs.
    off = fast("dae", tmp_path / "off", epochs=2, log_dir=None).fit(x)
    assert off.log_dir_ is None and not (tmp_path / "off").exists()


def test_bad_hyperparameters_are_input_errors(tmp_path: Path) -> None:
    x = planted()
    for name, params, match in [
        ("vae", {"dropout": 1.0}, "dropout"),
        ("vae", {"epochs": 0}, "epochs"),
        ("dae", {"batch_size": "big"}, "batch_size"),
        ("autoencoder", {"threads": 0}, "threads"),
        ("vae", {"device": "tpu"}, "device"),
    ]:
        with pytest.raises(InputError, match=match):
            fast(name, tmp_path, **params).fit(x)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            fast("vae", tmp_path, device="cuda").fit(x)


# ------------------------------------------------------------------------------ the CLI


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_group_dataset(tmp_path_factory.mktemp("neural"), "nn")


def _args(root: Path, *extra: str) -> list[str]:
    return [
        "--data-dir", str(root / "data"), "--data-tag", "nn", "--model-dir",
        str(root / "models"), *extra,
    ]  # fmt: skip


def test_cli_train_nn_flags_validation_and_memory_report(
    dataset: Path, capsys: pytest.CaptureFixture, tensorboard_logs_in_tmp: Path
) -> None:
    params = '{"threads": 1, "patience": 2, "progress": false}'
    argv = _args(dataset, "--type", "vae", "--nn-epochs", "40", "--nn-batch", "50")
    assert main(["train", *argv, "--params", params]) == 0
    out = capsys.readouterr().out
    assert "vae memory: training matrix" in out and "peak RSS" in out
    path = dataset / "models" / "nn" / "users" / "vae"
    loaded = Recommender.load(path)
    assert loaded.epochs == 40 and loaded.batch_size == 50
    assert loaded.epochs_run_ < 40  # the split's validation users stopped it early
    # The default log root (./runs; the tests' conftest moves it to a temporary directory).
    assert list(tensorboard_logs_in_tmp.glob("vae-*/events.out.tfevents.*"))
    # --split none: no validation users, every epoch.
    argv = _args(dataset, "--type", "dae", "--nn-epochs", "3", "--split", "none")
    assert main(["train", *argv, "--params", params]) == 0
    assert Recommender.load(dataset / "models" / "nn" / "none" / "dae").epochs_run_ == 3


def test_cli_nn_flags_need_a_neural_model(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", *_args(dataset, "--type", "ease", "--nn-epochs", "3")]) == 2
    err = capsys.readouterr().err
    assert "--nn-batch/--nn-epochs: apply to the neural models" in err
    assert err.count("\n") == 1
    argv = _args(dataset, "--type", "vae", "--nn-epochs", "3", "--params", '{"epochs": 4}')
    assert main(["train", *argv]) == 2
    assert "epochs given twice" in capsys.readouterr().err


def test_cli_test_neural_models_in_both_modes(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    reports = dataset / "reports"
    for mode in ("best", "worst"):
        argv = _args(
            dataset, "--type", "autoencoder,dae,popular", "--nn-epochs", "5", "--mode", mode,
            "--reports-dir", str(reports), "--min-engagement", "3",
        )  # fmt: skip
        assert main(["test", *argv]) == 0
        out = capsys.readouterr().out
        suffix = "" if mode == "best" else "-worst"
        assert f"autoencoder{suffix}" in out and f"dae{suffix}" in out
    # The autoencoder predicts ratings: RMSE is reported for it.
    import json

    doc = json.loads((reports / "nn" / "users" / "autoencoder" / "metrics.json").read_text())
    assert doc["metrics"]["rmse"] is not None and doc["metrics"]["ndcg"] is not None


def test_autoencoder_stops_on_validation_rmse(tmp_path: Path) -> None:
    x = planted()
    val_in, val_check = x[:30], x[30:60]
    model = fast("autoencoder", tmp_path, epochs=200, patience=3, lr=1e-2)
    model.fit(x, val_inputs=val_in, val_check=val_check, val_ratings=val_check)
    rmse = [h["val_rmse"] for h in model.history_]
    assert "val_ndcg@10" in model.history_[0]  # logged, not watched
    assert model.epochs_run_ < 200 and model.best_epoch_ == int(np.argmin(rmse)) + 1
    with pytest.raises(InputError, match="monitor"):
        fast("autoencoder", tmp_path, monitor="mae").fit(x)


def test_vae_without_a_hidden_layer(tmp_path: Path) -> None:
    model = fast("vae", tmp_path, hidden_dim=0, latent_dim=8).fit(planted())
    assert [type(m).__name__ for m in model.net_["encoder"]] == ["Linear"]
    assert model.score(planted()[:3]).shape == (3, 40)


def test_shared_hyperparameters_family_defaults_and_unknown_names() -> None:
    from deepcart.models.neural import SHARED_DEFAULTS

    for name in NEURAL:
        params = create(name).get_params()
        assert list(params)[-len(SHARED_DEFAULTS) :] == list(SHARED_DEFAULTS)
    assert create("dae").weight_decay == 1e-5 and create("vae").weight_decay == 0.0
    ae = create("autoencoder", {"epochs": 7})
    assert (ae.epochs, ae.batch_size, ae.patience) == (7, 256, 10)
    assert create("vae", {"hidden_dim": 64}).get_params()["hidden_dim"] == 64
    with pytest.raises(InputError, match="unknown hyperparameter"):
        create("vae", {"epoch": 3})
    cls = type(create("vae"))
    with pytest.raises(TypeError, match="epoch"):
        cls(epoch=3)


def test_a_log_dir_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "runs"
    blocker.write_text("a file where the TensorBoard folder goes")
    with pytest.raises(InputError, match=r"^log_dir: .*runs exists and is not a directory$"):
        fast("dae", tmp_path, log_dir=str(blocker / "sub"), epochs=1).fit(planted())


# ------------------------------------------------------------------------------ RecVAE's options

RECVAE = {
    "encoder": "dense",
    "prior": "composite",
    "beta_per_interaction": 0.005,
    "alternate": 2,
    "hidden_dim": 16,
    "latent_dim": 8,
}


def test_composite_log_prior_is_the_three_part_mixture() -> None:
    from deepcart.models.vae import composite_log_prior

    rng = np.random.default_rng(0)
    z, mu, logvar = (rng.normal(size=(4, 3)) for _ in range(3))

    def normal(x: np.ndarray, m: np.ndarray | float, var: np.ndarray | float) -> np.ndarray:
        return np.exp(-((x - m) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var)

    expected = np.log(
        3 / 20 * normal(z, 0.0, 1.0)
        + 3 / 4 * normal(z, mu, np.exp(logvar))
        + 1 / 10 * normal(z, 0.0, np.exp(10.0))
    )
    got = composite_log_prior(torch, *(torch.from_numpy(a) for a in (z, mu, logvar)))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_recvae_options_learn_fold_in_save_and_reload(tmp_path: Path) -> None:
    x = planted()
    model = fast("vae", tmp_path, epochs=30, **RECVAE).fit(x)
    assert [type(m).__name__ for m in model.net_["decoder"]] == ["Linear"]  # linear decoder
    assert len(model.net_["encoder"]["layers"]) == 5
    half = x.shape[1] // 2
    for group in (0, 1):  # a new user's list follows their items
        new = sp.csr_matrix(
            ([1.0, 1.0, 1.0], ([0, 0, 0], np.array([1, 2, 3]) + group * half)),
            shape=(1, x.shape[1]),
        )
        idx, _ = model.recommend(new, k=5)
        assert (idx[0] // half == group).mean() >= 0.8
    assert model._old_encoder is None  # the prior's copy of the encoder is for training only
    encoder = sum(p.numel() for p in model.net_["encoder"].parameters())
    assert f"the composite prior's copy of the encoder {encoder:,} parameters" in (
        model.memory_report_
    )
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score(x[:15]), model.score(x[:15]))
    again = fast("vae", tmp_path, epochs=30, **RECVAE).fit(x)
    np.testing.assert_array_equal(again.score(x[:10]), model.score(x[:10]))


@pytest.mark.parametrize("encoder", ["dense", "mlp"])
@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_an_alternating_pass_trains_its_part_only(
    part: str, encoder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fast("vae", tmp_path, epochs=1, **{**RECVAE, "encoder": encoder})
    monkeypatch.setattr(type(model), "_passes", lambda self: (part,) * 3)
    before = {}
    real_build = type(model)._build

    def build(self: object, n_items: int) -> object:
        net = real_build(self, n_items)
        before.update({k: v.detach().clone() for k, v in net.state_dict().items()})
        return net

    monkeypatch.setattr(type(model), "_build", build)
    model.fit(planted())
    after = model.net_.state_dict()
    for key, value in before.items():
        changed = not torch.equal(value, after[key])
        assert changed == key.startswith(part), key


def test_beta_per_interaction_weighs_each_users_kl_by_their_interactions(tmp_path: Path) -> None:
    x = planted()  # one batch of every user per pass
    model = fast("vae", tmp_path, epochs=2, batch_size=len(x.indptr), beta_per_interaction=0.01)
    model.fit(x)
    mean_interactions = x.nnz / x.shape[0]
    assert [h["beta"] for h in model.history_] == pytest.approx([0.01 * mean_interactions] * 2)


def test_recvae_options_are_checked(tmp_path: Path) -> None:
    x = planted()
    for params, match in [
        ({"encoder": "cnn"}, "encoder: expected one of 'mlp', 'dense', got 'cnn'"),
        ({"prior": "flat"}, "prior: expected one of 'standard', 'composite', got 'flat'"),
        ({"beta_per_interaction": -0.1}, "beta_per_interaction"),
        ({"alternate": 1.5}, "alternate"),
        ({"encoder": "dense", "hidden_dim": 0}, "hidden_dim: expected at least 1 with encoder"),
    ]:
        with pytest.raises(InputError, match=match):
            fast("vae", tmp_path, **params).fit(x)
