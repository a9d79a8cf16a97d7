"""Distributed search: a chief serving the oracle, workers running trials.

KerasTuner reads the chief's address and each process's role from
`KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT` and `KERASTUNER_TUNER_ID`;
`distributed_env` sets them from a `SearchConfig` for one search.
"""

from __future__ import annotations

import contextlib
import os
import time

from keras_convnets.errors import UserInputError
from keras_convnets.search.config import SearchConfig, parse_address


@contextlib.contextmanager
def distributed_env(config: SearchConfig):
    """Sets KerasTuner's KERASTUNER_* variables for the duration of a search."""
    names = ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID")
    saved = {name: os.environ.get(name) for name in names}
    try:
        if config.oracle_address is not None:
            host, port = parse_address(config.oracle_address)
            os.environ.update(
                KERASTUNER_ORACLE_IP=host,
                KERASTUNER_ORACLE_PORT=str(port),
                KERASTUNER_TUNER_ID=config.tuner_id,
            )
        else:
            for name in names:
                os.environ.pop(name, None)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def serve_oracle(oracle, poll_seconds: float = 0.2) -> None:
    """Serves `oracle` to workers over gRPC until the search is done.

    KerasTuner's own `start_server`, but binding exactly
    `KERASTUNER_ORACLE_IP` (loopback unless the user chose another address),
    failing clearly when the port is taken, and polling for the end every
    `poll_seconds` instead of every 20 seconds.
    """
    from concurrent import futures

    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    address = (
        f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError:
        bound = 0
    if not bound:
        raise UserInputError(f"The oracle chief cannot listen on {address} (in use?).")
    server.start()
    print(f"Oracle chief listening on {address}", flush=True)
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(poll_seconds)
    finally:
        server.stop(grace=1.0)


def wait_for_chief(timeout: float) -> None:
    import grpc

    address = (
        f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    )
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise UserInputError(
            f"No oracle chief answered at {address} within {timeout:.0f} s; start "
            f"`keras-convnets search --tuner-id chief --oracle-address {address}` first."
        ) from None
    finally:
        channel.close()
