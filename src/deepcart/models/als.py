"""``als``: implicit-feedback matrix factorization by alternating least squares.

References:
    Y. Hu, Y. Koren, C. Volinsky (2008). Collaborative Filtering for Implicit Feedback Datasets.
    ICDM 2008. (The model, the confidence weighting and the ``Y^T Y`` trick.)

    G. Takács, I. Pilászy, D. Tikk (2011). Applications of the Conjugate Gradient Method for
    Implicit Feedback Collaborative Filtering. RecSys 2011. (A few warm-started CG steps per
    half-sweep instead of an exact solve.)

The model. Every (user ``u``, item ``i``) pair has a preference and a confidence::

    p_ui = 1 if u interacted with i, else 0
    c_ui = 1 + alpha * r_ui                  confidence="linear" (default)
    c_ui = 1 + alpha * log(1 + r_ui / eps)   confidence="log"
    c_ui = 1                                 for pairs without an interaction

where ``r_ui`` is the input value (the rating in best mode, ``6 - r`` for a low rating in worst
mode; see :mod:`deepcart.modes`), or 1 for every interaction when ``use_rating_values=False``.
ALS minimises, over user factors ``X`` (n_users x f) and item factors ``Y`` (n_items x f)::

    L(X, Y) = sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + regularization * (|X|_F^2 + |Y|_F^2)

by alternating minimisations: with ``Y`` fixed, each ``x_u`` solves the ridge system::

    (Y^T Y + Y^T (C_u - I) Y + regularization I) x_u = Y^T C_u p_u

``Y^T Y`` is shared by all users and ``C_u - I`` is zero outside u's items, so a row costs
``O(n_u f^2)`` (or ``O(n_u f)`` per CG step) rather than ``O(n_items f^2)``; then the same with
``X`` fixed for the items. Each half-sweep takes ``cg_steps`` conjugate-gradient steps per row,
warm-started from the previous factors (each CG step lowers the row's quadratic, so the loss
never goes up); ``cg_steps=0`` solves the systems exactly instead.

Backends. The sweeps run in the ``implicit`` library (C++, multithreaded) when it is installed,
else in the vectorised numpy/scipy code below (all rows of a cache-sized block advance together;
no Python loop per user). Both start from the same initial factors (``seed``) and solve the same
systems, so they give the same model up to float rounding. ``benchmarks/als.py`` on 2 CPUs,
factors 64, 15 iterations, CG: 29k training ratings 0.12 s (implicit) vs 0.15 s (numpy); 360k
ratings 0.94 s vs 2.07 s; same NDCG@10. Fold-in, scoring and save/load are always ours, so a
saved model loads and serves without implicit.

Fold-in. A scored row (a known user or a brand-new one) gets its factor vector from the exact
user step above against the fixed item factors, then ``score_ui = x_u . y_i``. A row without
interactions has no signal (``x_u = 0``); it gets the training popularity instead. Each row is
solved on its own, so a batch equals one-by-one calls.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from deepcart.errors import InputError
from deepcart.models.base import Recommender, as_csr
from deepcart.progress import progress_bar

log = logging.getLogger(__name__)

#: Elements in one temporary (nnz x factors) array of the exact solves (bounds memory: 256 MB).
_BLOCK_ELEMENTS = 1 << 25
#: Elements in one (nnz x factors) array of a CG block (1 MB in float32: stays in cache).
_CG_BLOCK_ELEMENTS = 1 << 18
#: Up to this many rows, scoring solves row by row (:func:`_solve_few`): a one-row fold-in costs
#: half as much or less; from about 16 rows the padded batches of :func:`_exact_solve` do as well.
_FEW_ROWS = 16
CONFIDENCES = ("linear", "log")
BACKENDS = ("auto", "implicit", "numpy")


@functools.cache
def implicit_available() -> bool:
    """Whether the ``implicit`` package (the fast training backend) imports here."""
    try:
        import implicit.cpu.als  # noqa: F401
    except (ImportError, OSError):  # not installed, or a binary that does not load
        return False
    return True


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """Hold BLAS to one thread while training (only small ``f x f`` products go to BLAS; a BLAS
    thread pool next to implicit's threads, or on a busy machine, slows ALS down several times,
    as implicit warns). A no-op without threadpoolctl (installed with implicit)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


# ------------------------------------------------------------------------------ validation


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InputError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_float(name: str, value: Any, minimum: float, strict: bool) -> float:
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > minimum if strict else v >= minimum)
    if not ok:
        op = ">" if strict else ">="
        raise InputError(f"{name}: expected a finite number {op} {minimum}, got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------ solvers


def _row_blocks(indptr: np.ndarray, budget: int) -> Iterator[tuple[int, int]]:
    """Consecutive row ranges holding at most ``budget`` nonzeros (or a single row)."""
    n = len(indptr) - 1
    start = 0
    while start < n:
        stop = int(np.searchsorted(indptr, indptr[start] + budget, side="right")) - 1
        stop = min(max(stop, start + 1), n)
        yield start, stop
        start = stop


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def _cg_sweep(c: sp.csr_matrix, x: np.ndarray, y: np.ndarray, gram: np.ndarray, steps: int) -> None:
    """``steps`` CG steps on every row's system, warm-started from ``x`` (updated in place).

    ``c`` holds the confidences ``c_ui`` of the observed pairs (rows of ``x``, columns of
    ``y``); ``gram = Y^T Y + regularization I``. Rows advance together in cache-sized blocks:
    ``A p`` is ``p @ gram`` plus a sparse ``(c - 1) (y_i . p) y_i`` correction, ``O(nnz f)``.
    """
    for start, stop in _row_blocks(c.indptr, max(1, _CG_BLOCK_ELEMENTS // y.shape[1])):
        _cg_block(c[start:stop], x[start:stop], y, gram, steps)


def _cg_block(c: sp.csr_matrix, x: np.ndarray, y: np.ndarray, gram: np.ndarray, steps: int) -> None:
    counts = np.diff(c.indptr)
    yg = y[c.indices]
    w = c.data - 1.0
    correction = c.copy()

    def apply(p: np.ndarray) -> np.ndarray:
        correction.data = _rowdot(np.repeat(p, counts, axis=0), yg) * w
        out = p @ gram
        out += correction @ y
        return out

    r = c @ y - apply(x)
    p = r.copy()
    rs = _rowdot(r, r)
    for _ in range(steps):
        ap = apply(p)
        pap = _rowdot(p, ap)
        a = np.divide(rs, pap, out=np.zeros_like(rs), where=pap > 0)
        x += a[:, None] * p
        r -= a[:, None] * ap
        rs_new = _rowdot(r, r)
        beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 0)
        p *= beta[:, None]
        p += r
        rs = rs_new


def _solve_few(
    indptr: np.ndarray, indices: np.ndarray, conf: np.ndarray, y: np.ndarray, gram: np.ndarray
) -> np.ndarray:
    """:func:`_exact_solve` for a few rows, given as CSR arrays with float64 confidences.

    The same systems ``(gram + Y_u^T (C_u - I) Y_u) x_u = Y_u^T C_u p_u``, built row by row
    without padding and solved in one batched call (the same LU solve): without the grouping,
    padding and sparse copies that dominate a one-row call. Empty rows get ``x_u = 0``.
    """
    n, f = len(indptr) - 1, y.shape[1]
    a = np.empty((n, f, f), dtype=np.float64)
    b = np.zeros((n, f, 1), dtype=np.float64)
    for i in range(n):
        lo, hi = indptr[i], indptr[i + 1]
        c, yu = conf[lo:hi], y[indices[lo:hi]]
        np.matmul(yu.T * (c - 1.0), yu, out=a[i])
        a[i] += gram
        b[i, :, 0] = c @ yu
    return np.linalg.solve(a, b)[:, :, 0]


def _exact_solve(c: sp.csr_matrix, y: np.ndarray, gram: np.ndarray) -> np.ndarray:
    """Exact ``x_u`` for every row of ``c`` (confidences) against fixed ``y`` (float64).

    Rows are grouped by their number of interactions rounded up to a power of two and padded
    with zeros to it, so each group is one batched ``Y_u^T (C_u - I) Y_u`` product and one
    batched solve; a row's result depends only on the row (batch equals one-by-one).
    """
    n, f = c.shape[0], y.shape[1]
    out = np.zeros((n, f), dtype=np.float64)
    counts = np.diff(c.indptr)
    nonempty = counts > 0
    if not nonempty.any():
        return out
    length = np.ones(n, dtype=np.int64)
    length[nonempty] = 1 << np.ceil(np.log2(counts[nonempty])).astype(np.int64)
    for size in np.unique(length[nonempty]):
        members = np.flatnonzero(nonempty & (length == size))
        per = max(1, _BLOCK_ELEMENTS // int(size * f))
        for b in range(0, len(members), per):
            chunk = members[b : b + per]
            cnt = counts[chunk]
            m = len(chunk)
            pos = np.repeat(np.arange(m), cnt)
            within = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            src = np.repeat(c.indptr[chunk], cnt) + within
            yp = np.zeros((m, int(size), f), dtype=np.float64)
            yp[pos, within] = y[c.indices[src]]
            conf = np.zeros((m, 1, int(size)), dtype=np.float64)
            conf[pos, 0, within] = c.data[src]
            weight = np.zeros((m, int(size), 1), dtype=np.float64)
            weight[pos, within, 0] = c.data[src] - 1.0
            a = gram + np.matmul((yp * weight).transpose(0, 2, 1), yp)
            rhs = np.matmul(conf, yp).transpose(0, 2, 1)
            out[chunk] = np.linalg.solve(a, rhs)[:, :, 0]
    return out


# ------------------------------------------------------------------------------ model


class ALSModel(Recommender):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008); see the module docstring.

    Hyperparameters (keyword-only):
        factors: latent dimension ``f``.
        regularization: ``lambda`` on both factor matrices (> 0: fold-in solves must be
            well-posed).
        alpha: confidence slope (``c = 1 + alpha r``).
        iterations: alternating sweeps (user step + item step).
        confidence: ``"linear"`` (``1 + alpha r``) or ``"log"`` (``1 + alpha log(1 + r / eps)``).
        eps: the scale of the log confidence.
        use_rating_values: use the input value as ``r``; ``False``: ``r = 1`` for every
            interaction (then the confidence is the same ``1 + alpha`` everywhere).
        cg_steps: conjugate-gradient steps per row per half-sweep in training; 0 = exact solve.
        backend: who runs the training sweeps: ``"implicit"`` (the ``implicit`` library's
            multithreaded C++ solvers, several times faster: ``benchmarks/als.py``),
            ``"numpy"`` (vectorised numpy/scipy here) or ``"auto"`` (implicit when installed,
            else numpy). Both solve the same problem from the same initial factors, so they give
            the same model up to float rounding; fold-in, scoring and save/load are ours either
            way (a saved model loads without implicit).
        seed: seeds the initial factors; the same seed gives the same factors (on CPU).

    The defaults (64 factors, regularization 50, alpha 5 on rating values, 15 iterations) were
    the most robust on validation users of the synthetic quickstart data, a 500k-review
    synthetic set and small real Amazon sets (Magazine Subscriptions, Digital Music, Gift
    Cards, All Beauty); smaller regularization suits tiny data sets. implicit uses
    ``OMP_NUM_THREADS`` threads (default: every CPU).

    Learned: ``item_factors_`` (n_items x f, float32), ``item_counts_`` (training interactions
    per item, the cold-start fallback); not saved: ``user_factors_`` (training users; scoring
    folds rows in) and ``backend_`` (the backend that ran).
    """

    name = "als"
    feedback = "implicit"

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 50.0,
        alpha: float = 5.0,
        iterations: int = 15,
        confidence: str = "linear",
        eps: float = 1.0,
        use_rating_values: bool = True,
        cg_steps: int = 3,
        backend: str = "auto",
        seed: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.confidence = confidence
        self.eps = eps
        self.use_rating_values = use_rating_values
        self.cg_steps = cg_steps
        self.backend = backend
        self.seed = seed

    # ---------------------------------------------------------------- helpers

    def check_params(self) -> None:
        _check_int("factors", self.factors, 1)
        _check_float("regularization", self.regularization, 0.0, strict=True)
        _check_float("alpha", self.alpha, 0.0, strict=False)
        _check_int("iterations", self.iterations, 1)
        if self.confidence not in CONFIDENCES:
            raise InputError(
                f"confidence: expected one of {', '.join(CONFIDENCES)}, got {self.confidence!r}"
            )
        _check_float("eps", self.eps, 0.0, strict=True)
        if not isinstance(self.use_rating_values, bool | np.bool_):
            raise InputError(
                f"use_rating_values: expected true or false, got {self.use_rating_values!r}"
            )
        _check_int("cg_steps", self.cg_steps, 0)
        if self.backend not in BACKENDS:
            raise InputError(
                f"backend: expected one of {', '.join(BACKENDS)}, got {self.backend!r}"
            )
        _check_int("seed", self.seed, 0)

    def confidences(self, x: sp.csr_matrix, dtype: Any = np.float32) -> sp.csr_matrix:
        """``x`` with its stored values replaced by the confidences ``c_ui`` (zeros dropped)."""
        x = sp.csr_matrix(x, dtype=np.float64, copy=True)
        x.eliminate_zeros()
        x.data = self._confidence_values(x.data)
        return x.astype(dtype)

    def _confidence_values(self, r: np.ndarray) -> np.ndarray:
        """The confidences ``c_ui`` of nonzero float64 input values ``r``."""
        if r.size and r.min() < 0:
            raise InputError(
                f"user_items: ALS needs non-negative values (ratings or weights), got {r.min()}"
            )
        if not self.use_rating_values:
            r = np.ones_like(r)
        if self.confidence == "linear":
            return 1.0 + self.alpha * r
        return 1.0 + self.alpha * np.log1p(r / self.eps)

    def _gram(self, y: np.ndarray) -> np.ndarray:
        y64 = y.astype(np.float64, copy=False)
        return y64.T @ y64 + self.regularization * np.eye(y.shape[1])

    # ---------------------------------------------------------------- fitting

    def _fit(self, x: sp.csr_matrix, **side: object) -> None:
        # Here, not in check_params: a model saved with backend 'implicit' loads without it.
        if self.backend == "implicit" and not implicit_available():
            raise InputError(
                "backend: 'implicit' needs the implicit package (pip install implicit); "
                "use 'numpy' or 'auto'"
            )
        cu = self.confidences(x)
        n_users, n_items = cu.shape
        f = int(self.factors)
        # The same initial factors as implicit draws for this seed (it is handed these anyway).
        rng = np.random.default_rng(int(self.seed))
        users = rng.random((n_users, f), dtype=np.float32) * np.float32(0.01)
        items = rng.random((n_items, f), dtype=np.float32) * np.float32(0.01)
        use_implicit = self.backend == "implicit" or (
            self.backend == "auto" and implicit_available()
        )
        self.backend_ = "implicit" if use_implicit else "numpy"
        log.debug("als: training with the %s backend", self.backend_)
        with (
            _one_blas_thread(),
            progress_bar(total=int(self.iterations), desc=self.name, unit="iteration") as bar,
        ):
            if use_implicit:
                users, items = self._sweeps_implicit(cu, users, items, bar)
            else:
                users, items = self._sweeps_numpy(cu, users, items, bar)
        self.user_factors_ = users
        self.item_factors_ = items
        self.item_counts_ = np.bincount(cu.indices, minlength=n_items).astype(np.float32)
        self._prepare()

    def _log_loss(self, it: int, cu: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("als iteration %d: loss %.6g", it + 1, self._loss(cu, users, items))

    def _sweeps_numpy(
        self, cu: sp.csr_matrix, users: np.ndarray, items: np.ndarray, bar: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        ci = cu.T.tocsr()
        ci.sort_indices()
        steps = int(self.cg_steps)
        for it in range(int(self.iterations)):
            if steps:
                _cg_sweep(cu, users, items, self._gram(items).astype(np.float32), steps)
                _cg_sweep(ci, items, users, self._gram(users).astype(np.float32), steps)
            else:
                users = _exact_solve(cu, items.astype(np.float64), self._gram(items))
                users = users.astype(np.float32)
                items = _exact_solve(ci, users.astype(np.float64), self._gram(users))
                items = items.astype(np.float32)
            self._log_loss(it, cu, users, items)
            bar.update()
        return users, items

    def _sweeps_implicit(
        self, cu: sp.csr_matrix, users: np.ndarray, items: np.ndarray, bar: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        from implicit.cpu.als import AlternatingLeastSquares

        lib = AlternatingLeastSquares(
            factors=int(self.factors),
            regularization=float(self.regularization),
            alpha=1.0,  # cu already holds the confidences c_ui; implicit uses them as given
            iterations=int(self.iterations),
            use_cg=bool(self.cg_steps),
            calculate_training_loss=False,
            random_state=int(self.seed),
        )
        lib.cg_steps = int(self.cg_steps) or 3
        lib.user_factors, lib.item_factors = users, items

        def after_iteration(it: int, _seconds: float, _loss: float) -> None:
            self._log_loss(it, cu, lib.user_factors, lib.item_factors)
            bar.update()

        # Our bar, not implicit's (which would ignore --quiet and print for tiny fits).
        try:
            lib.fit(cu, show_progress=False, callback=after_iteration)
        except Exception as exc:
            if type(exc).__name__ != "ModelFitError":  # implicit's "NaN encountered in factors"
                raise
            raise self.diverged(str(exc).rstrip(".")) from None
        return lib.user_factors, lib.item_factors

    def _prepare(self) -> None:
        self._y64 = self.item_factors_.astype(np.float64)
        self._gram64 = self._gram(self.item_factors_)

    def _loss(self, c: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> float:
        u64, i64 = users.astype(np.float64), items.astype(np.float64)
        observed = 0.0
        f = u64.shape[1]
        for start, stop in _row_blocks(c.indptr, max(1, _BLOCK_ELEMENTS // f)):
            lo, hi = c.indptr[start], c.indptr[stop]
            rows = np.repeat(np.arange(start, stop), np.diff(c.indptr[start : stop + 1]))
            s = _rowdot(u64[rows], i64[c.indices[lo:hi]])
            conf = c.data[lo:hi].astype(np.float64)
            observed += float(np.sum(conf * (1.0 - s) ** 2 - s**2))
        everything = float(np.sum((u64.T @ u64) * (i64.T @ i64)))
        penalty = self.regularization * float(np.sum(u64**2) + np.sum(i64**2))
        return observed + everything + penalty

    def training_loss(self, user_items: Any) -> float:
        """``L(X, Y)`` of the module docstring for the training users' factors on
        ``user_items`` (the matrix passed to ``fit``): the quantity ALS minimises."""
        self._check_fitted()
        if not hasattr(self, "user_factors_"):
            raise InputError("training_loss: needs a model fit in this process (user factors)")
        c = self.confidences(sp.csr_matrix(user_items))
        if c.shape != (self.user_factors_.shape[0], self.n_items_):
            raise InputError(
                f"user_items: expected shape {(self.user_factors_.shape[0], self.n_items_)}, "
                f"got {c.shape}"
            )
        return self._loss(c, self.user_factors_, self.item_factors_)

    # ---------------------------------------------------------------- inference

    def fold_in(self, user_items: Any) -> np.ndarray:
        """Factor vectors (n_rows x f, float64) of interaction rows: the exact user step."""
        self._check_fitted()
        return self._fold_in(as_csr(user_items, n_items=self.n_items_))[0]

    def _fold_in(self, x: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Factor vectors of the rows of a canonical ``x`` and which rows have no interactions
        (zeros dropped). A few rows are solved by :func:`_solve_few` straight from ``x``'s
        arrays (no sparse copies), more by :func:`_exact_solve`: the same exact solves."""
        if x.shape[0] > _FEW_ROWS:
            c = self.confidences(x, dtype=np.float64)
            return _exact_solve(c, self._y64, self._gram64), np.diff(c.indptr) == 0
        indptr, indices, r = x.indptr, x.indices, x.data.astype(np.float64)
        nonzero = r != 0
        if not nonzero.all():  # as eliminate_zeros in confidences
            indices, r = indices[nonzero], r[nonzero]
            indptr = np.concatenate([[0], np.cumsum(nonzero)])[indptr]
        conf = self._confidence_values(r)
        empty = np.diff(indptr) == 0
        return _solve_few(indptr, indices, conf, self._y64, self._gram64), empty

    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        factors, empty = self._fold_in(x)
        scores = factors @ self._y64.T
        scores[empty] = self.item_counts_  # no signal: popularity
        return scores

    # ---------------------------------------------------------------- persistence

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_factors_": self.item_factors_, "item_counts_": self.item_counts_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_factors_ = arrays["item_factors_"].astype(np.float32)
        self.item_counts_ = arrays["item_counts_"].astype(np.float32)
        self._prepare()
