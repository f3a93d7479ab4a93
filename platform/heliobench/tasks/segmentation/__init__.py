"""Segmentation task parts: the SCSS-Net model, paired augmentation and IoU/Dice metrics."""

from heliobench.tasks.segmentation.augment import augment_pair
from heliobench.tasks.segmentation.metrics import (
    SegmentationAccumulator,
    bootstrap_ci,
    bootstrap_ci_pooled,
    dice_per_image,
    dice_pooled,
    iou_per_image,
    iou_pooled,
    segmentation_report,
)
from heliobench.tasks.segmentation.model import ScssNet, count_parameters

__all__ = [
    "ScssNet",
    "SegmentationAccumulator",
    "augment_pair",
    "bootstrap_ci",
    "bootstrap_ci_pooled",
    "count_parameters",
    "dice_per_image",
    "dice_pooled",
    "iou_per_image",
    "iou_pooled",
    "segmentation_report",
]
