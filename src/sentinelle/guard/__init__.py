"""Generation guards: stop text-to-image services from producing sexualised images of minors.

* :class:`PromptGuard` (this package) checks prompts before generation;
* :mod:`sentinelle.guard.image` checks generated images (optional detectors);
* :mod:`sentinelle.guard.attempts` logs blocks and escalates repeat offenders.

    from sentinelle.guard import PromptGuard
    PromptGuard().check("a child eating cake").decision   # "allow"
"""

from .lexicon import LexiconError, Lexicons, default_lexicons
from .policy import GuardPolicy
from .prompt import CATEGORY_NAMES, PromptGuard, PromptResult

__all__ = [
    "CATEGORY_NAMES",
    "GuardPolicy",
    "LexiconError",
    "Lexicons",
    "PromptGuard",
    "PromptResult",
    "default_lexicons",
]
