"""Limb-darkening removal for full-disk H-alpha (and white-light) images."""

from __future__ import annotations

import numpy as np
from numpy.polynomial import Polynomial
from scipy import ndimage

from heliobench.prep.base import PrepError, Step, positive_int
from heliobench.prep.image import PrepImage, disk_distance

#: Number of equal-width mu bins whose medians the polynomial is fitted to.
_MU_BINS = 50
#: Bins with fewer pixels than this are left out of the fit.
_MIN_PIXELS_PER_BIN = 5


class LimbDarkeningNormalize(Step):
    """Divide the disk by its centre-to-limb profile, fitted as a polynomial in mu = cos(theta).

    mu = sqrt(1 - (r / R_sun)²) on the disk. The profile is the median intensity in 50
    mu bins (medians, so filaments, plages and spots barely move it), fitted by a
    polynomial of ``degree``; on-disk pixels are divided by the fit at their mu, which
    flattens the disk to ~1. Off-disk pixels (prominences, sky) are divided by the fitted
    disk-centre intensity, keeping their brightness relative to the disk.
    """

    name = "limb_darkening_normalize"
    version = 1

    def __init__(self, degree: int = 5):
        super().__init__(degree=positive_int(self.name, "degree", degree))

    def profile(self, image: PrepImage) -> Polynomial:
        """The fitted intensity as a function of mu."""
        r = disk_distance(image)
        on_disk = (r < 1) & np.isfinite(image.data)
        mu = np.sqrt(1 - r[on_disk] ** 2)
        bins = np.minimum((mu * _MU_BINS).astype(int), _MU_BINS - 1)
        counts = np.bincount(bins, minlength=_MU_BINS)
        used = np.flatnonzero(counts >= _MIN_PIXELS_PER_BIN)
        if used.size <= self.params["degree"]:
            raise PrepError(
                f"{image.observation}: only {used.size} mu bins with on-disk pixels, too few to fit "
                f"a degree-{self.params['degree']} limb-darkening profile (is the disk on the image?)"
            )
        bin_mu = ndimage.mean(mu, labels=bins, index=used)
        bin_median = ndimage.median(image.data[on_disk], labels=bins, index=used)
        return Polynomial.fit(bin_mu, bin_median, self.params["degree"])

    def apply(self, image: PrepImage) -> PrepImage:
        """The image with a flat disk."""
        fit = self.profile(image)
        r = disk_distance(image)
        on_disk = r < 1
        divisor = np.full(image.data.shape, fit(1.0))
        divisor[on_disk] = fit(np.sqrt(1 - r[on_disk] ** 2))
        if not np.all(divisor > 0):
            raise PrepError(
                f"{image.observation}: the fitted limb-darkening profile is not positive on the disk "
                f"(minimum {divisor.min():.3g}); try a lower degree"
            )
        return image.with_data(image.data / divisor)
