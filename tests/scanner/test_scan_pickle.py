"""Pickle, joblib, legacy torch and .npy scanning: every opcode family, rule and hostile input.

Malicious samples are written opcode by opcode as bytes. Nothing here ever unpickles them (no
``pickle.loads``/``load`` on any sample), and their payloads are harmless anyway (``true``, ``echo``).
Benign samples are real: ``pickle.dumps``/``joblib.dump``/``np.save`` of real objects.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import tracemalloc
import warnings
import zlib

import pytest

from mlflow_plugin.scanner import api
from mlflow_plugin.scanner.allowlist import canonical_module, judge
from mlflow_plugin.scanner.context import Limits, Policy, ScanContext
from mlflow_plugin.scanner.numpy_scan import scan_npy
from mlflow_plugin.scanner.pickle_scan import TORCH_MAGIC, scan_joblib_zf, scan_pickle
from mlflow_plugin.scanner.pickle_vm import PickleVM, Reader
from mlflow_plugin.scanner.report import ScanReport, Severity

# ---------------------------------------------------------------------------------------------
# opcode builders


def G(mod: str, name: str) -> bytes:
    """GLOBAL"""
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def U(s: str) -> bytes:
    """SHORT_BINUNICODE"""
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def S(s: str) -> bytes:
    """STRING (protocol 0)"""
    return b"S'" + s.encode() + b"'\n"


def BU(s: str) -> bytes:
    """BINUNICODE"""
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


P2, P4, P5 = b"\x80\x02", b"\x80\x04", b"\x80\x05"
MARK, STOP, REDUCE, TUPLE, TUPLE1, TUPLE2 = b"(", b".", b"R", b"t", b"\x85", b"\x86"
STACK_GLOBAL, MEMOIZE, BUILD, EMPTY_TUPLE, NEWOBJ, EMPTY_DICT = b"\x93", b"\x94", b"b", b")", b"\x81", b"}"


def BINPUT(i: int) -> bytes:
    return b"q" + bytes([i])


def BINGET(i: int) -> bytes:
    return b"h" + bytes([i])


def call(func: bytes, *args: bytes) -> bytes:
    """func(*args) with MARK … TUPLE REDUCE."""
    return func + MARK + b"".join(args) + TUPLE + REDUCE


def sg(mod: str, name: str) -> bytes:
    """STACK_GLOBAL from two short unicode strings."""
    return U(mod) + U(name) + STACK_GLOBAL


def scan_bytes(
    data: bytes,
    *,
    policy: Policy | None = None,
    limits: Limits | None = None,
    name: str = "t.pkl",
    stream: io.RawIOBase | None = None,
    size: int | None = None,
):
    ctx = ScanContext(ScanReport(name), limits or Limits(), policy or Policy(), dispatch=api.dispatch)
    scan_pickle(
        ctx, name, stream if stream is not None else io.BytesIO(data), len(data) if size is None else size
    )
    return ctx.report_obj.findings


def rules(findings) -> set[str]:
    return {f.rule for f in findings}


def worst(findings) -> Severity | None:
    return max((f.severity for f in findings), default=None)


def evidences(findings) -> set[str]:
    return {f.evidence for f in findings}


def high(findings):
    return [f for f in findings if f.severity >= Severity.MEDIUM]


# ---------------------------------------------------------------------------------------------
# imports through every opcode family


def test_global_reduce_protocol0():
    f = scan_bytes(call(G("os", "system"), S("true")) + STOP)
    assert worst(f) == Severity.CRITICAL
    assert ("pickle.unsafe-global", "os.system") in {(x.rule, x.evidence) for x in f}
    assert "os.system('true')" in next(x.message for x in f if x.evidence == "os.system")


@pytest.mark.parametrize(
    "mod,name,canon",
    [
        ("posix", "system", "os.system"),
        ("nt", "system", "os.system"),
        ("__builtin__", "eval", "builtins.eval"),
        ("__builtins__", "exec", "builtins.exec"),
        ("_operator", "attrgetter", "operator.attrgetter"),
        ("_pickle", "loads", "pickle.loads"),
        ("cPickle", "loads", "pickle.loads"),
        ("_io", "FileIO", "io.FileIO"),
        ("_codecs", "open", "codecs.open"),
        ("_functools", "partial", "functools.partial"),
        ("commands", "getoutput", "subprocess.getoutput"),
        ("_posixsubprocess", "fork_exec", "subprocess.fork_exec"),
    ],
)
def test_module_aliases_are_normalised(mod, name, canon):
    f = scan_bytes(P2 + G(mod, name) + STOP)
    assert canon in evidences(f)
    assert worst(f) >= Severity.HIGH


def test_stack_global_protocol4():
    f = scan_bytes(P4 + sg("subprocess", "Popen") + MARK + U("true") + TUPLE + REDUCE + STOP)
    assert ("pickle.unsafe-global", "subprocess.Popen") in {(x.rule, x.evidence) for x in f}


def test_stack_global_memo_mixed_put_and_memoize():
    """The doyensec memo-confusion bypass: BINPUT and MEMOIZE mixed so that a scanner that counts
    MEMOIZE alone thinks memo[0] is 'torch._utils'."""
    data = (
        P4
        + U("os")
        + BINPUT(0)
        + U("system")
        + BINPUT(1)
        + U("torch._utils")
        + MEMOIZE
        + U("_rebuild_tensor_v2")
        + MEMOIZE  # real memo slots 2, 3
        + b"0000"
        + BINGET(0)
        + BINGET(1)
        + STACK_GLOBAL
        + U("true")
        + TUPLE1
        + REDUCE
        + STOP
    )
    f = scan_bytes(data)
    assert "os.system" in evidences(f)
    assert worst(f) == Severity.CRITICAL


def test_stack_global_memo_put_of_other_value():
    """picklescan CTF 2023: BINPUT stores the top of the stack, not the previous opcode's argument."""
    data = (
        P4
        + U("os")
        + U("builtins")
        + BINPUT(0)
        + b"0"
        + BINPUT(0)  # memo[0] = 'os' after POP
        + U("system")
        + BINPUT(1)
        + b"0"
        + BINGET(0)
        + BINGET(1)
        + STACK_GLOBAL
        + STOP
    )
    assert "os.system" in evidences(scan_bytes(data))


def test_long_binput_and_text_put_get():
    data = (
        P2
        + U("os")
        + b"r"
        + struct.pack("<I", 7000)
        + b"0"
        + U("system")
        + b"p99\n"
        + b"0"
        + b"j"
        + struct.pack("<I", 7000)
        + b"g99\n"
        + STACK_GLOBAL
        + STOP
    )
    assert "os.system" in evidences(scan_bytes(data))


def test_inst_opcode():
    f = scan_bytes(MARK + S("true") + b"ios\nsystem\n" + STOP)
    assert "os.system" in evidences(f)
    assert "called as os.system('true')" in next(x.message for x in f if x.evidence == "os.system")


def test_obj_opcode():
    f = scan_bytes(MARK + G("os", "system") + S("true") + b"o" + STOP)
    assert "os.system" in evidences(f)


def test_newobj_and_newobj_ex():
    f = scan_bytes(P4 + sg("subprocess", "Popen") + U("true") + TUPLE1 + NEWOBJ + STOP)
    assert "subprocess.Popen" in evidences(f)
    f = scan_bytes(P4 + sg("subprocess", "Popen") + U("true") + TUPLE1 + EMPTY_DICT + b"\x92" + STOP)
    assert "subprocess.Popen" in evidences(f)


@pytest.mark.parametrize("op", [b"\x82\x07", b"\x83\x07\x01", b"\x84\x07\x00\x00\x00"])
def test_ext_codes(op):
    f = scan_bytes(P2 + op + MARK + S("true") + TUPLE + REDUCE + STOP)
    assert "pickle.ext-code" in rules(f)
    assert "pickle.indirect-call" in rules(f)
    assert worst(f) >= Severity.HIGH


def test_persistent_ids():
    f = scan_bytes(b"Pfoo\n" + STOP)
    assert rules(f) == {"pickle.persistent-id"}
    assert worst(f) == Severity.LOW
    torch_pid = (
        P2
        + G("torch._utils", "_rebuild_tensor_v2")
        + MARK
        + MARK
        + U("storage")
        + G("torch", "FloatStorage")
        + U("0")
        + U("cpu")
        + b"K\x04"
        + TUPLE
        + b"QK\x00K\x04\x85K\x01\x85\x89"
        + G("collections", "OrderedDict")
        + EMPTY_TUPLE
        + REDUCE
        + TUPLE
        + REDUCE
        + STOP
    )
    assert scan_bytes(torch_pid) == []


def test_calling_a_persistent_object_is_flagged():
    f = scan_bytes(P2 + b"Pfoo\n" + MARK + S("x") + TUPLE + REDUCE + STOP)
    assert "pickle.indirect-call" in rules(f)


# ---------------------------------------------------------------------------------------------
# call chains


def test_getattr_import_chain_resolved():
    data = (
        P2
        + G("builtins", "getattr")
        + MARK
        + G("builtins", "__import__")
        + MARK
        + S("os")
        + TUPLE
        + REDUCE
        + S("system")
        + TUPLE
        + REDUCE
        + MARK
        + S("true")
        + TUPLE
        + REDUCE
        + STOP
    )
    f = scan_bytes(data)
    assert worst(f) == Severity.CRITICAL
    chain = [x for x in f if x.rule in ("pickle.unsafe-call", "pickle.indirect-call")]
    assert any("os.system" in x.message for x in chain)
    assert any("builtins.getattr(builtins.__import__('os'), 'system')" in x.evidence for x in chain)


def test_importlib_and_attrgetter_chains():
    imp = call(G("importlib", "import_module"), S("os"))
    data = (
        P2 + G("operator", "attrgetter") + MARK + S("system") + TUPLE + REDUCE + MARK + imp + TUPLE + REDUCE
    )
    data += MARK + S("true") + TUPLE + REDUCE + STOP
    f = scan_bytes(data)
    assert {"importlib.import_module", "operator.attrgetter"} <= evidences(f)
    assert any(x.rule == "pickle.indirect-call" and "os.system" in x.message for x in f)


def test_functools_partial_called_is_critical():
    part = call(G("functools", "partial"), G("os", "system"), S("true"))
    f = scan_bytes(P2 + part + EMPTY_TUPLE + REDUCE + STOP)
    assert next(x for x in f if x.evidence == "functools.partial").severity == Severity.HIGH
    assert any(
        x.rule == "pickle.indirect-call" and x.severity == Severity.CRITICAL and "os.system" in x.message
        for x in f
    )


def test_pkgutil_resolve_name_chain():
    f = scan_bytes(P2 + call(call(G("pkgutil", "resolve_name"), S("os:system")), S("true")) + STOP)
    assert any("os.system" in x.message for x in f if x.rule == "pickle.indirect-call")


def test_getattr_on_allowlisted_class_is_benign():
    """zoneinfo (and scipy frozen distributions) pickle getattr(<class>, '<method>')."""
    import zoneinfo

    for proto in range(6):
        assert high(scan_bytes(pickle.dumps(zoneinfo.ZoneInfo("UTC"), protocol=proto))) == []


def test_getattr_escaping_is_flagged():
    """getattr imported for a benign call, then passed around as a value: flagged."""
    ga = G("builtins", "getattr") + BINPUT(0)
    benign = MARK + G("zoneinfo", "ZoneInfo") + S("_unpickle") + TUPLE + REDUCE + b"0"
    escape = (
        G("collections", "OrderedDict") + MARK + MARK + S("k") + BINGET(0) + TUPLE + b"l" + TUPLE + REDUCE
    )
    f = scan_bytes(P2 + ga + benign + b"0" + escape + STOP)
    assert "builtins.getattr" in evidences(f)


def test_dynamic_stack_global_and_build_on_global():
    """modelscan issue 85: BUILD sets numpy.prod.a = 'os', then STACK_GLOBAL from memo'd globals."""
    data = (
        P4
        + G("numpy", "prod")
        + b"N"
        + MARK
        + U("a")
        + U("os")
        + b"d"
        + TUPLE2
        + BUILD
        + b"N"
        + MARK
        + U("b")
        + U("system")
        + b"d"
        + TUPLE2
        + BUILD
        + b"0"
        + G("numpy", "prod.a")
        + b"p0\n"
        + G("numpy", "prod.b")
        + b"p1\n"
        + b"00"
        + b"g0\n"
        + b"g1\n"
        + STACK_GLOBAL
        + U("true")
        + TUPLE1
        + REDUCE
        + STOP
    )
    f = scan_bytes(data)
    assert {"pickle.mutate-global", "pickle.dynamic-global", "pickle.indirect-call"} <= rules(f)
    assert worst(f) == Severity.CRITICAL


def test_setitem_on_imported_object():
    f = scan_bytes(P2 + G("sys", "modules") + S("x") + S("y") + b"s" + STOP)
    assert "pickle.mutate-global" in rules(f) or "sys.modules" in evidences(f)
    f = scan_bytes(P2 + G("collections", "OrderedDict") + S("x") + b"a" + STOP)
    assert "pickle.mutate-global" in rules(f)


# ---------------------------------------------------------------------------------------------
# published bypasses of picklescan / modelscan / fickling and friends

BYPASSES = [
    ("pip", "main"),
    ("asyncio.subprocess", "create_subprocess_shell"),
    ("asyncio", "create_subprocess_exec"),
    ("torch.utils.bottleneck.__main__", "run_cprofile"),
    ("torch.utils.bottleneck.__main__", "run_autograd_prof"),
    ("cProfile", "run"),
    ("profile", "run"),
    ("bdb", "Bdb.run"),
    ("pdb", "Pdb.run"),
    ("timeit", "timeit"),
    ("idlelib.autocomplete", "AutoComplete.fetch_completions"),
    ("idlelib.calltip", "get_entity"),
    ("idlelib.run", "Executive.runcode"),
    ("idlelib.pyshell", "ModifiedInterpreter.runcommand"),
    ("lib2to3.pgen2.grammar", "Grammar.loads"),
    ("lib2to3.pgen2.pgen", "ParserGenerator.make_label"),
    ("_io", "FileIO"),
    ("io", "open"),
    ("distutils.file_util", "write_file"),
    ("pkgutil", "resolve_name"),
    ("numpy.f2py.crackfortran", "getlincoef"),
    ("numpy.f2py.crackfortran", "_eval_length"),
    ("numpy.testing._private.utils", "runstring"),
    ("numpy", "load"),
    ("numpy.lib.npyio", "load"),
    ("numpy.ctypeslib", "load_library"),
    ("torch", "load"),
    ("torch.serialization", "load"),
    ("torch.storage", "_load_from_bytes"),
    ("torch.hub", "load"),
    ("torch.jit", "load"),
    ("torch._inductor.codecache", "compile_file"),
    ("torch._dynamo.guards", "GuardBuilder.get"),
    ("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression"),
    ("torch.jit.unsupported_tensor_ops", "execWrapper"),
    ("torch.utils._config_module", "ConfigModule.load_config"),
    ("torch.utils.collect_env", "run"),
    ("torch.utils.data.datapipes.utils.decoder", "basichandlers"),
    ("runpy", "_run_code"),
    ("runpy", "run_path"),
    ("code", "InteractiveInterpreter.runcode"),
    ("codeop", "compile_command"),
    ("pty", "spawn"),
    ("ctypes", "CDLL"),
    ("_ctypes", "dlopen"),
    ("socket", "create_connection"),
    ("webbrowser", "open"),
    ("shutil", "rmtree"),
    ("sys", "exit"),
    ("marshal", "loads"),
    ("types", "FunctionType"),
    ("types", "CodeType"),
    ("pickle", "loads"),
    ("_pickle", "load"),
    ("dill", "loads"),
    ("yaml", "load"),
    ("jinja2", "Template"),
    ("doctest", "debug_script"),
    ("trace", "Trace.run"),
    ("multiprocessing", "Process"),
    ("http.client", "HTTPSConnection"),
    ("urllib.request", "urlopen"),
    ("requests.api", "get"),
    ("ftplib", "FTP"),
    ("smtplib", "SMTP"),
    ("telnetlib", "Telnet"),
    ("venv", "create"),
    ("ensurepip", "_run_pip"),
    ("setuptools", "setup"),
    ("pkg_resources", "load_entry_point"),
    ("zipimport", "zipimporter"),
    ("importlib", "import_module"),
    ("builtins", "__import__"),
    ("builtins", "compile"),
    ("builtins", "open"),
    ("builtins", "getattr"),
    ("builtins", "setattr"),
    ("builtins", "globals"),
    ("builtins", "vars"),
    ("builtins", "breakpoint"),
    ("builtins", "input"),
    ("operator", "attrgetter"),
    ("operator", "methodcaller"),
    ("operator", "itemgetter"),
    ("functools", "partial"),
    ("functools", "reduce"),
    ("pydoc", "locate"),
    ("pydoc", "pipepager"),
    ("mailcap", "findmatch"),
    ("uuid", "_get_command_stdout"),
    ("_osx_support", "_read_output"),
    ("_aix_support", "_read_cmd_output"),
    ("imaplib", "IMAP4_stream"),
    ("platform", "_syscmd_file"),
    ("logging", "FileHandler"),
    ("logging.config", "listen"),
    ("cloudpickle.cloudpickle", "_make_function"),
    ("ssl", "get_server_certificate"),
    ("test.support.script_helper", "assert_python_ok"),
    ("_pyrepl.pager", "pipe_pager"),
    ("gc", "get_objects"),
    ("threading", "Thread"),
    ("atexit", "register"),
    ("sklearn.utils._testing", "TempMemmap"),
    ("pandas", "read_pickle"),
    ("pandas.io.pickle", "read_pickle"),
    ("pandas", "read_csv"),
    ("joblib", "load"),
    ("numpy", "memmap"),
    ("site", "addsitedir"),
    ("antigravity", "fly"),
    ("numpy", "os.system"),
    ("torch", "os.system"),
    ("sklearn", "__builtins__"),
    ("numpy", "ndarray.tofile"),
]


@pytest.mark.parametrize("mod,name", BYPASSES, ids=[f"{m}.{n}" for m, n in BYPASSES])
@pytest.mark.parametrize("style", ["global", "stack_global"])
def test_published_bypass_globals(mod, name, style):
    if style == "global":
        data = P2 + call(G(mod, name), S("true")) + STOP
    else:
        data = P4 + sg(mod, name) + U("true") + TUPLE1 + REDUCE + STOP
    f = scan_bytes(data)
    assert worst(f) is not None and worst(f) >= Severity.HIGH, f
    assert rules(f) & {"pickle.unsafe-global", "pickle.unknown-global"}


@pytest.mark.parametrize(
    "mod,name",
    [
        ("os", "system"),
        ("subprocess", "Popen"),
        ("builtins", "exec"),
        ("builtins", "eval"),
        ("runpy", "_run_code"),
        ("pip", "main"),
        ("torch", "load"),
        ("numpy", "load"),
        ("builtins", "__import__"),
        ("operator", "methodcaller"),
    ],
)
def test_critical_set(mod, name):
    assert judge(mod, name).severity == Severity.CRITICAL


# ---------------------------------------------------------------------------------------------
# several pickles, trailing data, hidden pickles


def test_second_pickle_is_scanned():
    benign = pickle.dumps({"a": 1}, protocol=2)
    f = scan_bytes(benign + P2 + call(G("os", "system"), S("true")) + STOP)
    assert "os.system" in evidences(f)


def test_trailing_raw_data_is_not_a_finding():
    benign = pickle.dumps([1, 2, 3], protocol=4)
    assert scan_bytes(benign + bytes(range(256)) * 40) == []
    assert scan_bytes(benign + b"\x00\xff" * 5000) == []


def test_hidden_pickle_after_raw_data():
    benign = pickle.dumps([1, 2, 3], protocol=4)
    hidden = P2 + call(G("posix", "system"), S("echo hi")) + STOP
    f = scan_bytes(benign + b"\x00" * 3000 + hidden + b"\x00" * 100)
    assert "pickle.hidden-pickle" in rules(f)
    assert worst(f) == Severity.CRITICAL


def test_second_pickle_that_breaks_keeps_its_imports():
    benign = pickle.dumps([1], protocol=2)
    broken = P2 + G("os", "system") + b"\xff"
    f = scan_bytes(benign + broken)
    assert any(x.severity == Severity.CRITICAL for x in f)


# ---------------------------------------------------------------------------------------------
# malformed and hostile input


@pytest.mark.parametrize(
    "data",
    [
        P2 + b"]q\x00K\x01a",  # no STOP
        P2 + b"\xff",  # invalid opcode
        P4 + b"\x95" + struct.pack("<Q", 1 << 40) + b"N.",  # FRAME past the end
        P2 + b"a.",  # APPEND on an empty stack
        P2 + b"h\x05.",  # GET of a memo slot never set
        P2 + b"X\xff\xff\xff\x7fabc",  # BINUNICODE longer than the stream
        P2 + b"T\xff\xff\xff\xff.",  # negative BINSTRING length
        b"S'unterminated\n.",  # bad STRING
        b"Iabc\n.",  # bad INT
        P2 + b"\x8b\xff\xff\xff\xff.",  # negative LONG4
        P2 + b"t.",  # TUPLE without MARK
        b"\x80\x09N.",  # unknown protocol
        b"",  # nothing
    ],
)
def test_malformed_is_a_finding_not_a_crash(data):
    f = scan_bytes(data)
    if data:
        assert "pickle.malformed" in rules(f), f


def test_truncated_malicious_still_reports_its_imports():
    f = scan_bytes(P2 + call(G("os", "system"), S("true")))  # no STOP: pickle.load runs system, then fails
    assert {"pickle.malformed", "pickle.unsafe-global"} <= rules(f)


def test_huge_memo_index_does_not_allocate():
    data = (
        P2
        + b"N"
        + b"r"
        + struct.pack("<I", 2**31)
        + b"j"
        + struct.pack("<I", 2**31)
        + b"p99999999999999999999\n"
        + STOP
    )
    tracemalloc.start()
    f = scan_bytes(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert high(f) == []
    assert peak < 8 << 20


def test_deep_mark_nesting_hits_the_stack_limit():
    data = P2 + MARK * 10_000_000 + STOP
    f = scan_bytes(data, limits=Limits(max_stack=100_000))
    assert "pickle.limit" in rules(f)
    f = scan_bytes(data)  # default limit (1M) is reached too, quickly
    assert "pickle.limit" in rules(f)


def test_op_and_memo_limits():
    data = P2 + b"]" + (b"N" + b"a") * 10_000 + STOP
    assert "pickle.limit" in rules(scan_bytes(data, limits=Limits(max_pickle_ops=1000)))
    data = P2 + b"N" + b"".join(b"r" + struct.pack("<I", i) for i in range(2000)) + STOP
    assert "pickle.limit" in rules(scan_bytes(data, limits=Limits(max_memo=100)))


def test_deeply_nested_lists_do_not_recurse():
    data = P2 + b"]" * 200_000 + b"a" * 199_999 + STOP
    assert high(scan_bytes(data)) == []


def test_long_text_lines():
    big = b"V" + b"x" * (3 << 20) + b"\n" + STOP  # a 3 MiB protocol-0 unicode string
    assert scan_bytes(big) == []
    assert "pickle.malformed" in rules(scan_bytes(b"c" + b"o" * (1 << 17) + b"\nsystem\n."))


def test_invalid_names_are_high():
    f = scan_bytes(P2 + G("os ", "system") + STOP)
    assert worst(f) >= Severity.HIGH
    f = scan_bytes(P4 + U("оs") + U("system") + STACK_GLOBAL + STOP)  # Cyrillic 'о'
    assert worst(f) >= Severity.HIGH


class _Zeros(io.RawIOBase):
    """A non-seekable stream: a header, then ``n`` zero bytes, then a tail (never held in memory)."""

    def __init__(self, head: bytes, n: int, tail: bytes) -> None:
        self.head, self.n, self.tail, self.pos = head, n, tail, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        total = len(self.head) + self.n + len(self.tail)
        if self.pos >= total:
            return 0
        k = min(len(b), total - self.pos)
        mv = memoryview(b)
        i = 0
        while i < k:
            p = self.pos + i
            if p < len(self.head):
                m = min(k - i, len(self.head) - p)
                mv[i : i + m] = self.head[p : p + m]
            elif p < len(self.head) + self.n:
                m = min(k - i, len(self.head) + self.n - p)
                mv[i : i + m] = bytes(m) if m <= 1 << 20 else b"\x00" * m
            else:
                q = p - len(self.head) - self.n
                m = min(k - i, len(self.tail) - q)
                mv[i : i + m] = self.tail[q : q + m]
            i += m
        self.pos += k
        return k


def test_one_gib_binbytes_streamed_with_bounded_memory():
    n = 1 << 30
    head = P4 + b"\x8e" + struct.pack("<Q", n)
    tail = b"\x85" + G("os", "system") + b"0" + STOP  # a global after the payload proves we resumed right
    tracemalloc.start()
    f = scan_bytes(b"", stream=_Zeros(head, n, tail), size=len(head) + n + len(tail))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "os.system" in evidences(f)
    assert peak < 32 << 20, peak


def test_one_gib_sparse_file_is_skipped_with_seek(tmp_path):
    n = 1 << 30
    p = tmp_path / "big.pkl"
    with open(p, "wb") as fh:
        fh.write(P4 + b"\x8e" + struct.pack("<Q", n))
        fh.seek(n, io.SEEK_CUR)
        fh.write(b"\x85" + STOP)
    r = api.scan_file(str(p))
    assert r.findings == []
    assert r.files[0].format == "pickle"


# ---------------------------------------------------------------------------------------------
# policy


def test_allow_global_silences_exactly_that_global():
    data = (
        P2
        + G("mypkg.models", "MyEstimator")
        + EMPTY_TUPLE
        + NEWOBJ
        + b"0"
        + G("mypkg.models", "Other")
        + STOP
    )
    f = scan_bytes(data)
    assert {"mypkg.models.MyEstimator", "mypkg.models.Other"} <= evidences(f)
    f = scan_bytes(data, policy=Policy(allow_globals=frozenset({"mypkg.models.MyEstimator"})))
    assert evidences(f) == {"mypkg.models.Other"}
    f = scan_bytes(data, policy=Policy(allow_modules=frozenset({"mypkg"})))
    assert f == []


def test_allow_modules_never_overrides_the_denylist():
    data = P2 + G("torch.hub", "load") + STOP
    assert worst(scan_bytes(data, policy=Policy(allow_modules=frozenset({"torch"})))) == Severity.CRITICAL
    assert scan_bytes(data, policy=Policy(allow_globals=frozenset({"torch.hub.load"}))) == []


def test_allowlist_severity_design():
    assert judge("__main__", "Net").severity == Severity.LOW
    assert judge("torch", "SomethingNew").severity == Severity.MEDIUM
    assert judge("mypkg", "thing").severity == Severity.HIGH
    assert judge("mypkg", "run_command").severity == Severity.CRITICAL
    assert judge("sklearn.ensemble._forest", "RandomForestClassifier").allowed
    assert not judge("sklearn.ensemble._forest", "RandomForestClassifier.fit").allowed
    assert not judge("sklearn.utils.parallel", "Parallel").allowed
    assert judge("uuid", "UUID").allowed and not judge("uuid", "uuid1").allowed
    assert judge("numpy.core.multiarray", "_reconstruct").allowed
    assert canonical_module("posix") == "os"


# ---------------------------------------------------------------------------------------------
# real benign files: zero findings >= medium


def _benign_objects():
    import collections
    import datetime
    import decimal
    import fractions
    import uuid

    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    return [
        np.zeros((3, 4)),
        np.float64(1.5),
        np.array(["a", None], dtype=object),
        np.random.default_rng(1),
        np.random.RandomState(0),
        np.zeros(2, dtype=[("a", "<f8"), ("b", "<i4")]),
        np.ma.masked_array([1, 2], [0, 1]),
        pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "t": pd.to_datetime(["2020-01-01", "2021-01-01"])}),
        pd.Series([1.0]),
        pd.Categorical(["a"]),
        pd.date_range("2020", periods=2, tz="UTC"),
        pd.NaT,
        pd.Timestamp("2020-01-01", tz="Europe/Paris"),
        pd.MultiIndex.from_tuples([(1, 2)]),
        pd.Period("2020-01"),
        sp.csr_matrix(np.eye(3)),
        sp.coo_array(np.eye(2)),
        collections.OrderedDict(a=1),
        collections.defaultdict(list),
        collections.Counter("ab"),
        collections.deque([1]),
        datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        datetime.timedelta(1),
        decimal.Decimal("1.1"),
        fractions.Fraction(1, 3),
        uuid.UUID(int=1),
        {1, 2},
        frozenset([1]),
        bytearray(b"x"),
        slice(1, 2),
        range(3),
        complex(1, 2),
        b"x" * 10_000,
        "s" * 10_000,
        10**100,
        Ellipsis,
    ]


def _sklearn_models():
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.RandomState(0)
    X = rng.rand(60, 4)
    y = (X[:, 0] > 0.5).astype(int)
    models = [
        make_pipeline(FunctionTransformer(np.log1p), StandardScaler(), LogisticRegression()).fit(X, y),
        make_pipeline(SimpleImputer(strategy="median"), RandomForestClassifier(n_estimators=3)).fit(X, y),
        GradientBoostingClassifier(n_estimators=3).fit(X, y),
        HistGradientBoostingClassifier(max_iter=3).fit(X, y),
        KNeighborsClassifier().fit(X, y),
        SVC().fit(X, y),
        DecisionTreeClassifier().fit(X, y),
        KMeans(2, n_init=1).fit(X),
        GridSearchCV(
            LogisticRegression(), {"C": [1, 2]}, scoring=["accuracy", "roc_auc"], refit="accuracy"
        ).fit(X, y),
        TfidfVectorizer().fit(["alpha beta", "beta gamma"]),
        ColumnTransformer([("oh", OneHotEncoder(), [0]), ("sc", StandardScaler(), [1, 2])]).fit(
            np.c_[rng.randint(0, 3, 60), X[:, :2]]
        ),
    ]
    return models


@pytest.mark.parametrize("proto", range(6))
def test_real_benign_pickles_have_no_findings(proto):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        objs = _benign_objects() + _sklearn_models()
    for obj in objs:
        data = pickle.dumps(obj, protocol=proto)
        f = scan_bytes(data)
        assert high(f) == [], (type(obj), f)


def test_protocol5_out_of_band_buffers():
    import numpy as np

    bufs: list = []
    data = pickle.dumps(np.arange(10), protocol=5, buffer_callback=bufs.append)
    assert b"\x97" in data
    assert scan_bytes(data) == []
    assert scan_bytes(pickle.dumps(bytearray(b"x" * 100), protocol=5)) == []


# ---------------------------------------------------------------------------------------------
# joblib


@pytest.fixture(scope="module")
def joblib_files(tmp_path_factory):
    import joblib
    import numpy as np

    d = tmp_path_factory.mktemp("joblib")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = _sklearn_models()
    obj = {
        "models": models,
        "a": np.random.rand(300, 30),
        "o": np.array([1, "x", None], dtype=object),
        "s": np.array(["ab", "c"]),
        "st": np.zeros(3, dtype=[("a", "<f8"), ("b", "<i2")]),
        "e": np.zeros((0, 3)),
        "f": np.asfortranarray(np.ones((3, 5))),
        "dt": np.array(["2020-01-01"], dtype="datetime64[D]"),
    }
    out = {}
    out["plain"] = d / "m.joblib"
    joblib.dump(obj, out["plain"])
    for c in ("gzip", "bz2", "xz"):
        out[c] = d / f"m_{c}.joblib"
        joblib.dump(obj, out[c], compress=(c, 3))
    for proto in (2, 3, 5):
        out[f"p{proto}"] = d / f"m_p{proto}.joblib"
        joblib.dump(obj, out[f"p{proto}"], protocol=proto)
    return out


@pytest.mark.parametrize("kind", ["plain", "gzip", "bz2", "xz", "p2", "p3", "p5"])
def test_real_joblib_files_are_clean(joblib_files, kind):
    r = api.scan_file(str(joblib_files[kind]))
    assert high(r.findings) == [], r.findings
    assert "pickle" in {x.format for x in r.files}


def test_joblib_arrays_are_skipped_exactly(joblib_files):
    p = joblib_files["plain"]
    size = os.path.getsize(p)
    with open(p, "rb") as fh:
        r = Reader(fh, size)
        vm = PickleVM(r, judge)
        vm.run_all()
    assert vm.joblib_arrays >= 8
    assert r.offset == size and vm.pickles == 1 and vm.finish() == []


def _joblib_wrapper(n: int, align: bool) -> bytes:
    """A NumpyArrayWrapper for ``n`` float64 values, as joblib writes it (protocol 2)."""
    state = (
        EMPTY_DICT
        + MARK
        + S("subclass")
        + G("numpy", "ndarray")
        + S("shape")
        + b"K"
        + bytes([n])
        + TUPLE1
        + S("order")
        + S("C")
        + S("dtype")
        + call(G("numpy", "dtype"), S("f8"), b"\x89", b"\x88")
        + MARK
        + b"K\x03"
        + S("<")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00"
        + TUPLE
        + BUILD
        + S("allow_mmap")
        + b"\x89"
        + (S("numpy_array_alignment_bytes") + b"K\x10" if align else b"")
        + b"u"
    )
    return G("joblib.numpy_pickle", "NumpyArrayWrapper") + EMPTY_TUPLE + NEWOBJ + state + BUILD


def test_joblib_payload_after_array_is_found():
    arr = struct.pack("<4d", 1, 2, 3, 4)
    data = (
        P2
        + b"]"
        + _joblib_wrapper(4, True)
        + b"\x03\xff\xff\xff"
        + arr
        + b"a"
        + call(G("os", "system"), S("x"))
    )
    f = scan_bytes(data + b"a" + STOP)
    assert "os.system" in evidences(f) and "pickle.malformed" not in rules(f)


def test_joblib_array_bytes_that_are_opcodes_are_probed():
    """Without alignment padding, plain pickle.load would run the 'array' bytes as opcodes."""
    payload = call(G("os", "system"), S("true")) + b"0"
    payload += b"N" * (8 * 8 - len(payload))
    data = P2 + b"]" + _joblib_wrapper(8, False) + payload + b"a" + STOP
    f = scan_bytes(data)
    assert "pickle.hidden-pickle" in rules(f)


def test_joblib_zf_legacy_container():
    body = P2 + call(G("os", "system"), S("true")) + STOP
    data = b"ZF" + f"{len(body):#x}".ljust(19).encode() + zlib.compress(body)
    f = scan_bytes(data, name="old.pkl")
    assert "os.system" in evidences(f)
    ctx = ScanContext(ScanReport("x"), dispatch=api.dispatch)
    scan_joblib_zf(ctx, "old.pkl", io.BytesIO(data), len(data))
    assert {x.path for x in ctx.report_obj.findings} == {"old.pkl!zlib"}


def test_joblib_zf_bomb_is_limited():
    body = b"\x80\x02N." + b"\x00" * (64 << 20)
    data = b"ZF" + f"{len(body):#x}".ljust(19).encode() + zlib.compress(body, 9)
    ctx = ScanContext(ScanReport("x"))
    scan_joblib_zf(ctx, "bomb.pkl", io.BytesIO(data), len(data))
    assert "scan.limit.ratio" in rules(ctx.report_obj.findings)


# ---------------------------------------------------------------------------------------------
# PyTorch


def _legacy_torch(storage_bytes: bytes, extra: bytes = b"") -> bytes:
    magic = P2 + b"\x8a\x0a" + TORCH_MAGIC.to_bytes(10, "little") + STOP
    proto = P2 + b"M\xe9\x03" + STOP
    sysinfo = P2 + b"}" + STOP
    main = (
        P2
        + G("torch._utils", "_rebuild_tensor_v2")
        + MARK
        + MARK
        + S("storage")
        + G("torch", "FloatStorage")
        + S("k0")
        + S("cpu")
        + b"K\x02"
        + TUPLE
        + b"QK\x00K\x02\x85K\x01\x85\x89"
        + G("collections", "OrderedDict")
        + EMPTY_TUPLE
        + REDUCE
        + TUPLE
        + REDUCE
        + STOP
    )
    keys = P2 + b"]" + S("k0") + b"a" + STOP
    return magic + proto + sysinfo + main + keys + struct.pack("<q", 2) + storage_bytes + extra


def test_legacy_torch_storages_are_skipped():
    # storage bytes that happen to look like opcodes: torch.load reads them as data
    data = _legacy_torch(b"cos\nsyst")
    assert scan_bytes(data) == []


def test_legacy_torch_pickle_after_storages_is_found():
    data = _legacy_torch(b"\x00" * 8, P2 + call(G("os", "system"), S("true")) + STOP)
    assert "os.system" in evidences(scan_bytes(data))


def test_legacy_torch_bad_storage_size():
    data = _legacy_torch(b"\x00" * 8)[:-16] + struct.pack("<q", 1 << 40)
    assert "pickle.malformed" in rules(scan_bytes(data))


def _torch():
    """The real torch (a ``[test]`` extra, CPU wheel): missing is a failure, never a skip."""
    try:
        import torch
    except ImportError as e:
        pytest.fail(f"torch is a test dependency ({e}): pip install -e '.[test]'")
    return torch


@pytest.mark.parametrize("legacy", [False, True])
def test_real_torch_files(tmp_path, legacy):
    torch_mod = _torch()
    nn = torch_mod.nn
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2))
    kw = {"_use_new_zipfile_serialization": False} if legacy else {}
    for name, obj in (("sd.pt", model.state_dict()), ("full.pt", model), ("t.pt", torch_mod.randn(100, 100))):
        p = tmp_path / name
        torch_mod.save(obj, p, **kw)
        r = api.scan_file(str(p))
        assert high(r.findings) == [], r.findings
        # the pickle itself went through the VM: a legacy file is one, a zip file holds data.pkl
        formats = {f.path: f.format for f in r.files}
        if legacy:
            assert formats == {name: "pickle"}
        else:
            assert formats[f"{name}!{name.removesuffix('.pt')}/data.pkl"] == "pickle"


# ---------------------------------------------------------------------------------------------
# .npy


def _npy(header: bytes, body: bytes, version: int = 1) -> bytes:
    if version == 1:
        return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + body
    return b"\x93NUMPY" + bytes([version, 0]) + len(header).to_bytes(4, "little") + header + body


def scan_npy_bytes(data: bytes):
    ctx = ScanContext(ScanReport("a.npy"), dispatch=api.dispatch)
    scan_npy(ctx, "a.npy", io.BytesIO(data), len(data))
    return ctx.report_obj.findings


def test_real_npy_files_are_clean(tmp_path):
    import numpy as np

    arrays = [
        np.random.rand(5, 3),
        np.zeros(3, dtype=[("a", "<f8"), ("b", "<i2", (2,)), ("c", "U3")]),
        np.array(["2020-01-01"], dtype="datetime64[D]"),
        np.array([True]),
        np.zeros((0, 4)),
        np.float64(2),
        np.array(["abc"]),
        np.asfortranarray(np.ones((2, 3))),
    ]
    for i, a in enumerate(arrays):
        p = tmp_path / f"{i}.npy"
        np.save(p, a)
        r = api.scan_file(str(p))
        assert r.findings == [] and r.files[0].format == "npy", r.findings
    np.savez(tmp_path / "a.npz", x=np.arange(3), y=np.ones(2))
    assert high(api.scan_file(str(tmp_path / "a.npz")).findings) == []


def test_npy_object_array():
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.array([1, "x"], dtype=object), allow_pickle=True)
    f = scan_npy_bytes(buf.getvalue())
    assert rules(f) == {"numpy.object-array"} and worst(f) == Severity.LOW
    hdr = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }\n"
    f = scan_npy_bytes(_npy(hdr, P2 + call(G("os", "system"), S("true")) + STOP))
    assert "os.system" in evidences(f) and worst(f) == Severity.CRITICAL
    hdr = b"{'descr': [('a', '<f8'), ('b', '|O')], 'fortran_order': False, 'shape': (1,), }\n"
    f = scan_npy_bytes(_npy(hdr, P2 + G("builtins", "eval") + STOP, version=3))
    assert "builtins.eval" in evidences(f)


@pytest.mark.parametrize(
    "data",
    [
        b"\x93NUMPY\x01\x00\xff\xff" + b"{" * 65535,  # nested braces
        b"\x93NUMPY\x02\x00" + (1 << 30).to_bytes(4, "little") + b"{}",  # header bomb
        _npy(b"{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }\n", b""),  # negative shape
        _npy(b"{'descr': '<f8', 'fortran_order': False}\n", b""),  # missing key
        _npy(b"__import__('os').system('true')\n", b""),  # not a literal
        _npy(b"{'descr': 'zz', 'fortran_order': False, 'shape': (1,), }\n", b""),  # bad dtype
        _npy(b"(" * 100 + b")" * 100, b""),  # deep nesting
        b"\x93NUMPY\x07\x00\x10\x00",  # unknown version
    ],
)
def test_npy_malformed_headers(data):
    assert "numpy.malformed" in rules(scan_npy_bytes(data))


def test_npy_truncated_and_trailing():
    hdr = b"{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }\n"
    assert "numpy.truncated" in rules(scan_npy_bytes(_npy(hdr, b"\x00" * 31)))
    f = scan_npy_bytes(_npy(hdr, b"\x00" * 32 + P2 + call(G("os", "system"), S("true")) + STOP))
    assert {"numpy.trailing-data", "pickle.hidden-pickle"} <= rules(f)


def test_reader_readline_across_chunks():
    data = b"a" * ((1 << 20) - 3) + b"\n" + b"b" * 10 + b"\n"
    r = Reader(io.BytesIO(data), len(data))
    assert len(r.readline(1 << 21)) == (1 << 20) - 3
    assert r.readline() == b"b" * 10
    assert r.peek() == -1


def test_getattr_method_passed_to_a_calling_function():
    """numpy's __generator_ctor calls its second argument: a getattr'd method handed to it is judged."""
    method = call(G("builtins", "getattr"), G("pandas", "DataFrame"), S("to_csv"))
    data = P2 + call(G("numpy.random._pickle", "__generator_ctor"), S("/tmp/x"), method) + STOP
    f = scan_bytes(data)
    assert any(x.rule == "pickle.unsafe-call" and "to_csv" in x.message for x in f)
    assert worst(f) == Severity.CRITICAL


def test_submodules_of_denied_modules():
    """picklescan checked exact module names: asyncio.unix_events slipped past 'asyncio'."""
    for mod, name in [
        ("asyncio.unix_events", "_UnixSubprocessTransport._start"),
        ("aiohttp.client", "ClientSession"),
        ("imaplib", "IMAP4"),
        ("torch.utils.bottleneck.__main__", "run_cprofile"),
    ]:
        assert worst(scan_bytes(P2 + G(mod, name) + STOP)) == Severity.CRITICAL, mod


@pytest.mark.parametrize(
    "head,expected",
    [
        (b"\x8c\x02os\x8c\x06system\x93.", True),
        (b"N0cos\nsystem\n.", True),
        (b"}q\x00(X\x01\x00\x00\x00aK\x01u.", True),
        (b"Hello world", False),
        (b"import os\nprint(1)\n", False),
        (b'{"a": 1}', False),
        (b"", False),
    ],
)
def test_sniff(head, expected):
    from mlflow_plugin.scanner.pickle_vm import sniff

    assert sniff(head) is expected


def test_picklescan_style_invalid_utf8_name_is_not_an_import():
    f = scan_bytes(b"cmod\n\xf8\n")
    assert rules(f) == {"pickle.malformed"} and worst(f) == Severity.LOW


@pytest.mark.parametrize(
    "name",
    [
        "mlflow_plugin.scanner.allowlist",
        "mlflow_plugin.scanner.pickle_vm",
        "mlflow_plugin.scanner.pickle_scan",
        "mlflow_plugin.scanner.numpy_scan",
    ],
)
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_joblib_zf_header_cannot_shorten_the_scan():
    body = P2 + b"]" + b"K\x01a" * 100 + b"0" + call(G("os", "system"), S("true")) + STOP
    data = b"ZF" + f"{8:#x}".ljust(19).encode() + zlib.compress(body)  # header claims 8 bytes
    f = scan_bytes(data, name="old.pkl")
    assert "os.system" in evidences(f)


def test_raw_data_that_looks_like_a_huge_payload_does_not_hide_a_later_pickle(tmp_path):
    """After the first pickle, raw bytes starting with BINBYTES8 and a huge length: the failed parse
    skips to the end; the search for hidden pickles goes back and still finds the payload."""
    benign = pickle.dumps([1, 2], protocol=4)
    hidden = P2 + call(G("os", "system"), S("true")) + STOP
    data = benign + b"\x8e" + struct.pack("<Q", 1 << 40) + b"\x00" * 500 + hidden + b"\x00" * 64
    p = tmp_path / "x.bin"
    p.write_bytes(data)
    assert "pickle.hidden-pickle" in rules(api.scan_file(str(p)).findings)


def test_probing_trailing_data_is_bounded():
    benign = pickle.dumps([1], protocol=2)
    trailing = (b"\x80\x02" + b"N" * 150_000) * 60  # every candidate parses for a long time
    data = benign + b"\x00" + trailing
    import time

    t = time.perf_counter()
    f = scan_bytes(data)
    assert time.perf_counter() - t < 30
    assert high(f) == []


def test_many_distinct_globals_are_capped():
    data = P2 + b"".join(G("mypkg", f"f{i}") + b"0" for i in range(100_050)) + b"N" + STOP
    f = scan_bytes(data)
    assert "pickle.limit" in rules(f)
    assert len(f) < 1100
