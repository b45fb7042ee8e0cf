"""DeepCart: recommendations and anti-recommendations from Amazon product reviews."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deepcart")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
