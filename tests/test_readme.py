"""The README's quick start runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quick_start_runs(location_data_home, monkeypatch, capsys):
    monkeypatch.setenv("SKMIA_DATA_HOME", str(location_data_home))
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "the README has a Python quick start"
    namespace = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)  # noqa: S102 - our own README
    out = capsys.readouterr().out
    assert "'target_train': 1002" in out
    assert namespace["relax"].classes_.shape == (30,)


def test_reference_model_attack_runs_and_prints_what_the_readme_says(location_data_home,
                                                                    monkeypatch, capsys):
    monkeypatch.setenv("SKMIA_DATA_HOME", str(location_data_home))
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    exec(compile(blocks[1], str(README), "exec"), {})  # noqa: S102 - our own README
    printed = capsys.readouterr().out
    assert printed.strip()
    assert printed in text  # the README quotes exactly what the block prints


def test_setup_commands_are_the_ones_ci_runs():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    commands = re.findall(r"```bash\n(.*?)\n```", text, flags=re.DOTALL)
    assert len(commands) == 3, "the first job, the test command, the docs build"
    assert commands[1] in ci, "CI runs the README's test command verbatim"
    docs = commands[2].split(" && ")
    assert docs[0].replace("install ", "install -q ") in ci and docs[1] in ci, (
        "CI builds the docs as the README says")


def test_the_privacy_search_block_builds_the_search_it_describes():
    from sklearn.model_selection import GridSearchCV

    text = README.read_text()
    section = text.split("## Choose a defense's settings for privacy")[1].split("\n## ")[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    namespace = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)  # noqa: S102 - our own README
    search = namespace["search"]
    assert isinstance(search, GridSearchCV) and callable(search.refit)
    assert search.cv.n_splits == 3 and set(search.scoring) == {"accuracy", "attack_auc"}
