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


def test_nothing_to_go_on_is_no_item_another_user_links_to_a_second_one() -> None:
    """Worst mode, implicit model: the model learns from rows of low ratings, so a user's row
    gives it something only through an item some *other* user rated low together with another."""
    from deepcart.modes import linked_counts, nothing_to_go_on

    # items 0..4; training users: a rates 0,1 low; b rates 2 low (alone) and 3 high; c rates 4
    # low and 0 low; d rates 3 high only
    train = sp.csr_matrix(
        np.array(
            [
                [1, 2, 0, 0, 0],  # a
                [0, 0, 1, 5, 0],  # b
                [2, 0, 0, 0, 1],  # c
                [0, 0, 0, 4, 0],  # d
            ],
            dtype=np.float32,
        )
    )
    counts = linked_counts(model_input(train, "worst", "implicit"))
    assert counts.tolist() == [2, 1, 0, 0, 1]  # item 2's only low row holds nothing else
    empty = sp.csr_matrix((1, 5), dtype=np.float32)
    rows = sp.vstack(
        [
            train[3],  # d: no low rating
            train[1],  # b: a low rating of item 2, linked to nothing
            train[0],  # a: items 0 and 1; item 0 is also linked by c: something
            sp.csr_matrix(np.array([[0, 1, 0, 0, 0]], dtype=np.float32)),  # new: item 1 (a's)
            sp.csr_matrix(np.array([[0, 0, 1, 0, 0]], dtype=np.float32)),  # new: item 2
            sp.csr_matrix(np.array([[0, 0, 0, 0, 5]], dtype=np.float32)),  # new: 4, rated high
        ],
        format="csr",
    )
    own = sp.vstack([train[3], train[1], train[0], empty, empty, empty], format="csr")
    lost = nothing_to_go_on(rows, own, counts, "worst", "implicit")
    assert lost.tolist() == [True, True, False, False, True, True]
    # a alone: items 0 and 1, but only their own row links item 1, and c links item 0
    solo = sp.csr_matrix(np.array([[0, 1, 0, 0, 0]], dtype=np.float32))
    assert nothing_to_go_on(solo, train[0], counts, "worst", "implicit").tolist() == [True]
    # best mode reads every rating: d's high rating of item 3 is linked by b's row
    best = linked_counts(model_input(train, "best", "implicit"))
    assert not nothing_to_go_on(train[3], train[3], best, "best", "implicit")[0]


@pytest.mark.parametrize("mode", ["best", "worst"])
def test_the_one_row_rule_agrees_with_the_matrix_one(mode: str) -> None:
    """The service decides row by row (numpy only), recommend for a matrix: the same rule."""
    from deepcart.modes import linked_counts, nothing_to_go_on, nothing_to_go_on_row

    rng = np.random.default_rng(3)
    dense = rng.integers(1, 6, size=(60, 15)) * (rng.random((60, 15)) < 0.12)
    train = sp.csr_matrix(dense.astype(np.float32))
    counts = linked_counts(model_input(train, mode, "implicit"))
    visitors = sp.csr_matrix(
        (rng.integers(1, 6, size=(20, 15)) * (rng.random((20, 15)) < 0.1)).astype(np.float32)
    )
    rows = sp.vstack([train, visitors], format="csr")
    own = sp.vstack([train, sp.csr_matrix((20, 15), dtype=np.float32)], format="csr")
    whole = nothing_to_go_on(rows, own, counts, mode, "implicit")
    inp, mine = model_input(rows, mode, "implicit"), model_input(own, mode, "implicit")
    one = [
        nothing_to_go_on_row(
            inp.indices[inp.indptr[r] : inp.indptr[r + 1]],
            mine.indices[mine.indptr[r] : mine.indptr[r + 1]],
            counts,
        )
        for r in range(rows.shape[0])
    ]
    assert one == whole.tolist()
    assert 0 < sum(one) < len(one)
