"""HMI→AIA translation parts: normalisation, pix2pix networks, losses, metrics, channel selection."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.io import fits

from heliobench.tasks.translation.channel_selection import (
    channel_selection_grid,
    channel_selection_heatmap,
    channel_selection_table,
)
from heliobench.tasks.translation.losses import (
    default_optimizers,
    discriminator_losses,
    generator_losses,
)
from heliobench.tasks.translation.metrics import (
    TranslationMetricAccumulator,
    bin_image,
    solar_disk_mask,
    translation_report,
)
from heliobench.tasks.translation.model import PatchDiscriminator, UNetGenerator, unet_depth
from heliobench.tasks.translation.normalization import (
    denormalize_aia,
    denormalize_hmi,
    normalize_aia,
    normalize_hmi,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- normalisation


def test_normalize_hmi_hand_values_and_round_trip() -> None:
    b = np.array([-4500.0, -3000.0, 0.0, 1500.0, 3000.0, 9000.0])
    # clip to ±3000 G, then /3000: -1, -1, 0, 0.5, 1, 1
    np.testing.assert_allclose(normalize_hmi(b), [-1.0, -1.0, 0.0, 0.5, 1.0, 1.0])
    inside = np.array([-2999.5, -12.0, 0.0, 700.25])
    np.testing.assert_allclose(denormalize_hmi(normalize_hmi(inside)), inside, rtol=1e-12)


def test_normalize_aia_hand_values_and_round_trip() -> None:
    x = np.array([-5.0, 0.0, 1.0, 127.0, 16383.0, 1e6])
    # log2(clip(x + 1, 1, 2^14)) = 0, 0, 1, 7, 14, 14; then /7 - 1
    np.testing.assert_allclose(normalize_aia(x), [-1.0, -1.0, 1 / 7 - 1, 0.0, 1.0, 1.0])
    # 2^((0 + 1) * 7) - 1 = 127; out-of-range network outputs are clipped to [-1, 1]
    np.testing.assert_allclose(denormalize_aia(np.array([0.0, -1.5, 1.5])), [127.0, 0.0, 16383.0])
    inside = np.array([0.0, 0.37, 42.0, 5000.5, 16383.0])
    np.testing.assert_allclose(denormalize_aia(normalize_aia(inside)), inside, rtol=1e-12, atol=1e-12)


def test_normalization_accepts_torch_tensors() -> None:
    x = torch.tensor([0.0, 127.0, 16383.0], dtype=torch.float64)
    assert torch.allclose(normalize_aia(x), torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64))
    assert torch.allclose(denormalize_aia(normalize_aia(x)), x)
    assert torch.allclose(normalize_hmi(torch.tensor([-6000.0, 300.0])), torch.tensor([-1.0, 0.1]))


# ---------------------------------------------------------------- networks


def _bottleneck_shape(generator: UNetGenerator, x: torch.Tensor) -> tuple[int, ...]:
    shapes: list[tuple[int, ...]] = []
    handle = generator.down[-1].register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
    with torch.no_grad():
        out = generator.eval()(x)
    handle.remove()
    assert out.shape == (x.shape[0], generator.up[-1][1].out_channels, *x.shape[-2:])
    assert out.abs().max() <= 1.0  # tanh
    return shapes[0]


def _dropout_output_sizes(generator: UNetGenerator) -> list[int]:
    sizes = []
    for level, block in zip(range(len(generator.down) - 1, 0, -1), generator.up):
        if any(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in block):
            sizes.append(generator.image_size >> level)
    return sizes


def test_unet_depth() -> None:
    assert [unet_depth(s) for s in (1024, 256, 64, 4)] == [10, 8, 6, 2]
    for bad in (0, 2, 100, 255):
        with pytest.raises(ValueError, match="power of two"):
            unet_depth(bad)


def test_generator_256_has_8_levels_to_a_1x1_bottleneck() -> None:
    torch.manual_seed(0)
    generator = UNetGenerator(in_channels=1, out_channels=1, image_size=256)
    assert len(generator.down) == 8
    widths = [next(m for m in block if isinstance(m, torch.nn.Conv2d)).out_channels for block in generator.down]
    assert widths == [64, 128, 256, 512, 512, 512, 512, 512]
    assert _bottleneck_shape(generator, torch.randn(1, 1, 256, 256)) == (1, 512, 1, 1)
    assert _dropout_output_sizes(generator) == [2, 4, 8]  # the three innermost 512 decoder blocks
    decoder_widths = [block[1].out_channels for block in generator.up]
    assert decoder_widths == [512, 512, 512, 512, 256, 128, 64, 1]
    convs = [m.weight for m in generator.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    assert abs(torch.cat([w.flatten() for w in convs]).std().item() - 0.02) < 5e-4
    norms = [m.weight for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert abs(torch.cat(norms).mean().item() - 1.0) < 5e-3


def test_generator_64_for_the_demo_is_multichannel() -> None:
    torch.manual_seed(0)
    generator = UNetGenerator(in_channels=1, out_channels=3, image_size=64)
    assert len(generator.down) == 6
    assert _bottleneck_shape(generator, torch.randn(2, 1, 64, 64)) == (2, 512, 1, 1)
    assert _dropout_output_sizes(generator) == [2, 4, 8]
    with pytest.raises(ValueError, match="built for 64"):
        generator(torch.randn(1, 1, 128, 128))


def test_inference_runs_as_training_batch_statistics_and_dropout() -> None:
    """As the authors' Keras layers (training=1) and pix2pix: no running averages, dropout at test time."""
    torch.manual_seed(0)
    generator = UNetGenerator(1, 1, 16, base_features=4, max_features=8).eval()
    assert all(m.running_mean is None for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d))
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        assert not torch.equal(generator(x), generator(x))  # dropout on in eval mode
        torch.manual_seed(1)
        first = generator(x)
        torch.manual_seed(1)
        assert torch.equal(first, generator(x))
        torch.manual_seed(1)
        alone = generator(x[:1])
    # a batch-mate changes the batch statistics: image 0 differs alone and in a batch (so predict goes one by one)
    assert not torch.allclose(alone[0], first[0])


def test_discriminator_receptive_field_is_70() -> None:
    # Backwards through the convs (k, s): r = (r - 1)·s + k; from 1: (4,1)→4, (4,1)→7, (4,2)→16, (4,2)→34,
    # (4,2)→70. Measured: the input pixels whose gradient reaches one central output logit.
    torch.manual_seed(0)
    discriminator = PatchDiscriminator(input_channels=1, target_channels=1).eval()
    # Batch norm on each batch's statistics couples every pixel; the patch is the convolutions' field.
    for i, layer in enumerate(discriminator.model):
        if isinstance(layer, torch.nn.BatchNorm2d):
            discriminator.model[i] = torch.nn.Identity()
    condition = torch.randn(1, 1, 160, 160, requires_grad=True)
    logits = discriminator(condition, torch.randn(1, 1, 160, 160))
    assert logits.shape == (1, 1, 18, 18)  # 160 → 80 → 40 → 20 → 19 → 18
    logits[0, 0, 9, 9].backward()
    rows, cols = torch.nonzero(condition.grad[0, 0], as_tuple=True)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (70, 70)


# ---------------------------------------------------------------- losses


def test_generator_losses_hand_values() -> None:
    fake, target = torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0])
    # L1 = (|0 - 1| + |1 - 1|) / 2 = 0.5
    model_a = generator_losses(fake, target)
    assert set(model_a) == {"l1", "total"}
    assert model_a["total"].item() == pytest.approx(0.5)
    # logit 0 → D = 0.5 → -log 0.5 = ln 2; total = ln 2 + 100 · 0.5
    model_b = generator_losses(fake, target, fake_logits=torch.zeros(1, 1, 2, 2))
    assert model_b["gan"].item() == pytest.approx(math.log(2))
    assert model_b["total"].item() == pytest.approx(math.log(2) + 50.0)


def test_discriminator_losses_hand_values() -> None:
    # real logit ln 3 → D = 0.75 → -log 0.75; fake logit -ln 3 → D = 0.25 → -log(1 - 0.25) = -log 0.75
    out = discriminator_losses(torch.full((1, 1, 2, 2), math.log(3)), torch.full((1, 1, 2, 2), -math.log(3)))
    assert out["real"].item() == pytest.approx(-math.log(0.75))
    assert out["fake"].item() == pytest.approx(-math.log(0.75))
    assert out["total"].item() == pytest.approx(-math.log(0.75))  # (real + fake) / 2


def test_default_optimizers_are_adam_2e4_beta05() -> None:
    g, d = UNetGenerator(1, 1, 4), PatchDiscriminator(1, 1)
    optimizers = default_optimizers(g, d)
    assert set(optimizers) == {"generator", "discriminator"}
    for optimizer in optimizers.values():
        assert isinstance(optimizer, torch.optim.Adam)
        assert optimizer.defaults["lr"] == 2e-4 and optimizer.defaults["betas"] == (0.5, 0.999)
    # Model A: no discriminator (or one without parameters) gets no optimiser
    assert set(default_optimizers(g, torch.nn.ModuleList())) == {"generator"}
    assert default_optimizers(g, lr=1e-3)["generator"].defaults["lr"] == 1e-3


def test_a_few_model_b_steps_reduce_l1() -> None:
    torch.manual_seed(0)
    generator = UNetGenerator(1, 1, 32, base_features=8, max_features=32)
    discriminator = PatchDiscriminator(1, 1, base_features=8)
    optimizers = default_optimizers(generator, discriminator)
    opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
    hmi = torch.rand(2, 1, 32, 32) * 2 - 1
    aia = torch.tanh(2 * hmi.abs() - 1)
    l1s = []
    for _ in range(30):
        fake = generator(hmi)
        opt_d.zero_grad()
        discriminator_losses(discriminator(hmi, aia), discriminator(hmi, fake.detach()))["total"].backward()
        opt_d.step()
        opt_g.zero_grad()
        losses = generator_losses(fake, aia, fake_logits=discriminator(hmi, fake))
        losses["total"].backward()
        opt_g.step()
        l1s.append(losses["l1"].item())
    assert np.mean(l1s[-5:]) < 0.97 * np.mean(l1s[:5])  # ≈ 0.95 after 30 steps at lr 2e-4


# ---------------------------------------------------------------- metrics


def test_bin_image_and_disk_mask_hand_values() -> None:
    image = np.arange(16.0).reshape(4, 4)
    # block (0, 0) = (0 + 1 + 4 + 5) / 4 = 2.5; the others step by 2 along x and 8 along y
    np.testing.assert_allclose(bin_image(image, 2), [[2.5, 4.5], [10.5, 12.5]])
    with pytest.raises(ValueError, match="cannot bin"):
        bin_image(np.zeros((6, 6)), 4)
    # 5×5 grid, centre (2, 2): 1 + 4 (r = 1) + 4 (r = √2) pixels have r < 1.99 = 0.99 · 2.01; the 4 at
    # r = 2 join only with the full radius 2.01
    assert solar_disk_mask(5, (2.0, 2.0), 2.01).sum() == 9
    assert solar_disk_mask(5, (2.0, 2.0), 2.01, fraction=1.0).sum() == 13
    assert solar_disk_mask(5, (1.0, 3.0), 0.5, fraction=1.0)[3, 1]  # (x, y) = (column, row)


def test_cc_hand_value() -> None:
    tar = np.array([[[0.0, 1.0], [2.0, 3.0]]])
    gen = np.array([[[1.0, 1.0], [5.0, 3.0]]])
    # +1 DN: I_tar = 1 2 3 4 (mean 2.5), I_gen = 2 2 6 4 (mean 3.5)
    # Σ dt·dg = 1.5·1.5 + 0.5·1.5 + 0.5·2.5 + 1.5·0.5 = 5; Σ dt² = 5; Σ dg² = 2.25 + 2.25 + 6.25 + 0.25 = 11
    report = translation_report(gen, tar, np.ones((2, 2), bool), ["171"])
    assert report["cc_171"] == pytest.approx(5 / math.sqrt(5 * 11))
    # a constant image has no correlation: 0 by convention
    assert translation_report(np.zeros_like(tar), tar, np.ones((2, 2), bool), ["171"])["cc_171"] == 0.0


def test_re_and_ppe10_hand_values_with_zero_targets_and_disk_mask() -> None:
    tar = np.array([[[9.0, 19.0, 0.0], [99.0, 0.0, 500.0]]])
    gen = np.array([[[10.0, 21.0, 0.05], [121.0, 0.2, 0.0]]])
    mask = np.array([[True, True, True], [True, True, False]])  # the (500, 0) pixel is off the disk
    report = translation_report(gen, tar, mask, ["94"])
    # +1 DN: I_tar = 10 20 1 100 1, I_gen = 11 22 1.05 122 1.2
    # |ΔI|/I_tar = 0.1 0.1 0.05 0.22 0.2 → 3 of 5 within 10 % (boundary included; tar = 0 counts as 1 DN)
    assert report["ppe10_94"] == pytest.approx(3 / 5)
    # RE = (157.25 - 132) / 132
    assert report["re_94"] == pytest.approx(25.25 / 132)
    # just above 10 % (0.10001) is out
    assert translation_report(np.array([[[10.0001]]]), np.array([[[9.0]]]), np.ones((1, 1), bool),
                              ["94"])["ppe10_94"] == 0.0


def test_report_keys_and_channel_means() -> None:
    tar = np.stack([np.array([[9.0, 19.0]]), np.array([[99.0, 199.0]])])  # channels 94, 131: I_tar 10 20 | 100 200
    gen = np.stack([np.array([[10.0, 21.0]]), np.array([[79.0, 159.0]])])  # I_gen 11 22 | 80 160
    report = translation_report(gen, tar, np.ones((1, 2), bool), ["94", "131"])
    assert set(report) == {"cc_94", "re_94", "ppe10_94", "cc_131", "re_131", "ppe10_131",
                           "cc_mean", "cc_min", "re_abs_mean", "ppe10_mean", "n_images"}
    # RE: (33 - 30)/30 = 0.1 and (240 - 300)/300 = -0.2; the channel mean is of |RE|: (0.1 + 0.2)/2
    assert (report["re_94"], report["re_131"]) == pytest.approx((0.1, -0.2))
    assert report["re_abs_mean"] == pytest.approx(0.15)
    # PPE10: 2/2 and 0/2 (20 % off) → mean 0.5; both CC = 1
    assert report["ppe10_mean"] == pytest.approx(0.5)
    assert report["cc_mean"] == pytest.approx(1.0)


def test_cc_min_and_bootstrap_intervals_over_images() -> None:
    # channel 94: I_tar 1 2 3, I_gen 1 2 3 → CC 1; channel 171: I_gen reversed 3 2 1 → CC -1
    tar = np.array([[[[0.0, 1.0, 2.0]], [[0.0, 1.0, 2.0]]]])
    gen = np.array([[[[0.0, 1.0, 2.0]], [[2.0, 1.0, 0.0]]]])
    report = translation_report(gen, tar, np.ones((1, 3), bool), ["94", "171"])
    assert (report["cc_mean"], report["cc_min"]) == pytest.approx((0.0, -1.0))
    # two images with RE 0.1 and 0.3 (I_tar 10, I_gen 11 | 13): resamples average 0.1, 0.2 or 0.3
    accumulator = TranslationMetricAccumulator(["304"], n_boot=400, seed=1)
    accumulator.update(np.array([[[[10.0]]], [[[12.0]]]]), np.array([[[[9.0]]], [[[9.0]]]]), np.ones((1, 1), bool))
    out = accumulator.compute()
    assert out["re_abs_mean"] == pytest.approx(0.2) and out["n_images"] == 2
    assert out["re_abs_mean_ci_low"] == pytest.approx(0.1) and out["re_abs_mean_ci_high"] == pytest.approx(0.3)
    assert {f"{k}_ci_{b}" for k in ("cc_mean", "cc_min", "re_abs_mean", "ppe10_mean") for b in ("low", "high")} <= set(out)
    assert not any("_ci_" in k for k in translation_report(gen, tar, np.ones((1, 3), bool), ["94", "171"]))


def test_accumulator_averages_per_image_over_uneven_batches() -> None:
    tar = np.array([[[[9.0, 19.0]]], [[[99.0, 199.0]]], [[[99.0, 199.0]]], [[[99.0, 199.0]]]])
    gen = tar.copy()
    gen[0] = [[[10.0, 21.0]]]  # image 0: I 11 22 vs 10 20 → RE = 3/30 = 0.1; images 1-3: RE = 0
    mask = np.ones((1, 2), bool)
    accumulator = TranslationMetricAccumulator(["304"])
    accumulator.update(gen[:3], tar[:3], mask)
    accumulator.update(torch.from_numpy(gen[3]), torch.from_numpy(tar[3]), torch.from_numpy(mask))
    # per image: (0.1 + 0 + 0 + 0) / 4 = 0.025; pooled pixels would give 3 / (30 + 3·300) = 0.00323
    assert accumulator.compute() == translation_report(gen, tar, mask, ["304"])
    assert accumulator.compute()["re_304"] == pytest.approx(0.025)
    with pytest.raises(ValueError, match="channels"):
        accumulator.update(gen, tar[:, :0], mask)


def test_empty_disk_mask_is_an_error() -> None:
    with pytest.raises(ValueError, match="no pixel"):
        translation_report(np.ones((1, 2, 2)), np.ones((1, 2, 2)), np.zeros((2, 2), bool), ["171"])


@pytest.mark.realdata
def test_metrics_on_the_real_aia_171_image(realdata: Path) -> None:
    with fits.open(realdata / "fits/aia/AIA20110319_105400_0171.fits") as hdul:
        header, data = hdul[0].header, hdul[0].data.astype(np.float64)
    assert data.shape == (1024, 1024)
    image = bin_image(data, 256)  # 4×4 blocks
    tar = denormalize_aia(normalize_aia(image))
    np.testing.assert_allclose(tar, image.clip(0, 2**14 - 1), rtol=1e-12, atol=1e-9)
    centre = (header["CRPIX1"] - 1 + 0.5) / 4 - 0.5, (header["CRPIX2"] - 1 + 0.5) / 4 - 0.5
    radius_px = header["RSUN_OBS"] / header["CDELT1"] / 4  # ≈ 963.9" / 2.4"/px / 4 ≈ 100.4 px
    mask = solar_disk_mask(256, centre, radius_px)
    assert mask.sum() == pytest.approx(math.pi * (0.99 * radius_px) ** 2, rel=0.01)

    same = translation_report(tar[None, None], tar[None, None], mask, ["171"])
    assert same == pytest.approx({"cc_171": 1.0, "re_171": 0.0, "ppe10_171": 1.0, "cc_mean": 1.0, "cc_min": 1.0,
                                  "re_abs_mean": 0.0, "ppe10_mean": 1.0, "n_images": 1.0})
    # 10 % brighter in the compared quantity I = x + 1 DN: every disk pixel sits exactly on the 10 % boundary
    brighter = 1.1 * (tar + 1.0) - 1.0
    assert brighter.max() + 1 < 2**14  # no clipping at the top of the range
    scaled = translation_report(brighter[None, None], tar[None, None], mask, ["171"])
    assert scaled["re_171"] == pytest.approx(0.1, abs=1e-12)
    assert scaled["ppe10_171"] == 1.0
    assert scaled["cc_171"] == pytest.approx(1.0)


# ---------------------------------------------------------------- channel selection


def test_channel_selection_grid_has_the_170_models_of_lim_2021() -> None:
    grid = channel_selection_grid()
    by_inputs = [sum(len(g["input_channels"]) == n for g in grid) for n in (1, 2, 3)]
    assert by_inputs == [72, 56, 42]  # 9·8, 8·7, 7·6
    assert len(grid) == 170
    assert all(g["output_channel"] not in g["input_channels"] for g in grid)
    assert len({(tuple(g["input_channels"]), g["output_channel"]) for g in grid}) == 170
    assert all("131" in g["input_channels"] for g in grid if len(g["input_channels"]) > 1)
    assert {"input_channels": ["131", "304", "1600"], "output_channel": "171"} in grid
    # a greedy rerun from other winners, on a smaller channel set: 4·3 + 3·2 + 2·1
    assert len(channel_selection_grid(["171", "193", "211", "304"], ["193"], ["171", "193"])) == 20
    with pytest.raises(ValueError, match="not among"):
        channel_selection_grid(pair_base=["4500"])


def test_channel_selection_table_and_heatmap(tmp_path: Path) -> None:
    results = [
        {"input_channels": ["131"], "output_channel": "171", "cc": 0.5},
        {"input_channels": ["131"], "output_channel": "171", "cc": 0.7},  # a second run of the same model
        {"input_channels": ["131"], "output_channel": "94", "cc": 0.9},
        {"input_channels": ["131", "1600"], "output_channel": "94", "cc": 0.95},
    ]
    table = channel_selection_table(results)
    assert table.columns == ["inputs", "n_inputs", "output", "cc", "n_results"]
    assert table.rows() == [("131", 1, "171", pytest.approx(0.6), 2),  # (0.5 + 0.7) / 2
                            ("131", 1, "94", 0.9, 1),
                            ("131+1600", 2, "94", 0.95, 1)]
    path = channel_selection_heatmap(results, tmp_path / "cc.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
