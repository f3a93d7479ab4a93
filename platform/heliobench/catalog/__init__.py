"""The observation table, pairing, split schemes, the leakage audit and manifests."""
