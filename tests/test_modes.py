"""Best and worst mode inputs: the direct CSR filter against the COO round trip it replaces."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from deepcart.errors import InputError
from deepcart.modes import LOW, model_input, relevant


def coo_reference(x: sp.csr_matrix, keep: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
    coo = x.tocoo()
    out = sp.csr_matrix(
        (values[keep].astype(np.float32), (coo.row[keep], coo.col[keep])), shape=x.shape
    )
    out.sort_indices()
    return out


def ratings(seed: int, canonical: bool) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((30, 25)) < 0.3) * rng.integers(1, 6, size=(30, 25))
    x = sp.csr_matrix(dense.astype(np.float32))
    assert np.diff(x.indptr).min() >= 2
    x.data[x.indptr[3]] = 0.0  # a stored zero
    if canonical:
        return x
    # Unsorted indices and a duplicate entry: the COO path sorts and sums them.
    data, indices, indptr = x.data.copy(), x.indices.copy(), x.indptr.copy()
    lo, hi = indptr[1], indptr[2]
    data[lo:hi], indices[lo:hi] = data[lo:hi][::-1], indices[lo:hi][::-1]
    indices[indptr[5] + 1] = indices[indptr[5]]
    return sp.csr_matrix((data, indices, indptr), shape=x.shape)


@pytest.mark.parametrize("canonical", [True, False])
@pytest.mark.parametrize("feedback", ["implicit", "explicit"])
def test_worst_mode_input_matches_the_coo_round_trip(canonical: bool, feedback: str) -> None:
    x = ratings(0, canonical)
    assert x.has_canonical_format == canonical
    got = model_input(x, "worst", feedback)
    keep = np.ones(x.nnz, dtype=bool) if feedback == "explicit" else x.data <= LOW
    want = coo_reference(x, keep, 6.0 - x.data)
    assert got.has_sorted_indices and got.dtype == np.float32
    for a, b in [(got.indptr, want.indptr), (got.indices, want.indices), (got.data, want.data)]:
        np.testing.assert_array_equal(a, b)
    check = relevant(x, "worst")
    want = coo_reference(x, x.data <= LOW, x.data)
    np.testing.assert_array_equal(check.toarray(), want.toarray())


def test_recommend_in_mode_is_the_three_steps() -> None:
    from deepcart.models import create
    from deepcart.modes import candidates, recommend_in_mode

    x = ratings(4, canonical=True)
    x.eliminate_zeros()
    for mode in ("best", "worst"):
        model = create("popular").fit(model_input(x, mode, "implicit"))
        allowed = candidates(x, mode, min_engagement=3)
        idx, scores = recommend_in_mode(model, x[:5], 4, mode, allowed=allowed)
        want = model.recommend(
            model_input(x[:5], mode, model.feedback), k=4, candidates=allowed, exclude=x[:5]
        )
        assert (idx == want[0]).all() and np.allclose(scores, want[1])
        for u in range(5):  # nothing rated, high or low, and only allowed items
            rated = set(x[u].indices.tolist())
            shown = [i for i in idx[u].tolist() if i >= 0]
            assert rated.isdisjoint(shown)
            assert allowed is None or all(allowed[i] for i in shown)
    with pytest.raises(InputError, match="--mode: expected 'best' or 'worst'"):
        recommend_in_mode(model, x[:1], 2, "meh")
