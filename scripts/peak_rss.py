"""Runs a command and writes its exit status and peak resident memory to RESULT (JSON), then exits
as the command did; the command keeps this process's stdin, stdout and stderr.
Usage: python scripts/peak_rss.py RESULT COMMAND [ARG...]

Why a process of its own: Linux carries a parent's memory high-water mark into a forked child
(exec records the old address space's peak), so a child of a large process, say a test or
benchmark that has imported torch, reports at least its parent's peak. This small process forks
the command instead, and wait4 gives the command's own peak."""
import json
import os
import subprocess
import sys

if len(sys.argv) < 3:
    sys.exit(__doc__)
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as f:
    json.dump({"exit": code, "peak_rss_bytes": usage.ru_maxrss * 1024}, f)
sys.exit(code if code >= 0 else 128 - code)
