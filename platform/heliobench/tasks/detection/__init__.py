"""Active-region detection and Mount Wilson classification (de Oliveira & Gradvohl 2020).

Two networks: DetectNet (NVIDIA DIGITS) finds active-region boxes on full-disk
magnetograms; GoogLeNet classifies a cut-out of each box into Mount Wilson classes.
"""

from heliobench.tasks.detection.classes import (
    MT_WILSON_CLASSES,
    PAPER4_CLASSES,
    PAPER4_FROM_MT_WILSON,
    class_map,
    class_names,
    encode,
    label_lookup,
)
from heliobench.tasks.detection.classifier import GoogLeNet, classification_loss
from heliobench.tasks.detection.figures import draw_detections
from heliobench.tasks.detection.metrics import (
    classification_report,
    confusion_matrix,
    detection_report,
    iou,
    iou_matrix,
)
from heliobench.tasks.detection.model import (
    DetectNet,
    Detections,
    decode_boxes,
    detectnet_losses,
    group_rectangles,
)
from heliobench.tasks.detection.targets import (
    DetectNetTargets,
    cutout,
    detectnet_targets,
    grid_box,
    heliographic_box,
    hek_box,
    large_enough,
    window,
)

__all__ = [
    "MT_WILSON_CLASSES",
    "PAPER4_CLASSES",
    "PAPER4_FROM_MT_WILSON",
    "DetectNet",
    "DetectNetTargets",
    "Detections",
    "GoogLeNet",
    "class_map",
    "class_names",
    "classification_loss",
    "classification_report",
    "confusion_matrix",
    "cutout",
    "decode_boxes",
    "detection_report",
    "detectnet_losses",
    "detectnet_targets",
    "draw_detections",
    "encode",
    "grid_box",
    "group_rectangles",
    "heliographic_box",
    "hek_box",
    "iou",
    "iou_matrix",
    "label_lookup",
    "large_enough",
    "window",
]
