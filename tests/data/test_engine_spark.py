"""The Spark engine against the DuckDB engine: identical datasets, counts and manifests; ingest in
Spark tasks; ALS fit on Spark MLlib saved as our artifact.

Spark tests are marked ``spark`` and skip with the reason when pyspark or Java 17+ is missing. One
SparkSession (local[2], two shuffle partitions) serves the whole module; the data stays small.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from deepcart.cli import main
from deepcart.data import spark_session
from deepcart.data.build import BuildReport, build_dataset
from deepcart.data.ingest import ingest_file
from deepcart.data.paths import DatasetPaths
from deepcart.data.schema import schema_for
from deepcart.data.synth import synthesize
from deepcart.errors import DataFormatError, InputError
from tests.data.test_build import write_reviews


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    reason = spark_session.spark_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    session = spark_session.get_spark(
        "local[2]",
        config={
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.driver.memory": "1g",
            # Tiny data: interpreting beats compiling every query.
            "spark.sql.codegen.wholeStage": "false",
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def synth_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small synthetic category ingested, plus hand-made extra review files and an item file
    with a repeated row and without some reviewed items (stubs)."""
    root = tmp_path_factory.mktemp("synth")
    res = synthesize(root / "raw", n_users=300, n_items=150, n_reviews=4000, seed=5, progress=False)
    reviews = ingest_file(res.reviews_path, root / "ing").output
    meta = pq.read_table(ingest_file(res.meta_path, root / "ing").output)
    base = pq.read_table(reviews)
    users = base["user_id"].to_pylist()
    asins = base["parent_asin"].to_pylist()
    times = base["timestamp"].to_pylist()
    # Extra file 1: the same (user, item) at the same time as a first-file review and an earlier
    # one (extra reviews win over the first file's either way), and a tie inside this file (the
    # later row wins among extra reviews).
    extra1_rows = [
        (users[0], asins[0], 1.0, times[0], "tie with file 0"),
        (users[1], asins[1], 2.0, times[1] - 1, "earlier than file 0"),
        ("newuser", asins[2], 5.0, 10, "first of a tie"),
        ("newuser", asins[2], 1.0, 10, "second of a tie"),
        ("newuser", asins[3], 4.0, 11, None),
    ]
    extra2_rows = [("newuser", asins[4], 3.0, 12, None), (users[2], "B0NOMETA00", 4.0, 5, None)]
    # several row groups each: the input order is kept across them
    extras = [
        write_reviews(root / f"extra{n}.parquet", rows, row_group_size=2)
        for n, rows in enumerate((extra1_rows, extra2_rows))
    ]
    # Items: drop every 10th item (stubs), repeat one item with another title (first wins).
    keep = [i for i in range(meta.num_rows) if i % 10]
    items_t = pa.concat_tables([meta.take(keep), meta.slice(1, 1)])
    items_t = items_t.set_column(
        1, "title", pa.array(items_t["title"].to_pylist()[:-1] + ["a later duplicate"])
    )
    items = root / "items.parquet"
    pq.write_table(items_t.cast(schema_for("items")), items, row_group_size=50)
    return {"reviews": reviews, "extras": extras, "items": items, "root": root}


def _both(tmp: Path, **kw: Any) -> tuple[BuildReport, BuildReport]:
    reports = []
    for engine in ("duckdb", "spark"):
        reports.append(
            build_dataset(
                output_dir=tmp / engine, tag="t", engine=engine, echo=lambda s: None, **kw
            )
        )
    return reports[0], reports[1]


def _report(root: Path) -> BuildReport:
    manifest = json.loads((root / "manifest.json").read_text())
    return BuildReport(
        tag=root.name, paths=DatasetPaths(root), counts=manifest["counts"], manifest=manifest
    )


def _assert_same(a: BuildReport, b: BuildReport) -> None:
    for name in ("reviews", "items"):
        ta = pq.read_table(getattr(a.paths, name))
        tb = pq.read_table(getattr(b.paths, name))
        assert ta.schema.equals(tb.schema, check_metadata=True), name
        assert ta.schema.metadata == schema_for(name).metadata
        assert ta.equals(tb), f"{name}: the engines wrote different rows"
    assert a.counts == b.counts
    ma, mb = json.loads(a.paths.manifest.read_text()), json.loads(b.paths.manifest.read_text())
    assert (ma.pop("engine"), mb.pop("engine")) == ("duckdb", "spark")
    assert ma == mb


@pytest.mark.spark
def test_parity_on_synthetic_data_through_the_cli(
    spark: Any, synth_inputs: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Several input files, duplicates, ties within and across files, a repeated metadata row,
    reviewed items without metadata; the printed report too."""
    out = {}
    for engine in ("duckdb", "spark"):
        args = ["build", "--reviews-file", str(synth_inputs["reviews"]), "--items-file"]
        args += [str(synth_inputs["items"]), "--tag", "t", "--output-dir", str(tmp_path / engine)]
        args += ["--extra-reviews", *map(str, synth_inputs["extras"]), "--quiet"]
        master = ["--spark-master", "local[2]"] if engine == "spark" else []
        assert main([*args, "--engine", engine, *master]) == 0
        out[engine] = capsys.readouterr().out.replace(str(tmp_path / engine), "OUT")
    assert out["duckdb"] == out["spark"]
    a, b = (_report(tmp_path / e / "t") for e in ("duckdb", "spark"))
    _assert_same(a, b)
    c = a.counts
    assert c["duplicates_dropped"] > 2 and c["items_without_metadata"] > 0
    assert c["reviews_written"] > 0 and c["items_written"] > 0
    # Extra reviews replace file 0's, whatever their timestamps.
    titles = set(pq.read_table(b.paths.reviews)["title"].to_pylist())
    assert {"tie with file 0", "earlier than file 0"} <= titles
    assert (c["extra_reviews_read"], c["extra_reviews_superseded"], c["ratings_replaced"]) == (
        7,
        1,
        2,
    )
    assert "a later duplicate" not in set(pq.read_table(b.paths.items)["title"].to_pylist())


@pytest.mark.spark
def test_parity_k_core_and_sampling(
    spark: Any, synth_inputs: dict[str, Any], tmp_path: Path
) -> None:
    a, b = _both(
        tmp_path,
        reviews_file=synth_inputs["reviews"],
        items_file=synth_inputs["items"],
        extra_reviews=synth_inputs["extras"],
        min_interactions=4,
        min_ratings=6,
        k_core=True,
        sample_n=60,
        seed=7,
    )
    _assert_same(a, b)
    assert a.counts["k_core_rounds"] > 0 and a.counts["users_written"] == 60


@pytest.mark.spark
def test_parity_without_items_sampling_everyone_and_uri_input(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    rows = [(f"u{i % 7}", f"i{i % 5}", 1 + i % 5, i // 3) for i in range(60)]
    t = pa.table(
        {
            "user_id": [r[0] for r in rows],
            "parent_asin": [r[1] for r in rows],
            "rating": [float(r[2]) for r in rows],
            "timestamp": [r[3] for r in rows],
            "title": [f"row {n}" for n in range(len(rows))],
            "text": [None] * len(rows),
            "helpful_vote": [None] * len(rows),
            "verified_purchase": [None] * len(rows),
        },
        schema=schema_for("reviews"),
    )
    pq.write_table(t, path, row_group_size=7)
    a, b = _both(
        tmp_path, reviews_file=path, items_file=None, min_interactions=1, min_ratings=1, sample_n=99
    )
    _assert_same(a, b)
    assert a.counts["items_without_metadata"] == a.counts["items_written"] == 5
    # A URI is read in place by Spark (here file://; s3a:// and gs:// the same way).
    c = build_dataset(
        reviews_file=path.as_uri(),
        items_file=None,
        output_dir=tmp_path / "uri",
        tag="t",
        min_interactions=1,
        min_ratings=1,
        sample_n=99,
        engine="spark",
        echo=lambda s: None,
    )
    assert pq.read_table(c.paths.reviews).equals(pq.read_table(a.paths.reviews))
    rec_a, rec_c = a.manifest["inputs"]["reviews"], c.manifest["inputs"]["reviews"]
    assert rec_c == {**rec_a, "path": path.as_uri()}
    with pytest.raises(InputError, match="only --engine spark reads URIs"):
        build_dataset(reviews_file=path.as_uri(), items_file=None, output_dir=tmp_path, tag="t")


@pytest.mark.spark
def test_parity_extra_reviews_keep_the_latest_opinion(spark: Any, tmp_path: Path) -> None:
    """The loop from the service back to build: extra reviews win over the reviews file for the
    same (user, item); among them the latest timestamp, then the later in the input. Both
    engines keep the same rows and count the same replacements."""

    def write(name: str, rows: list[tuple[str, str, float, int, str]]) -> Path:
        return write_reviews(tmp_path / name, rows, row_group_size=2)

    base = write(
        "base.parquet",
        [
            ("u1", "i1", 5.0, 100, "base re-rated"),
            ("u1", "i1", 4.0, 50, "base earliest"),
            ("u1", "i2", 2.0, 100, "base re-rated, older clock"),
            ("u2", "i1", 3.0, 100, "base only"),
            ("u2", "i2", 3.0, 100, "base only 2"),
        ],
    )
    extras = [
        write(
            "extra1.parquet",
            [
                ("u1", "i1", 1.0, 500, "newest opinion"),
                ("u1", "i2", 4.0, 10, "older clock, newest opinion"),
                ("u3", "i1", 2.0, 700, "first of a tie"),
                ("u3", "i1", 5.0, 700, "second of a tie"),
                ("u1", "i1", 2.0, 400, "an older re-rating"),
            ],
        ),
        write("extra2.parquet", [("u3", "i1", 4.0, 600, "earlier than file 1's")]),
    ]
    a, b = _both(
        tmp_path,
        reviews_file=base,
        items_file=None,
        extra_reviews=extras,
        min_interactions=1,
        min_ratings=1,
    )
    _assert_same(a, b)
    kept = {
        (r["user_id"], r["parent_asin"]): r["title"]
        for r in pq.read_table(b.paths.reviews).to_pylist()
    }
    assert kept == {
        ("u1", "i1"): "newest opinion",
        ("u1", "i2"): "older clock, newest opinion",
        ("u2", "i1"): "base only",
        ("u2", "i2"): "base only 2",
        ("u3", "i1"): "second of a tie",
    }
    c = b.counts
    assert (c["extra_reviews_read"], c["extra_reviews_superseded"], c["ratings_replaced"]) == (
        6,
        3,
        2,
    )


@pytest.mark.spark
def test_parity_on_labelled_parquet_with_nulls_and_wrong_types(spark: Any, tmp_path: Path) -> None:
    """Parquet labelled as DeepCart reviews but with nullable required columns or other types
    (written by hand, not by ingest) went to the engines as is: a ValueError traceback from the
    final write in both. Now it is ingested first: same skipped counts, or the same one line."""
    loose = pa.schema([f.with_nullable(True) for f in schema_for("reviews")])
    rows = {
        "user_id": ["u1", "u1", "u2", None, "u2"],
        "parent_asin": ["i1", "i2", "i1", "i1", "i2"],
        "rating": [5.0, None, 3.0, 3.0, 2.0],
        "timestamp": [1, 2, None, 4, 5],
    }
    table = pa.table({n: rows.get(n, [None] * 5) for n in loose.names}, schema=loose)
    path = tmp_path / "nulls.parquet"
    pq.write_table(table.replace_schema_metadata(schema_for("reviews").metadata), path)
    kw: dict[str, Any] = {"items_file": None, "min_interactions": 1, "min_ratings": 1}
    a, b = _both(tmp_path, reviews_file=path, on_bad_lines="skip", **kw)
    _assert_same(a, b)
    assert a.counts["reviews_written"] == 2
    assert a.manifest["inputs"]["reviews"]["lines_skipped"] == {
        "missing_field:rating": 1,
        "missing_field:timestamp": 1,
        "missing_field:user_id": 1,
    }
    for engine in ("duckdb", "spark"):
        with pytest.raises(DataFormatError, match=r"nulls\.parquet:2: missing required field"):
            build_dataset(reviews_file=path, output_dir=tmp_path, tag="e", engine=engine, **kw)
    with pytest.raises(InputError, match=r"\(column user_id may hold nulls\); a file named by"):
        build_dataset(reviews_file=path.as_uri(), output_dir=tmp_path, tag="u", engine="spark",
                      **kw)  # fmt: skip
    raw = tmp_path / "raw.jsonl"  # a raw file by URI: said so, not Parquet's "magic bytes"
    raw.write_text('{"user_id": "u", "parent_asin": "i", "rating": 5, "timestamp": 1}\n')
    with pytest.raises(InputError, match=r"\(not a Parquet file\); a file named by URI must be"):
        build_dataset(reviews_file=raw.as_uri(), output_dir=tmp_path, tag="u", engine="spark",
                      **kw)  # fmt: skip
    as_text = table.set_column(2, "rating", pa.array(["5", "x", "3", "3", "2"]))
    pq.write_table(as_text.replace_schema_metadata(schema_for("reviews").metadata), path)
    with pytest.raises(DataFormatError, match="cannot read its columns as the canonical types"):
        build_dataset(reviews_file=path, output_dir=tmp_path, tag="e", engine="spark", **kw)


@pytest.mark.spark
@pytest.mark.realdata
def test_parity_on_real_all_beauty_5core_k_core(
    spark: Any, amazon_dir: Path, tmp_path: Path
) -> None:
    csv = (
        amazon_dir / "amazon2023_all_beauty_benchmark" / "5core" / "rating_only" / "All_Beauty.csv"
    )
    a, b = _both(
        tmp_path, reviews_file=csv, items_file=None, min_interactions=4, min_ratings=6, k_core=True
    )
    _assert_same(a, b)
    assert a.counts["reviews_read"] == 2535 and a.counts["k_core_rounds"] == 7
    assert a.counts["reviews_written"] == 1867


@pytest.mark.spark
@pytest.mark.realdata
def test_parity_on_real_gift_cards_with_meta(spark: Any, amazon_dir: Path, tmp_path: Path) -> None:
    d = amazon_dir / "amazon2018_giftcards_5core"
    a, b = _both(
        tmp_path,
        reviews_file=d / "Gift_Cards_5.json",
        items_file=d / "meta_Gift_Cards.json",
        min_interactions=2,
        min_ratings=3,
        sample_n=100,
    )
    _assert_same(a, b)
    assert a.counts["meta_items"] > 0 and a.counts["duplicates_dropped"] > 0


@pytest.mark.spark
def test_ingest_in_spark_tasks_equals_local_ingest(
    spark: Any, synth_inputs: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepcart.data.engine_spark import ingest_files

    raw = sorted((synth_inputs["root"] / "raw").iterdir())
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"user_id": "u", "parent_asin": "i", "rating": 5, "timestamp": 1}\n\n{"user_id": 1\n'
    )
    reports = ingest_files([*raw, bad], tmp_path / "spark", on_bad_lines="skip")
    for path, rep in zip([*raw, bad], reports, strict=True):
        local = ingest_file(path, tmp_path / "local", on_bad_lines="skip")
        assert rep.summary().replace("/spark/", "/local/") == local.summary()
        assert pq.read_table(rep.output).equals(pq.read_table(local.output))
    assert reports[-1].skipped == {"invalid_json": 1}
    with pytest.raises(DataFormatError, match=r"bad\.jsonl:3: "):
        ingest_files([bad], tmp_path / "err")
    # An error naming the output: the --output-dir as given, not resolved (was the absolute path).
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocked" / "bad.parquet").mkdir(parents=True)
    with pytest.raises(InputError) as local:
        ingest_file("bad.jsonl", "blocked", on_bad_lines="skip")
    with pytest.raises(InputError) as remote:
        ingest_files(["bad.jsonl"], "blocked", on_bad_lines="skip")
    assert str(remote.value) == str(local.value)
    assert str(local.value) == "cannot write blocked/bad.parquet: Is a directory"


_INTERRUPTED_JOB = """
import sys
from deepcart import cli
from deepcart.data.spark_session import get_spark

def long_job(args):  # stands in for a long build: the CLI around a Spark job
    spark = get_spark("local[1]", config={"spark.driver.memory": "512m"})
    print("ready", flush=True)
    spark.range(10**12).selectExpr("sum(id % 7)").collect()

cli._cmd_build = long_job
sys.exit(cli.main(["build", "--tag", "t"]))
"""


@pytest.mark.spark
def test_ctrl_c_in_a_spark_job_is_one_line(spark: Any) -> None:
    # PySpark's handler called cancelAllJobs through the connection the interrupted call was
    # using: py4j logged two tracebacks (ERROR root: ...) before "deepcart: interrupted"; and
    # py4j failing to reconnect while unwinding could replace the interrupt by its traceback.
    proc = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED_JOB],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        time.sleep(1.5)  # the job is running
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and out == "", (out, err)
    assert err.endswith("deepcart: interrupted\n") and "Traceback" not in err, err
    assert "ERROR" not in err, err


_INTERRUPTED_START = """
import os, signal, threading
from deepcart.data.spark_session import get_spark
threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    get_spark("local[1]")
except KeyboardInterrupt:
    pass
"""


def _environ_holds(environ: Path, mark: bytes) -> bool:
    try:
        return mark in environ.read_bytes().split(b"\0")
    except OSError:  # gone, or another user's
        return False


@pytest.mark.spark
def test_ctrl_c_while_spark_starts_leaves_no_jvm(spark: Any, tmp_path: Path) -> None:
    # The JVM PySpark was launching ignores SIGINT: it ran on, orphaned (and held the pipes of
    # the shell that started deepcart) after Ctrl-C in the second or two of its start.
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc (Linux)")
    token = uuid.uuid4().hex
    mark = f"DEEPCART_TEST_MARK={token}".encode()
    with open(tmp_path / "out.txt", "w") as out:
        subprocess.run(
            [sys.executable, "-c", _INTERRUPTED_START],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DEEPCART_TEST_MARK": token},
            timeout=120,
        )
    time.sleep(2)
    left = [e for e in Path("/proc").glob("[0-9]*/environ") if _environ_holds(e, mark)]
    for e in left:  # leave nothing running whatever the outcome
        os.kill(int(e.parent.name), signal.SIGKILL)
    assert left == []


@pytest.mark.spark
def test_als_on_spark_saves_our_artifact(spark: Any, tmp_path: Path) -> None:
    from deepcart.data.split import SplitParams
    from deepcart.models.als_spark import train_als_spark
    from deepcart.models.base import Recommender

    res = synthesize(tmp_path / "raw", n_users=200, n_items=80, n_reviews=2500, progress=False)
    build_dataset(
        reviews_file=res.reviews_path,
        items_file=res.meta_path,
        output_dir=tmp_path / "data",
        tag="q",
        echo=lambda s: None,
    )
    result = train_als_spark(
        data_dir=tmp_path / "data",
        tag="q",
        split_params=SplitParams(protocol="users"),
        params={"factors": 8, "iterations": 4},
        model_dir=tmp_path / "models",
        echo=lambda s: None,
    )
    assert result.path == tmp_path / "models" / "q" / "users" / "als"
    meta = json.loads((result.path / "model.json").read_text())
    assert meta["model"] == "als" and meta["params"]["regularization"] == 10.0
    trainer = meta["extra"]["trainer"]
    assert trainer["engine"] == "spark" and trainer["mllib_params"]["rank"] == 8
    # regParam = lambda / mean training interactions per user (ALS-WR scaling).
    mean_nu = meta["extra"]["n_train_ratings"] / meta["extra"]["n_train_users"]
    assert trainer["mllib_params"]["regParam"] == pytest.approx(10.0 / mean_nu)
    loaded = Recommender.load(result.path)
    assert np.array_equal(loaded.item_factors_, result.model.item_factors_)
    assert np.abs(loaded.item_factors_).sum() > 0
    new_user = sp.csr_matrix(([5.0, 4.0], ([0, 0], [0, 1])), shape=(1, loaded.n_items_))
    idx, scores = loaded.recommend(new_user, k=5)
    assert (idx >= 0).all() and not set(idx[0]) & {0, 1}
    assert np.allclose(scores, result.model.recommend(new_user, k=5)[1])
    # The JVM's OutOfMemoryError was a Py4J traceback; now a MemoryError (the CLI's one line, as
    # for the local ALS).
    from deepcart.models.als_spark import fit_als_spark

    with pytest.raises(MemoryError, match="Java heap space"):
        fit_als_spark(new_user, {"factors": 200_000, "iterations": 1}, spark=spark)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ('{"backend": "implicit"}', "--params: backend: only for --engine local"),
        ('{"cg_steps": 0, "seed": 1}', "--params: cg_steps: only for --engine local"),
        ('{"seed": 9223372036854775808}', "seed: MLlib ALS needs an integer below 2**63"),
        ('{"factors": 3000000000}', "factors: MLlib ALS needs an integer below 2**31"),
        ('{"iterations": 2147483648}', "iterations: MLlib ALS needs an integer below 2**31"),
    ],
)
def test_als_on_spark_refuses_params_mllib_cannot_take(
    params: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # backend/cg_steps were silently ignored; the others a Py4J traceback after the split.
    code = main(["train", "--data-dir", str(tmp_path), "--data-tag", "x", "--type", "als",
                 "--engine", "spark", "--params", params])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and expected in err, err


def test_train_on_spark_checks_the_dataset_and_model_dir_before_spark_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # A mistyped --data-tag or a --model-dir that is a file took a Spark start (5-10 s), the
    # latter even the whole fit, to be reported.
    from deepcart.models import als_spark

    def no_spark(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("Spark started before the cheap checks")

    monkeypatch.setattr(als_spark, "get_spark", no_spark)
    monkeypatch.setattr(als_spark, "check_spark", lambda master: None)
    rows = [(f"u{u}", f"i{i}", 5, 10**12 + i) for u in range(30) for i in range(u % 5, u % 5 + 4)]
    build_dataset(reviews_file=write_reviews(tmp_path / "r.parquet", rows), items_file=None,
                  output_dir=tmp_path / "data", tag="t", min_interactions=1, min_ratings=1,
                  echo=lambda s: None)  # fmt: skip
    train = ["train", "--data-dir", str(tmp_path / "data"), "--type", "als", "--engine", "spark"]
    assert main([*train, "--data-tag", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    (tmp_path / "models").write_text("a file")
    assert main([*train, "--data-tag", "t", "--model-dir", str(tmp_path / "models")]) == 2
    assert "--model-dir" in capsys.readouterr().err


def test_train_engine_spark_is_for_als_only(capsys: pytest.CaptureFixture) -> None:
    code = main(["train", "--data-tag", "x", "--type", "popular", "--engine", "spark"])
    assert code == 2
    assert "--engine spark: trains --type als only" in capsys.readouterr().err


def test_missing_java_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("pyspark", reason="the pyspark-missing message is tested instead")
    monkeypatch.setattr(spark_session, "_java_executable", lambda: None)
    with pytest.raises(InputError, match="openjdk-17-jre-headless"):
        spark_session.get_spark("local[1]")
    args = ["build", "--reviews-file", str(tmp_path / "r.parquet"), "--items-file", "none"]
    assert main([*args, "--tag", "t", "--engine", "spark", "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("deepcart: error: --engine spark needs Java 17+: apt-get install")


def test_missing_pyspark_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_pyspark(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "pyspark" or name.startswith("pyspark."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyspark)
    assert "pip install 'deepcart[spark]'" in (spark_session.spark_unavailable_reason() or "")


@pytest.mark.parametrize("master", ["bogus://x", "local[x]", "lokal[*]", "local[0]"])
def test_a_malformed_master_is_one_line_before_java_starts(
    master: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Spark's JVM printed its own stack trace (a dozen lines) before the one-line error.
    with pytest.raises(InputError, match="--spark-master: expected local, local"):
        spark_session.get_spark(master)
    args = ["build", "--reviews-file", str(tmp_path / "r.parquet"), "--items-file", "none"]
    code = main([*args, "--tag", "t", "--engine", "spark", "--spark-master", master,
                 "--output-dir", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and repr(master) in err
    for good in ("local", "local[2]", "local[*]", "local[4, 2]", "spark://h:7077", "yarn"):
        assert spark_session._MASTER.fullmatch(good), good


def test_an_unreachable_master_is_one_line_before_java_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Spark retried spark://127.0.0.1:<closed> for 73 s, then printed 46 lines of Java traces;
    # k8s:// 351 lines; yarn without HADOOP_CONF_DIR a trace and "Java gateway process exited".
    pyspark_sql = pytest.importorskip("pyspark.sql", reason="needs pyspark")
    monkeypatch.setattr(pyspark_sql.SparkSession, "getActiveSession", staticmethod(lambda: None))
    monkeypatch.delenv("HADOOP_CONF_DIR", raising=False)
    monkeypatch.delenv("YARN_CONF_DIR", raising=False)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["build", "--reviews-file", str(tmp_path / "r.parquet"), "--items-file", "none"]
    for master, expected in (
        (f"spark://127.0.0.1:{port}", f"cannot connect (127.0.0.1:{port}: "),
        (f"k8s://https://127.0.0.1:{port}", f"cannot connect (127.0.0.1:{port}: "),
        ("yarn", "set HADOOP_CONF_DIR or YARN_CONF_DIR"),
    ):
        code = main([*args, "--tag", "t", "--engine", "spark", "--spark-master", master,
                     "--output-dir", str(tmp_path)])  # fmt: skip
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert err.startswith(f"deepcart: error: --spark-master {master}: {expected}"), err
    if (spark_session._spark_major() or 0) >= 4:  # Spark 4 has no Mesos: refused up front
        with pytest.raises(InputError, match="got 'mesos://h:5050'"):
            spark_session.get_spark("mesos://h:5050")


def test_ingest_missing_file_or_folder_is_the_local_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Spark said "no such file: X" where the local ingest says "X: no such file", and started
    # Spark to find that a folder is not a file.
    for given in (tmp_path / "nope.jsonl", tmp_path):
        errors = []
        for engine in ("duckdb", "spark"):
            code = main(["ingest", str(given), "--output-dir", str(tmp_path / "o"),
                         "--engine", engine])  # fmt: skip
            errors.append((code, capsys.readouterr().err))
        assert errors[0] == errors[1] and errors[0][0] == 2, errors
    assert errors[0][1] == f"deepcart: error: {tmp_path}: not a file\n"


def test_ingest_output_dir_that_is_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Was a FileExistsError traceback from mkdir (before Spark starts, so no Java needed).
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    src = tmp_path / "x.csv"
    src.write_text("u1,i1,5,1600000000000\n")
    code = main(["ingest", str(src), "--output-dir", str(blocker), "--engine", "spark"])
    assert code == 2 and capsys.readouterr().err == (
        f"deepcart: error: --output-dir: {blocker} exists and is not a directory\n"
    )
