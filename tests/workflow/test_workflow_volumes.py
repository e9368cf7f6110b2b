"""``run --volume --preview``: the report lists each study's volumes and previews, and the
run's index.html shows them with the report's table."""

from __future__ import annotations

import html.parser
import json
from pathlib import Path

import nibabel as nib
import pytest
from PIL import Image

from hi_async.cli import main


class _Page(html.parser.HTMLParser):
    """The images, links and table cells of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img" and values.get("src"):
            self.images.append(str(values["src"]))
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))
        self._in_cell = tag in ("td", "th")

    def handle_endtag(self, tag: str) -> None:
        self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells.append(data)


def test_run_reports_volumes_and_writes_a_page_of_previews(
        endpoint_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    code = main(["run", "--endpoint-url", endpoint_url, "--study", "ct-chest", "--yes",
                 "--quiet", "--workers", "1", "--volume", "nifti", "--preview",
                 "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert f"volumes: 1 written; 1 preview (details in summary.json); page: " \
           f"{tmp_path / 'index.html'}" in out

    summary = json.loads((tmp_path / "summary.json").read_text())
    (study,) = summary["studies"]
    (volume,) = study["volumes"]
    assert volume["status"] == "written" and volume["shape"] == [512, 512, 2]
    assert volume["path"].startswith("ct-chest/") and volume["preview"].startswith("ct-chest/")
    assert nib.load(tmp_path / volume["path"]).shape == (512, 512, 2)
    assert "volumes" not in summary["total"]

    page = _Page()
    page.feed((tmp_path / "index.html").read_text())
    assert page.images == [volume["preview"]]
    with Image.open(tmp_path / page.images[0]) as image:
        assert image.format == "PNG"
    assert {volume["path"], volume["sidecar"], "summary.json"} <= set(page.links)
    assert page.cells[9:15] == ["ct-chest", "2", "1", "2", "2", "0"]  # the study's row
