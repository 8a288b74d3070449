"""Input listing (on the driver) and opening (inside tasks): local paths, globs, directories and fsspec URLs."""

from __future__ import annotations

import glob
import os
import re
from typing import BinaryIO

from corpus.assets import is_url
from corpus.io.remote import COMMONCRAWL_URL, StorageOptions, crawl_listing_url, list_crawl, open_remote

_GLOB_CHARS = re.compile(r"[*?\[]")
#: Files picked up when an input is a directory (explicitly named files are read whatever their name).
ARCHIVE_NAME = re.compile(r"\.(warc|arc)(\.[a-z0-9]+)*$", re.IGNORECASE)
#: ... and, for documents extracted elsewhere (input_format=jsonl or parquet, or a folder with no archive).
DOCUMENT_NAME = re.compile(r"\.(jsonl|ndjson|parquet)(\.gz)?$", re.IGNORECASE)


def _folder_files(names: list[str], input_format: str) -> list[str]:
    """The files of a folder given as input: archives (WARC/ARC), or documents (JSONL/Parquet) when the format
    says so, or with input_format=auto when the folder holds no archive."""
    archives = [n for n in names if ARCHIVE_NAME.search(n)]
    if input_format == "warc" or (input_format == "auto" and archives):
        return archives
    return [n for n in names if DOCUMENT_NAME.search(n) and not os.path.basename(n).startswith(("_", "."))]


class InputError(ValueError):
    """An input specification matched nothing or could not be listed."""


def _under(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or inside it (local paths compared after resolving symbolic links)."""
    if not is_url(path) and not is_url(folder):
        path, folder = os.path.realpath(path), os.path.realpath(folder)
    path, folder = path.rstrip("/") + "/", folder.rstrip("/") + "/"
    return path.startswith(folder)


def _spec_root(spec: str) -> str:
    """The folder or file an input spec names, up to its first glob character."""
    path = spec if is_url(spec) else os.path.abspath(os.path.expanduser(spec.removeprefix("file://")))
    match = _GLOB_CHARS.search(path)
    if match:
        path = path[: match.start()].rsplit("/", 1)[0] or "/"
    return path


def refuse_output(output: str, specs: list[str]) -> None:
    """Raise InputError when `output` is the filesystem root or the home folder, or equals or contains one of the
    inputs `specs` (a rerun would read its own output, or the run would write into the data it reads). An output
    inside an input folder is fine: its files are never listed as inputs (`expand_inputs(..., exclude=)`)."""
    local = not is_url(output)
    resolved = os.path.realpath(output) if local else output.rstrip("/")
    if local and resolved in ("/", os.path.realpath(os.path.expanduser("~"))):
        raise InputError(f"output {output!r} is {'the filesystem root' if resolved == '/' else 'your home folder'}; "
                         "give the run a folder of its own")  # fmt: skip
    for spec in specs:
        if crawl_listing_url(spec, COMMONCRAWL_URL) is not None:
            continue  # a crawl id
        if is_url(spec) != (not local) or (is_url(spec) and spec.split("://")[0] != output.split("://")[0]):
            continue  # another filesystem
        root = _spec_root(spec)
        if _under(root, output):
            what = "is" if root.rstrip("/") == output.rstrip("/") else "contains"
            raise InputError(f"output {output!r} {what} the input {spec!r}; write the output to a folder of its own")


def _list_url(spec: str, input_format: str) -> list[str]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(spec)
    protocol = spec.split("://", 1)[0]
    try:
        if _GLOB_CHARS.search(path):
            found = fs.glob(path)
        elif fs.isdir(path):
            found = _folder_files(fs.find(path), input_format)
        elif spec.endswith("/"):
            raise InputError(f"input {spec!r}: no such folder")
        else:
            return [spec]  # one file: opened (and, if missing, reported as a read error) by its task
    except OSError as exc:  # no such bucket, access denied, endpoint unreachable
        raise InputError(f"input {spec!r} could not be listed: {type(exc).__name__}: {exc}") from None
    return [p if "://" in p else f"{protocol}://{p}" for p in found]


def _list_local(spec: str, input_format: str) -> list[str]:
    path = os.path.expanduser(spec.removeprefix("file://"))
    if _GLOB_CHARS.search(path):
        found = [p for p in glob.glob(path, recursive=True) if os.path.isfile(p)]
    elif os.path.isdir(path):
        found = _folder_files(
            [os.path.join(root, name) for root, _, names in os.walk(path) for name in names], input_format
        )
    elif os.path.isfile(path):
        found = [path]
    else:
        raise InputError(f"input {spec!r} does not exist")
    return [os.path.abspath(p) for p in found]


def expand_inputs(
    specs: list[str], storage: StorageOptions | None = None, input_format: str = "auto", exclude: str | None = None
) -> list[str]:
    """Paths, globs, directories, URLs and Common Crawl ids -> a sorted, de-duplicated list of files (sorted, so
    that shard numbers are stable across runs). `storage` says where crawl ids are listed (the config's
    `storage` section; default: Common Crawl's HTTPS listing of WARC files). Files under folder `exclude` (the
    run's output, when it lies inside an input folder) are left out."""
    crawls_url = storage.commoncrawl_url if storage else COMMONCRAWL_URL
    listing_kind = storage.commoncrawl_listing if storage else "warc"
    files: set[str] = set()
    for spec in specs:
        listing = crawl_listing_url(spec, crawls_url, listing_kind)
        if listing is not None:
            try:
                found = list_crawl(listing, crawls_url)
            except (OSError, ValueError) as exc:
                raise InputError(
                    f"input {spec!r}: could not read the crawl's listing {listing}: {exc} "
                    "(storage.commoncrawl_url says where crawls are listed)"
                ) from None
        else:
            found = _list_url(spec, input_format) if is_url(spec) else _list_local(spec, input_format)
        if exclude is not None:
            found = [f for f in found if not _under(f, exclude)]
        if not found:
            kinds = "WARC/ARC" if input_format == "warc" else "JSONL/Parquet" if input_format != "auto" else "WARC/ARC"
            raise InputError(f"input {spec!r} matches no {kinds} file")
        files.update(found)
    return sorted(files)


def expand_parquet(specs: list[str]) -> list[str]:
    """Parquet inputs (files, folders, globs, URLs) -> a sorted list of .parquet files; folders are searched
    recursively, skipping hidden and underscore-prefixed entries (Spark's _temporary, _SUCCESS)."""
    files: set[str] = set()
    for spec in specs:
        if is_url(spec):
            import fsspec

            fs, path = fsspec.core.url_to_fs(spec)
            protocol = spec.split("://", 1)[0]
            found = fs.glob(path) if _GLOB_CHARS.search(path) else (fs.find(path) if fs.isdir(path) else [path])
            found = [p if "://" in p else f"{protocol}://{p}" for p in found]
        else:
            path = os.path.expanduser(spec.removeprefix("file://"))
            if _GLOB_CHARS.search(path):
                found = glob.glob(path, recursive=True)
            elif os.path.isdir(path):
                found = [
                    os.path.join(root, name)
                    for root, dirs, names in os.walk(path)
                    if not any(part.startswith(("_", ".")) for part in os.path.relpath(root, path).split(os.sep)[1:])
                    for name in names
                ]
            elif os.path.isfile(path):
                found = [path]
            else:
                raise InputError(f"input {spec!r} does not exist")
            found = [os.path.abspath(p) for p in found]
        parquet = [p for p in found if p.endswith(".parquet") and not os.path.basename(p).startswith(("_", "."))]
        if not parquet:
            raise InputError(f"input {spec!r} has no .parquet file")
        files.update(parquet)
    return sorted(files)


def open_input(path: str) -> BinaryIO:
    """A local file, or a remote one read with range requests and retries (corpus.io.remote)."""
    if is_url(path):
        return open_remote(path)
    return open(path, "rb")


_CRAWL_ID = re.compile(r"CC-MAIN-\d{4}-\d{2}")


def crawl_name(path: str, configured: str | None = None) -> str:
    """The `crawl` column: the configured name, else a CC crawl id in the path, else the parent folder's name."""
    if configured:
        return configured
    m = _CRAWL_ID.search(path)
    if m:
        return m.group(0)
    parent = os.path.basename(os.path.dirname(path.rstrip("/")))
    return parent or "unknown"
