"""Tiny array backend so the same ridge algebra runs on numpy or torch (CPU or CUDA).

Only the handful of operations the encoding engine needs are wrapped; everything else
(``@``, ``*``, ``+``, slicing, ``.sum(0)``, ``.argmin(0)``) behaves identically on numpy arrays
and torch tensors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

Array = Any  # numpy.ndarray or torch.Tensor

_DTYPES = ("float32", "float64")


class NumpyOps:
    """numpy implementation (always on the CPU)."""

    name = "numpy"

    def __init__(self, dtype: str, device: str = "cpu") -> None:
        if str(device) != "cpu":
            raise ValueError(f"backend='numpy' only runs on device='cpu', got device={device!r}.")
        self.work = np.dtype(dtype)
        self.np_work = self.work  # the working dtype as a numpy dtype (both backends)
        self.high = np.dtype("float64")
        self.itemsize = self.work.itemsize
        self.cpu = True

    def asarray(self, a: np.ndarray, high: bool = False) -> np.ndarray:
        return np.asarray(a, dtype=self.high if high else self.work)

    def to_numpy(self, a: np.ndarray) -> np.ndarray:
        return np.asarray(a)

    def index(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(idx)

    def columns(self, a: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``a[:, idx]`` (``take`` gathers twice as fast as fancy indexing)."""
        return np.take(a, idx, axis=1)

    def check_ieee(self) -> None:
        """numpy's (BLAS) float32 products are IEEE float32: nothing to check."""

    def single_threaded(self) -> AbstractContextManager:
        """BLAS on one thread inside the block (restored after)."""
        return threadpool_limits(limits=1, user_api="blas")

    def eigh(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # LAPACK's symmetric eigensolver is a long chain of small BLAS-2 steps: extra BLAS
        # threads do not speed it up and slow it down when other processes share the cores
        # (measured in benchmarks/README.md, "Eigendecompositions single-threaded").
        with self.single_threaded():
            return np.linalg.eigh(a)

    def empty(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.empty(shape, dtype=self.work)

    def matmul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        return np.matmul(a, b, out=out)

    def mul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        return np.multiply(a, b, out=out)

    def sub(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        return np.subtract(a, b, out=out)

    def add(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        return np.add(a, b, out=out)

    def sum0(self, r: np.ndarray) -> np.ndarray:
        return r.sum(0, dtype=np.float64)

    def ptp0_is_zero(self, a: np.ndarray) -> np.ndarray:
        return a.max(0) == a.min(0)

    def to_work(self, a: np.ndarray) -> np.ndarray:
        return a.astype(self.work, copy=False)

    def to_high(self, a: np.ndarray) -> np.ndarray:
        return a.astype(self.high, copy=False)

    def square_high(self, a: np.ndarray) -> np.ndarray:
        """``a**2`` in float64 in one pass (exact for float32 ``a``)."""
        return np.square(a, dtype=self.high)

    def log(self, a: np.ndarray) -> np.ndarray:
        return np.log(a)

    def where(self, cond: np.ndarray, a: Any, b: Any) -> np.ndarray:
        return np.where(cond, a, b)

    def full(self, shape: tuple[int, ...], value: float, high: bool = False) -> np.ndarray:
        return np.full(shape, value, dtype=self.high if high else self.work)

    def sqrt(self, a: np.ndarray) -> np.ndarray:
        return np.sqrt(a)


class TorchOps:
    """torch implementation on any device (``"cpu"``, ``"cuda"``, ``"cuda:1"``...)."""

    name = "torch"

    def __init__(self, dtype: str, device: str = "cpu") -> None:
        import torch

        self.torch = torch
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"Unknown torch device {device!r}: {exc}") from exc
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available.")
        self.work = {"float32": torch.float32, "float64": torch.float64}[dtype]
        self.high = torch.float64
        self.np_work = np.dtype(dtype)  # the working dtype as a numpy dtype (both backends)
        self.itemsize = self.np_work.itemsize
        self.cpu = self.device.type == "cpu"

    def asarray(self, a: np.ndarray, high: bool = False) -> Any:
        dtype = self.high if high else self.work
        return self.torch.as_tensor(np.asarray(a), device=self.device).to(dtype)

    def to_numpy(self, a: Any) -> np.ndarray:
        return a.detach().cpu().numpy()

    def index(self, idx: np.ndarray) -> Any:
        return self.torch.as_tensor(np.asarray(idx), device=self.device)

    def columns(self, a: Any, idx: Any) -> Any:
        """``a[:, idx]``."""
        return a.index_select(1, idx)

    def check_ieee(self) -> None:
        """Raise ``ValueError`` if float32 products may not be IEEE float32 (TF32 or bf16).

        The exact alpha search (:mod:`bids_w2v.encoding.prune`) bounds the rounding of the
        float32 products; TF32 (``torch.set_float32_matmul_precision("high")``,
        ``TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1``) or bf16 products round ~1,000x more, so the
        bounds would not hold. float64 is not affected.
        """
        if self.work != self.torch.float32:
            return
        problem = reduced_precision(self.torch, self.device.type)
        if problem:
            raise ValueError(
                f"The exact alpha search needs IEEE float32 matrix products on {self.device}, "
                f"but {problem}, so its rounding bounds would not hold. Call "
                "torch.set_float32_matmul_precision('highest') before fitting (and unset "
                "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE), or use dtype='float64'."
            )

    @contextmanager
    def single_threaded(self) -> Iterator[None]:
        """torch's CPU thread pool on one thread inside the block (restored after)."""
        threads = self.torch.get_num_threads()
        self.torch.set_num_threads(1)
        try:
            yield
        finally:
            self.torch.set_num_threads(threads)

    def eigh(self, a: Any) -> tuple[Any, Any]:
        if self.device.type != "cpu":
            return self.torch.linalg.eigh(a)
        with self.single_threaded():  # same reason as NumpyOps.eigh (benchmarks/README.md)
            return self.torch.linalg.eigh(a)

    def empty(self, shape: tuple[int, ...]) -> Any:
        return self.torch.empty(shape, dtype=self.work, device=self.device)

    def matmul(self, a: Any, b: Any, out: Any | None) -> Any:
        return self.torch.matmul(a, b, out=out)

    def mul(self, a: Any, b: Any, out: Any | None) -> Any:
        return self.torch.mul(a, b, out=out)

    def sub(self, a: Any, b: Any, out: Any | None) -> Any:
        return self.torch.sub(a, b, out=out)

    def add(self, a: Any, b: Any, out: Any | None) -> Any:
        return self.torch.add(a, b, out=out)

    def sum0(self, r: Any) -> Any:
        # float64 accumulation is cheap on GPUs but slow on CPU, where torch's float32
        # reductions are already blocked (cascade) sums.
        if self.device.type == "cpu":
            return r.sum(0).to(self.high)
        return r.sum(0, dtype=self.high)

    def ptp0_is_zero(self, a: Any) -> Any:
        return a.amax(0) == a.amin(0)

    def to_work(self, a: Any) -> Any:
        return a.to(self.work)

    def to_high(self, a: Any) -> Any:
        return a.to(self.high)

    def square_high(self, a: Any) -> Any:
        """``a**2`` in float64 (exact for float32 ``a``)."""
        return self.torch.square(a.to(self.high))

    def log(self, a: Any) -> Any:
        return self.torch.log(a)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return self.torch.where(cond, a, b)

    def full(self, shape: tuple[int, ...], value: float, high: bool = False) -> Any:
        dtype = self.high if high else self.work
        return self.torch.full(shape, value, dtype=dtype, device=self.device)

    def sqrt(self, a: Any) -> Any:
        return self.torch.sqrt(a)


def reduced_precision(torch: Any, device_type: str) -> str:
    """Why torch's float32 products on ``device_type`` may be TF32 or bf16 ('' if IEEE)."""
    if device_type == "cuda" and os.environ.get("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "0") != "0":
        return "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE is set"
    try:  # raises when the legacy and the per-backend settings were mixed
        legacy = torch.get_float32_matmul_precision()
    except RuntimeError:
        legacy = "highest"  # the per-backend settings below decide
    if legacy != "highest":
        return f"torch.get_float32_matmul_precision() is {legacy!r}"
    name = {"cuda": "cuda", "cpu": "mkldnn"}.get(device_type)
    settings = [("torch.backends.fp32_precision", torch.backends)]
    if name is not None:
        module = getattr(torch.backends, name)
        settings.append((f"torch.backends.{name}.matmul.fp32_precision", module.matmul))
    for label, obj in settings:
        value = getattr(obj, "fp32_precision", "none")
        if value not in ("none", "ieee"):
            return f"{label} is {value!r}"
    return ""


#: Either backend (what the ridge algebra receives).
Ops = NumpyOps | TorchOps


def get_ops(backend: str, device: str, dtype: str) -> Ops:
    """Return the operations object for ``backend`` (``"numpy"`` or ``"torch"``)."""
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}.")
    if backend == "numpy":
        return NumpyOps(dtype, device)
    if backend == "torch":
        return TorchOps(dtype, device)
    raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}.")
