"""Filter precision and the recipe's miss rate from audited samples (`corpus audit OUT LABELS`).

Annotators judge sampled documents (`corpus sample`) good (should be in the corpus) or bad. Each labelled
document is looked up in OUT: a removed one counts toward its step's precision (the share of its removals the
annotators judged right, i.e. bad), a kept one toward the miss rate (the share of kept documents judged bad).
Several annotators on one document: the majority judgement; ties are left out (and counted). Intervals are
Wilson score intervals (statsmodels `proportion_confint`, 95 %). The rates are those of the labelled sample:
when the sample was stratified, each step's precision is within its stratum, as drawn.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pyarrow as pa
from statsmodels.stats.proportion import proportion_confint

from corpus.audit.agreement import label_text
from corpus.audit.inspect import find_documents, open_output, outcome

GOOD = ("good", "keep", "kept", "yes", "true", "1", "pass", "ok", "high")
BAD = ("bad", "remove", "removed", "drop", "no", "false", "0", "fail", "low")


def judge(
    label: Any, good: tuple[str, ...] = GOOD, bad: tuple[str, ...] = BAD, good_at: float | None = None
) -> bool | None:
    """True (good), False (bad) or None (neither) for one label. With `good_at`, numeric labels (e.g. 0-5 edu
    scores) are good from that value up."""
    if good_at is not None and not isinstance(label, str | bool):
        try:
            return float(label) >= good_at
        except (TypeError, ValueError):
            pass
    text = label_text(label).lower()
    if text in good:
        return True
    if text in bad:
        return False
    return None


def _interval(successes: int, trials: int, alpha: float = 0.05) -> dict[str, Any]:
    if not trials:
        return {"rate": None, "n": 0, "wilson_95": None, "count": 0}
    low, high = proportion_confint(successes, trials, alpha=alpha, method="wilson")
    return {"rate": successes / trials, "count": successes, "n": trials, "wilson_95": [float(low), float(high)]}


def audit(output: str, labels: pa.Table, good: tuple[str, ...] = GOOD, bad: tuple[str, ...] = BAD,
          good_at: float | None = None) -> dict[str, Any]:  # fmt: skip
    output, run = open_output(output)
    votes: dict[str, Counter] = defaultdict(Counter)
    unjudged: Counter = Counter()
    for row in labels.to_pylist():
        verdict = judge(row.get("label"), good, bad, good_at)
        if verdict is None:
            unjudged[label_text(row.get("label"))] += 1
        else:
            votes[str(row["id"])][verdict] += 1
    judged: dict[str, bool] = {}
    ties = 0
    for doc, count in votes.items():
        if count[True] == count[False]:
            ties += 1
        else:
            judged[doc] = count[False] > count[True]  # True: judged bad
    found = find_documents(output, run, list(judged), ("filtered", "removed", "skipped", "deduped"))
    by_doc: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for folder, rows in found.items():
        for row in rows:
            by_doc[row["id"]][folder].append(row)
    steps: dict[str, list[bool]] = defaultdict(list)
    reasons: dict[tuple[str, str], list[bool]] = defaultdict(list)
    kept: list[bool] = []
    missing = []
    for doc, bad_verdict in judged.items():
        where = outcome(by_doc.get(doc, {}))
        if where["status"] == "removed":
            steps[where["removed_by"]].append(bad_verdict)
            reason = "cluster" if "duplicate_of" in where else where["reason"]
            reasons[(where["removed_by"], reason)].append(bad_verdict)
        elif where["status"] == "kept":
            kept.append(bad_verdict)
        else:
            missing.append(doc)
    return {
        "output": output,
        "labelled_documents": len(votes),
        "judged_documents": len(judged),
        "ties": ties,
        "unjudged_labels": dict(unjudged),
        "not_in_output": sorted(missing),
        "precision": {
            step: {
                **_interval(sum(v), len(v)),
                "reasons": {r: _interval(sum(x), len(x)) for (s, r), x in sorted(reasons.items()) if s == step},
            }
            for step, v in sorted(steps.items())
        },
        "miss_rate": _interval(sum(kept), len(kept)),
        "definitions": {
            "precision": "share of a step's removals that annotators judged bad (a right removal)",
            "miss_rate": "share of kept documents that annotators judged bad (a miss of the recipe)",
            "interval": "Wilson score interval, 95 %",
        },
    }


def summary(result: dict[str, Any]) -> str:
    def rate(entry: dict[str, Any]) -> str:
        if entry["rate"] is None:
            return "— (no judged documents)"
        low, high = entry["wilson_95"]
        return f"{entry['rate']:.1%} ({entry['count']}/{entry['n']}, 95% Wilson {low:.1%}–{high:.1%})"

    lines = [f"{result['judged_documents']} judged documents ({result['ties']} tie(s) left out)"]
    for step, entry in result["precision"].items():
        lines.append(f"precision of {step:<20} {rate(entry)}")
    lines.append(f"miss rate (kept, judged bad)    {rate(result['miss_rate'])}")
    if result["not_in_output"]:
        lines.append(f"{len(result['not_in_output'])} labelled id(s) not found in the output")
    if result["unjudged_labels"]:
        lines.append("labels neither good nor bad (see good= bad= good_at=): " + ", ".join(result["unjudged_labels"]))
    return "\n".join(lines)


__all__ = ["BAD", "GOOD", "audit", "judge", "summary"]
