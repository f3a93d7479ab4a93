"""Submission format: predictions of an outside model on a benchmark's test inputs.

A submission is one NumPy ``.npz`` file (``numpy.savez`` or ``numpy.savez_compressed``):

- one array per observation of the benchmark's test split, keyed by its ``sample_id``
  (e.g. ``20170701T000000``); every test id must be present, and no other key;
- each array float32 or float64 (no integers, booleans, complex numbers or Python
  objects), finite, of the benchmark's prediction shape: for segmentation an (H, W)
  array of probabilities in [0, 1] at the benchmark resolution (``resolution_px``).

Example::

    np.savez_compressed("preds.npz", **{sid: probs[i].astype(np.float32) for i, sid in enumerate(ids)})

The file is read with ``allow_pickle=False``: pickled (object) arrays are rejected,
never unpickled. It is scored against the hidden test labels; only the scores and the
file's SHA-256 are kept, not the file.
"""

#: The format, as the CLI and the validator describe it.
SUBMISSION_FORMAT = __doc__.strip()
