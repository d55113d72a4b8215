"""MD5 of the file's bytes: what NCMEC and most industry hash lists still share."""

from __future__ import annotations

from .base import CryptoSignalType


class MD5Type(CryptoSignalType):
    name = "md5"
    description = "MD5 of the file's bytes (exact match)"
    hex_length = 32
    hma_names = ("video_md5", "md5")
    threatexchange_names = ("video_md5", "photo_md5", "md5")
    vics_field = "MD5"
    vics_names = ("md5",)
