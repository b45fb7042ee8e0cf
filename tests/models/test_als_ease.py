"""ALS and EASE beyond the shared contract: formulas, the memory guard, convergence, fold-in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from deepcart.errors import InputError
from deepcart.models import create
from deepcart.models.als import ALSModel, implicit_available
from deepcart.models.base import Recommender
from deepcart.models.ease import EASEModel, required_memory

BACKENDS = [
    "numpy",
    pytest.param(
        "implicit",
        marks=pytest.mark.skipif(not implicit_available(), reason="implicit not installed"),
    ),
]


def blocks(n_groups: int = 3, users_per: int = 40, items_per: int = 12, seed: int = 0):
    """Users of group g interact with ~half of the items of block g, nothing else."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for g in range(n_groups):
        for u in range(users_per):
            items = rng.choice(items_per, size=items_per // 2, replace=False) + g * items_per
            rows += [g * users_per + u] * len(items)
            cols += list(items)
    vals = rng.integers(1, 6, size=len(rows)).astype(np.float32)
    shape = (n_groups * users_per, n_groups * items_per)
    return sp.csr_matrix((vals, (rows, cols)), shape=shape), items_per


# ------------------------------------------------------------------------------ EASE


def dense_ease(x: np.ndarray, reg: float) -> np.ndarray:
    g = x.T @ x + reg * np.eye(x.shape[1])
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


@pytest.mark.parametrize("implicit", [True, False])
def test_ease_matches_the_closed_form(implicit: bool) -> None:
    rng = np.random.default_rng(1)
    dense = (rng.random((30, 9)) < 0.35) * rng.integers(1, 6, size=(30, 9))
    x = sp.csr_matrix(dense.astype(np.float32))
    model = EASEModel(reg=3.0, implicit=implicit).fit(x)
    xd = (dense > 0).astype(float) if implicit else dense.astype(float)
    b = dense_ease(xd, 3.0)
    np.testing.assert_allclose(model.weights_, b, rtol=1e-4, atol=1e-6)
    assert np.all(np.diag(model.weights_) == 0)
    scores = model.score(x[:10])
    np.testing.assert_allclose(scores, xd[:10] @ b, rtol=1e-4, atol=1e-6)


def test_ease_memory_guard_says_how_much_and_what_to_do() -> None:
    x, _ = blocks()
    with pytest.raises(InputError, match="max_items=10") as err:
        EASEModel(max_items=10).fit(x)
    msg = str(err.value)
    assert "36 items" in msg and "about 10.1 KiB" in msg and "--min-ratings" in msg
    assert "--type als" in msg
    with pytest.raises(InputError, match=r"need about 6\.7 GiB .* only 1\.0 GiB is available"):
        EASEModel().check_memory(30_000, available=2**30)
    assert required_memory(30_000) == 2 * 4 * 30_000**2
    EASEModel().check_memory(36, available=2**30)  # small enough: no error


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"reg": 0}, "reg"),
        ({"reg": "a"}, "reg"),
        ({"implicit": 1}, "implicit"),
        ({"max_items": 0}, "max_items"),
    ],
)
def test_ease_validates_hyperparameters(params: dict, name: str) -> None:
    x, _ = blocks()
    with pytest.raises(InputError, match=f"^{name}:"):
        EASEModel(**params).fit(x)
    with pytest.raises(InputError, match=f"^--params: bad value for 'ease': {name}:"):
        create("ease", params)


def test_ease_and_als_give_new_users_without_input_the_popular_items() -> None:
    x, _ = blocks()
    counts = np.bincount(x.indices, minlength=x.shape[1])
    for model in (EASEModel().fit(x), ALSModel(backend="numpy").fit(x)):
        idx, _ = model.recommend(sp.csr_matrix((1, x.shape[1])), k=3)
        assert list(idx[0]) == list(np.argsort(-counts, kind="stable")[:3])


# ------------------------------------------------------------------------------ ALS


@pytest.mark.parametrize("backend", BACKENDS)
def test_als_loss_decreases_over_iterations(backend: str) -> None:
    x, _ = blocks()
    losses = [
        ALSModel(iterations=n, factors=8, backend=backend).fit(x).training_loss(x)
        for n in range(1, 7)
    ]
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses


@pytest.mark.parametrize("backend", BACKENDS)
def test_als_recovers_planted_blocks(backend: str) -> None:
    x, per = blocks()
    model = ALSModel(factors=8, backend=backend).fit(x)
    idx, _ = model.recommend(x, k=4)
    groups = np.arange(x.shape[0]) // 40
    assert np.mean(idx // per == groups[:, None]) > 0.95


def test_als_fold_in_of_a_training_user_matches_their_trained_factors() -> None:
    x, _ = blocks()
    model = ALSModel(factors=8, iterations=30, backend="numpy").fit(x)
    folded = model.fold_in(x[:30])
    trained = model.user_factors_[:30].astype(np.float64)
    np.testing.assert_allclose(folded, trained, atol=0.05 * np.abs(trained).max())
    y = model.item_factors_.astype(np.float64)
    a = np.argsort(-(folded @ y.T), axis=1)[:, :5]
    b = np.argsort(-(trained @ y.T), axis=1)[:, :5]
    overlap = np.mean([len(set(a[u]) & set(b[u])) / 5 for u in range(30)])
    assert overlap >= 0.9


@pytest.mark.parametrize("backend", BACKENDS)
def test_als_same_seed_same_factors(backend: str) -> None:
    x, _ = blocks()
    a = ALSModel(factors=8, seed=3, backend=backend).fit(x)
    b = ALSModel(factors=8, seed=3, backend=backend).fit(x)
    c = ALSModel(factors=8, seed=4, backend=backend).fit(x)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


@pytest.mark.skipif(not implicit_available(), reason="implicit not installed")
@pytest.mark.parametrize("cg_steps", [3, 0])
def test_als_backends_agree(cg_steps: int) -> None:
    x, _ = blocks()
    a = ALSModel(factors=8, cg_steps=cg_steps, backend="numpy").fit(x)
    b = ALSModel(factors=8, cg_steps=cg_steps, backend="implicit").fit(x)
    scale = np.abs(a.item_factors_).max()
    np.testing.assert_allclose(a.item_factors_, b.item_factors_, atol=1e-3 * scale)


def test_als_confidences() -> None:
    x = sp.csr_matrix(np.array([[0.0, 4.0, 1.0]], dtype=np.float32))
    lin = ALSModel(alpha=2.0, use_rating_values=True).confidences(x)
    np.testing.assert_allclose(lin.toarray(), [[0, 9, 3]])
    flat = ALSModel(alpha=2.0, use_rating_values=False).confidences(x)
    np.testing.assert_allclose(flat.toarray(), [[0, 3, 3]])
    lg = ALSModel(alpha=2.0, confidence="log", eps=2.0, use_rating_values=True).confidences(x)
    np.testing.assert_allclose(lg.toarray(), [[0, 1 + 2 * np.log(3), 1 + 2 * np.log(1.5)]])


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"factors": 0}, "factors"),
        ({"regularization": 0}, "regularization"),
        ({"alpha": -1}, "alpha"),
        ({"iterations": 1.5}, "iterations"),
        ({"confidence": "cubic"}, "confidence"),
        ({"eps": 0}, "eps"),
        ({"use_rating_values": "yes"}, "use_rating_values"),
        ({"cg_steps": -1}, "cg_steps"),
        ({"backend": "gpu"}, "backend"),
        ({"seed": "x"}, "seed"),
        ({"seed": -1}, "seed"),
    ],
)
def test_als_validates_hyperparameters(params: dict, name: str) -> None:
    x, _ = blocks()
    with pytest.raises(InputError, match=f"^{name}:"):
        ALSModel(**params).fit(x)
    with pytest.raises(InputError, match=f"^--params: bad value for 'als': {name}:"):
        create("als", params)


def test_als_rejects_negative_values() -> None:
    x, _ = blocks()
    with pytest.raises(InputError, match="non-negative"):
        ALSModel().fit(-x)


def test_als_falls_back_to_numpy_without_implicit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import deepcart.models.als as als

    x, _ = blocks()
    ALSModel(factors=8, backend="numpy").fit(x).save(tmp_path / "m")
    meta = tmp_path / "m" / "model.json"
    meta.write_text(meta.read_text().replace('"backend": "numpy"', '"backend": "implicit"'))
    monkeypatch.setattr(als, "implicit_available", lambda: False)
    model = ALSModel(factors=8).fit(x)
    assert model.backend_ == "numpy"
    with pytest.raises(InputError, match="^backend: 'implicit' needs the implicit package"):
        ALSModel(backend="implicit").fit(x)
    # Only training needs it: a model trained with it loads and recommends without it.
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.backend == "implicit" and loaded.recommend(x[:2], k=3)[0].shape == (2, 3)


def served_rows(n_rows: int, n_items: int, seed: int) -> sp.csr_matrix:
    """Rows like the service's fold-ins: 0 to 55 ratings each (an empty row, a stored zero)."""
    rng = np.random.default_rng(seed)
    data, indices, indptr = [], [], [0]
    for i in range(n_rows):
        n = [0, 1, 2, 3, 5, 8, 13, 21, 34, 55][i % 10]
        indices += sorted(rng.choice(n_items, size=n, replace=False).tolist())
        data += rng.integers(1, 6, size=n).astype(float).tolist()
        if i == 7:
            data[-1] = 0.0  # a stored zero: no interaction (confidences drop it)
        indptr.append(len(indices))
    return sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_items), dtype=np.float32)


def test_als_few_rows_match_the_batched_path() -> None:
    """Up to _FEW_ROWS rows (a served fold-in) are solved row by row from the input's arrays and
    a lone row takes the one-row top-k; more rows take the padded batches of _exact_solve and the
    vectorised top-k: the same factors, the same items and the same scores (float32 rounding)."""
    import deepcart.models.als as als

    rng = np.random.default_rng(3)
    n_items = 400
    dense = (rng.random((300, n_items)) < 0.05) * rng.integers(1, 6, size=(300, n_items))
    model = ALSModel(factors=16, iterations=3, backend="numpy").fit(
        sp.csr_matrix(dense.astype(np.float32))
    )
    rows = served_rows(40, n_items, seed=4)
    assert rows.shape[0] > als._FEW_ROWS
    batched = model.fold_in(rows)
    few = np.vstack([model.fold_in(rows[s : s + 8]) for s in range(0, 40, 8)])
    np.testing.assert_allclose(few, batched, rtol=1e-10, atol=1e-12)
    c = model.confidences(rows, dtype=np.float64)
    np.testing.assert_array_equal(batched, als._exact_solve(c, model._y64, model._gram64))
    assert not batched[0].any() and batched[1].any()  # the empty row: x_u = 0

    allowed = rng.random(n_items) < 0.7  # worst mode: a candidate mask, everything rated excluded
    exclude = (rows + served_rows(40, n_items, seed=5)).tocsr()
    for kwargs in ({}, {"candidates": allowed, "exclude": exclude}):
        idx, scores = model.recommend(rows, k=20, **kwargs)
        for s, n in [(u, 1) for u in range(40)] + [(s, 8) for s in range(0, 40, 8)]:
            part = {k: v[s : s + n] if k == "exclude" else v for k, v in kwargs.items()}
            i1, s1 = model.recommend(rows[s : s + n], k=20, **part)
            np.testing.assert_array_equal(i1, idx[s : s + n])
            np.testing.assert_allclose(s1, scores[s : s + n], rtol=1e-6)
        # Other input types and dtypes take the converting path: the same lists.
        for other in (rows.astype(np.float64), sp.csr_array(rows), rows.tocoo()):
            i2, s2 = model.recommend(other, k=20, **kwargs)
            np.testing.assert_array_equal(i2, idx)
            np.testing.assert_array_equal(s2, scores)


def test_als_few_rows_reject_negative_values_and_keep_the_input() -> None:
    x, _ = blocks()
    model = ALSModel(factors=8, iterations=2).fit(x)
    with pytest.raises(InputError, match="non-negative"):
        model.recommend(-x[:1], k=3)
    row = x[:2]
    before = [a.copy() for a in (row.data, row.indices, row.indptr)]
    model.recommend(row, k=3, exclude=row)
    for a, b in zip(before, (row.data, row.indices, row.indptr), strict=True):
        np.testing.assert_array_equal(a, b)
