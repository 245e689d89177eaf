# bids-w2v BIDS-App image: CPU torch by default, runs as a non-root user, never uses the network
# at run time (HF_HUB_OFFLINE=1) unless asked with --allow-download.
#
#   docker build -t bids-w2v .                                  # from PyPI + the PyTorch CPU index
#   docker run --rm -v /data/ds:/data:ro -v /data/out:/out bids-w2v /data /out participant
#
# Build arguments (all optional):
#   BASE_IMAGE        a python:3.11 slim image (default) or a bare Debian image: Python is
#                     installed from apt when the base has none (e.g. a debootstrap'ed bookworm).
#   WHEELHOUSE        folder of wheels inside the build context (pip download/pip wheel of the
#                     pinned requirements, hatchling included): offline, air-gapped install with
#                     pip install --no-index --find-links. .ci/container builds one.
#   TORCH_VARIANT     cpu (default) or a CUDA build of the PyTorch index, e.g. cu128.
#   TORCH_INDEX_URL   where that torch build comes from (ignored with WHEELHOUSE).
#   MODELS_DIR        context folder of save_pretrained model folders, baked into /opt/models
#                     (run with --model /opt/models/NAME).
#   HF_CACHE_DIR      context folder laid out as a Hugging Face hub cache (models--org--name/),
#                     baked into $HF_HOME/hub (run with --model org/name, offline).
#   HF_MODELS         Hugging Face ids downloaded into $HF_HOME at build time (needs network),
#                     e.g. "facebook/wav2vec2-base facebook/hubert-base-ls960".
#   TEMPLATEFLOW_DIR  context folder with TemplateFlow files (tpl-*/), baked into
#                     $TEMPLATEFLOW_HOME.
#   TEMPLATEFLOW_TEMPLATES  templates fetched at build time (needs network), NAME or NAME:res-N,
#                     e.g. "MNI152NLin2009cAsym:res-2".
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------
# base: Python 3 with venv, from the base image or from Debian's packages.
FROM ${BASE_IMAGE} AS base
ARG DEBIAN_FRONTEND=noninteractive
RUN set -eux; \
    pkgs=""; \
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c "import venv, ensurepip" 2>/dev/null; \
    then pkgs="python3 python3-venv"; fi; \
    if [ ! -e /etc/ssl/certs/ca-certificates.crt ]; then pkgs="$pkgs ca-certificates"; fi; \
    if [ -n "$pkgs" ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends $pkgs; \
        apt-get clean; \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    fi; \
    python3 --version

# ---------------------------------------------------------------------------------------------
# build: the virtual environment, model weights and TemplateFlow files.
FROM base AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_VARIANT=cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}
ARG WHEELHOUSE=
ARG MODELS_DIR=
ARG HF_CACHE_DIR=
ARG HF_MODELS=
ARG TEMPLATEFLOW_DIR=
ARG TEMPLATEFLOW_TEMPLATES=
ENV HF_HOME=/opt/huggingface \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY . /src
RUN set -eux; \
    python3 -m venv /opt/venv; \
    cd /src; \
    if [ -n "$WHEELHOUSE" ]; then \
        pip install --no-index --find-links "/src/$WHEELHOUSE" "torch==$TORCH_VERSION" . ; \
    else \
        pip install --index-url "$TORCH_INDEX_URL" "torch==$TORCH_VERSION"; \
        pip install . ; \
    fi; \
    pip check; \
    bids-w2v --version
RUN set -eux; \
    mkdir -p /opt/models "$HF_HOME/hub" "$TEMPLATEFLOW_HOME"; \
    if [ -n "$MODELS_DIR" ]; then cp -a "/src/$MODELS_DIR/." /opt/models/; fi; \
    if [ -n "$HF_CACHE_DIR" ]; then cp -a "/src/$HF_CACHE_DIR/." "$HF_HOME/hub/"; fi; \
    if [ -n "$HF_MODELS" ]; then \
        HF_HUB_OFFLINE=0 python -c 'import sys; from huggingface_hub import snapshot_download; \
[snapshot_download(m, ignore_patterns=["*.h5", "*.msgpack", "*.onnx", "*.ot", "tf_*", "flax_*"]) \
 for m in sys.argv[1:]]' $HF_MODELS; \
    fi; \
    if [ -n "$TEMPLATEFLOW_DIR" ]; then cp -a "/src/$TEMPLATEFLOW_DIR/." "$TEMPLATEFLOW_HOME/"; fi; \
    TEMPLATEFLOW_AUTOUPDATE=0 python -W ignore -c "import templateflow.api"; \
    if [ -n "$TEMPLATEFLOW_TEMPLATES" ]; then \
        python -c 'import sys; import templateflow.api as tf; \
[tf.get(n, **({"resolution": int(r.removeprefix("res-"))} if r else {})) \
 for n, _, r in (t.partition(":") for t in sys.argv[1:])]' $TEMPLATEFLOW_TEMPLATES; \
    fi; \
    chmod -R a+rX /opt/models "$HF_HOME" "$TEMPLATEFLOW_HOME"

# ---------------------------------------------------------------------------------------------
# runtime: the base plus the environment; no compiler, no wheelhouse, no sources.
FROM base AS runtime
ARG VERSION=0.1.0
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
LABEL org.opencontainers.image.title="bids-w2v" \
      org.opencontainers.image.description="BIDS-App: brain scores of self-supervised speech models (wav2vec 2.0 & co.) on naturalistic-listening fMRI (Millet, Caucheteux et al., NeurIPS 2022)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.authors="bids-w2v developers" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}"
RUN useradd --create-home --uid 1000 --shell /bin/bash bidsw2v
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/models /opt/models
COPY --from=build /opt/huggingface /opt/huggingface
COPY --from=build /opt/templateflow /opt/templateflow
ENV PATH=/opt/venv/bin:$PATH \
    NIPYPE_NO_ET=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib \
    HF_HOME=/opt/huggingface \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    TEMPLATEFLOW_AUTOUPDATE=0
USER bidsw2v
WORKDIR /home/bidsw2v
ENTRYPOINT ["bids-w2v"]
CMD ["--help"]
