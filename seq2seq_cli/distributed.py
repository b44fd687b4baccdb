"""torch.distributed for training and generation: torchrun's environment, the process group, and the launch.

We do not launch processes ourselves. `torchrun` (torch.distributed.run, torch's elastic launcher) does, on one
machine or many (its rendezvous flags), and gives every worker RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE;
the worker joins the process group from that environment (init_method env://). `seq2seq train
--distributed-world-size N` only builds a torchrun command line for N processes on this machine and runs
torch.distributed.run with it.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from seq2seq_cli.errors import ConfigError, Seq2SeqError

logger = logging.getLogger(__name__)

BACKENDS = ("nccl", "gloo", "mpi")
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
_joined = False  # whether `join` initialized the process group (then `leave` destroys it)


@dataclass(frozen=True)
class Placement:
    """Where this process sits in the job: global rank and size, rank and size on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun(environ: Mapping[str, str] | None = None) -> bool:
    """Whether torchrun (or another env:// launcher) started this process: RANK and WORLD_SIZE are set."""
    environ = os.environ if environ is None else environ
    return "RANK" in environ and "WORLD_SIZE" in environ


def placement(environ: Mapping[str, str] | None = None) -> Placement:
    """This process's place: from an initialized process group, else torchrun's variables, else a single process.

    Raises:
        ConfigError: torchrun's variables are not integers or contradict each other.
    """
    import torch.distributed as dist

    environ = os.environ if environ is None else environ
    if dist.is_available() and dist.is_initialized():
        local_rank = int(environ.get("LOCAL_RANK", dist.get_rank()))
        local_size = int(environ.get("LOCAL_WORLD_SIZE", dist.get_world_size()))
        return Placement(dist.get_rank(), dist.get_world_size(), local_rank, local_size)
    if not launched_by_torchrun(environ):
        return Placement()
    try:
        rank, world = int(environ["RANK"]), int(environ["WORLD_SIZE"])
        local_rank = int(environ.get("LOCAL_RANK", rank))
        local_size = int(environ.get("LOCAL_WORLD_SIZE", world))
    except ValueError:
        found = ", ".join(f"{k}={environ[k]!r}" for k in _TORCHRUN_VARS if k in environ)
        raise ConfigError(f"torchrun's environment is not integers ({found}); start the job with torchrun") from None
    if not (0 <= rank < world and 0 <= local_rank < local_size <= world):
        raise ConfigError(f"inconsistent torchrun environment: RANK={rank} WORLD_SIZE={world} "
                          f"LOCAL_RANK={local_rank} LOCAL_WORLD_SIZE={local_size}; start the job with torchrun")
    return Placement(rank, world, local_rank, local_size)


def default_backend(device: Any) -> str:
    """nccl for CUDA devices, gloo otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


def check_backend(backend: str, device: Any) -> None:
    """Refuse a backend that cannot work here (unknown, not built into this torch, nccl without CUDA)."""
    import torch.distributed as dist

    if backend not in BACKENDS:
        raise ConfigError(f"--ddp-backend {backend!r}: expected {', '.join(BACKENDS)}")
    if backend == "nccl" and device.type != "cuda":
        raise ConfigError(f"--ddp-backend nccl needs CUDA devices (this run is on {device.type}); "
                          "use --ddp-backend gloo, or leave it unset")
    if not dist.is_backend_available(backend):
        raise ConfigError(f"--ddp-backend {backend}: this torch build has no {backend} backend; use "
                          f"--ddp-backend {default_backend(device)}")


def join(where: Placement, device: Any, backend: str | None = None) -> str | None:
    """Join the job's process group (from torchrun's env://), unless it is joined already or there is no job.

    Returns the backend used (None when nothing was joined). Ranks other than 0 log warnings only, so the console
    and train.log show one copy of every message.
    """
    import torch.distributed as dist

    from seq2seq_cli import device as devices

    global _joined
    if not where.distributed:
        return None
    if where.rank != 0:
        logging.getLogger("seq2seq_cli").setLevel(logging.WARNING)
    if dist.is_initialized():
        return dist.get_backend()
    backend = backend or default_backend(device)
    check_backend(backend, device)
    devices.bind(device)
    dist.init_process_group(backend, init_method="env://", rank=where.rank, world_size=where.world_size)
    _joined = True
    logger.info("joined a process group of %d processes (backend %s); this is rank %d", where.world_size,
                backend, where.rank)
    return backend


def leave() -> None:
    """Destroy the process group if `join` created it."""
    global _joined
    if _joined:
        import torch.distributed as dist

        dist.destroy_process_group()
        _joined = False


def gather_to_rank0(obj: Any, where: Placement) -> list[Any] | None:
    """Every rank's `obj`, in rank order, on rank 0 (None elsewhere); [obj] outside a job."""
    if not where.distributed:
        return [obj]
    import torch.distributed as dist

    gathered: list[Any] | None = [None] * where.world_size if where.rank == 0 else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


def check_agree(value: Any, where: Placement, what: str, fix: str) -> None:
    """Every rank must hold the same `value` (e.g. where the run starts); a ConfigError on all ranks otherwise."""
    if not where.distributed:
        return
    import torch.distributed as dist

    values: list[Any] = [None] * where.world_size
    dist.all_gather_object(values, value)
    for rank, other in enumerate(values):
        if other != values[0]:
            raise ConfigError(f"the processes disagree on {what}: rank 0 has {values[0]}, rank {rank} has {other}; "
                              f"{fix}")


# ------------------------------------------------------------------------------------------------ launching


def torchrun_argv(nproc: int, command: Sequence[str]) -> list[str]:
    """torchrun's arguments to run `python -m seq2seq_cli COMMAND...` in `nproc` processes on this machine.

    --standalone: a c10d rendezvous on a free local port, so several jobs can run side by side.
    """
    return ["--standalone", "--nnodes", "1", "--nproc-per-node", str(nproc), "--max-restarts", "0",
            "--module", "seq2seq_cli", *command]


def without_option(args: Sequence[str], name: str) -> list[str]:
    """`args` without `name VALUE` / `name=VALUE` (the option that asked for the launch)."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(f"{name}="):
            out.append(arg)
    return out


def check_launch(nproc: int, device_spec: str) -> None:
    """Refuse a launch that cannot start: more processes than GPUs when the run is on CUDA."""
    from seq2seq_cli import device as devices

    spec = device_spec.strip().lower()
    gpus = devices.cuda_device_count()
    if (spec == "auto" and gpus > 0) or spec.startswith("cuda"):
        if ":" in spec:
            raise ConfigError(f"--distributed-world-size {nproc} with --device {spec}: the processes would share "
                              "one GPU; use --device cuda and choose the GPUs with CUDA_VISIBLE_DEVICES")
        if nproc > gpus:
            raise ConfigError(f"--distributed-world-size {nproc}: only {gpus} CUDA device(s) visible; use at most "
                              f"{gpus} processes, or --device cpu")


def launch(nproc: int, command: Sequence[str]) -> None:
    """Run `seq2seq COMMAND...` in `nproc` processes under torch.distributed.run; returns when all have finished.

    Raises:
        Seq2SeqError: a worker failed (its own error message is above, on stderr).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    argv = torchrun_argv(nproc, command)
    logger.info("launching %d processes: torchrun %s", nproc, " ".join(argv))
    saved = dict(os.environ)  # torchrun sets OMP_NUM_THREADS in its own process for the workers to inherit
    try:
        run(parse_args(argv))
    except ChildFailedError as exc:
        # The cause: a process that exited with an error, not one the launcher then stopped with a signal.
        rank, failure = min(exc.failures.items(), key=lambda kv: (kv[1].exitcode < 0, kv[1].timestamp, kv[0]))
        raise Seq2SeqError(f"{len(exc.failures)} of {nproc} processes failed (rank {rank}: exit code "
                           f"{failure.exitcode}); see its error above") from None
    finally:
        os.environ.clear()
        os.environ.update(saved)
