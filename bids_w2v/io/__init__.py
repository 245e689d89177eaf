"""bids_w2v.io."""
