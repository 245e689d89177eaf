"""Nipype interface around feature extraction (thin: the science is in bids_w2v.features)."""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    SimpleInterface,
    TraitedSpec,
    traits,
)


class _ExtractFeaturesInputSpec(BaseInterfaceInputSpec):
    stimuli = traits.List(traits.Str, mandatory=True, desc="audio files, one entry each")
    model = traits.Str(mandatory=True, desc="Hugging Face id or save_pretrained folder")
    # settings of bids_w2v.config.ModelSpec and FeatureSettings: no defaults here
    random_init = traits.Bool(mandatory=True, desc="random weights (seeded)")
    seed = traits.Int(mandatory=True, desc="seed of the random initialisation")
    allow_download = traits.Bool(mandatory=True, desc="let transformers download")
    allow_pickle = traits.Bool(mandatory=True, desc="accept pickle weights (weights-only)")
    features_dir = traits.Either(
        None, traits.Str, mandatory=True, desc="precomputed features (--features-dir), or None"
    )
    layers = traits.Str(mandatory=True, desc="layer names, ranges or 'all'")
    window_s = traits.Either(None, traits.Float, mandatory=True, desc="window (s); None: whole")
    stride_s = traits.Float(mandatory=True, desc="window stride (s)")
    causal = traits.Bool(mandatory=True, desc="each frame sees only the past")
    batch_size = traits.Int(mandatory=True, desc="windows per forward pass")
    device = traits.Str(mandatory=True, desc="cpu, cuda or cuda:N")
    dtype = traits.Enum("float32", "bfloat16", "float16", mandatory=True, desc="precision")
    cache_dir = traits.Str(mandatory=True, desc="content-addressed feature cache folder")
    num_threads = traits.Int(mandatory=True, desc="torch intra-op threads")
    progress = traits.Bool(
        False, usedefault=True, desc="tqdm bar outside bids-w2v (its progress folder otherwise)"
    )
    save_dir = traits.Str("", usedefault=True, desc="derivative root for --save-features")
    stimuli_dir = traits.Str("", usedefault=True, desc="raw stimuli/ folder (derivative names)")


class _ExtractFeaturesOutputSpec(TraitedSpec):
    feature_files = traits.List(traits.Str, desc="one cache entry folder per stimulus, in order")
    layers = traits.List(traits.Str, desc="layer names extracted, along depth")
    layer_indices = traits.List(traits.Int, desc="0-based depth index of each layer")
    model_label = traits.Str(desc="BIDS-safe model label")
    model_info = traits.Dict(desc="model identity recorded in sidecars")
    derivative_files = traits.List(traits.Str, desc="features written with --save-features")


class ExtractFeatures(SimpleInterface):
    """Extract every requested layer's activations for each unique stimulus (cached)."""

    input_spec = _ExtractFeaturesInputSpec
    output_spec = _ExtractFeaturesOutputSpec

    def _run_interface(self, runtime):
        import os

        import numpy as np
        import torch

        from bids_w2v.features import available_layers, layer_index, load_model, parse_layers
        from bids_w2v.features.cache import cached_features_path
        from bids_w2v.features.export import export_features
        from bids_w2v.heap import retained_heap
        from bids_w2v.inputs.audio import audio_duration
        from bids_w2v.progress import Progress

        if self.inputs.features_dir:  # precomputed: validated and copied, nothing extracted
            from bids_w2v.features.precomputed import precomputed_entries

            entries, layers, indices, info = precomputed_entries(
                self.inputs.features_dir,
                self.inputs.model,
                self.inputs.stimuli,
                self.inputs.stimuli_dir or os.path.dirname(self.inputs.stimuli[0]),
                self.inputs.cache_dir,
            )
            self._results.update(
                feature_files=[str(e) for e in entries],
                layers=layers,
                layer_indices=indices,
                model_label=info["ModelLabel"],
                model_info=info,
                derivative_files=[],
            )
            return runtime
        torch.set_num_threads(max(1, self.inputs.num_threads))
        loaded = load_model(
            self.inputs.model,
            random_init=self.inputs.random_init,
            seed=self.inputs.seed,
            allow_download=self.inputs.allow_download,
            allow_pickle=self.inputs.allow_pickle,
            device=self.inputs.device,
            dtype=self.inputs.dtype,
        )
        available = available_layers(loaded)
        # --layers selects among a speech model's layers; a baseline always has its one layer
        layers = available if loaded.model_type in ("mel", "envelope") else None
        layers = layers or parse_layers(self.inputs.layers, available)
        indices = [layer_index(name, available) for name in layers]
        settings = {
            "layers": layers,
            "window_s": self.inputs.window_s,
            "stride_s": self.inputs.stride_s,
            "causal": self.inputs.causal,
            "batch_size": self.inputs.batch_size,
            "progress": self.inputs.progress,
        }
        info = {
            "Model": loaded.name,
            "ModelLabel": loaded.label,
            "ModelType": loaded.model_type,
            "RandomInit": loaded.random_init,
            "Seed": loaded.seed if loaded.random_init else None,
            "WeightsSHA256": loaded.weights_sha256,
            "SamplingRate": loaded.sampling_rate,
            "NormalizeAudio": loaded.do_normalize,
            "ExtractionDtype": loaded.dtype,
            "Causal": bool(self.inputs.causal),
        }
        entries, exported = [], []
        # one bar for the node, in seconds of audio (cache hits count as done at once)
        durations = [audio_duration(stim) for stim in self.inputs.stimuli]
        bar = Progress(
            sum(durations), f"extract {loaded.label}", "s audio", enabled=self.inputs.progress
        )
        starts = np.cumsum([0.0, *durations])
        with bar, retained_heap():  # batch after batch reuses the last one's pages
            for i, stim in enumerate(self.inputs.stimuli):
                settings["progress"] = bar.offset(starts[i])
                cache = Path(self.inputs.cache_dir)
                entries.append(cached_features_path(cache, stim, loaded, **settings))
                bar.advance_to(starts[i + 1])
        for stim, entry in zip(self.inputs.stimuli, entries, strict=True):
            if self.inputs.save_dir:
                rel = os.path.relpath(stim, self.inputs.stimuli_dir or os.path.dirname(stim))
                if rel.startswith(".."):  # a stimulus outside stimuli/ (--stimulus-map)
                    rel = os.path.basename(stim)
                meta = {
                    **info,
                    "WindowSeconds": self.inputs.window_s,
                    "StrideSeconds": self.inputs.stride_s,
                }
                exported += export_features(
                    entry,
                    self.inputs.save_dir,
                    rel,
                    model_label=loaded.label,
                    layers=layers,
                    layer_indices=indices,
                    metadata=meta,
                )
        self._results["feature_files"] = [str(entry) for entry in entries]
        self._results["layers"] = list(layers)
        self._results["layer_indices"] = indices
        self._results["model_label"] = loaded.label
        self._results["model_info"] = info
        self._results["derivative_files"] = [str(f) for f in exported]
        return runtime
