"""caed_models: the trainable codec models, their training, evaluation, export and DPU estimates.

Needs the `train` extra (PyTorch). The model manifests both ends read, and the shipped weights,
belong to the board package (`caed.manifest`, `caed/weights`): this package writes them there.
"""
