"""Ids <-> indices and CSR matrices: the edge between tables of ids and models of integers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp


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
        idx = pc.index_in(values, value_set=self.ids)
        return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64)

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
