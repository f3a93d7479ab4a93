"""Dataset cards (``datasets/*.yaml``): loading and validation.

Configuration is data. Every card is validated on load; an error names the file and
the key (``datasets/sdo.yaml: split_schemes.strict.val: ...``). Names resolve inside
their root folder only, so a card cannot reach files outside it.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from heliobench.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

#: Carrington rotation (synodic), the buffer of the ``strict`` split scheme.
CARRINGTON_ROTATION_DAYS = 27.2753


def project_root() -> Path:
    """The folder holding ``datasets/``, ``benchmarks/`` and ``tune_spaces/``."""
    env = os.environ.get("HELIOBENCH_ROOT")
    return Path(env).resolve() if env else Path(__file__).resolve().parents[2]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelTable(_Strict):
    """How a label member reads its quality table (a CSV with a header row, or a JSON list
    of records): the column of each image's file name (``file``) and of its observation
    time (``time``, ISO 8601) — at least one of them, a row being found by file name first
    —, the column of its quality class (``quality``), and ``classes``, the table's values
    mapped to HelioBench's 1 (Q1, clear) or 2 (Q2, degraded). A value not in ``classes``
    is an error, never a default. ``degradation``: an optional column of degradation kinds
    (:data:`heliobench.prep.labels.quality.DEGRADATION_KINDS`); ``delimiter``: the CSV's,
    sniffed when not given. Column names and class values are matched exactly.
    """

    file: str | None = None
    time: str | None = None
    quality: str
    classes: dict[str, Literal[1, 2]] = Field(min_length=1)
    degradation: str | None = None
    delimiter: str | None = Field(default=None, min_length=1, max_length=1)

    @field_validator("classes", mode="before")
    @classmethod
    def _values_as_text(cls, value: Any) -> Any:
        """YAML reads ``{1: 1}`` with an integer key; the table's values are text."""
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _row_key(self) -> "LabelTable":
        if self.file is None and self.time is None:
            raise ValueError("give the column of file names (file), of observation times (time), or both")
        return self


class Member(_Strict):
    """One part of a sample: an observation (instrument + channel) or a label kind.

    A member joins the sample at the reference time plus ``offset_min`` (negative: an
    earlier frame, as the previous frame of a tracking pair), the target time. An
    observation member takes the observation nearest the target within ``tolerance_min``
    (default: the card's); ``match: before`` only one at or before it. A label member
    takes the label file whose ``[time_start, time_end]`` contains the target, the latest
    starting one among several (a day's HEK file before a month's); else the file nearest
    the target within the tolerance, so a point-in-time label (a mask) is the nearest
    one as for observations, and ``match: before`` never takes a file starting after the
    target (see :func:`heliobench.catalog.pairing.pair`). An ``optional`` member may be
    missing: the sample is kept with a null ``<key>_uri`` (the reference cannot be
    optional). A label member encodes its file on the registered grid of the
    observation member named by ``grid``. A ``filter`` keeps only the records of a label
    catalog whose fields have the given values (HEK: ``{event_type: CH, frm_name: SPoCA}``);
    a ``hek`` member with a filter is the mask of those events' outlines. A ``table``
    member (label kind ``table``: any CSV or JSON table with a time per row) says how to
    read its file in ``table`` (:class:`LabelTable`).
    """

    key: str = Field(pattern=r"^[a-z0-9_]+$")
    instrument: str | None = None
    channel: str | None = None
    label: str | None = None
    offset_min: float = 0.0
    tolerance_min: float | None = Field(default=None, gt=0)
    match: str = Field(default="nearest", pattern=r"^(nearest|before)$")
    optional: bool = False
    grid: str | None = None
    filter: dict[str, str] | None = None
    table: LabelTable | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "Member":
        if (self.label is None) == (self.instrument is None or self.channel is None):
            raise ValueError("give either instrument and channel, or label")
        if self.grid is not None and self.label is None:
            raise ValueError("only a label member has a grid")
        if self.filter is not None and self.label is None:
            raise ValueError("only a label member has a filter")
        if self.table is not None and self.label is None:
            raise ValueError("only a label member has a table")
        if self.label == "table" and self.table is None:
            raise ValueError("a member with label: table needs `table:` (its file, time, quality columns and classes)")
        return self


class DateRange(_Strict):
    """Inclusive calendar-day range [start, end] in UTC."""

    start: date
    end: date

    @model_validator(mode="after")
    def _ordered(self) -> "DateRange":
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @property
    def start_time(self) -> datetime:
        """Start as a UTC datetime (00:00 of the start day)."""
        return datetime.combine(self.start, datetime.min.time(), tzinfo=timezone.utc)

    @property
    def end_time(self) -> datetime:
        """Exclusive end: 00:00 UTC of the day after ``end``."""
        return datetime.combine(self.end + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc)


class SplitScheme(_Strict):
    """Named temporal split; ``buffer_days`` are dropped before each later split starts."""

    train: DateRange
    val: DateRange
    test: DateRange
    buffer_days: float = Field(default=0.0, ge=0.0)

    @model_validator(mode="after")
    def _disjoint(self) -> "SplitScheme":
        if not (self.train.end < self.val.start and self.val.end < self.test.start):
            raise ValueError("splits must be ordered train < val < test without overlap")
        return self

    def ranges(self) -> dict[str, tuple[datetime, datetime]]:
        """Kept [start, end) per split, after dropping the buffer at each boundary."""
        buf = timedelta(days=self.buffer_days)
        return {
            "train": (self.train.start_time, min(self.train.end_time, self.val.start_time - buf)),
            "val": (self.val.start_time, min(self.val.end_time, self.test.start_time - buf)),
            "test": (self.test.start_time, self.test.end_time),
        }


class ValueRange(_Strict):
    """An inclusive range ``{min: .., max: ..}``; either end may be left open."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> "ValueRange":
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        return self


class ObservationRule(_Strict):
    """What an observation must satisfy to be paired, on its catalog columns.

    ``quality``: the QUALITY word must equal it (0: nominal); ``exposure_s``: the exposure
    time must lie in the range; ``image_type``: IMG_TYPE must equal it (upper case, AIA
    ``LIGHT``). A file without the value (no EXPTIME, no IMG_TYPE) fails the rule: a
    missing value never passes.
    """

    quality: int | None = None
    exposure_s: ValueRange | None = None
    image_type: str | None = None

    @field_validator("image_type")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        """The catalog holds IMG_TYPE in upper case."""
        return value.upper() if value is not None else None

    def rules(self) -> dict[str, Any]:
        """The rules that are set, by column."""
        return {k: v for k, v in self if v is not None}


class DatasetCard(_Strict):
    """A dataset: what a sample holds, how members pair in time, and its split schemes."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    description: str
    source: str
    license: str
    citation: str | None = None
    members: list[Member] = Field(min_length=1)
    reference: str
    tolerance_min: float = Field(gt=0)
    cadence: str | None = None
    split_schemes: dict[str, SplitScheme] = Field(min_length=1)
    default_scheme: str | None = None
    preprocessing: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    #: Selection rules by instrument (``{AIA: {quality: 0, image_type: LIGHT}}``), applied to
    #: the card's observation members of that instrument before pairing.
    require: dict[str, ObservationRule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _reference_known(self) -> "DatasetCard":
        keys = [m.key for m in self.members]
        if len(set(keys)) != len(keys):
            raise ValueError(f"member keys must be unique, got {keys}")
        if self.reference not in keys:
            raise ValueError(f"reference {self.reference!r} is not a member key ({', '.join(keys)})")
        ref = next(m for m in self.members if m.key == self.reference)
        if ref.label is not None or ref.offset_min != 0:
            raise ValueError("the reference member must be an observation without an offset")
        for m in self.members:
            if m.grid is not None and (m.grid not in keys or self.member(m.grid).label is not None):
                raise ValueError(f"member {m.key}: grid {m.grid!r} is not an observation member")
        if self.default_scheme is not None and self.default_scheme not in self.split_schemes:
            raise ValueError(f"default_scheme {self.default_scheme!r} is not a split scheme ({', '.join(self.split_schemes)})")
        if ref.optional:
            raise ValueError(f"the reference member {ref.key!r} cannot be optional")
        instruments = sorted({m.instrument for m in self.members if m.instrument is not None})
        for name, rule in self.require.items():
            if name not in instruments:
                raise ValueError(f"require.{name}: no observation member of instrument {name!r} (members: {', '.join(instruments)})")
            if not rule.rules():
                raise ValueError(f"require.{name}: no rule given (quality, exposure_s, image_type)")
        return self

    @property
    def default_split_scheme(self) -> str:
        """The scheme used when none is named: ``default_scheme``, else the first one listed."""
        return self.default_scheme or next(iter(self.split_schemes))

    def member(self, key: str) -> Member:
        """The member called ``key``."""
        for m in self.members:
            if m.key == key:
                return m
        raise ConfigError(f"dataset card {self.name}: no member {key!r}")

    def scheme(self, name: str) -> SplitScheme:
        """The split scheme called ``name``, with an error listing the known ones."""
        if name not in self.split_schemes:
            raise ConfigError(
                f"dataset card {self.name}: no split scheme {name!r} (known: {', '.join(self.split_schemes)})"
            )
        return self.split_schemes[name]


def resolve_in_root(name_or_path: str, folder: str) -> Path:
    """A YAML file by name (``sdo_sim``) or path, which must lie inside ``<root>/<folder>``.

    Paths outside the folder (``../../etc/passwd``, symlinks out) are rejected.
    """
    root = (project_root() / folder).resolve()
    candidate = Path(name_or_path)
    if candidate.suffix not in (".yaml", ".yml"):
        candidate = root / f"{name_or_path}.yaml"
    elif not candidate.is_absolute():
        candidate = (Path.cwd() / candidate) if (Path.cwd() / candidate).exists() else root / candidate
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        raise ConfigError(f"{name_or_path}: outside {root} (files must stay inside {folder}/)")
    if not resolved.is_file():
        known = ", ".join(sorted(p.stem for p in root.glob("*.yaml")))
        raise ConfigError(f"{name_or_path}: no such file in {folder}/ (known: {known})")
    return resolved


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Parse ``path`` as YAML and validate it as ``model``; errors name file and key."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"{path}: {key}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None


def load_card(name_or_path: str) -> DatasetCard:
    """Load and validate a dataset card from ``datasets/``."""
    return load_yaml_model(resolve_in_root(name_or_path, "datasets"), DatasetCard)


class ModelSpec(_Strict):
    """A benchmark's model: the task's reference model with its constructor parameters, or a
    plug-in (``factory``: ``package.module:callable`` or ``path/to/file.py:callable``, see
    :mod:`heliobench.models`), which receives the spec and reads ``params`` as it likes."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    factory: str | None = Field(default=None, pattern=r"^[^:]+:[A-Za-z_][A-Za-z0-9_.]*$")


class PublishedResult(_Strict):
    """A headline result of the published work, as the paper reports it, on the paper's own data.

    ``metrics`` holds the numbers that have the meaning of one of the benchmark's metrics
    (same name); ``reported`` the paper's other numbers under the paper's own names (a
    metric defined differently, e.g. DIGITS' simplified mAP at IoU 0.7). Leaderboards show
    these rows apart, never ranked against runs on other data.
    """

    model: str
    citation: str
    data: str
    metrics: dict[str, float] = Field(default_factory=dict)
    reported: dict[str, float] = Field(default_factory=dict)
    note: str | None = None

    @model_validator(mode="after")
    def _has_numbers(self) -> "PublishedResult":
        if not self.metrics and not self.reported:
            raise ValueError("give the published numbers in metrics (benchmark metric names) or reported")
        return self


class TrainingSpec(_Strict):
    """Training hyperparameters (any key can be overridden with ``--set training.KEY=VALUE``)."""

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    seed: int = 0
    workers: int = Field(default=2, ge=1)
    augment: bool = True
    #: Which epoch's weights become the run's model: the last (``last``) or the one with the
    #: best validation primary metric (``best_val``).
    keep: Literal["last", "best_val"] = "last"
    params: dict[str, Any] = Field(default_factory=dict)


class BenchmarkSpec(_Strict):
    """A benchmark: a task on a dataset card's split, its inputs/targets, model and metrics."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    task: str
    dataset: str
    split_scheme: str
    inputs: list[str] = Field(min_length=1)
    targets: list[str] = Field(min_length=1)
    resolution_px: int = Field(ge=16)
    input_scaling: dict[str, Any] = Field(default_factory=dict)
    model: ModelSpec
    training: TrainingSpec
    metrics: list[str] = Field(min_length=1)
    primary_metric: str
    direction: str = Field(pattern=r"^(maximize|minimize)$")
    evaluation: dict[str, Any] = Field(default_factory=dict)
    citation: str
    notes: str | None = None
    #: Per dataset card the benchmark runs on besides its own: the split scheme and the
    #: spec sections that differ there (``training``, ``model``, ``input_scaling``, ...),
    #: merged key by key into the spec by :meth:`on_dataset`.
    datasets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: The published work's headline results, on the paper's data (shown, never ranked).
    published: list[PublishedResult] = Field(default_factory=list)

    @model_validator(mode="after")
    def _primary_listed(self) -> "BenchmarkSpec":
        if self.primary_metric not in self.metrics:
            raise ValueError(f"primary_metric {self.primary_metric!r} is not in metrics")
        for i, row in enumerate(self.published):
            unknown = sorted(set(row.metrics) - set(self.metrics))
            if unknown:
                raise ValueError(f"published.{i}.metrics: {unknown} are not metrics of this benchmark; "
                                 "put the paper's other numbers under reported")
        for card, settings in self.datasets.items():
            unknown = sorted(set(settings) - _DATASET_SECTIONS)
            if unknown:
                raise ValueError(f"datasets.{card}: unknown key(s) {unknown}; allowed: {sorted(_DATASET_SECTIONS)}")
            try:
                BenchmarkSpec.model_validate(_merged(self.model_dump(exclude={"datasets"}), settings))
            except ValidationError as exc:
                raise ValueError(f"datasets.{card}: " + "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
        return self

    def on_dataset(self, name: str | None) -> "BenchmarkSpec":
        """The benchmark on dataset card ``name`` (None or its own: unchanged).

        The card's split scheme is the one ``datasets.NAME.split_scheme`` names, else the
        card's default; the other settings under ``datasets.NAME`` replace the spec's.
        The card must hold the benchmark's input and target members.
        """
        if name is None or name == self.dataset:
            return self
        card = load_card(name)
        settings = dict(self.datasets.get(card.name, {}))
        settings.setdefault("split_scheme", card.default_split_scheme)
        spec = BenchmarkSpec.model_validate(_merged(self.model_dump(), {"dataset": card.name, **settings}))
        spec.card()
        return spec

    def card(self) -> DatasetCard:
        """The dataset card, checked to hold the inputs, targets and split scheme."""
        card = load_card(self.dataset)
        keys = {m.key for m in card.members}
        missing = [k for k in self.inputs + self.targets if k not in keys]
        if missing:
            raise ConfigError(f"benchmark {self.name}: dataset {card.name} has no member(s) {', '.join(missing)}")
        card.scheme(self.split_scheme)
        return card

    def with_overrides(self, overrides: list[str]) -> "BenchmarkSpec":
        """A copy with ``section.key=value`` overrides (values parsed as YAML) applied.

        ``inputs=[...]`` and ``targets=[...]`` choose other members of the card (the
        channel-selection grid of ``aia_channel_selection`` searches over them);
        ``resolution_px=N`` another shard resolution.
        """
        data = self.model_dump()
        for item in overrides:
            key, sep, raw = item.partition("=")
            parts = key.strip().split(".")
            if sep and parts in (["inputs"], ["targets"], ["resolution_px"]):
                data[parts[0]] = yaml.safe_load(raw)
                continue
            if not sep or len(parts) < 2 or parts[0] not in ("training", "model", "evaluation", "input_scaling"):
                raise ConfigError(f"--set {item!r}: expected training.KEY=VALUE, model.params.KEY=VALUE, inputs=[...], resolution_px=N, ...")
            node = data
            for p in parts[:-1]:
                node = node.setdefault(p, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"--set {item!r}: {p} is not a section")
            node[parts[-1]] = yaml.safe_load(raw)
        try:
            return BenchmarkSpec.model_validate(data)
        except ValidationError as exc:
            raise ConfigError("; ".join(f"--set: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None


#: What ``datasets.CARD`` of a benchmark spec may set.
_DATASET_SECTIONS = {"split_scheme", "resolution_px", "input_scaling", "model", "training", "evaluation", "notes"}


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, mappings key by key and other values replaced."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_benchmark(name_or_path: str) -> BenchmarkSpec:
    """Load and validate a benchmark spec from ``benchmarks/``."""
    return load_yaml_model(resolve_in_root(name_or_path, "benchmarks"), BenchmarkSpec)


class SearchDimension(_Strict):
    """One hyperparameter's search domain."""

    type: str = Field(pattern=r"^(choice|uniform|loguniform|randint|grid)$")
    values: list[Any] | None = None
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _complete(self) -> "SearchDimension":
        if self.type in ("choice", "grid") and not self.values:
            raise ValueError(f"{self.type} needs a non-empty 'values' list")
        if self.type in ("uniform", "loguniform", "randint"):
            if self.low is None or self.high is None or not self.low < self.high:
                raise ValueError(f"{self.type} needs low < high")
            if self.type == "loguniform" and self.low <= 0:
                raise ValueError("loguniform needs low > 0")
        return self


class SearchSpace(_Strict):
    """A Ray Tune search space over ``--set`` keys, with the search's budget."""

    benchmark: str
    metric: str | None = None
    max_epochs: int = Field(ge=1)
    grace_period: int = Field(default=1, ge=1)
    reduction_factor: int = Field(default=2, ge=2)
    num_samples: int = Field(default=4, ge=1)
    space: dict[str, SearchDimension] = Field(min_length=1)


def load_search_space(name_or_path: str) -> SearchSpace:
    """Load and validate a search space from ``tune_spaces/``."""
    return load_yaml_model(resolve_in_root(name_or_path, "tune_spaces"), SearchSpace)
