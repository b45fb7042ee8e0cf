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
