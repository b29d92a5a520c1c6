"""Which pickle globals real ML files contain, and how dangerous everything else is.

A pickle can import any ``module.qualname`` and call it. This module judges each import:

1. **Allowed** — an exact ``module.qualname`` from :data:`ALLOWED_GLOBALS` (numpy/pandas/scipy
   rebuild helpers, torch rebuild functions and dtypes, collections, datetime, MLflow's
   ``PythonModel`` bases, signatures and schema classes, …), a class matched by
   one of the narrow :data:`CLASS_RULES` (``sklearn.*`` estimator classes, ``torch.nn.modules.*``
   layers, pandas array/index/dtype classes, statsmodels models/results — CapWords names only, with
   denied sub-packages; plus
   ``sklearn.metrics`` score functions), or an admin extension
   (:class:`~mlflow_plugin.scanner.context.Policy`).
2. **Denied** — :data:`DENIED` lists modules, prefixes and exact names that execute code, reach the
   system, the network or the import machinery, load other pickles, or are generic gadgets
   (``getattr``, ``operator.attrgetter``/``methodcaller``, ``functools.partial``). Each carries a
   severity and a reason. Order: exact denied names (and dangerous attribute paths) first, then
   exact allowlist entries (``uuid.UUID`` inside the denied ``uuid``, ``torch.serialization.
   _get_layout``), then denied modules, then class rules. The denylist also wins over
   ``allow_modules`` (trusting ``torch`` does not trust ``torch.hub.load``); only an exact
   ``allow_globals`` entry overrides it — an explicit decision about exactly one name.
3. **Unknown** — everything else. ``HIGH`` by default (importing an unknown module runs its code
   and calling an unknown callable can do anything); ``CRITICAL`` when its attribute path reaches a
   dangerous module (``numpy.os.system``), a dunder, or its last component is a dangerous verb
   (``run``, ``system``, ``load``, ``exec``…); ``MEDIUM`` for a CapWords class of a trusted ML
   package that no rule covers; ``LOW`` for a CapWords class of ``__main__`` (the loading script's
   own class, which the file cannot supply).

Module aliases are normalised before judging (``__builtin__``/``__builtins__`` → ``builtins``,
``posix``/``nt`` → ``os``, ``_operator`` → ``operator``, ``_pickle``/``cPickle`` → ``pickle``,
``_io`` → ``io``, ``_codecs`` → ``codecs``, ``_functools`` → ``functools``, the Python 2 names of
:mod:`_compat_pickle`, …) so that an alias never slips past a denied name.

>>> judge("os", "system").severity.name, judge("posix", "system").reason[:20]
('CRITICAL', 'runs shell commands ')
>>> judge("collections", "OrderedDict").allowed
True
>>> judge("mypkg.models", "MyEstimator").severity.name
'HIGH'
>>> judge("mypkg.models", "MyEstimator", allow_globals=frozenset({"mypkg.models.MyEstimator"})).allowed
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from mlflow_plugin.scanner.report import Severity

__all__ = [
    "ALLOWED_GLOBALS",
    "CLASS_RULES",
    "DENIED",
    "Verdict",
    "canonical_module",
    "judge",
]

# ---------------------------------------------------------------------------------------------
# Aliases: modules that are the same object under another name.

_ALIASES: dict[str, str] = {
    "__builtin__": "builtins",
    "__builtins__": "builtins",
    "exceptions": "builtins",
    "posix": "os",
    "nt": "os",
    "posixpath": "os.path",
    "ntpath": "os.path",
    "_operator": "operator",
    "_pickle": "pickle",
    "cPickle": "pickle",
    "_compat_pickle": "pickle",
    "_io": "io",
    "_pyio": "io",
    "_codecs": "codecs",
    "_functools": "functools",
    "copy_reg": "copyreg",
    "_collections": "collections",
    "_collections_abc": "collections.abc",
    "_datetime": "datetime",
    "_pydatetime": "datetime",
    "_decimal": "decimal",
    "_pydecimal": "decimal",
    "_socket": "socket",
    "_ssl": "ssl",
    "_posixsubprocess": "subprocess",
    "commands": "subprocess",
    "popen2": "subprocess",
    "_frozen_importlib": "importlib",
    "_frozen_importlib_external": "importlib",
    "_imp": "importlib",
    "imp": "importlib",
    "_thread": "threading",
    "thread": "threading",
    "_ctypes": "ctypes",
    "_sre": "re",
    "_asyncio": "asyncio",
    "_multiprocessing": "multiprocessing",
    "_signal": "signal",
    "_tkinter": "tkinter",
    "_winapi": "winapi",
    "_winreg": "winreg",
    "_sqlite3": "sqlite3",
    "_lzma": "lzma",
    "_bz2": "bz2",
    "_gzip": "gzip",
    "_zoneinfo": "zoneinfo",
    "_marshal": "marshal",
    "_weakref": "weakref",
    "_abc": "abc",
    "_array": "array",
    "numpy.core": "numpy._core",
}


def _py2_mappings() -> tuple[dict[str, str], dict[tuple[str, str], tuple[str, str]]]:
    """Python 2 → 3 renames that ``pickle`` applies for protocols < 3 (static data only)."""
    try:
        import _compat_pickle as cp  # a table of names, no code runs
    except ImportError:  # pragma: no cover
        return {}, {}
    return dict(cp.IMPORT_MAPPING), dict(cp.NAME_MAPPING)


_PY2_IMPORTS, _PY2_NAMES = _py2_mappings()


def canonical_module(module: str) -> str:
    """The canonical name of ``module`` (aliases and Python 2 names folded).

    >>> canonical_module("posix"), canonical_module("__builtin__"), canonical_module("_operator")
    ('os', 'builtins', 'operator')
    >>> canonical_module("numpy.core.multiarray")
    'numpy._core.multiarray'
    """
    module = _PY2_IMPORTS.get(module, module)
    if module in _ALIASES:
        return _ALIASES[module]
    head, _, rest = module.partition(".")
    if head in _ALIASES and rest:
        return f"{_ALIASES[head]}.{rest}"
    if module.startswith("numpy.core."):
        return "numpy._core." + module[len("numpy.core.") :]
    return module


def canonical(module: str, name: str) -> tuple[str, str]:
    """``(module, qualname)`` after alias folding and Python 2 name mapping."""
    if (module, name) in _PY2_NAMES:
        module, name = _PY2_NAMES[(module, name)]
    return canonical_module(module), name


# ---------------------------------------------------------------------------------------------
# The allowlist: exact names.


def _w(words: str) -> list[str]:
    return words.split()


_NUMPY_UFUNCS = _w(
    "abs absolute acos acosh add arccos arccosh arcsin arcsinh arctan arctan2 arctanh asin asinh "
    "atan atan2 atanh bitwise_and bitwise_count bitwise_invert bitwise_left_shift bitwise_not "
    "bitwise_or bitwise_right_shift bitwise_xor cbrt ceil conj conjugate copysign cos cosh deg2rad "
    "degrees divide divmod equal exp exp2 expm1 fabs float_power floor floor_divide fmax fmin fmod "
    "frexp gcd greater greater_equal heaviside hypot invert isfinite isinf isnan isnat lcm ldexp "
    "left_shift less less_equal log log10 log1p log2 logaddexp logaddexp2 logical_and logical_not "
    "logical_or logical_xor matmul maximum minimum mod modf multiply negative nextafter not_equal "
    "positive pow power rad2deg radians reciprocal remainder right_shift rint sign signbit sin sinh "
    "spacing sqrt square subtract tan tanh true_divide trunc"
)
# numpy reductions commonly stored as hyper-parameters (SimpleImputer, FeatureAgglomeration, …):
# pure computations on arrays.
_NUMPY_FUNCS = _w(
    "mean median sum nansum nanmean nanmedian nanmax nanmin nanstd nanvar std var max min amax amin "
    "average prod nanprod ptp argmax argmin cumsum cumprod percentile quantile nanpercentile "
    "nanquantile clip round around dot einsum asarray array"
)
_NUMPY_SCALARS = _w(
    "bool_ bool int8 int16 int32 int64 uint8 uint16 uint32 uint64 intp uintp intc uintc byte ubyte "
    "short ushort int_ uint longlong ulonglong long ulong float16 float32 float64 half single double "
    "longdouble float_ complex64 complex128 clongdouble complex_ csingle cdouble str_ bytes_ "
    "unicode_ string_ object_ void datetime64 timedelta64 generic number integer signedinteger "
    "unsignedinteger floating complexfloating inexact flexible character"
)
_NUMPY_DTYPE_CLASSES = _w(
    "BoolDType ByteDType BytesDType CLongDoubleDType Complex128DType Complex64DType DateTime64DType "
    "Float16DType Float32DType Float64DType Int16DType Int32DType Int64DType Int8DType IntDType "
    "LongDType LongDoubleDType LongLongDType ObjectDType ShortDType StrDType StringDType "
    "TimeDelta64DType UByteDType UInt16DType UInt32DType UInt64DType UInt8DType UIntDType ULongDType "
    "ULongLongDType UShortDType VoidDType"
)

_TORCH_STORAGES = _w(
    "Double Float Half Long Int Short Char Byte Bool BFloat16 ComplexDouble ComplexFloat QUInt8 "
    "QInt8 QInt32 QUInt4x2 QUInt2x4"
)
_TORCH_TENSORS = _w("Double Float Half Long Int Short Char Byte Bool BFloat16")
_TORCH_DTYPES = _w(
    "bfloat16 bits16 bits1x8 bits2x4 bits4x2 bits8 bool complex128 complex32 complex64 float16 "
    "float32 float4_e2m1fn_x2 float64 float8_e4m3fn float8_e4m3fnuz float8_e5m2 float8_e5m2fnuz "
    "float8_e8m0fnu int1 int2 int3 int4 int5 int6 int7 int8 int16 int32 int64 qint32 qint8 quint2x4 "
    "quint4x2 quint8 uint1 uint2 uint3 uint4 uint5 uint6 uint7 uint8 uint16 uint32 uint64 half float "
    "double long int short cfloat cdouble chalf"
)
_TORCH_MISC = _w(
    "per_channel_affine per_channel_affine_float_qparams per_channel_symmetric per_tensor_affine "
    "per_tensor_symmetric contiguous_format channels_last channels_last_3d preserve_format strided "
    "sparse_coo sparse_csr sparse_csc sparse_bsr sparse_bsc Size Tensor device dtype"
)
_TORCH_REBUILD = _w(
    "_rebuild_tensor _rebuild_tensor_v2 _rebuild_tensor_v3 _rebuild_parameter "
    "_rebuild_parameter_with_state _rebuild_qtensor _rebuild_sparse_tensor _rebuild_nested_tensor "
    "_rebuild_device_tensor_from_numpy _rebuild_device_tensor_from_cpu_tensor "
    "_rebuild_meta_tensor_no_storage _rebuild_wrapper_subclass _rebuild_xla_tensor "
    "_rebuild_mtia_tensor"
)
_TORCH_NN_FUNCTIONAL = _w(
    "relu relu6 gelu silu mish elu selu celu leaky_relu hardtanh hardswish hardsigmoid tanh sigmoid "
    "softplus softsign softmax log_softmax logsigmoid glu tanhshrink dropout"
)
_SKLEARN_ESTIMATOR_FREE_FUNCS = {
    # score functions stored by SelectKBest / SelectPercentile
    "sklearn.feature_selection._univariate_selection": "f_classif f_regression chi2 r_regression f_oneway",
    "sklearn.feature_selection._mutual_info": "mutual_info_classif mutual_info_regression",
    "sklearn.metrics._scorer": "_passthrough_scorer",
    "sklearn.metrics._dist_metrics": "newObj",
    "sklearn.neighbors._kd_tree": "newObj",
    "sklearn.neighbors._ball_tree": "newObj",
    "sklearn.cluster._kmeans": "_kmeans_single_lloyd _kmeans_single_elkan",
}
_PANDAS_TOP = _w(
    "DataFrame Series Index RangeIndex MultiIndex DatetimeIndex TimedeltaIndex PeriodIndex "
    "CategoricalIndex IntervalIndex Categorical CategoricalDtype DatetimeTZDtype PeriodDtype "
    "IntervalDtype SparseDtype StringDtype ArrowDtype Int8Dtype Int16Dtype Int32Dtype Int64Dtype "
    "UInt8Dtype UInt16Dtype UInt32Dtype UInt64Dtype Float32Dtype Float64Dtype BooleanDtype Timestamp "
    "Timedelta Period Interval NaT NA DateOffset"
)
_SCIPY_SPARSE = ["csr", "csc", "coo", "lil", "dok", "dia", "bsr"]
_XGB = ["XGBModel", "XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor"]
_LGB = ["LGBMModel", "LGBMClassifier", "LGBMRegressor", "LGBMRanker"]
_CATBOOST = ["CatBoost", "CatBoostClassifier", "CatBoostRegressor", "CatBoostRanker"]
_BUILTIN_EXCEPTIONS = _w(
    "Exception ValueError TypeError KeyError IndexError RuntimeError AttributeError ArithmeticError "
    "ZeroDivisionError OverflowError NotImplementedError StopIteration LookupError AssertionError "
    "UserWarning Warning DeprecationWarning FutureWarning RuntimeWarning"
)


def _build_allowed() -> frozenset[str]:
    a: set[str] = set()
    # builtins: constructors of plain data. Each only builds a value from its arguments:
    #   set/frozenset/list/dict/tuple/bytearray/bytes/str/int/float/complex/bool — containers and
    #   scalars (protocols 0–2 pickle sets, bytearrays and complexes through them);
    #   slice/range — inert value objects; object — the ``base`` argument copyreg._reconstructor
    #   receives in protocol 0/1 pickles (``object()`` is an empty instance);
    #   Ellipsis/NotImplemented — singletons; exception classes only store their arguments.
    # Deliberately absent: getattr (judged per call, see pickle_scan), type, map/filter/sorted/...
    # (they call callables), open/exec/eval/compile/__import__ (denied), memoryview, property, super.
    for n in (
        _w(
            "set frozenset list dict tuple bytearray bytes str int float complex bool slice range object "
            "Ellipsis NotImplemented"
        )
        + _BUILTIN_EXCEPTIONS
    ):
        a.add(f"builtins.{n}")
    # Python 2 pickles of bytes/str go through codecs.encode(text, 'latin1'): a pure transform;
    # the codec named is looked up in the ``encodings`` package, which holds only codecs.
    a |= {"codecs.encode"}
    a |= {"collections.OrderedDict", "collections.defaultdict", "collections.deque", "collections.Counter"}
    # copyreg helpers rebuild instances of a class that is itself a (separately judged) global.
    a |= {"copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__"}
    a |= {f"datetime.{n}" for n in ("datetime", "date", "time", "timedelta", "timezone")}
    a |= {
        "decimal.Decimal",
        "fractions.Fraction",
        "uuid.UUID",
        "re._compile",
        "argparse.Namespace",
        "types.SimpleNamespace",
        "array.array",
        "array._array_reconstructor",
        "zoneinfo.ZoneInfo",
        "zoneinfo.ZoneInfo._unpickle",
        "zoneinfo._zoneinfo.ZoneInfo",
        "zoneinfo._zoneinfo.ZoneInfo._unpickle",
    }
    a |= {
        f"pathlib.{n}"
        for n in ("PurePath", "PurePosixPath", "PureWindowsPath", "Path", "PosixPath", "WindowsPath")
    }
    # numpy (numpy.core.* is folded into numpy._core.* by canonical_module)
    a |= {
        "numpy._core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar",
        "numpy._core.numeric._frombuffer",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.matrix",
        "numpy.matrixlib.defmatrix.matrix",
        "numpy.recarray",
        "numpy.rec.recarray",
        "numpy.record",
        "numpy._core.records.recarray",
        "numpy._core.records.record",
        "numpy.ma.core._mareconstruct",
        "numpy.ma.core.MaskedArray",
        "numpy.ma.MaskedArray",
        "numpy.ma.core.MaskedConstant",
        "numpy.ma.core.mvoid",
        "numpy._core._multiarray_umath._reconstruct",
        "numpy._core.multiarray.ndarray",
        "numpy._core.multiarray.dtype",
    }
    a |= {f"numpy.{n}" for n in _NUMPY_UFUNCS + _NUMPY_FUNCS + _NUMPY_SCALARS}
    a |= {f"numpy.dtypes.{n}" for n in _NUMPY_DTYPE_CLASSES}
    a |= {
        f"numpy.random._pickle.{n}"
        for n in ("__bit_generator_ctor", "__randomstate_ctor", "__generator_ctor")
    }
    a |= {
        "numpy.random.mtrand.__randomstate_ctor",
        "numpy.random.__RandomState_ctor",
        "numpy.random.mtrand.RandomState",
        "numpy.random._generator.Generator",
        "numpy.random.bit_generator.SeedSequence",
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
        "numpy.random._mt19937.MT19937",
        "numpy.random._pcg64.PCG64",
        "numpy.random._pcg64.PCG64DXSM",
        "numpy.random._philox.Philox",
        "numpy.random._sfc64.SFC64",
        "numpy.random.RandomState",
        "numpy.random.Generator",
        "numpy.random.MT19937",
        "numpy.random.PCG64",
        "numpy.random.SeedSequence",
    }
    # scipy
    for kind in _SCIPY_SPARSE:
        for mod in (f"scipy.sparse._{kind}", f"scipy.sparse.{kind}"):
            a |= {f"{mod}.{kind}_matrix", f"{mod}.{kind}_array"}
    a |= {
        "scipy.sparse._arrays.csr_array",
        "scipy.sparse._arrays.csc_array",
        "scipy.sparse._arrays.coo_array",
        "scipy.interpolate._bsplines.BSpline",
        "scipy.interpolate._interpolate.interp1d",
        "scipy.interpolate._interpolate.PPoly",
        "scipy.stats._distn_infrastructure.rv_continuous_frozen",
        "scipy.stats._distn_infrastructure.rv_discrete_frozen",
        "scipy.stats._distn_infrastructure.rv_frozen",
        "scipy._lib.array_api_compat.numpy._aliases.asarray",
        "numpy.vectorize",
        "numpy.lib._function_base_impl.vectorize",
        "numpy.lib.function_base.vectorize",
    }
    # pandas top level and its unpickle helpers (classes under pandas.core/_libs: CLASS_RULES)
    a |= {f"pandas.{n}" for n in _PANDAS_TOP}
    a |= {
        "pandas._libs.internals._unpickle_block",
        "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked",
        "pandas._libs.tslibs.timestamps._unpickle_timestamp",
        "pandas._libs.tslibs.timedeltas._timedelta_unpickle",
        "pandas._libs.tslibs.nattype.__nat_unpickle",
        "pandas._libs.tslibs.period.__pyx_unpickle__Period",
        "pandas.core.indexes.base._new_Index",
        "pandas.core.indexes.timedeltas._new_TimedeltaIndex",
        "pandas.core.indexes.interval._new_IntervalIndex",
        "pandas.core.indexes.multi._new_MultiIndex",
        "pandas._libs.tslibs.nattype._nat_unpickle",
        "pandas.core.indexes.datetimes._new_DatetimeIndex",
        "pandas.core.indexes.period._new_PeriodIndex",
        "pandas.core.indexes.multi.MultiIndex",
        "pandas.core.internals.blocks.new_block",
        "pandas.core.internals.managers.BlockManager",
        "pandas._libs.sparse.IntIndex",
        "pandas._libs.sparse.BlockIndex",
        "pandas.core.arrays.arrow.array.ArrowExtensionArray",
        "pandas._libs.tslibs.offsets._offset_to_period_map",
    }
    # pyarrow buffers behind pandas' string / arrow arrays: rebuild values from bytes.
    a |= {
        "pyarrow.lib._restore_array",
        "pyarrow.lib.py_buffer",
        "pyarrow.lib.type_for_alias",
        "pyarrow.lib.ChunkedArray",
        "pyarrow.lib.chunked_array",
        "pyarrow.lib.array",
        "pyarrow.lib.field",
        "pyarrow.lib.schema",
        "pyarrow.lib.Table",
        "pyarrow.lib.table",
        "pyarrow.lib.RecordBatch",
        "pyarrow.lib.DataType",
        "pyarrow.lib.list_",
        "pyarrow.lib.struct",
        "pyarrow.lib.dictionary",
        "pyarrow.lib.timestamp",
        "pyarrow.lib.string",
        "pyarrow.lib.large_string",
        "pyarrow.lib.large_list",
        "pyarrow.lib.binary",
        "pyarrow.lib.large_binary",
    }
    # sklearn free functions (classes: CLASS_RULES)
    for mod, names in _SKLEARN_ESTIMATOR_FREE_FUNCS.items():
        a |= {f"{mod}.{n}" for n in names.split()}
    # gradient boosting libraries
    for mod in ("xgboost.sklearn", "xgboost"):
        a |= {f"{mod}.{n}" for n in _XGB}
    a |= {"xgboost.core.Booster", "xgboost.Booster"}
    for mod in ("lightgbm.sklearn", "lightgbm"):
        a |= {f"{mod}.{n}" for n in _LGB}
    a |= {
        "lightgbm.basic.Booster",
        "lightgbm.Booster",
        "lightgbm.sklearn._ObjectiveFunctionWrapper",
        "lightgbm.sklearn._EvalFunctionWrapper",
    }
    for mod in ("catboost.core", "catboost"):
        a |= {f"{mod}.{n}" for n in _CATBOOST}
    # MLflow's own types that benign MLflow models pickle: the PythonModel base classes a notebook
    # model subclasses (cloudpickle writes the subclass by value, the base by reference), the
    # context, the wrapper of function models, signatures and their schema classes. Each only
    # stores what it is given (plain classes and dataclasses, DataType is an Enum looked up by
    # value). Exact names only: nothing else of mlflow is trusted (mlflow.pyfunc.load_model,
    # mlflow.artifacts.download_artifacts… stay unknown, CRITICAL by their verbs).
    a |= {
        f"mlflow.pyfunc.model.{n}"
        for n in (
            "PythonModel",
            "PythonModelContext",
            "ChatModel",
            "ChatAgent",
            "ResponsesAgent",
            "_FunctionPythonModel",
        )
    }
    a |= {"mlflow.models.signature.ModelSignature", "mlflow.models.signature._TypeHints"}
    a |= {"mlflow.models.model.Model", "mlflow.models.model.ModelInfo"}
    a |= {
        f"mlflow.types.schema.{n}"
        for n in _w(
            "Schema ColSpec TensorSpec TensorInfo DataType ParamSchema ParamSpec Array Object "
            "Property Map AnyType SparkMLVector"
        )
    }
    # joblib: the array wrapper of joblib.dump (the array bytes follow it in the file)
    a |= {"joblib.numpy_pickle.NumpyArrayWrapper"}
    # torch: rebuild functions, storages, dtypes, layouts, Size/device, Parameter
    a |= {f"torch._utils.{n}" for n in _TORCH_REBUILD}
    a |= {
        "torch._tensor._rebuild_from_type",
        "torch._tensor._rebuild_from_type_v2",
        "torch.nn.parameter.Parameter",
        "torch.nn.parameter.Buffer",
        "torch.nn.parameter.UninitializedParameter",
        "torch.nn.parameter.UninitializedBuffer",
        "torch.serialization._get_layout",
        # TorchScript archives (torch.jit.save) rebuild constant lists with these pure helpers
        "torch.jit._pickle.build_intlist",
        "torch.jit._pickle.build_tensorlist",
        "torch.jit._pickle.build_doublelist",
        "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.build_complexlist",
        "torch.jit._pickle.restore_type_tag",
        "torch.storage.TypedStorage",
        "torch.storage.UntypedStorage",
        "torch.UntypedStorage",
        "torch.TypedStorage",
        "torch.ScriptObject",
        "torch._C._nn.gelu",
        "torch._C._nn.silu",
        "torch._C._nn.mish",
        "torch._C._nn.hardswish",
        "torch._C._nn.hardsigmoid",
        "torch._C._nn.elu",
        "torch._C._nn.leaky_relu",
        "torch._C._nn.softplus",
        "torch._C._nn.log_sigmoid",
        "torch._C._nn.hardtanh",
        "torch.autograd.grad_mode.no_grad",
        "torch.return_types.max",
        "torch.return_types.min",
        "torch.return_types.topk",
        "torch.return_types.sort",
    }
    a |= {f"torch.{n}Storage" for n in _TORCH_STORAGES}
    a |= {f"torch.cuda.{n}Storage" for n in _TORCH_STORAGES[:12]}
    a |= {f"torch.{n}Tensor" for n in _TORCH_TENSORS}
    a |= {f"torch.cuda.{n}Tensor" for n in _TORCH_TENSORS}
    a |= {f"torch.{n}" for n in _TORCH_DTYPES + _TORCH_MISC}
    a |= {f"torch.nn.functional.{n}" for n in _TORCH_NN_FUNCTIONAL}
    a |= {f"torch.{n}" for n in ("relu", "tanh", "sigmoid", "softmax", "log_softmax")}
    return frozenset(a)


ALLOWED_GLOBALS: frozenset[str] = _build_allowed()
"""Exact canonical ``module.qualname`` entries that real ML pickles contain."""


@dataclass(frozen=True)
class ClassRule:
    """Allow CapWords class names (no dots in the qualname) under ``prefix``, except ``deny`` prefixes.

    Why classes only: the libraries below follow an API contract where constructing an object
    (and restoring its ``__dict__``) has no side effects — scikit-learn estimators only store their
    hyper-parameters in ``__init__`` (enforced by sklearn's own common tests), torch modules are
    rebuilt with ``NEWOBJ`` + ``BUILD`` which never calls ``__init__``, pandas array/index/dtype
    classes only wrap arrays. What they *do* (fit, forward, read_csv…) lives in methods and
    functions that unpickling never calls — and a dotted qualname (``Class.method``) never matches.
    The callables they hold as hyper-parameters are separate globals, judged on their own.
    """

    prefix: str
    deny: tuple[str, ...] = ()
    lowercase_classes: tuple[str, ...] = ()  # exact lower-case class names also allowed (suffix match)
    functions: bool = False  # also plain functions (pure computations: metrics), not dangerous verbs

    def matches(self, module: str, name: str) -> bool:
        if not (module == self.prefix.rstrip(".") or module.startswith(self.prefix)):
            return False
        parts = module.split(".")
        if any(p in ("tests", "test", "conftest", "testing") for p in parts):
            return False
        if any(module == d or module.startswith(d + ".") for d in self.deny):
            return False
        if "." in name:
            return False
        if name.startswith("__pyx_unpickle_"):  # Cython unpickle helper: builds the (judged) class
            return True
        if name.endswith(self.lowercase_classes) and self.lowercase_classes:
            return True
        if self.functions and _IDENT.match(name) and not _DANGEROUS_LEAF.match(name):
            return True
        return bool(_CAPWORDS.match(name))


_CAPWORDS = re.compile(r"^_{0,2}[A-Z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*$")

CLASS_RULES: tuple[ClassRule, ...] = (
    ClassRule(
        "sklearn.",
        deny=(
            "sklearn.utils._testing",
            "sklearn.utils.estimator_checks",
            "sklearn.utils._mocking",
            "sklearn.utils.parallel",
            "sklearn.utils._joblib",
            "sklearn.utils.fixes",
            "sklearn.utils._show_versions",
            "sklearn.utils.discovery",
            "sklearn.utils._optional_dependencies",
            "sklearn.externals",
            "sklearn._build_utils",
            "sklearn.__check_build",
            "sklearn.datasets",
            "sklearn.experimental",
            "sklearn._config",
            "sklearn.utils._plotting",
            "sklearn.metrics._plot",
            "sklearn.inspection._plot",
            "sklearn.calibration_display",
        ),
    ),
    # metric functions stored by scorers (GridSearchCV.scorer_, make_scorer): pure computations
    ClassRule("sklearn.metrics.", deny=("sklearn.metrics._plot",), functions=True),
    ClassRule("torch.nn.modules."),
    ClassRule("torch.ao.nn."),
    ClassRule("torch.nn.utils.parametrize."),
    ClassRule("pandas.core.arrays."),
    ClassRule("pandas.core.dtypes."),
    ClassRule("pandas.core.indexes."),
    ClassRule("pandas.core.internals."),
    ClassRule("pandas.core.frame."),
    ClassRule("pandas.core.series."),
    ClassRule("pandas.arrays."),
    ClassRule(
        "pandas._libs.",
        deny=(
            "pandas._libs.parsers",
            "pandas._libs.json",
            "pandas._libs.writers",
            "pandas._libs.testing",
            "pandas._libs.sas",
            "pandas._libs.window",
        ),
    ),
    # statsmodels results as mlflow.statsmodels pickles them (model.statsmodels): the results wrapper,
    # the results, the model and its data holder (RegressionResultsWrapper, OLSResults, OLS,
    # base.data.ModelData; GLM families/links, tsa results…). Models only store endog/exog and options
    # in __init__ and are rebuilt by NEWOBJ + BUILD; file readers, dataset loaders and the sandbox
    # stay outside.
    ClassRule(
        "statsmodels.",
        deny=(
            "statsmodels.iolib",
            "statsmodels.datasets",
            "statsmodels.sandbox",
            "statsmodels.tools",
            "statsmodels.compat",
            "statsmodels.graphics",
            "statsmodels.api",
            "statsmodels.formula",
        ),
    ),
    ClassRule("scipy.stats._continuous_distns.", lowercase_classes=("_gen",)),
    ClassRule("scipy.stats._discrete_distns.", lowercase_classes=("_gen",)),
    ClassRule("scipy.stats._multivariate.", lowercase_classes=("_frozen", "_gen")),
)
"""Prefix rules for classes of libraries whose classes are side-effect free to rebuild."""

# Packages whose unknown CapWords classes are MEDIUM rather than HIGH (see judge()).
_TRUSTED_ML_PACKAGES = frozenset(
    {
        "numpy",
        "scipy",
        "pandas",
        "sklearn",
        "torch",
        "torchvision",
        "torchaudio",
        "torchtext",
        "xgboost",
        "lightgbm",
        "catboost",
        "joblib",
        "transformers",
        "timm",
        "pyarrow",
        "statsmodels",
    }
)

# ---------------------------------------------------------------------------------------------
# The denylist. Keys are canonical modules ("os") — matching the module and every submodule — or
# exact canonical "module.qualname" entries ("numpy.load"), or "module.prefix*" name prefixes.

_C, _H, _M = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM

DENIED: dict[str, tuple[Severity, str]] = {
    # code execution, processes, the system
    "os": (_C, "runs shell commands and reaches the file system (os/posix/nt)"),
    "subprocess": (_C, "runs processes"),
    "pty": (_C, "spawns processes (pty.spawn)"),
    "sys": (_C, "reaches interpreter internals (sys.modules, settrace, exit)"),
    "runpy": (_C, "runs Python modules and code"),
    "code": (_C, "interactive interpreter: runs code"),
    "codeop": (_C, "compiles code"),
    "importlib": (_C, "imports arbitrary modules"),
    "pkgutil": (_C, "resolves arbitrary module:attribute names (pkgutil.resolve_name)"),
    "zipimport": (_C, "imports code from archives"),
    "site": (_C, "runs .pth files and alters import paths"),
    "ctypes": (_C, "calls native code and manipulates memory"),
    "cffi": (_C, "calls native code"),
    "marshal": (_C, "deserialises code objects"),
    "pickle": (_C, "unpickles nested data (a pickle inside the pickle)"),
    "dill": (_C, "serialises and rebuilds code"),
    "cloudpickle": (_C, "rebuilds functions from embedded code objects"),
    "shelve": (_C, "opens pickled databases"),
    "joblib.numpy_pickle.load": (_C, "loads another pickle"),
    "joblib.load": (_C, "loads another pickle"),
    "joblib.Parallel": (_C, "runs callables in workers"),
    "joblib.parallel": (_C, "runs callables in workers"),
    "joblib.delayed": (_C, "wraps callables to run later"),
    "yaml": (_C, "yaml.load/unsafe_load construct arbitrary Python objects"),
    "jinja2": (_C, "templates evaluate expressions"),
    "mako": (_C, "templates run Python code"),
    "bdb": (_C, "debugger: runs code (bdb.Bdb.run)"),
    "pdb": (_C, "debugger: runs code"),
    "timeit": (_C, "runs code strings (timeit.timeit)"),
    "cProfile": (_C, "runs code strings (cProfile.run)"),
    "profile": (_C, "runs code strings (profile.run)"),
    "trace": (_C, "runs code (trace.Trace.run)"),
    "doctest": (_C, "runs code from docstrings"),
    "idlelib": (_C, "IDLE internals evaluate code (idlelib.autocomplete, idlelib.run)"),
    "lib2to3": (_C, "lib2to3 grammar loading unpickles files"),
    "pydoc": (_C, "locates arbitrary objects, runs pagers (pydoc.locate, pipepager)"),
    "multiprocessing": (_C, "starts processes"),
    "concurrent": (_C, "runs callables in executors"),
    "asyncio": (_C, "starts subprocesses and connections (asyncio.create_subprocess_shell)"),
    "threading": (_C, "starts threads running callables"),
    "sched": (_C, "schedules callables"),
    "atexit": (_C, "registers callables run at exit"),
    "signal": (_C, "installs signal handlers"),
    "gc": (_C, "reaches every live object (gc.get_objects, get_referrers)"),
    "weakref": (_H, "finalizers run callables (weakref.finalize)"),
    "inspect": (_H, "reads sources and frames"),
    "builtins.exec": (_C, "executes code"),
    "builtins.eval": (_C, "evaluates code"),
    "builtins.compile": (_C, "compiles code"),
    "builtins.__import__": (_C, "imports arbitrary modules"),
    "builtins.open": (_C, "opens files"),
    "builtins.getattr": (_C, "reads any attribute: the classic gadget to reach os.system and friends"),
    "builtins.setattr": (_C, "overwrites attributes of modules and classes"),
    "builtins.delattr": (_C, "deletes attributes of modules and classes"),
    "builtins.globals": (_C, "reaches module globals"),
    "builtins.locals": (_C, "reaches frame locals"),
    "builtins.vars": (_C, "reaches object and module namespaces"),
    "builtins.breakpoint": (_C, "starts a debugger"),
    "builtins.input": (_C, "reads standard input (blocks the loader)"),
    "builtins.help": (_C, "starts pydoc's pager (runs a process)"),
    "builtins.apply": (_C, "calls any callable (Python 2)"),
    "builtins.execfile": (_C, "executes a file (Python 2)"),
    "builtins.reload": (_C, "re-imports modules (Python 2)"),
    "builtins.memoryview": (_H, "exposes raw memory"),
    "builtins.type": (_H, "creates classes whose methods are attacker-chosen callables"),
    "builtins.super": (_H, "reaches parent-class methods"),
    "builtins.classmethod": (_H, "wraps callables into descriptors"),
    "builtins.staticmethod": (_H, "wraps callables into descriptors"),
    "builtins.property": (_H, "wraps callables into descriptors"),
    "builtins.map": (_H, "calls a callable on each item when iterated"),
    "builtins.filter": (_H, "calls a callable on each item when iterated"),
    "builtins.sorted": (_H, "calls key callables"),
    "builtins.min": (_H, "calls key callables"),
    "builtins.max": (_H, "calls key callables"),
    "builtins.iter": (_H, "calls a callable until a sentinel"),
    "builtins.next": (_H, "drives iterators (runs lazy map/filter calls)"),
    "builtins.exit": (_M, "stops the interpreter"),
    "builtins.quit": (_M, "stops the interpreter"),
    "types.FunctionType": (_C, "builds functions from code objects"),
    "types.LambdaType": (_C, "builds functions from code objects"),
    "types.CodeType": (_C, "builds code objects"),
    "types.MethodType": (_C, "binds callables to objects"),
    "types.ModuleType": (_H, "creates modules"),
    "types.new_class": (_C, "creates classes"),
    "functools.partial": (_H, "wraps a callable with arguments (CRITICAL when the partial is called)"),
    "functools.partialmethod": (_H, "wraps a callable with arguments"),
    "functools.reduce": (_H, "calls a callable repeatedly"),
    "functools.cached_property": (_H, "wraps callables into descriptors"),
    "operator.attrgetter": (_C, "reads any attribute path of its argument: same power as getattr"),
    "operator.methodcaller": (_C, "calls any method of its argument"),
    "operator.call": (_C, "calls any callable"),
    "operator.itemgetter": (_H, "reads items: triggers __getitem__ and defaultdict factories"),
    "operator.getitem": (_H, "reads items: triggers __getitem__ and defaultdict factories"),
    "operator.setitem": (_H, "writes items into containers (sys.modules, globals)"),
    "operator.delitem": (_H, "deletes items from containers"),
    "operator.index": (_M, "calls __index__"),
    "itertools": (_H, "drives iterators (runs lazy map/filter/starmap calls)"),
    "collections.ChainMap": (_H, "mapping wrapper used to reach defaultdict factories"),
    "types.MappingProxyType": (_H, "mapping wrapper used to reach defaultdict factories"),
    "copyreg.add_extension": (_C, "rewrites the pickle extension registry"),
    "copyreg.pickle": (_C, "rewrites pickle reducers"),
    "copy": (_H, "copy/deepcopy call __reduce__ of arbitrary objects"),
    "string.Template": (_H, "template substitution calls mapping lookups"),
    "string.Formatter": (_H, "format strings read attributes"),
    "logging.config": (_C, "logging.config.listen evaluates configurations from a socket"),
    "logging.FileHandler": (_C, "creates files"),
    "logging.handlers": (_C, "opens files, sockets, processes"),
    # files
    "io": (_C, "opens files (io.open, FileIO)"),
    "codecs.open": (_C, "opens files"),
    "codecs.EncodedFile": (_C, "opens files"),
    "codecs.StreamReaderWriter": (_H, "wraps file objects"),
    "shutil": (_C, "copies, moves and deletes files; runs archives"),
    "tempfile": (_H, "creates files"),
    "glob": (_H, "lists the file system"),
    "fileinput": (_C, "opens and rewrites files"),
    "linecache": (_H, "reads files"),
    "tarfile": (_C, "extracts archives to disk"),
    "zipfile": (_C, "extracts archives to disk"),
    "gzip.open": (_C, "opens files"),
    "bz2.open": (_C, "opens files"),
    "lzma.open": (_C, "opens files"),
    "gzip.GzipFile": (_C, "opens files"),
    "bz2.BZ2File": (_C, "opens files"),
    "lzma.LZMAFile": (_C, "opens files"),
    "mmap": (_C, "maps files into memory"),
    "sqlite3": (_C, "opens database files, loads extensions"),
    "dbm": (_C, "opens database files"),
    "mailbox": (_H, "opens mail files"),
    "pathlib.Path.write_text": (_C, "writes files"),
    "distutils": (_C, "writes files and runs builds (distutils.file_util.write_file)"),
    "setuptools": (_C, "runs builds and installs"),
    "pkg_resources": (_C, "imports entry points, extracts resources"),
    "pip": (_C, "installs packages (pip.main)"),
    "ensurepip": (_C, "installs pip (runs a subprocess)"),
    "venv": (_C, "creates environments (runs a subprocess)"),
    "uuid._get_command_stdout": (_C, "runs commands"),
    "uuid": (_H, "uuid internals run commands (uuid._get_command_stdout); only uuid.UUID is allowed"),
    "platform": (_C, "platform helpers run commands"),
    "_osx_support": (_C, "runs commands"),
    "_aix_support": (_C, "runs commands"),
    "_pyrepl": (_C, "runs pagers (subprocess)"),
    "ctypes.util": (_C, "runs commands to find libraries"),
    "mailcap": (_C, "runs mailcap test commands (mailcap.findmatch)"),
    "imaplib": (_C, "imaplib.IMAP4_stream runs a command"),
    "test": (_C, "CPython's test helpers spawn interpreters"),
    "turtle": (_H, "opens windows"),
    "tkinter": (_H, "opens windows, evaluates Tcl"),
    "antigravity": (_C, "opens a web browser on import"),
    "this": (_M, "prints on import"),
    "webbrowser": (_C, "opens URLs, runs browsers"),
    "readline": (_H, "reads and writes history files"),
    "rlcompleter": (_H, "evaluates expressions to complete them"),
    "cmd": (_H, "interactive command loops"),
    "pwd": (_H, "reads account data"),
    "grp": (_H, "reads account data"),
    "spwd": (_C, "reads password hashes"),
    "getpass": (_H, "reads the terminal"),
    "resource": (_H, "changes process limits"),
    "fcntl": (_H, "file descriptor control"),
    "termios": (_H, "terminal control"),
    "winreg": (_C, "edits the Windows registry"),
    "winapi": (_C, "creates processes (Windows)"),
    "msvcrt": (_H, "Windows C runtime"),
    # network
    "socket": (_C, "opens network connections"),
    "socketserver": (_C, "opens network servers"),
    "ssl": (_C, "opens connections (ssl.get_server_certificate for exfiltration)"),
    "select": (_H, "waits on descriptors"),
    "selectors": (_H, "waits on descriptors"),
    "http": (_C, "opens network connections and servers"),
    "urllib": (_C, "fetches URLs"),
    "urllib3": (_C, "fetches URLs"),
    "requests": (_C, "fetches URLs"),
    "httpx": (_C, "fetches URLs"),
    "aiohttp": (_C, "fetches URLs"),
    "ftplib": (_C, "opens FTP connections"),
    "smtplib": (_C, "sends mail"),
    "smtpd": (_C, "opens mail servers"),
    "telnetlib": (_C, "opens telnet connections"),
    "poplib": (_C, "opens mail connections"),
    "nntplib": (_C, "opens news connections"),
    "xmlrpc": (_C, "calls remote procedures"),
    "wsgiref": (_C, "runs web servers"),
    "email": (_H, "parses mail; some helpers open files"),
    "xml": (_H, "XML parsers read files and URLs (external entities)"),
    "paramiko": (_C, "opens SSH connections"),
    "fsspec": (_C, "opens local and remote files"),
    # ML libraries: functions that load other files / pickles or run code
    "numpy.f2py": (_C, "numpy.f2py evaluates strings and compiles extensions"),
    "numpy.testing": (_C, "numpy.testing runs code strings (runstring)"),
    "numpy.distutils": (_C, "runs builds"),
    "numpy.ctypeslib": (_C, "loads native libraries"),
    "numpy.lib.format": (_C, "reads arrays and pickles from files"),
    "numpy.lib.npyio": (_C, "reads arrays and pickles from files"),
    "numpy.lib._npyio_impl": (_C, "reads arrays and pickles from files"),
    "numpy.lib._datasource": (_C, "opens local files and URLs"),
    "numpy.lib.utils": (_H, "numpy.lib.utils helpers read sources"),
    "numpy.lib._utils_impl": (_H, "numpy.lib utils helpers read sources"),
    "numpy._pytesttester": (_C, "runs pytest"),
    "numpy.load": (_C, "loads .npy/.npz files, with pickles when allowed"),
    "numpy.save": (_C, "writes files"),
    "numpy.savez": (_C, "writes files"),
    "numpy.savez_compressed": (_C, "writes files"),
    "numpy.savetxt": (_C, "writes files"),
    "numpy.loadtxt": (_C, "reads files"),
    "numpy.genfromtxt": (_C, "reads files and URLs"),
    "numpy.fromfile": (_C, "reads files"),
    "numpy.fromregex": (_C, "reads files"),
    "numpy.memmap": (_C, "maps, creates or truncates files"),
    "numpy._core.memmap": (_C, "maps, creates or truncates files"),
    "numpy.DataSource": (_C, "opens local files and URLs"),
    "numpy.info": (_H, "prints sources"),
    "numpy.source": (_H, "prints sources"),
    "numpy.rec.fromfile": (_C, "reads files"),
    "numpy._core.records.fromfile": (_C, "reads files"),
    "numpy.ndarray.tofile": (_C, "writes files"),
    "numpy.ndarray.dump": (_C, "writes pickles"),
    "torch.hub": (_C, "downloads and runs code (torch.hub.load)"),
    "torch.load": (_C, "loads another pickle"),
    "torch.serialization": (_C, "loads other files and pickles (only _get_layout is allowed)"),
    "torch.storage._load_from_bytes": (_C, "calls torch.load on embedded bytes"),
    "torch.storage": (_H, "storage helpers (only TypedStorage/UntypedStorage are allowed)"),
    "torch.jit": (_C, "loads and compiles TorchScript"),
    "torch._C": (_C, "native torch internals (import hooks, library loading, code execution)"),
    "torch.utils.bottleneck": (_C, "runs profilers on code"),
    "torch.utils.collect_env": (_C, "runs commands"),
    "torch.utils.cpp_extension": (_C, "compiles and loads native code"),
    "torch.utils._config_module": (_C, "loads embedded pickles"),
    "torch.utils.data": (_H, "data pipelines open files and decode pickles"),
    "torch.utils.benchmark": (_C, "runs code strings"),
    "torch._inductor": (_C, "compiles and runs code (codecache.compile_file)"),
    "torch._dynamo": (_C, "evaluates guards and code"),
    "torch.fx": (_C, "GraphModule rebuilds execute generated Python code"),
    "torch.package": (_C, "imports code shipped in packages"),
    "torch.export": (_C, "loads exported programs"),
    "torch._export": (_C, "loads exported programs"),
    "torch.compiler": (_C, "compiles code"),
    "torch.distributed": (_C, "remote procedure calls and network"),
    "torch.multiprocessing": (_C, "starts processes"),
    "torch.classes": (_C, "loads native libraries"),
    "torch.ops": (_C, "loads and calls native operators"),
    "torch.library": (_C, "registers native operators"),
    "torch._ops": (_C, "calls native operators"),
    "torch.testing": (_C, "test helpers run code"),
    "torch.backends": (_H, "changes backend state"),
    "torch.cuda.memory": (_H, "allocator control"),
    "torch.onnx": (_C, "exports and runs models"),
    "torch.save": (_C, "writes files"),
    "torch.compile": (_C, "compiles code"),
    "pandas.read_pickle": (_C, "loads another pickle"),
    "pandas.io": (_C, "pandas I/O reads and writes files, URLs, pickles"),
    "pandas.read_": (_C, "pandas readers open files and URLs"),
    "pandas.eval": (_C, "evaluates expressions"),
    "pandas.core.computation": (_C, "evaluates expressions"),
    "pandas.util": (_H, "testing and helper utilities"),
    "pandas.testing": (_C, "test helpers"),
    "pandas._testing": (_C, "test helpers"),
    "pandas.plotting": (_H, "plotting backends are imported by name"),
    "pandas.HDFStore": (_C, "opens and writes HDF5 files"),
    "pandas.ExcelWriter": (_C, "writes files"),
    "pandas.ExcelFile": (_C, "reads files"),
    "pandas.to_pickle": (_C, "writes pickles"),
    "sklearn.externals": (_C, "vendored third-party code"),
    "sklearn.utils._testing": (_C, "test helpers run code"),
    "sklearn.utils.estimator_checks": (_C, "test helpers run code"),
    "sklearn.datasets": (_H, "downloads and reads data sets"),
    "sklearn.utils.parallel": (_C, "runs callables in workers"),
    "keras": (_H, "keras objects can hold Lambda code"),
    "tensorflow": (_H, "tensorflow objects can read files and run ops"),
    "IPython": (_C, "interactive shell runs code"),
    "ipykernel": (_C, "kernel runs code"),
    "builtins.__build_class__": (_C, "builds classes from functions"),
    "builtins.__loader__": (_C, "import machinery"),
    "builtins.__spec__": (_C, "import machinery"),
    "fickling": (_C, "tampers with pickle scanners"),
    "picklescan": (_C, "tampers with pickle scanners"),
    "modelscan": (_C, "tampers with pickle scanners"),
    "mlflow_plugin": (_C, "tampers with this scanner"),
}
"""Denied canonical modules (and their submodules), exact ``module.qualname`` names and
``module.prefix`` name prefixes (``pandas.read_`` matches ``pandas.read_csv``), with severity and
reason. Severity: CRITICAL = runs code, processes, touches files/network or is a universal gadget;
HIGH = a building block of such chains or a risky side effect; MEDIUM = nuisance (exit)."""

_DANGEROUS_SEGMENTS = frozenset(
    {
        "os",
        "posix",
        "nt",
        "sys",
        "subprocess",
        "builtins",
        "__builtin__",
        "__builtins__",
        "importlib",
        "shutil",
        "socket",
        "ctypes",
        "pickle",
        "_pickle",
        "marshal",
        "runpy",
        "code",
        "pty",
        "io",
        "_io",
        "__globals__",
        "__dict__",
        "__class__",
        "__base__",
        "__bases__",
        "__mro__",
        "__subclasses__",
        "__init__",
        "__getattribute__",
        "__getattr__",
        "__reduce__",
        "__reduce_ex__",
        "__import__",
        "__loader__",
        "__code__",
        "__closure__",
        "__func__",
        "__self__",
        "__call__",
        "__setattr__",
        "__delattr__",
        "__setstate__",
        "__new__",
        "f_globals",
        "f_locals",
        "f_back",
        "gi_frame",
        "tb_frame",
        "func_globals",
        "modules",
        "system",
        "popen",
        "exec",
        "eval",
    }
)

_DANGEROUS_LEAF = re.compile(
    r"^(?:system|popen\w*|exec\w*|eval\w*|spawn\w*|fork\w*|(?:sub)?process\w*|run\w*|call|check_call|"
    r"check_output|getoutput|getstatusoutput|load\w*|unpickle\w*|deserial\w*|read_pickle|import\w*|"
    r"__import__|compile\w*|getattr|setattr|delattr|attrgetter|methodcaller|execfile|startfile|open\w*|"
    r"urlopen|urlretrieve|remove\w*|unlink|rmtree|rmdir|write\w*|dump\w*|save\w*|download\w*|fetch\w*|"
    r"install\w*|resolve_name|locate|shell\w*|command\w*|cmd\w*|kill\w*|connect\w*|send\w*|to_\w+)$",
    re.IGNORECASE,
)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class Verdict:
    """How one global is judged. ``severity`` is ``None`` when it is allowed."""

    module: str  # canonical module
    name: str  # canonical qualname
    allowed: bool
    severity: Severity | None
    rule: str  # "allowed" | "unsafe-global" | "unknown-global"
    reason: str

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}" if self.module else self.name


def _deny_exact(module: str, name: str) -> tuple[Severity, str] | None:
    """Exact denied names along the attribute path (``torch.load.__call__`` → ``torch.load``) and
    name prefixes (``pandas.read_`` → ``pandas.read_csv``)."""
    full = f"{module}.{name}"
    hit = DENIED.get(full)
    if hit:
        return hit
    for key in _prefix_keys(full):
        if len(key) > len(module):  # prefixes inside the module path are _deny_module's (after the allowlist)
            hit = DENIED.get(key)
            if hit:
                return hit
    for key, val in _PREFIX_DENIES:
        if full.startswith(key):
            return val
    return None


def _deny_module(module: str) -> tuple[Severity, str] | None:
    """Denied modules, matching every submodule (``os`` → ``os.path``)."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        hit = DENIED.get(".".join(parts[:i]))
        if hit:
            return hit
    return None


_PREFIX_DENIES = tuple((k, v) for k, v in DENIED.items() if k.endswith("_"))


def _prefix_keys(full: str) -> list[str]:
    """Attribute path prefixes: ``a.b.c.d`` → ``a.b.c``, ``a.b`` (``torch.load.x`` → ``torch.load``)."""
    parts = full.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 1, -1)]


@lru_cache(maxsize=8192)
def _judge_builtin(module: str, name: str) -> Verdict:
    cm, cn = canonical(module, name)
    full = f"{cm}.{cn}"
    if not (_IDENT.match(cm) and _IDENT.match(cn)):
        return Verdict(
            cm,
            cn,
            False,
            Severity.HIGH,
            "unknown-global",
            "not a valid Python module/attribute name (obfuscation or a malformed pickle)",
        )
    deny = _deny_exact(cm, cn)
    if deny:
        return Verdict(cm, cn, False, deny[0], "unsafe-global", deny[1])
    segs = cn.split(".")
    # attribute paths that walk into a dangerous module or dunder: numpy.os.system, X.__globals__
    if len(segs) > 1 and any(s in _DANGEROUS_SEGMENTS for s in segs[1:]):
        return Verdict(
            cm,
            cn,
            False,
            Severity.CRITICAL,
            "unsafe-global",
            "attribute path reaches a dangerous module or dunder",
        )
    if any(s in _DANGEROUS_SEGMENTS and s.startswith("__") for s in segs):
        return Verdict(cm, cn, False, Severity.CRITICAL, "unsafe-global", "reaches interpreter internals")
    if full in ALLOWED_GLOBALS:  # an exact entry wins over a denied module (uuid.UUID, torch.storage.*)
        return Verdict(cm, cn, True, None, "allowed", "allowlisted")
    deny = _deny_module(cm)
    if deny:
        return Verdict(cm, cn, False, deny[0], "unsafe-global", deny[1])
    if any(r.matches(cm, cn) for r in CLASS_RULES):
        return Verdict(cm, cn, True, None, "allowed", "allowlisted (class rule)")
    return _unknown(cm, cn, segs)


def _unknown(cm: str, cn: str, segs: list[str]) -> Verdict:
    if _DANGEROUS_LEAF.match(segs[-1]):
        return Verdict(
            cm,
            cn,
            False,
            Severity.CRITICAL,
            "unknown-global",
            f"not allowlisted, and {segs[-1]!r} names a dangerous action",
        )
    if cm == "__main__" and len(segs) == 1 and _CAPWORDS.match(cn):
        return Verdict(
            cm,
            cn,
            False,
            Severity.LOW,
            "unknown-global",
            "a class of the loading script (__main__): the file cannot supply its code; "
            "allow it with --allow-global if expected",
        )
    if cm.split(".")[0] == "__torch__" and len(segs) == 1 and _CAPWORDS.match(cn.lstrip("_")):
        # TorchScript archives name their compiled class types __torch__.<qualified>; Python has no
        # importable __torch__ module, the TorchScript runtime resolves them from the archive's code/
        return Verdict(
            cm,
            cn,
            False,
            Severity.LOW,
            "torchscript-type",
            "a TorchScript class type: resolved from the archive's TorchScript code by torch.jit.load "
            "(which compiles and runs that code), never imported by Python's unpickler",
        )
    top = cm.split(".")[0]
    if top in _TRUSTED_ML_PACKAGES and len(segs) == 1 and _CAPWORDS.match(cn):
        return Verdict(
            cm,
            cn,
            False,
            Severity.MEDIUM,
            "unknown-global",
            f"a {top} class outside the allowlist; allow it with --allow-global if expected",
        )
    return Verdict(
        cm,
        cn,
        False,
        Severity.HIGH,
        "unknown-global",
        "not allowlisted: importing it runs its module's code and calling it can do anything",
    )


def judge(
    module: str,
    name: str,
    allow_globals: frozenset[str] = frozenset(),
    allow_modules: frozenset[str] = frozenset(),
) -> Verdict:
    """Judge the pickle global ``module.name`` (see the module docstring for the rules).

    >>> judge("builtins", "eval").severity.name, judge("__builtin__", "set").allowed
    ('CRITICAL', True)
    >>> judge("numpy", "os.system").reason
    'attribute path reaches a dangerous module or dunder'
    """
    if allow_globals and (
        f"{module}.{name}" in allow_globals or "{}.{}".format(*canonical(module, name)) in allow_globals
    ):
        cm, cn = canonical(module, name)
        return Verdict(cm, cn, True, None, "allowed", "allowed by policy (allow_globals)")
    v = _judge_builtin(module, name)
    if v.allowed or not allow_modules or v.rule == "unsafe-global":
        return v
    if any(
        v.module == m or v.module.startswith(m + ".") or module == m or module.startswith(m + ".")
        for m in allow_modules
    ):
        return Verdict(v.module, v.name, True, None, "allowed", "allowed by policy (allow_modules)")
    return v


def is_identifier_path(s: str) -> bool:
    """True for dotted Python identifiers (``a.b_c.D``)."""
    return bool(_IDENT.match(s))
