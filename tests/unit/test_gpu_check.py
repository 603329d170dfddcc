"""The GPU check's helpers that run without a GPU: the finite watch, the table and the README filler."""
from __future__ import annotations

import json

import pytest
import torch

from bench.gpu_check import finite_watch
from bench.perf_table import END, START, markdown, replace_in_readme


class _Pair(torch.nn.Module):
    """Returns a tuple, like diffusers' ``return_dict=False`` outputs."""

    def forward(self, x):
        return x * 2, {"extra": x.log()}


def test_finite_watch_counts_calls_with_nan_or_inf_per_module():
    good, pair = torch.nn.Identity(), _Pair()
    with finite_watch({"good": good, "pair": pair}) as counts:
        good(torch.ones(3))
        pair(torch.ones(3))            # finite
        pair(torch.tensor([1.0, 0.0]))  # log(0) = -inf in the dict
        pair(torch.tensor([float("nan")]))  # both outputs NaN
    assert counts["good"] == 0
    assert counts["pair"] == 3  # one tensor of the second call, two of the third
    assert counts["calls"] == 1 + 3 * 2


def _result() -> dict:
    return {
        "gpu": "h200", "device_name": "NVIDIA H200", "weights": "sd15-random", "size": 512, "steps": 30,
        "strength": 0.7,
        "stages": {
            "models": {"status": "ok", "floor_s_per_candidate": {"4": 0.021}},
            "mode-sga": {"status": "ok", "guidance_mode": "sga", "asea_s": 0.0423, "load_s": 7.25,
                         "syncs_in_denoising_loop": 0,
                         "batches": {"1": {"ac_s_per_candidate": 0.61},
                                     "4": {"ac_s_per_candidate": 0.29, "plain_s_per_candidate": 0.27,
                                           "ratio_ac_over_plain": 1.074, "peak_mem_bytes": 5 * 2**30}}},
            "mode-ip-adapter": {"status": "skipped", "reason": "no modes"},
            "chunk64": {"status": "timeout"},
            "precision": {"status": "ok", "float16": {"unet_eps_rel_err": 0.0031, "vit_rel_err": 0.002,
                                                      "inmask_max_abs_diff": 0.0004, "finite": True, "pass": True},
                          "bfloat16": {"status": "failed", "error": "RuntimeError: boom"}},
            "train": {"status": "ok", "mixed_precision": "fp16", "steps": 120, "batch_size": 8, "resolution": 512, "steps_per_s": 3.1,
                      "peak_allocated_gib": 21.4, "hours_per_10k_steps": 0.9},
        },
    }


def test_markdown_shows_measured_figures_and_why_others_are_missing():
    table = markdown(_result())
    assert table.startswith("NVIDIA H200 · weights `sd15-random`")
    assert "| `sga`: s / candidate, batch 1 / 4 | 0.610 / 0.290 |" in table
    assert "| `sga`: plain diffusers s / candidate, batch 4; ratio | 0.270; 1.074 |" in table
    assert "| `sga`: ASEA alone (5 steps) | 42 ms |" in table
    assert "| `sga`: peak memory, batch 4 | 5.00 GiB |" in table
    assert "| `sga`: host-device syncs in the denoising loop | 0 |" in table
    assert "| `ip-adapter` mode | skipped: no modes |" in table
    assert "| `text` mode | not run |" in table
    assert "3.10e-03; 2.00e-03; 0.0004; yes; yes" in table
    assert "| bfloat16 vs float32 | RuntimeError: boom |" in table
    assert "| train, fp16: steps run; steps/s; peak; h / 10k steps | 120 @ batch 8, 512²; 3.100; 21.4 GiB; 0.90 |" in table
    assert "| train, gradient checkpointing | not run |" in table
    assert "chunk64 timeout" in table


def test_readme_block_is_replaced_and_the_rest_kept(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{START}\nold table\n{END}\nafter\n", encoding="utf-8")
    replace_in_readme(readme, "new table")
    assert readme.read_text(encoding="utf-8") == f"before\n{START}\nnew table\n{END}\nafter\n"


def test_readme_without_the_block_is_refused_untouched(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no block here\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="gpu-table:start"):
        replace_in_readme(readme, "table")
    assert readme.read_text(encoding="utf-8") == "no block here\n"


def test_cli_prints_the_table_from_a_json(tmp_path, capsys):
    from bench.perf_table import main

    path = tmp_path / "h200-sd15-random.json"
    path.write_text(json.dumps(_result()), encoding="utf-8")
    assert main([str(path)]) == 0
    assert "| UNet FLOP floor, s / candidate at batch 4 | 0.021 |" in capsys.readouterr().out
