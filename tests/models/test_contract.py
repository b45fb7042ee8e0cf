"""The model contract, run on every registered model (STYLE.md: one shared behavioural test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from deepcart.errors import InputError
from deepcart.models import REGISTRY, available, create, parse_params
from deepcart.models.base import NotFittedError, Recommender

#: Models that cannot learn structure by design (the floor).
NON_LEARNING = {"random"}
#: Models that rank every user's items the same way (popularity or item rating).
NON_PERSONALIZED = {"popular", "naive", "weighted-rating", "baseline"}


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
def name(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    if not available(request.param):
        pytest.skip(f"{request.param} needs PyTorch (the 'neural' extra), which is not installed")
    monkeypatch.chdir(tmp_path)  # the neural models write TensorBoard logs under ./runs
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
