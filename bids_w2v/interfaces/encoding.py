"""Nipype interface around the encoding model (science in bids_w2v.encoding)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)


class _FitEncodingInputSpec(BaseInterfaceInputSpec):
    design_files = traits.List(File(exists=True), mandatory=True, desc="one npz per run")
    bold_files = traits.List(File(exists=True), mandatory=True, desc="one npz per run")
    layer = traits.Str(mandatory=True, desc="layer to fit")
    # settings of bids_w2v.config.EncodingSettings: no defaults here, the configuration's apply
    n_folds = traits.Int(mandatory=True, desc="outer contiguous folds")
    cv = traits.Enum("kfold", "runs", mandatory=True, desc="contiguous folds or leave-one-run-out")
    gap = traits.Int(mandatory=True, desc="training scans dropped next to the test block")
    alphas = traits.List(traits.Float, mandatory=True, desc="ridge penalties")
    inner = traits.Enum("loo", "kfold", mandatory=True, desc="inner alpha selection")
    alpha_search = traits.Enum(
        "exact", "full", mandatory=True, desc="search of the alpha grid (retired names resolved)"
    )
    backend = traits.Enum("numpy", "torch", mandatory=True, desc="linear algebra backend")
    device = traits.Str(mandatory=True, desc="cpu or cuda[:N]")
    voxel_chunk = traits.Int(mandatory=True, desc="voxels per chunk")
    features_pca = traits.Either(
        None, traits.Int, mandatory=True, desc="PCA components of the features per fold"
    )
    num_threads = traits.Int(mandatory=True, desc="BLAS threads")
    participant_stats = traits.Bool(mandatory=True, desc="per-voxel p-values of the scores")


class _FitEncodingOutputSpec(TraitedSpec):
    out_file = File(
        exists=True,
        desc="npz: scores, fold_scores, alphas, excluded, n_excluded_nonfinite, "
        "n_excluded_constant (and pvalues with participant_stats)",
    )


class FitEncoding(SimpleInterface):
    """Cross-validated ridge brain score of one layer (runs concatenated)."""

    input_spec = _FitEncodingInputSpec
    output_spec = _FitEncodingOutputSpec

    def _run_interface(self, runtime):
        from threadpoolctl import threadpool_limits

        from bids_w2v.encoding import cross_validated_scores
        from bids_w2v.errors import InputError
        from bids_w2v.heap import retained_heap
        from bids_w2v.progress import StepProgress

        X = np.concatenate([np.load(f)[self.inputs.layer] for f in self.inputs.design_files])
        runs = [np.load(f)["data"] for f in self.inputs.bold_files]
        Y, n_runs = np.concatenate(runs), len(runs)
        groups = None
        if self.inputs.cv == "runs":
            groups = np.concatenate([np.full(len(r), i) for i, r in enumerate(runs)])
        del runs  # (one copy of the BOLD during the fit)
        # label: the participant and model sub-workflows of this node, and the layer
        where = [p[:-3] for p in Path(runtime.cwd).parts[:-1] if p.endswith("_wf")]
        report = StepProgress(" ".join([*where[1:], f"fit {self.inputs.layer}"]), "fold-chunks")
        if self.inputs.backend == "torch":  # torch's own thread pool: the node's threads too
            import torch

            torch.set_num_threads(max(1, self.inputs.num_threads))
        try:
            threads = threadpool_limits(limits=max(1, self.inputs.num_threads))
            with report, threads, retained_heap():  # chunk after chunk reuses the pages
                res = cross_validated_scores(
                    X,
                    Y,
                    alphas=np.asarray(self.inputs.alphas),
                    n_folds=self.inputs.n_folds,
                    groups=groups,
                    gap=self.inputs.gap,
                    inner=self.inputs.inner,
                    alpha_search=self.inputs.alpha_search,
                    backend=self.inputs.backend,
                    device=self.inputs.device,
                    voxel_chunk=self.inputs.voxel_chunk,
                    n_threads=max(1, self.inputs.num_threads),
                    features_pca=self.inputs.features_pca,
                    pvalues=self.inputs.participant_stats,
                    progress=report,
                )
        except ValueError as exc:
            raise InputError(
                f"The encoding model of layer {self.inputs.layer} cannot be cross-validated on "
                f"{n_runs} run(s) and {Y.shape[0]} scans in all: {exc} Use more runs or "
                "scans, fewer folds (--n-folds), a smaller --cv-gap, fewer --features-pca "
                "components, or --cv kfold."
            ) from None
        out = os.path.join(runtime.cwd, f"encoding_{self.inputs.layer}.npz")
        np.savez(
            out,
            scores=res.scores,
            fold_scores=res.fold_scores,
            alphas=res.alphas,
            excluded=res.excluded,
            n_excluded_nonfinite=res.n_excluded_nonfinite,
            n_excluded_constant=res.n_excluded_constant,
            n_samples=X.shape[0],
            **({} if res.pvalues is None else {"pvalues": res.pvalues}),
        )
        self._results["out_file"] = out
        return runtime


class _FitJointInputSpec(BaseInterfaceInputSpec):
    design_files = traits.List(
        traits.List(File(exists=True)), mandatory=True, desc="per feature space, one npz per run"
    )
    bold_files = traits.List(File(exists=True), mandatory=True, desc="one npz per run")
    spaces = traits.List(traits.Str, mandatory=True, desc="canonical label[:layer] per space")
    # settings of bids_w2v.config.EncodingSettings: no defaults here, the configuration's apply
    n_folds = traits.Int(mandatory=True, desc="outer contiguous folds")
    cv = traits.Enum("kfold", "runs", mandatory=True, desc="contiguous folds or leave-one-run-out")
    gap = traits.Int(mandatory=True, desc="training scans dropped next to the test block")
    alphas = traits.List(traits.Float, mandatory=True, desc="ridge penalties")
    joint_n_iter = traits.Int(mandatory=True, desc="random-search draws")
    joint_seed = traits.Int(mandatory=True, desc="random-search seed")
    joint_solver = traits.Enum("loo", "himalaya", mandatory=True, desc="inner criterion")
    backend = traits.Enum("numpy", "torch", mandatory=True, desc="linear algebra backend")
    device = traits.Str(mandatory=True, desc="cpu or cuda[:N]")
    voxel_chunk = traits.Int(mandatory=True, desc="voxels per chunk")
    num_threads = traits.Int(mandatory=True, desc="BLAS threads")


class _FitJointOutputSpec(TraitedSpec):
    out_file = File(
        exists=True,
        desc="npz: spaces, layers, r2, fold_r2, r2_without, unique, shared, deltas, excluded",
    )


class FitJoint(SimpleInterface):
    """Banded ridge of several feature spaces and its variance partitioning (runs concatenated)."""

    input_spec = _FitJointInputSpec
    output_spec = _FitJointOutputSpec

    def _run_interface(self, runtime):
        from threadpoolctl import threadpool_limits

        from bids_w2v.encoding.banded import banded_scores
        from bids_w2v.encoding.joint import from_config, pick_layer
        from bids_w2v.errors import InputError

        spaces = from_config(self.inputs.spaces)
        Xs, layers = [], []
        try:
            for space, files in zip(spaces, self.inputs.design_files, strict=True):
                designs = [np.load(f) for f in files]
                layer = pick_layer(space, list(designs[0].files))
                layers.append(layer)
                Xs.append(np.concatenate([d[layer] for d in designs]))
        except ValueError as exc:
            raise InputError(str(exc)) from None
        runs = [np.load(f)["data"] for f in self.inputs.bold_files]
        Y = np.concatenate(runs)
        groups = None
        if self.inputs.cv == "runs":
            groups = np.concatenate([np.full(len(r), i) for i, r in enumerate(runs)])
        try:
            with threadpool_limits(limits=max(1, self.inputs.num_threads)):
                res = banded_scores(
                    Xs,
                    Y,
                    names=[str(s) for s in spaces],
                    alphas=np.asarray(self.inputs.alphas),
                    n_folds=self.inputs.n_folds,
                    groups=groups,
                    gap=self.inputs.gap,
                    n_iter=self.inputs.joint_n_iter,
                    seed=self.inputs.joint_seed,
                    solver=self.inputs.joint_solver,
                    backend=self.inputs.backend,
                    device=self.inputs.device,
                    voxel_chunk=self.inputs.voxel_chunk,
                )
        except ValueError as exc:
            raise InputError(
                f"The joint model of {', '.join(self.inputs.spaces)} cannot be cross-validated "
                f"on {len(runs)} run(s) and {Y.shape[0]} scans in all: {exc} Use more runs or "
                "scans, fewer folds (--n-folds) or a smaller --cv-gap."
            ) from None
        out = os.path.join(runtime.cwd, "encoding_joint.npz")
        np.savez(
            out,
            spaces=np.array([s.label for s in spaces]),
            layers=np.array(layers),
            r2=res.r2,
            fold_r2=res.fold_r2,
            r2_without=res.r2_without,
            unique=res.unique,
            shared=res.shared,
            deltas=res.deltas,
            excluded=res.excluded,
            n_samples=Y.shape[0],
        )
        self._results["out_file"] = out
        return runtime
