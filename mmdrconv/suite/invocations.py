"""Which invocation of a suite measured what.

A suite's results are often made by several invocations of the same
command: the first trains most cells, a later one resumes an interrupted
cell, another trains nothing and only rewrites the report. Every cell result
and profile records the invocation that produced it (``invocation``: when it
started), and ``results.json`` keeps, in ``timing``, every invocation that
produced a current result, with its command and wall time. So a rerun that
trains nothing leaves the run's wall time as it was, and the report says
which invocation measured which time. An invocation stopped by Ctrl-C or
SIGTERM writes no report, so it appends its record to
:data:`INTERRUPTED_FILE` in the suite's work dir: the cells it finished are
reused later, and the run's wall time must count the time it took.
"""
import collections
import os.path as osp
from typing import Dict, List, Optional

from ..fileio import dump_json_atomically, load_json

INTERRUPTED_FILE = 'interrupted_invocations.json'


def invocation_record(started: str, command: str, wall_time_s: float,
                      cells_run: int, profiles_run: int) -> dict:
    return dict(started=started, command=command, wall_time_s=wall_time_s,
                cells_run=cells_run, profiles_run=profiles_run)


def record_interrupted(work_dir: str, record: dict) -> None:
    """Append the record of an interrupted invocation to the work dir's
    :data:`INTERRUPTED_FILE`."""
    path = osp.join(work_dir, INTERRUPTED_FILE)
    records = load_json(path, list) or []
    dump_json_atomically(records + [dict(record, interrupted=True)], path,
                         indent=1)


def interrupted_invocations(work_dir: str) -> List[dict]:
    """The records :func:`record_interrupted` kept, oldest first."""
    return load_json(osp.join(work_dir, INTERRUPTED_FILE), list) or []


def timing(previous: Optional[dict], results: List[dict],
           profiles: Dict, this: dict,
           interrupted: List[dict] = ()) -> dict:
    """The times of the current results: ``previous`` (the earlier
    ``results.json``, or None), the cells' ``results`` and ``profiles`` as
    reported now, ``this`` (:func:`invocation_record`) the invocation now,
    ``interrupted`` the invocations stopped since (they wrote no report).

    ``invocations``: the invocations that produced a current result (a
    cell's that is ok, a profile; ``produced``: how many), oldest first;
    ``run_wall_time_s``: their wall times added up; ``cells_wall_time_s``:
    the cells' own wall times, each measured by the invocation that ran the
    cell."""
    produced = collections.Counter(
        [r.get('invocation') for r in results
         if r is not None and r.get('status') == 'ok'] +
        [p.get('invocation') for p in profiles.values() if 'error' not in p])
    history = ((previous or {}).get('timing') or {}).get('invocations')
    if history is None and (previous or {}).get('wall_time_s') is not None:
        # Written before invocations were recorded: its results carry no
        # stamp (None), and its wall time is the last invocation's.
        history = [invocation_record(None, previous.get('command'),
                                     previous['wall_time_s'], None, None)]
    known = {r['started'] for r in history or ()}
    history = list(history or ()) + sorted(
        (r for r in interrupted if r['started'] not in known),
        key=lambda r: r['started'])
    invocations = [dict(record, produced=produced[record['started']])
                   for record in history
                   if record['started'] != this['started']
                   and produced[record['started']]]
    if produced[this['started']]:
        invocations.append(dict(this, produced=produced[this['started']]))
    return dict(
        this_invocation=this, invocations=invocations,
        run_wall_time_s=sum(r['wall_time_s'] for r in invocations),
        cells_wall_time_s=sum(r.get('wall_time_s') or 0 for r in results
                              if r is not None))


def timing_lines(timing: dict) -> List[str]:
    """The report's lines on the times of ``timing``."""
    this = timing['this_invocation']
    lines = [f"- this invocation: started {this['started']}, took "
             f"{this['wall_time_s'] / 60:.1f} min, ran {this['cells_run']} "
             f"cell(s) and {this['profiles_run']} profile(s)"]
    for record in timing['invocations']:
        started = record['started'] or 'an earlier invocation (its start ' \
            'not recorded)'
        if record.get('interrupted'):
            started += ' (interrupted)'
        lines.append(f"- results from {started}: "
                     f"{record['wall_time_s'] / 60:.1f} min, "
                     f"{record['produced']} cell result(s) and profile(s), "
                     f"command `{record['command']}`")
    lines.append(
        f"- the run: {timing['run_wall_time_s'] / 60:.1f} min over "
        f"{len(timing['invocations'])} invocation(s); the cells (train + "
        f"eval) took {timing['cells_wall_time_s'] / 60:.1f} min in all, "
        'each measured by the invocation that ran it (finished cells are '
        'not re-run)')
    return lines
