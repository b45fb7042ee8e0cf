"""ItemKNN and UserKNN against similarities, scores and ratings computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from deepcart.errors import InputError
from deepcart.models import create, knn, model_class
from deepcart.models.base import NotFittedError, Recommender
from deepcart.models.knn import TIEBREAK, ItemKNN, UserKNN
from deepcart.modes import model_input

# The tiny matrix every hand computation below uses (users x items, 0 = unrated):
#
#          i0  i1  i2
#     u0    5   3   .
#     u1    4   .   2
#     u2    .   4   5
#
# Item vectors over users: i0 = (5, 4, 0), i1 = (3, 0, 4), i2 = (0, 2, 5);
# |i0| = sqrt(41), |i1| = 5, |i2| = sqrt(29); every pair of items has exactly 1 user in common.
# Item means: mu0 = 4.5, mu1 = 3.5, mu2 = 3.5.
# User vectors over items: u0 = (5, 3, 0), u1 = (4, 0, 2), u2 = (0, 4, 5);
# |u0| = sqrt(34), |u1| = sqrt(20), |u2| = sqrt(41). User means: 4, 3, 4.5.
TINY = sp.csr_matrix(
    np.array([[5.0, 3.0, 0.0], [4.0, 0.0, 2.0], [0.0, 4.0, 5.0]], dtype=np.float32)
)

# Item-item cosines:
#   cos(i0, i1) = (5*3) / (sqrt(41) * 5)             = 3 / sqrt(41)    ~ 0.46852
#   cos(i0, i2) = (4*2) / (sqrt(41) * sqrt(29))      = 8 / sqrt(1189)  ~ 0.23201
#   cos(i1, i2) = (4*5) / (5 * sqrt(29))             = 4 / sqrt(29)    ~ 0.74278
C01 = 3 / math.sqrt(41)
C02 = 8 / math.sqrt(1189)
C12 = 4 / math.sqrt(29)


def row(*pairs: tuple[int, float], n_items: int = 3) -> sp.csr_matrix:
    cols = [c for c, _ in pairs]
    vals = [v for _, v in pairs]
    return sp.csr_matrix((vals, ([0] * len(cols), cols)), shape=(1, n_items), dtype=np.float32)


def exact(**params: object) -> dict[str, object]:
    """No pruning, no shrinkage, no damping: the plain formulas."""
    return {"k": 10, "shrinkage": 0.0, "damping": 0.0, **params}


# ------------------------------------------------------------------ ItemKNN similarities


def test_item_cosine_by_hand() -> None:
    m = ItemKNN(**exact()).fit(TINY)
    expected = np.array([[0, C01, C02], [C01, 0, C12], [C02, C12, 0]])
    np.testing.assert_allclose(m.neighbours_.toarray(), expected, rtol=1e-6)


def test_item_pearson_is_item_mean_centred() -> None:
    # Centred by item means: i0 = (0.5, -0.5, 0), i1 = (-0.5, 0, 0.5), i2 = (0, -1.5, 1.5).
    #   i0 . i1 = -0.25 (negative: dropped)
    #   i0 . i2 = 0.75 -> 0.75 / (sqrt(0.5) * sqrt(4.5)) = 0.75 / 1.5 = 0.5
    #   i1 . i2 = 0.75 -> 0.5 likewise
    m = ItemKNN(**exact(similarity="pearson")).fit(TINY)
    expected = np.array([[0, 0, 0.5], [0, 0, 0.5], [0.5, 0.5, 0]])
    np.testing.assert_allclose(m.neighbours_.toarray(), expected, rtol=1e-6)


def test_shrinkage_and_min_support() -> None:
    # n = 1 common user for every pair: shrinkage 1 multiplies by 1 / (1 + 1) = 0.5.
    plain = ItemKNN(**exact()).fit(TINY).neighbours_.toarray()
    shrunk = ItemKNN(**exact(shrinkage=1.0)).fit(TINY).neighbours_.toarray()
    np.testing.assert_allclose(shrunk, plain * 0.5, rtol=1e-6)
    # No pair has 2 users in common.
    assert ItemKNN(**exact(min_support=2)).fit(TINY).neighbours_.nnz == 0


def test_shrinkage_uses_the_number_of_common_raters() -> None:
    rng = np.random.default_rng(3)
    x = sp.random(60, 25, density=0.2, random_state=rng, format="csr", dtype=np.float32)
    x.data = rng.integers(1, 6, size=x.nnz).astype(np.float32)
    plain = ItemKNN(**exact(k=25)).fit(x).neighbours_.toarray()
    shrunk = ItemKNN(**exact(k=25, shrinkage=4.0)).fit(x).neighbours_.toarray()
    b = (x > 0).astype(np.float64)
    n = (b.T @ b).toarray()
    np.testing.assert_allclose(shrunk, plain * n / (n + 4.0), rtol=1e-5, atol=1e-7)
    # Support filter: pairs with fewer than 3 common raters are gone, the rest untouched.
    supported = ItemKNN(**exact(k=25, min_support=3)).fit(x).neighbours_.toarray()
    np.testing.assert_allclose(supported, np.where(n >= 3, plain, 0.0), rtol=1e-6)


def test_top_k_pruning_keeps_the_k_most_similar() -> None:
    # k = 1: i0's nearest is i1 (0.469 > 0.232); i1's and i2's are each other (0.743).
    m = ItemKNN(**exact(k=1)).fit(TINY)
    expected = np.array([[0, C01, 0], [0, 0, C12], [0, C12, 0]])
    np.testing.assert_allclose(m.neighbours_.toarray(), expected, rtol=1e-6)


def test_blocked_fit_equals_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    x = sp.random(80, 30, density=0.15, random_state=rng, format="csr", dtype=np.float32)
    x.data = rng.integers(1, 6, size=x.nnz).astype(np.float32)
    whole = ItemKNN(k=5).fit(x).neighbours_
    monkeypatch.setattr(knn, "_BLOCK_ELEMENTS", 7)  # one item per block
    blocked = ItemKNN(k=5).fit(x).neighbours_
    np.testing.assert_array_equal(whole.toarray(), blocked.toarray())


def test_top_k_rows_ties_and_huge_shapes() -> None:
    dense = np.array([[0.5, 0.9, 0.5, 0.5, 0.0], [0.0, 0.0, 0.0, 0.2, 0.0]], dtype=np.float32)
    top = knn._top_k_rows(sp.csr_matrix(dense), 2).toarray()
    # Row 0: 0.9, then the first of the tied 0.5s; row 1 has fewer than k entries.
    expected = np.array([[0.5, 0.9, 0, 0, 0], [0, 0, 0, 0.2, 0]], dtype=np.float32)
    np.testing.assert_array_equal(top, expected)
    # A shape whose key would not fit in 64 bits is split by rows and gives the same answer.
    big = sp.csr_matrix(([1.0, 3.0, 2.0, 5.0], ([0, 0, 0, 2**17 - 1], [5, 2**17 - 2, 9, 0])))
    big.resize((2**17, 2**17))
    top = knn._top_k_rows(big, 2)
    assert top[0].toarray().ravel()[[5, 9, 2**17 - 2]].tolist() == [0.0, 2.0, 3.0]
    assert top[2**17 - 1, 0] == 5.0 and top.nnz == 3


# ------------------------------------------------------------------ ItemKNN scores and ratings


def test_item_scores_by_hand() -> None:
    # A new user who rated i0 with 5: score(i1) = 5 * cos(i0, i1), score(i2) = 5 * cos(i0, i2).
    m = ItemKNN(**exact()).fit(TINY)
    scores = m.score(row((0, 5.0)))[0] - m.tiebreak_
    np.testing.assert_allclose(scores, [0.0, 5 * C01, 5 * C02], rtol=1e-6)
    idx, _ = m.recommend(row((0, 5.0)), k=2)
    assert idx[0].tolist() == [1, 2]


def test_item_rating_prediction_by_hand() -> None:
    # A new user rated i0 = 5 and i1 = 2; predict i2, whose neighbours are i0 and i1.
    #   offsets: 5 - mu0 = 0.5, 2 - mu1 = -1.5
    #   num = C02 * 0.5 + C12 * (-1.5) ~ 0.11601 - 1.11417 = -0.99817
    #   den = C02 + C12 ~ 0.97479
    #   rating = mu2 + num / den ~ 3.5 - 1.02398 = 2.47602
    # With damping 1: 3.5 + num / (den + 1) ~ 3.5 - 0.50546 = 2.99454.
    # With k = 1 (i2's nearest is i1 only): 3.5 + C12 * (-1.5) / C12 = 2.0.
    x = row((0, 5.0), (1, 2.0))
    num = C02 * 0.5 + C12 * -1.5
    den = C02 + C12
    got = ItemKNN(**exact()).fit(TINY).predict(x, [2])
    np.testing.assert_allclose(got, [3.5 + num / den], rtol=1e-5)
    got = ItemKNN(**exact(damping=1.0)).fit(TINY).predict(x, [2])
    np.testing.assert_allclose(got, [3.5 + num / (den + 1.0)], rtol=1e-5)
    np.testing.assert_allclose(ItemKNN(**exact(k=1)).fit(TINY).predict(x, [2]), [2.0])


def test_item_rating_fallbacks_and_clipping() -> None:
    m = ItemKNN(**exact()).fit(TINY)
    # No rated neighbour (an empty row): the item mean.
    np.testing.assert_allclose(m.predict(sp.csr_matrix((1, 3)), [0]), [4.5])
    # An item nobody rated in training: the global mean (23 / 6).
    x = sp.hstack([TINY, sp.csr_matrix((3, 1))]).tocsr()
    m = ItemKNN(**exact()).fit(x)
    np.testing.assert_allclose(m.predict(row((0, 5.0), n_items=4), [3]), [23 / 6], rtol=1e-6)
    # Predictions stay within the training range [2, 5].
    assert m.predict(row((0, 1.0), (1, 1.0), n_items=4), [2])[0] >= 2.0


# ------------------------------------------------------------------ UserKNN


def test_user_cosine_scores_by_hand() -> None:
    # A new user who rated i0 with 5, as a vector (5, 0, 0):
    #   cos(new, u0) = 25 / (5 * sqrt(34)) = 5 / sqrt(34) ~ 0.85749
    #   cos(new, u1) = 20 / (5 * sqrt(20)) = 4 / sqrt(20) ~ 0.89443
    #   cos(new, u2) = 0
    # k = 2: score(i1) = 0.85749 * 3 = 2.57248, score(i2) = 0.89443 * 2 = 1.78885.
    # k = 1 (u1 only): score(i1) = 0, score(i2) = 1.78885.
    s0, s1 = 5 / math.sqrt(34), 4 / math.sqrt(20)
    m = UserKNN(**exact(k=2)).fit(TINY)
    np.testing.assert_allclose(m._user_similarities(row((0, 5.0))).toarray(), [[s0, s1, 0]])
    scores = m.score(row((0, 5.0)))[0] - m.tiebreak_
    np.testing.assert_allclose(scores, [5 * s0 + 4 * s1, 3 * s0, 2 * s1], rtol=1e-6)
    scores = UserKNN(**exact(k=1)).fit(TINY).score(row((0, 5.0)))[0] - m.tiebreak_
    np.testing.assert_allclose(scores, [4 * s1, 0.0, 2 * s1], rtol=1e-6, atol=1e-7)


def test_user_pearson_is_user_mean_centred() -> None:
    # New user i0 = 4, i1 = 2 (mean 3): centred (1, -1, 0).
    #   u0 centred (1, -1, 0)       -> cos = 1
    #   u1 centred (1, 0, -1)       -> 1 / (sqrt(2) * sqrt(2)) = 0.5
    #   u2 centred (0, -0.5, 0.5)   -> 0.5 / (sqrt(2) * sqrt(0.5)) = 0.5
    m = UserKNN(**exact(similarity="pearson")).fit(TINY)
    sims = m._user_similarities(row((0, 4.0), (1, 2.0))).toarray()
    np.testing.assert_allclose(sims, [[1.0, 0.5, 0.5]], rtol=1e-6)


def test_user_rating_prediction_by_hand() -> None:
    # New user i0 = 4, i1 = 2 (mean 3), vector (4, 2, 0); predict i2, rated by u1 and u2.
    #   cos(new, u1) = 16 / (sqrt(20) * sqrt(20)) = 0.8
    #   cos(new, u2) = 8 / (sqrt(20) * sqrt(41)) = 8 / sqrt(820) ~ 0.27937
    #   offsets on i2: u1: 2 - 3 = -1, u2: 5 - 4.5 = 0.5
    #   rating = 3 + (0.8 * -1 + 0.27937 * 0.5) / (0.8 + 0.27937) ~ 3 - 0.61176 = 2.38824
    # k = 1 picks the nearest among the raters of i2 (u1, not u0 who did not rate it): 3 - 1 = 2.
    x = row((0, 4.0), (1, 2.0))
    s2 = 8 / math.sqrt(820)
    got = UserKNN(**exact()).fit(TINY).predict(x, [2])
    np.testing.assert_allclose(got, [3 + (-0.8 + 0.5 * s2) / (0.8 + s2)], rtol=1e-5)
    np.testing.assert_allclose(UserKNN(**exact(k=1)).fit(TINY).predict(x, [2]), [2.0])
    # No rater is similar (u2 shares nothing with a user who rated only i0): the row's mean.
    np.testing.assert_allclose(UserKNN(**exact()).fit(TINY).predict(row((0, 4.0)), [1]), [3.0])
    # An empty row: the global mean.
    got = UserKNN(**exact()).fit(TINY).predict(sp.csr_matrix((1, 3)), [1])
    np.testing.assert_allclose(got, [23 / 6], rtol=1e-6)


# ------------------------------------------------------------------ both models


@pytest.fixture(params=["itemknn", "userknn"])
def name(request: pytest.FixtureRequest) -> str:
    return request.param


def ratings(n_users: int = 90, n_items: int = 35, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    x = sp.random(n_users, n_items, density=0.15, random_state=rng, format="csr")
    x.data = rng.integers(1, 6, size=x.nnz).astype(np.float64)
    return sp.csr_matrix(x, dtype=np.float32)


def test_fold_in_new_user_without_refit(name: str) -> None:
    x = ratings()
    model = create(name).fit(x)
    before = model.score(x[:5])
    new = sp.csr_matrix(([5.0, 4.0, 1.0], ([0, 0, 0], [3, 7, 11])), shape=(1, x.shape[1]))
    idx, scores = model.recommend(new, k=5)
    assert not {3, 7, 11} & set(idx[0]) and np.all(np.diff(scores[0]) <= 0)
    # The same user scored alone or in a batch with training users: the same scores.
    both = model.score(sp.vstack([x[:5], new]).tocsr())
    np.testing.assert_allclose(both[5], model.score(new)[0], rtol=1e-6)
    np.testing.assert_array_equal(model.score(x[:5]), before)  # folding in changed nothing
    pred = model.predict(sp.vstack([new, new]).tocsr(), [0, 1])
    assert pred.shape == (2,) and np.all((pred >= 1) & (pred <= 5))


def test_predict_batch_equals_one_by_one(name: str) -> None:
    x = ratings()
    for similarity in ("cosine", "pearson"):
        model = create(name, {"similarity": similarity}).fit(x)
        users = np.repeat(np.arange(20), 3)  # grouped by user, as the evaluator sends them
        items = np.arange(60) % x.shape[1]
        batch = model.predict(x[users], items)
        single = [model.predict(x[[u]], [i])[0] for u, i in zip(users, items, strict=True)]
        np.testing.assert_allclose(batch, single, rtol=1e-6)


def test_save_load_predicts_the_same(name: str, tmp_path: Path) -> None:
    x = ratings()
    model = create(name, {"k": 7, "shrinkage": 2.5}).fit(x)
    model.save(tmp_path / "m")
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.get_params() == model.get_params()
    items = np.arange(40) % x.shape[1]
    np.testing.assert_array_equal(model.predict(x[:40], items), loaded.predict(x[:40], items))
    np.testing.assert_array_equal(model.score(x[:10]), loaded.score(x[:10]))


def test_worst_mode_reversed_ratings(name: str) -> None:
    x = ratings()
    model = create(name)
    assert model.feedback == "explicit"
    model.fit(model_input(x, "worst", model.feedback))
    pred = model.predict(model_input(x[:10], "worst", model.feedback), np.arange(10))
    assert np.all((pred >= 1) & (pred <= 5))


def test_popularity_breaks_ties_among_unscored_items(name: str) -> None:
    # Item 0 is rated by everyone, item 1 by one user; an empty row gets them by popularity.
    x = sp.csr_matrix(([5.0, 4.0, 4.0, 3.0], ([0, 1, 2, 2], [0, 0, 0, 1])), shape=(3, 4))
    model = create(name).fit(x)
    idx, scores = model.recommend(sp.csr_matrix((1, 4)), k=4)
    assert idx[0].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(scores[0][:2], [TIEBREAK, TIEBREAK / 3], rtol=1e-5)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"similarity": "jaccard"}, "similarity: expected one of cosine, pearson"),
        ({"k": 0}, "k: expected an integer >= 1"),
        ({"k": 2.5}, "k: expected an integer"),
        ({"k": True}, "k: expected an integer"),
        ({"shrinkage": -1.0}, "shrinkage: expected a number >= 0"),
        ({"shrinkage": "10"}, "shrinkage: expected a number"),
        ({"min_support": 0}, "min_support: expected an integer >= 1"),
        ({"damping": float("nan")}, "damping: expected a number"),
    ],
)
def test_hyperparameters_are_checked_in_create_and_fit(
    name: str, params: dict[str, object], message: str
) -> None:
    model = model_class(name)(**params)  # the constructor only stores them
    with pytest.raises(InputError, match=f"^{message}"):
        model.fit(TINY)
    with pytest.raises(InputError, match=f"^--params: bad value for {name!r}: {message}"):
        create(name, params)


def test_predict_checks_its_arguments(name: str) -> None:
    with pytest.raises(NotFittedError):
        create(name).predict(TINY, [0, 1, 2])
    model = create(name).fit(TINY)
    with pytest.raises(InputError, match="items: has 2 entries but user_items has 3 rows"):
        model.predict(TINY, [0, 1])
    with pytest.raises(InputError, match=r"items: item indices must be in \[0, 3\)"):
        model.predict(TINY, [0, 1, 3])
    with pytest.raises(InputError, match="items: expected integer item indices"):
        model.predict(TINY, [0.0, 1.0, 2.0])
    with pytest.raises(InputError, match="user_items: has 4 item columns"):
        model.predict(sp.csr_matrix((1, 4)), [0])
    assert model.predict(sp.csr_matrix((0, 3)), np.array([], dtype=np.int64)).shape == (0,)


def test_collapse_repeats() -> None:
    x = sp.csr_matrix(
        np.array([[1, 0, 2], [1, 0, 2], [0, 0, 0], [0, 0, 0], [1, 0, 3], [1, 0, 2], [1, 0, 2]])
    )
    unique, group = knn._collapse_repeats(x)
    assert group.tolist() == [0, 0, 1, 1, 2, 3, 3]
    np.testing.assert_array_equal(unique.toarray(), x.toarray()[[0, 2, 4, 5]])
