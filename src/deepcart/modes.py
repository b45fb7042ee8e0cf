"""Best and worst mode: what a model learns from, what counts as relevant, what may be ranked.

``best`` (the usual recommender): explicit models learn the ratings; implicit models learn every
interaction (the rating is the value, which they may use as a confidence). A held-out
interaction is relevant.

``worst`` (the original's twist: products this user would most likely hate): the data is
reversed on load. Explicit models learn reversed ratings ``6 - r`` from every interaction, so a
high prediction means a predicted 1-star; implicit models learn only the low ratings
(``r <= LOW``), valued ``6 - r``: "this user rated this item low" is their positive signal.
Only items with at least ``min_engagement`` training ratings are ranked, so the list holds
engaged but disliked products, not obscure ones. A held-out rating ``<= LOW`` is relevant.
Everything the user rated (high or low) is excluded from their list.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from deepcart.errors import InputError

MODES = ("best", "worst")
#: A rating at or below this is a "low" rating: the worst-mode signal and relevance.
LOW = 2.0
#: Default minimum number of training ratings for an item to be ranked in worst mode.
MIN_ENGAGEMENT = 10


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(f"--mode: expected 'best' or 'worst', got {mode!r}")
    return mode


def _filtered(x: sp.csr_matrix, keep: np.ndarray, values: np.ndarray) -> sp.csr_matrix:
    """The entries of ``x`` where ``keep``, valued ``values`` (both in ``x``'s stored order), as
    a CSR matrix with sorted indices and duplicates summed."""
    if x.format == "csr" and len(x.indices) == len(keep) and x.has_canonical_format:
        # Sorted, without duplicates: the same matrix straight from the arrays, without the COO
        # round trip (most of the cost of a served worst-mode fold-in's input).
        indptr = np.concatenate([[0], np.cumsum(keep)])[x.indptr]
        return sp.csr_matrix(
            (values[keep].astype(np.float32), x.indices[keep], indptr), shape=x.shape
        )
    coo = x.tocoo()
    out = sp.csr_matrix(
        (values[keep].astype(np.float32), (coo.row[keep], coo.col[keep])), shape=x.shape
    )
    out.sort_indices()
    return out


def model_input(x: sp.csr_matrix, mode: str, feedback: str) -> sp.csr_matrix:
    """The matrix a model with ``feedback`` ('explicit'/'implicit') learns from in ``mode``.

    ``x`` holds ratings 1..5. Used both to fit and to fold in a user's input rows.
    """
    check_mode(mode)
    x = sp.csr_matrix(x, dtype=np.float32)
    if mode == "best":
        return x
    reversed_ = 6.0 - x.data
    keep = np.ones(len(x.data), dtype=bool) if feedback == "explicit" else x.data <= LOW
    return _filtered(x, keep, reversed_)


def relevant(check: sp.csr_matrix, mode: str) -> sp.csr_matrix:
    """The held-out interactions that count as hits in ``mode``."""
    check_mode(mode)
    if mode == "best":
        return check
    coo = check.tocoo()
    return _filtered(check, coo.data <= LOW, coo.data)


def candidates(train: sp.csr_matrix, mode: str, min_engagement: int) -> np.ndarray | None:
    """A boolean mask of rankable items in ``mode`` (None: every item)."""
    check_mode(mode)
    if mode == "best":
        return None
    if min_engagement < 0:
        raise InputError(f"--min-engagement: expected >= 0, got {min_engagement}")
    return np.bincount(train.indices, minlength=train.shape[1]) >= min_engagement


def require_engaged(train: sp.csr_matrix, allowed: np.ndarray | None, min_engagement: int) -> None:
    """An InputError naming ``--min-engagement`` when ``allowed`` (from :func:`candidates`)
    leaves no item to rank: every worst-mode list would be empty."""
    if allowed is not None and not allowed.any():
        most = int(np.bincount(train.indices, minlength=train.shape[1]).max(initial=0))
        raise InputError(
            f"--min-engagement {min_engagement}: no item has that many ratings "
            f"(the most rated has {most:,}); lower it"
        )


def _bayesian(x: sp.csr_matrix, m: float) -> tuple[np.ndarray, np.ndarray]:
    """Per item: the number of ratings and their Bayesian average (:func:`cold_start_lists`)."""
    n_items = x.shape[1]
    counts = np.bincount(x.indices, minlength=n_items).astype(np.float64)
    sums = np.bincount(x.indices, weights=x.data, minlength=n_items)
    global_mean = float(x.data.mean()) if x.nnz else 3.0
    return counts, (sums + m * global_mean) / (counts + m)


def cold_start_lists(
    x: sp.csr_matrix, min_engagement: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The lists for a user the model has nothing on, per mode, from the training ratings ``x``:
    ``(item indices, scores)`` in list order. Best: every item by its Bayesian average rating
    (popular and well rated); worst: the engaged items (``min_engagement`` ratings or more),
    lowest average first. The Bayesian average of an item with ``v`` ratings of mean ``R`` is
    ``(v R + m C) / (v + m)``, ``C`` the mean of all ratings and ``m`` ``max(min_engagement,
    1)``; the score is that average in best mode and ``6 -`` it in worst mode. Ties: more
    ratings first, then the lower index."""
    m = float(max(min_engagement, 1))
    counts, avg = _bayesian(x, m)
    items = np.arange(x.shape[1])
    best = np.lexsort((items, -counts, -avg))
    engaged = items[counts >= min_engagement]
    worst = engaged[np.lexsort((engaged, -counts[engaged], avg[engaged]))]
    return {
        "best": (best, avg[best].astype(np.float32)),
        "worst": (worst, (6.0 - avg[worst]).astype(np.float32)),
    }


def cold_start_top(
    ranked: tuple[np.ndarray, np.ndarray], rated: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` of a :func:`cold_start_lists` list without the items ``rated``."""
    idx, scores = ranked[0][: k + len(rated)], ranked[1][: k + len(rated)]
    if len(rated):
        keep = np.isin(idx, rated, invert=True)
        idx, scores = idx[keep], scores[keep]
    return idx[:k], scores[:k]


def linked_counts(inp: sp.csr_matrix) -> np.ndarray:
    """Per item, how many rows of the training ratings as a mode presents them to the model
    (``inp``, from :func:`model_input`) hold it together with another item: what a model can
    relate the item to (worst mode, implicit model: rows of low ratings only). See
    :func:`nothing_to_go_on`."""
    lengths = np.diff(inp.indptr)
    linked = np.repeat(lengths >= 2, lengths)
    return np.bincount(inp.indices[linked], minlength=inp.shape[1])


def nothing_to_go_on(
    rows: sp.csr_matrix, own: sp.csr_matrix, counts: np.ndarray, mode: str, feedback: str
) -> np.ndarray:
    """Per user row of ratings ``rows``: whether none of its items (as the mode presents them)
    is linked to another item in some *other* user's training row (``counts`` from
    :func:`linked_counts`; ``own``: each row's user's own training row, empty for a user the
    model was not fit on, which is taken out of the counts). Such a row gives the model nothing
    to go on: an item-item or factor model scores every candidate alike (a tie, listed in index
    order), so the cold-start list serves it better. Worst mode, implicit model: a user without
    a low rating, or with low ratings only of products no one else rated low (alongside another).
    """
    inp = model_input(rows, mode, feedback)
    mine = model_input(own, mode, feedback)
    own_linked = np.diff(mine.indptr) >= 2
    # Each entry of a row: its item's count, less one where the user's own training row holds
    # the item together with another (their own rating taught the model nothing about them).
    theirs = (inp != 0).multiply(mine != 0).multiply(own_linked[:, None]).tocsr()
    value = sp.csr_matrix(
        (counts[inp.indices].astype(np.int64), inp.indices, inp.indptr), shape=inp.shape
    ) - theirs.astype(np.int64)
    value = value.tocsr()
    owner = np.repeat(np.arange(value.shape[0]), np.diff(value.indptr))
    return np.bincount(owner[value.data > 0], minlength=rows.shape[0]) == 0


def nothing_to_go_on_row(items: np.ndarray, own_items: np.ndarray, counts: np.ndarray) -> bool:
    """:func:`nothing_to_go_on` for one row, from the item indices of its model input and of
    its user's own training row's model input (numpy only: the service's per-request path)."""
    linked = counts[items]
    if linked.size and linked.max() >= 2:  # their own row adds one at most: something is left
        return False
    if len(own_items) >= 2:  # their own row linked these items: take it out
        linked = linked - np.isin(items, own_items, assume_unique=True)
    return not bool((linked > 0).any())


def recommend_in_mode(
    model: Any,
    rows: sp.csr_matrix,
    k: int,
    mode: str = "best",
    *,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``model.recommend`` for users' rating rows as ``mode`` presents them: the rows go in as
    the model learnt in that mode (:func:`model_input`), only ``allowed`` items are ranked
    (:func:`candidates`; None: all), and everything the user rated, high or low, is excluded.
    Returns ``(item_indices, scores)`` of shape (n_users, k), best first (in worst mode: the
    most likely hated first)."""
    check_mode(mode)
    return model.recommend(
        model_input(rows, mode, model.feedback), k=k, candidates=allowed, exclude=rows
    )
