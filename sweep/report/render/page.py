"""A study's report as a ``Document``: the tables, findings and figures, in reading order.

The order follows the reader's question: which schedule wins, at which learning rate,
how sure we are (findings, schedule table, LR figures), then the details (top trials,
importances, training curves, the config that reproduces the best trial).
"""

from __future__ import annotations

import datetime as dt

import yaml

from sweep.config import family_terms, metric_label
from sweep.report.analysis import stats
from sweep.report.render.blocks import Code, Document, Findings, Link, Paragraph, Section, Table
from sweep.report.data.collect import ReportData
from sweep.report.figures.draw import Image
from sweep.report.findings.finding import Finding
from sweep.report.fmt import fmt_fixed, fmt_float, fmt_int, fmt_lr, fmt_share, fmt_value

TOP_TABLE_ROWS = 10


def overview_table(data: ReportData) -> Table:
    rows = [["Study", data.name], ["Storage", data.storage or "(in memory)"]]
    objective = f"{data.direction} {data.metric}"
    if data.objective:
        # "mean_last3" reads as "mean of the last 3 epochs"; best and last name one epoch.
        which = f"mean of the last {data.objective[len('mean_last'):]} epochs" if data.objective.startswith(
            "mean_last") else f"{data.objective} epoch"
        objective += f" ({which} of each trial)"
    rows.append(["Objective", objective])
    done = data.count("COMPLETE") + data.count("PRUNED")
    budget = f" of a budget of {data.budget}" if data.budget else ""
    p = data.pruning
    parts = [(data.count("COMPLETE"), "complete"), (p.pruned, "pruned"), (p.diverged, "diverged"),
             (data.count("FAIL"), "failed"), (data.count("RUNNING") + data.count("WAITING"), "running or queued")]
    rows.append(["Trials", f"{done} finished{budget}: " + ", ".join(f"{n} {what}" for n, what in parts if n)])
    if data.best is not None:
        rows.append(["Best value", f"{fmt_value(data.best['value'])} (trial #{int(data.best['number'])})"])
        rows.append(["Noise level", noise_text(data)])
    train = (data.config or {}).get("train") or {}
    if train:
        rows.append(["Training", f"{train.get('epochs')} epochs, batch {train.get('batch_size')}, "
                                  f"{train.get('optimizer', '')}".rstrip(", ")])
    if data.lr_range:
        text = f"{fmt_lr(data.lr_range[0])} to {fmt_lr(data.lr_range[1])} (log scale)"
        config_range = (data.prior or {}).get("config_range")
        if config_range and list(config_range) != list(data.lr_range):
            text += f"; the LR finder narrowed it from the config's {fmt_lr(config_range[0])} to {fmt_lr(config_range[1])}"
        rows.append(["initial_lr range", text])
    if data.schedules:
        rows.append(["Schedule types", ", ".join(data.schedules)])
    finder = data.lr_finder or {}
    if finder.get("suggestion"):
        rows.append(["LR finder", f"{finder.get('method', '')} suggestion {fmt_lr(finder['suggestion'])}, "
                                  f"range {fmt_lr(finder.get('lower'))} to {fmt_lr(finder.get('upper'))}, "
                                  f"{fmt_float(finder.get('seconds'))} s"
                                  + (f"; its curve (artifact {finder.get('artifact_id')}) cannot be read here"
                                     if finder.get("curve_missing") else "")])
    return Table("Overview", ["", ""], rows)


def noise_text(data: ReportData) -> str:
    validation = (f"{data.num_validation} validation images" + ("" if data.validation_note == "stored"
                  else f", {data.validation_note}")) if data.num_validation else "validation size unknown"
    if data.se == data.se:  # not NaN
        return (f"standard error {data.se:.3f} per score ({validation}); 95% interval ±{1.96 * data.se:.3f}; "
                "seed noise comes on top")
    return f"not estimated ({validation}; {data.metric} has no binomial standard error)" if data.metric != \
        "val_accuracy" else f"not estimated ({validation})"


def schedule_table(data: ReportData) -> Table:
    known = bool(len(data.schedule_table)) and bool(data.schedule_table["se"].notna().any())
    rows = []
    for r in data.schedule_table.itertuples():
        row = [r.schedule, str(r.trials), str(r.complete), str(r.pruned), str(r.diverged), str(r.failed),
               fmt_value(r.best)]
        if known:
            row.append(f"{r.low:.3f} to {r.high:.3f}" if r.low == r.low else "")
        rows.append(row + [fmt_value(r.median), fmt_share(r.pruned_share)])
    interval = ["95% interval of best"] if known else []
    note = "Best and median over complete trials; pruned share of finished trials (diverged included)."
    if known:
        note += (f" The 95% interval (Wilson) is the validation-sampling noise of the best score on "
                 f"{data.num_validation} images; a type's best is also biased upward by selection, more so "
                 "the more trials it had.")
    return Table("Schedule types", ["schedule", "trials", "complete", "pruned", "diverged", "failed",
                                    f"best {data.metric}", *interval, "median", "pruned share"], rows, note)


def optimizer_table(data: ReportData) -> Table | None:
    """The searched optimizers side by side (None when the study trained one optimizer)."""
    if data.optimizer_table.empty:
        return None
    rows = [[str(r.optimizer), str(r.trials), str(r.complete), str(r.pruned), str(r.diverged), fmt_value(r.best),
             fmt_value(r.median), fmt_share(r.pruned_share)] for r in data.optimizer_table.itertuples()]
    suggestions = ((data.prior or {}).get("optimizers") or {})
    note = "Best and median over complete trials; pruned share of finished trials (diverged included)."
    if suggestions:
        note += " Range test per optimizer: " + "; ".join(
            f"{name} suggested {fmt_lr(r.get('suggestion'))}, searched from {fmt_lr(r['narrowed_range'][0])} to "
            f"{fmt_lr(r['narrowed_range'][1])}" for name, r in suggestions.items() if r.get("narrowed_range")) + "."
    return Table("Optimizers", ["optimizer", "trials", "complete", "pruned", "diverged", f"best {data.metric}",
                                "median", "pruned share"], rows, note)


def top_table(data: ReportData) -> Table:
    top = stats.ranked(data.trials, data.direction).head(TOP_TABLE_ROWS)
    rows = [[str(rank), f"#{int(r['number'])}", fmt_value(r["value"]), str(r["schedule"]), fmt_lr(r["initial_lr"]),
             fmt_fixed(r["warmup_fraction"]), ", ".join(family_terms(stats.trial_params(r))),
             fmt_int(r["best_epoch"]), fmt_int(r["epochs_run"]), fmt_float(r["train_s"]),
             "yes" if r["seeded_by_prior"] else ""]
            for rank, (_, r) in enumerate(top.iterrows(), start=1)]
    return Table(f"Top {len(rows)} trials", ["rank", "trial", data.metric, "schedule", "initial_lr", "warmup",
                                             "schedule parameters", "best epoch", "epochs", "seconds",
                                             "seeded"], rows)


def importance_table(data: ReportData) -> Table:
    table = data.importance_table
    rows = [[r.parameter, str(r.trials), "" if r.importance != r.importance else f"{r.importance:.3f}", r.note]
            for r in table[table["scope"] == "all"].itertuples()]
    return Table("Parameter importances", ["parameter", "complete trials with it", "importance", "note"], rows,
                 data.importance_note + "; importances are shares of the ranked parameters.")


def schedule_importance_table(data: ReportData) -> Table | None:
    table = data.importance_table[data.importance_table["scope"] != "all"]
    if table.empty:
        return None
    rows = [[r.scope, r.parameter, str(r.trials), "" if r.importance != r.importance else f"{r.importance:.3f}",
             r.note] for r in table.itertuples()]
    return Table("Within each schedule type", ["schedule", "parameter", "complete trials", "importance", "note"],
                 rows, "initial_lr, warmup_fraction and the family's own parameters within each schedule type "
                 "that has enough complete trials (shares within the type).")


def evaluation_table(data: ReportData) -> Table:
    frame = data.trials.set_index("number")
    ranks = stats.evaluation_ranks(data.trials, data.evaluations, data.direction)
    rows = []
    for e in data.evaluations:
        trial = e.get("trial")
        row = frame.loc[trial] if trial in frame.index else {}
        validation_rank, test_rank = ranks.get(trial, ("", ""))
        rows.append([f"#{trial}", str(row.get("schedule", "")), fmt_lr(row.get("initial_lr")),
                     fmt_value(row.get("value")), str(validation_rank), fmt_value(e.get("mean")),
                     fmt_value(e.get("sd")), str(len(e.get("runs") or [])), str(test_rank)])
    return Table("Test-split evaluations", ["trial", "schedule", "initial_lr", f"validation {data.metric}",
                                            "validation rank", f"{metric_label(data.metric, 'test')} (mean)", "sd",
                                            "runs", "test rank"],
                 rows, "Each configuration retrained from scratch on training + validation images by 'sweep "
                       "evaluate' (one run per seed) and scored once on the test split; ranks among the evaluated.")


def study_document(data: ReportData, found: list[Finding], images: dict[str, Image],
                   best_config: str | None) -> Document:
    """The page for one study; ``best_config`` is the text of best_config.yaml, if any."""

    def figure(name: str) -> list:
        return [images[name]] if name in images else []

    sections = [Section("Findings", [Findings(found)]),
                Section("Schedule types", [schedule_table(data), *figure("schedules")]),
                Section("Optimizers", [t for t in [optimizer_table(data)] if t]),
                Section("Learning rate", [*figure("lr_vs_value"), *figure("lr_finder")]),
                Section("Progress", figure("best_so_far"))]
    top = [top_table(data), *figure("top_epochs"), *figure("top_lr_curves"),
           Link(f"All {len(data.trials)} trials: trials.csv", "trials.csv")]
    sections.append(Section("Best trials", top))
    importance: list = [importance_table(data)] if len(data.importance_table) else []
    if not data.importances:
        importance.append(Paragraph(f"No parameter has enough complete trials to rank ({data.importance_note})."))
    importance += [*figure("importances"), *[t for t in [schedule_importance_table(data)] if t]]
    sections.append(Section("Parameter importances", importance))
    sections.append(Section("Training curves", figure("intermediate")))
    if data.evaluations:
        sections.append(Section("Test split", [evaluation_table(data)]))
    if best_config:
        sections.append(Section("Reproduce the best trial", [
            Paragraph("best_config.yaml holds the study's config and the best trial's parameters:"),
            Code(best_config), Link("best_config.yaml", "best_config.yaml")]))
    elif data.config:  # best_config.yaml above already shows it
        sections.append(Section("Study config", [Code(yaml.safe_dump(data.config, sort_keys=False))]))
    sections = [s for s in sections if s.blocks]
    versions = ", ".join(f"{k} {v}" for k, v in data.versions.items())
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    footer = f"Generated {generated} by sweep report." + (f" Study created with {versions}." if versions else "")
    meta = [(key, value) for key, value in overview_table(data).rows]
    return Document(f"Sweep report: {data.name}", meta, sections, footer)
