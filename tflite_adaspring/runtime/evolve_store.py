"""The ``evolve`` storage format: backbone weights stored once plus one weightless skeleton per configuration.

An evolve-mode ``.tflite`` is a valid single-signature model (one configuration with its weights: what a
plain LiteRT program runs; the export picks the largest float32 one) with two metadata entries:
``adaspring`` (the configuration table, ``storage_mode: "evolve"``) and ``adaspring_evolve``, a versioned
container. All integers are little-endian. Version 3 (written) is one xz stream (LZMA2, CRC32 check)::

    b"ADAEVOLV" | uint32 version | uint32 stream bytes | stream
    stream = xz(uint32 header bytes | header | data)

with a JSON header::

    {"tensors": {name: {"dtype": "float32", "shape": [...], "offset": o, "nbytes": n}},
     "graph_tensors": {name: {"tensor": i, "kind": "conv", "shape": [...], "bn": {...} or null}},
     "skeletons": {key: {"offset": o, "nbytes": n, "model_nbytes": m,
                         "buffers": [{"offset": b, "shape": [...], "dtype": "float32", "recipe": {...}}]}}}

``offset`` of tensors and skeletons is relative to ``data``. A tensor is stored byte-planar (byte 0 of
every element, then byte 1, ...: sign and exponent bytes sit together and compress); tensors with the
same stored bytes share them. One stream holds everything because the skeletons and recipes of the
configurations repeat each other far beyond a zlib window. Versions 1 and 2 are still read: there the
header (plain JSON in version 1, zlib-compressed in version 2) is followed by zero padding to 16 and an
uncompressed data section of 16-byte aligned raw tensors and (version 2: zlib-compressed, ``"encoding":
"zlib"``) skeletons::

    b"ADAEVOLV" | uint32 version | uint32 header bytes | header | zero padding to 16 | data

A tensor is a supernet variable (kernel, BatchNorm gamma/beta, head weight; cut to the prefix the recipes
read), one configuration's recalibrated BatchNorm statistics, or an SVD ``align`` tensor. A skeleton is
the configuration's converted single-signature flatbuffer whose weight buffers hold no data: each points
(``Buffer.offset``/``size``) at ``b`` bytes into the model assembled as ``skeleton + derived weights``
(``m`` bytes in all), and its recipe says how to derive it from the tensors with numpy
(:class:`WeightDeriver`). Layouts are LiteRT's: conv filters OHWI, depthwise
filters ``[1, H, W, C]``, fully connected weights ``[out, in]``.

A graph tensor (format version >= 2) is a supernet kernel that is not stored: the model's own graph holds
it, as constant tensor ``i`` of its subgraph 0, in the form the recipe ``kind`` (``conv``, ``depthwise`` or
``dense``, at full extent, with the BatchNorm ``bn`` folded in) gives; the reader inverts that recipe
(:func:`unfold_graph_tensor`: transpose back, divide by the BatchNorm scale) so the backbone weights are
in the file once. Its ``bn`` needs only ``gamma``, ``var``, ``eps`` and ``n`` (the scale); version 2 wrote
``beta`` and ``mean`` too. Version-1 containers have no graph tensors.

Recipes (``n``/``in``/``out`` are prefix slices: channels are kept in importance order; ``bn`` is
``{"gamma", "beta", "mean", "var": tensor names, "eps": float, "n": channels}`` with
``scale = gamma / sqrt(var + eps)`` and ``shift = beta - mean * scale``, computed in float32 as the
converter folds them):

==============  ===========================================================================
``conv``        ``kernel`` (HWIO) ``[:, :, :in, :out]``, times ``scale`` per output channel if ``bn``; OHWI
``depthwise``   ``kernel`` (``[H, W, C, 1]``) ``[:, :, :out]``, times ``scale`` if ``bn``; ``[1, H, W, C]``
``dense``       ``kernel`` (``[in, out]``) ``[:in, :out]``; ``[out, in]``
``bias``        ``(bias[:out] or 0 - mean) * scale + beta`` with ``bn``, else ``bias[:out]``
``bn_scale``    ``scale`` (a BatchNorm the converter left as MUL/ADD, e.g. after a concatenation)
``bn_shift``    ``shift``
``svd_first``   ``U_r S_r`` of ``kernel`` (numpy SVD), times ``align`` if given; ``[r, in]``
``svd_second``  ``V_r`` of ``kernel``, times ``align`` if given; ``[out, r]``
``svd_product`` ``U_r S_r V_r^T`` of ``kernel``; ``[out, in]``
``zeros``       zeros of ``shape`` (the converter's zero biases)
==============  ===========================================================================

Singular vectors are made canonical (the largest-magnitude entry of each left vector positive); ``align``
names an orthogonal ``r x r`` tensor recorded at export (Procrustes fit against the converter's own
factors) that maps them onto the converter's basis, or, when the two bases differ only in the signs of
their vectors (the usual case), the ``r`` signs ``d`` alone, standing for ``diag(d)`` (version 3). Only
``U_r S_r align`` times ``align^T V_r^T`` reaches the computation, and that product is the rank-``r``
truncation whatever basis a LAPACK build returns inside groups of nearly equal singular values, so a
device whose numpy picks another basis still runs the same function; on the export host the factors
also equal the converter's bytes (within 1e-4).
Never imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
import threading
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from tflite_adaspring.errors import MissingDependencyError, ModelFormatError, SchemaVersionError

EVOLVE_METADATA_NAME = "adaspring_evolve"
FORMAT_VERSION = 3
MAGIC = b"ADAEVOLV"
ALIGNMENT = 16
DTYPES = ("float32", "float16", "int32")
_HEAD = struct.Struct("<8sII")
_LENGTH = struct.Struct("<I")

# recipe kind -> the fields naming tensors (checked against the container at load)
RECIPE_TENSORS: dict[str, tuple[str, ...]] = {
    "conv": ("kernel",),
    "depthwise": ("kernel",),
    "dense": ("kernel",),
    "bias": (),
    "bn_scale": (),
    "bn_shift": (),
    "svd_first": ("kernel",),  # and optionally "align"
    "svd_second": ("kernel",),
    "svd_product": ("kernel",),
    "zeros": (),
}
_BN_TENSORS = ("gamma", "beta", "mean", "var")
_SCALE_TENSORS = ("gamma", "var")  # what a BatchNorm scale reads (a graph tensor's ``bn``)


def align(n: int, alignment: int = ALIGNMENT) -> int:
    """``n`` rounded up to a multiple of ``alignment``."""
    return (n + alignment - 1) // alignment * alignment


@dataclasses.dataclass(frozen=True)
class StrippedBuffer:
    """One weight buffer of a skeleton whose data the runtime derives.

    Attributes:
      offset: byte offset of the data in the assembled model.
      shape: the tensor's shape.
      dtype: numpy dtype name.
      recipe: how to derive it (see the module docstring).
    """

    offset: int
    shape: tuple[int, ...]
    dtype: str
    recipe: dict[str, Any]

    @property
    def nbytes(self) -> int:
        """Bytes of the derived data."""
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


@dataclasses.dataclass(frozen=True)
class Skeleton:
    """A configuration's weightless flatbuffer and the recipes of its weights.

    Attributes:
      key: signature key.
      flatbuffer: the skeleton bytes (buffers point past its end).
      model_nbytes: size of the assembled model.
      buffers: the stripped buffers, in offset order.
    """

    key: str
    flatbuffer: bytes
    model_nbytes: int
    buffers: tuple[StrippedBuffer, ...]


@dataclasses.dataclass(frozen=True)
class EvolveContainer:
    """The decoded ``adaspring_evolve`` entry.

    Attributes:
      tensors: name -> read-only array (decoded copies; views into the payload before version 3; after
        :func:`resolve_graph_tensors`, the graph tensors too).
      skeletons: signature key -> skeleton.
      graph_tensors: name -> how to read it from the model's graph (see the module docstring).
    """

    tensors: dict[str, np.ndarray]
    skeletons: dict[str, Skeleton]
    graph_tensors: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def tensor_bytes(self) -> int:
        """Bytes of the tensors stored in the container (graph tensors live in the graph)."""
        return sum(t.nbytes for n, t in self.tensors.items() if n not in self.graph_tensors)


# ---------------------------------------------------------------------------------------------
# writing


def pack_container(
    tensors: Mapping[str, np.ndarray],
    skeletons: list[Skeleton],
    graph_tensors: Mapping[str, dict[str, Any]] | None = None,
) -> bytes:
    """Serialises tensors and skeletons into the container format (version :data:`FORMAT_VERSION`).

    Args:
      tensors: name -> array (dtype in :data:`DTYPES`); stored in this order (neighbours compress together).
      skeletons: the skeletons (their recipes must only name ``tensors`` or ``graph_tensors``).
      graph_tensors: name -> graph reference (see the module docstring); their ``bn`` must name ``tensors``.

    Returns:
      The container bytes.

    Raises:
      ModelFormatError: an unsupported dtype or a recipe naming an unknown tensor.
    """
    data = bytearray()
    placed: dict[bytes, int] = {}
    tensor_index = {}
    for name, array in tensors.items():
        array = np.asarray(array)  # (not ascontiguousarray: it makes a 0-d array 1-d)
        if array.dtype.name not in DTYPES:
            raise ModelFormatError(f"evolve tensor {name!r}: dtype {array.dtype.name} not in {DTYPES}")
        planar = to_planes(array)
        offset = placed.setdefault(planar, len(data))
        if offset == len(data):
            data += planar
        tensor_index[name] = {"dtype": array.dtype.name, "shape": list(array.shape), "offset": offset,
                              "nbytes": array.nbytes}  # fmt: skip
    graph_index = dict(graph_tensors or {})
    for name, ref in graph_index.items():
        _check_graph_tensor(name, ref, tensor_index)
    known = {**tensor_index, **graph_index}
    skeleton_index = {}
    for skeleton in skeletons:
        for buffer in skeleton.buffers:
            _check_recipe(buffer.recipe, known, f"skeleton {skeleton.key}")
        skeleton_index[skeleton.key] = {
            "offset": len(data),
            "nbytes": len(skeleton.flatbuffer),
            "model_nbytes": skeleton.model_nbytes,
            "buffers": [
                {"offset": b.offset, "shape": list(b.shape), "dtype": b.dtype, "recipe": b.recipe}
                for b in skeleton.buffers
            ],
        }
        data += skeleton.flatbuffer
    header = json.dumps(
        {"tensors": tensor_index, "graph_tensors": graph_index, "skeletons": skeleton_index}, separators=(",", ":")
    ).encode()
    body = _LENGTH.pack(len(header)) + header + bytes(data)
    lzma = _lzma()
    dict_size = min(max(1 << 12, 1 << (len(body) - 1).bit_length()), 1 << 26)  # the decoder allocates this much
    # lc=4/pb=0: byte planes and JSON have no 2- or 4-byte structure, and a wider literal context helps them
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": dict_size, "lc": 4,
                "lp": 0, "pb": 0}]  # fmt: skip
    stream = lzma.compress(body, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, filters=filters)
    return _HEAD.pack(MAGIC, FORMAT_VERSION, len(stream)) + stream


def to_planes(array: np.ndarray) -> bytes:
    """``array``'s bytes byte-planar: byte 0 of every element, then byte 1, ... (how version 3 stores tensors)."""
    flat = np.ascontiguousarray(array).reshape(-1)
    return flat.view(np.uint8).reshape(-1, flat.itemsize).T.tobytes()


def from_planes(raw: bytes | memoryview, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """The array whose :func:`to_planes` bytes are ``raw`` (a read-only copy)."""
    itemsize = np.dtype(dtype).itemsize
    array = np.frombuffer(raw, np.uint8).reshape(itemsize, -1).T.copy().view(dtype).reshape(shape)
    array.flags.writeable = False
    return array


def _lzma() -> Any:
    """Python's ``lzma`` module (optional in CPython builds: it needs liblzma)."""
    try:
        import lzma
    except ImportError as exc:
        raise MissingDependencyError(
            "evolve-mode models (container version 3) need Python's lzma module, which this Python was built "
            "without; use a Python built with liblzma (python.org, Debian, conda and Homebrew builds have it)"
        ) from exc
    return lzma


# ---------------------------------------------------------------------------------------------
# reading


def _fail(what: str) -> ModelFormatError:
    return ModelFormatError(
        f"adaspring_evolve metadata: {what}; re-export the model with `adaspring export --mode evolve`"
    )


def _check_recipe(recipe: Any, tensors: Mapping[str, Any], where: str) -> None:
    if not isinstance(recipe, dict) or recipe.get("kind") not in RECIPE_TENSORS:
        raise _fail(f"{where}: unknown recipe {recipe!r}; kinds: {sorted(RECIPE_TENSORS)}")
    absent = [f for f in RECIPE_TENSORS[recipe["kind"]] if f not in recipe]
    if absent:
        raise _fail(f"{where}: recipe {recipe['kind']} lacks field(s) {absent}")
    names = [recipe[f] for f in RECIPE_TENSORS[recipe["kind"]]]
    names += [recipe[f] for f in ("bias", "align") if recipe.get(f) is not None]
    bn = recipe.get("bn")
    if bn is not None:
        if not isinstance(bn, dict) or any(f not in bn for f in (*_BN_TENSORS, "eps", "n")):
            raise _fail(f"{where}: malformed bn reference {bn!r}")
        names += [bn[f] for f in _BN_TENSORS]
    missing = [n for n in names if n not in tensors]
    if missing:
        raise _fail(f"{where}: recipe {recipe['kind']} names unknown tensors {missing}")


GRAPH_KINDS = ("conv", "depthwise", "dense")


def _check_graph_tensor(name: str, ref: Any, tensors: Mapping[str, Any]) -> None:
    where = f"graph tensor {name!r}"
    if not isinstance(ref, dict) or ref.get("kind") not in GRAPH_KINDS or not isinstance(ref.get("tensor"), int):
        raise _fail(f"{where}: malformed reference {ref!r}; kinds: {GRAPH_KINDS}")
    if not isinstance(ref.get("shape"), list) or not all(isinstance(d, int) and d > 0 for d in ref["shape"]):
        raise _fail(f"{where}: malformed shape {ref.get('shape')!r}")
    bn = ref.get("bn")
    if bn is not None:
        if not isinstance(bn, dict) or any(f not in bn for f in (*_SCALE_TENSORS, "eps", "n")):
            raise _fail(f"{where}: malformed bn reference {bn!r}")
        missing = [bn[f] for f in _SCALE_TENSORS if bn[f] not in tensors]
        if missing:
            raise _fail(f"{where}: its bn names unknown tensors {missing}")


def _sections(data: memoryview, version: int, length: int) -> tuple[dict[str, Any], memoryview]:
    """The decoded JSON header and the data section of a container of ``version``.

    Args:
      data: the whole entry.
      version: its format version.
      length: the head's length field (stream bytes in version 3, header bytes before).
    """
    end = _HEAD.size + length
    if end > len(data) or (version < 3 and align(end) > len(data)):
        raise _fail(f"{'stream' if version >= 3 else 'header'} extends past the end of the entry (truncated?)")
    if version >= 3:
        body = memoryview(_decompress(bytes(data[_HEAD.size : end])))
        header_len = _LENGTH.unpack_from(body, 0)[0] if len(body) >= _LENGTH.size else len(body)
        if _LENGTH.size + header_len > len(body):
            raise _fail(f"header of {header_len} bytes does not fit the {len(body)}-byte body")
        raw, section = body[_LENGTH.size : _LENGTH.size + header_len], body[_LENGTH.size + header_len :]
    else:
        raw, section = data[_HEAD.size : end], data[align(end) :]
    try:
        header = json.loads((zlib.decompress(raw) if version == 2 else bytes(raw)).decode("utf-8"))
        if not isinstance(header, dict):
            raise TypeError(f"the header is a JSON {type(header).__name__}")
    except (UnicodeDecodeError, ValueError, TypeError, zlib.error) as exc:
        raise _fail(f"header is not the expected JSON ({exc!r})") from exc
    return header, section


def _decompress(stream: bytes) -> bytes:
    """The body of a version-3 container."""
    lzma = _lzma()
    try:
        return lzma.decompress(stream, format=lzma.FORMAT_XZ)
    except (lzma.LZMAError, EOFError) as exc:
        raise _fail(f"corrupted or truncated compressed stream ({exc})") from exc


def unpack_container(payload: bytes | memoryview) -> EvolveContainer:
    """Decodes and validates an ``adaspring_evolve`` entry of any version up to :data:`FORMAT_VERSION`.

    Args:
      payload: the entry's bytes.

    Returns:
      The container (tensors are read-only: zero-copy views before version 3).

    Raises:
      SchemaVersionError: written by a newer format version.
      ModelFormatError: truncated or malformed (the message names what).
      MissingDependencyError: a version-3 entry and a Python without the ``lzma`` module.
    """
    data = memoryview(payload)
    if len(data) < _HEAD.size or bytes(data[:8]) != MAGIC:
        raise _fail("missing or wrong magic (not an evolve container)")
    _, version, length = _HEAD.unpack_from(data, 0)
    if version > FORMAT_VERSION:
        raise SchemaVersionError(
            f"adaspring_evolve format version {version} is newer than this runtime supports ({FORMAT_VERSION}); "
            "upgrade: pip install -U tflite-adaspring"
        )
    header, body = _sections(data, version, length)
    try:
        tensor_index, skeleton_index = header["tensors"], header["skeletons"]
        graph_index = header.get("graph_tensors", {}) if version >= 2 else {}
        if not all(isinstance(i, dict) for i in (tensor_index, skeleton_index, graph_index)):
            raise TypeError("tensors, skeletons and graph_tensors must be objects")
    except (KeyError, TypeError) as exc:
        raise _fail(f"header is not the expected JSON ({exc!r})") from exc

    def blob(entry: dict[str, Any], where: str) -> memoryview:
        try:
            offset, nbytes = int(entry["offset"]), int(entry["nbytes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(f"{where}: malformed entry {entry!r}") from exc
        if offset < 0 or nbytes < 0 or offset + nbytes > len(body):
            raise _fail(f"{where}: bytes {offset}..{offset + nbytes} lie outside the entry (truncated?)")
        return body[offset : offset + nbytes]

    tensors = {}
    for name, entry in tensor_index.items():
        raw = blob(entry, f"tensor {name!r}")
        dtype, shape = entry.get("dtype"), tuple(int(d) for d in entry.get("shape", ()))
        if dtype not in DTYPES or math.prod(shape) * np.dtype(dtype).itemsize != len(raw):
            raise _fail(f"tensor {name!r}: dtype {dtype!r} and shape {shape} do not match {len(raw)} bytes")
        if version >= 3:
            tensors[name] = from_planes(raw, dtype, shape)
        else:
            array = np.frombuffer(raw, dtype=dtype).reshape(shape)
            array.flags.writeable = False
            tensors[name] = array
    for name, ref in graph_index.items():
        if name in tensors:
            raise _fail(f"graph tensor {name!r} is also stored")
        _check_graph_tensor(name, ref, tensors)
    known = {**tensors, **graph_index}
    skeletons = {}
    for key, entry in skeleton_index.items():
        skeletons[key] = _skeleton(key, entry, bytes(blob(entry, f"skeleton {key!r}")), known)
    return EvolveContainer(tensors, skeletons, graph_index)


def _skeleton(key: str, entry: dict[str, Any], flatbuffer: bytes, known: Mapping[str, Any]) -> Skeleton:
    """One skeleton of the header, validated (``flatbuffer``: its stored bytes; ``known``: nameable tensors)."""
    where = f"skeleton {key!r}"
    encoding = entry.get("encoding", "raw")
    if encoding not in ("raw", "zlib"):
        raise _fail(f"{where}: unknown encoding {encoding!r}")
    try:
        flatbuffer = zlib.decompress(flatbuffer) if encoding == "zlib" else flatbuffer
    except zlib.error as exc:
        raise _fail(f"{where}: corrupted compressed skeleton ({exc})") from exc
    buffers = []
    try:
        model_nbytes = int(entry["model_nbytes"])
        for b in entry["buffers"]:
            _check_recipe(b["recipe"], known, where)
            buffers.append(StrippedBuffer(int(b["offset"]), tuple(int(d) for d in b["shape"]), b["dtype"],
                                          b["recipe"]))  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(f"{where}: malformed buffer list ({exc!r})") from exc
    for b in buffers:
        if b.dtype not in DTYPES or b.offset < len(flatbuffer) or b.offset + b.nbytes > model_nbytes:
            raise _fail(f"{where}: buffer at {b.offset} ({b.dtype}, {b.shape}) does not fit the model layout")
    return Skeleton(key, flatbuffer, model_nbytes, tuple(sorted(buffers, key=lambda b: b.offset)))


def unfold_graph_tensor(ref: Mapping[str, Any], constant: np.ndarray, tensors: Mapping[str, np.ndarray]) -> np.ndarray:
    """The supernet kernel behind a graph constant: the inverse of its recipe at full extent.

    Args:
      ref: the graph-tensor reference (``kind``, ``shape``, ``bn``).
      constant: the graph's float32 constant (LiteRT layout, BatchNorm folded).
      tensors: the stored tensors (for the BatchNorm reference).

    Returns:
      The kernel in the supernet's layout (read-only, float32). Channels whose BatchNorm scale is
      exactly zero come back as zeros: every configuration multiplies them by a zero scale again.

    Raises:
      ModelFormatError: the constant does not have the shape the reference implies.
    """
    kind, shape = ref["kind"], tuple(ref["shape"])
    rank = {"conv": 4, "depthwise": 4, "dense": 2}[kind]
    if len(shape) != rank:
        raise _fail(f"graph tensor of kind {kind} must have {rank} dimensions, got shape {shape}")
    if kind == "conv":
        layout = (shape[3], shape[0], shape[1], shape[2])
    elif kind == "depthwise":
        layout = (1, shape[0], shape[1], shape[2])
    else:
        layout = (shape[1], shape[0])
    if tuple(constant.shape) != layout:
        raise _fail(f"graph tensor of kind {kind}: constant has shape {tuple(constant.shape)}, expected {layout}")
    if kind == "dense":
        kernel = constant.T
    elif kind == "conv":
        kernel = constant.transpose(1, 2, 3, 0)
    else:
        kernel = constant[0][..., None]
    kernel = np.asarray(kernel, np.float32)
    if ref.get("bn") is not None:
        scale = WeightDeriver(tensors).bn_scale(ref["bn"])
        scale = scale if kind != "depthwise" else scale[:, None]
        kernel = np.divide(kernel, scale, out=np.zeros(kernel.shape, np.float32), where=scale != 0)
    kernel = np.ascontiguousarray(kernel)
    kernel.flags.writeable = False
    return kernel


def resolve_graph_tensors(container: EvolveContainer, constant: Callable[[int], np.ndarray]) -> EvolveContainer:
    """The container with its graph tensors read from the model's graph and unfolded.

    Args:
      container: from :func:`unpack_container`.
      constant: tensor index of the graph's subgraph 0 -> its float32 constant.

    Returns:
      A container whose ``tensors`` also hold the graph tensors.
    """
    if not container.graph_tensors:
        return container
    tensors = dict(container.tensors)
    for name, ref in container.graph_tensors.items():
        tensors[name] = unfold_graph_tensor(ref, constant(int(ref["tensor"])), container.tensors)
    return dataclasses.replace(container, tensors=tensors)


# ---------------------------------------------------------------------------------------------
# deriving weights


class WeightDeriver:
    """Derives skeleton weights from the container's tensors with numpy (thread-safe).

    The SVD of a low-rank head depends only on the stored weight, so it is computed once per kernel and
    cached, and so is every SVD-derived factor (they do not depend on the configuration's statistics):
    builds then never call BLAS, whose worker threads are slow to get CPU time on a busy machine.

    Args:
      tensors: name -> array.
    """

    def __init__(self, tensors: Mapping[str, np.ndarray]):
        self._tensors = tensors
        self._svd: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._svd_lock = threading.Lock()
        self._factors: dict[tuple[str, str, int, str | None], tuple[np.ndarray | None, np.ndarray]] = {}
        self._affine: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}

    def tensor(self, name: str) -> np.ndarray:
        """A stored tensor by name."""
        return self._tensors[name]

    def derive(self, recipe: Mapping[str, Any], dtype: str = "float32") -> np.ndarray:
        """Computes one weight.

        Args:
          recipe: a recipe (see the module docstring).
          dtype: the buffer's dtype.

        Returns:
          A C-contiguous array in LiteRT's layout.
        """
        return np.ascontiguousarray(self._value(recipe, dtype), dtype=dtype)

    def derive_into(self, recipe: Mapping[str, Any], out: np.ndarray) -> None:
        """Computes one weight straight into ``out`` (one strided pass, no intermediate copy).

        Raises:
          ModelFormatError: the recipe's result does not have ``out``'s shape.
        """
        value = self._value(recipe, out.dtype.name)
        if value.shape != out.shape:
            raise ModelFormatError(
                f"recipe {recipe['kind']} gives shape {value.shape}, the graph expects {out.shape}; "
                "the evolve metadata is inconsistent (re-export)"
            )
        np.copyto(out, value, casting="unsafe")

    def _value(self, recipe: Mapping[str, Any], dtype: str) -> np.ndarray:
        """The weight in LiteRT's layout, possibly a non-contiguous view or another float dtype."""
        kind = recipe["kind"]
        if not kind.startswith("svd_"):
            return getattr(self, f"_{kind}")(recipe)
        key = (kind, recipe["kernel"], int(recipe["rank"]), recipe.get("align"))
        align = None if key[3] is None else self._tensors[key[3]]
        cached = self._factors.get(key)  # valid only for the very align array it was computed with
        if cached is None or cached[0] is not align or cached[1].dtype != np.dtype(dtype):
            out = np.ascontiguousarray(getattr(self, f"_{kind}")(recipe), dtype=dtype)
            out.flags.writeable = False
            cached = self._factors[key] = (align, out)
        return cached[1]

    # ----- BatchNorm -----------------------------------------------------------------------------
    def bn_affine(self, bn: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """``(scale, shift)`` of a BatchNorm reference, float32, ``bn["n"]`` channels (cached: a folded
        conv and its bias share one)."""
        key = (*(bn[f] for f in _BN_TENSORS), float(bn["eps"]), int(bn["n"]))
        cached = self._affine.get(key)
        if cached is None:
            n = int(bn["n"])
            beta, mean = (self._tensors[bn[f]][:n].astype(np.float32) for f in ("beta", "mean"))
            scale = self.bn_scale(bn)
            cached = self._affine[key] = (scale, beta - mean * scale)
        return cached

    def bn_scale(self, bn: Mapping[str, Any]) -> np.ndarray:
        """``scale`` of a BatchNorm reference (float32, ``bn["n"]`` channels; reads only gamma and var)."""
        n = int(bn["n"])
        gamma, var = (self._tensors[bn[f]][:n].astype(np.float32) for f in _SCALE_TENSORS)
        return gamma * (np.float32(1.0) / np.sqrt(var + np.float32(bn["eps"])))

    def _scaled(self, kernel: np.ndarray, bn: Mapping[str, Any] | None) -> np.ndarray:
        return kernel if bn is None else kernel * self.bn_affine(bn)[0]

    # ----- recipe kinds --------------------------------------------------------------------------
    def _conv(self, r: Mapping[str, Any]) -> np.ndarray:
        kernel = self._tensors[r["kernel"]][:, :, : r.get("in"), : r.get("out")]
        return self._scaled(kernel, r.get("bn")).transpose(3, 0, 1, 2)

    def _depthwise(self, r: Mapping[str, Any]) -> np.ndarray:
        kernel = self._tensors[r["kernel"]][:, :, : r.get("out"), 0]
        return self._scaled(kernel, r.get("bn"))[None]

    def _dense(self, r: Mapping[str, Any]) -> np.ndarray:
        return self._tensors[r["kernel"]][: r.get("in"), : r.get("out")].T

    def _bias(self, r: Mapping[str, Any]) -> np.ndarray:
        n = int(r["out"])
        bias = np.zeros(n, np.float32) if r.get("bias") is None else self._tensors[r["bias"]][:n]
        if r.get("bn") is None:
            return bias
        scale, shift = self.bn_affine(r["bn"])
        return bias * scale + shift

    def _bn_scale(self, r: Mapping[str, Any]) -> np.ndarray:
        return self.bn_affine(r["bn"])[0]

    def _bn_shift(self, r: Mapping[str, Any]) -> np.ndarray:
        return self.bn_affine(r["bn"])[1]

    def _zeros(self, r: Mapping[str, Any]) -> np.ndarray:
        return np.zeros(tuple(r["shape"]), np.float32)

    def svd(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Canonical ``(U S, V^T)`` (float64) of a stored 2-D kernel, computed once."""
        cached = self._svd.get(name)
        if cached is not None:
            return cached
        with self._svd_lock:
            if name not in self._svd:
                w = self._tensors[name]
                u, s, vh = np.linalg.svd(w.reshape(-1, w.shape[-1]).astype(np.float64), full_matrices=False)
                pivot = np.abs(u).argmax(axis=0)
                flip = np.where(u[pivot, np.arange(u.shape[1])] < 0, -1.0, 1.0)
                self._svd[name] = (u * (s * flip), vh * flip[:, None])
            return self._svd[name]

    def _aligned(self, columns: np.ndarray, r: Mapping[str, Any]) -> np.ndarray:
        """``columns`` (one per singular component) times the recipe's ``align`` (matrix or diagonal signs)."""
        name = r.get("align")
        if name is None:
            return columns
        align, rank = self._tensors[name], columns.shape[1]
        if align.shape == (rank,):  # the signs of a diagonal align
            return columns * align.astype(np.float64)
        if align.shape != (rank, rank):
            raise ModelFormatError(
                f"svd recipe: align {name!r} has shape {align.shape} for rank {rank} (expected ({rank}, {rank}) "
                f"or ({rank},))"
            )
        return columns @ align.astype(np.float64)

    def _svd_first(self, r: Mapping[str, Any]) -> np.ndarray:
        us, _ = self.svd(r["kernel"])
        return self._aligned(us[:, : int(r["rank"])], r).T

    def _svd_second(self, r: Mapping[str, Any]) -> np.ndarray:
        _, vh = self.svd(r["kernel"])
        return self._aligned(vh[: int(r["rank"])].T, r)

    def _svd_product(self, r: Mapping[str, Any]) -> np.ndarray:
        us, vh = self.svd(r["kernel"])
        rank = int(r["rank"])
        return (us[:, :rank] @ vh[:rank]).T


def assemble(skeleton: Skeleton, deriver: WeightDeriver) -> bytes:
    """Builds a configuration's runnable model: its skeleton followed by its derived weights.

    Args:
      skeleton: the configuration's skeleton.
      deriver: the weight deriver over the container's tensors.

    Returns:
      Model bytes LiteRT loads (weights are read through ``Buffer.offset``).

    Raises:
      ModelFormatError: a derived weight does not have the buffer's shape.
    """
    model = bytearray(skeleton.model_nbytes)
    model[: len(skeleton.flatbuffer)] = skeleton.flatbuffer
    for buffer in skeleton.buffers:
        count = math.prod(buffer.shape)
        out = np.frombuffer(model, dtype=buffer.dtype, count=count, offset=buffer.offset).reshape(buffer.shape)
        try:
            deriver.derive_into(buffer.recipe, out)
        except ModelFormatError as exc:
            raise ModelFormatError(f"skeleton {skeleton.key}: {exc}") from exc
    return bytes(model)
