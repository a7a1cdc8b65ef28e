"""Atrous rate schedules: ASPP rates per output stride, multi-grid and hybrid dilated convolution."""

#: ASPP rates of the v3/v3+ papers: (6, 12, 18) at output stride 16, doubled at 8.
ASPP_RATES = {8: (12, 24, 36), 16: (6, 12, 18), 32: (3, 6, 9)}


def aspp_rates(output_stride):
    try:
        return ASPP_RATES[output_stride]
    except KeyError:
        raise ValueError(f"output_stride must be one of {sorted(ASPP_RATES)}, got {output_stride!r}")


def check_output_stride(output_stride, allowed=(8, 16, 32)):
    if output_stride not in allowed:
        raise ValueError(f"output_stride must be one of {tuple(allowed)}, got {output_stride!r}")
    return int(output_stride)


def stride_to_rate(stride, current_stride, rate, output_stride):
    """TF-slim MobileNet's output-stride rule for one layer: once ``current_stride`` has reached
    ``output_stride``, a strided layer keeps the running ``rate`` and multiplies it by its stride
    for the layers after it. Returns ``(layer_stride, layer_rate, current_stride, rate)``."""
    if current_stride == output_stride and stride > 1:
        return 1, rate, current_stride, rate * stride
    return stride, rate if stride == 1 else 1, current_stride * stride, rate


def multi_grid(grid, base_rate):
    """Multi-grid (v3 paper): unit rates = base rate x grid, e.g. (1, 2, 4) x 2 at OS 16."""
    grid = tuple(int(g) for g in grid)
    if not grid or min(grid) < 1:
        raise ValueError(f"multi_grid must be positive integers, got {grid!r}")
    return tuple(base_rate * g for g in grid)


#: Hybrid dilated convolution (Wang et al., "Understanding Convolution for Semantic
#: Segmentation"): within a dilated stage, cycle co-prime-ish rates so the receptive field
#: has no gridding holes. Patterns of the HDC paper for ResNet-101 at output stride 8.
HDC_PATTERNS = {2: (1, 2, 5, 9), 4: (5, 9, 17)}


def hdc(num_units, base_rate, pattern=None):
    """Rates for ``num_units`` consecutive units of a stage dilated by ``base_rate``.

    With no ``pattern``, uses the HDC paper's pattern for that base rate (falls back to
    (1, 2, 3) x base_rate / 2 style cycling for other rates)."""
    if num_units < 1:
        raise ValueError("num_units must be >= 1")
    if base_rate == 1:
        return (1,) * num_units
    if pattern is None:
        pattern = HDC_PATTERNS.get(base_rate)
        if pattern is None:
            half = max(1, base_rate // 2)
            pattern = (half, base_rate, base_rate + half)
    pattern = tuple(int(p) for p in pattern)
    return tuple(pattern[i % len(pattern)] for i in range(num_units))
