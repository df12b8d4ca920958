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


def _trainer(data, checkpoints, model):
    return Trainer(parse_args(["--model", model, "--data", str(data), "--minutes", "1", "--crop", "32",
                               "--batch", "2", "--threads", "1", "--checkpoint-dir", str(checkpoints)]))


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
