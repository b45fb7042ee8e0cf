"""The `deepcart` command as a user meets it: help, version, quickstart, one-line errors."""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from deepcart.cli import build_parser, main
from deepcart.data.build import build_dataset
from tests.data.test_build import _toy


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_every_command_lists_its_options_with_defaults(capsys: pytest.CaptureFixture) -> None:
    names = _subcommands()
    assert {"synth", "download", "ingest", "build", "split", "train", "test", "recommend",
            "quickstart"} <= set(names)  # fmt: skip
    for name in names:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert "example:" in out, name
        # Every option with a value shows its default.
        parser = build_parser()
        sub = next(a for a in parser._actions if a.dest == "command").choices[name]
        for action in sub._actions:
            if action.option_strings and action.default not in (None, False, "==SUPPRESS=="):
                assert "(default:" in out, (name, action.dest)


def test_module_entry_point_and_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "deepcart", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.startswith("deepcart ")


def test_unknown_command_and_bad_value_exit_2(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--users", "many"])
    assert exc.value.code == 2 and "--users" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["serve", "--foo"], ["train", "--data-tag", "t", "--type", "als", "extra"]]
)
def test_an_unknown_option_prints_the_commands_usage(
    capsys: pytest.CaptureFixture, argv: list[str]
) -> None:
    # argparse put these on the top-level parser: "usage: deepcart [-h] ... COMMAND ..."
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.startswith(f"usage: deepcart {argv[0]} ")
    assert err.endswith(f"deepcart {argv[0]}: error: unrecognized arguments: {argv[-1]}\n")


def test_quickstart_small(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    work = tmp_path / "my dir"  # a space: the "Next:" commands must still run as printed
    code = main(
        ["quickstart", "--workdir", str(work), "--users", "300", "--items", "120",
         "--reviews", "3000", "--quiet", "--no-deploy"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    ds = work / "data" / "processed" / "quickstart"
    assert (ds / "manifest.json").is_file()
    assert pq.read_table(ds / "reviews.parquet").num_rows > 1000
    assert "Next:" in out and "Wrote 'quickstart' dataset" in out
    (test_line,) = [line for line in out.splitlines() if line.startswith("  deepcart test ")]
    argv = shlex.split(test_line)[1:]
    assert argv[argv.index("--data-dir") + 1] == str(work / "data" / "processed")
    assert main([*argv, "--quiet", "--reports-dir", str(tmp_path / "reports")]) == 0


def test_quickstart_on_a_busy_port_stops_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["quickstart", "--workdir", str(tmp_path), "--port", str(port), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in err
    assert not (tmp_path / "data").exists()  # nothing synthesized or built


def test_quickstart_with_a_port_out_of_range_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    code = main(["quickstart", "--workdir", str(tmp_path), "--port", "99999", "--quiet"])
    err = capsys.readouterr().err  # was an OverflowError traceback from bind()
    assert code == 2 and err == "deepcart: error: --port: expected 0 to 65535, got 99999\n", err
    assert not (tmp_path / "data").exists()


def test_quickstart_too_small_to_build_names_its_own_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["quickstart", "--workdir", str(tmp_path), "--no-deploy", "--quiet"]
    code = main([*argv, "--users", "5", "--items", "5", "--reviews", "20"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("deepcart: error: --users 5 --items 5 --reviews 20: too few"), err
    assert "--min-interactions" not in err and "--min-ratings" not in err  # not its flags


def test_ingest_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"rating": 5.0, "user_id": "A", "parent_asin": "B", "timestamp": 1}\n{"rating": oops}\n'
    )
    code = main(["ingest", str(bad), "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"{bad}:2:" in err
    assert not (tmp_path / "out" / "bad.parquet").exists()


def _toy_dataset_and_review_db(tmp_path: Path) -> str:
    """Dataset 't' under tmp_path/data and an empty review database; its URL."""
    from deepcart.serve.store import ReviewStore

    build_dataset(
        reviews_file=_toy(tmp_path), items_file=None, output_dir=tmp_path / "data", tag="t",
        min_interactions=1, min_ratings=1, echo=lambda s: None,
    )  # fmt: skip
    db = f"sqlite:///{tmp_path / 'reviews.db'}"
    ReviewStore(db).close()
    return db


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_unwritable_out_names_the_users_path(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("matplotlib", reason="the report needs the 'report' extra (matplotlib)")
    db = _toy_dataset_and_review_db(tmp_path)
    data = ["--data-dir", str(tmp_path / "data"), "--data-tag", "t"]
    for argv, out in (
        (["report", *data, "--reports-dir", str(tmp_path / "r")], "/proc/x.html"),
        (["export-reviews", *data, "--db-url", db], "/proc/x.parquet"),
    ):
        assert main([*argv, "--out", out]) == 2
        err = capsys.readouterr().err
        assert err == f"deepcart: error: cannot write {out}: No such file or directory\n", argv


@pytest.mark.parametrize(
    "exc",
    [
        MemoryError("Unable to allocate 55.5 GiB for an array with shape (149, 100000000)"),
        RuntimeError("[enforce fail] DefaultCPUAllocator: can't allocate memory: you tried to"),
    ],
)
def test_out_of_memory_is_one_line_exit_2(
    exc: Exception, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """--params '{"factors": 100000000}' (numpy) or a vae's '{"latent_dim": 100000000}' (torch)
    ended in a traceback with exit 1; any other RuntimeError is still a bug to see."""
    import deepcart.training

    def too_big(**kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(deepcart.training, "train_model", too_big)
    code = main(["train", "--data-tag", "t", "--type", "als", "--params", '{"factors": 100000000}'])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"deepcart: error: out of memory ({str(exc)[:20]}")

    def bug(**kwargs: object) -> None:
        raise RuntimeError("some bug")

    monkeypatch.setattr(deepcart.training, "train_model", bug)
    with pytest.raises(RuntimeError, match="some bug"):
        main(["train", "--data-tag", "t", "--type", "als"])


def test_export_reviews_into_the_dataset_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # --out data/t/reviews.parquet used to replace the dataset's reviews with the stored ones.
    pytest.importorskip("sqlalchemy", reason="export-reviews needs the 'serve' extra")
    db = _toy_dataset_and_review_db(tmp_path)
    reviews = tmp_path / "data" / "t" / "reviews.parquet"
    before = reviews.read_bytes()
    argv = ["export-reviews", "--data-dir", str(tmp_path / "data"), "--data-tag", "t",
            "--db-url", db, "--out", str(reviews)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out: {reviews} is inside the folder of dataset 't'" in err
    assert reviews.read_bytes() == before
    # nor into another dataset's folder under the same root (its reviews became these)
    other = tmp_path / "data" / "other"
    shutil.copytree(tmp_path / "data" / "t", other)
    argv[argv.index("--out") + 1] = str(other / "reviews.parquet")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"is inside the folder of dataset 'other' ({other})" in err
    assert (other / "reviews.parquet").read_bytes() == before


def test_a_path_that_cannot_be_used_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A file this user may not read, or a file where a folder goes (a vae's log_dir that is a
    file) ended in a PermissionError or NotADirectoryError traceback."""
    import deepcart.training

    for exc in (
        PermissionError(13, "Permission denied", "data/processed/t/reviews.parquet"),
        NotADirectoryError(20, "Not a directory", "afile/vae-20261122-221553-1"),
    ):

        def fail(exc: OSError = exc, **kwargs: object) -> None:
            raise exc

        monkeypatch.setattr(deepcart.training, "train_model", fail)
        assert main(["train", "--data-tag", "t", "--type", "popular"]) == 2
        assert capsys.readouterr().err == (
            f"deepcart: error: cannot use {exc.filename}: {exc.strerror}\n"
        )


def test_spark_master_without_engine_spark_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Was ignored: the build ran here on DuckDB while the user meant their cluster.
    for argv, engine in (
        (["build", "--tag", "t", "--output-dir", str(tmp_path)], "duckdb"),
        (["ingest", str(tmp_path / "x.csv"), "--output-dir", str(tmp_path)], "duckdb"),
        (["train", "--data-dir", str(tmp_path), "--data-tag", "t", "--type", "als"], "local"),
    ):
        assert main([*argv, "--spark-master", "spark://h:7077"]) == 2
        assert capsys.readouterr().err == (
            "deepcart: error: --spark-master: only with --engine spark "
            f"(this is --engine {engine})\n"
        )


def _duckdb_interrupted(args: object) -> int:
    """A query Ctrl-C stops: DuckDB raises its own InterruptException (a real one here)."""
    import threading

    import duckdb

    con = duckdb.connect()
    threading.Timer(0.3, con.interrupt).start()
    con.execute("SELECT count(*) FROM range(1000000000000) t(i) WHERE i % 7 = 3").fetchall()
    return 0


def _arrow_read_interrupted(args: object) -> int:
    raise RuntimeError("Query interrupted")  # how it surfaces through a record batch reader


@pytest.mark.parametrize("command", [_duckdb_interrupted, _arrow_read_interrupted])
def test_ctrl_c_inside_duckdb_is_interrupted_not_a_traceback(
    command: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # 1 build in 3 interrupted with Ctrl-C ended in "RuntimeError: Query interrupted".
    monkeypatch.setattr("deepcart.cli._cmd_build", command)
    assert main(["build", "--tag", "t"]) == 130
    assert capsys.readouterr().err == "deepcart: interrupted\n"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--split", "users", "--cut-points", "0,1"],
         "--cut-points: the users split does not use it (only --split timestamp does)"),
        (["--split", "last-out", "--holdout", "0.5"],
         "--holdout: the last-out split does not use it (only --split users or random does)"),
        (["--split", "random", "--holdout-by", "time"],
         "--holdout-by: the random split does not use it (only --split users does)"),
    ],
)  # fmt: skip
def test_a_split_flag_the_protocol_does_not_read_is_refused(
    flags: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    # They were ignored without a word: the split made was not the one asked for.
    for command in (["split"], ["test", "--type", "popular"]):
        assert main([*command, "--data-tag", "nowhere", *flags]) == 2
        assert capsys.readouterr().err == f"deepcart: error: {message}; leave it out\n"


def test_a_reader_that_goes_away_does_not_stop_the_work(tmp_path: Path) -> None:
    """`deepcart build ... | head -0`: the first line printed met a closed pipe, and the build
    ended there with a BrokenPipeError traceback and no manifest. Now the output is dropped and
    the work finishes."""

    raw = tmp_path / "raw"
    assert main(["synth", "--users", "300", "--items", "150", "--reviews", "3000",
                 "--output-dir", str(raw), "--quiet"]) == 0  # fmt: skip
    argv = [sys.executable, "-m", "deepcart", "build", "--tag", "t", "--output-dir",
            str(tmp_path / "data"), "--reviews-file", str(raw / "Electronics.jsonl.gz"),
            "--items-file", str(raw / "meta_Electronics.jsonl.gz")]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert (tmp_path / "data" / "t" / "manifest.json").is_file()
