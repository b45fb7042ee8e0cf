"""Every endpoint through TestClient: answers, fold-in, cold start, limits and error paths."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from deepcart.serve.api import create_app, get_store
from deepcart.serve.schemas import MAX_K, MAX_N, MAX_USERS
from deepcart.serve.store import StoreError

from .conftest import TAG, World, admin

ITEM_FIELDS = {"parent_asin", "title", "price", "average_rating", "image", "score", "fallback"}


def _training_items(world: World, user: str) -> set[str]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(world.data_dir / TAG / "splits" / "none" / "train.parquet")
    return set(t.filter(pc.equal(t["user_id"], user))["parent_asin"].to_pylist())


def _message(resp, status: int = 422) -> str:  # noqa: ANN001
    """The ``message`` of an error answer, after checking the one shape every error has."""
    assert resp.status_code == status, resp.text
    assert "Traceback" not in resp.text
    body = resp.json()
    assert set(body) == {"message", "detail"}, body
    assert isinstance(body["message"], str) and body["message"]
    if status == 422:  # the problems, the first of which the message names
        assert body["detail"] and {"loc", "name", "msg"} <= set(body["detail"][0])
        assert body["message"].startswith(body["detail"][0]["name"] + ": ")
    else:
        assert body["detail"] == body["message"]
    return body["message"]


# ------------------------------------------------------------------------------ reading


def test_health_and_docs(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["version"] == 1
    assert body["data_tag"] == TAG and body["model"] == "als"
    assert body["modes"] == ["best", "worst"] and body["users"] > 100
    assert client.get("/docs").status_code == 200
    head = client.head("/health")  # a load balancer's probe
    assert head.status_code == 200 and head.content == b""
    assert head.headers["x-deepcart-version"] == "1"
    spec = client.get("/openapi.json").json()
    assert "/recommendations" in spec["paths"] and "/users/{user_id}/reviews" in spec["paths"]


def test_random_and_check_users(client: TestClient, world: World) -> None:
    users = client.get("/random_users", params={"n": 7}).json()
    assert len(users) == 7 == len(set(users)) and set(users) <= set(world.users)
    assert client.get("/random_users").status_code == 200  # n defaults to 5
    everyone = client.get("/random_users", params={"n": MAX_N}).json()
    assert sorted(everyone) == world.users  # fewer users than n: all of them
    checked = client.get("/check_users", params={"users": f"{users[0]},NOBODY1"}).json()
    assert checked == {users[0]: True, "NOBODY1": False}
    assert "n:" in _message(client.get("/random_users", params={"n": 0}))
    assert "n:" in _message(client.get("/random_users", params={"n": MAX_N + 1}))
    assert "n:" in _message(client.get("/random_users", params={"n": "many"}))


def test_recommendations_shape_and_exclusion(client: TestClient, world: World) -> None:
    a, b = world.users[:2]
    resp = client.get("/recommendations", params={"users": f"{a},{b},{a}", "k": 4})
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert list(body) == [a, b]  # order kept, duplicates dropped
    for user, recs in body.items():
        assert len(recs) == 4
        assert all(set(r) == ITEM_FIELDS for r in recs)
        assert not any(r["fallback"] for r in recs)
        scores = [r["score"] for r in recs]
        assert scores == sorted(scores, reverse=True)
        assert not {r["parent_asin"] for r in recs} & _training_items(world, user)


def test_worst_mode_carries_reviews_and_engaged_items_only(
    client: TestClient, world: World
) -> None:
    user = world.users[3]
    recs = client.get(f"/users/{user}/recommendations", params={"mode": "worst", "k": 5}).json()
    assert recs["mode"] == "worst" and recs["known"] and not recs["fallback"]
    assert recs["items"]
    for item in recs["items"]:
        assert set(item) == ITEM_FIELDS | {"worst_review"}
        detail = client.get(f"/items/{item['parent_asin']}").json()
        assert detail["ratings"] >= 10  # min_engagement
        if item["worst_review"] is not None:
            assert item["worst_review"]["rating"] <= 2
            assert item["worst_review"] == detail["worst_review"]
    assert not {i["parent_asin"] for i in recs["items"]} & _training_items(world, user)


def test_cold_start_is_flagged_fallback(client: TestClient) -> None:
    body = client.get("/users/NEWVISITOR1/recommendations", params={"k": 5}).json()
    assert body["fallback"] is True and body["known"] is False
    assert len(body["items"]) == 5 and all(i["fallback"] for i in body["items"])
    multi = client.get("/recommendations", params={"users": "NEWVISITOR1", "k": 5}).json()
    assert [i["parent_asin"] for i in multi["NEWVISITOR1"]] == [
        i["parent_asin"] for i in body["items"]
    ]
    worst = client.get("/users/NEWVISITOR1/recommendations", params={"mode": "worst"}).json()
    assert worst["fallback"] is True
    # worst-rated first among engaged items: the Bayesian averages rise down the list
    averages = [6 - i["score"] for i in worst["items"]]
    assert averages == sorted(averages)
    for item in worst["items"]:
        assert client.get(f"/items/{item['parent_asin']}").json()["ratings"] >= 10


def test_worst_mode_without_a_low_rating_to_go_on_is_the_cold_start_list(
    client: TestClient, world: World
) -> None:
    """The worst-mode model (als, implicit) learns from low ratings only: a user without one,
    or with low ratings only of products no one else rated low, used to get a tie of zero
    scores in index order (well-rated products as "what you would hate most"), flagged as
    their own list. They get the cold-start list instead, without what they rated."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    train = pq.read_table(world.data_dir / TAG / "splits" / "none" / "train.parquet")
    low = train.filter(pc.less_equal(train["rating"], 2))
    everybody = client.get("/users/NOBODY_YET/recommendations", params={"mode": "worst"}).json()
    cold = [i["parent_asin"] for i in everybody["items"]]

    def worst(user: str) -> dict:
        return client.get(f"/users/{user}/recommendations", params={"mode": "worst"}).json()

    # A training user with high ratings only.
    happy = sorted(set(train["user_id"].to_pylist()) - set(low["user_id"].to_pylist()))[0]
    body = worst(happy)
    assert body["known"] and body["fallback"] and all(i["fallback"] for i in body["items"])
    mine = _training_items(world, happy)
    assert [i["parent_asin"] for i in body["items"]] == [a for a in cold if a not in mine][:10]

    # A visitor whose one low rating is of a product no one rated low in training.
    never_low = sorted(set(train["parent_asin"].to_pylist()) - set(low["parent_asin"].to_pylist()))
    visitor = "HATES_AN_UNLOVED_ITEM"
    review = {"parent_asin": never_low[0], "rating": 1}
    assert client.post(f"/users/{visitor}/reviews", json=review).status_code == 201
    body = worst(visitor)
    assert body["fallback"] and not body["known"]
    assert [i["parent_asin"] for i in body["items"]] == [a for a in cold if a != never_low[0]][:10]
    # Best mode reads every rating: the same visitor's best list is their own.
    best = client.get(f"/users/{visitor}/recommendations").json()
    assert best["fallback"] is False

    # A low rating of a product others rated low too: the visitor's own list.
    review = {"parent_asin": cold[0], "rating": 1}
    assert client.post(f"/users/{visitor}/reviews", json=review).status_code == 201
    body = worst(visitor)
    assert body["fallback"] is False and not any(i["fallback"] for i in body["items"])
    assert not {cold[0], never_low[0]} & {i["parent_asin"] for i in body["items"]}


def test_items(client: TestClient, world: World) -> None:
    item = client.get(f"/items/{world.items[0]}").json()
    assert item["parent_asin"] == world.items[0] and item["ratings"] > 0
    assert isinstance(item["categories"], list)
    assert "parent_asin" in _message(client.get("/items/B000000000"), 404)
    assert "parent_asin" in _message(client.get("/items/bad%20id"))


# ------------------------------------------------------------------------------ limits


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"users": "A", "k": 0}, "k:"),
        ({"users": "A", "k": MAX_K + 1}, "k:"),
        ({"users": "A", "k": "ten"}, "k:"),
        ({"users": "A", "mode": "meh"}, "mode:"),
        ({}, "users:"),
        ({"users": ""}, "users:"),
        ({"users": "A,,B"}, "users:"),
        ({"users": "a b"}, "users:"),
        ({"users": "x" * 129}, "users:"),
        ({"users": ",".join(f"U{i}" for i in range(MAX_USERS + 1))}, "users:"),
    ],
)
def test_bad_recommendation_queries_are_422_naming_the_parameter(
    client: TestClient, params: dict, name: str
) -> None:
    assert _message(client.get("/recommendations", params=params)).startswith(name)


def test_bad_user_ids_in_paths(client: TestClient) -> None:
    assert _message(client.get("/users/a%20b/recommendations")).startswith("user_id:")
    assert _message(client.get("/users/a%20b/reviews")).startswith("user_id:")
    r = client.post("/users/a%20b/reviews", json={"parent_asin": "X", "rating": 5})
    assert _message(r).startswith("user_id:")


# ------------------------------------------------------------------------------ reviews


def test_review_folds_in_at_once(client: TestClient, world: World) -> None:
    user = "FOLDIN_NEW_USER"
    before = client.get(f"/users/{user}/recommendations", params={"k": 10}).json()
    assert before["fallback"]
    target = before["items"][0]["parent_asin"]
    resp = client.post(
        f"/users/{user}/reviews", json={"parent_asin": target, "rating": 5, "title": "Love it"}
    )
    assert resp.status_code == 201, resp.text
    stored = resp.json()
    assert stored["user_id"] == user and stored["rating"] == 5 and stored["timestamp"] > 0
    after = client.get(f"/users/{user}/recommendations", params={"k": 10}).json()
    assert after["fallback"] is False and after["known"] is False
    assert target not in {i["parent_asin"] for i in after["items"]}
    assert client.get("/check_users", params={"users": user}).json() == {user: True}


def test_review_changes_a_known_users_list(client: TestClient, world: World) -> None:
    user = world.users[10]
    before = client.get("/recommendations", params={"users": user, "k": 10}).json()[user]
    top = before[0]["parent_asin"]
    # Hating the current favourite changes the fold-in at once (no retraining).
    assert (
        client.post(f"/users/{user}/reviews", json={"parent_asin": top, "rating": 1}).status_code
        == 201
    )
    after = client.get("/recommendations", params={"users": user, "k": 10}).json()[user]
    assert top not in {i["parent_asin"] for i in after}
    assert [i["score"] for i in after] != [i["score"] for i in before]


def test_rerating_replaces_and_reviews_are_listed(client: TestClient, world: World) -> None:
    user = "RERATER"
    item = world.items[5]
    client.post(f"/users/{user}/reviews", json={"parent_asin": item, "rating": 2, "text": "meh"})
    client.post(f"/users/{user}/reviews", json={"parent_asin": item, "rating": 4})
    client.post(f"/users/{user}/reviews", json={"parent_asin": world.items[6], "rating": 3})
    body = client.get(f"/users/{user}/reviews").json()
    assert body["known"] is False and body["training_ratings"] == 0
    got = {r["parent_asin"]: r for r in body["reviews"]}
    assert len(body["reviews"]) == 2 and got[item]["rating"] == 4 and got[item]["text"] is None
    known = world.users[0]
    assert client.get(f"/users/{known}/reviews").json()["training_ratings"] > 0


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"parent_asin": "B0", "rating": 6}, "rating:"),
        ({"parent_asin": "B0", "rating": 0}, "rating:"),
        ({"parent_asin": "B0", "rating": 4.5}, "rating:"),
        ({"parent_asin": "B0", "rating": "five"}, "rating:"),
        ({"rating": 5}, "parent_asin:"),
        ({"parent_asin": "has space", "rating": 5}, "parent_asin:"),
        ({"parent_asin": "B0", "rating": 5, "title": "x" * 501}, "title:"),
        ({"parent_asin": "B0", "rating": 5, "extra": 1}, "extra:"),
        ({"parent_asin": "B0", "rating": True}, "rating:"),  # lax int would store 1 star
        ({"parent_asin": "B0", "rating": "4"}, "rating: Input should be a valid integer, not a s"),
        ({"parent_asin": "B0", "rating": " +4 "}, "rating:"),
        ({"parent_asin": "B0", "rating": 5, "title": "a\x00b"}, "title:"),  # PostgreSQL: 503
        ({"parent_asin": "B0", "rating": 5, "text": "\x00"}, "text:"),
        ([1, 2], "body:"),
    ],
)
def test_bad_reviews_are_422_naming_the_field(client: TestClient, body: object, name: str) -> None:
    assert _message(client.post("/users/U1/reviews", json=body)).startswith(name)


def test_review_of_unknown_item_or_not_json(client: TestClient) -> None:
    r = client.post("/users/U1/reviews", json={"parent_asin": "B000000000", "rating": 5})
    assert "unknown item" in _message(r, 404)
    r = client.post(
        "/users/U1/reviews", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert _message(r).startswith("body:")
    huge = {"parent_asin": "B0", "rating": 5, "text": "x" * 300_000}
    r = client.post("/users/U1/reviews", json=huge)
    assert "too large" in _message(r, 413)


def test_a_body_that_is_not_sent_as_json_says_so(client: TestClient, world: World) -> None:
    body = f'{{"parent_asin": "{world.items[0]}", "rating": 5}}'
    for ctype in ("text/plain", "application/x-www-form-urlencoded"):  # the latter: curl -d
        r = client.post("/users/NOTJSON1/reviews", content=body, headers={"content-type": ctype})
        message = _message(r)
        assert message.startswith("body: expected JSON (Content-Type: application/json)"), message
        assert ctype in message
    r = client.post("/users/NOTJSON1/reviews", content=body.encode())
    assert "content-type" not in r.request.headers
    assert _message(r).endswith("application/json), got no Content-Type")
    # bytes that are not UTF-8: FastAPI's 400, which now says what is wrong with what
    latin1 = f'{{"parent_asin": "{world.items[0]}", "rating": 5, "title": "caf\xe9"}}'
    r = client.post(
        "/users/NOTJSON1/reviews",
        content=latin1.encode("latin-1"),
        headers={"content-type": "application/json"},
    )
    assert _message(r, 400).startswith("body: not readable as JSON (not UTF-8")
    assert client.get("/users/NOTJSON1/reviews").json()["reviews"] == []


def test_a_chunked_body_over_the_limit_is_413_not_400(client: TestClient) -> None:
    def chunks():  # no Content-Length: the limit is found while the body is read
        yield b'{"parent_asin": "B0", "rating": 5, "text": "'
        for _ in range(40):
            yield b"x" * 10_000
        yield b'"}'

    r = client.post(
        "/users/U1/reviews", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert "too large" in _message(r, 413)


@pytest.mark.parametrize(
    ("path", "query", "name"),
    [
        ("/recommendations", "users=A1&users=A2&k=3", "users"),  # the last would silently win
        ("/users/A1/recommendations", "k=2&k=50", "k"),
        ("/random_users", "n=1&n=2", "n"),
    ],
)
def test_a_repeated_query_parameter_is_422(
    client: TestClient, path: str, query: str, name: str
) -> None:
    message = _message(client.get(f"{path}?{query}"))
    assert message.startswith(f"{name}: given 2 times; give it once"), message
    assert client.get("/?utm=a&utm=b").status_code == 200  # the demo's page: not an API call
    assert client.get("/health?utm=a&utm=b").status_code == 200  # not a parameter: ignored


@pytest.mark.parametrize(
    ("path", "query", "name", "takes"),
    [
        ("/recommendations", "users=A1&top_k=50", "top_k", "k, mode, users"),
        ("/users/A1/recommendations", "k=3&Mode=worst", "Mode", "k, mode"),
        ("/random_users", "count=20", "count", "n"),
        ("/check_users", "users=A1&user=A2", "user", "users"),
    ],
)
def test_an_unknown_query_parameter_is_422(
    client: TestClient, path: str, query: str, name: str, takes: str
) -> None:
    # A misspelt parameter would otherwise be answered with the default in its place.
    r = client.get(f"{path}?{query}")
    assert _message(r) == f"{name}: unknown query parameter; this endpoint takes {takes}"
    assert r.json()["detail"][0]["loc"] == ["query", name]
    # without the stranger the same request is answered
    known = "&".join(p for p in query.split("&") if not p.startswith(f"{name}="))
    assert client.get(f"{path}?{known}").status_code == 200
    # endpoints that take no query parameter ignore them (a tracking utm=...)
    assert client.get("/health?utm=x").status_code == 200
    assert client.get("/users/A1/reviews?utm=x").status_code == 200


def test_every_error_has_the_same_shape(client: TestClient) -> None:
    # Starlette's own answers too (an unknown path, a wrong method), with their headers kept
    assert _message(client.get("/no/such/path"), 404) == "Not Found"
    r = client.delete("/health")
    assert _message(r, 405) == "Method Not Allowed" and r.headers["allow"] == "GET, HEAD"
    # a path two routes share: both methods (Starlette named only the first route's)
    r = client.delete("/users/U1/reviews")
    assert _message(r, 405) == "Method Not Allowed" and r.headers["allow"] == "GET, POST"
    assert "no such file" in _message(client.get("/ui/__init__.py"), 404)
    assert _message(client.get("/random_users", params={"n": 0})).startswith("n: ")
    r = client.post("/reload_model")
    assert _message(r, 401) and r.headers["www-authenticate"] == "Bearer"


def test_the_spec_documents_the_error_shape(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    shapes = spec["components"]["schemas"]
    assert set(shapes["ErrorOut"]["required"]) == {"message", "detail"}
    assert set(shapes["ValidationErrorOut"]["required"]) == {"message", "detail"}
    assert "HTTPValidationError" not in shapes  # FastAPI's {"detail": [...]}: not what we send
    refs = set()
    for path in spec["paths"].values():
        for op in path.values():
            for code, answer in op["responses"].items():
                if code.startswith(("4", "5")):
                    refs.add(answer["content"]["application/json"]["schema"]["$ref"])
    assert refs == {"#/components/schemas/ErrorOut", "#/components/schemas/ValidationErrorOut"}


# ------------------------------------------------------------------------------ admin


def test_reload_needs_the_token(client: TestClient) -> None:
    assert "bearer" in _message(client.post("/reload_model"), 401).lower()
    r = client.post("/reload_data", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    version = client.get("/health").json()["version"]
    r = client.post("/reload_model", headers=admin())
    assert r.status_code == 200, r.text
    assert r.json()["version"] == version + 1 == client.get("/health").json()["version"]
    r = client.post("/reload_data", headers=admin())
    assert r.status_code == 200 and r.json()["status"] == "Data reloaded successfully."


def test_every_answer_from_the_state_names_its_version(client: TestClient) -> None:
    """``X-DeepCart-Version``: the state an answer came from, ``/health``'s version, new
    after a reload (a client caching product details knows they are stale)."""
    asin = client.get("/recommendations", params={"users": "A1", "k": 1}).json()["A1"][0]
    asin = asin["parent_asin"]
    calls = [
        lambda: client.get("/health"),
        lambda: client.get(f"/items/{asin}"),
        lambda: client.get("/users/A1/recommendations", params={"k": 2}),
        lambda: client.get("/recommendations", params={"users": "A1,A2"}),
        lambda: client.get("/users/A1/reviews"),
        lambda: client.post("/users/web-v/reviews", json={"parent_asin": asin, "rating": 4}),
    ]
    version = client.get("/health").json()["version"]
    for call in calls:
        r = call()
        assert r.status_code in (200, 201), r.text
        assert r.headers["x-deepcart-version"] == str(version), r.request.url
    assert client.post("/reload_data", headers=admin()).json()["version"] == version + 1
    for call in calls:
        assert call().headers["x-deepcart-version"] == str(version + 1)


def test_the_spec_documents_the_version_header(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    documented = {
        (path, method)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if any("X-DeepCart-Version" in (a.get("headers") or {}) for a in op["responses"].values())
    }
    assert documented == {
        ("/health", "get"), ("/random_users", "get"), ("/check_users", "get"),
        ("/users/{user_id}/reviews", "post"), ("/users/{user_id}/reviews", "get"),
        ("/recommendations", "get"), ("/users/{user_id}/recommendations", "get"),
        ("/items/{parent_asin}", "get"),
    }  # fmt: skip
    post = spec["paths"]["/users/{user_id}/reviews"]["post"]["responses"]
    assert "X-DeepCart-Version" in post["201"]["headers"]  # on the answer it is sent with


def test_reload_is_off_without_a_token(world: World, tmp_path: Path) -> None:
    app = create_app(world.settings(tmp_path / "r.db", admin_token=None))
    with TestClient(app) as c:
        assert "DEEPCART_ADMIN_TOKEN" in _message(c.post("/reload_model", headers=admin()), 403)


def _copy_models(world: World, dest: Path, worst: bool = True) -> Path:
    shutil.copytree(world.model_dir, dest)
    if not worst:
        shutil.rmtree(dest / TAG / "none" / "als-worst")
    return dest


@pytest.mark.parametrize("damage", ["arrays", "json", "items", "missing"])
def test_broken_model_is_refused_and_old_state_kept(
    world: World, tmp_path: Path, damage: str
) -> None:
    models = _copy_models(world, tmp_path / "models")
    app = create_app(world.settings(tmp_path / "r.db", model_dir=models))
    user = world.users[1]
    with TestClient(app) as c:
        before = c.get("/recommendations", params={"users": user}).json()
        path = models / TAG / "none" / "als"
        if damage == "arrays":
            (path / "arrays.npz").write_bytes(b"not a zip file")
        elif damage == "json":
            (path / "model.json").write_text("{oops")
        elif damage == "items":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({"parent_asin": ["X1", "X2"]}), path / "items.parquet")
        else:
            shutil.rmtree(path)
        r = c.post("/reload_model", headers=admin())
        detail = _message(r, 409)
        assert "refused" in detail and "still serving version 1" in detail
        assert c.get("/health").json()["version"] == 1
        assert c.get("/recommendations", params={"users": user}).json() == before


def test_worst_mode_without_its_model_names_the_train_command(world: World, tmp_path: Path) -> None:
    models = _copy_models(world, tmp_path / "models", worst=False)
    app = create_app(world.settings(tmp_path / "r.db", model_dir=models))
    with TestClient(app) as c:
        assert c.get("/health").json()["modes"] == ["best"]
        r = c.get("/recommendations", params={"users": world.users[0], "mode": "worst"})
        detail = _message(r, 409)
        assert "deepcart train" in detail and "--mode worst" in detail
        assert c.get("/recommendations", params={"users": world.users[0]}).status_code == 200


# ------------------------------------------------------------------------------ failures


def test_store_failure_and_unexpected_errors_are_json(world: World, tmp_path: Path) -> None:
    class Broken:
        is_sqlite = True

        def ratings(self, users):  # noqa: ANN001, ANN202
            raise StoreError("could not read reviews: disk I/O error")

    class Buggy(Broken):
        def ratings(self, users):  # noqa: ANN001, ANN202
            raise RuntimeError("boom")

    app = create_app(world.settings(tmp_path / "r.db"))
    with TestClient(app, raise_server_exceptions=False) as c:
        app.dependency_overrides[get_store] = lambda: Broken()
        r = c.get("/recommendations", params={"users": "A"})
        assert "disk I/O" in _message(r, 503)
        app.dependency_overrides[get_store] = lambda: Buggy()
        r = c.get("/recommendations", params={"users": "A"})
        assert _message(r, 500).startswith("internal error")
        assert "Traceback" not in r.text and "boom" not in r.text


def test_recommend_matches_the_library(client: TestClient, world: World) -> None:
    """The service's fold-in of a known user equals `deepcart recommend`'s list."""
    from deepcart.data.matrix import interactions
    from deepcart.data.split import load_split
    from deepcart.recommend import load_model_items

    model, items = load_model_items(world.model_dir / TAG / "none" / "als")
    train = load_split(world.data_dir, TAG, "none").read("train")
    x, users = interactions(train, items)
    user = world.users[42]
    row = x[int(users.lookup(__import__("pyarrow").array([user]))[0])]
    idx, _ = model.recommend(row, k=10)
    expected = items.ids.take(__import__("pyarrow").array(idx[0][idx[0] >= 0])).to_pylist()
    got = client.get("/recommendations", params={"users": user, "k": 10}).json()[user]
    assert [i["parent_asin"] for i in got] == expected
    assert np.isfinite([i["score"] for i in got]).all()


def test_a_worker_started_after_a_reload_says_the_same_version(
    world: World, tmp_path: Path
) -> None:
    # uvicorn starts (and restarts) workers on its own schedule: one that came up after a
    # reload said version 1 for good (it had seen that reload already, so never followed).
    db = tmp_path / "shared.db"
    with TestClient(create_app(world.settings(db))) as a:
        assert a.post("/reload_model", headers=admin()).json()["version"] == 2
        with TestClient(create_app(world.settings(db))) as late:
            assert late.get("/health").json()["version"] == 2 == a.get("/health").json()["version"]
            assert late.post("/reload_data", headers=admin()).json()["version"] == 3


def test_a_reload_reaches_the_other_workers(world: World, tmp_path: Path) -> None:
    """Two apps on one database stand for two worker processes."""
    import time

    db = tmp_path / "shared.db"
    with (
        TestClient(create_app(world.settings(db))) as a,
        TestClient(create_app(world.settings(db))) as b,
    ):
        assert a.post("/reload_model", headers=admin()).json()["version"] == 2
        deadline = time.monotonic() + 15
        while b.get("/health").json()["version"] != 2:
            assert time.monotonic() < deadline, "the other worker did not follow"
            time.sleep(0.2)
        assert b.post("/reload_data", headers=admin()).json()["version"] == 3
        deadline = time.monotonic() + 15
        while a.get("/health").json()["version"] != 3:
            assert time.monotonic() < deadline, "the first worker did not follow"
            time.sleep(0.2)
        time.sleep(1.5)  # nobody reloads twice for one request
        assert {a.get("/health").json()["version"], b.get("/health").json()["version"]} == {3}


def test_an_error_drawn_from_the_state_says_which_one(client: TestClient) -> None:
    """A 404 for an item the loaded dataset lacks depends on that state as much as a 200 does:
    a client caching details learns of a reload from it too (it had no version header)."""
    version = client.get("/health").headers["x-deepcart-version"]
    r = client.get("/items/B000000000")
    assert r.status_code == 404 and r.headers["x-deepcart-version"] == version
    r = client.post("/users/U1/reviews", json={"parent_asin": "B000000000", "rating": 5})
    assert r.status_code == 404 and r.headers["x-deepcart-version"] == version
    # an answer that never read the state has none (an unknown path)
    assert "x-deepcart-version" not in client.get("/no/such/path").headers
