"""Robustness evaluation: the same set under each corruption and severity, and the field's summaries.

Conditions are named as in :mod:`hydranet.data.corruptions` (ImageNet-C / Cityscapes-C and
RoboDepth names, groups such as ``standard``, and hydranet's own ``hydranet-*`` weather).

Summaries (pure functions on ``{corruption: {severity: value}}`` tables):

- **CE / mCE** (Hendrycks & Dietterich's corruption error, Kamann & Rother's corruption
  degradation, RoboDepth's CE): for corruption c, ``CE_c = sum_s E(c, s) / sum_s E_ref(c, s)``
  over the severities s, with E the model's error and E_ref a reference model's on the same
  images; ``mCE`` = the mean of CE_c over corruptions. Error: ``1 - mIoU`` for segmentation,
  ``abs rel`` for depth.
- **relative CE / mCE** (Hendrycks & Dietterich): ``sum_s (E(c, s) - E_clean) /
  sum_s (E_ref(c, s) - E_ref_clean)``, the degradation only.
- **RR / mRR** (resilience rate, as Robo3D / RoboDepth define it): ``RR_c = mean_s A(c, s) /
  A_clean`` with A a score; ``mRR`` = mean of RR_c. Score: mIoU for segmentation, ``1 - abs rel``
  for depth (RoboDepth's KITTI-C figures: their mRR is reproduced from their per-corruption
  abs rel table this way); ``mrr_delta1`` gives the same with delta < 1.25 as the score.

hydranet's own conditions are summarised on their own, never mixed into a field figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..data.corruptions import FIELD, HYDRANET, LIBRARY, ROBODEPTH, SEVERITIES, STANDARD, expand
from ..errors import InputError

# Table: {corruption: {severity: value}}
Table = Mapping[str, Mapping[int, float]]


def parse_kinds(text: str | None) -> list[str]:
    """Corruption names from ``--corrupt`` (names and groups, comma-separated)."""
    return expand(text) if text else []


def parse_severities(text: str | int | None) -> list[int]:
    """``3``, ``1,3,5``, ``1..5`` or ``1-5``; None (not given): all five."""
    if text is None:
        return list(SEVERITIES)
    s = str(text).strip()
    try:
        if ".." in s or "-" in s:
            lo, hi = (int(v) for v in s.split(".." if ".." in s else "-", 1))
            values = list(range(lo, hi + 1))
        else:
            values = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"severity {text!r}: use a number 1..5, a list 1,3,5 or a range 1..5 / 1-5") from None
    if not values or any(not 1 <= v <= 5 for v in values):
        raise InputError(f"severity {text!r}: values must lie in 1..5")
    return values


def summary_row(name: str, severity: int | None, result: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"condition": name, "severity": severity}
    seg = result.get("segmentation")
    if seg:
        row.update(miou=seg["miou"], pixel_accuracy=seg["pixel_accuracy"])
    dep = result.get("depth")
    if dep:
        row.update(abs_rel=dep["abs_rel"], rmse=dep["rmse"], delta1=dep["delta1"])
    return row


def run_corruptions(run: Callable[[str | None, int], dict[str, Any]], kinds: Sequence[str],
                    severities: Sequence[int]) -> list[dict[str, Any]]:
    """Rows for the clean set and each (kind, severity), with ``d_miou`` / ``d_abs_rel`` vs clean."""
    conditions = grid_conditions(kinds, severities)
    return grid_rows(conditions, [run(name, sev) for name, sev in conditions])


def grid_conditions(kinds: Sequence[str], severities: Sequence[int]) -> list[tuple[str | None, int]]:
    """``[(None, 0)]`` (clean) then every ``(kind, severity)``."""
    return [(None, 0)] + [(k, int(s)) for k in kinds for s in severities]


def grid_rows(conditions: Sequence[tuple[str | None, int]], results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of :func:`format_table` from results in the order of ``conditions`` (clean first)."""
    rows: list[dict[str, Any]] = []
    for (name, sev), res in zip(conditions, results):
        if name is None:
            rows.append(summary_row("clean", None, res) | {"result": res})
            continue
        row = summary_row(name, sev, res)
        if rows and "miou" in row and "miou" in rows[0]:
            row["d_miou"] = row["miou"] - rows[0]["miou"]
        if rows and "abs_rel" in row and "abs_rel" in rows[0]:
            row["d_abs_rel"] = row["abs_rel"] - rows[0]["abs_rel"]
        row["result"] = res
        rows.append(row)
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    cols = [c for c in ("condition", "severity", "miou", "d_miou", "pixel_accuracy", "abs_rel", "d_abs_rel",
                        "rmse", "delta1") if any(c in r for r in rows)]
    head = {"pixel_accuracy": "pix_acc"}
    first = max([9] + [len(str(r.get("condition", ""))) for r in rows])
    lines = ["  ".join(f"{head.get(c, c):<{first}}" if c == "condition" else f"{head.get(c, c):>9}" for c in cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            if c == "condition":
                cells.append(f"{str(v):<{first}}")
            elif v is None:
                cells.append(f"{'-':>9}")
            elif isinstance(v, float):
                cells.append(f"{v:>+9.4f}" if c.startswith("d_") else f"{v:>9.4f}")
            else:
                cells.append(f"{str(v):>9}")
        lines.append("  ".join(cells))
    return "\n".join(lines)


# --- the field's summaries -------------------------------------------------------------------

DEFINITIONS: dict[str, str] = {
    "ce": "CE_c = sum_s E(c, s) / sum_s E_ref(c, s) over severities s; mCE = mean_c CE_c",
    "relative_ce": "rCE_c = sum_s (E(c, s) - E_clean) / sum_s (E_ref(c, s) - E_ref_clean); "
                   "relative mCE = mean_c rCE_c",
    "rr": "RR_c = mean_s A(c, s) / A_clean; mRR = mean_c RR_c",
    "segmentation": "E = 1 - mIoU, A = mIoU",
    "depth": "E = abs rel, A = 1 - abs rel (RoboDepth's KITTI-C convention); "
             "mrr_delta1: A = delta < 1.25",
}
# The benchmarks' sets, summarised whenever all their corruptions were run.
BENCHMARK_SETS: dict[str, tuple[str, ...]] = {
    "standard": STANDARD,          # ImageNet-C's 15 (Hendrycks & Dietterich)
    "standard+extra": LIBRARY,     # the 15 and the 4 extra: imagecorruptions' 19
    "robodepth": ROBODEPTH,        # RoboDepth's KITTI-C 18
}
SET_TITLES: dict[str, str] = {
    "standard": "ImageNet-C 15 (standard)", "standard+extra": "ImageNet-C 15 + 4 extra",
    "robodepth": "RoboDepth / KITTI-C 18", "requested": "requested corruptions",
    "hydranet": "hydranet depth-aware weather (own, not a field benchmark)",
}


def _finite(*values: Any) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def _mean(values: Sequence[float | None]) -> float | None:
    return float(sum(values) / len(values)) if values and _finite(*values) else None  # type: ignore[arg-type]


def _severities(values: Mapping[int, float], reference: Mapping[int, float] | None = None) -> list[int]:
    sev = sorted(int(s) for s in values)
    if reference is not None and sorted(int(s) for s in reference) != sev:
        raise ValueError(f"model and reference were run at different severities: {sev} and "
                         f"{sorted(int(s) for s in reference)}")
    return sev


def corruption_error(errors: Mapping[int, float], reference: Mapping[int, float]) -> float | None:
    """``sum_s errors[s] / sum_s reference[s]``; None when undefined (a missing value or a
    reference without error)."""
    sev = _severities(errors, reference)
    num, den = [errors[s] for s in sev], [reference[s] for s in sev]
    if not sev or not _finite(*num, *den) or sum(den) <= 0:
        return None
    return float(sum(num) / sum(den))


def relative_corruption_error(errors: Mapping[int, float], clean: float, reference: Mapping[int, float],
                              reference_clean: float) -> float | None:
    """``sum_s (errors[s] - clean) / sum_s (reference[s] - reference_clean)`` (errors, not scores);
    None when the reference does not degrade at all."""
    sev = _severities(errors, reference)
    num = [errors[s] for s in sev]
    den = [reference[s] for s in sev]
    if not sev or not _finite(*num, *den, clean, reference_clean):
        return None
    d = sum(v - reference_clean for v in den)
    return float(sum(v - clean for v in num) / d) if d > 0 else None


def resilience_rate(scores: Mapping[int, float], clean: float) -> float | None:
    """``mean_s scores[s] / clean`` (a score: higher is better)."""
    sev = _severities(scores)
    values = [scores[s] for s in sev]
    if not sev or not _finite(*values, clean) or clean <= 0:
        return None
    return float(sum(values) / len(values) / clean)


def mean_corruption_error(errors: Table, reference: Table) -> dict[str, Any]:
    """``{"mce": mean of CE, "ce": {corruption: CE}}`` over the corruptions of ``errors``."""
    ce = {c: corruption_error(errors[c], reference[c]) for c in errors}
    return {"mce": _mean(list(ce.values())), "ce": ce}


def mean_relative_corruption_error(errors: Table, clean: float, reference: Table,
                                   reference_clean: float) -> dict[str, Any]:
    rce = {c: relative_corruption_error(errors[c], clean, reference[c], reference_clean) for c in errors}
    return {"relative_mce": _mean(list(rce.values())), "relative_ce": rce}


def mean_resilience_rate(scores: Table, clean: float) -> dict[str, Any]:
    """``{"mrr": mean of RR, "rr": {corruption: RR}}``."""
    rr = {c: resilience_rate(scores[c], clean) for c in scores}
    return {"mrr": _mean(list(rr.values())), "rr": rr}


def table_from_rows(rows: Sequence[Mapping[str, Any]], key: str,
                    transform: Callable[[float], float] = lambda v: v) -> dict[str, dict[int, float]]:
    """``{condition: {severity: transform(row[key])}}`` from the corrupted rows (clean left out)."""
    table: dict[str, dict[int, float]] = {}
    for r in rows:
        if r.get("severity") is None or r.get("condition") == "clean" or r.get(key) is None:
            continue
        v = r[key]
        table.setdefault(str(r["condition"]), {})[int(r["severity"])] = transform(v) if _finite(v) else v
    return table


def _clean_value(rows: Sequence[Mapping[str, Any]], key: str) -> float | None:
    for r in rows:
        if r.get("condition") == "clean":
            return r.get(key)
    return None


def _sets(present: Sequence[str]) -> dict[str, list[str]]:
    field = [c for c in present if c in FIELD]
    sets: dict[str, list[str]] = {}
    for name, members in BENCHMARK_SETS.items():
        if all(m in present for m in members):
            sets[name] = list(members)
    if field and not any(sorted(field) == sorted(m) for m in sets.values()):
        sets["requested"] = field
    own = [c for c in present if c in HYDRANET]
    if own:
        sets["hydranet"] = own
    return sets


_TASKS = {
    # task: (row key, error of a value, score of a value, extra score key)
    "segmentation": ("miou", lambda v: 1.0 - v, lambda v: v, None),
    "depth": ("abs_rel", lambda v: v, lambda v: 1.0 - v, "delta1"),
}


def summarize(rows: Sequence[Mapping[str, Any]],
              reference_rows: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The field's figures for rows of :func:`grid_rows` (and a reference's, same conditions).

    ``{task: {"clean", "reference_clean", "values" {c: {s: v}}, "sets": {set: {"corruptions",
    "severities", "mean", "mrr", "rr", ["mrr_delta1", "rr_delta1"], ["mce", "ce", "relative_mce",
    "relative_ce", "reference_mean", "reference_mrr"]}}}}`` for task segmentation (mIoU) and depth (abs rel) where the rows have them;
    sets: each of :data:`BENCHMARK_SETS` run in full, the ``requested`` field corruptions when
    they are no such set, and ``hydranet`` (own weather) apart.
    """
    out: dict[str, Any] = {"definitions": DEFINITIONS}
    for task, (key, error, score, extra) in _TASKS.items():
        clean = _clean_value(rows, key)
        if clean is None:
            continue
        values = table_from_rows(rows, key)
        entry: dict[str, Any] = {"metric": key, "clean": clean, "values": values, "sets": {}}
        ref_values = table_from_rows(reference_rows, key) if reference_rows else None
        ref_clean = _clean_value(reference_rows, key) if reference_rows else None
        if reference_rows is not None:
            entry["reference_clean"] = ref_clean
            entry["reference_values"] = ref_values
        extra_values = table_from_rows(rows, extra) if extra else {}
        extra_clean = _clean_value(rows, extra) if extra else None
        for set_name, members in _sets(list(values)).items():
            sub = {c: values[c] for c in members}
            severities = sorted({s for c in members for s in values[c]})
            item: dict[str, Any] = {
                "corruptions": members, "severities": severities,
                "mean": _mean([v for c in members for v in values[c].values()]),
            }
            item.update(mean_resilience_rate({c: {s: score(v) for s, v in sub[c].items()} for c in members},
                                             score(clean)))
            if extra and extra_clean is not None and all(c in extra_values for c in members):
                rr = mean_resilience_rate({c: extra_values[c] for c in members}, extra_clean)
                item.update(mrr_delta1=rr["mrr"], rr_delta1=rr["rr"])
            if ref_values is not None and ref_clean is not None and all(c in ref_values for c in members):
                errs = {c: {s: error(v) for s, v in sub[c].items()} for c in members}
                ref_errs = {c: {s: error(v) for s, v in ref_values[c].items()} for c in members}
                item.update(mean_corruption_error(errs, ref_errs))
                item.update(mean_relative_corruption_error(errs, error(clean), ref_errs, error(ref_clean)))
                # The reference's own robustness, so that "more robust than the reference" reads off one line.
                ref_rr = mean_resilience_rate({c: {s: score(v) for s, v in ref_values[c].items()} for c in members},
                                              score(ref_clean))
                item.update(reference_mean=_mean([v for c in members for v in ref_values[c].values()]),
                            reference_mrr=ref_rr["mrr"])
            entry["sets"][set_name] = item
        out[task] = entry
    return out


def _pct(v: Any) -> str:
    return f"{100 * v:6.1f}%" if _finite(v) else "     -"


def format_summary(summary: Mapping[str, Any]) -> str:
    """Per task: each corruption's values by severity, mean, RR (and CE with a reference), then
    the sets' mRR / mCE lines."""
    lines: list[str] = []
    for task in _TASKS:
        entry = summary.get(task)
        if not entry or not entry["sets"]:
            continue
        key, values = entry["metric"], entry["values"]
        severities = sorted({s for v in values.values() for s in v})
        sets = entry["sets"]
        rr: dict[str, Any] = {}
        ce: dict[str, Any] = {}
        for item in sets.values():
            rr.update(item.get("rr", {}))
            ce.update(item.get("ce", {}))
        width = max(len(c) for c in values)
        has_ref = "reference_clean" in entry
        lines.append(f"{task}: {key} by corruption and severity (clean {entry['clean']:.4f}"
                     + (f", reference clean {entry['reference_clean']:.4f})" if has_ref and
                        _finite(entry['reference_clean']) else ")"))
        lines.append(f"  {'corruption':<{width}}  " + "  ".join(f"{'s' + str(s):>7}" for s in severities)
                     + f"  {'mean':>7}  {'RR':>7}" + (f"  {'CE':>7}" if has_ref else ""))
        for c, by_sev in values.items():
            cells = "  ".join(f"{by_sev[s]:7.4f}" if _finite(by_sev.get(s)) else f"{'-':>7}" for s in severities)
            mean = _mean(list(by_sev.values()))
            line = f"  {c:<{width}}  {cells}  " + (f"{mean:7.4f}" if mean is not None else f"{'-':>7}")
            line += f"  {_pct(rr.get(c))}" + (f"  {_pct(ce.get(c))}" if has_ref else "")
            lines.append(line)
        for name, item in sets.items():
            text = (f"  {SET_TITLES.get(name, name)} [{len(item['corruptions'])} corruptions x "
                    f"{len(item['severities'])} severities]: mean {key} "
                    + (f"{item['mean']:.4f}" if _finite(item['mean']) else "-")
                    + f", mRR {_pct(item['mrr']).strip()}")
            if "mrr_delta1" in item:
                text += f" (on delta1 {_pct(item['mrr_delta1']).strip()})"
            if "mce" in item:
                text += f", mCE {_pct(item['mce']).strip()}, relative mCE {_pct(item['relative_mce']).strip()}"
            if "reference_mrr" in item:
                text += (f"; reference: mean {key} " + (f"{item['reference_mean']:.4f}" if
                                                       _finite(item['reference_mean']) else "-")
                         + f", mRR {_pct(item['reference_mrr']).strip()}")
            lines.append(text)
    if any(summary.get(t) and summary[t]["sets"] for t in _TASKS):
        lines.append("  mCE: sum over severities of the error / the reference's (error 1 - mIoU; abs rel); "
                     "mRR: mean over severities of score / clean score (mIoU; 1 - abs rel)")
    return "\n".join(lines)


def robustness_grid(predicts: Sequence[Callable[..., Any]], dataset: Any, num_classes: int,
                    kinds: Sequence[str], severities: Sequence[int], class_names: Sequence[str] | None = None,
                    protocol: str = "none", max_depth: float | None = None, median_scaling: bool = False,
                    batch_size: int = 1, max_images: int | None = None, seed: int = 0,
                    progress: bool = True, stats: dict[str, Any] | None = None) -> list[list[dict[str, Any]]]:
    """Rows of :func:`grid_rows` per model (the first is the model, a second the reference) for the
    clean set and every (kind, severity), each image corrupted once for all models
    (:func:`hydranet.evaluation.evaluate.evaluate_grid`)."""
    from .evaluate import evaluate_grid

    conditions = grid_conditions(kinds, severities)
    results = evaluate_grid(predicts, dataset, num_classes, conditions, class_names=class_names,
                            protocol=protocol, max_depth=max_depth, median_scaling=median_scaling,
                            batch_size=batch_size, max_images=max_images, seed=seed, progress=progress,
                            stats=stats)
    return [grid_rows(conditions, per_model) for per_model in results]


def settings_record(kinds: Sequence[str], severities: Sequence[int], seed: int) -> dict[str, Any]:
    """What the JSON states about how the corrupted images were made."""
    from importlib import metadata

    try:
        version = metadata.version("imagecorruptions")
    except metadata.PackageNotFoundError:
        version = None
    return {"corruptions": list(kinds), "severities": [int(s) for s in severities], "seed": int(seed),
            "imagecorruptions": version,
            "seeding": "image i under (name, severity): np.random.seed([seed, i, crc32(name), severity]) for "
                       "imagecorruptions, default_rng of the same words for dark/iso_noise, "
                       "default_rng([seed, i]) for hydranet-*",
            "definitions": DEFINITIONS}
