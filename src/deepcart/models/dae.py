"""``dae``: Mult-DAE, a denoising autoencoder for implicit feedback with a multinomial likelihood
(needs PyTorch: ``pip install 'deepcart[neural]' -c constraints.txt``).

Reference:
    D. Liang, R. G. Krishnan, M. D. Hoffman, T. Jebara (2018). Variational Autoencoders for
    Collaborative Filtering. WWW 2018 (Mult-DAE, the paper's denoising baseline).

A user's interactions ``x_u`` (binary by default) are L2-normalised and corrupted by dropout
(the "denoising": a random half of the user's items is hidden while training), encoded by one
tanh layer and decoded into a distribution over items::

    pi_u = softmax(W_2 tanh(W_1 dropout(x_u / |x_u|) + b_1) + b_2)
    L    = - sum_i x_ui log pi_ui      (+ the L2 penalty weight_decay)

so the network learns to put probability mass on a user's hidden items from the visible ones,
exactly the fold-in task: scores are the logits for a row's uncorrupted input. An empty row gets
the decoder's bias-driven answer, the same for everyone (close to popularity). Weights start
Xavier-normal, biases N(0, 0.001^2). In worst mode (an implicit model) the interactions are the
low ratings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from deepcart.models.naive import check_number
from deepcart.models.neural import (
    MultinomialRecommender,
    SparseBatch,
    check_dropout,
    init_linear,
    multinomial_nll,
    require_torch,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch


class MultDAEModel(MultinomialRecommender):
    """Mult-DAE (Liang et al. 2018); see the module docstring.

    Hyperparameters (keyword-only), besides the shared ones of
    :class:`~deepcart.models.neural.NeuralRecommender`:
        hidden_dim: units of the code layer.
        dropout: input corruption (dropout) while training.
        use_rating_values: feed the input values (ratings) instead of 1 per interaction.

    The shared ones default as for every neural model (the paper's batch 500, lr 1e-3; up to
    200 epochs, patience 20) but for a light L2 penalty, ``weight_decay`` 1e-5.
    """

    name = "dae"

    defaults: ClassVar[dict[str, Any]] = {"weight_decay": 1e-5}

    def __init__(
        self,
        *,
        hidden_dim: int = 200,
        dropout: float = 0.5,
        use_rating_values: bool = False,
        **shared: Any,
    ) -> None:
        self._set_params(locals(), shared)

    def _check_model_params(self) -> None:
        check_number("hidden_dim", self.hidden_dim, minimum=1, integer=True)
        check_dropout("dropout", self.dropout)
        self._check_use_rating_values()

    def _build(self, n_items: int) -> torch.nn.Module:
        torch = require_torch(self.name)
        nn = torch.nn
        h = int(self.hidden_dim)
        return init_linear(
            torch, nn.Sequential(nn.Linear(n_items, h), nn.Tanh(), nn.Linear(h, n_items))
        )

    def _loss(
        self, net: torch.nn.Module, batch: SparseBatch, step: int, part: str
    ) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self._logits(net, batch, train=True)
        return multinomial_nll(require_torch(self.name), logits, batch), {}

    def _logits(self, net: torch.nn.Module, batch: SparseBatch, train: bool) -> torch.Tensor:
        x = batch.normalized()
        return (x.dropout(float(self.dropout)) if train else x).through(net)
