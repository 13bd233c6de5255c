"""`autograder <verb>`: thin argparse commands over functions the tests call directly."""

import argparse
import sys

from .datasets import download

DATASETS = ("mnist", "fashion-mnist", "imdb")


class UserError(Exception):
    """A problem the user can fix; printed as one sentence, exit status 2."""


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
    return parser


def run(argv=None):
    """Run a command; return its exit status. Errors the user can fix are one sentence."""
    args = _parser().parse_args(argv)
    try:
        if args.verb == "data":
            if args.data_verb == "fetch":
                data_fetch(args.datasets, args.mirror)
            elif args.data_verb == "verify":
                return 1 if data_verify() else 0
            else:
                data_info()
        return 0
    except (UserError, download.DatasetError) as e:
        print(f"autograder: {e}", file=sys.stderr)
        return 2


def main():
    sys.exit(run())
