"""`TextField`: one piece of text a model carries about itself, as the judge sees it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: How the judge weighs a field (see :mod:`sentinelle.modelguard.judge`):
#: ``tag``: a training caption tag, weighed by how many images carried it;
#: ``name``: output name, title, file name, base model name;
#: ``trigger``: trigger words / activation text / instance prompt / added tokens;
#: ``dataset``: a training image folder name;
#: ``prompt``: a prompt stored in the file (ComfyUI workflow, sample prompts);
#: ``text``: free text (description, model card, comments): may quote what it forbids.
KINDS = ("tag", "name", "trigger", "dataset", "prompt", "text")


@dataclass(frozen=True, slots=True)
class TextField:
    field: str  # where it came from: "ss_tag_frequency", "modelspec.title", "README.md", ...
    text: str
    kind: str
    count: int | None = None  # images tagged with it (tags) or in the folder (datasets)
    context: str | None = None  # the dataset folder a tag came from, ...

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"field": self.field, "text": self.text, "kind": self.kind}
        if self.count is not None:
            d["count"] = self.count
        if self.context is not None:
            d["context"] = self.context
        return d
