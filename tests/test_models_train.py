"""caed-train: a resumed run continues exactly where an unbroken one would be."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from caed_models.train import Trainer, main, parse_args  # noqa: E402


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(3):
        cv2.imwrite(str(tmp_path / f"{k}.png"), rng.integers(0, 256, (48, 56, 3), dtype=np.uint8))
    return tmp_path


def _trainer(data, checkpoints, model, *extra):
    return Trainer(parse_args(["--model", model, "--data", str(data), "--minutes", "1", "--crop", "32",
                               "--batch", "2", "--threads", "1", "--checkpoint-dir", str(checkpoints), *extra]))


@pytest.mark.parametrize("model", ["kth2020", "dct8"])
def test_resume_matches_an_unbroken_run(data, tmp_path, model):
    unbroken = _trainer(data, tmp_path / "a", model)
    for _ in range(4):
        unbroken.train_step()
    first = _trainer(data, tmp_path / "b", model)
    for _ in range(2):
        first.train_step()
    first.save()
    resumed = _trainer(data, tmp_path / "b", model)
    assert resumed.resume() and resumed.step == 2
    for _ in range(2):
        resumed.train_step()
    for (name, a), b in zip(unbroken.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


def test_cli_reports_missing_data(tmp_path, capsys):
    assert main(["--minutes", "1", "--data", str(tmp_path / "missing")]) == 2
    assert "caed-train:" in capsys.readouterr().err


def test_frozen_groups_stay_put_while_the_others_learn(data, tmp_path):
    trainer = _trainer(data, tmp_path, "dct8", "--freeze", "analysis", "rate")
    trainer.train_step()  # the first batch fits the rate model's starting point (not a training step)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for _ in range(3):
        trainer.train_step()
    after = trainer.model.state_dict()
    for name in ("analysis.weight", "analysis.bias", "rate_loc", "rate_log_scale"):
        torch.testing.assert_close(after[name], before[name], msg=name)
    assert not torch.equal(after["post.convs.0.weight"], before["post.convs.0.weight"])
    assert not torch.equal(after["post.convs.3.weight"], before["post.convs.3.weight"])


def test_freezing_an_unknown_group_is_a_usage_error(data, tmp_path, capsys):
    assert main(["--model", "dct8", "--data", str(data), "--minutes", "1", "--freeze", "encoderr"]) == 2
    assert "encoderr" in capsys.readouterr().err


def test_resume_keeps_trained_weights_when_the_architecture_grew(data, tmp_path):
    old = _trainer(data, tmp_path, "dct8")
    for _ in range(2):
        old.train_step()
    old.save()
    ck = torch.load(old.path, weights_only=False)
    ck["model"] = {k: v for k, v in ck["model"].items() if not k.startswith(("post.", "decoder.post."))}
    torch.save(ck, old.path)
    grown = _trainer(data, tmp_path, "dct8")
    fresh = grown.model.state_dict()["post.convs.3.weight"].clone()
    assert grown.resume() and grown.step == 2
    assert grown.grown and all("post" in name for name in grown.grown)
    torch.testing.assert_close(grown.model.state_dict()["analysis.weight"], old.model.state_dict()["analysis.weight"])
    torch.testing.assert_close(grown.model.state_dict()["post.convs.3.weight"], fresh)
    grown.train_step()
