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
    random_init = traits.Bool(False, usedefault=True, desc="random weights (seeded)")
    seed = traits.Int(0, usedefault=True, desc="seed of the random initialisation")
    allow_download = traits.Bool(False, usedefault=True, desc="let transformers download")
    layers = traits.Str("all", usedefault=True, desc="layer names, ranges or 'all'")
    window_s = traits.Either(None, traits.Float, default=10.0, usedefault=True)
    stride_s = traits.Float(5.0, usedefault=True, desc="window stride (s)")
    cache_dir = traits.Str(mandatory=True, desc="content-addressed feature cache folder")
    num_threads = traits.Int(1, usedefault=True, desc="torch intra-op threads")
    progress = traits.Bool(False, usedefault=True, desc="show a progress bar")


class _ExtractFeaturesOutputSpec(TraitedSpec):
    feature_files = traits.List(traits.Str, desc="one .npz per stimulus, same order")
    layers = traits.List(traits.Str, desc="layer names extracted, along depth")
    layer_indices = traits.List(traits.Int, desc="0-based depth index of each layer")
    model_label = traits.Str(desc="BIDS-safe model label")
    model_info = traits.Dict(desc="model identity recorded in sidecars")


class ExtractFeatures(SimpleInterface):
    """Extract every requested layer's activations for each unique stimulus (cached)."""

    input_spec = _ExtractFeaturesInputSpec
    output_spec = _ExtractFeaturesOutputSpec

    def _run_interface(self, runtime):
        import torch

        from bids_w2v.features import available_layers, layer_index, load_model, parse_layers
        from bids_w2v.features.cache import cached_features_path

        torch.set_num_threads(max(1, self.inputs.num_threads))
        loaded = load_model(
            self.inputs.model,
            random_init=self.inputs.random_init,
            seed=self.inputs.seed,
            allow_download=self.inputs.allow_download,
        )
        available = available_layers(loaded.model)
        layers = parse_layers(self.inputs.layers, available)
        files = []
        cache_dir = Path(self.inputs.cache_dir)
        for stim in self.inputs.stimuli:
            settings = {
                "layers": layers,
                "window_s": self.inputs.window_s,
                "stride_s": self.inputs.stride_s,
            }
            entry = cached_features_path(
                cache_dir, stim, loaded, progress=self.inputs.progress, **settings
            )
            files.append(str(entry))
        self._results["feature_files"] = files
        self._results["layers"] = list(layers)
        self._results["layer_indices"] = [layer_index(name, available) for name in layers]
        self._results["model_label"] = loaded.label
        self._results["model_info"] = {
            "Model": loaded.name,
            "ModelLabel": loaded.label,
            "ModelType": loaded.model_type,
            "RandomInit": loaded.random_init,
            "Seed": loaded.seed if loaded.random_init else None,
            "WeightsSHA256": loaded.weights_sha256,
            "SamplingRate": loaded.sampling_rate,
            "NormalizeAudio": loaded.do_normalize,
        }
        return runtime
