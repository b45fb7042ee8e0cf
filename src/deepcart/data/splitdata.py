"""A split loaded as matrices: what training and evaluation both start from."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import scipy.sparse as sp

from deepcart.data.matrix import IdIndex, interactions
from deepcart.data.split import Split


@dataclass
class EvalSet:
    """Users to evaluate, their input rows (what the model is given) and check rows (truth)."""

    users: IdIndex
    inputs: sp.csr_matrix
    check: sp.csr_matrix

    @property
    def n_users(self) -> int:
        return len(self.users)


@dataclass
class SplitData:
    split: Split
    items: IdIndex
    train_users: IdIndex
    train: sp.csr_matrix
    val: EvalSet
    test: EvalSet

    def describe(self) -> str:
        x = self.train
        mem = x.data.nbytes + x.indices.nbytes + x.indptr.nbytes
        dense = x.shape[0] * x.shape[1] * 4
        return (
            f"{x.shape[0]:,} users x {x.shape[1]:,} items, {x.nnz:,} ratings "
            f"(sparse matrix {mem / 1e6:,.1f} MB; dense would be {dense / 1e6:,.0f} MB)"
        )


def _eval_set(split: Split, part: str, items: IdIndex) -> EvalSet:
    inp, chk = split.read(f"{part}_input"), split.read(f"{part}_check")
    users = IdIndex.from_values(
        pa.chunked_array(inp["user_id"].chunks + chk["user_id"].chunks, type=pa.string())
    )
    x_in, _ = interactions(inp, items, users)
    x_chk, _ = interactions(chk, items, users)
    return EvalSet(users=users, inputs=x_in, check=x_chk)


def load_split_data(split: Split) -> SplitData:
    train_table = split.read("train")
    items = IdIndex.from_values(train_table["parent_asin"])
    x, train_users = interactions(train_table, items)
    return SplitData(
        split=split,
        items=items,
        train_users=train_users,
        train=x,
        val=_eval_set(split, "val", items),
        test=_eval_set(split, "test", items),
    )
