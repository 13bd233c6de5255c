"""`autograder <verb>`: thin argparse commands over functions the tests call directly."""

import argparse
import sys
from pathlib import Path

from .course import PROJECT_ROOT, UserError, course_settings
from .datasets import download

DATASETS = ("mnist", "fashion-mnist", "imdb")


def data_fetch(datasets=(), mirror=None, out=print):
    from .datasets import imdb

    unknown = [name for name in datasets if name not in DATASETS]
    if unknown:
        raise UserError(f"unknown dataset {unknown[0]!r}; choose from {', '.join(DATASETS)}.")
    for name in datasets or DATASETS:
        paths = download.fetch(name, mirror)
        if name == "imdb":
            imdb.get_word_index()  # builds the encoded cache once, here
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
    parser = argparse.ArgumentParser(prog="autograder", description=__doc__)
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

    release = verbs.add_parser("release", help="regenerate assignments/ from solutions/ (nbgrader generate_assignment)")
    release.add_argument("ids", nargs="*", metavar="ID", help="worksheet ids (default: all)")

    check = verbs.add_parser("check", help="student: run a notebook's visible tests in a fresh kernel")
    check.add_argument("notebook", type=Path)

    grade = verbs.add_parser("grade", help="grade one submission like nbgrader autograde, hidden tests included")
    grade.add_argument("notebook", type=Path)
    grade.add_argument("--assignment", metavar="ID", help="worksheet id (default: from the file name)")
    grade.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    grade.add_argument("--keep", type=Path, metavar="DIR", help="copy the autograded notebook here")
    grade.add_argument("--quiet", action="store_true", help="no summary on stdout")
    grade.add_argument("--solutions", type=Path, default=PROJECT_ROOT / "solutions",
                       help="source notebooks with the hidden tests (default: the project's solutions/)")

    grade_all = verbs.add_parser("grade-all", help="instructor: grade submitted/<student>/<id>/ into the gradebook")
    grade_all.add_argument("--root", type=Path, default=PROJECT_ROOT, help="course folder holding submitted/ (default: the project)")
    grade_all.add_argument("--workers", type=int, default=2, help="submissions graded at once (default: 2)")
    grade_all.add_argument("--timeout", type=float, default=1800, help="seconds per submission (default: 1800)")
    grade_all.add_argument("--db-url", help="gradebook URL (default: sqlite:///<root>/gradebook.db)")
    grade_all.add_argument("--force", action="store_true", help="regrade unchanged submissions too")

    feedback = verbs.add_parser("feedback", help="per-student HTML feedback, hidden tests removed")
    feedback.add_argument("--root", type=Path, default=PROJECT_ROOT, help="course folder (default: the project)")
    feedback.add_argument("--db-url", help="gradebook URL (default: sqlite:///<root>/gradebook.db)")

    demo = verbs.add_parser("demo", help="the whole course end to end on sample submissions")
    demo.add_argument("--root", type=Path, default=PROJECT_ROOT / "demo", help="where the demo course goes (default: demo/)")
    demo.add_argument("--workers", type=int, default=2)
    return parser


def _dispatch(args):
    if args.verb == "data":
        if args.data_verb == "fetch":
            data_fetch(args.datasets, args.mirror)
        elif args.data_verb == "verify":
            return 1 if data_verify() else 0
        else:
            data_info()
    elif args.verb == "release":
        from .course import release

        for path in release(args.ids):
            print(f"released {path.relative_to(PROJECT_ROOT)}")
    elif args.verb == "check":
        from .student_check import check_notebook, format_check

        report = check_notebook(args.notebook)
        print(format_check(report))
        return 0 if report["score"] == report["max_score"] else 1
    elif args.verb == "grade":
        from . import grading

        report = grading.grade_submission(args.notebook, args.assignment, keep=args.keep,
                                          solutions=args.solutions, notice=not args.quiet)
        if args.json:
            grading.write_json(report, args.json)
        if not args.quiet:
            print(grading.format_report(report))
    elif args.verb == "grade-all":
        from .grade_all import format_outcomes, grade_all

        outcomes = grade_all(args.root, args.workers, args.timeout, force=args.force,
                             **course_settings(args.root, args.db_url))
        print(format_outcomes(outcomes))
        print(f"grades: {args.root / 'grades.csv'}")
    elif args.verb == "feedback":
        from .feedback import generate_all

        for path in generate_all(args.root, **course_settings(args.root, args.db_url)):
            print(f"feedback {path}")
    elif args.verb == "demo":
        from .demo import run_demo

        run_demo(args.root, args.workers)
    return 0


def run(argv=None):
    """Run a command; return its exit status. Errors the user can fix are one sentence."""
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (UserError, download.DatasetError) as e:
        print(f"autograder: {e}", file=sys.stderr)
        return 2


def main():
    sys.exit(run())
