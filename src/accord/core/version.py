"""The installed package's version, for User-Agent headers and ``accord --version``.

Modules below the public API read it here rather than through ``accord.__version__``: importing the
package root from inside the package would make an import cycle through its lazy names.
"""

from __future__ import annotations

from functools import cache


@cache
def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("accord")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "0.0.0"
