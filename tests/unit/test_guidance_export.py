"""The guidance mode travels with each sample: imagefolder column, export manifest, dataset card."""
from __future__ import annotations

import json

from studio.export import MANIFEST_FILE, export_dataset
from studio.publish import dataset_card, dataset_summary
from studio.store import Store
from tests.helpers.samples import make_sample

MODES = [("anomalycontrol", {"guidance": {"mode": "ip-adapter"}}), ("anomalycontrol", {"guidance": {"mode": "text"}}),
         ("anomalycontrol", {"guidance": {"mode": "ip-adapter"}}), ("classic", {})]


def test_guidance_modes_reach_the_rows_the_manifest_and_the_card(tmp_path):
    with Store(tmp_path / "data") as store:
        for i, (engine, extra) in enumerate(MODES):
            cand, normal = make_sample(i)
            cand.metadata.update(engine=engine, weights="sd15", **extra)
            store.add(cand, normal_image=normal, category="bottle", defect_type="crack")
        out = export_dataset(store, "imagefolder", tmp_path / "hf")
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert sorted(r["guidance_mode"] for r in rows) == ["", "ip-adapter", "ip-adapter", "text"]
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["guidance_modes"] == {"anomalycontrol: ip-adapter": 2, "anomalycontrol: text": 1, "classic: none": 1}
    summary = dataset_summary(out)
    assert summary["engines"] == {"anomalycontrol (sd15, guidance ip-adapter)": 2,
                                  "anomalycontrol (sd15, guidance text)": 1, "classic (sd15)": 1}
    card = str(dataset_card(summary, license="cc-by-4.0", repo="me/defects", command="anomaly-studio export"))
    assert "- anomalycontrol (sd15, guidance ip-adapter): 2 sample(s)" in card and "not the\npaper's method" in card
