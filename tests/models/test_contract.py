"""The model contract, run on every registered model (STYLE.md: one shared behavioural test)."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from deepcart.errors import FitDiverged, InputError
from deepcart.models import REGISTRY, available, create, model_class, parse_params
from deepcart.models.base import NotFittedError, Recommender

#: Models that cannot learn structure by design (the floor).
NON_LEARNING = {"random"}
#: Models that rank every user's items the same way (popularity or item rating).
NON_PERSONALIZED = {"popular", "naive", "weighted-rating", "baseline"}
#: A value of the wrong type for every hyperparameter (no hyperparameter takes a list).
WRONG_TYPE = ["x"]
#: An out-of-range (or not-a-choice) value of the right JSON type for every hyperparameter of
#: every registered model, bad for each model that has the name; a new hyperparameter needs one.
#: For booleans and log_dir no value of the right type is bad: there, a second wrong type.
BAD_VALUES: dict[str, object] = {
    # random, svd, als, the neural ones
    "seed": -1,
    # naive, weighted-rating, baseline, svd
    "min_ratings": 0,
    "m": -1,
    "quantile": 1.5,
    "item_reg": -1.0,
    "user_reg": -1.0,
    "factors": 0,
    "reg": 0,  # svd and ease: > 0
    "item_bias_reg": 0,
    "user_bias_reg": 0,
    "iterations": 0,
    # itemknn, userknn
    "similarity": "jaccard",
    "k": 0,
    "shrinkage": -1.0,
    "min_support": 0,
    "damping": -1.0,
    # als, ease
    "regularization": 0,
    "alpha": -1.0,
    "confidence": "cubic",
    "eps": 0,
    "use_rating_values": 1,  # also dae, vae
    "cg_steps": -1,
    "backend": "gpu",
    "implicit": 1,
    "max_items": 0,
    # autoencoder, dae, vae
    "hidden_dim": -1,
    "dropout": 1.0,
    "monitor": "mae",
    "latent_dim": 0,
    "anneal_cap": -0.5,
    "total_anneal_steps": 0,
    "encoder": "cnn",
    "prior": "flat",
    "beta_per_interaction": -0.1,
    "alternate": -1,
    "epochs": 0,
    "batch_size": 0,
    "lr": 0,
    "weight_decay": -1.0,
    "patience": 0,
    "val_k": 0,
    "device": "tpu",
    "log_dir": 5,
    "progress": 1,
    "threads": 0,
}


def planted(n_users: int = 120, n_items: int = 40, seed: int = 0) -> sp.csr_matrix:
    """Two user groups, each liking its own half of the items; the first item of each half is
    liked by most of its group (the planted popular items: 0 and n_items // 2)."""
    rng = np.random.default_rng(seed)
    rows, cols, vals = [], [], []
    half = n_items // 2
    for u in range(n_users):
        g = u % 2
        items = rng.choice(np.arange(1, half), size=5, replace=False)
        if u % 10:
            items = np.r_[0, items]
        for i in items + g * half:
            rows.append(u)
            cols.append(i)
            vals.append(float(rng.integers(4, 6)))
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_users, n_items), dtype=np.float32)


def two_group_dataset(root: Path, tag: str, n_users: int = 300, seed: int = 5) -> Path:
    """A built dataset ``tag`` under ``root/data`` for CLI tests: two user groups, each rating
    4 to 8 of its own 20 items (1 to 5 stars, in time order). Returns ``root``."""
    from deepcart.data.build import build_dataset
    from tests.data.test_build import write_reviews

    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        items = rng.choice(20, size=int(rng.integers(4, 9)), replace=False) + 20 * (u % 2)
        for j, i in enumerate(items):
            rows.append((f"u{u:03d}", f"i{i:02d}", int(rng.integers(1, 6)), 10**12 + j * 1000))
    build_dataset(
        reviews_file=write_reviews(root / "r.parquet", rows),
        items_file=None,
        output_dir=root / "data",
        tag=tag,
        min_interactions=3,
        min_ratings=1,
        echo=lambda s: None,
    )
    return root


def planted_explicit(n_users: int = 120, n_items: int = 40, seed: int = 0) -> sp.csr_matrix:
    """``planted`` with ratings that carry the structure, for ``feedback == "explicit"`` models
    (they learn from rating values, not from which items were rated): the planted popular items
    0 and n_items // 2 always get 5 stars, a user's other picks in their own half 4-5 stars, and
    each user also rates 3 items of the other half (its popular item included) with 1-2 stars."""
    rng = np.random.default_rng(seed)
    rows, cols, vals = [], [], []
    half = n_items // 2
    for u in range(n_users):
        g = u % 2
        items = rng.choice(np.arange(1, half), size=5, replace=False)
        if u % 10:
            items = np.r_[0, items]
        for i in items:
            rows.append(u)
            cols.append(i + g * half)
            vals.append(5.0 if i == 0 else float(rng.integers(4, 6)))
        for i in rng.choice(half, size=3, replace=False):
            rows.append(u)
            cols.append(i + (1 - g) * half)
            vals.append(float(rng.integers(1, 3)))
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_users, n_items), dtype=np.float32)


@pytest.fixture(params=sorted(REGISTRY))
def name(request: pytest.FixtureRequest) -> str:
    # The neural models' TensorBoard logs go to tmp_path (tests/conftest.py).
    if not available(request.param):
        pytest.skip(f"{request.param} needs PyTorch (the 'neural' extra), which is not installed")
    return request.param


def test_seen_items_never_returned(name: str) -> None:
    x = planted()
    model = create(name).fit(x)
    idx, scores = model.recommend(x[:30], k=10)
    assert idx.shape == (30, 10) and scores.shape == (30, 10)
    for u in range(30):
        seen = set(x[u].indices)
        assert not seen & set(idx[u][idx[u] >= 0])
        valid = scores[u][idx[u] >= 0]
        assert np.all(np.diff(valid) <= 0)  # best first


def test_planted_structure_is_recovered(name: str) -> None:
    if name in NON_LEARNING:
        pytest.skip(f"{name} does not learn by design")
    model = create(name)
    x = planted_explicit() if model.feedback == "explicit" else planted()
    model.fit(x)
    half = x.shape[1] // 2
    if name in NON_PERSONALIZED:
        idx, _ = model.recommend(sp.csr_matrix((1, x.shape[1])), k=2)
        assert set(idx[0]) == {0, half}
        return
    idx, _ = model.recommend(x[:40], k=5)
    # Popularity alone finds one half at best; a personalized model finds the user's own half.
    in_group = [(idx[u][idx[u] >= 0] // half == u % 2).mean() for u in range(40)]
    assert np.mean(in_group) > 0.8


def test_batch_equals_one_by_one(name: str) -> None:
    x = planted()
    model = create(name).fit(x)
    idx, scores = model.recommend(x[:12], k=7)
    for u in range(12):
        i1, s1 = model.recommend(x[u : u + 1], k=7)
        np.testing.assert_array_equal(i1[0], idx[u])
        np.testing.assert_allclose(s1[0], scores[u], rtol=1e-6)


def test_one_block_equals_several_and_leaves_the_input_alone(name: str) -> None:
    """A batch that fits one block reaches _score uncopied (a canonical float32 CSR); a bigger
    one is sliced into blocks: the same lists, and the caller's matrices stay as they were."""
    x = planted()
    model = create(name).fit(x)
    rows, exclude = x[:40], x[40:80]
    mask = np.arange(x.shape[1]) % 3 != 0
    before = [a.copy() for m in (rows, exclude) for a in (m.data, m.indices, m.indptr)]
    idx, scores = model.recommend(rows, k=7, candidates=mask, exclude=exclude)
    after = [a for m in (rows, exclude) for a in (m.data, m.indices, m.indptr)]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    model.block_scores = 16 * x.shape[1]  # blocks of 16 rows
    assert model.block_rows() == 16
    i2, s2 = model.recommend(rows, k=7, candidates=mask, exclude=exclude)
    np.testing.assert_array_equal(i2, idx)
    np.testing.assert_allclose(s2, scores, rtol=1e-6)


def test_fold_in_new_user_and_candidates(name: str) -> None:
    x = planted()
    model = create(name).fit(x)
    new = sp.csr_matrix(([5.0, 4.0], ([0, 0], [1, 2])), shape=(1, x.shape[1]))
    idx, _ = model.recommend(new, k=5)
    assert 1 not in idx[0] and 2 not in idx[0]
    cand = np.array([3, 4, 5, 6])
    idx, scores = model.recommend(new, k=6, candidates=cand)
    assert set(idx[0][idx[0] >= 0]) <= set(cand)
    assert (idx[0] == -1).sum() == 2 and np.isneginf(scores[0][-2:]).all()


def test_save_load_identical(name: str, tmp_path: Path) -> None:
    x = planted()
    model = create(name).fit(x)
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.get_params() == model.get_params()
    a = model.recommend(x[:20], k=8)
    b = loaded.recommend(x[:20], k=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    # Arrays load without pickle.
    with np.load(tmp_path / "m" / "arrays.npz", allow_pickle=False) as npz:
        assert "n_items_" in npz.files


def test_same_seed_same_model(name: str) -> None:
    x = planted()
    a = create(name).fit(x).recommend(x[:20], k=8)
    b = create(name).fit(x).recommend(x[:20], k=8)
    np.testing.assert_array_equal(a[0], b[0])


def test_use_before_fit_and_bad_input(name: str) -> None:
    model = create(name)
    with pytest.raises(NotFittedError, match="not fitted"):
        model.recommend(planted()[:2], k=3)
    with pytest.raises(InputError, match="scipy.sparse"):
        model.fit(np.ones((3, 3)))
    model.fit(planted())
    with pytest.raises(InputError, match="item columns"):
        model.recommend(sp.csr_matrix((1, 3)), k=3)
    with pytest.raises(InputError, match="k: expected a positive integer"):
        model.recommend(planted()[:1], k=0)
    bad = sp.csr_matrix(([np.nan], ([0], [0])), shape=(1, 40))
    with pytest.raises(InputError, match="NaN"):
        model.recommend(bad, k=3)


def test_registry_rejects_unknown_names_and_params() -> None:
    with pytest.raises(InputError, match="unknown model 'nope'"):
        create("nope")
    with pytest.raises(InputError, match="unknown hyperparameter"):
        create("random", {"sed": 1})
    with pytest.raises(InputError, match="not valid JSON"):
        parse_params("{bad")
    with pytest.raises(InputError, match="JSON object"):
        parse_params("[1]")


def test_load_refuses_missing_or_foreign(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no saved model"):
        Recommender.load(tmp_path)
    (tmp_path / "model.json").write_text('{"format_version": 99}')
    with pytest.raises(InputError, match="unsupported model format"):
        Recommender.load(tmp_path)


def test_every_hyperparameter_is_checked_before_the_data(name: str) -> None:
    cls = model_class(name)
    for param in cls.param_names():
        assert param in BAD_VALUES, f"{name}: give {param!r} an out-of-range value in BAD_VALUES"
        for bad in (WRONG_TYPE, BAD_VALUES[param]):
            model = cls(**{param: bad})  # the constructor only stores
            assert model.get_params()[param] == bad
            with pytest.raises(InputError) as err:
                model.check_params()
            message = str(err.value)
            assert message.startswith(f"{param}: expected ") and message.endswith(repr(bad))
            # fit checks the hyperparameters before it looks at its input (here not even a matrix).
            with pytest.raises(InputError) as err:
                model.fit(None)
            assert str(err.value) == message
            # create() fails at construction, with fit's message after the --params prefix.
            with pytest.raises(InputError) as err:
                create(name, {param: bad})
            assert str(err.value) == f"--params: bad value for {name!r}: {message}"


def test_defaults_pass_the_check(name: str) -> None:
    model_class(name)().check_params()


def test_load_names_the_file_with_a_bad_hyperparameter(tmp_path: Path) -> None:
    create("random", {"seed": 3}).fit(planted()).save(tmp_path / "m")
    meta = tmp_path / "m" / "model.json"
    meta.write_text(meta.read_text().replace('"seed": 3', '"seed": -3'))
    with pytest.raises(InputError) as err:
        Recommender.load(tmp_path / "m")
    assert str(err.value) == (
        f"{meta}: bad value for 'random': seed: expected an integer >= 0, got -3"
    )


def test_load_refuses_damaged_files_in_one_line(tmp_path: Path) -> None:
    """Each was a traceback: a model.json that is not an object, an empty or truncated
    arrays.npz, the arrays of another kind of model; saving under a file is one line too."""
    root = tmp_path / "m"
    create("popular").fit(planted()).save(root)
    good = (root / "arrays.npz").read_bytes()
    (root / "arrays.npz").write_bytes(b"")
    with pytest.raises(InputError, match=r"arrays\.npz: cannot read model arrays"):
        Recommender.load(root)
    (root / "arrays.npz").write_bytes(good[:100])
    with pytest.raises(InputError, match=r"arrays\.npz: cannot read model arrays"):
        Recommender.load(root)
    create("als", {"factors": 2, "iterations": 1}).fit(planted()).save(tmp_path / "als")
    (root / "arrays.npz").write_bytes((tmp_path / "als" / "arrays.npz").read_bytes())
    (tmp_path / "als" / "arrays.npz").write_bytes(good)
    with pytest.raises(InputError, match=r"arrays\.npz: no array .* for a 'als' model"):
        Recommender.load(tmp_path / "als")
    (root / "model.json").write_text("[]")
    with pytest.raises(InputError, match=r"model\.json: expected a JSON object, got list"):
        Recommender.load(root)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="exists and is not a directory"):
        create("popular").fit(planted()).save(blocker / "m")


def test_params_json_refuses_a_key_given_twice() -> None:
    # json.loads keeps the last of a repeated key: the first value was silently dropped.
    with pytest.raises(InputError, match="--params: 'seed' given twice"):
        parse_params('{"seed": 1, "seed": 2}')
    assert parse_params('{"seed": 1, "k": {"a": 1}}') == {"seed": 1, "k": {"a": 1}}


@pytest.mark.parametrize(
    ("model", "params", "what"),
    [
        ("ease", {"reg": 1e40}, "its scores are NaN or infinite"),  # float32 overflow
        ("als", {"alpha": 1e20, "backend": "numpy"}, "its scores are NaN or infinite"),
        ("als", {"alpha": 1e20, "backend": "implicit"}, "NaN encountered in factors"),
        ("vae", {"lr": 1e10, "epochs": 3, "progress": False, "log_dir": None}, "training loss nan"),
    ],
)
def test_a_fit_that_diverges_is_refused_naming_what_was_changed(
    model: str, params: dict, what: str
) -> None:
    """A fit whose numbers ran away used to be saved (then every command that used it failed
    on NaN scores) or to end in implicit's traceback."""
    if not available(model) or (
        params.get("backend") == "implicit" and importlib.util.find_spec("implicit") is None
    ):
        pytest.skip(f"{model} {params.get('backend', '')} is not installed here")
    m = create(model, params)
    with pytest.raises(FitDiverged) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow on the way there
        m.fit(planted())
    message = str(err.value)
    assert message.startswith(f"{model}: the fit diverged ({what}")
    changed = next(k for k in params if k in ("reg", "alpha", "lr"))
    assert f"{changed}={params[changed]!r}" in message and "progress" not in message
    assert isinstance(err.value, InputError)  # the CLI's one line, exit 2
