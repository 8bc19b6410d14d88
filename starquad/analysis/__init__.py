"""Analyses and the ``starquad reproduce`` report (each section registers itself on import)."""

from starquad.analysis import (  # noqa: F401  (each registers its report section)
    ablations,
    data_overview,
    demonet,
    implicit,
    latency,
    moons,
    nas,
    quadranet,
    quadratic,
    quantization,
    xor,
)
from starquad.analysis.report import (
    Section,
    SectionContext,
    SectionResult,
    list_sections,
    register_section,
    run_reproduce,
)

__all__ = ["Section", "SectionContext", "SectionResult", "list_sections", "register_section", "run_reproduce"]
