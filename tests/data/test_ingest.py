"""Tests for `deepcart ingest`: every format, every kind of bad input, both modes, real files."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deepcart.cli import main
from deepcart.data.ingest import detect_format, ingest_file, output_path_for
from deepcart.data.schema import KIND_KEY, SOURCE_KEY, schema_for
from deepcart.errors import DataFormatError, InputError

TRUNCATED = "truncated gzip stream (compressed file ended before the end-of-stream marker)"
AMAZON = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "amazon"

# --------------------------------------------------------------------------- fixtures


def review23(i: int = 0, **over: object) -> dict:
    rec = {
        "rating": 4.0,
        "title": f"title {i}",
        "text": f"text {i} \u00e9\u4e2d\U0001f600",
        "images": [],
        "asin": f"B00000000{i % 10}",
        "parent_asin": f"B0000000{i:02d}",
        "user_id": f"AFKZENTNBQ7A7V7UXW5JJI6UG{i:03d}",
        "timestamp": 1658185117948 + i,
        "helpful_vote": i,
        "verified_purchase": i % 2 == 0,
    }
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not _DROP}


_DROP = object()


def meta23(i: int = 0, **over: object) -> dict:
    rec = {
        "main_category": "All Electronics",
        "title": f"item {i}",
        "average_rating": 3.5,
        "rating_number": 6,
        "features": ["f1", "f2"],
        "description": ["d1"],
        "price": 19.99,
        "images": [
            {"thumb": "t0", "large": f"https://img/{i}/L0.jpg", "variant": "MAIN", "hi_res": None},
            {"thumb": "t1", "large": f"https://img/{i}/L1.jpg", "variant": "PT01", "hi_res": "h"},
        ],
        "videos": [],
        "store": "Fat Shark",
        "categories": ["Electronics", "Television & Video"],
        "details": {"Brand": "X", "Best Sellers Rank": {"Speakers": 466}},
        "parent_asin": f"B00MCW7G{i:02d}",
        "bought_together": None,
    }
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not _DROP}


def review18(i: int = 0, **over: object) -> dict:
    rec = {
        "overall": 5.0,
        "verified": True,
        "reviewTime": "09 4, 2015",
        "reviewerID": f"ALJ66O1Y6SLH{i:02d}",
        "asin": f"B000K2PJ{i:02d}",
        "style": {"Size:": " Big Boys"},
        "reviewerName": "Tonya B.",
        "reviewText": "Great product and price!",
        "summary": "Five Stars",
        "unixReviewTime": 1441324800 + i,
    }
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not _DROP}


def meta18(i: int = 0, **over: object) -> dict:
    rec = {
        "category": ["Gift Cards", "Gift Cards"],
        "tech1": "",
        "description": ["A gift card."],
        "fit": "",
        "title": f"Gift Card {i}",
        "also_buy": [],
        "tech2": "",
        "brand": "Serendipity 3",
        "feature": ["never expires"],
        "rank": ">#1,019 in Gift Cards",
        "also_view": [],
        "details": {"ASIN: ": "B001BKEWF2"},
        "main_cat": "Grocery",
        "similar_item": "",
        "date": "May 15, 2009",
        "price": "$29.99",
        "asin": f"B001BKEW{i:02d}",
        "imageURL": ["https://img/small.jpg"],
        "imageURLHighRes": ["https://img/high.jpg"],
    }
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not _DROP}


def review14(i: int = 0, **over: object) -> dict:
    rec = {
        "reviewerID": f"A2IBPI20UZIR{i:02d}",
        "asin": "1384719342",
        "reviewerName": "cassandra",
        "helpful": [3, 5],
        "reviewText": "Not much to write about here.",
        "overall": 5.0,
        "summary": "good",
        "unixReviewTime": 1393545600,
        "reviewTime": "02 28, 2014",
    }
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not _DROP}


def meta14_literal(i: int = 0, **over: object) -> str:
    rec = {
        "asin": f"55559915{i:02d}",
        "title": "Memory of Trees",
        "price": 9.49,
        "imUrl": "http://ecx.images-amazon.com/images/I/51b5WDjdhPL._SX300_.jpg",
        "related": {"also_bought": ["B000002LRT"]},
        "salesRank": {"Music": 12345},
        "categories": [["CDs & Vinyl", "New Age", "Celtic New Age"], ["Digital Music"]],
        "description": "A fine album.",
    }
    rec.update(over)
    return repr({k: v for k, v in rec.items() if v is not _DROP})


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def write(directory: Path, name: str, content: str | bytes, gz: bool = False) -> Path:
    data = content.encode() if isinstance(content, str) else content
    path = directory / name
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "ingested"


def rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def assert_canonical(path: Path, kind: str, source_format: str) -> pa.Table:
    table = pq.read_table(path)
    assert table.schema.equals(schema_for(kind), check_metadata=False)
    meta = table.schema.metadata
    assert meta[KIND_KEY] == kind.encode()
    assert meta[SOURCE_KEY] == source_format.encode()
    return table


def listing(directory: Path) -> dict[str, float]:
    if not directory.exists():
        return {}
    return {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}


def error_of(path: Path, out: Path, **kwargs: object) -> DataFormatError:
    """The DataFormatError ingesting ``path`` raises; asserts nothing was written to ``out``."""
    before = listing(out)
    with pytest.raises(DataFormatError) as info:
        ingest_file(path, out, **kwargs)
    assert listing(out) == before, "output left behind after an error"
    return info.value


def reconciles(report) -> None:
    assert report.lines_read == report.rows_written + sum(report.skipped.values())
    assert pq.read_metadata(report.output).num_rows == report.rows_written


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("Electronics.jsonl.gz", "Electronics"),
        ("meta_Electronics.jsonl.gz", "meta_Electronics"),
        ("AMAZON_FASHION_5.json", "AMAZON_FASHION_5"),
        ("x.json.gz", "x"),
        ("ratings.csv.gz", "ratings"),
        ("ratings.csv", "ratings"),
        ("a.b.jsonl", "a.b"),
        ("data.parquet", "data"),
        ("weird.txt.gz", "weird"),
        ("noext", "noext"),
    ],
)
def test_output_name(name: str, stem: str) -> None:
    assert output_path_for(Path("raw") / name, "o") == Path("o") / f"{stem}.parquet"


# --------------------------------------------------------------------------- 2023


@pytest.mark.parametrize("gz", [False, True])
def test_reviews_2023(tmp_path: Path, out: Path, gz: bool) -> None:
    name = "Electronics.jsonl.gz" if gz else "Electronics.jsonl"
    src = write(tmp_path, name, jsonl([review23(i) for i in range(5)]), gz=gz)
    report = ingest_file(src, out)
    assert report.output == out / "Electronics.parquet"
    assert (report.kind, report.source_format) == ("reviews", "amazon2023-reviews")
    assert (report.lines_read, report.rows_written, report.skipped) == (5, 5, {})
    assert report.summary() == (
        f"{src} (amazon2023-reviews): read 5 lines, wrote 5 reviews, skipped 0 -> "
        f"{out / 'Electronics.parquet'}"
    )
    assert_canonical(report.output, "reviews", "amazon2023-reviews")
    got = rows(report.output)
    assert got[1] == {
        "user_id": "AFKZENTNBQ7A7V7UXW5JJI6UG001",
        "parent_asin": "B000000001",
        "rating": 4.0,
        "timestamp": 1658185117949,  # already ms: kept
        "title": "title 1",
        "text": "text 1 \u00e9\u4e2d\U0001f600",
        "helpful_vote": 1,
        "verified_purchase": False,
    }


def test_the_report_says_where_the_time_went(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path, "Electronics.jsonl.gz", jsonl([review23(i) for i in range(500)]), gz=True)
    stages = ingest_file(src, out).stages
    names = {"read_cpu", "scan_cpu", "parse_busy", "write_cpu", "write_busy"}
    assert set(stages) == names and all(v >= 0 for v in stages.values())
    assert stages["parse_busy"] > 0 and stages["write_busy"] > 0
    parquet = ingest_file(out / "Electronics.parquet", tmp_path / "again").stages
    assert set(parquet) == {"write_cpu", "write_busy"}


def test_gzip_is_detected_from_the_magic_bytes(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path, "reviews.data", jsonl([review23(0)]), gz=True)
    assert detect_format(src).compression == "gzip"
    assert detect_format(src).name == "amazon2023-reviews"
    assert ingest_file(src, out).rows_written == 1


def test_reviews_2023_prerelease_names(tmp_path: Path, out: Path) -> None:
    rec = review23(
        0,
        timestamp=_DROP,
        helpful_vote=_DROP,
        verified_purchase=_DROP,
        sortTimestamp=1600000000123,
        helpfulVotes=7,
        verifiedPurchase=True,
    )
    report = ingest_file(write(tmp_path, "r.jsonl", jsonl([rec])), out)
    (row,) = rows(report.output)
    assert row["timestamp"] == 1600000000123
    assert row["helpful_vote"] == 7
    assert row["verified_purchase"] is True


def test_meta_2023(tmp_path: Path, out: Path) -> None:
    recs = [
        meta23(0),
        meta23(1, price=None, images=[]),
        meta23(2, price="None", images=[{"thumb": "t", "large": None}, {"large": "L2"}]),
        meta23(3, main_category=None, store=None, description=[]),
    ]
    report = ingest_file(write(tmp_path, "meta_Electronics.jsonl", jsonl(recs)), out)
    assert (report.kind, report.source_format, report.rows_written) == (
        "items",
        "amazon2023-meta",
        4,
    )
    assert report.output.name == "meta_Electronics.parquet"
    assert_canonical(report.output, "items", "amazon2023-meta")
    got = rows(report.output)
    assert got[0] == {
        "parent_asin": "B00MCW7G00",
        "title": "item 0",
        "main_category": "All Electronics",
        "store": "Fat Shark",
        "price": 19.99,
        "average_rating": 3.5,
        "rating_number": 6,
        "categories": ["Electronics", "Television & Video"],
        "features": ["f1", "f2"],
        "description": ["d1"],
        "image": "https://img/0/L0.jpg",
    }
    assert (got[1]["price"], got[1]["image"]) == (None, None)
    assert (got[2]["price"], got[2]["image"]) == (None, "L2")  # "None" (HF loader) -> null
    assert (got[3]["main_category"], got[3]["store"], got[3]["description"]) == (None, None, [])


def test_unpaired_surrogate_escapes_are_bad_lines(tmp_path: Path, out: Path) -> None:
    recs = [meta18(0), meta18(1, price="\ud800"), meta18(2, title="x\udc00")]
    src = write(tmp_path, "m.json", jsonl(recs))
    report = ingest_file(src, out, on_bad_lines="skip")
    assert report.rows_written == 1
    assert report.skipped == {"bad_type:price": 1, "bad_type:title": 1}


def test_meta_2023_hugging_face_variants(tmp_path: Path, out: Path) -> None:
    rec = meta23(0, price="12.50", images={"large": ["HF_L0", "HF_L1"], "thumb": ["a", "b"]})
    (row,) = rows(ingest_file(write(tmp_path, "m.jsonl", jsonl([rec])), out).output)
    assert (row["price"], row["image"]) == (12.5, "HF_L0")


# --------------------------------------------------------------------------- 2018


def test_reviews_2018(tmp_path: Path, out: Path) -> None:
    recs = [
        review18(0, vote="1,234"),
        review18(1),  # no vote: no helpful votes
        review18(2, vote="35", verified=False, reviewText=_DROP),
        review18(3, vote=12),  # a number where a string is expected (slow path)
    ]
    report = ingest_file(write(tmp_path, "AMAZON_FASHION_5.json", jsonl(recs)), out)
    assert report.source_format == "amazon2018-reviews"
    assert_canonical(report.output, "reviews", "amazon2018-reviews")
    got = rows(report.output)
    assert got[0] == {
        "user_id": "ALJ66O1Y6SLH00",
        "parent_asin": "B000K2PJ00",
        "rating": 5.0,
        "timestamp": 1441324800000,  # seconds -> ms
        "title": "Five Stars",
        "text": "Great product and price!",
        "helpful_vote": 1234,
        "verified_purchase": True,
    }
    assert [r["helpful_vote"] for r in got] == [1234, 0, 35, 12]
    assert (got[2]["verified_purchase"], got[2]["text"]) == (False, None)


def test_meta_2018(tmp_path: Path, out: Path) -> None:
    recs = [
        meta18(0),
        meta18(1, price="", imageURLHighRes=[]),
        meta18(2, price="$10.00 - $20.00", imageURLHighRes=_DROP, imageURL=_DROP),
        meta18(3, price="$1,299.00"),
    ]
    report = ingest_file(write(tmp_path, "meta_Gift_Cards.json", jsonl(recs)), out)
    assert report.source_format == "amazon2018-meta"
    assert_canonical(report.output, "items", "amazon2018-meta")
    got = rows(report.output)
    assert got[0] == {
        "parent_asin": "B001BKEW00",
        "title": "Gift Card 0",
        "main_category": "Grocery",
        "store": "Serendipity 3",
        "price": 29.99,
        "average_rating": None,
        "rating_number": None,
        "categories": ["Gift Cards", "Gift Cards"],
        "features": ["never expires"],
        "description": ["A gift card."],
        "image": "https://img/high.jpg",
    }
    assert (got[1]["price"], got[1]["image"]) == (None, "https://img/small.jpg")
    assert (got[2]["price"], got[2]["image"]) == (None, None)
    assert got[3]["price"] == 1299.0


# --------------------------------------------------------------------------- 2014


def test_reviews_2014(tmp_path: Path, out: Path) -> None:
    recs = [review14(0), review14(1, helpful=[0, 0]), review14(2, helpful=[])]
    report = ingest_file(write(tmp_path, "reviews_Musical_Instruments_5.json", jsonl(recs)), out)
    assert report.source_format == "amazon2014-reviews"
    got = rows(report.output)
    assert got[0] == {
        "user_id": "A2IBPI20UZIR00",
        "parent_asin": "1384719342",
        "rating": 5.0,
        "timestamp": 1393545600000,
        "title": "good",
        "text": "Not much to write about here.",
        "helpful_vote": 3,
        "verified_purchase": None,
    }
    assert [r["helpful_vote"] for r in got] == [3, 0, None]


def test_meta_2014_python_literals_and_json_lines(tmp_path: Path, out: Path) -> None:
    json_line = json.dumps({"asin": "B000JSON01", "title": "A JSON line", "imUrl": "u"})
    lines = [
        meta14_literal(0),
        meta14_literal(1, description=_DROP, price=_DROP, categories=[[]], title="It's"),
        json_line,
        # literal_eval only: a tuple or an expression would need eval, and is refused
        meta14_literal(3, brand="Sony"),
    ]
    src = write(tmp_path, "meta_Digital_Music.json", "\n".join(lines) + "\n")
    report = ingest_file(src, out)
    assert (report.source_format, report.rows_written) == ("amazon2014-meta", 4)
    assert_canonical(report.output, "items", "amazon2014-meta")
    got = rows(report.output)
    assert got[0] == {
        "parent_asin": "5555991500",
        "title": "Memory of Trees",
        "main_category": "CDs & Vinyl",
        "store": None,
        "price": 9.49,
        "average_rating": None,
        "rating_number": None,
        "categories": ["CDs & Vinyl", "New Age", "Celtic New Age"],
        "features": None,
        "description": ["A fine album."],
        "image": "http://ecx.images-amazon.com/images/I/51b5WDjdhPL._SX300_.jpg",
    }
    assert (got[1]["title"], got[1]["price"], got[1]["description"]) == ("It's", None, None)
    assert (got[1]["categories"], got[1]["main_category"]) == ([], None)
    assert (got[2]["parent_asin"], got[2]["image"]) == ("B000JSON01", "u")
    assert got[3]["store"] == "Sony"


def test_meta_2014_code_is_never_evaluated(tmp_path: Path, out: Path) -> None:
    lines = [meta14_literal(0), "{'asin': __import__('os').getcwd()}", meta14_literal(2)]
    src = write(tmp_path, "meta.json", "\n".join(lines) + "\n")
    err = error_of(src, out)
    assert (err.line, err.reason.split(" (")[0]) == (
        2,
        "not a valid Python dict literal or JSON",
    )
    report = ingest_file(src, out, on_bad_lines="skip")
    assert (report.rows_written, report.skipped) == (2, {"invalid_literal": 1})


# --------------------------------------------------------------------------- ratings CSV


def test_csv_2014_headerless_user_first(tmp_path: Path, out: Path) -> None:
    text = "AKM1MP6P0OYPR,0132793040,5.0,1365811200\nA2CX7LUOHB2NDG,0321732944,4.0,1341100800\n"
    report = ingest_file(write(tmp_path, "ratings_Electronics.csv", text), out)
    assert (report.source_format, report.lines_read, report.rows_written) == ("ratings-csv", 2, 2)
    assert_canonical(report.output, "reviews", "ratings-csv")
    got = rows(report.output)
    assert got[0] == {
        "user_id": "AKM1MP6P0OYPR",
        "parent_asin": "0132793040",
        "rating": 5.0,
        "timestamp": 1365811200000,  # seconds -> ms
        "title": None,
        "text": None,
        "helpful_vote": None,
        "verified_purchase": None,
    }


def test_csv_2018_headerless_item_first(tmp_path: Path, out: Path) -> None:
    text = "B00005N7P0,AH2IFH762VY5U,5.0,1005177600\nB00005N7P0,AOSFI0JEYU4XM,3.0,1004486400\n"
    got = rows(ingest_file(write(tmp_path, "Magazine_Subscriptions.csv", text), out).output)
    assert [(r["user_id"], r["parent_asin"]) for r in got] == [
        ("AH2IFH762VY5U", "B00005N7P0"),
        ("AOSFI0JEYU4XM", "B00005N7P0"),
    ]
    assert got[1]["rating"] == 3.0


def test_csv_headerless_tie_broken_by_fewer_distinct_values(tmp_path: Path, out: Path) -> None:
    # neither column looks like an ASIN: the column with fewer distinct values holds items
    text = "".join(f"item{i % 2},user{i},4,1600000000000\n" for i in range(6))
    got = rows(ingest_file(write(tmp_path, "r.csv", text), out).output)
    assert {r["parent_asin"] for r in got} == {"item0", "item1"}
    assert got[0]["timestamp"] == 1600000000000  # ms kept


def test_csv_columns_override(tmp_path: Path, out: Path) -> None:
    text = "".join(f"item{i % 2},user{i},4,1600000000\n" for i in range(4))
    cols = ["user_id", "parent_asin", "rating", "timestamp"]
    got = rows(ingest_file(write(tmp_path, "r.csv", text), out, csv_columns=cols).output)
    assert got[0]["user_id"] == "item0"
    with pytest.raises(InputError, match="csv_columns"):
        ingest_file(write(tmp_path, "r.csv", text), out, csv_columns=["user_id", "rating"])


def _ingest_with_columns(src: Path, out: Path, columns: str) -> int:
    """``deepcart ingest SRC --csv-columns COLUMNS`` through the CLI; its exit code."""
    return main(["ingest", str(src), "--output-dir", str(out), "--quiet", "--csv-columns", columns])


def test_csv_columns_override_on_the_command_line(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path, "r.csv", "5.0,1600000000,B000000001,AUSER\n")
    rc = _ingest_with_columns(src, out, "rating,timestamp,parent_asin,user_id")
    assert rc == 0
    (row,) = rows(out / "r.parquet")
    assert (row["user_id"], row["parent_asin"], row["rating"]) == ("AUSER", "B000000001", 5.0)


def test_csv_columns_contradicting_the_header_is_an_error(
    tmp_path: Path, out: Path, capsys
) -> None:
    src = write(tmp_path, "h.csv", "user_id,parent_asin,rating,timestamp\nU1,ITEM1,5,1600000000\n")
    rc = _ingest_with_columns(src, out, "parent_asin,user_id,rating,timestamp")
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1
    assert err.startswith(f"deepcart: error: {src}:1: --csv-columns parent_asin,user_id,rating,")
    assert "header 'user_id,parent_asin,rating,timestamp'" in err
    assert "(columns user_id,parent_asin,rating,timestamp)" in err
    assert not out.exists() or not any(out.iterdir())


def test_csv_columns_agreeing_with_the_header(tmp_path: Path, out: Path) -> None:
    text = "item,user,rating,time,history\nB00JMDPK8S,AUSER1,3.0,1404402463,\n"
    src = write(tmp_path, "x.csv", text)
    cols = ["user_id", "parent_asin", "rating", "timestamp"]
    with pytest.raises(InputError, match="contradicts the CSV header"):
        ingest_file(src, out, csv_columns=cols)
    cols = ["parent_asin", "user_id", "rating", "timestamp"]
    (row,) = rows(ingest_file(src, out, csv_columns=cols).output)
    assert (row["user_id"], row["parent_asin"], row["timestamp"]) == (
        "AUSER1",
        "B00JMDPK8S",
        1404402463000,
    )


def test_csv_columns_name_the_columns_of_an_unknown_header(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path, "x.csv", "a,b,c,d\nU1,B000000001,4,1600000000\n")
    assert "has no column for user_id" in error_of(src, out).reason
    cols = ["user_id", "parent_asin", "rating", "timestamp"]
    report = ingest_file(src, out, csv_columns=cols)
    assert (report.lines_read, report.rows_written) == (1, 1)
    assert rows(report.output)[0]["user_id"] == "U1"


@pytest.mark.parametrize("name", ["r.jsonl", "r.parquet"])
def test_csv_columns_for_a_file_that_is_not_a_csv(tmp_path: Path, out: Path, name: str) -> None:
    src = write(tmp_path, "r.jsonl", jsonl([review23(0)]))
    if name.endswith(".parquet"):
        src = ingest_file(src, tmp_path / "pq").output
    cols = ["user_id", "parent_asin", "rating", "timestamp"]
    with pytest.raises(InputError) as info:
        ingest_file(src, out, csv_columns=cols)
    assert str(info.value).startswith(f"{src}: --csv-columns user_id,parent_asin,rating,timestamp")
    assert "is for a ratings CSV" in str(info.value)
    assert not out.exists()


@pytest.mark.parametrize(
    "header",
    [
        "user_id,parent_asin,rating,timestamp",
        "UserId,ItemId,rating,timestamp",
        "reviewerID,asin,overall,unixReviewTime",
    ],
)
def test_csv_with_header(tmp_path: Path, out: Path, header: str) -> None:
    text = f"{header}\nAFSKPY37N3C43SOI5IEXEK5JSIYA,B00JMDPK8S,3.0,1404402463000\n"
    report = ingest_file(write(tmp_path, "All_Beauty.csv", text), out)
    assert (report.lines_read, report.rows_written) == (1, 1)  # the header is not a line
    (row,) = rows(report.output)
    assert (row["user_id"], row["parent_asin"], row["rating"], row["timestamp"]) == (
        "AFSKPY37N3C43SOI5IEXEK5JSIYA",
        "B00JMDPK8S",
        3.0,
        1404402463000,
    )


def test_csv_header_in_another_order_with_history(tmp_path: Path, out: Path) -> None:
    text = (
        "item,rating,history,user,time\n"
        "B00JMDPK8S,3.0,,AUSER1,1404402463\n"
        "B01M7UMAUG,5.0,B00JMDPK8S,AUSER1,1508770624\n"
    )
    got = rows(ingest_file(write(tmp_path, "x.csv", text, gz=True), out).output)
    assert [(r["user_id"], r["parent_asin"], r["timestamp"]) for r in got] == [
        ("AUSER1", "B00JMDPK8S", 1404402463000),
        ("AUSER1", "B01M7UMAUG", 1508770624000),
    ]


def test_csv_header_without_a_needed_column(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path, "x.csv", "user,product,rating,timestamp\nA,B,5,1\n")
    err = error_of(src, out)
    assert err.line == 1
    assert "has no column for parent_asin" in err.reason


def test_csv_bad_rows(tmp_path: Path, out: Path) -> None:
    text = (
        "user_id,parent_asin,rating,timestamp\n"
        "U1,B000000001,5.0,1600000000000\n"
        "U2,B000000002,five,1600000000000\n"
        "U3,B000000003,4.0\n"
        "U4,B000000004,9,1600000000000\n"
        ",B000000005,4.0,1600000000000\n"
        "U6,B000000006,4.0,yesterday\n"
        "U7,B000000007,,1600000000000\n"
        "U8,B000000008,2.0,1600000000000\n"
    )
    src = write(tmp_path, "bad.csv", text)
    err = error_of(src, out)
    assert str(err) == f"{src}:3: rating 'five' is not a number"
    report = ingest_file(src, out, on_bad_lines="skip")
    assert report.rows_written == 2
    assert report.skipped == {
        "rating_not_a_number": 1,
        "wrong_field_count": 1,
        "rating_out_of_range": 1,
        "missing_field:user_id": 1,
        "bad_timestamp": 1,
        "missing_field:rating": 1,
    }
    reconciles(report)
    assert "rating_out_of_range 1" in report.summary()


def test_csv_stray_carriage_return(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path, "bad.csv", "U1,B000000001,5.0,1600000000\nU2,B00\r0000002,5.0,1\n")
    err = error_of(src, out)
    assert err.line == 2 and err.reason.startswith("not a valid CSV row")
    report = ingest_file(src, out, on_bad_lines="skip")
    assert (report.rows_written, report.skipped) == (1, {"invalid_csv": 1})


def test_csv_wrong_field_count_message(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path, "bad.csv", "U1,B000000001,5.0,1600000000\nU2,B000000002,5.0\n")
    assert str(error_of(src, out)) == f"{src}:2: expected 4 comma-separated fields, got 3"


@pytest.mark.parametrize("value", ["99999999999999999999", "1e30", "-9e15"])
def test_csv_timestamp_out_of_range(tmp_path: Path, out: Path, value: str) -> None:
    src = write(tmp_path, "ts.csv", f"U0,B000000000,5,1600000000\nU1,B000000001,5,{value}\n")
    err = error_of(src, out)
    assert str(err) == (
        f"{src}:2: timestamp '{value}' is out of range (Unix seconds or milliseconds, "
        "below 9e15 ms in absolute value)"
    )
    report = ingest_file(src, out, on_bad_lines="skip")
    assert (report.rows_written, report.skipped) == (1, {"timestamp_out_of_range": 1})
    reconciles(report)


def test_negative_timestamps_are_kept_in_csv_and_json(tmp_path: Path, out: Path) -> None:
    # before 1970 is a valid Unix time; a value below 1e11 is seconds (CSV and 2023 JSON alike)
    csv_src = write(tmp_path, "neg.csv", "U1,B000000001,5,-100\n")
    assert rows(ingest_file(csv_src, out).output)[0]["timestamp"] == -100_000
    json_src = write(tmp_path, "neg.jsonl", jsonl([review23(0, timestamp=-100)]))
    assert rows(ingest_file(json_src, out).output)[0]["timestamp"] == -100_000
    old_src = write(tmp_path, "neg18.json", jsonl([review18(0, unixReviewTime=-100)]))
    assert rows(ingest_file(old_src, out).output)[0]["timestamp"] == -100_000


# --------------------------------------------------------------------------- Parquet


def test_parquet_round_trip(tmp_path: Path, out: Path) -> None:
    first = ingest_file(write(tmp_path, "r.jsonl", jsonl([review23(i) for i in range(4)])), out)
    again = ingest_file(first.output, tmp_path / "again")
    assert (again.source_format, again.kind, again.rows_written) == ("parquet", "reviews", 4)
    assert pq.read_table(again.output).equals(pq.read_table(first.output))
    assert pq.read_schema(again.output).metadata[SOURCE_KEY] == b"parquet"


def test_parquet_foreign_types_are_cast(tmp_path: Path, out: Path) -> None:
    table = pa.table(
        {
            "user_id": ["u1", "u2"],
            "parent_asin": ["i1", "i2"],
            "rating": pa.array([5, 3], pa.int64()),
            "timestamp": pa.array([1, 2], pa.int64()),
            "title": ["a", None],
            "text": ["b", None],
            "helpful_vote": pa.array([1, 2], pa.int64()),
            "verified_purchase": [True, None],
            "extra": [1, 2],
        }
    )
    pq.write_table(table, tmp_path / "foreign.parquet")
    report = ingest_file(tmp_path / "foreign.parquet", out)
    got = assert_canonical(report.output, "reviews", "parquet")
    assert got.column("rating").to_pylist() == [5.0, 3.0]


def test_parquet_raw_2023_meta(tmp_path: Path, out: Path) -> None:
    src = tmp_path / "meta_raw.parquet"
    pq.write_table(pa.Table.from_pylist([meta23(0), meta23(1, price=None)]), src)
    report = ingest_file(src, out)
    assert (report.source_format, report.kind) == ("amazon2023-meta-parquet", "items")
    got = rows(report.output)
    assert (got[0]["image"], got[1]["price"]) == ("https://img/0/L0.jpg", None)


def test_parquet_validation(tmp_path: Path, out: Path) -> None:
    table = pa.table(
        {
            "user_id": ["u1", "u2", None],
            "parent_asin": ["i1", "i2", "i3"],
            "rating": [5.0, 7.0, 3.0],
            "timestamp": [1, 2, 3],
        }
    ).cast(
        pa.schema(
            [("user_id", pa.string()), ("parent_asin", pa.string())]
            + [("rating", pa.float64()), ("timestamp", pa.int64())]
        )
    )
    pq.write_table(table.replace_schema_metadata({KIND_KEY: b"reviews"}), tmp_path / "v.parquet")
    assert str(error_of(tmp_path / "v.parquet", out)) == (
        f"{tmp_path / 'v.parquet'}:2: rating 7.0 outside 1..5"
    )
    report = ingest_file(tmp_path / "v.parquet", out, on_bad_lines="skip")
    assert report.skipped == {"rating_out_of_range": 1, "missing_field:user_id": 1}
    assert "read 3 rows" in report.summary()
    reconciles(report)


def test_output_may_not_overwrite_the_input(tmp_path: Path) -> None:
    first = ingest_file(write(tmp_path, "r.jsonl", jsonl([review23(0)])), tmp_path / "o")
    with pytest.raises(InputError, match="overwrite the input"):
        ingest_file(first.output, tmp_path / "o")


# --------------------------------------------------------------------------- bad input


def seventeen_lines(bad_at: int, bad: str) -> str:
    lines = [json.dumps(review23(i)) for i in range(17)]
    lines[bad_at - 1] = bad
    return "\n".join(lines) + "\n"


def test_rating_out_of_range(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path, "x.jsonl", seventeen_lines(17, json.dumps(review23(16, rating=7.0))))
    err = error_of(src, out)
    assert str(err) == f"{src}:17: rating 7.0 outside 1..5"
    assert (err.path, err.line, err.reason) == (str(src), 17, "rating 7.0 outside 1..5")
    report = ingest_file(src, out, on_bad_lines="skip")
    assert (report.lines_read, report.rows_written) == (17, 16)
    assert report.skipped == {"rating_out_of_range": 1}
    reconciles(report)


@pytest.mark.parametrize(
    ("bad", "reason", "key"),
    [
        (
            '{"rating": 5.0 "title": "x"}',
            "not valid JSON (Expecting ',' delimiter: column 16)",
            "invalid_json",
        ),
        (
            '{"rating": 5.0, "title": "x"',
            "not valid JSON (Expecting ',' delimiter: column 29)",
            "invalid_json",
        ),
        ("[1, 2]", "not a JSON object (got list)", "not_an_object"),
        (
            json.dumps(review23(2, user_id=_DROP)),
            "missing required field 'user_id'",
            "missing_field:user_id",
        ),
        (
            json.dumps(review23(2, user_id="")),
            "missing required field 'user_id'",
            "missing_field:user_id",
        ),
        (
            json.dumps(review23(2, parent_asin=None)),
            "missing required field 'parent_asin'",
            "missing_field:parent_asin",
        ),
        (
            json.dumps(review23(2, rating=_DROP)),
            "missing required field 'rating'",
            "missing_field:rating",
        ),
        (
            json.dumps(review23(2, timestamp=_DROP)),
            "missing required field 'timestamp'",
            "missing_field:timestamp",
        ),
        (
            json.dumps(review23(2, rating="five")),
            'rating "five" is not a number',
            "rating_not_a_number",
        ),
        (
            json.dumps(review23(2, rating=True)),
            "rating true is not a number",
            "rating_not_a_number",
        ),
        (json.dumps(review23(2, rating=0.5)), "rating 0.5 outside 1..5", "rating_out_of_range"),
        (
            json.dumps(review23(2, title=["a"])),
            "field 'title': expected a string, got [\"a\"]",
            "bad_type:title",
        ),
    ],
)
def test_bad_json_line(tmp_path: Path, out: Path, bad: str, reason: str, key: str) -> None:
    src = write(tmp_path, "x.jsonl", seventeen_lines(3, bad))
    err = error_of(src, out)
    assert (err.line, err.reason) == (3, reason)
    assert str(err) == f"{src}:3: {reason}"
    report = ingest_file(src, out, on_bad_lines="skip")
    assert (report.lines_read, report.rows_written, report.skipped) == (17, 16, {key: 1})
    reconciles(report)


def test_missing_field_names_the_raw_key(tmp_path: Path, out: Path) -> None:
    src = write(tmp_path, "x.json", jsonl([review18(0), review18(1, reviewerID=_DROP)]))
    assert error_of(src, out).reason == "missing required field 'reviewerID' (user_id)"
    src = write(tmp_path, "m.json", jsonl([meta18(0), meta18(1, asin="")]))
    assert error_of(src, out).reason == "missing required field 'asin' (parent_asin)"


def test_not_utf8(tmp_path: Path, out: Path) -> None:
    good = [json.dumps(review23(i)).encode() for i in range(4)]
    good[1] = good[1].replace(b"title 1", b"title \xff1")
    src = write(tmp_path, "x.jsonl", b"\n".join(good) + b"\n")
    err = error_of(src, out)
    assert err.line == 2
    assert err.reason.startswith("not valid UTF-8 (byte 0xff at column ")
    report = ingest_file(src, out, on_bad_lines="skip")
    assert (report.rows_written, report.skipped) == (3, {"not_utf8": 1})


def test_not_utf8_in_a_field_ingest_does_not_read(tmp_path: Path, out: Path) -> None:
    good = [json.dumps(review23(i)).encode() for i in range(3)]
    good[2] = good[2].replace(b'"asin": "', b'"asin": "\xc3')
    src = write(tmp_path, "x.jsonl", b"\n".join(good) + b"\n")
    assert error_of(src, out).line == 3


def test_truncated_gzip(tmp_path: Path, out: Path) -> None:
    data = gzip.compress(jsonl([review23(i) for i in range(200)]).encode())
    src = write(tmp_path, "x.jsonl.gz", data[: len(data) * 2 // 3])
    partial = zlib.decompressobj(31).decompress(src.read_bytes())
    complete = partial.count(b"\n")
    assert not partial.endswith(b"\n")
    err = error_of(src, out)
    assert str(err) == f"{src}:{complete + 1}: {TRUNCATED}"
    report = ingest_file(src, out, on_bad_lines="skip")
    assert report.rows_written == complete
    assert report.skipped == {"truncated_gzip": 1}
    assert report.lines_read == complete + 1
    reconciles(report)


@pytest.mark.parametrize("keep", [2, 10, 60])
def test_gzip_truncated_inside_the_first_line(tmp_path: Path, out: Path, keep: int) -> None:
    data = gzip.compress(json.dumps(review23(0)).encode() * 3 + b"\n")
    src = write(tmp_path, "x.jsonl.gz", data[:keep])
    for mode in ("error", "skip"):
        err = error_of(src, out, on_bad_lines=mode)
        assert (err.line, err.reason) == (1, TRUNCATED)


def test_corrupt_gzip_is_an_error_in_both_modes(tmp_path: Path, out: Path) -> None:
    data = bytearray(gzip.compress(jsonl([review23(i) for i in range(50)]).encode()))
    data[len(data) // 2 : len(data) // 2 + 40] = b"\x00" * 40
    src = write(tmp_path, "x.jsonl.gz", bytes(data))
    for mode in ("error", "skip"):
        err = error_of(src, out, on_bad_lines=mode)
        assert err.reason.startswith("corrupt gzip stream") or err.reason.startswith(
            "truncated gzip"
        )


def test_concatenated_gzip_members(tmp_path: Path, out: Path) -> None:
    part1 = gzip.compress(jsonl([review23(i) for i in range(3)]).encode())
    part2 = gzip.compress(jsonl([review23(i) for i in range(3, 5)]).encode())
    src = write(tmp_path, "x.jsonl.gz", part1 + part2)
    assert ingest_file(src, out).rows_written == 5


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", gzip.compress(b""), gzip.compress(b"\n")])
def test_empty_file(tmp_path: Path, out: Path, content: bytes) -> None:
    src = write(tmp_path, "empty.jsonl", content)
    for mode in ("error", "skip"):
        err = error_of(src, out, on_bad_lines=mode)
        assert (err.line, err.reason) == (None, "empty file: no records")
        assert str(err) == f"{src}: empty file: no records"


def test_missing_file(tmp_path: Path, out: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        ingest_file(tmp_path / "nope.jsonl", out)
    with pytest.raises(InputError, match="no such file"):
        detect_format(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('{"foo": 1, "bar": 2}\n', "records with keys [bar, foo]"),
        ("[{}, {}]\n", "a JSON array"),
        ("hello world\nsecond line\n", "neither a JSON object nor a ratings CSV row"),
        ("u,i,5,1,x,y\n", "a headerless ratings CSV has 4 or 5 fields"),
        ("{not json\n{also not\n", "none of the first 2 lines is a JSON object"),
    ],
)
def test_undetectable_format(tmp_path: Path, out: Path, content: str, words: str) -> None:
    src = write(tmp_path, "x.jsonl", content)
    err = error_of(src, out)
    assert "cannot detect the format" in err.reason
    assert words in err.reason


def test_blank_lines_are_ignored_but_numbered(tmp_path: Path, out: Path) -> None:
    lines = [json.dumps(review23(i)) for i in range(4)]
    text = "\n" + lines[0] + "\n\n  \n" + lines[1] + "\r\n" + lines[2] + "\n\n"
    text += json.dumps(review23(9, rating=6)) + "\n" + lines[3]  # no final newline
    src = write(tmp_path, "x.jsonl", text)
    assert str(error_of(src, out)) == f"{src}:8: rating 6.0 outside 1..5"
    report = ingest_file(src, out, on_bad_lines="skip")
    assert (report.lines_read, report.rows_written) == (5, 4)


def test_bom_and_crlf(tmp_path: Path, out: Path) -> None:
    text = "\ufeff" + jsonl([review23(0), review23(1)]).replace("\n", "\r\n")
    assert ingest_file(write(tmp_path, "x.jsonl", text), out).rows_written == 2
    csv_text = "\ufeffuser_id,parent_asin,rating,timestamp\r\nU1,B000000001,5.0,1600000000\r\n"
    assert ingest_file(write(tmp_path, "x.csv", csv_text), out).rows_written == 1


def test_two_objects_on_one_line_are_one_bad_line(tmp_path: Path, out: Path) -> None:
    lines = [json.dumps(review23(i)) for i in range(4)]
    lines[1] = lines[1] + lines[2]
    src = write(tmp_path, "x.jsonl", "\n".join(lines) + "\n\n")
    err = error_of(src, out)
    assert err.line == 2 and err.reason.startswith("not valid JSON (Extra data")


def test_first_bad_line_wins_across_kinds_of_fault(tmp_path: Path, out: Path) -> None:
    lines = [json.dumps(review23(i)) for i in range(6)]
    lines[1] = json.dumps(review23(1, rating=9))  # found by validation
    lines[4] = "{broken"  # found by the parser
    src = write(tmp_path, "x.jsonl", "\n".join(lines) + "\n")
    assert error_of(src, out).line == 2
    report = ingest_file(src, out, on_bad_lines="skip")
    assert report.skipped == {"rating_out_of_range": 1, "invalid_json": 1}


@pytest.mark.parametrize("block_size", [64, 1000, 1 << 20])
def test_line_numbers_across_blocks(tmp_path: Path, out: Path, block_size: int) -> None:
    lines = [json.dumps(review23(i)) for i in range(300)]
    for i in (7, 151, 288):
        lines[i] = json.dumps(review23(i, rating=0))
    lines.insert(100, "")
    src = write(tmp_path, "x.jsonl.gz", "\n".join(lines) + "\n", gz=True)
    err = error_of(src, out, block_size=block_size)
    assert err.line == 8
    report = ingest_file(src, out, on_bad_lines="skip", block_size=block_size)
    assert (report.lines_read, report.rows_written) == (300, 297)
    assert report.skipped == {"rating_out_of_range": 3}
    lines[7] = json.dumps(review23(7))
    lines[152] = json.dumps(review23(151))
    src = write(tmp_path, "x.jsonl.gz", "\n".join(lines) + "\n", gz=True)
    assert error_of(src, out, block_size=block_size).line == 290


def test_on_bad_lines_must_be_known(tmp_path: Path, out: Path) -> None:
    with pytest.raises(InputError, match="on_bad_lines"):
        ingest_file(write(tmp_path, "x.jsonl", jsonl([review23(0)])), out, on_bad_lines="warn")


# --------------------------------------------------------------------------- CLI


def test_cli_error_is_one_line_and_exit_2(tmp_path: Path, out: Path, capsys) -> None:
    bad = '{"rating": 5.0 "title": "x"}'
    src = write(tmp_path, "x.jsonl", seventeen_lines(3, bad))
    rc = main(["ingest", str(src), "--output-dir", str(out)])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.err == (
        f"deepcart: error: {src}:3: not valid JSON (Expecting ',' delimiter: column 16)\n"
    )
    assert captured.out == ""
    assert not out.exists() or not any(out.iterdir())


def test_cli_missing_file(tmp_path: Path, out: Path, capsys) -> None:
    rc = main(["ingest", str(tmp_path / "nope.jsonl.gz"), "--output-dir", str(out)])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err


def test_cli_skip_prints_the_summary(tmp_path: Path, out: Path, capsys) -> None:
    src = write(tmp_path, "x.jsonl", seventeen_lines(5, "{oops"))
    meta = write(tmp_path, "meta_x.jsonl", jsonl([meta23(0)]))
    rc = main(["ingest", str(src), str(meta), "--output-dir", str(out), "--on-bad-lines", "skip"])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{src} (amazon2023-reviews): read 17 lines, wrote 16 reviews, skipped 1 "
        f"(invalid_json 1) -> {out / 'x.parquet'}",
        f"{meta} (amazon2023-meta): read 1 lines, wrote 1 items, skipped 0 -> "
        f"{out / 'meta_x.parquet'}",
    ]


def test_detect_format(tmp_path: Path) -> None:
    cases = {
        "a.jsonl": (jsonl([review23(0)]), "amazon2023-reviews", "reviews"),
        "b.jsonl": (jsonl([meta23(0)]), "amazon2023-meta", "items"),
        "c.json": (jsonl([review18(0)]), "amazon2018-reviews", "reviews"),
        "d.json": (jsonl([meta18(0)]), "amazon2018-meta", "items"),
        "e.json": (jsonl([review14(0)]), "amazon2014-reviews", "reviews"),
        "f.json": (meta14_literal(0) + "\n", "amazon2014-meta", "items"),
        "g.csv": ("u,B000000001,5,1\n", "ratings-csv", "reviews"),
    }
    for name, (content, fmt, kind) in cases.items():
        got = detect_format(write(tmp_path, name, content))
        assert (got.name, got.kind, got.compression, str(got)) == (fmt, kind, None, fmt)


# --------------------------------------------------------------------------- real data

REAL_FILES = {
    "amazon2023_electronics_sample/Electronics.first500.reconstructed.jsonl": (
        "amazon2023-reviews",
        500,
    ),
    "amazon2023_electronics_sample/Electronics.first500.reviews.parquet": ("parquet", 500),
    "amazon2023_electronics_sample/meta_Electronics.first500.reconstructed.jsonl": (
        "amazon2023-meta",
        500,
    ),
    "amazon2023_electronics_sample/meta_Electronics.first500.parquet": (
        "amazon2023-meta-parquet",
        500,
    ),
    "amazon2018_magazine_ratings/Magazine_Subscriptions.csv": ("ratings-csv", 89_689),
    "amazon2018_fashion_5core/AMAZON_FASHION_5.json": ("amazon2018-reviews", 3_176),
    "amazon2018_giftcards_5core/Gift_Cards_5.json": ("amazon2018-reviews", 2_972),
    "amazon2018_giftcards_5core/meta_Gift_Cards.json": ("amazon2018-meta", 1_547),
    "amazon2014_electronics_ratings_prefix/ratings_Electronics.first50698.csv": (
        "ratings-csv",
        50_698,
    ),
    "amazon2014_digital_music_prefix/reviews_Digital_Music_5.prefix.json": (
        "amazon2014-reviews",
        6_908,
    ),
    "amazon2014_digital_music_prefix/meta_Digital_Music.prefix.json": ("amazon2014-meta", 7_419),
    "amazon2014_samples/reviews_Musical_Instruments_5.first50.json": ("amazon2014-reviews", 50),
}
_BEAUTY = "amazon2023_all_beauty_benchmark"
for _split, _counts in {
    "5core/rating_only": {"": 2_535},
    "5core/last_out": {"train": 2_029, "valid": 253, "test": 253},
    "5core/last_out_w_his": {"train": 2_029, "valid": 253, "test": 253},
    "5core/timestamp": {"train": 2_237, "valid": 276, "test": 22},
    "5core/timestamp_w_his": {"train": 2_237, "valid": 276, "test": 22},
    "0core/last_out": {"train": 19_120, "valid": 42_823},
    "0core/last_out_w_his": {"train": 19_120, "valid": 42_823},
}.items():
    for _part, _n in _counts.items():
        _name = f"All_Beauty.{_part}.csv" if _part else "All_Beauty.csv"
        REAL_FILES[f"{_BEAUTY}/{_split}/{_name}"] = ("ratings-csv", _n)


# spot checks of the first row written (values from the files' first lines and SOURCES.md)
FIRST_ROWS = {
    "amazon2018_magazine_ratings/Magazine_Subscriptions.csv": {
        "user_id": "AH2IFH762VY5U",  # the 2018 ratings CSV is item-first
        "parent_asin": "B00005N7P0",
        "timestamp": 1005177600000,
    },
    "amazon2014_electronics_ratings_prefix/ratings_Electronics.first50698.csv": {
        "user_id": "AKM1MP6P0OYPR",  # header UserId,ItemId,rating,timestamp
        "parent_asin": "0132793040",
        "rating": 5.0,
        "timestamp": 1365811200000,
    },
    "amazon2014_digital_music_prefix/meta_Digital_Music.prefix.json": {
        "parent_asin": "5555991584",
        "title": "Memory of Trees",
        "price": 9.49,
        "main_category": "CDs & Vinyl",
    },
    "amazon2018_giftcards_5core/meta_Gift_Cards.json": {
        "parent_asin": "B001BKEWF2",
        "store": "Serendipity 3",
        "main_category": "Grocery",
    },
    "amazon2018_fashion_5core/AMAZON_FASHION_5.json": {
        "user_id": "ALJ66O1Y6SLHA",
        "parent_asin": "B000K2PJ4K",
        "timestamp": 1441324800000,
        "verified_purchase": True,
    },
    "amazon2014_samples/reviews_Musical_Instruments_5.first50.json": {
        "user_id": "A2IBPI20UZIR0U",
        "parent_asin": "1384719342",
        "title": "good",
        "helpful_vote": 0,
    },
    "amazon2023_all_beauty_benchmark/0core/last_out_w_his/All_Beauty.train.csv": {
        "user_id": "AFSKPY37N3C43SOI5IEXEK5JSIYA",
        "parent_asin": "B00JMDPK8S",
        "rating": 3.0,
        "timestamp": 1404402463000,
    },
}


@pytest.fixture(scope="module")
def staged() -> Path:
    if not AMAZON.is_dir():
        pytest.skip(f"real Amazon data not staged at {AMAZON} (a fresh clone has none)")
    return AMAZON


@pytest.mark.realdata
def test_every_staged_data_file_is_listed(staged: Path) -> None:
    found = {
        str(p.relative_to(staged))
        for p in staged.rglob("*")
        if p.suffix in (".json", ".jsonl", ".csv", ".parquet") and p.name != "stats.json"
    }
    assert found == set(REAL_FILES)


@pytest.mark.realdata
@pytest.mark.parametrize("rel", sorted(REAL_FILES))
def test_real_file(staged: Path, tmp_path: Path, rel: str) -> None:
    fmt, expected = REAL_FILES[rel]
    report = ingest_file(staged / rel, tmp_path)
    assert report.source_format == fmt
    assert (report.lines_read, report.rows_written, report.skipped) == (expected, expected, {})
    table = assert_canonical(report.output, report.kind, fmt)
    first = table.slice(0, 1).to_pylist()[0]
    for column, value in FIRST_ROWS.get(rel, {}).items():
        assert first[column] == value, column
    if report.kind == "reviews":
        ratings = table.column("rating").to_numpy()
        assert ratings.min() >= 1 and ratings.max() <= 5
        ts = table.column("timestamp").to_numpy()
        assert ts.min() > 820_000_000_000  # ms, after 1996


@pytest.mark.realdata
def test_real_2018_ratings_csv_user_and_item_counts(staged: Path, tmp_path: Path) -> None:
    src = staged / "amazon2018_magazine_ratings/Magazine_Subscriptions.csv"
    table = pq.read_table(ingest_file(src, tmp_path).output)
    # SOURCES.md: 72,098 users, 2,428 items; a swapped column order would show the reverse
    assert len(set(table.column("user_id").to_pylist())) == 72_098
    assert len(set(table.column("parent_asin").to_pylist())) == 2_428


@pytest.mark.realdata
def test_real_2023_jsonl_and_parquet_copies_agree(staged: Path, tmp_path: Path) -> None:
    d = staged / "amazon2023_electronics_sample"
    for jsonl_name, parquet_name in [
        ("Electronics.first500.reconstructed.jsonl", "Electronics.first500.reviews.parquet"),
        ("meta_Electronics.first500.reconstructed.jsonl", "meta_Electronics.first500.parquet"),
    ]:
        a = pq.read_table(ingest_file(d / jsonl_name, tmp_path / "a").output)
        b = pq.read_table(ingest_file(d / parquet_name, tmp_path / "b").output)
        assert a.equals(b)


# --------------------------------------------------------------------------- randomised


def test_random_damage_never_escapes_and_block_size_does_not_matter(tmp_path: Path) -> None:
    """Damaged files of every format: only DeepCartErrors, same results for tiny blocks."""
    import random

    from deepcart.errors import DeepCartError

    rnd = random.Random(20240601)
    makers = [
        lambda i: json.dumps(review23(i)),
        lambda i: json.dumps(meta23(i)),
        lambda i: json.dumps(review18(i, vote="1,2")),
        lambda i: json.dumps(meta18(i)),
        lambda i: json.dumps(review14(i)),
        meta14_literal,
        lambda i: f"U{i},B00000000{i % 10},{rnd.choice(['5', '4.0', 'x', ''])},1600000000",
    ]
    for trial in range(40):
        make = makers[trial % len(makers)]
        lines = [make(i).encode() for i in range(rnd.randint(1, 30))]
        for _ in range(rnd.randint(0, 3)):
            k = rnd.randrange(len(lines))
            b = bytearray(lines[k])
            op = rnd.randrange(4)
            if op == 0 and b:
                del b[rnd.randrange(len(b))]
            elif op == 1:
                lines.insert(k, b"  ")
            elif op == 2 and b:
                b[rnd.randrange(len(b))] = rnd.choice(b'{}[]",:\\ 0a\xff\r')
            lines[k] = bytes(b)
        src = write(tmp_path, f"t{trial}.data", b"\n".join(lines) + b"\n", gz=trial % 3 == 0)
        results = []
        for block_size in (40, 1 << 20):
            for mode in ("error", "skip"):
                try:
                    r = ingest_file(src, tmp_path / "o", on_bad_lines=mode, block_size=block_size)
                    results.append((r.lines_read, r.rows_written, r.skipped))
                except DeepCartError as exc:
                    results.append(str(exc))
        assert results[:2] == results[2:], (trial, results)
        error_mode, skip_mode = results[0], results[1]
        if isinstance(error_mode, tuple) and isinstance(skip_mode, tuple):
            assert error_mode == skip_mode and not skip_mode[2]
        if isinstance(error_mode, str) and isinstance(skip_mode, tuple):
            assert skip_mode[2], (trial, results)  # what stopped error mode was skipped


def test_cli_two_files_with_one_output_name_are_refused(tmp_path: Path, out: Path, capsys) -> None:
    # x.csv's Parquet used to be silently replaced by x.jsonl's (both are out/x.parquet).
    csv = write(tmp_path, "x.csv", "u1,i1,5,1600000000000\n")
    src = write(tmp_path, "x.jsonl", json.dumps(review23(0)) + "\n")
    rc = main(["ingest", str(csv), str(src), "--output-dir", str(out)])
    assert rc == 2
    assert capsys.readouterr().err == (
        f"deepcart: error: {csv} and {src} would both be written to {out / 'x.parquet'}; "
        "ingest them one at a time with different --output-dir\n"
    )
    assert not out.exists() or not any(out.iterdir())


def test_2023_timestamps_in_seconds_become_ms_as_in_a_csv(tmp_path: Path, out: Path) -> None:
    """The 2023 format's timestamps are ms; a file holding seconds (1541356831: 2018 in seconds,
    1970-01-18 read as ms) was stored as 1970 dates. Real ms values pass unchanged."""
    src = write(
        tmp_path,
        "s.jsonl",
        jsonl([review23(0, timestamp=1541356831), review23(1, timestamp=1541356831000)]),
    )
    got = [r["timestamp"] for r in rows(ingest_file(src, out).output)]
    assert got == [1541356831000, 1541356831000]
