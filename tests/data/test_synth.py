"""Tests for the synthetic Amazon Reviews 2023 category (deepcart.data.synth)."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from deepcart.data import synth
from deepcart.data.synth import META_FIELDS, REVIEW_FIELDS, SynthResult, synthesize
from deepcart.errors import InputError

SAMPLE_DIR = (
    Path(__file__).resolve().parents[3] / "shared/data/amazon/amazon2023_electronics_sample"
)

# The official key orders, written out here so a change in the module cannot hide a regression.
EXPECTED_REVIEW_KEYS = [
    "rating",
    "title",
    "text",
    "images",
    "asin",
    "parent_asin",
    "user_id",
    "timestamp",
    "helpful_vote",
    "verified_purchase",
]
EXPECTED_META_KEYS = [
    "main_category",
    "title",
    "average_rating",
    "rating_number",
    "features",
    "description",
    "price",
    "images",
    "videos",
    "store",
    "categories",
    "details",
    "parent_asin",
    "bought_together",
]
REVIEW_IMAGE_KEYS = ["small_image_url", "medium_image_url", "large_image_url", "attachment_type"]
META_IMAGE_KEYS = ["thumb", "large", "variant", "hi_res"]
VIDEO_KEYS = ["title", "url", "user_id"]

N_USERS, N_ITEMS, N_REVIEWS = 2000, 500, 8000


def _read(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="ascii") as fh:
        return [json.loads(line, object_pairs_hook=dict) for line in fh]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[SynthResult, list[dict], list[dict]]:
    out = tmp_path_factory.mktemp("synth")
    res = synthesize(
        out, n_users=N_USERS, n_items=N_ITEMS, n_reviews=N_REVIEWS, seed=3, progress=False
    )
    return res, _read(res.reviews_path), _read(res.meta_path)


def test_result_and_exact_counts(run) -> None:
    res, reviews, items = run
    assert res.reviews_path.name == "Electronics.jsonl.gz"
    assert res.meta_path.name == "meta_Electronics.jsonl.gz"
    assert (res.n_reviews, res.n_users, res.n_items) == (N_REVIEWS, N_USERS, N_ITEMS)
    assert len(reviews) == N_REVIEWS
    assert len({r["user_id"] for r in reviews}) == N_USERS
    assert len(items) == N_ITEMS
    assert len({m["parent_asin"] for m in items}) == N_ITEMS
    assert {r["parent_asin"] for r in reviews} <= {m["parent_asin"] for m in items}
    assert res.summary().startswith(
        f"Wrote {N_REVIEWS:,} reviews by {N_USERS:,} users of {N_ITEMS:,} items to "
    )
    assert str(res.reviews_path) in res.summary() and str(res.meta_path) in res.summary()


def test_review_fields_types_and_order(run) -> None:
    _, reviews, _ = run
    assert list(REVIEW_FIELDS) == EXPECTED_REVIEW_KEYS
    user_re = re.compile(r"^A[A-Z0-9]{27}$")
    asin_re = re.compile(r"^B0[A-Z0-9]{8}$")
    for r in reviews:
        assert list(r) == EXPECTED_REVIEW_KEYS
        assert type(r["rating"]) is float and r["rating"] in (1.0, 2.0, 3.0, 4.0, 5.0)
        assert type(r["title"]) is str and r["title"]
        assert type(r["text"]) is str and r["text"]
        assert type(r["images"]) is list
        for im in r["images"]:
            assert list(im) == REVIEW_IMAGE_KEYS
            assert im["attachment_type"] == "IMAGE"
            assert re.match(
                r"^https://[a-z.-]+/images/I/\w[\w+-]{9}L\._SL1600_\.jpg$", im["large_image_url"]
            )
        assert type(r["asin"]) is str and asin_re.match(r["asin"])
        assert type(r["parent_asin"]) is str and asin_re.match(r["parent_asin"])
        assert type(r["user_id"]) is str and user_re.match(r["user_id"])
        assert type(r["timestamp"]) is int
        assert type(r["helpful_vote"]) is int and r["helpful_vote"] >= 0
        assert type(r["verified_purchase"]) is bool


def test_meta_fields_types_and_order(run) -> None:
    _, _, items = run
    assert list(META_FIELDS) == EXPECTED_META_KEYS
    for m in items:
        assert list(m) == EXPECTED_META_KEYS
        assert m["main_category"] is None or type(m["main_category"]) is str
        assert type(m["title"]) is str and m["title"]
        assert type(m["average_rating"]) is float and 1.0 <= m["average_rating"] <= 5.0
        assert type(m["rating_number"]) is int and m["rating_number"] >= 1
        assert type(m["features"]) is list and all(type(f) is str for f in m["features"])
        assert type(m["description"]) is list and all(type(d) is str for d in m["description"])
        assert m["price"] is None or (type(m["price"]) is float and m["price"] > 0)
        assert type(m["images"]) is list and m["images"]
        assert m["images"][0]["variant"] == "MAIN"
        for im in m["images"]:
            assert list(im) == META_IMAGE_KEYS
            assert im["large"].startswith("https://m.media-amazon.com/images/I/")
            assert im["hi_res"] is None or im["hi_res"].endswith(".jpg")
        for v in m["videos"]:
            assert list(v) == VIDEO_KEYS and all(type(v[k]) is str for k in VIDEO_KEYS)
        assert m["store"] is None or type(m["store"]) is str
        assert type(m["categories"]) is list
        assert not m["categories"] or m["categories"][0] == "Electronics"
        assert type(m["details"]) is dict and "Date First Available" in m["details"]
        assert re.match(r"^B0[A-Z0-9]{8}$", m["parent_asin"])
        assert m["bought_together"] is None
    prices = [m["price"] for m in items]
    assert 0.3 < sum(p is None for p in prices) / len(prices) < 0.7


def test_key_order_matches_the_official_sample() -> None:
    reviews = SAMPLE_DIR / "Electronics.first500.reconstructed.jsonl"
    meta = SAMPLE_DIR / "meta_Electronics.first500.reconstructed.jsonl"
    if not (reviews.exists() and meta.exists()):
        pytest.skip(f"the staged real sample is absent ({SAMPLE_DIR}); hardcoded order checked")
    with open(reviews, encoding="utf-8") as fh:
        assert list(json.loads(fh.readline())) == list(REVIEW_FIELDS)
    with open(meta, encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    assert list(first) == list(META_FIELDS)
    assert list(first["images"][0]) == META_IMAGE_KEYS


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    kw = dict(n_users=60, n_items=40, n_reviews=900, progress=False)
    a = synthesize(tmp_path / "a", seed=7, **kw)
    b = synthesize(tmp_path / "b", seed=7, **kw)
    c = synthesize(tmp_path / "c", seed=8, **kw)
    assert a.reviews_path.read_bytes() == b.reviews_path.read_bytes()
    assert a.meta_path.read_bytes() == b.meta_path.read_bytes()
    assert a.reviews_path.read_bytes() != c.reviews_path.read_bytes()
    assert a.meta_path.read_bytes() != c.meta_path.read_bytes()
    # gzip header: no file name, mtime 0
    head = a.reviews_path.read_bytes()[:10]
    assert head[3] & 0x08 == 0 and head[4:8] == b"\0\0\0\0"


def test_j_shaped_ratings(run) -> None:
    _, reviews, _ = run
    hist = Counter(r["rating"] for r in reviews)
    share = {s: hist[s] / len(reviews) for s in (1.0, 2.0, 3.0, 4.0, 5.0)}
    assert max(share, key=share.get) == 5.0
    assert 0.5 < share[5.0] < 0.7
    assert share[1.0] > share[2.0]
    assert share[4.0] > share[3.0] > share[2.0]


def test_long_tail_of_items_and_users(run) -> None:
    _, reviews, _ = run
    per_item = np.array(sorted(Counter(r["parent_asin"] for r in reviews).values()))[::-1]
    assert per_item[: N_ITEMS // 10].sum() > 0.4 * N_REVIEWS
    per_user = np.array(list(Counter(r["user_id"] for r in reviews).values()))
    assert per_user.min() >= 1
    assert np.median(per_user) < per_user.mean() and per_user.max() > 5 * per_user.mean()


def test_bad_items_get_engagement_and_complaints(run) -> None:
    _, reviews, items = run
    ratings = defaultdict(list)
    for r in reviews:
        ratings[r["parent_asin"]].append(r["rating"])
    bad = {a for a, v in ratings.items() if len(v) >= 10 and np.mean(v) < 2.5}
    assert len(bad) >= 3
    meta = {m["parent_asin"]: m for m in items}
    assert all(meta[a]["average_rating"] < 3.0 for a in bad)
    for a, v in ratings.items():  # the meta average follows the reviews
        if len(v) >= 10:
            assert abs(meta[a]["average_rating"] - np.mean(v)) < 0.5
            assert meta[a]["rating_number"] >= len(v)


def test_duplicates_and_variant_asins(run) -> None:
    res, reviews, _ = run
    pairs = Counter((r["user_id"], r["parent_asin"]) for r in reviews)
    extra = sum(n - 1 for n in pairs.values())
    assert 0 < extra < 0.02 * N_REVIEWS
    assert extra == res.n_duplicates
    times = defaultdict(set)
    for r in reviews:
        times[(r["user_id"], r["parent_asin"])].add(r["timestamp"])
    assert all(len(times[p]) == n for p, n in pairs.items() if n > 1)
    same = sum(r["asin"] == r["parent_asin"] for r in reviews) / len(reviews)
    assert 0.3 < same < 0.7


def test_texts_fit_the_rating(run) -> None:
    _, reviews, _ = run
    complaint = re.compile(
        r"return|stopped|junk|waste|terrible|broke|died|garbage|avoid|defective|worst|regret",
        re.I,
    )

    def share(star: float) -> float:
        texts = [r["title"] + " " + r["text"] for r in reviews if r["rating"] == star]
        return sum(bool(complaint.search(t)) for t in texts) / len(texts)

    assert share(1.0) > 0.7
    assert share(5.0) < 0.05
    low = {r["text"] for r in reviews if r["rating"] == 1.0}
    high = {r["text"] for r in reviews if r["rating"] == 5.0}
    assert not low & high
    assert len({r["text"] for r in reviews}) > 0.8 * len(reviews)  # diverse
    n_sentences = [len(re.findall(r"[.!?](?:\s|$)", r["text"])) for r in reviews]
    assert min(n_sentences) >= 1 and max(n_sentences) <= 6
    mean_len = np.mean([len(json.dumps(r)) for r in reviews])
    assert 300 < mean_len < 700


def test_other_fields_look_real(run) -> None:
    _, reviews, _ = run
    votes = np.array([r["helpful_vote"] for r in reviews])
    assert (votes == 0).mean() > 0.5 and votes.max() >= 5
    assert 0.75 < np.mean([r["verified_purchase"] for r in reviews]) < 0.98
    assert 0.0 < np.mean([bool(r["images"]) for r in reviews]) < 0.06
    ts = np.array([r["timestamp"] for r in reviews])
    years = (ts / 1000 / 86400 / 365.25 + 1970).astype(int)
    assert years.min() >= 2005 and years.max() <= 2023
    assert (years >= 2018).mean() > (years < 2018).mean()  # volume grows
    assert (ts % 1000 != 0).mean() > 0.9  # millisecond precision


def test_item_cooccurrence_beats_popularity(run) -> None:
    """Leave-last-out HR@10: item-item cosine co-occurrence must beat plain popularity."""
    _, reviews, _ = run
    users = {u: i for i, u in enumerate(sorted({r["user_id"] for r in reviews}))}
    items = {a: i for i, a in enumerate(sorted({r["parent_asin"] for r in reviews}))}
    x = np.zeros((len(users), len(items)))
    last: dict[int, tuple[int, int]] = {}
    for r in reviews:
        u, i = users[r["user_id"]], items[r["parent_asin"]]
        x[u, i] = 1.0
        if r["timestamp"] > last.get(u, (-1, -1))[0]:
            last[u] = (r["timestamp"], i)
    test = np.array([u for u in last if x[u].sum() >= 3])
    held = np.array([last[u][1] for u in test])
    x[test, held] = 0.0
    co = x.T @ x
    norm = np.sqrt(np.diag(co)) + 1e-9
    sim = co / norm[:, None] / norm[None, :]
    np.fill_diagonal(sim, 0.0)

    def hit_rate(scores: np.ndarray) -> float:
        scores = np.where(x[test] > 0, -np.inf, scores)
        top = np.argsort(-scores, axis=1)[:, :10]
        return float((top == held[:, None]).any(axis=1).mean())

    knn = hit_rate(x[test] @ sim)
    pop = hit_rate(np.tile(x.sum(axis=0), (test.size, 1)))
    assert knn > 1.1 * pop


def test_many_blocks_and_tiny_shapes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(synth, "_BLOCK_REVIEWS", 300)  # force many blocks
    res = synthesize(tmp_path / "m", n_users=100, n_items=50, n_reviews=2000, progress=False)
    reviews = _read(res.reviews_path)
    assert len(reviews) == 2000 and len({r["user_id"] for r in reviews}) == 100
    # every pair possible, nothing left over: each user reviews each item once (or a duplicate)
    res = synthesize(tmp_path / "f", n_users=3, n_items=4, n_reviews=12, progress=False)
    assert len(_read(res.reviews_path)) == 12
    res = synthesize(tmp_path / "one", n_users=1, n_items=1, n_reviews=1, progress=False)
    assert len(_read(res.reviews_path)) == 1 and len(_read(res.meta_path)) == 1


def test_other_category_name(tmp_path: Path) -> None:
    cat = "Cell_Phones_and_Accessories"
    res = synthesize(tmp_path, category=cat, n_users=5, n_items=5, n_reviews=10, progress=False)
    assert res.reviews_path == tmp_path / "Cell_Phones_and_Accessories.jsonl.gz"
    assert res.meta_path == tmp_path / "meta_Cell_Phones_and_Accessories.jsonl.gz"
    cats = [m["categories"] for m in _read(res.meta_path) if m["categories"]]
    assert all(c[0] == "Cell Phones and Accessories" for c in cats)


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [
        ({"n_users": 0}, "--users"),
        ({"n_users": 2.5}, "--users"),
        ({"n_items": 0}, "--items"),
        ({"n_items": True}, "--items"),
        ({"n_users": 10, "n_reviews": 9}, "--reviews"),
        ({"n_users": 2, "n_items": 2, "n_reviews": 5}, "--reviews"),
        ({"category": "../etc"}, "--category"),
        ({"category": ""}, "--category"),
        ({"category": "Elec tronics"}, "--category"),
        ({"seed": -1}, "--seed"),
    ],
)
def test_bad_arguments_name_the_flag(tmp_path: Path, kwargs: dict, flag: str) -> None:
    args = {"n_users": 5, "n_items": 5, "n_reviews": 10, "progress": False, **kwargs}
    with pytest.raises(InputError, match=re.escape(flag)):
        synthesize(tmp_path, **args)
    assert list(tmp_path.iterdir()) == []


def test_output_dir_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(InputError, match="--output-dir"):
        synthesize(target, n_users=5, n_items=5, n_reviews=10, progress=False)


def test_atomic_no_leftovers(tmp_path: Path, monkeypatch) -> None:
    res = synthesize(tmp_path, n_users=20, n_items=10, n_reviews=100, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [res.reviews_path.name, res.meta_path.name]
    )

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    out = tmp_path / "failed"
    monkeypatch.setattr(synth, "_meta_chunks", boom)  # fail while writing the second file
    with pytest.raises(RuntimeError):
        synthesize(out, n_users=20, n_items=10, n_reviews=100, progress=False)
    assert list(out.iterdir()) == []  # no temp files, and no reviews without their meta

    out = tmp_path / "failed2"
    monkeypatch.setattr(synth._ReviewBlock, "lines", boom)  # fail while writing reviews
    with pytest.raises(RuntimeError):
        synthesize(out, n_users=20, n_items=10, n_reviews=100, progress=False)
    assert list(out.iterdir()) == []


def test_progress_bar(tmp_path: Path, capsys) -> None:
    synthesize(tmp_path, n_users=20, n_items=10, n_reviews=100, progress=True)
    assert "reviews" in capsys.readouterr().err


def test_a_folder_in_place_of_the_reviews_file_writes_neither(tmp_path: Path) -> None:
    # The meta file used to land before the reviews' rename failed: half a category.
    (tmp_path / "Electronics.jsonl.gz").mkdir()
    with pytest.raises(InputError, match=r"Electronics\.jsonl\.gz: Is a directory"):
        synthesize(tmp_path, n_users=5, n_items=5, n_reviews=10, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["Electronics.jsonl.gz"]
