"""fatools: facial action analysis of videos with facetorch, as composable Unix tools."""

__version__ = "0.1.0"
