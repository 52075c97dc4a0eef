"""Flag defaults and choices read from the library's source, without importing it.

A command's flags take their defaults from where the library decides them (`Reranker.from_pretrained`,
`ServerSettings`, `DistillConfig`, ...), but those modules import torch, fastapi or pyarrow: seconds
of startup that `ettin-rerank CMD --help` and a mistyped flag should not pay. This module reads the
same values from the modules' source with `ast`, importing nothing: a function's parameter defaults,
a dataclass's field defaults, a module-level constant.

It reads plain data only: literals, arithmetic on them, names bound in the module or imported from
another module of the package, tuples of a dict's keys, comprehensions over those, and instances of
the module's own dataclasses (the `SIZES` registry). Anything else raises `NotReadable` naming the
line, so a default that stops being plain data fails loudly instead of drifting; tests compare
every value read here with the imported one (tests/cli/test_startup.py).
"""

from __future__ import annotations

import ast
import functools
import operator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

PACKAGE = "ettin_rerank"
PACKAGE_DIR = Path(__file__).resolve().parents[1]

# calls allowed on values already read: each builds plain data from plain data
BUILTINS = {"list": list, "tuple": tuple, "dict": dict, "set": set, "frozenset": frozenset, "sorted": sorted}
BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
NO_VALUE = object()  # a dataclass field or a parameter without a default

# every value read, by "module:name": what the tests hold to the imported values
READ: dict[str, Any] = {}


class NotReadable(ValueError):
    """A default that is not plain data in the source (a call, a computed value): import it instead."""


def read_defaults(target: str) -> SimpleNamespace:
    """The defaults of `module:function`, `module:Class.method` or `module:Dataclass`, as
    `options.defaults_of` gives them for the imported object (default factories called)."""
    module, name = target.split(":")
    source = ModuleSource.of(module)
    node = source.definition(name)
    if isinstance(node, ast.ClassDef):
        values = {
            field: value for field, value in source.dataclass_fields(node).items() if value is not NO_VALUE
        }
    else:
        values = source.parameter_defaults(node)
    READ[target] = values
    return SimpleNamespace(**values)


def read_constant(target: str) -> Any:
    """The value bound to `module:NAME` at module level."""
    module, name = target.split(":")
    value = ModuleSource.of(module).binding(name)
    READ[target] = value
    return value


class StaticClass:
    """A class of the package as its source declares it: its plain-data class attributes and, for a
    dataclass, its fields in order (calling it builds a namespace of those)."""

    def __init__(self, source: ModuleSource, node: ast.ClassDef):
        self.source = source
        self.node = node

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        for statement in self.node.body:
            if isinstance(statement, ast.Assign | ast.AnnAssign) and name in _targets(statement):
                return self.source.evaluate(statement.value)
        raise NotReadable(f"{self.source.where(self.node)}: {self.node.name} has no plain {name!r}")

    def __call__(self, *args: Any, **kwargs: Any) -> SimpleNamespace:
        fields = self.source.dataclass_fields(self.node)
        values = dict(zip(fields, args, strict=False)) | kwargs
        for field, default in fields.items():
            values.setdefault(field, default)
        return SimpleNamespace(**values)


class ModuleSource:
    """One module of the package, parsed but never executed."""

    def __init__(self, name: str, path: Path):
        self.name = name
        self.path = path
        self.is_package = path.name == "__init__.py"
        self.tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    @staticmethod
    @functools.cache
    def of(name: str) -> ModuleSource:
        """The module `name` of this package, parsed once per process."""
        if name != PACKAGE and not name.startswith(PACKAGE + "."):
            raise NotReadable(f"{name} is not part of {PACKAGE}")
        path = PACKAGE_DIR / name.removeprefix(PACKAGE).strip(".").replace(".", "/")
        return ModuleSource(name, path / "__init__.py" if path.is_dir() else path.with_suffix(".py"))

    def where(self, node: ast.AST) -> str:
        return f"{self.path}:{getattr(node, 'lineno', '?')}"

    def definition(self, qualname: str) -> ast.FunctionDef | ast.ClassDef:
        """The def or class statement named `qualname` (`Class.method` for a method)."""
        body: list[ast.stmt] = self.tree.body
        node = None
        for part in qualname.split("."):
            node = next(
                (n for n in body if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == part), None
            )
            if node is None:
                raise NotReadable(f"{self.name} defines no {qualname}")
            body = node.body
        return node

    @functools.cache  # noqa: B019 (one instance per module, kept for the process's life anyway)
    def binding(self, name: str) -> Any:
        """What `name` is bound to at module level: an assignment, an import from the package, a class."""
        for statement in reversed(self.tree.body):  # the last binding wins, as it does when executed
            if isinstance(statement, ast.Assign | ast.AnnAssign) and name in _targets(statement):
                return self.evaluate(statement.value)
            if isinstance(statement, ast.ClassDef) and statement.name == name:
                return StaticClass(self, statement)
            if isinstance(statement, ast.ImportFrom):
                for alias in statement.names:
                    if (alias.asname or alias.name) == name:
                        return ModuleSource.of(self._absolute(statement)).binding(alias.name)
        raise NotReadable(f"{self.name} binds no {name!r} at module level")

    def _absolute(self, statement: ast.ImportFrom) -> str:
        if not statement.level:
            return statement.module or ""
        parts = self.name.split(".")
        base = parts if self.is_package else parts[:-1]
        base = base[: len(base) - statement.level + 1]
        return ".".join(base + ([statement.module] if statement.module else []))

    def parameter_defaults(self, node: ast.FunctionDef) -> dict[str, Any]:
        arguments = node.args
        positional = arguments.posonlyargs + arguments.args
        pairs = list(
            zip(positional[len(positional) - len(arguments.defaults) :], arguments.defaults, strict=True)
        )
        pairs += [
            (a, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True) if d is not None
        ]
        return {argument.arg: self.evaluate(default) for argument, default in pairs}

    def dataclass_fields(self, node: ast.ClassDef) -> dict[str, Any]:
        """A dataclass's fields in order, each with its default (`NO_VALUE` when it has none)."""
        if not any(_decorator_name(d) == "dataclass" for d in node.decorator_list):
            raise NotReadable(f"{self.where(node)}: {node.name} is not a dataclass")
        fields: dict[str, Any] = {}
        for statement in node.body:
            if not isinstance(statement, ast.AnnAssign) or not isinstance(statement.target, ast.Name):
                continue
            if "ClassVar" in ast.unparse(statement.annotation):
                continue
            fields[statement.target.id] = self._field_default(statement.value)
        return fields

    def _field_default(self, value: ast.expr | None) -> Any:
        if value is None:
            return NO_VALUE
        if isinstance(value, ast.Call) and _call_name(value) == "field":
            keywords = {keyword.arg: keyword.value for keyword in value.keywords}
            if "default" in keywords:
                return self.evaluate(keywords["default"])
            if "default_factory" in keywords:
                factory = keywords["default_factory"]
                if isinstance(factory, ast.Lambda):
                    return self.evaluate(factory.body)
                return self.evaluate(ast.Call(func=factory, args=[], keywords=[]))
            return NO_VALUE
        return self.evaluate(value)

    def evaluate(self, node: ast.expr, scope: dict[str, Any] | None = None) -> Any:
        """The value of an expression made of plain data (see the module's docstring)."""
        scope = scope or {}
        match node:
            case ast.Constant(value=value):
                return value
            case ast.Name(id=name):
                return scope[name] if name in scope else self.binding(name)
            case ast.Tuple(elts=elements) | ast.List(elts=elements) | ast.Set(elts=elements):
                values = []
                for element in elements:
                    if isinstance(element, ast.Starred):
                        values.extend(self.evaluate(element.value, scope))  # a dict gives its keys
                    else:
                        values.append(self.evaluate(element, scope))
                kind = {ast.Tuple: tuple, ast.List: list, ast.Set: set}[type(node)]
                return kind(values)
            case ast.Dict(keys=keys, values=values):
                result = {}
                for key, value in zip(keys, values, strict=True):
                    if key is None:  # {**other}
                        result.update(self.evaluate(value, scope))
                    else:
                        result[self.evaluate(key, scope)] = self.evaluate(value, scope)
                return result
            case ast.BinOp(left=left, op=op, right=right) if type(op) in BINARY:
                return BINARY[type(op)](self.evaluate(left, scope), self.evaluate(right, scope))
            case ast.UnaryOp(op=op, operand=operand) if type(op) in UNARY:
                return UNARY[type(op)](self.evaluate(operand, scope))
            case ast.Attribute(value=value, attr=attribute):
                return getattr(self.evaluate(value, scope), attribute)
            case ast.DictComp() | ast.ListComp() | ast.SetComp() | ast.GeneratorExp():
                return self._comprehension(node, scope)
            case ast.Call(func=ast.Name(id=name)) if name in BUILTINS and name not in scope:
                args = [self.evaluate(argument, scope) for argument in node.args]
                if node.keywords:
                    raise NotReadable(f"{self.where(node)}: keyword arguments in {ast.unparse(node)}")
                return BUILTINS[name](*args)
            case ast.Call(func=function):
                try:
                    called = self.evaluate(function, scope)
                except NotReadable:
                    called = None  # a function, an imported module's attribute: not read
                if not isinstance(called, StaticClass):
                    raise NotReadable(f"{self.where(node)}: {ast.unparse(node)} is a call, not plain data")
                args = [self.evaluate(argument, scope) for argument in node.args]
                kwargs = {keyword.arg: self.evaluate(keyword.value, scope) for keyword in node.keywords}
                return called(*args, **kwargs)
        raise NotReadable(f"{self.where(node)}: {ast.unparse(node)} is not plain data")

    def _comprehension(self, node: ast.expr, scope: dict[str, Any]) -> Any:
        if len(node.generators) != 1 or not isinstance(node.generators[0].target, ast.Name):
            raise NotReadable(f"{self.where(node)}: only single `for NAME in ...` comprehensions are read")
        generator = node.generators[0]
        items = []
        for item in self.evaluate(generator.iter, scope):
            inner = scope | {generator.target.id: item}
            if all(self.evaluate(condition, inner) for condition in generator.ifs):
                items.append(inner)
        if isinstance(node, ast.DictComp):
            return {self.evaluate(node.key, inner): self.evaluate(node.value, inner) for inner in items}
        values = [self.evaluate(node.elt, inner) for inner in items]
        return set(values) if isinstance(node, ast.SetComp) else values


def _targets(statement: ast.Assign | ast.AnnAssign) -> list[str]:
    """The names a statement binds to a value (`x: int` alone binds none)."""
    if statement.value is None:
        return []
    targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
    return [target.id for target in targets if isinstance(target, ast.Name)]


def _call_name(node: ast.Call) -> str:
    function = node.func
    return function.id if isinstance(function, ast.Name) else getattr(function, "attr", "")


def _decorator_name(node: ast.expr) -> str:
    return _call_name(node) if isinstance(node, ast.Call) else ast.unparse(node).rsplit(".", 1)[-1]
