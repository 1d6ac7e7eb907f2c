"""Built-in analyses, by the ``kind`` the config names them with."""
from .base import Analysis, AnalysisError, Coord, Piece, Variable
from .climatology import Climatology
from .coarsen import Coarsen
from .exceedance import Exceedance
from .fault import Fault, InjectedFault
from .histogram import Histogram
from .pointwise import Pointwise
from .probe import Probe
from .python import PythonAnalysis
from .spell import Spell
from .reduce import Reduce
from .stats import Stats
from .window import Window

REGISTRY: dict[str, type[Analysis]] = {
    cls.kind: cls for cls in (Stats, Histogram, Reduce, Coarsen, Probe, PythonAnalysis,
                              Window, Fault, Exceedance, Climatology, Spell,
                              Pointwise)}


def build(cfg_analyses: list[dict], rank: int = 0, size: int = 1) -> list[Analysis]:
    """Instantiate the analyses of a validated config, in config order.

    A per-point analysis (spell, pointwise: :mod:`.perpoint`) is followed by
    its companion, the follower that writes its rows along its own axis."""
    out = []
    for i, a in enumerate(cfg_analyses):
        analysis = REGISTRY[a["kind"]](i, a, rank, size)
        out.append(analysis)
        if getattr(analysis, "has_companion", False):
            out.append(analysis.companion())
    return out


__all__ = ["Analysis", "AnalysisError", "Coord", "InjectedFault", "Piece", "Variable",
           "REGISTRY", "build"]
