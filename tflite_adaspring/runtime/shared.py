"""``shared`` storage mode: every configuration computes from ONE copy of the backbone weights.

Serves an evolve-mode file (:mod:`tflite_adaspring.runtime.evolve_store`) through the AdaSpring
delegate (``libadaspring_delegate.so``). At creation the runtime

1. writes the delegate's weight source (:mod:`tflite_adaspring.runtime.weight_source`): each stored
   conv / depthwise / dense kernel once in the kernels' layout, the canonical SVD factors of a
   low-rank head once (``U S`` and ``V``, full rank), and per configuration one view per weight tensor
   (a width slice keeps the stored strides, a rank-``r`` factor is a prefix) plus its folded BatchNorm
   scale (the graph's bias tensor is the folded shift);
2. writes each configuration's skeleton as a sparse model file whose viewed weight buffers are holes
   (LiteRT maps the file; the delegate's ABI self-check probes the first and last byte of each, nothing
   computes from them) and whose small buffers (biases, zero biases, ...) are derived as in evolve mode;
3. builds one LiteRT interpreter per configuration with its own delegate instance
   (``weight_source`` + ``weight_config``); every delegate maps the same weight file once per process.

The files live in a private temporary folder that is removed as soon as the interpreters are built
(the mappings keep them alive). Every slot is allocated and warm from the start, so a switch is one
reference assignment and copies no weight. The primary configuration runs from the model file's own
graph, as in evolve mode. A rank-``r`` head runs on prefixes of the canonical SVD factors: the same
rank-``r`` function as the converter's rotated factors (no ``align`` rotation is needed). Never imports
TensorFlow.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tflite_adaspring import delegates
from tflite_adaspring.errors import DelegateError, ModelFormatError
from tflite_adaspring.fileio import atomic_write_bytes
from tflite_adaspring.metadata import tflite_schema
from tflite_adaspring.runtime.evolve import read_evolve_container
from tflite_adaspring.runtime.evolve_store import EvolveContainer, Skeleton, StrippedBuffer, WeightDeriver
from tflite_adaspring.runtime.slots import AlwaysReadySlots, ConfigSlot, ModelHandle, check_same_ports, signature_slot
from tflite_adaspring.runtime.weight_source import DataSection, View, pack_weight_source

VIEW_KINDS = ("conv", "depthwise", "dense", "svd_first", "svd_second")
WEIGHT_SOURCE_NAME = "weights.adasw"

OpenInterpreter = Callable[[str, Sequence[Any]], Any]
"""``open(model_path, delegates)``: a LiteRT interpreter over a model file with these delegates first."""


@functools.lru_cache(maxsize=64)
def tensor_names_by_offset(flatbuffer: bytes) -> dict[int, str]:
    """Buffer offset -> tensor name for the stripped (offset-addressed) buffers of a skeleton (cached: do
    not modify the result)."""
    model = tflite_schema().Model.GetRootAs(flatbuffer, 0)
    graph = model.Subgraphs(0)
    names = {}
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        offset = model.Buffers(tensor.Buffer()).Offset()
        if offset > 1:
            names[int(offset)] = tensor.Name().decode()
    return names


def _view(name: str, buffer: StrippedBuffer, section: DataSection, deriver: WeightDeriver) -> View:
    """The view of one stripped weight buffer (its stored tensor placed in ``section`` once)."""
    r = buffer.recipe
    kind, kernel = r["kind"], r["kernel"]
    if kind == "conv":
        k = deriver.tensor(kernel)  # HWIO
        h, w, i, o = k.shape
        offset = section.place(k.transpose(3, 0, 1, 2), ("ohwi", kernel))
        view = View(name, "conv", (r.get("out") or o, h, w, r.get("in") or i), h * w * i, i, offset)
        expected = (view.dims[0], h, w, view.dims[3])
    elif kind == "depthwise":
        k = deriver.tensor(kernel)  # [H, W, C, 1]
        h, w, c, _ = k.shape
        offset = section.place(k[:, :, :, 0], ("hwc", kernel))
        view = View(name, "depthwise", (r.get("out") or c, h, w, 1), 1, c, offset)
        expected = (1, h, w, view.dims[0])
    elif kind == "dense":
        k = deriver.tensor(kernel)  # [in, out]
        i, o = k.shape
        offset = section.place(k.T, ("oi", kernel))
        view = View(name, "dense", (r.get("out") or o, 1, 1, r.get("in") or i), i, 0, offset)
        expected = (view.dims[0], view.dims[3])
    else:  # svd_first [r, in] = rows of (U S)^T; svd_second [out, r] = columns of V
        us, vh = deriver.svd(kernel)
        rank = int(r["rank"])
        if kind == "svd_first":
            offset = section.place(us.T, ("us", kernel))
            view = View(name, "dense", (rank, 1, 1, us.shape[0]), us.shape[0], 0, offset)
        else:
            offset = section.place(vh.T, ("v", kernel))
            view = View(name, "dense", (vh.shape[1], 1, 1, rank), vh.shape[0], 0, offset)
        expected = (view.dims[0], view.dims[3])
    if tuple(buffer.shape) != expected:
        raise ModelFormatError(
            f"shared view of {name} ({kind} of {kernel!r}) has shape {expected}, the graph expects {buffer.shape}; "
            "the evolve metadata is inconsistent (re-export)"
        )
    bn = r.get("bn")
    if bn is not None:
        scale = deriver.bn_affine(bn)[0]
        if scale.shape != (view.dims[0],):
            raise ModelFormatError(f"folded BatchNorm of {name}: {scale.shape[0]} scales for {view.dims[0]} channels")
        view = View(view.name, view.layout, view.dims, view.out_stride, view.tap_stride, view.weight_offset,
                    section.place(scale))  # fmt: skip
    return view


def shared_views(container: EvolveContainer, deriver: WeightDeriver) -> tuple[bytes, dict[str, list[View]]]:
    """The weight source of an evolve container.

    Args:
      container: the decoded evolve entry.
      deriver: its weight deriver (computes SVDs and folded BatchNorm scales).

    Returns:
      ``(weight source bytes, configuration key -> its views)``; a float32 buffer whose recipe is a
      conv / depthwise / dense kernel or an SVD factor gets a view, every other buffer keeps its data.

    Raises:
      ModelFormatError: a recipe disagrees with its buffer's shape.
    """
    section = DataSection()
    configs: dict[str, list[View]] = {}
    for key, skeleton in container.skeletons.items():
        names = tensor_names_by_offset(skeleton.flatbuffer)
        views = []
        for buffer in skeleton.buffers:
            if buffer.dtype == "float32" and buffer.recipe["kind"] in VIEW_KINDS:
                views.append(_view(names[buffer.offset], buffer, section, deriver))
        configs[key] = views
    return pack_weight_source(section.tobytes(), configs), configs


def write_sparse_model(path: Path, skeleton: Skeleton, deriver: WeightDeriver, holes: set[int]) -> None:
    """Writes a configuration's model with the buffers at offsets ``holes`` left as file holes.

    Written in place (not via a temporary file): the folder is private to this process and the file
    is only read after it is closed.

    Args:
      path: the file to create.
      skeleton: the configuration's skeleton.
      deriver: derives the other buffers.
      holes: offsets of the buffers the delegate reads from the weight source instead.
    """
    with open(path, "wb") as f:
        f.write(skeleton.flatbuffer)
        for buffer in skeleton.buffers:
            if buffer.offset not in holes:
                f.seek(buffer.offset)
                f.write(deriver.derive(buffer.recipe, buffer.dtype).tobytes())
        f.truncate(skeleton.model_nbytes)


class SharedStorage(AlwaysReadySlots):
    """``shared`` mode (see the module docstring).

    Args:
      model: the opened evolve-mode model; its interpreter runs the primary configuration.
      open_interpreter: builds a LiteRT interpreter over a model file with extra delegates first.
      num_threads: threads of each configuration's delegate kernels.
      library_path: the delegate library (default: :func:`tflite_adaspring.delegates.library_path`).

    Raises:
      DelegateError: the delegate is missing, refuses to load, or does not claim every shared weight
        (the caller falls back to evolve mode).
      ModelFormatError: the evolve entry is missing or malformed.
    """

    mode = "shared"

    def __init__(
        self,
        model: ModelHandle,
        open_interpreter: OpenInterpreter,
        num_threads: int = 1,
        library_path: str | os.PathLike | None = None,
    ):
        library = Path(library_path) if library_path is not None else delegates.library_path()
        container = read_evolve_container(model.source)
        deriver = WeightDeriver(container.tensors)
        keys = model.metadata.keys
        signatures = model.interpreter._get_full_signature_list()
        if len(signatures) != 1 or next(iter(signatures)) not in keys:
            raise ModelFormatError(
                f"a shared-mode model runs one configuration of its table itself, found {signatures}"
            )
        primary_key = next(iter(signatures))
        self._primary = signature_slot(model.interpreter, primary_key, keys.index(primary_key), signatures[primary_key])
        missing = [k for k in keys if k != primary_key and k not in container.skeletons]
        if missing:
            raise ModelFormatError(f"evolve model: configurations {missing} have no skeleton")
        source, views = shared_views(container, deriver)
        self.weight_source_bytes = len(source)
        self.shared_views = {key: len(v) for key, v in views.items()}
        self._delegates: list[Any] = []
        slots: dict[int, ConfigSlot] = {self._primary.row: self._primary}
        folder = Path(tempfile.mkdtemp(prefix="adaspring-shared-"))
        try:
            weights = atomic_write_bytes(folder / WEIGHT_SOURCE_NAME, source)
            for row, key in enumerate(keys):
                if key == primary_key:
                    continue
                slots[row] = self._build(row, key, container.skeletons[key], views[key], deriver, folder, weights,
                                         open_interpreter, num_threads, library)  # fmt: skip
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # the interpreters and delegates keep their mappings
        self._slots = tuple(slots[row] for row in range(len(keys)))
        self._library = library

    def _build(
        self,
        row: int,
        key: str,
        skeleton: Skeleton,
        views: list[View],
        deriver: WeightDeriver,
        folder: Path,
        weights: Path,
        open_interpreter: OpenInterpreter,
        num_threads: int,
        library: Path,
    ) -> ConfigSlot:
        names = tensor_names_by_offset(skeleton.flatbuffer)
        viewed = {v.name for v in views}
        holes = {b.offset for b in skeleton.buffers if names.get(b.offset) in viewed}
        path = folder / f"config{row}.tflite"
        write_sparse_model(path, skeleton, deriver, holes)
        delegate = delegates.load(num_threads, weight_source=weights, weight_config=key, library_path=library)
        try:
            interpreter = open_interpreter(str(path), [delegate])
        except (ValueError, RuntimeError) as exc:
            reason = delegates.last_message(delegate, library) or str(exc)
            raise DelegateError(f"the delegate could not run configuration {key}: {reason}") from exc
        stats = delegates.stats(delegate, library)
        if stats.abi_refusals or stats.claimed_shared != len(views):
            reason = delegates.last_message(delegate, library) or "not every shared weight was claimed"
            raise DelegateError(
                f"configuration {key}: the delegate computes {stats.claimed_shared} of {len(views)} shared weights "
                f"({reason})"
            )
        self._delegates.append(delegate)
        slot = signature_slot(interpreter, key, row, interpreter._get_full_signature_list()[key])
        check_same_ports(self._primary, slot)
        slot.wrapper.AllocateTensors(slot.subgraph)
        slot.refresh_shapes()
        return slot

    @property
    def delegates(self) -> tuple[Any, ...]:
        """The delegate instances (one per configuration besides the primary)."""
        return tuple(self._delegates)

    def delegate_stats(self) -> list[delegates.DelegateStats]:
        """The counters of every configuration's delegate."""
        return [delegates.stats(d, self._library) for d in self._delegates]

    def interpreters(self) -> tuple[Any, ...]:
        """Every configuration's interpreter."""
        return tuple(s.interpreter for s in self._slots)
