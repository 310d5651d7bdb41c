"""Results leave the device once: several tensors read back in one transfer, one host sync.

Each ``.tolist()`` or ``.item()`` of a GPU tensor waits for the GPU; reading the prediction, the
chosen frames and the probabilities one by one would wait three times. ``to_host`` packs them
into one float64 vector (integers below 2**53 are exact), reads it once and unpacks it.
"""
import torch


def to_host(*tensors: torch.Tensor) -> list:
    """Each tensor as nested Python lists (ints for integer tensors), after one ``tolist``."""
    values = torch.cat([tensor.detach().reshape(-1).to(torch.float64) for tensor in tensors]).tolist()
    results, start = [], 0
    for tensor in tensors:
        flat = values[start : start + tensor.numel()]
        start += tensor.numel()
        if not tensor.is_floating_point():
            flat = [int(value) for value in flat]
        results.append(nest(flat, tensor.shape))
    return results


def nest(flat: list, shape) -> list:
    """A flat list as nested lists of ``shape``; a 0-d shape gives the value itself."""
    if len(shape) == 0:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0]
    return [nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]
