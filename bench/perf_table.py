"""The GPU check's JSON as a table: printed at the end of ``bench.gpu_check``, or written into the README.

    python -m bench.perf_table bench/results/h200-sd15-random.json                  # print the table
    python -m bench.perf_table bench/results/h200-sd15-random.json --readme README.md   # replace it in the README

The README holds the table between ``<!-- gpu-table:start -->`` and ``<!-- gpu-table:end -->``.
A figure a stage did not produce shows as ``-`` and the stage's status is listed under the table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

START, END = "<!-- gpu-table:start -->", "<!-- gpu-table:end -->"
MODES = ("sga", "ip-adapter", "text")


def _get(data: dict, *keys: Any) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _fmt(value: Any, spec: str = ".3f", scale: float = 1.0, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value * scale if scale != 1 else value:{spec}}{unit}"
    return str(value)


def rows(result: dict) -> list[tuple[str, str]]:
    """(figure, value) pairs, in the order of issue 24's list."""
    stages = result.get("stages", {})
    out: list[tuple[str, str]] = []
    for mode in MODES:
        st = stages.get(f"mode-{mode}", {})
        if st.get("status") not in ("ok", "mismatch"):
            out.append((f"`{mode}` mode", st.get("status", "not run") + (f": {st['reason']}" if "reason" in st else "")))
            continue
        b1, b4 = _get(st, "batches", "1") or {}, _get(st, "batches", "4") or {}
        label = f"`{st.get('guidance_mode', mode)}`"
        out += [
            (f"{label}: s / candidate, batch 1 / 4",
             f"{_fmt(b1.get('ac_s_per_candidate'))} / {_fmt(b4.get('ac_s_per_candidate'))}"),
            (f"{label}: plain diffusers s / candidate, batch 4; ratio", f"{_fmt(b4.get('plain_s_per_candidate'))}; "
             f"{_fmt(b4.get('ratio_ac_over_plain'))}"),
            (f"{label}: ASEA alone (5 steps)", _fmt(st.get("asea_s"), ".0f", 1000, " ms")),
            (f"{label}: peak memory, batch 4", _fmt(b4.get("peak_mem_bytes"), ".2f", 1 / 2**30, " GiB")),
            (f"{label}: load from local safetensors", _fmt(st.get("load_from_disk_s", st.get("load_s")), ".1f", 1, " s")),
            (f"{label}: host-device syncs in the denoising loop", _fmt(st.get("syncs_in_denoising_loop"), "d")),
        ]
    floor = _get(stages, "models", "floor_s_per_candidate", "4")
    out.append(("UNet FLOP floor, s / candidate at batch 4", _fmt(floor, ".3f")))
    chunk = stages.get("chunk64", {})
    n64, n4 = chunk.get("n64", {}), chunk.get("n4", {})
    out.append(("64 candidates: chunk setting used", f"{chunk.get('chunk_param') or chunk.get('chunk_env') or 'none'}"
                f" = {_fmt(chunk.get('chunk'), 'd')}" if chunk.get("chunking_supported") else "engine has no chunking"))
    out.append(("64 candidates: peak memory (batch 4 for comparison); largest UNet batch",
                "out of memory" if n64.get("oom") else f"{_fmt(n64.get('peak_gib'), '.2f', 1, ' GiB')} "
                f"({_fmt(n4.get('peak_gib'), '.2f', 1, ' GiB')}); {_fmt(n64.get('max_unet_batch'), 'd')}"))
    out.append(("64 candidates: s / candidate", _fmt(n64.get("s_per_candidate"))))
    prec = stages.get("precision", {})
    for name in ("float16", "bfloat16"):
        e = prec.get(name, {})
        if "unet_eps_rel_err" not in e:
            out.append((f"{name} vs float32", e.get("error") or prec.get("status", "not run")))
            continue
        out.append((f"{name} vs float32: UNet ε rel. error; ViT rel. error; ASEA in-mask max diff; all finite; pass",
                    f"{e['unet_eps_rel_err']:.2e}; {e['vit_rel_err']:.2e}; {e['inmask_max_abs_diff']:.4f}; "
                    f"{_fmt(e.get('finite'))}; {_fmt(e.get('pass'))}"))
    for stage, label in (("train", "train"), ("train-checkpointing", "train, gradient checkpointing")):
        t = stages.get(stage, {})
        if "steps_per_s" not in t:
            out.append((label, t.get("status", "not run")))
            continue
        label = f"{label}, {t.get('mixed_precision')}"
        out.append((f"{label}: steps run; steps/s; peak; h / 10k steps",
                    f"{t['steps']} @ batch {t['batch_size']}, {t['resolution']}²; {_fmt(t['steps_per_s'])}; "
                    f"{_fmt(t.get('peak_allocated_gib'), '.1f', 1, ' GiB')}; {_fmt(t.get('hours_per_10k_steps'), '.2f')}"))
    comp = stages.get("compile", {})
    out.append(("torch.compile at batch 4: compile s; steady-state gain",
                f"{_fmt(comp.get('compile_s'), '.0f')}; {_fmt(comp.get('gain'), '.2f', 1, 'x')}"
                if "gain" in comp else comp.get("status", "not run")))
    return out


def markdown(result: dict) -> str:
    """The README's table with a line naming the GPU and each stage's status."""
    head = (f"{result.get('device_name', result.get('gpu'))} · weights `{result.get('weights')}` · "
            f"{result.get('size')}², {result.get('steps')} steps × strength {result.get('strength')}")
    lines = [head, "", "| figure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows(result)]
    status = ", ".join(f"{n} {s.get('status')}" for n, s in result.get("stages", {}).items())
    return "\n".join(lines + ["", f"Stages: {status}."])


def summary(result: dict) -> str:
    """Plain-text table for the end of a log."""
    pairs = rows(result)
    width = max(len(k) for k, _ in pairs)
    status = " · ".join(f"{n}: {s.get('status')} ({s.get('wall_s', s.get('seconds', '?'))} s)"
                        for n, s in result.get("stages", {}).items())
    return "\n".join([f"{result.get('gpu')} · {result.get('weights')}"] + [f"{k:<{width}} | {v}" for k, v in pairs]
                     + [status])


def replace_in_readme(readme: Path, table: str) -> None:
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        raise SystemExit(f"{readme} has no {START} ... {END} block to fill.")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{table}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="the GPU check's JSON")
    parser.add_argument("--readme", default=None, help="replace the table in this README")
    args = parser.parse_args(argv)
    result = json.loads(Path(args.json).read_text(encoding="utf-8"))
    table = markdown(result)
    if args.readme:
        replace_in_readme(Path(args.readme), table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
