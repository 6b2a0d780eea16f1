"""docs/azure-rules.md is generated from the rules' docstrings and kept up to date."""

from __future__ import annotations

from policies.azure_rules import RULES
from scripts.azure_rules_doc import PAGE, main, render


def test_the_rules_page_is_up_to_date() -> None:
    assert main(["--check"]) == 0, "run: python scripts/azure_rules_doc.py"


def test_the_page_lists_every_rule_with_its_source() -> None:
    text = render()
    for rule in RULES:
        assert f"## {rule.number}. {rule.title}" in text
        assert rule.source in text
    assert PAGE.read_text(encoding="utf-8") == text
