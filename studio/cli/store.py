"""``anomaly-studio store``: list, count, remove, relabel and merge accepted samples."""
from __future__ import annotations

import argparse
import json
import sys

from studio import config
from studio.cli.common import add_data_dir_arg, tqdm_progress
from studio.store import Store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("store", help="inspect and curate the accepted samples")
    ops = p.add_subparsers(dest="store_command", required=True, metavar="OPERATION")

    def op(name: str, help_text: str, func) -> argparse.ArgumentParser:
        parser = ops.add_parser(name, help=help_text)
        add_data_dir_arg(parser)
        parser.set_defaults(func=func)
        return parser

    ls = op("list", "one line per sample (or --json)", run_list)
    ls.add_argument("--category", default=None, help="only this category")
    ls.add_argument("--defect-type", default=None, help="only this defect type")
    ls.add_argument("--json", action="store_true", help="JSON lines with paths and metadata")
    op("stats", "counts by defect type and category", run_stats).add_argument(
        "--json", action="store_true", help="print JSON")
    op("remove", "delete samples by id", run_remove).add_argument("ids", nargs="+", metavar="ID")
    rl = op("relabel", "change a sample's defect type, category or note", run_relabel)
    rl.add_argument("id", metavar="ID")
    rl.add_argument("--defect-type", default=None)
    rl.add_argument("--category", default=None)
    rl.add_argument("--note", default=None)
    op("merge", "copy in the samples of other stores (e.g. one per node of a batch)", run_merge).add_argument(
        "sources", nargs="+", metavar="SOURCE_DIR")


def _open(args: argparse.Namespace) -> Store:
    return Store(config.data_dir(args.data_dir))


def run_list(args: argparse.Namespace) -> int:
    with _open(args) as store:
        records = store.list(category=args.category, defect_type=args.defect_type)
    for rec in records:
        if args.json:
            print(json.dumps({
                "id": rec.id, "category": rec.category, "defect_type": rec.defect_type, "note": rec.note,
                "accepted_at": rec.accepted_at, "image": str(rec.image_path), "mask": str(rec.mask_path),
                "normal": str(rec.normal_path),
                "reference": str(rec.reference_path) if rec.reference_path else None,
                "reference_mask": str(rec.reference_mask_path) if rec.reference_mask_path else None,
                "metadata": rec.metadata,
            }, ensure_ascii=False))
        else:
            prompt = str(rec.metadata.get("prompt", ""))[:40]
            print(f"{rec.id}\t{rec.category}\t{rec.defect_type}\t{rec.accepted_at}\t{prompt}")
    if not args.json:
        print(f"{len(records)} sample(s)", file=sys.stderr)
    return 0


def run_stats(args: argparse.Namespace) -> int:
    with _open(args) as store:
        stats = store.stats()
    if args.json:
        print(json.dumps(stats, indent=2, ensure_ascii=False))
        return 0
    print(f"total: {stats['total']} sample(s) from {stats['normal_images']} normal image(s)")
    for title, key in (("by defect type", "by_defect_type"), ("by category", "by_category")):
        print(f"{title}:")
        for name, count in stats[key].items():
            print(f"  {name}: {count}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    with _open(args) as store:
        for sample_id in args.ids:
            store.get(sample_id)  # every id checked before anything is deleted
        for sample_id in args.ids:
            store.remove(sample_id)
    print(f"removed {len(args.ids)} sample(s)", file=sys.stderr)
    return 0


def run_relabel(args: argparse.Namespace) -> int:
    with _open(args) as store:
        store.relabel(args.id, defect_type=args.defect_type, category=args.category, note=args.note)
        rec = store.get(args.id)
    print(f"{rec.id}: category {rec.category!r}, defect type {rec.defect_type!r}", file=sys.stderr)
    return 0


def run_merge(args: argparse.Namespace) -> int:
    with _open(args) as store:
        for source in args.sources:
            with tqdm_progress(f"merge {source}") as progress:
                added, skipped = store.merge_from(source, progress=progress)
            print(f"{source}: added {added}, already present {skipped}", file=sys.stderr)
    return 0
