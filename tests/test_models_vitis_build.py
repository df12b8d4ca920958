"""The Vitis AI build script stops with a clear message where the Vitis AI tools are absent."""
import importlib.util
import shutil

import pytest

pytest.importorskip("torch")

from caed_models.vitis_build import main  # noqa: E402


@pytest.mark.skipif(importlib.util.find_spec("pytorch_nndct") is not None or shutil.which("vai_c_xir") is not None,
                    reason="Vitis AI tools are installed here")
def test_without_vitis_ai_it_names_the_missing_tool(tmp_path):
    arch = tmp_path / "arch.json"
    arch.write_text('{"target": "DPUCZDX8G_ISA1_B4096"}')
    with pytest.raises(SystemExit) as e:
        main(["--model", "kth2020", "--arch-json", str(arch), "--out", str(tmp_path / "out")])
    assert "vai_q_pytorch" in str(e.value) and "Vitis AI docker" in str(e.value)


def test_missing_arch_json_is_reported(tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["--arch-json", str(tmp_path / "nope.json"), "--out", str(tmp_path / "out")])
    assert "arch.json not found" in str(e.value)
