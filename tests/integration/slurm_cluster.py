"""A real one-node Slurm 22.05 cluster for the tests (Debian's slurmctld, slurmd and munge, which
scripts/setup.sh installs), as ../shared/slurm/NOTES.md measured it: bound to 127.0.0.1, its state
in a scratch folder, two fake GPUs through gres. The three daemons run in a private PID namespace
(unshare), so killing it removes them and every job they started, whatever a test left behind."""
import os
import pathlib
import shutil
import socket
import stat
import subprocess
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


INIT = r"""
set -u
D="$1"
runuser -u munge -- munged --socket="$D/munge/munge.socket.2" --key-file=/etc/munge/munge.key \
  --log-file="$D/munge/munged.log" --pid-file="$D/munge/munged.pid" --seed-file="$D/munge/munged.seed"
for i in $(seq 100); do [ -S "$D/munge/munge.socket.2" ] && break; sleep 0.05; done
slurmctld -D -f "$D/etc/slurm.conf" >>"$D/log/slurmctld.out" 2>&1 &
slurmd -D -f "$D/etc/slurm.conf" >>"$D/log/slurmd.out" 2>&1 &
# PID 1 of the namespace: reap whatever is orphaned until told to stop.
trap 'kill -TERM -1; exit 0' TERM
while true; do wait; sleep 0.2; done
"""


class SlurmCluster:
    def __init__(self):
        for tool in ("slurmctld", "slurmd", "munged", "sbatch", "unshare", "runuser"):
            if not shutil.which(tool):
                raise RuntimeError(f"{tool} is not installed: scripts/setup.sh installs Slurm and munge")
        if os.geteuid() != 0:
            raise RuntimeError("the Slurm test cluster runs its daemons as root (SlurmUser=root)")
        # Under /tmp with mode 0755 on the way: munged runs as the munge user.
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="tallrec-slurm-"))
        self.dir.chmod(0o755)
        for sub in ("munge", "state/ctld", "state/d", "run", "log", "etc", "dev"):
            (self.dir / sub).mkdir(parents=True)
        shutil.chown(self.dir / "munge", "munge", "munge")
        for i in range(2):
            os.mknod(self.dir / "dev" / f"nvidia{i}", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        self.host = socket.gethostname().split(".")[0]
        values = {"@DIR@": str(self.dir), "@HOST@": self.host, "@CTLD_PORT@": str(_free_port()),
                  "@D_PORT@": str(_free_port())}
        for name in ("slurm.conf", "gres.conf"):
            text = (HERE / "slurm" / f"{name}.in").read_text()
            for k, v in values.items():
                text = text.replace(k, v)
            (self.dir / "etc" / name).write_text(text)
        self.env = {**os.environ, "SLURM_CONF": str(self.dir / "etc" / "slurm.conf")}
        self.init = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGKILL",
                                      "bash", "-c", INIT, "init", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = self.run("sinfo", "-h", "-n", self.host, "-o", "%T", check=False).stdout.strip()
            if state == "idle":
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the test Slurm cluster did not come up: {self.logs()}")

    def run(self, *cmd, check=True, timeout=60):
        r = subprocess.run(list(map(str, cmd)), env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, cmd))}: exit {r.returncode}: {r.stderr}")
        return r

    def squeue(self, job):
        """{task id: (state, reason)} of the job's tasks Slurm still has."""
        out = self.run("squeue", "-h", "-r", "-j", job, "-o", "%i|%T|%r", check=False).stdout
        return {line.split("|")[0]: tuple(line.split("|")[1:]) for line in out.splitlines() if line}

    def job_state(self, job):
        out = self.run("scontrol", "show", "job", job, "-o", check=False).stdout
        fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
        return fields.get("JobState", ""), int(fields.get("Restarts", "0") or 0)

    def logs(self):
        text = ""
        for f in sorted((self.dir / "log").glob("*")):
            text += f"--- {f.name}\n" + f.read_text(errors="replace")[-3000:]
        return text

    def stop(self):
        if self.init.poll() is None:
            self.init.kill()  # SIGKILL to unshare: the namespace and every job in it go
            self.init.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)
