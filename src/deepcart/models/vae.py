"""``vae``: Mult-VAE, the variational autoencoder for implicit feedback with a multinomial
likelihood and KL annealing (needs PyTorch: ``pip install 'deepcart[neural]' -c constraints.txt``).

Reference:
    D. Liang, R. G. Krishnan, M. D. Hoffman, T. Jebara (2018). Variational Autoencoders for
    Collaborative Filtering. WWW 2018.

A user's interactions ``x_u`` (binary by default) are L2-normalised, dropped out (``dropout``,
training only) and encoded into a Gaussian over a ``latent_dim`` code; a sample of the code is
decoded into one logit per item::

    [mu_u, log sigma_u^2] = W_2 tanh(W_1 dropout(x_u / |x_u|) + b_1) + b_2
    z_u = mu_u + sigma_u * eps,  eps ~ N(0, I)            (z_u = mu_u when scoring)
    pi_u = softmax(W_4 tanh(W_3 z_u + b_3) + b_4)         (a distribution over items)

and training minimises, per mini-batch (Adam, ``lr``), the annealed negative ELBO::

    L = - sum_i x_ui log pi_ui  +  beta * KL(N(mu_u, sigma_u^2) || N(0, I))
    beta(step) = min(anneal_cap, step / total_anneal_steps)            (KL annealing)

``beta`` rises linearly with the update count from 0 and stays at ``anneal_cap`` (Liang et al.
found a cap of 0.2 near the best, far below the full ELBO's 1). The paper's 200,000 steps are
for millions of interactions; the default 50,000 suits the sets here (thousands to a few
hundred thousand): early stopping picks epochs 30 to 80, at beta 0.01 to 0.05, where validation
NDCG peaked (a faster ramp, beta 0.2 by epoch 10, did no better on validation users).

Scores are the logits of ``pi_u`` for the mean code (softmax is monotonic): fold-in is one
forward pass of any interaction row; an empty row gets the decoder's answer for the "average"
user (close to popularity). Layer sizes default to the paper's ``[n_items -> 600 -> 200 -> 600 ->
n_items]``; weights start Xavier-normal, biases N(0, 0.001^2). In worst mode (an implicit
model) the interactions are the low ratings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # pragma: no cover
    import torch


def kl_beta(step: int, total_anneal_steps: int, anneal_cap: float) -> float:
    """The KL weight after ``step`` updates: ``min(anneal_cap, step / total_anneal_steps)``."""
    if total_anneal_steps <= 0:
        return float(anneal_cap)
    return float(min(anneal_cap, step / total_anneal_steps))


def binarize(x: sp.csr_matrix, use_values: bool) -> sp.csr_matrix:
    """``x`` with every stored nonzero set to 1 (unless ``use_values``), zeros dropped."""
    x = sp.csr_matrix(x, dtype="float32", copy=True)
    x.eliminate_zeros()
    if not use_values:
        x.data[:] = 1.0
    elif x.nnz and x.data.min() < 0:
        raise InputError(f"user_items: expected non-negative values, got {x.data.min()}")
    return x


class MultVAEModel(NeuralRecommender):
    """Mult-VAE (Liang et al. 2018); see the module docstring.

    Hyperparameters (keyword-only), besides the shared ones of
    :class:`~deepcart.models.neural.NeuralRecommender`:
        hidden_dim: units of the encoder's and the decoder's hidden layer (600).
        latent_dim: dimension of the code ``z`` (200).
        dropout: input dropout while training (0.5).
        anneal_cap: the largest KL weight ``beta`` (0.2).
        total_anneal_steps: updates for beta to grow from 0 to 1 (it stops at anneal_cap).
        use_rating_values: feed the input values (ratings) instead of 1 per interaction.

    The other defaults (lr 1e-3, batch 500 as in the paper; up to 200 epochs with patience 20;
    no weight decay, as the paper's Mult-VAE) were tuned on validation users of the synthetic
    benchmark set and small real Amazon sets (``benchmarks/neural.py``).
    """

    name = "vae"
    feedback = "implicit"

    def __init__(
        self,
        *,
        hidden_dim: int = 600,
        latent_dim: int = 200,
        dropout: float = 0.5,
        anneal_cap: float = 0.2,
        total_anneal_steps: int = 50_000,
        use_rating_values: bool = False,
        epochs: int = 200,
        batch_size: int = 500,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        patience: int = 20,
        val_k: int = 10,
        seed: int = 0,
        device: str = "auto",
        log_dir: str | None = DEFAULT_LOG_DIR,
        progress: bool = True,
        threads: int | None = None,
    ) -> None:
        self.hidden_dim = hidden_dim
        self.latent_dim = latent_dim
        self.dropout = dropout
        self.anneal_cap = anneal_cap
        self.total_anneal_steps = total_anneal_steps
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
        check_number("latent_dim", self.latent_dim, minimum=1, integer=True)
        check_dropout("dropout", self.dropout)
        check_number("anneal_cap", self.anneal_cap, minimum=0)
        check_number("total_anneal_steps", self.total_anneal_steps, minimum=1, integer=True)
        if not isinstance(self.use_rating_values, bool):
            raise InputError(
                f"use_rating_values: expected true or false, got {self.use_rating_values!r}"
            )

    def _prepare(self, x: sp.csr_matrix) -> sp.csr_matrix:
        return binarize(x, bool(self.use_rating_values))

    def _build(self, n_items: int) -> torch.nn.Module:
        torch = require_torch(self.name)
        nn = torch.nn
        h, d = int(self.hidden_dim), int(self.latent_dim)
        net = nn.ModuleDict(
            {
                "encoder": nn.Sequential(nn.Linear(n_items, h), nn.Tanh(), nn.Linear(h, 2 * d)),
                "decoder": nn.Sequential(nn.Linear(d, h), nn.Tanh(), nn.Linear(h, n_items)),
            }
        )
        for m in net.modules():
            if isinstance(m, nn.Linear):
                init_linear(torch, m)
        return net

    def _encode(self, net: Any, batch: SparseBatch, train: bool) -> tuple[Any, Any]:
        x = batch.normalized()
        if train:
            x = x.dropout(float(self.dropout))
        encoder = net["encoder"]
        out = encoder[2](encoder[1](x.linear(encoder[0])))
        d = int(self.latent_dim)
        return out[:, :d], out[:, d:]

    def _loss(
        self, net: torch.nn.Module, batch: SparseBatch, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        torch = require_torch(self.name)
        mu, logvar = self._encode(net, batch, train=True)
        std = torch.exp(0.5 * logvar)
        z = mu + std * torch.randn_like(std)
        logits = net["decoder"](z)
        nll = -(batch.gather(torch.log_softmax(logits, dim=1)) * batch.values).sum() / batch.n_rows
        kl = (-0.5 * (1 + logvar - mu * mu - logvar.exp()).sum(dim=1)).mean()
        beta = kl_beta(step, int(self.total_anneal_steps), float(self.anneal_cap))
        return nll + beta * kl, {"nll": float(nll.detach()), "kl": float(kl.detach()), "beta": beta}

    def _forward(self, net: torch.nn.Module, batch: SparseBatch) -> torch.Tensor:
        mu, _ = self._encode(net, batch, train=False)
        return net["decoder"](mu)
