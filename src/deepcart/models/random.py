"""``random``: uniformly random items, the floor every model must beat."""

from __future__ import annotations

import zlib

import numpy as np
import scipy.sparse as sp

from deepcart.models.base import Recommender
from deepcart.models.naive import check_number


class RandomModel(Recommender):
    """Random scores; deterministic for a seed and a user's interaction row, so a batch equals
    one-by-one calls and a user gets the same list twice."""

    name = "random"

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def check_params(self) -> None:
        check_number("seed", self.seed, minimum=0, integer=True)

    def _fit(self, x: sp.csr_matrix, **side: object) -> None:
        pass

    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        out = np.empty((x.shape[0], self.n_items_), dtype=np.float32)
        for i in range(x.shape[0]):
            row = x.indices[x.indptr[i] : x.indptr[i + 1]]
            key = zlib.crc32(row.astype(np.int64).tobytes())
            out[i] = np.random.default_rng([int(self.seed) & 0xFFFFFFFF, key]).random(
                self.n_items_, dtype=np.float32
            )
        return out
