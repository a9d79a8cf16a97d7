"""The lecture's claims as runnable experiments.

`keras-convnets experiment NAME [--quick] [--out DIR]` writes
`DIR/NAME/results.json`, PNG plots and `DIR/NAME/summary.md`. Each module has
`run(out_dir, quick=False, seed=0, data_dir=None) -> dict`; `list_experiments()`
names them and `run_experiment(name, ...)` runs one. Imports are lazy: listing
the experiments does not import TensorFlow.
"""

from keras_convnets.experiments.registry import (
    EXPERIMENTS,
    get_experiment,
    list_experiments,
    run_experiment,
)

__all__ = ["EXPERIMENTS", "get_experiment", "list_experiments", "run_experiment"]
