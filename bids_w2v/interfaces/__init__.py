"""bids_w2v.interfaces."""
