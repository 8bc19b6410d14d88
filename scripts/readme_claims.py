"""Rewrite the README's table of full-report verdicts from docs/results/full/results.json (between the
``<!-- claims:begin -->`` and ``<!-- claims:end -->`` markers). tests/analysis/test_report.py checks it is current."""

import json
import sys
from pathlib import Path

from starquad.analysis.report import claims_table

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- claims:begin -->", "<!-- claims:end -->"


def updated_readme(readme: str, results: dict) -> str:
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{claims_table(results)}\n{END}{tail}"


def main() -> int:
    readme = ROOT / "README.md"
    results = json.loads((ROOT / "docs/results/full/results.json").read_text())
    text = updated_readme(readme.read_text(), results)
    if "--check" in sys.argv:
        return 0 if text == readme.read_text() else 1
    readme.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
