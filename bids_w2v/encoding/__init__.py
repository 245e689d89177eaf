"""bids_w2v.encoding."""
