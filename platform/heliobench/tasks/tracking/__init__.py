"""Event-tracking task parts: GOTURN crops and regressor, and the tracking measures.

The engine task is :mod:`.task` (shard columns in :mod:`.layout`, HEK tables in
:mod:`.tracks`, scoring in :mod:`.evaluation`). The rotation baselines live in
:mod:`.baselines` and their leaderboard entries in :mod:`.baseline_entries`; they are not
re-exported here because importing them pulls in SunPy's coordinate machinery (seconds).
"""

from heliobench.tasks.tracking.crops import (
    CropWindow,
    MotionModel,
    context_window,
    crop,
    crop_pair,
    motion_example,
    shift_box,
)
from heliobench.tasks.tracking.metrics import (
    REPORT_KEYS,
    centre_error,
    iou,
    sequence_scores,
    success_curve,
    tracking_report,
)
from heliobench.tasks.tracking.model import GoturnRegressor, l1_box_loss, track_sequence

__all__ = [
    "REPORT_KEYS",
    "CropWindow",
    "GoturnRegressor",
    "MotionModel",
    "centre_error",
    "context_window",
    "crop",
    "crop_pair",
    "iou",
    "l1_box_loss",
    "motion_example",
    "sequence_scores",
    "shift_box",
    "success_curve",
    "track_sequence",
    "tracking_report",
]
