"""A small served world, built once: a synthetic category, its dataset and production models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the service needs the 'serve' extra")

from fastapi.testclient import TestClient  # noqa: E402

from deepcart.data.build import build_dataset  # noqa: E402
from deepcart.data.split import SplitParams  # noqa: E402
from deepcart.data.synth import synthesize  # noqa: E402
from deepcart.serve.api import create_app  # noqa: E402
from deepcart.serve.config import Settings, load_settings  # noqa: E402
from deepcart.training import train_model  # noqa: E402

from .postgres import PostgresServer  # noqa: E402
from .postgres import unavailable_reason as postgres_unavailable_reason  # noqa: E402

TAG = "svc"
TOKEN = "s3cret-token"


@dataclass(frozen=True)
class World:
    root: Path
    data_dir: Path
    model_dir: Path
    users: list[str]
    items: list[str]

    def settings(self, db: Path, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "data_dir": self.data_dir,
            "data_tag": TAG,
            "type": "als",
            "model_dir": self.model_dir,
            "db_url": f"sqlite:///{db}",
            "admin_token": TOKEN,
        }
        values.update(overrides)
        return load_settings(**values)


def make_world(root: Path) -> World:
    synthesize(root / "raw", n_users=500, n_items=200, n_reviews=7000, seed=3, progress=False)
    build_dataset(
        reviews_file=root / "raw" / "Electronics.jsonl.gz",
        items_file=root / "raw" / "meta_Electronics.jsonl.gz",
        output_dir=root / "data",
        tag=TAG,
        min_interactions=3,
        min_ratings=3,
        progress=False,
        echo=lambda s: None,
    )
    for mode in ("best", "worst"):
        train_model(
            data_dir=root / "data",
            tag=TAG,
            model_type="als",
            split_params=SplitParams(protocol="none"),
            params={"factors": 16, "iterations": 5},
            model_dir=root / "models",
            mode=mode,
            echo=lambda s: None,
        )
    import pyarrow.parquet as pq

    train = pq.read_table(root / "data" / TAG / "splits" / "none" / "train.parquet")
    return World(
        root=root,
        data_dir=root / "data",
        model_dir=root / "models",
        users=sorted(set(train["user_id"].to_pylist())),
        items=sorted(set(train["parent_asin"].to_pylist())),
    )


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("serve-world"))


@pytest.fixture(scope="module")
def client(world: World, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    """A TestClient of an app with its own review database (one per test module)."""
    db = tmp_path_factory.mktemp("db") / "reviews.db"
    with TestClient(create_app(world.settings(db))) as c:
        yield c


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """A throwaway PostgreSQL server (tests/serve/postgres.py); skips with the reason when
    one cannot run here."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The SQLAlchemy URL of a fresh, empty database on the throwaway server."""
    return postgres_server.database()
