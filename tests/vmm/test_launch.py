"""The ``gunyah-sim`` entry point: a Ctrl-C while the command line loads is one line, exit 130."""

import sys

import pytest

from vmm import launch


class _CtrlCDuringImport:
    """A meta-path finder that is where the Ctrl-C lands: inside ``import vmm.cli``."""

    def find_spec(self, name, path=None, target=None):
        if name == "vmm.cli":
            raise KeyboardInterrupt
        return None


def test_ctrl_c_while_the_command_line_loads_is_one_line_and_exit_130(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "vmm.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_CtrlCDuringImport(), *sys.meta_path])
    assert launch.main() == 130
    assert capsys.readouterr().err == "\ngunyah-sim: interrupted\n"


def test_the_entry_point_runs_the_command_line(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["gunyah-sim", "--version"])
    with pytest.raises(SystemExit) as exit_:
        launch.main()
    assert exit_.value.code == 0
    assert "gunyah-sim" in capsys.readouterr().out
