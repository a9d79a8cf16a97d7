"""Names of the experiments and their modules, imported only when run."""

from __future__ import annotations

import importlib

# name -> (module, one-line description). Only finished experiments are here.
EXPERIMENTS: dict[str, tuple[str, str]] = {
    "gradients": (
        "keras_convnets.experiments.gradients",
        "hand-derived dL/dw of conv + sigma + max-pool + readout vs GradientTape "
        "and the NumPy autodiff (parts 4-5)",
    ),
    "inductive-bias": (
        "keras_convnets.experiments.inductive_bias",
        "two points, five parameters: strong biases, augmentation, no free lunch "
        "(part 1)",
    ),
    "dense-vs-conv": (
        "keras_convnets.experiments.dense_vs_conv",
        "MLP vs locally connected vs conv at similar budgets, with and without "
        "translation augmentation (parts 1-2)",
    ),
    "translation-invariance": (
        "keras_convnets.experiments.translation_invariance",
        "Illing's net on a 40x40 canvas: representation change and accuracy under "
        "shifts for max-pool stride 1/2, average pool, no pool (part 3)",
    ),
    "pooling": (
        "keras_convnets.experiments.pooling",
        "max vs mean vs L2 vs median vs no pooling in Illing's net: accuracy, "
        "parameters and invariance under shifts (part 3)",
    ),
    "outer-product": (
        "keras_convnets.experiments.outer_product",
        "full vs outer-product vs depthwise-separable convolutions at the same "
        "layout: parameters, FLOPs, accuracy (part 6)",
    ),
    "transfer": (
        "keras_convnets.experiments.transfer",
        "pretrain on classes 0-4, retrain the top on 5-9 with 10/100/1000 labels "
        "per class vs from scratch, then fine-tune; --backbone for "
        "keras.applications (part 7)",
    ),
}


def list_experiments() -> list[str]:
    """The registered experiment names, sorted."""
    return sorted(EXPERIMENTS)


def get_experiment(name: str):
    """The module of experiment `name` (it has a `run` function)."""
    if name not in EXPERIMENTS:
        raise ValueError(
            f"Unknown experiment. Expected one of {list_experiments()}. "
            f"Received: name={name!r}"
        )
    return importlib.import_module(EXPERIMENTS[name][0])


def run_experiment(name, out_dir, quick=False, seed=0, data_dir=None, **options):
    """Runs experiment `name`; returns its results (also in OUT/NAME/results.json).

    `options` are the experiment's own arguments (e.g. `backbone` for
    `transfer`); one it does not take raises `UserInputError`.
    """
    import inspect

    from keras_convnets.errors import UserInputError

    run = get_experiment(name).run
    accepted = set(inspect.signature(run).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        flags = ", ".join("--" + key.replace("_", "-") for key in unknown)
        raise UserInputError(
            f"Experiment {name!r} does not take {flags}. Received: options={options}"
        )
    return run(out_dir, quick=quick, seed=seed, data_dir=data_dir, **options)
