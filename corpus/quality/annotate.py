"""LLM pre-labels: documents to any OpenAI-compatible chat-completions server (vLLM, TGI, OpenAI), answers parsed
strictly into labels (corpus.io.labels schema, annotator `llm:<model>`).

    corpus annotate input=DOCS output=LABELS annotate.endpoint=URL annotate.model=NAME [annotate.template=FILE]

- The default prompt scores educational value 0-5 with an additive scheme, in our words after FineWeb-Edu's
  (a user can drop in the published prompt as `annotate.template`: any text with `{text}` where the document goes).
- The `openai` client does the HTTP: retries with exponential backoff (honouring Retry-After) on connection
  errors, 408, 409, 429 and 5xx, `annotate.retries` times. Requests run `annotate.concurrency` at a time and at
  most `annotate.rate` per second.
- An answer whose last line is not `Educational score: N` (N in 0-5; `annotate.answer_pattern`) is a labelled
  failure (`error=malformed_answer`, label null), never a crash; so is a request that still fails after its
  retries (`error=api:<what>`).
- Well-formed answers are cached in SQLite, keyed by (model, template, document), so a rerun asks only for
  what is missing; every row says whether it came from the cache, with the prompt and completion tokens it cost.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

from corpus.assets import cache_dir
from corpus.config import AnnotateSettings, ConfigError
from corpus.io.labels import labels_table

DEFAULT_TEMPLATE_NAME = "edu-additive-v1"
DEFAULT_TEMPLATE = """Below is an extract from a web page. Judge whether it could help teach something in a school
or university setting, by adding points with this additive 0-5 scale:

- Add 1 point if the extract gives some basic information relevant to an educational topic, even if it is mixed
  with unrelated or promotional material such as ads.
- Add another point if it covers certain elements of such a topic but does not follow educational standards: it
  may mix educational content with other content, or give only an overview.
- Award a third point if it is suitable for teaching and introduces key ideas of a school curriculum, coherently,
  though it may be incomplete or not the most thorough.
- Grant a fourth point if it is highly relevant and useful for teaching at grade-school level, clearly written,
  like a chapter of a textbook or a tutorial, with substantial content and little that is beside the point.
- Give a fifth point if it is outstanding for teaching: detailed reasoning, easy to follow, and with insights
  that go beyond what such a page usually offers.

The extract:
<extract>
{text}
</extract>

Explain your judgement in at most 100 words, then end with a last line of the form
Educational score: <total points>"""
ANSWER_PATTERN = r"^\s*Educational score:\s*\**\s*([0-5])\s*\**\s*$"
ANNOTATION_FIELDS = ("answer", "error", "cached", "prompt_tokens", "completion_tokens")


@dataclass
class Template:
    name: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def guideline(self) -> str:
        return f"{self.name}@{self.sha256[:12]}"

    def prompt(self, document: str) -> str:
        return self.text.replace("{text}", document)


def load_template(path: str | None) -> Template:
    if path is None:
        return Template(DEFAULT_TEMPLATE_NAME, DEFAULT_TEMPLATE)
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"annotate.template: cannot read {path} ({exc.strerror})") from None
    if "{text}" not in text:
        raise ConfigError(f"annotate.template: {path} has no {{text}} where the document goes")
    return Template(os.path.basename(path), text)


def parse_answer(answer: str | None, pattern: str = ANSWER_PATTERN) -> int | None:
    """The score on the answer's last non-empty line, or None if that line is not exactly the expected form."""
    lines = [line for line in (answer or "").splitlines() if line.strip()]
    if not lines:
        return None
    match = re.fullmatch(pattern, lines[-1], flags=re.IGNORECASE)
    return int(match.group(1)) if match else None


class Cache:
    """Answers by (model, template, document) in SQLite; safe to share between threads."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.lock = threading.Lock()
        with self.lock:
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer TEXT, prompt_tokens INTEGER,"
                " completion_tokens INTEGER, created TEXT)"
            )
            self.db.commit()

    @staticmethod
    def key(model: str, template: Template, document: str) -> str:
        parts = [model, template.sha256, hashlib.sha256(document.encode()).hexdigest()]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def get(self, key: str) -> tuple[str, int, int] | None:
        with self.lock:
            row = self.db.execute(
                "SELECT answer, prompt_tokens, completion_tokens FROM answers WHERE key = ?", (key,)
            ).fetchone()
        return tuple(row) if row else None

    def put(self, key: str, answer: str, prompt_tokens: int, completion_tokens: int) -> None:
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?)",
                (key, answer, prompt_tokens, completion_tokens, datetime.now(timezone.utc).isoformat()),
            )
            self.db.commit()


class RateLimit:
    """At most `rate` starts per second across threads (0: unlimited)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1 / rate if rate > 0 else 0.0
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + self.interval
        time.sleep(max(0.0, start - now))


class Annotator:
    def __init__(self, settings: AnnotateSettings, answer_pattern: str = ANSWER_PATTERN) -> None:
        import openai

        if not settings.endpoint or not settings.model:
            raise ConfigError("annotate.endpoint and annotate.model: say which server and model to ask")
        self.settings = settings
        self.template = load_template(settings.template)
        self.pattern = answer_pattern
        self.client = openai.OpenAI(
            base_url=settings.endpoint,
            api_key=os.environ.get(settings.api_key_env) or "none",  # local servers take any key
            max_retries=settings.retries,
            timeout=settings.timeout,
        )
        self.cache = Cache(settings.cache or str(cache_dir() / "annotate.sqlite"))
        self.rate = RateLimit(settings.rate)

    def annotate_one(self, document: str) -> dict[str, Any]:
        import openai

        document = document[: self.settings.max_chars]
        key = Cache.key(self.settings.model or "", self.template, document)
        hit = self.cache.get(key)
        out: dict[str, Any] = {"cached": hit is not None, "error": None}
        if hit is not None:
            answer, prompt_tokens, completion_tokens = hit
        else:
            self.rate.wait()
            try:
                response = self.client.chat.completions.create(
                    model=self.settings.model or "",
                    messages=[{"role": "user", "content": self.template.prompt(document)}],
                    max_tokens=self.settings.max_tokens,
                    temperature=self.settings.temperature,
                )
            except openai.APIStatusError as exc:
                return {**out, "error": f"api:http_{exc.status_code}", "answer": None, "label": None,
                        "prompt_tokens": 0, "completion_tokens": 0}  # fmt: skip
            except openai.APIError as exc:  # connection errors and timeouts, after the retries
                return {**out, "error": f"api:{type(exc).__name__}", "answer": None, "label": None,
                        "prompt_tokens": 0, "completion_tokens": 0}  # fmt: skip
            choice = response.choices[0] if response.choices else None
            answer = (choice.message.content if choice and choice.message else None) or ""
            usage = response.usage
            prompt_tokens = usage.prompt_tokens if usage else 0
            completion_tokens = usage.completion_tokens if usage else 0
        label = parse_answer(answer, self.pattern)
        if label is None:
            out["error"] = "malformed_answer"
        elif hit is None:
            self.cache.put(key, answer, prompt_tokens, completion_tokens)
        return {**out, "answer": answer, "label": label, "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens}  # fmt: skip

    def annotate(self, documents: Iterable[dict[str, Any]]) -> tuple[pa.Table, dict[str, int]]:
        """Documents (dicts with id and text, other keys kept) -> a labels table, and the totals."""
        docs = list(documents)
        with ThreadPoolExecutor(max_workers=self.settings.concurrency) as pool:
            results = list(pool.map(lambda d: self.annotate_one(d.get("text") or ""), docs))
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows = []
        for doc, result in zip(docs, results):
            rows.append({
                **{k: v for k, v in doc.items() if k not in ("label", "annotator", "created", "guideline")},
                "id": str(doc["id"]),
                "label": result["label"],
                "annotator": f"llm:{self.settings.model}",
                "created": created,
                "guideline": self.template.guideline,
                **{k: result[k] for k in ANNOTATION_FIELDS},
            })  # fmt: skip
        totals = {
            "documents": len(rows),
            "labelled": sum(r["label"] is not None for r in rows),
            "failed": sum(r["error"] is not None for r in rows),
            "malformed": sum(r["error"] == "malformed_answer" for r in rows),
            "cached": sum(bool(r["cached"]) for r in rows),
            "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
            "completion_tokens": sum(r["completion_tokens"] for r in rows),
        }
        table = labels_table(rows) if rows else pa.table({})
        return table, totals


def read_documents(path: str, limit: int = 0) -> list[dict[str, Any]]:
    """Documents to label: Parquet (a file, or a folder such as OUT/filtered) or JSONL(.gz), with id and text."""
    from corpus.io import storage

    name = path.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json", ".csv")):
        from corpus.io.labels import read_rows

        rows = read_rows(path)
    else:
        import pyarrow.dataset as ds

        fs, local = storage.filesystem(path)
        dataset = ds.dataset(local, format="parquet", filesystem=fs)
        columns = [c for c in dataset.schema.names if c in ("id", "text", "url", "language", "crawl")]
        table = dataset.head(limit, columns=columns) if limit else dataset.to_table(columns=columns)
        rows = table.to_pylist()
    if rows and ("id" not in rows[0] or "text" not in rows[0]):
        raise ConfigError(f"input: {path} needs id and text columns")
    return rows[:limit] if limit else rows
