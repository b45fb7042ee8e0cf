"""``naive``: each item's mean training rating, the original DeepCart's "mean score" recommender.

    r̂(u, i) = R_i = (1 / n_i) Σ_u r_ui     if n_i >= min_ratings
    r̂(u, i) = μ   = mean of every training rating   otherwise (including unrated items)

The same prediction for every user, so the same ranking for everyone: items by mean rating.
With ``min_ratings=1`` (the original) an item rated once with 5 stars tops the list; the default
``min_ratings=5`` gave a lower held-out RMSE on every real Amazon set we tried (2-9% relative),
and the shrunk means of ``weighted-rating`` and ``baseline`` do better still. Predictions are
clipped to [1, 5]; ranking uses the unclipped means.

This module also holds what the rating predictors (naive, weighted-rating, baseline, svd) share:
hyperparameter checks, per-item rating statistics and the validation of ``predict`` pairs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from deepcart.errors import InputError
from deepcart.models.base import Recommender, as_csr

#: The rating scale every prediction is clipped to.
RATING_MIN, RATING_MAX = 1.0, 5.0


# ------------------------------------------------------------------ helpers for rating predictors


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float,
    integer: bool = False,
    strict: bool = False,
    allow_none: bool = False,
) -> None:
    """Raise :class:`InputError` naming hyperparameter ``name`` unless ``value`` is a finite number
    ``>= minimum`` (``> minimum`` when ``strict``), an integer when ``integer``."""
    if value is None and allow_none:
        return
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int | np.integer) or (
        not integer and isinstance(value, float | np.floating)
    )
    if isinstance(value, bool) or not ok_type or not math.isfinite(value):
        none = " or null" if allow_none else ""
        raise InputError(f"{name}: expected {kind}{none}, got {value!r}")
    if value < minimum or (strict and value == minimum):
        op = ">" if strict else ">="
        raise InputError(f"{name}: expected {kind} {op} {minimum:g}, got {value!r}")


def rating_stats(x: sp.csr_matrix) -> tuple[float, np.ndarray, np.ndarray]:
    """Global mean rating μ, and per item the rating count n_i and rating sum Σ_u r_ui."""
    if x.nnz == 0:
        raise InputError("user_items: has no ratings to learn from")
    mu = float(np.mean(x.data, dtype=np.float64))
    counts = np.bincount(x.indices, minlength=x.shape[1]).astype(np.float64)
    sums = np.bincount(x.indices, weights=x.data.astype(np.float64), minlength=x.shape[1])
    return mu, counts, sums


def check_pairs(
    model: Recommender, user_items: Any, items: Any
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Validate ``predict``'s arguments: a CSR row per pair and one item index per row."""
    model._check_fitted()
    x = as_csr(user_items, n_items=model.n_items_)
    it = np.asarray(items)
    if it.ndim != 1:
        raise InputError(f"items: expected a 1-d array of item indices, got shape {it.shape}")
    if it.size == 0:
        it = it.astype(np.int64)
    if it.dtype == bool or not np.issubdtype(it.dtype, np.integer):
        raise InputError(f"items: expected integer item indices, got dtype {it.dtype}")
    if it.shape[0] != x.shape[0]:
        raise InputError(
            f"items: has {it.shape[0]} entries but user_items has {x.shape[0]} rows "
            "(one item per row)"
        )
    if it.size and (it.min() < 0 or it.max() >= model.n_items_):
        raise InputError(f"items: item indices must be in [0, {model.n_items_})")
    return x, it.astype(np.int64)


def clip_ratings(r: np.ndarray) -> np.ndarray:
    return np.clip(r, RATING_MIN, RATING_MAX)


def row_ids(x: sp.csr_matrix) -> np.ndarray:
    """The row index of every stored entry of ``x``."""
    return np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))


# ------------------------------------------------------------------ the model


class NaiveModel(Recommender):
    """Predicts (and ranks by) each item's mean training rating; items with fewer than
    ``min_ratings`` ratings get the global mean."""

    name = "naive"
    feedback = "explicit"
    predicts_ratings = True

    def __init__(self, *, min_ratings: int = 5) -> None:
        self.min_ratings = min_ratings

    def check_params(self) -> None:
        check_number("min_ratings", self.min_ratings, minimum=1, integer=True)

    def _fit(self, x: sp.csr_matrix, **side: object) -> None:
        mu, counts, sums = rating_stats(x)
        means = np.full(x.shape[1], mu)
        ok = counts >= self.min_ratings
        means[ok] = sums[ok] / counts[ok]
        self.global_mean_ = mu
        self.item_means_ = means

    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.item_means_, (x.shape[0], self.n_items_)).copy()

    def predict(self, user_items: Any, items: Any) -> np.ndarray:
        """Predicted rating for row ``i`` of ``user_items`` and item ``items[i]``: the item's mean
        (the row does not matter)."""
        _, it = check_pairs(self, user_items, items)
        return clip_ratings(self.item_means_[it])

    def _state(self) -> dict[str, np.ndarray]:
        return {"global_mean_": np.asarray(self.global_mean_), "item_means_": self.item_means_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.global_mean_ = float(arrays["global_mean_"])
        self.item_means_ = arrays["item_means_"]
