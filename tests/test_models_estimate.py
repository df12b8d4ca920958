"""The DPU latency model against the study's measured table (KTH 2020, Ultra96-V2, 150 MHz)."""
import json

import pytest

pytest.importorskip("torch")

from caed_models.estimate import ARCHS, efficiency, encoder_layers, estimate, main  # noqa: E402

STUDY_MOP = [675.06, 1788.42, 3530.10, 1741.82, 214.84]
STUDY_TOTAL_MS = {"B512": 112.144, "B1024": 59.2, "B2304": 35.72}
STUDY_B2304_LAYER_MS = [7.927, 7.061, 13.232, 6.638, 0.862]


@pytest.fixture(scope="module")
def layers():
    return encoder_layers("kth2020", 512, 768)


@pytest.mark.parametrize("arch", sorted(STUDY_TOTAL_MS))
def test_total_latency_within_ten_percent_of_the_study(layers, arch):
    result = estimate(layers, ARCHS[arch], 150.0)
    assert [r["mop"] for r in result["layers"]] == STUDY_MOP
    assert result["total_ms"] == pytest.approx(STUDY_TOTAL_MS[arch], rel=0.10)


def test_b2304_layers_within_twelve_percent_of_the_study(layers):
    result = estimate(layers, ARCHS["B2304"], 150.0)
    for row, measured in zip(result["layers"], STUDY_B2304_LAYER_MS):
        assert row["ms"] == pytest.approx(measured, rel=0.12), row["name"]


def test_efficiency_comes_from_channel_and_pixel_tiling(layers):
    b2304 = ARCHS["B2304"]
    conv1, conv3 = layers[0], layers[2]
    assert efficiency(conv1, b2304) == pytest.approx(3 / 12 * 32 / 36 * 766 / 768)
    assert efficiency(conv3, b2304) == pytest.approx(32 / 36 * 64 / 72 * 380 / 384)


def test_cores_scale_throughput_not_latency(layers):
    one, two = (estimate(layers, ARCHS["B4096"], 300.0, cores) for cores in (1, 2))
    assert two["total_ms"] == one["total_ms"]
    assert two["fps"] == pytest.approx(2 * one["fps"], rel=1e-3)


def test_cli_json(capsys):
    assert main(["--model", "kth2020", "--arch", "B1024", "--clock-mhz", "150", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total_mop"] == pytest.approx(7950.24) and out["fps"] == pytest.approx(1e3 / out["total_ms"], rel=1e-3)


def test_cli_rejects_bad_input(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--input", "big"])
    assert e.value.code == 2 and "--input" in capsys.readouterr().err
