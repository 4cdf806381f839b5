"""``sweep report`` and ``sweep compare``: report folders from stored studies (no Keras)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sweep.commands import EXIT_OK, command, storage_url, study_spec
from sweep.errors import ConfigError

RESULTS_DIR = Path("results")


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="study name, or URL#NAME for a study in another storage")
    parser.add_argument("--storage", metavar="URL", type=storage_url, default=None,
                        help="storage URL (default: sqlite:///studies/NAME.db)")
    parser.add_argument("--out", metavar="DIR", default=None, help="output folder (default: results/NAME)")


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help="two or more study names, each NAME or URL#NAME")
    parser.add_argument("--storage", metavar="URL", type=storage_url, action="append", default=[],
                        help="storage URL: once for every study, or once per study in the order of the names")
    parser.add_argument("--out", metavar="DIR", default=None, help="output folder (default: results/compare-A-B...)")


@command("report", "write a study's report to results/NAME/ (HTML, Markdown, CSV, figures)", _report_arguments,
         ("sweep report quickstart", "sweep report 'sqlite:///elsewhere/q.db#quickstart' --out /tmp/q-report",
          "sweep report fmnist --storage postgresql+psycopg://sweep@db.example/sweeps"))
def _report(args: argparse.Namespace) -> int:
    from sweep.report import write_report
    from sweep.report.data.source import open_study_for_reading

    name, url = study_spec(args.name, args.storage)
    study, used = open_study_for_reading(name, url)
    index = write_report(study, Path(args.out) if args.out else RESULTS_DIR / name, storage_url=used)
    print(f"report written to {index}")
    return EXIT_OK


@command("compare", "compare studies side by side in results/compare-NAMES/", _compare_arguments,
         ("sweep compare with-prior without-prior",
          "sweep compare a b --storage sqlite:///studies/a.db --storage sqlite:///studies/b.db"))
def _compare(args: argparse.Namespace) -> int:
    from sweep.report import write_comparison
    from sweep.report.compare import default_out_dir
    from sweep.report.data.source import open_study_for_reading, split_spec

    if len(args.names) < 2:
        raise ConfigError(f"compare needs at least two studies, got {len(args.names)}")
    specs = [split_spec(spec) for spec in args.names]
    urls = storages_for(args.names, [url for _, url in specs], args.storage)
    opened = [open_study_for_reading(name, url) for (name, _), url in zip(specs, urls)]
    out = Path(args.out) if args.out else default_out_dir([name for name, _ in specs], RESULTS_DIR)
    index = write_comparison([study for study, _ in opened], out, storage_urls=[url for _, url in opened])
    print(f"comparison written to {index}")
    return EXIT_OK


def storages_for(names: list[str], inline: list[str | None], storages: list[str]) -> list[str | None]:
    """Each study's storage URL: its own ``URL#``, else --storage (one for all, or one per study)."""
    if len(storages) not in (0, 1, len(names)):
        raise ConfigError(f"--storage given {len(storages)} times for {len(names)} studies; "
                          "give it once for all of them or once per study")
    if len(storages) == len(names) > 1 and any(inline):
        raise ConfigError("give each study's storage either as URL#NAME or with one --storage per study, not both")
    if len(storages) == len(names):
        return list(storages)
    fallback = storages[0] if storages else None
    return [url or fallback for url in inline]
