"""The import path the README documents for model names and loading.

    from vlmlab.models.registry import load_backend, get_spec, register

The table of model names lives in `vlmlab.models.names` (below `loading`, which resolves names
through it) and `load_backend` / `check_model` in `vlmlab.models.loading`. This module sits above
both, so the documented path keeps working without an import circle; code inside vlmlab imports
from the real homes.
"""

from vlmlab.models.families import FAMILIES, FamilySpec
from vlmlab.models.loading import check_model, load_backend
from vlmlab.models.names import ModelSpec, get_spec, list_specs, register, spec_for_checkpoint

__all__ = ["FAMILIES", "FamilySpec", "ModelSpec", "check_model", "get_spec", "list_specs", "load_backend", "register",
           "spec_for_checkpoint"]
