"""``anomaly-studio export``: write the store as an MVTec, COCO or imagefolder dataset (optionally zipped)."""
from __future__ import annotations

import argparse
import sys

from studio import config
from studio.cli.common import add_data_dir_arg, tqdm_progress
from studio.export import EXPORT_FORMATS, export_dataset
from studio.store import Store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export accepted samples as a training dataset")
    add_data_dir_arg(p)
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS, dest="fmt",
                   help="mvtec (anomalib), coco (instance segmentation) or imagefolder (Hugging Face datasets)")
    p.add_argument("--out", required=True, help="destination folder (or .zip with --zip); must not exist yet")
    p.add_argument("--zip", action="store_true", help="write one .zip archive instead of a folder")
    p.add_argument("--overwrite", action="store_true", help="replace a previous export at --out")
    p.add_argument("--push-to-hub", default=None, metavar="REPO",
                   help="also upload the export (imagefolder only) as the Hugging Face dataset REPO (user/name) "
                        "with a dataset card; log in with `hf auth login` or set HF_TOKEN")
    p.add_argument("--license", default="unknown", help="licence id for the pushed dataset's card (default unknown)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.push_to_hub:
        from studio.publish import check_push

        check_push(args.push_to_hub, args.fmt, args.zip)
    with Store(config.data_dir(args.data_dir)) as store:
        count = len(store)
        with tqdm_progress(f"export {args.fmt}") as progress:
            path = export_dataset(store, args.fmt, args.out, make_zip=args.zip, progress=progress,
                                  overwrite=args.overwrite)
    print(f"exported {count} sample(s) as {args.fmt} to {path}", file=sys.stderr)
    if args.push_to_hub:
        from studio.publish import push_dataset

        url = push_dataset(path, args.push_to_hub, license=args.license, command=args.argv)
        print(f"pushed to {url}", file=sys.stderr)
    print(path)
    return 0
