"""bids_w2v.workflows."""
