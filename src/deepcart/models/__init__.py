"""The model zoo: one module per family, looked up by ``--type`` name.

Classes are imported lazily so that optional dependencies (torch) are only needed by the models
that use them.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from typing import Any

from deepcart.errors import InputError

#: ``--type`` name -> (module, class).
REGISTRY: dict[str, tuple[str, str]] = {
    "random": ("deepcart.models.random", "RandomModel"),
    "popular": ("deepcart.models.popular", "PopularModel"),
    "naive": ("deepcart.models.naive", "NaiveModel"),
    "weighted-rating": ("deepcart.models.weighted_rating", "WeightedRatingModel"),
    "baseline": ("deepcart.models.baseline", "BaselineModel"),
    "svd": ("deepcart.models.svd", "SVDModel"),
    "itemknn": ("deepcart.models.knn", "ItemKNN"),
    "userknn": ("deepcart.models.knn", "UserKNN"),
    "als": ("deepcart.models.als", "ALSModel"),
    "ease": ("deepcart.models.ease", "EASEModel"),
    "autoencoder": ("deepcart.models.autoencoder", "AutoRecModel"),
    "dae": ("deepcart.models.dae", "MultDAEModel"),
    "vae": ("deepcart.models.vae", "MultVAEModel"),
}
#: Models that need PyTorch (the ``neural`` extra); without it they are left out of
#: ``model_names()`` ('all') and naming one is a one-line error.
NEEDS_TORCH = frozenset({"autoencoder", "dae", "vae"})


def available(name: str) -> bool:
    """Whether model ``name``'s optional dependencies are installed."""
    return name not in NEEDS_TORCH or importlib.util.find_spec("torch") is not None


def model_names() -> list[str]:
    """The registered models that can run here (those needing a missing extra left out)."""
    return [name for name in REGISTRY if available(name)]


def model_class(name: str) -> type:
    try:
        module, cls = REGISTRY[name]
    except KeyError:
        raise InputError(
            f"--type: unknown model {name!r}; choose one of {', '.join(REGISTRY)} or 'all'"
        ) from None
    if not available(name):
        raise InputError(f"{name} needs PyTorch: pip install 'deepcart[neural]' -c constraints.txt")
    return getattr(importlib.import_module(module), cls)


def create(name: str, params: dict[str, Any] | None = None, *, where: str = "--params") -> Any:
    """Instantiate model ``name`` and check its hyperparameters (``check_params``), so a bad one
    fails here, before any data is read; an unknown one is an error, never silently dropped.

    Errors are :class:`InputError` naming ``where`` (the flag or file the parameters came from),
    then the model and the hyperparameter: ``--params: bad value for 'als': factors: expected an
    integer >= 1, got 'x'`` (after the prefix, the message ``fit`` gives).
    """
    cls = model_class(name)
    params = dict(params or {})
    allowed = cls.param_names()
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InputError(
            f"{where}: unknown hyperparameter(s) {', '.join(unknown)} for {name!r}; "
            f"it takes {', '.join(allowed) or 'none'}"
        )
    try:
        model = cls(**params)
        model.check_params()
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: bad value for {name!r}: {exc}") from None
    return model


def parse_json(text: str, flag: str) -> Any:
    """Parse JSON given on the command line (``flag`` names the option in errors); a key given
    twice in an object is an error (json would keep the last)."""

    def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise InputError(f"{flag}: {key!r} given twice")
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise InputError(f"{flag}: not valid JSON ({exc.msg} at column {exc.colno})") from None


def parse_params(text: str | None, flag: str = "--params") -> dict[str, Any]:
    """Parse the ``--params`` JSON object (``flag`` names the option in errors); a key given
    twice is an error (json would keep the last)."""
    if not text:
        return {}
    value = parse_json(text, flag)
    if not isinstance(value, dict):
        raise InputError(f"{flag}: expected a JSON object, got {type(value).__name__}")
    return value
