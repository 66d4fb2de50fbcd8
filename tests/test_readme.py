"""The README's set-up: the two commands stay as they are, and the install size and the
smaller CPU-only torch are documented next to them."""

from __future__ import annotations

from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_two_setup_commands_unchanged():
    assert ("python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && "
            ".venv/bin/streamlit run app.py") in README
    assert "\nbash .ci/run\n" in README


def test_install_size_and_cpu_only_torch():
    section = README.split("### Install size, and a smaller CPU-only torch", 1)[1].split("\n## ", 1)[0]
    assert "6.9 GiB" in section and "6.4 GiB" in section and "du -sh .venv" in section
    # one command, one index: torch and torchvision as a pair, before the requirements
    cpu = ".venv/bin/pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu"
    assert cpu in section
    assert section.index(cpu) < section.index(".venv/bin/pip install -r requirements.txt")
    assert "reaches the PyTorch package index" in section and "2.13.0" in section
