"""Analyses and the ``starquad reproduce`` report (each section registers itself on import): the experiments
layer, above the library, which never imports it. Needs the ``report`` extra."""

from starquad.extras import require

for _module in ("matplotlib", "sklearn", "scipy"):
    require(_module, "starquad reproduce and the NAS comparison")

from starquad.analysis import (  # noqa: E402, F401  (after the check; each registers its report section)
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
from starquad.analysis.report import (  # noqa: E402
    Section,
    SectionContext,
    SectionResult,
    list_sections,
    register_section,
    run_reproduce,
)

__all__ = ["Section", "SectionContext", "SectionResult", "list_sections", "register_section", "run_reproduce"]
