"""`autograder <verb>`: thin argparse commands over functions the tests call directly.

Students have `check` and `data`; the other verbs need the grader's part of
the package (`autograder/grader/`), which the student kit leaves out.
"""

import argparse
import logging
import sys
import warnings
from pathlib import Path

from . import UserError
from .datasets import download
from .run import kit
from .run.record import terminal_text

DATASETS = ("mnist", "fashion-mnist", "imdb")
GRADER_VERBS = ("release", "publish", "grade", "grade-all", "drawings", "feedback", "demo", "export-otter", "lab", "hub")


def data_fetch(datasets=(), mirror=None, out=print):
    from .datasets import imdb

    unknown = [name for name in datasets if name not in DATASETS]
    if unknown:
        raise UserError(f"unknown dataset {unknown[0]!r}; choose from {', '.join(DATASETS)}.")
    for name in datasets or DATASETS:
        paths = download.fetch(name, mirror)
        if name == "imdb":
            imdb.get_word_index()  # builds the encoded cache once, here
            if kit.is_full_package():  # a grading host: what the grader reads beyond the datasets too
                from .grader.cli import prepare_grading_data

                prepare_grading_data()
        out(f"{name}: {len(paths)} file(s) verified in {paths[0].parent}")


def data_verify(out=print):
    """One line per dataset; returns the number of datasets with a problem."""
    problems = 0
    for name in DATASETS:
        problem = download.verify(name)
        problems += problem is not None
        out(f"{name}: {'verified' if problem is None else problem}")
    return problems


def data_info(out=print):
    mirror = download.mirror_dir()
    out(f"cache:    {download.data_dir()}")
    out(f"mirror:   {mirror or '(none; AUTOGRADER_DATA_MIRROR is unset)'}")
    out(f"manifest: {download.MANIFEST_PATH}")
    for name, entry in download.manifest().items():
        out(f"\n{name} ({entry['licence']})")
        for fname, meta in entry["files"].items():
            path = download.cached_path(name, fname)
            size = f"{path.stat().st_size / 2**20:.1f} MiB" if path.is_file() else "not cached"
            out(f"  {fname:28s} {size:>12s}  {meta['url']}")


def _parser():
    parser = argparse.ArgumentParser(prog="autograder", description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    data = verbs.add_parser("data", help="fetch, verify and describe the datasets")
    data_verbs = data.add_subparsers(dest="data_verb", required=True, metavar="ACTION")
    fetch = data_verbs.add_parser("fetch", help="download or copy from a mirror, then verify")
    fetch.add_argument("datasets", nargs="*", metavar="DATASET",
                       help=f"any of {', '.join(DATASETS)} (default: all)")
    fetch.add_argument("--mirror", metavar="DIR",
                       help="local mirror holding <dataset>/<file> (default: $AUTOGRADER_DATA_MIRROR)")
    data_verbs.add_parser("verify", help="check every cached file against the manifest")
    data_verbs.add_parser("info", help="where the data is, where it comes from")

    check = verbs.add_parser("check", help="student: run a notebook's visible tests in a fresh kernel")
    check.add_argument("notebook", type=Path)
    check.add_argument("--verbose", action="store_true", help="show the kernel's and the frameworks' log lines")

    if kit.is_full_package():
        from .grader.cli import add_grader_verbs

        add_grader_verbs(verbs)
    return parser


def _dispatch(args):
    if args.verb == "data":
        if args.data_verb == "fetch":
            data_fetch(args.datasets, args.mirror)
        elif args.data_verb == "verify":
            return 1 if data_verify() else 0
        else:
            data_info()
        return 0
    if args.verb == "check":
        from .run.jail import jail_problem
        from .visible_tests import check_notebook, format_check

        if jail_problem():
            print("autograder: no sandbox here (bubblewrap is not available); the notebook runs as it "
                  "would in Jupyter.", file=sys.stderr)
        report = check_notebook(args.notebook, verbose=args.verbose)
        print(format_check(report))
        return 0 if report["score"] == report["max_score"] and not report["fault"] else 1
    from .grader.cli import dispatch

    return dispatch(args)


def _quiet(verbose):
    """Library chatter off unless --verbose: nbgrader's INFO log, Python warnings."""
    if getattr(verbose, "verbose", False):
        return
    warnings.filterwarnings("ignore")
    logging.getLogger().setLevel(logging.ERROR)
    # nbgrader logs through traitlets, CRITICAL included for an exchange folder we never use.
    for name in ("traitlets", "nbgrader", "distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def run(argv=None):
    """Run a command; return its exit status. Errors the user can fix are one sentence."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in GRADER_VERBS and not kit.is_full_package():
        print(f"autograder: `{argv[0]}` is for instructors; this is the student kit, which can "
              "`check` notebooks and fetch `data`.", file=sys.stderr)
        return 2
    args = _parser().parse_args(argv)
    _quiet(args)
    try:
        return _dispatch(args)
    except (UserError, download.DatasetError) as e:
        print(f"autograder: {terminal_text(e)}", file=sys.stderr)
        return getattr(e, "exit_status", 2)


def main():
    # TensorFlow's C++ logging writes to stderr, and nbgrader scores a test cell with any
    # stderr output as 0: quiet in this command's own process (kernels get it from the config).
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(run())
