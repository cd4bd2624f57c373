"""The generated pages of docs/ match the code they restate, and the hand-written pages point at files that exist."""

from __future__ import annotations

import re

from repo_tools import REPO, load_tool


def _docs_tool():
    return load_tool("docs")


def test_rules_page_is_generated_from_the_code():
    tool = _docs_tool()
    committed = (REPO / "docs" / "rules.md").read_text()
    assert committed == tool.rules_page(), "docs/rules.md is stale: run python tools/docs.py"


def test_rules_page_lists_every_rule_and_primitive():
    from syno_tvm.ir.primitives import PRIMITIVES
    from syno_tvm.synth.canon import RULES

    page = _docs_tool().rules_page()
    for rule in RULES:
        assert f"| `{rule.name}` |" in page
    for name in PRIMITIVES:
        assert f"| {name} |" in page


def test_docs_name_only_files_that_exist():
    """Every repository path a docs page names in backticks (a .py/.md/.txt/.json/.ipynb file) is there."""
    missing = []
    for page in sorted((REPO / "docs").glob("*.md")):
        for path in re.findall(r"`((?:syno_tvm|benchmarks|tests|tools|tutorials|docs|native|python)/[\w./-]+"
                               r"\.(?:py|md|txt|json|ipynb|png|cc|h))`", page.read_text()):
            if not (REPO / path).exists():
                missing.append(f"{page.name}: {path}")
    assert not missing, missing


def test_architecture_example_runs():
    """The example in docs/architecture.md walks spec -> space -> sampler -> verify -> swap as printed there."""
    page = (REPO / "docs" / "architecture.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    assert blocks, "docs/architecture.md has no python example"
    for code in blocks:
        exec(compile(code, "docs/architecture.md", "exec"), {})
