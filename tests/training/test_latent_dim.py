"""``evalkit qincodec train --latent-dim N``: the configuration's autoencoder and QINCo2 work in N dimensions, a
bad N is one line, and the provenance command recreates the configuration."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from evalkit.cli import main
from evalkit.training.qincodec.recipes import CONFIGS, get_config, latent_dim_option


def test_latent_dim_sets_the_autoencoder_and_qinco2_dimension_and_nothing_else():
    base, changed = CONFIGS["small"], get_config("small", latent_dim=32)
    assert (changed.model.latent_dim, changed.quantizer.embed_dim) == (32, 32)
    assert changed.model.strides == base.model.strides and changed.train == base.train
    assert changed.quantizer.steps == base.quantizer.steps and changed.name == "small"
    assert get_config("tiny", latent_dim=4, ae_steps=3).train.ae_steps == 3


def test_the_provenance_command_names_the_latent_dim_only_when_it_differs():
    assert latent_dim_option(get_config("small", latent_dim=32)) == " --latent-dim 32"
    assert latent_dim_option(get_config("small", latent_dim=64)) == ""  # the recipe's own
    assert latent_dim_option(SimpleNamespace(name="mine", model=SimpleNamespace(latent_dim=8))) == " --latent-dim 8"


@pytest.mark.parametrize("value", ["0", "-3"])
def test_a_latent_dim_below_one_is_one_line_and_exit_2(value, tmp_path, capsys):
    (tmp_path / "data").mkdir()
    assert main(["qincodec", "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"),
                 "--config", "tiny", "--latent-dim", value]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"evalkit: error: --latent-dim {value}: expected an integer >= 1\n"
