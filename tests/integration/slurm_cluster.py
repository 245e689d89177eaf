"""A real single-node SLURM cluster on localhost, started for the tests and torn down after.

``munged`` (with a generated key and its own socket), ``slurmctld`` and ``slurmd`` run as root in
the foreground from a temporary folder, on free ports, with a configuration that needs neither
systemd nor cgroups (``proctrack/linuxproc``, ``task/none``, no accounting). Client commands
(``sbatch``, ``squeue``, ``scontrol``) find it through ``SLURM_CONF``.

Debian packages: ``slurm-wlm`` and ``munge`` (listed in ``.ci/apt-packages.txt``).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "sinfo", "scancel")
FINISHED = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
}

SLURM_CONF = """\
ClusterName=bidsw2vtest
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
SchedulerParameters=sched_interval=1
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def missing_requirements() -> str | None:
    """Why a local cluster cannot be started here (``None`` when it can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "starting slurmctld/slurmd/munged needs root"
    missing = [b for b in DAEMONS + CLIENTS if shutil.which(b) is None]
    if missing:
        return f"missing {', '.join(missing)}: apt-get install slurm-wlm munge"
    return None


@dataclass
class SlurmCluster:
    """Handle on a running single-node cluster."""

    root: Path
    conf: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The current environment plus ``SLURM_CONF`` (and ``LOGNAME``, which Nipype needs)."""
        env = dict(os.environ)
        env["SLURM_CONF"] = str(self.conf)
        env.setdefault("LOGNAME", "root")
        return env

    def command(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """Run a SLURM client command against this cluster; return its stdout."""
        done = subprocess.run(
            list(args), env=dict(env or self.env), capture_output=True, text=True, timeout=60
        )
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()}\n{self.logs()}")
        return done.stdout

    def sbatch(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """Submit a job (``sbatch --parsable ARGS``); return its id."""
        return self.command("sbatch", "--parsable", *args, env=env).strip().split(";")[0]

    def job_states(self, job_id: str) -> list[str]:
        """States of a job (one per array task) as ``scontrol show job`` reports them."""
        text = self.command("scontrol", "show", "job", job_id)
        return re.findall(r"JobState=(\S+)", text)

    def wait(self, job_ids: Sequence[str], timeout: float = 600) -> dict[str, list[str]]:
        """Poll until every job (every array task) has finished; return their states."""
        deadline = time.time() + timeout
        while True:
            states = {j: self.job_states(j) for j in job_ids}
            if all(s and set(s) <= FINISHED for s in states.values()):
                return states
            if time.time() > deadline:
                raise TimeoutError(f"SLURM jobs still running after {timeout} s: {states}")
            time.sleep(1)

    def logs(self) -> str:
        """The tail of the daemons' logs, for failure messages."""
        parts = []
        for name in ("slurmctld.log", "slurmd.log", "munged.log"):
            path = self.root / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-15:]
                parts.append(f"--- {name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel this cluster's remaining jobs, then stop the daemons it started, newest first."""
        try:
            jobs = self.command("squeue", "-h", "-o", "%i").split()
            if jobs:
                self.command("scancel", *jobs)
                time.sleep(2)
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            pass  # best effort: the controller may already be gone
        for name in reversed(list(self.processes)):
            proc = self.processes.pop(name)
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


def _start(cluster: SlurmCluster, name: str, args: Sequence[str]) -> None:
    log = open(cluster.root / f"{name}.stdout", "wb")  # noqa: SIM115 - lives with the daemon
    cluster.processes[name] = subprocess.Popen(
        list(args), stdout=log, stderr=subprocess.STDOUT, env=cluster.env
    )


def _wait_for(what: str, check, cluster: SlurmCluster, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for name, proc in cluster.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}):\n{cluster.logs()}")
        try:
            if check():
                return
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{what} not ready after {timeout} s:\n{cluster.logs()}")


def start_cluster(root: Path, cpus: int = 2, mem_mb: int = 16000) -> SlurmCluster:
    """Start munged, slurmctld and slurmd for one node called ``localhost``.

    Parameters
    ----------
    root : Path
        Empty folder for the configuration, key, sockets, state and logs (mode 0700).
    cpus, mem_mb : int
        Resources the node advertises (``config_overrides``: whatever the machine has).

    Returns
    -------
    SlurmCluster
        Running, with the node idle. Call :meth:`SlurmCluster.stop` when done.
    """
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    for sub in ("state", "spool", "munge"):
        (root / sub).mkdir(exist_ok=True)
        (root / sub).chmod(0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o400)
    munge_socket = root / "munge" / "munge.socket"
    conf = root / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(
            root=root,
            munge_socket=munge_socket,
            ctld_port=_free_port(),
            slurmd_port=_free_port(),
            cpus=cpus,
            mem_mb=mem_mb,
        )
    )
    cluster = SlurmCluster(root=root, conf=conf)
    try:
        _start(cluster, "munged", [
            "munged", "--foreground", "--force", f"--key-file={key}",
            f"--socket={munge_socket}", f"--pid-file={root / 'munge' / 'munged.pid'}",
            f"--log-file={root / 'munged.log'}", f"--seed-file={root / 'munge' / 'seed'}",
        ])  # fmt: skip
        _wait_for("munged", munge_socket.exists, cluster)
        _start(cluster, "slurmctld", ["slurmctld", "-D", "-i", "-f", str(conf)])
        _wait_for("slurmctld", lambda: bool(cluster.command("sinfo", "-h")), cluster)
        _start(cluster, "slurmd", ["slurmd", "-D", "-N", "localhost", "-f", str(conf)])
        _wait_for(
            "the node",
            lambda: cluster.command("sinfo", "-h", "-N", "-o", "%t").strip() == "idle",
            cluster,
        )
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> Iterator[SlurmCluster]:
    """A running single-node SLURM cluster (skipped without root or the Debian packages)."""
    why = missing_requirements()
    if why:
        pytest.skip(why)
    # a short path: munge and slurm sockets must fit in sun_path (108 bytes)
    root = Path(tmp_path_factory.mktemp("slurm", numbered=True))
    cluster = start_cluster(root)
    try:
        yield cluster
    finally:
        cluster.stop()
