"""An interpreter of the C subset that cupy kernel bodies use, vectorised over the array elements.

The body is parsed once (pycparser, the body wrapped in a function) and then evaluated ONCE per
kernel call with whole numpy arrays standing for the per-element values: arithmetic with C's
usual conversions (an ``int`` and a ``float`` make a ``float``; ``0.5`` is a double, ``0.5f`` a
float), casts, comparisons, ``&&``/``||``/``!``, ternaries and ``if``/``else`` (both sides
evaluated, merged by the condition as a mask), declarations, assignments and compound
assignments, ``for`` loops whose bounds are the same for every element, indexing of ``raw``
arrays, and the CUDA math functions. Anything else is refused with a message that says the
construct is outside the simulated subset; nothing is ever replaced by a Python twin.
"""
from __future__ import annotations

import functools
import re
import threading

import numpy

try:
    import pycparser
    from pycparser import c_ast
except ImportError:  # reported when a kernel is first run
    pycparser = c_ast = None


class Unsupported(Exception):
    """The kernel body uses C outside the subset the simulator executes."""


C_TYPES = {
    "float": numpy.float32, "double": numpy.float64, "int": numpy.int32, "signed int": numpy.int32,
    "unsigned int": numpy.uint32, "unsigned": numpy.uint32, "long long": numpy.int64, "long": numpy.int64,
    "long long int": numpy.int64, "unsigned long long": numpy.uint64, "short": numpy.int16,
    "unsigned short": numpy.uint16, "char": numpy.int8, "signed char": numpy.int8, "unsigned char": numpy.uint8,
    "bool": numpy.bool_, "_Bool": numpy.bool_, "size_t": numpy.uint64, "ptrdiff_t": numpy.int64,
    "float32": numpy.float32, "float64": numpy.float64, "int8": numpy.int8, "int16": numpy.int16,
    "int32": numpy.int32, "int64": numpy.int64, "uint8": numpy.uint8, "uint16": numpy.uint16,
    "uint32": numpy.uint32, "uint64": numpy.uint64,
}
_FLOATS = (numpy.float32, numpy.float64)
_SUFFIX_F = {"expf", "logf", "sqrtf", "rsqrtf", "tanhf", "fabsf", "fmaxf", "fminf", "powf", "log1pf", "expm1f",
             "floorf", "ceilf", "sinf", "cosf", "__expf", "__logf", "exp2f", "log2f", "roundf", "truncf"}


def _rsqrt(x):
    return 1 / numpy.sqrt(x)


_MATH = {
    "exp": numpy.exp, "log": numpy.log, "sqrt": numpy.sqrt, "rsqrt": _rsqrt, "tanh": numpy.tanh,
    "fabs": numpy.abs, "abs": numpy.abs, "pow": numpy.power, "log1p": numpy.log1p, "expm1": numpy.expm1,
    "floor": numpy.floor, "ceil": numpy.ceil, "sin": numpy.sin, "cos": numpy.cos, "exp2": numpy.exp2,
    "log2": numpy.log2, "round": numpy.round, "trunc": numpy.trunc, "fmax": numpy.fmax, "fmin": numpy.fmin,
    "max": numpy.maximum, "min": numpy.minimum, "__exp": numpy.exp, "__log": numpy.log,
}
_PREDICATES = {"isfinite": numpy.isfinite, "isnan": numpy.isnan, "isinf": numpy.isinf, "signbit": numpy.signbit}


def c_result_type(a, b):
    """C's usual arithmetic conversions for two numpy dtypes."""
    return _c_result_type(numpy.dtype(a), numpy.dtype(b))


@functools.lru_cache(maxsize=None)
def _c_result_type(a, b):
    if a.kind == "f" or b.kind == "f":
        return max((d for d in (a, b) if d.kind == "f"), key=lambda d: d.itemsize)
    if a.kind == "b" and b.kind == "b":
        return numpy.dtype(numpy.int32)
    ranks = [d if d.itemsize >= 4 else numpy.dtype(numpy.int32) for d in (a, b)]
    big = max(ranks, key=lambda d: (d.itemsize, d.kind == "u"))
    return big


def _dt(v):
    return v.dtype if isinstance(v, (numpy.ndarray, numpy.generic)) else numpy.dtype(type(v))


def _as(v, dt):
    dt = numpy.dtype(dt)
    if isinstance(v, numpy.ndarray):
        return v.astype(dt, copy=False)
    return dt.type(v)


_parse_lock = threading.Lock()
_parsed: dict[str, object] = {}


def parse(body: str, params: list[tuple[str, str]], typedefs: list[str], what: str):
    """The function body AST of ``body`` (cached by text); ``params``: (C type, name) pairs."""
    if pycparser is None:
        raise RuntimeError("simulated GPUs: pycparser is not installed, so kernel bodies cannot run; install "
                           "the test dependencies (pip install -e '.[test]')")
    for bad, why in ((r"\bstatic_cast\s*<", "static_cast (write a C cast)"), (r"::", "C++ scopes (::)"),
                     (r"\btemplate\b", "templates"), (r"\bwhile\b", "while loops"), (r"\bgoto\b", "goto"),
                     (r"\bswitch\b", "switch"), (r"\b__syncthreads\b", "__syncthreads"),
                     (r"\batomic\w*\s*\(", "atomics"), (r"\breturn\b", "return")):
        if re.search(bad, body):
            raise Unsupported(f"simulated GPUs: {what} uses {why}, outside the C subset the simulator executes")
    decls = ", ".join(f"{t} {n}" for t, n in params)
    defs = "".join(f"typedef int {t};\n" for t in typedefs)
    text = f"{defs}void __kernel_body({decls}) {{\n{body}\n}}\n"
    text = re.sub(r"\b__restrict__\b|\b__device__\b|\b__forceinline__\b", "", text)
    with _parse_lock:
        ast = _parsed.get(text)
        if ast is None:
            try:
                ast = pycparser.CParser().parse(text, filename=what)
            except pycparser.plyparser.ParseError as e:
                raise Unsupported(f"simulated GPUs: {what} could not be parsed as the C subset the simulator "
                                  f"executes ({e}):\n{body}") from None
            _parsed[text] = ast
    return ast.ext[-1].body, len(typedefs) + 1


class Raw:
    """A ``raw`` array parameter: indexed by element, with ``size()``."""

    def __init__(self, array: numpy.ndarray, writable: bool):
        self.flat = array.reshape(-1)  # a view of contiguous device memory
        self.writable = writable


class Interpreter:
    """Evaluates one parsed body over ``n`` elements at once.

    Args:
        env: name -> value (numpy arrays of shape (n,) or scalars, or ``Raw``).
        types: name -> numpy dtype of each scalar-valued variable.
        typemap: C type name -> numpy dtype (the ``T`` placeholders included).
        n: the number of elements.
        what: the kernel, for messages.
    """

    def __init__(self, env, types, typemap, n, what, line0=0, readonly=()):
        self.env, self.types, self.typemap, self.n, self.what = env, types, {**C_TYPES, **typemap}, n, what
        self.line0, self.readonly = line0, frozenset(readonly)
        self.mask = None  # elements for which the current branch runs (None: all)

    def refuse(self, node, text):
        coord = getattr(node, "coord", None)
        line = f" (line {coord.line - self.line0} of the body)" if coord else ""
        raise Unsupported(f"simulated GPUs: {self.what}: {text}{line} is outside the C subset the simulator "
                          "executes (arithmetic, casts, ternaries, if, uniform for loops, math functions)")

    # ---- types
    def ctype(self, node):
        if isinstance(node, c_ast.Typename) or isinstance(node, c_ast.Decl):
            node = node.type
        if isinstance(node, c_ast.TypeDecl):
            node = node.type
        if isinstance(node, c_ast.IdentifierType):
            name = " ".join(n for n in node.names if n not in ("const", "volatile"))
            if name in self.typemap:
                return numpy.dtype(self.typemap[name])
            self.refuse(node, f"type {name!r}")
        self.refuse(node, f"a {type(node).__name__} type")

    # ---- statements
    def run(self, node):
        with numpy.errstate(all="ignore"):  # a GPU raises no floating-point warnings
            self.stmt(node)

    def stmt(self, node):
        m = _STMT.get(type(node))
        if m is None:
            self.refuse(node, f"the statement {type(node).__name__}")
        m(self, node)

    def s_Compound(self, node):
        for item in node.block_items or ():
            self.stmt(item)

    def s_EmptyStatement(self, node):
        pass

    def s_Decl(self, node):
        if not isinstance(node.type, c_ast.TypeDecl):
            self.refuse(node, "a declaration of an array, pointer or function")
        dt = self.ctype(node.type)
        self.types[node.name] = dt
        if node.init is None:
            self.env[node.name] = _as(numpy.zeros(self.n, dt), dt)
        else:
            self.env[node.name] = _as(self.expr(node.init), dt)

    def s_DeclList(self, node):
        for d in node.decls:
            self.s_Decl(d)

    def s_If(self, node):
        cond = self._truth(self.expr(node.cond))
        outer = self.mask
        for branch, m in ((node.iftrue, cond), (node.iffalse, ~cond if isinstance(cond, numpy.ndarray) else not cond)):
            if branch is None:
                continue
            self.mask = m if outer is None else outer & m
            if self.mask is False or (isinstance(self.mask, numpy.ndarray) and not self.mask.any()):
                continue
            self.stmt(branch)
        self.mask = outer

    def s_For(self, node):
        if node.init is not None:
            self.stmt(node.init)
        for _ in range(1 << 20):
            if node.cond is not None:
                c = self.expr(node.cond)
                if isinstance(c, numpy.ndarray) and c.ndim:
                    if isinstance(self.mask, numpy.ndarray):  # only the elements inside the enclosing if run it
                        c = numpy.broadcast_to(c, self.mask.shape)[self.mask]
                    if not (c.all() or not c.any()):
                        self.refuse(node, "a for loop whose bound differs between elements")
                    c = bool(c.all())
                if not c:
                    return
            self.stmt(node.stmt)
            if node.next is not None:
                self.expr(node.next)
        self.refuse(node, "a for loop of more than 2**20 iterations")

    def s_Assignment(self, node):
        self.expr(node)

    def s_UnaryOp(self, node):
        self.expr(node)

    def s_FuncCall(self, node):
        self.expr(node)

    # ---- assignment
    def _store(self, target, value):
        if isinstance(target, c_ast.ID):
            name = target.name
            if name not in self.env or isinstance(self.env[name], Raw):
                self.refuse(target, f"an assignment to {name!r}")
            if name in self.readonly:
                self.refuse(target, f"an assignment to the input {name!r}")
            dt = self.types[name]
            new = _as(value, dt)
            if self.mask is not None:
                new = numpy.where(self.mask, new, self.env[name])
            elif numpy.ndim(new) == 0 and numpy.ndim(self.env[name]) == 1:
                new = numpy.full(self.n, new, dt)
            self.env[name] = _as(new, dt)
            return
        if isinstance(target, c_ast.ArrayRef) and isinstance(target.name, c_ast.ID):
            raw = self.env.get(target.name.name)
            if not isinstance(raw, Raw) or not raw.writable:
                self.refuse(target, f"a store into {target.name.name!r}")
            idx = numpy.broadcast_to(numpy.asarray(self.expr(target.subscript)), (self.n,))
            val = numpy.broadcast_to(numpy.asarray(_as(value, raw.flat.dtype)), (self.n,))
            if self.mask is not None:
                m = numpy.broadcast_to(self.mask, (self.n,))
                idx, val = idx[m], val[m]
            raw.flat[idx.astype(numpy.int64)] = val
            return
        self.refuse(target, f"an assignment to a {type(target).__name__}")

    # ---- expressions
    def expr(self, node):
        m = _EXPR.get(type(node))
        if m is None:
            self.refuse(node, f"the expression {type(node).__name__}")
        return m(self, node)

    def e_Constant(self, node):
        v = node.value
        if node.type == "char":
            self.refuse(node, "a character constant")
        if node.type in ("float", "double"):
            f = v.rstrip("fFlL")
            return numpy.float32(float(f)) if v[-1] in "fF" else numpy.float64(float(f))
        text = v.rstrip("uUlL")
        n = int(text, 0) if not re.fullmatch(r"0[0-7]+", text) else int(text, 8)
        unsigned, longs = "u" in v.lower(), v.lower().count("l")
        if longs:
            return numpy.uint64(n) if unsigned else numpy.int64(n)
        return numpy.uint32(n) if unsigned else (numpy.int32(n) if n < 2**31 else numpy.int64(n))

    def e_ID(self, node):
        if node.name in ("true", "false"):
            return numpy.bool_(node.name == "true")
        if node.name not in self.env:
            self.refuse(node, f"the name {node.name!r}")
        v = self.env[node.name]
        return v

    def e_Cast(self, node):
        return _as(self.value(self.expr(node.expr)), self.ctype(node.to_type))

    def value(self, v):
        if isinstance(v, Raw):
            raise Unsupported(f"simulated GPUs: {self.what}: a raw array used as a value")
        return v

    def e_ArrayRef(self, node):
        raw = self.env.get(node.name.name) if isinstance(node.name, c_ast.ID) else None
        if not isinstance(raw, Raw):
            self.refuse(node, "indexing something other than a raw array")
        idx = numpy.asarray(self.expr(node.subscript)).astype(numpy.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= raw.flat.size):
            # an element the branch does not take may compute any index; only taken ones must be valid
            idx = numpy.clip(idx, 0, raw.flat.size - 1)
        return raw.flat[idx]

    def e_TernaryOp(self, node):
        c = self._truth(self.expr(node.cond))
        a, b = self.value(self.expr(node.iftrue)), self.value(self.expr(node.iffalse))
        dt = c_result_type(_dt(a), _dt(b))
        r = numpy.where(c, _as(a, dt), _as(b, dt))
        return r if isinstance(r, numpy.ndarray) and r.ndim else dt.type(r)

    def _truth(self, v):
        return numpy.asarray(v) != 0 if isinstance(v, numpy.ndarray) else bool(v)

    _BIN = {"+": numpy.add, "-": numpy.subtract, "*": numpy.multiply, "<": numpy.less, ">": numpy.greater,
            "<=": numpy.less_equal, ">=": numpy.greater_equal, "==": numpy.equal, "!=": numpy.not_equal,
            "&": numpy.bitwise_and, "|": numpy.bitwise_or, "^": numpy.bitwise_xor, "<<": numpy.left_shift,
            ">>": numpy.right_shift}

    def binop(self, op, a, b, node):
        a, b = self.value(a), self.value(b)
        if op == "&&":
            return numpy.logical_and(self._truth(a), self._truth(b))
        if op == "||":
            return numpy.logical_or(self._truth(a), self._truth(b))
        dt = c_result_type(_dt(a), _dt(b))
        a, b = _as(a, dt), _as(b, dt)
        if op == "/":
            if dt.kind == "f":
                return numpy.true_divide(a, b).astype(dt, copy=False) if isinstance(a, numpy.ndarray) or \
                    isinstance(b, numpy.ndarray) else dt.type(numpy.true_divide(a, b))
            if self._nonneg_by_positive(a, b):  # the common case (indices): floor is truncation
                return _as(a // b, dt)
            q = numpy.abs(a) // numpy.where(b == 0, 1, numpy.abs(b))
            return _as(numpy.where((a < 0) != (b < 0), -q, q), dt)
        if op == "%":
            if dt.kind == "f":
                self.refuse(node, "% on floating-point values")
            if self._nonneg_by_positive(a, b):
                return _as(a % b, dt)
            return _as(numpy.fmod(a, numpy.where(b == 0, 1, b)), dt)
        fn = self._BIN.get(op)
        if fn is None:
            self.refuse(node, f"the operator {op!r}")
        r = fn(a, b)
        return r if r.dtype == numpy.bool_ else _as(r, dt)

    @staticmethod
    def _nonneg_by_positive(a, b):
        """True when integer ``b`` is one positive scalar and ``a`` has no negative element."""
        if numpy.ndim(b) != 0 or not b > 0:
            return False
        return bool(a >= 0) if numpy.ndim(a) == 0 else (a.size == 0 or bool(a.min() >= 0))

    def e_BinaryOp(self, node):
        return self.binop(node.op, self.expr(node.left), self.expr(node.right), node)

    def e_Assignment(self, node):
        v = self.value(self.expr(node.rvalue))
        if node.op != "=":
            v = self.binop(node.op[:-1], self.expr(node.lvalue), v, node)
        self._store(node.lvalue, v)
        return v

    def e_UnaryOp(self, node):
        op = node.op
        if op in ("p++", "p--", "++", "--"):
            old = self.expr(node.expr)
            new = self.binop("+" if "+" in op else "-", old, numpy.int32(1), node)
            self._store(node.expr, new)
            return old if op.startswith("p") else new
        v = self.value(self.expr(node.expr))
        if op == "-":
            dt = c_result_type(_dt(v), numpy.int32)
            return numpy.negative(_as(v, dt))
        if op == "+":
            return v
        if op == "!":
            return numpy.logical_not(self._truth(v))
        if op == "~" and _dt(v).kind in "iu":
            return numpy.invert(v)
        self.refuse(node, f"the unary operator {op!r}")

    def e_StructRef(self, node):
        self.refuse(node, "a member access")

    def e_FuncCall(self, node):
        if isinstance(node.name, c_ast.StructRef) and node.name.field.name == "size" and not node.args:
            base = node.name.name
            if isinstance(base, c_ast.ID) and base.name == "_ind":
                return numpy.int64(self.n)
            if isinstance(base, c_ast.ID) and isinstance(self.env.get(base.name), Raw):
                return numpy.int64(self.env[base.name].flat.size)
        if not isinstance(node.name, c_ast.ID):
            self.refuse(node, "a call of something other than a math function")
        name = node.name.name
        args = [self.value(self.expr(a)) for a in (node.args.exprs if node.args else ())]
        if name in _PREDICATES and len(args) == 1:
            return _PREDICATES[name](args[0])
        base = name[:-1] if name in _SUFFIX_F else name
        fn = _MATH.get(base)
        if fn is None:
            self.refuse(node, f"the function {name}()")
        if name in _SUFFIX_F:
            dt = numpy.dtype(numpy.float32)
        else:
            dt = _dt(args[0])
            for a in args[1:]:
                dt = c_result_type(dt, _dt(a))
            if dt.kind != "f" and base not in ("max", "min", "abs"):
                dt = numpy.dtype(numpy.float64)
        r = fn(*[_as(a, dt) for a in args])
        return _as(r, dt)


# node type -> handler, looked up once per node evaluation
_STMT = {getattr(c_ast, name[2:]): f for name, f in vars(Interpreter).items()
         if name.startswith("s_") and c_ast is not None and hasattr(c_ast, name[2:])}
_EXPR = {getattr(c_ast, name[2:]): f for name, f in vars(Interpreter).items()
         if name.startswith("e_") and c_ast is not None and hasattr(c_ast, name[2:])}
