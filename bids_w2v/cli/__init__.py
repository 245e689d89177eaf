"""bids_w2v.cli."""
