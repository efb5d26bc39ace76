"""Config model of the Pricer Plaza driver."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gateway.actuator import LabelDeviceConfig
from gateway.config.fields import As
from gateway.config.secrets import Secret  # noqa: TC001 - pydantic reads annotations at run time
from gateway.config.types import duration


class PricerConfig(LabelDeviceConfig):
    """One store on Pricer Plaza (HTTPS API; labels are linked to items on the server)."""

    driver: Literal["pricer"] = "pricer"
    url: str = Field(
        pattern=r"^https?://[^/\s]+/?$",
        description="Store base URL, https://<storeid>.<tenant>.pcm.pricer-plaza.com.",
    )
    token_url: str = Field(
        "https://iam.pricer-plaza.com/api/v1/oauth/token",
        pattern=r"^https?://\S+$",
        description="Where an API key is exchanged for a bearer token.",
    )
    access_key: Secret = Field(description="API key from the Pricer Home portal (use ${ENV}).")
    client_id: str = Field(min_length=1, description="X-Pricer-Client-Id sent with the key.")
    poll: Annotated[float, As(duration("1s", "1h"))] = Field(
        10.0, description="How often labels awaiting confirmation are polled."
    )
    request_timeout: Annotated[float, As(duration("100ms", "2m"))] = Field(
        30.0, description="Timeout of one HTTP request."
    )
