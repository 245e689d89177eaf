"""``bids-w2v`` entry point: parse, configure, collect inputs, run the Nipype graph."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from bids_w2v.errors import BidsW2VError, write_error


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


def prepare_environment(allow_download: bool) -> None:
    """No telemetry, no network unless asked: set before nipype/transformers are imported."""
    os.environ["NIPYPE_NO_ET"] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if not allow_download:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ.setdefault("TEMPLATEFLOW_AUTOUPDATE", "0")


def _write_config(config) -> Path:
    from bids_w2v.outputs.atomic import write_text
    from bids_w2v.outputs.record import config_to_toml

    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = config.output_dir / "logs" / f"config-{config.analysis_level}-{stamp}-{os.getpid()}.toml"
    return write_text(path, config_to_toml(config))


def _check_features_dirs(config, subject_runs) -> None:
    """Every --features-dir space covers every stimulus: checked before any node runs."""
    from bids_w2v.features.precomputed import check_precomputed
    from bids_w2v.workflows.base import unique_stimuli

    for model in config.models:
        if model.features_dir is not None:
            stimuli = unique_stimuli(subject_runs)
            check_precomputed(model.features_dir, model.name, stimuli, config.bids_dir / "stimuli")


def run_participant(config, stop: StopOnSigterm | None = None) -> list[Path]:
    """Collect inputs and run the participant-level graph; return the maps written.

    ``stop`` (the SIGTERM handler) is asked before every node starts.
    """
    from bids_w2v.cli.execution import run_workflow
    from bids_w2v.features.scan_timing import describe_slice_time_refs, slice_time_refs
    from bids_w2v.inputs.filters import collect_options
    from bids_w2v.inputs.layout import (
        collect_participants,
        load_layout,
        plan_tasks,
        select_subjects,
    )
    from bids_w2v.inputs.timing import tr_notes
    from bids_w2v.outputs.atomic import write_text
    from bids_w2v.outputs.names import write_dataset_description
    from bids_w2v.reports.boilerplate import methods_boilerplate
    from bids_w2v.workflows.base import init_bids_w2v_wf

    layout = load_layout(
        config.bids_dir, config.fmriprep_dir, validate=not config.skip_bids_validation
    )
    options = collect_options(config.inputs, config.cleaning)
    subjects = select_subjects(layout, config.participant_label)
    # every audio task (story) a participant heard, fitted jointly (inputs/tasks.py)
    plan = plan_tasks(layout, subjects, config.space, config.res, config.task, options)
    for note in plan.notes:
        print(note, flush=True)
    task = ", ".join(plan.tasks)
    # one pre-flight check of every file of every run, then the headers (inputs/preflight.py)
    subject_runs = collect_participants(
        layout, subjects, plan.subjects, config.space, config.res, options
    )
    n_runs = sum(len(r) for r in subject_runs.values())
    _check_features_dirs(config, subject_runs)
    print(
        f"bids-w2v: {len(subjects)} participant(s), {n_runs} run(s) of task(s) '{task}' in "
        f"{config.space}; model(s) "
        + ", ".join(
            f"{m.name}{f' (random init, seed {m.seed})' if m.random_init else ''}"
            for m in config.models
        ),
        flush=True,
    )
    all_runs = [run for runs in subject_runs.values() for run in runs]
    refs = slice_time_refs(config.design.slice_time_ref, all_runs)
    for line in [*describe_slice_time_refs(refs), *tr_notes(all_runs)]:
        print(f"bids-w2v: {line}", flush=True)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    write_dataset_description(config.output_dir, [str(config.bids_dir), str(config.fmriprep_dir)])
    _write_config(config)
    write_text(
        config.output_dir / "logs" / "CITATION.md",
        methods_boilerplate(
            config, n_subjects=len(subjects), n_runs=n_runs, task=task, slice_time_refs=refs
        ),
    )
    wf = init_bids_w2v_wf(subject_runs, config)
    run_workflow(wf, config, stop)
    written = sorted(  # NIfTI, GIfTI (.func.gii) or CIFTI (.dscalar.nii) maps
        p for p in config.output_dir.glob("sub-*/func/*_statmap.*") if p.suffix != ".json"
    )
    print(f"bids-w2v: participant level done; {len(written)} maps in {config.output_dir}")
    return written


def _note_left_out(config, found, participants: tuple[str, ...]) -> None:
    """Say which participants have maps in the space but none whose tasks are all among
    ``--task`` (the group level leaves them out)."""
    from bids_w2v.group.collection import entity, participant_tasks

    if not config.task:
        return
    sidecars = config.output_dir.glob("sub-*/func/sub-*_stat-r_statmap.json")
    everyone = {
        entity(p.name, "sub") for p in sidecars
        if (entity(p.name, "space"), entity(p.name, "res")) == (config.space, config.res)
    }  # fmt: skip
    left = sorted(everyone - set(participant_tasks(found)) - {None})
    left = [s for s in left if not participants or s in participants]
    if left:
        print(
            f"bids-w2v: sub-{', sub-'.join(left)} left out of the group level: no map whose "
            f"tasks are all among --task {' '.join(config.task)}",
            flush=True,
        )


def run_group(config, stop: StopOnSigterm | None = None) -> list[Path]:
    """Run the group-level graph on the participant maps found in OUTPUT_DIR.

    With ``--reports-only``, only the HTML reports are regenerated from the existing outputs.
    """
    from bids_w2v.cli.execution import run_workflow
    from bids_w2v.group.collection import (
        collect_participant_maps,
        entity,
        group_tasks,
        model_order,
    )
    from bids_w2v.inputs.layout import strip_prefix
    from bids_w2v.outputs.names import task_label
    from bids_w2v.outputs.record import recorded_config
    from bids_w2v.reports.group import regenerate_reports
    from bids_w2v.workflows.group import init_group_wf

    participants = tuple(strip_prefix(p) for p in config.participant_label)
    found = collect_participant_maps(
        config.output_dir, config.task, config.space, config.res, participants
    )
    _note_left_out(config, found, participants)
    # participants who heard different stories are combined: the group outputs are named
    # after all of them; each participant's own maps keep their label
    task = task_label(group_tasks(found))
    if config.group.reports_only:
        labels = {
            s: entity(p.name, "task") for layers in found.values() for maps in layers.values()
            for s, p, _ in maps
        }  # fmt: skip
        reports = regenerate_reports(
            config.output_dir, task=task, space=config.space, res=config.res, labels=labels
        )
        print(f"bids-w2v: {len(reports)} report(s) regenerated in {config.output_dir}")
        return reports
    _write_config(config)
    participant = recorded_config(
        config.output_dir, "participant", space=config.space, res=config.res
    )
    if participant is None:  # outputs of bids-w2v < 0.2: this invocation's options
        print(
            f"bids-w2v: no participant configuration recorded in {config.output_dir}/logs; the "
            "noise ceiling uses this command's input and cleaning options",
            flush=True,
        )
        participant = config
    # the data as this command sees it (a container may mount it elsewhere than the
    # participant jobs did); the analysis settings as the participant level used them
    participant = dataclasses.replace(
        participant,
        bids_dir=config.bids_dir,
        derivatives=config.derivatives or participant.derivatives,
    )
    wf = init_group_wf(
        model_order(found),
        output_dir=config.output_dir,
        work_dir=config.work_dir,
        task=task,
        space=config.space,
        res=config.res,
        participants=participants,
        tasks=config.task,
        group=config.group,
        participant=participant,
    )
    run_workflow(wf, config, stop)
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
    from bids_w2v.cli.build import build_config, check_output_dir
    from bids_w2v.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    prepare_environment(args.allow_download)
    previous_handler, stop, quiet = None, StopOnSigterm(), None
    if threading.current_thread() is threading.main_thread():
        previous_handler = signal.signal(signal.SIGTERM, stop.handler)
    try:
        config = build_config(args)
        check_output_dir(config.bids_dir, config.output_dir, [config.fmriprep_dir])
        from bids_w2v.cli.workdir import private_tmpdir

        quiet = open(os.devnull, "w") if config.verbosity < 0 else None  # -q: errors only
        with private_tmpdir(config.work_dir), contextlib.redirect_stdout(quiet or sys.stdout):
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
        if quiet is not None:
            quiet.close()
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
    return 0
