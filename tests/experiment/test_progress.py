"""What a run shows while it trains: a bar per model with its loss, kept on screen, and a
reused finished run says so instead of training again in silence."""

from skmia.experiment import RunConfig, train


def test_bar_shows_the_loss_and_a_reused_run_says_reused(tmp_path, location_data_home,
                                                        capsys):
    config = RunConfig(dataset="location", method="vanilla", epochs=2, out=str(tmp_path),
                       data_home=str(location_data_home), verbose=1)
    folder = train(config)
    err = capsys.readouterr().err
    assert "vanilla target" in err and "2/2" in err and "train_loss=" in err
    assert "reused" not in err
    assert train(config) == folder
    err = capsys.readouterr().err
    assert f"vanilla target: reused the finished run in {str(folder)!r}" in err
    assert "train_loss=" not in err  # nothing trained
