"""CyberTipline reporting: build, validate, submit, finish and track NCMEC reports.

* :mod:`.builder` -- dataclasses -> ``<report>`` / ``<fileDetails>`` XML;
* :mod:`.xsd` -- safe XML parsing, XSD loading (file or the API's ``/xsd``, cached)
  and structured validation;
* :mod:`.client` -- the HTTP client (test / production environments, retries that
  never file twice);
* :mod:`.lifecycle` -- the state machine in the database, expiry, ``tick``;
* :mod:`.drafts` -- report drafts from review cases;
* :mod:`.transparency` -- transparency metrics (JSON / CSV) a platform publishes.

See ``docs/CYBERTIPLINE.md``.
"""

from __future__ import annotations

from .errors import ReportError

__all__ = ["ReportError"]
