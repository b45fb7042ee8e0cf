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

RecVAE's changes (Shenbin et al. 2020), each a hyperparameter, all off by default:

- ``encoder="dense"``: five hidden layers of ``hidden_dim`` units, each
  ``h_l = LayerNorm(swish(W_l h_{l-1} + b_l + h_1 + ... + h_{l-1}))`` (dense connections), then
  ``[mu_u, log sigma_u^2]``; the decoder is one linear layer ``W z_u + b``.
- ``prior="composite"``: the KL term's prior is a mixture, ``3/20 N(0, I) + 3/4 q_old(z | x_u)
  + 1/10 N(0, e^10 I)``, where ``q_old`` is the encoder as it was when the epoch began (the
  posterior may not move far from last epoch's); the KL is then estimated with the sampled
  ``z_u``, ``log q(z_u | x_u) - log p(z_u)``.
- ``beta_per_interaction=gamma > 0``: each user's KL weight is ``gamma * |x_u|`` (users with
  more interactions can afford a tighter posterior) instead of the annealed ``beta``.
- ``alternate=n > 0``: each epoch trains the encoder for ``n`` passes over the users (the
  decoder fixed), then the decoder for one pass (the encoder fixed, no input dropout).

Reference:
    I. Shenbin, A. Alekseev, E. Tutubalina, V. Malykh, S. I. Nikolenko (2020). RecVAE: a New
    Variational Autoencoder for Top-N Recommendations with Implicit Feedback. WSDM 2020.

With all four and RecVAE's lr 5e-4 (its gamma 0.005, its 3 encoder passes), vae's test NDCG@10
on the synthetic benchmark set rises from 0.2907 (the paper's architecture, tuned) to 0.2942, five
splits, beside tuned ease's 0.2977 (over ten splits 0.2895 against 0.2902: a tie); on the two
smallest real sets (Digital Music, Gift Cards) tuned ease stays ahead of the vae setting chosen
on validation over 15 splits (docs/benchmarks.md, "RecVAE's changes"). An epoch with
``alternate=3`` is four passes over the users.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

from deepcart.errors import InputError
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


#: The encoders ``encoder`` takes and the priors ``prior`` takes.
ENCODERS = ("mlp", "dense")
PRIORS = ("standard", "composite")
#: RecVAE's composite prior: (weight, which) of its three parts; ``"wide"`` is N(0, e^10 I).
_COMPOSITE = ((3 / 20, "standard"), (3 / 4, "old"), (1 / 10, "wide"))
_WIDE_LOGVAR = 10.0
#: Dense layers of ``encoder="dense"`` (RecVAE's).
DENSE_LAYERS = 5


def log_normal(torch: Any, z: Any, mu: Any, logvar: Any) -> Any:
    """The log density of ``N(mu, exp(logvar))`` at ``z``, per coordinate."""
    return -0.5 * (logvar + math.log(2 * math.pi) + (z - mu) ** 2 / torch.exp(logvar))


def composite_log_prior(torch: Any, z: Any, old_mu: Any, old_logvar: Any) -> Any:
    """``log p(z)`` per coordinate under RecVAE's composite prior: the mixture ``3/20 N(0, I)
    + 3/4 N(old_mu, exp(old_logvar)) + 1/10 N(0, e^10 I)``."""
    zero = torch.zeros_like(z)
    parts = {
        "standard": (zero, zero),
        "old": (old_mu, old_logvar),
        "wide": (zero, zero + _WIDE_LOGVAR),
    }
    terms = [log_normal(torch, z, *parts[which]) + math.log(weight) for weight, which in _COMPOSITE]
    return torch.logsumexp(torch.stack(terms, dim=-1), dim=-1)


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
        encoder: ``"mlp"`` (the paper's: one tanh layer of ``hidden_dim``) or ``"dense"``
            (RecVAE's: five dense-connected swish + LayerNorm layers of ``hidden_dim``, and a
            linear decoder).
        prior: ``"standard"`` (N(0, I), the paper's) or ``"composite"`` (RecVAE's).
        beta_per_interaction: 0: the KL weight is the annealed beta; > 0: each user's KL weight
            is this times the user's interactions (RecVAE's gamma, 0.005 there), no annealing.
        alternate: 0: encoder and decoder are trained together; n > 0: each epoch trains the
            encoder for n passes, then the decoder for one (RecVAE: 3).

    With ``encoder="dense"``, ``prior="composite"``, ``beta_per_interaction=0.005``,
    ``alternate=3`` and ``lr=5e-4`` this is RecVAE (module docstring).

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
        encoder: str = "mlp",
        prior: str = "standard",
        beta_per_interaction: float = 0.0,
        alternate: int = 0,
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
        for name, choices in (("encoder", ENCODERS), ("prior", PRIORS)):
            value = getattr(self, name)
            if value not in choices:
                raise InputError(
                    f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}"
                )
        check_number("beta_per_interaction", self.beta_per_interaction, minimum=0)
        check_number("alternate", self.alternate, minimum=0, integer=True)
        if self.encoder == "dense" and not self.hidden_dim:
            raise InputError(
                f"hidden_dim: expected at least 1 with encoder 'dense', got {self.hidden_dim!r}"
            )

    def _build(self, n_items: int) -> torch.nn.Module:
        torch = require_torch(self.name)
        nn = torch.nn
        h, d = int(self.hidden_dim), int(self.latent_dim)
        if self.encoder == "dense":
            encoder = nn.ModuleDict(
                {
                    "layers": nn.ModuleList(
                        [nn.Linear(n_items, h)] + [nn.Linear(h, h) for _ in range(DENSE_LAYERS - 1)]
                    ),
                    "norms": nn.ModuleList([nn.LayerNorm(h, eps=0.1) for _ in range(DENSE_LAYERS)]),
                    "head": nn.Linear(h, 2 * d),
                }
            )
            decoder = nn.Sequential(nn.Linear(d, n_items))
        elif h:
            encoder = nn.Sequential(nn.Linear(n_items, h), nn.Tanh(), nn.Linear(h, 2 * d))
            decoder = nn.Sequential(nn.Linear(d, h), nn.Tanh(), nn.Linear(h, n_items))
        else:  # no hidden layer: [n_items -> latent_dim -> n_items]
            encoder = nn.Sequential(nn.Linear(n_items, 2 * d))
            decoder = nn.Sequential(nn.Linear(d, n_items))
        return init_linear(torch, nn.ModuleDict({"encoder": encoder, "decoder": decoder}))

    def _encode(self, encoder: Any, batch: SparseBatch, dropout: float = 0.0) -> tuple[Any, Any]:
        """``(mu, logvar)`` of the codes of a batch's rows (``dropout`` on the input)."""
        x = batch.normalized().dropout(dropout)
        if self.encoder == "dense":
            import torch

            hs: list[Any] = []
            for layer, norm in zip(encoder["layers"], encoder["norms"], strict=True):
                pre = x.linear(layer) if not hs else layer(hs[-1]) + sum(hs)
                hs.append(norm(torch.nn.functional.silu(pre)))
            out = encoder["head"](hs[-1])
        else:
            out = x.through(encoder)
        d = int(self.latent_dim)
        return out[:, :d], out[:, d:]

    # ------------------------------------------------------------ RecVAE's training options

    def _passes(self) -> tuple[str, ...]:
        n = int(self.alternate)
        return ("encoder",) * n + ("decoder",) if n else ("all",)

    def _epoch_start(self, net: torch.nn.Module) -> None:
        if self.prior == "composite":  # the prior's q_old: the encoder as the epoch begins
            self._old_encoder = copy.deepcopy(net["encoder"]).eval().requires_grad_(False)

    def _training_copies(self, net: torch.nn.Module) -> list[tuple[str, int]]:
        if self.prior != "composite":
            return []
        n = sum(p.numel() for p in net["encoder"].parameters())
        return [("the composite prior's copy of the encoder", n)]

    def _train(self, *args: Any) -> None:
        try:
            super()._train(*args)
        finally:
            self._old_encoder = None  # training only: not kept, not saved

    def _loss(
        self, net: torch.nn.Module, batch: SparseBatch, step: int, part: str
    ) -> tuple[torch.Tensor, dict[str, float]]:
        torch = require_torch(self.name)
        if part == "decoder":  # the encoder fixed, its input whole
            with torch.no_grad():
                mu, logvar = self._encode(net["encoder"], batch)
        else:
            mu, logvar = self._encode(net["encoder"], batch, float(self.dropout))
        std = torch.exp(0.5 * logvar)
        z = mu + std * torch.randn_like(std)
        if part == "encoder":  # the decoder fixed: run with detached weights, no gradient
            decoder = net["decoder"]
            fixed = {k: v.detach() for k, v in decoder.named_parameters()}
            logits = torch.func.functional_call(decoder, fixed, (z,))
        else:
            logits = net["decoder"](z)
        nll = multinomial_nll(torch, logits, batch)
        if self.prior == "composite":
            with torch.no_grad():
                old_mu, old_logvar = self._encode(self._old_encoder, batch)
            log_prior = composite_log_prior(torch, z, old_mu, old_logvar)
            kl_rows = (log_normal(torch, z, mu, logvar) - log_prior).sum(dim=1)
        else:
            kl_rows = -0.5 * (1 + logvar - mu * mu - logvar.exp()).sum(dim=1)
        kl = kl_rows.mean()
        if self.beta_per_interaction:
            counts = torch.bincount(batch.rows, minlength=batch.n_rows).to(kl_rows.dtype)
            beta = float(self.beta_per_interaction)
            penalty = beta * (kl_rows * counts).mean()
            extra_beta = beta * float(counts.mean())
        else:
            beta = kl_beta(step, int(self.total_anneal_steps), float(self.anneal_cap))
            penalty = beta * kl
            extra_beta = beta
        return nll + penalty, {
            "nll": float(nll.detach()),
            "kl": float(kl.detach()),
            "beta": extra_beta,
        }

    def _logits(self, net: torch.nn.Module, batch: SparseBatch, train: bool) -> torch.Tensor:
        """The decoder's logits for the mean code (scoring: ``train`` is False)."""
        mu, _ = self._encode(net["encoder"], batch, float(self.dropout) if train else 0.0)
        return net["decoder"](mu)
