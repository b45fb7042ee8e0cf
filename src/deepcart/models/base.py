"""The model contract every DeepCart recommender follows.

- ``Model(**hyperparameters)``: keyword-only, defaults that work, no work in the constructor.
- ``check_params()`` raises :class:`~deepcart.errors.InputError` naming the first bad
  hyperparameter, what was expected and what came (``"factors: expected an integer >= 1, got
  'x'"``), without any data and without optional dependencies (torch).
- ``fit(user_items)`` takes a CSR user x item matrix (ratings or weights) and returns ``self``.
- ``recommend(user_items, k, exclude_seen=True, candidates=None)`` ranks for a batch of users
  given their interaction rows (known users or brand-new ones: fold-in) and returns
  ``(item_indices, scores)`` of shape (n_users, k), best first, padded with -1 / -inf.
- ``predict(user_items, items)`` (rating predictors only) predicts ratings for (row, item) pairs.
- ``save(path)`` / ``load(path)``: ``model.json`` (class name, hyperparameters, version) and
  ``arrays.npz`` (loaded with ``allow_pickle=False``); never pickle.

Models see integer indices only; ids are mapped at the edges (:mod:`deepcart.data.matrix`).
Subclasses implement ``check_params``, ``_fit``, ``_score`` (a dense score block for a batch of
rows) and the ``_state``/``_set_state`` pair; the base class validates input, excludes seen
items, applies candidate sets, batches, and saves.

Where hyperparameters are validated: as in scikit-learn, the constructor only stores them (so
``Model(factors="x")`` succeeds and ``get_params`` round-trips whatever was given); ``fit`` calls
``check_params`` before it looks at the data, and :func:`deepcart.models.create` (how ``train``,
``test`` and :meth:`Recommender.load` build a model from a name and parameters) calls it right
after construction, so a bad ``--params`` value fails before any data is read, with the message
``fit`` would give after a ``--params: bad value for '<model>':`` prefix.
"""

from __future__ import annotations

import inspect
import json
import zipfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from deepcart import __version__
from deepcart.errors import DeepCartError, FitDiverged, InputError
from deepcart.eval.metrics import top_k
from deepcart.fsutil import atomic_path, atomic_write_text, make_dirs

FORMAT_VERSION = 1


#: Parameters that change how a fit runs or reports, not what it computes.
_HOUSEKEEPING = frozenset({"progress", "log_dir", "threads", "device"})


class NotFittedError(DeepCartError):
    """A model was used before ``fit`` (or ``load``)."""


def as_csr(x: Any, name: str = "user_items", n_items: int | None = None) -> sp.csr_matrix:
    """Validate and convert to a float32 CSR matrix with sorted indices and no NaN."""
    if not sp.issparse(x):
        raise InputError(f"{name}: expected a scipy.sparse matrix, got {type(x).__name__}")
    m = sp.csr_matrix(x, dtype=np.float32)
    if m.ndim != 2:
        raise InputError(f"{name}: expected 2 dimensions, got {m.ndim}")
    if n_items is not None and m.shape[1] != n_items:
        raise InputError(
            f"{name}: has {m.shape[1]} item columns but the model was fit on {n_items} items"
        )
    if m.nnz and not np.isfinite(m.data).all():
        raise InputError(f"{name}: contains NaN or infinite values")
    m.sort_indices()
    return m


class Recommender(ABC):
    """Base class: see the module docstring for the contract."""

    #: The name used by ``--type`` and in saved models.
    name: ClassVar[str]
    #: Whether ``predict`` gives ratings (RMSE, MAE and Pearson r are reported for those).
    predicts_ratings: ClassVar[bool] = False
    #: "explicit" models learn from rating values; "implicit" ones from which items a user
    #: interacted with (values, when used, are confidences). See :mod:`deepcart.modes`.
    feedback: ClassVar[str] = "implicit"
    #: Float32 scores per block in ``recommend`` (block rows x n_items); bounds its memory.
    block_scores: ClassVar[int] = 1 << 24

    # ---------------------------------------------------------------- parameters

    def get_params(self) -> dict[str, Any]:
        sig = inspect.signature(type(self).__init__)
        return {n: getattr(self, n) for n in sig.parameters if n != "self"}

    def changed_params(self) -> dict[str, Any]:
        """The hyperparameters set away from their defaults (leaving out those that change
        how a fit runs or reports, not what it computes: progress, log_dir, threads, device)."""
        defaults = type(self)().get_params()
        return {
            k: v
            for k, v in self.get_params().items()
            if defaults.get(k) != v and k not in _HOUSEKEEPING
        }

    def changed_params_text(self) -> str:
        """:meth:`changed_params` as ``name=value, ...`` (empty for the defaults)."""
        return ", ".join(f"{k}={v!r}" for k, v in self.changed_params().items())

    @classmethod
    def param_names(cls) -> list[str]:
        return [n for n in inspect.signature(cls.__init__).parameters if n != "self"]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @abstractmethod
    def check_params(self) -> None:
        """Raise :class:`InputError` for the first bad hyperparameter: the message starts with
        its name, then says what was expected and what came. Needs no data and no optional
        dependency; ``fit`` and :func:`deepcart.models.create` call it. It checks values only:
        whether this machine can run them (CUDA, the ``implicit`` package) is for ``fit`` to
        say, so a saved model loads anywhere."""

    # ---------------------------------------------------------------- fitting

    def fit(self, user_items: Any, **side: Any) -> Self:
        """Learn from a CSR user x item matrix of ratings (or weights); returns ``self``.

        The hyperparameters are checked (:meth:`check_params`) before the data."""
        self.check_params()
        x = as_csr(user_items)
        if x.shape[1] == 0:
            raise InputError("user_items: has no item columns")
        self.n_items_ = x.shape[1]
        self._fit(x, **side)
        self._check_finite(x)
        return self

    #: Rows of the training matrix scored after a fit to see that the scores are numbers.
    probe_rows: ClassVar[int] = 8

    def _check_finite(self, x: sp.csr_matrix) -> None:
        """Refuse a fit that diverged: scores of a few training users that are NaN or +inf
        would be saved, then fail every later command with a message about NaN scores."""
        rows = np.flatnonzero(np.diff(x.indptr))[: self.probe_rows]
        if not len(rows):
            return
        scores = np.asarray(self._score(x[rows]))
        if np.isnan(scores).any() or np.isposinf(scores).any():
            raise self.diverged("its scores are NaN or infinite")

    def diverged(self, what: str) -> FitDiverged:
        """The error for a fit that ran away (``what`` happened), naming the hyperparameters
        set away from their defaults."""
        changed = self.changed_params_text()
        given = f"with {changed}" if changed else "with its default hyperparameters"
        return FitDiverged(
            f"{self.name}: the fit diverged ({what}) {given}; a smaller learning rate or "
            "confidence weight, or other regularization, keeps the numbers finite"
        )

    @abstractmethod
    def _fit(self, x: sp.csr_matrix, **side: Any) -> None: ...

    @abstractmethod
    def _score(self, x: sp.csr_matrix) -> np.ndarray:
        """Dense (n_rows, n_items) float scores for the given interaction rows; higher is better.

        ``x`` may be the caller's own matrix (``recommend`` passes a canonical input through
        uncopied): read it, never modify it."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted: call fit() or load() before use"
            )

    # ---------------------------------------------------------------- inference

    def score(self, user_items: Any) -> np.ndarray:
        """Dense scores for a batch of interaction rows (fold-in for new users)."""
        self._check_fitted()
        return self._score(as_csr(user_items, n_items=self.n_items_))

    def recommend(
        self,
        user_items: Any,
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Any = None,
        exclude: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores for each row of ``user_items``, best first.

        ``candidates`` restricts the ranking to a set of items (an array of item indices or a
        boolean mask over items); items outside it are never returned. ``exclude`` is an extra
        sparse (n_rows, n_items) matrix of items never to return (for example everything a user
        rated, when ``user_items`` holds only their low ratings in worst mode). Rows with fewer
        than ``k`` eligible items are padded with index -1 and score -inf.
        """
        self._check_fitted()
        x = self._rows(user_items, "user_items")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise InputError(f"k: expected a positive integer, got {k!r}")
        k = int(k)
        if exclude is not None:
            exclude = self._rows(exclude, "exclude")
            if exclude.shape[0] != x.shape[0]:
                raise InputError(
                    f"exclude: has {exclude.shape[0]} rows but user_items has {x.shape[0]}"
                )
        allowed = self._candidate_mask(candidates)
        blocked = None if allowed is None else np.flatnonzero(~allowed)
        rows = self.block_rows()
        if 0 < x.shape[0] <= rows:  # one block (a served fold-in): no row slices, no copies
            return self._recommend_block(x, k, exclude_seen, blocked, exclude)
        idx_out = np.full((x.shape[0], k), -1, dtype=np.int64)
        score_out = np.full((x.shape[0], k), -np.inf, dtype=np.float32)
        for start in range(0, x.shape[0], rows):
            stop = start + rows
            idx, top = self._recommend_block(
                x[start:stop],
                k,
                exclude_seen,
                blocked,
                None if exclude is None else exclude[start:stop],
            )
            idx_out[start : start + len(idx)] = idx
            score_out[start : start + len(idx)] = top
        return idx_out, score_out

    def _rows(self, x: Any, name: str) -> sp.csr_matrix:
        """``as_csr(x, name, n_items_)``; ``x`` itself when it already is such a matrix (a float32
        ``csr_matrix`` with sorted indices and ``n_items_`` columns), checked for NaN/inf only:
        the conversion's copies are most of the cost of a one-row call."""
        if (
            type(x) is sp.csr_matrix
            and x.dtype == np.float32
            and x.shape[1] == self.n_items_
            and x.has_sorted_indices
        ):
            if not np.isfinite(x.data).all():
                raise InputError(f"{name}: contains NaN or infinite values")
            return x
        return as_csr(x, name=name, n_items=self.n_items_)

    def _recommend_block(
        self,
        x: sp.csr_matrix,
        k: int,
        exclude_seen: bool,
        blocked: np.ndarray | None,
        exclude: sp.csr_matrix | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` of a block of rows: scores, candidate set and exclusions applied."""
        # _score returns a fresh array, so masking happens in place (no extra copy).
        scores = np.asarray(self._score(x), dtype=np.float32)
        if not scores.flags.writeable:
            scores = scores.copy()
        if blocked is not None:
            scores[:, blocked] = -np.inf
        for m in (x if exclude_seen else None, exclude):
            if m is not None:
                scores[np.repeat(np.arange(m.shape[0]), np.diff(m.indptr)), m.indices] = -np.inf
        return top_k(scores, k)

    def _candidate_mask(self, candidates: Any) -> np.ndarray | None:
        if candidates is None:
            return None
        c = np.asarray(candidates)
        if c.dtype == bool:
            if c.shape != (self.n_items_,):
                raise InputError(
                    f"candidates: a boolean mask must have {self.n_items_} entries, got {c.shape}"
                )
            return c
        if c.ndim != 1 or not np.issubdtype(c.dtype, np.integer):
            raise InputError("candidates: expected item indices (1-d integers) or a boolean mask")
        if c.size and (c.min() < 0 or c.max() >= self.n_items_):
            raise InputError(f"candidates: item indices must be in [0, {self.n_items_})")
        mask = np.zeros(self.n_items_, dtype=bool)
        mask[c] = True
        return mask

    def block_rows(self) -> int:
        """Rows scored at once: about ``block_scores`` floats per block, 16 to 2048 rows."""
        return int(min(2048, max(16, self.block_scores // max(1, self.n_items_))))

    def predict(self, user_items: Any, items: Any) -> np.ndarray:
        """Predicted ratings for row ``i`` of ``user_items`` and item ``items[i]``."""
        raise InputError(f"model {self.name!r} does not predict ratings")

    # ---------------------------------------------------------------- persistence

    def _state(self) -> dict[str, np.ndarray]:
        """Learned arrays to save (besides n_items_)."""
        return {}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:  # noqa: B027 (optional hook)
        """Restore what ``_state`` returned."""

    def _save_extra(self, root: Path) -> None:  # noqa: B027 (optional hook)
        """Write files besides ``arrays.npz`` into ``root`` (e.g. a torch state dict)."""

    def _load_extra(self, root: Path) -> None:  # noqa: B027 (optional hook)
        """Read what ``_save_extra`` wrote (called after ``_set_state``)."""

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write ``model.json`` and ``arrays.npz`` into the directory ``path``."""
        self._check_fitted()
        root = make_dirs(path, f"cannot save the model to {path}")
        arrays = {"n_items_": np.asarray(self.n_items_), **self._state()}
        with atomic_path(root / "arrays.npz", suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        self._save_extra(root)
        meta = {
            "format_version": FORMAT_VERSION,
            "deepcart_version": __version__,
            "model": self.name,
            "params": self.get_params(),
            "extra": extra or {},
        }
        atomic_write_text(root / "model.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return root

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved by :meth:`save` (the class comes from the registry, by name)."""
        from deepcart.models import create

        meta = read_model_meta(path)
        model = create(meta["model"], meta["params"], where=str(Path(path) / "model.json"))
        if cls is not Recommender and not isinstance(model, cls):
            raise InputError(f"{path}: holds a {meta['model']!r} model, not {cls.name!r}")
        try:
            with np.load(Path(path) / "arrays.npz", allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # empty, truncated
            raise InputError(f"{path}/arrays.npz: cannot read model arrays ({exc})") from None
        try:
            model.n_items_ = int(arrays.pop("n_items_"))
            model._set_state(arrays)
        except KeyError as exc:  # the arrays of another kind of model
            raise InputError(
                f"{path}/arrays.npz: no array {exc} for a {meta['model']!r} model; retrain it"
            ) from None
        model._load_extra(Path(path))
        return model


def read_model_meta(path: str | Path) -> dict[str, Any]:
    f = Path(path) / "model.json"
    try:
        meta = json.loads(f.read_text())
    except FileNotFoundError:
        raise InputError(f"no saved model at {path} (missing model.json)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{f}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{f}: expected a JSON object, got {type(meta).__name__}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise InputError(f"{f}: unsupported model format {meta.get('format_version')!r}")
    return meta
