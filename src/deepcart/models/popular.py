"""``popular``: the items with the most interactions in training, the same list for everyone."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from deepcart.models.base import Recommender


class PopularModel(Recommender):
    """Scores each item by its number of training interactions (ties: lower index first)."""

    name = "popular"

    def __init__(self) -> None:
        pass

    def check_params(self) -> None:
        """No hyperparameters: nothing to check."""

    def _fit(self, x: sp.csr_matrix, **side: object) -> None:
        self.item_counts_ = np.bincount(x.indices, minlength=x.shape[1]).astype(np.float32)

    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.item_counts_, (x.shape[0], self.n_items_)).copy()

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_counts_": self.item_counts_}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_counts_ = arrays["item_counts_"]
