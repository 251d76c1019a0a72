"""Default supernet backbones built from compression operators (needs the ``train`` extra)."""

from tflite_adaspring.models.residual_cnn import (
    BackboneSpec,
    ResidualCNN,
    backbone_for,
    image_backbone,
    timeseries_backbone,
)

__all__ = ["BackboneSpec", "ResidualCNN", "backbone_for", "image_backbone", "timeseries_backbone"]
