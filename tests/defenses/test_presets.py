import pytest

from skmia.defenses import (
    METHODS,
    AdvRegClassifier,
    ConfidencePenaltyClassifier,
    DistillationClassifier,
    DPSGDClassifier,
    DropoutClassifier,
    EarlyStoppingClassifier,
    HAMPClassifier,
    LabelSmoothingClassifier,
    MemGuardClassifier,
    RelaxLossClassifier,
    SELENAClassifier,
    VanillaClassifier,
    paper_defaults,
)

CLASSES = {
    "vanilla": VanillaClassifier,
    "advreg": AdvRegClassifier,
    "dpsgd": DPSGDClassifier,
    "relaxloss": RelaxLossClassifier,
    "confidence_penalty": ConfidencePenaltyClassifier,
    "distillation": DistillationClassifier,
    "dropout": DropoutClassifier,
    "early_stopping": EarlyStoppingClassifier,
    "label_smoothing": LabelSmoothingClassifier,
    "hamp": HAMPClassifier,
    "selena": SELENAClassifier,
    "memguard": MemGuardClassifier,
    "dpsgd_hu": DPSGDClassifier,
}


@pytest.mark.parametrize(
    "dataset, model, alpha, upper",
    [
        ("texas", None, 2.5, 0.1),
        ("purchase", None, 0.8, 0.3),
        ("cifar10", "resnet20", 1.0, 1.0),
        ("cifar10", "vgg11_bn", 0.4, 1.0),
        ("cifar100", "resnet20", 3.0, 1.0),
        ("cifar100", "vgg11_bn", 0.5, 1.0),
    ],
)
def test_relaxloss_paper_values(dataset, model, alpha, upper):
    params = paper_defaults("relaxloss", dataset, model)
    assert (params["alpha"], params["upper"]) == (alpha, upper)


@pytest.mark.parametrize("dataset, model", [("texas", None), ("cifar10", "resnet20")])
def test_schedules(dataset, model):
    params = paper_defaults("vanilla", dataset, model)
    tabular = model is None
    assert params["max_epochs"] == (120 if tabular else 300)
    assert params["milestones"] == ((50, 100) if tabular else (150, 225))
    assert params["lr"] == 0.1 and params["gamma"] == 0.1 and params["batch_size"] == 128
    assert params["optimizer__momentum"] == 0.9
    assert params["optimizer__weight_decay"] == 1e-4


def test_method_values():
    assert paper_defaults("confidence_penalty", "texas")["penalty"] == 0.1
    assert paper_defaults("label_smoothing", "texas")["smoothing"] == 0.1
    assert paper_defaults("dropout", "purchase")["dropout"] == 0.5
    assert paper_defaults("early_stopping", "purchase")["snapshot_epochs"] == (
        5, 10, 20, 30, 40, 50, 60, 70, 100,
    )
    assert paper_defaults("early_stopping", "cifar100", "vgg11_bn")["snapshot_epochs"] == (
        5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 250,
    )
    distill = paper_defaults("distillation", "cifar10", "resnet20")
    assert (distill["temperature"], distill["alpha"]) == (10.0, 0.5)
    dp = paper_defaults("dpsgd", "texas")
    assert (dp["noise_multiplier"], dp["max_grad_norm"]) == (0.01, 1.0)
    assert paper_defaults("dpsgd", "cifar100", "vgg11_bn")["max_grad_norm"] == 1.2
    advreg = paper_defaults("advreg", "purchase")
    assert (advreg["alpha"], advreg["inference_batches"], advreg["classifier_batches"]) == (
        1.0, 50, 2,
    )
    assert paper_defaults("advreg", "cifar10", "resnet20")["warmup_epochs"] == 3


@pytest.mark.parametrize("method", METHODS)
def test_every_method_builds_its_classifier(method):
    params = paper_defaults(method, "purchase")
    clf = CLASSES[method](**params)
    for key, value in params.items():
        assert clf.get_params()[key] == value


def test_defenses_after_the_paper_take_their_own_papers_values():
    # HAMP's and SELENA's code (the HAMP artifact's train-all.sh / train-*.py)
    hamp = paper_defaults("hamp", "purchase")
    assert (hamp["entropy_percentile"], hamp["entropy_penalty"], hamp["lr"]) == (0.8, 0.01, 0.5)
    assert paper_defaults("hamp", "texas")["entropy_percentile"] == 0.6
    selena = paper_defaults("selena", "texas")
    assert (selena["n_models"], selena["n_excluded"], selena["max_epochs"]) == (25, 10, 100)
    # the high-utility DP-SGD is not the paper's sigma = 0.01
    assert paper_defaults("dpsgd_hu", "purchase")["noise_multiplier"] > 0.01


def test_fresh_dict_each_call():
    paper_defaults("relaxloss", "texas")["alpha"] = 99
    assert paper_defaults("relaxloss", "texas")["alpha"] == 2.5


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown method 'relax'"):
        paper_defaults("relax", "texas")
    with pytest.raises(ValueError, match="no paper settings for dataset 'mnist'"):
        paper_defaults("vanilla", "mnist")
    with pytest.raises(ValueError, match="needs model= one of resnet20, vgg11_bn"):
        paper_defaults("vanilla", "cifar10")
    with pytest.raises(ValueError, match="model must be None"):
        paper_defaults("vanilla", "texas", "resnet20")
