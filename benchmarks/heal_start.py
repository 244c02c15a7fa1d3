"""Heal start latency: systemd-run against setsid, in a real systemd's namespace.

    sudo .venv/bin/python benchmarks/heal_start.py [ROUNDS]

Boots systemd as PID 1 in private namespaces (tests/e2e/sysns.py), then
runs ``selfheal wrap`` around a CRITICAL plugin (``sh -c 'exit 2'``)
ROUNDS times per mode (20 by default), each a fresh check whose heal is ``touch FILE``. It reports the
median time from the start of ``selfheal wrap`` to its return (what
Nagios waits for) and to the action's start (the touched file's mtime). The
setsid mode is selfheal's fallback, forced by a PATH without systemd-run.
Root only.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from sysns import PATH, SystemdNamespace  # noqa: E402

#: Runs inside the namespace, so the times are the namespace's processes' own.
DRIVER = """
import json, os, subprocess, sys, time
selfheal, state, work, mode, rounds = sys.argv[1:6]
env = {"PATH": os.environ["PATH"]}
out = []
for i in range(int(rounds)):
    start = time.time()
    touched = os.path.join(work, f"{mode}{i}.touched")
    heal = f"/usr/bin/touch {touched}"
    argv = [selfheal, "wrap", "--name", f"{mode}{i}", "--heal", heal, "--state-dir", state, "--", "/bin/sh", "-c", "exit 2"]
    subprocess.run(argv, env=env, capture_output=True, check=False)
    returned = time.time()
    deadline = time.time() + 10
    while not os.path.exists(touched) and time.time() < deadline:
        time.sleep(0.005)
    out.append((returned - start, os.stat(touched).st_mtime - start))
    time.sleep(0.2)  # let the runner journal and exit before the next round
print(json.dumps(out))
"""


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    selfheal = str(Path(sys.executable).parent / "selfheal")
    with SystemdNamespace() as ns:
        work = ns.workdir
        (work / "driver.py").write_text(DRIVER)
        tools = work / "bin"
        tools.mkdir()
        (tools / "touch").symlink_to("/usr/bin/touch")
        results = {}
        for mode, path in (("unit", PATH), ("setsid", str(tools))):
            done = ns.exec(
                [sys.executable, work / "driver.py", selfheal, work / "state", work, mode, str(rounds)],
                env={"PATH": path},
                timeout=600,
            )
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            results[mode] = json.loads(done.stdout)
        runners = [json.loads(line) for line in (work / "state" / "journal.jsonl").read_text().splitlines()]
        modes = {e.get("runner") for e in runners if e["event"] == "attempt"}
    print(f"systemd {ns.boot_seconds:.2f}s boot; runner modes journaled: {sorted(modes)}")
    for mode, label in (("unit", "systemd-run"), ("setsid", "setsid")):
        returned = statistics.median(r for r, _ in results[mode]) * 1000
        started = statistics.median(a for _, a in results[mode]) * 1000
        print(f"{label:12} median of {rounds}: returns {returned:.0f} ms, action starts {started:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
