"""Ids <-> indices: ``IdIndex.index_of`` and ``rating_rows`` (a new user's ratings as rows)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from deepcart.data.matrix import IdIndex, rating_rows
from deepcart.errors import InputError
from deepcart.models import create


@pytest.fixture
def items() -> IdIndex:
    return IdIndex.from_values(pa.array(["c", "a", "d", "b"]))  # sorted: a b c d


def test_rating_rows_maps_parent_asins_to_the_model_columns(items: IdIndex) -> None:
    x = rating_rows([{"c": 5.0, "a": 1}, {}, {"d": 3.5}], items)
    assert isinstance(x, sp.csr_matrix) and x.dtype == np.float32
    assert x.shape == (3, 4) and x.has_sorted_indices
    np.testing.assert_array_equal(
        x.toarray(), [[1.0, 0.0, 5.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.5]]
    )
    assert rating_rows([], items).shape == (0, 4)
    # Any iterable of users, a generator too.
    rows = rating_rows(({"a": 1.0 + i} for i in range(3)), items)
    assert rows.shape == (3, 4) and rows[:, 0].toarray().ravel().tolist() == [1.0, 2.0, 3.0]


def test_rating_rows_feed_recommend_and_the_rated_items_are_excluded(items: IdIndex) -> None:
    train = sp.csr_matrix(np.array([[5, 4, 0, 1], [4, 5, 1, 0], [0, 5, 4, 0]], np.float32))
    model = create("popular").fit(train)
    idx, _ = model.recommend(rating_rows([{"b": 5.0, "a": 2.0}], items), k=2)
    assert idx.tolist() == [[2, 3]]  # c and d: a and b were rated


@pytest.mark.parametrize(
    ("ratings", "message"),
    [
        ([{"a": 5.0}, {"zz": 4.0}], "ratings[1]: unknown parent_asin 'zz'; expected one of the 4"),
        ([{"a": "5"}], "ratings[0]['a']: expected a rating, a number from 1 to 5, got '5'"),
        ([{"a": float("nan")}], "ratings[0]['a']: expected a rating, a number from 1 to 5"),
        ([{"a": True}], "ratings[0]['a']: expected a rating, a number from 1 to 5"),
        ([{"b": 4}, {"a": 0}], "ratings[1]['a']: expected a rating, a number from 1 to 5, got 0"),
        ([{"a": 5.5}], "ratings[0]['a']: expected a rating, a number from 1 to 5, got 5.5"),
        (7, "ratings: expected a list with one {parent_asin: rating} mapping per user, got a int"),
        ([{3: 5.0}], "ratings[0]: expected parent_asin strings as keys, got 3"),
        ([["a", "b"]], "ratings[0]: expected a {parent_asin: rating} mapping, got list"),
        ({"a": 5.0}, "ratings: expected a list with one {parent_asin: rating} mapping per user"),
    ],
)
def test_rating_rows_errors_name_the_argument(
    items: IdIndex, ratings: object, message: str
) -> None:
    with pytest.raises(InputError) as err:
        rating_rows(ratings, items)  # type: ignore[arg-type]
    assert str(err.value).startswith(message)


def test_rating_rows_names_the_argument_it_is_given(items: IdIndex) -> None:
    with pytest.raises(InputError, match=r"^visitors\[0\]: unknown parent_asin 'x'"):
        rating_rows([{"x": 1.0}], items, name="visitors")


def test_index_of_one_id(items: IdIndex) -> None:
    assert [items.index_of(v) for v in ("a", "b", "c", "d")] == [0, 1, 2, 3]
    assert items.index_of("zz") == -1 and items.index_of("") == -1
    with pytest.raises(InputError, match="expected an id string, got int 3"):
        items.index_of(3)  # type: ignore[arg-type]
