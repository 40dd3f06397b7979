"""``PUT /runs/{run_id}/artifacts/{name}`` over plain HTTP (issue 16): a raw body, with or
without a Content-Type, and a multipart form both store exactly the file's bytes, and the
OpenAPI document describes both."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.server.conftest import assert_problem

DATA = b"id,score\n1,0.5\n2,0.25\n" + bytes(range(256))


@pytest.fixture
def run_url(admin: httpx.Client, project: str) -> str:
    response = admin.post(f"/api/v1/projects/{project}/runs", json={"experiment": "e"})
    assert response.status_code == 200, response.text
    return f"/api/v1/projects/{project}/runs/{response.json()['id']}/artifacts"


def _stored(admin: httpx.Client, url: str) -> bytes:
    response = admin.get(url)
    assert response.status_code == 200, response.text
    return response.content


@pytest.mark.parametrize("headers", [
    {"Content-Type": "application/octet-stream"},
    {},  # curl -T f.txt URL sends no Content-Type
])
def test_a_raw_body_is_stored_as_is(admin: httpx.Client, run_url: str,
                                    headers: dict[str, str]) -> None:
    response = admin.put(f"{run_url}/f.csv", content=DATA, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["size"], body["digest"]) == (len(DATA), hashlib.sha256(DATA).hexdigest())
    assert _stored(admin, f"{run_url}/f.csv") == DATA


def test_a_multipart_upload_stores_the_file_not_the_envelope(admin: httpx.Client,
                                                            run_url: str) -> None:
    # What curl -F file=@f.csv URL and a browser form send.
    response = admin.put(f"{run_url}/f.csv", files={"file": ("f.csv", DATA, "text/csv")},
                         headers={"X-Content-SHA256": hashlib.sha256(DATA).hexdigest()})
    assert response.status_code == 200, response.text
    assert response.json()["size"] == len(DATA)
    assert _stored(admin, f"{run_url}/f.csv") == DATA


def test_a_multipart_upload_needs_one_part_named_file(admin: httpx.Client,
                                                      run_url: str) -> None:
    missing = admin.put(f"{run_url}/f.csv", files={"data": ("f.csv", DATA)})
    assert_problem(missing, 400, "file")
    assert "'file'" in missing.json()["detail"]
    extra = admin.put(f"{run_url}/f.csv", files={"file": ("f.csv", DATA)},
                      data={"note": "x"})
    assert_problem(extra, 400, "file")
    assert admin.get(f"{run_url}/f.csv").status_code == 404  # nothing stored


def test_a_wrong_digest_stores_nothing_in_either_form(admin: httpx.Client,
                                                      run_url: str) -> None:
    wrong = {"X-Content-SHA256": "0" * 64}
    assert_problem(admin.put(f"{run_url}/a.csv", content=DATA, headers=wrong), 400, "body")
    assert_problem(admin.put(f"{run_url}/b.csv", files={"file": ("b.csv", DATA)},
                             headers=wrong), 400, "body")
    assert admin.get(f"{run_url}/a.csv").status_code == 404
    assert admin.get(f"{run_url}/b.csv").status_code == 404


def test_a_text_body_is_refused_naming_the_accepted_types(admin: httpx.Client,
                                                          run_url: str) -> None:
    response = admin.put(f"{run_url}/f.csv", content=DATA, headers={"Content-Type": "text/plain"})
    assert_problem(response, 415)
    detail = response.json()["detail"]
    assert "application/octet-stream" in detail and "multipart/form-data" in detail


def test_openapi_describes_both_request_bodies(admin: httpx.Client) -> None:
    spec = admin.get("/openapi.json").json()
    operation = spec["paths"]["/api/v1/projects/{project}/runs/{run_id}/artifacts/{name}"]["put"]
    content = operation["requestBody"]["content"]
    assert content["application/octet-stream"]["schema"]["format"] == "binary"
    form = content["multipart/form-data"]["schema"]
    assert form["required"] == ["file"]
    assert form["properties"]["file"]["format"] == "binary"
    assert "multipart" in operation["description"]
