"""``bids-w2v`` entry point: parse, configure, collect inputs, run the Nipype graph."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bids_w2v.errors import BidsW2VError, InputError


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


def build_config(args) -> RunConfig:  # noqa: F821 - imported lazily below
    """Turn parsed arguments into the frozen :class:`~bids_w2v.config.RunConfig`."""
    from bids_w2v.config import (
        CleaningSettings,
        DesignSettings,
        EncodingSettings,
        FeatureSettings,
        ModelSpec,
        RunConfig,
    )
    from bids_w2v.io.bids import parse_space

    space, res = parse_space(args.space)
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
        model=ModelSpec(
            name=args.model,
            random_init=args.random_init,
            seed=args.seed,
            allow_download=args.allow_download,
        ),
        features=FeatureSettings(layers=args.layers, window_s=args.window, stride_s=args.stride),
        design=DesignSettings(hrf_model=args.hrf_model),
        cleaning=CleaningSettings(confounds_strategy=tuple(args.confounds_strategy)),
        encoding=EncodingSettings(
            n_folds=args.n_folds,
            cv=args.cv,
            gap=args.cv_gap,
            inner=args.inner,
            backend=args.encoding_backend,
            device=args.device,
            voxel_chunk=args.voxel_chunk,
        ),
        feature_cache=args.feature_cache.absolute() if args.feature_cache else None,
        nprocs=args.nprocs,
        omp_nthreads=args.omp_nthreads,
        mem_gb=args.mem_gb,
        skip_bids_validation=args.skip_bids_validation,
        verbosity=args.verbose,
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
    from bids_w2v.io.atomic import write_text

    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = config.output_dir / "logs" / f"config-{config.analysis_level}-{stamp}-{os.getpid()}.toml"
    return write_text(path, config_to_toml(config))


def _run_workflow(wf, config) -> None:
    """Run a Nipype graph; turn a node's bids-w2v error into a clean message."""
    from nipype import logging as nipype_logging

    crash_dir = config.work_dir / "crash"
    settings = {
        "execution": {"crashdump_dir": str(crash_dir), "crashfile_format": "txt",
                      "stop_on_first_crash": "true", "remove_unnecessary_outputs": "false",
                      "hash_method": "timestamp"},
        "monitoring": {"enabled": "false"},
    }  # fmt: skip
    for section, values in settings.items():  # the workflow's own copy, no global change
        wf.config.setdefault(section, {}).update(values)
    # node failures are reported below from the crash file; Nipype's own log only with -v
    level = {0: "CRITICAL", 1: "WARNING"}.get(config.verbosity, "INFO")
    for name in ("nipype.workflow", "nipype.interface", "nipype.utils"):
        nipype_logging.getLogger(name).setLevel(level)
    plugin_args = {"n_procs": config.nprocs, "raise_insufficient": False}
    if config.mem_gb:
        plugin_args["memory_gb"] = config.mem_gb
    started = time.time()
    try:
        if config.nprocs > 1:
            wf.run(plugin="MultiProc", plugin_args=plugin_args)
        else:
            wf.run(plugin="Linear")
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
    classes = (errors.AudioError, errors.ModelError, errors.InputError, errors.BidsW2VError)
    for crash in reversed(files):
        text = crash.read_text(errors="replace")
        for cls in classes:
            marker = f"{cls.__name__}: "
            if marker in text:
                return cls(text.rsplit(marker, 1)[1].strip().splitlines()[0])
    return None


def run_participant(config) -> list[Path]:
    """Collect inputs and run the participant-level graph; return the maps written."""
    from bids_w2v.io.atomic import write_text
    from bids_w2v.io.bids import collect_runs, load_layout, select_subjects, select_task
    from bids_w2v.io.derivatives import write_dataset_description
    from bids_w2v.reports.boilerplate import methods_boilerplate
    from bids_w2v.workflows.base import init_bids_w2v_wf

    layout = load_layout(
        config.bids_dir, config.fmriprep_dir, validate=not config.skip_bids_validation
    )
    task = select_task(layout, config.task)
    subjects = select_subjects(layout, config.participant_label)
    subject_runs = {}
    for subject in subjects:
        runs = collect_runs(layout, subject, task, config.space, config.res)
        subject_runs[subject] = runs
    n_runs = sum(len(r) for r in subject_runs.values())
    print(
        f"bids-w2v: {len(subjects)} participant(s), {n_runs} run(s) of task '{task}' in "
        f"{config.space}; model {config.model.name}"
        f"{f' (random init, seed {config.model.seed})' if config.model.random_init else ''}",
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
    _run_workflow(wf, config)
    written = sorted(config.output_dir.glob("sub-*/func/*_statmap.nii.gz"))
    print(f"bids-w2v: participant level done; {len(written)} maps in {config.output_dir}")
    return written


def run_group(config) -> list[Path]:
    """Run the group-level graph on the participant maps found in OUTPUT_DIR."""
    from bids_w2v.io.bids import strip_prefix
    from bids_w2v.io.group import _entity, collect_participant_maps
    from bids_w2v.workflows.group import init_group_wf

    participants = tuple(strip_prefix(p) for p in config.participant_label)
    found = collect_participant_maps(
        config.output_dir, config.task, config.space, config.res, participants
    )
    any_map = next(iter(next(iter(found.values())).values()))[0][1]
    task = config.task or _entity(any_map.name, "task")
    _write_config(config)
    wf = init_group_wf(
        sorted(found),
        output_dir=config.output_dir,
        work_dir=config.work_dir,
        task=task,
        space=config.space,
        res=config.res,
        participants=participants,
    )
    _run_workflow(wf, config)
    written = sorted(config.output_dir.glob("task-*_statmap.nii.gz"))
    print(f"bids-w2v: group level done; {len(written)} maps in {config.output_dir}")
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
    try:
        config = build_config(args)
        check_output_dir(config.bids_dir, config.output_dir, [config.fmriprep_dir])
        if config.analysis_level == "participant":
            run_participant(config)
        else:
            run_group(config)
    except BidsW2VError as exc:
        print(f"bids-w2v: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # unwritable output or work folder, full disk
        where = exc.filename or "the output or work folder"
        print(
            f"bids-w2v: error: could not write {where} ({exc.strerror or exc}). Check that "
            "OUTPUT_DIR and --work-dir are writable and that their disk has free space; "
            "re-running with the same --work-dir resumes where it stopped.",
            file=sys.stderr,
        )
        return 74
    except KeyboardInterrupt:
        print("bids-w2v: interrupted; re-run with the same --work-dir to resume.", file=sys.stderr)
        return 130
    return 0
