"""Hostile strings reach the report escaped; passwords never reach output, logs or files."""

import re

import pytest

from tests.conftest import SAMPLE_DIR

HOSTILE = "<script>alert(1)</script>|*_`[x](javascript:y)#"
SECRET = "pa55-Secret"


@pytest.mark.slow
def test_a_hostile_data_folder_name_comes_out_escaped_in_a_real_report(cli):
    folder = cli.root / HOSTILE.replace("/", "\u2215")  # a real folder with markup in its name
    folder.mkdir()
    for file in SAMPLE_DIR.glob("train-*"):
        (folder / file.name).symlink_to(file)
    code, out, err = cli("run", "tiny.yaml", "--set", "data.source=idx", "--set", f"data.path={folder}",
                         "--set", "data.limit=300")
    assert code == 0, err[-2000:]
    page = (cli.root / "results" / "tiny" / "index.html").read_text()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    markdown = (cli.root / "results" / "tiny" / "report.md").read_text()
    outside_code = re.sub(r"```.*?```", "", markdown, flags=re.S)
    assert "<script>" not in outside_code
    written = {p.relative_to(cli.root).parts[0] for p in cli.root.rglob("*") if p.is_file() and not p.is_symlink()}
    assert written == {"tiny.yaml", "studies", "results"}, written


@pytest.mark.parametrize("argv", [
    ["-v", "status", "--storage", f"postgresql+psycopg://me:{SECRET}@127.0.0.1:1/db"],
    ["-v", "status", "tiny", "--storage", f"postgresql+psycopg://me:{SECRET}@127.0.0.1:1/db"],
    ["-v", "run", "tiny.yaml", "--storage", f"postgresql+psycopg://me:{SECRET}@127.0.0.1:1/db"],
    ["-v", "run", "tiny.yaml", "--storage", f"postgresql+psycopg://me:{SECRET}@127.0.0.1:1/db?connect_timeout=1"],
    ["-v", "report", "tiny", "--storage", f"postgresql+psycopg://me:{SECRET}@127.0.0.1:1/db"],
    ["-v", "resume", "tiny", "--storage", f"postgresql+psycopg://me:{SECRET}@127.0.0.1:1/db"],
    ["-v", "compare", f"postgresql+psycopg://me:{SECRET}@127.0.0.1:1/db#a", "b"],
    ["-v", "run", "tiny.yaml", "--set", f"study.storage=postgresql+psycopg://me:{SECRET}@127.0.0.1:1/db"],
])
def test_passwords_never_reach_the_output(cli, argv):
    code, out, err = cli(*argv)
    assert code == 2 and SECRET not in out + err, out + err
    assert not any(SECRET.encode() in p.read_bytes() for p in cli.root.rglob("*") if p.is_file())
