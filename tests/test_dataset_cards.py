"""One benchmark on several dataset cards: default split schemes, ``BenchmarkSpec.on_dataset``
and its validation, every card's documentation, and hmi_to_aia trained from a JSOC-format
HMI + AIA catalog with no label files at all (the ``sdo_jsoc`` card)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from heliobench.errors import ConfigError
from heliobench.specs import BenchmarkSpec, load_benchmark, load_card, project_root


def test_every_card_says_where_its_data_comes_from() -> None:
    for path in sorted((project_root() / "datasets").glob("*.yaml")):
        card = load_card(path.stem)
        assert card.source.strip() and card.license.strip() and (card.citation or "").strip(), path.name
        assert card.default_split_scheme in card.split_schemes


def test_default_scheme_must_be_a_scheme(tmp_path: Path) -> None:
    data = yaml.safe_load((project_root() / "datasets" / "sdo_jsoc.yaml").read_text())
    from heliobench.specs import DatasetCard

    with pytest.raises(ValueError, match="default_scheme 'nope' is not a split scheme"):
        DatasetCard.model_validate({**data, "default_scheme": "nope"})
    assert DatasetCard.model_validate({**data, "default_scheme": None}).default_split_scheme == "park2019"


def test_on_dataset_takes_the_cards_scheme_and_the_specs_settings_for_it() -> None:
    spec = load_benchmark("ch_segmentation")
    assert spec.on_dataset(None) is spec and spec.on_dataset("sdo_sim") is spec
    real = spec.on_dataset("aia193_ch_pairs")
    assert (real.dataset, real.split_scheme) == ("aia193_ch_pairs", "years")
    assert real.input_scaling["kind"] == "disk_median" and real.model.params["base_filters"] == 8
    assert real.model.params["depth"] == spec.model.params["depth"]  # merged key by key, the rest kept
    assert real.metrics == spec.metrics and real.primary_metric == spec.primary_metric
    jsoc = load_benchmark("hmi_to_aia").on_dataset("sdo_jsoc")
    assert (jsoc.dataset, jsoc.split_scheme, jsoc.training) == ("sdo_jsoc", "park2019", load_benchmark("hmi_to_aia").training)
    with pytest.raises(ConfigError, match="dataset sdo_jsoc has no member.*ch_mask"):
        spec.on_dataset("sdo_jsoc")
    with pytest.raises(ConfigError, match="no such file in datasets/"):
        spec.on_dataset("no_such_card")


def test_dataset_settings_are_validated_on_load() -> None:
    base = load_benchmark("ch_segmentation").model_dump()
    with pytest.raises(ValueError, match=r"datasets\.aia193_ch_pairs: unknown key\(s\) \['inputs'\]"):
        BenchmarkSpec.model_validate({**base, "datasets": {"aia193_ch_pairs": {"inputs": ["aia_171"]}}})
    with pytest.raises(ValueError, match=r"datasets\.aia193_ch_pairs: training\.epochs"):
        BenchmarkSpec.model_validate({**base, "datasets": {"aia193_ch_pairs": {"training": {"epochs": 0}}}})


@pytest.mark.usefixtures("one_torch_thread")
def test_hmi_to_aia_trains_from_a_jsoc_catalog_without_labels(tiny_archive: Path, workspace: Path, tmp_path: Path) -> None:
    """The simulator writes JSOC-format files; only the HMI and AIA ones are given here."""
    from heliobench.catalog.ingest import ingest
    from heliobench.catalog.splits import make_manifest, write_manifest
    from heliobench.catalog.tables import load_catalog
    from heliobench.engine.evaluate import evaluate
    from heliobench.engine.train import train
    from heliobench.shards import write_shards

    archive = tmp_path / "jsoc"
    for part in ("hmi", "aia"):
        shutil.copytree(tiny_archive / part, archive / part)
    cat = tmp_path / "cat"
    summary = ingest([str(archive)], str(cat), progress=False)
    assert summary.new_labels == 0 and summary.new_quarantined == 0
    card = load_card("sdo_jsoc")
    manifest, paired = make_manifest(load_catalog(str(cat)), card, card.default_split_scheme)
    assert manifest.counts()["train"] > 0 and manifest.counts()["test"] > 0 and paired.unmatched == 0
    write_manifest(manifest, str(tmp_path / "manifest.parquet"))
    shards = tmp_path / "shards"
    write_shards(str(tmp_path / "manifest.parquet"), card, str(shards), size_px=64,
                 members=("hmi_magnetogram", "aia_171", "aia_193"), samples_per_shard=16, progress=False)

    spec = (load_benchmark("hmi_to_aia").on_dataset("sdo_jsoc")
            .with_overrides(["model.params.base_features=4", "model.params.max_features=8", "model.params.disc_features=4",
                             "targets=[aia_171, aia_193]", "training.epochs=1", "training.batch_size=4"])
            .model_copy(update={"resolution_px": 64}))
    uri = f"sqlite:///{workspace / 'mlflow.db'}"
    result = train(spec, str(shards), workers=2, tracking_uri=uri, run_name="jsoc-tiny")
    run = MlflowClient(uri).get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.params["dataset"] == "sdo_jsoc"
    assert run.data.tags["heliobench.dataset"] == "sdo_jsoc"
    metrics = evaluate(spec, result.run_id, str(shards), tracking_uri=uri, n_boot=20)
    assert -1 <= metrics["cc_mean"] <= 1
