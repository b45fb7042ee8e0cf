"""``deepcart train --type als --engine spark``: implicit ALS fit by Spark MLlib, saved as our ALS.

The fit runs in ``pyspark.ml.recommendation.ALS`` (``implicitPrefs=True``) on the split's
training triples; the result is converted into an ordinary :class:`~deepcart.models.als.ALSModel`
(item factors, training popularity) and saved with :func:`deepcart.training.save_model`. So the
artifact is the usual ``model.json`` + ``arrays.npz`` + ``items.parquet``: ``deepcart test``,
``recommend`` and the service load and fold in users exactly as for a locally trained ALS, and
nothing at serving time needs Spark or Java.

Hyperparameters are ALSModel's own (``--params`` takes the same names) and map onto MLlib as:

==================================  =========================================================
ALSModel                            MLlib ALS
==================================  =========================================================
``factors``                         ``rank``
``iterations``                      ``maxIter`` (each a user and an item half-sweep, as ours)
``alpha``                           ``alpha``: MLlib's confidence is ``1 + alpha |r|``, ours is
                                    ``1 + alpha r`` (linear) or ``1 + alpha log(1 + r / eps)``
                                    (log); MLlib gets ``r`` = the rating (or 1 when
                                    ``use_rating_values`` is false, or ``log(1 + r / eps)`` for
                                    the log confidence), so the confidences are identical
``regularization`` (``lambda``)     ``regParam = lambda / mean(n_u)``; default 10 here (see
                                    below), not ALSModel's 50
``seed``                            ``seed`` (MLlib draws its own initial factors)
``cg_steps``, ``backend``           an error (MLlib solves each row exactly, by Cholesky)
==================================  =========================================================

Regularization differs in kind. Hu et al. (and :mod:`deepcart.models.als`, including its fold-in)
add a constant ``lambda I`` to every row's system. MLlib follows ALS-WR (Zhou et al. 2008): a
row with ``n`` interactions gets ``regParam * n * I``, users and items alike. We pass
``regParam = lambda / mean(n_u)`` (the mean number of training interactions per user), so a user
with the mean activity is regularized as in our ALS; heavier users and popular items are
regularized more, lighter ones less. The saved model keeps ``regularization = lambda``, and
fold-in (scoring) solves the constant-``lambda`` system against MLlib's item factors.

ALS-WR shrinks popular items harder than a constant ``lambda`` does, so the ``lambda`` that suits
our ALS (50) over-regularizes MLlib: on the quickstart validation users MLlib's NDCG@10 is flat
for ``regParam`` 0.25 to 1 (``lambda`` 5 to 20) and lower at 0.05 and 2.4. Without an explicit
``regularization`` in ``--params`` the Spark trainer therefore uses ``lambda = 10``
(:data:`SPARK_DEFAULT_REGULARIZATION`). Measured figures against the numpy/implicit ALS are in
docs/scale.md: a few points of NDCG@10 below it, far above the popularity baseline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from deepcart.data.spark_session import DEFAULT_MASTER, check_spark, get_spark
from deepcart.errors import InputError
from deepcart.fsutil import atomic_write_text
from deepcart.models import create
from deepcart.models.als import ALSModel
from deepcart.models.base import as_csr

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from deepcart.data.split import SplitParams
    from deepcart.training import TrainResult


#: ``regularization`` used when ``--params`` gives none (module docstring).
SPARK_DEFAULT_REGULARIZATION = 10.0


def mllib_params(model: ALSModel, x: sp.csr_matrix) -> dict[str, Any]:
    """The MLlib ALS parameters that fit ``model``'s hyperparameters on ``x`` (module docstring)."""
    x = as_csr(x)
    active_users = int(np.count_nonzero(np.diff(x.indptr)))
    mean_nu = x.nnz / active_users if active_users else 1.0
    return {
        "rank": int(model.factors),
        "maxIter": int(model.iterations),
        "regParam": float(model.regularization) / mean_nu,
        "alpha": float(model.alpha),
        "implicitPrefs": True,
        "seed": int(model.seed),
        "nonnegative": False,
    }


def _mllib_ratings(model: ALSModel, x: sp.csr_matrix) -> sp.coo_matrix:
    """``x`` with each value ``r`` replaced by the ``r'`` for which MLlib's ``1 + alpha r'`` is
    ``model``'s confidence (zeros dropped, as ALSModel does)."""
    x = sp.csr_matrix(x, dtype=np.float64, copy=True)
    x.eliminate_zeros()
    if x.nnz and x.data.min() < 0:
        raise InputError(f"user_items: ALS needs non-negative values, got {x.data.min()}")
    r = x.data if model.use_rating_values else np.ones_like(x.data)
    if model.confidence == "log":
        r = np.log1p(r / model.eps)
    x.data = r
    return x.tocoo()


def _to_spark(spark: SparkSession, table: pa.Table) -> DataFrame:
    try:
        return spark.createDataFrame(table)  # pyspark >= 4.0 takes Arrow tables
    except TypeError:  # pragma: no cover - pyspark 3.5 (needs pandas)
        return spark.createDataFrame(table.to_pandas())


def _to_arrow(df: DataFrame) -> pa.Table:
    if hasattr(df, "toArrow"):  # pyspark >= 4.0
        return df.toArrow()
    rows = df.collect()  # pragma: no cover - pyspark 3.5
    return pa.table(
        {"id": [r[0] for r in rows], "features": [list(r[1]) for r in rows]}
    )  # pragma: no cover


#: ALSModel hyperparameters of the local solvers only (module docstring): an error on Spark, not
#: silently ignored.
LOCAL_ONLY = ("cg_steps", "backend")
#: MLlib's Java types: ``rank`` and ``maxIter`` are ints, ``seed`` a long.
_JAVA_LIMITS = {"factors": 2**31, "iterations": 2**31, "seed": 2**63}


def spark_model(params: dict[str, Any] | None = None) -> ALSModel:
    """The unfitted :class:`ALSModel` for ``params`` (``--params``) on Spark: ALSModel's checks,
    plus those MLlib adds (no local-solver keys, values within its Java types)."""
    local = sorted(set(params or {}) & set(LOCAL_ONLY))
    if local:
        raise InputError(
            f"--params: {', '.join(local)}: only for --engine local (MLlib solves each row "
            "exactly, without these solver settings)"
        )
    model = create("als", {"regularization": SPARK_DEFAULT_REGULARIZATION, **(params or {})})
    if not isinstance(model, ALSModel):  # pragma: no cover - the registry maps als to ALSModel
        raise InputError("--engine spark: trains --type als only")
    for name, limit in _JAVA_LIMITS.items():
        if int(getattr(model, name)) >= limit:
            raise InputError(
                f"--params: bad value for 'als': {name}: MLlib ALS needs an integer below "
                f"2**{limit.bit_length() - 1}, got {getattr(model, name)}"
            )
    return model


def fit_als_spark(
    user_items: Any,
    params: dict[str, Any] | None = None,
    *,
    spark: SparkSession | None = None,
    spark_master: str = DEFAULT_MASTER,
) -> tuple[ALSModel, dict[str, Any]]:
    """Fit implicit ALS with Spark MLlib on a CSR user x item matrix; return the equivalent
    fitted :class:`ALSModel` (ready to recommend and save) and the MLlib parameters used.
    A Java heap too small for the fit (``factors`` beyond memory) is a :class:`MemoryError`."""
    model = spark_model(params)
    x = as_csr(user_items)
    n_users, n_items = x.shape
    if n_items == 0 or x.nnz == 0:
        raise InputError("user_items: no interactions to train on")
    if max(n_users, n_items) >= 2**31:
        raise InputError("user_items: MLlib ALS needs fewer than 2**31 users and items")
    coo = _mllib_ratings(model, x)
    mparams = mllib_params(model, x)
    spark = spark or get_spark(spark_master)
    from pyspark.ml.recommendation import ALS

    triples = pa.table(
        {
            "user": pa.array(coo.row.astype(np.int32)),
            "item": pa.array(coo.col.astype(np.int32)),
            "rating": pa.array(coo.data.astype(np.float32)),
        }
    )
    df = _to_spark(spark, triples)
    als = ALS(userCol="user", itemCol="item", ratingCol="rating", **mparams)
    try:
        fitted = als.fit(df)
    except Exception as exc:  # Py4JJavaError: the JVM's exception is in its text
        if "java.lang.OutOfMemoryError" not in str(exc):
            raise
        raise MemoryError(f"MLlib ALS with {model.factors} factors: Java heap space") from None
    factors = _to_arrow(fitted.itemFactors)
    ids = factors.column("id").to_numpy()
    flat = factors.column("features").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    item_factors = np.zeros((n_items, int(model.factors)), dtype=np.float32)
    item_factors[ids] = flat.reshape(len(ids), int(model.factors))  # items never seen stay 0
    counts = np.bincount(coo.col, minlength=n_items).astype(np.float32)
    model.n_items_ = n_items
    model._set_state({"item_factors_": item_factors, "item_counts_": counts})
    model.backend_ = "spark"
    return model, mparams


def train_als_spark(
    *,
    data_dir: str | Path,
    tag: str,
    split_params: SplitParams,
    params: dict[str, Any] | None = None,
    model_dir: str | Path | None = None,
    mode: str = "best",
    spark_master: str = DEFAULT_MASTER,
    echo: Callable[[str], None] = print,
) -> TrainResult:
    """``deepcart train --type als --engine spark``: :func:`deepcart.training.train_model` with
    the fit on Spark MLlib. Saves to the same place (``<model-dir>/<tag>/<split>/als[-worst]``),
    in the same format; ``model.json``'s ``extra.trainer`` records the MLlib parameters."""
    from deepcart.data.paths import DEFAULT_MODEL_DIR
    from deepcart.data.split import make_split
    from deepcart.data.splitdata import load_split_data
    from deepcart.modes import check_mode, model_input
    from deepcart.training import TrainResult, check_model_folder, model_path, save_model

    check_mode(mode)
    spark_model(params)  # validate the hyperparameters before any work
    check_spark(spark_master)  # the master URL, pyspark, Java: before the dataset is read
    split = make_split(data_dir, tag, split_params, echo=echo)
    data = load_split_data(split)
    path = model_path(model_dir or DEFAULT_MODEL_DIR, tag, split.params.protocol, "als", mode)
    check_model_folder(path)
    spark = get_spark(spark_master)  # the JVM (seconds) once the cheap checks passed
    what = "" if mode == "best" else " (worst mode: reversed ratings)"
    echo(f"Training als on Spark MLlib{what} on {data.describe()}...")
    x = model_input(data.train, mode, ALSModel.feedback)
    started = time.perf_counter()
    model, mparams = fit_als_spark(x, params, spark=spark)
    seconds = time.perf_counter() - started
    save_model(model, data, path, seconds, mode)
    meta_file = path / "model.json"
    meta = json.loads(meta_file.read_text())
    meta["extra"]["trainer"] = {
        "engine": "spark",
        "spark_version": spark.version,
        "spark_master": spark.sparkContext.master,
        "mllib_params": mparams,
    }
    atomic_write_text(meta_file, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    echo(
        f"Trained als on Spark MLlib (regParam {mparams['regParam']:.4g}) in {seconds:.2f} s. "
        f"Model saved to {path}/"
    )
    return TrainResult(model=model, path=path, fit_seconds=seconds)
