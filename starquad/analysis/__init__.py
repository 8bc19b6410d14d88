"""The experiments layer, above the library (which never imports it): the ``starquad reproduce`` report and its
sections, and the NAS comparison. Needs the ``report`` extra.

Names resolve lazily (:mod:`starquad._lazy`), and the sections register themselves when the report first needs
them (:func:`~starquad.analysis.report.load_sections`), so ``starquad.analysis.config`` is importable without
torch."""

from starquad._lazy import lazy_exports

_EXPORTS = {name: "starquad.analysis.report" for name in ("Section", "SectionContext", "SectionResult",
                                                          "list_sections", "register_section", "run_reproduce")}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
