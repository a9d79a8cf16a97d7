"""Architecture search: a NASNet-style cell space on KerasTuner (lecture part 7).

- `genotype`: `Genotype`, `load_genotype`, `build_from_genotype`, the cell.
- `hypermodel`: `CellHyperModel`, the space as a KerasTuner `HyperModel`.
- `evolution`: `RegularizedEvolutionOracle` (Real et al. 2019).
- `runner`: `SearchConfig`, `run_search`, tuners, reports.
- `commands`: the `keras-convnets search` subcommand.

Names are imported lazily, so that importing the subcommand module
(`keras_convnets.search.commands`) does not import KerasTuner.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Genotype": "genotype",
    "build_from_genotype": "genotype",
    "load_genotype": "genotype",
    "OPERATIONS": "genotype",
    "CellHyperModel": "hypermodel",
    "RegularizedEvolutionOracle": "evolution",
    "RegularizedEvolution": "runner",
    "SearchConfig": "runner",
    "run_search": "runner",
    "write_reports": "runner",
    "plot_cell": "render",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"keras_convnets.search.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'keras_convnets.search' has no attribute {name!r}")
