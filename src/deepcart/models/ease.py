"""``ease``: Embarrassingly Shallow Autoencoder, an item x item linear model in closed form.

Reference:
    H. Steck (2019). Embarrassingly Shallow Autoencoders for Sparse Data. WWW 2019.

EASE learns an item x item weight matrix ``B`` with a zero diagonal that reconstructs each
user's row from the user's other items::

    minimise_B  |X - X B|_F^2 + reg * |B|_F^2   subject to  diag(B) = 0

whose solution is closed-form::

    G = X^T X + reg I          (item x item Gram matrix, dense)
    P = G^{-1}
    B_ij = -P_ij / P_jj  (i != j),   B_jj = 0
    score_u = x_u B            (fold-in is free: any row, known user or new)

``X`` is binarised (1 for every interaction) when ``implicit=True``, else it holds the input
values (ratings, or ``6 - r`` in worst mode). A row without interactions scores 0 everywhere;
it gets the training popularity instead.

Cost. One dense ``n_items x n_items`` float32 matrix (``4 n^2`` bytes): ``G`` is built block by
block, then factorised (Cholesky), inverted and turned into ``B`` in place (``O(n^3)`` time);
the measured peak of a fit is about 1.2 to 1.4 times that matrix. Before allocating, the model
compares ``MEMORY_FACTOR x 4 n^2`` bytes (the matrix plus headroom for the Gram blocks, scoring
batches and saving) with ``max_items`` and with the memory available, and refuses with an
:class:`~deepcart.errors.InputError` that says how much it would need and what to do instead.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from deepcart.errors import InputError
from deepcart.models.base import Recommender
from deepcart.progress import progress_bar

#: Rows of ``G`` computed per sparse block product (bounds the temporary sparse result).
_GRAM_BLOCK = 2048
#: Bytes the fit needs per dense item x item float32 matrix, times this factor.
MEMORY_FACTOR = 2


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``; else physical)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _size(n: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 2**10:.1f} KiB"


def required_memory(n_items: int) -> int:
    """Bytes EASE needs for ``n_items`` items: ``MEMORY_FACTOR x 4 n^2`` (float32)."""
    return MEMORY_FACTOR * 4 * n_items * n_items


class EASEModel(Recommender):
    """EASE (Steck 2019); see the module docstring for the formulas and the memory guard.

    Hyperparameters (keyword-only):
        reg: the L2 penalty ``lambda`` added to the diagonal of ``X^T X``.
        implicit: binarise the input (every interaction counts 1) instead of using its values.
        max_items: refuse to fit on more items than this (the dense matrices grow as ``n^2``).

    The default ``reg=200`` was within 0.01 NDCG@10 of the best value (100 to 200) on
    validation users of the synthetic quickstart data, a 500k-review synthetic set and small
    real Amazon sets; larger data sets usually want a larger ``reg`` (Steck used 200 to 1000).

    Learned: ``weights_`` (``B``, n_items x n_items float32, zero diagonal), ``item_counts_``
    (training interactions per item, the cold-start fallback).
    """

    name = "ease"
    feedback = "implicit"

    def __init__(
        self, *, reg: float = 200.0, implicit: bool = True, max_items: int = 30_000
    ) -> None:
        self.reg = reg
        self.implicit = implicit
        self.max_items = max_items

    def check_params(self) -> None:
        r = self.reg
        if (
            isinstance(r, bool)
            or not isinstance(r, int | float | np.integer | np.floating)
            or not math.isfinite(float(r))
            or float(r) <= 0
        ):
            raise InputError(f"reg: expected a finite number > 0, got {r!r}")
        if not isinstance(self.implicit, bool | np.bool_):
            raise InputError(f"implicit: expected true or false, got {self.implicit!r}")
        m = self.max_items
        if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 1:
            raise InputError(f"max_items: expected an integer >= 1, got {m!r}")

    def check_memory(self, n_items: int, available: int | None = None) -> None:
        """Raise :class:`InputError` if ``n_items`` exceeds ``max_items`` or available memory."""
        need = required_memory(n_items)
        if available is None:
            available = available_memory()
        advice = (
            "filter rare items first (deepcart build --min-ratings N keeps items with at least N "
            "ratings), or use a model that scales with the number of ratings (--type als or "
            "itemknn)"
        )
        if n_items > self.max_items:
            raise InputError(
                f"ease: {n_items:,} items is more than max_items={self.max_items:,}; the dense "
                f"item x item matrices would need about {_size(need)} of memory. Either {advice}, "
                f"or raise max_items (--params '{{\"max_items\": {n_items}}}') if you have the "
                "memory"
            )
        if available is not None and need > available:
            raise InputError(
                f"ease: {n_items:,} items need about {_size(need)} of memory for the dense item x "
                f"item matrices, but only {_size(available)} is available. {advice[0].upper()}"
                f"{advice[1:]}"
            )

    def _fit(self, x: sp.csr_matrix, **side: object) -> None:
        n = x.shape[1]
        self.check_memory(n)
        x = x.copy()
        x.eliminate_zeros()
        if self.implicit:
            x.data[:] = 1.0
        self.item_counts_ = np.bincount(x.indices, minlength=n).astype(np.float32)

        # Progress in steps: each block of the Gram matrix, the Cholesky factor, the inverse
        # and the weights (the two LAPACK steps are the long ones for many items).
        n_blocks = -(-n // _GRAM_BLOCK)
        with progress_bar(total=n_blocks + 3, desc=self.name, unit="step") as bar:
            self.weights_ = self._weights(x, n, bar)

    def _weights(self, x: sp.csr_matrix, n: int, bar: Any) -> np.ndarray:
        # G = X^T X + reg I, dense float32, one block of item rows at a time.
        xt = x.T.tocsr()
        g = np.empty((n, n), dtype=np.float32)
        for start in range(0, n, _GRAM_BLOCK):
            stop = min(start + _GRAM_BLOCK, n)
            g[start:stop] = (xt[start:stop] @ x).toarray()
            bar.update()
        g[np.diag_indices(n)] += np.float32(self.reg)

        # P = G^{-1} in place: Cholesky (G is symmetric positive definite), then the inverse
        # from the factor, filling one triangle. LAPACK wants Fortran order: G is symmetric, so
        # its C-ordered buffer read in Fortran order (g.T, a view) is G itself, and nothing is
        # copied.
        potrf, potri = scipy.linalg.get_lapack_funcs(("potrf", "potri"), (g.T,))
        factor, info = potrf(g.T, lower=False, overwrite_a=True, clean=False)
        if info != 0:
            raise InputError(
                f"ease: X^T X + reg I is not positive definite (info {info}); raise reg"
            )
        bar.update()
        inverse, info = potri(factor, lower=False, overwrite_c=True)
        if info != 0:
            raise InputError(f"ease: cannot invert X^T X + reg I (info {info}); raise reg")
        bar.update()
        _symmetrize_upper(inverse)
        g = np.ascontiguousarray(inverse.T)  # symmetric: the same matrix, a view again
        del factor, inverse

        # B = -P / diag(P) column-wise, zero diagonal.
        diag = np.diag(g).copy()
        g /= -diag[None, :]
        g[np.diag_indices(n)] = 0.0
        bar.update()
        return g

    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        x = x.copy()
        x.eliminate_zeros()
        if self.implicit:
            x.data[:] = 1.0
        # Same dtype on both sides: a mixed product would copy B to float64 on every call.
        scores = np.asarray(x.astype(self.weights_.dtype) @ self.weights_, dtype=np.float64)
        scores[np.diff(x.indptr) == 0] = self.item_counts_  # no signal: popularity
        return scores

    def _state(self) -> dict[str, np.ndarray]:
        return {"weights_": self.weights_, "item_counts_": self.item_counts_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights_ = arrays["weights_"]
        self.item_counts_ = arrays["item_counts_"]


def _symmetrize_upper(a: np.ndarray, block: int = 1024) -> None:
    """Copy the upper triangle of square ``a`` into its lower triangle, in place, by blocks."""
    n = a.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        # Rows start:stop, columns left of the diagonal block, come from the transposed column
        # block above the diagonal; then the diagonal block itself.
        a[start:stop, :start] = a[:start, start:stop].T
        d = a[start:stop, start:stop]
        d[:] = np.triu(d) + np.triu(d, 1).T
