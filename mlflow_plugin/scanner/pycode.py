"""Static analysis of the Python code a model loads (models-from-code, ``code_paths``, loaders).

The code is parsed with :mod:`ast`, never imported or executed. What is reported:

- calls to process/shell, network, dynamic-code, native and deserialisation APIs
  (``os.system``, ``subprocess``, ``socket``, ``requests``, ``exec``/``eval``/``compile``,
  ``ctypes``/``cffi``, ``pickle.loads``/``marshal.loads``/``torch.load(weights_only=False)``);
  at module level, in a class body, a decorator or a default argument they run when MLflow
  imports the module (``load_model``) and are **critical**; inside a function the admin policy
  (``[scan] code_in_functions``, default medium) sets the severity;
- ``exec``/``eval``/``compile`` fed by decoded (base64, zlib, hex, codecs, marshal) or
  downloaded data: critical anywhere (``code.obfuscated-exec``);
- ``__import__``/``importlib.import_module`` of a computed name: high (``code.dynamic-import``).
- ``torch.hub.load`` and ``from_pretrained(..., trust_remote_code=True)`` fetch and run code
  (``code.remote-code``, severity as for the other calls).

Rule ids: ``code.shell``, ``code.network``, ``code.dynamic-code``, ``code.native``,
``code.deserialize``, ``code.remote-code``, ``code.obfuscated-exec``, ``code.dynamic-import``,
``code.dynamic-attribute``, ``code.unparsable``, ``code.too-large``, ``code.too-complex``,
``code.more-findings``. Messages name ``path:line``, what runs, when, and the fix.

Aliases are resolved (``import os as o``, ``from subprocess import run as r``,
``from os import *``, ``s = os.system``, ``getattr(os, "system")``, ``__import__("os").system``).
Python 2 files that do not parse are analysed token by token (``code.unparsable`` says so).
Plain model code (numpy, pandas, torch, sklearn, mlflow calls) gives no finding.

>>> import io
>>> from mlflow_plugin.scanner.api import _new_context
>>> ctx = _new_context("model.py", None, None)
>>> src = b"import os as o\\no.system('curl x | sh')\\n"
>>> scan_python(ctx, "model.py", io.BytesIO(src), len(src))
>>> [(f.severity.name, f.rule) for f in ctx.report_obj.findings]
[('CRITICAL', 'code.shell')]
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from dataclasses import dataclass
from typing import IO

from mlflow_plugin.scanner.context import ScanContext
from mlflow_plugin.scanner.report import Severity

MAX_PYTHON = 4 << 20  # bytes of one source file that are parsed
MAX_FINDINGS = 50  # per file; the rest are summarised

# category -> (rule, what it does, fix)
_CATS = {
    "shell": (
        "code.shell",
        "starts a process / shell command",
        "remove it; model code must not run commands",
    ),
    "network": (
        "code.network",
        "opens a network connection",
        "remove it; ship what the model needs as artifacts instead of downloading it",
    ),
    "dynamic": (
        "code.dynamic-code",
        "runs dynamically built code",
        "replace exec/eval/compile with ordinary code",
    ),
    "native": (
        "code.native",
        "loads or calls native code (ctypes, cffi, torch custom-operator libraries)",
        "remove it or ship a reviewed package",
    ),
    "remote": (
        "code.remote-code",
        "downloads and runs code from the internet",
        "ship the code with the model (code_paths) instead of fetching it at run time",
    ),
    "deserialize": (
        "code.deserialize",
        "deserialises data that can execute code",
        "load weights with a safe format (safetensors, torch.load(weights_only=True), json)",
    ),
}

_EXACT: dict[str, str] = {}
for _n in [
    "os.system",
    "posix.system",
    "nt.system",
    "posix.popen",
    "os.popen",
    "os.fork",
    "os.forkpty",
    "os.posix_spawn",
    "os.posix_spawnp",
    "os.startfile",
    "pty.spawn",
    "commands.getoutput",
    "commands.getstatusoutput",
    "platform.popen",
    "asyncio.create_subprocess_exec",
    "asyncio.create_subprocess_shell",
]:
    _EXACT[_n] = "shell"
for _n in [
    "urllib.request.urlopen",
    "urllib.request.urlretrieve",
    "urllib.urlopen",
    "urllib.urlretrieve",
    "urllib2.urlopen",
    "http.client.HTTPConnection",
    "http.client.HTTPSConnection",
    "httplib.HTTPConnection",
    "httplib.HTTPSConnection",
    "ftplib.FTP",
    "smtplib.SMTP",
    "telnetlib.Telnet",
    "paramiko.SSHClient",
    "aiohttp.ClientSession",
    "aiohttp.request",
]:
    _EXACT[_n] = "network"
for _n in [
    "exec",
    "eval",
    "compile",
    "execfile",
    "builtins.exec",
    "builtins.eval",
    "builtins.compile",
    "__builtin__.eval",
    "__builtin__.execfile",
    "runpy.run_path",
    "imp.load_source",
    "imp.load_module",
    "runpy.run_module",
    "types.FunctionType",
    "types.CodeType",
]:
    _EXACT[_n] = "dynamic"
for _n in [
    "pickle.loads",
    "cPickle.loads",
    "_pickle.loads",
    "dill.loads",
    "cloudpickle.loads",
    "marshal.loads",
    "marshal.load",
    "yaml.unsafe_load",
    "shelve.open",
]:
    _EXACT[_n] = "deserialize"
for _n in [  # native libraries loaded into the process (TorchScript archives carry such code too)
    "torch.ops.load_library",
    "torch.classes.load_library",
    "torch.utils.cpp_extension.load",
    "torch.utils.cpp_extension.load_inline",
    "importlib.machinery.ExtensionFileLoader",
]:
    _EXACT[_n] = "native"
# any call under these modules
_PREFIX = {
    "subprocess": "shell",
    "popen2": "shell",
    "socket": "network",
    "requests": "network",
    "httpx": "network",
    "urllib3": "network",
    "ctypes": "native",
    "_ctypes": "native",
    "cffi": "native",
}
_OS_EXEC = re.compile(r"(?:os|posix)\.(?:exec[lv]p?e?|spawn[lv]p?e?)$")

# calls whose result is decoded / downloaded data: exec of it is obfuscation
_DECODERS = set(
    [
        "base64.b64decode",
        "base64.b32decode",
        "base64.b16decode",
        "base64.b85decode",
        "base64.a85decode",
        "base64.decodestring",
        "base64.decodebytes",
        "base64.standard_b64decode",
        "base64.urlsafe_b64decode",
        "binascii.a2b_base64",
        "binascii.unhexlify",
        "binascii.a2b_hex",
        "zlib.decompress",
        "gzip.decompress",
        "bz2.decompress",
        "lzma.decompress",
        "codecs.decode",
        "bytes.fromhex",
        "bytearray.fromhex",
        "marshal.loads",
    ]
)
_FETCH = set(
    [
        "urllib.request.urlopen",
        "urllib.urlopen",
        "urllib2.urlopen",
        "requests.get",
        "requests.post",
        "requests.request",
        "httpx.get",
        "socket.socket",
        "socket.create_connection",
    ]
)
_PY2_CODECS = ("base64", "hex", "zlib", "rot13", "rot_13", "bz2", "zip")
_DYN_IMPORT = {"__import__", "importlib.import_module", "importlib.__import__", "builtins.__import__"}
_BUILTINS = {"exec", "eval", "compile", "execfile", "__import__", "getattr"}

_WHEN_LOAD = {"load_context", "__init__", "_load_pyfunc", "__setstate__", "__reduce__", "load"}
_WHEN_PREDICT = {"predict", "predict_stream", "__call__", "forward", "transform"}


def _classify(q: str, call: ast.Call | None = None) -> str | None:
    cat = _EXACT.get(q)
    if cat:
        return cat
    if q.endswith(".exec_module"):
        return "dynamic"  # importlib: spec.loader.exec_module(mod) runs a file's code
    if _OS_EXEC.match(q):
        return "shell"
    if q in ("torch.hub.load", "torch.hub.load_state_dict_from_url"):
        return "remote" if q == "torch.hub.load" else "network"
    if call is not None and any(
        kw.arg == "trust_remote_code" and isinstance(kw.value, ast.Constant) and kw.value.value is True
        for kw in call.keywords
    ):
        return "remote"  # transformers from_pretrained(..., trust_remote_code=True)
    if q == "torch.load" and call is not None:
        for kw in call.keywords:
            if kw.arg == "weights_only" and isinstance(kw.value, ast.Constant) and kw.value.value is False:
                return "deserialize"
        return None
    head = q.split(".", 1)[0]
    if head in _PREFIX and "." in q:
        return _PREFIX[head]
    return None


@dataclass
class _Hit:
    line: int
    rule: str
    severity: Severity
    message: str
    evidence: str


class _Analyzer(ast.NodeVisitor):
    def __init__(self, path: str, source: str, fn_severity: Severity) -> None:
        self.path, self.source, self.fn_severity = path, source, fn_severity
        self.aliases: dict[str, str] = {}
        self.star: list[str] = []
        self.local_defs: set[str] = set()
        self.tainted: dict[str, str] = {}  # variable -> "decoded" / "downloaded"
        self.scope: list[str] = []  # enclosing functions; empty = runs at import
        self.hits: list[_Hit] = []
        self.seen: set[tuple[int, str, str]] = set()
        self.line_offset = 0  # inside a literal passed to exec: lines count from the exec call
        self.literal_depth = 0

    # --- name resolution -------------------------------------------------------------------
    def prepass(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.aliases[a.asname] = a.name
                    else:
                        top = a.name.split(".")[0]
                        self.aliases[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    if a.name == "*":
                        self.star.append(node.module)
                    else:
                        self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                and node.name in _BUILTINS
            ):
                self.local_defs.add(node.name)
        for _ in range(3):  # name = os.system ; payload = b64decode(...) ; code = payload.decode()
            for node in ast.walk(tree):
                if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    names = [t.id for t in targets if isinstance(t, ast.Name)]
                    if not names:
                        continue
                    q = self.resolve(node.value)
                    kind = self.taint_of(node.value)
                    for n in names:
                        if q and (_classify(q) or q in _DYN_IMPORT or q in _DECODERS or q in _FETCH):
                            self.aliases.setdefault(n, q)
                        if kind:
                            self.tainted.setdefault(n, kind)

    def resolve(self, node: ast.AST) -> str | None:
        """Dotted name an expression refers to, through aliases; None if not a name."""
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            if node.id in self.local_defs:
                return None
            if node.id in _BUILTINS:
                return node.id
            for mod in self.star:
                if _classify(f"{mod}.{node.id}") or f"{mod}.{node.id}" in _DECODERS:
                    return f"{mod}.{node.id}"
            return node.id
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Call):
            q = self.resolve(node.func)
            args = node.args
            if (
                q in ("getattr", "builtins.getattr")
                and len(args) >= 2
                and isinstance(args[1], ast.Constant)
                and isinstance(args[1].value, str)
            ):
                base = self.resolve(args[0])
                return f"{base}.{args[1].value}" if base else None
            if q in _DYN_IMPORT and args and isinstance(args[0], ast.Constant):
                return str(args[0].value)
        if isinstance(node, ast.Subscript):  # __builtins__["exec"], vars(os)["system"]
            base = self.resolve(node.value)
            sl = node.slice
            if base in ("__builtins__", "builtins.__dict__") and isinstance(sl, ast.Constant):
                return str(sl.value)
        return None

    def taint_of(self, node: ast.AST) -> str | None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in self.tainted:
                return self.tainted[sub.id]
            if isinstance(sub, ast.Call):
                q = self.resolve(sub.func)
                if q in _DECODERS or (q and q.endswith(".b64decode")):
                    return "decoded"
                if q in _FETCH or (q and _classify(q) == "network"):
                    return "downloaded"
                # Python 2: "...".decode("base64") / codecs with rot13
                if (
                    isinstance(sub.func, ast.Attribute)
                    and sub.func.attr == "decode"
                    and sub.args
                    and isinstance(sub.args[0], ast.Constant)
                    and str(sub.args[0].value).lower().replace("-", "_") in _PY2_CODECS
                ):
                    return "decoded"
        return None

    # --- scopes ----------------------------------------------------------------------------
    def _visit_def(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        # decorators, defaults and annotations run where the def is (at import for module level)
        if not isinstance(node, ast.Lambda):
            for d in node.decorator_list:
                self.visit(d)
            if node.returns:
                self.visit(node.returns)
        for d in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(d)
        self.scope.append(getattr(node, "name", "<lambda>"))
        try:
            if isinstance(node, ast.Lambda):
                self.visit(node.body)
            else:
                for stmt in node.body:
                    self.visit(stmt)
        finally:
            self.scope.pop()

    visit_FunctionDef = _visit_def
    visit_AsyncFunctionDef = _visit_def
    visit_Lambda = _visit_def

    def visit_If(self, node: ast.If) -> None:
        t = node.test
        is_main = (
            isinstance(t, ast.Compare)
            and isinstance(t.left, ast.Name)
            and t.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in t.comparators)
        )
        if not is_main:
            self.generic_visit(node)
            return
        self.visit(t)
        self.scope.append("__main__")
        try:
            for stmt in node.body:
                self.visit(stmt)
        finally:
            self.scope.pop()
        for stmt in node.orelse:
            self.visit(stmt)

    # --- calls -----------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        q = self.resolve(node.func)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "exec_module" and not q:
            q = "loader.exec_module"  # importlib: spec.loader.exec_module(mod) runs a file's code
        if not q:
            return
        if q in _DYN_IMPORT:
            if node.args and not isinstance(node.args[0], ast.Constant):
                self._hit(
                    node,
                    "code.dynamic-import",
                    Severity.HIGH,
                    f"imports a module whose name is computed at run time ({q}(...))",
                    "import modules by their literal name",
                )
            return
        if q in ("getattr", "builtins.getattr") and len(node.args) >= 2:
            base = self.resolve(node.args[0])
            if (
                not isinstance(node.args[1], ast.Constant)
                and base
                and base.split(".")[0]
                in (
                    "os",
                    "subprocess",
                    "builtins",
                    "__builtins__",
                    "socket",
                    "ctypes",
                )
            ):
                self._hit(
                    node,
                    "code.dynamic-attribute",
                    Severity.HIGH,
                    f"looks up a computed attribute of `{base}` (hides which function runs)",
                    "call the function by its name",
                )
            return
        cat = _classify(q, node)
        if cat is None:
            return
        if cat == "dynamic" and q.rsplit(".", 1)[-1] in ("exec", "eval", "compile", "execfile"):
            kind = next((k for a in node.args[:1] if (k := self.taint_of(a))), None)
            if kind:
                self._hit(
                    node,
                    "code.obfuscated-exec",
                    Severity.CRITICAL,
                    f"runs {kind} code with `{q}(...)` {self._when()}",
                    "remove it: hidden code in a model is a strong sign of tampering",
                    force=True,
                )
                return
            arg0 = node.args[0] if node.args else None
            if (
                q.rsplit(".", 1)[-1] in ("exec", "eval")
                and isinstance(arg0, ast.Constant)
                and isinstance(arg0.value, str)
                and self._visit_literal(node, arg0.value, q)
            ):
                return
        rule, what, fix = _CATS[cat]
        if not self.scope:
            sev = Severity.CRITICAL if cat != "deserialize" else Severity.HIGH
        elif cat == "native":
            sev = max(Severity.HIGH, self.fn_severity)
        elif cat == "deserialize":
            sev = Severity.MEDIUM
        else:
            sev = self.fn_severity
        self._hit(node, rule, sev, f"{what}: runs `{q}(...)` {self._when()}", fix)

    def _when(self) -> str:
        if not self.scope:
            return "when MLflow imports this module (load_model)"
        fn = self.scope[-1]
        if fn == "__main__":
            return "only when the file is run as a script"
        if fn in _WHEN_PREDICT:
            return f"in `{fn}()`, on every prediction"
        if fn in _WHEN_LOAD:
            return f"in `{fn}()`, when the model is loaded"
        return f"in `{fn}()`, when it is called"

    def _visit_literal(self, call: ast.Call, code: str, q: str) -> bool:
        """``exec("literal")``: the code is in plain sight, so analyse it as if written here."""
        if self.literal_depth >= 3 or len(code) > 100_000:
            return False
        try:
            tree = ast.parse(code, mode="eval" if q.endswith("eval") else "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False
        self._hit(
            call,
            "code.dynamic-code",
            Severity.LOW,
            f"runs literal code with `{q}(...)` {self._when()} (analysed as written)",
            "write the code directly instead of passing a string to exec/eval",
        )
        saved = (self.source, self.line_offset)
        self.source, self.line_offset = code, self.line_offset + call.lineno - 1
        self.literal_depth += 1
        try:
            self.prepass(tree)
            self.visit(tree)
        finally:
            self.source, self.line_offset = saved
            self.literal_depth -= 1
        return True

    def _hit(self, node: ast.AST, rule: str, sev: Severity, msg: str, fix: str, force: bool = False) -> None:
        line = getattr(node, "lineno", 0) + self.line_offset
        key = (line, rule, msg)
        if key in self.seen:
            return
        self.seen.add(key)
        seg = ast.get_source_segment(self.source, node) or ""
        seg = " ".join(seg.split())
        self.hits.append(_Hit(line, rule, sev, f"{self.path}:{line}: {msg}; fix: {fix}", seg))


def _read(stream: IO[bytes], limit: int) -> bytes:
    chunks, n = [], 0
    while n < limit:
        b = stream.read(min(1 << 20, limit - n))
        if not b:
            break
        chunks.append(b)
        n += len(b)
    return b"".join(chunks)


def _fn_severity(ctx: ScanContext) -> Severity:
    try:
        return Severity.parse(getattr(ctx.policy, "code_in_functions", "medium"))
    except Exception:
        return Severity.MEDIUM


def scan_python(ctx: ScanContext, path: str, stream: IO[bytes], size: int) -> None:
    """Analyse one Python source file (never run it), then look for secrets in it as text."""
    from mlflow_plugin.scanner import secrets

    start = stream.tell() if _seekable(stream) else None
    data = _read(stream, MAX_PYTHON + 1)
    if len(data) > MAX_PYTHON or size > MAX_PYTHON:
        ctx.report(
            path,
            Severity.MEDIUM,
            "code.too-large",
            f"{path}: Python file larger than {MAX_PYTHON >> 20} MiB was not analysed; "
            "fix: review it by hand or split it (generated code this large is unusual in a model)",
            f"size={size}",
        )
    else:
        tree = analyse_source(ctx, path, data)
        if tree is not None:  # for the whole-kit pass: which pickle globals this file defines
            from mlflow_plugin.scanner import kitwide

            names, star = top_level_names(tree)
            kitwide.record(ctx, path, "py", names=sorted(names), star=star)
    if start is not None:
        stream.seek(start)
        secrets.scan_text(ctx, path, stream, size)
    else:
        secrets.scan_text(ctx, path, io.BytesIO(data), len(data))


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except Exception:
        return False


def _too_complex(ctx: ScanContext, path: str) -> None:
    ctx.report(
        path,
        Severity.MEDIUM,
        "code.too-complex",
        f"{path}: code nested too deeply to analyse fully (unusual for model code); "
        "fix: review it by hand or simplify it",
    )


def analyse_source(ctx: ScanContext, path: str, data: bytes) -> ast.Module | None:
    """Report what the code in ``data`` would run, and when; returns the parsed module (None when
    it did not parse)."""
    fn_sev = _fn_severity(ctx)
    try:
        tree = ast.parse(data, filename=path)
        text = data.decode("utf-8", "replace")
    except (RecursionError, MemoryError):
        _too_complex(ctx, path)
        return None
    except (SyntaxError, ValueError) as e:
        line = getattr(e, "lineno", None)
        ctx.report(
            path,
            Severity.LOW,
            "code.unparsable",
            f"{path}:{line or '?'}: not valid Python 3 (Python 2 or broken code); analysed token by "
            "token only; fix: port the code to Python 3",
            str(getattr(e, "msg", e))[:120],
        )
        hits = _token_fallback(path, data, fn_sev)
        parsed: ast.Module | None = None
    else:
        parsed = tree
        a = _Analyzer(path, text, fn_sev)
        try:
            a.prepass(tree)
            a.visit(tree)
        except RecursionError:
            _too_complex(ctx, path)
        hits = a.hits
    hits.sort(key=lambda h: (-int(h.severity), h.line))
    for h in hits[:MAX_FINDINGS]:
        ctx.report(path, h.severity, h.rule, h.message, h.evidence)
    if len(hits) > MAX_FINDINGS:
        ctx.report(
            path,
            Severity.INFO,
            "code.more-findings",
            f"{len(hits) - MAX_FINDINGS} more code findings in {path} were not listed",
        )
    return parsed


def top_level_names(tree: ast.Module) -> tuple[set[str], bool]:
    """Names a module defines at top level (classes, functions, assignments, imports), and whether
    it can define more than that (``from x import *`` or a module ``__getattr__``). Never run.

    >>> names, star = top_level_names(ast.parse("import os.path\\nclass A: pass\\nif x:\\n    B = 1"))
    >>> sorted(names), star
    (['A', 'B', 'os'], False)
    """
    names: set[str] = set()
    star = False
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
            star = star or node.name == "__getattr__"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                if a.name == "*":
                    star = True
                else:
                    names.add(a.asname or a.name.split(".")[0])
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            for attr in ("body", "orelse", "finalbody", "handlers"):
                for sub in getattr(node, attr, []) or []:
                    todo += sub.body if isinstance(sub, ast.ExceptHandler) else [sub]
        elif sys.version_info >= (3, 11) and isinstance(node, ast.TryStar):
            todo += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
    return names, star


def _token_fallback(path: str, data: bytes, fn_sev: Severity) -> list[_Hit]:
    """Python 2 (or broken) code: dotted call chains from the token stream, aliases from imports."""
    hits: list[_Hit] = []
    aliases: dict[str, str] = {}
    toks: list[tokenize.TokenInfo] = []
    try:
        for t in tokenize.tokenize(io.BytesIO(data).readline):
            toks.append(t)
    except (tokenize.TokenError, SyntaxError, UnicodeDecodeError):
        pass
    # logical lines
    lines: list[tuple[int, list[tokenize.TokenInfo]]] = []
    depth, cur = (
        0,
        list[tokenize.TokenInfo](),
    )  # depth at NEWLINE is the line's depth (INDENT/DEDENT precede it)
    for t in toks:
        if t.type == tokenize.INDENT:
            depth += 1
        elif t.type == tokenize.DEDENT:
            depth -= 1
        elif t.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            if cur:
                lines.append((depth, cur))
            cur = []
        elif t.type not in (tokenize.NL, tokenize.COMMENT, tokenize.ENCODING):
            cur.append(t)
    seen: set[tuple[int, str]] = set()
    for depth, ts in lines:
        words = [t.string for t in ts]
        if words[:1] == ["import"]:
            i = 1
            while i < len(words):
                name = words[i]
                while i + 2 < len(words) and words[i + 1] == ".":
                    name += "." + words[i + 2]
                    i += 2
                if i + 2 < len(words) and words[i + 1] == "as":
                    aliases[words[i + 2]] = name
                    i += 2
                i += 2
            continue
        if words[:1] == ["from"] and "import" in words:
            mod = "".join(words[1 : words.index("import")])
            rest = [w for w in words[words.index("import") + 1 :] if w not in ("(", ")")]
            i = 0
            while i < len(rest):
                if i + 2 < len(rest) and rest[i + 1] == "as":
                    aliases[rest[i + 2]] = f"{mod}.{rest[i]}"
                    i += 4
                else:
                    aliases[rest[i]] = f"{mod}.{rest[i]}"
                    i += 2
            continue
        for i, t in enumerate(ts):
            if t.type != tokenize.NAME or (i and ts[i - 1].string == "."):
                continue
            j, name = i, t.string
            while j + 2 < len(ts) and ts[j + 1].string == "." and ts[j + 2].type == tokenize.NAME:
                name += "." + ts[j + 2].string
                j += 2
            nxt = ts[j + 1] if j + 1 < len(ts) else None
            py2_exec = name == "exec" and nxt is not None and nxt.string != "("
            if nxt is None or (nxt.string != "(" and not py2_exec):
                continue
            head, _, tail = name.partition(".")
            q = aliases.get(head, head) + (f".{tail}" if tail else "")
            cat = _classify(q)
            if cat is None:
                continue
            rest_text = " ".join(x.string for x in ts[j + 1 :])
            decoded = any(d.rsplit(".", 1)[-1] in rest_text for d in _DECODERS) or any(
                f"'{c}'" in rest_text or f'"{c}"' in rest_text for c in _PY2_CODECS
            )
            if cat == "dynamic" and decoded:
                rule, sev, what = "code.obfuscated-exec", Severity.CRITICAL, "runs decoded code"
            else:
                rule, what = _CATS[cat][0], _CATS[cat][1]
                sev = Severity.CRITICAL if depth == 0 else fn_sev
            key = (t.start[0], rule)
            if key in seen:
                continue
            seen.add(key)
            when = "when MLflow imports this module (load_model)" if depth == 0 else "inside a function"
            hits.append(
                _Hit(
                    t.start[0],
                    rule,
                    sev,
                    f"{path}:{t.start[0]}: {what}: runs `{q}(...)` {when} (Python 2 code, token analysis); "
                    "fix: remove it and port the code to Python 3",
                    " ".join(words)[:200],
                )
            )
    return hits
