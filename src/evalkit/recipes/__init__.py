"""Paper recipes: ``evalkit reproduce NAME`` reruns a seed paper's experiments end to end.

A recipe runs its configuration (``configs/papers/NAME.yaml``), makes the paper's figures and tables, prepares its
listening test folder, and writes one HTML page that puts each output beside what the paper reports. The paper's
numbers are data with their source (``paper_data/NAME.json``), never expected values of a test.
"""

from __future__ import annotations

#: recipe name -> module that defines ``build(out, *, scale) -> list[Artifact]``
RECIPES: dict[str, str] = {
    "qincodec": "evalkit.recipes.qincodec",
    "klt": "evalkit.recipes.klt",
}
