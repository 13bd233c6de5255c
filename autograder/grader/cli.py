"""The instructors' verbs of `autograder`: release, publish, grade, grade-all, feedback, export-otter, demo, lab, hub,
drawings check."""

import sys
from pathlib import Path

from .course import (
    COURSE_VARIABLE,
    PROJECT_ROOT,
    course_settings,
    default_course,
    nbgrader_config,
    source_folder,
)


def prepare_grading_data():
    """What a grading host reads beyond the datasets (`autograder data fetch` builds it)."""
    from .hidden_tests.heldout import prepare

    prepare()


def add_grader_verbs(verbs):
    release = verbs.add_parser("release", help="regenerate assignments/ and the student kit from solutions/")
    release.add_argument("ids", nargs="*", metavar="ID", help="worksheet ids (default: all)")
    release.add_argument("--dist", type=Path, default=PROJECT_ROOT / "dist",
                         help="where the student kit's wheel goes (default: dist/)")

    publish = verbs.add_parser("publish", help="run each solution and write docs/worksheets/<id>.html, plots "
                                               "included, hidden tests removed")
    publish.add_argument("ids", nargs="*", metavar="ID", help="worksheet ids (default: all)")

    grade = verbs.add_parser("grade", help="grade one submission like nbgrader autograde, hidden tests included")
    grade.add_argument("notebook", type=Path)
    grade.add_argument("--assignment", metavar="ID", help="worksheet id (default: from the file name)")
    grade.add_argument("--json", type=Path, metavar="PATH", help="also write the report as JSON")
    grade.add_argument("--keep", type=Path, metavar="DIR", help="copy the autograded notebook here")
    grade.add_argument("--quiet", action="store_true", help="no summary on stdout")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="run the student's code without the bubblewrap jail (unsafe: it can read and write "
                            "everything you can)")
    grade.add_argument("--verbose", action="store_true", help="show the kernel's, nbgrader's and the frameworks' logs")
    grade.add_argument("--root", type=Path, default=default_course(),
                       help=f"the course whose nbgrader_config.py sets the limits (default: ${COURSE_VARIABLE}, "
                            "else the project)")
    grade.add_argument("--solutions", type=Path,
                       help="source notebooks with the hidden tests (default: the course's)")
    grade.add_argument("--timeout", type=float,
                       help="seconds each grading process may take, the host's reference run's and then the "
                            "submission's (GradingRun.timeout; default: the course's, 3600)")

    grade_all = verbs.add_parser("grade-all", help="instructor: grade submitted/<student>/<id>/ into the gradebook")
    grade_all.add_argument("--root", type=Path, default=default_course(),
                           help=f"course folder holding submitted/ (default: ${COURSE_VARIABLE}, else the project)")
    grade_all.add_argument("--workers", type=int, default=2,
                           help="local Dask worker processes, each grading one submission at a time (default: 2)")
    grade_all.add_argument("--scheduler", metavar="tcp://HOST:8786",
                           help="grade on a running Dask cluster instead of local workers")
    grade_all.add_argument("--gpu", action="store_true",
                           help="send submissions only to workers started with --resources GPU=1")
    grade_all.add_argument("--timeout", type=float,
                           help="seconds each grading process may take, a submission's or a host's reference run, "
                                "queueing excluded (GradingRun.timeout; default: the course's, 3600)")
    grade_all.add_argument("--db-url", help="gradebook URL (default: sqlite:///<root>/gradebook.db)")
    grade_all.add_argument("--force", action="store_true", help="regrade unchanged submissions too")
    grade_all.add_argument("--no-sandbox", action="store_true", help="grade without the bubblewrap jail (unsafe)")
    grade_all.add_argument("--verbose", action="store_true", help="show workers', kernels' and nbgrader's logs")
    grade_all.add_argument("--progress-file", type=Path, metavar="PATH",
                           help="also write the progress there as JSON (Formgrader's page reads it)")
    grade_all.add_argument("--dashboard", action="store_true",
                           help="serve the local Dask cluster's web pages on a Unix socket only you can open "
                                "(off by default: on loopback every user of the machine could read them)")

    drawings = verbs.add_parser("drawings", help="instructor: check a set of hand-drawn digits before class")
    drawings_verbs = drawings.add_subparsers(dest="drawings_verb", metavar="check", required=True)
    check = drawings_verbs.add_parser(
        "check", help="grade each worksheet's reference on the drawings in DIR as a host would, print its accuracy "
                      "against the floor, and write a contact sheet (HTML) of what it read")
    check.add_argument("folder", type=Path, metavar="DIR", help="the drawings, named after their digit (7_1.png)")
    check.add_argument("--root", type=Path, default=default_course(),
                       help=f"the course whose worksheets and floors to use (default: ${COURSE_VARIABLE}, else the "
                            "project)")
    check.add_argument("--worksheet", dest="worksheets", action="append", metavar="ID",
                       help="only this worksheet (again for more; default: each that reads drawings)")
    check.add_argument("--sheet", type=Path, metavar="PATH", default=Path("drawings-check.html"),
                       help="where the contact sheet goes (default: ./drawings-check.html)")
    check.add_argument("--no-sandbox", action="store_true", help="run the references without the jail")

    feedback = verbs.add_parser("feedback", help="per-student HTML feedback, hidden tests removed")
    feedback.add_argument("--root", type=Path, default=default_course(),
                          help=f"course folder (default: ${COURSE_VARIABLE}, else the project)")
    feedback.add_argument("--db-url", help="gradebook URL (default: sqlite:///<root>/gradebook.db)")

    export_otter = verbs.add_parser("export-otter", help="otter-grader autograder zips and student notebooks, "
                                                         "from solutions/")
    export_otter.add_argument("ids", nargs="*", metavar="ID", help="worksheet ids (default: all)")
    export_otter.add_argument("--out", type=Path, default=PROJECT_ROOT / "dist" / "otter",
                              help="where <id>/autograder.zip and <id>/student/ go (default: dist/otter/)")
    export_otter.add_argument("--solutions", type=Path, default=PROJECT_ROOT / "solutions",
                              help="source notebooks with the hidden tests (default: the project's solutions/)")

    demo = verbs.add_parser("demo", help="the whole course end to end on sample submissions")
    demo.add_argument("--root", type=Path, default=PROJECT_ROOT / "demo", help="where the demo course goes (default: demo/)")
    demo.add_argument("--workers", type=int, default=2)
    demo.add_argument("--hub", action="store_true",
                      help="as root: the same course through nbgrader's exchange on a JupyterHub, with the sample "
                           "students as Unix users (see `autograder hub`)")
    demo.add_argument("--hub-dir", type=Path, default=Path("/srv/autograder"),
                      help="with --hub: the hub's folder (default: /srv/autograder)")

    lab = verbs.add_parser("lab", help="the course in JupyterLab: Formgrader, Create Assignment, Validate")
    lab.add_argument("--root", type=Path, default=PROJECT_ROOT,
                     help="course folder, e.g. demo/ after `autograder demo` (default: the project)")
    lab.add_argument("--port", type=int, help="port of the server (default: jupyter's, 8888 or the next free one)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument("jupyter_args", nargs="*", metavar="-- JUPYTER_ARG",
                     help="more options for `jupyter lab`, after --")

    hub = verbs.add_parser("hub", help="as root: the course on a JupyterHub, with nbgrader's exchange for "
                                       "releasing, submitting, collecting and feedback")
    hub.add_argument("--root", type=Path, default=PROJECT_ROOT,
                     help="course folder, e.g. demo/ after `autograder demo --hub` (default: the project)")
    hub.add_argument("--hub-dir", type=Path, default=Path("/srv/autograder"),
                     help="the hub's folder: its state, the exchange, the students' environment and data "
                          "(default: /srv/autograder; scripts/hub-setup.sh builds it)")
    hub.add_argument("--ip", default="127.0.0.1", help="address the hub listens on (default: 127.0.0.1)")
    hub.add_argument("--port", type=int, default=8000, help="port of the hub (default: 8000)")
    hub.add_argument("--authenticator", default="pam",
                     help="pam (the default: Unix passwords), shared-password (one password, printed), dummy (any "
                          "password; tests, on 127.0.0.1 only), or any JupyterHub authenticator, set up in --config")
    hub.add_argument("--config", type=Path, metavar="FILE",
                     help="more JupyterHub configuration, loaded last (an OAuthenticator's client id, say)")
    hub.add_argument("--instructors-group", default="instructors",
                     help="Unix group of the instructors (default: instructors)")
    hub.add_argument("--students-group", default="students", help="Unix group of the students (default: students)")
    hub.add_argument("jupyterhub_args", nargs="*", metavar="-- JUPYTERHUB_ARG",
                     help="more options for `jupyterhub`, after --")


def dispatch(args):
    if args.verb == "release":
        from ..run.kit import build_wheel
        from .course import release

        for path in release(args.ids):
            print(f"released {path.relative_to(PROJECT_ROOT)}")
        print(f"student kit: {build_wheel(args.dist)}")
    elif args.verb == "publish":
        from ..run.host import configure_kernels
        from .tools.publish import publish

        configure_kernels()
        for page in publish(args.ids):
            print(f"published {page.relative_to(PROJECT_ROOT)}")
    elif args.verb == "grade":
        from .classroom import grade as grading

        solutions, config = args.solutions, None
        if not solutions:  # the course's worksheets, with its settings (`--solutions` brings its own course's)
            config = nbgrader_config(args.root, **course_settings(args.root))
            solutions = source_folder(config)
            config.pop("CourseDirectory")
        report = grading.grade_submission(args.notebook, args.assignment, keep=args.keep, config=config,
                                          solutions=solutions, sandbox=not args.no_sandbox,
                                          verbose=args.verbose, timeout=args.timeout,
                                          say=lambda line: print(f"autograder: {line}", file=sys.stderr, flush=True))
        if args.json:
            grading.write_json(report, args.json)
        if not args.quiet:
            print(grading.format_report(report))
    elif args.verb == "grade-all":
        from .classroom.grade_all import format_outcomes, grade_all

        outcomes = grade_all(args.root, workers=args.workers, scheduler=args.scheduler, gpu=args.gpu,
                             timeout=args.timeout, force=args.force, sandbox=not args.no_sandbox,
                             verbose=args.verbose, dashboard=args.dashboard, progress_file=args.progress_file,
                             **course_settings(args.root, args.db_url))
        print(format_outcomes(outcomes))
        print(f"grades: {args.root / 'grades.csv'}")
        problems = [k for k, o in outcomes.items() if o["status"] != "graded"]
        host_faults = [k for k, o in outcomes.items() if o["status"] == "host-fault"]
        if host_faults:
            print(f"autograder: the grading hosts failed on {len(host_faults)} of {len(outcomes)} submissions "
                  f"({', '.join(host_faults[:5])}{', ...' if len(host_faults) > 5 else ''}); no score was saved "
                  "for them and the next run grades them again; the reasons are above and in grade-all.json.",
                  file=sys.stderr)
            return 3
        if problems:
            print(f"autograder: {len(problems)} of {len(outcomes)} submissions could not be graded "
                  f"({', '.join(problems[:5])}{', ...' if len(problems) > 5 else ''}); the reasons are above "
                  "and in grade-all.json.", file=sys.stderr)
            return 1
    elif args.verb == "drawings":
        from .tools.drawings_check import advice, check_drawings

        readings = check_drawings(args.folder, args.root, args.worksheets or (), args.sheet,
                                  sandbox=not args.no_sandbox)
        for line in advice(readings):
            print(line)
        print(f"contact sheet: {args.sheet}")
        short = [r.worksheet for r in readings if not r.ok]
        if short:
            print(f"autograder: the reference solutions of {', '.join(short)} cannot grade with these drawings "
                  "(above: the drawings to look at, and the floor the set supports).", file=sys.stderr)
            return 1
    elif args.verb == "feedback":
        from .pages.feedback import generate_all

        for path in generate_all(args.root, **course_settings(args.root, args.db_url)):
            print(f"feedback {path}")
    elif args.verb == "export-otter":
        from .tools.otter_export import export

        for autograder_zip, notebook in export(args.ids, args.out, args.solutions):
            print(f"otter autograder {autograder_zip}\nstudent notebook {notebook}")
    elif args.verb == "demo" and args.hub:
        from .hub.hub_demo import run_hub_demo

        run_hub_demo(args.root, args.hub_dir, args.workers)
    elif args.verb == "demo":
        from .classroom.demo import run_demo

        run_demo(args.root, args.workers)
    elif args.verb == "hub":
        from .hub.course_hub import open_hub

        open_hub(args.root, args.hub_dir, args.ip, args.port, args.authenticator, args.config,
                 args.instructors_group, args.students_group, args.jupyterhub_args)
    elif args.verb == "lab":
        from .hub.lab import open_lab

        open_lab(args.root, args.port, not args.no_browser, args.jupyter_args)
    return 0
