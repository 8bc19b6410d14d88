"""The module timm sees as home of the starquad models registered in its registry (``also_in_timm=True``).

timm reads ``default_cfgs`` from an entrypoint's module and turns each entry into a ``PretrainedCfg``;
our family cfgs carry extra fields (``paper_metrics``), so :func:`starquad.models.register_model` puts
the timm-compatible part of each cfg here, with a thin entrypoint wrapper that timm calls.
"""

from typing import Any

__all__: list[str] = []
default_cfgs: dict[str, dict[str, Any]] = {}
