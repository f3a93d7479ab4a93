"""Which shard columns a tracking benchmark reads, from its spec and dataset card.

A tracking benchmark lists, as ``inputs``, the current and previous frame of every
channel it tracks on and the previous frame's HEK table; its one ``target`` is the
current frame's HEK table. ``model.params.event_frames`` maps event types to the
current-frame member they are tracked on (``{AR: aia_171, CH: aia_193}``). The previous
frame of a member is the input of the same instrument and channel with a negative
``offset_min``, which must equal the previous table's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from heliobench.errors import ConfigError
from heliobench.prep.labels.hek import EVENT_TYPES
from heliobench.specs import BenchmarkSpec, Member, load_card


@dataclass(frozen=True)
class Layout:
    """Shard columns of a tracking benchmark."""

    frames: tuple[tuple[int, str, str], ...]  # (event type code, previous frame, current frame), by code
    prev_boxes: str
    boxes: str
    offset_min: float  # of the previous frame and table

    @property
    def event_types(self) -> tuple[int, ...]:
        """Codes of the tracked event types."""
        return tuple(code for code, _, _ in self.frames)


def layout(spec: BenchmarkSpec) -> Layout:
    """The :class:`Layout` of ``spec`` (errors name the benchmark and the key)."""
    frames = spec.model.params.get("event_frames")
    if not isinstance(frames, dict) or not frames:
        raise ConfigError(f"benchmark {spec.name}: model.params.event_frames must map event types "
                          f"({', '.join(EVENT_TYPES)}) to input frames, got {frames!r}")
    return _layout(spec.name, spec.dataset, tuple(spec.inputs), tuple(spec.targets), tuple(sorted(frames.items())))


@lru_cache(maxsize=16)
def _layout(name: str, dataset: str, inputs: tuple[str, ...], targets: tuple[str, ...],
            event_frames: tuple[tuple[str, str], ...]) -> Layout:
    card = load_card(dataset)
    members = {m.key: m for m in card.members}
    where = f"benchmark {name}"

    def member(key: str, section: str) -> Member:
        if key not in members:
            raise ConfigError(f"{where}: {section} {key!r} is not a member of dataset {card.name}")
        return members[key]

    tables = [k for k in inputs if member(k, "inputs").label == "hek"]
    if len(tables) != 1 or member(tables[0], "inputs").offset_min >= 0:
        raise ConfigError(f"{where}: inputs must hold exactly one previous-frame hek table (offset_min < 0), got {tables}")
    prev_boxes = members[tables[0]]
    if len(targets) != 1 or member(targets[0], "targets").label != "hek" or members[targets[0]].offset_min != 0:
        raise ConfigError(f"{where}: targets must be one current-frame hek table, got {list(targets)}")
    frames = []
    for event, key in event_frames:
        if event not in EVENT_TYPES:
            raise ConfigError(f"{where}: model.params.event_frames: unknown event type {event!r} (known: {', '.join(EVENT_TYPES)})")
        curr = member(key, "model.params.event_frames")
        if key not in inputs or curr.label is not None or curr.offset_min != 0:
            raise ConfigError(f"{where}: model.params.event_frames.{event}: {key!r} must be a current-frame observation among the inputs")
        prev = [k for k in inputs if members[k].label is None and members[k].offset_min < 0
                and (members[k].instrument, members[k].channel) == (curr.instrument, curr.channel)]
        if len(prev) != 1 or members[prev[0]].offset_min != prev_boxes.offset_min:
            raise ConfigError(f"{where}: {key!r} needs one previous frame among the inputs "
                              f"({curr.instrument} {curr.channel}, offset_min {prev_boxes.offset_min}), got {prev}")
        frames.append((EVENT_TYPES[event], prev[0], key))
    return Layout(tuple(sorted(frames)), prev_boxes.key, targets[0], prev_boxes.offset_min)
