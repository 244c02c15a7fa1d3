"""Start one benchmarked process at a time and report what it cost.

``run.py`` starts this as a small separate process and sends it commands.
Why not spawn from ``run.py`` itself: Linux counts the parent's memory in a
child's peak RSS (at ``execve`` the old address space's high-water mark is
folded into the child's ``ru_maxrss``), so a child spawned from a big
benchmark process would report the benchmark's own size. This launcher
stays small and uses ``fork`` (which copies only its few anonymous pages),
so the peak RSS that ``os.wait4`` reports is the child's own, above a floor
that ``run.py`` measures with ``/bin/true`` and prints.

Protocol on stdin/stdout: 4-byte big-endian length, then a ``marshal``
blob. Request: ``(argv, env)``. Reply: ``(started_epoch, wall_s, cpu_s,
maxrss_kib, exit_status, output_bytes)``, where ``exit_status`` is the
exit code, or minus the signal number.
"""

import marshal
import os
import sys
import time


def read_exactly(stream, size):
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def run(argv, env, devnull):
    out_r, out_w = os.pipe()
    started = time.time()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: only system calls until execve
        try:
            os.dup2(devnull, 0)
            os.dup2(out_w, 1)
            os.dup2(devnull, 2)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    os.close(out_w)
    chunks = []
    while True:
        chunk = os.read(out_r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    os.close(out_r)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
    return started, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, code, b"".join(chunks)


def main():
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    devnull = os.open(os.devnull, os.O_RDWR)
    while True:
        header = read_exactly(requests, 4)
        if header is None:
            return 0
        argv, env = marshal.loads(read_exactly(requests, int.from_bytes(header, "big")))
        reply = marshal.dumps(run(argv, env, devnull))
        replies.write(len(reply).to_bytes(4, "big") + reply)
        replies.flush()


if __name__ == "__main__":
    sys.exit(main())
