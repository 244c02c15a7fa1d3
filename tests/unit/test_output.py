"""The Nagios plugin output format: parsing a wrapped plugin, writing ours."""

from selfheal.core import output, states


def test_parse_text_perfdata_long_output_and_multiline_perfdata():
    raw = "DISK OK - free space: / 3326 MB | /=2643MB;5948;5958;0;5968\n/ 15272 MB (77%);\n/boot 68 MB (69%); | /boot=68MB;88;93;0;98\n/home=69357MB;253404;253409;0;253414\n"
    parsed = output.parse(raw)
    assert parsed.text == "DISK OK - free space: / 3326 MB"
    assert parsed.long == ["/ 15272 MB (77%);", "/boot 68 MB (69%);"]
    assert parsed.perfdata == [
        "/=2643MB;5948;5958;0;5968",
        "/boot=68MB;88;93;0;98",
        "/home=69357MB;253404;253409;0;253414",
    ]


def test_parse_no_trailing_newline_and_no_perfdata():
    parsed = output.parse("OK - all good")
    assert (parsed.text, parsed.long, parsed.perfdata) == ("OK - all good", [], [])


def test_render_status_line_note_and_perfdata():
    text = output.render(
        "nginx", states.WARNING, "HTTP CRITICAL - refused", "self-healing: started x", ["time=1s", "a=1;;;0"]
    )
    assert text == "NGINX WARNING - HTTP CRITICAL - refused; self-healing: started x | time=1s a=1;;;0\n"


def test_render_keeps_pipes_and_newlines_out_of_the_status_line():
    text = output.render("x", states.OK, "a | b\nc", "note|with pipe", [], ["long | line"])
    first, second = text.splitlines()
    assert first == "X OK - a / b c; note/with pipe"
    assert second == "long / line"


def test_attempts_perfdata():
    assert output.attempts_perfdata(2) == "selfheal_attempts=2;;;0"
    assert output.heals_perfdata(7) == "selfheal_heals_total=7c;;;0"
