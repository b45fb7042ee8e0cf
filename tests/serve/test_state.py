"""The serving state's list cache and the fold-in batcher: batched lists equal one-by-one
lists, one model call per batch, a re-rating replaces its cache entry, the heap is frozen."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from deepcart.errors import InputError
from deepcart.serve.state import FoldInBatcher, ModeUnavailable, ServingState, load_state

from .conftest import TAG, World


@pytest.fixture(scope="module")
def state(world: World, tmp_path_factory: pytest.TempPathFactory) -> ServingState:
    db = tmp_path_factory.mktemp("state-db") / "reviews.db"
    return load_state(world.settings(db))


def _fresh(state: ServingState) -> ServingState:
    state._cache.clear()
    return state


def _count_calls(state: ServingState, mode: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row counts of every model.recommend call in ``mode``."""
    model = state.models[mode]
    real = model.recommend
    calls: list[int] = []

    def counted(user_items, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(user_items.shape[0])
        return real(user_items, *args, **kwargs)

    monkeypatch.setattr(model, "recommend", counted)
    return calls


@pytest.mark.parametrize("mode", ["best", "worst"])
def test_a_batch_equals_one_by_one(state: ServingState, world: World, mode: str) -> None:
    item = world.items[3]
    asks = [
        (world.users[0], ()),
        ("NOBODY_AT_ALL", ()),  # the cold-start fallback, inside a batch
        (world.users[5], ((item, 1.0),)),  # a known user with a stored review
        ("NEW_WITH_REVIEWS", ((item, 5.0), (world.items[4], 2.0))),
        (world.users[9], ()),  # rated nothing low: nothing to go on in worst mode
    ]
    assert not (state.user_row(world.users[9], ()).data <= 2).any()
    batched = _fresh(state).recommend_many(asks, 7, mode)
    alone = []
    for user, stored in asks:
        alone.append(_fresh(state).recommend(user, stored, 7, mode))
    assert [r.fallback for r in batched] == [False, True, False, False, mode == "worst"]
    for b, a in zip(batched, alone, strict=True):
        assert [i["parent_asin"] for i in b.items] == [i["parent_asin"] for i in a.items]
        assert [i["score"] for i in b.items] == pytest.approx([i["score"] for i in a.items])


def test_the_fallback_flag_follows_the_rule_for_every_known_user(state: ServingState) -> None:
    """Worst mode: a known user gets the cold-start list exactly when their row gives the model
    nothing to go on, their own training row left out (:func:`deepcart.modes.nothing_to_go_on`);
    the users of both kinds are there."""
    from deepcart.modes import nothing_to_go_on

    model = state.models["worst"]
    rows = state.train
    lost = nothing_to_go_on(rows, rows, state.linked["worst"], "worst", model.feedback)
    asks = [(u, ()) for u in state.user_ids]
    flags = [r.fallback for r in _fresh(state).recommend_many(asks, 3, "worst")]
    assert flags == lost.tolist()
    assert 0 < sum(flags) < len(flags)


def test_cache_hits_and_a_rerating_replaces_the_entry(
    state: ServingState, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    user, item = world.users[2], world.items[1]
    calls = _count_calls(_fresh(state), "best", monkeypatch)
    first = state.recommend(user, (), 5, "best")
    assert state.recommend(user, (), 5, "best") == first and calls == [1]
    assert state.cached(user, (), 5, "best") == first
    assert state.cached(user, ((item, 1.0),), 5, "best") is None  # their reviews changed
    state.recommend(user, ((item, 1.0),), 5, "best")
    assert calls == [1, 1] and len(state._cache) == 1  # replaced, not added
    assert state.cached(user, (), 5, "best") is None


def test_the_batcher_folds_in_one_turns_misses_together(
    state: ServingState, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_calls(_fresh(state), "best", monkeypatch)
    users = world.users[20:26]

    async def run() -> list[list[str]]:
        batcher = FoldInBatcher()
        hit = batcher.submit(state, users[0], (), 10, "best")
        assert isinstance(hit, asyncio.Future)
        await hit  # alone: a batch of one
        assert not isinstance(batcher.submit(state, users[0], (), 10, "best"), asyncio.Future)
        futures = [batcher.submit(state, u, (), 10, "best") for u in users[1:]]
        futures.append(batcher.submit(state, users[1], (), 3, "best"))  # another k
        lists = await asyncio.gather(*futures)
        return [[i["parent_asin"] for i in r.items] for r in lists]

    got = asyncio.run(run())
    assert sorted(calls) == [1, 1, 5]
    for u, items in zip(users[1:], got, strict=False):
        expected = _fresh(state).recommend(u, (), 10, "best")
        assert items == [i["parent_asin"] for i in expected.items]
    assert got[-1] == got[0][:3]


def test_the_batcher_hands_errors_to_every_waiter(
    state: ServingState, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fresh(state)

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("model exploded")

    monkeypatch.setattr(state.models["best"], "recommend", broken)

    async def run() -> list[object]:
        batcher = FoldInBatcher()
        futures = [batcher.submit(state, u, (), 10, "best") for u in world.users[30:33]]
        return await asyncio.gather(*futures, return_exceptions=True)

    errors = asyncio.run(run())
    assert len(errors) == 3 and all(isinstance(e, RuntimeError) for e in errors)


def test_worst_mode_without_a_model_is_refused_before_queueing(
    world: World, tmp_path: Path
) -> None:
    only_best = load_state(world.settings(tmp_path / "r.db"))
    models = dict(only_best.models)
    models.pop("worst")
    object.__setattr__(only_best, "models", models)

    async def run() -> None:
        batcher = FoldInBatcher()
        with pytest.raises(ModeUnavailable, match="worst mode is off"):
            batcher.submit(only_best, world.users[0], (), 10, "worst")
        assert not batcher._pending

    asyncio.run(run())


def test_a_min_engagement_no_item_reaches_is_refused_at_load(world: World, tmp_path: Path) -> None:
    """Every worst-mode list would be empty (served as an empty cold-start list): refused with
    the line ``deepcart recommend`` gives, before serving anything."""
    with pytest.raises(InputError) as err:
        load_state(world.settings(tmp_path / "r.db", min_engagement=100_000))
    assert str(err.value).startswith("--min-engagement 100000: no item has that many ratings")
    assert str(err.value).endswith("; lower it")


def test_a_missing_production_split_gives_the_whole_train_command(
    world: World, tmp_path: Path
) -> None:
    """The command it gives trains into the model folder the service reads (it had no
    --model-dir: the model would have gone to ./models)."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(world.data_dir, data)
    shutil.rmtree(data / TAG / "splits" / "none")
    settings = world.settings(tmp_path / "r.db", data_dir=data)
    with pytest.raises(InputError) as err:
        load_state(settings)
    assert str(err.value).endswith(
        f"; make it (and the production model) with: deepcart train --data-tag {TAG} --type als "
        f"--split none --data-dir {data} --model-dir {world.model_dir}"
    )


def test_the_served_heap_is_frozen_and_thawed(world: World, tmp_path: Path) -> None:
    """The app freezes what it loaded (no full collection scans it again) and thaws at exit."""
    from fastapi.testclient import TestClient

    from deepcart.serve.api import create_app

    before = gc.get_freeze_count()
    with TestClient(create_app(world.settings(tmp_path / "r.db"))) as c:
        assert gc.get_freeze_count() > before + 10_000
        assert c.post("/reload_model", headers={"Authorization": "Bearer s3cret-token"}).is_success
        assert gc.get_freeze_count() > before + 10_000
    assert gc.get_freeze_count() == 0
