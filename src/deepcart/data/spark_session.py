"""The SparkSession behind ``--engine spark`` (build, ingest, ALS training).

pyspark is an optional extra (``pip install 'deepcart[spark]'``) and needs a Java 17+ runtime;
both are checked here, before any work, and their absence is an :class:`InputError` that says how
to install them. Nothing else in DeepCart imports pyspark at module level, so ``deepcart --help``
and the DuckDB engine never need it.

:func:`get_spark` returns the active session when there is one (a session started by
``spark-submit``, a notebook or a test fixture: its master and settings win), else starts one for
``master`` with quiet logs (log4j at ERROR, no console progress bar: stdout carries only the
report) and, for a ``local[...]`` master, the local-mode defaults below. Staging: the Spark
engine hands data between Spark and the driver through files; :func:`staging_uri` says where
(``spark.deepcart.stagingDir`` when set, which a cluster needs: a path every executor and the
driver can reach, e.g. ``s3a://bucket/tmp/deepcart``; else a local directory).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepcart.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DEFAULT_MASTER = "local[*]"
#: Spark setting naming a directory shared by the driver and every executor (a URI on a
#: cluster) where the Spark engine stages its outputs before the driver combines them.
STAGING_CONF = "spark.deepcart.stagingDir"
JAVA_HINT = (
    "--engine spark needs Java 17+: apt-get install -y openjdk-17-jre-headless "
    "(and pip install 'deepcart[spark]')"
)
PYSPARK_HINT = (
    "--engine spark needs pyspark, the 'spark' extra: pip install 'deepcart[spark]' "
    "(and Java 17+: apt-get install -y openjdk-17-jre-headless)"
)
MIN_JAVA = 17

_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
# PySpark's gateway logs as an interpreter: with its own appender at the root level Spark keeps
# ERROR and prints no "Setting default log level" banner.
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
logger.gateway.additivity = false
logger.gateway.appenderRef.stderr.ref = console
"""


def _java_executable() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("java")


def java_version() -> int | None:
    """The major version of the Java runtime Spark would use, or None when there is none."""
    java = _java_executable()
    if java is None:
        return None
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stderr + out.stdout
    m = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def spark_unavailable_reason() -> str | None:
    """Why ``--engine spark`` cannot run here (pyspark or Java missing), or None if it can."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return PYSPARK_HINT
    version = java_version()
    if version is None:
        return JAVA_HINT
    if version < MIN_JAVA:
        return f"{JAVA_HINT}; found Java {version}"
    return None


#: The master URLs Spark parses (SparkContext.createTaskScheduler and its cluster managers);
#: ``local[0]`` is refused there ("Asked to run locally with 0 threads").
_MASTER = re.compile(
    r"local(\[([1-9]\d*|\*)(\s*,\s*\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|yarn"
    r"|(spark|k8s|mesos)://\S+"
)
#: Seconds to wait for a spark:// or k8s:// master to accept a connection before the JVM starts
#: (Spark itself retries an unreachable standalone master for a minute, then prints its traces).
CONNECT_TIMEOUT = 10.0


def _spark_major() -> int | None:
    """The major version of the installed pyspark, or None without it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return int(version("pyspark").split(".")[0])
    except (PackageNotFoundError, ValueError):
        return None


def _check_master(master: str) -> None:
    """A master URL Spark accepts, checked before the JVM starts (which prints its stack trace
    before failing); an InputError naming --spark-master otherwise."""
    mesos = (_spark_major() or 0) < 4  # Spark 4 removed the Mesos cluster manager
    if _MASTER.fullmatch(master) and (mesos or not master.startswith("mesos://")):
        return
    raise InputError(
        "--spark-master: expected local, local[N], local[*], local[N,F], "
        f"spark://HOST:PORT, yarn{', k8s://URL or mesos://URL' if mesos else ' or k8s://URL'}, "
        f"got {master!r}"
    )


def _master_endpoints(master: str) -> list[tuple[str, int]]:
    """The (host, port) pairs a spark:// (several masters: comma-separated) or k8s:// master
    names; none for the others."""
    if master.startswith("spark://"):
        hosts = master[len("spark://") :].split(",")
        default = 7077
    elif master.startswith("k8s://"):
        rest = master[len("k8s://") :]
        default = 80 if rest.startswith("http://") else 443
        hosts = [re.sub(r"^https?://", "", rest)]
    else:
        return []
    out = []
    for h in hosts:
        h = h.split("/", 1)[0]
        m = re.fullmatch(r"\[?([^\[\]]+?)\]?(?::(\d+))?", h)
        if m:
            out.append((m.group(1), int(m.group(2)) if m.group(2) else default))
    return out


def _check_reachable(master: str) -> None:
    """Fail fast, on one line, when no master of a spark:// or k8s:// URL accepts connections
    (Spark would retry for a minute and print pages of stack traces); yarn needs the Hadoop
    configuration that names its ResourceManager."""
    if master == "yarn":
        if not (os.environ.get("HADOOP_CONF_DIR") or os.environ.get("YARN_CONF_DIR")):
            raise InputError(
                "--spark-master yarn: set HADOOP_CONF_DIR or YARN_CONF_DIR to the cluster's "
                "Hadoop configuration directory (or run under spark-submit)"
            )
        return
    endpoints = _master_endpoints(master)
    reason = ""
    for host, port in endpoints:
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
                return
        except OSError as exc:
            reason = f"{host}:{port}: {exc.strerror or exc}"
    if endpoints:
        raise InputError(f"--spark-master {master}: cannot connect ({reason})")


def _one_line(exc: BaseException) -> str:
    """The gist of a Spark start-up failure: the Java exception (not Py4J's call wrapper and the
    stack trace), on one line."""
    java = getattr(exc, "java_exception", None)
    text = str(java.toString()) if java is not None else str(exc)
    return next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)


def _is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[")


def _local_cores(master: str) -> int:
    """The cores of a ``local``, ``local[N]``, ``local[*]`` or ``local[N,F]`` master."""
    m = re.match(r"local\[(\d+|\*)", master)
    if m and m.group(1) != "*":
        return int(m.group(1))
    return 1 if master == "local" else (os.cpu_count() or 1)


def _under_spark_submit() -> bool:
    """Whether this Python process was started by spark-submit (which owns the master)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _local_driver_memory() -> str:
    """Half the machine's memory (at least 1 GB) for the local-mode JVM heap: in local mode the
    executors live in the driver JVM, and Spark's 1 GB default spills a build of millions of
    reviews to disk many times over."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):  # pragma: no cover - non-POSIX
        return "2g"
    return f"{max(1024, total // 2 // (1 << 20))}m"


def _log_config() -> Path:
    """This user's copy of the quiet log4j2 configuration (written once, atomically)."""
    path = Path(tempfile.gettempdir()) / f"deepcart-spark-log4j2-{os.getuid()}.properties"
    try:
        if path.read_text() == _LOG4J2:
            return path
    except OSError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=path.name, dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(_LOG4J2)
    os.replace(tmp, path)
    return path


def check_spark(master: str = DEFAULT_MASTER) -> None:
    """What :func:`get_spark` checks before it starts a JVM (seconds): the master URL, pyspark
    and Java, and that a spark:// or k8s:// master accepts connections; an InputError if not.
    Nothing to check of the master under spark-submit or with a session already active."""
    submitted = _under_spark_submit()
    if isinstance(master, str) and master.strip() and not submitted:
        _check_master(master)
    reason = spark_unavailable_reason()
    if reason is not None:
        raise InputError(reason)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        from pyspark.sql import SparkSession
    if SparkSession.getActiveSession() is None and not submitted and isinstance(master, str):
        _check_reachable(master)


def get_spark(
    master: str = DEFAULT_MASTER, *, config: dict[str, str] | None = None
) -> SparkSession:
    """The active SparkSession, or a new one for ``master`` (see the module docstring).

    ``config`` adds Spark settings for a new session (ignored when one is already active).
    Raises :class:`InputError` when pyspark or Java 17+ is missing, or the master is malformed
    or does not answer (:func:`check_spark`, before the JVM prints its stack trace).
    """
    check_spark(master)
    with warnings.catch_warnings():
        # pyspark warns about pandas versions it has not certified; DeepCart does not use pandas
        # through Spark.
        warnings.simplefilter("ignore", FutureWarning)
        from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if not isinstance(master, str) or not master.strip():
        raise InputError(f"--spark-master: expected a Spark master URL, got {master!r}")
    builder = SparkSession.builder.appName("deepcart")
    settings: dict[str, str] = {
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
    }
    if not _under_spark_submit():
        builder = builder.master(master)
        conf_file = _log_config()
        java_opts = f"-Dlog4j2.configurationFile={conf_file.as_uri()}"
        settings["spark.driver.extraJavaOptions"] = java_opts
        if _is_local(master):
            # Python tasks (ingest) run with this interpreter, which has deepcart installed.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            settings["spark.ui.enabled"] = "false"
            if "spark.driver.memory" not in (config or {}) and not os.environ.get(
                "SPARK_DRIVER_MEMORY"
            ):
                settings["spark.driver.memory"] = _local_driver_memory()
            # Spark's 200 shuffle partitions suit a cluster; on one machine each map task would
            # write 200 small files per shuffle (the bypass-merge writer). A few per core.
            settings["spark.sql.shuffle.partitions"] = str(max(8, 4 * _local_cores(master)))
    settings.update(config or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            spark = builder.getOrCreate()
        except KeyboardInterrupt:
            _stop_spark_children()
            raise
        except Exception as exc:  # the JVM failed to start: a bad master URL, memory, ports
            raise InputError(
                f"--spark-master {master}: cannot start Spark ({_one_line(exc)})"
            ) from None
    spark.sparkContext.setLogLevel("ERROR")
    _quiet_interrupt(spark)
    log.debug("spark %s session on %s", spark.version, spark.sparkContext.master)
    return spark


def _stop_spark_children() -> None:
    """Ctrl-C while PySpark waits for the JVM it is launching: that JVM ignores SIGINT (PySpark
    starts it so) and, this process gone, would run on as an orphan. Stop it (Linux: /proc)."""
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = stat.read_text().rsplit(")", 1)[1].split()[1]
            cmdline = (stat.parent / "cmdline").read_bytes()
            if ppid == me and b"spark" in cmdline:
                os.kill(int(stat.parent.name), signal.SIGTERM)
        except (OSError, IndexError, ValueError):
            continue


class _Py4JInterruptFilter(logging.Filter):
    """Drops what py4j logs on the root logger (tracebacks) once Ctrl-C was pressed: the
    KeyboardInterrupt itself still propagates (``deepcart: interrupted``). Its own loggers
    (``py4j.*``) are silenced then too."""

    interrupted = False

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.interrupted and f"{os.sep}py4j{os.sep}" in record.pathname)


_QUIET = _Py4JInterruptFilter()


def _quiet_interrupt(spark: SparkSession) -> None:
    """Ctrl-C during a Spark call: cancel the running jobs and raise KeyboardInterrupt, without
    tracebacks. PySpark's own handler calls ``cancelAllJobs`` through the connection the
    interrupted call is still using (a failing reentrant call that py4j logs, with the
    interrupt, as pages of tracebacks) and leaves the executors running into the JVM's exit."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers belong to the main thread (as PySpark's)
    sc = spark.sparkContext
    quiet = _QUIET
    logging.getLogger().addFilter(quiet)  # once: a logger keeps a filter once

    def cancel() -> None:
        try:
            # The JVM's own log goes quiet first: the executors it shuts down with this process
            # log "ERROR Executor ... rejected" lines after "deepcart: interrupted" otherwise.
            sc.setLogLevel("OFF")
            sc.cancelAllJobs()  # a thread of its own: a connection of its own
        except Exception:  # the JVM may be going already; we exit anyway
            pass

    def on_interrupt(signum: int, frame: Any) -> None:
        quiet.interrupted = True
        logging.getLogger("py4j").setLevel(logging.CRITICAL + 1)
        worker = threading.Thread(target=cancel, daemon=True)
        worker.start()
        worker.join(10)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)


def to_uri(path: str | Path) -> str:
    """A URI Spark can read: ``scheme://...`` as given, a local path as ``file:///abs/path``."""
    text = str(path)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        return text
    return Path(text).resolve().as_uri()


def is_uri(path: str | Path) -> bool:
    """Whether ``path`` names a location by URI (``s3a://``, ``gs://``, ``hdfs://``, ...)."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", str(path)) is not None


def staging_uri(spark: SparkSession, local_dir: Path) -> str:
    """A fresh staging location: under ``spark.deepcart.stagingDir`` when set, else
    ``local_dir`` (right for a ``local[...]`` master: driver and executors share the disk)."""
    shared = spark.conf.get(STAGING_CONF, None)
    if shared:
        return shared.rstrip("/") + f"/deepcart-{uuid.uuid4().hex}"
    master = spark.sparkContext.master
    if not _is_local(master):
        log.warning(
            "spark master %s is not local and %s is not set: staging in %s, which the "
            "executors must be able to reach",
            master,
            STAGING_CONF,
            local_dir,
        )
    return to_uri(Path(local_dir) / f"spark-{uuid.uuid4().hex}")


def arrow_filesystem(uri: str) -> tuple[Any, str]:
    """A ``pyarrow.fs`` filesystem and path for ``uri`` (``s3a://``/``s3n://`` read as
    ``s3://``), so the driver can read what the executors staged."""
    import pyarrow.fs as pafs

    fixed = re.sub(r"^s3[an]://", "s3://", uri)
    return pafs.FileSystem.from_uri(fixed)
