"""Model catalogue through the real SDK: paging, one model, retired and unknown models."""

from __future__ import annotations

import pytest
from google.genai import errors

from tests.emulator.helpers import client, fixture_body, shape

SERVED = [
    "models/gemini-2.5-flash",
    "models/gemini-2.5-flash-lite",
    "models/gemini-2.5-pro",
    "models/gemini-3-flash-preview",
    "models/gemini-3-pro-preview",
    "models/gemini-embedding-001",
]


def test_list_pages_through_the_sdk_pager(gemini_emulator):
    sdk = client(gemini_emulator)
    pager = sdk.models.list(config={"page_size": 2})
    assert len(pager.page) == 2
    models = list(pager)
    assert [m.name for m in models] == SERVED
    assert [r.method for r in gemini_emulator.requests] == ["models.list"] * 3
    lite = models[1]
    assert lite.supported_actions == [
        "generateContent",
        "countTokens",
        "createCachedContent",
        "batchGenerateContent",
    ]
    assert (lite.input_token_limit, lite.output_token_limit, lite.thinking) == (
        1048576,
        65536,
        True,
    )
    embedding = models[-1]
    assert "generateContent" not in embedding.supported_actions


def test_list_entry_has_the_real_shape(gemini_emulator):
    from tests.emulator.test_http import call

    status, _, body = call(gemini_emulator.base_url, "/v1beta/models?pageSize=1")
    real = fixture_body("200_models_list_page.json")
    assert status == 200
    assert shape(body) == shape(real)
    assert body["models"][0]["name"] == "models/gemini-2.5-flash"
    status, _, rest = call(
        gemini_emulator.base_url, f"/v1beta/models?pageSize=100&pageToken={body['nextPageToken']}"
    )
    assert [m["name"] for m in rest["models"]] == SERVED[1:] and "nextPageToken" not in rest


async def test_get_model_and_missing_models(gemini_emulator):
    aio = client(gemini_emulator).aio
    try:
        model = await aio.models.get(model="gemini-2.5-pro")
        assert model.display_name == "Gemini 2.5 Pro"
        with pytest.raises(errors.ClientError) as retired:
            await aio.models.generate_content(model="gemini-1.5-flash", contents="hi")
        assert retired.value.code == 404
        assert retired.value.details == fixture_body("404_model_not_found.json")
        for name in ("gemini-0-imaginary", "gemini-embedding-001"):
            with pytest.raises(errors.ClientError) as missing:
                await aio.models.generate_content(model=name, contents="hi")
            assert missing.value.message.startswith(f"models/{name} is not found for API version")
        with pytest.raises(errors.ClientError) as gone:
            await aio.models.get(model="gemini-2.0-flash")
        assert gone.value.code == 404
    finally:
        await aio.aclose()


def test_configured_catalogue(make_gemini_emulator):
    emu = make_gemini_emulator(
        {
            "accept_any_key": True,
            "models": {
                "gemini-2.5-flash": {"retired": True},
                "gemini-9-ultra": {"display_name": "Gemini 9 Ultra"},
            },
        }
    )
    sdk = client(emu)
    names = [m.name for m in sdk.models.list()]
    assert "models/gemini-2.5-flash" not in names and names[-1] == "models/gemini-9-ultra"
    assert sdk.models.generate_content(model="gemini-9-ultra", contents="hi").text
    with pytest.raises(errors.ClientError):
        sdk.models.generate_content(model="gemini-2.5-flash", contents="hi")
