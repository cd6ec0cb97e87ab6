"""An import-linter contract the built-in ones lack: a package imports only the standard library.

`agent.parsers` must stay pure functions over text (no HTTP, YAML, Slurm or other agent modules),
so the parsers run anywhere, in benchmarks and under test, and cannot slow the agent's hooks.
Configured in setup.cfg ([importlinter:contract:...] with `type = standard_library_only`).
"""

from __future__ import annotations

import sys

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class StandardLibraryOnlyContract(Contract):
    """Modules of `packages` import only their package, the standard library, `allowed_modules`."""

    type_name = "standard_library_only"

    packages = fields.ListField(subfield=fields.ModuleField())
    allowed_modules = fields.ListField(subfield=fields.ModuleField(), required=False)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        allowed = [module.name for module in self.allowed_modules or []]
        violations = []
        for package in (module.name for module in self.packages):
            for importer in sorted({package} | graph.find_descendants(package)):
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    if _inside(imported, [package, *allowed]):
                        continue
                    if imported.split(".")[0] in sys.stdlib_module_names:
                        continue
                    lines = [
                        detail["line_number"]
                        for detail in graph.get_import_details(importer=importer, imported=imported)
                    ]
                    violations.append((importer, imported, lines))
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for importer, imported, lines in check.metadata["violations"]:
            where = ", ".join(f"l.{line}" for line in lines)
            output.print_error(f"{importer} imports {imported} ({where}), not the standard library")
            output.new_line()


def _inside(module: str, packages: list[str]) -> bool:
    return any(module == package or module.startswith(f"{package}.") for package in packages)
