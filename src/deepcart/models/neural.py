"""Shared PyTorch plumbing of the neural models (``autoencoder``, ``dae``, ``vae``).

PyTorch is an optional extra (``pip install 'deepcart[neural]' -c constraints.txt``): this
module and the model modules import it inside functions only, so ``import deepcart``, the CLI
and every other model work without it, and a neural model used without it raises a one-line
:class:`~deepcart.errors.InputError` (:func:`require_torch`).

What every neural model gets from :class:`NeuralRecommender`:

- Sparse mini-batches: the training matrix stays a scipy CSR matrix; each step takes its
  ``batch_size`` rows as sparse tensors (:class:`SparseBatch`: the first layer is a sparse x
  dense product), so only the output layer's ``batch_size x n_items`` scores are dense, never a
  users x items tensor.
- Early stopping on validation NDCG@``val_k``: ``fit(x, val_inputs=..., val_check=...)`` (the
  split's validation users: their input rows and relevant held-out rows, which
  :func:`deepcart.training.fit_model` passes to models with ``uses_validation``, with
  ``val_ratings``, the held-out ratings as the model sees them) scores the validation users
  after every epoch by fold-in, stops after ``patience`` epochs without a new best and
  restores the best epoch's weights (``autoencoder`` watches the validation RMSE instead).
  Without validation data (``--split none``) it trains for ``epochs`` epochs.
- Determinism: a seed fixes the initial weights, the shuffling, dropout and sampling noise (in
  a forked RNG state, so the caller's global RNG is untouched); on CPU the same seed gives the
  same model. On CUDA (used when available, ``device="auto"``) results may differ in the last
  bits between runs.
- A progress bar over epochs (:func:`deepcart.progress.progress_bar`: on stderr, on a
  terminal, off with ``progress=False`` or ``--quiet``) with the loss and validation NDCG, the
  memory report (:attr:`NeuralRecommender.memory_report_`: the training matrix sparse and as it
  would be dense, a mini-batch's dense scores, the network with its optimizer state, the peak
  memory; ``deepcart train`` prints it)
  and TensorBoard logs: ``<log_dir>/<model>-<time>-<pid>/`` gets the loss, the validation
  metric and model-specific scalars per epoch (``tensorboard --logdir runs``); without the
  ``tensorboard`` package the logs are skipped with one warning.
- Training: Adam (fused where torch supports it) on ``threads`` CPU threads (torch's default
  when ``None``), or on the GPU.
- Scoring by fold-in: any interaction row (a known user or a brand-new one) goes through the
  network; nothing per training user is kept. On CPU the network scores in float64, so a row
  scores the same alone or in a batch.
- Persistence: ``model.json`` and ``arrays.npz`` as every model, plus ``model.pt``, the
  network's state dict written with ``torch.save`` and read with
  ``torch.load(weights_only=True)`` (no pickle of code or objects).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import inspect
import json
import logging
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from deepcart.errors import InputError
from deepcart.eval import metrics as M
from deepcart.fsutil import atomic_path, make_dirs
from deepcart.models.base import Recommender, as_csr
from deepcart.models.naive import check_number
from deepcart.progress import progress_bar

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

#: The install hint of the one-line error for a neural model without PyTorch.
INSTALL_HINT = "pip install 'deepcart[neural]' -c constraints.txt"
#: Default TensorBoard log root (a hyperparameter of every neural model: ``log_dir``).
DEFAULT_LOG_DIR = "runs"
#: The state dict file beside ``model.json``.
WEIGHTS_FILE = "model.pt"
#: The shared hyperparameters of every neural model and their defaults (see
#: :class:`NeuralRecommender`; a family overrides some in its ``defaults``).
SHARED_DEFAULTS: dict[str, Any] = {
    "epochs": 200,
    "batch_size": 500,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "patience": 20,
    "val_k": 10,
    "seed": 0,
    "device": "auto",
    "log_dir": DEFAULT_LOG_DIR,
    "progress": True,
    "threads": None,
}

_warned_no_tensorboard = False


# ------------------------------------------------------------------------------ torch access


def torch_available() -> bool:
    """Whether PyTorch can be imported (without importing it)."""
    return importlib.util.find_spec("torch") is not None


def omp_defaults() -> None:
    """Before torch is first imported, default ``OMP_WAIT_POLICY`` to ``PASSIVE`` (unless set).

    With OpenMP's default (spinning) waits, torch's two threads on a busy two-core machine (more
    runnable threads than cores) made a training step of a small network 40 times slower than
    one thread; passive waiting removes that. Without effect once torch is loaded.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def require_torch(model: str) -> Any:
    """Import and return ``torch`` (after :func:`omp_defaults`), or raise the one-line
    :class:`InputError` naming ``model``."""
    omp_defaults()
    try:
        import torch
    except ImportError:
        raise InputError(f"{model} needs PyTorch: {INSTALL_HINT}") from None
    return torch


def pick_device(device: str) -> torch.device:
    """``"auto"``: CUDA when available, else CPU; or an explicit ``"cpu"``/``"cuda[:N]"``."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device: {device!r} asked for, but CUDA is not available here")
    try:
        return torch.device(device)
    except RuntimeError:
        raise InputError(f"device: expected 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from None


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads (``None``: leave torch's setting), then restore."""
    import torch

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's RNG (CPU, and the CUDA device in use) inside a forked RNG state, so the
    caller's global random state is the same afterwards."""
    import torch

    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


#: Whether SparseBatch.linear has made a sparse tensor in this process (see there).
_first_sparse_made = False


class SparseBatch:
    """A mini-batch of CSR rows as torch tensors: per stored entry its row, column and value.

    The networks read their input through :meth:`linear` (a sparse x dense product: the cost of
    the first layer grows with the interactions, not with ``rows x n_items``) and their targets
    through :meth:`gather`; nothing of the input is ever dense. Only the output layer's
    ``rows x n_items`` scores are.
    """

    def __init__(
        self, x: sp.csr_matrix, device: torch.device, dtype: Any = None, *, _parts: Any = None
    ) -> None:
        import torch

        if _parts is not None:
            self.n_rows, self.n_cols, self.rows, self.cols, self.values = _parts
            return
        self.n_rows, self.n_cols = x.shape
        counts = np.diff(x.indptr)
        self.rows = torch.from_numpy(np.repeat(np.arange(x.shape[0]), counts)).to(device)
        self.cols = torch.from_numpy(x.indices.astype(np.int64)).to(device)
        self.values = torch.from_numpy(x.data.astype(np.float32)).to(
            device=device, dtype=dtype or torch.float32
        )

    def with_values(self, values: torch.Tensor) -> SparseBatch:
        """The same entries with other values."""
        parts = (self.n_rows, self.n_cols, self.rows, self.cols, values)
        return SparseBatch(None, None, _parts=parts)  # type: ignore[arg-type]

    def normalized(self) -> SparseBatch:
        """Each row divided by its L2 norm (an empty row stays empty)."""
        sq = self.values.new_zeros(self.n_rows).index_add_(0, self.rows, self.values**2)
        return self.with_values(self.values / sq.sqrt()[self.rows])

    def dropout(self, p: float) -> SparseBatch:
        """Training-time dropout of the stored entries (the zeros stay zeros either way)."""
        import torch

        if not p:
            return self
        return self.with_values(torch.nn.functional.dropout(self.values, p=p, training=True))

    def linear(self, layer: torch.nn.Linear) -> torch.Tensor:
        """``layer(x)`` for the dense ``x`` these entries stand for, computed sparsely."""
        import torch

        global _first_sparse_made
        # The indices come from a CSR matrix, valid by construction: no invariant checks.
        args = (torch.stack([self.rows, self.cols]), self.values, (self.n_rows, self.n_cols))
        if _first_sparse_made:
            x = torch.sparse_coo_tensor(*args, check_invariants=False)
        else:
            # torch 2.11 warns once per process, at the first sparse tensor, that the checks are
            # "implicitly disabled" although they are disabled explicitly: silence that warning
            # for that one call (a global filter set at import would not survive every caller's
            # own warning settings, such as pytest's).
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Sparse invariant checks", UserWarning)
                x = torch.sparse_coo_tensor(*args, check_invariants=False)
            _first_sparse_made = True
        return torch.sparse.mm(x, layer.weight.t()) + layer.bias

    def gather(self, dense: torch.Tensor) -> torch.Tensor:
        """The entries of a dense ``(n_rows, n_cols)`` tensor at the stored positions."""
        return dense[self.rows, self.cols]

    def through(self, layers: torch.nn.Sequential) -> torch.Tensor:
        """``layers(x)`` for a stack whose first layer is a ``Linear`` (computed sparsely)."""
        out = self.linear(layers[0])
        for layer in layers[1:]:
            out = layer(out)
        return out


def binarize(x: sp.csr_matrix, use_values: bool) -> sp.csr_matrix:
    """``x`` with every stored nonzero set to 1 (unless ``use_values``), zeros dropped."""
    x = sp.csr_matrix(x, dtype="float32", copy=True)
    x.eliminate_zeros()
    if not use_values:
        x.data[:] = 1.0
    elif x.nnz and x.data.min() < 0:
        raise InputError(f"user_items: expected non-negative values, got {x.data.min()}")
    return x


def multinomial_nll(torch: Any, logits: torch.Tensor, batch: SparseBatch) -> torch.Tensor:
    """``-sum_i x_ui log softmax(logits_u)_i``, averaged over the batch's rows (Mult-DAE and
    Mult-VAE's likelihood; only the stored entries of ``x`` count)."""
    log_pi = batch.gather(torch.log_softmax(logits, dim=1))
    return -(log_pi * batch.values).sum() / batch.n_rows


def make_adam(torch: Any, net: torch.nn.Module, lr: float, weight_decay: float) -> Any:
    """Adam, fused into one kernel where torch supports it (a step on a 5M-parameter network:
    7 ms instead of 35 on CPU), else the default implementation (the same update)."""
    try:
        return torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)


def open_writer(log_dir: str | None, name: str) -> Any:
    """A TensorBoard ``SummaryWriter`` on a fresh run directory ``<log_dir>/<name>-<time>-<pid>``,
    or ``None`` when ``log_dir`` is ``None`` or TensorBoard is not installed (warned once)."""
    global _warned_no_tensorboard
    if log_dir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        if not _warned_no_tensorboard:
            log.warning(
                "TensorBoard logs are off: the tensorboard package is not installed (%s)",
                INSTALL_HINT,
            )
            _warned_no_tensorboard = True
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = make_dirs(log_dir, "log_dir") / f"{name}-{stamp}-{os.getpid()}"
    run, n = base, 1
    while run.exists():
        n += 1
        run = base.with_name(f"{base.name}-{n}")
    run.mkdir(parents=True)
    return SummaryWriter(log_dir=str(run))


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (Linux VmHWM; NaN elsewhere)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:,.1f} MB"


# ------------------------------------------------------------------------------ early stopping


@dataclass
class Validation:
    """The validation users: input rows, relevant held-out rows and, for rating predictors, the
    held-out ratings in the model's scale (``val_ratings``, optional)."""

    inputs: sp.csr_matrix
    check: sp.csr_matrix
    ratings: sp.csr_matrix | None = None


class EarlyStopping:
    """Track a metric to maximise; keep the best epoch's weights (a copy of the state dict).

    ``update`` returns True once ``patience`` epochs in a row have not beaten the best by more
    than ``min_delta``. A NaN metric (no validation user could be scored) never counts as best.
    """

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best = -math.inf
        self.best_epoch = -1
        self.best_state: dict[str, Any] | None = None
        self.bad_epochs = 0

    def update(self, value: float, epoch: int, net: torch.nn.Module) -> bool:
        if not math.isnan(value) and value > self.best + self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience


# ------------------------------------------------------------------------------ the base class


class NeuralRecommender(Recommender):
    """Base of the PyTorch models: training loop, validation, scoring, persistence.

    Subclasses define ``__init__`` (their own keyword-only hyperparameters and ``**shared``,
    passing both to :meth:`_set_params`), ``defaults`` (the shared hyperparameters whose
    default differs for the family), ``_build(n_items)`` (the ``torch.nn.Module``),
    ``_prepare(x)`` (the CSR matrix the network sees, e.g. binarised), ``_loss(net, batch,
    step, part)`` (a scalar loss tensor for a :class:`SparseBatch` of rows in the pass
    ``part`` of an epoch, plus scalars to log) and ``_forward(net, batch)`` (the dense scores of
    a :class:`SparseBatch` in eval mode); optionally ``_passes()`` (an epoch's passes over the
    users, one by default) and ``_epoch_start(net)``.

    Shared hyperparameters (defaults in :data:`SHARED_DEFAULTS`, unless the family's
    ``defaults`` says otherwise):
        epochs: the most training epochs (``--nn-epochs``).
        batch_size: users per mini-batch (``--nn-batch``).
        lr: Adam's learning rate.
        weight_decay: L2 penalty (Adam's ``weight_decay``).
        patience: with validation data, stop after this many epochs without a better NDCG.
        val_k: the K of the validation NDCG@K.
        seed: initial weights, shuffling, dropout and sampling noise.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda[:N]"``.
        log_dir: TensorBoard log root (``None``: no logs).
        progress: show the progress bar over epochs (on a terminal).
        threads: torch's CPU threads while training and scoring (``None``: torch's default, one
            per core). Results are deterministic for a seed and a thread count.

    Learned: ``net_`` (the module, in eval mode), ``item_counts_`` (training interactions per
    item), ``best_epoch_`` and ``epochs_run_``; after ``fit`` also ``history_`` (per-epoch loss,
    validation NDCG and extras), ``log_dir_`` (the run directory, or None) and
    ``memory_report_``.
    """

    #: The CLI's ``--nn-batch``/``--nn-epochs`` apply to these models.
    neural: ClassVar[bool] = True
    #: :func:`deepcart.training.fit_model` passes the split's validation users to ``fit``.
    uses_validation: ClassVar[bool] = True

    #: The family's defaults of shared hyperparameters (the rest: :data:`SHARED_DEFAULTS`).
    defaults: ClassVar[dict[str, Any]] = {}

    def _set_params(self, own: dict[str, Any], shared: dict[str, Any]) -> None:
        """Store the family's own hyperparameters (its ``__init__``'s ``locals()``) and the
        shared ones (its ``**shared``: given, else the family's or the common default) as
        attributes; an unknown name is a TypeError, as for any keyword argument."""
        unknown = sorted(set(shared) - set(SHARED_DEFAULTS))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword argument(s) {', '.join(unknown)}"
            )
        for name in self._own_param_names():
            setattr(self, name, own[name])
        for name, default in {**SHARED_DEFAULTS, **self.defaults}.items():
            setattr(self, name, shared.get(name, default))

    @classmethod
    def _own_param_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]

    @classmethod
    def param_names(cls) -> list[str]:
        """The family's own hyperparameters, then the shared ones."""
        return cls._own_param_names() + list(SHARED_DEFAULTS)

    def get_params(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in self.param_names()}

    # ---------------------------------------------------------------- subclass hooks

    def _check_model_params(self) -> None:  # noqa: B027 (optional hook)
        """Validate the model-specific hyperparameters (raise InputError)."""

    def _build(self, n_items: int) -> torch.nn.Module:
        raise NotImplementedError

    def _prepare(self, x: sp.csr_matrix) -> sp.csr_matrix:
        return x

    def _loss(
        self, net: torch.nn.Module, batch: SparseBatch, step: int, part: str
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of a mini-batch in the pass ``part`` of an epoch (see :meth:`_passes`)."""
        raise NotImplementedError

    def _passes(self) -> tuple[str, ...]:
        """The passes over the training users that make one epoch, each named for ``_loss``
        (the default: one pass training the whole network; ``vae`` can alternate parts)."""
        return ("all",)

    def _epoch_start(self, net: torch.nn.Module) -> None:  # noqa: B027 (optional hook)
        """Called before each training epoch (``vae``'s composite prior copies the encoder)."""

    def _training_copies(self, net: torch.nn.Module) -> list[tuple[str, int]]:
        """Parameters held only while training besides the network and its optimizer state,
        as (what, count), for the memory report (``vae``'s composite prior: an encoder copy)."""
        return []

    def _forward(self, net: torch.nn.Module, batch: SparseBatch) -> torch.Tensor:
        raise NotImplementedError

    # ---------------------------------------------------------------- validation

    def check_params(self) -> None:
        """The shared hyperparameters, then the family's (:meth:`_check_model_params`); needs
        no torch."""
        check_number("epochs", self.epochs, minimum=1, integer=True)
        check_number("batch_size", self.batch_size, minimum=1, integer=True)
        check_number("lr", self.lr, minimum=0, strict=True)
        check_number("weight_decay", self.weight_decay, minimum=0)
        check_number("patience", self.patience, minimum=1, integer=True)
        check_number("val_k", self.val_k, minimum=1, integer=True)
        check_number("seed", self.seed, minimum=0, integer=True)
        check_number("threads", self.threads, minimum=1, integer=True, allow_none=True)
        if not isinstance(self.device, str) or not re.fullmatch(
            r"auto|cpu|cuda(:\d+)?", self.device
        ):
            raise InputError(f"device: expected 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")
        if self.log_dir is not None and not isinstance(self.log_dir, str):
            raise InputError(f"log_dir: expected a directory name or null, got {self.log_dir!r}")
        if not isinstance(self.progress, bool | np.bool_):
            raise InputError(f"progress: expected true or false, got {self.progress!r}")
        self._check_model_params()

    def _monitor(self) -> tuple[str, bool]:
        """The history key early stopping watches, and whether higher is better."""
        return f"val_ndcg@{self.val_k}", True

    def _val_metrics(
        self, net: torch.nn.Module, device: torch.device, val: Validation
    ) -> dict[str, float]:
        """Validation metrics after an epoch (the monitored one among them)."""
        return {f"val_ndcg@{self.val_k}": self._val_ndcg(net, device, val.inputs, val.check)}

    def _validation(
        self, val_inputs: Any, val_check: Any, n_items: int, val_ratings: Any = None
    ) -> Validation | None:
        if val_inputs is None and val_check is None:
            return None
        if val_inputs is None or val_check is None:
            raise InputError("fit: val_inputs and val_check go together (give both or neither)")
        vi = as_csr(val_inputs, "val_inputs", n_items=n_items)
        vc = as_csr(val_check, "val_check", n_items=n_items)
        if vi.shape[0] != vc.shape[0]:
            raise InputError(f"val_check: has {vc.shape[0]} rows but val_inputs has {vi.shape[0]}")
        if vc.nnz == 0:
            log.info(
                "%s: no validation interactions; training for %d epochs", self.name, self.epochs
            )
            return None
        vr = None if val_ratings is None else as_csr(val_ratings, "val_ratings", n_items=n_items)
        if vr is not None and vr.shape[0] != vi.shape[0]:
            raise InputError(
                f"val_ratings: has {vr.shape[0]} rows but val_inputs has {vi.shape[0]}"
            )
        return Validation(vi, vc, vr)

    # ---------------------------------------------------------------- training

    def _fit(
        self,
        x: sp.csr_matrix,
        *,
        val_inputs: Any = None,
        val_check: Any = None,
        val_ratings: Any = None,
        **side: Any,
    ) -> None:
        require_torch(self.name)
        with num_threads(self.threads):
            self._train(x, val_inputs, val_check, val_ratings)

    def _train(self, x: sp.csr_matrix, val_inputs: Any, val_check: Any, val_ratings: Any) -> None:
        import torch

        n_users, n_items = x.shape
        val = self._validation(val_inputs, val_check, n_items, val_ratings)
        monitor, higher = self._monitor()
        device = pick_device(self.device)
        data = self._prepare(x)
        self.item_counts_ = np.bincount(data.indices, minlength=n_items).astype(np.float32)
        rows = np.flatnonzero(np.diff(data.indptr) > 0)  # empty rows carry no signal
        if len(rows) == 0:
            raise InputError("user_items: has no interactions to learn from")
        bs = int(self.batch_size)
        self._net64 = None
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with seeded(int(self.seed), device):
            net = self._build(n_items).to(device)
            optimizer = make_adam(torch, net, float(self.lr), float(self.weight_decay))
            rng = np.random.default_rng(int(self.seed))
            writer = open_writer(self.log_dir, self.name)
            self.log_dir_ = writer.log_dir if writer is not None else None
            if writer is not None:
                writer.add_text("params", json.dumps(self.get_params(), sort_keys=True))
            stopper = EarlyStopping(int(self.patience))
            self.history_: list[dict[str, float]] = []
            step = 0
            bar = progress_bar(
                range(int(self.epochs)), desc=self.name, unit="epoch", show=bool(self.progress)
            )
            try:
                for epoch in bar:
                    net.train()
                    self._epoch_start(net)
                    total, extras, seen = 0.0, {}, 0
                    for part in self._passes():
                        order = rows[rng.permutation(len(rows))]
                        for start in range(0, len(order), bs):
                            batch = SparseBatch(data[order[start : start + bs]], device)
                            loss, extra = self._loss(net, batch, step, part)
                            # A part of the network the pass does not train has no gradient:
                            # Adam leaves it (and its moments) as they are.
                            optimizer.zero_grad(set_to_none=True)
                            loss.backward()
                            optimizer.step()
                            step += 1
                            n = batch.n_rows
                            total += float(loss.detach()) * n
                            for k, v in extra.items():
                                extras[k] = extras.get(k, 0.0) + v * n
                        seen += len(order)
                    record = {"epoch": epoch + 1, "loss": total / seen}
                    if not math.isfinite(record["loss"]):  # no later epoch will mend it
                        raise self.diverged(f"training loss {record['loss']} at epoch {epoch + 1}")
                    record.update({k: v / seen for k, v in extras.items()})
                    if val is not None:
                        record.update(self._val_metrics(net, device, val))
                    self.history_.append(record)
                    if writer is not None:
                        for k, v in record.items():
                            if k != "epoch":
                                writer.add_scalar(
                                    ("val/" if k.startswith("val_") else "train/") + k,
                                    v,
                                    epoch + 1,
                                )
                    # Shown at the bar's next refresh (refresh=True would show it before the
                    # bar's delay: a short fit would print a bar).
                    bar.set_postfix(
                        {k: f"{v:.4g}" for k, v in record.items() if k != "epoch"}, refresh=False
                    )
                    if val is not None and stopper.update(
                        record[monitor] if higher else -record[monitor], epoch + 1, net
                    ):
                        break
            finally:
                bar.close()
                if writer is not None:
                    writer.flush()
                    writer.close()
        if stopper.best_state is not None:
            net.load_state_dict(stopper.best_state)
            self.best_epoch_ = stopper.best_epoch
        else:
            self.best_epoch_ = len(self.history_)
        self.epochs_run_ = len(self.history_)
        net.eval()
        self.net_ = net
        self.memory_report_ = self._memory_report(data, net, device)
        log.info(
            "%s: %d epochs, best epoch %d%s",
            self.name,
            self.epochs_run_,
            self.best_epoch_,
            f" ({monitor} {stopper.best if higher else -stopper.best:.4f})" if val else "",
        )
        log.info("%s", self.memory_report_)

    def _blocks(
        self,
        net: torch.nn.Module,
        device: torch.device,
        x: sp.csr_matrix,
        rows: int,
        dtype: Any = None,
    ) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(start, stop, scores)`` for ``rows`` rows of ``x`` at a time: the network's output
        (eval mode, no gradients) for the prepared rows, as a numpy array."""
        import torch

        net.eval()
        prepared = self._prepare(x)
        for start in range(0, x.shape[0], rows):
            stop = min(start + rows, x.shape[0])
            with torch.no_grad():
                out = self._forward(net, SparseBatch(prepared[start:stop], device, dtype))
            yield start, stop, out.cpu().numpy()

    def _val_ndcg(
        self, net: torch.nn.Module, device: torch.device, inputs: sp.csr_matrix, check: Any
    ) -> float:
        """Mean NDCG@val_k of the validation users (fold-in of their inputs, seen excluded)."""
        k = min(int(self.val_k), self.n_items_)
        out = []
        for start, stop, scores in self._blocks(net, device, inputs, self.block_rows()):
            seen = inputs[start:stop]
            scores[
                np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr)), seen.indices
            ] = -np.inf
            idx, _ = M.top_k(scores, k)
            truth = check[start:stop]
            out.append(M.ndcg_at_k(M.hit_matrix(idx, truth), M.count_relevant(truth)))
        values = np.concatenate(out)
        return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan

    def _memory_report(
        self, data: sp.csr_matrix, net: torch.nn.Module, device: torch.device
    ) -> str:
        """The original's memory report: what training held, next to what a dense copy would."""
        n_users, n_items = data.shape
        sparse = data.data.nbytes + data.indices.nbytes + data.indptr.nbytes
        params = sum(p.numel() for p in net.parameters())
        batch = min(int(self.batch_size), n_users) * n_items * 4
        parts = [
            f"{self.name} memory: training matrix {_mb(sparse)} sparse "
            f"(dense would be {_mb(n_users * n_items * 4)})",
            f"a mini-batch's scores {min(int(self.batch_size), n_users):,} x {n_items:,} = "
            f"{_mb(batch)}",
            f"network {params:,} parameters = {_mb(params * 4)} "
            f"({_mb(params * 16)} with gradients and Adam state)",
        ]
        for what, n in self._training_copies(net):
            parts.append(f"{what} {n:,} parameters = {_mb(n * 4)}")
        if device.type == "cuda":
            import torch

            parts.append(f"peak CUDA memory {_mb(torch.cuda.max_memory_allocated(device))}")
        parts.append(f"peak RSS {peak_rss_mb():,.0f} MB ({device.type})")
        return "; ".join(parts)

    # ---------------------------------------------------------------- scoring

    def _scoring_net(self) -> tuple[torch.nn.Module, torch.device, Any]:
        """The network to score with, its device and dtype: a float64 copy on CPU (a row then
        scores the same alone or in a batch), the trained network as it is on a GPU."""
        import torch

        device = next(self.net_.parameters()).device
        if device.type != "cpu":
            return self.net_, device, torch.float32
        if getattr(self, "_net64", None) is None:
            self._net64 = copy.deepcopy(self.net_).double().eval()
        return self._net64, device, torch.float64

    def _score_rows(self, x: sp.csr_matrix) -> np.ndarray:
        """Scores (float64 on CPU) for every row of ``x`` (already validated)."""
        import torch

        net, device, dtype = self._scoring_net()
        prepared = self._prepare(x)
        with torch.no_grad():
            return self._forward(net, SparseBatch(prepared, device, dtype)).cpu().numpy()

    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        require_torch(self.name)
        with num_threads(self.threads):
            return self._score_rows(x)

    # ---------------------------------------------------------------- persistence

    def _state(self) -> dict[str, np.ndarray]:
        return {
            "item_counts_": self.item_counts_,
            "best_epoch_": np.asarray(self.best_epoch_),
            "epochs_run_": np.asarray(self.epochs_run_),
        }

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_counts_ = arrays["item_counts_"]
        self.best_epoch_ = int(arrays["best_epoch_"])
        self.epochs_run_ = int(arrays["epochs_run_"])

    def _save_extra(self, root: Path) -> None:
        """Write the network's state dict to ``model.pt`` (tensors only, on CPU)."""
        torch = require_torch(self.name)
        state = {k: v.detach().cpu() for k, v in self.net_.state_dict().items()}
        with atomic_path(root / WEIGHTS_FILE, suffix=".pt") as tmp:
            torch.save(state, tmp)

    def _load_extra(self, root: Path) -> None:
        """Rebuild the network from the hyperparameters and load ``model.pt`` with
        ``weights_only=True`` (only tensors and plain containers can be read back)."""
        torch = require_torch(self.name)
        f = root / WEIGHTS_FILE
        try:
            state = torch.load(f, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise InputError(f"{f}: missing (the network's weights)") from None
        except (RuntimeError, OSError, ValueError) as exc:
            raise InputError(f"{f}: cannot read the network's weights ({exc})") from None
        net = self._build(self.n_items_)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise InputError(f"{f}: weights do not fit the saved hyperparameters ({exc})") from None
        self.net_ = net.to(pick_device(self.device)).eval()
        self._net64 = None


class MultinomialRecommender(NeuralRecommender):
    """Base of ``dae`` and ``vae``: implicit feedback (the input rows binarised unless
    ``use_rating_values``) and a multinomial likelihood over items (:func:`multinomial_nll`);
    the subclass gives the network, ``_logits(net, batch, train)`` and the loss around the
    likelihood. Scores are the logits of a row's uncorrupted input."""

    feedback = "implicit"

    def _check_use_rating_values(self) -> None:
        if not isinstance(self.use_rating_values, bool):
            raise InputError(
                f"use_rating_values: expected true or false, got {self.use_rating_values!r}"
            )

    def _prepare(self, x: sp.csr_matrix) -> sp.csr_matrix:
        return binarize(x, bool(self.use_rating_values))

    def _logits(self, net: torch.nn.Module, batch: SparseBatch, train: bool) -> torch.Tensor:
        raise NotImplementedError

    def _forward(self, net: torch.nn.Module, batch: SparseBatch) -> torch.Tensor:
        return self._logits(net, batch, train=False)


def init_linear(torch: Any, net: torch.nn.Module) -> torch.nn.Module:
    """Every ``Linear`` layer of ``net``: Xavier-normal weights and N(0, 0.001^2) biases, as
    Liang et al. (2018) initialise; returns ``net``."""
    for layer in net.modules():
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.xavier_normal_(layer.weight)
            torch.nn.init.normal_(layer.bias, std=0.001)
    return net


def check_dropout(name: str, value: Any) -> None:
    check_number(name, value, minimum=0)
    if value >= 1:
        raise InputError(f"{name}: expected a number in [0, 1), got {value!r}")
