"""The cell search space as a KerasTuner `HyperModel`, and proxy training.

`CellHyperModel.build(hp)` declares the cell choices (`normal_0_op_a`, ...)
and the network hyperparameters `cells`, `filters`, `learning_rate` and
`augment` (searched when given several values, `hp.Fixed` otherwise), builds
the network with `build_from_genotype` (the model `nas_cell_net`) and compiles
it with the `fast` training recipe's optimizer (AdamW, warm-up, cosine).
`fit` trains it on the proxy task (a seeded fraction of the training split,
few epochs), applying the trial's augmentation policy, and returns the
metrics of the best epoch plus the model's parameters, forward FLOPs per
image and the seconds spent in `fit`, which KerasTuner records in the trial.
"""

from __future__ import annotations

import time

import keras
import keras_tuner

from keras_convnets.blocks.nas_cell import check_cell_norm
from keras_convnets.errors import UserInputError
from keras_convnets.models.nas_cell_net import build_from_genotype, resolve_stem_stride
from keras_convnets.search.genotype import Genotype
from keras_convnets.training.train import build_state_eagerly

OBJECTIVE = "val_accuracy"


def objective() -> keras_tuner.Objective:
    """The search objective: validation accuracy, maximized."""
    return keras_tuner.Objective(OBJECTIVE, direction="max")


def proxy_bn_momentum(total_steps: int) -> float:
    """Batch-norm momentum for a proxy of `total_steps` training steps.

    Keras's 0.99 leaves most of the initial moving statistics (mean 0,
    variance 1) in place after a few dozen steps, so a short proxy scores
    chance on validation whatever the cell. This momentum forgets all but 1%
    of them within the second half of the proxy (0.99 at most).
    """
    return min(0.99, 0.01 ** (2 / max(1, int(total_steps))))


def _choice_or_fixed(hp, name, values):
    values = list(values)
    if not values:
        raise UserInputError(f"{name} needs at least one value. Received: {name}=[]")
    if len(values) == 1:
        return hp.Fixed(name, values[0])
    return hp.Choice(name, values)


class CellHyperModel(keras_tuner.HyperModel):
    """NASNet-style cells stacked into a classifier, trained on a proxy task.

    Args:
        input_shape: tuple. `(height, width, channels)` of the images.
        num_classes: int. Classes.
        blocks: int. Blocks per cell, `B`. Defaults to 3.
        cells: sequence of int. Candidate normal cells per stage, `N`; one value
            fixes it. Defaults to `(1,)`.
        filters: sequence of int. Candidate first-stage filters, `F`.
            Defaults to `(16,)`.
        learning_rate: sequence of float. Candidate peak learning rates.
            Defaults to `(2e-3,)`. The optimizer is the `fast` training
            recipe's: AdamW, linear warm-up, cosine decay.
        augment: sequence of str. Candidate augmentation policies
            (`keras_convnets.data.augment.list_policies()`). Defaults to
            `("none",)`.
        epochs: int. Proxy epochs, for the learning-rate schedule. Defaults to 1.
        steps_per_epoch: int. Batches per proxy epoch, for the schedule.
        weight_decay: float. Decoupled weight decay. Defaults to the `fast`
            recipe's (0.05).
        cell_norm: str. `"none"` (the default: no BatchNorm, fast on CPUs) or
            `"batch"`; see `keras_convnets.blocks.nas_cell`.
        stem_stride: int. 1 or 2 (the default): see
            `keras_convnets.models.nas_cell_net.build_from_genotype`.
        seed: int. Seed of the augmentation draws. Defaults to 0.
        jit_compile: bool. XLA for the train step. Defaults to False.
        run_eagerly: bool. Train without tracing a `tf.function` (faster for
            proxies of a few batches, and no traced graph outlives the
            trial). Defaults to True.

    Example:

    ```python
    hypermodel = CellHyperModel((28, 28, 1), 10, blocks=3, filters=(8, 16))
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)          # the default cell, filters=8
    hp.Fixed("filters", 16)               # pin a value
    ```
    """

    def __init__(
        self,
        input_shape,
        num_classes,
        blocks=3,
        cells=(1,),
        filters=(16,),
        learning_rate=(2e-3,),
        augment=("none",),
        epochs=1,
        steps_per_epoch=1,
        weight_decay=None,
        seed=0,
        jit_compile=False,
        run_eagerly=True,
        cell_norm="none",
        stem_stride=2,
        name="cell_search",
    ):
        super().__init__(name=name, tunable=True)
        from keras_convnets.data.augment import list_policies

        self.input_shape = tuple(input_shape)
        self.num_classes = int(num_classes)
        self.blocks = int(blocks)
        self.cells = tuple(int(c) for c in cells)
        self.filters = tuple(int(f) for f in filters)
        self.learning_rate = tuple(float(lr) for lr in learning_rate)
        self.augment = tuple(augment)
        unknown = [p for p in self.augment if p not in list_policies()]
        if unknown:
            raise UserInputError(
                f"Unknown augmentation policy; choose among {', '.join(list_policies())}. "
                f"Received: augment={unknown[0]!r}"
            )
        self.epochs = int(epochs)
        self.steps_per_epoch = int(steps_per_epoch)
        self.weight_decay = None if weight_decay is None else float(weight_decay)
        self.cell_norm = check_cell_norm(cell_norm)
        self.stem_stride = resolve_stem_stride(None, stem_stride)
        self.seed = int(seed)
        self.jit_compile = bool(jit_compile)
        self.run_eagerly = bool(run_eagerly)

    def genotype(self, hp) -> Genotype:
        """The trial's genotype (declares the cell choices on `hp`)."""
        return Genotype.from_hyperparameters(hp, blocks=self.blocks)

    def screen_score(self, values: dict) -> float:
        """SynFlow at initialization of the network a trial with these
        hyperparameter values would train (`zero_cost.synflow_score`): a
        cheap score for regularized evolution's candidate screening.

        Seeded with `seed`, so a candidate always gets the same score; the
        model is dropped and the Keras session cleared before returning.
        """
        from keras_convnets.search.zero_cost import synflow_score

        genotype = Genotype.from_hyperparameters(dict(values))
        keras.utils.set_random_seed(self.seed)
        model = build_from_genotype(
            genotype,
            self.input_shape,
            self.num_classes,
            cells=values.get("cells", self.cells[0]),
            filters=values.get("filters", self.filters[0]),
            name="screen",
            cell_norm=self.cell_norm,
            stem_stride=self.stem_stride,
        )
        try:
            return synflow_score(model)
        finally:
            del model
            keras.backend.clear_session()

    def build(self, hp) -> keras.Model:
        from keras_convnets.training.config import get_recipe
        from keras_convnets.training.optim import build_optimizer

        genotype = self.genotype(hp)
        cells = _choice_or_fixed(hp, "cells", self.cells)
        filters = _choice_or_fixed(hp, "filters", self.filters)
        learning_rate = _choice_or_fixed(hp, "learning_rate", self.learning_rate)
        _choice_or_fixed(hp, "augment", self.augment)
        model = build_from_genotype(
            genotype,
            self.input_shape,
            self.num_classes,
            cells=cells,
            filters=filters,
            name="cell_net",
            cell_norm=self.cell_norm,
            stem_stride=self.stem_stride,
        )
        momentum = proxy_bn_momentum(self.epochs * self.steps_per_epoch)
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = momentum
        recipe = get_recipe("fast")
        optimizer = build_optimizer(
            learning_rate=learning_rate,
            epochs=self.epochs,
            steps_per_epoch=self.steps_per_epoch,
            optimizer=recipe.optimizer,
            schedule=recipe.schedule,
            weight_decay=(
                recipe.weight_decay if self.weight_decay is None else self.weight_decay
            ),
            # A short proxy cannot spare a whole epoch of warmup.
            warmup_epochs=min(recipe.warmup_epochs, self.epochs / 5),
        )
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.CategoricalCrossentropy(),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
            jit_compile=self.jit_compile and not self.run_eagerly,
            run_eagerly=self.run_eagerly,
        )
        return model

    def fit(self, hp, model, x, *args, validation_data=None, **kwargs) -> dict:
        """Trains on the proxy; returns the best epoch's metrics and the cost.

        Returns:
            dict: `val_accuracy`, `val_loss`, `accuracy`, `loss` at the epoch
            of best validation accuracy, and `params`, `flops` (forward, per
            image) and `fit_seconds`.
        """
        from keras_convnets.models.flops import count_flops

        policy = hp.get("augment") if "augment" in hp.values else "none"
        if policy != "none":
            from keras_convnets.data.augment import augment_dataset

            x = augment_dataset(x, policy, seed=self.seed)
        build_state_eagerly(model, x)  # see its docstring: graph memory
        start = time.perf_counter()
        history = model.fit(x, *args, validation_data=validation_data, **kwargs)
        fit_seconds = time.perf_counter() - start
        logs = history.history
        if OBJECTIVE not in logs or not logs[OBJECTIVE]:
            raise UserInputError(
                "The proxy task needs a validation split (validation_fraction > 0)."
            )
        best = max(range(len(logs[OBJECTIVE])), key=lambda i: logs[OBJECTIVE][i])
        metrics = {k: float(v[best]) for k, v in logs.items() if len(v) > best}
        metrics.update(
            params=float(model.count_params()),
            flops=float(count_flops(model)),
            fit_seconds=fit_seconds,
        )
        return metrics
