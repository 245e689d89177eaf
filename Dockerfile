# bids-w2v BIDS-App image (CPU torch by default).
#   docker build -t bids-w2v .
#   docker run --rm -v /data/ds:/data:ro -v /data/out:/out bids-w2v /data /out participant
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

RUN apt-get update \
 && apt-get install -y --no-install-recommends libsndfile1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/bids-w2v
COPY pyproject.toml README.md ./
COPY bids_w2v ./bids_w2v
RUN python -m pip install --no-cache-dir --index-url ${TORCH_INDEX} "${TORCH_SPEC}" \
 && python -m pip install --no-cache-dir .

RUN useradd --create-home --uid 1000 bidsw2v
USER bidsw2v
ENV NIPYPE_NO_ET=1 HF_HUB_OFFLINE=1 MPLBACKEND=Agg HF_HOME=/home/bidsw2v/.cache/huggingface
WORKDIR /home/bidsw2v
ENTRYPOINT ["bids-w2v"]
