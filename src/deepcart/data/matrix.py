"""Ids <-> indices and CSR matrices: the edge between tables of ids and models of integers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from deepcart.data.schema import rating_value
from deepcart.errors import InputError


def positions(values: pa.Array | pa.ChunkedArray, of: pa.Array) -> np.ndarray:
    """The position of each of ``values`` in ``of`` (int64), -1 where it is not there."""
    idx = pc.index_in(values, value_set=of)
    return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64)


@dataclass(frozen=True)
class IdIndex:
    """A sorted array of unique string ids; position = index."""

    ids: pa.Array

    @classmethod
    def from_values(cls, values: pa.Array | pa.ChunkedArray) -> IdIndex:
        uniq = pc.unique(values)
        if isinstance(uniq, pa.ChunkedArray):
            uniq = uniq.combine_chunks()
        return cls(pc.take(uniq, pc.sort_indices(uniq)))

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Indices of ``values`` (int64), -1 where a value is unknown."""
        return positions(values, self.ids)

    def index_of(self, value: str) -> int:
        """The index of one id, -1 when it is unknown (``lookup`` for a single value)."""
        if not isinstance(value, str):
            raise InputError(f"expected an id string, got {type(value).__name__} {value!r}")
        return int(self.lookup(pa.array([value], pa.string()))[0])

    def to_list(self) -> list[str]:
        return self.ids.to_pylist()


def interactions(
    table: pa.Table,
    items: IdIndex,
    users: IdIndex | None = None,
    value: str | None = "rating",
) -> tuple[sp.csr_matrix, IdIndex]:
    """A (n_users, n_items) CSR of ``table``'s rows (values from column ``value``, or 1.0).

    Rows follow ``users`` (default: the table's own sorted users); rows of unknown users or
    items are left out.
    """
    users = users or IdIndex.from_values(table["user_id"])
    r = users.lookup(table["user_id"])
    c = items.lookup(table["parent_asin"])
    keep = (r >= 0) & (c >= 0)
    if value is None:
        data = np.ones(int(keep.sum()), dtype=np.float32)
    else:
        data = table[value].to_numpy().astype(np.float32)[keep]
    m = sp.csr_matrix((data, (r[keep], c[keep])), shape=(len(users), len(items)))
    m.sum_duplicates()
    m.sort_indices()
    return m, users


def rating_rows(
    ratings: Iterable[Mapping[str, float]], items: IdIndex, *, name: str = "ratings"
) -> sp.csr_matrix:
    """Interaction rows for users given by what they rated, ready for ``recommend`` (fold-in).

    ``ratings`` holds one ``{parent_asin: rating}`` mapping per user, ratings 1 to 5 as in the
    data (a list, or any iterable; an empty mapping: a user who rated nothing yet); ``items`` is
    the item index of the model (``SplitData.items``, or the second value of
    :func:`deepcart.recommend.load_model_items`). Returns a ``(number of users, len(items))``
    float32 CSR matrix with sorted indices, row ``i`` for the ``i``-th user.

    Raises :class:`~deepcart.errors.InputError` naming ``name`` and the user's position for a
    user that is not a mapping, a parent_asin the model does not know, or a rating that is not
    a number from 1 to 5.
    """
    if isinstance(ratings, Mapping) or isinstance(ratings, str | bytes):
        raise InputError(
            f"{name}: expected a list with one {{parent_asin: rating}} mapping per user, "
            f"got a {type(ratings).__name__}"
        )
    try:
        ratings = list(ratings)
    except TypeError:
        raise InputError(
            f"{name}: expected a list with one {{parent_asin: rating}} mapping per user, "
            f"got a {type(ratings).__name__}"
        ) from None
    asins: list[str] = []
    values: list[float] = []
    counts = np.zeros(len(ratings), dtype=np.int64)
    for i, user in enumerate(ratings):
        if not isinstance(user, Mapping):
            raise InputError(
                f"{name}[{i}]: expected a {{parent_asin: rating}} mapping, "
                f"got {type(user).__name__}"
            )
        for asin, rating in user.items():
            if not isinstance(asin, str):
                raise InputError(f"{name}[{i}]: expected parent_asin strings as keys, got {asin!r}")
            value = rating_value(rating)
            if value is None:
                raise InputError(
                    f"{name}[{i}][{asin!r}]: expected a rating, a number from 1 to 5, "
                    f"got {rating!r}"
                )
            asins.append(asin)
            values.append(value)
        counts[i] = len(user)
    cols = items.lookup(pa.array(asins, pa.string()))
    if (cols < 0).any():
        bad = int(np.flatnonzero(cols < 0)[0])
        user = int(np.searchsorted(np.cumsum(counts), bad, side="right"))
        raise InputError(
            f"{name}[{user}]: unknown parent_asin {asins[bad]!r}; expected one of the "
            f"{len(items):,} items the model was fit on"
        )
    rows = np.repeat(np.arange(len(ratings)), counts)
    m = sp.csr_matrix(
        (np.asarray(values, dtype=np.float32), (rows, cols)), shape=(len(ratings), len(items))
    )
    m.sort_indices()
    return m


def merged_row(
    x: sp.csr_matrix, row: int | None, updates: Iterable[tuple[int, float]]
) -> sp.csr_matrix:
    """Row ``row`` of ``x`` (None: an empty row) with ``updates`` merged over it, as 1 x n CSR.

    ``updates`` are (column index, rating) pairs: one of a column the row holds replaces its
    value, and of several updates of one column the last wins. The result is float32 with sorted
    indices. The service folds a user in from their training row merged with their stored
    reviews (:meth:`deepcart.serve.state.ServingState.user_row`), ``deepcart recommend
    --ratings`` with the ratings of its file: the same rows, made by this one function.
    """
    merged: dict[int, float] = {}
    if row is not None:
        s, e = x.indptr[row], x.indptr[row + 1]
        merged = dict(zip(x.indices[s:e].tolist(), x.data[s:e].tolist(), strict=True))
    for j, rating in updates:
        merged[j] = rating
    cols = np.fromiter(sorted(merged), dtype=np.int32, count=len(merged))
    vals = np.array([merged[c] for c in cols.tolist()], dtype=np.float32)
    return sp.csr_matrix(
        (vals, cols, np.array([0, len(cols)], dtype=np.int32)), shape=(1, x.shape[1])
    )
