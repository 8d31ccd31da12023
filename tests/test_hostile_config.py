"""Issue #10, "config that validates must run": each value that passed ``check-config`` and then
broke at run time is now a ``file:line: field: message`` at ``check-config`` time (exit 2),
and a sub-second interval against a remote host is a warning.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from probes.config import parse_config
from store.db import open_db
from tui.app import InferwatchApp
from tui.cli import main

TARGET = """[[targets]]
name = {name}
provider = "openai-compatible"
base_url = {base_url}
model = "m"
{extra}
"""


def write(
    tmp_path: Path,
    name: str = '"t"',
    base_url: str = '"http://127.0.0.1:8080/v1"',
    extra: str = "",
    head: str = "",
) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(head + TARGET.format(name=name, base_url=base_url, extra=extra))
    return path


def rejected(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["check-config", str(path)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err


@pytest.mark.parametrize(
    "base_url, message",
    [
        ('"http://127.0.0.1:8080/v1\\n"', "contains a space, line break or control character"),
        ('"http://[::1:8080/v1"', "has an invalid IPv6 host"),
        ('"http://127.0.0.1:99999/v1"', "has an invalid port (1-65535)"),
        ('"http://"', "has no host"),
        ('"https://%zz"', "has an invalid host name"),
        ('"ftp://example.com/v1"', "must start with http:// or https://"),
        ('"https://example.com/v1#x"', "must not have a #fragment"),
    ],
)
def test_unusable_base_url_is_rejected_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], base_url: str, message: str
) -> None:
    path = write(tmp_path, base_url=base_url)
    err = rejected(path, capsys)
    assert err.startswith(f"{path}:4: targets[0].base_url: {message}"), err


@pytest.mark.parametrize(
    "extra, field, line, message",
    [
        ("interval_s = 1e-300", "targets[0].interval_s", 6, "greater than or equal to 0.01"),
        ("timeout_s = 1e-300", "targets[0].timeout_s", 6, "greater than or equal to 0.01"),
        ("max_response_bytes = 10", "targets[0].max_response_bytes", 6, "greater than or equal"),
    ],
)
def test_absurd_numbers_are_rejected(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: str,
    field: str,
    line: int,
    message: str,
) -> None:
    path = write(tmp_path, extra=extra)
    err = rejected(path, capsys)
    assert err.startswith(f"{path}:{line}: {field}: "), err
    assert message in err


def test_window_of_1e23_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, head="[dashboard]\nwindow_s = 1e23\n\n")
    err = rejected(path, capsys)
    assert err.startswith(f"{path}:2: dashboard.window_s: Input should be less than or equal to")


@pytest.mark.parametrize(
    "name, shown",
    [
        ('"a\\u0000b"', "a\\x00b"),
        ('"a\\nb"', "a\\nb"),
        ('"safe\\u202eevil"', "safe\\u202eevil"),
        ('"x\\u2066y"', "x\\u2066y"),
    ],
)
def test_names_must_be_printable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, shown: str
) -> None:
    path = write(tmp_path, name=name)
    err = rejected(path, capsys)
    assert err.strip() == (
        f"{path}:2: targets[0].name: must be printable text: '{shown}' holds a control "
        "character, line break or bidi override"
    )


def test_a_name_of_spaces_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, name='"   "')
    assert rejected(path, capsys).strip() == (
        f"{path}:2: targets[0].name: must not be blank (only spaces)"
    )


def test_models_groups_and_features_are_checked_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, extra='group = "g\\u001b[2J"')
    assert "targets[0].group: must be printable text" in rejected(path, capsys)
    text = TARGET.format(name='"t"', base_url='"http://127.0.0.1:1/v1"', extra="").replace(
        'model = "m"', 'model = "m\\r"'
    )
    path.write_text(text)
    assert "targets[0].model: must be printable text" in rejected(path, capsys)
    path.write_text(
        '[[features]]\nname = "f\\u0007"\ninput_tokens = 1\noutput_tokens = 1\n'
        "requests_per_day = 1\n"
    )
    assert f"{path}:2: features[0].name: must be printable text" in rejected(path, capsys)


def test_deeply_nested_array_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    depth = 100_000
    path = write(tmp_path, extra="prompt = " + "[" * depth + "]" * depth)
    err = rejected(path, capsys)
    assert err.strip() == f"{path}:6: prompt: value nested too deeply (over 32 levels)"


def test_moderate_nesting_is_an_ordinary_type_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, extra="prompt = [[[1]]]")
    err = rejected(path, capsys)
    assert err.startswith(f"{path}:6: targets[0].prompt: Input should be a valid string")


@pytest.mark.parametrize(
    "base_url, interval, warned",
    [
        ('"https://api.example.com/v1"', 0.5, True),
        ('"https://api.example.com/v1"', 1.0, False),
        ('"http://127.0.0.1:8080/v1"', 0.05, False),
        ('"http://localhost:8080/v1"', 0.5, False),
    ],
)
def test_sub_second_interval_against_a_remote_host_warns(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    base_url: str,
    interval: float,
    warned: bool,
) -> None:
    path = write(tmp_path, base_url=base_url, extra=f"interval_s = {interval}")
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    found = re.search(r"warning: t: interval_s = [0-9.]+ probes \S+ more than once a second", out)
    assert bool(found) is warned, out


async def test_the_dashboard_shows_config_warnings(tmp_path: Path) -> None:
    config = parse_config(
        TARGET.format(
            name='"remote"', base_url='"http://api.example.com/v1"', extra='api_key_env = "K"'
        )
    )
    db = tmp_path / "d.db"
    open_db(db).close()
    app = InferwatchApp(db, config=config)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        messages = [n.message for n in app._notifications]
    assert any(
        "remote: the key in $K would travel unencrypted over http:// to api.example.com" in m
        for m in messages
    ), messages
