import json

from evalkit.recipes import base


def test_paper_claims_keep_text_source_and_only_the_transcribed_values(tmp_path, monkeypatch):
    (tmp_path / "demo.json").write_text(json.dumps({"claims": {
        "fig3": {"text": "QINCo2 has the highest perplexity", "source": "arXiv:0000.00000, Fig. 3"},
        "table1": {"text": "SI-SDR at 8 kbps", "source": "Table 1", "values": {"qincodec@8": 5.1}},
    }}), encoding="utf-8")
    monkeypatch.setattr(base, "PAPER_DATA", tmp_path)
    claims = base.paper_claims("demo")
    assert claims["fig3"] == base.PaperClaim("QINCo2 has the highest perplexity", "arXiv:0000.00000, Fig. 3", {})
    assert claims["table1"].values == {"qincodec@8": 5.1}
