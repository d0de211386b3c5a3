"""What ``make dev`` prints: the stop command that stops *this* centre."""

from __future__ import annotations

from pathlib import Path

from suanli.localcluster.cli import DEV_DIR, _stop_command


def test_the_default_centre_is_stopped_with_make_dev_down() -> None:
    assert _stop_command(DEV_DIR) == "make dev-down"


def test_a_centre_in_another_directory_is_stopped_with_its_directory(tmp_path: Path) -> None:
    command = _stop_command(tmp_path / "qa")
    assert command.endswith(f"--dir {tmp_path / 'qa'} down")
    assert "make dev-down" not in command
