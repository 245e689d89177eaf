"""``bids-w2v`` entry point: parse, configure, collect inputs, run the Nipype graph."""

from __future__ import annotations

import getpass
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from bids_w2v.errors import BidsW2VError, InputError, write_error


class _Terminated(BaseException):
    """SIGTERM, raised as an exception so that atomic writers remove their temporary files."""


class StopOnSigterm:
    """Records SIGTERM and stops the Nipype graph cleanly.

    Installed as the SIGTERM handler (:meth:`handler`), it raises :class:`_Terminated` so
    atomic writers remove their temporary files. Nipype turns any exception raised inside a node
    into a node failure and, without ``--stop-on-first-crash``, goes on with the other nodes, so
    the instance is also the plugin's ``status_callback``: it refuses to start another node once
    a SIGTERM was received. It pickles (Nipype pickles each node with its plugin arguments).
    """

    def __init__(self) -> None:
        self.received: list[int] = []

    def handler(self, signum, frame) -> None:
        self.received.append(signum)
        raise _Terminated

    def __call__(self, node, status: str) -> None:
        if status == "start" and self.received:
            raise _Terminated


def _report_terminated() -> int:
    print(
        "bids-w2v: terminated (SIGTERM, e.g. a job time limit); no partial output was "
        "written. Re-run with the same --work-dir to resume where it stopped.",
        file=sys.stderr,
    )
    return 128 + signal.SIGTERM


def _prepare_environment(allow_download: bool) -> None:
    """No telemetry, no network unless asked: set before nipype/transformers are imported."""
    os.environ["NIPYPE_NO_ET"] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if not allow_download:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ.setdefault("TEMPLATEFLOW_AUTOUPDATE", "0")


def _model_specs(args) -> tuple:
    """One ModelSpec per --model value (``NAME:random`` or --random-init: random weights)."""
    from bids_w2v.config import DEFAULT_MODEL, ModelSpec
    from bids_w2v.workflows.base import model_labels

    specs = []
    for value in args.model or [DEFAULT_MODEL]:
        name, random_init = value, args.random_init
        if value.endswith(":random"):
            name, random_init = value[: -len(":random")], True
        specs.append(
            ModelSpec(
                name=name,
                random_init=random_init,
                seed=args.seed,
                allow_download=args.allow_download,
                allow_pickle=args.allow_pickle,
            )
        )
    model_labels(specs)  # two models writing the same maps: an error now, not after hours
    return tuple(specs)


def _encoding_device(device: str, backend: str) -> str:
    """The ridge's device: ``auto`` means a GPU for the torch backend when there is one."""
    if device != "auto":
        return device
    if backend != "torch":
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_config(args) -> RunConfig:  # noqa: F821 - imported lazily below
    """Turn parsed arguments into the frozen :class:`~bids_w2v.config.RunConfig`."""
    from bids_w2v.cli.plugin import load_plugin_file
    from bids_w2v.config import (
        CleaningSettings,
        DesignSettings,
        EncodingSettings,
        FeatureSettings,
        GroupSettings,
        InputSettings,
        RunConfig,
    )
    from bids_w2v.group.roi import resolve_roi_atlas
    from bids_w2v.inputs.layout import parse_space

    space, res = parse_space(args.space)
    cleaning, design = _cleaning_and_design(args)
    plugin, plugin_args = None, {}
    if args.use_plugin is not None:
        plugin, plugin_args = load_plugin_file(args.use_plugin)
    bids_dir = args.bids_dir.absolute()
    derivatives = tuple((name, path.absolute()) for name, path in args.derivatives)
    return RunConfig(
        bids_dir=bids_dir,
        output_dir=args.output_dir.absolute(),
        analysis_level=args.analysis_level,
        work_dir=(args.work_dir or Path("work")).absolute(),
        derivatives=derivatives,
        participant_label=tuple(args.participant_label),
        task=args.task,
        space=space,
        res=res,
        models=_model_specs(args),
        features=FeatureSettings(
            layers=args.layers,
            window_s=args.window,
            stride_s=args.stride,
            batch_size=args.batch_size,
            causal=args.causal,
            dtype=args.dtype,
            device=args.device,
            save_features=args.save_features,
        ),
        design=DesignSettings(**design),
        cleaning=CleaningSettings(**cleaning),
        inputs=InputSettings(
            desc_label=args.desc_label,
            bids_filter_file=_absolute(args.bids_filter_file),
            stimulus_map=_absolute(args.stimulus_map),
            mask=_absolute(args.mask),
            dropped_scans=args.dropped_scans,
        ),
        encoding=EncodingSettings(
            n_folds=args.n_folds,
            cv=args.cv,
            gap=args.cv_gap,
            inner=args.inner,
            alpha_search=args.alpha_search,
            backend=args.encoding_backend,
            device=_encoding_device(args.device, args.encoding_backend),
            voxel_chunk=args.voxel_chunk,
            features_pca=args.features_pca,
        ),
        group=GroupSettings(
            fdr_q=args.fdr_q,
            roi_atlas=(
                resolve_roi_atlas(args.roi_atlas, space=space, res=res)
                if args.roi_atlas and args.analysis_level == "group"
                else None
            ),
            noise_ceiling=args.noise_ceiling,
            reports_only=args.reports_only,
        ),
        feature_cache=args.feature_cache.absolute() if args.feature_cache else None,
        nprocs=args.nprocs,
        omp_nthreads=args.omp_nthreads,
        mem_gb=args.mem_gb,
        plugin=plugin,
        plugin_args=plugin_args,
        write_graph=args.write_graph,
        stop_on_first_crash=args.stop_on_first_crash,
        skip_bids_validation=args.skip_bids_validation,
        verbosity=args.verbose,
    )


def _absolute(path: Path | None) -> Path | None:
    return path.absolute() if path is not None else None


def _cleaning_and_design(args) -> tuple[dict, dict]:
    """Check the cleaning and HRF options; resolve the default confounds strategy."""
    from bids_w2v.bold.confounds import ScanTrim, check_strategy
    from bids_w2v.config import DEFAULT_CONFOUNDS

    if args.confounds_strategy is None:  # already denoised derivatives have no confounds
        strategy = ("none",) if args.desc_label != "preproc" else DEFAULT_CONFOUNDS
    else:
        strategy = check_strategy(args.confounds_strategy)
    if args.hrf_model == "fir" and not args.fir_delays:
        raise InputError(
            "--hrf fir needs --fir-delays: the delays, in scans, of the copies of every "
            "feature (e.g. --fir-delays 1 2 3 4, voxelwise modelling's habit)."
        )
    if args.fir_delays and args.hrf_model != "fir":
        raise InputError(
            f"--fir-delays only applies to --hrf fir (got --hrf {args.hrf_model}); drop it or "
            "use --hrf fir."
        )
    trim = args.trim_scans
    cleaning = {
        "confounds_strategy": strategy,
        "dummy_scans": args.dummy_scans,
        "trim_scans": (trim.start, trim.end) if isinstance(trim, ScanTrim) else (0, 0),
        "trim_scans_file": trim.absolute() if isinstance(trim, Path) else None,
        "high_pass": args.high_pass,
    }
    design = {"hrf_model": args.hrf_model, "fir_delays": tuple(args.fir_delays or ())}
    return cleaning, design


def _collect_options(config):
    """The input options of :func:`bids_w2v.inputs.layout.collect_runs`, files read and checked."""
    from bids_w2v.inputs.filters import CollectOptions, read_filter_file
    from bids_w2v.inputs.stimulus_map import read_stimulus_map

    inputs = config.inputs
    if inputs.mask is not None and not inputs.mask.is_file():
        raise InputError(f"The --mask file {inputs.mask} does not exist. Fix the path.")
    return CollectOptions(
        desc=inputs.desc_label,
        filters=read_filter_file(inputs.bids_filter_file) if inputs.bids_filter_file else None,
        stimulus_map=read_stimulus_map(inputs.stimulus_map) if inputs.stimulus_map else None,
        stimulus_map_file=inputs.stimulus_map,
        dropped_scans=inputs.dropped_scans,
        need_confounds=config.cleaning.confounds_strategy != ("none",),
        mask=inputs.mask,
    )


def check_output_dir(bids_dir: Path, output_dir: Path, derivatives: Sequence[Path] = ()) -> None:
    """Refuse an output folder that would write into an input dataset.

    OUTPUT_DIR may not be, contain or lie inside the raw dataset (except under its
    ``derivatives/``), nor be, contain or lie inside an input derivatives folder (fMRIPrep's).
    """
    bids, out = bids_dir.resolve(), output_dir.resolve()
    if out == bids or out in bids.parents or out == bids / "derivatives":
        raise InputError(
            f"OUTPUT_DIR {output_dir} is the BIDS dataset {bids_dir}, its derivatives/ folder or "
            "one of their parents; bids-w2v never writes into its inputs. Use e.g. "
            "BIDS_DIR/derivatives/bids-w2v."
        )
    if bids in out.parents and (bids / "derivatives") not in out.parents:
        raise InputError(
            f"OUTPUT_DIR {output_dir} is inside the raw dataset {bids_dir} but not under its "
            "derivatives/ folder; use BIDS_DIR/derivatives/bids-w2v or a folder elsewhere."
        )
    for deriv in derivatives:
        deriv = Path(deriv).resolve()
        if out == deriv or out in deriv.parents or deriv in out.parents:
            raise InputError(
                f"OUTPUT_DIR {output_dir} overlaps the input derivatives {deriv}; bids-w2v "
                "never writes into its inputs. Use a folder of its own, e.g. "
                "BIDS_DIR/derivatives/bids-w2v."
            )


def _write_config(config) -> Path:
    from bids_w2v.config import config_to_toml
    from bids_w2v.outputs.atomic import write_text

    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = config.output_dir / "logs" / f"config-{config.analysis_level}-{stamp}-{os.getpid()}.toml"
    return write_text(path, config_to_toml(config))


def _run_workflow(wf, config, stop: StopOnSigterm | None = None) -> None:
    """Run a Nipype graph; turn a node's bids-w2v error into a clean message."""
    from nipype import logging as nipype_logging

    from bids_w2v.cli.plugin import add_sbatch_resources, plugin_settings, write_workflow_graph

    crash_dir = config.work_dir / "crash"
    settings = {
        "execution": {"crashdump_dir": str(crash_dir), "crashfile_format": "txt",
                      "stop_on_first_crash": str(config.stop_on_first_crash).lower(),
                      "remove_unnecessary_outputs": "false",
                      "hash_method": "timestamp"},
        "monitoring": {"enabled": "false"},
    }  # fmt: skip
    for section, values in settings.items():  # the workflow's own copy, no global change
        wf.config.setdefault(section, {}).update(values)
    # node failures are reported below from the crash file; Nipype's own log only with -v
    level = {0: "CRITICAL", 1: "WARNING"}.get(config.verbosity, "INFO")
    for name in ("nipype.workflow", "nipype.interface", "nipype.utils"):
        nipype_logging.getLogger(name).setLevel(level)
    plugin, plugin_args = plugin_settings(
        config.plugin, config.plugin_args, nprocs=config.nprocs, mem_gb=config.mem_gb
    )
    if plugin == "SLURM":  # each node asks for the memory and CPUs it declares
        add_sbatch_resources(wf)
    if plugin not in ("Linear", "MultiProc", "LegacyMultiProc"):  # batch plugins name jobs
        os.environ.setdefault("LOGNAME", getpass.getuser())  # with $LOGNAME
    if config.write_graph:
        for path in write_workflow_graph(wf):
            print(f"bids-w2v: workflow graph written to {path}", flush=True)
    if stop is not None and not plugin.endswith("Graph"):
        plugin_args = {"status_callback": stop, **plugin_args}
    started = time.time()
    try:
        wf.run(plugin=plugin, plugin_args=plugin_args)
    except Exception as exc:  # nipype wraps node failures in RuntimeError
        error = _node_error(crash_dir, started)
        if error:
            raise error from None
        raise BidsW2VError(
            f"The workflow failed ({exc}). Crash reports are in {crash_dir}; re-run with -vv "
            "for Nipype's logs. Re-running with the same --work-dir resumes where it stopped."
        ) from None


def _node_error(crash_dir: Path, since: float) -> BidsW2VError | None:
    """The bids-w2v error recorded in the newest crash file of this run, if any."""
    from bids_w2v import errors

    if not crash_dir.is_dir():
        return None
    files = sorted(
        (p for p in crash_dir.glob("crash-*") if p.stat().st_mtime >= since - 1),
        key=lambda p: p.stat().st_mtime,
    )
    classes = (
        errors.AudioError,
        errors.ModelError,
        errors.InputError,
        errors.OutputError,
        errors.BidsW2VError,
    )
    os_error = re.compile(r"(?:OSError|PermissionError): \[Errno \d+\] ([^:\n]+)(?:: '([^'\n]+)')?")
    for crash in reversed(files):
        text = crash.read_text(errors="replace")
        for cls in classes:
            marker = f"{cls.__name__}: "
            if marker in text:
                return cls(text.rsplit(marker, 1)[1].strip().splitlines()[0])
        found = os_error.findall(text)
        if found:  # a node could not write (full disk, permissions): the CLI's write message
            reason, filename = found[-1]
            return errors.write_error(filename or None, reason)
    return None


def run_participant(config, stop: StopOnSigterm | None = None) -> list[Path]:
    """Collect inputs and run the participant-level graph; return the maps written.

    ``stop`` (the SIGTERM handler) is asked before every node starts.
    """
    from bids_w2v.inputs.layout import collect_runs, load_layout, select_subjects, select_task
    from bids_w2v.outputs.atomic import write_text
    from bids_w2v.outputs.names import write_dataset_description
    from bids_w2v.reports.boilerplate import methods_boilerplate
    from bids_w2v.workflows.base import init_bids_w2v_wf

    layout = load_layout(
        config.bids_dir, config.fmriprep_dir, validate=not config.skip_bids_validation
    )
    task = select_task(layout, config.task)
    options = _collect_options(config)
    subjects = select_subjects(layout, config.participant_label)
    subject_runs = {}
    for subject in subjects:
        runs = collect_runs(layout, subject, task, config.space, config.res, options)
        subject_runs[subject] = runs
    n_runs = sum(len(r) for r in subject_runs.values())
    print(
        f"bids-w2v: {len(subjects)} participant(s), {n_runs} run(s) of task '{task}' in "
        f"{config.space}; model(s) "
        + ", ".join(
            f"{m.name}{f' (random init, seed {m.seed})' if m.random_init else ''}"
            for m in config.models
        ),
        flush=True,
    )
    config.output_dir.mkdir(parents=True, exist_ok=True)
    write_dataset_description(config.output_dir, [str(config.bids_dir), str(config.fmriprep_dir)])
    _write_config(config)
    write_text(
        config.output_dir / "logs" / "CITATION.md",
        methods_boilerplate(config, n_subjects=len(subjects), n_runs=n_runs, task=task),
    )
    wf = init_bids_w2v_wf(subject_runs, config)
    _run_workflow(wf, config, stop)
    written = sorted(  # NIfTI, GIfTI (.func.gii) or CIFTI (.dscalar.nii) maps
        p for p in config.output_dir.glob("sub-*/func/*_statmap.*") if p.suffix != ".json"
    )
    print(f"bids-w2v: participant level done; {len(written)} maps in {config.output_dir}")
    return written


def run_group(config, stop: StopOnSigterm | None = None) -> list[Path]:
    """Run the group-level graph on the participant maps found in OUTPUT_DIR.

    With ``--reports-only``, only the HTML reports are regenerated from the existing outputs.
    """
    from bids_w2v.group.collection import _entity, collect_participant_maps, model_order
    from bids_w2v.inputs.layout import strip_prefix
    from bids_w2v.reports.group import regenerate_reports
    from bids_w2v.workflows.group import init_group_wf

    participants = tuple(strip_prefix(p) for p in config.participant_label)
    found = collect_participant_maps(
        config.output_dir, config.task, config.space, config.res, participants
    )
    any_map = next(iter(next(iter(found.values())).values()))[0][1]
    task = config.task or _entity(any_map.name, "task")
    settings = config.group
    if settings.reports_only:
        reports = regenerate_reports(
            config.output_dir, task=task, space=config.space, res=config.res
        )
        print(f"bids-w2v: {len(reports)} report(s) regenerated in {config.output_dir}")
        return reports
    _write_config(config)
    wf = init_group_wf(
        model_order(found),
        output_dir=config.output_dir,
        work_dir=config.work_dir,
        task=task,
        space=config.space,
        res=config.res,
        participants=participants,
        fdr_q=settings.fdr_q,
        roi_atlas=settings.roi_atlas,
        noise_ceiling=settings.noise_ceiling,
        bids_dir=config.bids_dir,
        fmriprep_dir=config.fmriprep_dir,
        desc_label=config.inputs.desc_label,
        bids_filter_file=config.inputs.bids_filter_file,
        stimulus_map=config.inputs.stimulus_map,
        dropped_scans=config.inputs.dropped_scans,
        mask=config.inputs.mask,
    )
    _run_workflow(wf, config, stop)
    written = sorted(  # NIfTI, GIfTI (.func.gii per hemisphere) or CIFTI (.dscalar.nii)
        p for p in config.output_dir.glob("task-*_statmap.*") if p.suffix != ".json"
    )
    print(
        f"bids-w2v: group level done; {len(written)} maps and the report "
        f"{config.output_dir / 'group.html'}"
    )
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bids-w2v``; return the exit code (0 on success).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, non-zero with a one-paragraph message on stderr otherwise.
    """
    from bids_w2v.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    _prepare_environment(args.allow_download)
    previous_handler, stop = None, StopOnSigterm()
    if threading.current_thread() is threading.main_thread():
        previous_handler = signal.signal(signal.SIGTERM, stop.handler)
    try:
        config = build_config(args)
        check_output_dir(config.bids_dir, config.output_dir, [config.fmriprep_dir])
        from bids_w2v.cli.workdir import private_tmpdir

        with private_tmpdir(config.work_dir):
            run = run_participant if config.analysis_level == "participant" else run_group
            run(config, stop=stop)
    except BidsW2VError as exc:
        if stop.received:
            return _report_terminated()
        print(f"bids-w2v: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # unwritable output or work folder, full disk
        error = write_error(exc.filename, exc.strerror or str(exc))
        print(f"bids-w2v: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("bids-w2v: interrupted; re-run with the same --work-dir to resume.", file=sys.stderr)
        return 130
    except _Terminated:
        return _report_terminated()
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
    return 0
