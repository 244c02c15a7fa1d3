"""The ``tcp`` check against real listening sockets, and against ``check_tcp``."""

from __future__ import annotations

import re

import pytest
from checks_support import Server, c_plugin, check, free_port, make_cert, script, server_tls
from nagiosplugin import Range


def echo(data: bytes) -> bytes:
    return data


def test_open_port_is_ok_with_time_perfdata() -> None:
    with Server(banner=b"220 ready\r\n") as server:
        run = check("tcp", "-H", "127.0.0.1", "-p", server.port, "-w", "5", "-c", "9")
    assert run.code == 0, run.out
    assert re.fullmatch(
        rf"TCP OK - \d+\.\d{{3}}s response time on 127\.0\.0\.1:{server.port} \| time=[\d.e-]+s;5;9;0;9",
        run.line,
    ), run.line


def test_refused_port_is_critical() -> None:
    port = free_port()
    run = check("tcp", "-H", "127.0.0.1", "-p", port)
    assert run.code == 2
    assert run.line == f"TCP CRITICAL - cannot connect to 127.0.0.1:{port}: Connection refused"


def test_expect_banner_match_mismatch_and_mismatch_state() -> None:
    with Server(banner=b"220 ready\r\n") as server:
        assert check("tcp", "-H", "127.0.0.1", "-p", server.port, "-e", "220").code == 0
        mismatch = check("tcp", "-H", "127.0.0.1", "-p", server.port, "-e", "SSH-2.0")
        assert mismatch.code == 1
        assert mismatch.line.startswith(
            f"TCP WARNING - expected 'SSH-2.0' from 127.0.0.1:{server.port}, got '220 ready'"
        )
        assert check("tcp", "-H", "127.0.0.1", "-p", server.port, "-e", "SSH-2.0", "-M", "critical").code == 2
        assert (
            check("tcp", "-H", "127.0.0.1", "-p", server.port, "-e", "SSH-2.0", "--mismatch", "ok").code == 0
        )


def test_send_and_expect_the_reply() -> None:
    with Server(reply=echo) as server:
        run = check("tcp", "-H", "127.0.0.1", "-p", server.port, "-s", "PING 42", "-e", "PING 42")
        assert run.code == 0, run.out
        assert check("tcp", "-H", "127.0.0.1", "-p", server.port, "-s", "PING", "-e", "PONG").code == 1


def test_a_silent_server_is_critical_within_the_timeout() -> None:
    with Server(silent=True) as server:
        run = check("tcp", "-H", "127.0.0.1", "-p", server.port, "-e", "hello", "-t", "1")
    assert run.code == 2, run.out
    assert run.line == f"TCP CRITICAL - 127.0.0.1:{server.port} stopped answering within 0.9s"


@pytest.mark.parametrize(
    ("warning", "critical", "code"),
    [
        ("1000", "2000", 0),  # far above the connect time: OK
        ("0", "2000", 1),  # any time above 0s warns
        ("1000", "0", 2),
        ("@0:1000", "2000", 1),  # inside the range alerts with @
        ("1000", "@0:1000", 2),
        ("~:1000", "~:2000", 0),
        ("1000:", "2000", 1),  # below 1000s warns
    ],
)
def test_time_thresholds_in_range_syntax(warning: str, critical: str, code: int) -> None:
    with Server(banner=b"hi\r\n") as server:
        run = check("tcp", "-H", "127.0.0.1", "-p", server.port, "-w", warning, "-c", critical)
    assert run.code == code, run.out
    # Perfdata carries the thresholds, normalised as nagiosplugin prints them.
    assert run.perfdata["time"].split(";")[1:3] == [str(Range(warning)), str(Range(critical))]


def test_tls_verified_against_the_test_ca(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert, key = make_cert(tmp_path)
    with Server(banner=b"hello over tls\r\n", tls=server_tls(cert, key)) as server:
        good = check("tcp", "-H", "127.0.0.1", "-p", server.port, "-S", "--ca-file", cert, "-e", "hello")
        assert good.code == 0, good.out
        untrusted = check("tcp", "-H", "127.0.0.1", "-p", server.port, "-S")
        assert untrusted.code == 2
        assert "TLS handshake with 127.0.0.1" in untrusted.line and "self-signed" in untrusted.line
        insecure = check("tcp", "-H", "127.0.0.1", "-p", server.port, "-S", "-k", "-e", "hello")
        assert insecure.code == 0, insecure.out


def test_missing_ca_file_is_one_line_unknown(tmp_path) -> None:  # type: ignore[no-untyped-def]
    run = check("tcp", "-H", "127.0.0.1", "-p", "1", "-S", "--ca-file", tmp_path / "nope.pem")
    assert run.code == 3
    assert run.out.startswith("TCP UNKNOWN - bad --ca-file: cannot load: ")
    assert run.out.count("\n") == 1


# -- the same state as monitoring-plugins' check_tcp ---------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], 0),
        (["-e", "220"], 0),
        (["-e", "SSH-2.0"], 1),  # an unexpected banner: WARNING by default
        (["-e", "SSH-2.0", "-M", "crit"], 2),
        (["-w", "1000", "-c", "2000"], 0),
        (["-c", "0.000001"], 2),
    ],
)
def test_same_state_as_check_tcp(args: list[str], expected: int) -> None:
    """Both say the expected state: agreeing on UNKNOWN (a bad option, say) is no pass."""
    ours = [a if a != "crit" else "critical" for a in args]
    with Server(banner=b"220 ready\r\n") as server:
        theirs = c_plugin("check_tcp", "-H", "127.0.0.1", "-p", server.port, *args)
        mine = script("tcp", "-H", "127.0.0.1", "-p", server.port, *ours)
    assert (mine.code, theirs.code) == (expected, expected), (mine.out, theirs.out)


def test_same_state_as_check_tcp_for_a_closed_port() -> None:
    port = free_port()
    assert (
        script("tcp", "-H", "127.0.0.1", "-p", port).code
        == c_plugin("check_tcp", "-H", "127.0.0.1", "-p", port).code
        == 2
    )
