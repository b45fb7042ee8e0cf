"""What the service serves: the dataset, the production models and every lookup, as ONE object.

:class:`ServingState` is built whole (load, validate, a smoke recommendation) before anyone
sees it and never changes afterwards, except for its bounded cache of recommendation lists. The
:class:`StateHolder` swaps it by a single reference assignment: a request takes the current state
once, at its start, and keeps using it, so a reload never fails a request in flight; a reload
that fails (a missing, broken or mismatched artifact) leaves the old state in place.

The production models are the ones ``deepcart train --split none`` writes:
``<model-dir>/<tag>/none/<type>/`` (required) and ``<type>-worst/`` (optional: without it worst
mode answers 409 with the command that trains it). Both must have been fit on the dataset's
current production split (the split id recorded in ``model.json``), so a dataset rebuilt but
not retrained is refused rather than served with a model that does not match it.

A user's interaction row for fold-in is their training row (from the production split) with
their stored reviews merged over it (a stored review overrides the training rating of the same
item); a user without training data is folded in from their stored reviews alone. A user with
neither gets the cold-start fallback, flagged ``fallback``: in best mode the items with the
highest Bayesian average rating (popular and well rated), in worst mode the engaged items
(``min_engagement`` ratings or more) with the lowest. So does a user whose row gives the model
nothing to go on (:func:`deepcart.modes.nothing_to_go_on`: no item of it that another user's
training row links to a second item, as the mode presents the data; in worst mode an implicit
model sees low ratings only), less the items they rated: the model's scores would be a tie,
listed in index order. The lists and their Bayesian average:
:func:`deepcart.modes.cold_start_lists`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from deepcart.data.matrix import IdIndex, interactions, merged_row
from deepcart.data.mining import excerpt, worst_reviews
from deepcart.data.paths import require_dataset
from deepcart.data.split import load_split
from deepcart.errors import DeepCartError, InputError
from deepcart.fsutil import sha256_file
from deepcart.models.base import Recommender, read_model_meta
from deepcart.modes import (
    candidates,
    cold_start_lists,
    cold_start_top,
    linked_counts,
    model_input,
    nothing_to_go_on_row,
    require_engaged,
)
from deepcart.recommend import check_fitted, load_model_items, require_model, train_command
from deepcart.serve.config import Settings
from deepcart.serve.store import ReviewStore
from deepcart.training import model_path

MODES = ("best", "worst")
_NO_ITEMS = np.zeros(0, dtype=np.int32)

log = logging.getLogger(__name__)


class ModeUnavailable(DeepCartError):
    """Worst mode was asked for but no worst-mode production model is loaded."""


class ReloadRefused(DeepCartError):
    """A reload failed; the state that was serving still is."""


# ------------------------------------------------------------------------------ the dataset


@dataclass(frozen=True)
class Dataset:
    """The tables of a dataset the service needs (read by ``reload_data``)."""

    tag: str
    root: Path
    split_id: str
    #: The production split's training data: user_id, parent_asin, rating.
    train: pa.Table
    #: The catalog (``items.parquet``).
    items: pa.Table
    #: The most helpful low-rated review of each item (:func:`deepcart.data.mining.worst_reviews`).
    worst: pa.Table


def load_dataset(settings: Settings) -> Dataset:
    """Read the dataset ``settings.data_tag`` and its production split; check they match."""
    tag = settings.data_tag
    paths = require_dataset(settings.data_dir, tag)
    train_cmd = train_command(
        tag, "none", settings.type, "best", settings.model_dir, settings.data_dir
    )
    try:
        split = load_split(settings.data_dir, tag, "none")
    except InputError as exc:
        raise InputError(f"{exc}; make it (and the production model) with: {train_cmd}") from None
    meta = _read_json(split.root / "split.json")
    if meta.get("dataset_manifest_sha256") != sha256_file(paths.manifest):
        raise InputError(
            f"the production split of dataset {tag!r} ({split.root}) predates the dataset's "
            f"last build; retrain with: {train_cmd}"
        )
    train = split.read("train").select(["user_id", "parent_asin", "rating"])
    items = pq.read_table(paths.items)
    if "parent_asin" not in items.column_names:
        raise InputError(f"{paths.items}: has no parent_asin column")
    return Dataset(
        tag=tag,
        root=paths.root,
        split_id=str(meta.get("split_id")),
        train=train,
        items=items,
        worst=worst_reviews(paths.reviews),
    )


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None


# ------------------------------------------------------------------------------ the state


@dataclass(frozen=True)
class Recs:
    """One user's list, serialized once: ``json`` is the JSON array of its items (embed it in an
    answer with ``orjson.Fragment``); ``fallback`` says whether it is the cold-start list.

    Lists are cached as bytes, not as dicts: a hundred thousand cached lists add no objects for
    the garbage collector to walk (its pauses would show in the tail latency).
    """

    json: bytes
    fallback: bool

    @property
    def items(self) -> list[dict[str, Any]]:
        return orjson.loads(self.json)


@dataclass(frozen=True, eq=False)
class ServingState:
    version: int
    loaded_at: int
    settings: Settings
    dataset: Dataset
    models: dict[str, Recommender]
    model_dirs: dict[str, Path]
    item_ids: list[str]
    item_index: dict[str, int]
    #: Per model item index: parent_asin, title, price, average_rating, image.
    item_view: list[dict[str, Any]]
    #: Per model item index: the mined worst review (title, excerpt, rating, helpful_vote) or None.
    worst_view: list[dict[str, Any] | None]
    #: parent_asin -> the catalog entry (GET /items/{parent_asin}); every item of the dataset.
    catalog: dict[str, dict[str, Any]]
    train: sp.csr_matrix
    user_ids: list[str]
    user_index: dict[str, int]
    #: Rankable items per mode (None: all).
    allowed: dict[str, np.ndarray | None]
    #: Cold-start lists per mode: (item indices, scores), best first.
    fallback: dict[str, tuple[np.ndarray, np.ndarray]]
    #: Per mode, per item: the training rows that hold it with another item, as the mode
    #: presents them to the model (:func:`deepcart.modes.linked_counts`).
    linked: dict[str, np.ndarray]
    #: Per mode, the training rows as the mode presents them to the model, as CSR
    #: ``(indptr, indices)``: a user's own items, taken out of ``linked`` for them.
    train_items: dict[str, tuple[np.ndarray, np.ndarray]]
    cache_size: int
    #: (mode, k, user_id) -> (the stored reviews the list was made from, its JSON, fallback).
    #: Plain tuples of strings, numbers and bytes: the garbage collector stops tracking them
    #: after one pass, so a full cache adds nothing to its full collections.
    _cache: dict[tuple[str, int, str], tuple[tuple[Any, ...], bytes, bool]] = field(
        default_factory=dict, repr=False
    )

    # ---------------------------------------------------------------- lookups

    @property
    def modes(self) -> list[str]:
        return [m for m in MODES if m in self.models]

    def is_known(self, user_id: str) -> bool:
        return user_id in self.user_index

    def training_count(self, user_id: str) -> int:
        row = self.user_index.get(user_id)
        return 0 if row is None else int(self.train.indptr[row + 1] - self.train.indptr[row])

    def random_users(self, n: int) -> list[str]:
        return random.sample(self.user_ids, min(n, len(self.user_ids)))

    def item(self, parent_asin: str) -> dict[str, Any] | None:
        return self.catalog.get(parent_asin)

    # ---------------------------------------------------------------- recommending

    def user_row(self, user_id: str, stored: Sequence[tuple[str, float]]) -> sp.csr_matrix:
        """The 1 x n_items rating row of a user: training row, stored reviews merged over it
        (stored reviews of items the model does not know are left out)."""
        index = self.item_index
        updates = [(j, r) for asin, r in stored if (j := index.get(asin)) is not None]
        return merged_row(self.train, self.user_index.get(user_id), updates)

    def cached(
        self, user_id: str, stored: Sequence[tuple[str, float]], k: int, mode: str
    ) -> Recs | None:
        """The cached top-``k`` of a user whose reviews are unchanged since it was made, or None
        (ModeUnavailable: no model for ``mode``)."""
        if mode not in self.models:
            raise ModeUnavailable(self._worst_missing())
        hit = self._cache.get((mode, k, user_id))
        if hit is not None and hit[0] == tuple(stored):
            return Recs(hit[1], hit[2])
        return None

    def recommend(
        self, user_id: str, stored: Sequence[tuple[str, float]], k: int, mode: str
    ) -> Recs:
        """The top-``k`` of one user in ``mode`` (cached while their reviews are unchanged)."""
        hit = self.cached(user_id, stored, k, mode)
        return hit if hit is not None else self.recommend_many([(user_id, stored)], k, mode)[0]

    def recommend_many(
        self, users: Sequence[tuple[str, Sequence[tuple[str, float]]]], k: int, mode: str
    ) -> list[Recs]:
        """The top-``k`` of several (user_id, stored reviews) in ``mode``, made now (their
        fold-ins in one model call: a batch equals one by one) and cached."""
        model = self.models.get(mode)
        if model is None:
            raise ModeUnavailable(self._worst_missing())
        out: list[Recs | None] = [None] * len(users)
        rows, inputs, where = [], [], []
        for n, (user_id, stored) in enumerate(users):
            x = self.user_row(user_id, stored)
            inp = model_input(x, mode, model.feedback)
            # Nothing the model could read (worst mode: no low rating) or could relate to
            # anything (a low rating of a product no one else rated low): its scores would be a
            # tie, listed in index order. The cold-start list instead, flagged as such.
            if nothing_to_go_on_row(inp.indices, self._own_items(user_id, mode), self.linked[mode]):
                out[n] = self._cold_start(x, k, mode)
            else:
                rows.append(x)
                inputs.append(inp)
                where.append(n)
        if rows:
            one = len(rows) == 1
            x = rows[0] if one else sp.vstack(rows, format="csr")
            inp = inputs[0] if one else sp.vstack(inputs, format="csr")
            idx2, scores2 = model.recommend(
                inp, k=k, candidates=self.allowed[mode], exclude=None if mode == "best" else x
            )
            for r, n in enumerate(where):
                out[n] = self._items(idx2[r], scores2[r], mode, fallback=False)
        done = [r for r in out if r is not None]
        if self.cache_size:
            for (user_id, stored), recs in zip(users, done, strict=True):
                key = (mode, k, user_id)
                # A user's new review replaces their entry; a new entry evicts the oldest one.
                if key not in self._cache and len(self._cache) >= self.cache_size:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = (tuple(stored), recs.json, recs.fallback)
        return done

    def _own_items(self, user_id: str, mode: str) -> np.ndarray:
        """The items of the user's training row as ``mode`` presents it to the model (none
        for a user not in the training data)."""
        row = self.user_index.get(user_id)
        if row is None:
            return _NO_ITEMS
        indptr, indices = self.train_items[mode]
        return indices[indptr[row] : indptr[row + 1]]

    def _cold_start(self, x: sp.csr_matrix, k: int, mode: str) -> Recs:
        """The cold-start list of ``mode`` without the items of the user's row ``x``."""
        idx, scores = cold_start_top(self.fallback[mode], x.indices, k)
        return self._items(idx, scores, mode, fallback=True)

    def _items(self, idx: np.ndarray, scores: np.ndarray, mode: str, fallback: bool) -> Recs:
        out = []
        worst = mode == "worst"
        for j, s in zip(idx.tolist(), scores.tolist(), strict=True):
            if j < 0:
                break
            item = dict(self.item_view[j])
            item["score"] = s
            item["fallback"] = fallback
            if worst:
                item["worst_review"] = self.worst_view[j]
            out.append(item)
        return Recs(orjson.dumps(out), fallback)

    def _worst_missing(self) -> str:
        s = self.settings
        return (
            f"worst mode is off: no worst-mode {s.type!r} model for dataset {s.data_tag!r} at "
            f"{model_path(s.model_dir, s.data_tag, 'none', s.type, 'worst')}; train it with: "
            f"deepcart train --data-dir {s.data_dir} --model-dir {s.model_dir} "
            f"--data-tag {s.data_tag} --type {s.type} --split none --mode worst"
        )

    def describe(self) -> str:
        return (
            f"{self.settings.type!r} on dataset {self.dataset.tag!r} "
            f"({len(self.user_ids):,} users, {len(self.item_ids):,} items; "
            f"modes: {', '.join(self.modes)})"
        )


_Waiting = tuple[str, Sequence[tuple[str, float]], "asyncio.Future[Recs]"]


class FoldInBatcher:
    """The fold-ins asked for in one turn of the event loop, made by one model call per
    (state, mode, k).

    A fold-in costs more per call than per row (input checks, sparse matrices, the top-k selection):
    for the benchmark's ALS, one row in one call takes about 100-150 us of CPU, eight rows together
    about 50 us each (``benchmarks/foldin.py``). Under load, requests that arrive together (the
    users of one GET, the answers to one group commit's reviews coming back for their lists) are
    folded in together; a lone request waits for one loop callback. Only the event loop's thread
    uses it.
    """

    def __init__(self) -> None:
        #: (id(state), mode, k) -> (state, [(user_id, stored reviews, future), ...]).
        self._pending: dict[tuple[int, str, int], tuple[ServingState, list[_Waiting]]] = {}

    def submit(
        self, state: ServingState, user_id: str, stored: Sequence[tuple[str, float]], k: int,
        mode: str,
    ) -> Recs | asyncio.Future[Recs]:  # fmt: skip
        """The cached list at once, or a future of the list, made at the end of this turn."""
        hit = state.cached(user_id, stored, k, mode)
        if hit is not None:
            return hit
        loop = asyncio.get_running_loop()
        if not self._pending:
            loop.call_soon(self._flush)
        fut: asyncio.Future[Recs] = loop.create_future()
        key = (id(state), mode, k)
        entry = self._pending.get(key)
        if entry is None:
            entry = self._pending[key] = (state, [])
        entry[1].append((user_id, stored, fut))
        return fut

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        for (_, mode, k), (state, waiting) in pending.items():
            try:
                made = state.recommend_many([(u, s) for u, s, _ in waiting], k, mode)
            except Exception as exc:  # every waiter's request fails the way its own call would
                for *_, fut in waiting:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (*_, fut), recs in zip(waiting, made, strict=True):
                if not fut.done():  # not cancelled (a client that went away)
                    fut.set_result(recs)


# ------------------------------------------------------------------------------ building


def _load_model(path: Path, split_id: str, settings: Settings, mode: str) -> tuple[Any, IdIndex]:
    try:
        meta = read_model_meta(path)
        model, items = load_model_items(path)
    except DeepCartError:
        raise
    except Exception as exc:  # a corrupt file: say which and what, never a traceback
        raise InputError(f"{path}: cannot load the model ({type(exc).__name__}: {exc})") from None
    s = settings
    retrain = train_command(s.data_tag, "none", s.type, mode, s.model_dir, s.data_dir)
    check_fitted(
        path, meta, model_type=s.type, mode=mode, tag=s.data_tag, split="none",
        split_id=split_id, retrain=f"retrain it with: {retrain}",
    )  # fmt: skip
    return model, items


def _clean(value: Any) -> Any:
    """A JSON-safe scalar: NaN becomes None, float32 noise is rounded away."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    return value


#: The catalog keeps at most this many characters of an item's features and of its description
#: (what a product page shows; bounds the memory of a full category's catalog).
MAX_DETAIL_CHARS = 2000


def _clip(paragraphs: list[str], limit: int = MAX_DETAIL_CHARS) -> list[str]:
    """The first paragraphs of a list, ``limit`` characters in all (the last one cut with ...)."""
    out: list[str] = []
    left = limit
    for p in paragraphs:
        if left <= 0:
            break
        out.append(p if len(p) <= left else p[: max(left - 3, 0)].rstrip() + "...")
        left -= len(p)
    return out


def _catalog(items: pa.Table) -> dict[str, dict[str, Any]]:
    fields = [
        "title",
        "main_category",
        "store",
        "price",
        "average_rating",
        "rating_number",
        "categories",
        "features",
        "description",
        "image",
    ]
    lists = ("categories", "features", "description")
    cols = {f: items[f].to_pylist() if f in items.column_names else None for f in fields}
    out: dict[str, dict[str, Any]] = {}
    for i, asin in enumerate(items["parent_asin"].to_pylist()):
        entry: dict[str, Any] = {"parent_asin": asin}
        for f in fields:
            v = cols[f][i] if cols[f] is not None else None
            entry[f] = _clip(v or []) if f in lists else _clean(v)
        out[asin] = entry
    return out


def _worst_view(worst: pa.Table) -> dict[str, dict[str, Any]]:
    out = {}
    rows = worst.select(
        ["parent_asin", "review_title", "review_text", "review_rating", "review_helpful_vote"]
    ).to_pylist()
    for r in rows:
        out[r["parent_asin"]] = {
            "title": r["review_title"],
            "excerpt": excerpt(r["review_text"]),
            "rating": float(r["review_rating"]),
            "helpful_vote": int(r["review_helpful_vote"] or 0),
        }
    return out


def _load_models(
    settings: Settings, dataset: Dataset
) -> tuple[dict[str, Recommender], dict[str, Path], IdIndex]:
    """The production models of ``dataset`` (best required, worst if trained) and their items."""
    best = require_model(
        settings.model_dir, dataset.tag, "none", settings.type, "best", settings.data_dir
    )
    paths = {"best": best}
    worst_dir = model_path(settings.model_dir, dataset.tag, "none", settings.type, "worst")
    if (worst_dir / "model.json").is_file():
        paths["worst"] = worst_dir
    models: dict[str, Recommender] = {}
    items: IdIndex | None = None
    for mode, path in paths.items():
        model, its = _load_model(path, dataset.split_id, settings, mode)
        if items is not None and not its.ids.equals(items.ids):
            raise InputError(f"{path}: lists other items than {paths['best']}; retrain both")
        models[mode], items = model, its
    assert items is not None
    return models, paths, items


def build_state(settings: Settings, dataset: Dataset, version: int = 1) -> ServingState:
    """Load the production models for ``dataset``, precompute every lookup, smoke-test it."""
    models, paths, items = _load_models(settings, dataset)
    return _assemble(settings, dataset, models, paths, items, version)


def _assemble(
    settings: Settings,
    dataset: Dataset,
    models: dict[str, Recommender],
    paths: dict[str, Path],
    items: IdIndex,
    version: int,
) -> ServingState:
    x, users = interactions(dataset.train, items)
    item_ids = items.to_list()
    catalog = _catalog(dataset.items)
    mined = _worst_view(dataset.worst)
    counts = np.bincount(x.indices, minlength=len(item_ids))
    item_view, worst_view = [], []
    for j, asin in enumerate(item_ids):
        entry = catalog.get(asin, {})
        item_view.append(
            {
                "parent_asin": asin,
                "title": entry.get("title"),
                "price": entry.get("price"),
                "average_rating": entry.get("average_rating"),
                "image": entry.get("image"),
            }
        )
        worst_view.append(mined.get(asin))
        if asin in catalog:
            catalog[asin]["ratings"] = int(counts[j])
    for asin, entry in catalog.items():
        entry.setdefault("ratings", 0)
        entry["worst_review"] = mined.get(asin)
    user_ids = users.to_list()
    allowed = {"best": None, "worst": candidates(x, "worst", settings.min_engagement)}
    if "worst" in models:
        require_engaged(x, allowed["worst"], settings.min_engagement)
    linked, train_items = {}, {}
    for mode, model in models.items():
        inp = model_input(x, mode, model.feedback)
        linked[mode] = linked_counts(inp)
        train_items[mode] = (inp.indptr, inp.indices)
    state = ServingState(
        version=version,
        loaded_at=int(time.time() * 1000),
        settings=settings,
        dataset=dataset,
        models=models,
        model_dirs=paths,
        item_ids=item_ids,
        item_index={a: j for j, a in enumerate(item_ids)},
        item_view=item_view,
        worst_view=worst_view,
        catalog=catalog,
        train=x,
        user_ids=user_ids,
        user_index={u: i for i, u in enumerate(user_ids)},
        allowed=allowed,
        fallback=cold_start_lists(x, settings.min_engagement),
        linked=linked,
        train_items=train_items,
        cache_size=settings.cache_size,
    )
    _smoke_test(state)
    return state


def _smoke_test(state: ServingState) -> None:
    """Recommend for a known user and a brand-new one in every mode; refuse a model that fails."""
    probe = state.user_ids[:1]
    for mode in state.modes:
        model = state.models[mode]
        rows = sp.vstack([state.user_row(u, ()) for u in probe] + [state.user_row("", ())])
        rows = sp.csr_matrix(rows)
        idx, scores = model.recommend(
            model_input(rows, mode, model.feedback),
            k=5,
            candidates=state.allowed[mode],
            exclude=rows,
        )
        if idx.shape != (rows.shape[0], 5):
            raise InputError(
                f"{state.model_dirs[mode]}: smoke test failed (recommend gave shape {idx.shape})"
            )
        valid = idx >= 0
        if np.isnan(scores[valid]).any() or (idx[valid] >= len(state.item_ids)).any():
            raise InputError(f"{state.model_dirs[mode]}: smoke test failed (bad indices or NaN)")
    state._cache.clear()


def load_state(settings: Settings, version: int = 1) -> ServingState:
    """Everything ``deepcart serve`` serves, from the files ``settings`` names."""
    # The dataset is checked first: a mistyped tag names the existing ones (not a train command
    # that would fail too). Then the model: a missing one is the likeliest mistake, and its
    # message gives the train command.
    require_dataset(settings.data_dir, settings.data_tag)
    require_model(
        settings.model_dir, settings.data_tag, "none", settings.type, "best", settings.data_dir
    )
    return build_state(settings, load_dataset(settings), version)


# ------------------------------------------------------------------------------ swapping


class StateHolder:
    """The current :class:`ServingState`, replaced whole by :meth:`reload`.

    With several worker processes (``deepcart serve --workers N``) a reload request reaches one
    of them. That worker then bumps a generation counter in the review database
    (:meth:`ReviewStore.bump_generation`); every worker checks the counters once a second
    (:meth:`follow`) and reloads itself when another one moved them, so all workers serve the
    new state within about a second.
    """

    def __init__(
        self, settings: Settings, state: ServingState, store: ReviewStore | None = None
    ) -> None:
        self.settings = settings
        self.state = state
        self.store = store
        self._lock = asyncio.Lock()
        #: The reload generations (data, model) this worker's state reflects.
        self.seen: dict[str, int] = store.generations() if store is not None else {}
        self._number(self.seen)

    def _number(self, generations: dict[str, int]) -> None:
        """With a store, number the state 1 + the reloads recorded there, so that every worker
        says the same version, one started (or restarted by uvicorn) after a reload too; it
        would otherwise say 1 and never follow, having seen that reload already."""
        if self.store is None:
            return
        version = 1 + sum(generations.values())
        if self.state.version != version:
            self.state = dataclasses.replace(self.state, version=version)

    async def reload(self, what: str) -> tuple[ServingState, float]:
        """Build a new state off the event loop (``what``: 'data' or 'model') and swap it in.

        Reloads are serialized. On any failure the current state stays and ReloadRefused says
        why; on success the other workers are told (the generation counter).
        """
        import anyio.to_thread

        async with self._lock:
            started = time.perf_counter()
            await self._reload(what)
            if self.store is not None:
                self.seen = await anyio.to_thread.run_sync(self.store.bump_generation, what)
                self._number(self.seen)
            return self.state, time.perf_counter() - started

    async def follow(self) -> bool:
        """Catch up with a reload another worker made; whether this one reloaded."""
        import anyio.to_thread

        if self.store is None:
            return False
        async with self._lock:
            current = await anyio.to_thread.run_sync(self.store.generations)
            if current == self.seen:
                return False
            what = "data" if current.get("data") != self.seen.get("data") else "model"
            try:
                await self._reload(what)
            except ReloadRefused as exc:  # the other worker managed; retrying would not help
                log.error("following another worker's %s reload: %s", what, exc)
            else:
                self._number(current)
            self.seen = current
            return True

    async def _reload(self, what: str) -> ServingState:
        import anyio.to_thread

        old = self.state
        try:
            new = await anyio.to_thread.run_sync(
                partial(_rebuild, self.settings, old, what == "data")
            )
        except Exception as exc:
            reason = str(exc) if isinstance(exc, DeepCartError) else f"{type(exc).__name__}: {exc}"
            raise ReloadRefused(
                f"{what} reload refused, still serving version {old.version}: {reason}"
            ) from None
        self.state = new  # the swap: one reference assignment
        freeze_heap()
        return new


def freeze_heap() -> None:
    """Keep every object alive now out of the garbage collector's future collections.

    The service's long-lived objects (its modules and the state's lookups: 160,000 objects for
    the benchmark's small dataset, more with a large catalog) made each full collection a 50 to
    120 ms pause of the event loop: the round trip's p99. Frozen (``gc.freeze``), they are
    never scanned again, yet still freed by reference counting when a reload drops them (a
    state holds no reference cycles). Young garbage is collected first, not frozen with them.
    Called once the state is loaded and after every reload; ``gc.unfreeze`` at shutdown.
    """
    gc.collect(1)
    gc.freeze()


def _rebuild(settings: Settings, old: ServingState, data: bool) -> ServingState:
    if data:
        return build_state(settings, load_dataset(settings), old.version + 1)
    models, paths, items = _load_models(settings, old.dataset)
    if items.to_list() != old.item_ids:  # another item index: every lookup is rebuilt
        return _assemble(settings, old.dataset, models, paths, items, old.version + 1)
    # The same items (a retrain on the same data): the lookups stay, only the models change.
    new = dataclasses.replace(
        old,
        version=old.version + 1,
        loaded_at=int(time.time() * 1000),
        models=models,
        model_dirs=paths,
        _cache={},
    )
    _smoke_test(new)
    return new
