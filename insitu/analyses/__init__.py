"""Built-in analyses, by the ``kind`` the config names them with."""
from .base import Analysis, AnalysisError, Variable
from .stats import Stats

REGISTRY: dict[str, type[Analysis]] = {cls.kind: cls for cls in (Stats,)}


def build(cfg_analyses: list[dict]) -> list[Analysis]:
    """Instantiate the analyses of a validated config, in config order."""
    return [REGISTRY[a["kind"]](i, a) for i, a in enumerate(cfg_analyses)]


__all__ = ["Analysis", "AnalysisError", "Variable", "REGISTRY", "build"]
