"""Filesystem operations on output folders, for local paths and any fsspec URL (s3://, gs://, ...).

Spark or a Python task (`corpus.io.shards`) writes the data; these helpers list, rename, digest and describe
what was written, on the driver (manifest, verify) or inside tasks (digests of large shards).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
from dataclasses import asdict, dataclass
from typing import Any

from corpus.assets import is_url


def filesystem(url: str) -> tuple[Any, str]:
    import fsspec

    if is_url(url):
        return fsspec.core.url_to_fs(url)
    return fsspec.filesystem("file"), os.path.abspath(os.path.expanduser(url.removeprefix("file://")))


def absolute(url: str) -> str:
    """Local paths made absolute; URLs unchanged."""
    return url.rstrip("/") if is_url(url) else os.path.abspath(os.path.expanduser(url.removeprefix("file://")))


def spark_path(url: str) -> str:
    """How Spark names a file in `_metadata.file_path` / input_file_name(): `file:/abs/path` for local files."""
    return url if is_url(url) else "file:" + absolute(url)


def join(base: str, *parts: str) -> str:
    return posixpath.join(base, *parts) if is_url(base) else os.path.join(base, *parts)


def _url(fs: Any, path: str, like: str) -> str:
    if not is_url(like):
        return path
    return path if "://" in path else f"{like.split('://', 1)[0]}://{path}"


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def size(url: str) -> int:
    fs, path = filesystem(url)
    return int(fs.size(path))


def list_files(url: str, suffix: str = "") -> list[str]:
    """Files directly under folder `url` (sorted), or [] if it does not exist."""
    fs, path = filesystem(url)
    if not fs.exists(path):
        return []
    return sorted(_url(fs, p, url) for p in fs.ls(path, detail=False) if p.endswith(suffix) and fs.isfile(p))


def list_dirs(url: str) -> list[str]:
    fs, path = filesystem(url)
    if not fs.exists(path):
        return []
    return sorted(_url(fs, p, url) for p in fs.ls(path, detail=False) if fs.isdir(p))


def move(src: str, dst: str) -> None:
    fs, src_path = filesystem(src)
    _, dst_path = filesystem(dst)
    fs.makedirs(posixpath.dirname(dst_path) if is_url(dst) else os.path.dirname(dst_path), exist_ok=True)
    fs.mv(src_path, dst_path)


def remove(url: str) -> None:
    fs, path = filesystem(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def makedirs(url: str) -> None:
    fs, path = filesystem(url)
    fs.makedirs(path, exist_ok=True)


def read_text(url: str) -> str:
    fs, path = filesystem(url)
    with fs.open(path, "r", encoding="utf-8") as fh:
        return fh.read()


def write_text(url: str, text: str, if_changed: bool = False) -> bool:
    """Write `text` so that readers see the old file or the new one, never a partial one (a failed write, a full
    disk say, leaves no temporary file behind). With `if_changed`, a file that already holds `text` is left
    alone, so that a run with nothing new to say works on read-only storage. Returns whether it wrote."""
    fs, path = filesystem(url)
    if if_changed and fs.exists(path):
        with fs.open(path, "rb") as fh:
            if fh.read() == text.encode("utf-8"):
                return False
    if is_url(url):
        fs.pipe_file(path, text.encode("utf-8"))  # object stores publish a PUT atomically
        return True
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    return True


def check_writable(url: str) -> None:
    """Raise OSError (naming the folder) unless files can be created in folder `url` (a local one; object
    stores are checked by their first write)."""
    if is_url(url):
        return
    path = absolute(url)
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-check-{os.getpid()}")
        with open(probe, "wb") as fh:
            fh.write(b"x")
        os.remove(probe)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from None


@dataclass(frozen=True)
class ShardInfo:
    path: str  # relative to the output folder
    rows: int | None  # Parquet rows; None for other files
    bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_file(url: str, relative_to: str) -> ShardInfo:
    """Size and sha256 of one output file, and its row count if it is Parquet (from the footer)."""
    fs, path = filesystem(url)
    digest = hashlib.sha256()
    size = 0
    with fs.open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
            size += len(chunk)
    rows = None
    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        with fs.open(path, "rb") as fh:
            rows = pq.ParquetFile(fh).metadata.num_rows
    return ShardInfo(describe_relative(url, relative_to), rows, size, digest.hexdigest())


def describe_relative(url: str, root: str) -> str:
    """`url` relative to the folder `root` (as manifests record paths)."""
    prefix = root.rstrip("/") + "/"
    return url[len(prefix) :] if url.startswith(prefix) else url


def list_tree(url: str) -> dict[str, int]:
    """Every file under folder `url`: path relative to it -> size in bytes ({} if it does not exist)."""
    fs, path = filesystem(url)
    if not fs.exists(path):
        return {}
    root = path.rstrip("/") + "/"
    out: dict[str, int] = {}
    for name, info in fs.find(path, detail=True).items():
        if info.get("type", "file") == "file" and name.startswith(root):
            out[name[len(root) :].replace(os.sep, "/")] = int(info.get("size") or 0)
    return out


MIRROR_STATE = ".mirror.json"


def _copy(src_fs: Any, src_path: str, dst_fs: Any, dst_path: str, local_dst: bool) -> None:
    if local_dst:
        os.makedirs(os.path.dirname(dst_path), exist_ok=True)
    with src_fs.open(src_path, "rb") as fin, dst_fs.open(dst_path, "wb") as fout:
        while chunk := fin.read(1 << 24):
            fout.write(chunk)


def mirror(
    src: str, dst: str, state: str | None = None, last: str = "manifest.json", skip: tuple[str, ...] = ("_tmp/",)
) -> dict[str, int]:
    """Make folder `dst` hold what folder `src` holds (files under `skip` prefixes aside), copying only what
    changed. `dst`'s `last` file is deleted first and copied last, so a reader of `dst` never takes a
    half-copied folder for a complete one.

    A file is unchanged when `dst` has it with the same size and `src`'s copy has the size and modification time
    it had when it was last mirrored to `dst` (remembered in src/.mirror.json, so nothing is re-read to
    decide; `state` names another place for that file). Returns counts: copied, kept, deleted."""
    import json

    src_fs, src_root = filesystem(src)
    dst_fs, dst_root = filesystem(dst)
    state_url = state or join(src, MIRROR_STATE)
    try:
        states = json.loads(read_text(state_url)) if exists(state_url) else {}
    except ValueError:
        states = {}
    before: dict[str, list] = states.get(dst, {})
    wanted = {
        rel: size
        for rel, size in list_tree(src).items()
        if rel.rsplit("/", 1)[-1] != MIRROR_STATE and not rel.startswith(skip)
    }
    present = {rel: size for rel, size in list_tree(dst).items() if rel.rsplit("/", 1)[-1] != MIRROR_STATE}
    counts = {"copied": 0, "kept": 0, "deleted": 0}
    if last in present:
        dst_fs.rm(posixpath.join(dst_root, last))
        del present[last]
    after: dict[str, list] = {}
    for rel in sorted(wanted, key=lambda r: (r == last, r)):  # `last` after everything else
        if rel == last:
            for extra in sorted(set(present) - set(wanted)):
                dst_fs.rm(posixpath.join(dst_root, extra))
                counts["deleted"] += 1
        info = src_fs.info(posixpath.join(src_root, rel))
        stamp = _stamp(info)
        if rel != last and present.get(rel) == wanted[rel] and before.get(rel) == stamp:
            counts["kept"] += 1
        else:
            _copy(src_fs, posixpath.join(src_root, rel), dst_fs, posixpath.join(dst_root, rel), not is_url(dst))
            counts["copied"] += 1
        after[rel] = stamp
    if last not in wanted:
        for extra in sorted(set(present) - set(wanted)):
            dst_fs.rm(posixpath.join(dst_root, extra))
            counts["deleted"] += 1
    states[dst] = after
    if state is not None and not is_url(dst):
        # Pulled into a local folder that keeps the state (a staging folder filled from its target): the copies
        # are the target's files, so mirroring them back must not upload them again.
        states[src] = {rel: _stamp(dst_fs.info(posixpath.join(dst_root, rel))) for rel in after}
    write_text(state_url, json.dumps(states))
    return counts


def _stamp(info: dict) -> list:
    return [int(info.get("size") or 0), str(info.get("mtime") or info.get("LastModified") or "")]
