"""Hostile strings in a study come out of reports as text, never as markup; YAML builds no objects.

Names are refused before they get anywhere (test_inputs.py), so what can carry markup is
free text a study stores: config values (data.path), package versions, the LR finder's
method, evaluation records and trial attributes written by sweep or by any other Optuna
client. Each page is read back with a real parser (html.parser, markdown-it as GitHub
renders tables) and must hold only the elements the renderer itself writes.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt  # a dependency of rich, which Keras requires
from optuna.trial import TrialState, create_trial

from sweep import attrs
from tests.conftest import SAMPLE_DIR
from tests.fake_study import build_study
from tests.fake_study import distributions as fake_distributions

PAYLOADS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "[click](javascript:alert(3))",
    "![pixel](http://evil.example/p.png)",
    "<https://evil.example/autolink>",
    "| cell | cell |",
    "**bold** _em_ `code` ~~strike~~",
    "<!-- open comment",
    "&lt;b&gt;pre-escaped&lt;/b&gt;",
    "\\<b>backslashed",
    "\n# heading\n- item\n```\nfence",
]
HOSTILE = " ".join(PAYLOADS)
MARKERS = ["<script>alert(1)</script>", "onerror=alert(2)>", "[click](javascript:alert(3))", "| cell | cell |",
           "**bold** _em_ `code` ~~strike~~", "&lt;b&gt;pre-escaped"]  # must read as text, verbatim

PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "section", "table", "caption", "thead",
             "tbody", "tr", "th", "td", "ul", "li", "p", "pre", "code", "a", "figure", "img", "figcaption", "footer",
             "div"}  # div: the box a wide table scrolls in
MARKDOWN_TAGS = {"h1", "h2", "p", "ul", "li", "strong", "em", "table", "thead", "tbody", "tr", "th", "td", "pre",
                 "code", "a", "img"}


class _Page(HTMLParser):
    def __init__(self, text: str):
        super().__init__()  # convert_charrefs: text arrives unescaped, as a reader sees it
        self.tags, self.attrs, self.text = set(), [], []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attributes):
        self.tags.add(tag)
        self.attrs += [(tag, name, value or "") for name, value in attributes]

    def handle_data(self, data):
        self.text.append(data)

    def handle_comment(self, data):
        self.tags.add("<!--")


def _assert_only_our_markup(html_text: str, allowed: set[str]) -> str:
    page = _Page(html_text)
    assert page.tags <= allowed, f"unexpected elements: {page.tags - allowed}"
    assert not [a for a in page.attrs if a[1].startswith("on")], "an event-handler attribute"
    for tag, name, value in page.attrs:
        if name == "href":
            assert not re.match(r"^[a-z][a-z0-9+.-]*:", value, re.I), f"a link out of the folder: {value}"
        if name == "src":
            assert value.startswith(("data:image/png;base64,", "figures/")), f"an image from elsewhere: {value}"
    return " ".join(" ".join(page.text).split())


def _hostile_study(root, name: str):
    study = build_study(12, storage=f"sqlite:///{root}/studies/{name}.db", name=name, title=HOSTILE)
    study.set_user_attr(attrs.VERSIONS, {"sweep": HOSTILE, HOSTILE: "1"})
    study.set_user_attr(attrs.LR_FINDER, {**study.user_attrs[attrs.LR_FINDER], "method": HOSTILE})
    best = study.best_trial.number
    study.set_user_attr(attrs.EVALUATIONS, [{"trial": best, "params": {"schedule": HOSTILE, "initial_lr": 1e-3},
                                             "test_accuracy": 0.8, "test_loss": 0.5, "seconds": 1.0}])
    # Trials another Optuna client wrote: markup in every attribute the report reads.
    distributions = {k: v for k, v in fake_distributions().items() if k in ("initial_lr", "schedule", "warmup_fraction")}
    for state, value in ((TrialState.COMPLETE, 0.5), (TrialState.PRUNED, 0.2)):
        study.add_trial(create_trial(
            state=state, value=value, params={"initial_lr": 1e-3, "schedule": "constant", "warmup_fraction": 0.0},
            distributions=distributions, intermediate_values={1: value},
            user_attrs={attrs.WORKER: HOSTILE, attrs.PRUNE_REASON: HOSTILE, attrs.EPOCHS_RUN: 1}))
    return study


@pytest.fixture
def hostile(cli):
    (cli.root / "studies").mkdir()
    _hostile_study(cli.root, "evil")
    _hostile_study(cli.root, "evil2")
    return cli


@pytest.mark.parametrize("argv, folder, shown", [
    (["report", "evil"], "evil", True),
    (["compare", "evil", "evil2", "--out", "results/cmp"], "cmp", False),  # shows names and numbers only
])
def test_hostile_strings_come_out_as_text(hostile, argv, folder, shown):
    code, out, err = hostile(*argv)
    assert code == 0, err[-2000:]
    out_dir = hostile.root / "results" / folder

    text = _assert_only_our_markup((out_dir / "index.html").read_text(), PAGE_TAGS)
    if not shown:
        return
    assert all(marker in text for marker in MARKERS), "the hostile strings must be shown, as text"

    markdown = (out_dir / "report.md").read_text()
    parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    tokens = parser.parse(markdown)
    raw_html = [t for t in tokens if t.type == "html_block"] + \
               [c for t in tokens for c in t.children or [] if c.type == "html_inline"]
    assert not raw_html, f"raw HTML reached report.md: {raw_html[:2]}"
    rendered = _assert_only_our_markup(parser.render(markdown), MARKDOWN_TAGS)
    outside_code = " ".join(c.content for t in tokens for c in t.children or [] if c.type == "text")
    assert "<script>alert(1)</script>" in outside_code and "[click](javascript:alert(3))" in outside_code
    assert "<script>alert(1)</script>" in rendered


@pytest.mark.slow
def test_a_hostile_data_folder_name_comes_out_escaped_in_a_real_report(cli):
    folder = cli.root / "<script>alert(1)<∕script>|*_`[x](javascript:y)#"  # a real folder with markup in its name
    folder.mkdir()
    for file in SAMPLE_DIR.glob("train-*"):
        (folder / file.name).symlink_to(file)
    code, out, err = cli("run", "tiny.yaml", "--set", "data.source=idx", "--set", f"data.path={folder}",
                         "--set", "data.limit=300")
    assert code == 0, err[-2000:]
    text = _assert_only_our_markup((cli.root / "results" / "tiny" / "index.html").read_text(), PAGE_TAGS)
    assert "<script>alert(1)" in text  # shown (in the config's YAML), as text
    markdown = (cli.root / "results" / "tiny" / "report.md").read_text()
    assert not [t for t in MarkdownIt("commonmark").enable("table").parse(markdown) if t.type == "html_block"]
    written = {p.relative_to(cli.root).parts[0] for p in cli.root.rglob("*") if p.is_file() and not p.is_symlink()}
    assert written == {"tiny.yaml", "studies", "results"}, written


# --- YAML: safe loading everywhere YAML is read ----------------------------------------------

TAGS = [
    "!!python/object/apply:os.system ['touch pwned']",
    "!!python/object/new:os.system ['touch pwned']",
    "!!python/object:__main__.Pwned {x: 1}",
    "!!python/name:os.system",
    "!!python/module:os",
]


@pytest.mark.parametrize("tag", TAGS, ids=lambda t: t.split()[0].split(":")[1])
@pytest.mark.parametrize("where", ["config", "section", "--set", "--params"])
def test_yaml_never_constructs_objects(cli, tag, where):
    if where == "config":
        (cli.root / "evil.yaml").write_text(f"{tag}\n")
        argv = ["run", "evil.yaml"]
    elif where == "section":
        (cli.root / "evil.yaml").write_text(f"study: {{name: x}}\nmodel: {tag}\n")
        argv = ["run", "evil.yaml"]
    elif where == "--set":
        argv = ["run", "tiny.yaml", "--set", f"model.filters={tag}"]
    else:  # a best_config.yaml-like file given to sweep train
        (cli.root / "best.yaml").write_text(f"params: {tag}\n")
        argv = ["train", "tiny.yaml", "--params", "best.yaml"]
    cli.assert_clear_error(*argv, expect="python/")
    assert not (cli.root / "pwned").exists()
