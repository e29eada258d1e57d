"""``/api/docs/`` works offline: Swagger UI comes from the project, not from a CDN."""

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django.test import Client


class _Assets(HTMLParser):
    """The URLs of the scripts, stylesheets and icons a page loads."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.urls.append(str(found["src"]))
        if tag == "link" and found.get("href"):
            self.urls.append(str(found["href"]))


@pytest.fixture
def docs_assets(client: Client) -> list[str]:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    parser = _Assets()
    parser.feed(response.content.decode())
    return parser.urls


def test_the_docs_page_loads_nothing_from_another_host(docs_assets: list[str]) -> None:
    assert len(docs_assets) >= 3  # the bundle, the preset and the stylesheet at least
    for url in docs_assets:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == ("", ""), url
        assert parts.path.startswith("/static/"), url


def test_the_server_serves_every_asset_of_the_docs_page(
    client: Client, docs_assets: list[str]
) -> None:
    for url in docs_assets:
        response = client.get(url)

        assert response.status_code == 200, url
        assert b"".join(response.streaming_content), url  # type: ignore[attr-defined]
