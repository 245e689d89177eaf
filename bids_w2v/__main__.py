"""Allow ``python -m bids_w2v``."""

from bids_w2v.cli.run import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
