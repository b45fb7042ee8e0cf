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
for millions of interactions; with the default 50,000 on the benchmark sets here (thousands to a
few hundred thousand interactions) early stopping keeps epochs 35 to 46 at beta 0.003 to 0.012,
where validation NDCG peaked; neither a faster ramp (20,000 steps, or beta 0.2 by epoch 10) nor
no KL term (``anneal_cap=0``) did better on the validation users (docs/benchmarks.md).

Scores are the logits of ``pi_u`` for the mean code (softmax is monotonic): fold-in is one
forward pass of any interaction row; an empty row gets the decoder's answer for the "average"
user (close to popularity). Layer sizes default to the paper's ``[n_items -> 600 -> 200 -> 600 ->
n_items]``; weights start Xavier-normal, biases N(0, 0.001^2). In worst mode (an implicit
model) the interactions are the low ratings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


def kl_beta(step: int, total_anneal_steps: int, anneal_cap: float) -> float:
    """The KL weight after ``step`` updates: ``min(anneal_cap, step / total_anneal_steps)``."""
    if total_anneal_steps <= 0:
        return float(anneal_cap)
    return float(min(anneal_cap, step / total_anneal_steps))


class MultVAEModel(MultinomialRecommender):
    """Mult-VAE (Liang et al. 2018); see the module docstring.

    Hyperparameters (keyword-only), besides the shared ones of
    :class:`~deepcart.models.neural.NeuralRecommender`:
        hidden_dim: units of the encoder's and the decoder's hidden layer (600); 0: none
            (``[n_items -> latent_dim -> n_items]``).
        latent_dim: dimension of the code ``z`` (200).
        dropout: input dropout while training (0.5).
        anneal_cap: the largest KL weight ``beta`` (0.2).
        total_anneal_steps: updates for beta to grow from 0 to 1 (it stops at anneal_cap).
        use_rating_values: feed the input values (ratings) instead of 1 per interaction.

    Layer sizes, dropout, the cap, lr 1e-3, batch 500 and no weight decay are the paper's; the
    ramp (50,000 steps) and up to 200 epochs with patience 20 were chosen on validation users of
    the benchmark sets (``benchmarks/neural.py``: synthetic, Digital Music, Magazine
    Subscriptions, Gift Cards), where none of lr 5e-4 or 3e-3, batch 100 or 250, layers 300/100
    or 200/64 or no hidden layer, dropout 0.2 or 0.3, cap 0 to 0.5, a faster ramp or weight
    decay 1e-5 to 1e-3 was better on every set (differences within the noise of a few hundred
    validation users). Per dataset, ``deepcart tune`` finds better: a latent code of 1,000 was
    the best setting on each real set (on Magazine Subscriptions with no hidden layer and
    dropout 0.1, which then beats ease on every one of five test splits), but no one setting
    is best everywhere: that one overfits the small sets (docs/benchmarks.md).
    """

    name = "vae"

    def __init__(
        self,
        *,
        hidden_dim: int = 600,
        latent_dim: int = 200,
        dropout: float = 0.5,
        anneal_cap: float = 0.2,
        total_anneal_steps: int = 50_000,
        use_rating_values: bool = False,
        **shared: Any,
    ) -> None:
        self._set_params(locals(), shared)

    def _check_model_params(self) -> None:
        check_number("hidden_dim", self.hidden_dim, minimum=0, integer=True)
        check_number("latent_dim", self.latent_dim, minimum=1, integer=True)
        check_dropout("dropout", self.dropout)
        check_number("anneal_cap", self.anneal_cap, minimum=0)
        check_number("total_anneal_steps", self.total_anneal_steps, minimum=1, integer=True)
        self._check_use_rating_values()

    def _build(self, n_items: int) -> torch.nn.Module:
        torch = require_torch(self.name)
        nn = torch.nn
        h, d = int(self.hidden_dim), int(self.latent_dim)
        if h:
            encoder = nn.Sequential(nn.Linear(n_items, h), nn.Tanh(), nn.Linear(h, 2 * d))
            decoder = nn.Sequential(nn.Linear(d, h), nn.Tanh(), nn.Linear(h, n_items))
        else:  # no hidden layer: [n_items -> latent_dim -> n_items]
            encoder = nn.Sequential(nn.Linear(n_items, 2 * d))
            decoder = nn.Sequential(nn.Linear(d, n_items))
        return init_linear(torch, nn.ModuleDict({"encoder": encoder, "decoder": decoder}))

    def _encode(self, net: Any, batch: SparseBatch, train: bool) -> tuple[Any, Any]:
        x = batch.normalized()
        out = (x.dropout(float(self.dropout)) if train else x).through(net["encoder"])
        d = int(self.latent_dim)
        return out[:, :d], out[:, d:]

    def _loss(
        self, net: torch.nn.Module, batch: SparseBatch, step: int
    ) -> tuple[torch.Tensor, dict[str, float]]:
        torch = require_torch(self.name)
        mu, logvar = self._encode(net, batch, train=True)
        std = torch.exp(0.5 * logvar)
        logits = net["decoder"](mu + std * torch.randn_like(std))
        nll = multinomial_nll(torch, logits, batch)
        kl = (-0.5 * (1 + logvar - mu * mu - logvar.exp()).sum(dim=1)).mean()
        beta = kl_beta(step, int(self.total_anneal_steps), float(self.anneal_cap))
        return nll + beta * kl, {"nll": float(nll.detach()), "kl": float(kl.detach()), "beta": beta}

    def _logits(self, net: torch.nn.Module, batch: SparseBatch, train: bool) -> torch.Tensor:
        """The decoder's logits for the mean code (scoring: ``train`` is False)."""
        mu, _ = self._encode(net, batch, train=train)
        return net["decoder"](mu)
