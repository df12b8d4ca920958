"""The study's architecture: exact latent and output sizes, and the study's workload table."""
import pytest

torch = pytest.importorskip("torch")

from caed_models.kth2020 import KTH2020  # noqa: E402
from caed_models.workload import conv_layers  # noqa: E402

STUDY_MOP = [675.06, 1788.42, 3530.10, 1741.82, 214.84]


@pytest.mark.parametrize("hw, latent_hw", [((512, 768), (62, 94)), ((768, 512), (94, 62)), ((128, 128), (14, 14))])
def test_latent_and_reconstruction_sizes(hw, latent_hw):
    model = KTH2020().eval()
    with torch.no_grad():
        y = model.encode(torch.rand(1, 3, *hw))
        assert tuple(y.shape) == (1, 32, *latent_hw)
        assert model.latent_size(*hw) == latent_hw
        assert tuple(model.decode(y).shape) == (1, 3, *hw)


def test_encoder_workload_is_the_studys_table():
    layers = conv_layers(KTH2020().encoder, (1, 3, 512, 768))
    assert [round(layer.mop, 2) for layer in layers] == STUDY_MOP
    assert [layer.out_hw for layer in layers] == [(510, 766), (254, 382), (252, 380), (125, 189), (62, 94)]


def test_decoder_mirrors_encoder_workload():
    model = KTH2020()
    enc = conv_layers(model.encoder, (1, 3, 512, 768))
    dec = conv_layers(model.decoder, (1, 32, 62, 94))
    assert [layer.macs for layer in dec] == [layer.macs for layer in reversed(enc)]
