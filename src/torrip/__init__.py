"""torrip: a Python package installer that downloads over BitTorrent and HTTP."""

__all__ = ["__version__"]

__version__ = "0.1.0"
