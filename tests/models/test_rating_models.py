"""The rating predictors (naive, weighted-rating, baseline, svd): hand-computed values on a tiny
matrix, a planted low-rank matrix for svd, fold-in of new users, and argument checks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from deepcart.errors import InputError
from deepcart.models import create, model_class
from deepcart.models import svd as svd_module
from deepcart.models.base import NotFittedError, Recommender

RATING_MODELS = ["naive", "weighted-rating", "baseline", "svd"]


def tiny() -> sp.csr_matrix:
    """3 users x 4 items; item 3 has no rating.

        item:    0  1  2  3
        user 0:  5  3  .  .
        user 1:  4  .  1  .
        user 2:  .  2  .  .

    μ = (5 + 3 + 4 + 1 + 2) / 5 = 3.
    """
    rows, cols, vals = [0, 0, 1, 1, 2], [0, 1, 0, 2, 1], [5.0, 3.0, 4.0, 1.0, 2.0]
    return sp.csr_matrix((vals, (rows, cols)), shape=(3, 4), dtype=np.float32)


def row(n_items: int, ratings: dict[int, float]) -> sp.csr_matrix:
    """One interaction row (a brand-new user) with the given {item: rating}."""
    cols = list(ratings)
    return sp.csr_matrix(
        (list(ratings.values()), ([0] * len(cols), cols)), shape=(1, n_items), dtype=np.float32
    )


def scores_of(model: Recommender, x: sp.csr_matrix) -> np.ndarray:
    return model.score(x)


# ------------------------------------------------------------------ hand-computed values


def test_naive_item_means() -> None:
    # item means: 0 -> (5 + 4) / 2 = 4.5, 1 -> (3 + 2) / 2 = 2.5, 2 -> 1 / 1 = 1, 3 -> μ = 3
    m = create("naive", {"min_ratings": 1}).fit(tiny())
    np.testing.assert_allclose(scores_of(m, tiny())[0], [4.5, 2.5, 1.0, 3.0])
    np.testing.assert_allclose(m.predict(tiny()[[0, 1, 2]], np.array([2, 3, 0])), [1.0, 3.0, 4.5])
    # min_ratings = 2: item 2 (1 rating) falls back to μ = 3
    m = create("naive", {"min_ratings": 2}).fit(tiny())
    np.testing.assert_allclose(scores_of(m, tiny())[0], [4.5, 2.5, 3.0, 3.0])
    # the ranking is the same for everyone, new users included: 0, then 2 and 3 (ties), then 1
    idx, _ = m.recommend(row(4, {}), k=4)
    assert idx[0][0] == 0 and idx[0][-1] == 1


def test_weighted_rating_bayesian_average() -> None:
    # WR_i = (v_i R_i + m C) / (v_i + m) with C = 3 and m = 2:
    #   item 0: (2·4.5 + 2·3) / (2 + 2) = 15 / 4 = 3.75
    #   item 1: (2·2.5 + 2·3) / (2 + 2) = 11 / 4 = 2.75
    #   item 2: (1·1.0 + 2·3) / (1 + 2) = 7 / 3
    #   item 3: no rating -> C = 3
    expected = [3.75, 2.75, 7 / 3, 3.0]
    m = create("weighted-rating", {"m": 2}).fit(tiny())
    np.testing.assert_allclose(scores_of(m, tiny())[1], expected)
    np.testing.assert_allclose(m.predict(tiny()[[2, 2]], np.array([0, 2])), [3.75, 7 / 3])
    idx, _ = m.recommend(row(4, {}), k=4)
    np.testing.assert_array_equal(idx[0], [0, 3, 1, 2])
    # m = None: the median rating count of the rated items (counts 2, 2, 1 -> m = 2), the same
    auto = create("weighted-rating", {"m": None, "quantile": 0.5}).fit(tiny())
    assert auto.m_ == 2.0
    np.testing.assert_allclose(scores_of(auto, tiny())[0], expected)
    # m = 0 is the plain item mean
    plain = create("weighted-rating", {"m": 0}).fit(tiny())
    np.testing.assert_allclose(scores_of(plain, tiny())[0], [4.5, 2.5, 1.0, 3.0])


def test_baseline_damped_biases() -> None:
    # μ = 3, item_reg = user_reg = 1:
    #   b_0 = ((5-3) + (4-3)) / (1 + 2) = 1
    #   b_1 = ((3-3) + (2-3)) / (1 + 2) = -1/3
    #   b_2 = (1-3) / (1 + 1) = -1
    #   b_3 = 0 (no rating)
    m = create("baseline", {"item_reg": 1, "user_reg": 1}).fit(tiny())
    np.testing.assert_allclose(m.item_bias_, [1.0, -1 / 3, -1.0, 0.0])
    # user 0: ((5 - 3 - 1) + (3 - 3 + 1/3)) / (1 + 2) = (4/3) / 3 = 4/9
    # user 1: ((4 - 3 - 1) + (1 - 3 + 1)) / (1 + 2) = -1/3
    # user 2: (2 - 3 + 1/3) / (1 + 1) = -1/3
    np.testing.assert_allclose(m.user_bias(tiny()), [4 / 9, -1 / 3, -1 / 3])
    # r̂(0, 2) = 3 - 1 + 4/9; r̂(2, 0) = 3 + 1 - 1/3; r̂(1, 3) = 3 + 0 - 1/3
    pred = m.predict(tiny(), np.array([2, 0, 3]))
    np.testing.assert_allclose(pred, [3 - 1 + 4 / 9, 3 + 1 - 1 / 3, 3 - 1 / 3])
    # scores: μ + b_i + b_u, the same order for every user
    np.testing.assert_allclose(scores_of(m, tiny())[2], 3 + m.item_bias_ - 1 / 3)
    # fold-in: a new user who gave item 1 five stars: b_u = (5 - 3 + 1/3) / (1 + 1) = 7/6, so
    # r̂(new, 0) = 3 + 1 + 7/6 = 5.17, clipped to 5
    new = row(4, {1: 5.0})
    np.testing.assert_allclose(m.user_bias(new), [7 / 6])
    np.testing.assert_allclose(m.predict(new, np.array([0])), [5.0])
    np.testing.assert_allclose(m.predict(new, np.array([2])), [3 - 1 + 7 / 6])
    # an empty row has no bias: μ + b_i
    np.testing.assert_allclose(m.predict(row(4, {}), np.array([1])), [3 - 1 / 3])


def test_weighted_rating_equals_baseline_item_part() -> None:
    # WR_i = C + Σ(r - C) / (v_i + m): baseline's μ + b_i with item_reg = m
    x = planted_low_rank()[0]
    wr = create("weighted-rating", {"m": 7}).fit(x)
    bl = create("baseline", {"item_reg": 7}).fit(x)
    np.testing.assert_allclose(wr.item_scores_, bl.global_mean_ + bl.item_bias_)


# ------------------------------------------------------------------ svd


def planted_low_rank(
    n_users: int = 300, n_items: int = 120, rank: int = 3, density: float = 0.25, seed: int = 0
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Ratings 3.5 + b_i + u·v + noise(0.1) on a random 25% of cells; 20% of them held out.
    Returns (train, held_out), both users x items."""
    rng = np.random.default_rng(seed)
    u = rng.normal(0, 0.7, (n_users, rank))
    v = rng.normal(0, 0.7, (n_items, rank))
    bias = rng.normal(0, 0.3, n_items)
    full = np.clip(3.5 + bias + u @ v.T + rng.normal(0, 0.1, (n_users, n_items)), 1, 5)
    observed = rng.random((n_users, n_items)) < density
    held = observed & (rng.random((n_users, n_items)) < 0.2)
    train = np.where(observed & ~held, full, 0.0)
    test = np.where(held, full, 0.0)
    return sp.csr_matrix(train, dtype=np.float32), sp.csr_matrix(test, dtype=np.float32)


def rmse_on(model: Recommender, train: sp.csr_matrix, held: sp.csr_matrix) -> float:
    h = held.tocoo()
    pred = model.predict(train[h.row], h.col)
    return float(np.sqrt(np.mean((pred - h.data) ** 2)))


def test_svd_recovers_planted_low_rank_ratings() -> None:
    train, held = planted_low_rank()
    svd = create("svd", {"factors": 8, "reg": 1.0}).fit(train)
    base = create("baseline").fit(train)
    e_svd, e_base = rmse_on(svd, train, held), rmse_on(base, train, held)
    # u·v spreads ratings about ±1 around the item means, which the baseline cannot follow
    assert e_base > 0.7
    assert e_svd < 0.3  # noise is 0.1; clipping to [1, 5] and 15 ratings per user cost the rest
    # the default hyperparameters (stronger regularization, made for sparse data) also beat it
    assert rmse_on(create("svd").fit(train), train, held) < 0.8 * e_base


def two_groups(n_users: int = 60, n_items: int = 20, seed: int = 0) -> sp.csr_matrix:
    """Group A users (even rows) give items 0..9 4-5 stars and items 10..19 1-2 stars; group B
    the reverse. Each user rates 4 items of each half."""
    rng = np.random.default_rng(seed)
    half = n_items // 2
    rows, cols, vals = [], [], []
    for u in range(n_users):
        own = u % 2
        for h in (0, 1):
            items = rng.choice(half, size=4, replace=False) + h * half
            hi = h == own
            for i in items:
                rows.append(u)
                cols.append(i)
                vals.append(float(rng.integers(4, 6) if hi else rng.integers(1, 3)))
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_users, n_items), dtype=np.float32)


def test_svd_fold_in_of_a_new_user() -> None:
    x = two_groups()
    model = create("svd", {"factors": 4}).fit(x)
    # a brand-new user who loves items 0-2 and hates items 10-11 (group A's taste)
    new = row(20, {0: 5.0, 1: 5.0, 2: 4.0, 10: 1.0, 11: 2.0})
    a_items, b_items = np.arange(3, 10), np.arange(12, 20)
    pred_a = model.predict(sp.vstack([new] * 7).tocsr(), a_items)
    pred_b = model.predict(sp.vstack([new] * 8).tocsr(), b_items)
    assert pred_a.min() > pred_b.max()
    assert pred_a.mean() > 3.5 and pred_b.mean() < 3.0
    idx, _ = model.recommend(new, k=5)
    assert set(idx[0]) <= set(a_items)
    # the mirror-image user gets the mirror-image list
    other = row(20, {10: 5.0, 11: 5.0, 12: 4.0, 0: 1.0, 1: 2.0})
    idx, _ = model.recommend(other, k=5)
    assert set(idx[0]) <= set(range(13, 20))
    # the non-personalized predictors rank both users alike
    for name in ("naive", "weighted-rating", "baseline"):
        m = create(name).fit(x)
        order = [np.argsort(-m.score(r)[0], kind="stable") for r in (new, other)]
        np.testing.assert_array_equal(order[0], order[1])


def test_baseline_fold_in_user_bias() -> None:
    x = two_groups()
    model = create("baseline").fit(x)
    generous = row(20, {3: 5.0, 13: 5.0})
    harsh = row(20, {3: 1.0, 13: 1.0})
    items = np.array([5])
    assert model.predict(generous, items)[0] > model.predict(harsh, items)[0]


def test_svd_predict_batch_equals_one_by_one_and_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    train, held = planted_low_rank(n_users=80, n_items=40)
    model = create("svd", {"factors": 5}).fit(train)
    h = held.tocoo()
    batch = model.predict(train[h.row], h.col)
    single = np.array(
        [model.predict(train[[r]], [c])[0] for r, c in zip(h.row, h.col, strict=True)]
    )
    np.testing.assert_allclose(batch, single, rtol=1e-10)
    # tiny chunks in the ridge solver give the same model
    monkeypatch.setattr(svd_module, "_BLOCK", 30)
    small = create("svd", {"factors": 5}).fit(train)
    np.testing.assert_allclose(small.item_factors_, model.item_factors_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(small.predict(train[h.row], h.col), batch, rtol=1e-8)


def test_svd_seed_and_save_load(tmp_path: Path) -> None:
    train, held = planted_low_rank(n_users=80, n_items=40)
    a = create("svd", {"factors": 5, "seed": 1}).fit(train)
    b = create("svd", {"factors": 5, "seed": 1}).fit(train)
    c = create("svd", {"factors": 5, "seed": 2}).fit(train)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert not np.allclose(a.item_factors_, c.item_factors_)
    a.save(tmp_path / "svd")
    loaded = Recommender.load(tmp_path / "svd")
    h = held.tocoo()
    np.testing.assert_array_equal(
        loaded.predict(train[h.row], h.col), a.predict(train[h.row], h.col)
    )


@pytest.mark.parametrize("name", RATING_MODELS)
def test_predictions_are_clipped_and_save_load_keeps_them(name: str, tmp_path: Path) -> None:
    x = two_groups()
    model = create(name).fit(x)
    rows = sp.vstack([row(20, {0: 5.0, 1: 5.0}), row(20, {10: 1.0, 11: 1.0})]).tocsr()
    rows = rows[np.repeat([0, 1], 20)]
    items = np.tile(np.arange(20), 2)
    pred = model.predict(rows, items)
    assert pred.shape == (40,) and pred.min() >= 1.0 and pred.max() <= 5.0
    model.save(tmp_path / name)
    np.testing.assert_array_equal(Recommender.load(tmp_path / name).predict(rows, items), pred)
    assert model.predict(rows[:0], np.array([], dtype=np.int64)).shape == (0,)
    # an empty row (a user with no ratings yet) is predicted like everyone: its scores are finite
    empty = model.score(sp.csr_matrix((2, 20), dtype=np.float32))
    assert np.isfinite(empty).all()
    np.testing.assert_allclose(empty[0], empty[1])


def test_svd_empty_row_is_the_item_bias() -> None:
    model = create("svd", {"factors": 4}).fit(two_groups())
    empty = sp.csr_matrix((1, 20), dtype=np.float32)
    np.testing.assert_allclose(model.score(empty)[0], model.global_mean_ + model.item_bias_)


# ------------------------------------------------------------------ argument checks


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("naive", {"min_ratings": 0}, "min_ratings: expected an integer >= 1"),
        ("naive", {"min_ratings": 2.5}, "min_ratings: expected an integer"),
        ("naive", {"min_ratings": True}, "min_ratings: expected an integer"),
        ("weighted-rating", {"m": -1}, "m: expected a number >= 0"),
        ("weighted-rating", {"m": "5"}, "m: expected a number or null"),
        ("weighted-rating", {"m": None, "quantile": 1.5}, "quantile: expected a number in"),
        ("baseline", {"item_reg": -1.0}, "item_reg: expected a number >= 0"),
        ("baseline", {"user_reg": float("nan")}, "user_reg: expected a number"),
        ("svd", {"factors": 0}, "factors: expected an integer >= 1"),
        ("svd", {"factors": 2.0}, "factors: expected an integer"),
        ("svd", {"reg": 0}, "reg: expected a number > 0"),
        ("svd", {"item_bias_reg": -1}, "item_bias_reg: expected a number > 0"),
        ("svd", {"user_bias_reg": "1"}, "user_bias_reg: expected a number"),
        ("svd", {"iterations": 0}, "iterations: expected an integer >= 1"),
        ("svd", {"seed": -1}, "seed: expected an integer >= 0"),
    ],
)
def test_hyperparameters_are_validated_in_create_and_fit(
    name: str, params: dict, message: str
) -> None:
    model = model_class(name)(**params)  # the constructor only stores them
    with pytest.raises(InputError, match=f"^{re.escape(message)}"):
        model.fit(tiny())
    with pytest.raises(
        InputError, match=f"^--params: bad value for {name!r}: {re.escape(message)}"
    ):
        create(name, params)


@pytest.mark.parametrize("name", RATING_MODELS)
def test_predict_argument_errors(name: str) -> None:
    model = create(name)
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict(tiny(), np.array([0, 1, 2]))
    with pytest.raises(InputError, match="no ratings"):
        model.fit(sp.csr_matrix((3, 4), dtype=np.float32))
    model.fit(tiny())
    with pytest.raises(InputError, match="user_items: expected a scipy.sparse"):
        model.predict(np.ones((3, 4)), np.array([0, 1, 2]))
    with pytest.raises(InputError, match="user_items: has 5 item columns"):
        model.predict(sp.csr_matrix((3, 5)), np.array([0, 1, 2]))
    with pytest.raises(InputError, match="items: has 2 entries but user_items has 3 rows"):
        model.predict(tiny(), np.array([0, 1]))
    with pytest.raises(InputError, match="items: expected a 1-d array"):
        model.predict(tiny(), np.array([[0, 1, 2]]))
    with pytest.raises(InputError, match="items: expected integer item indices"):
        model.predict(tiny(), np.array([0.0, 1.0, 2.0]))
    with pytest.raises(InputError, match=r"items: item indices must be in \[0, 4\)"):
        model.predict(tiny(), np.array([0, 1, 4]))
    with pytest.raises(InputError, match=r"items: item indices must be in \[0, 4\)"):
        model.predict(tiny(), np.array([0, -1, 2]))
    assert model.predict(tiny(), [3, 2, 1]).shape == (3,)  # a list is fine
