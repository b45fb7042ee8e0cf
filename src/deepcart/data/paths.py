"""Where a tagged dataset lives on disk.

``<data_dir>/<tag>/`` holds ``reviews.parquet``, ``items.parquet`` and ``manifest.json`` (written by
``build``) and later ``splits/<protocol>/...`` (written by the split step).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from deepcart.errors import InputError

DEFAULT_DATA_DIR = Path("data/processed")
DEFAULT_RAW_DIR = Path("data/raw")
DEFAULT_MODEL_DIR = Path("models")

_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_tag(tag: str) -> str:
    """Validate a dataset tag: letters, digits, '_', '-', '.', at most 64 characters."""
    if not _TAG_RE.match(tag or ""):
        raise InputError(
            f"--tag/--data-tag: expected letters, digits, '_', '-' or '.' (1-64 characters, "
            f"starting with a letter or digit), got {tag!r}"
        )
    return tag


@dataclass(frozen=True)
class DatasetPaths:
    root: Path

    @property
    def reviews(self) -> Path:
        return self.root / "reviews.parquet"

    @property
    def items(self) -> Path:
        return self.root / "items.parquet"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    def splits(self, protocol: str) -> Path:
        return self.root / "splits" / protocol


def dataset_paths(data_dir: str | Path, tag: str) -> DatasetPaths:
    return DatasetPaths(Path(data_dir) / check_tag(tag))


def require_dataset(data_dir: str | Path, tag: str) -> DatasetPaths:
    """The paths of an existing tagged dataset, or an InputError that says how to build it."""
    paths = dataset_paths(data_dir, tag)
    if not paths.manifest.is_file():
        there = existing_tags(data_dir)
        known = f"; the datasets there: {', '.join(there)}" if there else ""
        raise InputError(
            f"no dataset tagged {tag!r} in {data_dir} (missing {paths.manifest}); "
            f"build it with: deepcart build --tag {tag} --output-dir {data_dir}{known}"
        )
    return paths


def existing_tags(data_dir: str | Path, limit: int = 10) -> list[str]:
    """The tags of the datasets under ``data_dir`` (sorted, at most ``limit``, then '...')."""
    try:
        tags = sorted(d.name for d in Path(data_dir).iterdir() if (d / "manifest.json").is_file())
    except OSError:
        return []
    return tags[:limit] + (["..."] if len(tags) > limit else [])


def check_outside_dataset(out: str | Path, data_dir: str | Path, tag: str, what: str) -> None:
    """An output file (``--out``) must not go inside the folder of dataset ``tag``, which build
    replaces (it could even overwrite the dataset's reviews.parquet); ``what`` names the
    output in the error."""
    root = dataset_paths(data_dir, tag).root
    target = Path(out).resolve()
    if not target.is_relative_to(root.resolve()):
        # Another dataset's folder under the same root (one with a manifest) is no better.
        base = Path(data_dir).resolve()
        others = [p for p in target.parents if p.is_relative_to(base) and p != base]
        found = next((p for p in others if (p / "manifest.json").is_file()), None)
        if found is None:
            return
        root, tag = found, found.name
    raise InputError(
        f"--out: {out} is inside the folder of dataset {tag!r} ({root}), which build "
        f"replaces; write {what} elsewhere"
    )
