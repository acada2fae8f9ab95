"""A run folder whose subfolder another process swaps for a link while skmia writes and
reads it: nothing is written outside the run, and nothing outside is read.

The swapping process is a tiny Python loop (no skmia import), so the race runs on two
cores at once; the writer is this process, through :class:`RunDirectory`.
"""

import subprocess
import sys
import time

import pytest

from skmia._rundir import RunDirectory, UnsafePathError

_SWAPPER = """
import ctypes, os, sys
run, outside = sys.argv[1], sys.argv[2]
sub, link = os.path.join(run, "sub").encode(), os.path.join(run, "link").encode()
os.symlink(outside, link)
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
# renameat2(RENAME_EXCHANGE) swaps the folder and the link in one step: "sub" is always
# one or the other
if libc.renameat2(AT_FDCWD, sub, AT_FDCWD, link, RENAME_EXCHANGE) != 0:
    print("no renameat2", flush=True)
    sys.exit()
print("ready", flush=True)
while True:
    libc.renameat2(AT_FDCWD, sub, AT_FDCWD, link, RENAME_EXCHANGE)
"""
_SECONDS = 3.0  # on main, files appeared outside within 0.1 s (2 cores, load ~2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2: Linux only")
def test_swapping_a_subfolder_for_a_link_never_reaches_outside(tmp_path):
    run_root, outside = tmp_path / "run", tmp_path / "outside"
    (run_root / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"outside")
    (run_root / "sub" / "secret.bin").write_bytes(b"inside")
    run = RunDirectory(run_root)
    swapper = subprocess.Popen([sys.executable, "-c", _SWAPPER, str(run_root), str(outside)],
                               stdout=subprocess.PIPE, text=True)
    writes = reads = refused = 0
    seen = set()
    try:
        if swapper.stdout.readline().strip() != "ready":
            pytest.skip("this kernel cannot swap two names atomically (renameat2)")
        end = time.monotonic() + _SECONDS
        i = 0
        while time.monotonic() < end:
            i += 1
            try:
                run.write_bytes("sub", f"f{i % 50}.bin", data=b"x")
                writes += 1
            except (UnsafePathError, OSError):
                refused += 1
            try:
                seen.add(run.read_bytes("sub", "secret.bin"))
                reads += 1
            except (UnsafePathError, OSError):
                refused += 1
            if i % 200 == 0 and len(list(outside.iterdir())) > 1:
                break  # already failed: no need to wait for the bound
    finally:
        swapper.kill()
        swapper.wait()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.bin"], (
        f"{len(list(outside.iterdir())) - 1} file(s) written outside the run "
        f"({writes} writes, {refused} refused)")
    assert (outside / "secret.bin").read_bytes() == b"outside"
    assert b"outside" not in seen, "a read returned a file outside the run"
    assert writes > 0 and reads > 0 and refused > 0  # the race was run, both ways
