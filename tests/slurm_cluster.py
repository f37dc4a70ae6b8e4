"""A single-node SLURM cluster the tests start themselves (munged, slurmctld, slurmd from
Debian's slurm-wlm and munge) and stop, by PID, when they are done.

Without systemd the packages install but start nothing: the cluster gets a private munge
key and socket, its own ports and state directories, one node (127.0.0.1, 2 CPUs) and
no accounting (so no sacct: tests read outputs and run records).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

TOOLS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "sinfo", "scontrol")


def available() -> bool:
    return all(shutil.which(tool) or Path("/usr/sbin", tool).is_file() for tool in TOOLS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pids: list[int] = []
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self) -> Cluster:
        root = self.root
        # munged runs as the munge user, who cannot enter pytest's private temporary folders.
        munge = Path(tempfile.mkdtemp(prefix="fatools-munge-", dir="/tmp"))
        self.munge_dir = munge
        for d in (root / "ctld", root / "d"):
            d.mkdir(parents=True, exist_ok=True)
        key = munge / "munge.key"
        subprocess.run([_tool("mungekey"), "-c", "-k", str(key)], check=True, capture_output=True)
        shutil.chown(munge, "munge", "munge")
        shutil.chown(key, "munge", "munge")
        os.chmod(munge, 0o700)
        os.chmod(key, 0o600)
        sock = munge / "munge.sock"
        started = subprocess.run(
            [
                "runuser",
                "-u",
                "munge",
                "--",
                _tool("munged"),
                f"--socket={sock}",
                f"--key-file={key}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--seed-file={munge / 'seed'}",
                f"--log-file={munge / 'munged.log'}",
                "--force",
            ],
            capture_output=True,
            text=True,
        )
        if started.returncode:
            raise RuntimeError(f"munged did not start: {started.stderr.strip()}")
        self._wait_for(munge / "munged.pid")
        self.pids.append(int((munge / "munged.pid").read_text()))
        os.chmod(munge, 0o755)  # slurm's daemons (root) and jobs reach the socket
        self.conf.write_text(f"""ClusterName=fatools-test
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={sock}
CredType=cred/munge
StateSaveLocation={root / "ctld"}
SlurmdSpoolDir={root / "d"}
SlurmctldPidFile={root / "slurmctld.pid"}
SlurmdPidFile={root / "slurmd.pid"}
SlurmctldLogFile={root / "slurmctld.log"}
SlurmdLogFile={root / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Batch jobs scheduled as they come (the default waits up to 3 s to gather them).
SchedulerParameters=batch_sched_delay=0
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")
        for daemon, pid in (("slurmctld", "slurmctld.pid"), ("slurmd", "slurmd.pid")):
            subprocess.run(
                [_tool(daemon), "-f", str(self.conf)], check=True, env=self.env, capture_output=True
            )
            self._wait_for(root / pid)
            self.pids.append(int((root / pid).read_text()))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = subprocess.run(
                ["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True
            ).stdout
            if state.strip() == "idle":
                return self
            time.sleep(0.1)
        raise RuntimeError(f"the SLURM node did not come up: {state!r}; see {root}/slurmd.log")

    def _wait_for(self, path: Path, seconds: float = 15) -> None:
        deadline = time.monotonic() + seconds
        while not path.is_file() or not path.read_text().strip():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{path} did not appear")
            time.sleep(0.1)

    def sbatch(self, *args: str, env: dict | None = None) -> str:
        proc = subprocess.run(
            ["sbatch", "--parsable", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode:
            raise RuntimeError(f"sbatch failed: {proc.stderr}")
        return proc.stdout.strip().split(";")[0]

    def stop(self) -> None:
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for pid in self.pids:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        self.pids.clear()
        shutil.rmtree(getattr(self, "munge_dir", ""), ignore_errors=True)
