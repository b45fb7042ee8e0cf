"""``autoencoder``: the original DeepCart's symmetric autoencoder over user rating vectors, as
U-AutoRec (needs PyTorch: ``pip install 'deepcart[neural]' -c constraints.txt``).

Reference:
    S. Sedhain, A. K. Menon, S. Sanner, L. Xie (2015). AutoRec: Autoencoders Meet Collaborative
    Filtering. WWW 2015 (companion).

A user's rating vector ``r_u`` (n_items, 0 where unrated) is encoded and decoded::

    h_u   = sigmoid(V dropout(r_u) + mu)          (hidden_dim units)
    r̂_u   = W h_u + b                             (identity output: a rating per item)

and the network minimises the squared error on the observed ratings only (an unrated item is
neither an input signal nor a target), averaged over a mini-batch's ratings, with an L2 penalty
(``weight_decay``). The output bias starts at the mean training rating. It is "symmetric" as
the original's network: one hidden layer between two item-sized layers.

- ``predict`` gives ratings (clipped to [1, 5]): RMSE, MAE and Pearson r are reported for it.
- ``recommend`` ranks by the predicted rating (unclipped) of every item. Trained on observed
  ratings only, the network knows nothing about which items a user did not rate, so, like
  ``svd``, its top-N favours well-rated items rather than likely ones; ``vae`` and ``dae`` are
  the rankers.
- Fold-in: any rating row goes through the network; a row without ratings gets ``W
  sigmoid(mu) + b``, the same list for everyone.
- Worst mode: it learns the reversed ratings ``6 - r`` (an explicit model, see
  :mod:`deepcart.modes`), so its top predictions are the likeliest 1-star ratings.
- Early stopping: on validation NDCG@``val_k`` of that ranking, as every neural model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from deepcart.errors import InputError
from deepcart.models.naive import check_number, check_pairs, clip_ratings
from deepcart.models.neural import (
    DEFAULT_LOG_DIR,
    NeuralRecommender,
    SparseBatch,
    check_dropout,
    num_threads,
    require_torch,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: Rows densified at once by ``predict``.
_PREDICT_ROWS = 1024


class AutoRecModel(NeuralRecommender):
    """U-AutoRec (Sedhain et al. 2015); see the module docstring.

    Hyperparameters (keyword-only), besides the shared ones of
    :class:`~deepcart.models.neural.NeuralRecommender`:
        hidden_dim: units of the hidden (code) layer.
        dropout: dropout on the input ratings while training.
    """

    name = "autoencoder"
    feedback = "explicit"
    predicts_ratings = True

    def __init__(
        self,
        *,
        hidden_dim: int = 500,
        dropout: float = 0.2,
        epochs: int = 100,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        patience: int = 10,
        val_k: int = 10,
        seed: int = 0,
        device: str = "auto",
        log_dir: str | None = DEFAULT_LOG_DIR,
        progress: bool = True,
        threads: int | None = None,
    ) -> None:
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self._init_common(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            patience=patience,
            val_k=val_k,
            seed=seed,
            device=device,
            log_dir=log_dir,
            progress=progress,
            threads=threads,
        )

    def _check_model_params(self) -> None:
        check_number("hidden_dim", self.hidden_dim, minimum=1, integer=True)
        check_dropout("dropout", self.dropout)

    def _fit(self, x: sp.csr_matrix, **side: Any) -> None:
        if x.nnz and x.data.min() < 0:
            raise InputError(f"user_items: expected ratings >= 0, got {x.data.min()}")
        self.global_mean_ = float(np.mean(x.data)) if x.nnz else 3.0
        super()._fit(x, **side)

    def _build(self, n_items: int) -> torch.nn.Module:
        torch = require_torch(self.name)
        nn = torch.nn
        net = nn.Sequential(
            nn.Linear(n_items, int(self.hidden_dim)),
            nn.Sigmoid(),
            nn.Linear(int(self.hidden_dim), n_items),
        )
        nn.init.constant_(net[2].bias, float(getattr(self, "global_mean_", 3.0)))
        return net

    def _loss(
        self, net: torch.nn.Module, batch: SparseBatch, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        # Dropped-out ratings are still targets: the network must predict them from the others.
        out = self._decode(net, batch.dropout(float(self.dropout)))
        err = batch.gather(out) - batch.values
        return (err * err).mean(), {}

    def _decode(self, net: torch.nn.Module, x: SparseBatch) -> torch.Tensor:
        return net[2](net[1](x.linear(net[0])))

    def _forward(self, net: torch.nn.Module, batch: SparseBatch) -> torch.Tensor:
        return self._decode(net, batch)

    # ---------------------------------------------------------------- ratings

    def predict(self, user_items: Any, items: Any) -> np.ndarray:
        """Predicted rating for row ``i`` of ``user_items`` and item ``items[i]`` (fold-in)."""
        torch = require_torch(self.name)
        x, it = check_pairs(self, user_items, items)
        net, device, dtype = self._scoring_net()
        out = np.empty(len(it), dtype=np.float64)
        with torch.no_grad(), num_threads(self.threads):
            for start in range(0, len(it), _PREDICT_ROWS):
                stop = min(start + _PREDICT_ROWS, len(it))
                batch = SparseBatch(x[start:stop], device, dtype)
                scores = self._forward(net, batch).cpu().numpy()
                out[start:stop] = scores[np.arange(stop - start), it[start:stop]]
        return clip_ratings(out)

    # ---------------------------------------------------------------- persistence

    def _state(self) -> dict[str, np.ndarray]:
        return {**super()._state(), "global_mean_": np.asarray(self.global_mean_)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(arrays)
        self.global_mean_ = float(arrays["global_mean_"])
