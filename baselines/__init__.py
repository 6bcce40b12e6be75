"""The five baselines of Tables 1 and 3 (MCNet, MoCoGAN, Villegas et al. 2017, VGAN, Mathieu et
al.), one module each, behind the common `frgan.methods.Method` interface. Importing this
package registers every baseline module present (a module that exists but fails to import is
an error, never skipped)."""
from __future__ import annotations

import importlib
import importlib.util

MODULES = ("villegas17", "mcnet", "mathieu", "vgan", "mocogan")

for _name in MODULES:
    if importlib.util.find_spec(f"{__name__}.{_name}") is not None:
        importlib.import_module(f"{__name__}.{_name}")
