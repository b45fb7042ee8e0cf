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
- Early stopping: on the validation users' held-out RMSE (``monitor="rmse"``, the default:
  what the network is trained for; the NDCG of a ranking by predicted rating stays near 0 and
  picks an arbitrary epoch), or on their NDCG@``val_k`` as the other neural models
  (``monitor="ndcg"``). Both are logged every epoch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from deepcart.errors import InputError
from deepcart.models.naive import check_number, check_pairs, clip_ratings
from deepcart.models.neural import (
    NeuralRecommender,
    SparseBatch,
    Validation,
    check_dropout,
    num_threads,
    require_torch,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

MONITORS = ("rmse", "ndcg")
#: Rows scored at once by ``predict``.
_PREDICT_ROWS = 1024


class AutoRecModel(NeuralRecommender):
    """U-AutoRec (Sedhain et al. 2015); see the module docstring.

    Hyperparameters (keyword-only), besides the shared ones of
    :class:`~deepcart.models.neural.NeuralRecommender`:
        hidden_dim: units of the hidden (code) layer.
        dropout: dropout on the input ratings while training (the dropped ratings stay
            targets: denoising; without it the network learns to copy its input and predicts
            unrated items badly).
        monitor: ``"rmse"`` or ``"ndcg"``: the validation metric of early stopping.

    Its shared hyperparameters default to up to 100 epochs, batch 256, ``weight_decay`` 1e-4
    (the L2 penalty AutoRec needs) and patience 10.
    """

    name = "autoencoder"
    feedback = "explicit"
    predicts_ratings = True

    defaults: ClassVar[dict[str, Any]] = {
        "epochs": 100,
        "batch_size": 256,
        "weight_decay": 1e-4,
        "patience": 10,
    }

    def __init__(
        self,
        *,
        hidden_dim: int = 500,
        dropout: float = 0.2,
        monitor: str = "rmse",
        **shared: Any,
    ) -> None:
        self._set_params(locals(), shared)

    def _check_model_params(self) -> None:
        check_number("hidden_dim", self.hidden_dim, minimum=1, integer=True)
        check_dropout("dropout", self.dropout)
        if self.monitor not in MONITORS:
            raise InputError(
                f"monitor: expected one of {', '.join(MONITORS)}, got {self.monitor!r}"
            )

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
        self, net: torch.nn.Module, batch: SparseBatch, step: int, part: str
    ) -> tuple[torch.Tensor, dict[str, float]]:
        # Dropped-out ratings are still targets: the network must predict them from the others.
        out = batch.dropout(float(self.dropout)).through(net)
        err = batch.gather(out) - batch.values
        return (err * err).mean(), {}

    def _forward(self, net: torch.nn.Module, batch: SparseBatch) -> torch.Tensor:
        return batch.through(net)

    # ---------------------------------------------------------------- validation

    def _monitor(self) -> tuple[str, bool]:
        if self.monitor == "rmse":
            return "val_rmse", False
        return super()._monitor()

    def _val_metrics(self, net: Any, device: Any, val: Validation) -> dict[str, float]:
        out = super()._val_metrics(net, device, val)
        # Without val_ratings, val_check's values are taken as the held-out ratings.
        ratings = val.ratings if val.ratings is not None else val.check
        rmse = self._val_rmse(net, device, val.inputs, ratings) if ratings.nnz else math.nan
        out["val_rmse"] = rmse
        return out

    def _val_rmse(
        self, net: Any, device: Any, inputs: sp.csr_matrix, ratings: sp.csr_matrix
    ) -> float:
        """RMSE of the clipped predictions of the held-out ratings (fold-in of the inputs)."""
        sq, n = 0.0, 0
        for start, stop, scores in self._blocks(net, device, inputs, _PREDICT_ROWS):
            truth = ratings[start:stop].tocoo()
            pred = clip_ratings(scores[truth.row, truth.col])
            sq += float(np.sum((pred - truth.data) ** 2))
            n += len(truth.data)
        return math.sqrt(sq / n)

    # ---------------------------------------------------------------- ratings

    def predict(self, user_items: Any, items: Any) -> np.ndarray:
        """Predicted rating for row ``i`` of ``user_items`` and item ``items[i]`` (fold-in)."""
        require_torch(self.name)
        x, it = check_pairs(self, user_items, items)
        net, device, dtype = self._scoring_net()
        out = np.empty(len(it), dtype=np.float64)
        with num_threads(self.threads):
            for start, stop, scores in self._blocks(net, device, x, _PREDICT_ROWS, dtype):
                out[start:stop] = scores[np.arange(stop - start), it[start:stop]]
        return clip_ratings(out)

    # ---------------------------------------------------------------- persistence

    def _state(self) -> dict[str, np.ndarray]:
        return {**super()._state(), "global_mean_": np.asarray(self.global_mean_)}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        super()._set_state(arrays)
        self.global_mean_ = float(arrays["global_mean_"])
