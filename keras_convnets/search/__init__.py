"""Architecture search: a NASNet-style cell space on KerasTuner (lecture part 7).

The cell and its genotype are `keras_convnets.blocks.nas_cell`, the network
the registered model `nas_cell_net` (`keras_convnets.models.nas_cell_net`);
this package searches over them:

- `genotype`: the space as KerasTuner hyperparameters (`Genotype` with
  `to_hyperparameters`, `declare_search_space`); re-exports the moved names.
- `hypermodel`: `CellHyperModel`, the space as a KerasTuner `HyperModel`.
- `evolution`: `RegularizedEvolutionOracle` (Real et al. 2019).
- `config`: `SearchConfig` and its reading and merging.
- `tuners`: the four KerasTuner tuners with the package's additions.
- `distribution`: a chief serving the oracle to workers.
- `reports`: `trials.csv`, `best_genotype.json`, `summary.md`, diagrams.
- `runner`: `run_search`, the job itself.
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
    "RegularizedEvolution": "tuners",
    "SearchConfig": "config",
    "run_search": "runner",
    "write_reports": "reports",
    "plot_cell": "render",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"keras_convnets.search.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'keras_convnets.search' has no attribute {name!r}")
