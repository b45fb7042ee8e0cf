"""Recommender metrics as pure, vectorized numpy/scipy functions.

Conventions shared by every function here:

* **Recommendation lists** ``recs`` are integer arrays of shape ``(n_users, k)`` holding item
  indices, best first, padded with ``-1`` where a model returned fewer than ``k`` items. A row must
  not repeat an item. Padding never counts as a hit, as a recommended item, or in a popularity.
* **Truth** is a scipy.sparse matrix ``(n_users, n_items)``; its *stored entries* (the sparsity
  pattern, whatever their values) are each user's held-out relevant items.
* **Per-user scores** are float arrays of shape ``(n_users,)`` so that the caller can average,
  bootstrap and pair them. A user that a metric cannot score (no relevant items, no recommended
  items, ...) gets ``NaN``: it is left out of the mean and counted by :func:`summarize`, never
  scored as 0.
* ``k`` defaults to the number of columns of ``recs`` (or ``hits``); a smaller ``k`` truncates.
* Bad input raises :class:`MetricInputError` (a :class:`ValueError` and a
  :class:`~deepcart.errors.InputError`) whose message names the argument.

Top-N metrics work on a boolean *hit matrix*, so an evaluator can process users in chunks and
never densify ``truth``::

    for rows in chunks:
        recs, _ = model.recommend(train[rows], k=10)
        hits = hit_matrix(recs, test[rows])
        n_rel = count_relevant(test[rows])
        ndcg[rows] = ndcg_at_k(hits, n_rel)
    print(summarize(ndcg))
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy import stats

from deepcart.errors import InputError

__all__ = [
    "MetricInputError",
    "Summary",
    "average_precision_at_k",
    "auc_per_user",
    "bootstrap_ci",
    "catalog_coverage",
    "count_relevant",
    "hit_matrix",
    "hit_rate_at_k",
    "item_counts",
    "mae",
    "mean_popularity",
    "mrr_at_k",
    "ndcg_at_k",
    "novelty",
    "paired_test",
    "pearson_r",
    "precision_at_k",
    "recall_at_k",
    "rmse",
    "summarize",
    "top_k",
    "topn_metrics",
]

#: Upper bound on the number of resampled indices held at once by :func:`bootstrap_ci`.
_BOOT_CHUNK_ELEMENTS = 1 << 22


class MetricInputError(InputError, ValueError):
    """An argument of a metric function has the wrong shape, type or values."""


class Summary(NamedTuple):
    """The mean of a per-user metric over scored users, and how many users were (not) scored."""

    mean: float
    n_scored: int
    n_skipped: int


# --------------------------------------------------------------------------------------------
# validation helpers


def _as_truth(truth: object, name: str = "truth") -> sp.csr_array | sp.csr_matrix:
    """``truth`` as CSR in canonical form (sorted indices, no duplicates); never mutates input."""
    if not sp.issparse(truth):
        raise MetricInputError(
            f"{name}: expected a scipy.sparse matrix (n_users, n_items), got {type(truth).__name__}"
        )
    if truth.ndim != 2:
        raise MetricInputError(f"{name}: expected 2 dimensions, got shape {truth.shape}")
    csr = truth.tocsr()
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()  # also sorts the indices
    return csr


def _check_k(k: object, available: int, name: str) -> int:
    """Resolve ``k`` (None: all ``available`` columns) and check ``1 <= k <= available``."""
    if k is None:
        if available < 1:
            raise MetricInputError(f"{name} has no columns: cannot compute a metric at k=0")
        return available
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise MetricInputError(f"k: expected a positive integer, got {k!r}")
    if not 1 <= k <= available:
        raise MetricInputError(f"k: expected 1 <= k <= {available} (columns of {name}), got {k}")
    return int(k)


def _as_recs(recs: object, k: int | None, n_items: int | None, name: str = "recs") -> np.ndarray:
    """Validate a padded recommendation block and return its first ``k`` columns as int64."""
    r = np.asarray(recs)
    if r.ndim != 2:
        raise MetricInputError(f"{name}: expected a 2-D array (n_users, k), got shape {r.shape}")
    if not np.issubdtype(r.dtype, np.integer):
        raise MetricInputError(f"{name}: expected integer item indices, got dtype {r.dtype}")
    k = _check_k(k, r.shape[1], name)
    r = r[:, :k].astype(np.int64, copy=False)
    if r.size:
        lo, hi = int(r.min()), int(r.max())
        if lo < -1:
            raise MetricInputError(f"{name}: item indices must be >= 0 or the padding -1, got {lo}")
        if n_items is not None and hi >= n_items:
            raise MetricInputError(
                f"{name}: item index {hi} is out of range for a catalogue of {n_items} items"
            )
        if k > 1:
            srt = np.sort(r, axis=1)
            dup = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
            if dup.any():
                row = int(np.flatnonzero(dup.any(axis=1))[0])
                raise MetricInputError(f"{name}: row {row} recommends the same item twice")
    return r


def _check_hits(hits: object, n_relevant: object, k: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``hits``/``n_relevant``; return the first ``k`` hit columns and the counts."""
    h = np.asarray(hits)
    if h.ndim != 2:
        raise MetricInputError(f"hits: expected a 2-D array (n_users, k), got shape {h.shape}")
    if h.dtype != np.bool_:
        raise MetricInputError(f"hits: expected a boolean array (see hit_matrix), got {h.dtype}")
    n = np.asarray(n_relevant)
    if n.ndim != 1 or not np.issubdtype(n.dtype, np.integer):
        raise MetricInputError(
            f"n_relevant: expected a 1-D integer array, got shape {n.shape} dtype {n.dtype}"
        )
    if n.shape[0] != h.shape[0]:
        raise MetricInputError(f"hits has {h.shape[0]} rows but n_relevant has {n.shape[0]}")
    if n.size and n.min() < 0:
        raise MetricInputError("n_relevant: counts must be >= 0")
    bad = h.sum(axis=1) > n
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise MetricInputError(
            f"hits: row {row} has more hits than n_relevant[{row}] = {int(n[row])} "
            "(build both from the same truth with hit_matrix and count_relevant)"
        )
    k = _check_k(k, h.shape[1], "hits")
    return h[:, :k], n.astype(np.int64, copy=False)


def _as_1d_float(x: object, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise MetricInputError(f"{name}: expected a 1-D array, got shape {a.shape}")
    return a


def _popularity(item_popularity: object) -> np.ndarray:
    pop = _as_1d_float(item_popularity, "item_popularity")
    if pop.size and (not np.isfinite(pop).all() or pop.min() < 0):
        raise MetricInputError("item_popularity: expected finite values >= 0")
    return pop


def _row_mean_over_recs(r: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-row mean of ``values[item]`` over the non-padding items of ``r``; NaN if none."""
    valid = r >= 0
    v = np.where(valid, values[np.where(valid, r, 0)], 0.0)
    count = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, v.sum(axis=1) / count, np.nan)


# --------------------------------------------------------------------------------------------
# hits and relevance counts


def hit_matrix(
    recs: np.ndarray, truth: sp.sparray | sp.spmatrix, k: int | None = None
) -> np.ndarray:
    """Which recommended items are relevant: ``hits[u, i] = recs[u, i] in truth[u]``.

    Computed without densifying ``truth``: each stored entry ``(u, j)`` becomes the key
    ``u * n_items + j`` (sorted, since canonical CSR rows are sorted), and every recommended
    ``(u, recs[u, i])`` is looked up with one ``np.searchsorted``; cost
    ``O(nnz + n_users * k * log nnz)``, memory ``O(nnz + n_users * k)``.

    Args:
        recs: int ``(n_users, k)``, best first, ``-1`` padding (never a hit); no repeated item in a
            row; indices must be ``< n_items``.
        truth: sparse ``(n_users, n_items)``; its stored entries are the relevant items
            (duplicates are merged; explicit zeros still count, only the pattern matters).
        k: keep only the first ``k`` columns of ``recs``.

    Returns:
        bool ``(n_users, k)``.
    """
    t = _as_truth(truth)
    n_users, n_items = t.shape
    r = _as_recs(recs, k, n_items)
    if r.shape[0] != n_users:
        raise MetricInputError(f"recs has {r.shape[0]} rows but truth has {n_users}")
    if t.nnz == 0:
        return np.zeros(r.shape, dtype=bool)
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(t.indptr))
    keys = rows * n_items + t.indices.astype(np.int64, copy=False)
    query = np.arange(n_users, dtype=np.int64)[:, None] * n_items + r
    pos = np.searchsorted(keys, query)
    np.minimum(pos, keys.size - 1, out=pos)
    # r == -1 maps onto the key of the previous row's last item; mask it out explicitly.
    return (keys[pos] == query) & (r >= 0)


def count_relevant(truth: sp.sparray | sp.spmatrix) -> np.ndarray:
    """Number of relevant items per user: the stored entries of each row of ``truth``.

    Equal to ``np.diff(truth.indptr)`` for a canonical CSR matrix; duplicates are merged first.
    Returns int64 ``(n_users,)``.
    """
    return np.diff(_as_truth(truth).indptr).astype(np.int64)


# --------------------------------------------------------------------------------------------
# per-user top-N metrics (inputs: hits from hit_matrix, n_relevant from count_relevant)


def precision_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int | None = None) -> np.ndarray:
    """Precision@k: the fraction of the ``k`` recommendation slots that hold a relevant item.

    ``P@k(u) = |hits in the first k| / k``. The denominator is the cutoff ``k`` even when the model
    returned fewer than ``k`` items (empty, ``-1`` slots count as misses), so lists of different
    lengths are compared on the same footing. ``NaN`` for users with no relevant items.

    Args:
        hits: bool ``(n_users, >= k)`` from :func:`hit_matrix`.
        n_relevant: int ``(n_users,)`` from :func:`count_relevant`.
        k: cutoff; defaults to ``hits.shape[1]``.
    """
    h, n = _check_hits(hits, n_relevant, k)
    out = h.sum(axis=1) / h.shape[1]
    out[n == 0] = np.nan
    return out


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int | None = None) -> np.ndarray:
    """Recall@k: the fraction of the user's relevant items found in the first ``k``.

    ``R@k(u) = |hits in the first k| / |truth(u)|`` with the full ``|truth(u)|`` as denominator
    (the standard definition: a user with more than ``k`` relevant items cannot reach 1).
    ``NaN`` for users with no relevant items.
    """
    h, n = _check_hits(hits, n_relevant, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, h.sum(axis=1) / n, np.nan)


def hit_rate_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int | None = None) -> np.ndarray:
    """Hit rate@k: 1.0 if any of the first ``k`` items is relevant, else 0.0.

    Its mean over users is the HR@k of leave-one-out papers. ``NaN`` for users with no relevant
    items.
    """
    h, n = _check_hits(hits, n_relevant, k)
    return np.where(n > 0, h.any(axis=1).astype(np.float64), np.nan)


def mrr_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int | None = None) -> np.ndarray:
    """Reciprocal rank@k: ``1 / rank`` of the first relevant item within the first ``k``.

    Ranks start at 1; 0.0 when none of the first ``k`` items is relevant. The mean over users is
    MRR@k. ``NaN`` for users with no relevant items.
    """
    h, n = _check_hits(hits, n_relevant, k)
    rr = np.where(h.any(axis=1), 1.0 / (h.argmax(axis=1) + 1.0), 0.0)
    rr[n == 0] = np.nan
    return rr


def average_precision_at_k(
    hits: np.ndarray, n_relevant: np.ndarray, k: int | None = None
) -> np.ndarray:
    """Average precision@k (its mean over users is MAP@k).

    ``AP@k(u) = sum_{i <= k, rec i is a hit} P@i(u) / min(|truth(u)|, k)``, where ``P@i`` is the
    precision of the first ``i`` items. Normalising by ``min(|truth|, k)`` (the common definition)
    lets a perfect list reach 1 even when the user has more than ``k`` relevant items. ``NaN`` for
    users with no relevant items.
    """
    h, n = _check_hits(hits, n_relevant, k)
    kk = h.shape[1]
    prec_at_i = np.cumsum(h, axis=1) / np.arange(1, kk + 1)
    total = (prec_at_i * h).sum(axis=1)
    denom = np.minimum(n, kk)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / denom, np.nan)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int | None = None) -> np.ndarray:
    """Normalised discounted cumulative gain@k with binary gains.

    ``DCG@k(u) = sum_{i=1..k} hit_i / log2(i + 1)``; the ideal ``IDCG@k(u)`` puts the user's
    relevant items first: ``sum_{i=1..min(|truth(u)|, k)} 1 / log2(i + 1)``;
    ``nDCG@k = DCG / IDCG`` in ``[0, 1]``. ``NaN`` for users with no relevant items (IDCG = 0).
    """
    h, n = _check_hits(hits, n_relevant, k)
    kk = h.shape[1]
    discount = 1.0 / np.log2(np.arange(2, kk + 2))
    dcg = h @ discount
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(n, kk)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, dcg / ideal, np.nan)


def topn_metrics(
    recs: np.ndarray, truth: sp.sparray | sp.spmatrix, k: int | None = None
) -> dict[str, np.ndarray]:
    """All per-user top-N metrics at once: ``precision``, ``recall``, ``hit_rate``, ``mrr``,
    ``map`` (average precision) and ``ndcg``, each a float ``(n_users,)`` array (NaN for users
    with an empty truth set). A convenience over :func:`hit_matrix` and the ``*_at_k`` functions.
    """
    hits = hit_matrix(recs, truth, k)
    n = count_relevant(truth)
    return {
        "precision": precision_at_k(hits, n),
        "recall": recall_at_k(hits, n),
        "hit_rate": hit_rate_at_k(hits, n),
        "mrr": mrr_at_k(hits, n),
        "map": average_precision_at_k(hits, n),
        "ndcg": ndcg_at_k(hits, n),
    }


def summarize(per_user: np.ndarray) -> Summary:
    """Mean of a per-user metric over the users it could score.

    Returns ``Summary(mean, n_scored, n_skipped)``: the mean over non-NaN entries, their number,
    and the number of NaN (unscorable) users. ``mean`` is NaN when no user was scored.
    """
    a = _as_1d_float(per_user, "per_user")
    ok = ~np.isnan(a)
    n_scored = int(ok.sum())
    mean = float(a[ok].mean()) if n_scored else math.nan
    return Summary(mean, n_scored, int(a.size - n_scored))


# --------------------------------------------------------------------------------------------
# beyond accuracy: coverage, popularity, novelty


def item_counts(recs: np.ndarray, n_items: int, k: int | None = None) -> np.ndarray:
    """How many lists recommend each item (``-1`` padding ignored): int64 ``(n_items,)``.

    Add the counts of several chunks to get the counts of all users; ``catalog_coverage`` is then
    ``(counts > 0).mean()``.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, int | np.integer) or n_items < 1:
        raise MetricInputError(f"n_items: expected a positive integer, got {n_items!r}")
    r = _as_recs(recs, k, int(n_items))
    return np.bincount(r[r >= 0], minlength=int(n_items)).astype(np.int64)


def catalog_coverage(recs: np.ndarray, n_items: int, k: int | None = None) -> float:
    """Catalogue coverage: the fraction of the ``n_items`` items recommended to at least one user.

    ``|union of recs over users, -1 ignored| / n_items``, in ``[0, 1]``; 0.0 when every slot is
    padding. A whole-population figure, not per user (for chunks, add up :func:`item_counts`).
    """
    return float((item_counts(recs, n_items, k) > 0).mean())


def mean_popularity(
    recs: np.ndarray, item_popularity: np.ndarray, k: int | None = None
) -> np.ndarray:
    """Average popularity of each user's recommended items.

    ``MP(u) = mean_{i in recs(u), i != -1} pop_i`` with ``pop`` e.g. the training interaction
    count per item (``len(item_popularity)`` is the catalogue size). ``NaN`` for users whose list
    is all padding.
    """
    pop = _popularity(item_popularity)
    r = _as_recs(recs, k, pop.size)
    return _row_mean_over_recs(r, pop)


def novelty(
    recs: np.ndarray, item_popularity: np.ndarray, n_users_train: int, k: int | None = None
) -> np.ndarray:
    """Mean self-information of each user's recommended items, in bits.

    ``nov(u) = mean_{i in recs(u), i != -1} -log2(max(pop_i, 1) / n_users_train)`` where ``pop_i``
    is the number of training users who interacted with item ``i`` (so ``pop_i <= n_users_train``).
    An item no training user saw is counted as seen once (instead of infinite information), so
    ``0 <= nov <= log2(n_users_train)``. ``NaN`` for users whose list is all padding.
    """
    if (
        isinstance(n_users_train, bool)
        or not isinstance(n_users_train, int | np.integer)
        or n_users_train < 1
    ):
        raise MetricInputError(f"n_users_train: expected a positive integer, got {n_users_train!r}")
    pop = _popularity(item_popularity)
    if pop.size and pop.max() > n_users_train:
        raise MetricInputError(
            f"item_popularity: max {pop.max():g} exceeds n_users_train = {n_users_train}; "
            "novelty needs the number of distinct training users per item"
        )
    r = _as_recs(recs, k, pop.size)
    info = -np.log2(np.maximum(pop, 1.0) / n_users_train)
    return _row_mean_over_recs(r, info)


# --------------------------------------------------------------------------------------------
# rating prediction


def _rating_pairs(pred: object, true: object) -> tuple[np.ndarray, np.ndarray]:
    """Flatten aligned ``pred``/``true`` and drop pairs whose prediction is NaN."""
    p = np.asarray(pred, dtype=np.float64).ravel()
    t = np.asarray(true, dtype=np.float64).ravel()
    if np.shape(pred) != np.shape(true):
        raise MetricInputError(
            f"pred has shape {np.shape(pred)} but true has shape {np.shape(true)}"
        )
    if np.isnan(t).any():
        raise MetricInputError("true: contains NaN; every held-out rating must be known")
    keep = ~np.isnan(p)
    return p[keep], t[keep]


def rmse(pred: np.ndarray, true: np.ndarray) -> float:
    """Root mean squared error ``sqrt(mean((pred - true)^2))`` over aligned arrays.

    A NaN prediction means "the model cannot predict this pair" (e.g. an unknown item): such pairs
    are left out (count them with ``np.isnan(pred).sum()`` to report prediction coverage). NaN in
    ``true`` raises. Returns NaN when no pair is left.
    """
    p, t = _rating_pairs(pred, true)
    return float(np.sqrt(np.mean((p - t) ** 2))) if p.size else math.nan


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean absolute error ``mean(|pred - true|)``; NaN predictions are left out as in
    :func:`rmse`. Returns NaN when no pair is left."""
    p, t = _rating_pairs(pred, true)
    return float(np.mean(np.abs(p - t))) if p.size else math.nan


def pearson_r(pred: np.ndarray, true: np.ndarray) -> float:
    """Pearson correlation between predictions and true ratings.

    ``r = sum((p - mean p)(t - mean t)) / sqrt(sum((p - mean p)^2) sum((t - mean t)^2))``, over
    the pairs whose prediction is not NaN (as in :func:`rmse`). Returns NaN, because r is
    undefined, when fewer than 2 pairs are left or either side is constant (zero variance, e.g. a
    global-mean predictor).
    """
    p, t = _rating_pairs(pred, true)
    if p.size < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return math.nan
    dp, dt = p - p.mean(), t - t.mean()
    r = float(np.dot(dp, dt) / np.sqrt(np.dot(dp, dp) * np.dot(dt, dt)))
    return min(1.0, max(-1.0, r))


# --------------------------------------------------------------------------------------------
# ranking quality over the whole catalogue


def _pattern(m: sp.csr_array | sp.csr_matrix) -> np.ndarray:
    """Dense boolean sparsity pattern of a CSR chunk."""
    out = np.zeros(m.shape, dtype=bool)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    out[rows, m.indices] = True
    return out


def _check_block(scores: object, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores)
    if s.ndim != 2:
        raise MetricInputError(f"{name}: expected a 2-D array (n_users, n_items), got {s.shape}")
    if not (np.issubdtype(s.dtype, np.floating) or np.issubdtype(s.dtype, np.integer)):
        raise MetricInputError(f"{name}: expected numeric scores, got dtype {s.dtype}")
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    if np.isnan(s).any():
        raise MetricInputError(f"{name}: contains NaN (use -inf for an item that must rank last)")
    return s


def _check_same_shape(m: sp.csr_array | sp.csr_matrix, shape: tuple[int, int], name: str) -> None:
    if m.shape != shape:
        raise MetricInputError(
            f"{name} has shape {m.shape} but scores has shape {shape} (rows: users, columns: items)"
        )


def auc_per_user(
    scores: np.ndarray,
    truth: sp.sparray | sp.spmatrix,
    exclude: sp.sparray | sp.spmatrix | None = None,
    candidates_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Per-user ROC AUC of a dense score block: the chance a relevant item outranks a non-relevant.

    Over the user's *eligible* items (in ``candidates_mask`` if given, and not in ``exclude``), with
    ``P`` relevant (in ``truth``) and ``N`` non-relevant ones:
    ``AUC(u) = (#{(p, n): s_p > s_n} + 0.5 #{(p, n): s_p = s_n}) / (P N)``,
    computed from mid-ranks (Mann-Whitney U) in ``O(n_items log n_items)`` per user:
    ``AUC = (sum of ranks of relevant items - P (P + 1) / 2) / (P N)``.
    ``NaN`` for users with ``P = 0`` or ``N = 0``. A relevant item that is excluded or not a
    candidate is ignored.

    Args:
        scores: float ``(n_chunk, n_items)``, higher is better; no NaN (``-inf`` is allowed).
        truth: sparse ``(n_chunk, n_items)``, stored entries are relevant.
        exclude: optional sparse ``(n_chunk, n_items)`` of items to leave out (seen in input).
        candidates_mask: optional bool ``(n_chunk, n_items)`` or ``(n_items,)`` of eligible items.

    Memory is a few dense ``(n_chunk, n_items)`` arrays: choose the chunk size accordingly.
    """
    s = _check_block(scores)
    t = _as_truth(truth)
    _check_same_shape(t, s.shape, "truth")
    eligible = np.ones(s.shape, dtype=bool)
    if candidates_mask is not None:
        c = np.asarray(candidates_mask)
        if c.dtype != np.bool_ or c.shape not in (s.shape, s.shape[1:]):
            raise MetricInputError(
                f"candidates_mask: expected bool of shape {s.shape} or {s.shape[1:]}, "
                f"got {c.dtype} {c.shape}"
            )
        eligible &= c
    if exclude is not None:
        e = _as_truth(exclude, "exclude")
        _check_same_shape(e, s.shape, "exclude")
        eligible &= ~_pattern(e)
    relevant = _pattern(t) & eligible
    n_pos = relevant.sum(axis=1)
    n_neg = eligible.sum(axis=1) - n_pos

    if (np.isneginf(s) & eligible).any():
        # Rank eligible items only (ineligible ones become NaN and are omitted).
        ranks = stats.rankdata(np.where(eligible, s, np.nan), axis=1, nan_policy="omit")
        rank_sum = np.where(relevant, ranks, 0.0).sum(axis=1)
    else:
        # Faster: ineligible items at -inf all rank below every eligible item, which shifts each
        # eligible rank by the number m of ineligible items in the row.
        ranks = stats.rankdata(np.where(eligible, s, -np.inf), axis=1)
        m = s.shape[1] - eligible.sum(axis=1)
        rank_sum = np.where(relevant, ranks, 0.0).sum(axis=1) - n_pos * m
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


# --------------------------------------------------------------------------------------------
# statistics over users


def bootstrap_ci(
    per_user: np.ndarray, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of a per-user metric.

    NaN users are dropped; the remaining ``n`` values are resampled with replacement ``n_boot``
    times, and the ``alpha/2`` and ``1 - alpha/2`` quantiles of the resampled means are returned.
    Resampling is done in chunks of at most ~4M indices, so memory stays bounded for any ``n``.
    Deterministic for a given ``seed``. Returns ``(nan, nan)`` when no user was scored.
    """
    a = _as_1d_float(per_user, "per_user")
    a = a[~np.isnan(a)]
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise MetricInputError(f"n_boot: expected a positive integer, got {n_boot!r}")
    if not 0.0 < alpha < 1.0:
        raise MetricInputError(f"alpha: expected 0 < alpha < 1, got {alpha!r}")
    n = a.size
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOT_CHUNK_ELEMENTS // n)
    means = np.empty(int(n_boot))
    for start in range(0, int(n_boot), chunk):
        b = min(chunk, int(n_boot) - start)
        means[start : start + b] = a[rng.integers(0, n, size=(b, n))].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def paired_test(
    a: np.ndarray, b: np.ndarray, method: Literal["ttest", "wilcoxon"] = "ttest"
) -> float:
    """Two-sided p-value that two systems differ, on per-user scores aligned on the same users.

    Users NaN in either array are dropped. The primary ``method="ttest"`` is the paired t-test
    (``scipy.stats.ttest_rel``) on ``d = a - b``: it tests the difference of the *means*, the very
    figure reported, and with thousands of users the mean difference is close to normal even
    though per-user scores are not. ``method="wilcoxon"`` (signed-rank test, zero differences
    dropped) is offered as a distribution-free check for small user sets.

    Edge cases: NaN when fewer than 2 users remain; 1.0 when every difference is 0; for the t-test,
    0.0 when every difference is the same nonzero value up to rounding (zero variance, infinite t).
    """
    x = _as_1d_float(a, "a")
    y = _as_1d_float(b, "b")
    if x.shape != y.shape:
        raise MetricInputError(f"a has {x.size} users but b has {y.size}; align them first")
    if method not in ("ttest", "wilcoxon"):
        raise MetricInputError(f"method: expected 'ttest' or 'wilcoxon', got {method!r}")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if x.size < 2:
        return math.nan
    d = x - y
    if not d.any():
        return 1.0
    if method == "ttest":
        # Constant up to rounding (e.g. b = a + 0.1): t is infinite, scipy would lose precision.
        if np.ptp(d) <= 16 * np.finfo(np.float64).eps * np.abs(d).max():
            return 0.0
        return float(stats.ttest_rel(x, y).pvalue)
    return float(stats.wilcoxon(d).pvalue)


# --------------------------------------------------------------------------------------------
# top-k selection


def top_k(
    scores: np.ndarray, k: int, exclude: sp.sparray | sp.spmatrix | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best items of each row of a dense score block, best first.

    Items in ``exclude`` (e.g. those seen in input) are set to ``-inf``; an item whose score is
    ``-inf`` is never returned. Ties are broken deterministically: on equal scores the lower item
    index comes first. Where fewer than ``k`` items are left, indices are padded with ``-1`` and
    scores with ``-inf``. Selection uses a partition (``O(n_items)`` per row) and sorts only the
    ``k`` winners.

    Args:
        scores: ``(n_chunk, n_items)``, higher is better; no NaN.
        k: number of items to return (``k > n_items`` is allowed and padded).
        exclude: optional sparse ``(n_chunk, n_items)`` of items to mask out.

    Returns:
        ``(indices, top_scores)``: int64 and float ``(n_chunk, k)`` arrays; float32 scores stay
        float32, integer scores become float64.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise MetricInputError(f"k: expected a positive integer, got {k!r}")
    k = int(k)
    s = _check_block(scores)
    n_rows, n_items = s.shape
    if exclude is not None:
        e = _as_truth(exclude, "exclude")
        _check_same_shape(e, s.shape, "exclude")
        s = s.copy()
        s[np.repeat(np.arange(n_rows), np.diff(e.indptr)), e.indices] = -np.inf

    if k >= n_items:
        idx = np.argsort(-s, axis=1, kind="stable")
    elif n_rows == 1:
        # The same selection on a 1-d row (a served fold-in): index arrays of k items instead
        # of boolean masks and cumulative sums over every item.
        row = s[0]
        kth = np.partition(row, n_items - k)[n_items - k]
        above = np.flatnonzero(row > kth)
        chosen = np.sort(np.concatenate([above, np.flatnonzero(row == kth)[: k - len(above)]]))
        idx = chosen[np.argsort(-row[chosen], kind="stable")][None, :]
    else:
        # The k-th largest value of each row, then everything above it, then the lowest-index
        # items equal to it until k are taken (argpartition alone breaks such ties arbitrarily).
        kth = np.partition(s, n_items - k, axis=1)[:, n_items - k][:, None]
        selected = s > kth
        ties = s == kth
        need = k - selected.sum(axis=1)
        ambiguous = np.flatnonzero(ties.sum(axis=1) > need)
        ties[ambiguous] &= (
            np.cumsum(ties[ambiguous], axis=1, dtype=np.int32) <= need[ambiguous, None]
        )
        selected |= ties
        idx = np.nonzero(selected)[1].reshape(n_rows, k)  # ascending item index within each row
        order = np.argsort(-np.take_along_axis(s, idx, axis=1), axis=1, kind="stable")
        idx = np.take_along_axis(idx, order, axis=1)
    top = np.take_along_axis(s, idx, axis=1)
    idx = np.where(np.isneginf(top), -1, idx).astype(np.int64)
    if idx.shape[1] < k:
        pad = k - idx.shape[1]
        idx = np.pad(idx, ((0, 0), (0, pad)), constant_values=-1)
        top = np.pad(top, ((0, 0), (0, pad)), constant_values=-np.inf)
    return idx, top
