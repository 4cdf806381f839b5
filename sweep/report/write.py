"""Writing a report folder: collect the data, draw, render, write every file atomically.

Every file goes inside ``out_dir`` under a fixed name (study names never reach a
path), through a temporary file and a rename, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import optuna
import yaml

from sweep.errors import ConfigError, TrainingError
from sweep.report import compare
from sweep.report.analysis import stats
from sweep.report.data.collect import CSV_COLUMNS, ReportData, collect
from sweep.report.figures.draw import FIGURE_NAMES, Image, draw_all
from sweep.report.findings.summary import findings
from sweep.report.render.html import render_html
from sweep.report.render.markdown import render_markdown
from sweep.report.render.page import study_document

log = logging.getLogger(__name__)


def write_report(study: optuna.Study, out_dir: Path, *, storage_url: str = "") -> Path:
    """Write the study's report into ``out_dir`` and return the path of its index.html.

    Files: index.html (self-contained), report.md, trials.csv, best_config.yaml (when a
    trial completed), lr_finder.json (when the study ran the LR finder), figures/*.png.
    """
    out_dir = Path(out_dir)
    data = collect(study, storage_url)
    images = draw_all(data)
    best_config = best_config_yaml(data)
    document = study_document(data, findings(data), images, best_config)

    _prepare(out_dir)
    _write_figures(out_dir, images, FIGURE_NAMES)
    _write(out_dir / "trials.csv", trials_csv(data))
    _write_or_remove(out_dir / "best_config.yaml", best_config)
    curve = None if (data.lr_finder or {}).get("curve_missing") else data.lr_finder  # GUIDE §1 keys or nothing
    _write_or_remove(out_dir / "lr_finder.json", lr_finder_json(curve))
    _write(out_dir / "report.md", render_markdown(document))
    index = out_dir / "index.html"
    _write(index, render_html(document))
    log.debug("report of %s (%d trials) written to %s", data.name, len(data.trials), index)
    return index


def write_comparison(studies: Sequence[optuna.Study], out_dir: Path, *,
                     storage_urls: Sequence[str] | None = None) -> Path:
    """Write a side-by-side comparison of ``studies`` into ``out_dir``; return its index.html."""
    out_dir = Path(out_dir)
    urls = list(storage_urls) if storage_urls is not None else [""] * len(studies)
    if len(urls) != len(studies):
        raise ValueError(f"got {len(studies)} studies but {len(urls)} storage URLs")
    datas = [collect(study, url) for study, url in zip(studies, urls)]
    comparison = compare.compare(datas)
    images = compare.draw(comparison)
    document = compare.document(comparison, images)

    _prepare(out_dir)
    _write_figures(out_dir, images, compare.FIGURE_NAMES)
    _write(out_dir / "comparison.csv", comparison.summary.to_csv(index=False))
    _write(out_dir / "report.md", render_markdown(document))
    index = out_dir / "index.html"
    _write(index, render_html(document))
    log.debug("comparison of %s written to %s", ", ".join(comparison.labels), index)
    return index


def trials_csv(data: ReportData) -> str:
    frame = data.trials[CSV_COLUMNS + data.extra_params]
    return frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S.%f")


def best_config_yaml(data: ReportData) -> str | None:
    """The study's config with the best trial's parameters under ``params``, or None.

    ``sweep train best_config.yaml --params best_config.yaml`` retrains the best trial.
    """
    best = data.best
    if best is None:
        return None
    params = stats.trial_params(best)
    seed = "" if best["seed"] is None or str(best["seed"]) == "<NA>" else f" --seed {int(best['seed'])}"
    header = (f"# Best trial #{int(best['number'])} of study {data.name}: {data.metric} {float(best['value']):.4f}\n"
              f"# Retrain it: sweep train best_config.yaml --params best_config.yaml{seed}\n")
    body = {**(data.config or {}), "params": params}
    return header + yaml.safe_dump(body, sort_keys=False)


def lr_finder_json(result: dict | None) -> str | None:
    if not result:
        return None
    return json.dumps(_finite_or_null(result), indent=1) + "\n"


def _finite_or_null(value: Any) -> Any:
    # JSON has no NaN or Infinity: a diverged loss becomes null.
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_null(v) for v in value]
    return value


def _prepare(out_dir: Path) -> None:
    try:
        (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output folder {out_dir}: cannot be created ({exc.strerror}); pass another --out") from None


def _write_figures(out_dir: Path, images: dict[str, Image], names: list[str]) -> None:
    for name in names:  # a figure not drawn this time must not survive from an older report
        if name in images:
            _write(out_dir / "figures" / f"{name}.png", images[name].png)
        else:
            (out_dir / "figures" / f"{name}.png").unlink(missing_ok=True)


def _write_or_remove(path: Path, content: str | None) -> None:
    if content is None:
        path.unlink(missing_ok=True)
    else:
        _write(path, content)


def _write(path: Path, content: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if isinstance(content, str):
            tmp.write_text(content, encoding="utf-8")
        else:
            tmp.write_bytes(content)
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a read-only folder: the older file, if any, stays whole
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise TrainingError(f"cannot write {path}: {exc.strerror}; the study is intact, "
                            "free space and run 'sweep report' again") from None
