"""Regularized evolution (AmoebaNet) as a KerasTuner `Oracle`.

The first `population_size` trials are random. After that, each new trial is
a child: `sample_size` members are drawn at random from the population, the
best of them is the parent, and the child is the parent with exactly one
choice changed (one operation or one input of one block; or one of the other
searched hyperparameters, such as `filters`, if any are searched). The
population is the `population_size` most recently finished trials, so the
oldest member dies when a child joins: age, not fitness, decides who leaves,
which is what "regularized" means.

With `screen` and `screen_candidates = K > 1` (multi-fidelity), each new
trial draws K candidates the same way (K random ones while the population
fills, K tournament children after) and trains only the one the cheap
`screen` scores highest (e.g. `CellHyperModel.screen_score`: SynFlow at
initialization, about a second per cell on a CPU, against about a minute
for the training proxy).

All state lives in KerasTuner's trial files and `oracle.json`: a resumed or
distributed search (KerasTuner's chief/worker mode) continues the same
evolution. Each trial's choices come from a random generator seeded with
`(seed, trial_id)`, so a search is reproducible given its seed and the order
in which trials finish.
"""

from __future__ import annotations

import random

import keras_tuner
from keras_tuner.engine import trial as trial_module
from keras_tuner.engine.hyperparameters import Choice

from keras_convnets.errors import UserInputError
from keras_convnets.search import state


def _kind(name: str) -> str:
    """`op`, `input` or `other`, from a hyperparameter's name."""
    if name.endswith(("_op_a", "_op_b")):
        return "op"
    if name.endswith(("_input_a", "_input_b")):
        return "input"
    return "other"


class RegularizedEvolutionOracle(keras_tuner.Oracle):
    """Regularized (aging) evolution over a KerasTuner search space.

    Args:
        objective: str or `keras_tuner.Objective`. What to optimize, e.g.
            `keras_tuner.Objective("val_accuracy", "max")`.
        max_trials: int. Total trials, the random first ones included.
        population_size: int. `P`, the number of living members. Defaults to 20.
        sample_size: int. `S`, members drawn per selection; the best is the
            parent (`1 <= S <= P`). Defaults to 5.
        seed: int. Random seed. Defaults to None (random).
        screen: callable `values -> float` (higher is better) or None. Scores
            a candidate's hyperparameter values without training it.
        screen_candidates: int. `K`: candidates drawn per trial, the best by
            `screen` trained. Defaults to 1 (no screening).
        hyperparameters: `HyperParameters`. Optional predeclared space.
        **kwargs: other `keras_tuner.Oracle` arguments
            (`max_retries_per_trial`, ...).

    Example:

    ```python
    oracle = RegularizedEvolutionOracle(
        keras_tuner.Objective("val_accuracy", "max"), max_trials=100,
        population_size=20, sample_size=5, seed=0)
    tuner = keras_tuner.Tuner(oracle, hypermodel, directory="tuning",
                              project_name="evolution")
    ```

    Reference:
        Real, Aggarwal, Huang and Le, "Regularized evolution for image
        classifier architecture search", AAAI 2019.
    """

    def __init__(
        self,
        objective=None,
        max_trials=100,
        population_size=20,
        sample_size=5,
        seed=None,
        hyperparameters=None,
        screen=None,
        screen_candidates=1,
        **kwargs,
    ):
        if int(screen_candidates) < 1:
            raise UserInputError(
                f"screen_candidates must be >= 1. Received: screen_candidates={screen_candidates}"
            )
        if int(population_size) < 1:
            raise UserInputError(
                f"population_size must be >= 1. Received: population_size={population_size}"
            )
        if not 1 <= int(sample_size) <= int(population_size):
            raise UserInputError(
                f"sample_size must be in [1, population_size={population_size}]. "
                f"Received: sample_size={sample_size}"
            )
        state.install_atomic_writes()  # oracle.json and trial.json: atomic
        super().__init__(
            objective=objective,
            max_trials=max_trials,
            hyperparameters=hyperparameters,
            seed=seed,
            **kwargs,
        )
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self.screen = screen
        self.screen_candidates = int(screen_candidates)

    # -- The algorithm ---------------------------------------------------------

    def population(self) -> list:
        """The living members: the last `P` completed, scored trials."""
        finished = [
            self.trials[trial_id]
            for trial_id in self.end_order
            if self.trials[trial_id].status == trial_module.TrialStatus.COMPLETED
            and self.trials[trial_id].score is not None
        ]
        return finished[-self.population_size :]

    def select_parent(self, population: list, rng: random.Random):
        """Tournament selection: the best of `S` members drawn without replacement."""
        sample = rng.sample(population, min(self.sample_size, len(population)))
        better = max if self.objective.direction == "max" else min
        return better(sample, key=lambda trial: trial.score)

    def mutate(self, values: dict, rng: random.Random) -> dict:
        """A copy of `values` with exactly one tunable choice changed.

        The kind of mutation (an operation, an input, or another searched
        hyperparameter if there is one) is drawn first, uniformly, then one
        hyperparameter of that kind, then a new value different from the old.
        """
        mutable = {}
        for hp in self.hyperparameters.space:
            candidates = _other_values(hp, values.get(hp.name))
            if candidates and hp.name in values:
                mutable.setdefault(_kind(hp.name), []).append((hp, candidates))
        if not mutable:
            raise UserInputError(
                "Regularized evolution needs at least one searched choice; "
                "every hyperparameter is fixed."
            )
        kind = rng.choice(sorted(mutable))
        hp, candidates = rng.choice(mutable[kind])
        child = dict(values)
        child[hp.name] = rng.choice(candidates)
        return child

    def _candidate(self, population, rng, drawn) -> dict | None:
        """One new trial's values: random while the population fills, then a
        tournament child not tried yet (nor among `drawn`); None if the
        space is exhausted."""
        if len(population) < self.population_size:
            return self._random_values()
        for _ in range(self._max_collisions):
            parent = self.select_parent(population, rng)
            child = self.mutate(parent.hyperparameters.values, rng)
            if not self._duplicate(child) and child not in drawn:
                return child
        return self._random_values()  # every nearby child was tried: explore

    def populate_space(self, trial_id):
        population = self.population()
        rng = random.Random(f"{self.seed}-{trial_id}")
        k = self.screen_candidates if self.screen is not None else 1
        drawn = []
        while len(drawn) < k:
            values = self._candidate(population, rng, drawn)
            if values is None or values in drawn:
                break
            drawn.append(values)
        if not drawn:
            return {"status": trial_module.TrialStatus.STOPPED, "values": None}
        values = drawn[0] if len(drawn) == 1 else max(drawn, key=self.screen)
        return {"status": trial_module.TrialStatus.RUNNING, "values": values}

    # -- State -----------------------------------------------------------------

    def get_state(self):
        state = super().get_state()
        state.update(population_size=self.population_size, sample_size=self.sample_size)
        return state

    def set_state(self, state):
        super().set_state(state)
        self.population_size = state.get("population_size", self.population_size)
        self.sample_size = state.get("sample_size", self.sample_size)


def _other_values(hp, current) -> list:
    """The values a mutation may give `hp`: its choices other than `current`."""
    if not isinstance(hp, Choice):
        return []
    return [v for v in hp.values if v != current]
