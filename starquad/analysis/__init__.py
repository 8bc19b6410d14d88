"""Analyses and the ``starquad reproduce`` report (each section registers itself on import)."""

from starquad.analysis import data_overview  # noqa: F401  (registers the 'data' section)
from starquad.analysis.report import (
    Section,
    SectionContext,
    SectionResult,
    list_sections,
    register_section,
    run_reproduce,
)

__all__ = ["Section", "SectionContext", "SectionResult", "list_sections", "register_section", "run_reproduce"]
