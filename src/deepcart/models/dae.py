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

from typing import TYPE_CHECKING

import scipy.sparse as sp

from deepcart.errors import InputError
from deepcart.models.naive import check_number
from deepcart.models.neural import (
    DEFAULT_LOG_DIR,
    NeuralRecommender,
    SparseBatch,
    check_dropout,
    init_linear,
    require_torch,
)
from deepcart.models.vae import binarize

if TYPE_CHECKING:  # pragma: no cover
    import torch


class MultDAEModel(NeuralRecommender):
    """Mult-DAE (Liang et al. 2018); see the module docstring.

    Hyperparameters (keyword-only), besides the shared ones of
    :class:`~deepcart.models.neural.NeuralRecommender`:
        hidden_dim: units of the code layer.
        dropout: input corruption (dropout) while training.
        use_rating_values: feed the input values (ratings) instead of 1 per interaction.
    """

    name = "dae"
    feedback = "implicit"

    def __init__(
        self,
        *,
        hidden_dim: int = 200,
        dropout: float = 0.5,
        use_rating_values: bool = False,
        epochs: int = 200,
        batch_size: int = 500,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        patience: int = 20,
        val_k: int = 10,
        seed: int = 0,
        device: str = "auto",
        log_dir: str | None = DEFAULT_LOG_DIR,
        progress: bool = True,
        threads: int | None = None,
    ) -> None:
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.use_rating_values = use_rating_values
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
        if not isinstance(self.use_rating_values, bool):
            raise InputError(
                f"use_rating_values: expected true or false, got {self.use_rating_values!r}"
            )

    def _prepare(self, x: sp.csr_matrix) -> sp.csr_matrix:
        return binarize(x, bool(self.use_rating_values))

    def _build(self, n_items: int) -> torch.nn.Module:
        torch = require_torch(self.name)
        nn = torch.nn
        h = int(self.hidden_dim)
        net = nn.Sequential(nn.Linear(n_items, h), nn.Tanh(), nn.Linear(h, n_items))
        for m in net.modules():
            if isinstance(m, nn.Linear):
                init_linear(torch, m)
        return net

    def _loss(
        self, net: torch.nn.Module, batch: SparseBatch, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        torch = require_torch(self.name)
        logits = self._logits(net, batch.normalized().dropout(float(self.dropout)))
        nll = -(batch.gather(torch.log_softmax(logits, dim=1)) * batch.values).sum() / batch.n_rows
        return nll, {}

    def _logits(self, net: torch.nn.Module, x: SparseBatch) -> torch.Tensor:
        return net[2](net[1](x.linear(net[0])))

    def _forward(self, net: torch.nn.Module, batch: SparseBatch) -> torch.Tensor:
        return self._logits(net, batch.normalized())
