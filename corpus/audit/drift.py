"""Drift between two runs (`corpus drift OUT_A OUT_B`, and the report's baseline section), from their profiles
(stats/profile.json, written by the report stage; corpus.jobs.audit.profile computes them):

- every numeric signal: the two-sample Kolmogorov-Smirnov statistic (scipy.stats.ks_2samp) and the Wasserstein
  distance (scipy.stats.wasserstein_distance), on bounded seeded samples (the documents with the smallest
  xxhash64(seed, id), so two runs over the same input compare the same documents); the Wasserstein distance is
  also given divided by run A's interquartile range, so one threshold fits signals of any scale;
- categorical shares (language, outcome = kept or the removing step and reason, top-level domain of kept
  documents): the population stability index, sum((b - a) ln(b / a)) over categories (shares floored at 1e-4),
  computed as the symmetric relative entropy (scipy.special.rel_entr);
- removal rates per step (absolute change) and kept documents and tokens (relative change);
- what differs between the two manifests: config keys, code version and commit, package versions, model cards.

A is the reference (the baseline), B the run being checked. Thresholds are `drift.*` in the config.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import rel_entr
from scipy.stats import ks_2samp, wasserstein_distance

from corpus.audit.manifest import Run
from corpus.config import DriftSettings

SHARE_FLOOR = 1e-4


def psi(a: dict[str, int], b: dict[str, int]) -> float:
    """Population stability index between two count tables (categories missing on one side count as 0)."""
    keys = sorted(set(a) | set(b))
    total_a, total_b = sum(a.values()), sum(b.values())
    if not keys or not total_a or not total_b:
        return 0.0
    pa = np.array([max(a.get(k, 0) / total_a, SHARE_FLOOR) for k in keys])
    pb = np.array([max(b.get(k, 0) / total_b, SHARE_FLOOR) for k in keys])
    return float(np.sum(rel_entr(pb, pa) + rel_entr(pa, pb)))


def _scale(values: np.ndarray) -> float:
    q1, q3 = np.percentile(values, [25, 75])
    return float(q3 - q1) or float(np.std(values)) or 1.0


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def manifest_differences(a: Run, b: Run) -> dict[str, Any]:
    """Config keys, code and package versions, model cards and inputs that differ between two runs."""

    def changed(x: dict[str, Any], y: dict[str, Any]) -> dict[str, list[Any]]:
        return {k: [x.get(k), y.get(k)] for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)}

    ignored = ("output", "spark.", "storage.", "stages", "drift.", "report.")
    config = {
        k: v
        for k, v in changed(_flatten(a.config), _flatten(b.config)).items()
        if not k.startswith(ignored) and k != "input"
    }
    la, lb = a.lineage or {}, b.lineage or {}
    code = changed(
        {k: la.get(k) for k in ("corpus_version", "git_commit", "git_dirty")},
        {k: lb.get(k) for k in ("corpus_version", "git_commit", "git_dirty")},
    )
    models = changed(
        {k: v.get("sha256") for k, v in (la.get("model_cards") or {}).items()},
        {k: v.get("sha256") for k, v in (lb.get("model_cards") or {}).items()},
    )
    return {
        "config": config,
        "code": code,
        "versions": changed(a.versions or {}, b.versions or {}),
        "model_cards": models,
        "same_inputs": a.inputs == b.inputs,
    }


def compare(a: dict[str, Any], b: dict[str, Any], settings: DriftSettings) -> dict[str, Any]:
    """Drift from profile `a` (reference) to profile `b`. Returns the measures and `crossed`: one line per
    threshold crossed (empty when the runs agree within the thresholds)."""
    da, db = a["drift"], b["drift"]
    crossed: list[str] = []
    numeric = {}
    for key in sorted(set(da["numeric"]) | set(db["numeric"])):
        xa, xb = np.asarray(da["numeric"].get(key, [])), np.asarray(db["numeric"].get(key, []))
        entry: dict[str, Any] = {"values": [int(xa.size), int(xb.size)]}
        if xa.size and xb.size:
            ks = ks_2samp(xa, xb)
            w = float(wasserstein_distance(xa, xb))
            entry.update(
                ks=float(ks.statistic),
                ks_pvalue=float(ks.pvalue),
                wasserstein=w,
                wasserstein_scaled=w / _scale(xa),
                median=[float(np.median(xa)), float(np.median(xb))],
            )
            if min(xa.size, xb.size) < settings.min_values:
                entry["note"] = f"fewer than {settings.min_values} values: not flagged"
            else:
                if entry["ks"] > settings.ks:
                    crossed.append(f"{key}: KS {entry['ks']:.3f} > drift.ks {settings.ks}")
                if entry["wasserstein_scaled"] > settings.wasserstein:
                    crossed.append(
                        f"{key}: Wasserstein/IQR {entry['wasserstein_scaled']:.3f} > drift.wasserstein "
                        f"{settings.wasserstein}"
                    )
        else:
            entry["note"] = "only in " + ("A" if xa.size else "B")
        numeric[key] = entry
    categorical = {}
    for name in sorted(set(da["categorical"]) | set(db["categorical"])):
        ca, cb = da["categorical"].get(name, {}), db["categorical"].get(name, {})
        value = psi(ca, cb)
        ta, tb = max(sum(ca.values()), 1), max(sum(cb.values()), 1)
        top = sorted(set(ca) | set(cb), key=lambda k: -abs(cb.get(k, 0) / tb - ca.get(k, 0) / ta))[:8]
        categorical[name] = {
            "psi": value,
            "largest_changes": {k: [ca.get(k, 0) / ta, cb.get(k, 0) / tb] for k in top},
        }
        if value > settings.psi:
            crossed.append(f"{name} shares: PSI {value:.3f} > drift.psi {settings.psi}")
    rates = {}
    ra, rb = da["removal_rates"], db["removal_rates"]
    for step in sorted(set(ra) | set(rb)):
        delta = rb.get(step, 0.0) - ra.get(step, 0.0)
        rates[step] = {"a": ra.get(step, 0.0), "b": rb.get(step, 0.0), "delta": delta}
        if abs(delta) > settings.removal_rate:
            crossed.append(
                f"removal rate of {step}: {ra.get(step, 0.0):.1%} -> {rb.get(step, 0.0):.1%} "
                f"(|delta| > drift.removal_rate {settings.removal_rate})"
            )
    counts = {}
    for key in sorted(set(da["counts"]) | set(db["counts"])):
        va, vb = da["counts"].get(key), db["counts"].get(key)
        change = (vb - va) / va if va and vb is not None else (0.0 if va == vb else math.inf)
        counts[key] = {"a": va, "b": vb, "relative_change": change}
        if key in ("kept", "kept_tokens") and abs(change) > settings.kept:
            crossed.append(f"{key}: {va} -> {vb} ({change:+.1%}, |change| > drift.kept {settings.kept})")
    return {
        "method": db.get("method") or da.get("method"),
        "thresholds": dict(settings.__dict__),
        "numeric": numeric,
        "categorical": categorical,
        "removal_rates": rates,
        "counts": counts,
        "crossed": crossed,
    }


def table(drift: dict[str, Any]) -> str:
    """The drift as a plain-text table for the terminal."""
    lines = [f"{'signal':<48} {'n A/B':>11} {'KS':>7} {'W/IQR':>7}"]
    for key, e in drift["numeric"].items():
        n = f"{e['values'][0]}/{e['values'][1]}"
        if "ks" in e:
            lines.append(f"{key:<48} {n:>11} {e['ks']:>7.3f} {e['wasserstein_scaled']:>7.3f}  {e.get('note', '')}")
        else:
            lines.append(f"{key:<48} {n:>11} {'':>7} {'':>7}  {e.get('note', '')}")
    lines.append("")
    lines.append(f"{'shares':<48} {'PSI':>7}")
    lines += [f"{name:<48} {e['psi']:>7.3f}" for name, e in drift["categorical"].items()]
    lines.append("")
    lines.append(f"{'removal rate':<48} {'A':>7} {'B':>7} {'delta':>7}")
    lines += [f"{s:<48} {e['a']:>7.1%} {e['b']:>7.1%} {e['delta']:>+7.1%}" for s, e in drift["removal_rates"].items()]
    lines.append("")
    lines += [f"{k:<48} {e['a']!s:>11} -> {e['b']!s:<11}" for k, e in drift["counts"].items()]
    differences = drift.get("manifests") or {}
    for part in ("config", "code", "model_cards"):
        for key, (va, vb) in (differences.get(part) or {}).items():
            lines.append(f"{part} differs: {key}: {va!r} -> {vb!r}")
    lines.append("")
    if drift["crossed"]:
        lines.append(f"DRIFT: {len(drift['crossed'])} threshold(s) crossed:")
        lines += [f"  {line}" for line in drift["crossed"]]
    else:
        lines.append("OK: within every drift threshold")
    return "\n".join(lines)


__all__ = ["compare", "manifest_differences", "psi", "table"]
