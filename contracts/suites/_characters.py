"""The character workflow (reference §2.6): upload → classify → create (ready at once) → read → generate with it →
delete → generating with it is refused; then, when the clock can move, a synthesis costing 4 generations.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageDraw

from contracts.budget import charged, cheapest
from contracts.suites._flow import CHARACTER_ORDER, EPSILON, Flow, error_code
from contracts.suites._generations import IMAGE

__all__ = ["character_workflow", "reference_png"]

POSES = frozenset({"portrait", "front", "side", "back", "other"})
SYNTHESIZED_POSES = frozenset({"portrait", "front", "side", "back"})
SYNTHESIS_GENERATIONS = 4  # "Character synthesis = 4 generations" (reference §4)
ATTRIBUTES = {"gender": "female", "age": 28, "hair_color": "black", "eye_color": "brown"}
SETTLED = frozenset({"ready", "failed", "reviewing"})


def reference_png() -> bytes:
    """A small, real PNG portrait-ish picture to upload (any decodable PNG ≤ 4096 px is accepted)."""
    image = Image.new("RGB", (512, 640), (214, 188, 160))
    draw = ImageDraw.Draw(image)
    draw.ellipse((156, 120, 356, 360), fill=(240, 210, 180))
    draw.rectangle((176, 380, 336, 640), fill=(60, 80, 140))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _upload(flow: Flow) -> str:
    init = {"filename": "kit-reference.png", "extension": "png", "content_type": "image/png"}
    response = flow.call("POST", "/v1/characters/uploads/init", "init upload", json_body=init)
    ticket = flow.body(response, (200, 201), "UploadInitFailed", "POST /v1/characters/uploads/init failed")
    upload_id, url = ticket.get("upload_id"), ticket.get("upload_url")
    flow.require(
        isinstance(upload_id, str) and isinstance(url, str),
        "UploadInitFailed",
        "the upload ticket lacks upload_id or upload_url",
        expected="upload_id and upload_url",
        actual=sorted(ticket),
    )
    declared = ticket.get("upload_headers")
    headers = {str(k): str(v) for k, v in declared.items()} if isinstance(declared, dict) else {}
    headers.setdefault("Content-Type", "image/png")
    # The signature in the URL is the credential: the API key never goes to the storage host.
    put = flow.call("PUT", str(url), "upload reference bytes", headers=headers, auth=False, content=reference_png())
    flow.require(
        200 <= put.status_code < 300,
        "UploadRejected",
        "the signed upload URL refused a real PNG",
        expected="2xx",
        actual=f"{put.status_code} {error_code(put) or ''}".strip(),
    )
    return str(upload_id)


def _classify(flow: Flow, upload_id: str) -> str:
    response = flow.call(
        "POST", "/v1/characters/uploads/classify", "classify upload", json_body={"upload_id": upload_id}
    )
    answer = flow.body(response, (200,), "ClassifyFailed", "classifying an uploaded image failed")
    pose, confidence = answer.get("pose"), answer.get("confidence")
    flow.check(
        pose in POSES,
        "ClassifyInvalid",
        "the classified pose is not a documented pose",
        expected=sorted(POSES),
        actual=pose,
    )
    in_range = isinstance(confidence, int | float) and 0 <= confidence <= 1
    flow.check(
        in_range,
        "ClassifyInvalid",
        "the classification confidence is not within 0–1",
        expected="0–1",
        actual=confidence,
    )
    return str(pose)


def _create_from_upload(flow: Flow, upload_id: str, pose: str) -> str:
    body = {"name": "Kit Reference", "upload_ids": [upload_id]}
    response = flow.call(
        "POST", "/v1/characters", "create character from upload", operation="createCharacter", json_body=body
    )
    character = flow.created(response, "CharacterCreateFailed", "creating a character from an upload failed")
    character_id = character.get("id")
    flow.require(isinstance(character_id, str), "CharacterCreateFailed", "the character has no id")
    status = character.get("status")
    flow.require(
        status == "ready",
        "CharacterNotReady",
        "a character from uploads is not ready at once",
        expected="ready",
        actual=status,
    )
    refs = [ref.get("pose") for ref in character.get("refs") or [] if isinstance(ref, dict)]
    flow.check(
        refs == [pose], "CharacterRefsMismatch", "the refs are not the classified upload", expected=[pose], actual=refs
    )
    read = flow.read(f"/v1/characters/{character_id}", "read character")
    flow.check(
        read.get("status") == "ready",
        "CharacterNotReady",
        "the character reads back not ready",
        expected="ready",
        actual=read.get("status"),
    )
    return str(character_id)


def _use(flow: Flow, character_id: str) -> None:
    """A ready character generates an image-to-image generation at the plain price (§2.1: no surcharge)."""
    body = cheapest("createImage", {**IMAGE, "character_id": character_id})
    estimate = flow.estimate("image", body, "estimate image with character")
    plain = flow.estimate("image", cheapest("createImage", IMAGE), "estimate image without character")
    flow.check(
        abs(estimate - plain) < EPSILON,
        "CharacterChangedPrice",
        "character_id changed the price",
        expected=plain,
        actual=estimate,
    )
    response = flow.call("POST", "/v1/images", "create image with character", operation="createImage", json_body=body)
    flow.require(
        200 <= response.status_code < 300 or response.status_code == 402,
        "CharacterNotUsable",
        "a ready character cannot be used in a generation",
        expected="201",
        actual=f"{response.status_code} {error_code(response) or ''}".strip(),
    )
    generation = flow.created(response, "CharacterNotUsable", "the generation is not a JSON object")
    flow.charged_as_estimated(generation, estimate, "at create with a character")
    echoed = generation.get("character_id")
    flow.check(
        echoed == character_id,
        "CharacterNotUsable",
        "the generation does not carry its character_id",
        expected=character_id,
        actual=echoed,
    )
    dispatch = generation.get("inference_type")
    flow.check(
        dispatch == "i2i",
        "CharacterNotUsable",
        "a character generation is not image-to-image",
        expected="i2i",
        actual=dispatch,
    )
    # The property is shown; cancelling releases the hold, which spares a live target's credits.
    flow.call("POST", f"/v1/images/{generation.get('id')}/cancel", "cancel image with character")


def _delete(flow: Flow, character_id: str) -> None:
    """Soft delete: confirmed, not readable (404, §8.14), refused by POST /v1/images (400 character_not_ready)."""
    answer = flow.body(
        flow.call("DELETE", f"/v1/characters/{character_id}", "delete character"),
        (200,),
        "CharacterDeleteFailed",
        "DELETE failed",
    )
    confirmed = answer.get("deleted") is True and answer.get("id") == character_id
    flow.check(
        confirmed,
        "CharacterDeleteFailed",
        "the delete answer does not confirm it",
        expected={"id": character_id, "deleted": True},
        actual=answer,
    )
    read = flow.call("GET", f"/v1/characters/{character_id}", "read deleted character")
    if read.status_code == 200:  # the delete page says a deleted character stays readable for audit (§8.14)
        status = flow.body(read, (200,), "CharacterNotReadable", "GET failed").get("status")
        flow.check(
            status == "deleted",
            "DeletedCharacterNotDeleted",
            "a deleted character reads back alive",
            expected="deleted",
            actual=status,
        )
    else:
        flow.rejected(
            read, 404, "resource_not_found", "DeletedCharacterNotDeleted", "a deleted character's GET is not 404"
        )
    _refused_after_delete(flow, character_id)


def _refused_after_delete(flow: Flow, character_id: str) -> None:
    """Reference §2.1: ``character_id`` must be ``ready``, else ``400 character_not_ready`` (soft-deleted too)."""
    body = cheapest("createImage", {**IMAGE, "character_id": character_id})
    response = flow.call(
        "POST", "/v1/images", "create image with deleted character", operation="createImage", json_body=body
    )
    if 200 <= response.status_code < 300:
        flow.check(
            False,
            "CharacterUsableAfterDelete",
            "a deleted character still generates images",
            expected="400 character_not_ready",
            actual=response.status_code,
        )
        created = flow.body(response, (200, 201, 202), "CharacterUsableAfterDelete", "the generation is not JSON")
        flow.call("POST", f"/v1/images/{created.get('id')}/cancel", "cancel image with deleted character")
    else:
        flow.rejected(
            response,
            400,
            "character_not_ready",
            "DeletedCharacterWrongError",
            "a deleted character is not refused with 400 character_not_ready",
        )


def _synthesis(flow: Flow) -> None:
    """``generate: true``: ``synthesizing`` → ``ready`` with the four poses, holding then charging 4 generations."""
    if not flow.session.clock_control:
        flow.note("synthesis (generate: true) not checked: it takes 30–90 s and needs the target's clock")
        return
    price = SYNTHESIS_GENERATIONS * flow.estimate("image", cheapest("createImage", IMAGE), "estimate one generation")
    before = flow.balance("balance before synthesis")
    body = {"name": "Kit Synthesis", "generate": True, "attributes": ATTRIBUTES}
    response = flow.call("POST", "/v1/characters", "synthesize character", operation="createCharacter", json_body=body)
    character = flow.created(response, "SynthesisRefused", "a synthesis (generate: true) was refused")
    flow.require(isinstance(character.get("id"), str), "SynthesisRefused", "the character has no id")
    status = character.get("status")
    flow.require(
        status == "synthesizing",
        "SynthesisNotAsync",
        "a synthesis does not start synthesizing",
        expected="synthesizing",
        actual=status,
    )
    held = flow.balance_moved(
        before,
        "balance after synthesis starts",
        "SynthesisHoldMismatch",
        "a synthesis does not hold 4 generations",
        held=price,
        spent=0,
        owned=character["id"],
    )
    quiet = held is not None and before is not None and abs(held.held - before.held - price) < EPSILON
    _book_hold(flow, character, before.held if quiet and before else 0.0, held.held if quiet and held else price)
    _settle_synthesis(flow, character)
    flow.balance_moved(
        before,
        "balance after synthesis",
        "SynthesisChargeMismatch",
        "a synthesis does not charge 4 generations",
        held=0,
        spent=price,
        owned=character["id"],
    )
    flow.call("DELETE", f"/v1/characters/{character['id']}", "delete synthesized character")


def _settle_synthesis(flow: Flow, character: dict[str, Any]) -> None:
    """Poll to ``ready`` (saving it if the original flow stops at ``reviewing``): the four poses are there."""
    final = flow.poll(
        f"/v1/characters/{character['id']}",
        "character",
        character,
        order=CHARACTER_ORDER,
        terminal=SETTLED,
        deadline=300,
    )
    if final.get("status") == "reviewing":  # the original flow: `save` makes it ready (§2.6)
        final = flow.body(
            flow.call("POST", f"/v1/characters/{character['id']}/save", "save character"),
            (200,),
            "SaveFailed",
            "save failed",
        )
    outcome = f"{final.get('status')} ({final.get('error_message')})"
    flow.require(
        final.get("status") == "ready",
        "SynthesisFailed",
        "the synthesis did not become ready",
        expected="ready",
        actual=outcome,
    )
    poses = sorted({str(ref.get("pose")) for ref in final.get("refs") or [] if isinstance(ref, dict)})
    flow.check(
        set(poses) == SYNTHESIZED_POSES,
        "SynthesisPosesMissing",
        "the refs are not the four poses",
        expected=sorted(SYNTHESIZED_POSES),
        actual=poses,
    )


def _book_hold(flow: Flow, character: dict[str, Any], held_before: float, held_after: float) -> None:
    """A character carries no ``cost``, so the budget would book nothing: book what the balance shows held."""
    extra = held_after - held_before - charged(character)
    if extra > EPSILON:
        flow.session.budget.book("createCharacter", {"cost": {"amount": extra}})


def character_workflow(flow: Flow) -> None:
    upload_id = _upload(flow)
    pose = _classify(flow, upload_id)
    character_id = _create_from_upload(flow, upload_id, pose)
    _use(flow, character_id)
    _delete(flow, character_id)
    _synthesis(flow)
