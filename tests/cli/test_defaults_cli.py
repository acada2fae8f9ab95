"""The CLI's usage errors exit 2 before heavy imports; its errors keep their newlines."""

import subprocess
import sys

import pytest

from skmia.cli import _printable, main


def test_an_odd_number_of_models_is_a_usage_error_before_torch():
    code = ("import sys\nfrom skmia.cli import main\n"
            "try:\n    main(['audit', '--dataset', 'location', '--methods', 'vanilla',"
            " '--models', '7'])\n"
            "except SystemExit as e:\n    print(e.code, 'torch' in sys.modules,"
            " 'skmia.experiment' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.stdout.split() == ["2", "False", "False"], result.stderr
    assert "--models must be even" in result.stderr and "got 7" in result.stderr


@pytest.mark.parametrize("models", ["6", "2"])
def test_other_model_counts(models, capsys):
    if models == "2":  # below the least: the same usage error as before
        with pytest.raises(SystemExit) as info:
            main(["audit", "--dataset", "location", "--methods", "vanilla", "--models", "2"])
        assert info.value.code == 2
        assert "--models must be at least 4" in capsys.readouterr().err
    else:  # even and large enough: no usage error about --models
        from skmia._cli_parser import _build_parser
        args = _build_parser().parse_args(["audit", "--dataset", "location", "--methods",
                                           "vanilla", "--models", models])
        assert args.models == 6


def test_multi_line_errors_print_their_newlines(tmp_path, capsys):
    status = main(["split", "--dataset", "texas", "--data-home", str(tmp_path), "--no-download"])
    assert status == 1
    err = capsys.readouterr().err
    assert "\\x0a" not in err and "\\x09" not in err
    assert err.count("\n") >= 2  # the message's own lines, not one escaped line


def test_other_control_characters_stay_escaped():
    assert _printable("a\nb\tc\x1b[2Jd\re") == "a\nb\tc\\x1b[2Jd\\x0de"
