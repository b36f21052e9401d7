"""``/restrictions``: what a user agrees to before registering."""

from __future__ import annotations

from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from labelyard.api.routing import GatedRouter

router = GatedRouter(prefix="/restrictions", tags=["restrictions"])

TERMS_OF_USE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Terms of use</title></head>
<body><h1>Terms of use</h1>
<p>This labelyard server is run by its operator. Data you upload and annotations you make
are stored on this server and are visible to the people the operator grants access to.</p>
</body></html>
"""


class UserAgreementOut(BaseModel):
    name: str
    display_text: str
    url: str
    required: bool


@router.get("/terms-of-use", response_class=HTMLResponse)
def terms_of_use() -> str:
    return TERMS_OF_USE


@router.get("/user-agreements", response_model=list[UserAgreementOut])
def user_agreements() -> list[UserAgreementOut]:
    """Agreements a new user must accept; this server asks for none."""
    return []
