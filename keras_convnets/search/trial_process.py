"""Each search trial in a fresh Python process: flat memory at graph speed.

A trial trained in the search's own process leaves its traced `tf.function`
graphs behind in TensorFlow: about 36 MB of resident memory per trial in graph
mode, and later trials slow down with it. Training eagerly avoids that, but
costs about 3x the CPU of graph mode on a short proxy (README, "Proxy
fidelity"). Here each trial runs in a new interpreter
(`python -m keras_convnets.search.trial_process SPEC_DIR`), in graph mode, and
everything it allocated goes when it exits. The cost is one import of
TensorFlow and one load of the proxy data per trial (about 7 CPU-s on a
2-core CPU, against about 70 CPU-s for the default trial).

The search's process (`run_trial_in_process`, called from
`_CellTunerMixin._build_and_fit_model` in place of KerasTuner's
build-and-fit) keeps the oracle, the reports and the project's state; the
trial's process builds the model from the trial's hyperparameters, loads
weights for a Hyperband continuation, trains with the callbacks the tuner
configured (pickled across), writes the best-epoch checkpoint and the build
config into the trial's folder (atomically), and returns the metrics, its CPU
time and peak memory as JSON. An exception in the trial comes back as the
same kind of exception (a `UserInputError` stays one line); a trial process
that dies (a signal, out of memory) fails the trial, and KerasTuner goes on
as for any failed trial. Interrupting the search (Ctrl-C, SIGTERM) stops the
trial's process first.
"""

from __future__ import annotations

import os
import pickle
import resource
import subprocess
import sys
import tempfile
import zlib

from keras_convnets.errors import UserInputError

# The result file is ours, written by our child; bounded all the same.
MAX_RESULT_BYTES = 1024 * 1024
# How long a trial's process gets to stop after SIGTERM before SIGKILL.
STOP_GRACE_SECONDS = 10.0
# Set in the trial's process: the state seam (`state._die`) kills the parent
# as well, as a kill of the whole search would.
CHILD_ENV = "KERAS_CONVNETS_TRIAL_PROCESS"


class TrialProcessError(RuntimeError):
    """A trial's process failed (KerasTuner counts the trial as failed)."""


def trial_seed(seed: int, trial_id: str) -> int:
    """The seed of one trial's weights: the search's seed and the trial id.

    A trial retried after a kill, or resumed, draws the same initial weights.
    """
    key = (
        int(trial_id) if str(trial_id).isdigit() else zlib.crc32(str(trial_id).encode())
    )
    return (int(seed) * 1_000_003 + key) % (2**31 - 1)


def _split_callbacks(callbacks):
    """`(checkpoint, hparams_logdir, callbacks to send)` of KerasTuner's list.

    KerasTuner's best-epoch checkpoint and TensorBoard HParams callbacks are
    made again in the trial's process (the HParams callback holds a summary
    writer, which does not cross processes); its `TunerCallback` calls the
    tuner's per-epoch hooks, no-ops in our tuners, and stays behind.
    """
    from keras_tuner.src.engine import tuner_utils
    from tensorboard.plugins.hparams import api as hparams_api

    checkpoint, hparams_logdir, sent = None, None, []
    for callback in callbacks or []:
        if isinstance(callback, tuner_utils.SaveBestEpoch):
            checkpoint = callback
        elif isinstance(callback, hparams_api.KerasCallback):
            callback._writer.close()
        elif isinstance(callback, tuner_utils.TunerCallback):
            continue
        else:
            if callback.__class__.__name__ == "TensorBoard":
                hparams_logdir = callback.log_dir  # as KerasTuner pairs them
            sent.append(callback)
    return checkpoint, hparams_logdir, sent


def run_trial_in_process(tuner, trial, fit_kwargs: dict) -> dict:
    """Builds and trains `trial` in a fresh process; returns its metrics.

    Args:
        tuner: the `_CellTunerMixin` tuner (its `search_config` is the search's
            `SearchConfig`).
        trial: the KerasTuner trial.
        fit_kwargs: the keyword arguments KerasTuner's `run_trial` would pass
            to `HyperModel.fit` (callbacks, epochs, ...). Data arguments are
            not sent: the trial's process loads the same proxy split itself.

    Returns:
        The metrics dict `CellHyperModel.fit` returned in the trial's process.
        `tuner.last_trial_process` holds its CPU seconds and peak memory.
    """
    from keras_convnets.search import state
    from keras_convnets.training import io

    config = tuner.search_config
    kwargs = dict(fit_kwargs)
    checkpoint, hparams_logdir, callbacks = _split_callbacks(
        kwargs.pop("callbacks", None)
    )
    kwargs.pop("validation_data", None)
    hp = trial.hyperparameters
    initial_weights = None
    if "tuner/trial_id" in hp.values:  # Hyperband continues an earlier trial
        initial_weights = tuner._get_checkpoint_fname(hp.values["tuner/trial_id"])
    spec = {
        "config": config.to_dict(),
        "trial_id": trial.trial_id,
        "seed": trial_seed(config.seed, trial.trial_id),
        "hyperparameters": hp.get_config(),
        "checkpoint": None if checkpoint is None else checkpoint.filepath,
        "build_config": tuner._get_build_config_fname(trial.trial_id),
        "initial_weights": initial_weights,
        "hparams_logdir": hparams_logdir,
        "kill_seam_writes": state.kill_seam_counts(),
    }
    with tempfile.TemporaryDirectory(prefix="keras-convnets-trial-") as folder:
        try:
            payload = pickle.dumps({"fit_kwargs": kwargs, "callbacks": callbacks})
        except Exception as e:
            raise UserInputError(
                "Trials run in their own process, so fit callbacks and arguments "
                f"must be picklable ({type(e).__name__}: {e}); pass "
                "isolate_trials=False to run trials in this process."
            ) from None
        with open(os.path.join(folder, "fit.pkl"), "wb") as f:
            f.write(payload)
        io.atomic_write_json(os.path.join(folder, "spec.json"), spec)
        env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
        env[CHILD_ENV] = str(os.getpid())
        process = subprocess.Popen(
            [sys.executable, "-m", "keras_convnets.search.trial_process", folder],
            env=env,
        )
        try:
            code = process.wait()
        finally:
            if process.poll() is None:  # interrupted: stop the trial first
                process.terminate()
                try:
                    process.wait(STOP_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        result_path = os.path.join(folder, "result.json")
        result = None
        if os.path.exists(result_path):
            result = io.read_json(result_path, max_bytes=MAX_RESULT_BYTES)
    if not isinstance(result, dict):
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        raise TrialProcessError(
            f"Trial {trial.trial_id}'s process ended ({how}) without a result."
        )
    state.set_kill_seam_counts(result.get("kill_seam_writes"))
    tuner.last_trial_process = {
        "pid": process.pid,
        "cpu_s": result.get("cpu_s"),
        "peak_rss_mb": result.get("peak_rss_mb"),
    }
    if "error" in result:
        kind, message = result["error"]["type"], result["error"]["message"]
        if kind == "UserInputError":
            raise UserInputError(message)
        if kind == "KeyboardInterrupt":
            raise KeyboardInterrupt(message)
        raise TrialProcessError(f"Trial {trial.trial_id} failed: {kind}: {message}")
    return result["metrics"]


# ----------------------------------------------------------------------------
# The trial's process.


def _run(spec: dict, fit: dict) -> dict:
    import functools

    import keras
    import keras_tuner
    from keras_tuner.src.engine import tuner_utils

    from keras_convnets.search import state
    from keras_convnets.search.config import config_from_dict
    from keras_convnets.search.hypermodel import objective
    from keras_convnets.search.runner import make_hypermodel, proxy_data

    config = config_from_dict(spec["config"])
    train, validation, info = proxy_data(config)
    hypermodel = make_hypermodel(config, info)
    hp = keras_tuner.HyperParameters.from_config(spec["hyperparameters"])
    keras.utils.set_random_seed(spec["seed"])
    model = hypermodel.build(hp)
    if spec["initial_weights"]:
        model.load_weights(spec["initial_weights"])
    callbacks = list(fit["callbacks"])
    if spec["hparams_logdir"]:
        from tensorboard.plugins.hparams import api as hparams_api

        hparams = tuner_utils.convert_hyperparams_to_hparams(hp, hparams_api)
        callbacks.append(
            hparams_api.KerasCallback(
                writer=spec["hparams_logdir"],
                hparams=hparams,
                trial_id=spec["trial_id"],
            )
        )
    if spec["checkpoint"]:
        checkpoint = tuner_utils.SaveBestEpoch(
            objective=objective(), filepath=spec["checkpoint"]
        )
        checkpoint._save_model = functools.partial(
            state.save_best_epoch_atomic, checkpoint
        )
        callbacks.append(checkpoint)
    metrics = hypermodel.fit(
        hp,
        model,
        train,
        validation_data=validation,
        callbacks=callbacks,
        **fit["fit_kwargs"],
    )
    state.write_json(spec["build_config"], model.get_build_config(), indent=None)
    return metrics


def _usage() -> dict:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
    }


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    import signal

    from keras_convnets.search import state
    from keras_convnets.training import io

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m keras_convnets.search.trial_process SPEC_DIR")
        return 2
    folder = argv[0]
    # SIGTERM (the search stopping this trial) unwinds like Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    spec = io.read_json(os.path.join(folder, "spec.json"), max_bytes=MAX_RESULT_BYTES)
    state.set_kill_seam_counts(spec.get("kill_seam_writes"))
    with open(os.path.join(folder, "fit.pkl"), "rb") as f:
        fit = pickle.load(f)  # written by our parent into its private folder
    state.install_atomic_writes()
    code, result = 0, {}
    try:
        result["metrics"] = _run(spec, fit)
    except BaseException as e:  # reported to the search's process
        if not isinstance(e, (UserInputError, KeyboardInterrupt)):
            import traceback

            traceback.print_exc()
        result["error"] = {"type": type(e).__name__, "message": str(e)}
        code = 130 if isinstance(e, KeyboardInterrupt) else 1
    result.update(_usage(), kill_seam_writes=state.kill_seam_counts())
    io.atomic_write_json(os.path.join(folder, "result.json"), result)
    return code


if __name__ == "__main__":
    sys.exit(main())
