"""Config model of a POS capture device: a till's serial stream and how to read it."""

from __future__ import annotations

import codecs
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from drivers.pos_serial.display import PoleDisplayParser
from drivers.pos_serial.parsing import LineFormat, ReceiptFormat, ReceiptParser
from gateway import DriverConfig
from gateway.config.fields import As
from gateway.config.types import duration
from gateway.serial_port import SerialPortFields

_RECEIPT = ReceiptFormat()


class Format(StrEnum):
    """Which of the till's streams is tapped (contract.md "POS capture", protocols.md §4.3)."""

    LINE = "line"  # one complete sale per line, read with `pattern`
    RECEIPT = "receipt"  # an ESC/POS receipt printer stream, read with `receipt` patterns
    DISPLAY = "display"  # a customer pole display (Epson or CD5220 command set)


class ReceiptPatterns(BaseModel):
    """Regular expressions for one POS's receipt layout; the defaults read protocols.md §4.2."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: str = Field(
        _RECEIPT.item,
        description="An item line: groups name or sku, and price or amount (qty optional).",
    )
    quantity: str | None = Field(
        _RECEIPT.quantity,
        description="A quantity continuation line ('  2 x 1.20   2.40'): groups qty, price.",
    )
    discount: str | None = Field(
        _RECEIPT.discount, description="A discount line lowering the item above: group amount."
    )
    total: str = Field(_RECEIPT.total, description="The receipt total: group total.")
    txn: str = Field(
        _RECEIPT.txn, description="The footer with the transaction number: group txn (ts)."
    )
    ignore: str | None = Field(
        _RECEIPT.ignore, description="Lines to skip without counting them (subtotal, payment)."
    )
    end: str | None = Field(
        _RECEIPT.end,
        description="A line that ends the receipt; by default the paper cut or idle time does.",
    )

    def receipt_format(self) -> ReceiptFormat:
        """The parser's view of these patterns."""
        return ReceiptFormat(
            self.item, self.quantity, self.discount, self.total, self.txn, self.ignore, self.end
        )


class DisplayPatterns(BaseModel):
    """How a pole display's screens are told apart."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    total: str = Field(
        r"^\s*(?:SUB)?TOTAL\b",
        description="A screen showing the total: the end of a transaction on the display.",
    )
    ignore: str | None = Field(
        r"^\s*(?:CASH|CHANGE|CARD|WELCOME|THANK)",
        description="Screens that are no item (greetings, payment).",
    )


class PosSerialConfig(DriverConfig, SerialPortFields):
    """A till's pole display, receipt printer or sale-line stream on a serial port."""

    driver: Literal["pos_serial"] = "pos_serial"
    format: Format = Field(
        description="line: one sale per line (needs pattern); receipt: ESC/POS printer "
        "stream; display: customer pole display."
    )
    pattern: str | None = Field(
        None,
        description=(
            "line format: a regular expression with named groups txn, sku, qty, price "
            "(optional amount, name, ts)."
        ),
    )
    receipt: ReceiptPatterns = Field(
        default_factory=ReceiptPatterns, description="receipt format: the layout's patterns."
    )
    display: DisplayPatterns = Field(
        default_factory=DisplayPatterns, description="display format: total and ignore screens."
    )
    encoding: str = Field(
        "utf-8", description="Text encoding of the stream: utf-8, gb18030, cp437, cp1252, ..."
    )
    decimal_separator: Literal[".", ","] = Field(".", description="Decimal separator of prices.")
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217 code of prices.")
    timeout: Annotated[float, As(duration("100ms", "1m"))] = Field(
        5.0,
        description="Silence that ends an open receipt (or reads the last display screen).",
    )

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}: try utf-8, gb18030 or cp437") from None
        return value

    @model_validator(mode="after")
    def _patterns_compile(self) -> Self:
        # Build each parser once now: a bad pattern is a config error, not a crash at run time.
        if self.format is Format.LINE:
            if self.pattern is None:
                raise ValueError("format 'line' needs a pattern")
            LineFormat(self.pattern, self.decimal_separator)
        elif self.format is Format.RECEIPT:
            ReceiptParser(self.receipt.receipt_format(), self.decimal_separator)
        else:
            PoleDisplayParser(
                self.encoding, self.display.total, self.display.ignore, self.decimal_separator
            )
        return self
