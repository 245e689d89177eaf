"""bids_w2v.features."""
