"""The model manifest (`model.json`) and the registry of shipped models (`weights/<name>/`).

Both ends read it: the daemon to load an encoder and name the model on the wire, the viewer to
pick the decoder a frame's model id asks for, training (`caed_models`) to write it. So it lives
in the board package and needs nothing but the standard library.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

WEIGHTS_DIR = Path(__file__).with_name("weights")
COLOUR_ORDERS = ("rgb", "bgr")
DEFAULT_MODEL = "dct8-q1"  # the best shipped model: what the daemon runs unless told otherwise (README model card)


class ModelNotFound(LookupError):
    """No shipped model has that name or id, and it is not a path to a model.json."""


@dataclass(frozen=True)
class ModelSpec:
    """One codec as described by its manifest; ONNX tensors are float32, pictures NHWC and
    latents channel planes (NCHW), in the encoder's output and the decoder's input alike.

    The encoder takes an image in [0, 1] (the int8 input times 2**-input_fix_point), its colours
    in `input_colours` order, and returns float latents; the wire carries them as int8 with scale
    2**-latent_fix_point.
    """

    name: str
    model_id: str
    directory: Path
    input_shape: tuple[int, int, int]
    input_fix_point: int
    latent_shape: tuple[int, int, int]
    latent_fix_point: int
    encoder: Path
    encoder_int8: Path | None
    decoder: Path
    input_colours: str = "rgb"
    size_multiple: int = 8  # a picture's sides are padded up to multiples of this for the encoder
    decoder_int8: Path | None = None  # the host's int8 QDQ decoder, where one is shipped (caed_models.decoder_int8)
    # the decoder split for the host's sparse synthesis, where shipped: the synthesis convolution's
    # weights (.npz) and the picture-to-picture rest, fp32 and int8 (caed_models.onnx_io)
    synthesis: Path | None = None
    decoder_post: Path | None = None
    decoder_post_int8: Path | None = None
    manifest: dict = field(default_factory=dict, compare=False, repr=False)  # all of model.json, for
    # the keys only some tools read (macs, family, coarsest_fix_point, payload_codec, dpu_latent_scale_log2, ...)

    @classmethod
    def load(cls, manifest: Path) -> "ModelSpec":
        raw = json.loads(Path(manifest).read_text())
        d = Path(manifest).parent

        def optional(key: str) -> Path | None:
            return d / raw[key] if raw.get(key) else None

        colours = raw["input"].get("colours", "rgb")  # manifests before BGR encoders took RGB
        if colours not in COLOUR_ORDERS:
            raise ValueError(f"{manifest}: input.colours = {colours!r}, expected one of {COLOUR_ORDERS}")
        return cls(
            name=d.name,
            model_id=raw["model_id"],
            directory=d,
            input_shape=tuple(raw["input"]["shape"]),
            input_fix_point=int(raw["input"]["fix_point"]),
            latent_shape=tuple(raw["latent"]["shape"]),
            latent_fix_point=int(raw["latent"]["fix_point"]),
            encoder=d / raw["encoder"],
            encoder_int8=optional("encoder_int8"),
            decoder=d / raw["decoder"],
            input_colours=colours,
            size_multiple=int(raw.get("size_multiple", 8)),
            decoder_int8=optional("decoder_int8"),
            synthesis=optional("synthesis"),
            decoder_post=optional("decoder_post"),
            decoder_post_int8=optional("decoder_post_int8"),
            manifest=raw,
        )


def available() -> dict[str, ModelSpec]:
    """Shipped models by directory name."""
    return {p.parent.name: ModelSpec.load(p) for p in sorted(WEIGHTS_DIR.glob("*/model.json"))}


def find(name_or_path: str) -> ModelSpec:
    """A shipped model by name or model id, or a model.json (or its directory) by path."""
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "model.json"
    if path.is_file():
        return ModelSpec.load(path)
    for spec in available().values():
        if name_or_path in (spec.name, spec.model_id):
            return spec
    names = ", ".join(sorted(available())) or "none"
    raise ModelNotFound(f"no model {name_or_path!r} (shipped models: {names}; or give a path to a model.json)")
