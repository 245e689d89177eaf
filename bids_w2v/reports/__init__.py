"""bids_w2v.reports."""
