"""ABX phone discrimination of speech-model layers (the paper's behavioural test).

The ZeroSpeech / ABXpy task "ON phone BY context", within and across speaker: for triplets
(A, B, X) where A and X are the same phone and B another phone in the same context, the model
answers right when the DTW-aligned distance between X and A is smaller than between X and B.

- :mod:`~bids_w2v.abx.items`: reading the item file, frames of an item.
- :mod:`~bids_w2v.abx.dtw`: frame distances (cosine, angular) and batched DTW.
- :mod:`~bids_w2v.abx.score`: triplets, errors per cell and the ZeroSpeech averaging.
- :mod:`~bids_w2v.abx.features`: item features from the BIDS-App's extraction and cache, and a
  model-free log-mel baseline.
- :mod:`~bids_w2v.abx.human`: comparison with human accuracies.
- :mod:`~bids_w2v.abx.report`: TSV/JSON outputs, figure and HTML report.
"""
